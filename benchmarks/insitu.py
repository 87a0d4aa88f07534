"""In-situ analysis against the usual route (write, then read back), 1, 2 and 4 ranks.

    python benchmarks/insitu.py [--ranks 1,2,4] [--size 64] [--steps 16] [--dir DIR]
        [--json PATH] [--quick]

For each rank count P the driver (this script, without MPI) runs one program under
``mpirun -n P``. Every rank owns a slab of --size MiB of a (T, P*rows, 1024) float32
field and writes it at each of T steps, committing an epoch per step, into three
containers at once, the order rotating from step to step so that each sees the
same load on the machine:

- write: no hook (the write alone, and the first half of the usual route);
- numba: an on_write hook compiled by Numba computes this block's part of a
  regional mean (the sum and count over its share of the box, rows and columns
  1/8 to 7/8: across the ranks' slabs); an on_commit hook (``blocks=False``: no
  copy of the block kept) reduces the parts over the ranks and writes the mean
  into the derived series /insitu/mean, committed with the step's raw data;
- python: the same with the on_write hook in Python (numpy).

A step is timed from a barrier to the barrier after its commit. Then the usual
route reads the box back from the write container, every step, on the same P
ranks in parallel (each its share of the rows), its page cache evicted first
(POSIX_FADV_DONTNEED on the container's files: the post-processing job runs later
or elsewhere), and reduces it to the same means, which must equal the in-situ
series.

- time to the last result: in-situ, the sum of its steps (the last mean is
  committed with the last step); the usual route, the write container's steps
  plus the read-back. Target: at least 2x faster in-situ.
- bytes read from storage: the read(2) bytes (``rchar`` of /proc/self/io) of
  every rank over each route; in-situ reads no data back, only metadata.
- hook overhead per step: the median over the steps of the difference between a
  hooked container's step and the write container's step run next to it, over
  the median step of the write container. Target: at most 10% for the Numba
  hook at 64 MiB per rank.

With --json, the figures go to PATH and their chart next to it (.png).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plotting import Panel, chart_path, write_chart  # noqa: E402

MiB = 1 << 20
COLUMNS = 1024
ROUTES = ("write", "numba", "python")
MEAN = "/insitu/mean"
TARGET_SPEEDUP = 2.0
TARGET_OVERHEAD = 0.10
TARGET_SIZE_MIB = 64  # the overhead target is for this size per rank
RESULT = "RESULT "  # the line prefix by which rank 0 hands its figures to the driver


@dataclass(frozen=True)
class Figures:
    """One program's run (rank 0's view: barrier-to-barrier times, bytes of all ranks)."""

    ranks: int
    mib_per_rank: float
    steps: int
    step_s: dict[str, list[float]]  # per route, each step
    read_back_s: float
    bytes_read: dict[str, int]  # per route, all ranks; "usual": write steps and read-back
    means_agree: bool
    cache: str


# --- the hooks --------------------------------------------------------------------------------


def _bounds(lo: int, hi: int, start: int, size: int) -> tuple[int, int]:
    """The part of [lo, hi) in a block at ``start`` of ``size``, in block coordinates."""
    return max(lo - start, 0), max(min(hi - start, size), 0)


def python_part(
    block: Any, offset: tuple[int, ...], lo: tuple[int, ...], hi: tuple[int, ...]
) -> tuple[float, int]:
    """This block's sum and count inside the box [lo, hi) of the last two axes."""
    i0, i1 = _bounds(lo[1], hi[1], offset[1], block.shape[1])
    j0, j1 = _bounds(lo[2], hi[2], offset[2], block.shape[2])
    part = block[:, i0:i1, j0:j1]
    return float(part.sum(dtype="f8")), int(part.size)


