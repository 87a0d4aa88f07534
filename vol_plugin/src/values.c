/*
 * Attribute values holding references or variable-length sequences <->
 * trees of Python values (esdm_hpc/vol/values.py).
 *
 * In memory such values are handles (H5R_ref_t) and pointers (hvl_t),
 * which neither numpy nor the core can hold, so they cross as trees built
 * along the HDF5 type: a compound becomes a tuple of its members, an array
 * or a sequence a list of its elements, a reference the path of the object
 * it names, anything else (a reference of the 1.10 format too: a token in
 * an haddr_t, which names an object for good) its bytes. Reading back builds
 * what HDF5 hands an application: sequences in memory it frees
 * (H5Treclaim), references made with H5Rcreate_object that it destroys
 * (H5Rdestroy).
 */
#include "esdm_vol.h"

#include <stdlib.h>
#include <string.h>

/* Whether a reference type is a handle (H5T_STD_REF) rather than an address
 * (H5T_STD_REF_OBJ, the 1.10 format: a token in an haddr_t, plain bytes). */
static bool
is_handle(hid_t reference_id)
{
    return H5Tequal(reference_id, H5T_STD_REF_OBJ) <= 0;
}

/* Whether a reference type somewhere in type_id is a handle. */
static bool
has_reference_handles(hid_t type_id)
{
    bool  found = false;
    hid_t inner;

    switch (H5Tget_class(type_id)) {
        case H5T_REFERENCE:
            return is_handle(type_id);
        case H5T_ARRAY:
            if ((inner = H5Tget_super(type_id)) < 0)
                return true;
            found = has_reference_handles(inner);
            esdm_close(inner);
            return found;
        case H5T_COMPOUND:
            for (int i = 0; !found && i < H5Tget_nmembers(type_id); i++) {
                if ((inner = H5Tget_member_type(type_id, (unsigned)i)) < 0)
                    return true;
                found = has_reference_handles(inner);
                esdm_close(inner);
            }
            return found;
        default:
            return false;
    }
}

bool
esdm_type_needs_tree(hid_t type_id)
{
    /* H5Tdetect_class counts a variable-length string as a string only */
    return H5Tdetect_class(type_id, H5T_VLEN) > 0 ||
           (H5Tdetect_class(type_id, H5T_REFERENCE) > 0 && has_reference_handles(type_id));
}

/* ---- memory -> trees ---------------------------------------------------------------------- */

static PyObject *to_py(hid_t type_id, const char *element);

