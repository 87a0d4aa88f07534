/*
 * H5D, but for the data itself (transfer.c): creating, opening, describing
 * and resizing datasets.
 *
 * Creation properties are accepted as hints, not obeyed: ESDM decides how a
 * dataset is cut into fragments, so chunking, compact or contiguous layouts
 * change nothing. Filters are handed to the core, which compresses with those
 * it has a codec for (esdm_hpc/vol/filters.py), and reported back on every
 * open. What would change the meaning of the data (a virtual layout, external
 * storage) is refused by name.
 */
#include "esdm_vol.h"

#include <stdlib.h>

/* The user-defined fill value in the dataset's type (a variable-length
 * string's characters), or None. GIL held. */
static PyObject *
fill_value(hid_t dcpl_id, hid_t type_id)
{
    H5D_fill_value_t defined;
    PyObject        *fill;

    if (H5Pfill_value_defined(dcpl_id, &defined) < 0)
        return NULL;
    /* sequences and references fill with empty and null ones, whatever is set */
    if (defined != H5D_FILL_VALUE_USER_DEFINED || esdm_type_needs_tree(type_id))
        return Py_NewRef(Py_None);
    if (esdm_type_is_vlen_string(type_id)) {
        char *text = NULL;
        if (H5Pget_fill_value(dcpl_id, type_id, &text) < 0)
            return NULL;
        if (!(fill = PyBytes_FromString(text ? text : "")))
            esdm_python_error("reading the fill value");
        H5free_memory(text);
        return fill;
    }
    if (!(fill = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)H5Tget_size(type_id)))) {
        esdm_python_error("reading the fill value");
        return NULL;
    }
    if (H5Pget_fill_value(dcpl_id, type_id, PyBytes_AS_STRING(fill)) < 0)
        Py_CLEAR(fill);
    return fill;
}

/* The chunk shape of a chunked layout as a tuple, or None. GIL held. */
static PyObject *
chunk_shape(hid_t dcpl_id)
{
    hsize_t dims[H5S_MAX_RANK];
    int     rank;

    if (H5Pget_layout(dcpl_id) != H5D_CHUNKED)
        return Py_NewRef(Py_None);
    if ((rank = H5Pget_chunk(dcpl_id, H5S_MAX_RANK, dims)) < 0)
        return NULL;
    PyObject *shape = PyTuple_New(rank);
    for (int i = 0; shape && i < rank; i++)
        PyTuple_SET_ITEM(shape, i, PyLong_FromUnsignedLongLong(dims[i]));
    if (!shape)
        esdm_python_error("reading the chunk shape");
    return shape;
}

/* The filter pipeline of a creation property list as a list of
 * (id, flags, (client data, ...)), as H5Pget_filter2 gives it. GIL held. */
static PyObject *
filter_list(hid_t dcpl_id)
{
    int       nfilters = H5Pget_nfilters(dcpl_id);
    PyObject *filters  = nfilters < 0 ? NULL : PyList_New(nfilters);

    for (int i = 0; filters && i < nfilters; i++) {
        unsigned int flags, *values = NULL;
        size_t       nvalues = 0;
        PyObject    *data    = NULL;
        /* once for the number of values, once for them */
        H5Z_filter_t id =
            H5Pget_filter2(dcpl_id, (unsigned)i, &flags, &nvalues, NULL, 0, NULL, NULL);
        if (id >= 0 && nvalues && !(values = malloc(nvalues * sizeof *values)))
            id = -1;
        if (id >= 0 && nvalues)
            id = H5Pget_filter2(dcpl_id, (unsigned)i, &flags, &nvalues, values, 0, NULL, NULL);
        if (id >= 0 && (data = PyTuple_New((Py_ssize_t)nvalues)))
            for (size_t v = 0; v < nvalues; v++)
                PyTuple_SET_ITEM(data, (Py_ssize_t)v, PyLong_FromUnsignedLong(values[v]));
        free(values);
        PyObject *entry = data ? Py_BuildValue("(iIN)", (int)id, flags, data) : NULL;
        if (!entry) {
            if (PyErr_Occurred())
                esdm_python_error("reading the filters");
            Py_CLEAR(filters);
            break;
        }
        PyList_SET_ITEM(filters, i, entry);
    }
    return filters;
}