def numba_part() -> Any:
    """`python_part` as a loop compiled by Numba (compiled here, before any timing)."""
    import numba
    import numpy as np

    @numba.njit(nogil=True, cache=False)
    def part(block, offset, lo, hi):  # type: ignore[no-untyped-def]
        i0, i1 = max(lo[1] - offset[1], 0), max(min(hi[1] - offset[1], block.shape[1]), 0)
        j0, j1 = max(lo[2] - offset[2], 0), max(min(hi[2] - offset[2], block.shape[2]), 0)
        total = 0.0
        for t in range(block.shape[0]):
            for i in range(i0, i1):
                for j in range(j0, j1):
                    total += block[t, i, j]
        return total, block.shape[0] * max(i1 - i0, 0) * max(j1 - j0, 0)

    sample = np.zeros((1, 2, 2), dtype=np.float32)
    sample.flags.writeable = False  # a hook gets a read-only view: its own Numba type
    part(sample, (0, 0, 0), (0, 0, 0), (1, 1, 1))
    return part


def reduce_mean(context: Any, steps: int) -> None:
    """The mean over the ranks' parts of the step just written, as element ``step`` of
    the derived series (rank 0 writes it)."""
    total = sum(r.value[0] for r in context.results)
    count = sum(r.value[1] for r in context.results)
    step = max((r.offset[0] for r in context.results), default=-1)
    total, count, step = context.comm.allreduce((total, count, step), op=_sum_sum_max)
    if context.rank == 0:
        context.write_part(MEAN, [total / count], (step,), (steps,))


def _sum_sum_max(a: tuple[float, int, int], b: tuple[float, int, int]) -> tuple[float, int, int]:
    return a[0] + b[0], a[1] + b[1], max(a[2], b[2])


# --- the program (one per rank count, under mpirun) ----------------------------------------


