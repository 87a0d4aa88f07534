"""HDF5 filter pipelines and the core's codec pipelines (esdm_hpc/codecs.py), both ways.

A program's filters (H5Pset_shuffle, H5Pset_deflate, H5Pset_filter with the ids
HDF5's registered plugins use) become the dataset's ``codecs`` hint where the
core has the codec, and are kept as given in its ``filters`` hint, which the
connector reports back on every open (H5Pget_filter2, nc_inq_var_deflate). What
has no codec is reported and not applied: Fletcher32 (every block carries a
checksum already), szip, nbit, scale-offset (which would change the values:
they are stored exactly), and filters the core does not know. A dataset
written through the Python API with codecs reports the filters that say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from esdm_hpc import codecs

Filter = tuple[int, int, tuple[int, ...]]  # id, flags, client data (H5Pget_filter2)

DEFLATE, SHUFFLE = 1, 2  # H5Z_FILTER_DEFLATE, H5Z_FILTER_SHUFFLE
BLOSC, ZSTD = 32001, 32015  # as HDF5's registry of filter plugins numbers them
OPTIONAL = 1  # H5Z_FLAG_OPTIONAL, as H5Pset_deflate and hdf5plugin set them
# The client data of HDF5's blosc filter: revision, blosc version, type size and
# chunk size (its set_local's), then clevel, shuffle, compressor number.
BLOSC_CLEVEL, BLOSC_SHUFFLE, BLOSC_CODE = 4, 5, 6
BLOSC_CODES = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")
BLOSC_DEFAULT = (5, 1, 1)  # without client data: clevel 5, byte shuffle, lz4 (as numcodecs)


def codecs_for(filters: Sequence[Filter], string: bool) -> list[str]:
    """The codecs hint that applies ``filters`` (in their order, for a string
    dataset if ``string``): a shuffle before the first compressor, and that
    compressor; [] if none of them has a codec."""
    shuffle: list[str] = []
    for ident, _, values in filters:
        spec = _spec(ident, values, string)
        if spec == "shuffle":
            shuffle = [spec]
        elif spec is not None:
            return [*shuffle, spec]
    return shuffle


def _spec(ident: int, values: tuple[int, ...], string: bool) -> str | None:
    """The codec of one filter, None where there is none (or not with these values)."""
    if ident == SHUFFLE:
        return None if string else "shuffle"  # strings have no fixed-size elements
    if ident in (DEFLATE, ZSTD):
        name = "deflate" if ident == DEFLATE else "zstd"
        if not values:
            return name
        # zstd's fast levels are negative: the value is a signed 32-bit integer
        level = values[0] - (values[0] >> 31 << 32)
        return f"{name}:{level}" if level in codecs.LEVELS[name] else None
    if ident == BLOSC:
        given = values[BLOSC_CLEVEL : BLOSC_CODE + 1]
        clevel, shuffle, code = given if len(given) == 3 else BLOSC_DEFAULT
        cname = BLOSC_CODES[code] if code < len(BLOSC_CODES) else ""
        usable = cname in codecs.BLOSC_CNAMES and clevel in codecs.LEVELS["blosc"]
        return f"blosc:{cname}:{clevel}:{shuffle}" if usable and shuffle in (0, 1, 2) else None
    return None


def reported(hints: Mapping[str, Any]) -> tuple[list[Filter], bool]:
    """The filters a dataset reports: those a program set; else those that say what
    its codecs do, and True (the connector reports these only where its HDF5 has
    the filter)."""
    if codecs.FILTERS in hints:
        given = [(ident, flags, tuple(values)) for ident, flags, values in hints[codecs.FILTERS]]
        return given, False
    pipeline = codecs.for_dataset(hints)
    if pipeline is None:
        return [], True
    found: list[Filter] = [(SHUFFLE, OPTIONAL, ())] if pipeline.shuffle else []
    compressor = pipeline.compressor
    if isinstance(compressor, codecs.Deflate):
        found.append((DEFLATE, OPTIONAL, (compressor.level,)))
    elif isinstance(compressor, codecs.Zstd):
        found.append((ZSTD, OPTIONAL, (compressor.level & 0xFFFFFFFF,)))
    elif isinstance(compressor, codecs.Blosc):
        code = BLOSC_CODES.index(compressor.cname)
        blosc = (2, 2, compressor.typesize, 0, compressor.clevel, compressor.shuffle, code)
        found.append((BLOSC, OPTIONAL, blosc))
    return found, True
