/*
 * Region algebra on N-D boxes (see region.h for the conventions).
 *
 * Internally a box is handled as bounds lo/hi per axis (hi = offset + count),
 * with the helpers of box.h, which boxindex.c shares.
 */
#include "region.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "box.h"

_Static_assert((int)ESDM_OK == ESDM_OK && (int)ESDM_ENOMEM == ESDM_ENOMEM,
               "box.h statuses pass through");
_Static_assert(REGION_MAX_NDIM == BOX_MAX_NDIM, "box.h helpers take every supported box");

static bool valid_ndim(size_t ndim) { return ndim >= 1 && ndim <= REGION_MAX_NDIM; }

/* ---- Intersection --------------------------------------------------------- */

int region_intersect(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                     const int64_t *offsets, const int64_t *counts, size_t *nhits, int64_t *index,
                     int64_t *hit_offsets, int64_t *hit_counts)
{
    if (!valid_ndim(ndim))
        return ESDM_EINVAL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* Computed straight into the next output slot, which a miss leaves free. */
        int64_t *lo = hit_offsets + k * ndim, *hi = hit_counts + k * ndim;
        if (!box_intersection(ndim, offset, count, offsets + i * ndim, counts + i * ndim, lo, hi))
            continue;
        for (size_t d = 0; d < ndim; d++)
            hi[d] -= lo[d];
        index[k++] = (int64_t)i;
    }
    *nhits = k;
    return ESDM_OK;
}

/* ---- Subtraction ---------------------------------------------------------- */

int region_subtract(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                    const int64_t *offsets, const int64_t *counts, size_t *npieces,
                    int64_t **piece_offsets, int64_t **piece_counts)
{
    if (!valid_ndim(ndim))
        return ESDM_EINVAL;
    struct box_list pieces = {.ndim = ndim}, next = {.ndim = ndim};
    int64_t lo[REGION_MAX_NDIM], hi[REGION_MAX_NDIM];
    int status = ESDM_OK;
    if (box_intersection(ndim, offset, count, offset, count, lo, hi)) /* the box, unless empty */
        status = box_list_push(&pieces, lo, hi);

    for (size_t j = 0; status == ESDM_OK && pieces.len && j < n; j++) {
        /* Only the part of box j inside the box can cut pieces of it. */
        if (!box_intersection(ndim, offset, count, offsets + j * ndim, counts + j * ndim, lo, hi))
            continue;
        next.len = 0;
        for (size_t p = 0; status == ESDM_OK && p < pieces.len; p++)
            status = box_carve(ndim, pieces.lo + p * ndim, pieces.hi + p * ndim, lo, hi, &next);
        struct box_list carved = next;
        next = pieces;
        pieces = carved;
    }
    box_list_free(&next);
    if (status != ESDM_OK) {
        box_list_free(&pieces);
        return status;
    }
    for (size_t x = 0; x < pieces.len * ndim; x++)
        pieces.hi[x] -= pieces.lo[x]; /* bounds to counts, in place */
    *npieces = pieces.len;
    *piece_offsets = pieces.lo;
    *piece_counts = pieces.hi;
    return ESDM_OK;
}

/* ---- Overlapping pairs ---------------------------------------------------- */

/*
 * The non-empty input boxes as bounds, compacted (so that the sweep can put
 * them in its order, where the boxes it compares lie close in memory), with
 * their input indices.
 */
struct boxes {
    size_t ndim, n;
    int64_t *lo, *hi; /* (n, ndim) */
    uint32_t *id;
};

static int boxes_alloc(struct boxes *b, size_t ndim, size_t n)
{
    *b = (struct boxes){.ndim = ndim, .n = n};
    b->lo = malloc(n * ndim * sizeof *b->lo);
    b->hi = malloc(n * ndim * sizeof *b->hi);
    b->id = malloc(n * sizeof *b->id);
    return b->lo && b->hi && b->id ? ESDM_OK : ESDM_ENOMEM;
}

static void boxes_free(struct boxes *b)
{
    free(b->lo);
    free(b->hi);
    free(b->id);
}

/* The non-empty ones of n >= 1 boxes. */
static int boxes_init(struct boxes *b, size_t ndim, size_t n, const int64_t *offsets,
                      const int64_t *counts)
{
    int status = boxes_alloc(b, ndim, n);
    if (status != ESDM_OK)
        return status;
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        bool empty = false;
        for (size_t d = 0; d < ndim; d++) {
            b->lo[live * ndim + d] = offsets[i * ndim + d];
            b->hi[live * ndim + d] = offsets[i * ndim + d] + counts[i * ndim + d];
            empty |= counts[i * ndim + d] == 0;
        }
        if (!empty)
            b->id[live++] = (uint32_t)i;
    }
    b->n = live;
    return ESDM_OK;
}

