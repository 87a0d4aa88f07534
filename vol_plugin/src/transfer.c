/*
 * H5Dwrite and H5Dread: the only place the connector touches data.
 *
 * HDF5 pairs the i-th element of the memory selection with the i-th element
 * of the file selection, each in its selection's iteration order. The core
 * writes and reads boxes (offset, count), so the file selection becomes a
 * list of boxes and the memory side one packed buffer holding the boxes'
 * elements box after box, in the file's datatype:
 *
 *   write: memory --H5Dgather--> packed --H5Tconvert--> file type -> core
 *   read:  core -> packed (file type) --H5Tconvert--> --H5Dscatter--> memory
 *
 * Compound conversions take a background buffer, so that members the
 * source type lacks keep their values (as in HDF5): on a write the stored
 * values, on a read the application's buffer.
 *
 * The common case needs neither: a whole contiguous buffer in the file's
 * type goes to the core as it is, without a copy. Box after box is the
 * selection's own order unless boxes interleave within rows (two side by
 * side, say); those selections are reordered through a staging buffer the
 * size of their bounding box.
 *
 * Variable-length strings move as their char pointers: packing, reordering
 * and scattering move pointers like any element; only the core's side
 * differs (a list of bytes, and strings the application frees on a read).
 * Values holding variable-length sequences or references (hvl_t, H5R_ref_t)
 * move the same way and cross to the core as trees (values.c), in the
 * dataset's own type only, as for attributes.
 *
 * Collective and independent transfers behave the same: every rank writes
 * its own fragments independently, and the commit at H5Fflush/H5Fclose is
 * the collective step (docs/architecture.md §3.3).
 */
#include "esdm_vol.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int      rank;
    size_t   nblocks;
    hsize_t *table;   /* nblocks x [start[rank], count[rank]], as the bridge reads it */
    hsize_t  npoints;
    bool     ordered; /* box after box is the selection's iteration order */
} boxes_t;

static void
boxes_free(boxes_t *boxes)
{
    free(boxes->table);
    boxes->table = NULL;
}

/* true if every element of box a comes before every element of box b in
 * C order, i.e. a's last corner precedes b's first lexicographically */
static bool
precedes(const hsize_t *a, const hsize_t *b, int rank)
{
    for (int i = 0; i < rank; i++) {
        hsize_t last = a[i] + a[rank + i] - 1;
        if (last != b[i])
            return last < b[i];
    }
    return false;
}

/* Fold box b into box a when together they are one box: equal in every
 * dimension but one, along which b starts where a ends. With runs_only
 * (point selections, whose order is the order of listing) only while the
 * result stays a line, so that its C order is still the listed order. */
static bool
merge(hsize_t *a, const hsize_t *b, int rank, bool runs_only)
{
    int along = -1;
    for (int i = 0; i < rank; i++) {
        if (a[i] == b[i] && a[rank + i] == b[rank + i])
            continue;
        if (along >= 0 || b[i] != a[i] + a[rank + i])
            return false;
        along = i;
    }
    if (along < 0)
        return false; /* the same box twice (a repeated point) is two writes */
    for (int i = 0; runs_only && i < rank; i++)
        if (i != along && a[rank + i] != 1)
            return false;
    a[rank + along] += b[rank + along];
    return true;
}

/* Fewer, larger boxes make fewer, larger fragments: HDF5 lists a slab
 * selected as count x block-of-1 as that many one-element blocks. */
static void
coalesce(boxes_t *boxes, bool runs_only)
{
    size_t width = 2 * (size_t)boxes->rank, kept = 0;

    for (size_t k = 0; k < boxes->nblocks; k++) {
        hsize_t *box = boxes->table + k * width;
        if (kept && merge(boxes->table + (kept - 1) * width, box, boxes->rank, runs_only))
            continue;
        if (kept != k)
            memmove(boxes->table + kept * width, box, width * sizeof(hsize_t));
        kept++;
    }
    boxes->nblocks = kept;
}

/* A regular hyperslab, one box per block, blocks that touch (stride ==
 * block) joined: no need for HDF5 to list them one by one first. */
