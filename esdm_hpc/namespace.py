"""The namespace of a container: groups, datasets and their attributes.

It is small (no data), copied whole into every manifest, and changed only by
collective calls, so every rank holds an identical copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from esdm_hpc.encoding import array_from_json, array_to_json, dtype_from_json, dtype_to_json

UNLIMITED = None


@dataclass(frozen=True, slots=True)
class DatasetMeta:
    path: str
    shape: tuple[int, ...]
    maxshape: tuple[int | None, ...]
    dtype: np.dtype
    fillvalue: np.ndarray  # 0-d array of ``dtype``
    dims: tuple[str, ...]
    # the epoch committed when the dataset was created: its own fragments are
    # all newer; older ones of the same path belong to a dataset it replaced
    created_epoch: int = 0
    hints: dict[str, Any] = field(default_factory=dict)

    def resized(self, shape: tuple[int, ...]) -> DatasetMeta:
        return replace(self, shape=shape)

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "maxshape": list(self.maxshape),
            "dtype": dtype_to_json(self.dtype),
            "fillvalue": array_to_json(self.fillvalue),
            "dims": list(self.dims),
            "created_epoch": self.created_epoch,
            "hints": self.hints,
        }

    @classmethod
    def from_json(cls, path: str, record: dict[str, Any]) -> DatasetMeta:
        return cls(
            path=path,
            shape=tuple(record["shape"]),
            maxshape=tuple(record["maxshape"]),
            dtype=dtype_from_json(record["dtype"]),
            fillvalue=array_from_json(record["fillvalue"]),
            dims=tuple(record["dims"]),
            created_epoch=record["created_epoch"],
            hints=record["hints"],
        )


@dataclass(slots=True)
class Namespace:
    groups: set[str] = field(default_factory=lambda: {"/"})
    datasets: dict[str, DatasetMeta] = field(default_factory=dict)
    attributes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "groups": sorted(self.groups),
            "datasets": {p: d.to_json() for p, d in sorted(self.datasets.items())},
            "attributes": {
                p: {k: array_to_json(v) for k, v in sorted(attrs.items())}
                for p, attrs in sorted(self.attributes.items())
                if attrs
            },
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Namespace:
        return cls(
            groups=set(record["groups"]),
            datasets={p: DatasetMeta.from_json(p, d) for p, d in record["datasets"].items()},
            attributes={
                p: {k: array_from_json(v) for k, v in attrs.items()}
                for p, attrs in record["attributes"].items()
            },
        )

    def exists(self, path: str) -> bool:
        return path in self.groups or path in self.datasets

    def children(self, group: str) -> list[str]:
        prefix = group.rstrip("/") + "/"
        names = {
            p[len(prefix) :].split("/", 1)[0]
            for p in (*self.groups, *self.datasets)
            if p.startswith(prefix) and p != prefix
        }
        return sorted(names)
