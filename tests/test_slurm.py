"""End-to-end test of the private one-node Slurm cluster in slurm/.

Starts the cluster with slurm/start-cluster.sh in a fresh run directory on free
ports, runs tests/programs/slurm_ranks.py through ``srun --mpi=pmix`` (OpenMPI
and mpi4py over PMIx) and through ``sbatch --wait slurm/bench.sbatch``, checks
every rank's block checksums against ones computed here, proves that a
model's commits submit a post-processing job each (an on-commit command
running ``sbatch slurm/postprocess.py``) that reads that epoch and writes a
derived container, and stops the cluster again (also when a test fails).
Needs root and the Debian slurm/munge packages.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.epochs.events import EventLog
from esdm_hpc.kernels.checksum import block_checksums

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "slurm" / "start-cluster.sh"
STOP = ROOT / "slurm" / "stop-cluster.sh"
BENCH = ROOT / "slurm" / "bench.sbatch"
PROGRAM = ROOT / "tests" / "programs" / "slurm_ranks.py"
POSTPROCESS = ROOT / "slurm" / "postprocess.py"

# Daemons are in sbin, which a CI PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
REQUIRED = ("munged", "munge", "slurmctld", "slurmd", "srun", "sbatch", "sinfo", "squeue")
DAEMONS = ("munged", "slurmctld", "slurmd")

START_TIMEOUT = 120  # seconds; the start script itself gives up after 60
STOP_TIMEOUT = 120
JOB_TIMEOUT = 180

LINE = re.compile(
    r"^rank=(?P<rank>\d+) size=(?P<size>\d+) host=(?P<host>\S+) nblocks=(?P<nblocks>\d+) "
    r"sum=(?P<sum>[0-9a-f]{16}) sums=(?P<sums>[0-9a-f,]+)$"
)


@dataclass
class Cluster:
    run_dir: Path
    env: dict[str, str]  # environment for srun/sbatch: env.sh sourced, PYTHONPATH set
    pids: dict[str, int]

    def logs(self) -> str:
        """The last lines of the daemon logs, for failure messages."""
        parts = []
        for log in sorted((self.run_dir / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-30:]
            parts.append(f"----- {log} -----\n" + "\n".join(lines))
        return "\n".join(parts)


@functools.cache
def _load_program() -> ModuleType:
    """Import slurm_ranks.py as a module (it initialises MPI only in main())."""
    spec = importlib.util.spec_from_file_location("slurm_ranks", PROGRAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair() -> int:
    """A port P with P and P+1 free (slurmctld and slurmd), so that the test
    cluster never collides with one a developer already runs."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65535 and _bindable(port) and _bindable(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


def _sourced_env(env_sh: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment after `source env.sh`, exactly as a user's shell gets it."""
    out = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "bash", str(env_sh)],
        env=base,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return dict(pairs)


def _launcher_var(name: str) -> bool:
    """Variables set by an enclosing Slurm job or mpirun: srun would try to join
    that outer job, MPI would try to wire up with the outer launcher."""
    if name.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_", "PMIX_", "PMI_")):
        return True
    if name.startswith("OMPI_MCA_"):  # user MCA settings stay, launcher wiring goes
        return name.startswith(("OMPI_MCA_orte_", "OMPI_MCA_ess", "OMPI_MCA_pmix"))
    return name.startswith("OMPI_") and not name.startswith("OMPI_ALLOW_RUN_AS_ROOT")


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not _launcher_var(k)}


