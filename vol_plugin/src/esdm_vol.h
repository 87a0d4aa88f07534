/*
 * The HDF5 VOL connector "esdm": a terminal connector that maps HDF5 calls
 * onto the esdm-hpc Python core (docs/architecture.md §1.3 and §6.2).
 *
 * The shim stays thin on purpose: it owns the HDF5 side of every call
 * (property lists, dataspaces, selections, type conversion, error stack)
 * and hands plain values, boxes and packed buffers to
 * esdm_hpc.vol.bridge, which owns everything ESDM. One concern per file:
 *
 *   connector.c  the class table, plugin entry points, introspection
 *   errors.c     the connector's error class; "not supported yet"
 *   python.c     the interpreter (embedded or the host's), GIL, bridge calls
 *   objects.c    object lifetime, the file's list of open objects, locations
 *   types.c      HDF5 datatypes <-> the bridge's type spellings
 *   values.c     attribute values holding references or sequences <-> Python trees
 *   file.c       H5F      group.c  H5G      dataset.c  H5D (but data)
 *   transfer.c   H5Dread/H5Dwrite: selections -> boxes, packing, conversion
 *   attribute.c  H5A      link.c   H5L      object.c   H5O
 *   datatype.c   H5T: committed (named) datatypes
 */
#ifndef ESDM_VOL_H
#define ESDM_VOL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>

#include <hdf5.h>
#include <H5VLconnector.h>
#include <mpi.h>

#define ESDM_VOL_NAME "esdm"
/* H5VLpublic.h reserves values below 256 for the library; The HDF Group's
 * registry leaves 256-511 to connectors under test, which this one is until
 * it is registered. */
#define ESDM_VOL_VALUE   ((H5VL_class_value_t)360)
#define ESDM_VOL_VERSION 1

/* ------------------------------------------------------------------------ */
/* Objects                                                                  */
/* ------------------------------------------------------------------------ */

/* Kinds 0-2 and 5 are numbered as esdm_hpc.vol.objects.Kind numbers them. */
typedef enum esdm_kind_t {
    ESDM_NONE    = 0,
    ESDM_GROUP   = 1,
    ESDM_DATASET = 2,
    ESDM_FILE    = 3,
    ESDM_ATTR    = 4,
    ESDM_DATATYPE = 5, /* a named (committed) datatype */
} esdm_kind_t;

typedef struct esdm_file_t esdm_file_t;

/* What HDF5 holds behind every ID the connector hands out. */
typedef struct esdm_obj_t {
    esdm_kind_t        kind;
    esdm_file_t       *file; /* the file it belongs to (itself for files) */
    PyObject          *py;   /* its handle, from esdm_hpc.vol.objects */
    struct esdm_obj_t *prev, *next; /* the file's open objects, for H5Fget_obj_ids */
    hid_t              type_id;     /* datasets, attributes: the datatype HDF5 reports */
    hid_t              dcpl_id;     /* datasets: creation properties (H5Dget_create_plist) */
    hid_t              dapl_id;     /* datasets: access properties */
} esdm_obj_t;

struct esdm_file_t {
    esdm_obj_t  obj; /* first: a file is a location too (its root group) */
    char       *name;
    unsigned    intent; /* H5F_ACC_RDONLY or H5F_ACC_RDWR */
    MPI_Comm    comm;   /* a duplicate the file owns; MPI_COMM_NULL when serial */
    hid_t       fapl_id, fcpl_id;
    int         nids;  /* HDF5 file IDs on this file: the container closes with the last */
    int         nrefs; /* file IDs + open objects: the struct lives while any remains */
    bool        open;  /* the container is open in the core */
    bool        weak;  /* HDF5's "weak" close degree: open objects keep the file open */
    esdm_obj_t *objects;
};

esdm_obj_t *esdm_obj_new(esdm_kind_t kind, esdm_file_t *file, PyObject *py);
/* Drop an object; the last one of a weakly closed file closes it. GIL held. */
herr_t      esdm_obj_release(esdm_obj_t *obj);
/* Commit and close the container if nothing holds it open any more: no file
 * ID and, under the weak close degree, no open object. GIL held. */
herr_t      esdm_file_close_container(esdm_file_t *file);
herr_t      esdm_object_close(void *obj, hid_t dxpl_id, void **req); /* attr, dataset, group */
void        esdm_file_unref(esdm_file_t *file);
bool        esdm_file_owns(const esdm_file_t *file, const void *obj);

