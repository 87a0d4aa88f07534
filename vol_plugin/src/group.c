/*
 * H5G: groups of the container's namespace. Creation is collective in the
 * core (every rank must create the same group), as in parallel HDF5.
 */
#include "esdm_vol.h"

void *
esdm_group_create(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t lcpl_id,
                  hid_t gcpl_id, hid_t gapl_id, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *where = obj, *group = NULL;
    PyGILState_STATE gil;
    const char      *base = esdm_loc_name(loc, "creating a group");
    (void)lcpl_id, (void)gcpl_id, (void)gapl_id, (void)dxpl_id, (void)req;

    if (!name) {
        esdm_unsupported("an anonymous group (H5Gcreate_anon)");
        return NULL;
    }
    /* Missing parents are created, as with H5Pset_create_intermediate_group. */
    if (!base || esdm_enter(&gil) < 0)
        return NULL;
    PyObject *py = esdm_call("group_create", "(ON)", where->py, esdm_name(base, name));
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

herr_t
esdm_group_get(void *obj, H5VL_group_get_args_t *args, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *group = obj;
    PyGILState_STATE gil;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_GROUP_GET_GCPL:
            return (args->args.get_gcpl.gcpl_id = H5Pcreate(H5P_GROUP_CREATE)) < 0 ? -1 : 0;
        case H5VL_GROUP_GET_INFO: {
            H5G_info_t *info = args->args.get_info.ginfo;
            const char *name = esdm_loc_name(&args->args.get_info.loc_params, "H5Gget_info");
            if (!name || esdm_enter(&gil) < 0)
                return -1;
            PyObject *members = esdm_call("group_members", "(Os)", group->py, name);
            if (members) {
                info->storage_type = H5G_STORAGE_TYPE_COMPACT;
                info->nlinks       = (hsize_t)PyList_Size(members);
                info->max_corder   = 0; /* creation order is not tracked */
                info->mounted      = false;
                Py_DECREF(members);
            }
            esdm_leave(gil);
            return members ? 0 : -1;
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

herr_t
esdm_group_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req)
{
    (void)obj, (void)dxpl_id, (void)req;
    esdm_error(esdm_err_unsupported,
               "esdm VOL: native group operation %d (H5Giterate, H5Gget_objinfo, ...) is not "
               "supported yet",
               args->op_type);
    return -1;
}
