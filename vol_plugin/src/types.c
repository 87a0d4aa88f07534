/*
 * HDF5 datatypes and dataspaces <-> what the bridge understands.
 *
 * Types cross as Python values (esdm_hpc/vol/dtypes.py): numpy's dtype.str
 * ("<i4", ">f8", "|S16") or "vlen-str" for the atomic types numpy reads the
 * same way (full-width integers, IEEE floats, fixed and variable strings),
 * and a dict with a "class" for compound, array, enum, opaque, bitfield,
 * string (other paddings), variable-length sequence and (object) reference
 * types, carrying what HDF5 needs to rebuild them (member names and
 * offsets, enum names and values, opaque tags). The rest (old-style and
 * region references, time, ...) is refused by name until the core and this
 * file learn them.
 */
#include "esdm_vol.h"

#include <stdarg.h>
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

/* Integers and bitfields numpy can hold: every bit of 1, 2, 4 or 8 bytes. */
static bool
is_full_width(hid_t type_id, size_t size)
{
    return (size == 1 || size == 2 || size == 4 || size == 8) && H5Tget_precision(type_id) == 8 * size &&
           H5Tget_offset(type_id) == 0;
}

bool
esdm_type_is_vlen_string(hid_t type_id)
{
    return H5Tget_class(type_id) == H5T_STRING && H5Tis_variable_str(type_id) > 0;
}

static PyObject *
refuse(hid_t type_id, const char *where)
{
    esdm_error(esdm_err_unsupported, "esdm VOL: %zu-byte %s datatypes%s are not supported yet",
               H5Tget_size(type_id), class_name(H5Tget_class(type_id)), where);
    return NULL;
}

/* ---- HDF5 -> spelling ------------------------------------------------------------------------ */

static PyObject *spell(hid_t type_id, bool member);

/* The spelling of a type HDF5 hands out as a new ID (a member's, a base type). */
static PyObject *
spell_owned(hid_t type_id, bool member)
{
    if (type_id < 0)
        return NULL;
    PyObject *spelling = spell(type_id, member);
    esdm_close(type_id);
    return spelling;
}

/* A string HDF5 allocated (member names, tags) as a str; frees it. */
static PyObject *
take_string(char *text)
{
    if (!text)
        return NULL;
    PyObject *str = PyUnicode_FromString(text);
    H5free_memory(text);
    return str;
}

/* Py_BuildValue with "N" items, none of which may be NULL: a NULL item
 * means an HDF5 error is already on the stack, which a Python SystemError
 * ("NULL object passed") would only obscure. Consumes the items. */
static PyObject *
build(const char *format, int nitems, PyObject *items[], ...)
{
    for (int i = 0; i < nitems; i++)
        if (!items[i]) {
            for (int j = 0; j < nitems; j++)
                Py_XDECREF(items[j]);
            return NULL;
        }
    va_list args;
    va_start(args, items);
    PyObject *built = Py_VaBuildValue(format, args);
    va_end(args);
    return built;
}

static PyObject *
spell_compound(hid_t type_id)
{
    int       n       = H5Tget_nmembers(type_id);
    PyObject *members = n < 0 ? NULL : PyList_New(n);

    for (int i = 0; members && i < n; i++) {
        PyObject *parts[] = {take_string(H5Tget_member_name(type_id, (unsigned)i)),
                             spell_owned(H5Tget_member_type(type_id, (unsigned)i), true)};
        PyObject *member  = build("(NnN)", 2, parts, parts[0],
                                  (Py_ssize_t)H5Tget_member_offset(type_id, (unsigned)i), parts[1]);
        if (!member)
            Py_CLEAR(members);
        else
            PyList_SET_ITEM(members, i, member);
    }
    return build("{s:s,s:n,s:N}", 1, &members, "class", "compound", "size",
                 (Py_ssize_t)H5Tget_size(type_id), "members", members);
}

static PyObject *
spell_array(hid_t type_id)
{
    hsize_t   dims[H5S_MAX_RANK];
    int       rank     = H5Tget_array_dims2(type_id, dims);
    PyObject *parts[2] = {rank < 0 ? NULL : PyList_New(rank), NULL};

    for (int i = 0; parts[0] && i < rank; i++)
        PyList_SET_ITEM(parts[0], i, PyLong_FromUnsignedLongLong(dims[i]));
    parts[1] = spell_owned(H5Tget_super(type_id), true);
    return build("{s:s,s:N,s:N}", 2, parts, "class", "array", "shape", parts[0], "base", parts[1]);
}

/* Enum values cross as Python ints: converted from the base type to the
 * widest native integer of its signedness. */
