/*
 * H5G: groups of the container's namespace. Creation is collective in the
 * core (every rank must create the same group), as in parallel HDF5.
 */
#include "esdm_vol.h"

#include <H5VLnative.h>
#include <string.h>

void *
esdm_group_create(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t lcpl_id,
                  hid_t gcpl_id, hid_t gapl_id, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *where = obj, *group = NULL;
    PyGILState_STATE gil;
    const char      *base  = esdm_loc_name(loc, "creating a group");
    unsigned         order = 0;
    (void)lcpl_id, (void)dxpl_id, (void)req;

    /* Missing parents are created, as with H5Pset_create_intermediate_group. */
    if (!base || !esdm_plist_ok(gapl_id, H5P_GROUP_ACCESS, "creating a group") ||
        H5Pget_link_creation_order(gcpl_id, &order) < 0 || esdm_enter(&gil) < 0)
        return NULL;
    PyObject *py = esdm_call("group_create", "(ONI)", where->py, esdm_new_name(base, name), order);
    if (py)
        group = esdm_obj_new(ESDM_GROUP, where->file, py);
    esdm_leave(gil);
    return group;
}

void *
esdm_group_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t gapl_id,
                hid_t dxpl_id, void **req)
{
    esdm_obj_t      *group = NULL;
    PyGILState_STATE gil;
    const char      *base = esdm_loc_name(loc, "opening a group");
    (void)gapl_id, (void)dxpl_id, (void)req;

    if (!base || esdm_enter(&gil) < 0)
        return NULL;
    group = esdm_open_node(obj, esdm_name(base, name), H5P_DEFAULT);
    if (group && group->kind != ESDM_GROUP) {
        esdm_error(esdm_err_argument, "esdm VOL: %s is a dataset, not a group", name);
        esdm_obj_release(group);
        group = NULL;
    }
    esdm_leave(gil);
    return group;
}

/* H5Gget_create_plist: the creation order tracking the group was created with
 * (the order is kept for every group; this is how HDF5 lists it by default). */
static herr_t
get_gcpl(esdm_obj_t *group, hid_t *gcpl_id)
{
    PyGILState_STATE gil;
    if ((*gcpl_id = H5Pcreate(H5P_GROUP_CREATE)) < 0 || esdm_enter(&gil) < 0)
        return -1;
    PyObject *order  = esdm_call("group_creation_order", "(Os)", group->py, ".");
    herr_t    status = order ? 0 : -1;
    /* attributes are kept in creation order always; a group that tracks its
     * links' says so of its attributes too (h5py's track_order asks both, and
     * lists attributes by what the group reports) */
    unsigned flags = order ? (unsigned)PyLong_AsUnsignedLong(order) : 0;
    if (flags && (H5Pset_link_creation_order(*gcpl_id, flags) < 0 ||
                  H5Pset_attr_creation_order(*gcpl_id, flags) < 0))
        status = -1;
    Py_XDECREF(order);
    esdm_leave(gil);
    if (status < 0) {
        esdm_close(*gcpl_id);
        *gcpl_id = H5I_INVALID_HID;
    }
    return status;
}

