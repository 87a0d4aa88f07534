/*
 * Static spatial index over N-D boxes, and read plans (see boxindex.h).
 *
 * The index is a packed R-tree in the manner of the Hilbert R-tree (Kamel and
 * Faloutsos, 1994) and of flatbush: the non-empty boxes, sorted by the Hilbert
 * key of their centres, are the leaves; every FANOUT consecutive leaves get a
 * parent node whose bounds enclose them, every FANOUT consecutive parents a
 * grandparent, and so on up to a single root.  The children of node j of a
 * level are entries [j * FANOUT, (j + 1) * FANOUT) of the level below, so the
 * tree is a few flat arrays without pointers.  The Hilbert curve keeps the
 * boxes under a node close together in space, so nodes stay small and a query
 * descends into few of those that do not hold a hit.
 *
 * Boxes and nodes are stored as bounds records, lo[ndim] then hi[ndim], so
 * that the overlap test of one entry reads one or two cache lines.
 */
#include "boxindex.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "box.h"

_Static_assert((int)ESDM_OK == ESDM_OK && (int)ESDM_ENOMEM == ESDM_ENOMEM,
               "box.h statuses pass through");
_Static_assert(BOXINDEX_MAX_NDIM == BOX_MAX_NDIM, "box.h helpers take every supported box");

/*
 * Children per node.  A query tests all children of every node it enters, so
 * a wider node costs more tests there but makes a shallower tree; with 16 the
 * children's bounds take at most 2 KiB and a million boxes five levels.
 */
#define FANOUT 16
#define MAX_LEVELS 8 /* FANOUT**MAX_LEVELS >= BOXINDEX_MAX_BOXES */

struct boxindex {
    size_t ndim, n;
    size_t live;    /* the non-empty boxes: the leaves */
    size_t nlevels; /* levels of nodes, 0 when there are no leaves */
    /* Level k holds nodes [level_start[k], level_start[k + 1]): level 0 the
     * parents of the leaves, level nlevels - 1 the root alone. */
    size_t level_start[MAX_LEVELS + 1];
    int64_t *box;  /* (n, 2, ndim): the leaves in Hilbert order, then the empty boxes */
    uint32_t *id;  /* (n,): the input number of each box */
    int64_t *node; /* (level_start[nlevels], 2, ndim) */
};

static bool valid_ndim(size_t ndim) { return ndim >= 1 && ndim <= BOXINDEX_MAX_NDIM; }

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Whether the entry with bounds record `entry` overlaps the box with bounds record `q`. */
static inline bool meets(size_t ndim, const int64_t *entry, const int64_t *q)
{
    return box_overlap(ndim, entry, entry + ndim, q, q + ndim);
}

/* ---- Hilbert keys ------------------------------------------------------------ */

/*
 * The Hilbert key of a point of ndim >= 2 coordinates x[d] < 2**bits, with
 * ndim * bits <= 64, by Skilling's transform ("Programming the Hilbert
 * curve", AIP Conf. Proc. 707, 2004), which works in any dimension.  x[] is
 * overwritten with the transposed key: bit b of x[d] is key bit
 * b * ndim + (ndim - 1 - d).
 */
static uint64_t hilbert_key(size_t ndim, unsigned bits, uint64_t *x)
{
    const uint64_t top = UINT64_C(1) << (bits - 1);
    for (uint64_t q = top; q > 1; q >>= 1) {
        const uint64_t p = q - 1; /* the bits below q */
        for (size_t d = 0; d < ndim; d++) {
            /* If bit q of x[d] is set, invert the low bits of x[0], else exchange them
             * with those of x[d]; without branches, which would be taken at random. */
            const uint64_t invert = 0 - (uint64_t)((x[d] & q) != 0);
            x[0] ^= p & invert;
            const uint64_t t = (x[0] ^ x[d]) & p & ~invert;
            x[0] ^= t;
            x[d] ^= t;
        }
    }
    for (size_t d = 1; d < ndim; d++) /* Gray encode */
        x[d] ^= x[d - 1];
    uint64_t flip = 0;
    for (uint64_t q = top; q > 1; q >>= 1)
        if (x[ndim - 1] & q)
            flip ^= q - 1;
    for (size_t d = 0; d < ndim; d++)
        x[d] ^= flip;

    uint64_t key = 0;
    for (unsigned b = bits; b-- > 0;)
        for (size_t d = 0; d < ndim; d++)
            key = key << 1 | (x[d] >> b & 1);
    return key;
}