static PyObject *
spell_enum(hid_t type_id)
{
    hid_t     base_id  = H5Tget_super(type_id);
    bool      sign     = H5Tget_sign(base_id) != H5T_SGN_NONE;
    int       n        = H5Tget_nmembers(type_id);
    PyObject *parts[2] = {spell(base_id, true), n < 0 ? NULL : PyList_New(n)};

    for (int i = 0; parts[0] && parts[1] && i < n; i++) {
        union {
            long long          s;
            unsigned long long u;
        } value         = {0};
        PyObject *pair[] = {take_string(H5Tget_member_name(type_id, (unsigned)i)), NULL};
        if (H5Tget_member_value(type_id, (unsigned)i, &value) >= 0 &&
            H5Tconvert(base_id, sign ? H5T_NATIVE_LLONG : H5T_NATIVE_ULLONG, 1, &value, NULL,
                       H5P_DEFAULT) >= 0)
            pair[1] = sign ? PyLong_FromLongLong(value.s) : PyLong_FromUnsignedLongLong(value.u);
        PyObject *member = build("(NN)", 2, pair, pair[0], pair[1]);
        if (!member)
            Py_CLEAR(parts[1]);
        else
            PyList_SET_ITEM(parts[1], i, member);
    }
    esdm_close(base_id);
    return build("{s:s,s:N,s:N}", 2, parts, "class", "enum", "base", parts[0], "members", parts[1]);
}

static const char *const pads[]  = {"nullterm", "nullpad", "spacepad"}; /* by H5T_str_t */
static const char *const csets[] = {"ascii", "utf-8"};                 /* by H5T_cset_t */

/* numpy's "|S<n>" is a NUL-padded ASCII string; other paddings and UTF-8
 * are spelled out so that the type comes back equal (H5Tequal). */
static PyObject *
spell_string(hid_t type_id, size_t bytes)
{
    H5T_str_t  pad  = H5Tget_strpad(type_id);
    H5T_cset_t cset = H5Tget_cset(type_id);

    if (pad < 0 || pad > H5T_STR_SPACEPAD || cset < 0 || cset > H5T_CSET_UTF8)
        return refuse(type_id, " (with this padding or character set)");
    if (pad == H5T_STR_NULLPAD && cset == H5T_CSET_ASCII)
        return PyUnicode_FromFormat("|S%zu", bytes);
    return Py_BuildValue("{s:s,s:n,s:s,s:s}", "class", "string", "size", (Py_ssize_t)bytes, "pad",
                         pads[pad], "cset", csets[cset]);
}

static PyObject *
spell(hid_t type_id, bool member)
{
    H5T_class_t cls   = H5Tget_class(type_id);
    size_t      bytes = H5Tget_size(type_id);

    switch (cls) {
        case H5T_INTEGER:
            if (is_full_width(type_id, bytes))
                return PyUnicode_FromFormat("%c%c%zu", byte_order(type_id, bytes),
                                            H5Tget_sign(type_id) == H5T_SGN_NONE ? 'u' : 'i', bytes);
            break;
        case H5T_FLOAT:
            if (is_ieee(type_id, bytes))
                return PyUnicode_FromFormat("%cf%zu", byte_order(type_id, bytes), bytes);
            /* C's long double, which numpy's longdouble is (x87's 80 bits in 16 bytes) */
            if (bytes == sizeof(long double) && bytes > sizeof(double) && H5Tequal(type_id, H5T_NATIVE_LDOUBLE) > 0)
                return PyUnicode_FromFormat("%cf%zu", byte_order(type_id, bytes), bytes);
            break;
        case H5T_STRING:
            if (!esdm_type_is_vlen_string(type_id))
                return spell_string(type_id, bytes);
            if (!member && H5Tget_cset(type_id) == H5T_CSET_ASCII)
                return Py_BuildValue("{s:s,s:s}", "class", ESDM_VLEN_STR, "cset", "ascii");
            if (!member)
                return PyUnicode_FromString(ESDM_VLEN_STR);
            return refuse(type_id, " (variable-length strings) inside compound or array types");
        case H5T_COMPOUND:
            return spell_compound(type_id);
        case H5T_ARRAY:
            return spell_array(type_id);
        case H5T_ENUM:
            return spell_enum(type_id);
        case H5T_OPAQUE: {
            PyObject *tag = take_string(H5Tget_tag(type_id));
            return build("{s:s,s:n,s:N}", 1, &tag, "class", "opaque", "size", (Py_ssize_t)bytes, "tag",
                         tag);
        }
        case H5T_REFERENCE: {
            htri_t object = H5Tequal(type_id, H5T_STD_REF);
            htri_t address = object > 0 ? 0 : H5Tequal(type_id, H5T_STD_REF_OBJ);
            if (object > 0)
                return Py_BuildValue("{s:s}", "class", "reference");
            if (address > 0)
                return Py_BuildValue("{s:s,s:s}", "class", "reference", "format", "address");
            return object < 0 || address < 0
                       ? NULL
                       : refuse(type_id, " other than H5T_STD_REF and H5T_STD_REF_OBJ (a region reference)");
        }
        case H5T_VLEN: {
            PyObject *base = spell_owned(H5Tget_super(type_id), true);
            return build("{s:s,s:N}", 1, &base, "class", "vlen", "base", base);
        }
        case H5T_BITFIELD:
            if (is_full_width(type_id, bytes))
                return Py_BuildValue("{s:s,s:N}", "class", "bitfield", "base",
                                     PyUnicode_FromFormat("%cu%zu", byte_order(type_id, bytes), bytes));
            break;
        default:
            break;
    }
    return refuse(type_id, "");
}

