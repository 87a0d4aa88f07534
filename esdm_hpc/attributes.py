"""Attributes: the scientific metadata of groups and datasets, as a mapping.

Setting or deleting one is collective (every rank must do the same) and
becomes visible to readers with the next commit.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

from esdm_hpc.empty import Empty
from esdm_hpc.encoding import is_vlen

if TYPE_CHECKING:
    from esdm_hpc.container import Container


class Attributes(MutableMapping[str, Any]):
    def __init__(self, container: Container, path: str):
        self._container = container
        self._path = path

    def _mapping(self) -> dict[str, np.ndarray | Empty]:
        return self._container.namespace.attributes.get(self._path, {})

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._mapping()[key]
        except KeyError:
            raise KeyError(f"{self._path} has no attribute {key!r}") from None
        if isinstance(value, Empty):
            return value
        if value.ndim == 0:
            item = value[()]
            return item.decode() if isinstance(item, bytes) else item
        return value.copy()

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError(f"attribute names are non-empty strings, not {key!r}")
        if isinstance(value, Empty):
            self._container.edit("setting an attribute").set_attribute(self._path, key, value)
            return
        array = np.asarray(value)
        if array.dtype.kind == "U" and array.ndim == 0:
            array = np.asarray(str(value).encode())  # stored as bytes, read back as str
        if array.dtype.hasobject and not is_vlen(array.dtype):
            raise TypeError(f"{self._path}: attribute {key!r} of unsupported type {type(value)}")
        self._container.edit("setting an attribute").set_attribute(self._path, key, array)

    def __delitem__(self, key: str) -> None:
        self._container.edit("deleting an attribute").delete_attribute(self._path, key)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._mapping()))

    def in_creation_order(self) -> list[str]:
        """The names in the order the attributes were created (rewriting one keeps its place)."""
        return list(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"<Attributes of {self._path}: {sorted(self._mapping())}>"
