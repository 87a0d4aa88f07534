"""JSON-safe encodings of numpy dtypes and values, for manifests and attributes.

Manifests are JSON so they can be read by any tool; numpy types need a
lossless spelling there: dtypes by their ``descr`` (which covers compound,
string and enum-like integer types) and values as base64 of their bytes.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.lib import format as npformat


def dtype_to_json(dtype: np.dtype) -> Any:
    if dtype.hasobject:
        raise ValueError(f"dtype {dtype} holds Python objects and cannot be stored")
    return npformat.dtype_to_descr(np.dtype(dtype))


def dtype_from_json(descr: Any) -> np.dtype:
    return npformat.descr_to_dtype(_descr_from_json(descr))


def _descr_from_json(descr: Any) -> Any:
    # JSON turns a compound descr's (name, type[, shape]) tuples into lists.
    if not isinstance(descr, list):
        return descr
    return [_field_from_json(*field) for field in descr]


def _field_from_json(name: str, type_: Any, shape: list[int] | None = None) -> tuple:
    field = (name, _descr_from_json(type_))
    return field if shape is None else (*field, tuple(shape))


def array_to_json(value: np.ndarray) -> dict[str, Any]:
    array = np.asarray(value)  # not ascontiguousarray: it turns 0-d into 1-d
    return {
        "dtype": dtype_to_json(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(array.tobytes(order="C")).decode("ascii"),
    }


def array_from_json(record: dict[str, Any]) -> np.ndarray:
    dtype = dtype_from_json(record["dtype"])
    data = base64.b64decode(record["data"])
    return np.frombuffer(data, dtype=dtype).reshape(tuple(record["shape"])).copy()
