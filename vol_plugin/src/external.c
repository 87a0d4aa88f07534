/*
 * External storage of raw data (H5Pset_external): the dataset's elements in
 * files of their own, which the core reads and writes (esdm_hpc/external.py).
 *
 * A segment's file name is resolved when the dataset is created, as HDF5
 * resolves it: under the access list's external file prefix
 * (H5Pset_efile_prefix, where ${ORIGIN} is the directory of this file's
 * name), else relative to the working directory; the dataset keeps the
 * resolved names, which its creation property list reports.
 */
#include "esdm_vol.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
esdm_efile_prefix(hid_t dapl_id, const char *file_name)
{
    ssize_t len    = H5Pget_efile_prefix(dapl_id, NULL, 0);
    char   *prefix = len > 0 ? malloc((size_t)len + 1) : NULL;

    if (!prefix || H5Pget_efile_prefix(dapl_id, prefix, (size_t)len + 1) < 0) {
        free(prefix);
        return NULL;
    }
    if (strncmp(prefix, "${ORIGIN}", 9))
        return prefix;
    char  *copy   = strdup(file_name);
    char  *origin = copy ? dirname(copy) : ".";
    size_t size   = strlen(origin) + strlen(prefix + 9) + 1;
    char  *path   = malloc(size);
    if (path)
        snprintf(path, size, "%s%s", origin, prefix + 9);
    free(copy);
    free(prefix);
    return path;
}

herr_t
esdm_expand_efile_prefix(esdm_obj_t *dset)
{
    char  *prefix = esdm_efile_prefix(dset->dapl_id, dset->file->name);
    herr_t status = prefix ? H5Pset_efile_prefix(dset->dapl_id, prefix) : 0;
    free(prefix);
    return status;
}

/* A segment's file as HDF5 finds it (a new string, NULL if out of memory). */
static char *
resolved(const char *name, const char *prefix)
{
    char   cwd[4096];
    const char *base = prefix ? prefix : getcwd(cwd, sizeof cwd);
    if (name[0] == '/' || !base)
        return strdup(name);
    size_t size = strlen(base) + strlen(name) + 2;
    char  *path = malloc(size);
    if (path)
        snprintf(path, size, "%s/%s", base, name);
    return path;
}

PyObject *
esdm_external_segments(hid_t dcpl_id, hid_t dapl_id, const char *file_name)
{
    int n = H5Pget_external_count(dcpl_id);
    if (n <= 0)
        return n < 0 ? NULL : Py_NewRef(Py_None);
    char     *prefix   = dapl_id == H5P_DEFAULT ? NULL : esdm_efile_prefix(dapl_id, file_name);
    PyObject *segments = PyList_New(n);
    for (int i = 0; segments && i < n; i++) {
        char    name[4096];
        off_t   offset;
        hsize_t size;
        char   *path = NULL;
        if (H5Pget_external(dcpl_id, (unsigned)i, sizeof name, name, &offset, &size) >= 0)
            path = resolved(name, prefix);
        PyObject *length  = size == H5F_UNLIMITED ? Py_NewRef(Py_None) : PyLong_FromUnsignedLongLong(size);
        PyObject *segment = path && length ? Py_BuildValue("(sLN)", path, (long long)offset, length) : NULL;
        if (!segment || !path)
            Py_XDECREF(length);
        free(path);
        if (!segment) {
            if (PyErr_Occurred())
                esdm_python_error("reading the external storage");
            Py_CLEAR(segments);
        }
        else
            PyList_SET_ITEM(segments, i, segment);
    }
    free(prefix);
    return segments;
}

herr_t
esdm_external_restore(hid_t dcpl_id, PyObject *segments)
{
    for (Py_ssize_t i = 0; segments != Py_None && i < PyList_GET_SIZE(segments); i++) {
        PyObject   *segment = PyList_GET_ITEM(segments, i), *size = PyTuple_GET_ITEM(segment, 2);
        const char *path    = PyUnicode_AsUTF8(PyTuple_GET_ITEM(segment, 0));
        long long   offset  = PyLong_AsLongLong(PyTuple_GET_ITEM(segment, 1));
        hsize_t     length  = size == Py_None ? H5F_UNLIMITED : (hsize_t)PyLong_AsUnsignedLongLong(size);
        if (PyErr_Occurred()) {
            esdm_python_error("restoring the external storage");
            return -1;
        }
        if (H5Pset_external(dcpl_id, path, (off_t)offset, length) < 0)
            return -1;
    }
    return 0;
}
