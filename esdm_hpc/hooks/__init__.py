"""In-situ hooks: a model's own analysis code, run where its data is, as it writes
and commits (docs/architecture.md §7.4).

Hooks are registered per dataset, on every rank alike (collective, like creating
a dataset): ``dataset.on_write(fn)``, ``dataset.on_commit(fn)`` and
``dataset.keep_last(n, trigger=fn)`` in Python, or the ``hooks`` and ``triggers``
keys of the site configuration (`configured`), which a C or Fortran program
writing through the HDF5 VOL connector gets with no code change.

- **on_write** ``fn(block, offset[, comm], **args)``: on the rank that wrote,
  right after each write call (``write_async``: at the call), with a read-only
  view of the block, its offset (a tuple) and, if ``fn`` takes three
  positional parameters, the container's communicator (for its rank and size:
  no other rank is in the hook, so it must make no collective call). A
  Numba-compiled function takes ``(block, offset)`` and is the fast path. What
  it returns (unless None) goes, as a `WriteResult`, to the dataset's on_commit
  hooks: a partial sum per block, reduced at the commit.
- **on_commit** ``fn(context, **args)``: collective, once per commit on every
  rank when any rank wrote the dataset in the epoch, at the start of the
  commit, before the writers sync. The `CommitContext` holds the epoch, a
  communicator, this rank's blocks of the epoch and the on_write results, and
  writes **derived datasets** into the same open epoch: they are committed
  atomically with the raw data (a crash leaves both or neither).
- **triggers** ``keep_last(n, trigger=fn, then=k)``: the dataset's last ``n``
  steps are held in memory only; when ``fn(context, **args)`` returns true on
  any rank (an anomaly detector), they are written into the epoch being
  committed, each at its place, and the next ``k`` steps are written as they
  come (`triggers`).

A failing hook never loses the raw data: with ``on_failure="record"`` (the
default) the epoch commits without the hook's outputs, every rank warns
(`HookWarning`) and a "hook" event is logged; with ``on_failure="fail"``
every rank raises the same `HookError` and nothing is published. An on_commit
hook's collective calls go through `HookComm`, which lets no rank wait for a
peer that failed or returned: an error on one rank never hangs the others.

A hook with a budget (seconds per call) that exceeds it `STRIKES` calls in a row
moves to a background thread (an on_commit hook on a duplicate communicator,
which needs MPI_THREAD_MULTIPLE): its outputs then land in a later epoch, and
their attribute `SOURCE_EPOCH` and the "hook" event say which epoch's data they
were computed from. A hook with ``on_failure="fail"`` stays in the commit it
may fail; over budget, it is only reported.

The modules: `records` (what hooks are made of), `resolve` (configured hooks),
`context` (`CommitContext`), `hookcomm` (`HookComm`, one collective call),
`outcomes` (events and warnings), `background` (the worker thread), `triggers`
(held steps), `runner` (`Hooks`, what the container calls).
"""

from esdm_hpc.hooks.context import CommitContext
from esdm_hpc.hooks.hookcomm import HookComm
from esdm_hpc.hooks.records import (
    BACKLOG,
    EVENT,
    SOURCE_EPOCH,
    STRIKES,
    TRIGGER_EVENT,
    Block,
    Hold,
    Hook,
    HookError,
    HookWarning,
    OnFailure,
    Stage,
    When,
    WriteResult,
)
from esdm_hpc.hooks.resolve import check_callable, configured
from esdm_hpc.hooks.runner import Hooks, Prepared

__all__ = [
    "BACKLOG",
    "EVENT",
    "SOURCE_EPOCH",
    "STRIKES",
    "TRIGGER_EVENT",
    "Block",
    "CommitContext",
    "Hold",
    "Hook",
    "HookComm",
    "HookError",
    "HookWarning",
    "Hooks",
    "OnFailure",
    "Prepared",
    "Stage",
    "When",
    "WriteResult",
    "check_callable",
    "configured",
]