def _alive(pid: int, name: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == name
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    missing = [name for name in REQUIRED if shutil.which(name, path=SEARCH_PATH) is None]
    if missing:
        pytest.skip(f"Slurm/munge not installed (missing: {', '.join(missing)})")

    # mkdtemp, not tmp_path: munged insists that every directory above its
    # socket is searchable by all, and pytest's base temp dir is 0700.
    run_dir = Path(tempfile.mkdtemp(prefix="esdm-slurm-test-", dir="/tmp"))
    base = _clean_environ()
    base.update(
        ESDM_SLURM_DIR=str(run_dir),
        ESDM_SLURM_PORT=str(_free_port_pair()),
        ESDM_SLURM_TIMEOUT="60",
        PATH=SEARCH_PATH,
    )
    cluster = Cluster(run_dir=run_dir, env={}, pids={})
    try:
        started = subprocess.run(
            [str(START)],
            env=base,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        for name in DAEMONS:
            pidfile = run_dir / "run" / f"{name}.pid"
            if pidfile.is_file():
                cluster.pids[name] = int(pidfile.read_text().strip())
        if started.returncode != 0:
            pytest.fail(
                f"start-cluster.sh failed (exit {started.returncode}):\n"
                f"{started.stdout}\n{started.stderr}\n{cluster.logs()}"
            )
        env = _sourced_env(run_dir / "env.sh", base)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cluster.env = env
        yield cluster
    finally:
        stopped = subprocess.run(
            [str(STOP)],
            env=base,
            capture_output=True,
            text=True,
            timeout=STOP_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        shutil.rmtree(run_dir, ignore_errors=True)
        leftover = {n: p for n, p in cluster.pids.items() if _alive(p, n)}
        assert stopped.returncode == 0, f"stop-cluster.sh failed:\n{stopped.stderr}"
        assert not leftover, f"daemons still running after stop-cluster.sh: {leftover}"


def _expected_digests(rank: int, mib: int) -> list[str]:
    program = _load_program()
    digests = block_checksums(program.rank_buffer(rank, mib), program.BLOCK_SIZE)
    return [f"{int(d):016x}" for d in digests]


def _check_ranks(output: str, ntasks: int, mib: int, context: str) -> None:
    """Every rank 0..ntasks-1 reported once, with the right size and digests."""
    reports = [m for m in map(LINE.match, output.splitlines()) if m]
    ranks = sorted(int(m["rank"]) for m in reports)
    assert ranks == list(range(ntasks)), f"ranks reported: {ranks}\n{context}"
    host = socket.gethostname()
    for m in reports:
        rank = int(m["rank"])
        assert int(m["size"]) == ntasks, f"rank {rank}: size={m['size']}\n{context}"
        assert m["host"] == host, f"rank {rank}: host={m['host']}\n{context}"
        expected = _expected_digests(rank, mib)
        assert m["sums"].split(",") == expected, f"rank {rank}: digests differ\n{context}"
        assert m["sum"] == expected[0]
        assert int(m["nblocks"]) == len(expected)


def test_srun_pmix_ranks(cluster: Cluster) -> None:
    ntasks, mib = 4, 3
    cmd = [
        "srun",
        "--mpi=pmix",
        f"--ntasks={ntasks}",
        "--nodes=1",
        "--time=3",  # minutes: Slurm kills the step even if we are killed first
        "--kill-on-bad-exit=1",
        sys.executable,
        str(PROGRAM),
        f"--mib={mib}",
    ]
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"srun did not finish in {JOB_TIMEOUT}s: {exc}\n{cluster.logs()}")
    context = f"$ {' '.join(cmd)}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, f"srun failed (exit {proc.returncode})\n{context}"
    _check_ranks(proc.stdout, ntasks, mib, context)


def test_sbatch_wait_bench_template(cluster: Cluster) -> None:
    ntasks, mib = 2, 1
    output = cluster.run_dir / "bench-%j.out"
    cmd = [
        "sbatch",
        "--wait",
        "--parsable",
        f"--ntasks={ntasks}",
        "--time=3",
        f"--output={output}",
        str(BENCH),
        "tests/programs/slurm_ranks.py",
        f"--mib={mib}",
    ]
    env = dict(cluster.env, ESDM_VENV=sys.prefix)  # the venv running this test
    env.pop("BENCH", None)
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"sbatch --wait did not finish in {JOB_TIMEOUT}s: {exc}\n{cluster.logs()}")
    job_id = proc.stdout.strip().split(";")[0]
    out_file = Path(str(output).replace("%j", job_id))
    job_output = out_file.read_text() if out_file.is_file() else "(no output file)"
    context = (
        f"$ {' '.join(cmd)}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
        f"job output {out_file}:\n{job_output}"
    )
    assert proc.returncode == 0, f"batch job failed (exit {proc.returncode})\n{context}"
    assert job_output.startswith("# esdm-bench job="), context
    _check_ranks(job_output, ntasks, mib, context)


# Two ranks write half of the field T each, new values every step, and commit
# every step (epochs 1..steps); the site configuration's on-commit command submits
# slurm/postprocess.py after each commit.
MODEL = """
import sys
import numpy as np
from mpi4py import MPI
import esdm_hpc
config, steps = sys.argv[1], int(sys.argv[2])
comm = MPI.COMM_WORLD
with esdm_hpc.open("esdm://run", "w", comm=comm, config=config) as c:
    c.create_dataset("T", shape=(4, 6), dtype="f8")
    rows = slice(2 * comm.rank, 2 * comm.rank + 2)
    for step in range(steps):
        c["T"][rows] = np.arange(12.0).reshape(2, 6) ** (1 + step / 4) + 10 * comm.rank - step
        c.commit()
"""
POST_JOB = "esdm-post-test"


def _wait_for_jobs(cluster: Cluster, name: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        queued = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], env=cluster.env,
                                capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
        if not queued.stdout.strip():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"jobs {name} still queued:\n{queued.stdout}\n{cluster.logs()}")
        time.sleep(0.5)


