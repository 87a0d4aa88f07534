"""Binding of csrc/boxindex.c.  Arguments are checked by esdm_hpc.kernels.boxindex; here
boxes arrive as C-contiguous int64 arrays: one box as two (ndim,) arrays, a set of
boxes as two (n, ndim) arrays, and the index as a handle to the C index."""

from libc.stdint cimport int64_t, uint32_t
from libc.stdlib cimport free

from esdm_hpc.kernels._status cimport check, copied

import numpy as np


cdef extern from "boxindex.h" nogil:
    enum:
        BOXINDEX_MAX_NDIM
    uint32_t BOXINDEX_MAX_BOXES
    struct boxindex:
        pass
    int boxindex_build(size_t ndim, size_t n, const int64_t *offsets, const int64_t *counts,
                       boxindex **index)
    void boxindex_free(boxindex *index)
    size_t boxindex_ndim(const boxindex *index)
    size_t boxindex_size(const boxindex *index)
    size_t boxindex_nbytes(const boxindex *index)
    void boxindex_boxes(const boxindex *index, int64_t *offsets, int64_t *counts)
    int boxindex_query(const boxindex *index, const int64_t *offset, const int64_t *count,
                       size_t *nhits, int64_t **hits)
    int boxindex_plan_cover(size_t ndim, const int64_t *offset, const int64_t *count, size_t n,
                            const int64_t *offsets, const int64_t *counts, size_t norder,
                            const int64_t *order, size_t *npieces, int64_t **piece_offsets,
                            int64_t **piece_counts, int64_t **source)


MAX_NDIM = BOXINDEX_MAX_NDIM
MAX_BOXES = BOXINDEX_MAX_BOXES


cdef class Index:
    """The C index of a set of boxes; immutable, so queries release the GIL."""

    cdef boxindex *index

    def __cinit__(self, const int64_t[:, ::1] offsets, const int64_t[:, ::1] counts):
        cdef size_t n = offsets.shape[0], ndim = offsets.shape[1]
        cdef int status
        with nogil:
            status = boxindex_build(ndim, n, &offsets[0, 0] if n else NULL,
                                    &counts[0, 0] if n else NULL, &self.index)
        check(status, "boxindex")

    def __dealloc__(self):
        boxindex_free(self.index)

    @property
    def ndim(self):
        return boxindex_ndim(self.index)

    @property
    def size(self):
        return boxindex_size(self.index)

    @property
    def nbytes(self):
        return boxindex_nbytes(self.index)

    def boxes(self):
        """(offsets, counts), shape (n, ndim), of the boxes in their input order."""
        cdef size_t n = boxindex_size(self.index), ndim = boxindex_ndim(self.index)
        offsets = np.empty((n, ndim), dtype=np.int64)
        counts = np.empty((n, ndim), dtype=np.int64)
        cdef int64_t[:, ::1] offsets_view = offsets, counts_view = counts
        if n:
            with nogil:
                boxindex_boxes(self.index, &offsets_view[0, 0], &counts_view[0, 0])
        return offsets, counts

    def query(self, const int64_t[::1] offset, const int64_t[::1] count):
        """The sorted numbers of the boxes that intersect one box, as an int64 array."""
        cdef size_t nhits = 0
        cdef int64_t *hits = NULL
        cdef int status
        with nogil:
            status = boxindex_query(self.index, &offset[0], &count[0], &nhits, &hits)
        try:
            check(status, "boxindex")
            return copied(hits, nhits, 1).reshape(nhits)
        finally:
            free(hits)


def plan_cover(const int64_t[::1] offset, const int64_t[::1] count,
               const int64_t[:, ::1] offsets, const int64_t[:, ::1] counts,
               const int64_t[::1] order):
    """(offsets, counts, source) of the pieces of the read plan of a region."""
    cdef size_t n = offsets.shape[0], ndim = offset.shape[0], norder = order.shape[0]
    cdef size_t npieces = 0
    cdef int64_t *piece_offsets = NULL
    cdef int64_t *piece_counts = NULL
    cdef int64_t *source = NULL
    cdef int status
    with nogil:
        status = boxindex_plan_cover(ndim, &offset[0], &count[0], n,
                                     &offsets[0, 0] if n else NULL,
                                     &counts[0, 0] if n else NULL, norder,
                                     &order[0] if norder else NULL, &npieces, &piece_offsets,
                                     &piece_counts, &source)
    try:
        check(status, "boxindex")
        return (copied(piece_offsets, npieces, ndim), copied(piece_counts, npieces, ndim),
                copied(source, npieces, 1).reshape(npieces))
    finally:
        free(piece_offsets)
        free(piece_counts)
        free(source)
