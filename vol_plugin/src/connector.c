/*
 * The connector class and the two symbols HDF5's plugin loader looks for.
 *
 * Terminal, so no info or wrap callbacks (those are for pass-through
 * connectors). Every class member is filled: HDF5 fails an operation whose
 * callback is NULL with a generic message, while ours name the operation.
 */
#include "esdm_vol.h"

#include <H5PLextern.h>
#include <H5VLnative.h>

static herr_t
esdm_init(hid_t vipl_id)
{
    (void)vipl_id;
    esdm_python_note_host();
    return esdm_errors_register();
}

static herr_t
esdm_term(void)
{
    esdm_python_shutdown();
    esdm_errors_unregister();
    return 0;
}

/* ---- introspection --------------------------------------------------------------------- */

static const H5VL_class_t esdm_class;

static herr_t
esdm_get_conn_cls(void *obj, H5VL_get_conn_lvl_t lvl, const H5VL_class_t **conn_cls)
{
    (void)obj;
    (void)lvl;
    esdm_errors_guard();
    *conn_cls = &esdm_class;
    return 0;
}

/* What HDF5's API tests and applications may count on; kept honest so that
 * they skip, rather than fail, what the connector does not do yet. The *_MORE
 * flags cover "all other" calls of a class: declared where most of them work
 * (H5Freopen/H5Fdelete, H5Dget_storage_size, H5Ocopy between files are still refused).
 * External and user-defined links are kept and listed; the connector follows
 * external links to other containers. Not declared: references (the suite
 * does not test them). */
#define ESDM_CAPABILITIES                                                                          \
    (H5VL_CAP_FLAG_FILE_BASIC | H5VL_CAP_FLAG_GROUP_BASIC | H5VL_CAP_FLAG_DATASET_BASIC |          \
     H5VL_CAP_FLAG_ATTR_BASIC | H5VL_CAP_FLAG_OBJECT_BASIC | H5VL_CAP_FLAG_ITERATE |               \
     H5VL_CAP_FLAG_GET_PLIST | H5VL_CAP_FLAG_FLUSH_REFRESH | H5VL_CAP_FLAG_FILL_VALUES |            \
     H5VL_CAP_FLAG_HARD_LINKS | H5VL_CAP_FLAG_SOFT_LINKS | H5VL_CAP_FLAG_LINK_MORE |                \
     H5VL_CAP_FLAG_CREATION_ORDER | H5VL_CAP_FLAG_BY_IDX | H5VL_CAP_FLAG_STORED_DATATYPES |   \
     H5VL_CAP_FLAG_FILE_MORE | H5VL_CAP_FLAG_GROUP_MORE | H5VL_CAP_FLAG_DATASET_MORE |            \
     H5VL_CAP_FLAG_OBJECT_MORE | H5VL_CAP_FLAG_LINK_BASIC | H5VL_CAP_FLAG_ATTR_MORE |             \
     H5VL_CAP_FLAG_EXTERNAL_LINKS | H5VL_CAP_FLAG_UD_LINKS | H5VL_CAP_FLAG_STORAGE_SIZE)

static herr_t
esdm_get_cap_flags(const void *info, uint64_t *cap_flags)
{
    (void)info;
    *cap_flags = ESDM_CAPABILITIES;
    return 0;
}

static herr_t
esdm_opt_query(void *obj, H5VL_subclass_t cls, int opt_type, uint64_t *flags)
{
    /* The native operations the connector answers (chunks.c, file.c); for the
     * others HDF5 skips what it can, such as the 'post open' step of H5Fopen. */
    (void)obj;
    bool dataset = cls == H5VL_SUBCLS_DATASET && opt_type >= H5VL_NATIVE_DATASET_GET_CHUNK_STORAGE_SIZE &&
                   opt_type <= H5VL_NATIVE_DATASET_CHUNK_ITER;
    bool file    = cls == H5VL_SUBCLS_FILE && opt_type == H5VL_NATIVE_FILE_START_SWMR_WRITE;
    *flags       = dataset || file ? H5VL_OPT_QUERY_SUPPORTED : 0;
    return 0;
}

/* ---- whole classes not supported yet ----------------------------------------------------- */

static herr_t
esdm_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req)
{
    (void)obj, (void)dxpl_id, (void)req;
    esdm_error(esdm_err_unsupported, "esdm VOL: optional operation %d is not supported yet",
               args->op_type);
    return -1;
}

static herr_t
esdm_blob_put(void *obj, const void *buf, size_t size, void *blob_id, void *ctx)
{
    (void)obj, (void)buf, (void)size, (void)blob_id, (void)ctx;
    return esdm_unsupported("storing variable-length data in a dataset (blob put)");
}

static herr_t
esdm_blob_get(void *obj, const void *blob_id, void *buf, size_t size, void *ctx)
{
    (void)obj, (void)blob_id, (void)buf, (void)size, (void)ctx;
    return esdm_unsupported("reading variable-length data of a dataset (blob get)");
}

static herr_t
esdm_blob_specific(void *obj, void *blob_id, H5VL_blob_specific_args_t *args)
{
    (void)obj, (void)blob_id, (void)args;
    return esdm_unsupported("variable-length data in a dataset (blob specific)");
}

/* ---- the class -------------------------------------------------------------------------- */

static const H5VL_class_t esdm_class = {
    H5VL_VERSION,
    ESDM_VOL_VALUE,
    ESDM_VOL_NAME,
    ESDM_VOL_VERSION,
    ESDM_CAPABILITIES,
    esdm_init,
    esdm_term,
    {0, NULL, NULL, NULL, NULL, NULL}, /* info: the connector takes no configuration string */
    {NULL, NULL, NULL, NULL, NULL},    /* wrap: terminal connectors do not wrap */
    {esdm_attr_create, esdm_attr_open, esdm_attr_read, esdm_attr_write, esdm_attr_get,
     esdm_attr_specific, esdm_attr_optional, esdm_object_close},
    {esdm_dataset_create, esdm_dataset_open, esdm_dataset_read, esdm_dataset_write, esdm_dataset_get,
     esdm_dataset_specific, esdm_dataset_optional, esdm_object_close},
    {esdm_datatype_commit, esdm_datatype_open, esdm_datatype_get, esdm_datatype_specific,
     esdm_datatype_optional, esdm_object_close},
    {esdm_file_create, esdm_file_open, esdm_file_get, esdm_file_specific, esdm_file_optional,
     esdm_file_close},
    {esdm_group_create, esdm_group_open, esdm_group_get, esdm_group_specific, esdm_group_optional,
     esdm_object_close},
    {esdm_link_create, esdm_link_copy, esdm_link_move, esdm_link_get, esdm_link_specific,
     esdm_link_optional},
    {esdm_object_open, esdm_object_copy, esdm_object_get, esdm_object_specific, esdm_object_optional},
    {esdm_get_conn_cls, esdm_get_cap_flags, esdm_opt_query},
    {NULL, NULL, NULL, NULL, NULL, NULL}, /* request: every operation completes before returning */
    {esdm_blob_put, esdm_blob_get, esdm_blob_specific, NULL},
    {NULL, NULL, NULL}, /* token: HDF5 compares and prints our 16-byte tokens itself */
    esdm_optional,
};

H5PL_type_t
H5PLget_plugin_type(void)
{
    return H5PL_TYPE_VOL;
}

const void *
H5PLget_plugin_info(void)
{
    return &esdm_class;
}
