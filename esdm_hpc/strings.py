"""Variable-length strings: their dtype, and how a fragment of them is laid out.

A dataset of variable-length strings (HDF5's, netCDF-4's ``string`` type)
holds Python ``str`` in object arrays, with h5py's spelling of the dtype.
Its elements have no fixed size, so a fragment of them is not a C-ordered
array: it is the UTF-8 end offset of every element (little-endian uint64,
in C order), then the UTF-8 bytes one after another. The checksum blocks
cover both, as for any fragment; a reader reads the whole fragment
(`esdm_hpc.serialisation.Strings`).

A dataset of variable-length sequences of a fixed-size type (h5py's
``vlen_dtype``) is stored the same way: each element a string of the
sequence's values in that type, their bytes as `text` keeps undecodable
input. Its stored dtype is a string dtype naming the element type
(`sequences_of`); `esdm_hpc.dataset.Dataset` shows object arrays of arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STRING = np.dtype("O", metadata={"vlen": str})
SEQUENCE = "sequence"  # metadata of a stored dtype of sequences: their element type
_END = np.dtype("<u8")


def is_string(dtype: np.dtype) -> bool:
    return dtype.kind == "O" and (dtype.metadata or {}).get("vlen") is str


def sequences_of(base: np.dtype) -> np.dtype:
    """The stored dtype of a dataset of variable-length sequences of ``base``."""
    return np.dtype("O", metadata={"vlen": str, SEQUENCE: np.dtype(base)})


def sequence_base(dtype: np.dtype) -> np.dtype | None:
    """The element type of a stored dtype of sequences (`sequences_of`), else None."""
    return (dtype.metadata or {}).get(SEQUENCE) if is_string(dtype) else None


def sequences_as_text(values: Any, base: np.dtype, what: str) -> np.ndarray:
    """Sequences (an array of arrays, or of anything ``base`` takes) as the strings
    that store them; TypeError naming ``what`` for one that is no sequence of it."""
    array = np.asarray(values, dtype=object)
    stored = np.empty(array.shape, dtype=STRING)
    for index, value in np.ndenumerate(array):
        try:
            sequence = np.asarray(value, dtype=base)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{what}: {value!r} is no sequence of {base} ({error})") from None
        if sequence.ndim != 1:
            raise TypeError(f"{what}: a sequence of {base} has one dimension, not {sequence.shape}")
        stored[index] = text(sequence.tobytes())
    return stored


def text_as_sequences(stored: np.ndarray, base: np.dtype, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (an object array of ``stored``'s shape) with the sequences the
    strings ``stored`` hold; returns it."""
    for index, value in np.ndenumerate(stored):
        out[index] = np.frombuffer(utf8(value), dtype=base).copy()
    return out


def names_string(dtype: Any) -> bool:
    """Whether a dtype argument asks for variable-length strings: ``str``,
    numpy's ``StringDType``, h5py's ``string_dtype()``, or plain ``object``
    (strings are the only objects a dataset holds)."""
    if dtype is str:
        return True
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        return False
    plain_object = resolved.kind == "O" and not resolved.metadata
    return resolved.kind == "T" or plain_object or is_string(resolved)


def checked(values: np.ndarray, what: str) -> np.ndarray:
    """``values`` as an array of ``STRING``; TypeError naming ``what`` for an
    element that is not text (``str`` or UTF-8 ``bytes``)."""
    converted = values.astype(STRING, copy=values.dtype.kind in "UST")
    for value in converted.reshape(-1):
        if isinstance(value, bytes):
            continue
        if not isinstance(value, str):
            raise TypeError(f"{what}: cannot store {type(value).__name__} {value} as a string")
        try:  # refused now, not in the writer, where it would fail the whole epoch
            utf8(value)
        except UnicodeEncodeError as error:
            raise ValueError(f"{what}: {value!r} is not valid text ({error.reason})") from None
    return converted


def encode(values: np.ndarray) -> np.ndarray:
    """The fragment bytes (uint8) of an array of strings."""
    items = [utf8(value) for value in values.reshape(-1)]
    ends = np.cumsum([len(item) for item in items], dtype=np.uint64).astype(_END)
    header = ends.view(np.uint8)
    payload = np.empty(header.nbytes + int(ends[-1] if len(ends) else 0), dtype=np.uint8)
    payload[: header.nbytes] = header
    payload[header.nbytes :] = np.frombuffer(b"".join(items), dtype=np.uint8)
    return payload


def decode(payload: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The array of strings of shape ``shape`` that ``encode`` laid out as ``payload``."""
    raw = memoryview(payload).cast("B")
    n = int(np.prod(shape, dtype=np.int64))
    ends = np.frombuffer(raw, dtype=_END, count=n).tolist()
    data = bytes(raw[n * _END.itemsize :])
    values = np.empty(n, dtype=STRING)
    start = 0
    for i, end in enumerate(ends):
        values[i] = text(data[start:end])
        start = end
    return values.reshape(shape)


def utf8(value: Any) -> bytes:
    """A string as UTF-8 bytes (bytes as they are); undecodable input survives."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def text(value: bytes | None) -> str:
    """UTF-8 bytes (None: a C null pointer) as a string, the inverse of `utf8`."""
    return "" if value is None else value.decode("utf-8", "surrogateescape")
