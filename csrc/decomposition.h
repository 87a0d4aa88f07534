/*
 * Block decomposition of a global N-D array over a Cartesian grid of ranks.
 *
 * Ranks are numbered row-major over the grid (the last coordinate varies
 * fastest), as MPI_Cart_create does without reordering.  Along each dimension
 * an extent is split into parts whose sizes differ by at most one: of
 * `extent` elements in `parts` parts, the first extent % parts parts get one
 * more.  Blocks are (offset, count) per dimension.
 *
 * All functions are thread-safe.
 */
#ifndef ESDM_DECOMPOSITION_H
#define ESDM_DECOMPOSITION_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

/* Ranks are MPI ints. */
#define DECOMP_MAX_NPROCS INT32_MAX

/*
 * The process grid grid[0..ndim) with product nprocs for an array of extents
 * shape[0..ndim).  Of all such grids it takes, by order of priority, the one
 *   1. with the most ranks holding a non-empty block: no extent is split into
 *      more parts than it has elements while another dimension can take the
 *      factor;
 *   2. with the least area of the cuts between blocks,
 *      sum over d of (parts_d - 1) * (product of the other extents), that is
 *      the halo volume: blocks come out as cubic as the shape allows, and
 *      larger extents get more parts;
 *   3. with larger factors first, as MPI_Dims_create (12 ranks on a cube: 3x2x2).
 * Zero extents count as one here (all blocks are empty anyway).
 *
 * ESDM_EINVAL unless ndim >= 1, 1 <= nprocs <= DECOMP_MAX_NPROCS, extents
 * >= 0 and their product (zeros counted as one) <= INT64_MAX.
 */
int decomp_process_grid(size_t ndim, const int64_t *shape, int64_t nprocs, int64_t *grid);

/*
 * The block offset[0..ndim), count[0..ndim) of `rank`.  ESDM_EINVAL unless
 * extents >= 0, grid entries >= 1 and 0 <= rank < product of the grid.
 */
int decomp_block(size_t ndim, const int64_t *shape, const int64_t *grid, int64_t rank,
                 int64_t *offset, int64_t *count);

/*
 * The blocks of all nranks ranks of the grid (nranks is the product of the
 * grid) into row-major (nranks, ndim) arrays.  Errors as decomp_block.
 */
int decomp_blocks(size_t ndim, const int64_t *shape, const int64_t *grid, int64_t nranks,
                  int64_t *offsets, int64_t *counts);

#endif
