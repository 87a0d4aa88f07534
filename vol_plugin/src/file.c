/*
 * H5F: a file is a container (esdm_hpc/vol/names.py maps the name).
 *
 * H5Fcreate/H5Fopen are collective over the communicator of an MPI-IO file
 * access property list, which the core then uses for its own collectives;
 * without one the container is opened by this process alone. H5Fflush
 * commits an epoch; the last H5Fclose commits and closes (docs/architecture.md
 * §3.1, §6.2).
 */
#include "esdm_vol.h"

#include <H5FDmpio.h>
#include <H5VLnative.h>
#include <stdlib.h>
#include <string.h>

static esdm_file_t *
file_new(const char *name, unsigned intent, hid_t fapl_id, hid_t fcpl_id)
{
    esdm_file_t *file = calloc(1, sizeof *file);
    if (!file || !(file->name = strdup(name))) {
        free(file);
        esdm_error(esdm_err_argument, "esdm VOL: out of memory");
        return NULL;
    }
    file->obj.kind    = ESDM_FILE;
    file->obj.file    = file;
    file->obj.type_id = file->obj.dcpl_id = file->obj.dapl_id = H5I_INVALID_HID;
    file->intent      = intent;
    file->comm        = MPI_COMM_NULL;
    file->nids        = 1;
    file->nrefs       = 1;
    file->fapl_id     = H5Pcopy(fapl_id);
    file->fcpl_id     = fcpl_id == H5P_DEFAULT ? H5Pcreate(H5P_FILE_CREATE) : H5Pcopy(fcpl_id);
    /* HDF5's default degree is weak but for MPI-IO ("semi"): objects left
     * open keep the file open, and its last one closes it (commits) */
    H5F_close_degree_t degree = H5F_CLOSE_DEFAULT;
    if (H5Pget_fclose_degree(fapl_id, &degree) < 0) {
        esdm_file_unref(file);
        return NULL;
    }
    file->weak = degree == H5F_CLOSE_WEAK ||
                 (degree == H5F_CLOSE_DEFAULT && H5Pget_driver(fapl_id) != H5FD_MPIO);
    if (H5Pget_driver(fapl_id) == H5FD_MPIO) {
        /* HDF5 hands out duplicates: the file owns this one (objects.c frees it). */
        MPI_Info info = MPI_INFO_NULL;
        if (H5Pget_fapl_mpio(fapl_id, &file->comm, &info) < 0) {
            esdm_file_unref(file);
            return NULL;
        }
        if (info != MPI_INFO_NULL)
            MPI_Info_free(&info);
    }
    return file;
}

/* The communicator as the bridge takes it: a Fortran handle, -1 for none. */
static int
comm_handle(const esdm_file_t *file)
{
    return file->comm == MPI_COMM_NULL ? -1 : (int)MPI_Comm_c2f(file->comm);
}

/* The link creation order of the fcpl (H5Pset_link_creation_order) is the
 * root group's: a new container records it, an opened one reports it in its
 * fcpl. netCDF-4 and h5netcdf create files so and list variables in that
 * order; netCDF opens for writing only files that track it. GIL held. */
static herr_t
root_link_order(esdm_file_t *file, bool create)
{
    unsigned  order = 0;
    PyObject *answer;
    herr_t    status;

    if (create) {
        if (H5Pget_link_creation_order(file->fcpl_id, &order) < 0)
            return -1;
        if (!(order & H5P_CRT_ORDER_TRACKED))
            return 0;
        answer = esdm_call("group_track_order", "(OI)", file->obj.py, order);
        status = answer ? 0 : -1;
    }
    else {
        answer = esdm_call("group_creation_order", "(Os)", file->obj.py, "/");
        status = answer ? 0 : -1;
        if (answer && (order = (unsigned)PyLong_AsUnsignedLong(answer)))
            status = H5Pset_link_creation_order(file->fcpl_id, order);
    }
    Py_XDECREF(answer);
    return status;
}

/* H5Fcreate (create: flag truncates) or H5Fopen (flag: writable). */
static void *
file_start(const char *name, unsigned intent, hid_t fcpl_id, hid_t fapl_id, bool create, bool flag)
{
    PyGILState_STATE gil;
    esdm_file_t     *file = file_new(name, intent, fapl_id, fcpl_id);

    if (!file)
        return NULL;
    if (esdm_enter(&gil) < 0) {
        esdm_file_unref(file);
        return NULL;
    }
    file->obj.py = esdm_call(create ? "file_create" : "file_open", "(sOi)", name,
                             flag ? Py_True : Py_False, comm_handle(file));
    if (file->obj.py && (root_link_order(file, create) < 0 || esdm_remember_tokens(file) < 0)) {
        /* HDF5 will not close a file it never got: close the container here
         * (the error stack keeps what went wrong). */
        Py_XDECREF(esdm_call("file_close", "(O)", file->obj.py));
        Py_CLEAR(file->obj.py);
    }
    esdm_leave(gil);
    if (!file->obj.py) {
        esdm_file_unref(file);
        return NULL;
    }
    file->open = true;
    return file;
}

