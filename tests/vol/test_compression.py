"""Compression through the connector: the filters a program sets are applied by the
core's codecs (esdm_hpc/codecs.py) and reported back as natively, for a C program,
h5py and netCDF's parallel compression and quantize programs (our own, modelled on
netCDF's nc_test4/tst_parallel_compress.c and tst_quantize_par.c), each run through
the connector and natively and compared."""

from __future__ import annotations

import json

import numpy as np
import pytest

import esdm_hpc
from tests.mpirun import ROOT
from tests.vol.conftest import PROGRAMS, Result, Site, report

NCDUMP = ROOT / ".deps" / "netcdf" / "bin" / "ncdump"
needs_netcdf = pytest.mark.skipif(
    not NCDUMP.exists(), reason=f"netCDF-C is not built in {NCDUMP.parents[1]}: run `make netcdf`"
)


def codecs_of(site: Site, uri: str) -> dict[str, set[str]]:
    """The codecs of every dataset's fragments in the container, as the core stored them."""
    with esdm_hpc.open(uri, config=site.config) as c:
        return {
            name: {f.codec for f in c.view(c.dataset_meta(c[name].name)).fragments} for name in c
        }


def stored_and_raw(site: Site, uri: str, name: str) -> tuple[int, int]:
    with esdm_hpc.open(uri, config=site.config) as c:
        fragments = c.view(c.dataset_meta(c[name].name)).fragments
        return sum(r.length for f in fragments for r in f.replicas), sum(
            f.nbytes for f in fragments
        )


def ok_ranks(result: Result) -> list[int]:
    return sorted(
        int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("ok ")
    )


def test_a_c_programs_filters_are_applied_and_reported_back(site: Site) -> None:
    result = site.run(str(PROGRAMS / "filters"), "esdm://filters")
    assert result.returncode == 0 and result.stdout == "ok\n", report(result)
    assert codecs_of(site, "esdm://filters") == {
        "gzip": {"shuffle:4|deflate:6"},
        "checked": {"shuffle:4|deflate:1"},  # Fletcher32: every block has a checksum already
        "zstd": {"shuffle:4|zstd:5"},
        "blosc": {"blosc:zstd:7:2:4"},
    }
    stored, raw = stored_and_raw(site, "esdm://filters", "gzip")
    assert stored < raw / 8


H5PY = """
import json, sys
import h5py, hdf5plugin, numpy as np

name, mode = sys.argv[1], sys.argv[2]
data = (np.arange(64 * 64, dtype="f4").reshape(64, 64) // 16) * 0.25
kinds = {
    "gzip": dict(compression="gzip", compression_opts=4, shuffle=True, fletcher32=True),
    "zstd": dict(hdf5plugin.Zstd(clevel=7)),
    "blosc": dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE)),
    "plain": dict(),
}
if mode == "write":
    with h5py.File(name, "w") as f:
        for kind, options in kinds.items():
            f.create_dataset(kind, data=data, chunks=(16, 64), **options)
with h5py.File(name, "r") as f:
    seen = {}
    for kind in kinds:
        d = f[kind]
        assert (d[...] == data).all(), kind
        filters = sorted(d._filters)
        seen[kind] = [d.compression, d.compression_opts, d.shuffle, d.fletcher32, filters]
    print(json.dumps(seen))
"""


def test_h5py_sees_the_filters_it_set_as_natively(site: Site) -> None:
    native = json.loads(
        site.native(site.env["ESDM_VOL_PYTHON"], "-c", H5PY, "run.h5", "write").stdout
    )
    result = site.python(H5PY, "esdm://h5", "write", timeout=120)
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == native
    assert native["gzip"] == ["gzip", 4, True, True, ["fletcher32", "gzip", "shuffle"]]
    assert codecs_of(site, "esdm://h5") == {
        "gzip": {"shuffle:4|deflate:4"},
        "zstd": {"zstd:7"},
        "blosc": {"blosc:lz4:5:2:4"},
        "plain": {"raw"},
    }


READ_H5PY = """
import json, sys
import h5py, hdf5plugin

with h5py.File(sys.argv[1], "r") as f:
    seen = {k: [d.compression, d.compression_opts, d.shuffle, sorted(d._filters), float(d[3, 5])]
            for k, d in f.items()}
    print(json.dumps(seen))
"""


def test_the_python_apis_codecs_are_filters_to_hdf5_programs(site: Site) -> None:
    data = np.arange(32 * 16, dtype="f8").reshape(32, 16)
    with esdm_hpc.open("esdm://api", "w", config=site.config) as c:
        for name, codecs in (("gzip", ["shuffle", "deflate:3"]), ("zstd", ["zstd"]), ("raw", [])):
            c.create_dataset(name, data=data, hints={"codecs": codecs})
    result = site.python(READ_H5PY, "esdm://api")
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == {
        "gzip": ["gzip", 3, True, ["gzip", "shuffle"], 53.0],
        "zstd": ["unknown", None, False, ["32015"], 53.0],  # h5py has no name for it
        "raw": [None, None, False, [], 53.0],
    }


def variables(dump: str) -> str:
    """ncdump's text from the variables on: the file's name and superblock differ."""
    return dump[dump.index("variables:") : dump.index("// global attributes:")]


@needs_netcdf
@pytest.mark.parametrize("ranks", [4, 2])
def test_netcdfs_parallel_compression_behaves_as_natively(site: Site, ranks: int) -> None:
    program = str(PROGRAMS / "nc_par_compress")
    native = site.native("mpirun", "-n", str(ranks), "--oversubscribe", program, "run.nc")
    result = site.mpirun(ranks, program, "esdm://nc/run")
    assert result.returncode == 0, report(result)
    assert ok_ranks(result) == list(range(ranks)), report(result)
    settings = [line for line in result.stdout.splitlines() if line.startswith("shuffle")]
    assert settings == [line for line in native.stdout.splitlines() if line.startswith("shuffle")]
    assert settings[-1] == "shuffle 1 deflate 1 level 9 fletcher32 1"
    header = site.run(str(NCDUMP), "-hs", "esdm://nc/run-1-9")
    assert header.returncode == 0, report(header)
    assert variables(header.stdout) == variables(
        site.native(str(NCDUMP), "-hs", "run.nc-1-9").stdout
    )
    for shuffle, level in ((0, 1), (1, 9)):
        expected = f"shuffle:4|deflate:{level}" if shuffle else f"deflate:{level}"
        assert codecs_of(site, f"esdm://nc/run-{shuffle}-{level}")["v1"] == {expected}
    stored, raw = stored_and_raw(site, "esdm://nc/run-1-9", "v1")
    assert stored < raw / 4


@needs_netcdf
@pytest.mark.parametrize("ranks", [4, 2])
def test_netcdfs_quantize_with_compression_behaves_as_natively(site: Site, ranks: int) -> None:
    program = str(PROGRAMS / "nc_par_quantize")
    native = site.native("mpirun", "-n", str(ranks), "--oversubscribe", program, "run.nc")
    result = site.mpirun(ranks, program, "esdm://nc/quantized")
    assert result.returncode == 0, report(result)
    assert ok_ranks(result) == list(range(ranks)), report(result)
    # every rank's settings and the bits of every value it read back
    assert sorted(result.stdout.splitlines()) == sorted(native.stdout.splitlines())
    codecs = codecs_of(site, "esdm://nc/quantized")
    assert codecs["groomed_f"] == {"shuffle:4|deflate:1"} and codecs["groomed_d"] == {"raw"}
    assert codecs["rounded_d"] == {"shuffle:8|deflate:9"}
