/*
 * H5L: the links of the namespace (esdm_hpc/namespace.py). Every object has
 * its own name; hard links are more names for it (same identity, same
 * token), soft links hold a path followed when used. Creating and deleting
 * links is collective, as creating objects is; creation order is tracked
 * for every group. External and user-defined links are not supported.
 */
#include "esdm_vol.h"

#include <string.h>

/* ---- locations ------------------------------------------------------------------------------ */

PyObject *
esdm_idx_name(esdm_obj_t *where, const H5VL_loc_by_idx_t *by)
{
    if (!esdm_plist_ok(by->lapl_id, H5P_LINK_ACCESS, "a link by index"))
        return NULL;
    return esdm_by_idx(where, by, "link_at");
}

PyObject *
esdm_loc_str(esdm_obj_t *where, const H5VL_loc_params_t *loc, const char *operation)
{
    if (loc->type == H5VL_OBJECT_BY_IDX)
        return esdm_idx_name(where, &loc->loc_data.loc_by_idx);
    const char *name = esdm_loc_name(loc, operation);
    PyObject   *str  = name ? PyUnicode_FromString(name) : NULL;
    if (name && !str)
        esdm_python_error(operation);
    return str;
}

/* H5L_info2_t of a bridge link record (name, type, identity or value, creation order):
 * the value is a str for hard and soft links, bytes for external and user-defined ones. */
static herr_t
fill_link_info(esdm_obj_t *where, PyObject *record, H5L_info2_t *info)
{
    long      type   = PyLong_AsLong(PyTuple_GET_ITEM(record, 1));
    PyObject *value  = PyTuple_GET_ITEM(record, 2);
    long long corder = PyLong_AsLongLong(PyTuple_GET_ITEM(record, 3));
    if (PyErr_Occurred()) {
        esdm_python_error("link info");
        return -1;
    }
    memset(info, 0, sizeof *info);
    info->type         = (H5L_type_t)type;
    info->corder_valid = corder >= 0;
    info->corder       = corder >= 0 ? corder : 0;
    /* HDF5 keeps the character set the link creation list named, which h5py
     * sets to UTF-8 for names ASCII cannot spell: the same answer */
    PyObject *name = PyTuple_GET_ITEM(record, 0);
    info->cset     = PyUnicode_Check(name) && PyUnicode_IS_ASCII(name) ? H5T_CSET_ASCII : H5T_CSET_UTF8;
    if (PyBytes_Check(value)) {
        info->u.val_size = (size_t)PyBytes_GET_SIZE(value);
        return 0;
    }
    const char *target = PyUnicode_AsUTF8(value);
    if (!target) {
        esdm_python_error("link info");
        return -1;
    }
    if (info->type == H5L_TYPE_HARD)
        esdm_token_of(target, &info->u.token);
    else
        info->u.val_size = strlen(target) + 1;
    return 0;
}

/* Copy text into an application buffer of size bytes (truncated, terminated). */
static void
copy_text(const char *text, char *buf, size_t size)
{
    if (!buf || !size)
        return;
    size_t len = strlen(text);
    size_t n   = len < size - 1 ? len : size - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
}

/* H5Lget_val: a soft link's path as text, the packed value of any other as it is,
 * either cut to the application's buffer. GIL held. */
static herr_t
copy_value(PyObject *value, void *buf, size_t size)
{
    if (PyBytes_Check(value)) {
        size_t len = (size_t)PyBytes_GET_SIZE(value);
        if (buf)
            memcpy(buf, PyBytes_AS_STRING(value), len < size ? len : size);
        return 0;
    }
    const char *text = PyUnicode_AsUTF8(value);
    if (!text) {
        esdm_python_error("H5Lget_val");
        return -1;
    }
    copy_text(text, buf, size);
    return 0;
}
/* ---- callbacks ------------------------------------------------------------------------------ */

