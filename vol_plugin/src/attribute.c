/*
 * H5A: attributes are the scientific metadata of groups and datasets, kept
 * whole in the container's namespace. Creating, writing and deleting one
 * is collective in the core, as in parallel HDF5.
 *
 * Values cross packed in the attribute's own type; variable-length strings
 * (what h5py writes for a Python str) cross as lists of bytes, since their
 * memory form is an array of pointers.
 */
#include "esdm_vol.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------- */

/* (spelling, shape) of an open attribute, and its number of elements. GIL held. */
static PyObject *
describe(esdm_obj_t *attr, size_t *elements)
{
    PyObject *info = esdm_call("attribute_describe", "(O)", attr->py);
    if (info && elements) {
        PyObject *shape = PyTuple_GET_ITEM(info, 1);
        *elements       = shape != Py_None; /* a null dataspace holds nothing */
        for (Py_ssize_t i = 0; shape != Py_None && i < PyTuple_GET_SIZE(shape); i++)
            *elements *= (size_t)PyLong_AsSize_t(PyTuple_GET_ITEM(shape, i));
    }
    return info;
}

/* The datatype an open attribute holds (a new ID), or H5I_INVALID_HID. GIL held. */
static hid_t
stored_type(esdm_obj_t *attr)
{
    PyObject *info    = describe(attr, NULL);
    hid_t     type_id = info ? esdm_type_from_py(PyTuple_GET_ITEM(info, 0)) : H5I_INVALID_HID;
    Py_XDECREF(info);
    return type_id;
}

/* ---- create, open ------------------------------------------------------------------------ */

void *
esdm_attr_create(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t type_id,
                 hid_t space_id, hid_t acpl_id, hid_t aapl_id, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *where = obj, *attr = NULL;
    PyGILState_STATE gil;
    const char      *base = esdm_loc_name(loc, "creating an attribute");
    (void)dxpl_id, (void)req;

    if (!base || !esdm_plist_ok(acpl_id, H5P_ATTRIBUTE_CREATE, "creating an attribute") ||
        !esdm_plist_ok(aapl_id, H5P_ATTRIBUTE_ACCESS, "creating an attribute") || esdm_enter(&gil) < 0)
        return NULL;
    PyObject *spelling = esdm_type_to_py(type_id);
    PyObject *shape    = spelling ? esdm_space_to_py(space_id, false) : NULL;
    if (shape) {
        PyObject *py = esdm_call("attribute_create", "(OssON)", where->py, base, name, spelling, shape);
        if (py && (attr = esdm_obj_new(ESDM_ATTR, where->file, py)) &&
            (attr->type_id = H5Tcopy(type_id)) < 0) {
            esdm_obj_release(attr);
            attr = NULL;
        }
    }
    Py_XDECREF(spelling);
    esdm_leave(gil);
    return attr;
}

void *
esdm_attr_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t aapl_id,
               hid_t dxpl_id, void **req)
{
    esdm_obj_t      *where = obj, *attr = NULL;
    PyGILState_STATE gil;
    bool             by_idx = loc->type == H5VL_OBJECT_BY_IDX;
    const char      *base =
        by_idx ? loc->loc_data.loc_by_idx.name : esdm_loc_name(loc, "opening an attribute");
    (void)aapl_id, (void)dxpl_id, (void)req;

    if (!base || esdm_enter(&gil) < 0)
        return NULL;
    /* H5Aopen_by_idx passes no name: the index picks the attribute */
    PyObject *attr_name = by_idx ? esdm_by_idx(where, &loc->loc_data.loc_by_idx, "attribute_at") : PyUnicode_FromString(name);
    PyObject *py = attr_name ? esdm_call("attribute_open", "(OsN)", where->py, base, attr_name) : NULL;
    if (py && (attr = esdm_obj_new(ESDM_ATTR, where->file, py)) &&
        (attr->type_id = stored_type(attr)) < 0) {
        esdm_obj_release(attr);
        attr = NULL;
    }
    esdm_leave(gil);
    return attr;
}

