"""Datasets whose raw data lives in files of their own (HDF5's external storage,
``H5Pset_external``): the ``external`` hint lists the segments, each a file, the
byte offset in it where the segment starts and its size (None: to the end of
the file), and the dataset's elements lie in them one after another, in C
order, as their bytes. Nothing of such a dataset is in fragments: reads and
writes go to the files at once (independent, visible without a commit), as
in HDF5; past the end of a file reads zeros.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

HINT = "external"


@dataclass(frozen=True, slots=True)
class Segment:
    path: str
    offset: int
    size: int | None  # None: to the end of the file


def segments(hints: dict[str, Any]) -> list[Segment] | None:
    """A dataset's segments, None if its data is in fragments."""
    listed = hints.get(HINT)
    return None if listed is None else [Segment(p, o, s) for p, o, s in listed]


def checked_hint(path: str, hints: dict[str, Any], dtype: np.dtype, size: int) -> None:
    """ValueError naming the dataset ``path`` unless its ``external`` hint lists
    segments (file, offset >= 0, size > 0 or None) that hold its ``size`` elements
    of ``dtype``, a type of fixed size."""
    listed = hints.get(HINT)
    if listed is None:
        return
    if dtype.hasobject:
        raise ValueError(f"{path}: external storage holds values of a fixed size, not {dtype}")
    if not isinstance(listed, list | tuple) or not listed:
        raise ValueError(f"{path}: hints['{HINT}'] lists [file, offset, size] segments")
    for segment in listed:
        valid = isinstance(segment, list | tuple) and len(segment) == 3
        name, offset, length = segment if valid else ("", -1, 0)
        if not (isinstance(name, str) and name and isinstance(offset, int) and offset >= 0):
            raise ValueError(
                f"{path}: hints['{HINT}'] segment {segment!r} is no [file, offset, size]"
            )
        if length is not None and (not isinstance(length, int) or length <= 0):
            raise ValueError(f"{path}: hints['{HINT}'] segment {segment!r} has no size > 0")
    sizes = [length for _, _, length in listed]
    if None not in sizes and sum(sizes) < size * dtype.itemsize:
        raise ValueError(
            f"{path}: the external segments hold {sum(sizes)} bytes, not {size * dtype.itemsize}"
        )


def read(
    found: list[Segment], dtype: np.dtype, shape: tuple[int, ...], offset: tuple[int, ...],
    count: tuple[int, ...],
) -> np.ndarray:  # fmt: skip
    """The box at ``offset`` of ``count`` elements of a dataset of ``shape``."""
    out = np.zeros(count, dtype=dtype)
    flat = out.reshape(-1).view(np.uint8)
    done = 0
    for start, length in _runs(shape, offset, count, dtype.itemsize):
        for path, at, n, into in _pieces(found, start, length):
            try:
                with open(path, "rb") as file:
                    data = os.pread(file.fileno(), n, at)
            except FileNotFoundError:
                data = b""  # not written yet
            flat[done + into : done + into + len(data)] = np.frombuffer(data, dtype=np.uint8)
        done += length
    return out


def write(
    found: list[Segment], shape: tuple[int, ...], offset: tuple[int, ...], data: np.ndarray
) -> None:
    """``data`` (of the dataset's dtype) into the box at ``offset`` of a dataset of ``shape``."""
    flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    done = 0
    for start, length in _runs(shape, offset, data.shape, data.dtype.itemsize):
        for path, at, n, into in _pieces(found, start, length):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(descriptor, flat[done + into : done + into + n].tobytes(), at)
            finally:
                os.close(descriptor)
        done += length


def _runs(
    shape: tuple[int, ...], offset: tuple[int, ...], count: tuple[int, ...], itemsize: int
) -> Iterator[tuple[int, int]]:
    """(byte offset in the dataset, bytes) of each run of the box in C order."""
    if not shape:
        yield 0, itemsize
        return
    if math.prod(count) == 0:
        return
    strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
    for index in np.ndindex(*count[:-1]):
        first = sum((o + i) * s for o, i, s in zip(offset[:-1], index, strides[:-1], strict=True))
        yield (first + offset[-1]) * itemsize, count[-1] * itemsize


def _pieces(found: list[Segment], start: int, length: int) -> Iterator[tuple[str, int, int, int]]:
    """(file, byte offset in it, bytes, offset in the run) of the bytes of a run."""
    base = 0
    for segment in found:
        end = math.inf if segment.size is None else base + segment.size
        low, high = max(start, base), min(start + length, end)
        if low < high:
            yield segment.path, segment.offset + low - base, int(high - low), low - start
        if end >= start + length:
            return
        base = int(end)
    raise ValueError(f"the external segments end before byte {start + length} of the dataset")
