"""Runs the MPI tests (tests/mpi, marked ``mpi``) under mpirun with 2 and 4 ranks.

They are driven from here so that one ``pytest`` run covers the serial and the
parallel tests and reports them in one summary.
"""

import pytest

from tests.mpirun import mpirun


@pytest.mark.parametrize("nprocs", [2, 4])
def test_mpi_tests_pass(nprocs: int) -> None:
    result = mpirun(
        nprocs,
        "-m", "pytest", "--with-mpi", "-m", "mpi", "-q", "--color=no", "-p", "no:cacheprovider",
        "tests/mpi",
    )  # fmt: skip
    report = f"--- stdout\n{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    assert " passed" in result.stdout, report
