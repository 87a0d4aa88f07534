"""Reading a region of a dataset from its committed fragments (DESIGN 3, 4).

The fragments of all loaded epochs are indexed spatially; a read plans which
fragment provides each part of the region (newest epoch, then latest write,
wins; the fill value where none does), reads only the byte ranges it needs,
rounded out to whole checksum blocks, and verifies those blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from esdm_hpc import strings
from esdm_hpc.backends import Backend, BackendError
from esdm_hpc.errors import CorruptDataError
from esdm_hpc.fragment import Fragment, Replica, fragment_boxes, write_order
from esdm_hpc.kernels import checksum, hilbert
from esdm_hpc.kernels.boxindex import BoxIndex, plan_cover
from esdm_hpc.namespace import DatasetMeta, Shrink
from esdm_hpc.selection import Hyperslab

GATHER_LOOP_BYTES = 4096  # runs at least this long are copied one by one
PREFETCH_BYTES = 256 << 20  # announced ahead by one read at most


class FragmentView:
    """The committed fragments of one dataset, with a spatial index over them."""

    def __init__(self, fragments: Sequence[Fragment], ndim: int, shrinks: Sequence[Shrink] = ()):
        self.fragments = list(fragments)
        self.ndim = ndim
        self.shrinks = tuple(shrinks)

    @cached_property
    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each fragment's box, clipped by the shrinks that came after it."""
        offsets, counts = fragment_boxes(
            [f.offset for f in self.fragments], [f.count for f in self.fragments]
        )
        if self.shrinks:
            epochs, ranks, seqs = write_order(self.fragments)
            for shrink in self.shrinks:
                covered = shrink.covers(epochs, ranks, seqs)
                stop = np.minimum(offsets[covered] + counts[covered], np.array(shrink.shape))
                counts[covered] = np.maximum(stop - offsets[covered], 0)
            counts[(counts == 0).any(axis=1)] = 0  # gone: nothing of it is read
        return offsets, counts

    @cached_property
    def _index(self) -> BoxIndex:
        return BoxIndex(*self._boxes)

    @cached_property
    def _priority(self) -> np.ndarray:
        # rank of each fragment in "newest wins" order: epoch, then write order
        epochs, _, seqs = write_order(self.fragments)
        return np.lexsort((-seqs, -epochs))

    def newest(self) -> Fragment | None:
        return self.fragments[self._priority[0]] if self.fragments else None

    def plan(self, offset: tuple[int, ...], count: tuple[int, ...]):
        """(piece offsets, piece counts, fragment index or -1) tiling the region."""
        candidates = self._index.query(np.asarray(offset), np.asarray(count))
        ranks = np.empty(len(self.fragments), dtype=np.int64)
        ranks[self._priority] = np.arange(len(self.fragments))
        ordered = candidates[np.argsort(ranks[candidates], kind="stable")]
        offsets, counts = self._boxes
        return plan_cover(np.asarray(offset), np.asarray(count), offsets, counts, ordered)


