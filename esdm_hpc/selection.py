"""Turning numpy-style index expressions into hyperslabs (offset, count)."""

from __future__ import annotations

import operator
import reprlib
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

import numpy as np

Key = Any  # what users put between the brackets
_SHOWN = 80  # characters of a refused index quoted in a message


@dataclass(frozen=True, slots=True)
class Hyperslab:
    offset: tuple[int, ...]
    count: tuple[int, ...]
    # axes indexed by an integer: dropped from the shape a read returns
    dropped: tuple[int, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the array a read returns (integer-indexed axes dropped)."""
        return tuple(c for axis, c in enumerate(self.count) if axis not in self.dropped)

    @property
    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(o, o + c) for o, c in zip(self.offset, self.count, strict=True))

    @property
    def empty(self) -> bool:
        return any(c == 0 for c in self.count)

    def __str__(self) -> str:
        return (
            "["
            + ", ".join(f"{o}:{o + c}" for o, c in zip(self.offset, self.count, strict=True))
            + "]"
        )


def hyperslab(key: Key, shape: tuple[int, ...], what: str) -> Hyperslab:
    """The hyperslab ``key`` selects in an array of ``shape``; ``what`` names it in errors.

    Supports integers (0-d integer arrays included), slices with step 1,
    Ellipsis and tuples of them. Everything else raises IndexError naming it:
    booleans, which numpy takes for masks rather than 0 and 1; None
    (np.newaxis); strided slices; lists, arrays and other fancy indices; and
    out-of-bounds integers.
    """
    items = _expand(key if isinstance(key, tuple) else (key,), len(shape), what)
    offset, count, dropped = [], [], []
    for axis, (item, extent) in enumerate(zip(items, shape, strict=True)):
        if isinstance(item, slice):
            start, stop = _bounds(item, extent, what)
            offset.append(start)
            count.append(max(0, stop - start))
        else:
            index = _integer(item, what)
            if not -extent <= index < extent:
                raise IndexError(
                    f"{what}: index {_shown(index)} is out of bounds for axis {axis} "
                    f"with size {extent}"
                )
            offset.append(index % extent)
            count.append(1)
            dropped.append(axis)
    return Hyperslab(tuple(offset), tuple(count), tuple(dropped))


def _expand(items: tuple, ndim: int, what: str) -> list:
    ellipses = sum(item is Ellipsis for item in items)
    if ellipses > 1:
        raise IndexError(f"{what}: an index can only have a single ellipsis ('...')")
    if ellipses:
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        fill = [slice(None)] * (ndim - len(items) + 1)
        items = (*items[:at], *fill, *items[at + 1 :])
    if len(items) > ndim:
        raise IndexError(f"{what}: too many indices ({len(items)}) for {ndim} dimensions")
    return [*items, *[slice(None)] * (ndim - len(items))]


def _bounds(item: slice, extent: int, what: str) -> tuple[int, int]:
    """(start, stop) of a slice with step 1 on an axis of ``extent``, clipped as numpy does."""
    bounds = (item.start, item.stop, item.step)
    if any(isinstance(b, bool | np.bool_) for b in bounds):
        raise IndexError(
            f"{what}: boolean indices are not supported as slice bounds ({_shown(item)}): "
            "use integers"
        )
    start, stop, step = (None if b is None else _integer(b, what) for b in bounds)
    if step not in (None, 1):
        raise IndexError(f"{what}: strided selections are not supported ({_shown(item)})")
    start, stop, _ = slice(start, stop).indices(extent)
    return start, stop


def _integer(item: object, what: str) -> int:
    if isinstance(item, bool | np.bool_) or (isinstance(item, np.ndarray) and item.dtype == bool):
        raise IndexError(
            f"{what}: boolean indices are not supported (numpy reads {_shown(item)} as a mask, "
            "not as 0 or 1): use integers or slices"
        )
    if item is None:
        raise IndexError(f"{what}: new axes (None, np.newaxis) are not supported")
    try:
        return operator.index(item)  # type: ignore[arg-type]
    except TypeError:
        raise IndexError(
            f"{what}: only integers, slices with step 1 and '...' select hyperslabs, "
            f"not {_shown(item)} ({type(item).__name__})"
        ) from None


def _shown(item: object) -> str:
    """``item`` as quoted in a message: short, whatever it is."""
    if isinstance(item, int) and item.bit_length() > 64:
        return f"an integer of {item.bit_length()} bits"  # repr refuses > 4300 digits
    text = reprlib.repr(item)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def parse_region(text: str) -> tuple:
    """A region written as on the command line, ``"0:10,5,:"``, as an index key."""
    if not isinstance(text, str):
        raise TypeError(f"region must be a string like '0:10,5', not {type(text).__name__}")
    items: list[int | slice | EllipsisType] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                bounds = [int(b) if b.strip() else None for b in part.split(":")]
                if len(bounds) != 2:
                    raise ValueError(part)
                items.append(slice(*bounds))
            elif part == "...":
                items.append(Ellipsis)
            else:
                items.append(int(part))
        except ValueError:
            raise ValueError(
                f"region {_shown(text)}: write it as comma-separated 'start:stop' or index per axis"
            ) from None
    if items.count(Ellipsis) > 1:  # syntax, whatever the dataset: a usage error
        raise ValueError(f"region {_shown(text)}: '...' may appear only once")
    return tuple(items)
