"""Binding of csrc/region.c.  Arguments are checked by esdm_hpc.kernels.region; here
boxes arrive as C-contiguous int64 arrays: one box as two (ndim,) arrays, a set of
boxes as two (n, ndim) arrays."""

from libc.stdint cimport int64_t
from libc.stdlib cimport free

from esdm_hpc.kernels._status cimport ESDM_OK, check, copied

import numpy as np


cdef extern from "region.h" nogil:
    enum:
        REGION_MAX_NDIM
    int region_intersect(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                         const int64_t *offsets, const int64_t *counts, size_t *nhits,
                         int64_t *index, int64_t *hit_offsets, int64_t *hit_counts)
    int region_subtract(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                        const int64_t *offsets, const int64_t *counts, size_t *npieces,
                        int64_t **piece_offsets, int64_t **piece_counts)
    int region_find_overlaps(size_t ndim, size_t n, const int64_t *offsets,
                             const int64_t *counts, size_t max_pairs, size_t *npairs,
                             int64_t **pairs)


MAX_NDIM = REGION_MAX_NDIM


def intersect(const int64_t[::1] offset, const int64_t[::1] count,
              const int64_t[:, ::1] offsets, const int64_t[:, ::1] counts):
    """(index, offsets, counts) of the non-empty intersections of one box with many."""
    cdef size_t n = offsets.shape[0], ndim = offsets.shape[1], nhits = 0
    index = np.empty(n, dtype=np.int64)
    hit_offsets = np.empty((n, ndim), dtype=np.int64)
    hit_counts = np.empty((n, ndim), dtype=np.int64)
    cdef int64_t[::1] index_view = index
    cdef int64_t[:, ::1] offsets_view = hit_offsets, counts_view = hit_counts
    cdef int status = ESDM_OK
    if n:
        with nogil:
            status = region_intersect(ndim, &offset[0], &count[0], n, &offsets[0, 0],
                                      &counts[0, 0], &nhits, &index_view[0],
                                      &offsets_view[0, 0], &counts_view[0, 0])
    check(status, "region")
    # Copies, so that a few hits among many boxes do not pin n-sized buffers.
    return index[:nhits].copy(), hit_offsets[:nhits].copy(), hit_counts[:nhits].copy()


def subtract(const int64_t[::1] offset, const int64_t[::1] count,
             const int64_t[:, ::1] offsets, const int64_t[:, ::1] counts):
    """(offsets, counts) of disjoint boxes covering the part of one box outside many."""
    cdef size_t n = offsets.shape[0], ndim = offset.shape[0], npieces = 0
    cdef int64_t *piece_offsets = NULL
    cdef int64_t *piece_counts = NULL
    cdef int status
    with nogil:
        status = region_subtract(ndim, &offset[0], &count[0], n,
                                 &offsets[0, 0] if n else NULL, &counts[0, 0] if n else NULL,
                                 &npieces, &piece_offsets, &piece_counts)
    try:
        check(status, "region")
        return copied(piece_offsets, npieces, ndim), copied(piece_counts, npieces, ndim)
    finally:
        free(piece_offsets)
        free(piece_counts)


def find_overlaps(const int64_t[:, ::1] offsets, const int64_t[:, ::1] counts,
                  size_t max_pairs):
    """(k, 2) sorted index pairs i < j of overlapping boxes, at most max_pairs of them."""
    cdef size_t n = offsets.shape[0], ndim = offsets.shape[1], npairs = 0
    cdef int64_t *pairs = NULL
    cdef int status
    with nogil:
        status = region_find_overlaps(ndim, n, &offsets[0, 0] if n else NULL,
                                      &counts[0, 0] if n else NULL, max_pairs, &npairs,
                                      &pairs)
    try:
        check(status, "region")
        return copied(pairs, npairs, 2)
    finally:
        free(pairs)
