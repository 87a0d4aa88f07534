"""The checks of a new dataset: shape, maxshape, dtype, fill value, dimensions,
hints. Everything is refused here, at `create_dataset`, that could not be
stored or read back (docs/architecture.md §2): nothing a commit publishes
may be unreadable.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from esdm_hpc import codecs, external, serialisation, strings
from esdm_hpc.encoding import VLEN, is_vlen
from esdm_hpc.namespace import DatasetMeta
from esdm_hpc.strings import STRING, is_string, names_string

# serialisation: "C" (row-major) or "hilbert" fragments; statistics: keep
# min/max per fragment (costs a pass over the data at write); codecs: the
# pipeline fragments are stored through (esdm_hpc/codecs.py); filters: the HDF5
# filters a program set, reported back to it (esdm_hpc/vol/filters.py)
# virtual: the mappings of an HDF5 virtual dataset, which the connector reads
# through (esdm_hpc/vol, vol_plugin/src/virtual.c); the core keeps them; external:
# files that hold the raw data instead of fragments (esdm_hpc/external.py)
KNOWN_HINTS = {"serialisation", "statistics", "chunks", "codecs", "filters", "virtual", "external"}


def dataset_meta(
    path: str,
    shape: Any,
    dtype: Any,
    *,
    epoch: int,
    maxshape: Any = None,
    dims: Any = None,
    fillvalue: Any = None,
    hints: dict[str, Any] | None = None,
    null: bool = False,
) -> DatasetMeta:
    """null: a dataset of HDF5's null dataspace (data=Empty(dtype)): no shape, no elements."""
    if null:
        if shape is not None or maxshape is not None:
            raise ValueError(f"{path}: an Empty dataset has no shape or maxshape")
        shape = (0,)
    if shape is None:
        raise ValueError(f"{path}: create_dataset needs a shape (or data)")
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    if not all(isinstance(s, int | np.integer) and s >= 0 for s in shape):
        raise ValueError(f"{path}: shape must be non-negative integers, not {shape}")
    shape = tuple(int(s) for s in shape)
    try:
        dt = _string(dtype) if names_string(dtype) else np.dtype("f8" if dtype is None else dtype)
    except (TypeError, ValueError, SyntaxError) as error:  # numpy's parser, for any string
        raise TypeError(f"{path}: unsupported dtype {dtype!r} ({error})") from None
    if is_vlen(dt) and not is_string(dt):
        dt = _sequences(path, np.dtype(dt.metadata[VLEN]))
    if not is_string(dt):
        if dt.hasobject:
            raise TypeError(
                f"{path}: dtype {dt} holds Python objects; use str for variable-length strings"
            )
        if _has_kind(dt, "Mm"):
            raise TypeError(
                f"{path}: dtype {dt} (datetime64/timedelta64) is not supported; store times "
                "as numbers with a units attribute, as CF and netCDF do"
            )
        if dt.itemsize == 0:
            raise TypeError(f"{path}: dtype {dt} has no bytes per element; nothing could be stored")
        if dt.subdtype is not None:
            raise TypeError(
                f"{path}: dtype {dt} is an array type; give its shape {dt.shape} to the dataset"
            )
    maxshape = shape if maxshape is None else tuple(maxshape)
    if len(maxshape) != len(shape) or any(
        m is not None and (not isinstance(m, int | np.integer) or m < s)
        for m, s in zip(maxshape, shape, strict=True)
    ):
        raise ValueError(f"{path}: maxshape {maxshape} must be None or >= shape {shape} per axis")
    dims = tuple(f"dim_{i}" for i in range(len(shape))) if dims is None else tuple(dims)
    if len(dims) != len(shape) or not all(isinstance(d, str) and d for d in dims):
        raise ValueError(f"{path}: dims must name each of the {len(shape)} dimensions")
    hints = dict(hints or {})
    unknown = set(hints) - KNOWN_HINTS
    if unknown:
        raise ValueError(f"{path}: unknown hints {sorted(unknown)} (known: {sorted(KNOWN_HINTS)})")
    serialisation.check_hint(path, hints, dt)
    external.checked_hint(path, hints, dt, int(np.prod(shape, dtype=np.int64)))
    hints.update(codecs.checked_hint(path, hints, dt))
    if "chunks" in hints:
        chunks = hints["chunks"]
        if not isinstance(chunks, list | tuple) or len(chunks) != len(shape):
            raise ValueError(f"{path}: hints['chunks'] needs one size per dimension")
        if not all(isinstance(c, int | np.integer) and c > 0 for c in chunks):
            raise ValueError(f"{path}: hints['chunks'] must be positive integers, not {chunks}")
        hints["chunks"] = [int(c) for c in chunks]
    if strings.sequence_base(dt) is not None:
        if fillvalue is not None:
            raise ValueError(f"{path}: a dataset of sequences takes no fillvalue (empty ones)")
        fill = np.asarray("", dtype=STRING)
    elif is_string(dt):
        fill = strings.checked(np.asarray("" if fillvalue is None else fillvalue), path)
        if fill.size != 1:
            raise ValueError(f"{path}: fillvalue must be one string, not {fillvalue!r}")
        # as readers will see it: bytes are stored as UTF-8 and read back as str
        fill = np.asarray(strings.text(strings.utf8(fill.reshape(-1)[0])), dtype=STRING)
    else:
        fill = np.zeros((), dtype=dt) if fillvalue is None else _fill(path, fillvalue, dt)
    return DatasetMeta(
        path=path,
        shape=shape,
        maxshape=tuple(None if m is None else int(m) for m in maxshape),
        dtype=dt,
        fillvalue=fill.reshape(()),
        dims=dims,
        created_epoch=epoch,
        hints=hints,
        null=null,
    )


