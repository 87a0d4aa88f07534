"""Attribute values whose memory form HDF5 and numpy do not share, as trees.

An HDF5 reference (``H5R_ref_t``) is a handle and a variable-length
sequence (``hvl_t``) a pointer, so attributes holding either cross the
bridge as trees of plain Python values, which the C side builds and reads
along the HDF5 type (vol_plugin/src/values.c):

- an atomic value: its bytes, in the stored type;
- a compound: a tuple of its members' trees;
- an array member or a variable-length sequence: a list of its elements' trees;
- a reference: the absolute path of the object (None for a null reference).

The core stores a reference as the `digest` of its object's identity (the
bridge maps paths to digests and back), which keeps it valid whatever name
the container is opened by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from esdm_hpc.encoding import array_of
from esdm_hpc.strings import is_string
from esdm_hpc.vol import dtypes

Tree = bytes | str | tuple | list | None

NULL = bytes(dtypes.REFERENCE_SIZE)


def digest(path: str) -> bytes:
    """What the core stores for a reference to the object at ``path``."""
    return hashlib.blake2b(path.encode(), digest_size=dtypes.REFERENCE_SIZE).digest()


def empty(dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A new attribute's value: zeros, empty strings or empty sequences."""
    if is_string(dtype):
        return np.full(shape, "", dtype=dtype)
    if not dtypes.is_vlen(dtype):
        return np.zeros(shape, dtype=dtype)
    base = np.dtype(dtype.metadata[dtypes.VLEN])
    return array_of([np.zeros(0, dtype=base) for _ in range(int(np.prod(shape)))], dtype).reshape(
        shape
    )


def from_tree(tree: Tree, dtype: np.dtype, digest_of: Callable[[str], bytes]) -> Any:
    """The element of ``dtype`` a tree describes, as numpy takes it into an array;
    ``digest_of`` gives what to store for a reference to a path."""
    if dtypes.is_vlen(dtype):
        base = np.dtype(dtype.metadata[dtypes.VLEN])
        return array_of([from_tree(t, base, digest_of) for t in _sequence(tree)], base)
    if dtypes.is_reference(dtype):
        return NULL if tree is None else digest_of(_text(tree))
    if dtype.names is not None:
        members = [dtypes.member(dtype, name) for name in dtype.names]
        trees = zip(_sequence(tree), members, strict=True)
        return tuple(from_tree(t, m, digest_of) for t, m in trees)
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        elements = [from_tree(t, base, digest_of) for t in _sequence(tree)]
        return array_of(elements, base).reshape(shape)
    if not isinstance(tree, bytes) or len(tree) != dtype.itemsize:
        raise TypeError(f"esdm VOL: expected {dtype.itemsize} bytes of {dtype}, not {tree!r}")
    return np.frombuffer(tree, dtype=dtype)[0]


def to_tree(value: Any, dtype: np.dtype, path_of: Callable[[bytes], str]) -> Tree:
    """The tree of an element of ``dtype``; ``path_of`` names the object a digest stands for."""
    if dtypes.is_vlen(dtype):
        base = np.dtype(dtype.metadata[dtypes.VLEN])
        return [to_tree(v, base, path_of) for v in value]
    if dtypes.is_reference(dtype):
        stored = bytes(value)
        return None if stored == NULL else path_of(stored)
    if dtype.names is not None:
        return tuple(
            to_tree(value[name], dtypes.member(dtype, name), path_of) for name in dtype.names
        )
    if dtype.subdtype is not None:
        base, _ = dtype.subdtype
        return [to_tree(v, base, path_of) for v in np.asarray(value).reshape(-1)]
    return np.asarray(value, dtype=dtype).tobytes()


def _sequence(tree: Tree) -> tuple | list:
    if not isinstance(tree, tuple | list):
        raise TypeError(f"esdm VOL: expected a sequence of values, not {tree!r}")
    return tree


def _text(tree: Tree) -> str:
    if not isinstance(tree, str):
        raise TypeError(
            f"esdm VOL: expected the path of the object a reference names, not {tree!r}"
        )
    return tree
