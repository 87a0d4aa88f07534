"""Run a Python program or a pytest selection under mpirun from a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# OpenMPI refuses to run as root and to place more ranks than cores unless told.
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
}


def mpi_env() -> dict[str, str]:
    env = {**os.environ, **MPI_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def mpirun(nprocs: int, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``mpirun -n nprocs python args...``; output captured, never hangs past ``timeout``."""
    launcher = shutil.which("mpirun")
    if launcher is None:
        raise RuntimeError("mpirun not found: run `make setup` (installs OpenMPI)")
    command = [launcher, "-n", str(nprocs), "--oversubscribe", sys.executable, *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=mpi_env(), cwd=ROOT
    )