/* The tree of the elements of one type laid out one after the other. */
static PyObject *
list_to_py(hid_t base_id, const char *elements, size_t n)
{
    size_t    size = H5Tget_size(base_id);
    PyObject *list = PyList_New((Py_ssize_t)n);

    for (size_t i = 0; list && i < n; i++) {
        PyObject *item = to_py(base_id, elements + i * size);
        if (!item)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

static PyObject *
compound_to_py(hid_t type_id, const char *element)
{
    int       n     = H5Tget_nmembers(type_id);
    PyObject *tuple = n < 0 ? NULL : PyTuple_New(n);

    for (int i = 0; tuple && i < n; i++) {
        hid_t       member_id = H5Tget_member_type(type_id, (unsigned)i);
        const char *member    = element + H5Tget_member_offset(type_id, (unsigned)i);
        PyObject   *item      = member_id < 0 ? NULL : to_py(member_id, member);
        esdm_close(member_id);
        if (!item)
            Py_CLEAR(tuple);
        else
            PyTuple_SET_ITEM(tuple, i, item);
    }
    return tuple;
}

static PyObject *
array_to_py(hid_t type_id, const char *element)
{
    hsize_t dims[H5S_MAX_RANK], n = 1;
    int     rank    = H5Tget_array_dims2(type_id, dims);
    hid_t   base_id = H5Tget_super(type_id);

    for (int i = 0; i < rank; i++)
        n *= dims[i];
    PyObject *list = rank < 0 || base_id < 0 ? NULL : list_to_py(base_id, element, (size_t)n);
    esdm_close(base_id);
    return list;
}

static PyObject *
sequence_to_py(hid_t type_id, const hvl_t *sequence)
{
    hid_t     base_id = H5Tget_super(type_id);
    PyObject *list    = base_id < 0 ? NULL : list_to_py(base_id, sequence->p, sequence->len);
    esdm_close(base_id);
    return list;
}

/* The absolute path of the object a reference names; None for a null one. */
static PyObject *
reference_to_py(const H5R_ref_t *ref)
{
    static const H5R_ref_t null;

    if (!memcmp(ref, &null, sizeof null))
        return Py_NewRef(Py_None);
    if (H5Rget_type(ref) != H5R_OBJECT2) {
        esdm_unsupported("storing a reference to a region or an attribute (only H5Rcreate_object)");
        return NULL;
    }
    hid_t     object_id = H5Ropen_object((H5R_ref_t *)ref, H5P_DEFAULT, H5P_DEFAULT);
    ssize_t   len       = object_id < 0 ? -1 : H5Iget_name(object_id, NULL, 0);
    char     *path      = len < 0 ? NULL : malloc((size_t)len + 1);
    PyObject *text      = NULL;

    if (path && H5Iget_name(object_id, path, (size_t)len + 1) >= 0 && !(text = PyUnicode_FromString(path)))
        esdm_python_error("naming the object a reference names");
    free(path);
    esdm_close(object_id);
    return text;
}

static PyObject *
to_py(hid_t type_id, const char *element)
{
    switch (H5Tget_class(type_id)) {
        case H5T_COMPOUND:
            return compound_to_py(type_id, element);
        case H5T_ARRAY:
            return array_to_py(type_id, element);
        case H5T_VLEN:
            return sequence_to_py(type_id, (const hvl_t *)element);
        case H5T_REFERENCE:
            if (is_handle(type_id))
                return reference_to_py((const H5R_ref_t *)element);
            /* fall through */
        default:
            return PyBytes_FromStringAndSize(element, (Py_ssize_t)H5Tget_size(type_id));
    }
}

PyObject *
esdm_values_to_py(hid_t type_id, const void *buf, size_t n)
{
    PyObject *trees = list_to_py(type_id, buf, n);
    if (!trees && PyErr_Occurred())
        esdm_python_error("describing values");
    return trees;
}

/* ---- trees -> memory ---------------------------------------------------------------------- */

/* References are recreated by name from the file's root group, which is
 * opened (as an ID HDF5 can take) at the first one. */
typedef struct {
    esdm_file_t *file;
    hid_t        root_id;
} rebuild_t;

static herr_t from_py(rebuild_t *ctx, hid_t type_id, PyObject *tree, char *element);

static herr_t
mismatch(const char *expected)
{
    esdm_error(esdm_err_argument, "esdm VOL: the core returned a value that is not %s", expected);
    return -1;
}

static herr_t
list_from_py(rebuild_t *ctx, hid_t base_id, PyObject *list, char *elements, size_t n)
{
    size_t size = H5Tget_size(base_id);

    if (!PyList_Check(list) || (size_t)PyList_GET_SIZE(list) != n)
        return mismatch("a list of the right length");
    for (size_t i = 0; i < n; i++)
        if (from_py(ctx, base_id, PyList_GET_ITEM(list, (Py_ssize_t)i), elements + i * size) < 0)
            return -1;
    return 0;
}

static herr_t
compound_from_py(rebuild_t *ctx, hid_t type_id, PyObject *tuple, char *element)
{
    int n = H5Tget_nmembers(type_id);

    if (n < 0 || !PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != n)
        return mismatch("a tuple of a compound's members");
    for (int i = 0; i < n; i++) {
        hid_t  member_id = H5Tget_member_type(type_id, (unsigned)i);
        herr_t status    = member_id < 0 ? -1
                                         : from_py(ctx, member_id, PyTuple_GET_ITEM(tuple, i),
                                                   element + H5Tget_member_offset(type_id, (unsigned)i));
        esdm_close(member_id);
        if (status < 0)
            return -1;
    }
    return 0;
}

static herr_t
array_from_py(rebuild_t *ctx, hid_t type_id, PyObject *list, char *element)
{
    hsize_t dims[H5S_MAX_RANK], n = 1;
    int     rank    = H5Tget_array_dims2(type_id, dims);
    hid_t   base_id = H5Tget_super(type_id);

    for (int i = 0; i < rank; i++)
        n *= dims[i];
    herr_t status = rank < 0 || base_id < 0 ? -1 : list_from_py(ctx, base_id, list, element, (size_t)n);
    esdm_close(base_id);
    return status;
}

static herr_t
sequence_from_py(rebuild_t *ctx, hid_t type_id, PyObject *list, hvl_t *sequence)
{
    hid_t  base_id = H5Tget_super(type_id);
    size_t n       = PyList_Check(list) ? (size_t)PyList_GET_SIZE(list) : 0;
    herr_t status  = -1;

    *sequence = (hvl_t){0, NULL};
    /* memory the application frees with H5Treclaim (H5free_memory) */
    if (base_id >= 0 && n && !(sequence->p = H5allocate_memory(n * H5Tget_size(base_id), true)))
        esdm_error(esdm_err_argument, "esdm VOL: out of memory reading a sequence of %zu values", n);
    else if (base_id >= 0) {
        sequence->len = n;
        status        = list_from_py(ctx, base_id, list, sequence->p, n);
    }
    esdm_close(base_id);
    return status;
}

static herr_t
reference_from_py(rebuild_t *ctx, PyObject *path, H5R_ref_t *ref)
{
    memset(ref, 0, sizeof *ref);
    if (path == Py_None)
        return 0;
    const char *text = PyUnicode_AsUTF8(path);
    if (!text) {
        esdm_python_error("reading a reference");
        return -1;
    }
    if (ctx->root_id < 0) {
        esdm_obj_t *root = esdm_open_node(&ctx->file->obj, PyUnicode_FromString("/"), H5P_DEFAULT);
        if (root && (ctx->root_id = H5VLwrap_register(root, H5I_GROUP)) < 0)
            esdm_obj_release(root);
        if (ctx->root_id < 0)
            return -1;
    }
    return H5Rcreate_object(ctx->root_id, text, H5P_DEFAULT, ref);
}

static herr_t
from_py(rebuild_t *ctx, hid_t type_id, PyObject *tree, char *element)
{
    size_t size = H5Tget_size(type_id);

    switch (H5Tget_class(type_id)) {
        case H5T_COMPOUND:
            return compound_from_py(ctx, type_id, tree, element);
        case H5T_ARRAY:
            return array_from_py(ctx, type_id, tree, element);
        case H5T_VLEN:
            return sequence_from_py(ctx, type_id, tree, (hvl_t *)element);
        case H5T_REFERENCE:
            if (is_handle(type_id))
                return reference_from_py(ctx, tree, (H5R_ref_t *)element);
            /* fall through */
        default:
            if (!PyBytes_Check(tree) || (size_t)PyBytes_GET_SIZE(tree) != size)
                return mismatch("the bytes of a value");
            memcpy(element, PyBytes_AS_STRING(tree), size);
            return 0;
    }
}

herr_t
esdm_values_from_py(hid_t type_id, PyObject *trees, void *buf, size_t n, esdm_file_t *file)
{
    rebuild_t ctx    = {file, H5I_INVALID_HID};
    herr_t    status = list_from_py(&ctx, type_id, trees, buf, n);
    esdm_close(ctx.root_id);
    return status;
}

/* ---- variable-length strings ------------------------------------------------------------- */

PyObject *
esdm_strings_to_py(const void *buf, size_t n)
{
    PyObject *values = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; values && i < n; i++) {
        const char *s    = ((const char *const *)buf)[i];
        PyObject   *item = s ? PyBytes_FromString(s) : Py_NewRef(Py_None);
        if (!item) {
            Py_CLEAR(values);
            break;
        }
        PyList_SET_ITEM(values, (Py_ssize_t)i, item);
    }
    if (!values)
        esdm_python_error("passing strings");
    return values;
}

herr_t
esdm_strings_from_py(PyObject *values, void *buf, size_t n)
{
    char **out = buf;

    if (!PyList_Check(values) || (size_t)PyList_GET_SIZE(values) < n) {
        esdm_error(esdm_err_argument, "esdm VOL: the core returned no list of %zu strings", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(values, (Py_ssize_t)i);
        size_t    len  = PyBytes_Check(item) ? (size_t)PyBytes_GET_SIZE(item) : 0;
        if (!PyBytes_Check(item) || !(out[i] = H5allocate_memory(len + 1, false))) {
            while (i > 0)
                H5free_memory(out[--i]);
            esdm_error(esdm_err_argument, "esdm VOL: cannot pass string %zu (out of memory?)", i);
            return -1;
        }
        memcpy(out[i], PyBytes_AS_STRING(item), len + 1);
    }
    return 0;
}
