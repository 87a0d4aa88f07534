"""Copying objects within a container: HDF5's H5Ocopy.

A copy is new metadata only. A copied dataset's fragments share the bytes of
the original's (data logs are append-only and never change), recorded as the
copy's own in the epoch being written, oldest first, so that the newest
still wins; gc keeps bytes while any committed epoch refers to them. What
is committed is copied, and what this process wrote in the open epoch when
it writes alone; an MPI program's open-epoch writes are each rank's own and
reach a copy made after the commit that publishes them.

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
    def __init__(self, container: Container, options: CopyOptions):
        self.container = container
        self.namespace = container._namespace
        self.options = options
        self.copied: dict[str, str] = {}  # identity of an original -> identity of its copy

    def copy(self, identity: str, name: str, depth: int) -> None:
        """Copy the object ``identity`` to the new name ``name`` (already free)."""
        namespace = self.namespace
        self.copied[identity] = name
        if identity in namespace.datasets:
            self._copy_dataset(identity, name)
        elif identity in namespace.datatypes:
            namespace.datatypes[name] = namespace.datatypes[identity]
        else:
            namespace.groups.add(name)
            if identity in namespace.ordered:
                namespace.ordered.add(name)
            if identity in namespace.unindexed:
                namespace.unindexed.add(name)
            if not (self.options.shallow and depth > 0):
                for member in namespace.children_by_order(identity):
                    self._copy_member(posixpath.join(identity, member), f"{name}/{member}", depth)
        attributes = namespace.attributes.get(identity)
        if self.options.attributes and attributes:
            namespace.attributes[name] = {key: value.copy() for key, value in attributes.items()}

    def _copy_member(self, old: str, new: str, depth: int) -> None:
        namespace = self.namespace
        link = namespace.link(old)
        if link.kind == "soft" and self.options.expand_soft_links and namespace.exists(old):
            link = Link("hard", namespace.resolve(old))  # a dangling one stays a link
        namespace.name(new)
        if link.kind != "hard":
            namespace.links[new] = link
        elif link.target in self.copied:
            namespace.links[new] = Link("hard", self.copied[link.target])
        else:
            self.copy(link.target, new, depth + 1)

    def _copy_dataset(self, identity: str, name: str) -> None:
        container = self.container
        meta = container._namespace.datasets[identity]
        writer = container._require_writable(f"copying {identity}")
        shared: list[Fragment] = []
        if container.comm.rank == 0:  # one rank records the committed data
            shared += container._view(meta).fragments
        if container.comm.size == 1:
            shared += [f for f in writer.fragments if f.dataset == identity]
        generations = _generations(meta.shrinks, shared)
        order = sorted(range(len(shared)), key=lambda i: _age(shared[i], generations[i]))
        # the copy's fragments are rank 0's newest writes: its shrinks cover the
        # ones written before each original shrink, a prefix in this order
        first = container.comm.bcast(len(writer.fragments))
        marks = [0] * container.comm.size
        shrinks = []
        for number, shrink in enumerate(meta.shrinks):
            marks[0] = first + sum(1 for g in generations if g <= number)
            shrinks.append(Shrink(shrink.shape, writer.epoch, tuple(marks)))
        copy = replace(meta, path=name, created_epoch=container._head.epoch, shrinks=tuple(shrinks))
        container._namespace.datasets[name] = copy
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


def copy_object(container: Container, source: str, destination: str, options: CopyOptions) -> str:
    """Copy the object ``source`` leads to, with what it holds, to the new name
    ``destination`` (paths within ``container``); returns the copy's identity.
    The caller has checked that every rank copies the same."""
    identity = container._namespace.resolve(source)
    name = container._free_name(destination)
    if (identity in container._namespace.groups) and f"{name}/".startswith(f"{identity}/"):
        raise ValueError(f"{container.uri}: cannot copy the group {source!r} into itself")
    container._add_name(name)
    _Copier(container, options).copy(identity, name, 0)
    return name
