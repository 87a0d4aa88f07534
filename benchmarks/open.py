"""Opening a container of many fragments, collectively, on 1, 2 and 4 ranks.

    python benchmarks/open.py [--epochs 200] [--fragments 400] [--ranks 1,2,4]
        [--repeat 3] [--dir DIR] [--travel] [--json PATH] [--quick]

The driver (this script, without MPI) writes one container: EPOCHS commits
of FRAGMENTS small fragments each (one row of a (EPOCHS, FRAGMENTS, 64)
float32 dataset per fragment). Then, per rank count P, it runs
``mpirun -n P`` on this script's program, which opens the container
collectively (rank 0 reads the metadata, every rank decodes it) REPEAT times
and prints the median time from a barrier to the barrier after the open.

With ``--travel`` it times time travel instead, in this process: opens of
epoch 3, of the middle epoch and of the newest (e.g. ``--travel --epochs
5000 --fragments 1``: a run that commits every step).

With --json, the times go there and their chart next to it (the same path,
.png). There is no peer in this benchmark: the figures are ESDM's alone.
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plotting import Panel, chart_path, write_chart  # noqa: E402

import esdm_hpc  # noqa: E402

RESULT = "RESULT "


def config(directory: Path) -> dict:
    return {"backends": [{"id": "disk", "type": "posix", "target": str(directory)}]}


def write(directory: Path, epochs: int, fragments: int) -> None:
    with esdm_hpc.open("esdm://many", "w", config=config(directory)) as c:
        d = c.create_dataset("x", (epochs, fragments, 64), dtype="f4")
        row = np.zeros(64, np.float32)
        for epoch in range(epochs):
            for k in range(fragments):  # rows of one step: each write its own fragment
                d[epoch, k] = row
            c.commit()


def program(directory: Path, repeat: int) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    times = []
    for _ in range(repeat):
        comm.Barrier()
        start = time.perf_counter()
        container = esdm_hpc.open("esdm://many", "r", comm=comm, config=config(directory))
        comm.Barrier()
        times.append(time.perf_counter() - start)
        container.close()
    if comm.rank == 0:
        print(f"{RESULT}{statistics.median(times)}", flush=True)
    return 0


def travel(directory: Path, epochs: int, repeat: int) -> dict[str, float]:
    """Print and return the median time in s of an open of old epochs and of the newest."""
    medians = {}
    for epoch in (3, epochs // 2, epochs):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            esdm_hpc.open("esdm://many", config=config(directory), epoch=epoch).close()
            times.append(time.perf_counter() - start)
        medians[f"epoch {epoch}"] = statistics.median(times)
        print(f"open of epoch {epoch} of {epochs}: {medians[f'epoch {epoch}']:.3f} s")
    return medians


def collective_opens(directory: Path, ranks: list[int], repeat: int) -> dict[str, float]:
    """Print and return the median time in s of a collective open on each rank count."""
    from tests.mpirun import mpi_env

    medians = {}
    for count in ranks:
        command = ["mpirun", "-n", str(count), "--oversubscribe", sys.executable, __file__,
                   "--program", str(directory), str(repeat)]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=mpi_env())
        lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT)]
        if run.returncode != 0 or not lines:
            raise RuntimeError(f"open on {count} ranks failed:\n{run.stderr[-3000:]}")
        medians[f"{count} rank(s)"] = float(lines[0][len(RESULT) :])
        print(f"open on {count} rank(s): {medians[f'{count} rank(s)']:.3f} s")
    return medians


def save(path: Path, args: argparse.Namespace, opens: dict[str, float]) -> None:
    """The medians as JSON at ``path`` and their chart beside it."""
    kind = "time travel, one process" if args.travel else "collective open"
    record = {"epochs": args.epochs, "fragments": args.fragments, "repeat": args.repeat,
              "kind": kind, "open_s": opens}  # fmt: skip
    path.write_text(json.dumps(record, indent=1) + "\n")
    panel = Panel(
        f"{kind}, median of {args.repeat}; no peer measured (lower is better)",
        "open time, s",
        list(opens),
        {"ESDM": list(opens.values())},
    )
    title = (f"Open of a container of {args.epochs} epochs x {args.fragments} fragments "
             f"({args.epochs * args.fragments} records)")  # fmt: skip
    write_chart(chart_path(path), title, [panel])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=200, help="commits (default 200)")
    parser.add_argument("--fragments", type=int, default=400, help="fragments per commit")
    parser.add_argument("--ranks", default="1,2,4", help="rank counts (default 1,2,4)")
    parser.add_argument("--repeat", type=int, default=3, help="opens per rank count; median")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--travel", action="store_true", help="time travel, in this process")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.fragments, args.ranks, args.repeat = 5, 10, "1,2", 1
    directory = Path(tempfile.mkdtemp(prefix="esdm-open-", dir=args.dir))
    try:
        start = time.perf_counter()
        write(directory, args.epochs, args.fragments)
        print(f"{args.epochs} epochs x {args.fragments} fragments "
              f"({args.epochs * args.fragments} records) written in "
              f"{time.perf_counter() - start:.1f} s under {directory}")  # fmt: skip
        if args.travel:
            opens = travel(directory, args.epochs, args.repeat)
        else:
            ranks = [int(r) for r in args.ranks.split(",")]
            opens = collective_opens(directory, ranks, args.repeat)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        save(args.json, args, opens)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--program"]:
        raise SystemExit(program(Path(sys.argv[2]), int(sys.argv[3])))
    raise SystemExit(main())
