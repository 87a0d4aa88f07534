"""NetCDF-4 through the connector: netCDF-C on 4 ranks, ncdump, xarray with h5netcdf.

netCDF-C is the project's build (deps/build-netcdf.sh, `make netcdf`) over
the project's HDF5; tests/vol/programs/nc_par_write.c is a plain netCDF
program. Everything runs in subprocesses with the `esdm vol-env`
environment, so netCDF's HDF5 calls go to the connector; the test process
checks the containers with esdm_hpc.open.

netCDF-4 stores every dimension as an HDF5 dimension scale (references in
attributes) and reads groups and attributes back in creation order.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.vol.names import container_for_path
from tests.mpirun import ROOT
from tests.vol.conftest import PROGRAMS, Result, Site, report

NETCDF = ROOT / ".deps" / "netcdf"
NCDUMP = NETCDF / "bin" / "ncdump"

pytestmark = pytest.mark.skipif(
    not NCDUMP.exists(), reason=f"netCDF-C is not built in {NETCDF}: run `make netcdf`"
)

NT, NLON = 3, 6


def nc_par_write(site: Site, name: str) -> Result:
    return site.mpirun(4, str(PROGRAMS / "nc_par_write"), name)


def ranks_ok(result: Result) -> list[int]:
    """The ranks that printed "ok <rank>": they read everything back and found it right."""
    lines = result.stdout.splitlines()
    return sorted(int(line.split()[1]) for line in lines if line.startswith("ok "))


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_c_program_writes_netcdf4_on_4_ranks_the_python_api_reads_it(site: Site) -> None:
    result = nc_par_write(site, "esdm://nc/run1")
    assert result.returncode == 0, report(result)
    assert ranks_ok(result) == [0, 1, 2, 3], report(result)  # nc_open_par read it all back

    t, j, i = np.indices((NT, 8, NLON))
    with esdm_hpc.open("esdm://nc/run1", config=site.config) as c:
        tas = c["tas"]
        # netCDF names dimensions by dimension scales (checked by ncdump below), not
        # by the core's dimension names
        assert tas.dtype == np.dtype("<f4")
        assert (tas[...] == t * 10000 + j * 100 + i).all()
        assert tas.maxshape == (None, 8, NLON)  # time is unlimited
        assert (c["rank"][...] == j[0] // 2).all()  # rank r wrote latitudes 2r and 2r + 1
        assert c["lat"][...].tolist() == [-45 + 10.0 * k for k in range(8)]
        assert c["lon"][...].tolist() == [30.0 * k for k in range(NLON)]
        assert c["time"][...].tolist() == [0.0, 0.5, 1.0]
        assert text(c.attrs["title"]) == "esdm nc_par_write" and c.attrs["version"] == 1.5
        assert c.attrs["levels"].tolist() == [1000, 850, 500]
        assert text(tas.attrs["units"]) == "K" and tas.attrs["valid_range"].tolist() == [150, 350]
        assert c["rank"].attrs["ranks"] == 4
        assert text(c["lat"].attrs["units"]) == "degrees_north"


def test_ncdump_through_the_connector_shows_what_native_netcdf_shows(site: Site) -> None:
    # The same program natively, into a plain netCDF-4 file: the reference.
    site.native("mpirun", "-n", "4", "--oversubscribe", str(PROGRAMS / "nc_par_write"), "run1.nc")
    reference = site.native(str(NCDUMP), "run1.nc")

    result = nc_par_write(site, "esdm://run1")
    assert result.returncode == 0, report(result)
    header = site.run(str(NCDUMP), "-h", "esdm://run1", timeout=60)
    assert header.returncode == 0, report(header)
    for line in (
        "netcdf run1 {",
        "\ttime = UNLIMITED ; // (3 currently)",
        "\tlat = 8 ;",
        "\tlon = 6 ;",
        "\tfloat tas(time, lat, lon) ;",
        '\t\ttas:units = "K" ;',
        "\t\ttas:valid_range = 150.f, 350.f ;",
        "\tint rank(lat, lon) ;",
        '\t\t:title = "esdm nc_par_write" ;',
        "\t\t:levels = 1000, 850, 500 ;",
    ):
        assert line in header.stdout.splitlines(), header.stdout
    assert reference.stdout.startswith(header.stdout.removesuffix("}\n"))

    dump = site.run(str(NCDUMP), "esdm://run1", timeout=60)
    assert dump.returncode == 0, report(dump)
    assert dump.stdout == reference.stdout  # every value too


XARRAY = """
import json, sys
import numpy as np, xarray as xr

path = sys.argv[1]
time = np.array([0.0, 0.5, 1.0])
ds = xr.Dataset(
    {
        "tas": (("time", "lat", "lon"), np.arange(36, dtype="f4").reshape(3, 3, 4),
                {"units": "K", "long_name": "air temperature"}),
        "mask": (("lat", "lon"), np.eye(3, 4, dtype="i1")),
    },
    coords={"time": ("time", time, {"long_name": "time step"}),
            "lat": [-10.0, 0.0, 10.0], "lon": [0.0, 90.0, 180.0, 270.0]},
    attrs={"title": "esdm xarray", "version": 2},
)
ds.to_netcdf(path, engine="h5netcdf")
with xr.open_dataset(path, engine="h5netcdf") as back:
    xr.testing.assert_identical(back.load(), ds)
    print(json.dumps({"dims": dict(back.sizes), "coords": sorted(back.coords),
                      "attrs": {k: str(v) for k, v in back.attrs.items()}}))
