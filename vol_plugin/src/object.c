/*
 * H5O (and the object half of H5I): opening, object info and visiting, by
 * name, index or token. An object's token hashes its identity (the path it
 * was created at), so it is the same through every hard link to it.
 */
#include "esdm_vol.h"

#include <string.h>

esdm_obj_t *
esdm_open_node(esdm_obj_t *loc, PyObject *name, hid_t dapl_id)
{
    return esdm_open_node_via(loc, name, dapl_id, H5P_DEFAULT);
}

hid_t
esdm_loc_lapl(const H5VL_loc_params_t *loc)
{
    switch (loc->type) {
        case H5VL_OBJECT_BY_NAME:
            return loc->loc_data.loc_by_name.lapl_id;
        case H5VL_OBJECT_BY_IDX:
            return loc->loc_data.loc_by_idx.lapl_id;
        default:
            return H5P_DEFAULT;
    }
}

/* The bridge's access for the files of external links (bridge.INHERIT, READ_ONLY,
 * READ_WRITE) from a link access list, which esdm_loc_name has checked. */
static int
elink_access(hid_t lapl_id)
{
    unsigned flags = H5F_ACC_DEFAULT;
    if (lapl_id == H5P_DEFAULT || H5Pget_elink_acc_flags(lapl_id, &flags) < 0 || flags == H5F_ACC_DEFAULT)
        return -1;
    return (flags & H5F_ACC_RDWR) != 0;
}

esdm_obj_t *
esdm_open_node_via(esdm_obj_t *loc, PyObject *name, hid_t dapl_id, hid_t lapl_id)
{
    if (!name)
        return NULL;
    PyObject *pair = esdm_call("object_open", "(ONi)", loc->py, name, elink_access(lapl_id));
    if (!pair)
        return NULL;
    esdm_kind_t  kind   = (esdm_kind_t)PyLong_AsLong(PyTuple_GET_ITEM(pair, 1));
    PyObject    *handle = PyTuple_GET_ITEM(pair, 0);
    PyObject    *owner  = PyObject_GetAttrString(handle, "file");
    esdm_file_t *file   = owner == loc->file->obj.py ? loc->file : NULL;
    if (!owner)
        esdm_python_error("opening an object");
    else if (!file && !(file = esdm_file_adopt(owner, lapl_id, loc->file)))
        /* past an external link: the bridge opened that file for the object */
        Py_XDECREF(esdm_call("file_close", "(O)", owner));
    else if (file != loc->file && esdm_remember_tokens(file) < 0) {
        file->nrefs = 1; /* no object took it: close and free it here */
        esdm_file_close_container(file);
        esdm_file_unref(file);
        file = NULL;
    }
    esdm_obj_t *obj = file ? esdm_obj_new(kind, file, Py_NewRef(handle)) : NULL;
    Py_XDECREF(owner);
    Py_DECREF(pair);
    if (obj && ((kind == ESDM_DATASET && esdm_dataset_init(obj, dapl_id) < 0) ||
                (kind == ESDM_DATATYPE && esdm_datatype_init(obj) < 0))) {
        esdm_obj_release(obj);
        return NULL;
    }
    return obj;
}

static H5I_type_t
id_type(const esdm_obj_t *obj)
{
    return obj->kind == ESDM_DATASET ? H5I_DATASET : obj->kind == ESDM_DATATYPE ? H5I_DATATYPE : H5I_GROUP;
}

static H5O_type_t
object_type(long kind)
{
    return kind == ESDM_DATASET    ? H5O_TYPE_DATASET
           : kind == ESDM_DATATYPE ? H5O_TYPE_NAMED_DATATYPE
                                   : H5O_TYPE_GROUP;
}

void *
esdm_object_open(void *obj, const H5VL_loc_params_t *loc, H5I_type_t *opened_type, hid_t dxpl_id,
                 void **req)
{
    PyGILState_STATE gil;
    esdm_obj_t      *opened = NULL;
    (void)dxpl_id, (void)req;

    if (esdm_enter(&gil) < 0)
        return NULL;
    if ((opened = esdm_open_node_via(obj, esdm_loc_str(obj, loc, "H5Oopen"), H5P_DEFAULT,
                                     esdm_loc_lapl(loc))))
        *opened_type = id_type(opened);
    esdm_leave(gil);
    return opened;
}