static herr_t
create_hard(esdm_obj_t *where, PyObject *name, H5VL_link_create_args_t *args)
{
    esdm_obj_t *target = args->args.hard.curr_obj ? args->args.hard.curr_obj : where;
    if (target->file != where->file) {
        esdm_error(esdm_err_argument, "esdm VOL: a hard link cannot cross files (H5Lcreate_external can)");
        return -1;
    }
    PyObject   *target_name = esdm_loc_str(target, &args->args.hard.curr_loc_params, "H5Lcreate_hard");
    if (!target_name)
        return -1;
    PyObject *done = esdm_call("link_create_hard", "(OOON)", where->py, name, target->py, target_name);
    Py_XDECREF(done);
    return done ? 0 : -1;
}

herr_t
esdm_link_create(H5VL_link_create_args_t *args, void *obj, const H5VL_loc_params_t *loc,
                 hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *where = obj;
    PyGILState_STATE gil;
    herr_t           status = -1;
    (void)lapl_id, (void)dxpl_id, (void)req;

    if (!esdm_plist_ok(lcpl_id, H5P_LINK_CREATE, "creating a link"))
        return -1;
    /* H5Lcreate_hard(loc, name, H5L_SAME_LOC, new_name) passes no object for the
     * new link: it is named from the location the target is. */
    if (!where && args->op_type == H5VL_LINK_CREATE_HARD)
        where = args->args.hard.curr_obj;
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *name = esdm_loc_str(where, loc, "creating a link");
    PyObject *done = NULL;
    if (name && args->op_type == H5VL_LINK_CREATE_HARD)
        status = create_hard(where, name, args);
    else if (name && args->op_type == H5VL_LINK_CREATE_SOFT)
        status = (done = esdm_call("link_create_soft", "(OOs)", where->py, name, args->args.soft.target)) ? 0 : -1;
    else if (name)
        status = (done = esdm_call("link_create_ud", "(OOiy#)", where->py, name, (int)args->args.ud.type,
                                   (const char *)args->args.ud.buf, (Py_ssize_t)args->args.ud.buf_size))
                     ? 0
                     : -1;
    Py_XDECREF(done);
    Py_XDECREF(name);
    esdm_leave(gil);
    return status;
}

/* H5Lcopy and H5Lmove: one of the two objects may be NULL (H5L_SAME_LOC), and then
 * both names are relative to the other. */
static herr_t
move_link(esdm_obj_t *src, const H5VL_loc_params_t *loc1, esdm_obj_t *dst, const H5VL_loc_params_t *loc2,
          bool keep_source)
{
    PyGILState_STATE gil;
    herr_t           status;
    const char      *what   = keep_source ? "H5Lcopy" : "H5Lmove";

    src = src ? src : dst;
    dst = dst ? dst : src;
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *old_name = esdm_loc_str(src, loc1, what);
    PyObject *new_name = old_name ? esdm_loc_str(dst, loc2, what) : NULL;
    status = esdm_call_between("link_move", src, old_name, dst, new_name, PyBool_FromLong(keep_source));
    esdm_leave(gil);
    return status;
}

herr_t
esdm_link_copy(void *src_obj, const H5VL_loc_params_t *loc1, void *dst_obj,
               const H5VL_loc_params_t *loc2, hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id, void **req)
{
    (void)lcpl_id, (void)lapl_id, (void)dxpl_id, (void)req;
    return move_link(src_obj, loc1, dst_obj, loc2, true);
}

herr_t
esdm_link_move(void *src_obj, const H5VL_loc_params_t *loc1, void *dst_obj,
               const H5VL_loc_params_t *loc2, hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id, void **req)
{
    (void)lcpl_id, (void)lapl_id, (void)dxpl_id, (void)req;
    return move_link(src_obj, loc1, dst_obj, loc2, false);
}