static unsigned bit_length(uint64_t v)
{
    unsigned bits = 0;
    for (; v; v >>= 1)
        bits++;
    return bits;
}

/* Centre of [lo, hi) as an order key (box_order_key): exact, since hi >= lo cannot wrap. */
static inline uint64_t centre(int64_t lo, int64_t hi)
{
    const uint64_t a = box_order_key(lo), b = box_order_key(hi);
    return a + (b - a) / 2;
}

/*
 * keys[t] = the Hilbert key of the centre of box id[t], t < count.  The
 * centres are moved to the origin and divided by the power of two that brings
 * the largest extent down to the 64 / ndim bits per axis a key has room for.
 * The divisor is the same on all axes, so that the curve follows the geometry
 * (a thin slab of boxes stays thin), and coordinates get only the bits they
 * need, which keeps the transform short for the common grid of few blocks.
 */
static void hilbert_keys(size_t ndim, const int64_t *offsets, const int64_t *counts,
                         const uint32_t *id, size_t count, uint64_t *keys)
{
    uint64_t min[BOX_MAX_NDIM], max[BOX_MAX_NDIM];
    for (size_t d = 0; d < ndim; d++) {
        min[d] = UINT64_MAX;
        max[d] = 0;
    }
    for (size_t t = 0; t < count; t++) {
        const int64_t *lo = offsets + (size_t)id[t] * ndim, *n = counts + (size_t)id[t] * ndim;
        for (size_t d = 0; d < ndim; d++) {
            const uint64_t c = centre(lo[d], lo[d] + n[d]);
            min[d] = c < min[d] ? c : min[d];
            max[d] = c > max[d] ? c : max[d];
        }
    }
    uint64_t extent = 0;
    for (size_t d = 0; d < ndim; d++)
        extent = max[d] - min[d] > extent ? max[d] - min[d] : extent;
    const unsigned room = (unsigned)(64 / ndim), needed = bit_length(extent);
    const unsigned shift = needed > room ? needed - room : 0;
    const unsigned bits = needed > shift ? needed - shift : 1;

    for (size_t t = 0; t < count; t++) {
        const int64_t *lo = offsets + (size_t)id[t] * ndim, *n = counts + (size_t)id[t] * ndim;
        uint64_t x[BOX_MAX_NDIM];
        for (size_t d = 0; d < ndim; d++)
            x[d] = (centre(lo[d], lo[d] + n[d]) - min[d]) >> shift;
        keys[t] = ndim == 1 ? x[0] : hilbert_key(ndim, bits, x); /* in 1-D the curve is the axis */
    }
}

/* ---- Building ---------------------------------------------------------------- */

static void bounds_record(size_t ndim, const int64_t *offset, const int64_t *count, int64_t *out)
{
    for (size_t d = 0; d < ndim; d++) {
        out[d] = offset[d];
        out[ndim + d] = offset[d] + count[d];
    }
}

/* out = the bounds record enclosing `count` >= 1 consecutive bounds records. */
static void enclose(size_t ndim, const int64_t *records, size_t count, int64_t *out)
{
    memcpy(out, records, 2 * ndim * sizeof *out);
    for (size_t r = 1; r < count; r++) {
        const int64_t *record = records + r * 2 * ndim;
        for (size_t d = 0; d < ndim; d++) {
            out[d] = box_min_i64(out[d], record[d]);
            out[ndim + d] = box_max_i64(out[ndim + d], record[ndim + d]);
        }
    }
}

