"""Throughput of each C kernel and its ratio to the numpy reference, same run.

    python benchmarks/kernels.py [--quick] [--json PATH]

With --json, the chart of the rates goes next to it (the same path, .png).

The references are the plain numpy implementations the tests check the kernels
against (tests/reference). Targets (issue 2): Hilbert encode of 3-D 16-bit
points >= 50x the reference; checksums >= 5 GB/s on one core for 64 MiB;
overlap detection of 100,000 boxes < 1 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plotting import Panel, chart_path, write_chart  # noqa: E402

from esdm_hpc.kernels import boxindex, checksum, decomposition, hilbert, region  # noqa: E402
from tests.reference import boxindex as ref_boxindex  # noqa: E402
from tests.reference import checksum as ref_checksum  # noqa: E402
from tests.reference import decomposition as ref_decomposition  # noqa: E402
from tests.reference import hilbert as ref_hilbert  # noqa: E402
from tests.reference import region as ref_region  # noqa: E402


@dataclass
class Result:
    kernel: str
    items: int
    unit: str
    kernel_s: float
    reference_s: float | None
    target: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.kernel_s

    @property
    def ratio(self) -> float | None:
        return None if self.reference_s is None else self.reference_s / self.kernel_s


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Minimum wall time of ``repeat`` calls: the least disturbed measurement."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_hilbert(quick: bool) -> list[Result]:
    rng = np.random.default_rng(0)
    n = 1 << (18 if quick else 21)
    points = rng.integers(0, 1 << 16, size=(n, 3), dtype=np.uint16)
    keys = hilbert.encode(points, bits=16)
    block = rng.random((96, 80, 70) if quick else (192, 160, 140), dtype=np.float32)
    return [
        Result(
            "hilbert encode 3-D uint16", n, "points",
            best_time(lambda: hilbert.encode(points, bits=16), 5),
            best_time(lambda: ref_hilbert.encode(points, 16), 2),
            ">= 50x reference",
        ),
        Result(
            "hilbert decode 3-D 16-bit", n, "points",
            best_time(lambda: hilbert.decode(keys, 3, bits=16), 5),
            best_time(lambda: ref_hilbert.decode(keys, 3, 16), 2),
        ),
        Result(
            f"hilbert serialise {block.shape} f4", block.size, "elements",
            best_time(lambda: hilbert.serialise(block), 5),
            best_time(lambda: ref_hilbert.serialise(block), 2),
        ),
    ]  # fmt: skip


def bench_checksum(quick: bool) -> list[Result]:
    data = np.random.default_rng(1).integers(0, 256, (16 if quick else 64) << 20, dtype=np.uint8)
    return [
        Result(
            f"checksum {data.nbytes >> 20} MiB, 1 MiB blocks", data.nbytes, "bytes",
            best_time(lambda: checksum.block_checksums(data, 1 << 20), 10),
            best_time(lambda: ref_checksum.block_checksums(data, 1 << 20), 3),
            ">= 5 GB/s",
        )
    ]  # fmt: skip


def random_boxes(n: int, ndim: int, extent: int, size: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, extent - size, size=(n, ndim), dtype=np.int64)
    counts = rng.integers(1, size, size=(n, ndim), dtype=np.int64)
    return offsets, counts


def bench_region(quick: bool) -> list[Result]:
    n = 20_000 if quick else 100_000
    boxes = random_boxes(n, 3, 100_000, 200, 2)
    grid = decomposition.decompose((500, 500, 400), n)
    small = random_boxes(3_000, 3, 20_000, 400, 3)
    box = (np.zeros(3, np.int64), np.full(3, 1000, np.int64))
    cover = random_boxes(300, 3, 1000, 200, 4)
    return [
        Result(
            f"find_overlaps {n} random boxes", n, "boxes",
            best_time(lambda: region.find_overlaps(*boxes), 3), None, "< 1 s",
        ),
        Result(
            f"find_overlaps {n} grid blocks", n, "boxes",
            best_time(lambda: region.find_overlaps(*grid), 3), None, "< 1 s",
        ),
        Result(
            "find_overlaps 3000 random boxes", 3000, "boxes",
            best_time(lambda: region.find_overlaps(*small), 5),
            best_time(lambda: ref_region.find_overlaps(*small), 1),
        ),
        Result(
            "subtract 300 boxes from a box", 300, "boxes",
            best_time(lambda: region.subtract(*box, *cover), 5),
            best_time(lambda: ref_region.subtract(*box, *cover), 1),
        ),
    ]  # fmt: skip


def bench_boxindex(quick: bool) -> list[Result]:
    blocks = 50 if quick else 100  # blocks per axis: 1,000,000 fragments in full
    offsets, counts = decomposition.decompose((blocks * 10,) * 3, blocks**3)
    index = boxindex.BoxIndex(offsets, counts)
    column = (np.array([0, 333, 333]), np.array([blocks * 10, 16, 16]))
    return [
        Result(
            f"box index build, {blocks**3} fragments", blocks**3, "boxes",
            best_time(lambda: boxindex.BoxIndex(offsets, counts), 3), None,
        ),
        Result(
            f"box index query 16x16 column of {blocks**3}", 1, "queries",
            best_time(lambda: index.query(*column), 20),
            best_time(lambda: ref_boxindex.query(offsets, counts, *column), 2),
            "< 10 ms",
        ),
    ]  # fmt: skip


def bench_decomposition(quick: bool) -> list[Result]:
    shape = (1000, 999, 997)
    sizes = range(1, 257 if quick else 1025)
    return [
        Result(
            f"decompose {shape} for P=1..{sizes[-1]}", len(sizes), "decompositions",
            best_time(lambda: [decomposition.decompose(shape, p) for p in sizes], 3),
            best_time(lambda: [ref_decomposition.decompose(shape, p) for p in sizes], 1),
        )
    ]  # fmt: skip


def human_rate(rate: float, unit: str) -> str:
    unit = "B" if unit == "bytes" else f" {unit}"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.2f} {prefix}{unit.strip()}/s"
    return f"{rate:.1f}{unit}/s"


def report(results: list[Result]) -> None:
    print(f"{'kernel':<44} {'rate':>20} {'time':>10} {'vs numpy':>9}  target")
    for r in results:
        ratio = "-" if r.ratio is None else f"{r.ratio:.1f}x"
        print(
            f"{r.kernel:<44} {human_rate(r.rate, r.unit):>20} {r.kernel_s * 1e3:>8.2f}ms"
            f" {ratio:>9}  {r.target}"
        )


def chart(results: list[Result], path: Path) -> None:
    """Each kernel's rate beside its reference's (log scale: the rates span 9 decades)."""
    panel = Panel(
        "throughput, best of repeated calls; above a reference's bar: the kernel's speed-up",
        "rate, unit under each kernel",
        [f"{r.kernel} [{r.unit}/s]" for r in results],
        {
            "C kernel": [r.rate for r in results],
            "numpy reference": [
                None if r.reference_s is None else r.items / r.reference_s for r in results
            ],
        },
        log=True,
    )
    write_chart(path, "esdm_hpc C kernels against their numpy references", [panel])


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the C kernels against numpy.")
    parser.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    results = [
        *bench_hilbert(args.quick),
        *bench_checksum(args.quick),
        *bench_region(args.quick),
        *bench_boxindex(args.quick),
        *bench_decomposition(args.quick),
    ]
    report(results)
    if args.json:
        record = {
            "machine": platform.node(),
            "python": platform.python_version(),
            "results": [asdict(r) | {"rate": r.rate, "ratio": r.ratio} for r in results],
        }
        args.json.write_text(json.dumps(record, indent=2))
        chart(results, chart_path(args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
