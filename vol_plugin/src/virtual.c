/*
 * Virtual datasets (H5Pset_virtual, h5py's VirtualLayout): a dataset whose
 * elements are those of other datasets, in this file or others.
 *
 * The container keeps the mappings as the dataset's "virtual" hint, each the
 * virtual and the source selection (as H5Sencode2 encodes them) with the
 * source's file and dataset names; reopened, the dataset's creation property
 * list shows them again (H5Pget_virtual_*). A read is HDF5's own: for each
 * mapping, the part of the read's selection inside the virtual selection is
 * projected onto the source selection and onto the memory selection
 * (H5Sselect_project_intersection), and that part is read from the source
 * dataset with H5Dread, which comes back to this connector. What no mapping
 * covers, or a source that cannot be opened, reads as the fill value (as in
 * HDF5). A source file named "." is this file; a relative name is looked up
 * under the access list's virtual prefix (H5Pset_virtual_prefix, where
 * ${ORIGIN} is this file's directory) or else this file's directory.
 * Writing through a virtual dataset and unlimited mappings are refused.
 */
#include "esdm_vol.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

bool
esdm_is_virtual(const esdm_obj_t *dset)
{
    return dset->dcpl_id >= 0 && H5Pget_layout(dset->dcpl_id) == H5D_VIRTUAL;
}

static PyObject *
encoded_space(hid_t space_id)
{
    size_t    size = 0;
    PyObject *bytes;

    if (H5Sencode2(space_id, NULL, &size, H5P_DEFAULT) < 0)
        return NULL;
    if (!(bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size))) {
        esdm_python_error("encoding a dataspace");
        return NULL;
    }
    if (H5Sencode2(space_id, PyBytes_AS_STRING(bytes), &size, H5P_DEFAULT) < 0)
        Py_CLEAR(bytes);
    return bytes;
}

/* One of H5Pget_virtual_filename/dsetname as a str (new reference). */
static PyObject *
mapping_name(hid_t dcpl_id, size_t i, ssize_t (*get)(hid_t, size_t, char *, size_t))
{
    ssize_t   len  = get(dcpl_id, i, NULL, 0);
    char     *text = len < 0 ? NULL : malloc((size_t)len + 1);
    PyObject *name = NULL;

    if (text && get(dcpl_id, i, text, (size_t)len + 1) >= 0 && !(name = PyUnicode_FromString(text)))
        esdm_python_error("reading a virtual mapping");
    free(text);
    return name;
}

/* A mapping's selection may not be unlimited: the connector maps fixed extents. */
static bool
unlimited(hid_t space_id)
{
    hsize_t start[H5S_MAX_RANK], stride[H5S_MAX_RANK], count[H5S_MAX_RANK], block[H5S_MAX_RANK];
    int     rank = H5Sget_simple_extent_ndims(space_id);

    if (rank <= 0 || H5Sget_select_type(space_id) != H5S_SEL_HYPERSLABS ||
        H5Sis_regular_hyperslab(space_id) <= 0 ||
        H5Sget_regular_hyperslab(space_id, start, stride, count, block) < 0)
        return false;
    for (int i = 0; i < rank; i++)
        if (count[i] == H5S_UNLIMITED || block[i] == H5S_UNLIMITED)
            return true;
    return false;
}

PyObject *
esdm_virtual_mappings(hid_t dcpl_id)
{
    size_t n;

    if (H5Pget_layout(dcpl_id) != H5D_VIRTUAL)
        return Py_NewRef(Py_None);
    if (H5Pget_virtual_count(dcpl_id, &n) < 0)
        return NULL;
    PyObject *mappings = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; mappings && i < n; i++) {
        hid_t     vspace = H5Pget_virtual_vspace(dcpl_id, i);
        hid_t     source = vspace < 0 ? H5I_INVALID_HID : H5Pget_virtual_srcspace(dcpl_id, i);
        PyObject *mapping = NULL;
        if (source >= 0 && (unlimited(vspace) || unlimited(source)))
            esdm_unsupported("a virtual dataset with unlimited mappings");
        else if (source >= 0) {
            PyObject *parts[] = {encoded_space(vspace), mapping_name(dcpl_id, i, H5Pget_virtual_filename),
                                 mapping_name(dcpl_id, i, H5Pget_virtual_dsetname), encoded_space(source)};
            if (parts[0] && parts[1] && parts[2] && parts[3])
                mapping = PyTuple_Pack(4, parts[0], parts[1], parts[2], parts[3]);
            for (int k = 0; k < 4; k++)
                Py_XDECREF(parts[k]);
        }
        esdm_close(vspace);
        esdm_close(source);
        if (!mapping)
            Py_CLEAR(mappings);
        else
            PyList_SET_ITEM(mappings, (Py_ssize_t)i, mapping);
    }
    return mappings;
}