static herr_t
regular_boxes(hid_t space_id, boxes_t *boxes)
{
    hsize_t start[H5S_MAX_RANK], stride[H5S_MAX_RANK], count[H5S_MAX_RANK], block[H5S_MAX_RANK];
    hsize_t index[H5S_MAX_RANK] = {0}, n = 1;
    int     rank = boxes->rank;

    if (H5Sget_regular_hyperslab(space_id, start, stride, count, block) < 0)
        return -1;
    for (int i = 0; i < rank; i++) {
        if (count[i] == 1 || stride[i] == block[i]) {
            block[i] = (count[i] - 1) * stride[i] + block[i];
            count[i] = 1;
        }
        n *= count[i];
    }
    if (!(boxes->table = malloc(((size_t)n * 2 * rank + 1) * sizeof(hsize_t))))
        return -1;
    boxes->nblocks = (size_t)n;
    for (hsize_t k = 0; k < n; k++) {
        hsize_t *box = boxes->table + k * 2 * rank;
        for (int i = 0; i < rank; i++) {
            box[i]        = start[i] + index[i] * stride[i];
            box[rank + i] = block[i];
        }
        for (int i = rank - 1; i >= 0 && ++index[i] == count[i]; i--)
            index[i] = 0;
    }
    return 0;
}

static herr_t
listed_boxes(hid_t space_id, boxes_t *boxes)
{
    hssize_t n     = H5Sget_select_hyper_nblocks(space_id);
    int      rank  = boxes->rank;
    size_t   width = 2 * (size_t)rank;

    if (n < 0 || !(boxes->table = malloc(((size_t)n * width + 1) * sizeof(hsize_t))))
        return -1;
    /* HDF5 lists [start, opposite corner]; the core wants [start, count] */
    if (H5Sget_select_hyper_blocklist(space_id, 0, (hsize_t)n, boxes->table) < 0)
        return -1;
    boxes->nblocks = (size_t)n;
    for (size_t k = 0; k < boxes->nblocks; k++)
        for (int i = 0; i < rank; i++)
            boxes->table[k * width + rank + i] -= boxes->table[k * width + i] - 1;
    return 0;
}

static herr_t
point_boxes(hid_t space_id, boxes_t *boxes)
{
    hssize_t n     = H5Sget_select_elem_npoints(space_id);
    int      rank  = boxes->rank;
    size_t   width = 2 * (size_t)rank;
    hsize_t *coords;

    if (n < 0 || !(coords = malloc(((size_t)n * rank + 1) * sizeof(hsize_t))))
        return -1;
    if (H5Sget_select_elem_pointlist(space_id, 0, (hsize_t)n, coords) < 0 ||
        !(boxes->table = malloc(((size_t)n * width + 1) * sizeof(hsize_t)))) {
        free(coords);
        return -1;
    }
    boxes->nblocks = (size_t)n;
    for (size_t k = 0; k < boxes->nblocks; k++)
        for (int i = 0; i < rank; i++) {
            boxes->table[k * width + i]        = coords[k * rank + i];
            boxes->table[k * width + rank + i] = 1;
        }
    free(coords);
    return 0;
}

/* H5Soffset_simple moves a selection (h5py broadcasts a write so, slab after
 * slab); the block and point lists are of the selection before the move and
 * its bounds after it, so the move is their difference at the lowest corner. */
static herr_t
apply_offset(hid_t space_id, boxes_t *boxes)
{
    hsize_t low[H5S_MAX_RANK], high[H5S_MAX_RANK], first[H5S_MAX_RANK];
    int     rank  = boxes->rank;
    size_t  width = 2 * (size_t)rank;

    if (!boxes->nblocks || H5Sget_select_bounds(space_id, low, high) < 0)
        return boxes->nblocks ? -1 : 0;
    for (int i = 0; i < rank; i++)
        first[i] = boxes->table[i];
    for (size_t k = 1; k < boxes->nblocks; k++)
        for (int i = 0; i < rank; i++)
            if (boxes->table[k * width + i] < first[i])
                first[i] = boxes->table[k * width + i];
    for (size_t k = 0; k < boxes->nblocks; k++)
        for (int i = 0; i < rank; i++)
            boxes->table[k * width + i] += low[i] - first[i];
    return 0;
}

