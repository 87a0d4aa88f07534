"""Parallel HDF5 through h5py with the MPI-IO driver: the baseline the middleware builds on."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from esdm_hpc.kernels.decomposition import decompose

SHAPE = (64, 48, 10)


def shared_path(comm: MPI.Comm, name: str) -> Path:
    """A fresh path that every rank agrees on."""
    path = None
    if comm.rank == 0:
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="esdm-mpio-")) / name
    return Path(comm.bcast(path))


def expected_field() -> np.ndarray:
    return np.arange(np.prod(SHAPE), dtype=np.float64).reshape(SHAPE)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("collective", [True, False])
def test_each_rank_writes_its_block_and_all_read_back(collective: bool) -> None:
    comm = MPI.COMM_WORLD
    path = shared_path(comm, "field.h5")
    offsets, counts = decompose(SHAPE, comm.size)
    region = tuple(
        slice(o, o + c) for o, c in zip(offsets[comm.rank], counts[comm.rank], strict=True)
    )
    field = expected_field()

    with h5py.File(path, "w", driver="mpio", comm=comm) as f:
        dset = f.create_dataset("field", shape=SHAPE, dtype="f8")
        if collective:
            with dset.collective:
                dset[region] = field[region]
        else:
            dset[region] = field[region]

    with h5py.File(path, "r", driver="mpio", comm=comm) as f:
        whole = f["field"][...]
    np.testing.assert_array_equal(whole, field)
    comm.Barrier()
    if comm.rank == 0:
        path.unlink()
        path.parent.rmdir()