herr_t
esdm_group_get(void *obj, H5VL_group_get_args_t *args, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *group = obj;
    PyGILState_STATE gil;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_GROUP_GET_GCPL:
            return get_gcpl(group, &args->args.get_gcpl.gcpl_id);
        case H5VL_GROUP_GET_INFO: {
            H5G_info_t *info = args->args.get_info.ginfo;
            if (esdm_enter(&gil) < 0)
                return -1;
            PyObject *name  = esdm_loc_str(group, &args->args.get_info.loc_params, "H5Gget_info");
            PyObject *found = name ? esdm_call("group_info", "(OO)", group->py, name) : NULL;
            if (found) {
                info->storage_type = H5G_STORAGE_TYPE_COMPACT;
                info->nlinks       = (hsize_t)PyLong_AsLongLong(PyTuple_GET_ITEM(found, 0));
                info->max_corder   = PyLong_AsLongLong(PyTuple_GET_ITEM(found, 1));
                info->mounted      = false;
            }
            Py_XDECREF(found);
            Py_XDECREF(name);
            esdm_leave(gil);
            return found ? 0 : -1;
        }
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: group query %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

herr_t
esdm_group_specific(void *obj, H5VL_group_specific_args_t *args, hid_t dxpl_id, void **req)
{
    (void)obj, (void)dxpl_id, (void)req;
    switch (args->op_type) {
        case H5VL_GROUP_FLUSH:
        case H5VL_GROUP_REFRESH:
            /* Groups are namespace entries, published with the container's
             * next commit (collective, so not something H5Gflush can do). */
            return 0;
        case H5VL_GROUP_MOUNT:
        case H5VL_GROUP_UNMOUNT:
            return esdm_unsupported("mounting a file (H5Fmount/H5Funmount)");
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: group operation %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

/* H5Gget_objinfo (HDF5 1.6), which h5py uses for object identity (ObjectID.fileno,
 * hash, ==): file and object numbers from the tokens, the link's kind. GIL held. */
static herr_t
get_objinfo(esdm_obj_t *where, H5VL_native_group_get_objinfo_t *args)
{
    H5G_stat_t *stat = args->statbuf;
    PyObject   *name = esdm_loc_str(where, &args->loc_params, "H5Gget_objinfo");
    PyObject   *link = name ? esdm_call("link_info", "(OO)", where->py, name) : NULL;
    PyObject   *info = NULL;
    herr_t      status = -1;

    if (!link)
        goto done;
    bool soft = PyLong_AsLong(PyTuple_GET_ITEM(link, 1)) != 0;
    if (stat)
        memset(stat, 0, sizeof *stat);
    if (soft && !args->follow_link) {
        if (stat) {
            stat->type    = H5G_LINK;
            stat->linklen = strlen(PyUnicode_AsUTF8(PyTuple_GET_ITEM(link, 2))) + 1;
        }
        status = 0;
        goto done;
    }
    if (!(info = esdm_call("object_info", "(OO)", where->py, name)))
        goto done;
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(info, 0));
    if (kind == ESDM_NONE) {
        esdm_error(esdm_err_argument, "esdm VOL: %s is a dangling soft link", PyUnicode_AsUTF8(name));
        goto done;
    }
    if (stat) {
        H5O_token_t   token;
        unsigned long fileno[2] = {esdm_file_number(where->file->name), 0};
        esdm_token_of(PyUnicode_AsUTF8(PyTuple_GET_ITEM(info, 1)), &token);
        memcpy(stat->fileno, fileno, sizeof stat->fileno);
        memcpy(stat->objno, token.__data, sizeof stat->objno);
        stat->nlink = (unsigned)PyLong_AsLong(PyTuple_GET_ITEM(info, 3));
        stat->type  = kind == ESDM_DATASET ? H5G_DATASET : kind == ESDM_DATATYPE ? H5G_TYPE : H5G_GROUP;
    }
    status = 0;
done:
    Py_XDECREF(info);
    Py_XDECREF(link);
    Py_XDECREF(name);
    return status;
}

herr_t
esdm_group_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req)
{
    PyGILState_STATE gil;
    herr_t           status;
    (void)dxpl_id, (void)req;

    if (args->op_type != H5VL_NATIVE_GROUP_GET_OBJINFO) {
        esdm_error(esdm_err_unsupported,
                   "esdm VOL: native group operation %d (H5Giterate, ...) is not supported yet",
                   args->op_type);
        return -1;
    }
    if (esdm_enter(&gil) < 0)
        return -1;
    status = get_objinfo(obj, &((H5VL_native_group_optional_args_t *)args->args)->get_objinfo);
    esdm_leave(gil);
    return status;
}
