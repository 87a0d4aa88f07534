"""Region algebra on N-D boxes (hyperslabs).

A box is an ``offset`` and a ``count`` per dimension and covers the half-open
range ``[offset, offset + count)`` on every axis; a box with any zero count is
empty and intersects nothing.  A set of ``n`` boxes is a pair of ``(n, ndim)``
integer arrays ``offsets`` and ``counts``.  Boxes have 1 to ``MAX_NDIM``
dimensions.

This is what the middleware asks of fragments: which fragments a read touches
(:func:`intersect`), which part of a request no fragment holds yet
(:func:`subtract`) and whether fragments written concurrently collide
(:func:`find_overlaps`).
"""

from __future__ import annotations

import operator

import numpy as np
import numpy.typing as npt

from esdm_hpc.kernels import _region
from esdm_hpc.kernels.boxes import as_box, as_boxes

MAX_NDIM: int = _region.MAX_NDIM
_UNLIMITED = np.iinfo(np.uintp).max  # max_pairs for "no limit" (SIZE_MAX in C)
_MAX_BOXES = 2**32 - 1  # find_overlaps keeps box indices in 32 bits


def intersect(
    offset: npt.ArrayLike, count: npt.ArrayLike, offsets: npt.ArrayLike, counts: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersections of one box with each of a set of boxes.

    Returns ``(index, offsets, counts)``: the indices, in increasing order, of
    the boxes whose intersection with the box is non-empty, shape ``(k,)``,
    and those intersections, shape ``(k, ndim)``.
    """
    offset, count = as_box(offset, count)
    offsets, counts = as_boxes(offsets, counts, ndim=len(offset))
    return _region.intersect(offset, count, offsets, counts)


def subtract(
    offset: npt.ArrayLike, count: npt.ArrayLike, offsets: npt.ArrayLike, counts: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """The part of one box that none of a set of boxes covers.

    Returns ``(offsets, counts)`` of disjoint, non-empty boxes, shape
    ``(k, ndim)``, whose union is the uncovered part; ``k == 0`` means the
    box is fully covered.  Each box of the set cuts the pieces left so far
    into slabs along the axes in turn, so the result has few pieces for the
    usual handful of fragments around a request (not necessarily the fewest).
    """
    offset, count = as_box(offset, count)
    offsets, counts = as_boxes(offsets, counts, ndim=len(offset))
    return _region.subtract(offset, count, offsets, counts)


def find_overlaps(
    offsets: npt.ArrayLike, counts: npt.ArrayLike, max_pairs: int | None = None
) -> np.ndarray:
    """Index pairs of the boxes of a set that overlap (have a non-empty intersection).

    Returns a ``(k, 2)`` int64 array of pairs ``i < j``, sorted.  With
    ``max_pairs`` the search stops after that many pairs, which are then some
    (sorted) overlapping pairs rather than the first ones: ``max_pairs=1``
    answers "are these boxes disjoint?" as soon as it can.

    Runs in ``O((n + c) log n)`` time, where ``c`` counts the pairs whose
    projections overlap on the two axes with the fewest overlapping
    projections, so random boxes and grid decompositions alike take
    near-linear time.
    """
    offsets, counts = as_boxes(offsets, counts)
    if len(offsets) > _MAX_BOXES:
        raise ValueError(f"offsets: at most {_MAX_BOXES} boxes, got {len(offsets)}")
    limit = _UNLIMITED if max_pairs is None else _non_negative_int(max_pairs, "max_pairs")
    return _region.find_overlaps(offsets, counts, min(limit, _UNLIMITED))  # size_t in C


def _non_negative_int(value: object, name: str) -> int:
    try:
        number = None if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = None
    if number is None:
        raise ValueError(f"{name} must be an integer, not {type(value).__name__}")
    if number < 0:
        raise ValueError(f"{name} must be non-negative, got {number}")
    return number
