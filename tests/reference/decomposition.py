"""Reference block decomposition: plain Python, straight from the definitions.

An oracle for ``esdm_hpc.kernels.decomposition`` and the baseline of its
benchmark; the functions take the same arguments.  ``process_grid`` tries every
grid (every ordered factorisation of ``nprocs``), which is fine for the few
thousand of small rank counts but no more.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np


def process_grid(shape: Sequence[int], nprocs: int) -> tuple[int, ...]:
    """The grid with the most non-empty blocks, the least cut area, larger factors first."""
    extents = [max(e, 1) for e in shape]  # zero extents count as one
    volume = math.prod(extents)

    def rank(grid: tuple[int, ...]) -> tuple[int, int, tuple[int, ...]]:
        used = [min(p, e) for p, e in zip(grid, extents, strict=True)]  # parts holding elements
        cut = sum((u - 1) * (volume // e) for u, e in zip(used, extents, strict=True))
        return -math.prod(used), cut, tuple(-p for p in grid)

    return min(_factorisations(nprocs, len(extents)), key=rank)


def _factorisations(n: int, ndim: int) -> Iterator[tuple[int, ...]]:
    """All tuples of ``ndim`` positive integers with product ``n``."""
    if ndim == 1:
        yield (n,)
        return
    for first in range(1, n + 1):
        if n % first == 0:
            for rest in _factorisations(n // first, ndim - 1):
                yield (first, *rest)


def block(
    shape: Sequence[int], grid: Sequence[int], coords_or_rank: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(coords_or_rank, Sequence):
        coords = tuple(coords_or_rank)
    else:
        coords = tuple(int(c) for c in np.unravel_index(coords_or_rank, tuple(grid)))
    offset, count = [], []
    for extent, parts, index in zip(shape, grid, coords, strict=True):
        base, extra = divmod(extent, parts)  # the first `extra` parts get one more
        count.append(base + (index < extra))
        offset.append(index * base + min(index, extra))
    return np.array(offset, np.int64), np.array(count, np.int64)


def decompose(shape: Sequence[int], nprocs: int) -> tuple[np.ndarray, np.ndarray]:
    grid = process_grid(shape, nprocs)
    blocks = [block(shape, grid, rank) for rank in range(nprocs)]
    return (
        np.array([offset for offset, _ in blocks], np.int64).reshape(nprocs, len(shape)),
        np.array([count for _, count in blocks], np.int64).reshape(nprocs, len(shape)),
    )