static herr_t
boxes_of(hid_t space_id, boxes_t *boxes)
{
    hsize_t  dims[H5S_MAX_RANK];
    hssize_t npoints = H5Sget_select_npoints(space_id);
    int      rank    = H5Sget_simple_extent_dims(space_id, dims, NULL);
    herr_t   status  = -1;

    if (npoints < 0 || rank < 0)
        return -1;
    *boxes = (boxes_t){rank, 0, NULL, (hsize_t)npoints, true};

    switch (H5Sget_select_type(space_id)) {
        case H5S_SEL_NONE:
            return 0;
        case H5S_SEL_ALL:
            if ((boxes->table = calloc(2 * (size_t)rank + 1, sizeof(hsize_t)))) {
                boxes->nblocks = 1;
                memcpy(boxes->table + rank, dims, rank * sizeof(hsize_t));
                status = 0;
            }
            break;
        case H5S_SEL_POINTS:
            /* one box per point (or run of points), in the order they were
             * selected, which is the order HDF5 pairs them with memory */
            if ((status = point_boxes(space_id, boxes)) == 0 &&
                (status = apply_offset(space_id, boxes)) == 0)
                coalesce(boxes, true);
            break;
        case H5S_SEL_HYPERSLABS:
            /* HDF5 pairs hyperslab elements with memory in C order over the
             * whole selection: box after box only if boxes do not interleave */
            status = H5Sis_regular_hyperslab(space_id) > 0 ? regular_boxes(space_id, boxes)
                                                          : listed_boxes(space_id, boxes);
            if (status == 0)
                status = apply_offset(space_id, boxes);
            if (status == 0) {
                coalesce(boxes, false);
                size_t width = 2 * (size_t)rank;
                for (size_t k = 1; k < boxes->nblocks && boxes->ordered; k++)
                    boxes->ordered = precedes(boxes->table + (k - 1) * width, boxes->table + k * width,
                                              rank);
            }
            break;
        default:
            esdm_error(esdm_err_argument, "esdm VOL: invalid file selection");
            return -1;
    }
    if (status < 0) {
        boxes_free(boxes);
        esdm_error(esdm_err_argument, "esdm VOL: cannot list the selected blocks (out of memory?)");
    }
    return status;
}

/* If the memory selection is one contiguous run of the buffer, its first
 * element's index: then it can go to the core (or come from it) unpacked. */
static bool
contiguous(hid_t space_id, hsize_t *first)
{
    hsize_t dims[H5S_MAX_RANK], start[H5S_MAX_RANK], stride[H5S_MAX_RANK];
    hsize_t count[H5S_MAX_RANK], block[H5S_MAX_RANK];
    int     rank = H5Sget_simple_extent_dims(space_id, dims, NULL);

    H5S_sel_type selected = H5Sget_select_type(space_id);

    *first = 0;
    if (selected == H5S_SEL_ALL)
        return true;
    /* H5Sis_regular_hyperslab pushes an error for points and none */
    hsize_t low[H5S_MAX_RANK], high[H5S_MAX_RANK];
    if (rank <= 0 || selected != H5S_SEL_HYPERSLABS || H5Sis_regular_hyperslab(space_id) <= 0 ||
        H5Sget_regular_hyperslab(space_id, start, stride, count, block) < 0 ||
        H5Sget_select_bounds(space_id, low, high) < 0)
        return false;
    /* a selection moved by H5Soffset_simple: let H5Dgather find it */
    if (memcmp(low, start, (size_t)rank * sizeof(hsize_t)))
        return false;
    /* one box (blocks that touch joined), then a run in C order: full
     * trailing extents after single leading ones */
    for (int i = 0; i < rank; i++) {
        if (count[i] > 1 && stride[i] != block[i])
            return false;
        block[i] = (count[i] - 1) * stride[i] + block[i];
    }
    int k = rank - 1;
    while (k > 0 && start[k] == 0 && block[k] == dims[k])
        k--;
    for (int i = 0; i < k; i++)
        if (block[i] != 1)
            return false;
    for (int i = 0; i < rank; i++)
        *first = *first * dims[i] + start[i];
    return true;
}

/* ---- reordering interleaved boxes -------------------------------------------------------- */

