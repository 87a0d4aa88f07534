"""The VOL connector against native parallel HDF5: the same h5py program, same run.

    python benchmarks/vol.py [--ranks 1,2,4] [--mib-per-rank 64] [--steps 4]
        [--calls 2000] [--repeat 3] [--dir DIR] [--json PATH] [--quick]

For each rank count P and each repetition, the driver (this script, without
MPI) runs one program under ``mpirun -n P`` twice: natively (``driver="mpio"``,
one shared file under --dir) and through the connector (the environment of
`esdm vol-env`, one container on a posix backend under --dir). HDF5 reads
``HDF5_VOL_CONNECTOR`` once at start-up, hence one program per configuration.
The program, the same in both cases:

- start: the first open and close of a file in the process, untimed in the
  figures below (the connector loads the Python core then, once);
- large write: open, T steps of every rank writing its slab of a
  (T, P*rows, 1024) float32 dataset collectively, each step made durable by
  ``f.flush()`` (MPI_File_sync natively, an epoch commit through the
  connector), close; timed from a barrier to the barrier after close;
- large read: reopen, every rank reads its slabs back (collectively) and checks
  them; the page cache dropped first where the kernel allows it;
- warm re-read: the same read again at once, from the page cache (an analysis
  reading what the model has just written): the memory side of the read path;
- 4 KiB writes: every rank writes N independent 1024-element float32 slabs of
  a 1-D dataset; the per-call time is the slowest rank's time / N, the rate
  P * N / that time. The flush after them is not part of it.

The figures are the median over repetitions with the range; ratios are the
connector's to native. Targets (issue 4): large writes >= 1.5x native
collective; per-call time of 4 KiB writes <= 2x native. With --json, the chart
of the medians goes next to it (the same path, .png).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plotting import Panel, chart_path, write_chart  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
COLUMNS = 1024  # float32: one row is 4 KiB, the size of a small write
CONNECTORS = ("native", "esdm")
TARGET_WRITE_RATIO = 1.5
TARGET_CALL_RATIO = 2.0
RESULT = "RESULT "  # the line prefix by which rank 0 hands its figures to the driver


@dataclass(frozen=True)
class Workload:
    rows_per_rank: int  # per step
    steps: int
    calls: int  # 4 KiB writes per rank


@dataclass(frozen=True)
class Figures:
    """One program's run: the first open's time, bandwidths over all ranks and the 4 KiB
    per-call time."""

    start_ms: float
    write_mib_s: float
    read_mib_s: float
    warm_read_mib_s: float
    call_us: float
    calls_per_s: float
    cache: str


# --- the program (one per connector and rank count, under mpirun) ---------------------


def measure(target: str, work: Workload) -> Figures | None:
    """Run the workload on ``target`` (a file or container name); rank 0 gets the figures."""
    import h5py
    import numpy as np
    from mpi4py import MPI
    from write_read import PageCache

    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    rows = work.rows_per_rank
    slab = (np.arange(rows * COLUMNS, dtype=np.float32) + rank).reshape(rows, COLUMNS)
    mine = slice(rank * rows, (rank + 1) * rows)

    def timed(action: Callable[[], None]) -> float:
        comm.Barrier()
        start = time.perf_counter()
        action()
        comm.Barrier()
        return time.perf_counter() - start

    def write() -> None:
        with h5py.File(target, "w", driver="mpio", comm=comm) as f:
            d = f.create_dataset("field", (work.steps, size * rows, COLUMNS), dtype="f4")
            for step in range(work.steps):
                with d.collective:
                    d[step, mine] = slab
                f.flush()

    def read() -> None:
        with h5py.File(target, "r", driver="mpio", comm=comm) as f:
            d = f["field"]
            for step in range(work.steps):
                with d.collective:
                    if not np.array_equal(d[step, mine], slab):
                        raise AssertionError(f"rank {rank}: step {step} read back wrong")

    def start() -> None:
        with h5py.File(f"{target}-start", "w", driver="mpio", comm=comm):
            pass

    # The first open of a process pays the library's start (the connector
    # imports the Python core, ~150 ms): reported, but not part of the bandwidth.
    start_s = timed(start)
    write_s = timed(write)
    cache = PageCache(enabled=rank == 0)
    read_s = timed(read)
    warm_read_s = timed(read)

    row = slab[0]
    with h5py.File(target, "a", driver="mpio", comm=comm) as f:
        d = f.create_dataset("small", (size * work.calls * COLUMNS,), dtype="f4")
        base = rank * work.calls * COLUMNS
        comm.Barrier()
        start = time.perf_counter()
        for call in range(work.calls):
            d[base + call * COLUMNS : base + (call + 1) * COLUMNS] = row
        calls_s = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)

    if rank != 0:
        return None
    total_mib = size * rows * COLUMNS * 4 * work.steps / MiB
    return Figures(
        start_ms=start_s * 1e3,
        write_mib_s=total_mib / write_s,
        read_mib_s=total_mib / read_s,
        warm_read_mib_s=total_mib / warm_read_s,
        call_us=calls_s / work.calls * 1e6,
        calls_per_s=size * work.calls / calls_s,
        cache=cache.state,
    )


def program(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vol.py --program")
    parser.add_argument("target")
    parser.add_argument("rows", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("calls", type=int)
    args = parser.parse_args(argv)
    figures = measure(args.target, Workload(args.rows, args.steps, args.calls))
    if figures is not None:
        print(RESULT + json.dumps(asdict(figures)), flush=True)
    return 0


# --- the driver ---------------------------------------------------------------------------


def environment(connector: str, directory: Path) -> dict[str, str]:
    from esdm_hpc.vol import env as vol_env
    from tests.mpirun import mpi_env

    env = mpi_env()
    if connector == "native":
        env.pop("HDF5_VOL_CONNECTOR", None)
        return env
    config = directory / "site.json"
    backend = {"id": "disk", "type": "posix", "target": str(directory / "store")}
    config.write_text(json.dumps({"backends": [backend]}))
    env.pop("ESDM_ROOT", None)
    return {**env, **vol_env.environment(), "ESDM_CONFIG": str(config)}


def run_once(connector: str, ranks: int, work: Workload, base: Path) -> Figures:
    with tempfile.TemporaryDirectory(dir=base, prefix=f"{connector}-{ranks}-") as scratch:
        directory = Path(scratch)
        target = str(directory / "bench.h5") if connector == "native" else "esdm://bench"
        command = [
            "mpirun", "-n", str(ranks), "--oversubscribe", sys.executable, __file__, "--program",
            target, str(work.rows_per_rank), str(work.steps), str(work.calls),
        ]  # fmt: skip
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=900,
            env=environment(connector, directory), cwd=directory,
        )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT)]
    if run.returncode != 0 or not lines:
        raise RuntimeError(
            f"{connector} on {ranks} ranks failed (exit {run.returncode}):\n"
            f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        )
    return Figures(**json.loads(lines[0][len(RESULT) :]))


def spread(values: list[float], digits: int = 0) -> str:
    """Median and range, as "median (low-high)"; the median alone for one value."""
    median = f"{statistics.median(values):.{digits}f}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def summarise(runs: dict[str, list[Figures]], ranks: int) -> dict[str, float]:
    """Print one rank count's figures and ratios; return the medians and ratios."""
    medians = {}
    for connector, figures in runs.items():
        write = [f.write_mib_s for f in figures]
        read = [f.read_mib_s for f in figures]
        warm = [f.warm_read_mib_s for f in figures]
        call = [f.call_us for f in figures]
        rate = [f.calls_per_s for f in figures]
        start = [f.start_ms for f in figures]
        print(
            f"  {connector:<7} first open {spread(start)} ms, "
            f"write {spread(write)} MiB/s, read {spread(read)} MiB/s "
            f"({figures[0].cache}), warm re-read {spread(warm)} MiB/s, "
            f"4 KiB writes {spread(call, 1)} us/call, {spread(rate)} calls/s"
        )
        medians[connector] = {
            "write_mib_s": statistics.median(write),
            "read_mib_s": statistics.median(read),
            "warm_read_mib_s": statistics.median(warm),
            "call_us": statistics.median(call),
        }
    esdm, native = medians["esdm"], medians["native"]
    ratios = {
        "write": esdm["write_mib_s"] / native["write_mib_s"],
        "read": esdm["read_mib_s"] / native["read_mib_s"],
        "warm_read": esdm["warm_read_mib_s"] / native["warm_read_mib_s"],
        "call_time": esdm["call_us"] / native["call_us"],
    }
    print(
        f"  ratio esdm/native: write {ratios['write']:.2f}x "
        f"(target >= {TARGET_WRITE_RATIO}x: {_verdict(ratios['write'] >= TARGET_WRITE_RATIO)}), "
        f"read {ratios['read']:.2f}x, warm re-read {ratios['warm_read']:.2f}x, "
        f"4 KiB per-call time {ratios['call_time']:.2f}x "
        f"(target <= {TARGET_CALL_RATIO}x: {_verdict(ratios['call_time'] <= TARGET_CALL_RATIO)})"
    )
    return {**{f"{c}_{k}": v for c, m in medians.items() for k, v in m.items()}, **ratios}


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,2,4", help="rank counts (default 1,2,4)")
    parser.add_argument("--mib-per-rank", type=float, default=64, help="large write per rank")
    parser.add_argument("--steps", type=int, default=4, help="flushed steps of the large write")
    parser.add_argument("--calls", type=int, default=2000, help="4 KiB writes per rank")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.ranks, args.mib_per_rank, args.steps, args.calls, args.repeat = "1,2", 1, 2, 50, 1
    args.ranks = [int(r) for r in args.ranks.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = args.steps
    rows = max(1, int(args.mib_per_rank * MiB / steps / (COLUMNS * 4)))
    work = Workload(rows, steps, args.calls)
    base = Path(tempfile.mkdtemp(prefix="esdm-vol-bench-", dir=args.dir))
    print(
        f"VOL benchmark: {rows * COLUMNS * 4 * steps / MiB:.0f} MiB per rank in {steps} "
        f"flushed steps, {args.calls} x 4 KiB writes per rank, {args.repeat} run(s) each, "
        f"under {base}"
    )
    summary: dict[str, object] = {"workload": asdict(work), "ranks": {}}
    try:
        for ranks in args.ranks:
            runs: dict[str, list[Figures]] = {c: [] for c in CONNECTORS}
            for _ in range(args.repeat):  # interleaved: both see the same load on the machine
                for connector in CONNECTORS:
                    runs[connector].append(run_once(connector, ranks, work, base))
            print(f"{ranks} rank(s):")
            summary["ranks"][str(ranks)] = {
                "runs": {c: [asdict(f) for f in figures] for c, figures in runs.items()},
                "summary": summarise(runs, ranks),
            }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
        chart(summary, chart_path(args.json))
    return 0


# (figure key, panel title, unit): one panel per figure, a group of bars per rank count
CHART = (
    ("write_mib_s", "large write: flushed steps, open to close, barrier to barrier", "MiB/s"),
    ("read_mib_s", "large read, reopened, page cache dropped where allowed", "MiB/s"),
    ("warm_read_mib_s", "warm re-read, from the page cache", "MiB/s"),
    ("call_us", "4 KiB independent writes (lower is better)", "time per call, us"),
)


def chart(summary: dict[str, Any], path: Path) -> None:
    """The medians of every rank count in ``summary`` (as written to the JSON)."""
    ranks = summary["ranks"]
    labels = [f"{p} rank(s)" for p in ranks]
    panels = [
        Panel(
            title,
            unit,
            labels,
            {
                "ESDM VOL connector": [r["summary"][f"esdm_{key}"] for r in ranks.values()],
                "native HDF5 (MPI-IO)": [r["summary"][f"native_{key}"] for r in ranks.values()],
            },
        )
        for key, title, unit in CHART
    ]
    work = summary["workload"]
    write_chart(
        path,
        f"The same h5py program through the VOL connector and natively, median of runs\n"
        f"{work['rows_per_rank'] * COLUMNS * 4 * work['steps'] / MiB:.0f} MiB per rank in "
        f"{work['steps']} steps, {work['calls']} x 4 KiB writes per rank",
        panels,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--program"]:
        raise SystemExit(program(sys.argv[2:]))
    raise SystemExit(main())
