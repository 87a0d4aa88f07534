"""Reading a region of a dataset from its committed fragments (docs/architecture.md §4.6).

A FragmentView says which fragment provides each part of the region (newest
epoch, then latest write, wins; the fill value where none does); the read
fetches only the byte ranges the parts need, rounded out to whole checksum
blocks, and verifies those blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from esdm_hpc import codecs, serialisation
from esdm_hpc.backends import Backend
from esdm_hpc.errors import CorruptDataError
from esdm_hpc.fragment import Fragment, Replica
from esdm_hpc.fragmentview import FragmentView
from esdm_hpc.namespace import DatasetMeta
from esdm_hpc.placement import cheapest_first, no_replica
from esdm_hpc.readplan import BlockPlan, PartRead, contiguous_run
from esdm_hpc.selection import Hyperslab


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
    read_regions(meta, view, [(offset, out)], backends)
    return out


def read_regions(
    meta: DatasetMeta,
    view: FragmentView,
    regions: Sequence[tuple[tuple[int, ...], np.ndarray]],
    backends: Mapping[str, Backend],
) -> None:
    """The committed content of each hyperslab (offset, out.shape) into its ``out``,
    all planned and read together (one H5Dread of many blocks: one plan).

    Each part of a fragment is read one of three ways: a run of whole checksum
    blocks that lands in contiguous output (a whole fragment, a slice of one)
    straight into the output, other parts of C-ordered fragments through one
    BlockPlan, and fragments in another order whole, then decoded.
    """
    planned: list[_Part] = []
    direct: list[tuple[_Part, int]] = []  # with where its bytes start in the fragment
    for offset, out in regions:
        if out.size == 0:
            continue
        if not len(view):
            out[...] = meta.fillvalue
        elif not out.ndim:  # a scalar: every fragment holds it, the newest wins
            out[()] = read_fragment(meta, view.newest(), backends)
        else:
            _plan_region(meta, view, offset, out, backends, planned, direct)
    if planned or direct:
        _read_parts(meta, planned, direct, backends)


def _plan_region(
    meta: DatasetMeta,
    view: FragmentView,
    offset: tuple[int, ...],
    out: np.ndarray,
    backends: Mapping[str, Backend],
    planned: list[_Part],
    direct: list[tuple[_Part, int]],
) -> None:
    """Sort the pieces of one region into ``planned`` and ``direct`` parts; fill
    where no fragment is and decode fragments in another order at once. The
    pieces tile the region: each element is written once."""
    for po, pc, source in zip(*view.plan(offset, out.shape), strict=True):
        piece, shape = tuple(po.tolist()), tuple(pc.tolist())
        target = tuple(
            slice(p - o, p - o + c) for p, o, c in zip(piece, offset, shape, strict=True)
        )
        into = out[target]  # a view
        if source < 0:  # no fragment holds it
            into[...] = meta.fillvalue
            continue
        fragment = view.fragment(int(source))
        rel = tuple(p - fo for p, fo in zip(piece, fragment.offset, strict=True))
        part = _Part(into, PartRead(fragment, rel, shape))
        if not serialisation.get(fragment.serialisation).blocks_addressable:
            into[...] = _cut(read_fragment(meta, fragment, backends), part.read)
            continue
        start = _span(part.read, meta.dtype.itemsize) if into.flags.c_contiguous else None
        if start is None:
            planned.append(part)
        else:
            direct.append((part, start))


@dataclass(frozen=True, slots=True)
class _Part:
    """A piece of a read: the output it lands in (a view), and the part of a
    fragment providing it."""

    into: np.ndarray
    read: PartRead


def _span(part: PartRead, itemsize: int) -> int | None:
    """Where the part's bytes start in its C-ordered fragment, when they are one run
    of whole checksum blocks (the last may be the fragment's short one)."""
    run = contiguous_run(part.fragment.count, part.rel, part.count)
    if run is None:
        return None
    start, end = run[0] * itemsize, (run[0] + run[1]) * itemsize
    block = part.fragment.block_size
    if start % block or (end % block and end != part.fragment.nbytes):
        return None
    return start


def _cut(values: np.ndarray, part: PartRead) -> np.ndarray:
    return values[tuple(slice(r, r + c) for r, c in zip(part.rel, part.count, strict=True))]


def _read_parts(
    meta: DatasetMeta,
    planned: list[_Part],
    direct: list[tuple[_Part, int]],
    backends: Mapping[str, Backend],
) -> None:
    """Parts of C-ordered fragments, each from the first of its replicas that
    verifies: the ``direct`` ones straight into ``out`` from where their bytes
    start, the ``planned`` ones through a BlockPlan. All are read at once (every
    range announced first), then part by part on the next replica where that
    failed."""
    reads = [part.read for part in planned] + [part.read for part, _ in direct]
    replicas = [cheapest_first(read.fragment.replicas, backends) for read in reads]
    plan = BlockPlan(reads[: len(planned)], meta.dtype)
    buffer = np.empty(plan.size, dtype=np.uint8)
    ranges = _planned_ranges(plan, buffer, replicas)
    for i, (part, start) in enumerate(direct, len(planned)):
        if replicas[i]:
            fragment = part.read.fragment
            block = start // fragment.block_size
            ranges.append(_range(i, fragment, replicas[i][0], _bytes(part.into), block))
    failed: dict[int, Exception | None] = {i: None for i, r in enumerate(replicas) if not r}
    failed.update(_fetch(meta, ranges, backends))
    for i, values in plan.gather(buffer):
        if i not in failed:
            planned[i].into[...] = values
    for i, error in failed.items():  # part by part, from the other replicas
        others = replicas[i][1:]
        if i < len(planned):
            planned[i].into[...] = _read_elsewhere(meta, reads[i], others, backends, error)
        else:
            part, start = direct[i - len(planned)]
            into = _bytes(part.into)
            _read_span(meta, part.read.fragment, start, others, backends, into, error)


def _bytes(into: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous array, as a view."""
    return into.reshape(-1).view(np.uint8)


def _read_elsewhere(
    meta: DatasetMeta,
    part: PartRead,
    replicas: Sequence[Replica],
    backends: Mapping[str, Backend],
    error: Exception | None,
) -> np.ndarray:
    """A part through a BlockPlan of its own, from the first of ``replicas`` that
    verifies (``error``: what an earlier replica gave)."""
    plan = BlockPlan([part], meta.dtype)
    buffer = np.empty(plan.size, dtype=np.uint8)
    _first_verified(
        meta, part.fragment, replicas, backends, error,
        lambda replica: _planned_ranges(plan, buffer, [[replica]]),
    )  # fmt: skip
    return next(plan.gather(buffer))[1]


def _first_verified(
    meta: DatasetMeta,
    fragment: Fragment,
    replicas: Sequence[Replica],
    backends: Mapping[str, Backend],
    error: Exception | None,
    ranges: Callable[[Replica], list[_Range]],
) -> None:
    """Fetch ``ranges(replica)`` from each of a fragment's ``replicas`` in turn until
    all of them verify. If none does: the first error (``error``, if an earlier
    replica gave one)."""
    for replica in replicas:
        failed = _fetch(meta, ranges(replica), backends)
        if not failed:
            return
        error = error or next(iter(failed.values()))
    raise error or no_replica(meta.path, fragment, backends)


class _Range(NamedTuple):
    """One range of whole checksum blocks to read: the part it serves, the fragment
    and replica it is read from, where it starts in the replica's object, the bytes
    it goes to and the fragment's block it starts with; for a coded fragment, where
    its blocks are read to before they are decoded into ``view``."""

    part: int
    fragment: Fragment
    replica: Replica
    offset: int
    view: np.ndarray
    first_block: int
    coded: _Coded | None = None


@dataclass(frozen=True, slots=True)
class _Coded:
    """A coded fragment's blocks as read: their stored bytes, where each starts and
    the last ends in the fragment's stored bytes (`Fragment.stored_bounds`), and the
    pipeline that decodes them."""

    stored: np.ndarray
    bounds: np.ndarray
    pipeline: codecs.Pipeline


def _range(part: int, fragment: Fragment, replica: Replica, view: np.ndarray, first: int) -> _Range:
    """The range of the blocks from ``first`` on of ``fragment`` whose serialised bytes
    go to ``view``: as stored, where the record puts a coded fragment's."""
    block = fragment.block_size
    pipeline = codecs.get(fragment.codec)
    if pipeline is None:
        return _Range(part, fragment, replica, replica.byte_offset + first * block, view, first)
    bounds = fragment.stored_bounds(first, first + -(-len(view) // block))
    coded = _Coded(np.empty(int(bounds[-1] - bounds[0]), dtype=np.uint8), bounds, pipeline)
    where = replica.byte_offset + int(bounds[0])
    return _Range(part, fragment, replica, where, view, first, coded)


def _planned_ranges(
    plan: BlockPlan, buffer: np.ndarray, replicas: Sequence[Sequence[Replica]]
) -> list[_Range]:
    """The plan's ranges, into their places in ``buffer``, each from the first of
    its part's ``replicas`` (parts with none are left out)."""
    columns = (plan.part, plan.start, plan.nbytes, plan.packed, plan.first)
    ranges = []
    for i, start, nbytes, packed, first in zip(*(c.tolist() for c in columns), strict=True):
        if replicas[i]:
            replica = replicas[i][0]
            view = buffer[packed : packed + nbytes]
            fragment = plan.parts[i].fragment
            if fragment.codec == codecs.RAW:  # as _range does, without a call per range
                where = replica.byte_offset + start
                ranges.append(_Range(i, fragment, replica, where, view, first))
            else:
                ranges.append(_range(i, fragment, replica, view, first))
    return ranges


def _fetch(
    meta: DatasetMeta, ranges: Sequence[_Range], backends: Mapping[str, Backend]
) -> dict[int, Exception]:
    """Read and verify every range, all announced before any is read; the parts
    that failed, with their first error."""
    objects: dict[str, dict[str, list[_Range]]] = {}  # by backend and object
    for r in ranges:
        objects.setdefault(r.replica.backend, {}).setdefault(r.replica.location, []).append(r)
    failed: dict[int, Exception] = {}
    for backend, by_object in objects.items():
        reads = {
            name: [(r.offset, r.view if r.coded is None else r.coded.stored) for r in rs]
            for name, rs in by_object.items()
        }
        errors = backends[backend].readinto_objects(reads)
        for name, rs in by_object.items():
            for r in rs:
                if name in errors:
                    failed.setdefault(r.part, errors[name])
                elif r.part not in failed:
                    error = _mismatch(meta, r)
                    if error is None and r.coded is not None:
                        error = _decode(meta, r, r.coded)
                    if error is not None:
                        failed[r.part] = error
    return failed


def read_fragment(
    meta: DatasetMeta, fragment: Fragment, backends: Mapping[str, Backend]
) -> np.ndarray:
    """A whole fragment's values, of its shape, from the first replica that verifies."""
    data = np.empty(fragment.nbytes, np.uint8)
    _read_span(meta, fragment, 0, cheapest_first(fragment.replicas, backends), backends, data)
    return serialisation.get(fragment.serialisation).decode(data, fragment.count, meta.dtype)


def _read_span(
    meta: DatasetMeta,
    fragment: Fragment,
    start: int,
    replicas: Sequence[Replica],
    backends: Mapping[str, Backend],
    into: np.ndarray,
    error: Exception | None = None,
) -> None:
    """The fragment's bytes from ``start`` on (whole checksum blocks) into the bytes
    ``into``, verified there, from the first of ``replicas`` that verifies."""
    block = start // fragment.block_size
    _first_verified(
        meta, fragment, replicas, backends, error,
        lambda replica: [_range(0, fragment, replica, into, block)],
    )  # fmt: skip


def _mismatch(meta: DatasetMeta, r: _Range) -> CorruptDataError | None:
    """The error naming the corrupt blocks the range read (as stored), or None if
    every block verifies."""
    data, bounds = (r.view, None) if r.coded is None else (r.coded.stored, r.coded.bounds)
    bad = r.fragment.mismatched(data, r.first_block, bounds)
    if len(bad) == 0:
        return None
    blocks = [r.first_block + int(b) for b in bad]
    return _corrupt(meta, r, blocks, "checksum mismatch", len(data))


def _decode(meta: DatasetMeta, r: _Range, coded: _Coded) -> CorruptDataError | None:
    """Decode the verified blocks of a coded fragment the range read into its view;
    the error naming them if they do not decode (a writer's fault, not the disk's)."""
    try:
        coded.pipeline.decode(
            coded.stored, coded.bounds - coded.bounds[0], r.view, r.fragment.block_size
        )
    except (ValueError, RuntimeError) as error:
        blocks = list(range(r.first_block, r.first_block + len(coded.bounds) - 1))
        problem = f"undecodable by {r.fragment.codec} ({error})"
        return _corrupt(meta, r, blocks, problem, len(coded.stored))
    return None


def _corrupt(
    meta: DatasetMeta, r: _Range, blocks: list[int], problem: str, nbytes: int
) -> CorruptDataError:
    fragment, replica = r.fragment, r.replica
    return CorruptDataError(
        f"{meta.path}{block_region(fragment, blocks[0], meta.dtype.itemsize)}: corrupt data "
        f"({problem} in block(s) {blocks} of fragment {fragment.id}, "
        f"{replica.backend}:{replica.location} bytes {r.offset}-{r.offset + nbytes})"
    )


def block_region(fragment: Fragment, block: int, itemsize: int) -> str:
    """The smallest hyperslab of the dataset that holds the elements of one block."""
    if not serialisation.get(fragment.serialisation).blocks_addressable or not fragment.count:
        return str(Hyperslab(fragment.offset, fragment.count))  # no run of elements is known
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