def _string(dtype: Any) -> np.dtype:
    """The stored dtype of strings ``dtype`` names: itself if it is one (keeping
    its metadata: the character set HDF5 named), else `STRING`."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        return STRING
    return resolved if is_string(resolved) else STRING


def _sequences(path: str, base: np.dtype) -> np.dtype:
    """The stored dtype of a dataset of variable-length sequences of ``base``, which
    must be a fixed-size type (`esdm_hpc.strings.sequences_of`)."""
    if base.hasobject or base.itemsize == 0 or _has_kind(base, "Mm"):
        raise TypeError(f"{path}: sequences of {base} are not supported (only of fixed-size types)")
    return strings.sequences_of(base)


def _has_kind(dtype: np.dtype, kinds: str) -> bool:
    """Whether ``dtype`` or any field or element type in it is of one of ``kinds``."""
    if dtype.fields:
        return any(_has_kind(field[0], kinds) for field in dtype.fields.values())
    if dtype.subdtype is not None:
        return _has_kind(dtype.subdtype[0], kinds)
    return dtype.kind in kinds


def _fill(path: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """``value`` as a 0-d array of ``dtype``; ValueError unless it is one value of it
    that converts as it is (no wrap-around, rounding to an integer, overflow to
    infinity or lost imaginary part: numpy's casts do all of these silently)."""
    not_a_value = ValueError(f"{path}: fillvalue {value!r} is not a value of {dtype}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # overflow, invalid value, ComplexWarning
            # a compound's value may be a tuple of its fields
            fill = np.array(value, dtype=dtype) if dtype.names else np.asarray(value)
            if fill.size != 1:
                raise ValueError(f"{path}: fillvalue must be one value of {dtype}, not {value!r}")
            converted = fill.astype(dtype)
    except (TypeError, ValueError, OverflowError, Warning) as error:
        if str(error).startswith(f"{path}: "):
            raise
        raise ValueError(f"{not_a_value} ({error})") from None
    # numbers too large for numpy arrive as an object array of a Python int
    exact = dtype.kind in "biu" and isinstance(fill.item(), int | float | complex)
    if exact and converted.item() != fill.item():
        raise not_a_value
    return converted.reshape(())
