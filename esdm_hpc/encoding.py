"""JSON-safe encodings of numpy dtypes and values, for manifests and attributes.

Manifests are JSON so they can be read by any tool; numpy types need a
lossless spelling there, and values are base64 of their bytes. A dtype is

- ``dtype.str`` for a plain type (``"<f8"``, ``"|S16"``);
- numpy's own dict form for a structured type, member types encoded the same
  way: ``{"names": [...], "formats": [...], "offsets": [...], "itemsize": n}``
  (offsets kept, so padded and out-of-order layouts such as HDF5 compounds
  survive);
- ``{"subarray": type, "shape": [...]}`` for a structured type's array member;
- ``{"vlen": "str"}`` for variable-length strings (`esdm_hpc.strings`), their
  values laid out as in a fragment; ``{"vlen": "str", "sequence": type}`` for
  the stored dtype of a dataset of sequences of ``type`` (`strings.sequences_of`);
- ``{"vlen": type}`` for variable-length sequences: object arrays of arrays,
  dtype ``object`` with metadata ``{"vlen": type}`` as h5py spells them
  (attributes only); their values are stored one after the other, with
  their ``lengths``;
- a value's ``shape`` is null for an `Empty` one (no elements, no shape);
- ``{"dtype": type, "metadata": {...}}`` when the dtype carries metadata the
  HDF5 connector relies on (enum names, opaque tags, bitfields, string
  padding, references, those of compound members; see
  `esdm_hpc.vol.dtypes`). Other metadata is not kept, as numpy's own files
  do not keep it.

Manifests written before structured types had the dict form hold numpy's
``descr`` lists; those still read.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.lib import format as npformat

from esdm_hpc import strings
from esdm_hpc.empty import Empty
from esdm_hpc.strings import STRING, is_string

VLEN = "vlen"
KEPT_METADATA = (
    "enum",
    "opaque_tag",
    "bitfield",
    "strpad",
    "cset",
    "fields",
    "reference",
    "array_element",
)


def dtype_to_json(dtype: np.dtype) -> Any:
    dtype = np.dtype(dtype)
    base = strings.sequence_base(dtype)
    if base is not None:
        return {VLEN: "str", strings.SEQUENCE: dtype_to_json(base)}
    if is_string(dtype):
        cset = (dtype.metadata or {}).get("cset")  # "ascii" of HDF5's strings (esdm_hpc.vol)
        return {VLEN: "str", "cset": cset} if cset else {VLEN: "str"}
    if is_vlen(dtype):
        return {VLEN: dtype_to_json(dtype.metadata[VLEN])}
    if dtype.hasobject:
        raise ValueError(f"dtype {dtype} holds Python objects and cannot be stored")
    plain = _plain_to_json(dtype)
    kept = {key: value for key, value in (dtype.metadata or {}).items() if key in KEPT_METADATA}
    return {"dtype": plain, "metadata": kept} if kept else plain


def _plain_to_json(dtype: np.dtype) -> Any:
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return {"subarray": dtype_to_json(base), "shape": list(shape)}
    if dtype.names is None:
        return dtype.str
    fields = [dtype.fields[name] for name in dtype.names]
    return {
        "names": list(dtype.names),
        "formats": [dtype_to_json(member) for member, *_ in fields],
        "offsets": [offset for _, offset, *_ in fields],
        "itemsize": dtype.itemsize,
    }


def dtype_from_json(record: Any) -> np.dtype:
    if isinstance(record, str):
        return np.dtype(record)
    if isinstance(record, list):
        return npformat.descr_to_dtype(_descr_from_json(record))
    if record.get(VLEN) == "str" and strings.SEQUENCE in record:
        return strings.sequences_of(dtype_from_json(record[strings.SEQUENCE]))
    if record.get(VLEN) == "str" and "cset" in record:
        return np.dtype("O", metadata={VLEN: str, "cset": record["cset"]})
    if record.get(VLEN) == "str":
        return STRING
    if VLEN in record:
        return np.dtype("O", metadata={VLEN: dtype_from_json(record[VLEN])})
    if "metadata" in record:
        return np.dtype(dtype_from_json(record["dtype"]), metadata=record["metadata"])
    if "subarray" in record:
        return np.dtype((dtype_from_json(record["subarray"]), tuple(record["shape"])))
    formats = [dtype_from_json(member) for member in record["formats"]]
    return np.dtype({**record, "formats": formats})


def _descr_from_json(descr: Any) -> Any:
    # JSON turns a compound descr's (name, type[, shape]) tuples into lists.
    if not isinstance(descr, list):
        return descr
    return [_field_from_json(*field) for field in descr]


def _field_from_json(name: str, type_: Any, shape: list[int] | None = None) -> tuple:
    field = (name, _descr_from_json(type_))
    return field if shape is None else (*field, tuple(shape))


def is_vlen(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a variable-length sequence type (h5py's `vlen_dtype`)."""
    return dtype.kind == "O" and VLEN in (dtype.metadata or {})


def array_of(elements: list[Any], dtype: np.dtype) -> np.ndarray:
    """A 1-d array of ``dtype`` holding ``elements`` (sequences, for a variable-length type)."""
    array = np.empty(len(elements), dtype=dtype)
    for i, element in enumerate(elements):
        array[i] = element  # one by one: np.array would stack sequences into dimensions
    return array


def array_to_json(value: np.ndarray | Empty) -> dict[str, Any]:
    if isinstance(value, Empty):
        return {"dtype": dtype_to_json(value.dtype), "shape": None, "data": ""}
    array = np.asarray(value)  # not ascontiguousarray: it turns 0-d into 1-d
    record = {"dtype": dtype_to_json(array.dtype), "shape": list(array.shape)}
    if is_string(array.dtype):
        array = strings.encode(array)
    elif is_vlen(array.dtype):
        base = array.dtype.metadata[VLEN]
        sequences = [np.asarray(s, dtype=base) for s in array.reshape(-1)]
        record["lengths"] = [len(s) for s in sequences]
        array = np.concatenate([np.zeros(0, dtype=base), *sequences])
    return {**record, "data": base64.b64encode(array.tobytes(order="C")).decode("ascii")}


def array_from_json(record: dict[str, Any]) -> np.ndarray | Empty:
    dtype = dtype_from_json(record["dtype"])
    if record["shape"] is None:
        return Empty(dtype)
    data = base64.b64decode(record["data"])
    shape = tuple(record["shape"])
    if is_string(dtype):
        return strings.decode(data, shape)
    if not is_vlen(dtype):
        # a writable array over its own copy of the bytes: ndarray.copy() skips the
        # padding of a structured dtype, which then holds whatever memory held
        return np.frombuffer(bytearray(data), dtype=dtype).reshape(shape)
    values = np.frombuffer(data, dtype=dtype.metadata[VLEN])
    ends = np.cumsum(record["lengths"], dtype=np.int64)
    sequences = [
        values[end - n : end].copy() for n, end in zip(record["lengths"], ends, strict=True)
    ]
    return array_of(sequences, dtype).reshape(shape)
