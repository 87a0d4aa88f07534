"""Reading a region of a dataset from its committed fragments (DESIGN 3, 4).

The fragments of all loaded epochs are indexed spatially; a read plans which
fragment provides each part of the region (newest epoch, then latest write,
wins; the fill value where none does), reads only the byte ranges it needs,
rounded out to whole checksum blocks, and verifies those blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import numpy as np

from esdm_hpc.backends import Backend, BackendError
from esdm_hpc.errors import CorruptDataError
from esdm_hpc.fragment import Fragment, Replica
from esdm_hpc.kernels import checksum, hilbert
from esdm_hpc.kernels.boxindex import BoxIndex, plan_cover
from esdm_hpc.namespace import DatasetMeta


class FragmentView:
    """The committed fragments of one dataset, with a spatial index over them."""

    def __init__(self, fragments: Sequence[Fragment], ndim: int):
        self.fragments = list(fragments)
        self.ndim = ndim

    @cached_property
    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(self.fragments), self.ndim)
        offsets = np.array([f.offset for f in self.fragments], dtype=np.int64).reshape(shape)
        counts = np.array([f.count for f in self.fragments], dtype=np.int64).reshape(shape)
        return offsets, counts

    @cached_property
    def _index(self) -> BoxIndex:
        return BoxIndex(*self._boxes)

    @cached_property
    def _priority(self) -> np.ndarray:
        # rank of each fragment in "newest wins" order: epoch, then write order
        keys = np.array([(f.epoch, f.seq) for f in self.fragments], dtype=np.int64).reshape(-1, 2)
        order = np.lexsort((-keys[:, 1], -keys[:, 0])) if len(keys) else np.empty(0, np.int64)
        return order

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
) -> np.ndarray:
    """The committed content of the hyperslab (offset, count) of a dataset."""
    out = np.empty(count, dtype=meta.dtype)
    out[...] = meta.fillvalue
    if out.size == 0 or not view.fragments:
        return out
    piece_offsets, piece_counts, sources = view.plan(offset, count)
    for piece_offset, piece_count, source in zip(piece_offsets, piece_counts, sources, strict=True):
        if source < 0:
            continue
        target = tuple(
            slice(po - o, po - o + c)
            for po, o, c in zip(piece_offset, offset, piece_count, strict=True)
        )
        out[target] = read_fragment_part(
            meta, view.fragments[source], tuple(piece_offset), tuple(piece_count), backends
        )
    return out


def read_fragment_part(
    meta: DatasetMeta,
    fragment: Fragment,
    offset: tuple[int, ...],
    count: tuple[int, ...],
    backends: Mapping[str, Backend],
) -> np.ndarray:
    """The part (offset, count), inside the fragment, from the first replica that verifies."""
    errors: list[Exception] = []
    for replica in _cheapest_first(fragment.replicas, backends):
        try:
            return _read_from(meta, fragment, replica, offset, count, backends[replica.backend])
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


def _read_from(
    meta: DatasetMeta,
    fragment: Fragment,
    replica: Replica,
    offset: tuple[int, ...],
    count: tuple[int, ...],
    backend: Backend,
) -> np.ndarray:
    itemsize = meta.dtype.itemsize
    rel = tuple(o - fo for o, fo in zip(offset, fragment.offset, strict=True))
    if fragment.serialisation == "hilbert":
        first, last = 0, fragment.nbytes
    else:
        first = int(np.ravel_multi_index(rel, fragment.count)) * itemsize
        end = tuple(r + c - 1 for r, c in zip(rel, count, strict=True))
        last = (int(np.ravel_multi_index(end, fragment.count)) + 1) * itemsize
    block = fragment.block_size
    start, stop = first // block * block, min(-(-last // block) * block, fragment.nbytes)
    data = backend.read(replica.location, replica.byte_offset + start, stop - start)
    _verify(meta, fragment, replica, data, start)
    if fragment.serialisation == "hilbert":
        whole = hilbert.deserialise(np.frombuffer(data, dtype=meta.dtype), fragment.count)
        return whole[tuple(slice(r, r + c) for r, c in zip(rel, count, strict=True))]
    flat = np.frombuffer(data, dtype=meta.dtype)
    strides = np.empty(fragment.count, dtype=meta.dtype).strides if fragment.count else ()
    return np.lib.stride_tricks.as_strided(
        flat[(first - start) // itemsize :], shape=count, strides=strides, writeable=False
    )


def _verify(
    meta: DatasetMeta, fragment: Fragment, replica: Replica, data: bytes, start: int
) -> None:
    block = fragment.block_size
    first_block = start // block
    digests = checksum.block_checksums(data, block)
    expected = np.array(
        fragment.checksums[first_block : first_block + len(digests)], dtype=np.uint64
    )
    bad = np.nonzero(digests != expected)[0]
    if len(bad) == 0:
        return
    blocks = [first_block + int(b) for b in bad]
    raise CorruptDataError(
        f"{meta.path}{block_region(fragment, blocks[0], meta.dtype.itemsize)}: corrupt data "
        f"(checksum mismatch in block(s) {blocks} of fragment {fragment.id}, "
        f"{replica.backend}:{replica.location} bytes {replica.byte_offset + start}"
        f"-{replica.byte_offset + start + len(data)})"
    )


def block_region(fragment: Fragment, block: int, itemsize: int) -> str:
    """The rows of the dataset a corrupt block holds, as a hyperslab string."""
    if fragment.serialisation != "C" or not fragment.count:
        rows = (
            range(fragment.offset[0], fragment.offset[0] + fragment.count[0])
            if fragment.count
            else range(0)
        )
    else:
        per_row = itemsize * int(np.prod(fragment.count[1:], dtype=np.int64))
        lo = block * fragment.block_size // per_row
        hi = min(((block + 1) * fragment.block_size - 1) // per_row + 1, fragment.count[0])
        rows = range(fragment.offset[0] + lo, fragment.offset[0] + hi)
    parts = [f"{rows.start}:{rows.stop}"] + [
        f"{o}:{o + c}" for o, c in zip(fragment.offset[1:], fragment.count[1:], strict=True)
    ]
    return "[" + ", ".join(parts) + "]"