/* ---- write, read --------------------------------------------------------------------------- */

static herr_t
write_strings(esdm_obj_t *attr, hid_t mem_type_id, const void *buf, size_t n)
{
    if (!esdm_type_is_vlen_string(mem_type_id))
        return esdm_unsupported("writing fixed-length strings to a variable-length string attribute");
    PyObject *values = esdm_strings_to_py(buf, n);
    PyObject *done = values ? esdm_call("attribute_write_strings", "(ON)", attr->py, values) : NULL;
    Py_XDECREF(done);
    return done ? 0 : -1;
}

static herr_t
read_strings(esdm_obj_t *attr, hid_t mem_type_id, void *buf, size_t n)
{
    if (!esdm_type_is_vlen_string(mem_type_id))
        return esdm_unsupported("reading a variable-length string attribute as fixed-length strings");
    PyObject *values = esdm_call("attribute_read_strings", "(O)", attr->py);
    if (!values)
        return -1;
    herr_t status = esdm_strings_from_py(values, buf, n);
    Py_DECREF(values);
    return status;
}

/* The core reads into (writable) or writes from size bytes of data. */
static herr_t
call_core(esdm_obj_t *attr, const char *function, void *data, size_t size, bool writable)
{
    PyObject *view = esdm_view(data, size, writable);
    if (!view)
        return -1;
    PyObject *result = esdm_call(function, "(OO)", attr->py, view);
    Py_XDECREF(result);
    return esdm_view_release(view, function) < 0 || !result ? -1 : 0;
}

/* Fixed-size values, converted between the application's type and the
 * attribute's where they differ (the core holds them in the latter). As in
 * HDF5, compound members the memory type lacks keep their values: the
 * stored ones on write, the application's on read. */
static herr_t
transfer_values(esdm_obj_t *attr, hid_t mem_type_id, void *buf, size_t n, hid_t dxpl_id,
                bool writing)
{
    const char *function = writing ? "attribute_write" : "attribute_read";
    size_t      mem_size = H5Tget_size(mem_type_id), own_size = H5Tget_size(attr->type_id);
    htri_t      same     = H5Tequal(mem_type_id, attr->type_id);
    char       *scratch = NULL, *stored = NULL;
    herr_t      status = -1;

    if (same < 0)
        return -1;
    if (same)
        return call_core(attr, function, buf, n * own_size, !writing);
    if (!(scratch = malloc(n * (mem_size > own_size ? mem_size : own_size) + 1)) ||
        (writing && !(stored = malloc(n * own_size + 1)))) {
        esdm_error(esdm_err_argument, "esdm VOL: out of memory converting an attribute");
        goto done;
    }
    if (writing) {
        memcpy(scratch, buf, n * mem_size);
        if (call_core(attr, "attribute_read", stored, n * own_size, true) < 0 ||
            esdm_type_convert(mem_type_id, attr->type_id, n, scratch, stored, dxpl_id) < 0 ||
            call_core(attr, function, scratch, n * own_size, false) < 0)
            goto done;
    }
    else {
        if (call_core(attr, function, scratch, n * own_size, true) < 0 ||
            esdm_type_convert(attr->type_id, mem_type_id, n, scratch, buf, dxpl_id) < 0)
            goto done;
        memcpy(buf, scratch, n * mem_size);
    }
    status = 0;
done:
    free(stored);
    free(scratch);
    return status;
}

/* Values holding references or sequences, as trees (values.c); only in the
 * attribute's own type, since converting them would allocate on the way. */
static herr_t
transfer_trees(esdm_obj_t *attr, hid_t mem_type_id, void *buf, size_t n, bool writing)
{
    htri_t    same = H5Tequal(mem_type_id, attr->type_id);
    PyObject *trees, *done = NULL;
    herr_t    status = -1;

    if (same <= 0)
        return same < 0 ? -1
                        : esdm_unsupported("converting references or variable-length sequences to "
                                           "another type than the attribute's");
    if (writing) {
        if ((trees = esdm_values_to_py(attr->type_id, buf, n)))
            done = esdm_call("attribute_write_values", "(ON)", attr->py, trees);
        status = done ? 0 : -1;
        Py_XDECREF(done);
    }
    else if ((trees = esdm_call("attribute_read_values", "(O)", attr->py))) {
        status = esdm_values_from_py(attr->type_id, trees, buf, n, attr->file);
        Py_DECREF(trees);
    }
    return status;
}

