/*
 * Region algebra on N-D boxes (hyperslabs).
 *
 * A box is an offset and a count per dimension and covers the half-open
 * interval [offset, offset + count) on each axis; a box with any zero count is
 * empty and intersects nothing.  A set of n boxes is two row-major (n, ndim)
 * arrays, `offsets` and `counts`.
 *
 * Callers guarantee 1 <= ndim <= REGION_MAX_NDIM (else ESDM_EINVAL),
 * counts >= 0 and offset + count <= INT64_MAX.  Results that the functions
 * allocate with malloc() belong to the caller, who releases them with free().
 * All functions are thread-safe.
 */
#ifndef ESDM_REGION_H
#define ESDM_REGION_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

#define REGION_MAX_NDIM 8

/*
 * Intersections of one box with n boxes.  The k boxes with a non-empty
 * intersection (k returned in *nhits) are listed by index, in input order, with
 * their intersections; the outputs must have room for n entries.
 */
int region_intersect(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                     const int64_t *offsets, const int64_t *counts, size_t *nhits, int64_t *index,
                     int64_t *hit_offsets, int64_t *hit_counts);

/*
 * The part of one box that none of n boxes covers, as *npieces disjoint,
 * non-empty boxes in two malloc'ed (npieces, ndim) arrays (NULL when there are
 * no pieces).  The number of pieces can grow with the product of the number of
 * subtracted boxes per axis, so this is meant for the few fragments around a
 * request, not for large sets.
 */
int region_subtract(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                    const int64_t *offsets, const int64_t *counts, size_t *npieces,
                    int64_t **piece_offsets, int64_t **piece_counts);

/*
 * All index pairs (i, j), i < j, of overlapping boxes among n < 2**32, sorted,
 * as a malloc'ed (npairs, 2) array (NULL when there are none).  Stops after
 * max_pairs pairs (SIZE_MAX: no limit); which ones it then keeps is unspecified.
 *
 * Sort-and-sweep along the axis with the fewest overlapping projections, with
 * the active boxes indexed on the next best axis so that only boxes overlapping
 * on both axes are compared: O((n + c) log n) for c such candidate pairs.
 */
int region_find_overlaps(size_t ndim, size_t n, const int64_t *offsets, const int64_t *counts,
                         size_t max_pairs, size_t *npairs, int64_t **pairs);

#endif