/* Copy one box between a staging array (dims) and a packed run. */
static void
copy_box(char *stage, const hsize_t *dims, const hsize_t *start, const hsize_t *count, int rank,
         char *packed, size_t elem, bool to_stage)
{
    hsize_t index[H5S_MAX_RANK] = {0};
    size_t  row                 = (size_t)count[rank - 1] * elem;
    hsize_t rows                = 1;

    for (int i = 0; i < rank - 1; i++)
        rows *= count[i];
    for (hsize_t r = 0; r < rows; r++, packed += row) {
        hsize_t offset = 0;
        for (int i = 0; i < rank; i++)
            offset = offset * dims[i] + start[i] + (i < rank - 1 ? index[i] : 0);
        if (to_stage)
            memcpy(stage + offset * elem, packed, row);
        else
            memcpy(packed, stage + offset * elem, row);
        for (int i = rank - 2; i >= 0 && ++index[i] == count[i]; i--)
            index[i] = 0;
    }
}

static herr_t
hand_over(const void **src_buf, size_t *src_buf_bytes_used, void *op_data)
{
    void **data         = op_data;
    *src_buf            = data[0];
    *src_buf_bytes_used = *(size_t *)data[1];
    return 0;
}

/* Between selection order and box order (to_boxes) in place, through a
 * staging buffer spanning the selection's bounding box. */
static herr_t
reorder(const boxes_t *boxes, hid_t file_space_id, hid_t type_id, char *packed, bool to_boxes)
{
    hsize_t low[H5S_MAX_RANK], high[H5S_MAX_RANK], dims[H5S_MAX_RANK], ones[H5S_MAX_RANK];
    hsize_t start[H5S_MAX_RANK], cells = 1;
    int     rank  = boxes->rank;
    size_t  elem  = H5Tget_size(type_id), bytes = (size_t)boxes->npoints * elem;
    hid_t   stage_space = H5I_INVALID_HID;
    char   *stage = NULL, *run = packed;
    herr_t  status = -1;

    if (H5Sget_select_bounds(file_space_id, low, high) < 0)
        return -1;
    for (int i = 0; i < rank; i++) {
        dims[i] = high[i] - low[i] + 1;
        ones[i] = 1;
        cells *= dims[i];
    }
    if (!(stage = malloc((size_t)cells * elem)) ||
        (stage_space = H5Screate_simple(rank, dims, NULL)) < 0) {
        esdm_error(esdm_err_argument, "esdm VOL: cannot stage an interleaved selection");
        goto done;
    }
    for (size_t k = 0; k < boxes->nblocks; k++) {
        const hsize_t *box = boxes->table + k * 2 * rank;
        for (int i = 0; i < rank; i++)
            start[i] = box[i] - low[i];
        if (H5Sselect_hyperslab(stage_space, k ? H5S_SELECT_OR : H5S_SELECT_SET, start, NULL, ones,
                                box + rank) < 0)
            goto done;
    }
    if (to_boxes) {
        void *source[2] = {packed, &bytes};
        if (H5Dscatter(hand_over, source, type_id, stage_space, stage) < 0)
            goto done;
    }
    for (size_t k = 0; k < boxes->nblocks; k++) {
        const hsize_t *box = boxes->table + k * 2 * rank;
        for (int i = 0; i < rank; i++)
            start[i] = box[i] - low[i];
        copy_box(stage, dims, start, box + rank, rank, run, elem, !to_boxes);
        hsize_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= box[rank + i];
        run += n * elem;
    }
    if (!to_boxes && H5Dgather(stage_space, stage, type_id, bytes, packed, NULL, NULL) < 0)
        goto done;
    status = 0;
done:
    esdm_close(stage_space);
    free(stage);
    return status;
}

/* ---- one dataset ------------------------------------------------------------------------- */

typedef struct {
    esdm_obj_t *dset;
    hid_t       file_space, mem_space; /* resolved: never H5S_ALL or H5S_BLOCK */
    hid_t       owned[2];              /* the ones created here, to close */
    boxes_t     boxes;
    bool        same_type; /* memory type == the dataset's: no conversion */
    bool        strings;   /* variable-length strings: char pointers in memory */
    bool        trees;     /* sequences or references: hvl_t, H5R_ref_t in memory */
    bool        direct;    /* the buffer goes to (comes from) the core as it is */
    size_t      offset;    /* direct: where the selection starts in the buffer, in bytes */
    size_t      scratch;   /* else: bytes of the buffer to pack (unpack) into */
} transfer_t;

