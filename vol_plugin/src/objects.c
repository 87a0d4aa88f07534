/*
 * Lifetime of the connector's objects.
 *
 * A file struct outlives its container: HDF5 allows a dataset ID to stay
 * open after H5Fclose, so every open object holds a reference on its file
 * and the struct goes when the last reference does. The container itself
 * closes (and commits) with the last file ID, which is the collective point
 * HDF5 programs already synchronise on; objects left open after that fail
 * cleanly in the core ("container is closed").
 */
#include "esdm_vol.h"

#include <stdlib.h>
#include <string.h>

static const char *token_path(const H5O_token_t *token);

esdm_obj_t *
esdm_obj_new(esdm_kind_t kind, esdm_file_t *file, PyObject *py)
{
    esdm_obj_t *obj = calloc(1, sizeof *obj);
    if (!obj) {
        esdm_error(esdm_err_argument, "esdm VOL: out of memory");
        Py_XDECREF(py);
        return NULL;
    }
    obj->kind    = kind;
    obj->file    = file;
    obj->py      = py;
    obj->type_id = obj->dcpl_id = obj->dapl_id = H5I_INVALID_HID;
    obj->next                                  = file->objects;
    if (file->objects)
        file->objects->prev = obj;
    file->objects = obj;
    file->nrefs++;
    return obj;
}

herr_t
esdm_obj_release(esdm_obj_t *obj)
{
    esdm_file_t *file   = obj->file;
    herr_t       status = 0;

    if (obj->prev)
        obj->prev->next = obj->next;
    else
        file->objects = obj->next;
    if (obj->next)
        obj->next->prev = obj->prev;
    Py_XDECREF(obj->py);
    esdm_close(obj->type_id);
    esdm_close(obj->dcpl_id);
    esdm_close(obj->dapl_id);
    free(obj);
    if (!file->objects)
        status = esdm_file_close_container(file);
    esdm_file_unref(file);
    return status;
}

void
esdm_file_unref(esdm_file_t *file)
{
    if (--file->nrefs > 0)
        return;
    /* The handle went with the container (file.c); nothing Python is left. */
    if (file->comm != MPI_COMM_NULL) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized)
            MPI_Comm_free(&file->comm);
    }
    esdm_close(file->fapl_id);
    esdm_close(file->fcpl_id);
    free(file->name);
    free(file);
}

void
esdm_close(hid_t id)
{
    if (id < 0)
        return;
    hid_t pending = H5Eget_current_stack(); /* takes the errors off the stack */
    H5Idec_ref(id);
    if (pending >= 0)
        H5Eset_current_stack(pending); /* and puts them back */
}

bool
esdm_file_owns(const esdm_file_t *file, const void *obj)
{
    for (const esdm_obj_t *o = file->objects; o; o = o->next)
        if (o == obj)
            return true;
    return false;
}

bool
esdm_plist_ok(hid_t plist_id, hid_t class_id, const char *operation)
{
    if (plist_id == H5P_DEFAULT || H5Pisa_class(plist_id, class_id) > 0)
        return true;
    char  *name = H5Pget_class_name(class_id);
    esdm_error(esdm_err_argument, "esdm VOL: %s: not a property list of class %s", operation,
               name ? name : "?");
    H5free_memory(name);
    return false;
}

const char *
esdm_loc_name(const H5VL_loc_params_t *loc, const char *operation)
{
    const char *path;

    switch (loc->type) {
        case H5VL_OBJECT_BY_SELF:
            return ".";
        case H5VL_OBJECT_BY_NAME:
            return esdm_plist_ok(loc->loc_data.loc_by_name.lapl_id, H5P_LINK_ACCESS, operation)
                       ? loc->loc_data.loc_by_name.name
                       : NULL;
        case H5VL_OBJECT_BY_TOKEN:
            if (!(path = token_path(loc->loc_data.loc_by_token.token)))
                esdm_error(esdm_err_argument,
                           "esdm VOL: %s: the token names no object this process has seen", operation);
            return path;
        case H5VL_OBJECT_BY_IDX:
        default:
            esdm_error(esdm_err_unsupported, "esdm VOL: %s by index is not supported yet", operation);
            return NULL;
    }
}

herr_t
esdm_call_between(const char *function, esdm_obj_t *src, PyObject *old_name, esdm_obj_t *dst,
                  PyObject *new_name, PyObject *options)
{
    PyObject *done = old_name && new_name && options
                         ? esdm_call(function, "(OOOOO)", src->py, old_name, dst->py, new_name, options)
                         : NULL;
    Py_XDECREF(done);
    Py_XDECREF(old_name);
    Py_XDECREF(new_name);
    Py_XDECREF(options);
    return done ? 0 : -1;
}

PyObject *
esdm_by_idx(esdm_obj_t *where, const H5VL_loc_by_idx_t *by, const char *function)
{
    if (by->idx_type != H5_INDEX_NAME && by->idx_type != H5_INDEX_CRT_ORDER) {
        esdm_error(esdm_err_argument, "esdm VOL: %s: unknown index %d", function, (int)by->idx_type);
        return NULL;
    }
    return esdm_call(function, "(OsOOK)", where->py, by->name,
                     by->idx_type == H5_INDEX_CRT_ORDER ? Py_True : Py_False,
                     by->order == H5_ITER_DEC ? Py_True : Py_False, (unsigned long long)by->n);
}

