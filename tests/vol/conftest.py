"""Fixtures for the VOL connector tests: the built plugin and a site to run programs in.

Every HDF5 program runs in a subprocess (HDF5 reads HDF5_VOL_CONNECTOR once,
at start-up) with the environment `esdm vol-env` prints, a site
configuration of its own under tmp_path, and a timeout, so nothing can hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from esdm_hpc.vol import env as vol_env
from tests.mpirun import MPI_ENV, ROOT

HDF5 = ROOT / ".deps" / "hdf5"
PROGRAMS = vol_env.plugin_dir() / "programs"

Result = subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def plugin() -> Path:
    """The connector and the C test programs, built (incrementally) once per run."""
    if not (HDF5 / "include" / "hdf5.h").exists():
        pytest.skip(f"parallel HDF5 is not built in {HDF5}: run `make setup`")
    build = subprocess.run(
        ["make", "-C", str(ROOT / "vol_plugin"), "all", "programs"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, f"building the connector failed:\n{build.stdout}\n{build.stderr}"
    return vol_env.plugin_dir() / vol_env.LIBRARY


@dataclass
class Site:
    """A site configuration (one posix backend) and an environment that routes HDF5 to it."""

    config: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *command: str, timeout: float = 60) -> Result:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=self.cwd
        )

    def native(self, *command: str, timeout: float = 120) -> Result:
        """``command`` without the connector (HDF5 writes and reads plain files),
        which must succeed: the reference a test compares the connector with."""
        connector = ("HDF5_VOL_CONNECTOR", "HDF5_PLUGIN_PATH")
        env = {k: v for k, v in self.env.items() if k not in connector}
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.cwd
        )
        assert result.returncode == 0, report(result)
        return result

    def python(self, script: str, *args: str, timeout: float = 60) -> Result:
        return self.run(sys.executable, "-c", script, *args, timeout=timeout)

    def mpirun(self, nprocs: int, *command: str, timeout: float = 120) -> Result:
        return self.run("mpirun", "-n", str(nprocs), "--oversubscribe", *command, timeout=timeout)


def write_site_config(directory: Path) -> Path:
    """A site configuration with one posix backend under directory."""
    config = directory / "site.json"
    backend = {"id": "disk", "type": "posix", "target": str(directory / "disk")}
    config.write_text(json.dumps({"backends": [backend]}))
    return config


@pytest.fixture
def site_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's site configuration, for calling the bridge in-process."""
    config = write_site_config(tmp_path)
    monkeypatch.setenv("ESDM_CONFIG", str(config))
    return config


@pytest.fixture
def site(plugin: Path, tmp_path: Path) -> Site:
    config = write_site_config(tmp_path)
    env = {**os.environ, **MPI_ENV, **vol_env.environment(), "ESDM_CONFIG": str(config)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.pop("ESDM_ROOT", None)
    work = tmp_path / "work"  # no stray ./esdm.json can be picked up here
    work.mkdir()
    return Site(config, env, work)


def report(result: Result) -> str:
    """What to show when a program failed."""
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
        f"\n--- stderr\n{result.stderr[-6000:]}"
    )
