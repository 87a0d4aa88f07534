"""Runs the MPI tests (tests/mpi, marked ``mpi``) under mpirun.

They are driven from here so that one ``pytest`` run covers the serial and the
parallel tests and reports them in one summary. Every MPI test runs on 2 and 4
ranks; the epoch tests also on 8 (oversubscribed on this 2-core machine).
"""

import pytest

from tests.mpirun import mpirun


@pytest.mark.parametrize(
    ("nprocs", "tests"),
    [(2, "tests/mpi"), (4, "tests/mpi"), (8, "tests/mpi/test_epochs.py")],
)
def test_mpi_tests_pass(nprocs: int, tests: str) -> None:
    result = mpirun(
        nprocs,
        "-m", "pytest", "--with-mpi", "-m", "mpi", "-q", "--color=no", "-p", "no:cacheprovider",
        tests,
    )  # fmt: skip
    report = f"--- stdout\n{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    assert " passed" in result.stdout, report