/* H5Awrite and H5Aread: the same steps, in either direction. */
static herr_t
attr_io(esdm_obj_t *attr, hid_t mem_type_id, void *buf, hid_t dxpl_id, bool writing)
{
    PyGILState_STATE gil;
    size_t           n;
    herr_t           status = -1;

    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *info = describe(attr, &n);
    if (info) {
        if (n == 0)
            status = 0; /* no elements: nothing moves */
        else if (esdm_type_needs_tree(attr->type_id))
            status = transfer_trees(attr, mem_type_id, buf, n, writing);
        else if (!esdm_type_is_vlen_string(attr->type_id))
            status = transfer_values(attr, mem_type_id, buf, n, dxpl_id, writing);
        else if (writing)
            status = write_strings(attr, mem_type_id, buf, n);
        else
            status = read_strings(attr, mem_type_id, buf, n);
        Py_DECREF(info);
    }
    esdm_leave(gil);
    return status;
}

herr_t
esdm_attr_write(void *obj, hid_t mem_type_id, const void *buf, hid_t dxpl_id, void **req)
{
    (void)req;
    return attr_io(obj, mem_type_id, (void *)buf, dxpl_id, true);
}

herr_t
esdm_attr_read(void *obj, hid_t mem_type_id, void *buf, hid_t dxpl_id, void **req)
{
    (void)req;
    return attr_io(obj, mem_type_id, buf, dxpl_id, false);
}

/* ---- get ------------------------------------------------------------------------------------- */

static herr_t
attr_info(esdm_obj_t *attr, H5A_info_t *info)
{
    size_t    n;
    PyObject *described = describe(attr, &n);
    if (!described)
        return -1;
    Py_DECREF(described);
    info->corder_valid = false; /* creation order is not tracked */
    info->corder       = 0;
    info->cset         = esdm_type_is_vlen_string(attr->type_id) ? H5T_CSET_UTF8 : H5T_CSET_ASCII;
    info->data_size    = (hsize_t)(n * H5Tget_size(attr->type_id));
    return 0;
}

/* H5Aget_name of an open attribute, or H5Aget_name_by_idx through the object holding it. */
static herr_t
attr_name(esdm_obj_t *obj, H5VL_attr_get_name_args_t *args)
{
    bool      by_idx = args->loc_params.type == H5VL_OBJECT_BY_IDX;
    PyObject *name   = by_idx ? esdm_by_idx(obj, &args->loc_params.loc_data.loc_by_idx, "attribute_at")
                              : PyObject_GetAttrString(obj->py, "name");
    const char *text = name ? PyUnicode_AsUTF8(name) : NULL;
    if (!text) {
        Py_XDECREF(name);
        esdm_python_error("H5Aget_name");
        return -1;
    }
    size_t len = strlen(text);
    if (args->buf && args->buf_size) {
        size_t copied = len < args->buf_size - 1 ? len : args->buf_size - 1;
        memcpy(args->buf, text, copied);
        args->buf[copied] = '\0';
    }
    *args->attr_name_len = len;
    Py_DECREF(name);
    return 0;
}

/* H5A_info_t of the attribute name (a str, stolen; NULL after a failure) of the
 * object base names relative to where. GIL held. */
static herr_t
attr_info_of(esdm_obj_t *where, const char *base, PyObject *name, H5A_info_t *ainfo)
{
    PyObject *py = name ? esdm_call("attribute_open", "(OsN)", where->py, base, name) : NULL;
    if (!py)
        return -1;
    esdm_obj_t probe  = {.kind = ESDM_ATTR, .file = where->file, .py = py};
    herr_t     status = -1;
    if ((probe.type_id = stored_type(&probe)) >= 0) {
        status = attr_info(&probe, ainfo);
        esdm_close(probe.type_id);
    }
    Py_DECREF(py);
    return status;
}

