"""Test-suite wide settings."""

from pathlib import Path

import pytest

MPI_TESTS = Path(__file__).parent / "mpi"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # tests/mpi runs under mpirun (tests/test_mpi_suite.py); in a serial run
    # it would only add a page of skips.
    if not config.getoption("with_mpi", default=False) and collection_path == MPI_TESTS:
        return True
    return None
