"""Checking box arguments (offsets and counts) once, for every box kernel.

Boxes arrive from users and the core as lists, tuples or arrays of any
integer type; the C kernels want C-contiguous int64 arrays whose ends do not
overflow. Errors name the argument.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from esdm_hpc.kernels._region import MAX_NDIM

INT64_MAX = np.iinfo(np.int64).max


def as_box(offset: npt.ArrayLike, count: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    return _checked_bounds("offset", offset, "count", count, rank=1)


def as_boxes(
    offsets: npt.ArrayLike, counts: npt.ArrayLike, ndim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    offsets, counts = _checked_bounds("offsets", offsets, "counts", counts, rank=2)
    if ndim is not None and offsets.shape[1] != ndim:
        raise ValueError(
            f"offsets: boxes of {offsets.shape[1]} dimensions do not match the box of {ndim}"
        )
    return offsets, counts


def _checked_bounds(
    offset_name: str,
    offset: npt.ArrayLike,
    count_name: str,
    count: npt.ArrayLike,
    rank: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and counts as C-contiguous int64 arrays of `rank` dimensions, checked."""
    offset = as_int64(offset, offset_name)
    count = as_int64(count, count_name)
    if offset.ndim != rank:
        shape = "(ndim,)" if rank == 1 else "(n, ndim)"
        raise ValueError(f"{offset_name} must have shape {shape}, got {offset.shape}")
    if count.shape != offset.shape:
        raise ValueError(
            f"{count_name} must have the shape of {offset_name}, "
            f"got {count.shape} and {offset.shape}"
        )
    ndim = offset.shape[-1]
    if not 1 <= ndim <= MAX_NDIM:
        raise ValueError(f"{offset_name}: boxes must have 1 to {MAX_NDIM} dimensions, got {ndim}")
    if np.any(count < 0):
        raise ValueError(f"{count_name} must be non-negative")
    # Box ends are computed in int64.
    if np.any(offset > INT64_MAX - count):
        raise ValueError(f"{offset_name} + {count_name} overflows int64")
    return offset, count


def as_int64(value: npt.ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):  # also rejects bool
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and np.any(array > INT64_MAX):
        raise ValueError(f"{name} does not fit int64")
    return np.ascontiguousarray(array, dtype=np.int64)