/* The nodes above the leaves, level by level up to the root. */
static int build_levels(struct boxindex *ix)
{
    const size_t ndim = ix->ndim, record = 2 * ndim;
    size_t total = 0;
    if (ix->live) {
        size_t size = ix->live;
        do {
            size = (size + FANOUT - 1) / FANOUT;
            ix->level_start[ix->nlevels++] = total;
            total += size;
        } while (size > 1);
    }
    ix->level_start[ix->nlevels] = total;
    ix->node = malloc(total * record * sizeof *ix->node);
    if (total && !ix->node)
        return ESDM_ENOMEM;

    const int64_t *children = ix->box;
    size_t nchildren = ix->live;
    for (size_t k = 0; k < ix->nlevels; k++) {
        int64_t *level = ix->node + ix->level_start[k] * record;
        const size_t size = ix->level_start[k + 1] - ix->level_start[k];
        for (size_t j = 0; j < size; j++) {
            const size_t first = j * FANOUT, last = min_size(first + FANOUT, nchildren);
            enclose(ndim, children + first * record, last - first, level + j * record);
        }
        children = level;
        nchildren = size;
    }
    return ESDM_OK;
}

/* Orders the boxes: the non-empty ones by the Hilbert key of their centres, then the empty ones. */
static int leaf_order(struct boxindex *ix, const int64_t *offsets, const int64_t *counts)
{
    const size_t ndim = ix->ndim;
    size_t live = 0, empty = ix->n; /* the empty ones fill id[] from the back */
    for (size_t i = 0; i < ix->n; i++) {
        bool is_empty = false;
        for (size_t d = 0; d < ndim; d++)
            is_empty |= counts[i * ndim + d] == 0;
        ix->id[is_empty ? --empty : live++] = (uint32_t)i;
    }
    ix->live = live;

    uint64_t *keys = malloc(live * sizeof *keys);
    if (live && !keys)
        return ESDM_ENOMEM;
    hilbert_keys(ndim, offsets, counts, ix->id, live, keys);
    int status = box_radix_sort(keys, ix->id, live); /* stable: ties keep input order */
    free(keys);
    return status;
}

int boxindex_build(size_t ndim, size_t n, const int64_t *offsets, const int64_t *counts,
                   struct boxindex **index)
{
    *index = NULL;
    if (!valid_ndim(ndim) || n > BOXINDEX_MAX_BOXES)
        return ESDM_EINVAL;
    struct boxindex *ix = calloc(1, sizeof *ix);
    if (!ix)
        return ESDM_ENOMEM;
    ix->ndim = ndim;
    ix->n = n;
    ix->box = malloc(n * 2 * ndim * sizeof *ix->box);
    ix->id = malloc(n * sizeof *ix->id);
    int status = n && (!ix->box || !ix->id) ? ESDM_ENOMEM : ESDM_OK;
    if (status == ESDM_OK)
        status = leaf_order(ix, offsets, counts);
    if (status == ESDM_OK) {
        for (size_t t = 0; t < n; t++) {
            const size_t i = ix->id[t];
            bounds_record(ndim, offsets + i * ndim, counts + i * ndim, ix->box + t * 2 * ndim);
        }
        status = build_levels(ix);
    }
    if (status != ESDM_OK) {
        boxindex_free(ix);
        return status;
    }
    *index = ix;
    return ESDM_OK;
}

void boxindex_free(struct boxindex *index)
{
    if (!index)
        return;
    free(index->box);
    free(index->id);
    free(index->node);
    free(index);
}

size_t boxindex_ndim(const struct boxindex *index) { return index->ndim; }

size_t boxindex_size(const struct boxindex *index) { return index->n; }

size_t boxindex_nbytes(const struct boxindex *index)
{
    const size_t record = 2 * index->ndim * sizeof(int64_t);
    return sizeof *index + index->n * (record + sizeof *index->id) +
           index->level_start[index->nlevels] * record;
}