static void
transfer_end(transfer_t *t)
{
    for (int i = 0; i < 2; i++)
        esdm_close(t->owned[i]);
    boxes_free(&t->boxes);
}

/* Resolve H5S_ALL and H5S_BLOCK as HDF5 defines them and list the boxes. */
static herr_t
resolve_spaces(transfer_t *t, esdm_obj_t *dset, hid_t mem_space_id, hid_t file_space_id)
{
    PyGILState_STATE gil;

    *t = (transfer_t){.dset       = dset,
                      .file_space = file_space_id,
                      .mem_space  = mem_space_id,
                      .owned      = {H5I_INVALID_HID, H5I_INVALID_HID}};
    if (file_space_id == H5S_ALL) {
        if (esdm_enter(&gil) < 0)
            return -1;
        t->file_space = t->owned[0] = esdm_dataset_space(dset);
        esdm_leave(gil);
        if (t->file_space < 0)
            return -1;
    }
    else if (file_space_id == H5S_BLOCK || file_space_id == H5S_PLIST)
        return esdm_unsupported("passing H5S_BLOCK or H5S_PLIST as the file dataspace");
    if (H5Sselect_valid(t->file_space) <= 0) {
        esdm_error(esdm_err_argument, "esdm VOL: the file selection is outside the dataset's extent");
        return -1;
    }
    if (boxes_of(t->file_space, &t->boxes) < 0)
        return -1;
    if (mem_space_id == H5S_ALL)
        t->mem_space = t->file_space;
    else if (mem_space_id == H5S_BLOCK) {
        hsize_t n = t->boxes.npoints;
        if ((t->mem_space = t->owned[1] = H5Screate_simple(1, &n, NULL)) < 0)
            return -1;
    }
    else if (mem_space_id == H5S_PLIST)
        return esdm_unsupported("passing H5S_PLIST as the memory dataspace");
    hssize_t mem_points = H5Sget_select_npoints(t->mem_space);
    if (mem_points < 0 || (hsize_t)mem_points != t->boxes.npoints) {
        esdm_error(esdm_err_argument,
                   "esdm VOL: the memory selection has %lld elements, the file selection %llu",
                   (long long)mem_points, (unsigned long long)t->boxes.npoints);
        return -1;
    }
    return 0;
}

/* Everything H5Dwrite and H5Dread share before data moves: the selections
 * resolved and listed, and whether the buffer can skip packing (same type,
 * box order, one contiguous run) or how large the packing buffer must be. */
static herr_t
transfer_begin(transfer_t *t, esdm_obj_t *dset, hid_t mem_type_id, hid_t mem_space_id,
               hid_t file_space_id)
{
    hsize_t first;

    if (resolve_spaces(t, dset, mem_space_id, file_space_id) < 0)
        return -1;
    if (t->boxes.npoints == 0)
        return 0;
    size_t file_size = H5Tget_size(dset->type_id), mem_size = H5Tget_size(mem_type_id);
    htri_t same_type = H5Tequal(mem_type_id, dset->type_id);
    if (same_type < 0)
        return -1;
    t->strings = esdm_type_is_vlen_string(dset->type_id);
    /* fixed-length strings in the file convert to and from variable-length ones
     * in memory as any conversion does (H5Tconvert allocates what a read hands out) */
    bool fixed_to_vlen = !t->strings && H5Tget_class(dset->type_id) == H5T_STRING &&
                         esdm_type_is_vlen_string(mem_type_id);
    if (t->strings != esdm_type_is_vlen_string(mem_type_id) && !fixed_to_vlen)
        return esdm_unsupported("converting between variable-length strings and other types");
    t->trees = esdm_type_needs_tree(dset->type_id);
    if (t->trees && !same_type)
        return esdm_unsupported("converting references or variable-length sequences to another "
                                "type than the dataset's");
    t->same_type = same_type || t->strings; /* pointers either way, whatever the character set */
    t->direct    = same_type && t->boxes.ordered && contiguous(t->mem_space, &first);
    t->offset    = t->direct ? (size_t)first * mem_size : 0;
    t->scratch   = (size_t)t->boxes.npoints * (file_size > mem_size ? file_size : mem_size);
    return 0;
}