def rchar() -> int:
    """The bytes this process has read with read(2) and its kin, page cache included."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def evict(directory: Path) -> str:
    """Drop the page cache of every file under ``directory`` (they are durable)."""
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return "cold (POSIX_FADV_DONTNEED on the container's files before the read-back)"


def measure(directory: Path, mib: float, steps: int) -> Figures | None:
    import numpy as np
    from mpi4py import MPI

    import esdm_hpc

    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    rows = max(8, int(mib * MiB / (COLUMNS * 4)))
    ny = size * rows
    lo, hi = (0, ny // 8, COLUMNS // 8), (steps, ny - ny // 8, COLUMNS - COLUMNS // 8)
    mine = slice(rank * rows, (rank + 1) * rows)
    base = np.random.default_rng(rank).random((rows, COLUMNS), dtype=np.float32) * 100
    data = np.empty_like(base)
    config = {"backends": [{"id": "disk", "type": "posix", "target": str(directory / "store")}]}
    partial = {"numba": numba_part(), "python": python_part}

    containers, datasets = {}, {}
    for route in ROUTES:
        c = esdm_hpc.open(f"esdm://{route}", "w", comm=comm, config=config)
        x = c.create_dataset("x", shape=(steps, ny, COLUMNS), dtype="f4")
        if route != "write":
            x.on_write(partial[route], args={"lo": lo, "hi": hi}, name=f"{route}-part")
            x.on_commit(reduce_mean, args={"steps": steps}, blocks=False, name="mean")
        c.commit()
        containers[route], datasets[route] = c, x
    step_s: dict[str, list[float]] = {route: [] for route in ROUTES}
    read: dict[str, int] = dict.fromkeys(ROUTES, 0)
    for step in range(steps):
        np.add(base, np.float32(step), out=data)
        for k in range(len(ROUTES)):
            route = ROUTES[(step + k) % len(ROUTES)]
            comm.Barrier()
            before, start = rchar(), time.perf_counter()
            datasets[route][step, mine] = data
            containers[route].commit()
            comm.Barrier()
            step_s[route].append(time.perf_counter() - start)
            read[route] += rchar() - before
    for c in containers.values():
        c.close()

    comm.Barrier()
    cache = evict(directory / "store") if rank == 0 else ""
    y0, y1 = lo[1], hi[1]
    share = np.array_split(np.arange(y0, y1), size)[rank]
    comm.Barrier()
    before, start = rchar(), time.perf_counter()
    with esdm_hpc.open("esdm://write", comm=comm, config=config) as reader:
        x = reader["x"]
        means = []
        for step in range(steps):
            part = x[step, share[0] : share[-1] + 1, lo[2] : hi[2]] if share.size else None
            local = np.array([0.0, 0.0]) if part is None else np.array([part.sum(dtype="f8"),
                                                                        part.size])  # fmt: skip
            total, count = comm.allreduce(local, op=MPI.SUM)
            means.append(total / count)
    comm.Barrier()
    read_back_s = time.perf_counter() - start
    usual_read = rchar() - before + read["write"]

    agree = True
    for route in ("numba", "python"):
        with esdm_hpc.open(f"esdm://{route}", comm=comm, config=config) as c:
            agree = agree and bool(np.allclose(c[MEAN][...], means, rtol=1e-9, atol=0))
    totals = {route: comm.allreduce(value) for route, value in read.items()}
    totals["usual"] = comm.allreduce(usual_read)
    if rank != 0:
        return None
    return Figures(size, rows * COLUMNS * 4 / MiB, steps, step_s, read_back_s, totals, agree,
                   cache)  # fmt: skip


def program(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="insitu.py --program")
    parser.add_argument("directory", type=Path)
    parser.add_argument("mib", type=float)
    parser.add_argument("steps", type=int)
    args = parser.parse_args(argv)
    figures = measure(args.directory, args.mib, args.steps)
    if figures is not None:
        print(RESULT + json.dumps(asdict(figures)), flush=True)
    return 0


# --- the driver ---------------------------------------------------------------------------


def run_once(ranks: int, mib: float, steps: int, base: Path) -> Figures:
    from tests.mpirun import mpi_env

    with tempfile.TemporaryDirectory(dir=base, prefix=f"insitu-{ranks}-") as scratch:
        command = [
            "mpirun", "-n", str(ranks), "--oversubscribe", sys.executable, __file__, "--program",
            scratch, str(mib), str(steps),
        ]  # fmt: skip
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=1800, env=mpi_env(), cwd=scratch
        )
    lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT)]
    if run.returncode != 0 or not lines:
        raise RuntimeError(
            f"{ranks} ranks failed (exit {run.returncode}):\n{run.stdout[-3000:]}\n"
            f"{run.stderr[-3000:]}"
        )
    return Figures(**json.loads(lines[0][len(RESULT) :]))


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def summarise(figures: Figures) -> dict[str, Any]:
    """Print one rank count's figures and ratios; return them."""
    median = {route: statistics.median(figures.step_s[route]) for route in ROUTES}
    to_result = {
        "numba": sum(figures.step_s["numba"]),
        "python": sum(figures.step_s["python"]),
        "usual": sum(figures.step_s["write"]) + figures.read_back_s,
    }
    speedup = {r: to_result["usual"] / to_result[r] for r in ("numba", "python")}
    # paired: a step's hooked commit against its write-alone one, run back to back
    overhead = {
        r: statistics.median(
            h - w for h, w in zip(figures.step_s[r], figures.step_s["write"], strict=True)
        )
        / median["write"]
        for r in ("numba", "python")
    }
    mib = {route: figures.bytes_read[route] / MiB for route in ("numba", "python", "usual")}
    at_size = figures.mib_per_rank >= TARGET_SIZE_MIB
    print(
        f"{figures.ranks} rank(s), {figures.mib_per_rank:.0f} MiB per rank, {figures.steps} "
        f"steps: median step write {median['write'] * 1e3:.1f} ms, with the Numba hook "
        f"{median['numba'] * 1e3:.1f} ms, with the Python hook {median['python'] * 1e3:.1f} ms; "
        f"read-back {figures.read_back_s:.2f} s ({figures.cache}); in-situ means equal the "
        f"read-back's: {figures.means_agree}"
    )
    print(
        f"  time to the last result: in-situ Numba {to_result['numba']:.2f} s, Python "
        f"{to_result['python']:.2f} s, write then read back {to_result['usual']:.2f} s"
    )
    print(
        f"  bytes read from storage (all ranks): in-situ Numba {mib['numba'] * 1024:.1f} KiB, "
        f"Python {mib['python'] * 1024:.1f} KiB (metadata only), write then read back "
        f"{mib['usual']:.1f} MiB"
    )
    print(
        f"  ratio time to last result read-back/in-situ (Numba): {speedup['numba']:.2f}x "
        f"(target >= {TARGET_SPEEDUP:g}x: {_verdict(speedup['numba'] >= TARGET_SPEEDUP)}), "
        f"(Python): {speedup['python']:.2f}x"
    )
    verdict = _verdict(overhead["numba"] <= TARGET_OVERHEAD)
    if not at_size:
        verdict += f"; the target is for {TARGET_SIZE_MIB} MiB per rank"
    print(
        f"  ratio step time Numba hook/write alone: {1 + overhead['numba']:.3f}x (paired overhead "
        f"{overhead['numba']:.1%}, target <= {TARGET_OVERHEAD:.0%}: {verdict}); Python hook/"
        f"write alone: {1 + overhead['python']:.3f}x (overhead {overhead['python']:.1%})"
    )
    return {
        "median_step_s": median,
        "time_to_result_s": to_result,
        "speedup": speedup,
        "overhead": overhead,
        "mib_read": mib,
        "targets": {
            f"time to result >= {TARGET_SPEEDUP:g}x faster": speedup["numba"] >= TARGET_SPEEDUP,
            f"numba overhead <= {TARGET_OVERHEAD:.0%} at {TARGET_SIZE_MIB} MiB": (
                overhead["numba"] <= TARGET_OVERHEAD if at_size else None
            ),
        },
    }


