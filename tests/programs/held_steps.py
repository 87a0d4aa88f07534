"""Triggers for the trigger tests, importable by name (``tests.programs.held_steps:
anomaly``) from a site configuration, the model of what keep_last persists, and a
writer for the crash tests:

    python held_steps.py ROOT

writes STEPS steps of /t with keep_last(KEEP, anomaly, then=THEN), an anomaly in
step ANOMALY, and prints "committed <e>" after each commit.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import esdm_hpc
from esdm_hpc.hooks import CommitContext

SHAPE = (6, 5)  # of one step
SPIKE = 1e6  # the anomaly: one value far above the field's
THRESHOLD = 1e5
STEPS, KEEP, THEN, ANOMALY = 8, 3, 1, 4


def field(step: int, anomalous: bool = False, shape: Sequence[int] = SHAPE) -> np.ndarray:
    """Step ``step``'s field: distinct per step and never 0 (the fill value)."""
    data = step * 1000.0 + 1.0 + np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    if anomalous:
        data.flat[len(data.flat) // 2] = SPIKE
    return data


def anomaly(context: CommitContext, threshold: float = THRESHOLD) -> bool:
    """Fires when this rank's blocks of the step hold a value above ``threshold``."""
    return any(float(b.data.max()) > threshold for b in context.blocks if b.data.size)


@dataclass(frozen=True)
class Expected:
    """What a keep_last dataset shows: ``shown[t]`` the steps persisted once step t
    (written in epoch t + 1) is committed; ``at_close`` what close persists."""

    shown: list[set[int]]
    at_close: list[int]


def model(keep: int, then: int, fires: Sequence[bool]) -> Expected:
    """The semantics of `Dataset.keep_last`, one step per epoch, in plain Python: the
    last ``keep`` steps committed are held; a trigger persists them and its own step."""
    left, held, present, shown = 0, [], set(), []
    for step, fired in enumerate(fires):
        if left > 0:  # persisted as written
            present.add(step)
            left = then if fired else left - 1
        else:
            held.append(step)
            if fired:
                present |= set(held)
                held, left = [], then
            else:
                held = held[-keep:]
        shown.append(set(present))
    return Expected(shown, held)


def main() -> None:
    root = sys.argv[1]
    config = {"backends": [{"id": "disk", "type": "posix", "target": root}]}
    with esdm_hpc.open("esdm://held", "w", config=config) as c:
        t = c.create_dataset("t", shape=(STEPS, *SHAPE), dtype="f8")
        t.keep_last(KEEP, trigger=anomaly, then=THEN)
        for step in range(STEPS):
            t[step] = field(step, step == ANOMALY)
            print(f"committed {c.commit()}", flush=True)


if __name__ == "__main__":
    main()