/* Strings to the core (write) or from it into the packed pointers. GIL held. */
static herr_t
call_core_strings(const transfer_t *t, PyObject *table, const void *packed, bool writable)
{
    size_t    n    = (size_t)t->boxes.npoints;
    PyObject *done = NULL;
    herr_t    status;

    if (!writable) {
        PyObject *values = esdm_strings_to_py(packed, n);
        done = values ? esdm_call("dataset_write_strings", "(OnON)", t->dset->py,
                                  (Py_ssize_t)t->boxes.nblocks, table, values)
                      : NULL;
        status = done ? 0 : -1;
    }
    else {
        done   = esdm_call("dataset_read_strings", "(OnO)", t->dset->py,
                           (Py_ssize_t)t->boxes.nblocks, table);
        status = done ? esdm_strings_from_py(done, (void *)packed, n) : -1;
    }
    Py_XDECREF(done);
    return status;
}

/* Trees to the core (write) or from it into the packed elements, which the
 * application frees (H5Treclaim). GIL held. */
static herr_t
call_core_trees(const transfer_t *t, PyObject *table, const void *packed, bool writable)
{
    size_t    n    = (size_t)t->boxes.npoints;
    PyObject *done = NULL;
    herr_t    status;

    if (!writable) {
        PyObject *trees = esdm_values_to_py(t->dset->type_id, packed, n);
        done   = trees ? esdm_call("dataset_write_values", "(OnON)", t->dset->py,
                                   (Py_ssize_t)t->boxes.nblocks, table, trees)
                       : NULL;
        status = done ? 0 : -1;
    }
    else {
        done   = esdm_call("dataset_read_values", "(OnO)", t->dset->py, (Py_ssize_t)t->boxes.nblocks,
                           table);
        status = done ? esdm_values_from_py(t->dset->type_id, done, (void *)packed, n, t->dset->file) : -1;
    }
    Py_XDECREF(done);
    return status;
}

/* Hand the packed data to the core or have it fill the packed buffer. */
static herr_t
call_core(const transfer_t *t, const char *function, const void *packed, bool writable)
{
    PyGILState_STATE gil;
    size_t elem = H5Tget_size(t->dset->type_id);
    size_t rows = t->boxes.nblocks * 2 * (size_t)t->boxes.rank;
    herr_t status = -1;

    if (esdm_enter(&gil) < 0)
        return -1;
    PyObject *table = esdm_view(t->boxes.table, rows * sizeof(hsize_t), false);
    PyObject *data  = NULL;
    if (table && t->strings)
        status = call_core_strings(t, table, packed, writable);
    else if (table && t->trees)
        status = call_core_trees(t, table, packed, writable);
    else if (table)
        data = esdm_view(packed, (size_t)t->boxes.npoints * elem, writable);
    if (data) {
        PyObject *done = esdm_call(function, "(OnOO)", t->dset->py, (Py_ssize_t)t->boxes.nblocks,
                                   table, data);
        status = done ? 0 : -1;
        Py_XDECREF(done);
    }
    if (data && esdm_view_release(data, function) < 0)
        status = -1;
    if (table && esdm_view_release(table, function) < 0)
        status = -1;
    esdm_leave(gil);
    return status;
}

static char *
scratch_buffer(const transfer_t *t)
{
    char *scratch = malloc(t->scratch);
    if (!scratch)
        esdm_error(esdm_err_argument, "esdm VOL: out of memory (un)packing %llu elements",
                   (unsigned long long)t->boxes.npoints);
    return scratch;
}

/* Convert the packed values (selection order) from src_type to dst_type. As
 * in HDF5, compound members the source type lacks keep their values: the
 * conversion's background, on a write the stored values, on a read what the
 * application's buffer holds (buf, given for a read only). */
