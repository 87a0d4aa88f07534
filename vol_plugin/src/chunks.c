/*
 * What HDF5 programs ask of the chunks of a dataset (the native dataset
 * operations: H5Dget_num_chunks, H5Dget_chunk_info(_by_coord),
 * H5Dchunk_iter, H5Dget_chunk_storage_size, H5Dread_chunk, H5Dwrite_chunk,
 * H5Dget_offset) and H5Dget_storage_size, answered from its fragments by the
 * bridge (bridge.dataset_chunks says how). Chunks are those of the chunk
 * shape the dataset reports in its creation property list; a dataset it
 * reports contiguous has none, as in HDF5.
 */
#include "esdm_vol.h"

#include <H5VLnative.h>
#include <string.h>

typedef struct {
    int     rank;
    hsize_t dims[H5S_MAX_RANK];
} chunk_shape_t;

static herr_t
chunk_shape(esdm_obj_t *dset, chunk_shape_t *shape)
{
    if (H5Pget_layout(dset->dcpl_id) != H5D_CHUNKED) {
        esdm_error(esdm_err_argument, "esdm VOL: the dataset is not chunked (it reports a contiguous layout)");
        return -1;
    }
    return (shape->rank = H5Pget_chunk(dset->dcpl_id, H5S_MAX_RANK, shape->dims)) < 0 ? -1 : 0;
}

static PyObject *
tuple_of(const hsize_t *values, int n)
{
    PyObject *tuple = PyTuple_New(n);
    for (int i = 0; tuple && i < n; i++)
        PyTuple_SET_ITEM(tuple, i, PyLong_FromUnsignedLongLong(values[i]));
    if (!tuple)
        esdm_python_error("passing a chunk offset");
    return tuple;
}

/* The chunks holding data (bridge.dataset_chunks' records) that meet the
 * selection of space_id (H5S_ALL: all of them), or NULL. GIL held. */
static PyObject *
chunks_in(esdm_obj_t *dset, const chunk_shape_t *shape, hid_t space_id)
{
    hsize_t low[H5S_MAX_RANK], high[H5S_MAX_RANK];
    bool    bounded = space_id != H5S_ALL && space_id != H5P_DEFAULT;

    if (bounded && H5Sget_select_npoints(space_id) == 0)
        return PyList_New(0);
    if (bounded && H5Sget_select_bounds(space_id, low, high) < 0)
        return NULL;
    PyObject *chunk = tuple_of(shape->dims, shape->rank);
    if (!chunk)
        return NULL;
    if (!bounded)
        return esdm_call("dataset_chunks", "(ON)", dset->py, chunk);
    PyObject *lows = tuple_of(low, shape->rank), *highs = lows ? tuple_of(high, shape->rank) : NULL;
    if (!highs) {
        Py_DECREF(chunk);
        Py_XDECREF(lows);
        return NULL;
    }
    return esdm_call("dataset_chunks", "(ONNN)", dset->py, chunk, lows, highs);
}

/* One record (offset, bytes, address) into HDF5's outputs (any may be NULL). */
static herr_t
chunk_record(PyObject *record, int rank, hsize_t *offset, unsigned *filter_mask, haddr_t *addr,
             hsize_t *size)
{
    PyObject *start = PyTuple_GET_ITEM(record, 0);
    for (int i = 0; offset && i < rank; i++)
        offset[i] = (hsize_t)PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(start, i));
    if (filter_mask)
        *filter_mask = 0;
    if (size)
        *size = (hsize_t)PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(record, 1));
    if (addr)
        *addr = (haddr_t)PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(record, 2));
    if (PyErr_Occurred()) {
        esdm_python_error("reading a chunk record");
        return -1;
    }
    return 0;
}

/* The record of the chunk at offset, or Py_None if no data is there (new
 * reference; NULL on error). GIL held. */
static PyObject *
chunk_at(esdm_obj_t *dset, const chunk_shape_t *shape, const hsize_t *offset)
{
    PyObject *records = chunks_in(dset, shape, H5S_ALL);
    if (!records)
        return NULL;
    PyObject *found = Py_None;
    for (Py_ssize_t k = 0; found == Py_None && k < PyList_GET_SIZE(records); k++) {
        PyObject *record = PyList_GET_ITEM(records, k), *start = PyTuple_GET_ITEM(record, 0);
        bool      same   = true;
        for (int i = 0; same && i < shape->rank; i++)
            same = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(start, i)) == offset[i];
        if (same)
            found = record;
    }
    Py_INCREF(found);
    Py_DECREF(records);
    return found;
}

