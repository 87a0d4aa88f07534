"""Codec pipelines: what a fragment's serialised bytes go through before they are stored.

A pipeline is an ordered list of codecs: at most one byte shuffle, first, and at
most one compressor, last (deflate, zstd or blosc, through numcodecs). A dataset
asks for one with ``hints={"codecs": ["shuffle", "zstd:3"]}``; `checked_hint`
resolves what a hint leaves out (levels, the element size) when the dataset is
created, so its hints say exactly what its writers do. A fragment record names its
pipeline (``Fragment.codec``): `RAW` for none (every record before codecs existed
reads as it always did), else the resolved specs joined by "|", such as
``"shuffle:4|zstd:3"``; `get` resolves that name.

Each checksum block of the serialised bytes is encoded on its own
(docs/architecture.md §4.7): a read fetches, verifies and decodes only the blocks
it touches, and verifies the bytes as stored before decoding any of them.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from esdm_hpc.strings import is_string

RAW = "raw"  # the codec of a fragment stored as serialised
HINT = "codecs"
FILTERS = "filters"  # the HDF5 filters a program set (the connector's)

# A coded fragment's checksum blocks are at least this large: zstd and blosc
# compress a 16 KiB block at a third of their speed on 256 KiB (a context set up
# per call), and lose up to 3% of the ratio; HDF5's chunks are as large or larger.
# A part of a fragment still costs one decoded block, not the fragment.
MIN_BLOCK = 256 << 10


@functools.cache
def _numcodecs(module: str) -> ModuleType:
    """A numcodecs module, imported at the first use: numcodecs takes 0.1 s to import,
    which a program that stores nothing compressed should not pay."""
    import importlib

    return importlib.import_module(f"numcodecs.{module}")


class Compressor(ABC):
    """A compressor of one block of bytes at a time."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def spec(self) -> str:
        """How a pipeline's name spells it, every parameter given."""

    @abstractmethod
    def compress(self, block: np.ndarray) -> bytes:
        """The stored form of ``block`` (uint8)."""

    @abstractmethod
    def decompress(self, data: np.ndarray, out: np.ndarray) -> None:
        """The bytes ``compress`` made ``data`` of, into ``out`` (uint8, of their size);
        ValueError or RuntimeError (numcodecs') if ``data`` is not such bytes."""


@dataclass(frozen=True, slots=True)
class Deflate(Compressor):
    """zlib's deflate, as HDF5's H5Z_FILTER_DEFLATE (gzip in h5py); numcodecs' Zlib
    is this same call of the standard library."""

    name: ClassVar[str] = "deflate"
    level: int

    @property
    def spec(self) -> str:
        return f"deflate:{self.level}"

    def compress(self, block: np.ndarray) -> bytes:
        return zlib.compress(block, self.level)

    def decompress(self, data: np.ndarray, out: np.ndarray) -> None:
        try:
            out[:] = np.frombuffer(zlib.decompress(data, bufsize=len(out)), dtype=np.uint8)
        except zlib.error as error:  # as the others fail: a ValueError
            raise ValueError(str(error)) from None


@dataclass(frozen=True, slots=True)
class Zstd(Compressor):
    name: ClassVar[str] = "zstd"
    level: int

    @property
    def spec(self) -> str:
        return f"zstd:{self.level}"

    def compress(self, block: np.ndarray) -> bytes:
        return _numcodecs("zstd").compress(block, self.level)

    def decompress(self, data: np.ndarray, out: np.ndarray) -> None:
        _numcodecs("zstd").decompress(data, out)


BLOSC_CNAMES = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")