/* Reorders the boxes so that box t becomes the one that was box order[t]. */
static int boxes_permute(struct boxes *b, const uint32_t *order)
{
    const size_t ndim = b->ndim;
    struct boxes permuted;
    int status = boxes_alloc(&permuted, ndim, b->n);
    if (status != ESDM_OK) {
        boxes_free(&permuted);
        return status;
    }
    for (size_t t = 0; t < b->n; t++) {
        memcpy(permuted.lo + t * ndim, b->lo + order[t] * ndim, ndim * sizeof *b->lo);
        memcpy(permuted.hi + t * ndim, b->hi + order[t] * ndim, ndim * sizeof *b->hi);
        permuted.id[t] = b->id[order[t]];
    }
    boxes_free(b);
    *b = permuted;
    return ESDM_OK;
}

/* The boxes ordered by one of their bounds (lo or hi) on one axis. */
struct bound_order {
    uint64_t *key; /* order_key of the bound */
    uint32_t *box;
};

static int bound_order_init(struct bound_order *order, const struct boxes *b,
                            const int64_t *bound, size_t axis)
{
    order->key = malloc(b->n * sizeof *order->key);
    order->box = malloc(b->n * sizeof *order->box);
    if (!order->key || !order->box)
        return ESDM_ENOMEM;
    for (size_t t = 0; t < b->n; t++) {
        order->key[t] = box_order_key(bound[t * b->ndim + axis]);
        order->box[t] = (uint32_t)t;
    }
    return box_radix_sort(order->key, order->box, b->n);
}

static void bound_order_free(struct bound_order *order)
{
    free(order->key);
    free(order->box);
}

/*
 * Number of pairs of boxes whose projections on `axis` overlap.  Going through
 * the boxes by start, each one overlaps those before it that have not ended
 * yet; the boxes that ended at or before its start all started earlier, so
 * they are counted by a pointer into the boxes sorted by end.
 */
static int projected_pairs(const struct boxes *b, size_t axis, uint64_t *pairs)
{
    struct bound_order starts = {0}, ends = {0};
    int status = bound_order_init(&starts, b, b->lo, axis);
    if (status == ESDM_OK)
        status = bound_order_init(&ends, b, b->hi, axis);
    if (status == ESDM_OK) {
        uint64_t total = 0;
        size_t ended = 0;
        for (size_t t = 0; t < b->n; t++) {
            while (ends.key[ended] <= starts.key[t])
                ended++;
            total += t - ended;
        }
        *pairs = total;
    }
    bound_order_free(&starts);
    bound_order_free(&ends);
    return status;
}

/*
 * The sweep axis has the fewest overlapping projections, which bounds the size
 * of the active set; the index axis, the next fewest, filters the active boxes.
 * In 1-D both are axis 0, where every active box is a hit anyway.
 */
static int choose_axes(const struct boxes *b, size_t *sweep_axis, size_t *index_axis)
{
    uint64_t pairs[REGION_MAX_NDIM];
    for (size_t d = 0; d < b->ndim; d++) {
        int status = projected_pairs(b, d, &pairs[d]);
        if (status != ESDM_OK)
            return status;
    }
    size_t first = 0, second = 0;
    for (size_t d = 1; d < b->ndim; d++) {
        if (pairs[d] < pairs[first]) {
            second = first;
            first = d;
        } else if (second == first || pairs[d] < pairs[second]) {
            second = d;
        }
    }
    *sweep_axis = first;
    *index_axis = second;
    return ESDM_OK;
}

/*
 * The active boxes, indexed by their start on the index axis: leaf p holds the
 * end (as order key) of the box with the p-th smallest start while that box is
 * active, else 0, and every inner node the maximum of its two children.  The
 * active boxes overlapping [lo, hi) on the index axis are the leaves left of
 * the first start >= hi whose end is > lo; the maxima let a query skip every
 * subtree without such a leaf, so it costs O((1 + hits) log n).
 */
struct end_tree {
    size_t leaves;     /* a power of two */
    uint64_t *max_end; /* 2 * leaves nodes; node 1 is the root, node v has children 2v, 2v+1 */
};

