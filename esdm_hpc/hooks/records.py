"""What in-situ hooks are made of: the registered hook, what it is given and what it
returns, the errors and warnings hooks raise (docs/architecture.md §7.4)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from esdm_hpc.errors import EsdmError, EsdmWarning

When = Literal["write", "commit"]  # what `Hooks.add` registers
Stage = Literal["write", "commit", "trigger"]  # when a registered hook runs
OnFailure = Literal["record", "fail"]

STRIKES = 3  # calls in a row over budget before a hook moves to the background
BACKLOG = 4  # background on_commit runs not done yet beyond which a commit waits for one
SOURCE_EPOCH = "esdm_source_epoch"  # attribute of a derived dataset: what it was computed from
EVENT = "hook"  # the kind of the event log entries of hook runs
TRIGGER_EVENT = "trigger"  # the kind of the entries of held steps persisted


class HookError(EsdmError, RuntimeError):
    """A hook with ``on_failure="fail"`` failed: the commit is refused on every rank."""


class HookWarning(EsdmWarning):
    """A hook failed (its epoch committed without its outputs) or moved to the background."""


@dataclass(frozen=True, slots=True)
class Hold:
    """What a trigger's dataset keeps in memory (`Dataset.keep_last`)."""

    keep: int  # steps held: the last ones committed (a trigger persists them and its own)
    then: int  # steps persisted as they are written after each trigger


@dataclass(frozen=True, slots=True, eq=False)
class Hook:
    """A registered hook (`Dataset.on_write`, `on_commit`, `keep_last`, `Hooks.add`)."""

    name: str
    dataset: str  # the dataset's path
    when: Stage
    function: Callable[..., Any]
    args: Mapping[str, Any]  # keyword arguments of every call
    budget: float | None  # seconds per call
    on_failure: OnFailure
    takes_comm: bool  # an on_write hook of three positional parameters
    blocks: bool = True  # an on_commit hook's context holds this rank's blocks (copies)
    hold: Hold | None = None  # a trigger's

    @property
    def label(self) -> str:
        if self.hold is not None:
            return f"trigger {self.name!r} on {self.dataset} (keep_last {self.hold.keep})"
        return f"hook {self.name!r} on {self.dataset} (on_{self.when})"


@dataclass(frozen=True, slots=True)
class Block:
    """One write of this rank: ``data`` (read-only) at ``offset``."""

    offset: tuple[int, ...]
    data: np.ndarray

    def within(self, offset: Sequence[int], count: Sequence[int]) -> np.ndarray:
        """The part of the block inside the box at ``offset`` of ``count`` (maybe empty)."""
        low = [max(a, b) for a, b in zip(self.offset, offset, strict=True)]
        high = [
            min(a + n, b + m)
            for a, n, b, m in zip(self.offset, self.data.shape, offset, count, strict=True)
        ]
        if any(h <= lo for lo, h in zip(low, high, strict=True)):
            return self.data[tuple(slice(0, 0) for _ in low)]
        return self.data[
            tuple(slice(lo - o, h - o) for lo, h, o in zip(low, high, self.offset, strict=True))
        ]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What an on_write hook returned for one block, and of which epoch's write."""

    hook: str
    epoch: int  # later than the commit's when the hook runs in the background
    offset: tuple[int, ...]
    value: Any


def frozen_copy(data: np.ndarray) -> np.ndarray:
    """A read-only copy of ``data``: what outlives a write call (the model reuses buffers)."""
    copy = np.array(data, copy=True)
    copy.flags.writeable = False
    return copy
