"""What a read needs of the fragments it reads in part, planned for all of them at once.

A part of a C-ordered fragment is a set of contiguous runs of bytes; a read
fetches the checksum blocks the runs touch (adjacent ones merged into one
range), verifies them and gathers the runs. A time series at one point of a
field committed every step touches one element of each of thousands of
fragments: planned fragment by fragment that was a dozen numpy calls per
fragment (0.2 ms each). Parts of fragments of the same shape, read in the same
shape, differ only by where they start, so they are planned together as
arrays (docs/architecture.md §1.3: work over every fragment is not a Python loop).

The ranges of all parts are packed one after another into one buffer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from esdm_hpc.fragment import Fragment

GATHER_LOOP_BYTES = 4096  # runs at least this long are copied one by one


@dataclass(frozen=True, slots=True)
class PartRead:
    """A part of a C-ordered fragment: its first element within the fragment, its shape."""

    fragment: Fragment
    rel: tuple[int, ...]
    count: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    """Parts of one fragment shape read in one shape: R runs of ``run_bytes`` each."""

    members: np.ndarray  # the parts, as indices into BlockPlan.parts
    count: tuple[int, ...]
    strides: tuple[int, ...]  # in bytes, of the fragments
    run_bytes: int
    run_offsets: np.ndarray  # (len(members), R): where each run is in the packed buffer
    run_ranges: np.ndarray  # (len(members), R): the range each run is in


class BlockPlan:
    """The block ranges of parts of C-ordered fragments, one row per range:
    ``part`` (index into ``parts``), blocks ``first`` to ``stop`` (exclusive),
    ``start`` and ``nbytes`` within the fragment, and ``packed``, where the
    range goes in the buffer of ``size`` bytes."""

    def __init__(self, parts: Sequence[PartRead], dtype: np.dtype) -> None:
        self.parts = parts
        self.dtype = dtype
        by_shape: dict[tuple[tuple[int, ...], tuple[int, ...], int], list[int]] = {}
        for i, part in enumerate(parts):
            key = (part.fragment.count, part.count, part.fragment.block_size)
            by_shape.setdefault(key, []).append(i)
        columns: list[tuple[np.ndarray, ...]] = []
        runs: list[tuple[np.ndarray, tuple[int, ...], int, np.ndarray, np.ndarray]] = []
        nranges = 0
        for (shape, count, block), members in by_shape.items():
            index = np.asarray(members, dtype=np.int64)
            rel = np.array([parts[i].rel for i in members], dtype=np.int64).reshape(len(index), -1)
            starts, run = _runs(shape, count)
            origins = rel @ _strides(shape)
            byte_starts = (origins[:, None] + starts[None, :]) * dtype.itemsize  # (P, R)
            run_bytes = run * dtype.itemsize
            part, first, stop, range_of_run = _block_ranges(byte_starts, run_bytes, block)
            columns.append((index[part], first, stop, np.full(len(first), block, np.int64)))
            strides = tuple(int(n) * dtype.itemsize for n in _strides(shape))
            runs.append((index, count, strides, run_bytes, range_of_run + nranges, byte_starts))
            nranges += len(first)
        if columns:
            stacked = [np.concatenate(column) for column in zip(*columns, strict=True)]
            self.part, self.first, self.stop, blocks = stacked
        else:
            self.part = self.first = self.stop = blocks = np.empty(0, dtype=np.int64)
        fragment_bytes = np.array([parts[p].fragment.nbytes for p in self.part], dtype=np.int64)
        self.start = self.first * blocks
        self.nbytes = np.minimum(self.stop * blocks, fragment_bytes) - self.start
        ends = np.cumsum(self.nbytes)
        self.packed = ends - self.nbytes
        self.size = int(ends[-1]) if len(ends) else 0
        self._groups = []
        for index, count, strides, run_bytes, ranges, starts in runs:
            ranges = ranges.reshape(starts.shape)
            offsets = self.packed[ranges] + starts - self.start[ranges]
            self._groups.append(_Group(index, count, strides, run_bytes, offsets, ranges))

    def gather(self, buffer: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(part, its values) for every part, from the packed ``buffer`` of blocks read:
        a view of it where the part's bytes were read in one range, else a copy."""
        for group in self._groups:
            one_range = group.run_ranges[:, 0] == group.run_ranges[:, -1]
            members = group.members[one_range].tolist()
            firsts = group.run_offsets[one_range, 0].tolist()
            for member, first in zip(members, firsts, strict=True):
                yield member, np.ndarray(group.count, self.dtype, buffer, first, group.strides)
            split = ~one_range
            if split.any():
                values = _gather(buffer, group.run_offsets[split].ravel(), group.run_bytes)
                shaped = values.view(self.dtype).reshape(int(split.sum()), *group.count)
                yield from zip(group.members[split].tolist(), shaped, strict=True)