PyObject *
esdm_type_to_py(hid_t type_id)
{
    PyObject *spelling = spell(type_id, false);
    if (!spelling && PyErr_Occurred())
        esdm_python_error("describing a datatype");
    return spelling;
}

/* ---- spelling -> HDF5 ------------------------------------------------------------------------ */

/* HDF5's standard integer ('i', 'u') or bitfield ('b') type of a size and order (a new ID). */
static hid_t
integer_type(char kind, size_t bytes, bool big)
{
    const hid_t little[3][4] = {{H5T_STD_I8LE, H5T_STD_I16LE, H5T_STD_I32LE, H5T_STD_I64LE},
                                {H5T_STD_U8LE, H5T_STD_U16LE, H5T_STD_U32LE, H5T_STD_U64LE},
                                {H5T_STD_B8LE, H5T_STD_B16LE, H5T_STD_B32LE, H5T_STD_B64LE}};
    const hid_t other[3][4]  = {{H5T_STD_I8BE, H5T_STD_I16BE, H5T_STD_I32BE, H5T_STD_I64BE},
                                {H5T_STD_U8BE, H5T_STD_U16BE, H5T_STD_U32BE, H5T_STD_U64BE},
                                {H5T_STD_B8BE, H5T_STD_B16BE, H5T_STD_B32BE, H5T_STD_B64BE}};
    int         row = kind == 'i' ? 0 : kind == 'u' ? 1 : 2;
    int         col = bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : bytes == 8 ? 3 : -1;

    return col < 0 ? H5I_INVALID_HID : H5Tcopy(big ? other[row][col] : little[row][col]);
}

static hid_t
float_type(size_t bytes, bool big)
{
    switch (bytes) {
        case 2: return H5Tcopy(big ? H5T_IEEE_F16BE : H5T_IEEE_F16LE);
        case 4: return H5Tcopy(big ? H5T_IEEE_F32BE : H5T_IEEE_F32LE);
        case 8: return H5Tcopy(big ? H5T_IEEE_F64BE : H5T_IEEE_F64LE);
        default:
            return bytes == sizeof(long double) && bytes > sizeof(double) &&
                           (H5Tget_order(H5T_NATIVE_LDOUBLE) == H5T_ORDER_BE) == big
                       ? H5Tcopy(H5T_NATIVE_LDOUBLE)
                       : H5I_INVALID_HID;
    }
}

/* A string type of a size (H5T_VARIABLE for vlen-str), or H5I_INVALID_HID. */
static hid_t
string_type(size_t bytes)
{
    hid_t type_id = H5Tcopy(H5T_C_S1);
    /* numpy's bytes are padded with NULs, not terminated by one; the core's
     * variable-length strings are unicode */
    if (type_id >= 0 && (H5Tset_size(type_id, bytes) < 0 ||
                         (bytes == H5T_VARIABLE ? H5Tset_cset(type_id, H5T_CSET_UTF8)
                                                : H5Tset_strpad(type_id, H5T_STR_NULLPAD)) < 0)) {
        esdm_close(type_id);
        return H5I_INVALID_HID;
    }
    return type_id;
}