void boxindex_boxes(const struct boxindex *index, int64_t *offsets, int64_t *counts)
{
    const size_t ndim = index->ndim;
    for (size_t t = 0; t < index->n; t++) {
        const int64_t *record = index->box + t * 2 * ndim;
        const size_t i = index->id[t];
        for (size_t d = 0; d < ndim; d++) {
            offsets[i * ndim + d] = record[d];
            counts[i * ndim + d] = record[ndim + d] - record[d];
        }
    }
}

/* ---- Queries ----------------------------------------------------------------- */

/* A growable array of box numbers. */
struct hits {
    size_t len, cap;
    int64_t *id;
};

static int hits_push(struct hits *hits, int64_t id)
{
    if (hits->len == hits->cap) {
        size_t cap = hits->cap ? 2 * hits->cap : 64;
        int64_t *grown = realloc(hits->id, cap * sizeof *grown);
        if (!grown)
            return ESDM_ENOMEM;
        hits->id = grown;
        hits->cap = cap;
    }
    hits->id[hits->len++] = id;
    return ESDM_OK;
}

/* A node to enter: its level and its number within the level. */
struct visit {
    size_t level, node;
};

/* Appends the leaves under the nodes that meet the box q (a bounds record) to *hits. */
static int search(const struct boxindex *ix, const int64_t *q, struct hits *hits)
{
    const size_t ndim = ix->ndim, record = 2 * ndim;
    /* Depth first, so at most FANOUT nodes of each level wait at any time. */
    struct visit stack[MAX_LEVELS * FANOUT];
    size_t depth = 0;
    const size_t root = ix->nlevels - 1;
    if (meets(ndim, ix->node + ix->level_start[root] * record, q))
        stack[depth++] = (struct visit){root, 0};
    while (depth) {
        const struct visit v = stack[--depth];
        const size_t first = v.node * FANOUT;
        if (v.level == 0) {
            const size_t last = min_size(first + FANOUT, ix->live);
            for (size_t t = first; t < last; t++) {
                if (!meets(ndim, ix->box + t * record, q))
                    continue;
                int status = hits_push(hits, ix->id[t]);
                if (status != ESDM_OK)
                    return status;
            }
            continue;
        }
        const size_t below = v.level - 1;
        const size_t start = ix->level_start[below];
        const size_t last = min_size(first + FANOUT, ix->level_start[below + 1] - start);
        for (size_t c = first; c < last; c++)
            if (meets(ndim, ix->node + (start + c) * record, q))
                stack[depth++] = (struct visit){below, c};
    }
    return ESDM_OK;
}

int boxindex_query(const struct boxindex *index, const int64_t *offset, const int64_t *count,
                   size_t *nhits, int64_t **hits)
{
    *nhits = 0;
    *hits = NULL;
    const size_t ndim = index->ndim;
    int64_t q[2 * BOX_MAX_NDIM];
    bounds_record(ndim, offset, count, q);
    for (size_t d = 0; d < ndim; d++)
        if (count[d] == 0)
            return ESDM_OK; /* an empty box meets nothing */
    if (!index->nlevels)
        return ESDM_OK;

    struct hits found = {0};
    int status = search(index, q, &found);
    if (status == ESDM_OK) /* box numbers are >= 0, so they sort as unsigned keys */
        status = box_radix_sort((uint64_t *)found.id, NULL, found.len);
    if (status != ESDM_OK) {
        free(found.id);
        return status;
    }
    *nhits = found.len;
    *hits = found.id;
    return ESDM_OK;
}

/* ---- Read plans -------------------------------------------------------------- */

/*
 * A plan is made by walking the fragments in priority order, each cutting its
 * part out of the still uncovered pieces of the region (walk()).  The walk
 * compares every fragment with every uncovered piece, and when fragments come
 * in an order that punches holes into the uncovered part of a large region,
 * that part breaks up into about as many pieces as there are fragments: 27000
 * blocks of a cube in random order take seconds.  So cover() first cuts the
 * region in two, kd-tree fashion, until each part meets few fragments, and
 * walks the parts.  Cuts run along fragment boundaries, so that a grid of
 * fragments still yields one piece per fragment.
 */