@dataclass(frozen=True, slots=True)
class Blosc(Compressor):
    """Blosc with its inner compressor ``cname``, ``shuffle`` 0 (none), 1 (bytes) or
    2 (bits) of elements of ``typesize`` bytes."""

    name: ClassVar[str] = "blosc"
    cname: str
    clevel: int
    shuffle: int
    typesize: int

    @property
    def spec(self) -> str:
        return f"blosc:{self.cname}:{self.clevel}:{self.shuffle}:{self.typesize}"

    def compress(self, block: np.ndarray) -> bytes:
        blosc = _numcodecs("blosc")
        return blosc.compress(
            block, self.cname.encode(), self.clevel, self.shuffle, blosc.AUTOBLOCKS, self.typesize
        )

    def decompress(self, data: np.ndarray, out: np.ndarray) -> None:
        _numcodecs("blosc").decompress(data, out)


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Each block's bytes shuffled by elements of ``shuffle`` bytes (0: not), then
    compressed by ``compressor`` (None: not)."""

    shuffle: int
    compressor: Compressor | None

    @property
    def name(self) -> str:
        specs = [f"shuffle:{self.shuffle}"] if self.shuffle else []
        return "|".join(specs + ([self.compressor.spec] if self.compressor else []))

    def block_size(self, configured: int) -> int:
        """The checksum block of a fragment this pipeline codes, for the configured one."""
        return max(configured, MIN_BLOCK) if self.compressor else configured

    def encode(self, payload: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored bytes of the serialised ``payload`` (uint8): each block of
        ``block_size`` coded on its own, one after another; and where each block
        starts and the last ends in them (nblocks + 1 offsets)."""
        data = _shuffled(payload, block_size, self.shuffle) if self.shuffle else payload
        if self.compressor is None:
            nblocks = -(-len(data) // block_size)
            return data, np.minimum(np.arange(nblocks + 1, dtype=np.int64) * block_size, len(data))
        parts = [
            self.compressor.compress(data[start : start + block_size])
            for start in range(0, len(data), block_size)
        ]
        bounds = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=bounds[1:])
        return np.frombuffer(b"".join(parts), dtype=np.uint8), bounds

    def decode(
        self, stored: np.ndarray, bounds: np.ndarray, out: np.ndarray, block_size: int
    ) -> None:
        """Blocks whose stored bytes are ``stored`` (block k at bounds[k]:bounds[k + 1])
        into ``out``, the serialised bytes of those blocks (all but the last whole)."""
        if self.compressor is None:
            decoded = stored
        else:
            decoded = np.empty_like(out) if self.shuffle else out
            for k, (start, end) in enumerate(itertools.pairwise(bounds.tolist())):
                block = decoded[k * block_size : (k + 1) * block_size]
                self.compressor.decompress(stored[start:end], block)
        if self.shuffle:
            _shuffled(decoded, block_size, self.shuffle, inverse=True, out=out)


def _shuffled(
    data: np.ndarray, block: int, size: int, inverse: bool = False, out: np.ndarray | None = None
) -> np.ndarray:
    """HDF5's byte shuffle in each block of ``data`` on its own: the first byte of
    every element of ``size`` bytes, then every second byte, and so on; the bytes
    after a block's last whole element stay in place. ``inverse`` undoes it."""
    out = np.empty_like(data) if out is None else out
    whole = len(data) // block * block
    if whole:  # every whole block at once, as rows
        _shuffle_rows(
            data[:whole].reshape(-1, block), out[:whole].reshape(-1, block), size, inverse
        )
    if whole < len(data):
        _shuffle_rows(data[whole:].reshape(1, -1), out[whole:].reshape(1, -1), size, inverse)
    return out


PLANES = 16  # element sizes up to this are shuffled a byte of every element at a time


def _shuffle_rows(rows: np.ndarray, out: np.ndarray, size: int, inverse: bool) -> None:
    n = rows.shape[1] // size
    whole = n * size
    # The same bytes as (row, byte of an element, element) and as (row, element,
    # byte): splitting a row of contiguous bytes needs no copy.
    grouped = (rows if inverse else out)[:, :whole].reshape(len(rows), size, n)
    elements = (out if inverse else rows)[:, :whole].reshape(len(rows), n, size)
    if size <= PLANES:
        # one copy per byte of an element: 4 GB/s both ways, where numpy's
        # transposed copy into elements makes 0.9-1.8 GB/s of the small sizes
        for k in range(size):
            if inverse:
                elements[:, :, k] = grouped[:, k, :]
            else:
                grouped[:, k, :] = elements[:, :, k]
    elif inverse:
        elements[...] = grouped.transpose(0, 2, 1)
    else:
        grouped[...] = elements.transpose(0, 2, 1)
    out[:, whole:] = rows[:, whole:]


# --- names and hints --------------------------------------------------------------------

DEFAULT_LEVELS = {"deflate": 6, "zstd": 3}  # zlib's and zstd's own defaults
LEVELS = {"deflate": range(10), "zstd": range(-(1 << 17), 23), "blosc": range(10)}
BLOSC_DEFAULTS = ("lz4", 5, 1)  # numcodecs' defaults: cname, clevel, byte shuffle


def get(name: str) -> Pipeline | None:
    """The pipeline a fragment record names, None for `RAW`; ValueError for a name no
    writer writes (the record is malformed)."""
    return None if name == RAW else _parsed(name)


@functools.lru_cache(maxsize=256)
def _parsed(name: Any) -> Pipeline:
    if not isinstance(name, str) or not name:
        raise ValueError(f"codec {name!r} is not a pipeline")
    return _pipeline(name.split("|"), _Defaults(None, False), f"codec {name!r}")


def for_dataset(hints: Mapping[str, Any]) -> Pipeline | None:
    """The pipeline a writer codes a dataset's fragments with (None: none)."""
    specs = hints.get(HINT)
    return _parsed("|".join(specs)) if specs else None