void *
esdm_file_create(const char *name, unsigned flags, hid_t fcpl_id, hid_t fapl_id, hid_t dxpl_id,
                 void **req)
{
    (void)dxpl_id, (void)req;
    /* H5F_ACC_EXCL (and no flag) refuse an existing container; TRUNC replaces it. */
    return file_start(name, H5F_ACC_RDWR, fcpl_id, fapl_id, true, (flags & H5F_ACC_TRUNC) != 0);
}

void *
esdm_file_open(const char *name, unsigned flags, hid_t fapl_id, hid_t dxpl_id, void **req)
{
    (void)dxpl_id, (void)req;
    bool     writable = (flags & H5F_ACC_RDWR) != 0;
    unsigned swmr     = flags & (H5F_ACC_SWMR_READ | H5F_ACC_SWMR_WRITE); /* kept for H5Fget_intent */
    return file_start(name, (writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY) | swmr, H5P_DEFAULT, fapl_id,
                      false, writable);
}

/* ---- H5Fget_obj_count / H5Fget_obj_ids --------------------------------------------------- */

typedef struct {
    const esdm_file_t *file;
    size_t             count, max;
    hid_t             *ids; /* NULL: only count */
} open_ids_t;

static herr_t
visit_id(hid_t id, void *udata)
{
    open_ids_t *found = udata;
    H5I_type_t  type  = H5Iget_type(id);
    void       *obj;
    bool        mine;

    /* Transient datatypes (H5T_NATIVE_INT, ...) belong to no file, and
     * H5VLobject would refuse them. */
    if (type == H5I_DATATYPE && H5Tcommitted(id) <= 0)
        return 0;
    obj  = H5VLobject(id);
    mine = type == H5I_FILE ? obj == found->file : esdm_file_owns(found->file, obj);
    if (!mine)
        return 0;
    if (found->ids) {
        if (found->count >= found->max)
            return 1; /* the caller's array is full: stop */
        found->ids[found->count] = id;
    }
    found->count++;
    return 0;
}

static herr_t
open_ids(const esdm_file_t *file, unsigned types, size_t max, hid_t *ids, size_t *count)
{
    static const struct {
        unsigned   flag;
        H5I_type_t type;
    } kinds[] = {{H5F_OBJ_FILE, H5I_FILE},
                 {H5F_OBJ_DATASET, H5I_DATASET},
                 {H5F_OBJ_GROUP, H5I_GROUP},
                 {H5F_OBJ_DATATYPE, H5I_DATATYPE},
                 {H5F_OBJ_ATTR, H5I_ATTR}};
    open_ids_t found = {file, 0, max, ids};

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if ((types & kinds[i].flag) && H5Iiterate(kinds[i].type, visit_id, &found) < 0)
            return -1;
    *count = found.count;
    return 0;
}

/* ---- get / specific / close -------------------------------------------------------------- */

static unsigned long
file_number(const esdm_file_t *file)
{
    return esdm_file_number(file->name);
}

