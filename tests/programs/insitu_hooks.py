"""In-situ hooks for the hook tests, importable by name (``tests.programs.insitu_hooks:
regional_mean``) from a site configuration, and a writer for the crash tests:

    python insitu_hooks.py ROOT EPOCHS

writes the field of epoch e (`field`) to /x in epochs 1..EPOCHS, with `regional_mean`
as on_commit hook writing /insitu/mean, and prints "committed <e>" after each commit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import esdm_hpc
from esdm_hpc.faults import crash_point
from esdm_hpc.hooks import CommitContext

SHAPE = (24, 20)
LO, HI = (3, 2), (19, 15)  # the region the crash writer averages
MEAN = "/insitu/mean"


def field(epoch: int, shape: Sequence[int] = SHAPE) -> np.ndarray:
    """Integer values in float64: sums are exact, whatever the order of the additions."""
    rng = np.random.default_rng(epoch)
    return rng.integers(-1000, 1000, size=tuple(shape)).astype(np.float64)


def pair_sum(a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
    return a[0] + b[0], a[1] + b[1]


def regional_mean(
    context: CommitContext, lo: Sequence[int], hi: Sequence[int], output: str = MEAN
) -> None:
    """The mean of the box [lo, hi) of the blocks written in the epoch, over all ranks."""
    count = [h - low for low, h in zip(lo, hi, strict=True)]
    parts = [block.within(lo, count) for block in context.blocks]
    local = (float(sum(part.sum() for part in parts)), sum(part.size for part in parts))
    crash_point("test.in-hook")
    total, n = context.comm.allreduce(local, op=pair_sum)
    context.write(output, total / n)


def extremes(context: CommitContext) -> None:
    """Minimum and maximum of the epoch's blocks over all ranks, as one derived dataset."""
    values = [float(b.data.min()) for b in context.blocks if b.data.size]
    highs = [float(b.data.max()) for b in context.blocks if b.data.size]
    low = context.comm.allreduce(min(values, default=np.inf), op=min)
    high = context.comm.allreduce(max(highs, default=-np.inf), op=max)
    context.write("/insitu/extremes", [low, high])


def slow_mean(context: CommitContext, seconds: float, lo: Sequence[int], hi: Sequence[int]) -> None:
    time.sleep(seconds)
    regional_mean(context, lo, hi)


def block_sum(block: np.ndarray, offset: tuple[int, ...], comm: Any) -> tuple[float, int]:
    """An on_write hook in plain Python: the block's sum and size."""
    return float(block.sum()), block.size


def not_a_hook(context: CommitContext, *, required: int) -> None:
    """Needs an argument the configuration does not give."""


NOT_CALLABLE = 42


def main() -> None:
    root, epochs = sys.argv[1], int(sys.argv[2])
    config = {"backends": [{"id": "disk", "type": "posix", "target": root}]}
    with esdm_hpc.open("esdm://c", "w", config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8")
        x.on_commit(regional_mean, args={"lo": LO, "hi": HI})
        for epoch in range(1, epochs + 1):
            x[...] = field(epoch)
            c.commit()
            print(f"committed {epoch}", flush=True)


if __name__ == "__main__":
    main()