/* Release an HDF5 ID (type, dataspace, property list, object) on a cleanup
 * path. Every public HDF5 call clears the error stack on entry, so a plain
 * H5Tclose after a failure would erase the errors that explain it; this
 * keeps them. Invalid IDs are ignored. */
void esdm_close(hid_t id);

/* Whether plist_id is a property list of class_id (or H5P_DEFAULT); an HDF5
 * error naming operation if not. HDF5 hands the connector whatever the
 * application passed; native HDF5 fails on a wrong one only when it reads a
 * property, so the connector checks at once. */
bool esdm_plist_ok(hid_t plist_id, hid_t class_id, const char *operation);

/* The name a location addresses, relative to the object (or "." for itself;
 * absolute for a token); NULL with an HDF5 error for the ways of addressing
 * the connector lacks. */
const char *esdm_loc_name(const H5VL_loc_params_t *loc, const char *operation);

/* function(source handle, old name, destination handle, new name, options) of the
 * bridge, for H5Lcopy, H5Lmove and H5Ocopy; takes the three references (NULL for
 * one that failed: then nothing is called). GIL held. */
herr_t esdm_call_between(const char *function, esdm_obj_t *src, PyObject *old_name, esdm_obj_t *dst,
                         PyObject *new_name, PyObject *options);

/* The name of an object relative to a location (a Python str, new reference):
 * name itself if absolute or if base is ".", else base/name. */
PyObject *esdm_name(const char *base, const char *name);

/* The bridge's function (link_at or attribute_at) asked for the n-th link or
 * attribute by addresses, in name or creation order, either direction: a new
 * str. GIL held. */
PyObject *esdm_by_idx(esdm_obj_t *where, const H5VL_loc_by_idx_t *by, const char *function);

/* The name of a new object as esdm_name, or None for an anonymous one (name
 * NULL: H5Gcreate_anon, H5Dcreate_anon, H5Tcommit_anon). */
PyObject *esdm_new_name(const char *base, const char *name);

/* The token of the object whose identity is path: a hash of it in the first
 * sizeof(haddr_t) bytes, zeros after (the container info's token_size), the
 * same in every process and every file, as native addresses are per file;
 * esdm_loc_name maps it back to the path. */
void esdm_token_of(const char *path, H5O_token_t *token);

/* Remember the tokens of all objects of the file just opened, so that
 * references of the 1.10 format stored in it resolve. GIL held. */
herr_t esdm_remember_tokens(esdm_file_t *file);

/* The file number (H5Oget_info's fileno) of the file opened by that name. */
unsigned long esdm_file_number(const char *file_name);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

extern hid_t esdm_err_class, esdm_err_major, esdm_err_python, esdm_err_unsupported,
    esdm_err_argument;

herr_t esdm_errors_register(void);
void   esdm_errors_unregister(void);
/* Keep HDF5's own refusals of this connector from corrupting the error
 * stack (errors.c says how); call from the connector class query. */
void esdm_errors_guard(void);

#define esdm_error(minor, ...)                                                                      \
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, esdm_err_class, esdm_err_major, (minor),   \
             __VA_ARGS__)

/* "esdm VOL: <operation> is not supported yet"; returns -1. A macro so that
 * the error stack names the callback that refused, not this helper. */
#define esdm_unsupported(operation) esdm_unsupported_at(__FILE__, __func__, __LINE__, (operation))