def test_commit_submits_a_post_processing_job_that_reads_its_epoch(cluster: Cluster) -> None:
    work = cluster.run_dir / "oncommit"  # on this machine: the jobs see it as the model does
    work.mkdir()
    config = work / "site.json"
    submit = ["sbatch", f"--job-name={POST_JOB}", f"--output={work}/post-%j.out", str(POSTPROCESS)]
    config.write_text(json.dumps({
        "backends": [{"id": "disk", "type": "posix", "target": str(work / "disk")}],
        "on_commit": [{"command": submit}],
    }))  # fmt: skip
    # the job's python (postprocess.py's "#!/usr/bin/env python3") is this venv's
    env = dict(cluster.env, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                  cluster.env["PATH"]]))  # fmt: skip
    steps = 3
    cmd = ["srun", "--mpi=pmix", "--ntasks=2", "--nodes=1", "--time=3", "--kill-on-bad-exit=1",
           sys.executable, "-c", MODEL, str(config), str(steps)]  # fmt: skip
    model = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                           timeout=JOB_TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    assert model.returncode == 0, f"model failed:\n{model.stdout}\n{model.stderr}"
    # the model's rank 0 waited for its sbatch calls before it ended
    _wait_for_jobs(cluster, POST_JOB)
    outputs = sorted(work.glob("post-*.out"))
    context = "\n".join(f"----- {p.name}\n{p.read_text()}" for p in outputs)
    assert len(outputs) == steps, f"one job per epoch, by rank 0 only\n{context}"
    seen = set()
    for epoch in range(1, steps + 1):
        with esdm_hpc.open("esdm://run", config=str(config), epoch=epoch) as raw:
            expected = np.mean(raw["T"][...], axis=-1)
        seen.add(expected.tobytes())
        with esdm_hpc.open(f"esdm://run-post-e{epoch}", config=str(config)) as derived:
            assert dict(derived.attrs) == {"source": "esdm://run", "source_epoch": epoch}, context
            assert np.array_equal(derived["T"][...], expected), f"epoch {epoch}\n{context}"
    assert len(seen) == steps  # each epoch's field differs: reading HEAD would be caught
    with esdm_hpc.open("esdm://run", config=str(config)) as raw:
        logged = EventLog(raw.store).read(kinds=["derived", "command"])
    assert sorted((e.kind, e.epoch, e.fields["container"]) for e in logged) == [
        ("derived", epoch, f"esdm://run-post-e{epoch}") for epoch in range(1, steps + 1)
    ], context


BURST_BUFFER = ROOT / "slurm" / "burst-buffer.sbatch"
# Two ranks write half of T each at every step and commit; with the site's burst
# buffer the data is only node-local until the job's stage-out drains it.
BB_MODEL = """
import sys
import numpy as np
from mpi4py import MPI
import esdm_hpc
steps = int(sys.argv[1])
comm = MPI.COMM_WORLD
with esdm_hpc.open("esdm://staged", "w", comm=comm) as c:
    c.create_dataset("T", shape=(steps, 4, 512), dtype="f8")
    rows = slice(2 * comm.rank, 2 * comm.rank + 2)
    for step in range(steps):
        c["T"][step, rows] = np.full((2, 512), 10.0 * step + comm.rank)
        c.commit()
"""


def test_a_job_on_the_burst_buffer_stages_out_with_esdm_drain(cluster: Cluster) -> None:
    work = cluster.run_dir / "bb-job"
    work.mkdir()
    steps = 3
    (work / "model.py").write_text(BB_MODEL)
    site = {
        "backends": [
            {"id": "disk", "type": "posix", "target": str(work / "disk")},
            {
                "id": "bb",
                "type": "burstbuffer",
                "target": str(work / "bb"),
                "drain_to": "disk",
                "options": {"drain": "at-end"},
            },  # all of it for the job's stage-out
        ]
    }
    (work / "site.json").write_text(json.dumps(site))
    env = dict(cluster.env, ESDM_VENV=sys.prefix, ESDM_ROOT=str(ROOT),
               ESDM_CONFIG=str(work / "site.json"), ESDM_STAGE_OUT="esdm://staged")  # fmt: skip
    output = work / "job-%j.out"
    cmd = ["sbatch", "--wait", "--parsable", "--ntasks=2", "--time=3", f"--output={output}",
           str(BURST_BUFFER), "model.py", str(steps)]  # fmt: skip
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                              timeout=JOB_TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"sbatch --wait did not finish in {JOB_TIMEOUT}s: {exc}\n{cluster.logs()}")
    job_id = proc.stdout.strip().split(";")[0]
    out_file = Path(str(output).replace("%j", job_id))
    job_output = out_file.read_text() if out_file.is_file() else "(no output file)"
    context = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\njob output:\n{job_output}"
    assert proc.returncode == 0, context
    assert "esdm://staged: drained 6 fragments" in job_output, context
    assert "0 fragments only on node-local storage" in job_output, context
    assert not list((work / "bb").rglob("*.log")), "burst-buffer logs left after the drain"
    shutil.rmtree(work / "bb")  # the node's tmpfs at the job's end
    with esdm_hpc.open("esdm://staged", config=site) as container:
        values = container["T"][...]
    expected = np.array([[[10.0 * s + r] * 512 for r in (0, 0, 1, 1)] for s in range(steps)])
    np.testing.assert_array_equal(values, expected)
