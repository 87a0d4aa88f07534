"""Turning numpy-style index expressions into hyperslabs (offset, count)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Key = Any  # what users put between the brackets


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

    Supports integers, slices with step 1, Ellipsis and full tuples of them;
    out-of-bounds integers and strided or fancy indexing raise IndexError.
    """
    items = _expand(key if isinstance(key, tuple) else (key,), len(shape), what)
    offset, count, dropped = [], [], []
    for axis, (item, extent) in enumerate(zip(items, shape, strict=True)):
        if isinstance(item, slice):
            start, stop, step = item.indices(extent)
            if step != 1:
                raise IndexError(f"{what}: strided selections are not supported ({item})")
            offset.append(start)
            count.append(max(0, stop - start))
        else:
            index = _integer(item, what)
            if not -extent <= index < extent:
                raise IndexError(
                    f"{what}: index {index} is out of bounds for axis {axis} with size {extent}"
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


def _integer(item: object, what: str) -> int:
    try:
        return int(item.__index__())  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        raise IndexError(
            f"{what}: only integers, slices and '...' select hyperslabs, not {item!r}"
        ) from None


def parse_region(text: str) -> tuple:
    """A region written as on the command line, ``"0:10,5,:"``, as an index key."""
    items: list[int | slice] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                bounds = [int(b) if b.strip() else None for b in part.split(":")]
                if len(bounds) != 2:
                    raise ValueError(part)
                items.append(slice(*bounds))
            elif part == "...":
                items.append(Ellipsis)  # type: ignore[arg-type]
            else:
                items.append(int(part))
        except ValueError:
            raise ValueError(
                f"region {text!r}: write it as comma-separated 'start:stop' or index per axis"
            ) from None
    return tuple(items)
