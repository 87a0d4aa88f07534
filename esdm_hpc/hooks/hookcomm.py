"""The communicator of an on_commit hook, and one call of such a hook on every rank
(docs/architecture.md §7.4, "No hang")."""

from __future__ import annotations

import functools
import operator
import time
from dataclasses import dataclass
from typing import Any

from esdm_hpc.comm import Comm
from esdm_hpc.errors import EsdmError
from esdm_hpc.hooks.context import CommitContext, Spec
from esdm_hpc.hooks.records import Hook


class Abandoned(EsdmError):
    """The hook's peers are not making the call this rank makes."""


@dataclass(frozen=True, slots=True)
class Final:
    """How one rank's call of an on_commit hook (or a trigger) ended."""

    error: str | None  # "Type: message", None if it returned
    followed: bool  # the error is a peer's doing (it failed or returned), not this rank's
    seconds: float
    outputs: tuple[Spec, ...]
    fired: bool = False  # a trigger that returned true here


_CALL, _END = "call", "end"


class HookComm:
    """The communicator an on_commit hook gets: the operations of `comm.Comm`, each
    one allgather with the others' state, so a rank whose hook failed or returned
    does not leave its peers waiting in a collective call: they raise instead,
    and the run fails on every rank. A reduction is computed alike on every rank
    (over the values in rank order): every rank gets the same bits. Meant for the
    small values in-situ analyses exchange (sums, extremes, histograms)."""

    def __init__(self, comm: Comm):
        self._comm = comm

    @property
    def rank(self) -> int:
        return self._comm.rank

    @property
    def size(self) -> int:
        return self._comm.size

    def _exchange(self, call: str, payload: Any) -> list[Any]:
        gathered = self._comm.allgather((_CALL, call, payload))
        ended = [rank for rank, (kind, _, _) in enumerate(gathered) if kind == _END]
        if ended:
            how = "failed" if any(gathered[r][2].error for r in ended) else "returned"
            raise Abandoned(
                f"rank {self.rank} called {call} after ranks {ended} had {how}: every "
                "rank must make the same collective calls"
            )
        calls = {rank: name for rank, (_, name, _) in enumerate(gathered)}
        if len(set(calls.values())) > 1:
            raise Abandoned(f"the ranks made different collective calls: {calls}")
        return [value for _, _, value in gathered]

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self._exchange(f"bcast(root={root})", obj if self.rank == root else None)[root]

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        values = self._exchange(f"gather(root={root})", obj)
        return values if self.rank == root else None

    def allgather(self, obj: Any) -> list[Any]:
        return self._exchange("allgather", obj)

    def allreduce(self, obj: Any, op: Any = None) -> Any:
        """``op``: an mpi4py operation (MPI.SUM, MPI.MAX, ...) or any function of two
        values; None: sum."""
        return functools.reduce(op or operator.add, self._exchange("allreduce", obj))

    def Barrier(self) -> None:
        self._exchange("Barrier", None)

    def finish(self, final: Final) -> list[Final]:
        """Every rank's end, once every rank has ended (the same list on every rank)."""
        while True:
            gathered = self._comm.allgather((_END, "", final))
            if all(kind == _END for kind, _, _ in gathered):
                return [value for _, _, value in gathered]
            # some rank is still in a collective call: it sees this rank's end and raises


def run_collective(hook: Hook, context: CommitContext) -> list[Final]:
    """Call an on_commit hook or a trigger on this rank; how it ended on every rank
    (a trigger's return value taken as true or false: ``fired``)."""
    start = time.perf_counter()
    error, followed, fired = None, False, False
    try:
        value = hook.function(context, **hook.args)
        fired = hook.when == "trigger" and bool(value)
    except Abandoned as abandoned:
        error, followed = str(abandoned), True
    except Exception as failure:  # reported on every rank, never lost
        error = f"{type(failure).__name__}: {failure}"
    seconds = time.perf_counter() - start
    return context.comm.finish(Final(error, followed, seconds, context.close(), fired))
