"""The burst buffer reaches unmodified programs through ESDM_CONFIG alone: a C program
writing through the HDF5 VOL connector on 4 ranks and xarray writing netCDF-4 with
h5netcdf land on the burst buffer; `esdm drain` stages them out; with the burst
buffer gone, everything reads back (docs/architecture.md §5)."""

import json
import shutil

import numpy as np

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.epochs.history import History
from esdm_hpc.vol.names import container_for_path
from tests.vol.conftest import PROGRAMS, Site, report
from tests.vol.test_netcdf import XARRAY
from tests.vol.test_parallel import expected


def with_burst_buffer(site: Site) -> dict:
    config = json.loads(site.config.read_text())
    bb = site.config.parent / "bb"
    config["backends"].append(
        {
            "id": "bb",
            "type": "burstbuffer",
            "target": str(bb),
            "drain_to": "disk",
            "options": {"drain": "at-end"},
        }
    )
    site.config.write_text(json.dumps(config))
    return config


def places(config: dict, uri: str) -> set[str]:
    with esdm_hpc.open(uri, config=config) as container:
        return {r.backend for f in History.load(container.store).fragments() for r in f.replicas}


def stage_out(site: Site, uri: str) -> None:
    assert cli.main(["--config", str(site.config), "drain", "--quiet", uri]) == 0
    shutil.rmtree(site.config.parent / "bb")  # the nodes' tmpfs at the job's end


def test_a_c_program_writes_to_the_burst_buffer_through_esdm_config(site: Site) -> None:
    config = with_burst_buffer(site)
    uri = "esdm://c/staged"
    result = site.mpirun(4, str(PROGRAMS / "hyperslabs3d"), uri)
    assert result.returncode == 0, report(result)
    assert places(config, uri) == {"bb"}
    stage_out(site, uri)
    assert places(config, uri) == {"disk"}
    with esdm_hpc.open(uri, config=config) as container:
        np.testing.assert_array_equal(container["collective"][...], expected((8, 6, 5)))
        np.testing.assert_array_equal(container["independent"][...], expected((4, 24, 5)))


def test_xarray_writes_to_the_burst_buffer_and_reads_after_the_drain(site: Site) -> None:
    config = with_burst_buffer(site)
    path = "xr/staged.nc"
    result = site.python(XARRAY, path, timeout=120)
    assert result.returncode == 0, report(result)
    uri = "esdm://" + container_for_path(str(site.cwd / path))
    assert places(config, uri) == {"bb"}
    stage_out(site, uri)
    again = site.python(XARRAY.split("ds.to_netcdf")[0] + READ_BACK, path, timeout=120)
    assert again.returncode == 0, report(again)
    assert json.loads(again.stdout)["tas"] == np.arange(36).tolist()


READ_BACK = """
with xr.open_dataset(path, engine="h5netcdf") as back:
    xr.testing.assert_identical(back.load(), ds)
    print(json.dumps({"tas": back["tas"].values.ravel().astype(int).tolist()}))
"""