static int end_tree_init(struct end_tree *tree, size_t n)
{
    tree->leaves = 1;
    while (tree->leaves < n)
        tree->leaves *= 2;
    tree->max_end = calloc(2 * tree->leaves, sizeof *tree->max_end);
    return tree->max_end ? ESDM_OK : ESDM_ENOMEM;
}

static void end_tree_set(struct end_tree *tree, size_t leaf, uint64_t end)
{
    uint64_t *max_end = tree->max_end;
    size_t node = tree->leaves + leaf;
    max_end[node] = end;
    for (node /= 2; node; node /= 2) {
        uint64_t m = max_end[2 * node] > max_end[2 * node + 1] ? max_end[2 * node]
                                                               : max_end[2 * node + 1];
        if (max_end[node] == m)
            break; /* the ancestors are unchanged too */
        max_end[node] = m;
    }
}

/* A subtree to visit: its root and the range [first, first + span) of its leaves. */
struct subtree {
    size_t node, first, span;
};

/* Writes the leaves < limit whose value is > lo to hits[]; returns how many. */
static size_t end_tree_stab(const struct end_tree *tree, size_t limit, uint64_t lo,
                            uint32_t *hits)
{
    struct subtree stack[64]; /* depth-first: at most one pending sibling per level */
    size_t depth = 0, nhits = 0;
    stack[depth++] = (struct subtree){1, 0, tree->leaves};
    while (depth) {
        const struct subtree t = stack[--depth];
        if (t.first >= limit || tree->max_end[t.node] <= lo)
            continue;
        if (t.span == 1) {
            hits[nhits++] = (uint32_t)t.first;
            continue;
        }
        const size_t half = t.span / 2;
        stack[depth++] = (struct subtree){2 * t.node + 1, t.first + half, half};
        stack[depth++] = (struct subtree){2 * t.node, t.first, half};
    }
    return nhits;
}

/* Pairs (i, j), i < j, of n boxes, packed as i * n + j so that sorting the keys sorts the pairs. */
struct pair_list {
    size_t n, len, cap;
    uint64_t *key;
};

static int pair_list_push(struct pair_list *pairs, uint32_t i, uint32_t j)
{
    if (pairs->len == pairs->cap) {
        size_t cap = pairs->cap ? 2 * pairs->cap : 1024;
        uint64_t *grown = realloc(pairs->key, cap * sizeof *grown);
        if (!grown)
            return ESDM_ENOMEM;
        pairs->key = grown;
        pairs->cap = cap;
    }
    uint64_t first = i < j ? i : j, second = i < j ? j : i;
    pairs->key[pairs->len++] = first * pairs->n + second;
    return ESDM_OK;
}

/* What the sweep needs besides the boxes, which it keeps in order of their start. */
struct sweep {
    struct bound_order ends;     /* by end on the sweep axis: when boxes leave */
    struct bound_order by_index; /* by start on the index axis: the tree's leaves */
    struct end_tree tree;
    uint32_t *leaf;  /* per box: its leaf */
    uint32_t *limit; /* per box: the leaves starting before it ends on the index axis */
    uint32_t *hits;  /* scratch for tree queries */
};

/* Fills s->limit by merging the boxes' ends on the index axis into the leaves' starts. */
static int query_limits(struct sweep *s, const struct boxes *b, size_t index_axis)
{
    struct bound_order ends = {0};
    int status = bound_order_init(&ends, b, b->hi, index_axis);
    if (status == ESDM_OK) {
        size_t leaves = 0;
        for (size_t t = 0; t < b->n; t++) {
            while (leaves < b->n && s->by_index.key[leaves] < ends.key[t])
                leaves++;
            s->limit[ends.box[t]] = (uint32_t)leaves;
        }
    }
    bound_order_free(&ends);
    return status;
}

static int sweep_init(struct sweep *s, const struct boxes *b, size_t sweep_axis,
                      size_t index_axis)
{
    s->leaf = malloc(b->n * sizeof *s->leaf);
    s->limit = malloc(b->n * sizeof *s->limit);
    s->hits = malloc(b->n * sizeof *s->hits);
    if (!s->leaf || !s->limit || !s->hits)
        return ESDM_ENOMEM;
    int status = bound_order_init(&s->ends, b, b->hi, sweep_axis);
    if (status == ESDM_OK)
        status = bound_order_init(&s->by_index, b, b->lo, index_axis);
    if (status == ESDM_OK)
        status = query_limits(s, b, index_axis);
    if (status == ESDM_OK)
        status = end_tree_init(&s->tree, b->n);
    if (status == ESDM_OK)
        for (size_t p = 0; p < b->n; p++)
            s->leaf[s->by_index.box[p]] = (uint32_t)p;
    return status;
}

