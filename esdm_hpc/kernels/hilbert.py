"""Hilbert space-filling curve: point keys and Hilbert-ordered block layout.

The curve is Hamilton's ("Compact Hilbert Indices", 2006) in 2, 3 or 4
dimensions.  It starts at the origin and consecutive keys are grid neighbours,
so sorting by key keeps spatially close data close in a file or on a rank.
``bits`` is the curve order (bits per coordinate): the curve covers the cube
``[0, 2**bits)**ndim`` and keys have ``ndim * bits <= 64`` bits.  Note that
the curve of order ``bits`` is not a prefix of the curve of order ``bits + 1``
(the sub-curve is rotated), so keys are only comparable at equal ``bits``.

``serialise`` lays a 2-D or 3-D block out in the Hilbert order of the
smallest power-of-two grid holding it, so the block's cells in any aligned
power-of-two sub-cube of that grid form one contiguous run of the buffer;
``deserialise`` restores the block.

Bad arguments raise ValueError naming the argument.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from esdm_hpc.kernels import _hilbert

NDIMS = (2, 3, 4)
BLOCK_NDIMS = (2, 3)
KEY_BITS = 64


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, not {type(value).__name__}")
    return int(value)


def _integer_array(values: npt.ArrayLike, name: str) -> np.ndarray:
    """``values`` as a C-contiguous native-endian integer array, the form the C kernels read."""
    array = np.asarray(values)
    if array.size == 0 and not isinstance(values, np.ndarray):
        array = array.astype(np.int64)  # numpy makes float arrays of empty lists
    if array.dtype.kind not in "ui":
        raise ValueError(f"{name} must have an integer dtype, not {array.dtype}")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return np.ascontiguousarray(array)


def _curve_order(bits: object, ndim: int, default: int) -> int:
    bits = default if bits is None else _integer(bits, "bits")
    if bits < 1:
        raise ValueError(f"bits must be at least 1, got {bits}")
    if ndim * bits > KEY_BITS:
        raise ValueError(f"bits must keep ndim*bits <= {KEY_BITS}, got {ndim}*{bits}")
    return bits


def encode(points: npt.ArrayLike, bits: int | None = None) -> npt.NDArray[np.uint64]:
    """Hilbert keys of ``points``, an (N, ndim) array of non-negative integers, ndim 2..4.

    ``bits`` defaults to the largest order both the dtype and 64-bit keys allow,
    ``min(8 * itemsize, 64 // ndim)``.  Every coordinate must be below ``2**bits``.
    """
    points = _integer_array(points, "points")
    if points.ndim != 2 or points.shape[1] not in NDIMS:
        raise ValueError(
            f"points must have shape (N, ndim) with ndim in {NDIMS}, got {points.shape}"
        )
    count, ndim = points.shape
    width = points.dtype.itemsize
    bits = _curve_order(bits, ndim, default=min(8 * width, KEY_BITS // ndim))
    valid_bits = bits
    if points.dtype.kind == "i":
        # The kernel reads unsigned items: negatives turn into values at or above
        # the sign bit, which the range check then rejects.
        points = points.view(f"u{width}")
        valid_bits = min(bits, 8 * width - 1)
    keys = np.empty(count, np.uint64)
    _hilbert.encode(points, bits, valid_bits, keys)
    return keys


def decode(keys: npt.ArrayLike, ndim: int, bits: int | None = None) -> npt.NDArray[np.uint64]:
    """Coordinates, an (N, ndim) uint64 array, of the 1-D integer ``keys``.

    ``bits`` defaults to ``64 // ndim``; every key must be below ``2**(ndim * bits)``.
    """
    ndim = _integer(ndim, "ndim")
    if ndim not in NDIMS:
        raise ValueError(f"ndim must be one of {NDIMS}, got {ndim}")
    keys = _integer_array(keys, "keys")
    if keys.ndim != 1:
        raise ValueError(f"keys must be one-dimensional, got shape {keys.shape}")
    bits = _curve_order(bits, ndim, default=KEY_BITS // ndim)
    if keys.dtype.kind == "i" and (keys < 0).any():
        raise ValueError("keys must be non-negative")
    keys = keys.astype(np.uint64, copy=False)
    points = np.empty((keys.size, ndim), np.uint64)
    _hilbert.decode(keys, bits, points)
    return points


def _block_shape(shape: object, name: str) -> tuple[int, ...]:
    if not isinstance(shape, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of extents, not {type(shape).__name__}")
    extents = tuple(_integer(extent, name) for extent in shape)
    if len(extents) not in BLOCK_NDIMS:
        raise ValueError(f"{name} must have 2 or 3 extents, got {extents}")
    if min(extents) < 0:
        raise ValueError(f"{name} must have non-negative extents, got {extents}")
    if math.prod(extents) > np.iinfo(np.intp).max:
        raise ValueError(f"{name} has more elements than an index can count: {extents}")
    return extents


def order(shape: Sequence[int]) -> npt.NDArray[np.intp]:
    """The C-order flat indices of a 2-D or 3-D block of ``shape``, in Hilbert order.

    The order is that of the smallest power-of-two cube holding the block, with the
    cells outside the block left out.  The result is cached and read-only.
    """
    return _order(_block_shape(shape, "shape"))


@functools.lru_cache(maxsize=16)  # a writer serialises many blocks of few shapes
def _order(shape: tuple[int, ...]) -> npt.NDArray[np.intp]:
    permutation = np.empty(math.prod(shape), np.intp)
    _hilbert.order(shape, permutation)
    permutation.flags.writeable = False
    return permutation


def serialise(block: npt.ArrayLike) -> np.ndarray:
    """The elements of a 2-D or 3-D ``block`` (any dtype) as a 1-D array in Hilbert order."""
    block = np.asarray(block)
    if block.ndim not in BLOCK_NDIMS:
        raise ValueError(f"block must be 2-D or 3-D, got {block.ndim}-D")
    return np.take(block, order(block.shape))  # take flattens in C order


def deserialise(buffer: npt.ArrayLike, shape: Sequence[int]) -> np.ndarray:
    """The block of ``shape`` whose serialisation is the 1-D ``buffer``."""
    extents = _block_shape(shape, "shape")
    permutation = _order(extents)
    buffer = np.asarray(buffer)
    if buffer.shape != permutation.shape:
        raise ValueError(
            f"buffer must be 1-D with prod(shape) = {permutation.size} elements, "
            f"got shape {buffer.shape}"
        )
    block = np.empty(permutation.size, buffer.dtype)
    block[permutation] = buffer
    return block.reshape(extents)
