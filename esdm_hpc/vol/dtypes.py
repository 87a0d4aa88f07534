"""The type spellings the C shim and the core agree on.

A type crosses the bridge as a short string: numpy's ``dtype.str`` for the
types HDF5 and numpy share (``<i4``, ``>u2``, ``<f8``, ``|S16``) and
``vlen-str`` for HDF5's variable-length UTF-8 strings, which the core keeps
as numpy unicode arrays. The C side maps the same strings to HDF5 types
(vol_plugin/src/types.c); anything else is refused on both sides with a
message naming the type.
"""

from __future__ import annotations

import numpy as np

VLEN_STR = "vlen-str"

_FLOAT_SIZES = (2, 4, 8)


def to_numpy(spelling: str) -> np.dtype:
    """The numpy dtype the core stores values of ``spelling`` as."""
    if spelling == VLEN_STR:
        return np.dtype("U")
    try:
        dtype = np.dtype(spelling)
    except TypeError:
        raise TypeError(f"esdm VOL: unknown type spelling {spelling!r}") from None
    return _checked(dtype)


def spelling(dtype: np.dtype) -> str:
    """How the C side is told about values stored with ``dtype``."""
    if dtype.kind == "U":
        return VLEN_STR
    return _checked(dtype).str


def _checked(dtype: np.dtype) -> np.dtype:
    if (
        dtype.kind in "iu"
        or (dtype.kind == "f" and dtype.itemsize in _FLOAT_SIZES)
        or (dtype.kind == "S" and dtype.itemsize > 0)
    ):
        return dtype
    raise TypeError(f"esdm VOL: numpy type {dtype} has no HDF5 counterpart in the connector yet")
