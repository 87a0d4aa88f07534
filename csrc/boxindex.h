/*
 * A static spatial index over N-D boxes, and the read plan of a region.
 *
 * Boxes follow region.h: an offset and a count per dimension covering the
 * half-open interval [offset, offset + count) on each axis, a zero count
 * making a box empty; n boxes are two row-major (n, ndim) arrays.  Callers
 * guarantee 1 <= ndim <= BOXINDEX_MAX_NDIM (else ESDM_EINVAL), counts >= 0
 * and offset + count <= INT64_MAX.  Results that the functions allocate with
 * malloc() belong to the caller, who releases them with free().
 *
 * An index is immutable once built, so any number of threads may query it.
 */
#ifndef ESDM_BOXINDEX_H
#define ESDM_BOXINDEX_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

#define BOXINDEX_MAX_NDIM 8
#define BOXINDEX_MAX_BOXES UINT32_MAX /* box numbers are stored in 32 bits */

struct boxindex;

/*
 * Builds the index of n <= BOXINDEX_MAX_BOXES boxes into *index, in
 * O(n log n) time: a packed R-tree whose leaves are the boxes in the order of
 * the Hilbert key of their centres.  The index copies the boxes.
 */
int boxindex_build(size_t ndim, size_t n, const int64_t *offsets, const int64_t *counts,
                   struct boxindex **index);

void boxindex_free(struct boxindex *index);

size_t boxindex_ndim(const struct boxindex *index);

/* The number of boxes, empty ones included. */
size_t boxindex_size(const struct boxindex *index);

/* The memory the index holds, in bytes. */
size_t boxindex_nbytes(const struct boxindex *index);

/* The boxes the index was built from, in their input order, into two (n, ndim) arrays. */
void boxindex_boxes(const struct boxindex *index, int64_t *offsets, int64_t *counts);

/*
 * The numbers of the boxes that intersect the box (offset, count), in
 * increasing order: *nhits of them in a malloc'ed array (NULL when there are
 * none).  Takes O(log n + hits) time for a box that meets few others.
 */
int boxindex_query(const struct boxindex *index, const int64_t *offset, const int64_t *count,
                   size_t *nhits, int64_t **hits);

/*
 * The read plan of the region (offset, count) from n fragments (offsets,
 * counts), of which the norder listed in order[] (each in [0, n), highest
 * priority first, no repeats) take part.  The region is cut into *npieces
 * disjoint, non-empty boxes that tile it exactly, in malloc'ed (npieces, ndim)
 * arrays, and source[p] is the fragment that provides piece p: the first one
 * in order[] that covers it, or -1 where none does.  Pieces come grouped by
 * source in the order of order[], the uncovered ones last.
 *
 * Each fragment cuts its part out of what is still uncovered (as
 * region_subtract does), stopping as soon as nothing is.  A region that meets
 * many fragments is first cut in parts along fragment boundaries, each part
 * meeting few of them, which keeps the cost near-linear in the number of
 * fragments.  ESDM_EINVAL for an order[] entry out of range.
 */
int boxindex_plan_cover(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                        const int64_t *offsets, const int64_t *counts, size_t norder,
                        const int64_t *order, size_t *npieces, int64_t **piece_offsets,
                        int64_t **piece_counts, int64_t **source);

#endif