static herr_t
convert(const transfer_t *t, hid_t src_type_id, hid_t dst_type_id, char *packed, const void *buf,
        hid_t dxpl_id)
{
    size_t n        = (size_t)t->boxes.npoints;
    size_t bytes    = n * H5Tget_size(dst_type_id);
    htri_t compound = H5Tdetect_class(dst_type_id, H5T_COMPOUND);
    char  *kept     = NULL;
    herr_t status   = -1;

    if (compound < 0)
        return -1;
    if (compound) {
        if (!(kept = malloc(bytes + 1))) {
            esdm_error(esdm_err_argument, "esdm VOL: out of memory converting %zu elements", n);
            return -1;
        }
        if (buf ? H5Dgather(t->mem_space, buf, dst_type_id, bytes, kept, NULL, NULL) < 0
                : call_core(t, "dataset_read", kept, true) < 0 ||
                      (!t->boxes.ordered &&
                       reorder(&t->boxes, t->file_space, dst_type_id, kept, false) < 0))
            goto done;
    }
    status = esdm_type_convert(src_type_id, dst_type_id, n, packed, kept, dxpl_id);
done:
    free(kept);
    return status;
}

/* HDF5's own connector refuses a null buffer for a selection with elements. */
static herr_t
check_buffer(const transfer_t *t, const void *buf)
{
    if (buf || t->boxes.npoints == 0)
        return 0;
    esdm_error(esdm_err_argument, "esdm VOL: no data buffer for %llu selected elements",
               (unsigned long long)t->boxes.npoints);
    return -1;
}

static herr_t
write_one(esdm_obj_t *dset, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id,
          hid_t dxpl_id, const void *buf)
{
    transfer_t t;
    char      *scratch = NULL;
    herr_t     status  = -1;

    if (transfer_begin(&t, dset, mem_type_id, mem_space_id, file_space_id) < 0 ||
        check_buffer(&t, buf) < 0)
        goto done;
    size_t n = (size_t)t.boxes.npoints;
    if (n == 0 || t.direct) {
        status = n ? call_core(&t, "dataset_write", (const char *)buf + t.offset, false) : 0;
        goto done;
    }
    if (!(scratch = scratch_buffer(&t)) ||
        H5Dgather(t.mem_space, buf, mem_type_id, n * H5Tget_size(mem_type_id), scratch, NULL, NULL) < 0 ||
        (!t.same_type && convert(&t, mem_type_id, dset->type_id, scratch, NULL, dxpl_id) < 0) ||
        (!t.boxes.ordered && reorder(&t.boxes, t.file_space, dset->type_id, scratch, true) < 0))
        goto done;
    status = call_core(&t, "dataset_write", scratch, false);
done:
    free(scratch);
    transfer_end(&t);
    return status;
}

static herr_t
read_one(esdm_obj_t *dset, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id,
         hid_t dxpl_id, void *buf)
{
    transfer_t t;
    char      *scratch = NULL;
    herr_t     status  = -1;

    if (transfer_begin(&t, dset, mem_type_id, mem_space_id, file_space_id) < 0 ||
        check_buffer(&t, buf) < 0)
        goto done;
    size_t n = (size_t)t.boxes.npoints;
    if (n == 0 || t.direct) {
        status = n ? call_core(&t, "dataset_read", (char *)buf + t.offset, true) : 0;
        goto done;
    }
    if (!(scratch = scratch_buffer(&t)) || call_core(&t, "dataset_read", scratch, true) < 0 ||
        (!t.boxes.ordered && reorder(&t.boxes, t.file_space, dset->type_id, scratch, false) < 0) ||
        (!t.same_type && convert(&t, dset->type_id, mem_type_id, scratch, buf, dxpl_id) < 0))
        goto done;
    void *source[2] = {scratch, &(size_t){n * H5Tget_size(mem_type_id)}};
    status          = H5Dscatter(hand_over, source, mem_type_id, t.mem_space, buf);
done:
    free(scratch);
    transfer_end(&t);
    return status;
}

/* The bytes the variable-length parts of n values of type_id at buf take in
 * memory (H5Dvlen_get_buf_size's count): sequences' elements and strings'
 * characters with their terminators, nested ones too. */