def chart(summary: dict[str, Any], path: Path) -> None:
    runs = summary["ranks"]
    labels = [f"{p} rank(s)" for p in runs]

    def series(key: str, route: str) -> list[float]:
        return [run["summary"][key][route] for run in runs.values()]

    usual = "write, then read back"
    routes = {usual: "usual", "in-situ, Numba hook": "numba", "in-situ, Python hook": "python"}
    steps = {
        "with the Numba hook": "numba",
        "write alone": "write",
        "with the Python hook": "python",
    }
    panels = [
        Panel(
            "time to the last result",
            "s",
            labels,
            {name: series("time_to_result_s", route) for name, route in routes.items()},
        ),
        Panel(
            "bytes read from storage, all ranks (in-situ: metadata only)",
            "MiB",
            labels,
            {name: series("mib_read", route) for name, route in routes.items()},
            log=True,
        ),
        Panel(
            "median step, write + commit",
            "ms",
            labels,
            {name: [v * 1e3 for v in series("median_step_s", r)] for name, r in steps.items()},
        ),
    ]
    write_chart(
        path,
        f"In-situ regional mean against write-then-read-back, {summary['mib_per_rank']:g} MiB "
        f"per rank, {summary['steps']} steps",
        panels,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,2,4", help="rank counts (default 1,2,4)")
    parser.add_argument("--size", type=float, default=TARGET_SIZE_MIB, help="MiB per rank a step")
    parser.add_argument("--steps", type=int, default=16, help="committed steps")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.ranks, args.size, args.steps = "1,2", 1, 3
    args.ranks = [int(r) for r in args.ranks.split(",")]
    if args.size <= 0 or args.steps < 1:
        parser.error("--size must be positive and --steps at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="esdm-insitu-bench-", dir=args.dir))
    print(f"in-situ benchmark: {args.size:g} MiB per rank, {args.steps} steps, under {base}")
    summary: dict[str, Any] = {"mib_per_rank": args.size, "steps": args.steps, "ranks": {}}
    try:
        for ranks in args.ranks:
            figures = run_once(ranks, args.size, args.steps, base)
            summary["ranks"][str(ranks)] = {"run": asdict(figures), "summary": summarise(figures)}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
        chart(summary, chart_path(args.json))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--program"]:
        raise SystemExit(program(sys.argv[2:]))
    raise SystemExit(main())