/* An atomic type from numpy's dtype.str; kind 'b' makes "<u2" a bitfield. */
static hid_t
atomic_type(const char *spelling, char as)
{
    size_t bytes;
    char   order, kind;

    if (!strcmp(spelling, ESDM_VLEN_STR))
        return string_type(H5T_VARIABLE);
    if (sscanf(spelling, "%c%c%zu", &order, &kind, &bytes) != 3)
        return H5I_INVALID_HID;
    switch (as ? as : kind) {
        case 'S': return string_type(bytes);
        case 'f': return float_type(bytes, order == '>');
        case 'i':
        case 'u':
        case 'b': return integer_type(as ? as : kind, bytes, order == '>');
        default:  return H5I_INVALID_HID;
    }
}

static hid_t from_py(PyObject *spelling, char as);

/* The index of name in names, -1 if absent (which HDF5 then refuses). */
static int
lookup(const char *const names[], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

/* A compound type's members: [name, offset, spelling] each. */
static herr_t
insert_members(hid_t type_id, PyObject *members)
{
    for (Py_ssize_t i = 0; i < PySequence_Size(members); i++) {
        PyObject   *member = PySequence_GetItem(members, i), *item = member ? PySequence_Tuple(member) : NULL;
        const char *name;
        Py_ssize_t  offset;
        PyObject   *spelling;
        hid_t       member_id = H5I_INVALID_HID;
        herr_t      status    = -1;
        if (item && PyArg_ParseTuple(item, "snO", &name, &offset, &spelling) &&
            (member_id = from_py(spelling, 0)) >= 0)
            status = H5Tinsert(type_id, name, (size_t)offset, member_id);
        esdm_close(member_id);
        Py_XDECREF(item);
        Py_XDECREF(member);
        if (status < 0)
            return -1;
    }
    return PyErr_Occurred() ? -1 : 0;
}

static herr_t
insert_enum_values(hid_t type_id, PyObject *members)
{
    hid_t base_id = H5Tget_super(type_id);
    bool  sign    = H5Tget_sign(base_id) != H5T_SGN_NONE;
    herr_t status = base_id < 0 ? -1 : 0;

    for (Py_ssize_t i = 0; status == 0 && i < PySequence_Size(members); i++) {
        PyObject   *member = PySequence_GetItem(members, i), *item = member ? PySequence_Tuple(member) : NULL;
        const char *name;
        PyObject   *number;
        union {
            long long          s;
            unsigned long long u;
        } value = {0};
        status  = -1;
        if (item && PyArg_ParseTuple(item, "sO", &name, &number)) {
            if (sign)
                value.s = PyLong_AsLongLong(number);
            else
                value.u = PyLong_AsUnsignedLongLong(number);
            if (!PyErr_Occurred() &&
                H5Tconvert(sign ? H5T_NATIVE_LLONG : H5T_NATIVE_ULLONG, base_id, 1, &value, NULL,
                           H5P_DEFAULT) >= 0)
                status = H5Tenum_insert(type_id, name, &value);
        }
        Py_XDECREF(item);
        Py_XDECREF(member);
    }
    esdm_close(base_id);
    return status;
}

static hid_t
composite_type(PyObject *spelling)
{
    const char *cls     = PyUnicode_AsUTF8(PyDict_GetItemString(spelling, "class"));
    PyObject   *members = PyDict_GetItemString(spelling, "members");
    PyObject   *base    = PyDict_GetItemString(spelling, "base");
    PyObject   *size    = PyDict_GetItemString(spelling, "size");
    hid_t       type_id = H5I_INVALID_HID, base_id = H5I_INVALID_HID;
    herr_t      status  = -1;

    if (!cls)
        return H5I_INVALID_HID;
    if (!strcmp(cls, "compound") && size && members) {
        if ((type_id = H5Tcreate(H5T_COMPOUND, PyLong_AsSize_t(size))) >= 0)
            status = insert_members(type_id, members);
    }
    else if (!strcmp(cls, "array") && base) {
        hsize_t    dims[H5S_MAX_RANK];
        PyObject  *shape = PyDict_GetItemString(spelling, "shape");
        Py_ssize_t rank  = shape ? PySequence_Size(shape) : -1;
        for (Py_ssize_t i = 0; i < rank && i < H5S_MAX_RANK; i++) {
            PyObject *extent = PySequence_GetItem(shape, i);
            dims[i]          = extent ? (hsize_t)PyLong_AsUnsignedLongLong(extent) : 0;
            Py_XDECREF(extent);
        }
        if (rank >= 0 && rank <= H5S_MAX_RANK && !PyErr_Occurred() && (base_id = from_py(base, 0)) >= 0 &&
            (type_id = H5Tarray_create2(base_id, (unsigned)rank, dims)) >= 0)
            status = 0;
    }
    else if (!strcmp(cls, "enum") && base && members) {
        if ((base_id = from_py(base, 0)) >= 0 && (type_id = H5Tenum_create(base_id)) >= 0)
            status = insert_enum_values(type_id, members);
    }
    else if (!strcmp(cls, "opaque") && size) {
        PyObject   *tag  = PyDict_GetItemString(spelling, "tag");
        const char *text = tag ? PyUnicode_AsUTF8(tag) : NULL;
        if (text && (type_id = H5Tcreate(H5T_OPAQUE, PyLong_AsSize_t(size))) >= 0)
            status = H5Tset_tag(type_id, text);
    }
    else if (!strcmp(cls, "string") && size) {
        const char *pad  = PyUnicode_AsUTF8(PyDict_GetItemString(spelling, "pad"));
        const char *cset = PyUnicode_AsUTF8(PyDict_GetItemString(spelling, "cset"));
        if (pad && cset && (type_id = string_type(PyLong_AsSize_t(size))) >= 0)
            status = H5Tset_strpad(type_id, (H5T_str_t)lookup(pads, 3, pad)) < 0 ||
                             H5Tset_cset(type_id, (H5T_cset_t)lookup(csets, 2, cset)) < 0
                         ? -1
                         : 0;
    }
    else if (!strcmp(cls, ESDM_VLEN_STR)) { /* ASCII: "vlen-str" alone is UTF-8 */
        if ((type_id = string_type(H5T_VARIABLE)) >= 0)
            status = H5Tset_cset(type_id, H5T_CSET_ASCII);
    }
    else if (!strcmp(cls, "vlen") && base) {
        if ((base_id = from_py(base, 0)) >= 0 && (type_id = H5Tvlen_create(base_id)) >= 0)
            status = 0;
    }
    else if (!strcmp(cls, "reference")) {
        PyObject *format = PyDict_GetItemString(spelling, "format");
        type_id          = H5Tcopy(format ? H5T_STD_REF_OBJ : H5T_STD_REF);
        status           = type_id < 0 ? -1 : 0;
    }
    else if (!strcmp(cls, "bitfield") && base) {
        type_id = from_py(base, 'b');
        status  = type_id < 0 ? -1 : 0;
    }
    esdm_close(base_id);
    if (status < 0) {
        esdm_close(type_id);
        return H5I_INVALID_HID;
    }
    return type_id;
}

static hid_t
from_py(PyObject *spelling, char as)
{
    hid_t type_id = H5I_INVALID_HID;

    if (PyUnicode_Check(spelling)) {
        const char *text = PyUnicode_AsUTF8(spelling);
        type_id          = text ? atomic_type(text, as) : H5I_INVALID_HID;
    }
    else if (PyDict_Check(spelling))
        type_id = composite_type(spelling);
    if (type_id < 0 && !PyErr_Occurred() && H5Eget_num(H5E_DEFAULT) <= 0) {
        PyObject *text = PyObject_Repr(spelling);
        esdm_error(esdm_err_unsupported, "esdm VOL: the core's type %s has no HDF5 counterpart yet",
                   text ? PyUnicode_AsUTF8(text) : "?");
        Py_XDECREF(text);
    }
    return type_id;
}

hid_t
esdm_type_from_py(PyObject *spelling)
{
    hid_t type_id = from_py(spelling, 0);
    if (type_id < 0 && PyErr_Occurred())
        esdm_python_error("reading a type spelling");
    return type_id;
}

herr_t
esdm_type_convert(hid_t src_type_id, hid_t dst_type_id, size_t n, void *buf, const void *background,
                  hid_t dxpl_id)
{
    htri_t compound = H5Tdetect_class(dst_type_id, H5T_COMPOUND);
    size_t size     = n * H5Tget_size(dst_type_id);
    void  *bkg      = NULL;
    herr_t status;

    if (compound < 0)
        return -1;
    /* compound conversions take the members the source lacks, and the
     * padding, from the background; they need one even when it is zeros */
    if (compound && !(bkg = background ? malloc(size + 1) : calloc(size + 1, 1))) {
        esdm_error(esdm_err_argument, "esdm VOL: out of memory converting %zu values", n);
        return -1;
    }
    if (bkg && background)
        memcpy(bkg, background, size);
    status = H5Tconvert(src_type_id, dst_type_id, n, buf, bkg, dxpl_id);
    free(bkg);
    return status;
}

/* ---- dataspaces ------------------------------------------------------------------------------ */

hid_t
esdm_space_from_py(PyObject *shape, PyObject *maxshape)
{
    if (shape == Py_None)
        return H5Screate(H5S_NULL);
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
            return Py_NewRef(Py_None);
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
