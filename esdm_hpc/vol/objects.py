"""The handles the C shim holds, one per open HDF5 object.

The C side keeps a strong reference to one of these for every file, group,
dataset and attribute ID the application has open, and passes it back with
each call. They are deliberately thin: a path into the container's
namespace, never a cached copy of its metadata, so that a handle sees what
the namespace says now (a resize, a new attribute) just as an HDF5 ID does.
A dataset handle keeps its core `Dataset`, which is such a path too.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from esdm_hpc.container import Container
from esdm_hpc.dataset import Dataset
from esdm_hpc.group import Group, NamedDatatype
from esdm_hpc.namespace import ExternalLinkFound


class Kind(IntEnum):
    """Object kinds as the C side numbers them (vol_plugin/src/esdm_vol.h, esdm_kind_t)."""

    NONE = 0
    GROUP = 1
    DATASET = 2
    DATATYPE = 5


@dataclass(eq=False, slots=True)
class FileHandle:
    """An open container. As an HDF5 location it is the root group."""

    container: Container
    filename: str  # the name the application gave HDF5
    key: tuple[str, str] = ("", "")  # the container's among those open (bridge.file_open)

    @property
    def file(self) -> FileHandle:
        return self

    @property
    def path(self) -> str:
        return "/"

    @property
    def hdf5_name(self) -> str:
        """What H5Iget_name reports."""
        return "/"


@dataclass(eq=False, slots=True, weakref_slot=True)
class NodeHandle:
    """An open group, dataset or named datatype; ``path`` is its identity (namespace.py)."""

    file: FileHandle
    path: str
    kind: Kind
    _dataset: Dataset | None = field(default=None, init=False, repr=False)

    @property
    def hdf5_name(self) -> str:
        """What H5Iget_name reports: the identity, or where that name is gone (moved,
        deleted under a hard link, never given: anonymous) a link to the object,
        "" if none is left."""
        namespace = self.file.container.namespace
        if self.path not in namespace.unlinked:
            return self.path
        links = namespace.links.items()
        return next((n for n, k in links if k.kind == "hard" and k.target == self.path), "")

    def follow(self, identity: str) -> None:
        """The object has the identity ``identity`` now (an anonymous one took its
        first link's name)."""
        self.path = identity
        self._dataset = None

    def datatype(self) -> NamedDatatype:
        found = self.file.container[self.path]
        if not isinstance(found, NamedDatatype):
            raise TypeError(f"{self.path} is not a named datatype")
        return found

    def dataset(self) -> Dataset:
        # Resolved once, not per H5Dwrite: a Dataset looks its metadata up by
        # identity at every use, so it follows resizes, new epochs and deletes
        # by itself; the identity it holds is the handle's (see `follow`).
        if self._dataset is None:
            if self.kind is not Kind.DATASET:
                raise TypeError(f"{self.path} is a group, not a dataset")
            node = self.file.container[self.path]
            assert isinstance(node, Dataset)
            self._dataset = node
        return self._dataset


@dataclass(eq=False, slots=True)
class AttributeHandle:
    """An open attribute of a group or dataset."""

    file: FileHandle
    owner: str  # path of the group or dataset it belongs to
    name: str

    @property
    def path(self) -> str:
        """HDF5 names an attribute by the object it is attached to (H5Iget_name)."""
        return self.owner

    @property
    def hdf5_name(self) -> str:
        return self.owner

    def stored(self) -> np.ndarray:
        """The value as the namespace stores it (not the decoded view ``attrs[name]`` gives)."""
        # The raw array is what HDF5 needs: ``attrs[name]`` turns 0-d byte
        # strings into str, which would lose the fixed-length type.
        stored = self.file.container.namespace.attributes.get(self.owner, {})
        try:
            return stored[self.name]
        except KeyError:
            raise KeyError(f"{self.owner} has no attribute {self.name!r}") from None


Location = FileHandle | NodeHandle


def resolve(location: Location, name: str) -> str:
    """The object ``name`` names relative to ``location`` (unless it starts with '/'):
    its identity, following links, or for a new object the name it will get."""
    namespace = location.file.container.namespace
    path = absolute(location, name)
    try:
        return namespace.resolve(path)
    except ExternalLinkFound:
        raise  # the object is in another container (bridge.object_open follows it)
    except KeyError:
        return namespace.locate(path)


def link_name(location: Location, name: str) -> str:
    """The link ``name`` names: its groups followed through links, itself not."""
    return location.file.container.namespace.locate(absolute(location, name))


def absolute(location: Location, name: str) -> str:
    """``name`` relative to ``location`` as an absolute path, no link followed."""
    if not name:
        raise ValueError("HDF5 names are non-empty")
    # normpath keeps a leading "//" (POSIX allows it a meaning); HDF5 does not
    return "/" + posixpath.normpath(posixpath.join(location.path, name)).lstrip("/")


def node(file: FileHandle, path: str) -> NodeHandle:
    """A handle on the group or dataset at ``path``; KeyError if there is none."""
    kind = kind_of(file, path)
    if kind is Kind.NONE:
        raise KeyError(f"{file.container.uri}: no object {path!r}")
    return NodeHandle(file, path, kind)


def kind_of(file: FileHandle, path: str) -> Kind:
    try:
        found = file.container[path]
    except ExternalLinkFound:
        raise
    except KeyError:
        return Kind.NONE
    if isinstance(found, NamedDatatype):
        return Kind.DATATYPE
    return Kind.DATASET if isinstance(found, Dataset) else Kind.GROUP


def group(file: FileHandle, path: str) -> Group:
    found = file.container if path == "/" else file.container[path]
    if not isinstance(found, Group):
        raise TypeError(f"{path} is a dataset, not a group")
    return found
