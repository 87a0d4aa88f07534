"""An analyst's time series over a long run: ESDM against HDF5, same run.

    python benchmarks/timeseries.py [--steps 1000] [--shape 256,256] [--repeat 3]
        [--dir DIR] [--json PATH] [--quick]

A model writes one 2-D float32 field per step and makes each step durable: ESDM
commits an epoch per step (a fragment per step, each in its own data log);
HDF5 (h5py, one process) appends to a (T, Y, X) dataset chunked by step,
flushes and fsyncs the file. Then one process reads, from each, the time series at one point and
of a 16x16 box over all steps: every step's fragment (chunk) gives a few bytes.
Reads are timed cold (page cache dropped, where the kernel allows it, before
the file or container is opened; the open is part of it) and warm (again at
once, in the same open file or container). Figures: the median over
repetitions; ratios ESDM / HDF5 of the times (below 1: ESDM is faster). With
--json, the chart of the figures goes next to it (the same path, .png).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from plotting import Panel, chart_path, write_chart  # noqa: E402
from write_read import PageCache  # noqa: E402

import esdm_hpc  # noqa: E402

POINT = (slice(None), 100, 100)
BOX = (slice(None), slice(96, 112), slice(96, 112))


def field(step: int, shape: tuple[int, int]) -> np.ndarray:
    return np.full(shape, step, dtype=np.float32) + np.arange(shape[1], dtype=np.float32)


def write_esdm(config: dict, steps: int, shape: tuple[int, int]) -> None:
    with esdm_hpc.open("esdm://run", "w", config=config) as c:
        d = c.create_dataset("tas", (0, *shape), maxshape=(None, *shape), dtype="f4")
        for step in range(steps):
            d.resize((step + 1, *shape))
            d[step] = field(step, shape)
            c.commit()


def write_hdf5(path: Path, steps: int, shape: tuple[int, int]) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        d = f.create_dataset(
            "tas", (0, *shape), maxshape=(None, *shape), dtype="f4", chunks=(1, *shape)
        )
        durable = os.open(path, os.O_RDONLY)  # H5Fflush hands the data to the kernel only
        try:
            for step in range(steps):
                d.resize((step + 1, *shape))
                d[step] = field(step, shape)
                f.flush()
                os.fsync(durable)
        finally:
            os.close(durable)


def read_times(open_dataset: Callable[[], tuple[object, object]], steps: int, shape) -> dict:
    """ms of the point and box series, cold (open included) and warm."""
    times = {}
    expected = {name: np.stack([field(s, shape)[where[1:]] for s in range(steps)])
                for name, where in (("point", POINT), ("box", BOX))}  # fmt: skip
    for name, where in (("point", POINT), ("box", BOX)):
        PageCache(enabled=True)
        start = time.perf_counter()
        handle, dataset = open_dataset()
        cold = dataset[where]
        times[f"{name}_cold_ms"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        warm = dataset[where]
        times[f"{name}_warm_ms"] = (time.perf_counter() - start) * 1e3
        handle.close()
        for values in (cold, warm):
            if not np.array_equal(values, expected[name]):
                raise AssertionError(f"{name} series read back wrong")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps (epochs) written")
    parser.add_argument("--shape", default="256,256", help="Y,X of one step's field")
    parser.add_argument("--repeat", type=int, default=3, help="reads per system; median")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.shape, args.repeat = 20, "128,128", 1
    shape = tuple(int(n) for n in args.shape.split(","))
    if len(shape) != 2 or min(shape) < 112:
        parser.error("--shape: two sizes of at least 112 (the box is [96:112, 96:112])")
    base = Path(tempfile.mkdtemp(prefix="esdm-timeseries-", dir=args.dir))
    config = {"backends": [{"id": "disk", "type": "posix", "target": str(base / "esdm")}]}
    print(f"time series over {args.steps} steps of a {shape[0]}x{shape[1]} float32 field "
          f"({args.steps} fragments/chunks), one process, under {base}")  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    try:
        for name, write, opener in (
            ("esdm", lambda: write_esdm(config, args.steps, shape),
             lambda: _esdm_dataset(config)),
            ("hdf5", lambda: write_hdf5(base / "run.h5", args.steps, shape),
             lambda: _hdf5_dataset(base / "run.h5")),
        ):  # fmt: skip
            start = time.perf_counter()
            write()
            print(
                f"  {name}: wrote {args.steps} durable steps in {time.perf_counter() - start:.1f} s"
            )
            runs = [read_times(opener, args.steps, shape) for _ in range(args.repeat)]
            results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'read':<20}{'esdm ms':>10}{'hdf5 ms':>10}{'esdm/hdf5':>11}")
    for key in results["esdm"]:
        esdm, hdf5 = results["esdm"][key], results["hdf5"][key]
        print(f"{key.removesuffix('_ms').replace('_', ' '):<20}{esdm:>10.1f}{hdf5:>10.1f}"
              f"{esdm / hdf5:>10.2f}x")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "shape": shape, **results}) + "\n")
        chart(results, args.steps, shape, chart_path(args.json))
    return 0


def chart(
    results: dict[str, dict[str, float]], steps: int, shape: tuple[int, ...], path: Path
) -> None:
    keys = list(results["esdm"])
    panel = Panel(
        f"series over {steps} steps, median; cold includes the open (lower is better)",
        "read time, ms",
        [key.removesuffix("_ms").replace("_", " ") for key in keys],
        {
            "ESDM (an epoch per step)": [results["esdm"][k] for k in keys],
            "HDF5 (chunked by step)": [results["hdf5"][k] for k in keys],
        },
    )
    write_chart(path, f"Time series of a {shape[0]}x{shape[1]} float32 field", [panel])


def _esdm_dataset(config: dict) -> tuple[object, object]:
    container = esdm_hpc.open("esdm://run", "r", config=config)
    return container, container["tas"]


def _hdf5_dataset(path: Path) -> tuple[object, object]:
    import h5py

    f = h5py.File(path, "r")
    return f, f["tas"]


if __name__ == "__main__":
    raise SystemExit(main())