/* Report the filters (id, flags, (client data, ...)) in a dataset's creation
 * property list: those a program set, all of them, as HDF5 does; those that
 * say what the codecs of a dataset written otherwise do (``derived``) only
 * where this HDF5 has the filter, since a program (netCDF) refuses to read
 * through a filter it lacks, and ESDM decodes its fragments itself. 1 if any
 * is set, 0 if none, -1 on error. GIL held. */
static int
report_filters(hid_t dcpl_id, PyObject *filters, bool derived)
{
    int set = 0;
    for (Py_ssize_t i = 0; set >= 0 && i < PyList_GET_SIZE(filters); i++) {
        PyObject    *entry = PyList_GET_ITEM(filters, i), *data = PyTuple_GET_ITEM(entry, 2);
        size_t       nvalues = (size_t)PyTuple_GET_SIZE(data);
        H5Z_filter_t id      = (H5Z_filter_t)PyLong_AsLong(PyTuple_GET_ITEM(entry, 0));
        unsigned int flags   = (unsigned)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(entry, 1));
        unsigned int *values = malloc((nvalues ? nvalues : 1) * sizeof *values);
        if (!values)
            return -1;
        for (size_t v = 0; v < nvalues; v++)
            values[v] = (unsigned)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(data, (Py_ssize_t)v));
        if (!derived || H5Zfilter_avail(id) > 0)
            set = H5Pset_filter(dcpl_id, id, flags, nvalues, values) < 0 ? -1 : 1;
        free(values);
    }
    return set;
}

static hid_t
own_plist(hid_t plist_id, hid_t cls)
{
    return plist_id == H5P_DEFAULT ? H5Pcreate(cls) : H5Pcopy(plist_id);
}

void *
esdm_dataset_create(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t lcpl_id,
                    hid_t type_id, hid_t space_id, hid_t dcpl_id, hid_t dapl_id, hid_t dxpl_id,
                    void **req)
{
    esdm_obj_t      *where = obj, *dset = NULL;
    PyGILState_STATE gil;
    const char      *base = esdm_loc_name(loc, "creating a dataset");
    (void)lcpl_id, (void)dxpl_id, (void)req;

    if (!base || !esdm_plist_ok(dapl_id, H5P_DATASET_ACCESS, "creating a dataset"))
        return NULL;
    if (esdm_enter(&gil) < 0)
        return NULL;
    PyObject *spelling = esdm_type_to_py(type_id);
    PyObject *shape    = spelling ? esdm_space_to_py(space_id, false) : NULL;
    PyObject *maxshape = shape ? esdm_space_to_py(space_id, true) : NULL;
    PyObject *fill     = maxshape ? fill_value(dcpl_id, type_id) : NULL;
    PyObject *chunks   = fill ? chunk_shape(dcpl_id) : NULL;
    PyObject *filters  = chunks ? filter_list(dcpl_id) : NULL;
    PyObject *mappings = filters ? esdm_virtual_mappings(dcpl_id) : NULL; /* virtual.c */
    PyObject *segments = mappings ? esdm_external_segments(dcpl_id, dapl_id, where->file->name) : NULL;
    if (segments) { /* external.c */
        PyObject *py = esdm_call("dataset_create", "(ONOOOOOONN)", where->py,
                                 esdm_new_name(base, name), spelling, shape, maxshape, fill,
                                 chunks, filters, mappings, segments);
        mappings = segments = NULL;
        if (py && (dset = esdm_obj_new(ESDM_DATASET, where->file, py))) {
            dset->type_id = H5Tcopy(type_id);
            dset->dcpl_id = own_plist(dcpl_id, H5P_DATASET_CREATE);
            dset->dapl_id = own_plist(dapl_id, H5P_DATASET_ACCESS);
            if (esdm_expand_efile_prefix(dset) < 0) {
                esdm_obj_release(dset);
                dset = NULL;
            }
        }
    }
    Py_XDECREF(mappings);
    Py_XDECREF(spelling);
    Py_XDECREF(shape);
    Py_XDECREF(maxshape);
    Py_XDECREF(fill);
    Py_XDECREF(chunks);
    Py_XDECREF(filters);
    esdm_leave(gil);
    return dset;
}

