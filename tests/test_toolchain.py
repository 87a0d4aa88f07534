"""The toolchain the project builds: h5py with MPI on the project's parallel HDF5."""

import h5py

from tests.mpirun import ROOT


def test_h5py_is_built_with_mpi() -> None:
    assert h5py.get_config().mpi


def test_h5py_uses_the_project_hdf5() -> None:
    assert h5py.version.hdf5_version_tuple[:2] == (1, 14)
    # the library h5py loaded is the one in the project's dependency prefix
    with open("/proc/self/maps") as maps:
        libraries = {line.split()[-1] for line in maps if "libhdf5" in line}
    prefix = (ROOT / ".deps" / "hdf5").resolve()
    assert libraries and all(lib.startswith(str(prefix)) for lib in libraries), libraries


def test_mpi4py_uses_the_system_openmpi() -> None:
    from mpi4py import MPI

    assert "Open MPI" in MPI.Get_library_version()
