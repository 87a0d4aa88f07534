"""Unmodified parallel HDF5 programs through the connector: C and h5py with MPI-IO.

The C programs under tests/vol/programs are plain HDF5 (built by the
`plugin` fixture); the connector starts the Python core inside them.
"""

import numpy as np
import pytest

import esdm_hpc
from tests.vol.conftest import PROGRAMS, Site, report


def expected(shape: tuple[int, int, int]) -> np.ndarray:
    i, j, k = np.indices(shape)
    return (i * 10000 + j * 100 + k).astype(np.float64)


def test_c_program_writes_hyperslabs_collectively_and_independently_on_4_ranks(
    site: Site,
) -> None:
    result = site.mpirun(4, str(PROGRAMS / "hyperslabs3d"), "esdm://c/hyperslabs")
    assert result.returncode == 0, report(result)
    oks = [line.split() for line in result.stdout.splitlines() if line.startswith("ok ")]
    assert sorted(int(rank) for _, rank, _ in oks) == [0, 1, 2, 3], report(result)
    assert len({checksum for _, _, checksum in oks}) == 1  # every rank read the same

    with esdm_hpc.open("esdm://c/hyperslabs", config=site.config) as c:
        collective, independent = c["collective"], c["independent"]
        assert collective.dtype == np.dtype("<f8") and independent.dtype == np.dtype("<i4")
        assert (collective[...] == expected((8, 6, 5))).all()
        assert (independent[...] == expected((4, 24, 5))).all()
        assert c.epoch == 1  # one commit, at H5Fclose


def test_unsupported_features_fail_with_an_hdf5_error_naming_them(site: Site) -> None:
    result = site.run(str(PROGRAMS / "unsupported"), "esdm://c/unsupported")
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() == "ok", report(result)
    assert (
        "esdm VOL: a virtual dataset with unlimited mappings is not supported yet" in result.stderr
    )
    assert "reference datatypes other than H5T_STD_REF and H5T_STD_REF_OBJ" in result.stderr
    assert "H5Dcreate2(): unable to synchronously create dataset" in result.stderr  # HDF5's stack

    with esdm_hpc.open("esdm://c/unsupported", config=site.config) as c:
        assert "virtual" not in c
        assert c["data"][...].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]


MPIO = """
import sys
import h5py, numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.rank, comm.size
name = sys.argv[1]
with h5py.File(name, "w", driver="mpio", comm=comm) as f:
    d = f.create_dataset("field", shape=(4 * size, 6), dtype="f8", maxshape=(None, 6))
    d.attrs["ranks"] = size
    d[4 * rank:4 * rank + 4] = np.full((4, 6), rank, dtype="f8")
    f.flush()  # an epoch: now every rank sees every rank's block
    assert (d[::4, 0] == np.arange(size)).all(), d[...]
    d.resize((4 * size + 1, 6))
    if rank == 0:
        d[-1] = 99
with h5py.File(name, "r", driver="mpio", comm=comm) as f:
    d = f["field"]
    assert d.shape == (4 * size + 1, 6) and d.attrs["ranks"] == size
    assert (d[:-1:4, 0] == np.arange(size)).all() and (d[-1] == 99).all()
sys.stdout.write(f"ok {rank}\\n")  # one write: ranks share the pipe
"""


@pytest.mark.parametrize("nprocs", [2, 4])
def test_h5py_with_the_mpio_driver(site: Site, nprocs: int) -> None:
    result = site.mpirun(nprocs, site.env["ESDM_VOL_PYTHON"], "-c", MPIO, "esdm://mpio/field")
    assert result.returncode == 0, report(result)
    assert result.stdout.count("ok ") == nprocs, report(result)

    with esdm_hpc.open("esdm://mpio/field", config=site.config) as c:
        field = c["field"][...]
    assert field.shape == (4 * nprocs + 1, 6)
    assert (field[:-1] == np.repeat(np.arange(nprocs), 4)[:, None]).all()
    assert (field[-1] == 99).all()


MPIO_LEFT_OPEN = """
import sys
import h5py, numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
f = h5py.File(sys.argv[1], "w", driver="mpio", comm=comm)  # never closed
d = f.create_dataset("x", (2 * comm.size,), dtype="i4")
d[2 * comm.rank : 2 * comm.rank + 2] = comm.rank
"""


def test_h5py_mpio_files_left_open_are_committed_at_exit(site: Site) -> None:
    result = site.mpirun(2, site.env["ESDM_VOL_PYTHON"], "-c", MPIO_LEFT_OPEN, "esdm://mpio/left")
    assert result.returncode == 0, report(result)
    with esdm_hpc.open("esdm://mpio/left", config=site.config) as c:
        assert c["x"][...].tolist() == [0, 0, 1, 1]
