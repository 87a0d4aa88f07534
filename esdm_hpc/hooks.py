"""In-situ hooks: a model's own analysis code, run where its data is, as it writes
and commits (docs/architecture.md §7.4).

Hooks are registered per dataset, on every rank alike (collective, like creating
a dataset): ``dataset.on_write(fn)`` and ``dataset.on_commit(fn)`` in Python, or
the ``hooks`` key of the site configuration (`configured`), which a C or Fortran
program writing through the HDF5 VOL connector gets with no code change.

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

A failing hook never loses the raw data: with ``on_failure="record"`` (the
default) the epoch commits without the hook's outputs, every rank warns
(`HookWarning`) and rank 0 logs a "hook" event; with ``on_failure="fail"``
every rank raises the same `HookError` and nothing is published. An on_commit
hook's collective calls go through `HookComm`, which lets no rank wait for a
peer that failed or returned: an error on one rank never hangs the others.

A hook with a budget (seconds per call) that exceeds it `STRIKES` calls in a row
moves to a background thread (an on_commit hook on a duplicate communicator,
which needs MPI_THREAD_MULTIPLE): its outputs then land in a later epoch, and
their attribute `SOURCE_EPOCH` and the "hook" event say which epoch's data they
were computed from. A hook with ``on_failure="fail"`` stays in the commit it
may fail; over budget, it is only reported.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
import operator
import posixpath
import queue
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from esdm_hpc.comm import Comm, agree
from esdm_hpc.config import ConfigError, HookConfig, SiteConfig
from esdm_hpc.epochs import events
from esdm_hpc.errors import EsdmError, EsdmWarning
from esdm_hpc.faults import crash_point

if TYPE_CHECKING:
    from esdm_hpc.container import Container
    from esdm_hpc.namespace import DatasetMeta

When = Literal["write", "commit"]
OnFailure = Literal["record", "fail"]

STRIKES = 3  # calls in a row over budget before a hook moves to the background
BACKLOG = 4  # background on_commit runs not done yet beyond which a commit waits for one
SOURCE_EPOCH = "esdm_source_epoch"  # attribute of a derived dataset: what it was computed from
EVENT = "hook"  # the kind of the event log entries


class HookError(EsdmError, RuntimeError):
    """A hook with ``on_failure="fail"`` failed: the commit is refused on every rank."""


class HookWarning(EsdmWarning):
    """A hook failed (its epoch committed without its outputs) or moved to the background."""


# --- records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Hook:
    """A registered hook (`Dataset.on_write`, `Dataset.on_commit`, `Hooks.add`)."""

    name: str
    dataset: str  # the dataset's path
    when: When
    function: Callable[..., Any]
    args: Mapping[str, Any]  # keyword arguments of every call
    budget: float | None  # seconds per call
    on_failure: OnFailure
    takes_comm: bool  # an on_write hook of three positional parameters

    @property
    def label(self) -> str:
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


@dataclass(frozen=True, slots=True)
class _Output:
    """A derived dataset's data one rank hands in: the whole dataset (offset None,
    rank 0's written) or this rank's part of it."""

    path: str
    data: np.ndarray
    offset: tuple[int, ...] | None
    shape: tuple[int, ...]

    @property
    def spec(self) -> tuple[str, tuple[int, ...], str, bool]:
        return (self.path, self.shape, self.data.dtype.str, self.offset is None)


class CommitContext:
    """What an on_commit hook is called with, on every rank: ``epoch`` (the epoch the
    blocks were written in), ``dataset``, ``comm`` (a `HookComm`), ``blocks`` (this
    rank's `Block`s of the dataset in the epoch, maybe none) and ``results`` (the
    `WriteResult`s of the dataset's on_write hooks on this rank since the last run)."""

    def __init__(
        self,
        epoch: int,
        dataset: str,
        comm: HookComm,
        blocks: Sequence[Block],
        results: Sequence[WriteResult],
    ):
        self.epoch = epoch
        self.dataset = dataset
        self.comm = comm
        self.blocks = blocks
        self.results = results
        self.outputs: list[_Output] = []
        self._open = True

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def write(self, path: str, value: Any) -> None:
        """Write the derived dataset ``path`` whole: ``value`` is the same on every
        rank (a reduction's result) and rank 0's is written. Created on first use
        with the value's shape and type, overwritten by each later commit (older
        epochs keep theirs: ``esdm_hpc.open(uri, epoch=k)``)."""
        data = np.array(value)
        self._add(_Output(self._path(path), data, None, data.shape))

    def write_part(self, path: str, data: Any, offset: Sequence[int], shape: Sequence[int]) -> None:
        """Write this rank's part ``data`` at ``offset`` of the derived dataset ``path``
        of ``shape`` (every rank that writes a part names the same shape and type)."""
        array = np.array(data)
        at, whole = tuple(int(o) for o in offset), tuple(int(s) for s in shape)
        fits = len(at) == len(whole) == array.ndim and all(
            o >= 0 and o + n <= s for o, n, s in zip(at, array.shape, whole, strict=True)
        )
        if not fits:
            raise ValueError(
                f"{path}: a part of shape {array.shape} at {at} is outside the shape {whole}"
            )
        self._add(_Output(self._path(path), array, at, whole))

    def _path(self, path: str) -> str:
        if not isinstance(path, str) or not path.strip("/"):
            raise ValueError(f"a derived dataset's path is a non-empty string, not {path!r}")
        normal = posixpath.normpath("/" + path.lstrip("/"))
        if normal == self.dataset:
            raise ValueError(f"{path}: a hook writes derived datasets, not the one it is on")
        return normal

    def _add(self, output: _Output) -> None:
        if not self._open:
            raise ValueError(f"{output.path}: the hook has returned; write while it runs")
        if output.data.dtype.kind not in "biufc":
            raise TypeError(f"{output.path}: derived data must be numbers, not {output.data.dtype}")
        self.outputs.append(output)

    def close(self) -> tuple[tuple[str, tuple[int, ...], str, bool], ...]:
        """No more writes; the specs of what was written."""
        self._open = False
        return tuple(output.spec for output in self.outputs)


# --- the communicator of an on_commit hook ---------------------------------------------


class _Abandoned(EsdmError):
    """The hook's peers are not making the call this rank makes."""


@dataclass(frozen=True, slots=True)
class _Final:
    """How one rank's call of an on_commit hook ended."""

    error: str | None  # "Type: message", None if it returned
    followed: bool  # the error is a peer's doing (it failed or returned), not this rank's
    seconds: float
    outputs: tuple[tuple[str, tuple[int, ...], str, bool], ...]


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
            raise _Abandoned(
                f"rank {self.rank} called {call} after ranks {ended} had {how}: every "
                "rank must make the same collective calls"
            )
        calls = {rank: name for rank, (_, name, _) in enumerate(gathered)}
        if len(set(calls.values())) > 1:
            raise _Abandoned(f"the ranks made different collective calls: {calls}")
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

    def finish(self, final: _Final) -> list[_Final]:
        """Every rank's end, once every rank has ended (the same list on every rank)."""
        while True:
            gathered = self._comm.allgather((_END, "", final))
            if all(kind == _END for kind, _, _ in gathered):
                return [value for _, _, value in gathered]
            # some rank is still in a collective call: it sees this rank's end and raises


def _run_collective(hook: Hook, context: CommitContext) -> list[_Final]:
    """Call an on_commit hook on this rank; how it ended on every rank."""
    start = time.perf_counter()
    error, followed = None, False
    try:
        hook.function(context, **hook.args)
    except _Abandoned as abandoned:
        error, followed = str(abandoned), True
    except Exception as failure:  # reported on every rank, never lost
        error = f"{type(failure).__name__}: {failure}"
    seconds = time.perf_counter() - start
    return context.comm.finish(_Final(error, followed, seconds, context.close()))


# --- outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
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
            return (
                f"{where}: failed on ranks {list(self.ranks)}: {self.error}; the epoch "
                "commits without its outputs (on_failure='record')"
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


def _failure(hook: Hook, epoch: int, finals: Sequence[_Final]) -> _Outcome | None:
    """The failure of an on_commit run (the same on every rank), None if it succeeded."""
    failed = [rank for rank, final in enumerate(finals) if final.error]
    if not failed:
        return None
    own = [rank for rank in failed if not finals[rank].followed]
    ranks = own or failed  # without an own failure, the ranks' calls did not match
    seconds = max(final.seconds for final in finals)
    return _Outcome(hook, "failed", epoch, tuple(ranks), finals[ranks[0]].error, seconds)


def _agreed_outputs(
    finals: Sequence[_Final],
) -> tuple[dict[str, tuple[tuple[int, ...], str, bool]], str | None]:
    """The derived datasets of a run (path -> shape, type, whole), or why the ranks'
    outputs do not fit together."""
    specs: dict[str, tuple[tuple[int, ...], str, bool]] = {}
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


# --- configured hooks ------------------------------------------------------------------


def check_callable(function: Any, when: When, args: Mapping[str, Any]) -> bool:
    """Whether an on_write hook takes the communicator; TypeError saying why
    ``function`` cannot be a hook of ``when`` called with ``args``."""
    if not callable(function):
        raise TypeError(f"{type(function).__name__} {function!r:.40} is not callable")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without one: the first call will tell
        return True
    placeholders = ("block", "offset", "comm") if when == "write" else ("context",)
    try:
        signature.bind(*placeholders, **args)
        return True
    except TypeError as error:
        problem = error
    if when == "write":
        try:
            signature.bind(*placeholders[:2], **args)
            return False
        except TypeError:
            pass
    expected = "(block, offset[, comm]" if when == "write" else "(context"
    given = "".join(f", {key}=..." for key in args)
    raise TypeError(f"{signature} cannot be called as {expected}{given}): {problem}")


def _import(function: str) -> Any:
    module_name, _, qualname = function.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise LookupError(f"cannot import module {module_name!r}: {error}") from None
    except Exception as error:  # the module's own code failed
        raise LookupError(
            f"importing module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from None
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise LookupError(f"module {module_name!r} has no {qualname!r}") from None
    return found


def _resolve(spec: HookConfig) -> Hook:
    function = _import(spec.function)
    args = dict(spec.args)
    takes_comm = check_callable(function, spec.when, args)
    return Hook(spec.name or spec.function, spec.dataset, spec.when, function, args,
                spec.budget_s, spec.on_failure, takes_comm)  # fmt: skip


def configured(site: SiteConfig, container: str, comm: Comm) -> list[Hook]:
    """The hooks ``site`` names for the container ``container``, imported and checked
    on every rank (collective): ConfigError naming the hook, the same on every rank,
    if a module is missing, a name is no callable or its signature does not fit."""
    agree(comm, "open (the configuration's hooks)", {"hooks": [repr(h) for h in site.hooks]})
    resolved, problem = [], None
    for index, spec in enumerate(site.hooks):
        patterns = spec.containers or ("*",)
        if not any(fnmatch.fnmatchcase(container, pattern) for pattern in patterns):
            continue
        try:
            resolved.append(_resolve(spec))
        except (LookupError, TypeError) as error:
            problem = f"{site.source}: hooks[{index}] ({spec.label}): {error}"
            break
    if site.hooks:
        problems = comm.allgather(problem)
        failed = [rank for rank, p in enumerate(problems) if p]
        if failed:
            first = problems[failed[0]]
            everywhere = len(failed) == comm.size
            raise ConfigError(first if everywhere else f"{first} (on ranks {failed})")
    return resolved


# --- the background ------------------------------------------------------------------------


class _Worker:
    """One daemon thread running calls in order. A daemon: a call stuck in a collective
    whose peers are gone must not keep the process from exiting."""

    def __init__(self, name: str):
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._calls.put((future, call))
        return future

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as error:  # the submitter gets it
                    future.set_exception(error)

    def stop(self) -> None:
        self._calls.put(None)


def _thread_comm(comm: Comm) -> tuple[Comm | None, str]:
    """A communicator a worker thread may use beside the main thread's (collective),
    or None and why not."""
    duplicate = getattr(comm, "Dup", None)
    if duplicate is None:  # the serial communicator: no messages to mix up
        return comm, ""
    from mpi4py import MPI

    able = all(comm.allgather(MPI.Query_thread() >= MPI.THREAD_MULTIPLE))
    if not able:
        return None, "MPI was not initialised with MPI_THREAD_MULTIPLE"
    return duplicate(), ""


@dataclass(slots=True)
class _State:
    """What a hook's calls left so far on this rank."""

    strikes: int = 0  # calls in a row over budget
    worker: _Worker | None = None  # on_write: in the background on this rank
    background: bool = False  # on_commit: in the background (every rank alike)
    # on_write, since the last commit:
    failures: int = 0
    error: str | None = None
    moved: bool = False
    jobs: deque[Future[WriteResult | None]] = field(default_factory=deque)


@dataclass(slots=True)
class _Watch:
    """What a write of one dataset sets off."""

    on_write: list[Hook] = field(default_factory=list)
    keep: bool = False  # an on_commit hook wants the blocks


@dataclass(frozen=True, slots=True)
class _Report:
    """One rank's part of a commit's hooks."""

    written: tuple[str, ...]  # datasets with on_commit hooks written here
    writes: tuple[tuple[int, int, str | None, bool], ...]  # on_write: index, failures, error, moved
    done: int  # background on_commit runs done here, oldest first


@dataclass(slots=True)
class _Job:
    """An on_commit hook's run in the background."""

    hook: Hook
    context: CommitContext
    future: Future[list[_Final]]


# --- the registry -------------------------------------------------------------------------


class Hooks:
    """The hooks of one container (``container.hooks``; only a writer may add any).

    `Container` calls `written` after each write and `before_commit` at the start
    of each commit (collective), then `committed` or `refused`."""

    def __init__(self, container: Container, configured: Sequence[Hook] = ()):
        self._container = container
        self._comm = container.comm
        self._hooks: list[Hook] = []
        self._state: dict[Hook, _State] = {}
        self._watch: dict[str, _Watch] = {}
        self._blocks: dict[str, list[Block]] = {}  # the open epoch's, per dataset
        self._results: dict[str, list[WriteResult]] = {}  # not given to on_commit yet
        self._jobs: deque[_Job] = deque()  # background on_commit runs not landed yet
        self._landed: list[_Job] = []  # landed in the commit under way
        self._outcomes: list[_Outcome] = []  # of the commit under way, logged once published
        self._worker: _Worker | None = None  # of the background on_commit runs
        self._worker_comm: Comm | None = None
        self._local_error: Exception | None = None
        for hook in configured:
            self._register(hook)

    def __iter__(self) -> Iterator[Hook]:
        return iter(list(self._hooks))

    def __len__(self) -> int:
        return len(self._hooks)

    def add(
        self,
        dataset: str,
        when: When,
        function: Callable[..., Any],
        *,
        args: Mapping[str, Any] | None = None,
        budget: float | None = None,
        on_failure: OnFailure = "record",
        name: str | None = None,
    ) -> Hook:
        """Register ``function`` as a hook of ``when`` ("write" or "commit") on the
        dataset ``dataset`` (collective: every rank registers the same hooks in the
        same order). ``args``: keyword arguments of every call; ``budget``: seconds
        per call; ``on_failure``: "record" or "fail"; ``name``: for messages and
        `WriteResult.hook` (default: the function's module and name)."""
        self._container.edit("registering a hook")
        if when not in get_args(When):
            raise ValueError(f"when must be 'write' or 'commit', not {when!r}")
        if on_failure not in get_args(OnFailure):
            raise ValueError(f"on_failure must be 'record' or 'fail', not {on_failure!r}")
        if budget is not None and not (isinstance(budget, int | float) and budget > 0):
            raise ValueError(f"budget is a positive number of seconds or None, not {budget!r}")
        path = "/" + dataset.strip("/")
        name = name or _name_of(function)
        keywords = dict(args or {})
        if any(h.dataset == path and h.when == when and h.name == name for h in self._hooks):
            raise ValueError(f"{path} has an on_{when} hook named {name!r} already: name this one")
        try:
            takes_comm = check_callable(function, when, keywords)
        except TypeError as error:
            raise TypeError(f"hook {name!r} on {path} (on_{when}): {error}") from None
        description = {"dataset": path, "name": name, "args": keywords, "budget": budget,
                       "on_failure": on_failure}  # fmt: skip
        agree(self._comm, f"on_{when}", description)
        hook = Hook(name, path, when, function, keywords, budget, on_failure, takes_comm)
        self._register(hook)
        return hook

    def _register(self, hook: Hook) -> None:
        self._hooks.append(hook)
        self._state[hook] = _State()
        watch = self._watch.setdefault(hook.dataset, _Watch())
        if hook.when == "write":
            watch.on_write.append(hook)
        else:
            watch.keep = True

    # --- writes ----------------------------------------------------------------------

    def written(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        """After this rank wrote ``data`` at ``offset`` of ``meta`` (its open epoch)."""
        watch = self._watch.get(meta.path)
        if watch is None:
            return
        block = data.view()
        block.flags.writeable = False
        copy = None  # taken once for what outlives the call: the data may be reused
        if watch.keep:
            copy = _frozen_copy(data)
            self._blocks.setdefault(meta.path, []).append(Block(offset, copy))
        epoch = self._container.head.epoch + 1
        for hook in watch.on_write:
            state = self._state[hook]
            if state.worker is not None:
                copy = copy if copy is not None else _frozen_copy(data)
                call = functools.partial(self._call_on_write, hook, epoch, offset, copy)
                state.jobs.append(state.worker.submit(call))
                continue
            start = time.perf_counter()
            try:
                result = self._call_on_write(hook, epoch, offset, block)
            except Exception as error:  # reported at the commit, on every rank
                state.failures += 1
                state.error = state.error or f"{type(error).__name__}: {error}"
                continue
            self._keep(hook, result)
            self._on_write_budget(hook, state, time.perf_counter() - start)

    def _call_on_write(
        self, hook: Hook, epoch: int, offset: tuple[int, ...], block: np.ndarray
    ) -> WriteResult | None:
        args = (block, offset, self._comm) if hook.takes_comm else (block, offset)
        value = hook.function(*args, **hook.args)
        return None if value is None else WriteResult(hook.name, epoch, offset, value)

    def _keep(self, hook: Hook, result: WriteResult | None) -> None:
        if result is not None and self._watch[hook.dataset].keep:
            self._results.setdefault(hook.dataset, []).append(result)

    def _on_write_budget(self, hook: Hook, state: _State, seconds: float) -> None:
        if hook.budget is None:
            return
        state.strikes = state.strikes + 1 if seconds > hook.budget else 0
        if state.strikes >= STRIKES:
            state.strikes = 0
            state.moved = True  # reported at the commit
            if hook.on_failure == "record":  # "fail" stays in the epoch it may fail
                state.worker = _Worker(f"esdm-hook-{hook.name}")

    def _collect_writes(self) -> tuple[tuple[int, int, str | None, bool], ...]:
        """The results of background on_write calls done so far, and what to report."""
        reports = []
        for index, hook in enumerate(self._hooks):
            state = self._state[hook]
            while state.jobs and state.jobs[0].done():
                job = state.jobs.popleft()
                error = job.exception()
                if error is None:
                    self._keep(hook, job.result())
                else:
                    state.failures += 1
                    state.error = state.error or f"{type(error).__name__}: {error}"
            if state.failures or state.moved:
                reports.append((index, state.failures, state.error, state.moved))
                state.failures, state.error, state.moved = 0, None, False
        return tuple(reports)

    # --- commits ----------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Whether background outputs wait for a commit to land in (every rank alike)."""
        return bool(self._jobs)

    def before_commit(self, epoch: int) -> Exception | None:
        """Run the on_commit hooks of the datasets written in ``epoch`` and land the
        background outputs that are done (collective, at the start of the commit).
        Raises HookError on every rank for a failed hook with on_failure="fail";
        returns this rank's error that must fail the commit on every rank (a
        derived dataset's write failed), or None."""
        self._outcomes, self._landed, self._local_error = [], [], None
        if not self._hooks:
            return None
        blocks, self._blocks = self._blocks, {}
        report = _Report(tuple(blocks), self._collect_writes(), self._done_jobs())
        reports = self._comm.allgather(report)
        self._on_write_outcomes(reports, epoch)
        for _ in range(min(r.done for r in reports)):
            job = self._jobs.popleft()
            self._landed.append(job)
            job.context.blocks = ()  # done with: what it was computed from can go
            self._conclude(job.hook, job.context, job.future.result(), job.context.epoch)
        written = {path for r in reports for path in r.written}
        taken: dict[str, list[WriteResult]] = {}  # every on_commit hook of a dataset sees them
        for hook in self._hooks:
            if hook.when == "commit" and hook.dataset in written:
                if hook.dataset not in taken:
                    taken[hook.dataset] = self._results.pop(hook.dataset, [])
                self._on_commit(hook, epoch, blocks.get(hook.dataset, []), taken[hook.dataset])
        return self._local_error

    def _done_jobs(self) -> int:
        done = 0
        for job in self._jobs:
            if not job.future.done():
                break
            done += 1
        return done

    def _on_write_outcomes(self, reports: Sequence[_Report], epoch: int) -> None:
        failed: dict[int, list[tuple[int, int, str]]] = {}
        moved: dict[int, list[int]] = {}
        for rank, report in enumerate(reports):
            for index, failures, error, was_moved in report.writes:
                if failures:
                    failed.setdefault(index, []).append((rank, failures, error or ""))
                if was_moved:
                    moved.setdefault(index, []).append(rank)
        for index in sorted(failed):
            hook, ranks = self._hooks[index], failed[index]
            calls = sum(n for _, n, _ in ranks)
            error = f"{ranks[0][2]} ({calls} failed calls)"
            outcome = _Outcome(hook, "failed", epoch, tuple(r for r, _, _ in ranks), error)
            if hook.on_failure == "fail":
                raise HookError(_refusal(outcome))
            self._report(outcome)
        for index in sorted(moved):
            hook = self._hooks[index]
            state = "over-budget" if hook.on_failure == "fail" else "background"
            self._report(_Outcome(hook, state, epoch, tuple(moved[index])))

    def _on_commit(
        self, hook: Hook, epoch: int, blocks: list[Block], results: list[WriteResult]
    ) -> None:
        state = self._state[hook]
        if state.background:
            assert self._worker is not None and self._worker_comm is not None
            comm = HookComm(self._worker_comm)
            context = CommitContext(epoch, hook.dataset, comm, blocks, results)
            self._throttle()
            future = self._worker.submit(functools.partial(_run_collective, hook, context))
            self._jobs.append(_Job(hook, context, future))
            return
        context = CommitContext(epoch, hook.dataset, HookComm(self._comm),
                                blocks, results)  # fmt: skip
        crash_point("hook.called")
        finals = _run_collective(hook, context)
        crash_point("hook.ran")
        self._conclude(hook, context, finals, epoch)
        self._on_commit_budget(hook, state, max(final.seconds for final in finals), epoch)

    def _throttle(self) -> None:
        """Wait while BACKLOG background runs are not done: their blocks are copies."""
        running = [job.future for job in self._jobs if not job.future.done()]
        if len(running) >= BACKLOG:
            wait_for(running[: len(running) - BACKLOG + 1])

    def _conclude(
        self, hook: Hook, context: CommitContext, finals: list[_Final], computed_from: int
    ) -> None:
        """Land a run's outputs in the open epoch, or report its failure (every rank alike:
        ``finals`` and the namespace are the same on every rank)."""
        seconds = max(final.seconds for final in finals)
        failure = _failure(hook, computed_from, finals)
        if failure is None:
            specs, problem = _agreed_outputs(finals)
            problem = problem or self._check_targets(specs)
            if problem is not None:
                everyone = tuple(range(len(finals)))
                failure = _Outcome(hook, "failed", computed_from, everyone, problem, seconds)
        if failure is not None:
            if hook.on_failure == "fail":
                raise HookError(_refusal(failure))
            self._report(failure)
            return
        self._land(context, specs, computed_from)
        crash_point("hook.landed")
        self._outcomes.append(
            _Outcome(hook, "ok", computed_from, seconds=seconds, outputs=tuple(specs))
        )

    def _check_targets(self, specs: Mapping[str, tuple[tuple[int, ...], str, bool]]) -> str | None:
        """Why the derived datasets cannot be written as ``specs`` says, or None."""
        container = self._container
        for path, (shape, dtype, _) in specs.items():
            meta = container.namespace.datasets.get(path)
            if meta is not None:
                if meta.shape != shape or meta.dtype != np.dtype(dtype):
                    return (
                        f"the derived dataset {path} is {meta.dtype} {meta.shape}, the hook "
                        f"wrote {np.dtype(dtype)} {shape}"
                    )
                continue
            try:
                container.edit("writing a derived dataset").free_name(path)
            except (KeyError, ValueError) as error:
                return f"cannot create the derived dataset {path}: {error}"
        return None

    def _land(
        self,
        context: CommitContext,
        specs: Mapping[str, tuple[tuple[int, ...], str, bool]],
        computed_from: int,
    ) -> None:
        container = self._container
        for path, (shape, dtype, _) in specs.items():
            if path not in container.namespace.datasets:
                container.create_dataset_at(path, shape, np.dtype(dtype))
        try:
            for output in context.outputs:
                if output.offset is None and self._comm.rank != 0:
                    continue  # the whole dataset, the same on every rank: rank 0 writes it
                meta = container.dataset_meta(output.path)
                at = (0,) * len(output.shape) if output.offset is None else output.offset
                # straight to the open epoch: derived writes set off no hooks
                container.open_epoch.write(meta, at, output.data.astype(meta.dtype, order="C"))
        except Exception as error:  # fails the commit on every rank (Container.commit)
            self._local_error = self._local_error or error
        for path in specs:
            container[path].attrs[SOURCE_EPOCH] = computed_from

    def _on_commit_budget(self, hook: Hook, state: _State, seconds: float, epoch: int) -> None:
        """Count a run over budget; the STRIKES-th in a row moves the hook to the
        background (every rank alike: ``seconds`` is the slowest rank's)."""
        if hook.budget is None:
            return
        state.strikes = state.strikes + 1 if seconds > hook.budget else 0
        if state.strikes < STRIKES:
            return
        state.strikes = 0
        if hook.on_failure == "fail":
            self._report(_Outcome(hook, "over-budget", epoch, seconds=seconds))
            return
        if self._worker is None:
            comm, why = _thread_comm(self._comm)
            if comm is None:
                self._report(_Outcome(hook, "over-budget", epoch, seconds=seconds, error=why))
                return
            self._worker_comm, self._worker = comm, _Worker("esdm-hooks")
        state.background = True
        everyone = tuple(range(self._comm.size))
        self._report(_Outcome(hook, "background", epoch, everyone, seconds=seconds))

    def _report(self, outcome: _Outcome) -> None:
        """Warn (on every rank: what is reported is known to every rank) and log it
        once the epoch is published."""
        warnings.warn(HookWarning(outcome.message()), stacklevel=5)
        self._outcomes.append(outcome)

    def committed(self, epoch: int) -> None:
        """After ``epoch`` was published: rank 0 logs what became of the hooks (a
        failure to log is logged, never raised: the epoch is published)."""
        outcomes, self._outcomes, self._landed = self._outcomes, [], []
        if self._comm.rank == 0:
            for outcome in outcomes:
                events.record(self._container.store, EVENT, epoch, outcome.fields())

    def refused(self) -> None:
        """After a refused commit: its blocks are gone with the epoch; background
        outputs that landed in it land in the next commit instead."""
        self._blocks.clear()
        self._jobs.extendleft(reversed(self._landed))
        self._landed, self._outcomes = [], []

    def drain(self) -> None:
        """Wait for every background call (at close, whose commit lands the outputs)."""
        wait_for([job.future for job in self._jobs])
        wait_for([job for state in self._state.values() for job in state.jobs])

    def close(self) -> None:
        """Stop the background threads (after the call each is in)."""
        workers = {state.worker for state in self._state.values()} | {self._worker}
        for worker in workers:
            if worker is not None:
                worker.stop()
        self._worker = None
        for state in self._state.values():
            state.worker = None


def _refusal(outcome: _Outcome) -> str:
    return (
        f"{outcome.hook.label}, epoch {outcome.computed_from}: failed on ranks "
        f"{list(outcome.ranks)}: {outcome.error}; on_failure='fail': the commit is refused"
    )


def _name_of(function: Any) -> str:
    inner = getattr(function, "py_func", function)  # a Numba dispatcher's Python function
    module = getattr(inner, "__module__", None) or "?"
    qualname = getattr(inner, "__qualname__", None) or type(function).__name__
    return f"{module}:{qualname}"


def _frozen_copy(data: np.ndarray) -> np.ndarray:
    copy = np.array(data, copy=True)
    copy.flags.writeable = False
    return copy