herr_t
esdm_object_copy(void *src_obj, const H5VL_loc_params_t *loc1, const char *src_name, void *dst_obj,
                 const H5VL_loc_params_t *loc2, const char *dst_name, hid_t ocpypl_id, hid_t lcpl_id,
                 hid_t dxpl_id, void **req)
{
    esdm_obj_t      *src = src_obj, *dst = dst_obj;
    PyGILState_STATE gil;
    unsigned         flags = 0;
    herr_t           status;
    const char      *src_base = esdm_loc_name(loc1, "H5Ocopy");
    const char      *dst_base = src_base ? esdm_loc_name(loc2, "H5Ocopy") : NULL;
    (void)lcpl_id, (void)dxpl_id, (void)req;

    if (!dst_base || H5Pget_copy_object(ocpypl_id, &flags) < 0)
        return -1;
    if (flags & (H5O_COPY_EXPAND_EXT_LINK_FLAG | H5O_COPY_EXPAND_REFERENCE_FLAG | H5O_COPY_MERGE_COMMITTED_DTYPE_FLAG))
        return esdm_unsupported("H5Ocopy expanding external links or references, or merging committed types");
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *old_name = esdm_name(src_base, src_name);
    PyObject *new_name = old_name ? esdm_name(dst_base, dst_name) : NULL;
    PyObject *options  = Py_BuildValue("(OOO)", flags & H5O_COPY_WITHOUT_ATTR_FLAG ? Py_True : Py_False,
                                       flags & H5O_COPY_SHALLOW_HIERARCHY_FLAG ? Py_True : Py_False,
                                       flags & H5O_COPY_EXPAND_SOFT_LINK_FLAG ? Py_True : Py_False);
    status = esdm_call_between("object_copy", src, old_name, dst, new_name, options);
    esdm_leave(gil);
    return status;
}

/* ---- get -------------------------------------------------------------------------------------- */

/* A name (a str) into H5Iget_name's or H5Rget_obj_name's buffer. */
static herr_t
copy_text(PyObject *name, H5VL_object_get_args_t *args)
{
    const char *text = PyUnicode_AsUTF8(name);
    if (!text) {
        esdm_python_error("H5Iget_name");
        return -1;
    }
    size_t len = strlen(text);
    if (args->args.get_name.buf && args->args.get_name.buf_size) {
        size_t copied = len < args->args.get_name.buf_size - 1 ? len : args->args.get_name.buf_size - 1;
        memcpy(args->args.get_name.buf, text, copied);
        args->args.get_name.buf[copied] = '\0';
    }
    *args->args.get_name.name_len = len;
    return 0;
}

static herr_t
copy_name(PyObject *py, H5VL_object_get_args_t *args)
{
    PyObject *path = PyObject_GetAttrString(py, "hdf5_name");
    herr_t    status = path ? copy_text(path, args) : -1;
    if (!path)
        esdm_python_error("H5Iget_name");
    Py_XDECREF(path);
    return status;
}

/* H5O_info2_t from the bridge's object_info (kind, identity, attributes, hard links). */
static void
fill_object_info(esdm_obj_t *where, PyObject *found, H5O_info2_t *info)
{
    memset(info, 0, sizeof *info);
    info->fileno = esdm_file_number(where->file->name);
    esdm_token_of(PyUnicode_AsUTF8(PyTuple_GET_ITEM(found, 1)), &info->token);
    info->type      = object_type(PyLong_AsLong(PyTuple_GET_ITEM(found, 0)));
    info->rc        = (unsigned)PyLong_AsLong(PyTuple_GET_ITEM(found, 3));
    info->num_attrs = (hsize_t)PyLong_AsLong(PyTuple_GET_ITEM(found, 2));
    /* access/modification/change/birth times are not tracked: 0 */
}

/* object_info of what name (a str, borrowed) names, relative to where; NULL
 * with an error if nothing has that name. GIL held. */
static PyObject *
object_info(esdm_obj_t *where, PyObject *name)
{
    PyObject *info = esdm_call("object_info", "(OO)", where->py, name);
    if (info && PyLong_AsLong(PyTuple_GET_ITEM(info, 0)) == ESDM_NONE) {
        esdm_error(esdm_err_argument, "esdm VOL: no object named %s", PyUnicode_AsUTF8(name));
        Py_CLEAR(info);
    }
    return info;
}

herr_t
esdm_object_get(void *obj, const H5VL_loc_params_t *loc, H5VL_object_get_args_t *args, hid_t dxpl_id,
                void **req)
{
    esdm_obj_t      *where = obj;
    PyGILState_STATE gil;
    PyObject        *info   = NULL;
    herr_t           status = -1;
    (void)dxpl_id, (void)req;

    if (args->op_type == H5VL_OBJECT_GET_FILE) {
        esdm_file_new_id(where->file);
        *args->args.get_file.file = where->file;
        return 0;
    }
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *name = esdm_loc_str(where, loc, "an object query");
    if (!name)
        goto done;
    switch (args->op_type) {
        case H5VL_OBJECT_GET_NAME:
            /* H5Iget_name names the object itself, H5Rget_obj_name the one a token names */
            status = loc->type == H5VL_OBJECT_BY_SELF ? copy_name(where->py, args) : copy_text(name, args);
            break;
        case H5VL_OBJECT_GET_TYPE:
            if ((info = object_info(where, name))) {
                *args->args.get_type.obj_type = object_type(PyLong_AsLong(PyTuple_GET_ITEM(info, 0)));
                status                        = 0;
            }
            break;
        case H5VL_OBJECT_GET_INFO:
            if ((info = object_info(where, name))) {
                fill_object_info(where, info, args->args.get_info.oinfo);
                status = 0;
            }
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: object query %d is not supported yet",
                       (int)args->op_type);
            break;
    }
