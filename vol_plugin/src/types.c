/*
 * HDF5 datatypes and dataspaces <-> what the bridge understands.
 *
 * Types cross as numpy's dtype.str ("<i4", ">f8", "|S16") or "vlen-str"
 * (esdm_hpc/vol/dtypes.py). Only types whose bytes numpy reads the same way
 * map: full-width integers, IEEE floats, fixed and variable strings. The
 * rest (compound, enum, array, ...) is refused by name until the core and
 * this file learn them.
 */
#include "esdm_vol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
class_name(H5T_class_t cls)
{
    switch (cls) {
        case H5T_INTEGER:   return "integer";
        case H5T_FLOAT:     return "floating-point";
        case H5T_TIME:      return "time";
        case H5T_STRING:    return "string";
        case H5T_BITFIELD:  return "bitfield";
        case H5T_OPAQUE:    return "opaque";
        case H5T_COMPOUND:  return "compound";
        case H5T_REFERENCE: return "reference";
        case H5T_ENUM:      return "enum";
        case H5T_VLEN:      return "variable-length sequence";
        case H5T_ARRAY:     return "array";
        default:            return "unknown";
    }
}

static char
byte_order(hid_t type_id, size_t size)
{
    if (size == 1)
        return '|';
    return H5Tget_order(type_id) == H5T_ORDER_BE ? '>' : '<';
}

/* IEEE 754 binary16/32/64 layouts: sign position, exponent position and
 * size, mantissa size. numpy reads nothing else. */
static bool
is_ieee(hid_t type_id, size_t size)
{
    static const size_t layouts[][5] = {
        {2, 15, 10, 5, 10}, {4, 31, 23, 8, 23}, {8, 63, 52, 11, 52}};
    size_t spos, epos, esize, mpos, msize;

    if (H5Tget_fields(type_id, &spos, &epos, &esize, &mpos, &msize) < 0 || mpos != 0 ||
        H5Tget_offset(type_id) != 0)
        return false;
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        if (layouts[i][0] == size && layouts[i][1] == spos && layouts[i][2] == epos &&
            layouts[i][3] == esize && layouts[i][4] == msize)
            return true;
    return false;
}

bool
esdm_type_is_vlen_string(hid_t type_id)
{
    return H5Tget_class(type_id) == H5T_STRING && H5Tis_variable_str(type_id) > 0;
}

int
esdm_type_spelling(hid_t type_id, char *spelling, size_t size)
{
    H5T_class_t cls   = H5Tget_class(type_id);
    size_t      bytes = H5Tget_size(type_id);

    switch (cls) {
        case H5T_INTEGER:
            if ((bytes == 1 || bytes == 2 || bytes == 4 || bytes == 8) &&
                H5Tget_precision(type_id) == 8 * bytes && H5Tget_offset(type_id) == 0) {
                snprintf(spelling, size, "%c%c%zu", byte_order(type_id, bytes),
                         H5Tget_sign(type_id) == H5T_SGN_NONE ? 'u' : 'i', bytes);
                return 0;
            }
            break;
        case H5T_FLOAT:
            if (is_ieee(type_id, bytes)) {
                snprintf(spelling, size, "%cf%zu", byte_order(type_id, bytes), bytes);
                return 0;
            }
            break;
        case H5T_STRING:
            if (esdm_type_is_vlen_string(type_id))
                snprintf(spelling, size, "%s", ESDM_VLEN_STR);
            else
                snprintf(spelling, size, "|S%zu", bytes);
            return 0;
        default:
            break;
    }
    esdm_error(esdm_err_unsupported, "esdm VOL: %zu-byte %s datatypes are not supported yet", bytes,
               class_name(cls));
    return -1;
}