herr_t
esdm_dataset_init(esdm_obj_t *dset, hid_t dapl_id)
{
    PyObject *info   = esdm_call("dataset_describe", "(O)", dset->py);
    herr_t    status = -1;

    if (!info)
        return -1;
    if ((dset->type_id = esdm_type_from_py(PyTuple_GET_ITEM(info, 0))) < 0 ||
        (dset->dcpl_id = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        (dset->dapl_id = own_plist(dapl_id, H5P_DATASET_ACCESS)) < 0)
        goto done;
    /* What H5Dget_create_plist shows for a dataset opened from the store:
     * its fill value, its filters, the chunk shape it was created with, and
     * otherwise chunking where a dimension can grow or filters are reported
     * (HDF5 filters only chunks), since HDF5 applications (netCDF among them)
     * expect extendible datasets chunked. */
    PyObject   *stored = PyTuple_GET_ITEM(info, 3); /* None: HDF5's default fill */
    const char *fill   = stored == Py_None ? NULL : PyBytes_AsString(stored);
    const void *value  = esdm_type_is_vlen_string(dset->type_id) ? (const void *)&fill : fill;
    if (fill && H5Pset_fill_value(dset->dcpl_id, dset->type_id, value) < 0)
        goto done;
    PyObject  *shape = PyTuple_GET_ITEM(info, 1), *maxshape = PyTuple_GET_ITEM(info, 2);
    Py_ssize_t rank  = shape == Py_None ? 0 : PyTuple_GET_SIZE(shape); /* None: a null dataspace */
    hsize_t    chunk[H5S_MAX_RANK];
    bool       growable = false;
    for (Py_ssize_t i = 0; i < rank && i < H5S_MAX_RANK; i++) {
        long long extent = PyLong_AsLongLong(PyTuple_GET_ITEM(shape, i));
        growable |= PyLong_AsLongLong(PyTuple_GET_ITEM(maxshape, i)) != extent;
        chunk[i] = extent > 0 ? (hsize_t)extent : 1;
    }
    PyObject *asked = PyTuple_GET_ITEM(info, 4);
    for (Py_ssize_t i = 0; asked != Py_None && i < rank && i < H5S_MAX_RANK; i++)
        chunk[i] = (hsize_t)PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(asked, i));
    int filtered = report_filters(dset->dcpl_id, PyTuple_GET_ITEM(info, 5),
                                  PyTuple_GET_ITEM(info, 6) == Py_True);
    if (filtered < 0)
        goto done;
    PyObject *mappings = PyTuple_GET_ITEM(info, 7); /* a virtual dataset's (virtual.c) */
    PyObject *segments = PyTuple_GET_ITEM(info, 8); /* external storage (external.c) */
    if (esdm_virtual_restore(dset->dcpl_id, mappings) < 0 ||
        esdm_external_restore(dset->dcpl_id, segments) < 0 || esdm_expand_efile_prefix(dset) < 0)
        goto done;
    bool plain   = mappings == Py_None && segments == Py_None;
    bool chunked = plain && (growable || asked != Py_None || (filtered && rank > 0));
    if (chunked && H5Pset_chunk(dset->dcpl_id, (int)rank, chunk) < 0)
        goto done;
    status = 0;
done:
    Py_DECREF(info);
    return status;
}

void *
esdm_dataset_open(void *obj, const H5VL_loc_params_t *loc, const char *name, hid_t dapl_id,
                  hid_t dxpl_id, void **req)
{
    esdm_obj_t      *dset = NULL;
    PyGILState_STATE gil;
    const char      *base = esdm_loc_name(loc, "opening a dataset");
    (void)dxpl_id, (void)req;

    if (!base || esdm_enter(&gil) < 0)
        return NULL;
    dset = esdm_open_node(obj, esdm_name(base, name), dapl_id);
    if (dset && dset->kind != ESDM_DATASET) {
        esdm_error(esdm_err_argument, "esdm VOL: %s is a group, not a dataset", name);
        esdm_obj_release(dset);
        dset = NULL;
    }
    esdm_leave(gil);
    return dset;
}