done:
    Py_XDECREF(info);
    Py_XDECREF(name);
    esdm_leave(gil);
    return status;
}

/* ---- specific ---------------------------------------------------------------------------------- */

/* H5Ovisit: the object itself as ".", then every object below it once. GIL held. */
static herr_t
visit(esdm_obj_t *where, PyObject *name, H5VL_object_visit_args_t *args)
{
    herr_t status = -1;

    if (args->idx_type != H5_INDEX_NAME && args->idx_type != H5_INDEX_CRT_ORDER) {
        esdm_error(esdm_err_argument, "esdm VOL: unknown link index %d", (int)args->idx_type);
        return -1;
    }
    PyObject   *objects = esdm_call("object_list", "(OOOO)", where->py, name,
                                    args->idx_type == H5_INDEX_CRT_ORDER ? Py_True : Py_False,
                                    args->order == H5_ITER_DEC ? Py_True : Py_False);
    esdm_obj_t *start   = objects ? esdm_open_node(where, Py_NewRef(name), H5P_DEFAULT) : NULL;
    if (!start)
        goto done;
    hid_t start_id = H5VLwrap_register(start, id_type(start));
    if (start_id < 0) {
        esdm_obj_release(start);
        goto done;
    }
    Py_ssize_t count = PyList_GET_SIZE(objects);
    status           = 0;
    for (Py_ssize_t k = 0; k < count && status == 0; k++) {
        PyObject   *object = PyList_GET_ITEM(objects, k);
        PyObject   *found  = object_info(where, PyTuple_GET_ITEM(object, 1));
        H5O_info2_t info;
        if (!found) {
            status = -1;
            break;
        }
        fill_object_info(where, found, &info);
        Py_DECREF(found);
        /* GIL held: h5py's callbacks expect it, C callbacks re-enter on this thread */
        status = args->op(start_id, PyUnicode_AsUTF8(PyTuple_GET_ITEM(object, 0)), &info, args->op_data);
    }
    esdm_close(start_id);
done:
    Py_XDECREF(objects);
    return status;
}

herr_t
esdm_object_specific(void *obj, const H5VL_loc_params_t *loc, H5VL_object_specific_args_t *args,
                     hid_t dxpl_id, void **req)
{
    PyGILState_STATE gil;
    PyObject        *info   = NULL;
    herr_t           status = -1;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_OBJECT_FLUSH: /* published by the container's next commit (H5Fflush) */
            return esdm_file_swmr_flush(((esdm_obj_t *)obj)->file);
        case H5VL_OBJECT_REFRESH:
            return esdm_file_refresh(((esdm_obj_t *)obj)->file);
        case H5VL_OBJECT_CHANGE_REF_COUNT:
            return esdm_unsupported("changing an object's link count (H5Oincr/decr_refcount)");
        case H5VL_OBJECT_LOOKUP:
        case H5VL_OBJECT_EXISTS:
        case H5VL_OBJECT_VISIT:
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: object operation %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *name = esdm_loc_str(obj, loc, "an object operation");
    if (name && args->op_type == H5VL_OBJECT_EXISTS) {
        if ((info = esdm_call("object_info", "(OO)", ((esdm_obj_t *)obj)->py, name))) {
            *args->args.exists.exists = PyLong_AsLong(PyTuple_GET_ITEM(info, 0)) != ESDM_NONE;
            status                    = 0;
        }
    }
    else if (name && args->op_type == H5VL_OBJECT_LOOKUP) {
        /* H5Rcreate_object: the token of the object the name names */
        if ((info = object_info(obj, name))) {
            esdm_token_of(PyUnicode_AsUTF8(PyTuple_GET_ITEM(info, 1)),
                          args->args.lookup.token_ptr);
            status = 0;
        }
    }
    else if (name)
        status = visit(obj, name, &args->args.visit);
    Py_XDECREF(info);
    Py_XDECREF(name);
    esdm_leave(gil);
    return status;
}

herr_t
esdm_object_optional(void *obj, const H5VL_loc_params_t *loc, H5VL_optional_args_t *args,
                     hid_t dxpl_id, void **req)
{
    (void)obj, (void)loc, (void)dxpl_id, (void)req;
    esdm_error(esdm_err_unsupported,
               "esdm VOL: native object operation %d (comments, H5Oare_mdc_flushes_disabled, ...) is "
               "not supported yet",
               args->op_type);
    return -1;
}