static hsize_t
vlen_bytes(hid_t type_id, const char *buf, size_t n)
{
    size_t  size  = H5Tget_size(type_id);
    hsize_t total = 0;

    if (esdm_type_is_vlen_string(type_id)) {
        for (size_t i = 0; i < n; i++) {
            const char *s = ((const char *const *)buf)[i];
            total += s ? strlen(s) + 1 : 0;
        }
        return total;
    }
    if (H5Tget_class(type_id) == H5T_VLEN) {
        hid_t base = H5Tget_super(type_id);
        for (size_t i = 0; base >= 0 && i < n; i++) {
            const hvl_t *sequence = (const hvl_t *)(buf + i * size);
            total += sequence->len * H5Tget_size(base) + vlen_bytes(base, sequence->p, sequence->len);
        }
        esdm_close(base);
        return total;
    }
    if (H5Tget_class(type_id) == H5T_COMPOUND)
        for (int m = 0; m < H5Tget_nmembers(type_id); m++) {
            hid_t  member = H5Tget_member_type(type_id, (unsigned)m);
            size_t offset = H5Tget_member_offset(type_id, (unsigned)m);
            for (size_t i = 0; member >= 0 && i < n; i++)
                total += vlen_bytes(member, buf + i * size + offset, 1);
            esdm_close(member);
        }
    return total;
}

herr_t
esdm_dataset_vlen_buf_size(esdm_obj_t *dset, hid_t type_id, hid_t space_id, hsize_t *size)
{
    hssize_t n   = H5Sget_select_npoints(space_id);
    char    *buf = n < 0 ? NULL : calloc((size_t)n + 1, H5Tget_size(type_id));
    herr_t   status = -1;

    if (!buf) {
        esdm_error(esdm_err_argument, "esdm VOL: H5Dvlen_get_buf_size: out of memory");
        return -1;
    }
    /* the values read into a packed buffer, counted, and given back */
    hsize_t count = (hsize_t)n;
    hid_t   packed = H5Screate_simple(1, &count, NULL);
    if (packed >= 0 && read_one(dset, type_id, packed, space_id, H5P_DEFAULT, buf) == 0) {
        *size  = vlen_bytes(type_id, buf, (size_t)n);
        status = H5Treclaim(type_id, packed, H5P_DEFAULT, buf);
    }
    esdm_close(packed);
    free(buf);
    return status;
}

/* A virtual dataset's read, with H5S_ALL and H5S_BLOCK resolved (virtual.c). */
static herr_t
read_virtual(esdm_obj_t *dset, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id,
             hid_t dxpl_id, void *buf)
{
    transfer_t t;
    herr_t     status = -1;

    if (resolve_spaces(&t, dset, mem_space_id, file_space_id) == 0 && check_buffer(&t, buf) == 0)
        status = t.boxes.npoints ? esdm_virtual_read(dset, mem_type_id, t.mem_space, t.file_space, dxpl_id, buf)
                                 : 0;
    transfer_end(&t);
    return status;
}

herr_t
esdm_dataset_write(size_t count, void *dset[], hid_t mem_type_id[], hid_t mem_space_id[],
                   hid_t file_space_id[], hid_t dxpl_id, const void *buf[], void **req)
{
    (void)req;
    for (size_t i = 0; i < count; i++) {
        if (esdm_is_virtual(dset[i]))
            return esdm_unsupported("writing through a virtual dataset (write its sources)");
        if (write_one(dset[i], mem_type_id[i], mem_space_id[i], file_space_id[i], dxpl_id, buf[i]) < 0)
            return -1;
    }
    return 0;
}

herr_t
esdm_dataset_read(size_t count, void *dset[], hid_t mem_type_id[], hid_t mem_space_id[],
                  hid_t file_space_id[], hid_t dxpl_id, void *buf[], void **req)
{
    (void)req;
    for (size_t i = 0; i < count; i++)
        if ((esdm_is_virtual(dset[i])
                 ? read_virtual(dset[i], mem_type_id[i], mem_space_id[i], file_space_id[i], dxpl_id, buf[i])
                 : read_one(dset[i], mem_type_id[i], mem_space_id[i], file_space_id[i], dxpl_id, buf[i])) < 0)
            return -1;
    return 0;
}
