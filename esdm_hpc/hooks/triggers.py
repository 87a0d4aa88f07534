"""Trigger-based persistence (seed UC 4.4.8; docs/architecture.md §7.4, "Triggers"):
a dataset whose last steps are held in memory only and persisted when a trigger
fires, then persisted as written for a while.

A *step* is one epoch in which any rank wrote the dataset: this rank's blocks of
it (copies; maybe none), told apart by where they were written (a dataset that
grows along a time axis keeps every step; one overwritten in place keeps, when
persisted, the newest of what it held). Every rank holds the same steps (the
epochs come from the commit's allgather), so every rank decides alike.

`Held.plan` says what a commit does; the plan takes effect once the epoch is
published (`Held.settle`): a refused commit leaves what was held as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from esdm_hpc.hooks.records import Block, Hook

Cause = Literal["trigger", "close"]


@dataclass(frozen=True, slots=True)
class Step:
    """This rank's blocks of a keep_last dataset written in ``epoch``."""

    epoch: int
    blocks: tuple[Block, ...]

    def extent(self) -> tuple[int, int] | None:
        """The range of the first axis its blocks cover here, None without any."""
        rows = [(b.offset[0], b.offset[0] + b.data.shape[0]) for b in self.blocks if b.offset]
        if not rows:
            return None
        return min(low for low, _ in rows), max(high for _, high in rows)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one commit does with a keep_last dataset."""

    persist: tuple[Step, ...]  # written into the epoch being committed
    held: tuple[Step, ...]  # held once the epoch is published
    left: int  # steps persisted as written from then on
    cause: Cause | None  # why steps are persisted (a "trigger" event), None: no event


class Held:
    """The steps of one keep_last dataset held on this rank (its trigger ``hook``),
    and how many steps are still persisted as written after the last trigger."""

    def __init__(self, hook: Hook):
        assert hook.hold is not None
        self.hook = hook
        self.keep, self.then = hook.hold.keep, hook.hold.then
        self.steps: tuple[Step, ...] = ()
        self.left = 0
        self._plan: Plan | None = None

    @property
    def holding(self) -> bool:
        """Whether the dataset's writes are held (not written) now."""
        return self.left == 0

    def plan(self, step: Step | None, fired: bool, closing: bool) -> Plan:
        """What the commit under way does: ``step`` is the epoch's (None if the dataset
        was not written in it), ``fired`` whether the trigger fired on it, ``closing``
        whether it is the commit of `Container.close`, which persists what is held."""
        if not self.holding:  # the step was written as it came
            left = self.then if fired else self.left - (step is not None)
            plan = Plan((), (), left, "trigger" if fired else None)
        else:
            steps = self.steps if step is None else (*self.steps, step)
            if fired:
                plan = Plan(steps, (), self.then, "trigger")
            elif closing:
                plan = Plan(steps, (), 0, "close" if steps else None)
            else:
                plan = Plan((), steps[-self.keep :], 0, None)
        self._plan = plan
        return plan

    def settle(self) -> None:
        """The epoch was published: its plan holds."""
        if self._plan is not None:
            self.steps, self.left = self._plan.held, self._plan.left
            self._plan = None

    def discard(self) -> None:
        """The commit was refused: what was held stays held."""
        self._plan = None


def persisted(extents: Sequence[Sequence[tuple[int, int] | None]], plan: Plan) -> list[dict]:
    """The steps ``plan`` persists, for its event: each step's epoch and the range of
    the first axis it covers over all ranks (``extents``: every rank's, step by step)."""
    steps = []
    for index, step in enumerate(plan.persist):
        covered = [rank[index] for rank in extents if rank[index] is not None]
        entry: dict[str, Any] = {"epoch": step.epoch}
        if covered:
            entry["time"] = [min(lo for lo, _ in covered), max(hi for _, hi in covered)]
        steps.append(entry)
    return steps