hid_t
esdm_dataset_space(esdm_obj_t *dset)
{
    hid_t     space_id = H5I_INVALID_HID;
    PyObject *extent   = esdm_call("dataset_extent", "(O)", dset->py);

    if (extent) {
        space_id = esdm_space_from_py(PyTuple_GET_ITEM(extent, 0), PyTuple_GET_ITEM(extent, 1));
        Py_DECREF(extent);
    }
    return space_id;
}

static herr_t
set_extent(esdm_obj_t *dset, const hsize_t *size)
{
    /* as HDF5: only a chunked dataset changes its extent (one reopened
     * reports chunks if it can grow or was created chunked) */
    if (H5Pget_layout(dset->dcpl_id) != H5D_CHUNKED) {
        esdm_error(esdm_err_argument, "esdm VOL: H5Dset_extent needs a chunked dataset");
        return -1;
    }
    hid_t space_id = esdm_dataset_space(dset);
    int   rank     = space_id < 0 ? -1 : H5Sget_simple_extent_ndims(space_id);
    esdm_close(space_id);
    if (rank < 0)
        return -1;
    PyObject *shape = PyTuple_New(rank);
    for (int i = 0; shape && i < rank; i++)
        PyTuple_SET_ITEM(shape, i, PyLong_FromUnsignedLongLong(size[i]));
    PyObject *done = shape ? esdm_call("dataset_set_extent", "(ON)", dset->py, shape) : NULL;
    Py_XDECREF(done);
    return done ? 0 : -1;
}

herr_t
esdm_dataset_get(void *obj, H5VL_dataset_get_args_t *args, hid_t dxpl_id, void **req)
{
    esdm_obj_t      *dset = obj;
    PyGILState_STATE gil;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_DATASET_GET_DAPL:
            return (args->args.get_dapl.dapl_id = H5Pcopy(dset->dapl_id)) < 0 ? -1 : 0;
        case H5VL_DATASET_GET_DCPL:
            return (args->args.get_dcpl.dcpl_id = H5Pcopy(dset->dcpl_id)) < 0 ? -1 : 0;
        case H5VL_DATASET_GET_TYPE:
            return (args->args.get_type.type_id = H5Tcopy(dset->type_id)) < 0 ? -1 : 0;
        case H5VL_DATASET_GET_SPACE:
            if (esdm_enter(&gil) < 0)
                return -1;
            args->args.get_space.space_id = esdm_dataset_space(dset);
            esdm_leave(gil);
            return args->args.get_space.space_id < 0 ? -1 : 0;
        case H5VL_DATASET_GET_SPACE_STATUS:
            /* Unwritten regions read as the fill value; ESDM allocates on write. */
            *args->args.get_space_status.status = H5D_SPACE_STATUS_ALLOCATED;
            return 0;
        case H5VL_DATASET_GET_STORAGE_SIZE:
            return esdm_dataset_storage_size(dset, args->args.get_storage_size.storage_size);
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: dataset query %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

herr_t
esdm_dataset_specific(void *obj, H5VL_dataset_specific_args_t *args, hid_t dxpl_id, void **req)
{
    PyGILState_STATE gil;
    herr_t           status;
    (void)dxpl_id, (void)req;

    switch (args->op_type) {
        case H5VL_DATASET_SET_EXTENT:
            if (esdm_enter(&gil) < 0)
                return -1;
            status = set_extent(obj, args->args.set_extent.size);
            esdm_leave(gil);
            return status;
        case H5VL_DATASET_FLUSH:
            /* Data becomes visible with the container's next commit (H5Fflush),
             * which a SWMR writer's H5Dflush makes. */
            return esdm_file_swmr_flush(((esdm_obj_t *)obj)->file);
        case H5VL_DATASET_REFRESH:
            return esdm_file_refresh(((esdm_obj_t *)obj)->file);
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: dataset operation %d is not supported yet",
                       (int)args->op_type);
            return -1;
    }
}

herr_t
esdm_dataset_optional(void *obj, H5VL_optional_args_t *args, hid_t dxpl_id, void **req)
{
    (void)dxpl_id, (void)req;
    return esdm_dataset_chunk_op(obj, args); /* chunks.c */
}