"""


def test_xarray_writes_netcdf4_with_h5netcdf_and_reads_it_back(site: Site) -> None:
    # xarray takes esdm://... for a remote (fsspec) URL: a plain path names
    # the container esdm://<path> (esdm_hpc.vol.names), and xarray makes it absolute.
    path = "xr/run1.nc"
    result = site.python(XARRAY, path, timeout=120)
    assert result.returncode == 0, report(result)
    seen = json.loads(result.stdout)
    assert seen["dims"] == {"time": 3, "lat": 3, "lon": 4}
    assert seen["coords"] == ["lat", "lon", "time"]
    assert seen["attrs"] == {"title": "esdm xarray", "version": "2"}

    container = "esdm://" + container_for_path(os.path.join(site.cwd, path))
    assert not (Path(site.cwd) / path).exists()  # a container, not a file
    with esdm_hpc.open(container, config=site.config) as c:
        tas = c["tas"]
        # netCDF's dimensions are HDF5 dimension scales: datasets of their own
        assert tas.shape == (3, 3, 4) and tas.dtype == np.dtype("<f4")
        assert all(text(c[d].attrs["CLASS"]) == "DIMENSION_SCALE" for d in ("time", "lat", "lon"))
        assert (tas[...] == np.arange(36, dtype="f4").reshape(3, 3, 4)).all()
        assert text(tas.attrs["units"]) == "K"
        assert text(tas.attrs["long_name"]) == "air temperature"
        assert (c["mask"][...] == np.eye(3, 4, dtype="i1")).all()
        assert c["lat"][...].tolist() == [-10.0, 0.0, 10.0]
        assert c["lon"][...].tolist() == [0.0, 90.0, 180.0, 270.0]
        assert c["time"][...].tolist() == [0.0, 0.5, 1.0]
        assert text(c["time"].attrs["long_name"]) == "time step"
        assert text(c.attrs["title"]) == "esdm xarray" and c.attrs["version"] == 2


H5PY_WRITE = """
import sys
import h5py, numpy as np

with h5py.File(sys.argv[1], "w", track_order=True) as f:  # as h5netcdf creates files
    f.attrs["title"] = np.bytes_("written by h5py")
    f.attrs["levels"] = np.array([1000, 850, 500], dtype="i4")
    tas = f.create_dataset("tas", data=np.arange(6, dtype="f4").reshape(2, 3))
    tas.attrs["units"] = np.bytes_("K")
    tas.attrs["valid_range"] = np.array([150, 350], dtype="f4")
    f.create_dataset("count", data=np.array([7, 8, 9], dtype="i4"))
"""


def test_ncdump_reads_a_container_h5py_wrote_as_it_reads_the_file(site: Site) -> None:
    # Without dimension scales netCDF-4 makes up phony dimensions; the rest is
    # what ncdump shows of the same program's HDF5 file.
    site.native(site.env["ESDM_VOL_PYTHON"], "-c", H5PY_WRITE, "run1.nc")
    reference = site.native(str(NCDUMP), "run1.nc")

    result = site.python(H5PY_WRITE, "esdm://h5/run1")
    assert result.returncode == 0, report(result)
    dump = site.run(str(NCDUMP), "esdm://h5/run1", timeout=60)
    assert dump.returncode == 0, report(dump)
    assert "\tfloat tas(phony_dim_0, phony_dim_1) ;" in dump.stdout.splitlines()
    assert dump.stdout == reference.stdout


TRACK_ORDER = """
import json, sys
import h5py, numpy as np

name, track = sys.argv[1], sys.argv[2] == "track"
with h5py.File(name, "w", track_order=track) as f:
    for n in ("zeta", "alpha", "mid"):
        f.create_dataset(n, data=np.arange(2))
with h5py.File(name, "r") as f:
    print(json.dumps({"members": list(f),
                      "fcpl": f.id.get_create_plist().get_link_creation_order(),
                      "gcpl": f["/"].id.get_create_plist().get_link_creation_order()}))
"""


@pytest.mark.parametrize("track", [True, False])
def test_the_file_creation_order_of_links_is_the_root_groups(site: Site, track: bool) -> None:
    # What netCDF-4 and h5netcdf create files with (H5Pset_link_creation_order
    # on the fcpl); netCDF lists variables in that order and opens a file for
    # writing only if its root group tracks it.
    name = f"esdm://order/{track}"
    result = site.python(TRACK_ORDER, name, "track" if track else "name")
    assert result.returncode == 0, report(result)
    seen = json.loads(result.stdout)
    tracked_indexed = 3  # H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED
    if track:
        assert seen == {"members": ["zeta", "alpha", "mid"], "fcpl": tracked_indexed,
                        "gcpl": tracked_indexed}  # fmt: skip
    else:
        assert seen == {"members": ["alpha", "mid", "zeta"], "fcpl": 0, "gcpl": 0}


@pytest.mark.parametrize("name", ["esdm://missing", "esdm://nc/missing", "missing.nc"])
def test_netcdf_passes_container_names_to_the_connector(site: Site, name: str) -> None:
    # Stock netCDF-C refuses esdm:// ("Invalid argument"), crashes on a URL
    # without a path, and looks for a file to read a magic number from; ours
    # (deps/patches) asks HDF5, so a missing container is reported as such.
    result = site.run(str(NCDUMP), "-h", name, timeout=60)
    assert result.returncode == 1, report(result)
    assert result.stderr.strip() == f"{NCDUMP}: {name}: No such file or directory"