static inline herr_t
esdm_unsupported_at(const char *file, const char *func, unsigned line, const char *operation)
{
    H5Epush2(H5E_DEFAULT, file, func, line, esdm_err_class, esdm_err_major, esdm_err_unsupported,
             "esdm VOL: %s is not supported yet", operation);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Python                                                                   */
/* ------------------------------------------------------------------------ */

/* Start the interpreter if the host has none (C/Fortran programs) and take
 * the GIL; -1 with an HDF5 error if Python cannot run. Pair with esdm_leave. */
int  esdm_enter(PyGILState_STATE *gil);
/* Whether the interpreter has shut down (HDF5 closes IDs after Python's exit):
 * the bridge closed every container at exit, so closing is C's alone then. */
bool esdm_python_gone(void);
void esdm_leave(PyGILState_STATE gil);

/* Where an error is reported from: the callback, not the helper that noticed. */
typedef struct {
    const char *file, *func;
    unsigned    line;
} esdm_site_t;
#define ESDM_HERE ((esdm_site_t){__FILE__, __func__, __LINE__})

/* esdm_hpc.vol.bridge.<function>(args built by Py_BuildValue(format, ...)).
 * A new reference, or NULL with the Python exception turned into an HDF5
 * error that names the function. GIL held. */
#define esdm_call(function, ...) esdm_call_at(ESDM_HERE, (function), __VA_ARGS__)
PyObject *esdm_call_at(esdm_site_t site, const char *function, const char *format, ...);

/* Memoryviews over memory the caller owns, and their release after a call:
 * releasing fails if the core kept a reference, which would be a bug there. */
PyObject *esdm_view(const void *buf, size_t size, bool writable);
int       esdm_view_release(PyObject *view, const char *operation);

/* Turn the pending Python exception into an HDF5 error. GIL held. */
#define esdm_python_error(operation) esdm_python_error_at(ESDM_HERE, (operation))
void esdm_python_error_at(esdm_site_t site, const char *operation);

/* Remember whether the application itself runs Python (call at connector init). */
void esdm_python_note_host(void);
void esdm_python_shutdown(void);

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

#define ESDM_VLEN_STR "vlen-str"

/* The bridge's spelling of an HDF5 datatype (a str or dict, new reference,
 * esdm_hpc/vol/dtypes.py); NULL with an HDF5 error naming the type class
 * when the connector cannot store it yet. GIL held. */
PyObject *esdm_type_to_py(hid_t type_id);
/* The HDF5 datatype for a spelling (a new ID), or H5I_INVALID_HID. GIL held. */
hid_t esdm_type_from_py(PyObject *spelling);
bool  esdm_type_is_vlen_string(hid_t type_id);
/* H5Tconvert of n values in place (buf sized for the larger type), with the
 * background buffer compound conversions need: n values of dst_type from
 * background, or zeros if it is NULL. */
herr_t esdm_type_convert(hid_t src_type_id, hid_t dst_type_id, size_t n, void *buf,
                         const void *background, hid_t dxpl_id);

/* Values holding references or variable-length sequences (but for
 * variable-length strings alone) cross as trees of Python values (values.c). */
bool esdm_type_needs_tree(hid_t type_id);
/* n elements of type_id at buf as a list of trees (new reference); NULL with
 * an HDF5 error. GIL held. */
PyObject *esdm_values_to_py(hid_t type_id, const void *buf, size_t n);
/* Fill n elements of type_id at buf from a list of trees, in memory the
 * application owns; references are recreated in file. GIL held. */
herr_t esdm_values_from_py(hid_t type_id, PyObject *trees, void *buf, size_t n, esdm_file_t *file);

/* n variable-length strings (char *, NULL allowed) as a list of bytes, None
 * for NULL (new reference); NULL with an HDF5 error. GIL held. */
PyObject *esdm_strings_to_py(const void *buf, size_t n);
/* The first n bytes objects of a list as strings the application frees
 * (H5free_memory, H5Treclaim), their pointers into buf. GIL held. */
herr_t esdm_strings_from_py(PyObject *values, void *buf, size_t n);

/* A dataspace from a Python tuple of dims (and maxdims, -1 unlimited, or
 * NULL); None is a null dataspace. */
hid_t esdm_space_from_py(PyObject *shape, PyObject *maxshape);
/* A Python tuple of a simple dataspace's dims (or maxdims, -1 unlimited);
 * None for a null dataspace. */
PyObject *esdm_space_to_py(hid_t space_id, bool maxdims);

/* ------------------------------------------------------------------------ */
/* Callbacks, by class                                                      */
/* ------------------------------------------------------------------------ */

/* file.c */
void  *esdm_file_create(const char *name, unsigned flags, hid_t fcpl_id, hid_t fapl_id, hid_t dxpl_id,
                        void **req);
void  *esdm_file_open(const char *name, unsigned flags, hid_t fapl_id, hid_t dxpl_id, void **req);
herr_t esdm_file_get(void *obj, H5VL_file_get_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_file_specific(void *obj, H5VL_file_specific_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_file_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_file_close(void *file, hid_t dxpl_id, void **req);
/* The file of an object opened through an external link, from the bridge's
 * FileHandle of it (borrowed), the link access list and the file the link is
 * in; NULL with an HDF5
 * error. The first object on it takes the reference that keeps it. GIL held. */
esdm_file_t *esdm_file_adopt(PyObject *file_handle, hid_t lapl_id, const esdm_file_t *source);
/* Account for the file ID HDF5 is about to register for H5Iget_file_id. */
void esdm_file_new_id(esdm_file_t *file);
/* H5Dflush, H5Oflush: a SWMR writer publishes what it wrote (commits). */
herr_t esdm_file_swmr_flush(esdm_file_t *file);
/* H5Drefresh, H5Orefresh: a reader moves on to the newest epoch. */
herr_t esdm_file_refresh(esdm_file_t *file);

/* group.c */
void  *esdm_group_create(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t lcpl_id,
                         hid_t gcpl_id, hid_t gapl_id, hid_t dxpl_id, void **req);
void  *esdm_group_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t gapl_id,
                       hid_t dxpl_id, void **req);
herr_t esdm_group_get(void *obj, H5VL_group_get_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_group_specific(void *obj, H5VL_group_specific_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_group_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req);

/* dataset.c */
void  *esdm_dataset_create(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t lcpl_id,
                           hid_t type_id, hid_t space_id, hid_t dcpl_id, hid_t dapl_id, hid_t dxpl_id,
                           void **req);
void  *esdm_dataset_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t dapl_id,
                         hid_t dxpl_id, void **req);
herr_t esdm_dataset_get(void *obj, H5VL_dataset_get_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_dataset_specific(void *obj, H5VL_dataset_specific_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_dataset_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req);
/* Fill in what an opened dataset reports: its type, dcpl (with the fill
 * value), dapl. GIL held. */
herr_t esdm_dataset_init(esdm_obj_t *dset, hid_t dapl_id);
/* The dataset's current extent as a new dataspace (selection: all). GIL held. */
hid_t esdm_dataset_space(esdm_obj_t *dset);

/* virtual.c: virtual datasets. The mappings of a creation property list as the
 * bridge keeps them (a list, None for a dataset that is not virtual; a new
 * reference, NULL with an HDF5 error); set them again in a dcpl from those;
 * whether a dataset is virtual; H5Dread of one. GIL held for the first two. */
PyObject *esdm_virtual_mappings(hid_t dcpl_id);
herr_t    esdm_virtual_restore(hid_t dcpl_id, PyObject *mappings);
bool      esdm_is_virtual(const esdm_obj_t *dset);
herr_t    esdm_virtual_read(esdm_obj_t *dset, hid_t mem_type_id, hid_t mem_space_id,
                            hid_t file_space_id, hid_t dxpl_id, void *buf);

/* external.c: external storage (H5Pset_external). The segments of a creation
 * property list as the bridge keeps them, each file resolved under the access
 * list's prefix (a list, None without external storage; new reference, NULL
 * with an HDF5 error); set them again in a dcpl; the access list's prefix with
 * ${ORIGIN} expanded for this file (a string to free, NULL if it has none).
 * GIL held for the first two. */
PyObject *esdm_external_segments(hid_t dcpl_id, hid_t dapl_id, const char *file_name);
herr_t    esdm_external_restore(hid_t dcpl_id, PyObject *segments);
char     *esdm_efile_prefix(hid_t dapl_id, const char *file_name);
/* Show the expanded prefix in the dataset's access list, as H5Dget_access_plist does. */
herr_t esdm_expand_efile_prefix(esdm_obj_t *dset);

/* chunks.c: H5Dget_num_chunks, H5Dget_chunk_info, H5Dchunk_iter, H5Dread_chunk,
 * H5Dwrite_chunk, H5Dget_offset (the native dataset operations), answered
 * from the fragments; H5Dget_storage_size. */
herr_t esdm_dataset_chunk_op(esdm_obj_t *dset, H5VL_optional_args_t *args);
herr_t esdm_dataset_storage_size(esdm_obj_t *dset, hsize_t *size);

/* transfer.c */
herr_t esdm_dataset_read(size_t count, void *dset[], hid_t mem_type_id[], hid_t mem_space_id[],
                         hid_t file_space_id[], hid_t dxpl_id, void *buf[], void **req);
herr_t esdm_dataset_write(size_t count, void *dset[], hid_t mem_type_id[], hid_t mem_space_id[],
                          hid_t file_space_id[], hid_t dxpl_id, const void *buf[], void **req);
/* H5Dvlen_get_buf_size: the selection read and its variable-length parts counted. */
herr_t esdm_dataset_vlen_buf_size(esdm_obj_t *dset, hid_t type_id, hid_t space_id, hsize_t *size);

/* attribute.c */
void  *esdm_attr_create(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t type_id,
                        hid_t space_id, hid_t acpl_id, hid_t aapl_id, hid_t dxpl_id, void **req);
void  *esdm_attr_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t aapl_id,
                      hid_t dxpl_id, void **req);
herr_t esdm_attr_read(void *attr, hid_t mem_type_id, void *buf, hid_t dxpl_id, void **req);
herr_t esdm_attr_write(void *attr, hid_t mem_type_id, const void *buf, hid_t dxpl_id, void **req);
herr_t esdm_attr_get(void *obj, H5VL_attr_get_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_attr_specific(void *obj, const H5VL_loc_params_t *loc, H5VL_attr_specific_args_t *args,
                          hid_t dxpl_id, void **req);
herr_t esdm_attr_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req);

/* link.c */
/* The name the n-th link of a by-index location has, relative to the
 * location (a new str), in name or creation order. GIL held. */
PyObject *esdm_idx_name(esdm_obj_t *where, const H5VL_loc_by_idx_t *by);
/* The name any location addresses (by self, name, index or token) as a new
 * str; NULL with an HDF5 error. GIL held. */
PyObject *esdm_loc_str(esdm_obj_t *where, const H5VL_loc_params_t *loc, const char *operation);
herr_t esdm_link_create(H5VL_link_create_args_t *args, void *obj, const H5VL_loc_params_t *loc,
                        hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id, void **req);
herr_t esdm_link_copy(void *src_obj, const H5VL_loc_params_t *loc1, void *dst_obj,
                      const H5VL_loc_params_t *loc2, hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id,
                      void **req);
herr_t esdm_link_move(void *src_obj, const H5VL_loc_params_t *loc1, void *dst_obj,
                      const H5VL_loc_params_t *loc2, hid_t lcpl_id, hid_t lapl_id, hid_t dxpl_id,
                      void **req);
herr_t esdm_link_get(void *obj, const H5VL_loc_params_t *loc, H5VL_link_get_args_t *args, hid_t dxpl_id,
                     void **req);
herr_t esdm_link_specific(void *obj, const H5VL_loc_params_t *loc, H5VL_link_specific_args_t *args,
                          hid_t dxpl_id, void **req);
herr_t esdm_link_optional(void *obj, const H5VL_loc_params_t *loc, H5VL_optional_args_t *args,
                          hid_t dxpl_id, void **req);

/* datatype.c */
void  *esdm_datatype_commit(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t type_id,
                            hid_t lcpl_id, hid_t tcpl_id, hid_t tapl_id, hid_t dxpl_id, void **req);
void  *esdm_datatype_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t tapl_id,
                          hid_t dxpl_id, void **req);
herr_t esdm_datatype_get(void *obj, H5VL_datatype_get_args_t *args, hid_t dxpl_id, void **req);
herr_t esdm_datatype_specific(void *obj, H5VL_datatype_specific_args_t *args, hid_t dxpl_id,
                              void **req);
herr_t esdm_datatype_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req);
/* Fill in the HDF5 type of an opened named datatype. GIL held. */
herr_t esdm_datatype_init(esdm_obj_t *type);

