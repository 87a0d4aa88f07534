"""Test-suite wide settings."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

# `make test` (and CI) runs the same examples every time, so that a run fails
# only for a change in the code; ESDM_HYPOTHESIS=explore draws new ones, to
# look for failures (hypothesis keeps those it finds in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("ESDM_HYPOTHESIS", "ci"))

MPI_TESTS = Path(__file__).parent / "mpi"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # tests/mpi runs under mpirun (tests/test_mpi_suite.py); in a serial run
    # it would only add a page of skips.
    if not config.getoption("with_mpi", default=False) and collection_path == MPI_TESTS:
        return True
    return None
