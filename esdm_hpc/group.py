"""Groups: the hierarchical namespace of a container, as in HDF5.

Members are reached through links: an object's own name, hard links (more
names for it), soft links (paths followed when used) and external links
(paths in another container, which the VOL connector follows); see
namespace.py.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esdm_hpc.attributes import Attributes
from esdm_hpc.copying import CopyOptions
from esdm_hpc.dataset import Dataset
from esdm_hpc.namespace import ExternalLinkFound, Link
from esdm_hpc.node import Node

if TYPE_CHECKING:
    from esdm_hpc.container import Container


@dataclass(frozen=True, slots=True)
class NamedDatatype:
    """A datatype stored as an object of its own (HDF5's committed datatype); like
    any object it may carry attributes."""

    name: str
    spelling: Any  # as the VOL bridge spells types (esdm_hpc.vol.dtypes), JSON
    _container: Container = field(repr=False, compare=False)

    @property
    def attrs(self) -> Attributes:
        return Attributes(self._container, self.name)

    @property
    def container(self) -> Container:
        return self._container


class Group(Node):
    def _path(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"names are non-empty strings, not {name!r}")
        path = posixpath.normpath(posixpath.join(self.name, name))
        return "/" if path in ("/", "//") else path

    def create_group(self, name: str, track_order: bool = False) -> Group:
        """A new group (collective); parents are created as needed. With
        ``track_order`` its members list in creation order (`keys`)."""
        path = self._container.edit("create_group").create_group(self._path(name), track_order)
        return Group(self._container, path)

    def require_group(self, name: str) -> Group:
        if name in self:
            found = self[name]
            if isinstance(found, Group):
                return found
        return self.create_group(name)

    def create_dataset(
        self, name: str, shape: Any = None, dtype: Any = None, **options: Any
    ) -> Dataset:
        """A new dataset (collective). Options: data, maxshape, dims, fillvalue, hints."""
        path = self._path(name)
        self._container.create_dataset_at(path, shape, dtype, **options)
        return Dataset(self._container, path)

    def __getitem__(self, name: str) -> Group | Dataset | NamedDatatype:
        """The object ``name`` leads to, following links."""
        path = self._path(name)
        namespace = self._container.namespace
        try:
            identity = namespace.resolve(path)
        except ExternalLinkFound:
            raise  # its own type: the caller may open the other container
        except KeyError as error:
            raise KeyError(f"{self._container.uri}: {path!r}: {error.args[0]}") from None
        if identity in namespace.datasets:
            return Dataset(self._container, identity)
        if identity in namespace.datatypes:
            return NamedDatatype(identity, namespace.datatypes[identity], self._container)
        return Group(self._container, identity)

    def __delitem__(self, name: str) -> None:
        """Delete the link ``name`` (collective); the object goes with its last name."""
        self._container.edit("delete_link").delete_link(self._path(name))

    def link(self, name: str) -> Link:
        """How ``name`` is linked: a hard link to the object's identity, a soft,
        external or user-defined link."""
        namespace = self._container.namespace
        return namespace.link(namespace.locate(self._path(name)))

    def create_hard_link(self, name: str, target: str) -> None:
        """Another name for the object at ``target`` (collective)."""
        self._container.edit("create_link").create_link(
            self._path(name), Link("hard", self._path(target))
        )

    def create_soft_link(self, name: str, target: str) -> None:
        """A link holding the path ``target``, followed when used; it may dangle (collective)."""
        self._container.edit("create_link").create_link(self._path(name), Link("soft", target))

    def create_external_link(self, name: str, file: str, path: str) -> None:
        """A link to the object at ``path`` in the container or HDF5 file ``file``
        (collective). The VOL connector follows it; here ``self[name]`` names it
        in its KeyError."""
        target = posixpath.normpath(posixpath.join("/", path))
        self._container.edit("create_link").create_link(
            self._path(name), Link("external", target, file)
        )

    def move(self, source: str, destination: str) -> None:
        """Rename the link ``source`` to ``destination`` (collective), as h5py's
        ``Group.move``; the object keeps its identity and its data."""
        self._container.edit("move").move_link(self._path(source), self._path(destination))

    def copy(
        self,
        source: str | Group | Dataset | NamedDatatype,
        destination: str,
        *,
        shallow: bool = False,
        expand_soft: bool = False,
        without_attrs: bool = False,
    ) -> Group | Dataset | NamedDatatype:
        """Copy the object ``source`` (a path, or an object of this or another
        container) with what it holds to ``destination`` (collective), as h5py's
        ``Group.copy``. Within the container datasets share their committed
        bytes with the original; from another container they are read as its
        readers see them and written anew (see copying.py). ``shallow`` copies
        a group's own members only, ``expand_soft`` the objects soft links lead
        to instead of the links."""
        options = CopyOptions(
            attributes=not without_attrs, shallow=shallow, expand_soft_links=expand_soft
        )
        origin = None
        if not isinstance(source, str):
            if source.container is not self._container:
                origin = source.container
            source = source.name
        self._container.copy_at(self._path(source), self._path(destination), options, origin)
        return self[destination]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._container.namespace.exists(self._path(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> list[str]:
        """Member names in creation order if the group tracks it, else in name order."""
        namespace = self._container.namespace
        if self.name in namespace.ordered:
            return namespace.children_by_order(self.name)
        return namespace.children(self.name)

    def items(self) -> list[tuple[str, Group | Dataset | NamedDatatype]]:
        return [(k, self[k]) for k in self.keys()]

    def visit_datasets(self) -> Iterator[Dataset]:
        prefix = self.name.rstrip("/") + "/"
        for path in sorted(self._container.namespace.datasets):
            if path.startswith(prefix):
                yield Dataset(self._container, path)

    def __repr__(self) -> str:
        return f'<esdm Group "{self.name}" ({len(self)} members)>'