/* H5Aget_info of an open attribute, or _by_name or _by_idx through the object holding it. */
static herr_t
get_info(esdm_obj_t *obj, H5VL_attr_get_info_args_t *args)
{
    const H5VL_loc_params_t *loc = &args->loc_params;
    if (loc->type == H5VL_OBJECT_BY_SELF && !args->attr_name)
        return attr_info(obj, args->ainfo);
    if (loc->type == H5VL_OBJECT_BY_IDX)
        return attr_info_of(obj, loc->loc_data.loc_by_idx.name,
                            esdm_by_idx(obj, &loc->loc_data.loc_by_idx, "attribute_at"), args->ainfo);
    const char *base = esdm_loc_name(loc, "H5Aget_info_by_name");
    return base ? attr_info_of(obj, base, PyUnicode_FromString(args->attr_name), args->ainfo) : -1;
}

herr_t
esdm_attr_get(void *obj, H5VL_attr_get_args_t *args, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *attr = obj;
    PyGILState_STATE gil;
    herr_t           status = -1;
    size_t           n;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_ATTR_GET_ACPL:
            return (args->args.get_acpl.acpl_id = H5Pcreate(H5P_ATTRIBUTE_CREATE)) < 0 ? -1 : 0;
        case H5VL_ATTR_GET_TYPE:
            return (args->args.get_type.type_id = H5Tcopy(attr->type_id)) < 0 ? -1 : 0;
        case H5VL_ATTR_GET_SPACE:
        case H5VL_ATTR_GET_STORAGE_SIZE:
        case H5VL_ATTR_GET_INFO:
        case H5VL_ATTR_GET_NAME:
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: attribute query %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
    if (esdm_enter(&gil) < 0)
        return -1;
    switch (args->op_type) {
        case H5VL_ATTR_GET_SPACE: {
            PyObject *info = describe(attr, NULL);
            args->args.get_space.space_id =
                info ? esdm_space_from_py(PyTuple_GET_ITEM(info, 1), NULL) : H5I_INVALID_HID;
            status = args->args.get_space.space_id < 0 ? -1 : 0;
            Py_XDECREF(info);
            break;
        }
        case H5VL_ATTR_GET_STORAGE_SIZE: {
            PyObject *info = describe(attr, &n);
            if (info) {
                *args->args.get_storage_size.data_size = (hsize_t)(n * H5Tget_size(attr->type_id));
                status                                 = 0;
                Py_DECREF(info);
            }
            break;
        }
        case H5VL_ATTR_GET_INFO:
            status = get_info(attr, &args->args.get_info);
            break;
        case H5VL_ATTR_GET_NAME:
            status = attr_name(attr, &args->args.get_name);
            break;
        default:
            break;
    }
    esdm_leave(gil);
    return status;
}

/* ---- specific: exists, delete, rename, iterate ------------------------------------------------------- */

