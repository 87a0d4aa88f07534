"""What became of a hook in a commit: the "hook" event of the log and the warning
every rank gives, decided alike on every rank from every rank's `Final`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from esdm_hpc.hooks.hookcomm import Final
from esdm_hpc.hooks.records import SOURCE_EPOCH, STRIKES, Hook

# path -> (shape, dtype, whole) of the derived datasets of one run
Specs = dict[str, tuple[tuple[int, ...], str, bool]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a hook in a commit: an event of the log, maybe a warning."""

    hook: Hook
    state: Literal["ok", "failed", "background", "over-budget"]
    computed_from: int  # the epoch of the data it ran on
    ranks: tuple[int, ...] = ()
    error: str | None = None
    seconds: float | None = None
    outputs: tuple[str, ...] = ()

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "hook": self.hook.name,
            "dataset": self.hook.dataset,
            "when": self.hook.when,
            "outcome": self.state,
            "computed_from": self.computed_from,
        }
        optional = {"ranks": list(self.ranks), "error": self.error, "outputs": list(self.outputs)}
        fields.update({key: value for key, value in optional.items() if value})
        if self.seconds is not None:
            fields["seconds"] = round(self.seconds, 6)
        return fields

    def message(self) -> str:
        where = f"{self.hook.label}, epoch {self.computed_from}"
        if self.state == "failed":
            consequence = (
                "it counts as not fired and the epoch commits, its steps held"
                if self.hook.hold is not None
                else "the epoch commits without its outputs"
            )
            return (
                f"{where}: failed on ranks {list(self.ranks)}: {self.error}; {consequence} "
                "(on_failure='record')"
            )
        budget = f"over its budget of {self.hook.budget:g} s {STRIKES} times in a row"
        if self.state == "over-budget":
            return f"{where}: {budget}; it stays in the commit ({self.error or 'on_failure=fail'})"
        later = (
            f"its outputs land in later epochs, their attribute {SOURCE_EPOCH} and the "
            "'hook' event saying which epoch's data they are of"
            if self.hook.when == "commit"
            else "its results reach later commits (WriteResult.epoch says of which epoch)"
        )
        return (
            f"{where}: {budget}: it runs in the background from now on "
            f"(ranks {list(self.ranks)}); {later}"
        )


def failure(hook: Hook, epoch: int, finals: Sequence[Final]) -> Outcome | None:
    """The failure of an on_commit run (the same on every rank), None if it succeeded."""
    failed = [rank for rank, final in enumerate(finals) if final.error]
    if not failed:
        return None
    own = [rank for rank in failed if not finals[rank].followed]
    ranks = own or failed  # without an own failure, the ranks' calls did not match
    seconds = max(final.seconds for final in finals)
    return Outcome(hook, "failed", epoch, tuple(ranks), finals[ranks[0]].error, seconds)


def agreed_outputs(finals: Sequence[Final]) -> tuple[Specs, str | None]:
    """The derived datasets of a run, or why the ranks' outputs do not fit together."""
    specs: Specs = {}
    for rank, final in enumerate(finals):
        for path, shape, dtype, whole in final.outputs:
            spec = (shape, dtype, whole)
            if specs.setdefault(path, spec) != spec:
                return {}, (
                    f"ranks wrote {path} as {specs[path]} and, on rank {rank}, as {spec} "
                    "(shape, type, whole): every rank must agree"
                )
    for path, (_, _, whole) in specs.items():
        if not whole:
            continue
        missing = [r for r, f in enumerate(finals) if path not in {o[0] for o in f.outputs}]
        if missing:
            return {}, f"write({path!r}) is collective, but ranks {missing} did not call it"
    return specs, None


def refusal(outcome: Outcome) -> str:
    """The message of the HookError a failure with on_failure="fail" raises."""
    return (
        f"{outcome.hook.label}, epoch {outcome.computed_from}: failed on ranks "
        f"{list(outcome.ranks)}: {outcome.error}; on_failure='fail': the commit is refused"
    )
