/*
 * H5L: the links of the namespace. Every group and dataset has exactly one
 * name in an ESDM container, so each is one hard link; creating extra
 * hard, soft or external links is not supported yet.
 */
#include "esdm_vol.h"

#include <string.h>

/* ---- shared with object.c ---------------------------------------------------------------- */

/* (kind, path, number of attributes) of the object at name. GIL held. */
static PyObject *
info_at(esdm_obj_t *where, const char *name)
{
    return esdm_call("object_info", "(Os)", where->py, name);
}

static void
fill_link_info(esdm_obj_t *where, const char *path, H5L_info2_t *info)
{
    memset(info, 0, sizeof *info);
    info->type         = H5L_TYPE_HARD;
    info->corder_valid = false; /* creation order is not tracked */
    info->cset         = H5T_CSET_UTF8;
    esdm_token_of(where->file->name, path, &info->u.token);
}

/* ---- callbacks ------------------------------------------------------------------------------ */

herr_t
esdm_link_create(H5VL_link_create_args_t *args, void *obj, const H5VL_loc_params_t *loc,
                 hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id, void **req)
{
    (void)obj, (void)loc, (void)lcpl_id, (void)lapl_id, (void)dxpl_id, (void)req;
    switch (args->op_type) {
        case H5VL_LINK_CREATE_HARD:
            return esdm_unsupported("creating a hard link (H5Lcreate_hard)");
        case H5VL_LINK_CREATE_SOFT:
            return esdm_unsupported("creating a soft link (H5Lcreate_soft)");
        default:
            return esdm_unsupported("creating an external or user-defined link");
    }
}

herr_t
esdm_link_copy(void *src_obj, const H5VL_loc_params_t *loc1, void *dst_obj,
               const H5VL_loc_params_t *loc2, hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id, void **req)
{
    (void)src_obj, (void)loc1, (void)dst_obj, (void)loc2, (void)lcpl_id, (void)lapl_id;
    (void)dxpl_id, (void)req;
    return esdm_unsupported("copying a link (H5Lcopy)");
}

herr_t
esdm_link_move(void *src_obj, const H5VL_loc_params_t *loc1, void *dst_obj,
               const H5VL_loc_params_t *loc2, hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id, void **req)
{
    (void)src_obj, (void)loc1, (void)dst_obj, (void)loc2, (void)lcpl_id, (void)lapl_id;
    (void)dxpl_id, (void)req;
    return esdm_unsupported("moving or renaming a link (H5Lmove)");
}

static herr_t
link_name_by_idx(esdm_obj_t *where, const H5VL_loc_params_t *loc, H5VL_link_get_args_t *args)
{
    const H5VL_loc_by_idx_t *by = &loc->loc_data.loc_by_idx;
    if (by->idx_type != H5_INDEX_NAME)
        return esdm_unsupported("addressing links by creation order (not tracked)");
    PyObject *members = esdm_call("group_members", "(Os)", where->py, by->name);
    if (!members)
        return -1;
    Py_ssize_t count = PyList_GET_SIZE(members);
    herr_t     status = -1;
    if (by->n >= (hsize_t)count)
        esdm_error(esdm_err_argument, "esdm VOL: %s has %zd links, not %llu", by->name, count,
                   (unsigned long long)by->n + 1);
    else {
        Py_ssize_t  index = by->order == H5_ITER_DEC ? count - 1 - (Py_ssize_t)by->n : (Py_ssize_t)by->n;
        const char *name  = PyUnicode_AsUTF8(PyList_GET_ITEM(members, index));
        if (name) {
            size_t len = strlen(name);
            if (args->args.get_name.name && args->args.get_name.name_size) {
                size_t copied = len < args->args.get_name.name_size - 1 ? len
                                                                        : args->args.get_name.name_size - 1;
                memcpy(args->args.get_name.name, name, copied);
                args->args.get_name.name[copied] = '\0';
            }
            *args->args.get_name.name_len = len;
            status                        = 0;
        }
        else
            esdm_python_error("H5Lget_name_by_idx");
    }
    Py_DECREF(members);
    return status;
}