PyObject *
esdm_new_name(const char *base, const char *name)
{
    return name ? esdm_name(base, name) : Py_NewRef(Py_None);
}

PyObject *
esdm_name(const char *base, const char *name)
{
    PyObject *joined;
    if (!name || !*name) {
        esdm_error(esdm_err_argument, "esdm VOL: an object name is missing");
        return NULL;
    }
    if (name[0] == '/' || !strcmp(base, "."))
        joined = PyUnicode_FromString(name);
    else
        joined = PyUnicode_FromFormat("%s/%s", base, name);
    if (!joined)
        esdm_python_error("decoding an object name");
    return joined;
}

/* FNV-1a: tokens only need to tell objects apart within a file, and a
 * path hash is stable across processes and epochs. */
static uint64_t
fnv1a(uint64_t hash, const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        hash = (hash ^ *c) * 0x100000001b3ULL;
    return hash;
}

/* Tokens back to paths: every token handed out is remembered with the
 * absolute path it hashes, so that HDF5 can address objects by token
 * (H5Oopen_by_token, H5Ropen_object, H5Rdereference2). A hash is not
 * invertible: tokens come from this process (H5Oget_info, H5Lget_info,
 * H5Rcreate_object; the connector recreates the references it reads that
 * way too), and opening a file remembers those of all its objects, for the
 * references of the 1.10 format stored in it (esdm_remember_tokens). Open addressing on the token's first half,
 * which is a hash already; the table lives as long as the process. */
typedef struct {
    H5O_token_t token;
    char       *path; /* NULL: free slot */
} token_entry_t;

static struct {
    token_entry_t *slots;
    size_t         size, used; /* size: a power of two */
} tokens;

static token_entry_t *
token_slot(token_entry_t *slots, size_t size, const H5O_token_t *token)
{
    uint64_t hash;
    memcpy(&hash, token->__data, sizeof hash);
    for (size_t i = (size_t)hash & (size - 1);; i = (i + 1) & (size - 1))
        if (!slots[i].path || !memcmp(&slots[i].token, token, sizeof *token))
            return &slots[i];
}

/* Keep the table at most half full so that probes stay short. */
static bool
tokens_make_room(void)
{
    if (2 * (tokens.used + 1) <= tokens.size)
        return true;
    size_t         size  = tokens.size ? 2 * tokens.size : 256;
    token_entry_t *slots = calloc(size, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < tokens.size; i++)
        if (tokens.slots[i].path)
            *token_slot(slots, size, &tokens.slots[i].token) = tokens.slots[i];
    free(tokens.slots);
    tokens.slots = slots;
    tokens.size  = size;
    return true;
}

static void
remember_token(const H5O_token_t *token, const char *path)
{
    if (!path[0] || !tokens_make_room())
        return; /* a file's own token ("") names no object; without memory, lookups fail cleanly */
    token_entry_t *slot = token_slot(tokens.slots, tokens.size, token);
    if (slot->path)
        return;
    if ((slot->path = strdup(path))) {
        slot->token = *token;
        tokens.used++;
    }
}

static const char *
token_path(const H5O_token_t *token)
{
    return tokens.size ? token_slot(tokens.slots, tokens.size, token)->path : NULL;
}

void
esdm_token_of(const char *path, H5O_token_t *token)
{
    uint64_t hash = fnv1a(0xcbf29ce484222325ULL, path);
    memset(token, 0, sizeof *token);
    memcpy(token->__data, &hash, sizeof hash);
    remember_token(token, path);
}

herr_t
esdm_remember_tokens(esdm_file_t *file)
{
    PyObject *identities = esdm_call("object_identities", "(O)", file->obj.py);
    if (!identities)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(identities); i++) {
        const char *path = PyUnicode_AsUTF8(PyList_GET_ITEM(identities, i));
        H5O_token_t token;
        if (!path) {
            Py_DECREF(identities);
            esdm_python_error("an object's identity");
            return -1;
        }
        esdm_token_of(path, &token);
    }
    Py_DECREF(identities);
    return 0;
}

unsigned long
esdm_file_number(const char *file_name)
{
    return (unsigned long)fnv1a(0x84222325cbf29ce4ULL, file_name);
}

/* H5Aclose, H5Dclose and H5Gclose: the handle goes, the object stays in the container. */
herr_t
esdm_object_close(void *obj, hid_t dxpl_id, void **req)
{
    PyGILState_STATE gil;
    (void)dxpl_id, (void)req;

    if (esdm_python_gone()) {
        /* its Python handle goes with the interpreter: no reference to drop */
        ((esdm_obj_t *)obj)->py = NULL;
        return esdm_obj_release(obj);
    }
    if (esdm_enter(&gil) < 0)
        return -1;
    herr_t status = esdm_obj_release(obj);
    esdm_leave(gil);
    return status;
}
