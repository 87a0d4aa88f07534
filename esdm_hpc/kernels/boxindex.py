"""Which fragments a read touches, and which fragment provides each part of it.

Boxes follow :mod:`esdm_hpc.kernels.region`: an ``offset`` and a ``count`` per
dimension covering ``[offset, offset + count)`` on every axis, empty when any
count is zero; a set of ``n`` boxes is a pair of ``(n, ndim)`` integer arrays.

A read of a region from a dataset of many fragments goes in two steps:

1. :meth:`BoxIndex.query` finds the fragments that intersect the region, in a
   time that grows with their number rather than with the number of fragments;
2. :func:`plan_cover` cuts the region into pieces, each provided by the
   highest-priority (newest) fragment that covers it or left to the fill value.

For example, with ``epoch`` the epoch of each fragment::

    index = BoxIndex(offsets, counts)
    hits = index.query(offset, count)
    newest_first = np.argsort(-epoch[hits], kind="stable")
    pieces = plan_cover(offset, count, offsets[hits], counts[hits], newest_first)
    # pieces[2][i] indexes hits (-1: fill value)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from esdm_hpc.kernels import _boxindex

# The argument checks of the region kernel, whose conventions this one shares.
from esdm_hpc.kernels.boxes import as_box, as_boxes, as_int64

MAX_NDIM: int = _boxindex.MAX_NDIM
MAX_BOXES: int = _boxindex.MAX_BOXES


class BoxIndex:
    """An immutable spatial index over a set of boxes, for intersection queries.

    A packed R-tree (bounding-volume hierarchy) of fan-out 16 in flat C
    arrays, whose leaves are the non-empty boxes in the Hilbert order of their
    centres.  Building takes ``O(n log n)`` time; the index keeps its own copy
    of the boxes, a little over ``16 * ndim + 4`` bytes per box in all.  A
    query that meets few boxes visits few nodes, whatever ``n``.  Queries
    release the GIL, so threads can share an index.
    """

    __slots__ = ("_index",)

    def __init__(self, offsets: npt.ArrayLike, counts: npt.ArrayLike) -> None:
        offsets, counts = as_boxes(offsets, counts)
        if len(offsets) > MAX_BOXES:
            raise ValueError(f"offsets: at most {MAX_BOXES} boxes, got {len(offsets)}")
        self._index = _boxindex.Index(offsets, counts)

    def __len__(self) -> int:
        """The number of boxes, empty ones included."""
        return self._index.size

    @property
    def ndim(self) -> int:
        return self._index.ndim

    @property
    def nbytes(self) -> int:
        """The memory the index holds, in bytes."""
        return self._index.nbytes

    def query(self, offset: npt.ArrayLike, count: npt.ArrayLike) -> np.ndarray:
        """The indices, in increasing order, of the boxes that intersect a box.

        Boxes that only touch it (half-open intervals) do not intersect it, and
        an empty box intersects nothing.  Returns an int64 array.
        """
        offset, count = as_box(offset, count)
        if len(offset) != self.ndim:
            raise ValueError(
                f"offset: a box of {len(offset)} dimensions does not match the index of {self.ndim}"
            )
        return self._index.query(offset, count)

    def boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(offsets, counts)``, new int64 arrays of the boxes in their input order."""
        return self._index.boxes()

    def __reduce__(self) -> tuple:
        # Pickles as the boxes; unpickling rebuilds the tree.
        return BoxIndex, self.boxes()

    def __repr__(self) -> str:
        return f"BoxIndex({len(self)} boxes, ndim={self.ndim})"


def plan_cover(
    offset: npt.ArrayLike,
    count: npt.ArrayLike,
    offsets: npt.ArrayLike,
    counts: npt.ArrayLike,
    order: npt.ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The read plan of a region from fragments ranked by priority.

    ``order`` lists indices of fragments (rows of ``offsets``), highest
    priority first and each at most once; fragments not listed take no part.
    By default all fragments take part, ranked by their index.

    Returns ``(offsets, counts, source)``: disjoint, non-empty pieces that tile
    the region exactly, shape ``(k, ndim)``, and for each piece the index of
    the fragment that provides it, the first in ``order`` that covers it, or
    -1 where no fragment does (shape ``(k,)``, int64).  Pieces come grouped
    by source in the order of ``order``, the uncovered ones last.

    Each fragment in turn cuts its part out of what is still uncovered,
    stopping as soon as nothing is.  A region that meets many fragments is
    first cut in parts along fragment boundaries, each meeting few of them, so
    that the work stays near-linear (tens of thousands of fragments take tens
    of milliseconds) and a grid of blocks still yields a piece per block.
    Pass the fragments that :meth:`BoxIndex.query` found, not all of them.
    """
    offset, count = as_box(offset, count)
    offsets, counts = as_boxes(offsets, counts, ndim=len(offset))
    order = _order(order, len(offsets))
    return _boxindex.plan_cover(offset, count, offsets, counts, order)


def _order(order: npt.ArrayLike | None, n: int) -> np.ndarray:
    if order is None:
        return np.arange(n, dtype=np.int64)
    order = np.asarray(order)
    if order.ndim != 1:
        raise ValueError(f"order must have shape (k,), got {order.shape}")
    if not len(order):  # numpy makes [] a float array; no fragment is no fragment anyway
        return np.empty(0, np.int64)
    order = as_int64(order, "order")
    if order.min() < 0 or order.max() >= n:
        raise ValueError(f"order must hold indices of the {n} fragments in offsets")
    # a count, not np.unique: that imports numpy.ma on first use, 20 ms from a cold disk
    if np.bincount(order, minlength=n).max() > 1:
        raise ValueError("order must not repeat a fragment")
    return order