static herr_t
iterate(esdm_obj_t *where, const char *base, H5VL_attr_iterate_args_t *args)
{
    bool   creation_order = args->idx_type == H5_INDEX_CRT_ORDER;
    herr_t status         = -1;

    if (!creation_order && args->idx_type != H5_INDEX_NAME)
        return esdm_unsupported("iterating attributes by this index");
    PyObject *names =
        esdm_call("attribute_names", "(OsO)", where->py, base, creation_order ? Py_True : Py_False);
    esdm_obj_t *self  = names ? esdm_open_node(where, esdm_name(base, "."), H5P_DEFAULT) : NULL;
    if (!self)
        goto done;
    /* The callback gets an ID for the object whose attributes these are. */
    hid_t self_id = H5VLwrap_register(self, self->kind == ESDM_DATASET ? H5I_DATASET : H5I_GROUP);
    if (self_id < 0) {
        esdm_obj_release(self);
        goto done;
    }
    Py_ssize_t count = PyList_GET_SIZE(names);
    hsize_t    start = args->idx ? *args->idx : 0;
    status           = 0;
    for (hsize_t k = start; k < (hsize_t)count && status == 0; k++) {
        Py_ssize_t index = args->order == H5_ITER_DEC ? count - 1 - (Py_ssize_t)k : (Py_ssize_t)k;
        const char *name = PyUnicode_AsUTF8(PyList_GET_ITEM(names, index));
        PyObject   *py   = name ? esdm_call("attribute_open", "(Oss)", where->py, base, name) : NULL;
        esdm_obj_t  probe = {.kind = ESDM_ATTR, .file = where->file, .py = py};
        H5A_info_t  info;
        status = -1;
        if (py && (probe.type_id = stored_type(&probe)) >= 0) {
            if (attr_info(&probe, &info) == 0) {
                info.corder_valid = creation_order;
                info.corder       = creation_order ? (int64_t)index : 0;
                /* The GIL stays held: h5py's callbacks expect it, and a C
                 * callback calling HDF5 re-enters it on this same thread. */
                status = args->op(self_id, name, &info, args->op_data);
                if (args->idx)
                    *args->idx = k + 1;
            }
            esdm_close(probe.type_id);
        }
        Py_XDECREF(py);
    }
    esdm_close(self_id);
done:
    Py_XDECREF(names);
    return status;
}

/* H5Adelete_by_idx: the bridge's answer, or NULL with an HDF5 error. GIL held. */
static PyObject *
delete_by_idx(esdm_obj_t *where, const char *base, const H5VL_attr_delete_by_idx_args_t *args)
{
    H5VL_loc_by_idx_t by   = {base, args->idx_type, args->order, args->n, H5P_DEFAULT};
    PyObject         *name = esdm_by_idx(where, &by, "attribute_at");
    return name ? esdm_call("attribute_delete", "(OsN)", where->py, base, name) : NULL;
}

herr_t
esdm_attr_specific(void *obj, const H5VL_loc_params_t *loc, H5VL_attr_specific_args_t *args,
                   hid_t dxpl_id, void **req)
{
    esdm_obj_t      *where = obj;
    PyGILState_STATE gil;
    PyObject        *answer = NULL;
    herr_t           status = -1;
    const char      *base   = esdm_loc_name(loc, "an attribute operation");
    (void)dxpl_id, (void)req;

    if (!base || esdm_enter(&gil) < 0)
        return -1;
    switch (args->op_type) {
        case H5VL_ATTR_EXISTS:
            answer = esdm_call("attribute_exists", "(Oss)", where->py, base, args->args.exists.name);
            if (answer) {
                *args->args.exists.exists = PyObject_IsTrue(answer) == 1;
                status                    = 0;
            }
            break;
        case H5VL_ATTR_DELETE:
            answer = esdm_call("attribute_delete", "(Oss)", where->py, base, args->args.del.name);
            status = answer ? 0 : -1;
            break;
        case H5VL_ATTR_DELETE_BY_IDX:
            answer = delete_by_idx(where, base, &args->args.delete_by_idx);
            status = answer ? 0 : -1;
            break;
        case H5VL_ATTR_RENAME:
            answer = esdm_call("attribute_rename", "(Osss)", where->py, base, args->args.rename.old_name,
                               args->args.rename.new_name);
            status = answer ? 0 : -1;
            break;
        case H5VL_ATTR_ITER:
            status = iterate(where, base, &args->args.iterate);
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: attribute operation %d is not supported yet",
                       (int)args->op_type);
            break;
    }
    Py_XDECREF(answer);
    esdm_leave(gil);
    return status;
}

herr_t
esdm_attr_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req)
{
    (void)obj, (void)dxpl_id, (void)req;
    esdm_error(esdm_err_unsupported, "esdm VOL: native attribute operation %d is not supported yet",
               args->op_type);
    return -1;
}