def read_region(
    meta: DatasetMeta,
    view: FragmentView,
    offset: tuple[int, ...],
    count: tuple[int, ...],
    backends: Mapping[str, Backend],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The committed content of the hyperslab (offset, count) of a dataset, in ``out``
    (of shape ``count`` and the dataset's dtype: the VOL connector passes the
    application's buffer) or a new array."""
    if out is None:
        out = np.empty(count, dtype=meta.dtype)
    if out.size == 0:
        return out
    if not view.fragments:
        out[...] = meta.fillvalue
        return out
    if not count:  # a scalar: every fragment holds it, the newest wins
        out[()] = read_fragment_part(meta, view.newest(), (), (), backends)
        return out
    # The pieces tile the region: each element is written once, the fill value
    # only where no fragment is.
    parts = [
        _part(meta, view, offset, tuple(po.tolist()), tuple(pc.tolist()), int(source))
        for po, pc, source in zip(*view.plan(offset, count), strict=True)
    ]
    _prefetch(parts, backends)
    for part in parts:
        if part.fragment is None:
            out[part.target] = meta.fillvalue
            continue
        into = out[part.target]  # a view: a whole fragment is read straight into it
        read = read_fragment_part(
            meta, part.fragment, part.offset, part.count, backends, into, part.runs
        )
        if read is not into:
            into[...] = read
    return out


class _Runs(NamedTuple):
    """What a part of a C-ordered fragment needs of it."""

    starts: np.ndarray  # the first element of each contiguous run, in the fragment
    length: int  # elements per run
    blocks: list[tuple[int, int]]  # the checksum blocks (start, stop) the runs touch


@dataclass(frozen=True, slots=True)
class _Part:
    """A piece of a read: where it lands in the output, the fragment providing it
    (None: the fill value) and, for a part of a C-ordered fragment, its runs."""

    target: tuple[slice, ...]
    fragment: Fragment | None
    offset: tuple[int, ...]
    count: tuple[int, ...]
    runs: _Runs | None


def _part(
    meta: DatasetMeta,
    view: FragmentView,
    region: tuple[int, ...],
    offset: tuple[int, ...],
    count: tuple[int, ...],
    source: int,
) -> _Part:
    target = tuple(slice(o - r, o - r + c) for o, r, c in zip(offset, region, count, strict=True))
    if source < 0:
        return _Part(target, None, offset, count, None)
    fragment = view.fragments[source]
    runs = None
    whole = offset == fragment.offset and count == fragment.count
    if not whole and fragment.serialisation == "C":  # only parts in C order have runs
        runs = _runs_of(meta, fragment, offset, count)
    return _Part(target, fragment, offset, count, runs)


def _prefetch(parts: list[_Part], backends: Mapping[str, Backend]) -> None:
    """Announce the blocks that parts of fragments will need, all before the first read.

    Whole fragments are left out: they are long sequential reads, which the
    backends read ahead anyway, and would only crowd the cache.
    """
    wanted: dict[tuple[str, str], list[tuple[int, int]]] = {}
    budget = PREFETCH_BYTES
    for part in parts:
        fragment = part.fragment
        if part.runs is None or fragment is None:
            continue
        replicas = _cheapest_first(fragment.replicas, backends)
        if not replicas:
            continue
        replica, block = replicas[0], fragment.block_size
        ranges = wanted.setdefault((replica.backend, replica.location), [])
        for a, b in part.runs.blocks:
            length = min(b * block, fragment.nbytes) - a * block
            ranges.append((replica.byte_offset + a * block, length))
            budget -= length
        if budget < 0:
            break
    if sum(len(r) for r in wanted.values()) < 2:
        return  # one range: nothing to overlap
    for (backend, location), ranges in wanted.items():
        # only a hint: the read itself reports a problem, or fails over
        with suppress(BackendError):
            backends[backend].prefetch(location, ranges)


def read_fragment_part(
    meta: DatasetMeta,
    fragment: Fragment,
    offset: tuple[int, ...],
    count: tuple[int, ...],
    backends: Mapping[str, Backend],
    into: np.ndarray | None = None,
    runs: _Runs | None = None,
) -> np.ndarray:
    """The part (offset, count), inside the fragment, from the first replica that
    verifies. A whole C-ordered fragment is read straight into ``into`` (C
    contiguous, of its shape) and that is returned; else a new array or view.
    ``runs``: what the part needs of a C-ordered fragment, if known already."""
    whole = offset == fragment.offset and count == fragment.count
    direct = (
        into is not None and whole and fragment.serialisation == "C" and into.flags.c_contiguous
    )
    errors: list[Exception] = []
    for replica in _cheapest_first(fragment.replicas, backends):
        backend = backends[replica.backend]
        try:
            if direct:
                return _read_whole_into(meta, fragment, replica, backend, into)
            return _read_from(meta, fragment, replica, offset, count, backend, runs)
        except (CorruptDataError, BackendError) as error:
            errors.append(error)
    raise (
        errors[0]
        if errors
        else CorruptDataError(f"{meta.path}: fragment {fragment.id} has no replica")
    )


def _cheapest_first(replicas: Sequence[Replica], backends: Mapping[str, Backend]) -> list[Replica]:
    def cost(replica: Replica) -> float:
        backend = backends.get(replica.backend)
        if backend is None:
            return float("inf")
        model = backend.config.performance
        return model.latency_s + replica.length / model.read_bandwidth

    return sorted((r for r in replicas if r.backend in backends), key=cost)


def _read_whole_into(
    meta: DatasetMeta, fragment: Fragment, replica: Replica, backend: Backend, into: np.ndarray
) -> np.ndarray:
    """The whole fragment, read into ``into`` and verified there: no buffer, no copy."""
    data = into.reshape(-1).view(np.uint8)
    backend.readinto_ranges(replica.location, [(replica.byte_offset, data)])
    _verify(meta, fragment, replica, data, 0)
    return into


def _read_from(
    meta: DatasetMeta,
    fragment: Fragment,
    replica: Replica,
    offset: tuple[int, ...],
    count: tuple[int, ...],
    backend: Backend,
    runs: _Runs | None = None,
) -> np.ndarray:
    rel = tuple(o - fo for o, fo in zip(offset, fragment.offset, strict=True))
    if fragment.serialisation != "C":  # not an array in C order: decoded whole
        whole, _, _ = _read_blocks(meta, fragment, replica, backend, [(0, fragment.nblocks)])
        if fragment.serialisation == strings.SERIALISATION:
            block = strings.decode(whole, fragment.count)
        else:
            block = hilbert.deserialise(whole.view(meta.dtype), fragment.count)
        return block[tuple(slice(r, r + c) for r, c in zip(rel, count, strict=True))]
    itemsize = meta.dtype.itemsize
    if runs is None:
        runs = _runs_of(meta, fragment, offset, count)
    starts, run, block_ranges = runs
    data, range_starts, packed_starts = _read_blocks(meta, fragment, replica, backend, block_ranges)
    if len(block_ranges) == 1:  # no gaps: the region is a strided view of the bytes read
        strides = np.empty(fragment.count, dtype=meta.dtype).strides if fragment.count else ()
        origin = int(np.ravel_multi_index(rel, fragment.count)) if fragment.count else 0
        # a byte offset: blocks need not hold whole elements
        region = np.ndarray(
            count, meta.dtype, data, origin * itemsize - int(range_starts[0]), strides
        )
        region.flags.writeable = False
        return region
    # where each run landed in the packed buffer: runs never straddle two ranges
    byte_starts = starts * itemsize
    which = np.searchsorted(range_starts, byte_starts, side="right") - 1
    packed = byte_starts - range_starts[which] + packed_starts[which]
    return _gather(data, packed, run * itemsize).view(meta.dtype).reshape(count)


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


def _runs_of(
    meta: DatasetMeta, fragment: Fragment, offset: tuple[int, ...], count: tuple[int, ...]
) -> _Runs:
    """What the part (offset, count) of a C-ordered fragment needs of it."""
    itemsize = meta.dtype.itemsize
    rel = tuple(o - fo for o, fo in zip(offset, fragment.offset, strict=True))
    starts, run = _runs(fragment.count, rel, count)
    return _Runs(starts, run, _touched_blocks(starts * itemsize, run * itemsize, fragment))


def _runs(shape: tuple[int, ...], rel: tuple[int, ...], count: tuple[int, ...]):
    """The contiguous runs (C order) a sub-box of an array covers: start elements, run length.

    Trailing axes read whole merge into longer runs, so a piece of whole rows
    is one run per leading index, and a whole fragment a single run.
    """
    if not shape:
        return np.zeros(1, dtype=np.int64), 1
    strides = np.cumprod((1, *shape[:0:-1]), dtype=np.int64)[::-1]  # in elements
    axis, run = len(shape) - 1, 1
    while axis > 0 and rel[axis] == 0 and count[axis] == shape[axis]:
        run *= shape[axis]
        axis -= 1
    run *= count[axis]
    starts = np.array([rel[axis] * strides[axis]], dtype=np.int64)
    for i in reversed(range(axis)):  # outer sums, axis 0 slowest
        rows = np.arange(rel[i], rel[i] + count[i], dtype=np.int64) * strides[i]
        starts = (rows[:, None] + starts[None, :]).ravel()
    return starts, run


def _touched_blocks(starts: np.ndarray, length: int, fragment: Fragment) -> list[tuple[int, int]]:
    """Checksum blocks (start, stop) the byte runs touch, merged where adjacent."""
    block = fragment.block_size
    nblocks = fragment.nblocks
    first, last = starts // block, (starts + length - 1) // block
    # a difference array marks every block between first and last of each run
    marks = np.bincount(first, minlength=nblocks + 1) - np.bincount(last + 1, minlength=nblocks + 1)
    touched = np.concatenate(([False], np.cumsum(marks[:nblocks]) > 0, [False]))
    edges = np.flatnonzero(touched[1:] != touched[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _read_blocks(
    meta: DatasetMeta,
    fragment: Fragment,
    replica: Replica,
    backend: Backend,
    block_ranges: list[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The blocks of the ranges, verified, packed one range after another; with the
    byte offset of each range in the fragment and in the packed buffer.

    Packed, not laid out as in the fragment: a buffer spanning the gaps costs
    page faults (and huge-page zeroing) for memory that is never read.
    """
    block = fragment.block_size
    range_starts = np.array([a * block for a, _ in block_ranges], dtype=np.int64)
    sizes = np.array(
        [min(b * block, fragment.nbytes) - a * block for a, b in block_ranges], dtype=np.int64
    )
    packed_starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    buffer = np.empty(int(sizes.sum()), dtype=np.uint8)
    views = [
        (replica.byte_offset + int(start), buffer[int(p) : int(p + size)])
        for start, p, size in zip(range_starts, packed_starts, sizes, strict=True)
    ]
    backend.readinto_ranges(replica.location, views)
    for (a, _), (_, view) in zip(block_ranges, views, strict=True):
        _verify(meta, fragment, replica, view, a)
    return buffer, range_starts, packed_starts


def _verify(
    meta: DatasetMeta, fragment: Fragment, replica: Replica, data: np.ndarray, first_block: int
) -> None:
    block = fragment.block_size
    digests = checksum.block_checksums(data, block)
    expected = fragment.digests(first_block, first_block + len(digests))
    bad = np.nonzero(digests != expected)[0]
    if len(bad) == 0:
        return
    blocks = [first_block + int(b) for b in bad]
    start = replica.byte_offset + first_block * block
    raise CorruptDataError(
        f"{meta.path}{block_region(fragment, blocks[0], meta.dtype.itemsize)}: corrupt data "
        f"(checksum mismatch in block(s) {blocks} of fragment {fragment.id}, "
        f"{replica.backend}:{replica.location} bytes {start}-{start + len(data)})"
    )


def block_region(fragment: Fragment, block: int, itemsize: int) -> str:
    """The smallest hyperslab of the dataset that holds the elements of one block."""
    if fragment.serialisation != "C" or not fragment.count:
        return str(Hyperslab(fragment.offset, fragment.count))  # Hilbert order scatters a block
    size = int(np.prod(fragment.count, dtype=np.int64))
    first = block * fragment.block_size // itemsize
    last = min(((block + 1) * fragment.block_size - 1) // itemsize, size - 1)
    lo = [int(i) for i in np.unravel_index(first, fragment.count)]
    hi = [int(i) for i in np.unravel_index(last, fragment.count)]
    # Axes before the first one where lo and hi differ are fixed; that axis
    # spans lo..hi; the block wraps around every axis after it.
    axis = next((i for i, (a, b) in enumerate(zip(lo, hi, strict=True)) if a != b), None)
    if axis is None:
        start, stop = lo, [i + 1 for i in lo]
    else:
        start = [*lo[: axis + 1], *[0] * (len(lo) - axis - 1)]
        stop = [*(i + 1 for i in lo[:axis]), hi[axis] + 1, *fragment.count[axis + 1 :]]
    return str(
        Hyperslab(
            tuple(o + a for o, a in zip(fragment.offset, start, strict=True)),
            tuple(b - a for a, b in zip(start, stop, strict=True)),
        )
    )
