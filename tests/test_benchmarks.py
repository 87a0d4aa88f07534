"""Smoke test of benchmarks/write_read.py: tiny sizes under mpirun -n 2, all systems."""

import json
from pathlib import Path

from tests.mpirun import mpirun


def test_write_read_benchmark_runs_and_reports_ratios(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run = mpirun(
        2,
        "benchmarks/write_read.py", "--quick", "--dir", str(tmp_path), "--json", str(results),
        timeout=120,
    )  # fmt: skip
    report = f"--- stdout\n{run.stdout[-6000:]}\n--- stderr\n{run.stderr[-4000:]}"
    assert run.returncode == 0, report
    for line in (
        "ratio ESDM/raw-posix write:",
        "ratio ESDM/h5py-collective write:",
        "commit overhead beyond data flush, 2 ranks x 100 fragments:",
    ):
        assert line in run.stdout, report
    record = json.loads(results.read_text())
    assert record["nprocs"] == 2
    assert {"posix", "esdm"} <= set(record["write"])
    assert list(tmp_path.iterdir()) == [results], "the data directory was not removed"