/* object.c */
void  *esdm_object_open(void *obj, const H5VL_loc_params_t *loc, H5I_type_t *opened_type, hid_t dxpl_id,
                        void **req);
herr_t esdm_object_copy(void *src_obj, const H5VL_loc_params_t *loc1, const char *src_name,
                        void *dst_obj, const H5VL_loc_params_t *loc2, const char *dst_name,
                        hid_t ocpypl_id, hid_t lcpl_id, hid_t dxpl_id, void **req);
herr_t esdm_object_get(void *obj, const H5VL_loc_params_t *loc, H5VL_object_get_args_t *args,
                       hid_t dxpl_id, void **req);
herr_t esdm_object_specific(void *obj, const H5VL_loc_params_t *loc, H5VL_object_specific_args_t *args,
                            hid_t dxpl_id, void **req);
herr_t esdm_object_optional(void *obj, const H5VL_loc_params_t *loc, H5VL_optional_args_t *args,
                            hid_t dxpl_id, void **req);
/* Open the group or dataset at name (a str, reference stolen) relative to loc
 * as a connector object; datasets get their type and properties. GIL held. */
esdm_obj_t *esdm_open_node(esdm_obj_t *loc, PyObject *name, hid_t dapl_id);
/* The same, opening the files of external links on the way as the link
 * access list lapl_id says (H5Pset_elink_acc_flags, H5Pset_elink_fapl). */
esdm_obj_t *esdm_open_node_via(esdm_obj_t *loc, PyObject *name, hid_t dapl_id, hid_t lapl_id);
/* The link access list of a location (H5P_DEFAULT if it has none). */
hid_t esdm_loc_lapl(const H5VL_loc_params_t *loc);

#endif /* ESDM_VOL_H */