static herr_t
iterate(esdm_obj_t *dset, const chunk_shape_t *shape, H5D_chunk_iter_op_t op, void *op_data)
{
    PyObject *records = chunks_in(dset, shape, H5S_ALL);
    herr_t    status  = records ? 0 : -1;

    for (Py_ssize_t k = 0; records && status == 0 && k < PyList_GET_SIZE(records); k++) {
        hsize_t offset[H5S_MAX_RANK], size;
        haddr_t addr;
        if (chunk_record(PyList_GET_ITEM(records, k), shape->rank, offset, NULL, &addr, &size) < 0)
            status = -1;
        else /* GIL held: h5py's callbacks expect it; a positive answer stops, a negative fails */
            status = op(offset, 0, addr, size, op_data);
    }
    Py_XDECREF(records);
    return status < 0 ? -1 : 0;
}

static herr_t
read_chunk(esdm_obj_t *dset, const chunk_shape_t *shape, H5VL_native_dataset_chunk_read_t *args)
{
    PyObject *offset = tuple_of(args->offset, shape->rank);
    PyObject *chunk  = offset ? tuple_of(shape->dims, shape->rank) : NULL;
    PyObject *read   = chunk ? esdm_call("dataset_chunk_read", "(ONN)", dset->py, offset, chunk) : NULL;
    if (!read) {
        if (!chunk)
            Py_XDECREF(offset);
        return -1;
    }
    PyObject *data = PyTuple_GET_ITEM(read, 1);
    args->filters  = (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(read, 0));
    /* the buffer is as large as H5Dget_chunk_storage_size said, from the same bytes */
    memcpy(args->buf, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
    Py_DECREF(read);
    return 0;
}

static herr_t
write_chunk(esdm_obj_t *dset, const chunk_shape_t *shape, H5VL_native_dataset_chunk_write_t *args)
{
    PyObject *offset = tuple_of(args->offset, shape->rank);
    PyObject *chunk  = offset ? tuple_of(shape->dims, shape->rank) : NULL;
    PyObject *data   = chunk ? esdm_view(args->buf, args->size, false) : NULL;
    if (!data) {
        Py_XDECREF(offset);
        Py_XDECREF(chunk);
        return -1;
    }
    PyObject *done = esdm_call("dataset_chunk_write", "(ONNIO)", dset->py, offset, chunk,
                               (unsigned)args->filters, data);
    Py_XDECREF(done);
    return esdm_view_release(data, "H5Dwrite_chunk") < 0 || !done ? -1 : 0;
}

/* H5Dget_chunk_storage_size: the bytes H5Dread_chunk hands out for the chunk. GIL held. */
static herr_t
chunk_storage_size(esdm_obj_t *dset, const chunk_shape_t *shape, const hsize_t *at, hsize_t *size)
{
    H5VL_native_dataset_chunk_read_t probe = {at, 0, NULL};
    PyObject *offset = tuple_of(probe.offset, shape->rank);
    PyObject *chunk  = offset ? tuple_of(shape->dims, shape->rank) : NULL;
    PyObject *read   = chunk ? esdm_call("dataset_chunk_read", "(ONN)", dset->py, offset, chunk) : NULL;
    if (!read) {
        if (!chunk)
            Py_XDECREF(offset);
        return -1;
    }
    *size = (hsize_t)PyBytes_GET_SIZE(PyTuple_GET_ITEM(read, 1));
    Py_DECREF(read);
    return 0;
}

static herr_t
chunk_op(esdm_obj_t *dset, const chunk_shape_t *shape, H5VL_optional_args_t *args)
{
    H5VL_native_dataset_optional_args_t *opt = args->args;
    PyObject                            *records, *record;
    herr_t                               status = -1;

    switch (args->op_type) {
        case H5VL_NATIVE_DATASET_GET_NUM_CHUNKS:
            if ((records = chunks_in(dset, shape, opt->get_num_chunks.space_id))) {
                *opt->get_num_chunks.nchunks = (hsize_t)PyList_GET_SIZE(records);
                Py_DECREF(records);
                status = 0;
            }
            return status;
        case H5VL_NATIVE_DATASET_GET_CHUNK_INFO_BY_IDX: {
            H5VL_native_dataset_get_chunk_info_by_idx_t *by = &opt->get_chunk_info_by_idx;
            if (!(records = chunks_in(dset, shape, by->space_id)))
                return -1;
            if (by->chk_index >= (hsize_t)PyList_GET_SIZE(records))
                esdm_error(esdm_err_argument, "esdm VOL: chunk index %llu: the selection meets %zd chunks",
                           (unsigned long long)by->chk_index, PyList_GET_SIZE(records));
            else
                status = chunk_record(PyList_GET_ITEM(records, (Py_ssize_t)by->chk_index), shape->rank,
                                      by->offset, by->filter_mask, by->addr, by->size);
            Py_DECREF(records);
            return status;
        }
        case H5VL_NATIVE_DATASET_GET_CHUNK_INFO_BY_COORD: {
            H5VL_native_dataset_get_chunk_info_by_coord_t *by = &opt->get_chunk_info_by_coord;
            if (!(record = chunk_at(dset, shape, by->offset)))
                return -1;
            if (record == Py_None) { /* as HDF5 answers for a chunk never written */
                *by->filter_mask = 0;
                *by->addr        = HADDR_UNDEF;
                *by->size        = 0;
                status           = 0;
            }
            else
                status = chunk_record(record, shape->rank, NULL, by->filter_mask, by->addr, by->size);
            Py_DECREF(record);
            return status;
        }
        case H5VL_NATIVE_DATASET_CHUNK_ITER:
            return iterate(dset, shape, opt->chunk_iter.op, opt->chunk_iter.op_data);
        case H5VL_NATIVE_DATASET_GET_CHUNK_STORAGE_SIZE:
            return chunk_storage_size(dset, shape, opt->get_chunk_storage_size.offset,
                                      opt->get_chunk_storage_size.size);
        case H5VL_NATIVE_DATASET_CHUNK_READ:
            return read_chunk(dset, shape, &opt->chunk_read);
        case H5VL_NATIVE_DATASET_CHUNK_WRITE:
            return write_chunk(dset, shape, &opt->chunk_write);
        default:
            return -1; /* not a chunk operation: esdm_dataset_chunk_op refused it */
    }
}

herr_t
esdm_dataset_chunk_op(esdm_obj_t *dset, H5VL_optional_args_t *args)
{
    PyGILState_STATE gil;
    chunk_shape_t    shape;
    herr_t           status;

    H5VL_native_dataset_optional_args_t *opt = args->args;
    switch (args->op_type) {
        case H5VL_NATIVE_DATASET_GET_VLEN_BUF_SIZE: /* not of chunks, but native all the same */
            return esdm_dataset_vlen_buf_size(dset, opt->get_vlen_buf_size.type_id,
                                              opt->get_vlen_buf_size.space_id, opt->get_vlen_buf_size.size);
        case H5VL_NATIVE_DATASET_GET_OFFSET:
            /* fragments have no place in a file: as HDF5 says of unallocated storage */
            *opt->get_offset.offset = HADDR_UNDEF;
            return 0;
        case H5VL_NATIVE_DATASET_GET_NUM_CHUNKS:
        case H5VL_NATIVE_DATASET_GET_CHUNK_INFO_BY_IDX:
        case H5VL_NATIVE_DATASET_GET_CHUNK_INFO_BY_COORD:
        case H5VL_NATIVE_DATASET_CHUNK_ITER:
        case H5VL_NATIVE_DATASET_GET_CHUNK_STORAGE_SIZE:
        case H5VL_NATIVE_DATASET_CHUNK_READ:
        case H5VL_NATIVE_DATASET_CHUNK_WRITE:
            break;
        default:
            esdm_error(esdm_err_unsupported,
                       "esdm VOL: native dataset operation %d (H5Dformat_convert, "
                       "H5Dget_chunk_index_type) is not supported yet",
                       args->op_type);
            return -1;
    }
    if (chunk_shape(dset, &shape) < 0 || esdm_enter(&gil) < 0)
        return -1;
    status = chunk_op(dset, &shape, args);
    esdm_leave(gil);
    return status;
}

herr_t
esdm_dataset_storage_size(esdm_obj_t *dset, hsize_t *size)
{
    PyGILState_STATE gil;
    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *bytes = esdm_call("dataset_storage_size", "(O)", dset->py);
    if (bytes)
        *size = (hsize_t)PyLong_AsUnsignedLongLong(bytes);
    Py_XDECREF(bytes);
    esdm_leave(gil);
    return bytes ? 0 : -1;
}