#define WALK_MAX 32  /* fragments that a part may meet to be walked as it is */
#define MAX_DEPTH 64 /* of cuts: bounds the recursion whatever the fragments */

/* The pieces of a plan, each with the rank (position in order[]) of its source, kept in step. */
struct plan {
    struct box_list pieces;
    size_t rank_cap;
    size_t *rank;
};

static int plan_add(struct plan *plan, const int64_t *lo, const int64_t *hi, size_t rank)
{
    int status = box_list_push(&plan->pieces, lo, hi);
    if (status != ESDM_OK)
        return status;
    if (plan->rank_cap < plan->pieces.cap) {
        size_t *grown = realloc(plan->rank, plan->pieces.cap * sizeof *grown);
        if (!grown)
            return ESDM_ENOMEM;
        plan->rank = grown;
        plan->rank_cap = plan->pieces.cap;
    }
    plan->rank[plan->pieces.len - 1] = rank;
    return ESDM_OK;
}

struct cover {
    size_t ndim;
    size_t nranks; /* the rank of "no fragment": after all of order[] */
    size_t m;      /* fragments listed in order[] that meet the region */
    int64_t *clip; /* (m, 2, ndim): their parts inside the region, by priority */
    size_t *rank;  /* (m,): their ranks */
    int64_t *cuts; /* (2 * m,): scratch of choose_cut() */
    struct box_list uncovered, rest; /* scratch of walk() */
    struct plan plan;
};

static void cover_free(struct cover *c)
{
    free(c->clip);
    free(c->rank);
    free(c->cuts);
    box_list_free(&c->uncovered);
    box_list_free(&c->rest);
    box_list_free(&c->plan.pieces);
    free(c->plan.rank);
}

/* Keeps the parts inside the region (a bounds record) of the fragments listed in order[]. */
static int clip_fragments(struct cover *c, const int64_t *offset, const int64_t *count,
                          const int64_t *offsets, const int64_t *counts, const int64_t *order)
{
    const size_t ndim = c->ndim, record = 2 * ndim;
    c->clip = malloc(c->nranks * record * sizeof *c->clip);
    c->rank = malloc(c->nranks * sizeof *c->rank);
    c->cuts = malloc(2 * c->nranks * sizeof *c->cuts);
    if (c->nranks && (!c->clip || !c->rank || !c->cuts))
        return ESDM_ENOMEM;
    for (size_t k = 0; k < c->nranks; k++) {
        const size_t f = (size_t)order[k];
        int64_t *clip = c->clip + c->m * record;
        if (box_intersection(ndim, offset, count, offsets + f * ndim, counts + f * ndim, clip,
                             clip + ndim))
            c->rank[c->m++] = k;
    }
    return ESDM_OK;
}

/*
 * Splits the uncovered piece (lo, hi) by the part `clip` (a bounds record) of
 * a fragment inside the region: what the fragment covers becomes a piece of
 * the plan that it provides, the rest stays uncovered in `rest`.
 */
static int take(size_t ndim, const int64_t *lo, const int64_t *hi, const int64_t *clip,
                size_t rank, struct plan *plan, struct box_list *rest)
{
    const int64_t *clip_lo = clip, *clip_hi = clip + ndim;
    if (!box_overlap(ndim, lo, hi, clip_lo, clip_hi))
        return box_list_push(rest, lo, hi);
    int64_t part_lo[BOX_MAX_NDIM], part_hi[BOX_MAX_NDIM];
    for (size_t d = 0; d < ndim; d++) {
        part_lo[d] = box_max_i64(lo[d], clip_lo[d]);
        part_hi[d] = box_min_i64(hi[d], clip_hi[d]);
    }
    int status = plan_add(plan, part_lo, part_hi, rank);
    if (status == ESDM_OK)
        status = box_carve(ndim, lo, hi, clip_lo, clip_hi, rest);
    return status;
}

