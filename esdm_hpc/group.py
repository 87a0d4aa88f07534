"""Groups: the hierarchical namespace of a container, as in HDF5."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from esdm_hpc.attributes import Attributes
from esdm_hpc.dataset import Dataset

if TYPE_CHECKING:
    from esdm_hpc.container import Container


class Group:
    def __init__(self, container: Container, path: str):
        self._container = container
        self.name = path

    def _path(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"names are non-empty strings, not {name!r}")
        path = posixpath.normpath(posixpath.join(self.name, name))
        return "/" if path in ("/", "//") else path

    @property
    def attrs(self) -> Attributes:
        return Attributes(self._container, self.name)

    def create_group(self, name: str) -> Group:
        """A new group (collective); parents are created as needed."""
        path = self._path(name)
        self._container._create_group(path)
        return Group(self._container, path)

    def require_group(self, name: str) -> Group:
        path = self._path(name)
        if path in self._container._namespace.groups:
            return Group(self._container, path)
        return self.create_group(name)

    def create_dataset(
        self, name: str, shape: Any = None, dtype: Any = None, **options: Any
    ) -> Dataset:
        """A new dataset (collective). Options: data, maxshape, dims, fillvalue, hints."""
        path = self._path(name)
        self._container._create_dataset(path, shape, dtype, **options)
        return Dataset(self._container, path)

    def __getitem__(self, name: str) -> Group | Dataset:
        path = self._path(name)
        namespace = self._container._namespace
        if path in namespace.datasets:
            return Dataset(self._container, path)
        if path in namespace.groups:
            return Group(self._container, path)
        raise KeyError(f"{self._container.uri}: no object {path!r}")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._container._namespace.exists(self._path(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> list[str]:
        return self._container._namespace.children(self.name)

    def items(self) -> list[tuple[str, Group | Dataset]]:
        return [(k, self[k]) for k in self.keys()]

    def visit_datasets(self) -> Iterator[Dataset]:
        prefix = self.name.rstrip("/") + "/"
        for path in sorted(self._container._namespace.datasets):
            if path.startswith(prefix):
                yield Dataset(self._container, path)

    def __repr__(self) -> str:
        return f'<esdm Group "{self.name}" ({len(self)} members)>'
