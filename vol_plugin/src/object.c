/*
 * H5O (and the object half of H5I): opening by name, object info and
 * visiting. Objects are addressed by name; addressing by index or token
 * (and so references, which dereference by token) is not supported yet.
 */
#include "esdm_vol.h"

#include <string.h>

esdm_obj_t *
esdm_open_node(esdm_obj_t *loc, PyObject *name, hid_t dapl_id)
{
    if (!name)
        return NULL;
    PyObject *pair = esdm_call("object_open", "(ON)", loc->py, name);
    if (!pair)
        return NULL;
    esdm_kind_t kind = (esdm_kind_t)PyLong_AsLong(PyTuple_GET_ITEM(pair, 1));
    esdm_obj_t *obj  = esdm_obj_new(kind, loc->file, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
    Py_DECREF(pair);
    if (obj && kind == ESDM_DATASET && esdm_dataset_init(obj, dapl_id) < 0) {
        esdm_obj_release(obj);
        return NULL;
    }
    return obj;
}

static H5I_type_t
id_type(const esdm_obj_t *obj)
{
    return obj->kind == ESDM_DATASET ? H5I_DATASET : H5I_GROUP;
}

void *
esdm_object_open(void *obj, const H5VL_loc_params_t *loc, H5I_type_t *opened_type, hid_t dxpl_id,
                 void **req)
{
    PyGILState_STATE gil;
    esdm_obj_t      *opened = NULL;
    const char      *name   = esdm_loc_name(loc, "H5Oopen");
    (void)dxpl_id, (void)req;

    if (!name || esdm_enter(&gil) < 0)
        return NULL;
    if ((opened = esdm_open_node(obj, esdm_name(".", name), H5P_DEFAULT)))
        *opened_type = id_type(opened);
    esdm_leave(gil);
    return opened;
}

herr_t
esdm_object_copy(void *src_obj, const H5VL_loc_params_t *loc1, const char *src_name, void *dst_obj,
                 const H5VL_loc_params_t *loc2, const char *dst_name, hid_t ocpypl_id, hid_t lcpl_id,
                 hid_t dxpl_id, void **req)
{
    (void)src_obj, (void)loc1, (void)src_name, (void)dst_obj, (void)loc2, (void)dst_name;
    (void)ocpypl_id, (void)lcpl_id, (void)dxpl_id, (void)req;
    return esdm_unsupported("copying an object (H5Ocopy)");
}

/* ---- get -------------------------------------------------------------------------------------- */

static herr_t
copy_name(PyObject *py, H5VL_object_get_args_t *args)
{
    PyObject   *path = PyObject_GetAttrString(py, "path");
    const char *text = path ? PyUnicode_AsUTF8(path) : NULL;
    if (!text) {
        Py_XDECREF(path);
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
    Py_DECREF(path);
    return 0;
}

static void
fill_object_info(esdm_obj_t *where, long kind, const char *path, long num_attrs, H5O_info2_t *info)
{
    H5O_token_t file_token;

    memset(info, 0, sizeof *info);
    esdm_token_of(where->file->name, "", &file_token);
    memcpy(&info->fileno, file_token.__data, sizeof info->fileno);
    esdm_token_of(where->file->name, path, &info->token);
    info->type      = kind == ESDM_DATASET ? H5O_TYPE_DATASET : H5O_TYPE_GROUP;
    info->rc        = 1; /* one name per object */
    info->num_attrs = (hsize_t)num_attrs;
    /* access/modification/change/birth times are not tracked: 0 */
}

/* (kind, path, attributes) of the object a location names, or NULL with
 * an error if nothing has that name. GIL held. */
static PyObject *
object_info(esdm_obj_t *where, const char *name)
{
    PyObject *info = esdm_call("object_info", "(Os)", where->py, name);
    if (info && PyLong_AsLong(PyTuple_GET_ITEM(info, 0)) == ESDM_NONE) {
        esdm_error(esdm_err_argument, "esdm VOL: no object named %s", name);
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
    const char      *name;
    (void)dxpl_id, (void)req;

    if (args->op_type == H5VL_OBJECT_GET_FILE) {
        esdm_file_new_id(where->file);
        *args->args.get_file.file = where->file;
        return 0;
    }
    if (!(name = esdm_loc_name(loc, "an object query")) || esdm_enter(&gil) < 0)
        return -1;
    switch (args->op_type) {
        case H5VL_OBJECT_GET_NAME:
            status = copy_name(where->py, args);
            break;
        case H5VL_OBJECT_GET_TYPE:
            if ((info = object_info(where, name))) {
                *args->args.get_type.obj_type = PyLong_AsLong(PyTuple_GET_ITEM(info, 0)) == ESDM_DATASET
                                                    ? H5O_TYPE_DATASET
                                                    : H5O_TYPE_GROUP;
                status = 0;
            }
            break;
        case H5VL_OBJECT_GET_INFO:
            if ((info = object_info(where, name))) {
                fill_object_info(where, PyLong_AsLong(PyTuple_GET_ITEM(info, 0)),
                                 PyUnicode_AsUTF8(PyTuple_GET_ITEM(info, 1)),
                                 PyLong_AsLong(PyTuple_GET_ITEM(info, 2)), args->args.get_info.oinfo);
                status = 0;
            }
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: object query %d is not supported yet",
                       (int)args->op_type);
            break;
    }
    Py_XDECREF(info);
    esdm_leave(gil);
    return status;
}

/* ---- specific ---------------------------------------------------------------------------------- */

/* H5Ovisit: the object itself as ".", then everything below it. */
static herr_t
visit(esdm_obj_t *where, const char *name, H5VL_object_visit_args_t *args)
{
    herr_t status = -1;

    if (args->idx_type != H5_INDEX_NAME)
        return esdm_unsupported("visiting objects in creation order (not tracked)");
    PyObject   *top   = object_info(where, name);
    esdm_obj_t *start = top ? esdm_open_node(where, esdm_name(".", name), H5P_DEFAULT) : NULL;
    PyObject   *links = NULL;
    if (!start)
        goto done;
    hid_t start_id = H5VLwrap_register(start, id_type(start));
    if (start_id < 0) {
        esdm_obj_release(start);
        goto done;
    }
    if (start->kind == ESDM_GROUP &&
        !(links = esdm_call("link_list", "(OsO)", where->py, name, Py_True)))
        goto close;
    H5O_info2_t info;
    fill_object_info(where, PyLong_AsLong(PyTuple_GET_ITEM(top, 0)),
                     PyUnicode_AsUTF8(PyTuple_GET_ITEM(top, 1)), PyLong_AsLong(PyTuple_GET_ITEM(top, 2)),
                     &info);
    /* GIL held: h5py's callbacks expect it, C callbacks re-enter on this thread */
    status          = args->op(start_id, ".", &info, args->op_data);
    Py_ssize_t count = links ? PyList_GET_SIZE(links) : 0;
    for (Py_ssize_t k = 0; k < count && status == 0; k++) {
        Py_ssize_t index = args->order == H5_ITER_DEC ? count - 1 - k : k;
        PyObject  *link  = PyList_GET_ITEM(links, index);
        PyObject  *found = object_info(where, PyUnicode_AsUTF8(PyTuple_GET_ITEM(link, 1)));
        if (!found) {
            status = -1;
            break;
        }
        fill_object_info(where, PyLong_AsLong(PyTuple_GET_ITEM(found, 0)),
                         PyUnicode_AsUTF8(PyTuple_GET_ITEM(found, 1)),
                         PyLong_AsLong(PyTuple_GET_ITEM(found, 2)), &info);
        Py_DECREF(found);
        status = args->op(start_id, PyUnicode_AsUTF8(PyTuple_GET_ITEM(link, 0)), &info, args->op_data);
    }
close:
    esdm_close(start_id);
done:
    Py_XDECREF(links);
    Py_XDECREF(top);
    return status;
}

herr_t
esdm_object_specific(void *obj, const H5VL_loc_params_t *loc, H5VL_object_specific_args_t *args,
                     hid_t dxpl_id, void **req)
{
    PyGILState_STATE gil;
    herr_t           status = -1;
    const char      *name;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_OBJECT_FLUSH:
        case H5VL_OBJECT_REFRESH:
            return 0; /* published by the container's next commit (H5Fflush) */
        case H5VL_OBJECT_CHANGE_REF_COUNT:
            return esdm_unsupported("changing an object's link count (H5Oincr/decr_refcount)");
        case H5VL_OBJECT_LOOKUP:
            return esdm_unsupported(
                "creating an object reference or looking an object up by token (H5Rcreate_*)");
        case H5VL_OBJECT_EXISTS:
        case H5VL_OBJECT_VISIT:
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: object operation %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
    if (!(name = esdm_loc_name(loc, "an object operation")) || esdm_enter(&gil) < 0)
        return -1;
    if (args->op_type == H5VL_OBJECT_EXISTS) {
        PyObject *info = esdm_call("object_info", "(Os)", ((esdm_obj_t *)obj)->py, name);
        if (info) {
            *args->args.exists.exists = PyLong_AsLong(PyTuple_GET_ITEM(info, 0)) != ESDM_NONE;
            status                    = 0;
            Py_DECREF(info);
        }
    }
    else
        status = visit(obj, name, &args->args.visit);
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