/* H5Lget_info, H5Lget_val, H5Lget_name_by_idx of the link name names. GIL held. */
static herr_t
link_get(esdm_obj_t *where, PyObject *name, H5VL_link_get_args_t *args)
{
    if (args->op_type == H5VL_LINK_GET_NAME) {
        /* by index: the group-relative name's last component */
        const char *text = PyUnicode_AsUTF8(name);
        if (!text) {
            esdm_python_error("H5Lget_name_by_idx");
            return -1;
        }
        const char *last = strrchr(text, '/') ? strrchr(text, '/') + 1 : text;
        copy_text(last, args->args.get_name.name, args->args.get_name.name_size);
        *args->args.get_name.name_len = strlen(last);
        return 0;
    }
    PyObject *record = esdm_call("link_info", "(OO)", where->py, name);
    herr_t    status = -1;
    if (!record)
        return -1;
    if (args->op_type == H5VL_LINK_GET_INFO)
        status = fill_link_info(where, record, args->args.get_info.linfo);
    else if (PyLong_AsLong(PyTuple_GET_ITEM(record, 1)) == H5L_TYPE_HARD)
        esdm_error(esdm_err_argument, "esdm VOL: %s is a hard link, it has no value",
                   PyUnicode_AsUTF8(name));
    else
        status = copy_value(PyTuple_GET_ITEM(record, 2), args->args.get_val.buf, args->args.get_val.buf_size);
    Py_DECREF(record);
    return status;
}

herr_t
esdm_link_get(void *obj, const H5VL_loc_params_t *loc, H5VL_link_get_args_t *args, hid_t dxpl_id,
              void **req)
{
    PyGILState_STATE gil;
    herr_t           status = -1;
    (void)dxpl_id, (void)req;

    if (args->op_type != H5VL_LINK_GET_INFO && args->op_type != H5VL_LINK_GET_NAME &&
        args->op_type != H5VL_LINK_GET_VAL)
        return esdm_unsupported("this link query");
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *name = esdm_loc_str(obj, loc, "a link query");
    if (name) {
        status = link_get(obj, name, args);
        Py_DECREF(name);
    }
    esdm_leave(gil);
    return status;
}

/* H5Literate2 and H5Lvisit2. GIL held. */
static herr_t
iterate(esdm_obj_t *where, PyObject *base, H5VL_link_iterate_args_t *args)
{
    herr_t status = -1;

    if (args->idx_type != H5_INDEX_NAME && args->idx_type != H5_INDEX_CRT_ORDER) {
        esdm_error(esdm_err_argument, "esdm VOL: unknown link index %d", (int)args->idx_type);
        return -1;
    }
    PyObject   *links = esdm_call("link_list", "(OOOOO)", where->py, base,
                                  args->recursive ? Py_True : Py_False,
                                  args->idx_type == H5_INDEX_CRT_ORDER ? Py_True : Py_False,
                                  args->order == H5_ITER_DEC ? Py_True : Py_False);
    esdm_obj_t *group = links ? esdm_open_node(where, Py_NewRef(base), H5P_DEFAULT) : NULL;
    if (!group)
        goto done;
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
        PyObject   *link  = PyList_GET_ITEM(links, (Py_ssize_t)k);
        const char *name  = PyUnicode_AsUTF8(PyTuple_GET_ITEM(link, 0));
        H5L_info2_t info;
        if (!name || fill_link_info(where, link, &info) < 0) {
            esdm_python_error("iterating links");
            status = -1;
            break;
        }
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
    esdm_obj_t      *where = obj;
    PyGILState_STATE gil;
    PyObject        *result = NULL;
    herr_t           status = -1;
    (void)dxpl_id, (void)req;

    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *name = esdm_loc_str(where, loc, "a link operation");
    if (!name)
        goto done;
    switch (args->op_type) {
        case H5VL_LINK_DELETE:
            status = (result = esdm_call("link_delete", "(OO)", where->py, name)) ? 0 : -1;
            break;
        case H5VL_LINK_EXISTS:
            if ((result = esdm_call("link_exists", "(OO)", where->py, name))) {
                *args->args.exists.exists = result == Py_True;
                status                    = 0;
            }
            break;
        case H5VL_LINK_ITER:
            status = iterate(where, name, &args->args.iterate);
            break;
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: link operation %d is not supported yet",
                       (int)args->op_type);
            break;
    }
done:
    Py_XDECREF(result);
    Py_XDECREF(name);
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
