"""`make demo` (esdm_hpc/demo.py) on 2 ranks, small: it shows the in-situ series equal
to the one read back, time travel, a subscriber that missed no epoch and the event
log, and writes its PNG next to the data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.mpirun import ROOT, mpi_env
from tests.test_benchmarks import PNG_SIGNATURE


def test_the_demo_shows_what_a_plain_file_does_not_and_draws_it(tmp_path: Path) -> None:
    env = {**mpi_env(), "ESDM_ROOT": str(tmp_path / "data")}
    env.pop("ESDM_CONFIG", None)
    command = ["mpirun", "-n", "2", "--oversubscribe", str(ROOT / ".venv/bin/python"), "-m",
               "esdm_hpc.demo", "--shape", "64", "48", "--steps", "8"]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)  # fmt: skip
    out = run.stdout
    assert run.returncode == 0, f"{out[-4000:]}\n{run.stderr[-4000:]}"
    for line in (
        "2 ranks on a 2x1 process grid wrote 8 steps of a 64x48 field",
        "mean temperature around the hot spot (25, 28) per step:",
        "largest difference to the read-back 0.0e+00",
        "time travel: epoch 5 of 8 still shows the run as it was then: 5 steps of temperature",
        "and 5 values of the in-situ series",
        "saw 8 epochs as they were published, missed none",
        "the event log (esdm events esdm://demo/heat): 8 commit, 8 hook, 1 note",
        "esdm://demo/heat  epoch 8 of 8",
    ):
        assert line in out, out
    png = tmp_path / "data" / "demo-heat.png"
    assert f"the last field and the in-situ series: {png}" in out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
    assert os.listdir(tmp_path) == ["data"]  # nothing written beside it
