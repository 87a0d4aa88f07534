"""The committed fragments of one dataset, indexed in space (docs/architecture.md §4.6).

The index answers which fragments intersect a region and which of them wins
where they overlap: newest epoch, then latest write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from esdm_hpc.epochs.manifest import decode_fragment
from esdm_hpc.errors import CorruptMetadataError
from esdm_hpc.fragment import Fragment, fragment_boxes
from esdm_hpc.kernels.boxindex import BoxIndex, plan_cover
from esdm_hpc.namespace import Shrink


class FragmentView:
    """The committed fragments of one dataset, with a spatial index over them.

    Built from the fragment records as stored: the index needs only their
    boxes and write order, and a record becomes a Fragment when a read needs
    it (a column through 80,000 fragments reads a few hundred; making all of
    them took 1.3 s).
    """

    def __init__(
        self,
        records: Sequence[dict[str, Any]],
        ndim: int,
        shrinks: Sequence[Shrink] = (),
        where: str = "",
    ):
        self._records = list(records)
        self._decoded: dict[int, Fragment] = {}
        self.ndim = ndim
        self.shrinks = tuple(shrinks)
        self.where = where

    def __len__(self) -> int:
        return len(self._records)

    def fragment(self, i: int) -> Fragment:
        fragment = self._decoded.get(i)
        if fragment is None:
            fragment = self._decoded[i] = decode_fragment(self._records[i], self.where)
        return fragment

    @property
    def fragments(self) -> list[Fragment]:
        """Every fragment, oldest first."""
        return [self.fragment(i) for i in range(len(self))]

    @cached_property
    def _write_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each fragment's epoch, rank and write sequence number."""
        keys = self._checked(
            lambda: np.array([(r["epoch"], r["rank"], r["seq"]) for r in self._records], np.int64)
        ).reshape(-1, 3)
        return keys[:, 0], keys[:, 1], keys[:, 2]

    @cached_property
    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each fragment's box, clipped by the shrinks that came after it."""
        offsets, counts = self._checked(
            lambda: fragment_boxes(
                [r["offset"] for r in self._records], [r["count"] for r in self._records]
            )
        )
        if self.shrinks:
            epochs, ranks, seqs = self._write_order
            for shrink in self.shrinks:
                covered = shrink.covers(epochs, ranks, seqs)
                stop = np.minimum(offsets[covered] + counts[covered], np.array(shrink.shape))
                counts[covered] = np.maximum(stop - offsets[covered], 0)
            counts[(counts == 0).any(axis=1)] = 0  # gone: nothing of it is read
        return offsets, counts

    def _checked(self, columns: Callable[[], Any]) -> Any:
        try:
            return columns()
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptMetadataError(
                f"{self.where}: malformed fragment record ({error!r})"
            ) from None

    @cached_property
    def _index(self) -> BoxIndex:
        return BoxIndex(*self._boxes)

    @cached_property
    def _priority(self) -> np.ndarray:
        # rank of each fragment in "newest wins" order: epoch, then write order
        epochs, _, seqs = self._write_order
        return np.lexsort((-seqs, -epochs))

    def newest(self) -> Fragment:
        """The fragment written last (the view must not be empty)."""
        return self.fragment(int(self._priority[0]))

    def plan(self, offset: tuple[int, ...], count: tuple[int, ...]):
        """(piece offsets, piece counts, fragment index or -1) tiling the region."""
        candidates = self._index.query(np.asarray(offset), np.asarray(count))
        ranks = np.empty(len(self), dtype=np.int64)
        ranks[self._priority] = np.arange(len(self))
        ordered = candidates[np.argsort(ranks[candidates], kind="stable")]
        offsets, counts = self._boxes
        return plan_cover(np.asarray(offset), np.asarray(count), offsets, counts, ordered)