def _strides(shape: tuple[int, ...]) -> np.ndarray:
    """Element strides of a C-ordered array of ``shape``."""
    return np.cumprod((1, *shape[:0:-1]), dtype=np.int64)[::-1]


def _runs(shape: tuple[int, ...], count: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """The contiguous runs (C order) of a sub-box of ``count`` at the origin of an
    array of ``shape``: their first elements, and their length.

    Trailing axes read whole merge into longer runs, so a piece of whole rows
    is one run per leading index, and a whole fragment a single run.
    """
    strides = _strides(shape)
    axis, run = _merged(shape, count)
    starts = np.zeros(1, dtype=np.int64)
    for i in reversed(range(axis)):  # outer sums, axis 0 slowest
        rows = np.arange(count[i], dtype=np.int64) * strides[i]
        starts = (rows[:, None] + starts[None, :]).ravel()
    return starts, run


def contiguous_run(
    shape: tuple[int, ...], rel: tuple[int, ...], count: tuple[int, ...]
) -> tuple[int, int] | None:
    """The sub-box (rel, count) of a C-ordered array of ``shape`` as one run of
    elements, (first, length), or None if it is not contiguous. Plain integers:
    a read asks it of every part, thousands for a time series."""
    if not shape:
        return 0, 1
    axis, run = _merged(shape, count)
    if any(c != 1 for c in count[:axis]):
        return None
    first = 0
    for r, n in zip(rel, shape, strict=True):  # the C-order index of the corner
        first = first * n + r
    return first, run


def _merged(shape: tuple[int, ...], count: tuple[int, ...]) -> tuple[int, int]:
    """Trailing axes read whole merge into one run: the axis the runs of a sub-box
    of ``count`` step along, and their length in elements (plain integers)."""
    axis, run = len(shape) - 1, 1
    while axis > 0 and count[axis] == shape[axis]:
        run *= shape[axis]
        axis -= 1
    return axis, run * count[axis]


def _block_ranges(
    byte_starts: np.ndarray, run_bytes: int, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The block ranges P parts of R ascending runs each touch, adjacent blocks merged:
    each range's part, first and stop block, and the range of every run."""
    first = byte_starts // block
    last = (byte_starts + run_bytes - 1) // block
    opens = np.ones(first.shape, dtype=bool)  # a run that starts a new range
    opens[:, 1:] = first[:, 1:] > last[:, :-1] + 1
    opens = opens.ravel()
    heads = np.flatnonzero(opens)
    tails = np.append(heads[1:], opens.size) - 1  # runs ascend: the last ends the range
    part = heads // first.shape[1]
    return part, first.ravel()[heads], last.ravel()[tails] + 1, np.cumsum(opens) - 1


def _gather(data: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The byte runs data[s : s + length] for each s, one after another."""
    out = np.empty((len(starts), length), dtype=np.uint8)
    if length >= GATHER_LOOP_BYTES:  # few long runs: slice copies beat an index
        for row, start in zip(out, starts.tolist(), strict=True):
            row[:] = data[start : start + length]
        return out
    # many short runs: one fancy index, in the widest unit that divides them all
    unit = next(u for u in (8, 4, 2, 1) if length % u == 0 and not (starts % u).any())
    words = data[: len(data) // unit * unit].view(f"u{unit}")
    index = (starts // unit)[:, None] + np.arange(length // unit)
    out.view(f"u{unit}")[...] = words[index]
    return out
