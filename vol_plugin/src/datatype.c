/*
 * H5T of the VOL: named (committed) datatypes. The namespace keeps the type
 * as the bridge spells it (types.c); HDF5 rebuilds an opened one from its
 * encoding (H5Tencode), which the connector makes from that spelling.
 */
#include "esdm_vol.h"

herr_t
esdm_datatype_init(esdm_obj_t *type)
{
    PyObject *spelling = esdm_call("datatype_describe", "(O)", type->py);
    if (!spelling)
        return -1;
    type->type_id = esdm_type_from_py(spelling);
    Py_DECREF(spelling);
    return type->type_id < 0 ? -1 : 0;
}

void *
esdm_datatype_commit(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t type_id,
                     hid_t lcpl_id, hid_t tcpl_id, hid_t tapl_id, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *where = obj, *type = NULL;
    PyGILState_STATE gil;
    const char      *base = esdm_loc_name(loc, "committing a datatype");
    (void)lcpl_id, (void)dxpl_id, (void)req;

    if (!base || !esdm_plist_ok(tcpl_id, H5P_DATATYPE_CREATE, "committing a datatype") ||
        !esdm_plist_ok(tapl_id, H5P_DATATYPE_ACCESS, "committing a datatype") ||
        esdm_enter(&gil) < 0)
        return NULL;
    PyObject *spelling = esdm_type_to_py(type_id);
    PyObject *py       = spelling ? esdm_call("datatype_commit", "(ONO)", where->py,
                                              esdm_new_name(base, name), spelling)
                                  : NULL;
    if (py && (type = esdm_obj_new(ESDM_DATATYPE, where->file, py)) &&
        (type->type_id = H5Tcopy(type_id)) < 0) {
        esdm_obj_release(type);
        type = NULL;
    }
    Py_XDECREF(spelling);
    esdm_leave(gil);
    return type;
}

void *
esdm_datatype_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t tapl_id,
                   hid_t dxpl_id, void **req)
{
    esdm_obj_t      *type = NULL;
    PyGILState_STATE gil;
    const char      *base = esdm_loc_name(loc, "opening a datatype");
    (void)tapl_id, (void)dxpl_id, (void)req;

    if (!base || esdm_enter(&gil) < 0)
        return NULL;
    type = esdm_open_node(obj, esdm_name(base, name), H5P_DEFAULT);
    if (type && type->kind != ESDM_DATATYPE) {
        esdm_error(esdm_err_argument, "esdm VOL: %s is not a committed datatype", name);
        esdm_obj_release(type);
        type = NULL;
    }
    esdm_leave(gil);
    return type;
}

/* H5Tencode of the type into buf (size bytes; NULL asks for the size). */
static herr_t
encode(esdm_obj_t *type, void *buf, size_t size, size_t *needed)
{
    size_t n = buf ? size : 0;
    if (H5Tencode(type->type_id, buf, &n) < 0)
        return -1;
    *needed = n;
    return 0;
}

herr_t
esdm_datatype_get(void *obj, H5VL_datatype_get_args_t *args, hid_t dxpl_id, void **req)
{
    esdm_obj_t *type = obj;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_DATATYPE_GET_BINARY_SIZE:
            return encode(type, NULL, 0, args->args.get_binary_size.size);
        case H5VL_DATATYPE_GET_BINARY: {
            size_t needed;
            return encode(type, args->args.get_binary.buf, args->args.get_binary.buf_size, &needed);
        }
        case H5VL_DATATYPE_GET_TCPL:
            return (args->args.get_tcpl.tcpl_id = H5Pcreate(H5P_DATATYPE_CREATE)) < 0 ? -1 : 0;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: datatype query %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

herr_t
esdm_datatype_specific(void *obj, H5VL_datatype_specific_args_t *args, hid_t dxpl_id, void **req)
{
    (void)obj, (void)dxpl_id, (void)req;
    switch (args->op_type) {
        case H5VL_DATATYPE_FLUSH:
        case H5VL_DATATYPE_REFRESH:
            return 0; /* published by the container's next commit (H5Fflush) */
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: datatype operation %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

herr_t
esdm_datatype_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req)
{
    (void)obj, (void)dxpl_id, (void)req;
    esdm_error(esdm_err_unsupported, "esdm VOL: native datatype operation %d is not supported yet",
               args->op_type);
    return -1;
}
