"""Reference region algebra on N-D boxes: plain numpy, straight from the definitions.

An oracle for ``esdm_hpc.kernels.region`` and the baseline of its benchmark; the
functions take the same arguments.  A box is an offset and a count per axis and
covers ``[offset, offset + count)`` on each; boxes with a zero count are empty.

``find_overlaps`` compares every pair (O(n^2)).  ``subtract`` cuts the pieces in
the same order as the C kernel, so the two agree piece for piece.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Bounds = tuple[tuple[int, ...], tuple[int, ...]]  # (lo, hi) per axis


def intersect(
    offset: npt.ArrayLike, count: npt.ArrayLike, offsets: npt.ArrayLike, counts: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    offset, count = np.asarray(offset, np.int64), np.asarray(count, np.int64)
    offsets = np.asarray(offsets, np.int64).reshape(-1, len(offset))
    counts = np.asarray(counts, np.int64).reshape(offsets.shape)
    lo = np.maximum(offsets, offset)
    hi = np.minimum(offsets + counts, offset + count)
    hit = np.all(hi > lo, axis=1)
    return np.flatnonzero(hit), lo[hit], (hi - lo)[hit]


def subtract(
    offset: npt.ArrayLike, count: npt.ArrayLike, offsets: npt.ArrayLike, counts: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    ndim = len(offset)
    # Only the parts of the boxes inside the box cut it; empty ones are dropped.
    _, hole_offsets, hole_counts = intersect(offset, count, offsets, counts)
    box_lo = tuple(int(o) for o in offset)
    box_hi = tuple(int(o + c) for o, c in zip(offset, count, strict=True))
    pieces = [(box_lo, box_hi)] if all(c > 0 for c in count) else []
    for hole_lo, hole_count in zip(hole_offsets.tolist(), hole_counts.tolist(), strict=True):
        hole = (tuple(hole_lo), tuple(lo + c for lo, c in zip(hole_lo, hole_count, strict=True)))
        pieces = [part for piece in pieces for part in _carve(piece, hole)]
    lo = np.array([p[0] for p in pieces], np.int64).reshape(-1, ndim)
    hi = np.array([p[1] for p in pieces], np.int64).reshape(-1, ndim)
    return lo, hi - lo


def _carve(piece: Bounds, hole: Bounds) -> list[Bounds]:
    """The part of `piece` outside `hole`: slabs below and above the hole, axis by axis."""
    lo, hi = list(piece[0]), list(piece[1])
    bounds = zip(lo, hi, *hole, strict=True)
    if not all(a < hole_hi and hole_lo < b for a, b, hole_lo, hole_hi in bounds):
        return [piece]
    parts = []
    for d, (hole_lo, hole_hi) in enumerate(zip(*hole, strict=True)):
        if lo[d] < hole_lo:
            parts.append(_slab(lo, hi, d, lo[d], hole_lo))
            lo[d] = hole_lo
        if hi[d] > hole_hi:
            parts.append(_slab(lo, hi, d, hole_hi, hi[d]))
            hi[d] = hole_hi
    return parts


def _slab(lo: list[int], hi: list[int], d: int, start: int, stop: int) -> Bounds:
    lo, hi = list(lo), list(hi)
    lo[d], hi[d] = start, stop
    return tuple(lo), tuple(hi)


def find_overlaps(
    offsets: npt.ArrayLike, counts: npt.ArrayLike, max_pairs: int | None = None
) -> np.ndarray:
    """All overlapping pairs i < j, sorted; with ``max_pairs``, the first ones."""
    lo = np.asarray(offsets, np.int64)
    hi = lo + np.asarray(counts, np.int64)
    live = np.all(hi > lo, axis=1)
    pairs = [np.empty((0, 2), np.int64)]
    for i in np.flatnonzero(live):
        j = np.arange(i + 1, len(lo))
        hit = live[j] & np.all((lo[j] < hi[i]) & (lo[i] < hi[j]), axis=1)
        pairs.append(np.column_stack([np.full(hit.sum(), i), j[hit]]))
    return np.concatenate(pairs).astype(np.int64)[:max_pairs]