static void sweep_free(struct sweep *s)
{
    bound_order_free(&s->ends);
    bound_order_free(&s->by_index);
    free(s->tree.max_end);
    free(s->leaf);
    free(s->limit);
    free(s->hits);
}

/* Puts the boxes in order of their start on the sweep axis. */
static int sort_for_sweep(struct boxes *b, size_t sweep_axis)
{
    struct bound_order starts = {0};
    int status = bound_order_init(&starts, b, b->lo, sweep_axis);
    if (status == ESDM_OK)
        status = boxes_permute(b, starts.box);
    bound_order_free(&starts);
    return status;
}

/*
 * Sweeps the boxes, sorted by start on the sweep axis.  Before a box enters the
 * active set, the boxes that ended at or before its start leave it, so the
 * active boxes are exactly those it overlaps on the sweep axis; of these the
 * tree yields the ones that also overlap on the index axis, and only they are
 * compared on all axes.
 */
static int sweep_pairs(const struct boxes *b, size_t sweep_axis, size_t index_axis,
                       size_t max_pairs, struct pair_list *pairs)
{
    const size_t ndim = b->ndim;
    struct sweep s = {0};
    int status = sweep_init(&s, b, sweep_axis, index_axis);
    size_t ended = 0;
    for (size_t t = 0; status == ESDM_OK && t < b->n && pairs->len < max_pairs; t++) {
        const int64_t *lo = b->lo + t * ndim, *hi = b->hi + t * ndim;
        while (s.ends.key[ended] <= box_order_key(lo[sweep_axis]))
            end_tree_set(&s.tree, s.leaf[s.ends.box[ended++]], 0);

        size_t nhits = end_tree_stab(&s.tree, s.limit[t], box_order_key(lo[index_axis]), s.hits);
        for (size_t h = 0; status == ESDM_OK && h < nhits && pairs->len < max_pairs; h++) {
            const uint32_t j = s.by_index.box[s.hits[h]];
            if (box_overlap(ndim, lo, hi, b->lo + j * ndim, b->hi + j * ndim))
                status = pair_list_push(pairs, b->id[t], b->id[j]);
        }
        end_tree_set(&s.tree, s.leaf[t], box_order_key(hi[index_axis]));
    }
    sweep_free(&s);
    return status;
}

static int overlapping_pairs(struct boxes *b, size_t max_pairs, struct pair_list *pairs)
{
    size_t sweep_axis, index_axis;
    int status = choose_axes(b, &sweep_axis, &index_axis);
    if (status == ESDM_OK)
        status = sort_for_sweep(b, sweep_axis);
    if (status == ESDM_OK)
        status = sweep_pairs(b, sweep_axis, index_axis, max_pairs, pairs);
    if (status == ESDM_OK)
        status = box_radix_sort(pairs->key, NULL, pairs->len);
    return status;
}

/* Unpacks the pair keys into a malloc'ed (len, 2) array. */
static int unpack_pairs(const struct pair_list *pairs, int64_t **out)
{
    if (pairs->len == 0)
        return ESDM_OK;
    int64_t *unpacked = malloc(2 * pairs->len * sizeof *unpacked);
    if (!unpacked)
        return ESDM_ENOMEM;
    for (size_t k = 0; k < pairs->len; k++) {
        unpacked[2 * k] = (int64_t)(pairs->key[k] / pairs->n);
        unpacked[2 * k + 1] = (int64_t)(pairs->key[k] % pairs->n);
    }
    *out = unpacked;
    return ESDM_OK;
}

int region_find_overlaps(size_t ndim, size_t n, const int64_t *offsets, const int64_t *counts,
                         size_t max_pairs, size_t *npairs, int64_t **pairs)
{
    *npairs = 0;
    *pairs = NULL;
    if (!valid_ndim(ndim) || n > UINT32_MAX)
        return ESDM_EINVAL;
    if (n < 2 || max_pairs == 0)
        return ESDM_OK;
    struct boxes b;
    struct pair_list found = {.n = n};
    int status = boxes_init(&b, ndim, n, offsets, counts);
    if (status == ESDM_OK && b.n >= 2)
        status = overlapping_pairs(&b, max_pairs, &found);
    if (status == ESDM_OK)
        status = unpack_pairs(&found, pairs);
    if (status == ESDM_OK)
        *npairs = found.len;
    free(found.key);
    boxes_free(&b);
    return status;
}