def checked_hint(path: str, hints: Mapping[str, Any], dtype: np.dtype) -> dict[str, Any]:
    """The ``codecs`` and ``filters`` hints of a new dataset ``path`` as its hints keep
    them ({} for neither); ValueError naming the dataset for one no writer could
    follow. Codecs get every parameter resolved for the ``dtype`` (a shuffle's
    element size, a default level), so the hints say what the writers do. Filters
    are the HDF5 filter pipeline a program set through the connector, which
    reports them back: [filter id, flags, [client data]], unsigned 32-bit integers
    each (H5Pset_filter); those with a codec are in ``codecs`` too."""
    checked: dict[str, Any] = {}
    if FILTERS in hints:
        checked[FILTERS] = _filters(path, hints[FILTERS])
    if HINT not in hints:
        return checked
    specs = hints[HINT]
    if not isinstance(specs, list | tuple) or not all(isinstance(s, str) for s in specs):
        example = "such as ['shuffle', 'zstd:3']"
        raise ValueError(f"{path}: hints['codecs'] is a list of codecs, {example}")
    if not specs:
        return {**checked, HINT: []}
    itemsize = None if is_string(dtype) else dtype.itemsize
    pipeline = _pipeline(list(specs), _Defaults(itemsize, True), f"{path}: hints['codecs']")
    return {**checked, HINT: pipeline.name.split("|")}


def _filters(path: str, filters: Any) -> list[list[Any]]:
    def u32(value: Any) -> bool:
        return isinstance(value, int | np.integer) and 0 <= value < 1 << 32

    wrong = ValueError(f"{path}: hints['filters'] is a list of [id, flags, [values]] of uint32")
    if not isinstance(filters, list | tuple):
        raise wrong
    checked = []
    for entry in filters:
        if not isinstance(entry, list | tuple) or len(entry) != 3:
            raise wrong
        ident, flags, values = entry
        if not (u32(ident) and u32(flags) and isinstance(values, list | tuple)):
            raise wrong
        if not all(u32(v) for v in values):
            raise wrong
        checked.append([int(ident), int(flags), [int(v) for v in values]])
    return checked


@dataclass(frozen=True, slots=True)
class _Defaults:
    """What a spec may leave out: nothing in a record; in a hint, levels and the
    element size (``itemsize``; None for strings, which have none)."""

    itemsize: int | None
    allowed: bool


def _pipeline(specs: list[str], defaults: _Defaults, where: str) -> Pipeline:
    shuffle, compressor = 0, None
    for i, spec in enumerate(specs):
        name, *args = spec.split(":")
        at = f"{where}: {spec!r}"
        if name == "shuffle":
            if i:
                raise ValueError(f"{at}: a shuffle comes first, once")
            shuffle = _shuffle_size(args, defaults, at)
        elif name in LEVELS:
            if compressor is not None:
                raise ValueError(f"{at}: one compressor, last")
            compressor = _compressor(name, args, defaults, at)
        else:
            raise ValueError(f"{at}: unknown codec (known: shuffle, {', '.join(LEVELS)})")
    if compressor is None and not shuffle:
        raise ValueError(f"{where}: no codec")
    return Pipeline(shuffle, compressor)


def _shuffle_size(args: list[str], defaults: _Defaults, at: str) -> int:
    if not args and defaults.allowed and defaults.itemsize is None:
        raise ValueError(f"{at}: strings have no elements of a fixed size to shuffle")
    (size,) = _integers(args, [defaults.itemsize or 0], defaults, at)
    if size < 1:
        raise ValueError(f"{at}: a shuffle's element size is positive")
    return size


def _compressor(name: str, args: list[str], defaults: _Defaults, at: str) -> Compressor:
    if name != "blosc":
        (level,) = _integers(args, [DEFAULT_LEVELS[name]], defaults, at)
        _check_level(name, level, at)
        return Deflate(level) if name == "deflate" else Zstd(level)
    cname = args[0] if args else BLOSC_DEFAULTS[0]
    if cname not in BLOSC_CNAMES:
        raise ValueError(f"{at}: blosc's compressor is one of {', '.join(BLOSC_CNAMES)}")
    clevel, shuffle, typesize = _integers(
        args[1:], [*BLOSC_DEFAULTS[1:], defaults.itemsize or 1], defaults, at
    )
    _check_level(name, clevel, at)
    if shuffle not in (0, 1, 2) or typesize < 1:
        raise ValueError(f"{at}: blosc shuffles 0 (not), 1 (bytes) or 2 (bits) of elements")
    return Blosc(cname, clevel, shuffle, typesize)


def _integers(args: list[str], default: list[int], defaults: _Defaults, at: str) -> list[int]:
    """The integer parameters ``args``, those left out from ``default`` (a hint may
    leave out the last ones, a record none)."""
    if len(args) > len(default) or (len(args) < len(default) and not defaults.allowed):
        raise ValueError(f"{at}: {len(default)} parameter(s) here")
    try:
        return [int(a) for a in args] + default[len(args) :]
    except ValueError:
        raise ValueError(f"{at}: parameters are integers") from None


def _check_level(name: str, level: int, at: str) -> None:
    levels = LEVELS[name]
    if level not in levels:
        raise ValueError(f"{at}: {name}'s level is {levels.start} to {levels.stop - 1}")
