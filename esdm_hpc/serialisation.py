"""How a fragment's elements are laid out as the bytes stored: one class a layout.

Modelled on zarr-python 3's codecs: a `Serialisation` encodes a piece of a
dataset to the bytes a backend stores and decodes them back, and says what a
reader may do with those bytes short of decoding all of them. A fragment
record names its serialisation (``Fragment.serialisation``); `get` resolves
that name, `for_dataset` chooses the one a writer uses, `check_hint` refuses
hints no writer could follow. A new layout is one subclass, added to
``_REGISTERED``; compression is no layout, but what the serialised bytes go
through after (`esdm_hpc.codecs`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from esdm_hpc import strings
from esdm_hpc.kernels import hilbert
from esdm_hpc.strings import is_string


class Serialisation(ABC):
    name: ClassVar[str]  # as fragment records and hints name it
    # Whether the bytes are the elements in C order, itemsize bytes each, so that
    # a part of a fragment is read as byte ranges of whole checksum blocks and a
    # block holds a known run of elements; otherwise a reader reads the whole
    # fragment and decodes it.
    blocks_addressable: ClassVar[bool] = False
    # Whether hints["serialisation"] may ask for it; otherwise the dtype does.
    hinted: ClassVar[bool] = True

    def lays_out(self, ndim: int) -> bool:
        """Whether it lays out pieces of ``ndim`` axes (others are stored in C order)."""
        return True

    @abstractmethod
    def encode(self, piece: np.ndarray) -> np.ndarray:
        """The bytes to store for ``piece``: a 1-D C-contiguous array (of any dtype)."""

    @abstractmethod
    def decode(self, payload: np.ndarray, count: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The piece of shape ``count`` and ``dtype`` whose bytes (uint8) ``encode`` made."""


class RowMajor(Serialisation):
    name = "C"
    blocks_addressable = True

    def encode(self, piece: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(piece).reshape(-1)

    def decode(self, payload: np.ndarray, count: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return payload.view(dtype).reshape(count)


class Hilbert(Serialisation):
    """Hilbert order (kernels.hilbert): a spatially close sub-block is a short run."""

    name = "hilbert"

    def lays_out(self, ndim: int) -> bool:
        return ndim in hilbert.BLOCK_NDIMS

    def encode(self, piece: np.ndarray) -> np.ndarray:
        return hilbert.serialise(piece)

    def decode(self, payload: np.ndarray, count: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return hilbert.deserialise(payload.view(dtype), count)


class Strings(Serialisation):
    """Variable-length UTF-8 strings, laid out as `esdm_hpc.strings` describes."""

    name = "strings"
    hinted = False  # the only layout of a string dtype, and of nothing else

    def encode(self, piece: np.ndarray) -> np.ndarray:
        return strings.encode(piece)

    def decode(self, payload: np.ndarray, count: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return strings.decode(payload, count)


ROW_MAJOR = RowMajor()  # without a hint, and where the one hinted does not lay out a piece
STRINGS = Strings()
_REGISTERED: tuple[Serialisation, ...] = (ROW_MAJOR, Hilbert(), STRINGS)
_BY_NAME = {s.name: s for s in _REGISTERED}
NAMES = tuple(_BY_NAME)
HINTED = tuple(s.name for s in _REGISTERED if s.hinted)


def get(name: str) -> Serialisation:
    """The serialisation a fragment record names; ValueError for a name no writer
    writes (the record is malformed)."""
    serialisation = _named(name)
    if serialisation is None:
        raise ValueError(f"unknown serialisation {name!r} (known: {', '.join(map(repr, NAMES))})")
    return serialisation


def _named(name: Any) -> Serialisation | None:
    return _BY_NAME.get(name) if isinstance(name, str) else None


def for_dataset(dtype: np.dtype, hints: Mapping[str, Any], ndim: int) -> Serialisation:
    """The serialisation a writer lays out a piece of ``ndim`` axes of a dataset with."""
    if is_string(dtype):
        return STRINGS
    # check_hint lets only HINTED names into a new dataset's hints; a stored one
    # naming another is written in C order, as it always was
    hinted = _named(hints.get("serialisation", ROW_MAJOR.name))
    if hinted is None or not hinted.hinted or not hinted.lays_out(ndim):
        return ROW_MAJOR
    return hinted


def check_hint(path: str, hints: Mapping[str, Any], dtype: np.dtype) -> None:
    """ValueError naming the dataset ``path`` unless ``hints`` ask for a
    serialisation (and statistics) that its ``dtype`` can have."""
    name = hints.get("serialisation", ROW_MAJOR.name)
    if name not in HINTED:  # a tuple: an unhashable name is refused here too
        raise ValueError(f"{path}: hints['serialisation'] is {' or '.join(map(repr, HINTED))}")
    if is_string(dtype) and (hints.get("statistics") or name != ROW_MAJOR.name):
        raise ValueError(f"{path}: strings take no statistics or serialisation hints")
