"""Compressed output: ESDM's codecs against HDF5's filters, the same data, same run.

    python benchmarks/compression.py [--ranks 1,4] [--mib-per-rank 128] [--steps 8]
        [--cases shuffle+deflate,shuffle+zstd,blosc] [--repeat 3] [--dir DIR]
        [--json PATH] [--quick]

For each rank count P the driver (this script, without MPI) runs one program
under ``mpirun -n P``, which measures both systems for every case, one after
the other in each repetition (each first in every other one), so that both see
the same load on the machine:

- the field: every rank writes its band of rows of a (T, P*rows, 1024) float32
  field at each of T steps, smooth in space and time with noise, rounded to
  1/128 as netCDF's quantize leaves climate output (so that it compresses);
- esdm: one dataset with ``hints={"codecs": [...]}`` on a posix backend,
  ``dset[t, band] = values``, then one commit (which makes it durable);
- hdf5: h5py over the project's parallel HDF5 (``driver="mpio"`` on more than one
  rank), one chunk per rank and step (1, rows, 1024), the same filters
  (``compression="gzip"`` and ``shuffle=True``; zstd and blosc from hdf5plugin:
  the case is left out, and said so, where hdf5plugin is missing), collective
  writes, then ``flush()`` (which ends in MPI_File_sync) and close;
- write: from a barrier (every rank holds its data) to the barrier after the
  data is durable and the file or container closed; read: reopened, every rank
  reads its band of every step back and checks it, the page cache dropped first
  where the kernel allows it; bandwidth in MiB/s of uncompressed data;
- stored: the bytes the compressed data takes: ESDM's fragments (the replicas'
  lengths), HDF5's chunks (``H5Dget_storage_size``).

Figures: the median over repetitions. Ratios ESDM / HDF5; targets: stored
bytes <= 1.1x HDF5's, write and read bandwidth >= 0.9x. With --json, the chart
of the medians goes next to it (the same path, .png).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from plotting import Panel, chart_path, write_chart  # noqa: E402

MiB = 1 << 20
COLUMNS = 1024  # float32: a row is 4 KiB
SYSTEMS = ("esdm", "hdf5")
# case -> (ESDM's codecs, what h5py's create_dataset is given: filled in by `hdf5_filters`)
CASES = {
    "shuffle+deflate": ["shuffle", "deflate:1"],
    "shuffle+zstd": ["shuffle", "zstd:3"],
    "blosc": ["blosc:lz4:5:1"],
}
TARGET_STORED, TARGET_BANDWIDTH = 1.1, 0.9
RESULT = "RESULT "  # the line prefix by which rank 0 hands its figures to the driver


def hdf5_filters(case: str) -> dict[str, Any] | None:
    """h5py's create_dataset options of the HDF5 filters of ``case``; None where they
    need hdf5plugin and it is not installed."""
    if case == "shuffle+deflate":
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    try:
        import hdf5plugin
    except ImportError:
        return None
    if case == "shuffle+zstd":
        return {**hdf5plugin.Zstd(clevel=3), "shuffle": True}
    return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))


def band(rank: int, step: int, rows: int) -> Any:
    """The values rank ``rank`` writes at ``step``: a smooth field plus noise, rounded."""
    import numpy as np

    y = (rank * rows + np.arange(rows, dtype=np.float32))[:, None]
    x = np.arange(COLUMNS, dtype=np.float32)[None, :]
    noise = np.random.default_rng(rank * 1000 + step).normal(0, 0.05, (rows, COLUMNS))
    field = 250 + 30 * np.sin(y / 97.0) * np.cos(x / 61.0) + 0.25 * step + noise
    return (np.round(field * 128) / 128).astype(np.float32)


# --- the program (one per rank count, under mpirun) ------------------------------------


def measure(directory: Path, rows: int, steps: int, cases: list[str], repeat: int) -> dict | None:
    """Every case on both systems, ``repeat`` times; rank 0 gets the figures."""
    import h5py
    import numpy as np
    from mpi4py import MPI
    from write_read import PageCache

    import esdm_hpc
    from esdm_hpc import codecs

    comm = MPI.COMM_WORLD
    dtype = np.dtype("f4")
    rank, size = comm.rank, comm.size
    values = [band(rank, step, rows) for step in range(steps)]
    mine = slice(rank * rows, (rank + 1) * rows)
    shape = (steps, size * rows, COLUMNS)
    config = {"backends": [{"id": "disk", "type": "posix", "target": str(directory / "esdm")}]}
    parallel = {"driver": "mpio", "comm": comm} if size > 1 else {}

    def timed(action: Callable[[], None]) -> float:
        comm.Barrier()
        start = time.perf_counter()
        action()
        comm.Barrier()
        return time.perf_counter() - start

    def check(step: int, back: np.ndarray) -> None:
        if not np.array_equal(back, values[step]):
            raise AssertionError(f"rank {rank}: step {step} read back wrong")

    def esdm(case: str, run: int) -> dict[str, float]:
        uri = f"esdm://{case.replace('+', '-')}/{run}"  # new: no old one to remove

        def write() -> None:
            with esdm_hpc.open(uri, "w", comm=comm, config=config) as c:
                d = c.create_dataset("field", shape, dtype="f4", hints={"codecs": CASES[case]})
                for step in range(steps):
                    d[step, mine] = values[step]

        def read() -> None:
            with esdm_hpc.open(uri, comm=comm, config=config) as c:
                for step in range(steps):
                    check(step, c["field"][step, mine])

        write_s = timed(write)
        PageCache(enabled=rank == 0)
        read_s = timed(read)
        with esdm_hpc.open(uri, comm=comm, config=config) as c:
            fragments = c.view(c.dataset_meta("/field")).fragments
            stored = sum(r.length for f in fragments for r in f.replicas)
        return {"write_s": write_s, "read_s": read_s, "stored": stored}

    def hdf5(case: str, run: int, filters: dict[str, Any]) -> dict[str, float]:
        path = directory / f"{case}-{run}.h5"

        def write() -> None:
            with h5py.File(path, "w", **parallel) as f:
                d = f.create_dataset(
                    "field", shape, dtype="f4", chunks=(1, rows, COLUMNS), **filters
                )
                for step in range(steps):
                    with d.collective if parallel else contextlib.nullcontext():
                        d[step, mine] = values[step]
                f.flush()  # through MPI-IO, MPI_File_sync: durable
            if not parallel:  # H5Fflush of one process hands the data to the kernel only
                durable = os.open(path, os.O_RDONLY)
                os.fsync(durable)
                os.close(durable)

        def read() -> None:
            with h5py.File(path, "r", **parallel) as f:
                d = f["field"]
                for step in range(steps):
                    with d.collective if parallel else contextlib.nullcontext():
                        check(step, d[step, mine])

        write_s = timed(write)
        PageCache(enabled=rank == 0)
        read_s = timed(read)
        with h5py.File(path, "r", **parallel) as f:
            stored = f["field"].id.get_storage_size()
        return {"write_s": write_s, "read_s": read_s, "stored": stored}

    for case in cases:  # the compressors' modules load at a first use: not in the figures
        pipeline = codecs.for_dataset(codecs.checked_hint("/", {"codecs": CASES[case]}, dtype))
        if pipeline is not None:
            pipeline.encode(np.zeros(64, np.uint8), 64)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    for case in cases:
        filters = hdf5_filters(case)
        runs[case] = {"esdm": [], **({} if filters is None else {"hdf5": []})}
        for run in range(repeat):  # each system first in every other run: neither is favoured
            for system in sorted(runs[case], reverse=bool(run % 2)):
                measured = esdm(case, run) if system == "esdm" else hdf5(case, run, filters or {})
                runs[case][system].append(measured)
    if rank != 0:
        return None
    return {"raw_bytes": size * rows * COLUMNS * 4 * steps, "runs": runs}


def program(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="compression.py --program")
    parser.add_argument("directory", type=Path)
    parser.add_argument("rows", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("cases")
    parser.add_argument("repeat", type=int)
    args = parser.parse_args(argv)
    figures = measure(args.directory, args.rows, args.steps, args.cases.split(","), args.repeat)
    if figures is not None:
        print(RESULT + json.dumps(figures), flush=True)
    return 0


# --- the driver ---------------------------------------------------------------------------


def run_ranks(ranks: int, args: argparse.Namespace, rows: int, base: Path) -> dict:
    from tests.mpirun import mpi_env

    with tempfile.TemporaryDirectory(dir=base, prefix=f"ranks-{ranks}-") as scratch:
        command = [
            "mpirun", "-n", str(ranks), "--oversubscribe", sys.executable, __file__, "--program",
            scratch, str(rows), str(args.steps), ",".join(args.cases), str(args.repeat),
        ]  # fmt: skip
        env = mpi_env()
        env.pop("HDF5_VOL_CONNECTOR", None)  # HDF5 is the native peer here
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=3600, env=env, cwd=scratch
        )
    lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT)]
    if run.returncode != 0 or not lines:
        raise RuntimeError(
            f"{ranks} ranks failed (exit {run.returncode}):\n"
            f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        )
    return json.loads(lines[0][len(RESULT) :])


def summarise(figures: dict) -> dict[str, dict[str, float]]:
    """Per case, the medians of each system and the ratios ESDM / HDF5."""
    mib = figures["raw_bytes"] / MiB
    summary = {}
    for case, systems in figures["runs"].items():
        medians: dict[str, float] = {}
        for system, runs in systems.items():
            medians[f"{system}_write_mib_s"] = statistics.median(mib / r["write_s"] for r in runs)
            medians[f"{system}_read_mib_s"] = statistics.median(mib / r["read_s"] for r in runs)
            medians[f"{system}_stored_mib"] = statistics.median(r["stored"] / MiB for r in runs)
        if "hdf5" in systems:
            for key in ("write_mib_s", "read_mib_s", "stored_mib"):
                medians[f"ratio_{key}"] = medians[f"esdm_{key}"] / medians[f"hdf5_{key}"]
        summary[case] = medians
    return summary


def report(ranks: int, figures: dict, summary: dict[str, dict[str, float]]) -> None:
    mib = figures["raw_bytes"] / MiB
    print(f"{ranks} rank(s), {mib:.0f} MiB of float32:")
    print(f"  {'case':<16} {'system':<6} {'write MiB/s':>12} {'read MiB/s':>11} {'stored MiB':>11}")
    for case, medians in summary.items():
        for system in SYSTEMS:
            if f"{system}_write_mib_s" not in medians:
                print(f"  {case:<16} {system:<6} (no hdf5plugin: not measured)")
                continue
            print(
                f"  {case:<16} {system:<6} {medians[f'{system}_write_mib_s']:12.1f} "
                f"{medians[f'{system}_read_mib_s']:11.1f} {medians[f'{system}_stored_mib']:11.2f}"
                f"  (ratio {mib / medians[f'{system}_stored_mib']:.2f})"
            )
        if "ratio_stored_mib" in medians:
            stored, write, read = (
                medians[f"ratio_{k}"] for k in ("stored_mib", "write_mib_s", "read_mib_s")
            )
            print(
                f"  ratio ESDM/HDF5 {case}: stored {stored:.3f}x "
                f"(target <= {TARGET_STORED}x: {_verdict(stored <= TARGET_STORED)}), "
                f"write {write:.2f}x, read {read:.2f}x "
                f"(target >= {TARGET_BANDWIDTH}x: "
                f"{_verdict(min(write, read) >= TARGET_BANDWIDTH)})"
            )


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,4", help="rank counts (default 1,4)")
    parser.add_argument("--mib-per-rank", type=float, default=128, help="data per rank")
    parser.add_argument("--steps", type=int, default=8, help="steps, a write of each rank each")
    parser.add_argument("--cases", default=",".join(CASES), help="filter pipelines to measure")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case and system")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.ranks, args.mib_per_rank, args.steps, args.repeat = "1,2", 1, 2, 1
    args.ranks = [int(r) for r in args.ranks.split(",")]
    args.cases = args.cases.split(",")
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"--cases: unknown {sorted(unknown)} (known: {', '.join(CASES)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = max(1, int(args.mib_per_rank * MiB / args.steps / (COLUMNS * 4)))
    base = Path(tempfile.mkdtemp(prefix="esdm-compression-", dir=args.dir))
    print(
        f"compression benchmark: {rows * COLUMNS * 4 * args.steps / MiB:.1f} MiB per rank in "
        f"{args.steps} steps, cases {', '.join(args.cases)}, {args.repeat} run(s) each, "
        f"under {base}"
    )
    missing = [case for case in args.cases if hdf5_filters(case) is None]
    if missing:
        print(f"  hdf5plugin is not installed: HDF5 has no {', '.join(missing)} to compare with")
    results: dict[str, Any] = {"rows_per_rank": rows, "steps": args.steps, "ranks": {}}
    try:
        for ranks in args.ranks:
            figures = run_ranks(ranks, args, rows, base)
            summary = summarise(figures)
            report(ranks, figures, summary)
            results["ranks"][str(ranks)] = {**figures, "summary": summary}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
        chart(results, chart_path(args.json))
    return 0


# (figure key, panel title, unit): one panel per figure, a group of bars per case and rank count
CHART = (
    ("write_mib_s", "write, barrier to barrier, durable (uncompressed MiB/s)", "MiB/s"),
    ("read_mib_s", "read, reopened, page cache dropped where allowed", "MiB/s"),
    ("stored_mib", "bytes stored (lower is better)", "MiB"),
)


def chart(results: dict[str, Any], path: Path) -> None:
    """The medians of every case and rank count in ``results`` (as written to the JSON)."""
    groups = [
        (f"{case}, {ranks} rank(s)", medians)
        for ranks, entry in results["ranks"].items()
        for case, medians in entry["summary"].items()
    ]
    labels = [label for label, _ in groups]
    panels = [
        Panel(
            title,
            unit,
            labels,
            {
                "ESDM codecs": [m[f"esdm_{key}"] for _, m in groups],
                "HDF5 filters (h5py)": [m.get(f"hdf5_{key}") for _, m in groups],
            },
        )
        for key, title, unit in CHART
    ]
    mib = results["rows_per_rank"] * COLUMNS * 4 * results["steps"] / MiB
    write_chart(
        path,
        f"Compressed float32 output, ESDM's codecs and HDF5's filters, median of runs\n"
        f"{mib:.1f} MiB per rank in {results['steps']} steps, one chunk per rank and step",
        panels,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--program"]:
        sys.exit(program(sys.argv[2:]))
    sys.exit(main())