herr_t
esdm_link_get(void *obj, const H5VL_loc_params_t *loc, H5VL_link_get_args_t *args, hid_t dxpl_id,
              void **req)
{
    PyGILState_STATE gil;
    herr_t           status = -1;
    (void)dxpl_id, (void)req;

    if (args->op_type == H5VL_LINK_GET_VAL)
        return esdm_unsupported("reading a soft or external link's value (no such links)");
    if (esdm_enter(&gil) < 0)
        return -1;
    if (args->op_type == H5VL_LINK_GET_NAME && loc->type == H5VL_OBJECT_BY_IDX)
        status = link_name_by_idx(obj, loc, args);
    else if (args->op_type == H5VL_LINK_GET_INFO && loc->type == H5VL_OBJECT_BY_NAME) {
        PyObject *info = info_at(obj, loc->loc_data.loc_by_name.name);
        if (info && PyLong_AsLong(PyTuple_GET_ITEM(info, 0)) != ESDM_NONE) {
            fill_link_info(obj, PyUnicode_AsUTF8(PyTuple_GET_ITEM(info, 1)), args->args.get_info.linfo);
            status = 0;
        }
        else if (info)
            esdm_error(esdm_err_argument, "esdm VOL: no link named %s", loc->loc_data.loc_by_name.name);
        Py_XDECREF(info);
    }
    else
        esdm_unsupported("this link query (by index or by token)");
    esdm_leave(gil);
    return status;
}

/* H5Literate2 and H5Lvisit2. */
static herr_t
iterate(esdm_obj_t *where, const char *base, H5VL_link_iterate_args_t *args)
{
    herr_t status = -1;

    if (args->idx_type != H5_INDEX_NAME)
        return esdm_unsupported("iterating links in creation order (not tracked)");
    PyObject   *links = esdm_call("link_list", "(OsO)", where->py, base,
                                  args->recursive ? Py_True : Py_False);
    esdm_obj_t *group = links ? esdm_open_node(where, esdm_name(base, "."), H5P_DEFAULT) : NULL;
    if (!group)
        goto done;
    if (group->kind != ESDM_GROUP) {
        esdm_obj_release(group);
        esdm_error(esdm_err_argument, "esdm VOL: links are iterated in groups, %s is a dataset", base);
        goto done;
    }
    /* The callback gets an ID for the group being iterated. */
    hid_t group_id = H5VLwrap_register(group, H5I_GROUP);
    if (group_id < 0) {
        esdm_obj_release(group);
        goto done;
    }
    Py_ssize_t count = PyList_GET_SIZE(links);
    hsize_t    start = args->idx_p && !args->recursive ? *args->idx_p : 0;
    status           = 0;
    for (hsize_t k = start; k < (hsize_t)count && status == 0; k++) {
        Py_ssize_t  index = args->order == H5_ITER_DEC ? count - 1 - (Py_ssize_t)k : (Py_ssize_t)k;
        PyObject   *link  = PyList_GET_ITEM(links, index);
        const char *name  = PyUnicode_AsUTF8(PyTuple_GET_ITEM(link, 0));
        const char *path  = PyUnicode_AsUTF8(PyTuple_GET_ITEM(link, 1));
        H5L_info2_t info;
        if (!name || !path) {
            esdm_python_error("iterating links");
            status = -1;
            break;
        }
        fill_link_info(where, path, &info);
        /* GIL held: h5py's callbacks expect it, C callbacks re-enter on this thread */
        status = args->op(group_id, name, &info, args->op_data);
        if (args->idx_p && !args->recursive)
            *args->idx_p = k + 1;
    }
    esdm_close(group_id);
done:
    Py_XDECREF(links);
    return status;
}

herr_t
esdm_link_specific(void *obj, const H5VL_loc_params_t *loc, H5VL_link_specific_args_t *args,
                   hid_t dxpl_id, void **req)
{
    PyGILState_STATE gil;
    herr_t           status = -1;
    (void)dxpl_id, (void)req;

    if (args->op_type == H5VL_LINK_DELETE)
        return esdm_unsupported("deleting a link (H5Ldelete)");
    const char *name = esdm_loc_name(loc, "a link operation");
    if (!name || esdm_enter(&gil) < 0)
        return -1;
    switch (args->op_type) {
        case H5VL_LINK_EXISTS: {
            PyObject *info = info_at(obj, name);
            if (info) {
                *args->args.exists.exists = PyLong_AsLong(PyTuple_GET_ITEM(info, 0)) != ESDM_NONE;
                status                    = 0;
                Py_DECREF(info);
            }
            break;
        }
        case H5VL_LINK_ITER:
            status = iterate(obj, name, &args->args.iterate);
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: link operation %d is not supported yet",
                       (int)args->op_type);
            break;
    }
    esdm_leave(gil);
    return status;
}

herr_t
esdm_link_optional(void *obj, const H5VL_loc_params_t *loc, H5VL_optional_args_t *args,
                   hid_t dxpl_id, void **req)
{
    (void)obj, (void)loc, (void)dxpl_id, (void)req;
    esdm_error(esdm_err_unsupported, "esdm VOL: native link operation %d is not supported yet",
               args->op_type);
    return -1;
}
