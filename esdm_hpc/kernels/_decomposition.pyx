"""Binding of csrc/decomposition.c.  Arguments are checked by
esdm_hpc.kernels.decomposition; here shapes and grids arrive as C-contiguous int64
arrays of the same length."""

from libc.stdint cimport int64_t

from esdm_hpc.kernels._status cimport check

import numpy as np


cdef extern from "decomposition.h" nogil:
    enum:
        DECOMP_MAX_NPROCS
    int decomp_process_grid(size_t ndim, const int64_t *shape, int64_t nprocs, int64_t *grid)
    int decomp_block(size_t ndim, const int64_t *shape, const int64_t *grid, int64_t rank,
                     int64_t *offset, int64_t *count)
    int decomp_blocks(size_t ndim, const int64_t *shape, const int64_t *grid, int64_t nranks,
                      int64_t *offsets, int64_t *counts)


MAX_NPROCS = DECOMP_MAX_NPROCS


def process_grid(const int64_t[::1] shape, int64_t nprocs):
    """The process grid for `nprocs` ranks over `shape`, as a tuple."""
    grid = np.empty(shape.shape[0], dtype=np.int64)
    cdef int64_t[::1] grid_view = grid
    cdef int status
    with nogil:
        status = decomp_process_grid(shape.shape[0], &shape[0], nprocs, &grid_view[0])
    check(status, "decomposition")
    return tuple(grid.tolist())


def block(const int64_t[::1] shape, const int64_t[::1] grid, int64_t rank):
    """(offset, count) of the block of `rank`."""
    offset = np.empty(shape.shape[0], dtype=np.int64)
    count = np.empty(shape.shape[0], dtype=np.int64)
    cdef int64_t[::1] offset_view = offset, count_view = count
    cdef int status
    with nogil:
        status = decomp_block(shape.shape[0], &shape[0], &grid[0], rank, &offset_view[0],
                              &count_view[0])
    check(status, "decomposition")
    return offset, count


def blocks(const int64_t[::1] shape, const int64_t[::1] grid, int64_t nranks):
    """(offsets, counts), shape (nranks, ndim), of the blocks of all ranks."""
    offsets = np.empty((nranks, shape.shape[0]), dtype=np.int64)
    counts = np.empty((nranks, shape.shape[0]), dtype=np.int64)
    cdef int64_t[:, ::1] offsets_view = offsets, counts_view = counts
    cdef int status
    with nogil:
        status = decomp_blocks(shape.shape[0], &shape[0], &grid[0], nranks,
                               &offsets_view[0, 0], &counts_view[0, 0])
    check(status, "decomposition")
    return offsets, counts