hid_t
esdm_type_from_spelling(const char *spelling)
{
    hid_t  type_id = H5I_INVALID_HID;
    size_t bytes;
    char   order, kind;

    if (!strcmp(spelling, ESDM_VLEN_STR)) {
        if ((type_id = H5Tcopy(H5T_C_S1)) >= 0 &&
            (H5Tset_size(type_id, H5T_VARIABLE) < 0 || H5Tset_cset(type_id, H5T_CSET_UTF8) < 0)) {
            esdm_close(type_id);
            return H5I_INVALID_HID;
        }
        return type_id;
    }
    if (sscanf(spelling, "%c%c%zu", &order, &kind, &bytes) != 3)
        goto unknown;
    bool big = order == '>';
    switch (kind) {
        case 'S':
            /* numpy's bytes are padded with NULs, not terminated by one */
            if ((type_id = H5Tcopy(H5T_C_S1)) >= 0 &&
                (H5Tset_size(type_id, bytes) < 0 || H5Tset_strpad(type_id, H5T_STR_NULLPAD) < 0)) {
                esdm_close(type_id);
                return H5I_INVALID_HID;
            }
            return type_id;
        case 'i':
            switch (bytes) {
                case 1: return H5Tcopy(H5T_STD_I8LE);
                case 2: return H5Tcopy(big ? H5T_STD_I16BE : H5T_STD_I16LE);
                case 4: return H5Tcopy(big ? H5T_STD_I32BE : H5T_STD_I32LE);
                case 8: return H5Tcopy(big ? H5T_STD_I64BE : H5T_STD_I64LE);
            }
            break;
        case 'u':
            switch (bytes) {
                case 1: return H5Tcopy(H5T_STD_U8LE);
                case 2: return H5Tcopy(big ? H5T_STD_U16BE : H5T_STD_U16LE);
                case 4: return H5Tcopy(big ? H5T_STD_U32BE : H5T_STD_U32LE);
                case 8: return H5Tcopy(big ? H5T_STD_U64BE : H5T_STD_U64LE);
            }
            break;
        case 'f':
            switch (bytes) {
                case 2: return H5Tcopy(big ? H5T_IEEE_F16BE : H5T_IEEE_F16LE);
                case 4: return H5Tcopy(big ? H5T_IEEE_F32BE : H5T_IEEE_F32LE);
                case 8: return H5Tcopy(big ? H5T_IEEE_F64BE : H5T_IEEE_F64LE);
            }
            break;
    }
unknown:
    esdm_error(esdm_err_unsupported, "esdm VOL: the core's type %s has no HDF5 counterpart yet",
               spelling);
    return H5I_INVALID_HID;
}

hid_t
esdm_space_from_py(PyObject *shape, PyObject *maxshape)
{
    Py_ssize_t rank = PyTuple_Size(shape);
    hsize_t    dims[H5S_MAX_RANK], maxdims[H5S_MAX_RANK];

    if (rank < 0 || rank > H5S_MAX_RANK || (maxshape && PyTuple_Size(maxshape) != rank)) {
        PyErr_Clear();
        esdm_error(esdm_err_argument, "esdm VOL: the core described a dataspace HDF5 cannot hold");
        return H5I_INVALID_HID;
    }
    if (rank == 0)
        return H5Screate(H5S_SCALAR);
    for (Py_ssize_t i = 0; i < rank; i++) {
        long long extent = PyLong_AsLongLong(PyTuple_GetItem(shape, i));
        long long limit  = maxshape ? PyLong_AsLongLong(PyTuple_GetItem(maxshape, i)) : extent;
        if (PyErr_Occurred()) {
            esdm_python_error("reading a dataspace");
            return H5I_INVALID_HID;
        }
        dims[i]    = (hsize_t)extent;
        maxdims[i] = limit < 0 ? H5S_UNLIMITED : (hsize_t)limit;
    }
    return H5Screate_simple((int)rank, dims, maxdims);
}

PyObject *
esdm_space_to_py(hid_t space_id, bool maxdims)
{
    hsize_t dims[H5S_MAX_RANK], limits[H5S_MAX_RANK];
    int     rank;

    switch (H5Sget_simple_extent_type(space_id)) {
        case H5S_SCALAR:
            return PyTuple_New(0);
        case H5S_SIMPLE:
            break;
        case H5S_NULL:
            esdm_unsupported("a null dataspace (no elements, as h5py.Empty)");
            return NULL;
        default:
            esdm_error(esdm_err_argument, "esdm VOL: not a valid dataspace");
            return NULL;
    }
    if ((rank = H5Sget_simple_extent_dims(space_id, dims, limits)) < 0)
        return NULL;
    PyObject *tuple = PyTuple_New(rank);
    for (int i = 0; tuple && i < rank; i++) {
        long long value = (long long)(maxdims ? limits[i] : dims[i]);
        if (maxdims && limits[i] == H5S_UNLIMITED)
            value = -1;
        PyTuple_SET_ITEM(tuple, i, PyLong_FromLongLong(value));
    }
    if (!tuple)
        esdm_python_error("describing a dataspace");
    return tuple;
}
