/*
 * Helpers on N-D boxes shared by the kernels (region.c, boxindex.c).
 *
 * setup.py compiles one C file per kernel, so what several kernels need lives
 * here as static functions that each kernel compiles in.
 *
 * A box covers the half-open interval [offset, offset + count) on each axis.
 * The helpers work on bounds lo/hi per axis (hi = offset + count), which keeps
 * an overlap test to two comparisons per axis.  Callers guarantee
 * 1 <= ndim <= BOX_MAX_NDIM and offset + count <= INT64_MAX.
 */
#ifndef ESDM_BOX_H
#define ESDM_BOX_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BOX_MAX_NDIM 8

/* The kernels' own status enums give these the same values, so statuses pass through. */
static inline int64_t box_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

static inline int64_t box_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Bounds of the intersection of two boxes given as offset/count; false if it is empty. */
static inline bool box_intersection(size_t ndim, const int64_t *a_offset, const int64_t *a_count,
                                    const int64_t *b_offset, const int64_t *b_count, int64_t *lo,
                                    int64_t *hi)
{
    for (size_t d = 0; d < ndim; d++) {
        lo[d] = box_max_i64(a_offset[d], b_offset[d]);
        hi[d] = box_min_i64(a_offset[d] + a_count[d], b_offset[d] + b_count[d]);
        if (lo[d] >= hi[d])
            return false;
    }
    return true;
}

/* Whether two non-empty boxes given as bounds overlap. */
static inline bool box_overlap(size_t ndim, const int64_t *a_lo, const int64_t *a_hi,
                               const int64_t *b_lo, const int64_t *b_hi)
{
    for (size_t d = 0; d < ndim; d++)
        if (a_lo[d] >= b_hi[d] || b_lo[d] >= a_hi[d])
            return false;
    return true;
}

/* ---- Lists of boxes -------------------------------------------------------- */

/* A growable list of boxes as two (len, ndim) arrays of bounds. */
struct box_list {
    size_t ndim, len, cap;
    int64_t *lo, *hi;
};

static inline void box_list_free(struct box_list *list)
{
    free(list->lo);
    free(list->hi);
    list->lo = list->hi = NULL;
    list->len = list->cap = 0;
}

static inline int box_list_push(struct box_list *list, const int64_t *lo, const int64_t *hi)
{
    const size_t ndim = list->ndim;
    if (list->len == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 16;
        int64_t *grown = realloc(list->lo, cap * ndim * sizeof *grown);
        if (!grown)
            return ESDM_ENOMEM;
        list->lo = grown;
        grown = realloc(list->hi, cap * ndim * sizeof *grown);
        if (!grown)
            return ESDM_ENOMEM;
        list->hi = grown;
        list->cap = cap;
    }
    memcpy(list->lo + list->len * ndim, lo, ndim * sizeof *lo);
    memcpy(list->hi + list->len * ndim, hi, ndim * sizeof *hi);
    list->len++;
    return ESDM_OK;
}

/* Pushes the slab [from, to) along axis d of the box (lo, hi). */
static inline int box_push_slab(struct box_list *out, int64_t *lo, int64_t *hi, size_t d,
                                int64_t from, int64_t to)
{
    const int64_t saved_lo = lo[d], saved_hi = hi[d];
    lo[d] = from;
    hi[d] = to;
    int status = box_list_push(out, lo, hi);
    lo[d] = saved_lo;
    hi[d] = saved_hi;
    return status;
}

/*
 * Pushes the part of a non-empty box outside a hole onto `out`: the slabs
 * below and above the hole along axis 0, then, within the remaining core,
 * along axis 1, and so on; the final core lies inside the hole and is dropped.
 * The pieces are disjoint and non-empty because each one is cut off a
 * non-empty core.
 */
static inline int box_carve(size_t ndim, const int64_t *box_lo, const int64_t *box_hi,
                            const int64_t *hole_lo, const int64_t *hole_hi, struct box_list *out)
{
    if (!box_overlap(ndim, box_lo, box_hi, hole_lo, hole_hi))
        return box_list_push(out, box_lo, box_hi);
    int64_t lo[BOX_MAX_NDIM], hi[BOX_MAX_NDIM];
    memcpy(lo, box_lo, ndim * sizeof *lo);
    memcpy(hi, box_hi, ndim * sizeof *hi);
    for (size_t d = 0; d < ndim; d++) {
        int status = ESDM_OK;
        if (lo[d] < hole_lo[d]) {
            status = box_push_slab(out, lo, hi, d, lo[d], hole_lo[d]);
            lo[d] = hole_lo[d];
        }
        if (status == ESDM_OK && hi[d] > hole_hi[d]) {
            status = box_push_slab(out, lo, hi, d, hole_hi[d], hi[d]);
            hi[d] = hole_hi[d];
        }
        if (status != ESDM_OK)
            return status;
    }
    return ESDM_OK;
}

/* ---- Sorting --------------------------------------------------------------- */

/* Maps int64 onto uint64 preserving order, so that coordinates sort as unsigned keys. */
static inline uint64_t box_order_key(int64_t v)
{
    return (uint64_t)v ^ UINT64_C(0x8000000000000000);
}

/*
 * Stable LSD radix sort of keys[0..n), byte by byte, moving vals[] (unless
 * NULL) along.  A byte that is the same in all keys needs no pass, so keys of
 * small coordinates or box indices take only a few.
 */
static inline int box_radix_sort(uint64_t *keys, uint32_t *vals, size_t n)
{
    if (n < 2)
        return ESDM_OK;
    size_t histogram[8][256] = {{0}};
    for (size_t i = 0; i < n; i++)
        for (unsigned b = 0; b < 8; b++)
            histogram[b][keys[i] >> 8 * b & 0xff]++;

    uint64_t *key_buffer = malloc(n * sizeof *key_buffer);
    uint32_t *val_buffer = vals ? malloc(n * sizeof *val_buffer) : NULL;
    if (!key_buffer || (vals && !val_buffer)) {
        free(key_buffer);
        free(val_buffer);
        return ESDM_ENOMEM;
    }
    uint64_t *src_keys = keys, *dst_keys = key_buffer;
    uint32_t *src_vals = vals, *dst_vals = val_buffer;
    for (unsigned b = 0; b < 8; b++) {
        size_t *next = histogram[b]; /* becomes the next output slot per digit */
        if (next[src_keys[0] >> 8 * b & 0xff] == n)
            continue; /* all keys share this byte */
        for (size_t digit = 0, total = 0; digit < 256; digit++) {
            size_t count = next[digit];
            next[digit] = total;
            total += count;
        }
        for (size_t i = 0; i < n; i++) {
            size_t slot = next[src_keys[i] >> 8 * b & 0xff]++;
            dst_keys[slot] = src_keys[i];
            if (vals)
                dst_vals[slot] = src_vals[i];
        }
        uint64_t *k = src_keys;
        src_keys = dst_keys;
        dst_keys = k;
        uint32_t *v = src_vals;
        src_vals = dst_vals;
        dst_vals = v;
    }
    if (src_keys != keys) {
        memcpy(keys, src_keys, n * sizeof *keys);
        if (vals)
            memcpy(vals, src_vals, n * sizeof *vals);
    }
    free(key_buffer);
    free(val_buffer);
    return ESDM_OK;
}

#endif