herr_t
esdm_virtual_restore(hid_t dcpl_id, PyObject *mappings)
{
    if (mappings != Py_None && H5Pset_layout(dcpl_id, H5D_VIRTUAL) < 0) /* even with no mapping */
        return -1;
    for (Py_ssize_t i = 0; mappings != Py_None && i < PyList_GET_SIZE(mappings); i++) {
        PyObject   *mapping = PyList_GET_ITEM(mappings, i);
        const char *file    = PyUnicode_AsUTF8(PyTuple_GET_ITEM(mapping, 1));
        const char *name    = PyUnicode_AsUTF8(PyTuple_GET_ITEM(mapping, 2));
        hid_t       vspace  = H5Sdecode(PyBytes_AsString(PyTuple_GET_ITEM(mapping, 0)));
        hid_t       source  = vspace < 0 ? H5I_INVALID_HID : H5Sdecode(PyBytes_AsString(PyTuple_GET_ITEM(mapping, 3)));
        herr_t      status  = file && name && source >= 0 ? H5Pset_virtual(dcpl_id, vspace, file, name, source) : -1;
        esdm_close(vspace);
        esdm_close(source);
        if (status < 0) {
            if (PyErr_Occurred())
                esdm_python_error("restoring a virtual mapping");
            return -1;
        }
    }
    return 0;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* The path of a mapping's source file; NULL with an HDF5 error (out of memory). */
static char *
source_path(esdm_obj_t *dset, const char *file)
{
    const char *own = dset->file->name;
    if (!strcmp(file, "."))
        return strdup(own);
    if (file[0] == '/' || strstr(file, "://") || !strncmp(file, "esd-cfg:", 8))
        return strdup(file);
    char   *copy = strdup(own), *prefix = NULL;
    ssize_t len  = H5Pget_virtual_prefix(dset->dapl_id, NULL, 0);
    if (len > 0 && (prefix = malloc((size_t)len + 1)))
        H5Pget_virtual_prefix(dset->dapl_id, prefix, (size_t)len + 1);
    const char *origin = copy ? dirname(copy) : ".";
    const char *base   = prefix && strncmp(prefix, "${ORIGIN}", 9) ? prefix : origin;
    const char *rest   = prefix && !strncmp(prefix, "${ORIGIN}", 9) ? prefix + 9 : "";
    size_t      size   = strlen(base) + strlen(rest) + strlen(file) + 2;
    char       *path   = malloc(size);
    if (path)
        snprintf(path, size, "%s%s/%s", base, rest, file);
    free(prefix);
    free(copy);
    return path;
}

/* Read the part of one mapping a read's selection takes; a source that cannot
 * be opened leaves its part the fill value. */
static herr_t
read_mapping(esdm_obj_t *dset, size_t i, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id,
             hid_t dxpl_id, void *buf)
{
    hid_t  vspace = H5Pget_virtual_vspace(dset->dcpl_id, i);
    hid_t  source = vspace < 0 ? H5I_INVALID_HID : H5Pget_virtual_srcspace(dset->dcpl_id, i);
    hid_t  src_sel = H5I_INVALID_HID, mem_sel = H5I_INVALID_HID, file_id = H5I_INVALID_HID;
    hid_t  src_id = H5I_INVALID_HID, actual = H5I_INVALID_HID;
    char  *name = NULL, *path = NULL;
    herr_t status = -1;

    if (source < 0 ||
        (src_sel = H5Sselect_project_intersection(vspace, source, file_space_id)) < 0 ||
        (mem_sel = H5Sselect_project_intersection(file_space_id, mem_space_id, vspace)) < 0)
        goto done;
    status = 0;
    if (H5Sget_select_npoints(src_sel) == 0)
        goto done;
    ssize_t file_len = H5Pget_virtual_filename(dset->dcpl_id, i, NULL, 0);
    ssize_t name_len = H5Pget_virtual_dsetname(dset->dcpl_id, i, NULL, 0);
    char   *file     = file_len < 0 ? NULL : malloc((size_t)file_len + 1);
    if (file && H5Pget_virtual_filename(dset->dcpl_id, i, file, (size_t)file_len + 1) >= 0)
        path = source_path(dset, file);
    free(file);
    if (name_len >= 0 && (name = malloc((size_t)name_len + 1)))
        H5Pget_virtual_dsetname(dset->dcpl_id, i, name, (size_t)name_len + 1);
    if (!path || !name) {
        esdm_error(esdm_err_argument, "esdm VOL: out of memory reading a virtual dataset");
        status = -1;
        goto done;
    }
    /* a source that is not there reads as the fill value, as in HDF5 */
    H5E_BEGIN_TRY
    {
        file_id = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        src_id  = file_id < 0 ? H5I_INVALID_HID : H5Dopen2(file_id, name, H5P_DEFAULT);
    }
    H5E_END_TRY
    /* the source selection on the source's extent now, which may have grown since */
    if (src_id >= 0 && ((actual = H5Dget_space(src_id)) < 0 || H5Sselect_copy(actual, src_sel) < 0))
        status = -1;
    else if (src_id >= 0)
        status = H5Dread(src_id, mem_type_id, mem_sel, actual, dxpl_id, buf);
done:
    esdm_close(actual);
    free(name);
    free(path);
    esdm_close(src_id);
    esdm_close(file_id);
    esdm_close(mem_sel);
    esdm_close(src_sel);
    esdm_close(source);
    esdm_close(vspace);
    return status;
}

herr_t
esdm_virtual_read(esdm_obj_t *dset, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id,
                  hid_t dxpl_id, void *buf)
{
    size_t n, size = H5Tget_size(mem_type_id);
    char  *fill = size ? calloc(1, size) : NULL;
    herr_t status = -1;

    /* the fill value first, where no mapping reaches */
    if (!fill || H5Pget_virtual_count(dset->dcpl_id, &n) < 0 ||
        H5Pget_fill_value(dset->dcpl_id, mem_type_id, fill) < 0 ||
        H5Dfill(fill, mem_type_id, buf, mem_type_id, mem_space_id) < 0)
        goto done;
    status = 0;
    for (size_t i = 0; status == 0 && i < n; i++)
        status = read_mapping(dset, i, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf);
done:
    free(fill);
    return status;
}