/* Plans the part `region` (a bounds record) from the n fragments frags[], in priority order. */
static int walk(struct cover *c, const int64_t *region, const size_t *frags, size_t n)
{
    const size_t ndim = c->ndim, record = 2 * ndim;
    c->uncovered.len = 0;
    int status = box_list_push(&c->uncovered, region, region + ndim);
    for (size_t k = 0; status == ESDM_OK && c->uncovered.len && k < n; k++) {
        const int64_t *clip = c->clip + frags[k] * record;
        const size_t rank = c->rank[frags[k]];
        c->rest.len = 0;
        for (size_t u = 0; status == ESDM_OK && u < c->uncovered.len; u++)
            status = take(ndim, c->uncovered.lo + u * ndim, c->uncovered.hi + u * ndim, clip, rank,
                          &c->plan, &c->rest);
        struct box_list left = c->rest;
        c->rest = c->uncovered;
        c->uncovered = left;
    }
    for (size_t u = 0; status == ESDM_OK && u < c->uncovered.len; u++)
        status = plan_add(&c->plan, c->uncovered.lo + u * ndim, c->uncovered.hi + u * ndim,
                          c->nranks);
    return status;
}

/* The k-th smallest of v[0..n), k < n, moving values around (Wirth's selection, O(n) expected). */
static int64_t select_kth(int64_t *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1;
    const ptrdiff_t kth = (ptrdiff_t)k;
    while (lo < hi) {
        const int64_t pivot = v[kth];
        ptrdiff_t i = lo, j = hi;
        do {
            while (v[i] < pivot)
                i++;
            while (pivot < v[j])
                j--;
            if (i <= j) {
                const int64_t t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        } while (i <= j);
        if (j < kth)
            lo = i;
        if (kth < i)
            hi = j;
    }
    return v[kth];
}

/*
 * Where to cut `region` in two for cover(): at the median of the fragment
 * bounds strictly inside it, which balances the halves, along the axis where
 * the fewest fragments straddle the cut.  False when every cut leaves all
 * fragments on one side or a quarter of them on both: the fragments are then
 * large for the region and the walk is quick.
 */
static bool choose_cut(struct cover *c, const int64_t *region, const size_t *frags, size_t n,
                       size_t *axis, int64_t *at)
{
    const size_t ndim = c->ndim, record = 2 * ndim;
    size_t fewest = n / 4 + 1; /* straddling fragments, to beat */
    for (size_t d = 0; d < ndim; d++) {
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
            const int64_t *clip = c->clip + frags[k] * record;
            if (clip[d] > region[d])
                c->cuts[m++] = clip[d];
            if (clip[ndim + d] < region[ndim + d])
                c->cuts[m++] = clip[ndim + d];
        }
        if (!m)
            continue;
        const int64_t median = select_kth(c->cuts, m, m / 2);
        size_t left = 0, right = 0; /* every fragment meets the region, so one side at least */
        for (size_t k = 0; k < n; k++) {
            const int64_t *clip = c->clip + frags[k] * record;
            left += clip[d] < median;
            right += clip[ndim + d] > median;
        }
        if (left < n && right < n && left + right - n < fewest) {
            fewest = left + right - n;
            *axis = d;
            *at = median;
        }
    }
    return fewest <= n / 4;
}

/* Plans the part `region` (a bounds record) from the n fragments frags[] that meet it. */
static int cover(struct cover *c, const int64_t *region, const size_t *frags, size_t n,
                 unsigned depth)
{
    size_t axis = 0;
    int64_t at = 0;
    if (n <= WALK_MAX || depth == MAX_DEPTH || !choose_cut(c, region, frags, n, &axis, &at))
        return walk(c, region, frags, n);

    const size_t ndim = c->ndim, record = 2 * ndim;
    size_t *below = malloc(2 * n * sizeof *below), *above = below + n, nbelow = 0, nabove = 0;
    if (!below)
        return ESDM_ENOMEM;
    for (size_t k = 0; k < n; k++) { /* in the order of frags[]: by priority */
        const int64_t *clip = c->clip + frags[k] * record;
        if (clip[axis] < at)
            below[nbelow++] = frags[k];
        if (clip[ndim + axis] > at)
            above[nabove++] = frags[k];
    }
    int64_t half[2 * BOX_MAX_NDIM];
    memcpy(half, region, record * sizeof *half);
    half[ndim + axis] = at;
    int status = cover(c, half, below, nbelow, depth + 1);
    if (status == ESDM_OK) {
        half[axis] = at;
        half[ndim + axis] = region[ndim + axis];
        status = cover(c, half, above, nabove, depth + 1);
    }
    free(below);
    return status;
}

