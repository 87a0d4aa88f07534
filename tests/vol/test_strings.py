"""Datasets of variable-length strings through the connector: h5py, xarray, ncdump.

netCDF-4's ``string`` variables are HDF5 datasets of variable-length
strings; h5py writes them from object arrays, xarray (h5netcdf) from its
string variables. Each program runs with the `esdm vol-env` environment.
"""

import json

import numpy as np
import pytest

import esdm_hpc
from tests.vol.conftest import Result, Site, report
from tests.vol.test_netcdf import NCDUMP

H5PY_STRINGS = """
import json, sys
import h5py, numpy as np

with h5py.File(sys.argv[1], "w", track_order=True) as f:
    f.create_dataset("names", data=np.array(["alpha", "", "gamma ray"], dtype=h5py.string_dtype()))
    grid = f.create_dataset("grid", (4, 5), maxshape=(None, 5), dtype=h5py.string_dtype(),
                            fillvalue=b"-")
    grid[1, 1:4] = ["x", "yy", "zzz"]
    grid[::2, 0] = ["even0", "even2"]  # a strided selection
    grid.resize((6, 5))
    grid[5, 4] = "\\u00e9t\\u00e9"
with h5py.File(sys.argv[1], "r") as f:
    print(json.dumps({"names": f["names"].asstr()[...].tolist(),
                      "grid": f["grid"].asstr()[...].tolist(),
                      "corner": f["grid"].asstr()[1:3, 1:3].tolist(),
                      "fill": f["grid"].fillvalue.decode()}))
"""

GRID = [
    ["even0", "-", "-", "-", "-"],
    ["-", "x", "yy", "zzz", "-"],
    ["even2", "-", "-", "-", "-"],
    ["-", "-", "-", "-", "-"],
    ["-", "-", "-", "-", "-"],
    ["-", "-", "-", "-", "\u00e9t\u00e9"],
]


def run_python(site: Site, script: str, *args: str) -> Result:
    result = site.python(script, *args, timeout=120)
    assert result.returncode == 0, report(result)
    return result


def test_h5py_string_datasets_read_back_as_native_hdf5_does(site: Site) -> None:
    seen = json.loads(run_python(site, H5PY_STRINGS, "esdm://strings").stdout)
    assert seen == {
        "names": ["alpha", "", "gamma ray"],
        "grid": GRID,
        "corner": [["x", "yy"], ["-", "-"]],
        "fill": "-",
    }
    with esdm_hpc.open("esdm://strings", config=site.config) as c:
        assert c["grid"][...].tolist() == GRID
        assert c["grid"].fillvalue == "-"
        assert c["names"][1:].tolist() == ["", "gamma ray"]


def test_strings_written_through_the_python_api_read_back_through_h5py(site: Site) -> None:
    with esdm_hpc.open("esdm://api", "w", config=site.config) as c:
        c.create_dataset("station", data=np.array(["Hamburg", "Reading", "Boulder"], dtype=object))
    script = "import h5py, sys; print(h5py.File(sys.argv[1])['station'].asstr()[::2].tolist())"
    assert run_python(site, script, "esdm://api").stdout.strip() == "['Hamburg', 'Boulder']"


XARRAY_STRINGS = """
import sys
import numpy as np, xarray as xr

ds = xr.Dataset(
    {"station_name": ("station", np.array(["Hamburg", "Reading", "Boulder"], dtype=object)),
     "tas": ("station", np.array([280.5, 283.0, 275.25]))},
)
ds.to_netcdf(sys.argv[1], engine="h5netcdf")
with xr.open_dataset(sys.argv[1], engine="h5netcdf") as back:
    xr.testing.assert_identical(back.load(), ds)
print("ok")
"""


def test_xarray_string_variables_round_trip(site: Site) -> None:
    # a plain path: xarray takes esdm://... for an fsspec URL
    assert run_python(site, XARRAY_STRINGS, "xr/strings.nc").stdout.strip() == "ok"


@pytest.mark.skipif(not NCDUMP.exists(), reason="netCDF-C is not built: run `make netcdf`")
def test_ncdump_shows_string_variables_as_it_does_for_the_file(site: Site) -> None:
    site.native(site.env["ESDM_VOL_PYTHON"], "-c", H5PY_STRINGS, "strings")
    reference = site.native(str(NCDUMP), "strings")
    run_python(site, H5PY_STRINGS, "esdm://strings")
    dump = site.run(str(NCDUMP), "esdm://strings", timeout=60)
    assert dump.returncode == 0, report(dump)
    assert '  "-", "x", "yy", "zzz", "-",' in dump.stdout.splitlines(), dump.stdout
    assert dump.stdout == reference.stdout
