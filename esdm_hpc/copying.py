"""Copying objects within a container: HDF5's H5Ocopy.

A copy is new metadata only. A copied dataset's fragments share the bytes of
the original's (data logs are append-only and never change), recorded as the
copy's own in the epoch being written, oldest first, so that the newest
still wins; gc keeps bytes while any committed epoch refers to them. What
is committed is copied, and what this process wrote in the open epoch when
it writes alone; an MPI program's open-epoch writes are each rank's own and
reach a copy made after the commit that publishes them.

A copy into another container (H5Ocopy between files) reads the data as
that container's readers see it and writes it as the destination's own
fragments, from rank 0.

Within a copied group, an object that several names reach is copied once
and the other names become hard links to the copy, as HDF5 does.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from esdm_hpc.fragment import write_order
from esdm_hpc.namespace import Link, Shrink
from esdm_hpc.placement import split

SLAB = 64 << 20  # bytes copied at a time between containers

if TYPE_CHECKING:
    from esdm_hpc.container import Container
    from esdm_hpc.fragment import Fragment


@dataclass(frozen=True, slots=True)
class CopyOptions:
    """What a copy takes along (HDF5's object copy property list flags)."""

    attributes: bool = True  # cleared by H5O_COPY_WITHOUT_ATTR_FLAG
    shallow: bool = False  # H5O_COPY_SHALLOW_HIERARCHY_FLAG: a group's own members only
    expand_soft_links: bool = False  # H5O_COPY_EXPAND_SOFT_LINK_FLAG


class _Copier:
    """Copies objects from ``source`` into ``target``: the same container, or
    another one (then datasets are read and written, not shared)."""

    def __init__(self, source: Container, target: Container, options: CopyOptions):
        self.source, self.target = source, target
        self.options = options
        self.copied: dict[str, str] = {}  # identity of an original -> identity of its copy

    def copy(self, identity: str, name: str, depth: int) -> None:
        """Copy the object ``identity`` to the new name ``name`` (already free)."""
        origin, namespace = self.source.namespace, self.target.namespace
        self.copied[identity] = name
        if identity in origin.datasets:
            if self.source is self.target:
                self._copy_dataset(identity, name)
            else:
                self._transfer_dataset(identity, name)
        elif identity in origin.datatypes:
            namespace.datatypes[name] = origin.datatypes[identity]
        else:
            namespace.groups.add(name)
            if identity in origin.ordered:
                namespace.ordered.add(name)
            if identity in origin.unindexed:
                namespace.unindexed.add(name)
            if not (self.options.shallow and depth > 0):
                for member in origin.children_by_order(identity):
                    self._copy_member(posixpath.join(identity, member), f"{name}/{member}", depth)
        attributes = origin.attributes.get(identity)
        if self.options.attributes and attributes:
            namespace.attributes[name] = {key: value.copy() for key, value in attributes.items()}

    def _copy_member(self, old: str, new: str, depth: int) -> None:
        origin, namespace = self.source.namespace, self.target.namespace
        link = origin.link(old)
        if link.kind == "soft" and self.options.expand_soft_links and origin.exists(old):
            link = Link("hard", origin.resolve(old))  # a dangling one stays a link
        namespace.name(new)
        if link.kind != "hard":
            namespace.links[new] = link
        elif link.target in self.copied:
            namespace.links[new] = Link("hard", self.copied[link.target])
        else:
            self.copy(link.target, new, depth + 1)

    def _transfer_dataset(self, identity: str, name: str) -> None:
        """Another container's dataset: what its readers see, written by rank 0."""
        source, target = self.source, self.target
        meta = source.namespace.datasets[identity]
        copy = replace(meta, path=name, created_epoch=target.head.epoch, shrinks=())
        target.namespace.datasets[name] = copy
        if target.comm.rank != 0:
            return
        for offset, count in split((0,) * len(meta.shape), meta.shape, meta.dtype.itemsize, SLAB):
            target.write(copy, offset, source.read(meta, offset, count))

    def _copy_dataset(self, identity: str, name: str) -> None:
        container = self.target
        meta = container.namespace.datasets[identity]
        writer = container.open_epoch.writer
        shared: list[Fragment] = []
        if container.comm.rank == 0:  # one rank records the committed data
            shared += container.view(meta).fragments
        if container.comm.size == 1:
            shared += [f for f in writer.fragments if f.dataset == identity]
        generations = _generations(meta.shrinks, shared)
        order = sorted(range(len(shared)), key=lambda i: _age(shared[i], generations[i]))
        # the copy's fragments are rank 0's newest writes: its shrinks cover the
        # ones written before each original shrink, a prefix in this order; rank
        # 0 counts them, every rank records the same
        first = len(writer.fragments)
        ends = container.comm.bcast(
            [first + sum(1 for g in generations if g <= n) for n in range(len(meta.shrinks))]
        )
        rest = (0,) * (container.comm.size - 1)
        shrinks = [
            Shrink(shrink.shape, writer.epoch, (end, *rest))
            for shrink, end in zip(meta.shrinks, ends, strict=True)
        ]
        copy = replace(meta, path=name, created_epoch=container.head.epoch, shrinks=tuple(shrinks))
        container.namespace.datasets[name] = copy
        writer.share(copy, [shared[i] for i in order])


def _generations(shrinks: tuple[Shrink, ...], fragments: list[Fragment]) -> list[int]:
    """For each fragment, the number of the first shrink after it (len(shrinks): none)."""
    if not fragments:
        return []
    epochs, ranks, seqs = write_order(fragments)
    first = np.full(len(fragments), len(shrinks), dtype=np.int64)
    for number in reversed(range(len(shrinks))):  # a later shrink covers all an earlier does
        first[shrinks[number].covers(epochs, ranks, seqs)] = number
    return first.tolist()


def _age(fragment: Fragment, generation: int) -> tuple[int, int, int, int]:
    """Oldest first: a rank's writes keep their order, and ranks do not overlap in an epoch."""
    return (fragment.epoch, generation, fragment.rank, fragment.seq)


def copy_object(
    container: Container,
    source: str,
    destination: str,
    options: CopyOptions,
    origin: Container | None = None,
) -> str:
    """Copy the object ``source`` leads to, with what it holds, to the new name
    ``destination`` in ``container``; ``source`` is a path in ``origin``, by
    default the same container. Returns the copy's identity. The caller has
    checked that every rank copies the same."""
    origin = container if origin is None else origin
    pending = container.edit("copy")
    identity = origin.namespace.resolve(source)
    name = pending.free_name(destination)
    inside = origin is container and f"{name}/".startswith(f"{identity}/")
    if identity in origin.namespace.groups and inside:
        raise ValueError(f"{container.uri}: cannot copy the group {source!r} into itself")
    pending.add_name(name)
    _Copier(origin, container, options).copy(identity, name, 0)
    return name
