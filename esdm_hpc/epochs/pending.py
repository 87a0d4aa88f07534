"""The namespace of the open epoch: the committed one and this epoch's changes
(docs/architecture.md §3).

Every change is collective: all ranks make it with the same arguments
(`comm.agree` checks it first, so a mismatch raises the same error on every
rank), and a change that is refused leaves nothing behind, so `dirty` (a
commit has namespace changes to publish) is set only once one succeeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esdm_hpc.comm import Comm, agree
from esdm_hpc.empty import Empty
from esdm_hpc.epochs.catalogue import Catalogue
from esdm_hpc.epochs.open_epoch import OpenEpoch
from esdm_hpc.namespace import DatasetMeta, Link, Namespace, Shrink


class PendingNamespace:
    def __init__(
        self, comm: Comm, catalogue: Catalogue, epoch: OpenEpoch, namespace: Namespace, dirty: bool
    ):
        self._comm = comm
        self._catalogue = catalogue
        self._epoch = epoch
        self.namespace = namespace
        self._dirty = dirty

    @property
    def dirty(self) -> bool:
        """Whether there are changes since the last commit."""
        return self._dirty

    @property
    def where(self) -> str:
        return self._catalogue.where

    def reset(self) -> None:
        """Start again from the committed namespace (after a commit, or a refused one)."""
        self.namespace = self._catalogue.namespace()
        self._dirty = False

    def _changed(self) -> None:
        self._dirty = True

    def _agree(self, call: str, arguments: dict[str, Any]) -> None:
        agree(self._comm, call, arguments)

    # --- groups, links, datatypes ---------------------------------------------------

    def create_group(self, path: str, track_order: bool, indexed: bool = True) -> str:
        self._agree("create_group", {"path": path, "track_order": track_order, "indexed": indexed})
        name = self.free_name(path)
        self.add_name(name)
        self.namespace.groups.add(name)
        if track_order:
            self._order_links(name, indexed)
        self._changed()
        return name

    def track_order(self, group: str, indexed: bool = True) -> None:
        """List the links of ``group`` in creation order by default (HDF5's
        H5Pset_link_creation_order; ``indexed`` is only reported back)."""
        self._agree("track_order", {"group": group, "indexed": indexed})
        self._order_links(self.namespace.resolve(group), indexed)
        self._changed()

    def _order_links(self, group: str, indexed: bool) -> None:
        self.namespace.ordered.add(group)
        if not indexed:
            self.namespace.unindexed.add(group)

    def create_link(self, path: str, link: Link) -> None:
        """A link at ``path``: hard (``link.target`` a path to an object), soft,
        external or user-defined (kept as they are)."""
        self._agree("create_link", {"path": path, **link.to_json()})
        if link.kind == "hard":
            link = Link("hard", self.namespace.resolve(link.target))
        name = self.free_name(path)
        self.add_name(name)
        if link.kind == "hard" and self._fresh_anonymous(link.target):
            # its first name becomes its identity: what lists and shows datasets
            # (esdm info, Dataset.name) shows that name, not an anonymous one
            self.namespace.rename(link.target, name)
            self._epoch.writer.rename(link.target, name)
        else:
            self.namespace.links[name] = link
        self._changed()

    def _fresh_anonymous(self, identity: str) -> bool:
        """Whether ``identity`` is an anonymous object that nothing refers to yet: no
        name, no committed record (created since the last commit)."""
        namespace = self.namespace
        if identity not in namespace.unlinked or namespace.hard_links_to(identity):
            return False
        return not self._catalogue.committed(identity)

    def move_link(self, source: str, destination: str, keep_source: bool = False) -> None:
        """Rename the link ``source`` to ``destination`` (HDF5's H5Lmove), or with
        ``keep_source`` copy it there (H5Lcopy). The new name is the newest in its
        group; a moved object keeps its identity, so open handles still reach it."""
        call = "copy_link" if keep_source else "move_link"
        self._agree(call, {"source": source, "destination": destination})
        namespace = self.namespace
        old = namespace.locate(source)
        link = namespace.link(old)
        name = self.free_name(destination)
        # As HDF5, by name: a group may not move below its own name, though a
        # hard link elsewhere may close a cycle.
        inside = f"{destination}/".startswith(f"{source}/") or name.startswith(f"{old}/")
        if inside and not keep_source:
            raise ValueError(f"{self.where}: cannot move the group {source!r} into itself")
        self.add_name(name)
        namespace.links[name] = link
        if not keep_source:
            namespace.remove(old)
        self._changed()

    def delete_link(self, path: str) -> None:
        """Delete the name ``path``; its object goes with its last name."""
        self._agree("delete_link", {"path": path})
        self.namespace.remove(self.namespace.locate(path))
        self._changed()

    def commit_datatype(self, path: str, spelling: Any) -> None:
        """A named datatype (HDF5's committed datatype) at ``path``."""
        self._agree("commit_datatype", {"path": path, "type": spelling})
        name = self.free_name(path)
        self.add_name(name)
        self.namespace.datatypes[name] = spelling
        self._changed()

    def agree(self, call: str, arguments: dict[str, Any]) -> None:
        """Check that every rank makes the change ``call`` with ``arguments``, for
        changes made elsewhere (`copying.copy_object`); `copied` records one."""
        self._agree(call, arguments)

    def copied(self) -> None:
        """Record that a copy (made by `copying.copy_object`) changed the namespace."""
        self._changed()

    # --- unlinked objects ----------------------------------------------------------------

    def collect_unnamed(self, identity: str) -> None:
        """Drop the object ``identity`` if it is unlinked (`Namespace.unlinked`) and no
        link names it (collective: HDF5 drops an anonymous object when its last ID
        closes, and closing it is collective in parallel HDF5)."""
        namespace = self.namespace
        if identity not in namespace.unlinked or namespace.hard_links_to(identity):
            return
        self._agree("drop", {"path": identity})
        namespace.collect(identity)
        self._changed()

    # --- attributes --------------------------------------------------------------------

    def set_attribute(self, path: str, key: str, value: np.ndarray | Empty) -> None:
        shown = repr(value) if isinstance(value, Empty) else value.tolist()
        self._agree("attrs.__setitem__", {"path": path, "key": key, "value": shown})
        self.namespace.attributes.setdefault(path, {})[key] = value
        self._changed()

    def delete_attribute(self, path: str, key: str) -> None:
        self._agree("attrs.__delitem__", {"path": path, "key": key})
        attributes = self.namespace.attributes.get(path, {})
        if key not in attributes:
            raise KeyError(f"{path} has no attribute {key!r}")
        del attributes[key]
        self._changed()

    # --- datasets ----------------------------------------------------------------------

    def agree_dataset(self, arguments: dict[str, Any]) -> None:
        """Check that every rank creates the same dataset (before it is checked)."""
        self._agree("create_dataset", arguments)

    def add_dataset(self, meta: DatasetMeta) -> None:
        """Name the new dataset ``meta`` (made by `creation.dataset_meta` after
        `agree_dataset`, at a name `free_name` gave)."""
        self.add_name(meta.path)
        self.namespace.datasets[meta.path] = meta
        self._changed()

    def resize(self, path: str, shape: tuple[int, ...]) -> None:
        self._agree("resize", {"path": path, "shape": shape})
        meta = self.namespace.dataset(path, self.where)
        if len(shape) != len(meta.shape):
            raise ValueError(f"{path}: resize to {shape} changes the number of dimensions")
        for axis, (new, limit) in enumerate(zip(shape, meta.maxshape, strict=True)):
            if new < 0 or (limit is not None and new > limit):
                bound = "any size" if limit is None else limit
                raise ValueError(f"{path}: axis {axis} can grow to {bound}, not {new}")
        shrink = None
        if any(new < old for new, old in zip(shape, meta.shape, strict=True)):
            shrink = self._shrink(shape)
        self.namespace.datasets[path] = meta.resized(shape, shrink)
        self._changed()

    def _shrink(self, shape: tuple[int, ...]) -> Shrink:
        """The record of a shrink now: which writes of this epoch came before it."""
        writer = self._epoch.writer  # a write in flight came before; its error waits
        marks = self._comm.allgather(len(writer.fragments))
        return Shrink(shape, writer.epoch, tuple(marks))

    # --- names -------------------------------------------------------------------------

    def free_name(self, path: str) -> str:
        """The name a new object or link at ``path`` gets: its groups followed
        through links. ValueError if that name is taken."""
        name = self.namespace.locate(path)
        if self.namespace.taken(name):
            raise ValueError(f"{self.where}: {path!r} already exists")
        return name

    def add_name(self, name: str) -> None:
        """Record the new ``name`` in its group, making missing groups on the way."""
        parts = name.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:depth])
            if parent in self.namespace.groups:
                continue
            if self.namespace.taken(parent):
                raise ValueError(f"{self.where}: {parent!r} is not a group")
            self.namespace.groups.add(parent)
            self.namespace.name(parent)
        self.namespace.name(name)