herr_t
esdm_file_get(void *obj, H5VL_file_get_args_t *args, hid_t dxpl_id, void **req)
{
    esdm_file_t *file = ((esdm_obj_t *)obj)->file;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_FILE_GET_CONT_INFO: {
            H5VL_file_cont_info_t *info = args->args.get_cont_info.info;
            if (info->version != H5VL_CONTAINER_INFO_VERSION) {
                esdm_error(esdm_err_argument, "esdm VOL: container info version %u is unknown",
                           info->version);
                return -1;
            }
            info->feature_flags = 0;
            /* tokens fit an haddr_t (objects.c), so that references of the
             * 1.10 format (H5T_STD_REF_OBJ), which h5py reads, hold them */
            info->token_size    = sizeof(haddr_t);
            info->blob_id_size  = 0;
            return 0;
        }
        case H5VL_FILE_GET_FAPL:
            return (args->args.get_fapl.fapl_id = H5Pcopy(file->fapl_id)) < 0 ? -1 : 0;
        case H5VL_FILE_GET_FCPL:
            return (args->args.get_fcpl.fcpl_id = H5Pcopy(file->fcpl_id)) < 0 ? -1 : 0;
        case H5VL_FILE_GET_FILENO:
            *args->args.get_fileno.fileno = file_number(file);
            return 0;
        case H5VL_FILE_GET_INTENT:
            *args->args.get_intent.flags = file->intent;
            return 0;
        case H5VL_FILE_GET_NAME: {
            H5VL_file_get_name_args_t *name = &args->args.get_name;
            size_t                     len  = strlen(file->name);
            if (name->buf && name->buf_size) {
                size_t n = len < name->buf_size - 1 ? len : name->buf_size - 1;
                memcpy(name->buf, file->name, n);
                name->buf[n] = '\0';
            }
            *name->file_name_len = len;
            return 0;
        }
        case H5VL_FILE_GET_OBJ_COUNT:
            return open_ids(file, args->args.get_obj_count.types, 0, NULL,
                            args->args.get_obj_count.count);
        case H5VL_FILE_GET_OBJ_IDS: {
            H5VL_file_get_obj_ids_args_t *ids = &args->args.get_obj_ids;
            return open_ids(file, ids->types, ids->max_objs, ids->oid_list, ids->count);
        }
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: file query %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

static herr_t
file_flush(esdm_file_t *file)
{
    PyGILState_STATE gil;
    PyObject        *epoch;

    if (!file->open) {
        esdm_error(esdm_err_argument, "esdm VOL: %s is closed", file->name);
        return -1;
    }
    if (esdm_enter(&gil) < 0)
        return -1;
    epoch = esdm_call("file_flush", "(O)", file->obj.py);
    Py_XDECREF(epoch);
    esdm_leave(gil);
    return epoch ? 0 : -1;
}

static herr_t
file_accessible(const char *name, hbool_t *accessible)
{
    PyGILState_STATE gil;
    PyObject        *answer;

    if (esdm_enter(&gil) < 0)
        return -1;
    if ((answer = esdm_call("file_accessible", "(s)", name)))
        *accessible = PyObject_IsTrue(answer) == 1;
    Py_XDECREF(answer);
    esdm_leave(gil);
    return answer ? 0 : -1;
}

herr_t
esdm_file_specific(void *obj, H5VL_file_specific_args_t *args, hid_t dxpl_id, void **req)
{
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_FILE_FLUSH:
            /* the whole container commits, whatever object or scope was named */
            return file_flush(((esdm_obj_t *)obj)->file);
        case H5VL_FILE_IS_ACCESSIBLE:
            return file_accessible(args->args.is_accessible.filename,
                                   args->args.is_accessible.accessible);
        case H5VL_FILE_IS_EQUAL:
            *args->args.is_equal.same_file =
                ((esdm_obj_t *)obj)->file == ((esdm_obj_t *)args->args.is_equal.obj2)->file;
            return 0;
        case H5VL_FILE_REOPEN: {
            /* a new file on the same container, as another H5Fopen would share it */
            esdm_file_t *file  = ((esdm_obj_t *)obj)->file;
            esdm_file_t *again = file_start(file->name, file->intent, file->fcpl_id, file->fapl_id,
                                            false, (file->intent & H5F_ACC_RDWR) != 0);
            *args->args.reopen.file = again;
            return again ? 0 : -1;
        }
        case H5VL_FILE_DELETE:
            return esdm_unsupported("deleting a container with H5Fdelete");
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: file operation %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

/* SWMR (docs/architecture.md §6.2): readers see what the writer published, as
 * with any ESDM reader; the writer publishes (commits) at H5Dflush, which
 * HDF5 lets a SWMR writer call to show its readers new data. */
static herr_t
start_swmr_write(esdm_file_t *file)
{
    if ((file->intent & H5F_ACC_RDWR) == 0) {
        esdm_error(esdm_err_argument, "esdm VOL: H5Fstart_swmr_write: %s is open read-only",
                   file->name);
        return -1;
    }
    file->intent |= H5F_ACC_SWMR_WRITE;
    return 0;
}

herr_t
esdm_file_swmr_flush(esdm_file_t *file)
{
    return file->intent & H5F_ACC_SWMR_WRITE ? file_flush(file) : 0;
}

herr_t
esdm_file_refresh(esdm_file_t *file)
{
    PyGILState_STATE gil;

    if (file->intent & H5F_ACC_RDWR)
        return 0; /* a writer sees its own writes */
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *epoch = esdm_call("file_refresh", "(O)", file->obj.py);
    Py_XDECREF(epoch);
    esdm_leave(gil);
    return epoch ? 0 : -1;
}

herr_t
esdm_file_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req)
{
    (void)dxpl_id, (void)req;
    if (args->op_type == H5VL_NATIVE_FILE_START_SWMR_WRITE)
        return start_swmr_write(((esdm_obj_t *)obj)->file);
    esdm_error(esdm_err_unsupported,
               "esdm VOL: native file operation %d (H5Fget_filesize, H5Fget_mdc_*, ...) is not "
               "supported yet",
               args->op_type);
    return -1;
}

herr_t
esdm_file_close(void *obj, hid_t dxpl_id, void **req)
{
    esdm_file_t     *file = obj;
    PyGILState_STATE gil;
    herr_t           status = 0;
    (void)dxpl_id, (void)req;

    if (--file->nids == 0 && file->open) {
        if (esdm_python_gone())
            status = esdm_file_close_container(file); /* calls no Python then */
        else if (esdm_enter(&gil) < 0)
            status = -1;
        else {
            status = esdm_file_close_container(file);
            esdm_leave(gil);
        }
    }
    esdm_file_unref(file);
    return status;
}

herr_t
esdm_file_close_container(esdm_file_t *file)
{
    if (!file->open || file->nids > 0 || (file->weak && file->objects))
        return 0;
    file->open = false;
    if (esdm_python_gone()) {
        file->obj.py = NULL; /* the bridge committed and closed it at exit */
        return 0;
    }
    PyObject *done = esdm_call("file_close", "(O)", file->obj.py);
    Py_XDECREF(done);
    Py_CLEAR(file->obj.py);
    return done ? 0 : -1;
}

/* An external link's file: the container of an object the bridge opened past
 * one. It has no HDF5 file ID until H5Iget_file_id asks for one, and closes
 * with the last object on it, whatever the close degree. Its intent is how
 * the bridge opened it (with the SWMR flags the link access list asked for),
 * its access list the link's (H5Pset_elink_fapl) or, as in HDF5, that of the
 * file the link is in. */
esdm_file_t *
esdm_file_adopt(PyObject *file_handle, hid_t lapl_id, const esdm_file_t *source)
{
    PyObject   *filename  = PyObject_GetAttrString(file_handle, "filename");
    PyObject   *container = filename ? PyObject_GetAttrString(file_handle, "container") : NULL;
    PyObject   *writable  = container ? PyObject_GetAttrString(container, "writable") : NULL;
    const char *name      = writable ? PyUnicode_AsUTF8(filename) : NULL;
    unsigned    flags     = H5F_ACC_DEFAULT;
    hid_t       fapl_id   = H5P_DEFAULT;
    esdm_file_t *file     = NULL;

    if (!name)
        esdm_python_error("opening a file through an external link");
    else if (lapl_id == H5P_DEFAULT ||
             (H5Pget_elink_acc_flags(lapl_id, &flags) >= 0 && (fapl_id = H5Pget_elink_fapl(lapl_id)) >= 0)) {
        unsigned swmr   = flags == H5F_ACC_DEFAULT ? 0 : flags & (H5F_ACC_SWMR_READ | H5F_ACC_SWMR_WRITE);
        unsigned intent = (PyObject_IsTrue(writable) == 1 ? H5F_ACC_RDWR : H5F_ACC_RDONLY) | swmr;
        /* every process opens the file alone: no MPI-IO list, whose communicator
         * HDF5 duplicates collectively */
        hid_t inherited = H5Pget_driver(source->fapl_id) == H5FD_MPIO ? H5P_FILE_ACCESS_DEFAULT
                                                                       : source->fapl_id;
        file = file_new(name, intent, fapl_id == H5P_DEFAULT ? inherited : fapl_id, H5P_DEFAULT);
    }
    if (fapl_id != H5P_DEFAULT)
        esdm_close(fapl_id);
    if (file) {
        file->nids = file->nrefs = 0; /* the objects on it hold it */
        file->weak = true;
        file->open = true;
        file->obj.py = Py_NewRef(file_handle);
    }
    Py_XDECREF(writable);
    Py_XDECREF(container);
    Py_XDECREF(filename);
    return file;
}

/* H5Iget_file_id on an object whose file has no ID left registers a new
 * one (HDF5 reuses an existing ID otherwise), which H5Fclose will close. */
void
esdm_file_new_id(esdm_file_t *file)
{
    if (file->nids == 0) {
        file->nids++;
        file->nrefs++;
    }
}