/* Hands out the pieces grouped by rank (a stable counting sort), with counts and sources. */
static int hand_out(struct cover *c, const int64_t *order, size_t *npieces, int64_t **offsets,
                    int64_t **counts, int64_t **source)
{
    const size_t ndim = c->ndim, n = c->plan.pieces.len;
    const int64_t *lo = c->plan.pieces.lo, *hi = c->plan.pieces.hi;
    const size_t *rank = c->plan.rank;
    size_t *next = calloc(c->nranks + 2, sizeof *next);
    int64_t *out_offsets = malloc(n * ndim * sizeof *out_offsets);
    int64_t *out_counts = malloc(n * ndim * sizeof *out_counts);
    int64_t *out_source = malloc(n * sizeof *out_source);
    if (!next || (n && (!out_offsets || !out_counts || !out_source))) {
        free(next);
        free(out_offsets);
        free(out_counts);
        free(out_source);
        return ESDM_ENOMEM;
    }
    for (size_t p = 0; p < n; p++)
        next[rank[p] + 1]++;
    for (size_t r = 1; r <= c->nranks; r++)
        next[r] += next[r - 1]; /* next[r]: the first slot of rank r */
    for (size_t p = 0; p < n; p++) {
        const size_t slot = next[rank[p]]++;
        for (size_t d = 0; d < ndim; d++) {
            out_offsets[slot * ndim + d] = lo[p * ndim + d];
            out_counts[slot * ndim + d] = hi[p * ndim + d] - lo[p * ndim + d];
        }
        out_source[slot] = rank[p] < c->nranks ? order[rank[p]] : -1;
    }
    free(next);
    *npieces = n;
    *offsets = out_offsets;
    *counts = out_counts;
    *source = out_source;
    return ESDM_OK;
}

int boxindex_plan_cover(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                        const int64_t *offsets, const int64_t *counts, size_t norder,
                        const int64_t *order, size_t *npieces, int64_t **piece_offsets,
                        int64_t **piece_counts, int64_t **source)
{
    *npieces = 0;
    *piece_offsets = *piece_counts = *source = NULL;
    if (!valid_ndim(ndim))
        return ESDM_EINVAL;
    for (size_t k = 0; k < norder; k++)
        if (order[k] < 0 || (uint64_t)order[k] >= n)
            return ESDM_EINVAL;
    int64_t region[2 * BOX_MAX_NDIM];
    bounds_record(ndim, offset, count, region);
    for (size_t d = 0; d < ndim; d++)
        if (count[d] == 0)
            return ESDM_OK; /* an empty region has no pieces */

    struct cover c = {.ndim = ndim,
                      .nranks = norder,
                      .uncovered = {.ndim = ndim},
                      .rest = {.ndim = ndim},
                      .plan = {.pieces = {.ndim = ndim}}};
    size_t *all = NULL;
    int status = clip_fragments(&c, offset, count, offsets, counts, order);
    if (status == ESDM_OK) {
        all = malloc(c.m * sizeof *all);
        status = c.m && !all ? ESDM_ENOMEM : ESDM_OK;
    }
    if (status == ESDM_OK) {
        for (size_t k = 0; k < c.m; k++)
            all[k] = k;
        status = cover(&c, region, all, c.m, 0);
    }
    if (status == ESDM_OK)
        status = hand_out(&c, order, npieces, piece_offsets, piece_counts, source);
    free(all);
    cover_free(&c);
    return status;
}
