"""Reference box index and read plans: plain numpy, straight from the definitions.

An oracle for ``esdm_hpc.kernels.boxindex``.  A box is an offset and a count per
axis and covers ``[offset, offset + count)`` on each; boxes with a zero count are
empty.  ``query`` compares the region with every box (O(n) per query);
``source_map`` paints the fragments cell by cell, so it is for small regions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def query(
    offsets: npt.ArrayLike, counts: npt.ArrayLike, offset: npt.ArrayLike, count: npt.ArrayLike
) -> np.ndarray:
    """Indices, ascending, of the boxes whose intersection with the region is non-empty."""
    lo = np.asarray(offsets, np.int64).reshape(-1, len(offset))
    hi = lo + np.asarray(counts, np.int64).reshape(lo.shape)
    region_lo = np.asarray(offset, np.int64)
    region_hi = region_lo + np.asarray(count, np.int64)
    overlap = (np.maximum(lo, region_lo) < np.minimum(hi, region_hi)).all(axis=1)
    return np.flatnonzero(overlap).astype(np.int64)


def source_map(
    offset: npt.ArrayLike,
    count: npt.ArrayLike,
    offsets: npt.ArrayLike,
    counts: npt.ArrayLike,
    order: npt.ArrayLike,
) -> np.ndarray:
    """Per cell of the region (an array of shape ``count``), the fragment that provides it.

    That is the first fragment in ``order`` that covers the cell, or -1 where none
    does: the fragments are painted lowest priority first, so that higher ones
    paint over them.
    """
    offset = np.asarray(offset, np.int64)
    count = np.asarray(count, np.int64)
    offsets = np.asarray(offsets, np.int64).reshape(-1, len(offset))
    counts = np.asarray(counts, np.int64).reshape(offsets.shape)
    cells = np.full(tuple(count), -1, np.int64)
    for f in np.asarray(order, np.int64)[::-1]:
        paint(cells, offset, offsets[f], counts[f], f)
    return cells


def paint(
    cells: np.ndarray, origin: np.ndarray, offset: np.ndarray, count: np.ndarray, value: int
) -> None:
    """Sets the cells of the box (offset, count) in the raster `cells` at `origin` to `value`."""
    lo = np.clip(offset - origin, 0, cells.shape)
    hi = np.clip(offset + count - origin, 0, cells.shape)
    cells[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = value
