"""Block decomposition of a global N-D array over MPI ranks.

A process grid splits every dimension of the array into parts, and each rank
gets the block at its coordinates in the grid.  Ranks are numbered row-major
over the grid, as by ``MPI_Cart_create`` without reordering.  The parts of a
dimension differ in size by at most one element: the first ``extent % parts``
parts hold one more.  Blocks are ``(offset, count)`` pairs of int64 arrays, the
boxes of :mod:`esdm_hpc.kernels.region`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

from esdm_hpc.kernels import _decomposition

MAX_NPROCS: int = _decomposition.MAX_NPROCS
_INT64_MAX = np.iinfo(np.int64).max


def process_grid(shape: Sequence[int], nprocs: int) -> tuple[int, ...]:
    """A balanced process grid for ``nprocs`` ranks over an array of ``shape``.

    The parts per dimension multiply to ``nprocs``.  Like ``MPI_Dims_create``
    the grid is as even as possible, but it also follows the shape.  Of all
    grids it takes, in order of priority, the one

    1. with the most ranks holding a non-empty block, so that no extent is
       split into more parts than it has elements while another dimension can
       take the factor: ``(3, 1000)`` over 4 ranks gives ``(1, 4)``;
    2. with the least total area of the cuts between blocks (the halo volume),
       so that blocks are as cubic as the shape allows and larger extents get
       more parts: ``(1000, 1000)`` over 4 gives ``(2, 2)``, ``(5, 7, 1)``
       over 6 gives ``(2, 3, 1)``;
    3. with larger factors first: a cube over 12 ranks gives ``(3, 2, 2)``.

    Zero extents count as one (every block is empty anyway).
    """
    extents = _shape(shape)
    return _decomposition.process_grid(_int64(extents), _nprocs(nprocs))


def block(
    shape: Sequence[int], grid: Sequence[int], coords_or_rank: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, count)`` of the block of one rank, given by rank or by grid coordinates."""
    extents = _shape(shape)
    parts = _grid(grid, len(extents))
    rank = _rank(coords_or_rank, parts)
    return _decomposition.block(_int64(extents), _int64(parts), rank)


def decompose(shape: Sequence[int], nprocs: int) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, counts)``, each ``(nprocs, ndim)`` int64, of the blocks of all ranks.

    The grid is :func:`process_grid`'s; row ``r`` is the block of rank ``r``.
    """
    extents = _shape(shape)
    nprocs = _nprocs(nprocs)
    grid = _decomposition.process_grid(_int64(extents), nprocs)
    return _decomposition.blocks(_int64(extents), _int64(grid), nprocs)


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer, not {type(value).__name__}") from None


def _is_sequence(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _integers(values: object, name: str) -> tuple[int, ...]:
    if not _is_sequence(values):
        raise ValueError(f"{name} must be a sequence of integers, not {type(values).__name__}")
    return tuple(_integer(v, f"{name}[{d}]") for d, v in enumerate(values))  # type: ignore[arg-type]


def _shape(shape: object) -> tuple[int, ...]:
    extents = _integers(shape, "shape")
    if not extents:
        raise ValueError("shape must have at least one dimension")
    if any(e < 0 for e in extents):
        raise ValueError(f"shape must not have negative extents, got {extents}")
    # The grid search weighs cut areas in int64.
    if math.prod(max(e, 1) for e in extents) > _INT64_MAX:
        raise ValueError(f"shape {extents} has more than 2**63 - 1 elements")
    return extents


def _nprocs(nprocs: object) -> int:
    count = _integer(nprocs, "nprocs")
    if not 1 <= count <= MAX_NPROCS:
        raise ValueError(f"nprocs must be in 1..{MAX_NPROCS}, got {count}")
    return count


def _grid(grid: object, ndim: int) -> tuple[int, ...]:
    parts = _integers(grid, "grid")
    if len(parts) != ndim:
        raise ValueError(f"grid must have one entry per dimension of shape ({ndim}), got {parts}")
    if any(p < 1 for p in parts):
        raise ValueError(f"grid entries must be positive, got {parts}")
    if math.prod(parts) > MAX_NPROCS:
        raise ValueError(f"grid {parts} has more than {MAX_NPROCS} ranks")
    return parts


def _rank(coords_or_rank: object, grid: tuple[int, ...]) -> int:
    """The rank of a rank or of grid coordinates (row-major), checked against the grid."""
    nranks = math.prod(grid)
    if not _is_sequence(coords_or_rank):
        rank = _integer(coords_or_rank, "rank")
        if not 0 <= rank < nranks:
            raise ValueError(f"rank must be in 0..{nranks - 1}, got {rank}")
        return rank
    coords = _integers(coords_or_rank, "coords")
    if len(coords) != len(grid) or not all(0 <= c < p for c, p in zip(coords, grid, strict=False)):
        raise ValueError(f"coords {coords} are not in the grid {grid}")
    rank = 0
    for c, p in zip(coords, grid, strict=True):
        rank = rank * p + c
    return rank


def _int64(values: tuple[int, ...]) -> np.ndarray:
    return np.array(values, dtype=np.int64)
