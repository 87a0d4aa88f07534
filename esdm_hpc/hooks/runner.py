"""The hooks of one container and what runs them: after each write (`Hooks.written`),
at the start of each commit (`Hooks.before_commit`, collective), after it
(`committed` or `refused`), at close (`finish`, `persist_held`)."""

from __future__ import annotations

import functools
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from esdm_hpc.comm import Comm, agree
from esdm_hpc.faults import crash_point
from esdm_hpc.hooks.background import Worker, thread_comm
from esdm_hpc.hooks.context import CommitContext
from esdm_hpc.hooks.hookcomm import Final, HookComm, run_collective
from esdm_hpc.hooks.outcomes import Outcome, Specs, agreed_outputs, failure, refusal
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
    frozen_copy,
)
from esdm_hpc.hooks.resolve import check_callable
from esdm_hpc.hooks.triggers import Held, Plan, Step, persisted

if TYPE_CHECKING:
    from esdm_hpc.container import Container
    from esdm_hpc.namespace import DatasetMeta

# One entry of the event log: its kind and fields.
Entry = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the hooks hand to the commit under way: this rank's error that must fail
    it on every rank (a derived dataset's write failed), and the epoch's events
    (hook outcomes, triggers), which rank 0 logs before the epoch's commit event."""

    error: Exception | None
    events: tuple[Entry, ...]


@dataclass(slots=True)
class _State:
    """What a hook's calls left so far on this rank."""

    strikes: int = 0  # calls in a row over budget
    worker: Worker | None = None  # on_write: in the background on this rank
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
    commits: bool = False  # it has on_commit hooks or a trigger: they run after its writes
    keep: bool = False  # an on_commit hook or a trigger wants the blocks


@dataclass(frozen=True, slots=True)
class _Report:
    """One rank's part of a commit's hooks."""

    written: tuple[str, ...]  # datasets with on_commit hooks or a trigger written here
    writes: tuple[tuple[int, int, str | None, bool], ...]  # on_write: index, failures, error, moved
    done: int  # background on_commit runs done here, oldest first


@dataclass(slots=True)
class _Job:
    """An on_commit hook's run in the background."""

    hook: Hook
    context: CommitContext
    future: Future[list[Final]]


class Hooks:
    """The hooks of one container (``container.hooks``; only a writer may add any).

    `Container` asks `holds` before each write and calls `written` after it,
    `before_commit` at the start of each commit (collective), then `committed` or
    `refused`; `finish` and `persist_held` before the commit of close."""

    def __init__(self, container: Container, configured: Sequence[Hook] = ()):
        self._container = container
        self._comm: Comm = container.comm
        self._hooks: list[Hook] = []
        self._state: dict[Hook, _State] = {}
        self._watch: dict[str, _Watch] = {}
        self._held: dict[str, Held] = {}  # of the keep_last datasets
        self._written: set[str] = set()  # the open epoch's datasets with commit hooks
        self._blocks: dict[str, list[Block]] = {}  # the open epoch's, per dataset
        self._results: dict[str, list[WriteResult]] = {}  # not given to on_commit yet
        self._jobs: deque[_Job] = deque()  # background on_commit runs not landed yet
        self._landed: list[_Job] = []  # landed in the commit under way
        self._events: list[Entry] = []  # of the commit under way
        self._worker: Worker | None = None  # of the background on_commit runs
        self._worker_comm: Comm | None = None
        self._local_error: Exception | None = None
        self._closing = False
        for hook in configured:
            self._register(hook)

    def __iter__(self) -> Iterator[Hook]:
        return iter(list(self._hooks))

    def __len__(self) -> int:
        return len(self._hooks)

    # --- registering -------------------------------------------------------------------

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
        blocks: bool = True,
    ) -> Hook:
        """Register ``function`` as a hook of ``when`` ("write" or "commit") on the
        dataset ``dataset`` (collective: every rank registers the same hooks in the
        same order). ``args``: keyword arguments of every call; ``budget``: seconds
        per call; ``on_failure``: "record" or "fail"; ``name``: for messages and
        `WriteResult.hook` (default: the function's module and name); ``blocks``
        (on_commit): False for a hook that needs no blocks (it reduces what on_write
        hooks returned), so that writes are not copied for it."""
        self._container.edit("registering a hook")
        if when not in get_args(When):
            raise ValueError(f"when must be 'write' or 'commit', not {when!r}")
        if budget is not None and not (isinstance(budget, int | float) and budget > 0):
            raise ValueError(f"budget is a positive number of seconds or None, not {budget!r}")
        path, name, keywords, takes_comm = self._checked(dataset, when, function, args,
                                                         on_failure, name)  # fmt: skip
        description = {"dataset": path, "name": name, "args": keywords, "budget": budget,
                       "on_failure": on_failure, "blocks": blocks}  # fmt: skip
        agree(self._comm, f"on_{when}", description)
        hook = Hook(name, path, when, function, keywords, budget, on_failure, takes_comm,
                    blocks=bool(blocks))  # fmt: skip
        self._register(hook)
        return hook

    def keep_last(
        self,
        dataset: str,
        keep: int,
        trigger: Callable[..., Any],
        *,
        then: int = 0,
        args: Mapping[str, Any] | None = None,
        on_failure: OnFailure = "record",
        name: str | None = None,
    ) -> Hook:
        """Hold the last ``keep`` steps of ``dataset`` in memory only; persist them when
        ``trigger(context, **args)`` returns true on any rank, then persist the next
        ``then`` steps as written (collective; see `Dataset.keep_last`)."""
        self._container.edit("registering a trigger")
        for value, least, what in ((keep, 1, "keep"), (then, 0, "then")):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
                raise ValueError(f"{what} is an integer of at least {least}, not {value!r}")
        held = self._held.get(_path(dataset))
        if held is not None:
            raise ValueError(f"{held.hook.dataset} has a trigger already ({held.hook.name!r})")
        path, name, keywords, _ = self._checked(dataset, "trigger", trigger, args,
                                                on_failure, name)  # fmt: skip
        description = {"dataset": path, "name": name, "args": keywords, "keep": int(keep),
                       "then": int(then), "on_failure": on_failure}  # fmt: skip
        agree(self._comm, "keep_last", description)
        hook = Hook(name, path, "trigger", trigger, keywords, None, on_failure, False,
                    hold=Hold(int(keep), int(then)))  # fmt: skip
        self._register(hook)
        return hook

    def _checked(
        self,
        dataset: str,
        when: Stage,
        function: Callable[..., Any],
        args: Mapping[str, Any] | None,
        on_failure: str,
        name: str | None,
    ) -> tuple[str, str, dict[str, Any], bool]:
        """The path, name, keyword arguments and takes_comm of a hook being added."""
        if on_failure not in get_args(OnFailure):
            raise ValueError(f"on_failure must be 'record' or 'fail', not {on_failure!r}")
        path = _path(dataset)
        name = name or _name_of(function)
        keywords = dict(args or {})
        if any(h.dataset == path and h.when == when and h.name == name for h in self._hooks):
            raise ValueError(f"{path} has an on_{when} hook named {name!r} already: name this one")
        try:
            takes_comm = check_callable(function, when, keywords)
        except TypeError as error:
            what = f"trigger {name!r} on {path}" if when == "trigger" else (
                f"hook {name!r} on {path} (on_{when})")  # fmt: skip
            raise TypeError(f"{what}: {error}") from None
        return path, name, keywords, takes_comm

    def _register(self, hook: Hook) -> None:
        self._hooks.append(hook)
        self._state[hook] = _State()
        watch = self._watch.setdefault(hook.dataset, _Watch())
        if hook.when == "write":
            watch.on_write.append(hook)
        else:
            watch.commits = True
            watch.keep = watch.keep or hook.blocks
        if hook.hold is not None:
            self._held[hook.dataset] = Held(hook)

    # --- writes ----------------------------------------------------------------------

    def holds(self, path: str) -> bool:
        """Whether a write of ``path`` is held in memory now instead of written (a
        keep_last dataset outside the steps persisted after a trigger)."""
        held = self._held.get(path)
        return held is not None and held.holding

    def written(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        """After this rank wrote (or, `holds`, held) ``data`` at ``offset`` of ``meta``."""
        watch = self._watch.get(meta.path)
        if watch is None:
            return
        block = data.view()
        block.flags.writeable = False
        copy = None  # taken once for what outlives the call: the data may be reused
        if watch.commits:
            self._written.add(meta.path)
        if watch.keep:
            copy = frozen_copy(data)
            self._blocks.setdefault(meta.path, []).append(Block(offset, copy))
        epoch = self._container.head.epoch + 1
        for hook in watch.on_write:
            state = self._state[hook]
            if state.worker is not None:
                copy = copy if copy is not None else frozen_copy(data)
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
        if result is not None and self._watch[hook.dataset].commits:
            self._results.setdefault(hook.dataset, []).append(result)

    def _on_write_budget(self, hook: Hook, state: _State, seconds: float) -> None:
        if hook.budget is None:
            return
        state.strikes = state.strikes + 1 if seconds > hook.budget else 0
        if state.strikes >= STRIKES:
            state.strikes = 0
            state.moved = True  # reported at the commit
            if hook.on_failure == "record":  # "fail" stays in the epoch it may fail
                state.worker = Worker(f"esdm-hook-{hook.name}")

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
        """Whether background outputs, or held steps at close, wait for a commit to
        land in (every rank alike)."""
        held = self._closing and any(held.steps for held in self._held.values())
        return bool(self._jobs) or held

    def before_commit(self, epoch: int) -> Prepared:
        """Run the on_commit hooks and triggers of the datasets written in ``epoch``,
        land the background outputs that are done and persist the held steps due
        (collective, at the start of the commit). Raises HookError on every rank for
        a failed hook with on_failure="fail"."""
        self._events, self._landed, self._local_error = [], [], None
        if not self._hooks:
            return Prepared(None, ())
        blocks, self._blocks = self._blocks, {}
        written_here, self._written = tuple(sorted(self._written)), set()
        report = _Report(written_here, self._collect_writes(), self._done_jobs())
        reports = self._comm.allgather(report)
        self._on_write_outcomes(reports, epoch)
        for _ in range(min(r.done for r in reports)):
            job = self._jobs.popleft()
            self._landed.append(job)
            job.context.blocks = ()  # done with: what it was computed from can go
            ok = self._conclude(job.hook, job.context, job.future.result(), job.context.epoch)
            if ok is not None:
                self._events.append((EVENT, ok.fields()))
        written = {path for r in reports for path in r.written}
        taken: dict[str, list[WriteResult]] = {}  # every hook of a dataset sees them
        for hook in self._hooks:
            if hook.when == "write":
                continue
            if hook.dataset in written:
                if hook.dataset not in taken:
                    taken[hook.dataset] = self._results.pop(hook.dataset, [])
                mine = blocks.get(hook.dataset, []) if hook.blocks else []
                if hook.hold is None:
                    self._on_commit(hook, epoch, mine, taken[hook.dataset])
                else:
                    self._trigger(hook, epoch, mine, taken[hook.dataset])
            elif hook.hold is not None and self._closing:
                self._settle_held(hook, self._held[hook.dataset].plan(None, False, True))
        return Prepared(self._local_error, tuple(self._events))

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
            outcome = Outcome(hook, "failed", epoch, tuple(r for r, _, _ in ranks), error)
            if hook.on_failure == "fail":
                raise HookError(refusal(outcome))
            self._report(outcome)
        for index in sorted(moved):
            hook = self._hooks[index]
            state = "over-budget" if hook.on_failure == "fail" else "background"
            self._report(Outcome(hook, state, epoch, tuple(moved[index])))

    def _on_commit(
        self, hook: Hook, epoch: int, blocks: list[Block], results: list[WriteResult]
    ) -> None:
        state = self._state[hook]
        if state.background:
            assert self._worker is not None and self._worker_comm is not None
            comm = HookComm(self._worker_comm)
            context = CommitContext(epoch, hook.dataset, comm, blocks, results)
            self._throttle()
            future = self._worker.submit(functools.partial(run_collective, hook, context))
            self._jobs.append(_Job(hook, context, future))
            return
        context = CommitContext(epoch, hook.dataset, HookComm(self._comm),
                                blocks, results)  # fmt: skip
        crash_point("hook.called")
        finals = run_collective(hook, context)
        crash_point("hook.ran")
        ok = self._conclude(hook, context, finals, epoch)
        if ok is not None:
            self._events.append((EVENT, ok.fields()))
        self._on_commit_budget(hook, state, max(final.seconds for final in finals), epoch)

    def _throttle(self) -> None:
        """Wait while BACKLOG background runs are not done: their blocks are copies."""
        running = [job.future for job in self._jobs if not job.future.done()]
        if len(running) >= BACKLOG:
            wait_for(running[: len(running) - BACKLOG + 1])

    def _conclude(
        self, hook: Hook, context: CommitContext, finals: list[Final], computed_from: int
    ) -> Outcome | None:
        """Land a run's outputs in the open epoch and return its outcome, or report its
        failure and return None (every rank alike: ``finals`` and the namespace are
        the same on every rank)."""
        seconds = max(final.seconds for final in finals)
        failed = failure(hook, computed_from, finals)
        if failed is None:
            specs, problem = agreed_outputs(finals)
            problem = problem or self._check_targets(specs)
            if problem is not None:
                everyone = tuple(range(len(finals)))
                failed = Outcome(hook, "failed", computed_from, everyone, problem, seconds)
        if failed is not None:
            if hook.on_failure == "fail":
                raise HookError(refusal(failed))
            self._report(failed)
            return None
        self._land(context, specs, computed_from)
        crash_point("hook.landed")
        return Outcome(hook, "ok", computed_from, seconds=seconds, outputs=tuple(specs))

    def _check_targets(self, specs: Specs) -> str | None:
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

    def _land(self, context: CommitContext, specs: Specs, computed_from: int) -> None:
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
            self._report(Outcome(hook, "over-budget", epoch, seconds=seconds))
            return
        if self._worker is None:
            comm, why = thread_comm(self._comm)
            if comm is None:
                self._report(Outcome(hook, "over-budget", epoch, seconds=seconds, error=why))
                return
            self._worker_comm, self._worker = comm, Worker("esdm-hooks")
        state.background = True
        everyone = tuple(range(self._comm.size))
        self._report(Outcome(hook, "background", epoch, everyone, seconds=seconds))

    def _report(self, outcome: Outcome) -> None:
        """Warn (on every rank: what is reported is known to every rank) and log it."""
        warnings.warn(HookWarning(outcome.message()), stacklevel=5)
        self._events.append((EVENT, outcome.fields()))

    # --- triggers --------------------------------------------------------------------

    def _trigger(
        self, hook: Hook, epoch: int, blocks: list[Block], results: list[WriteResult]
    ) -> None:
        """Run the trigger of a keep_last dataset written in ``epoch`` and carry out
        what it decides (every rank alike: it fired if it returned true on any rank)."""
        context = CommitContext(epoch, hook.dataset, HookComm(self._comm), blocks, results)
        finals = run_collective(hook, context)
        fired = self._conclude(hook, context, finals, epoch) is not None and any(
            final.fired for final in finals
        )
        held = self._held[hook.dataset]
        self._settle_held(hook, held.plan(Step(epoch, tuple(blocks)), fired, self._closing))

    def _settle_held(self, hook: Hook, plan: Plan) -> None:
        """Write the steps ``plan`` persists into the open epoch and log why."""
        if plan.persist:
            self._persist(hook, plan.persist)
        if plan.cause is None:
            return
        extents = self._comm.allgather([step.extent() for step in plan.persist])
        fields = {"dataset": hook.dataset, "trigger": hook.name, "cause": plan.cause,
                  "persisted": persisted(extents, plan), "then": plan.left}  # fmt: skip
        self._events.append((TRIGGER_EVENT, fields))

    def _persist(self, hook: Hook, steps: Sequence[Step]) -> None:
        """This rank's blocks of ``steps`` into the open epoch, oldest first, each where
        it was written; what a shrink of the dataset since cut off is discarded, as a
        shrink discards what was written there."""
        container = self._container
        meta = container.namespace.datasets.get(hook.dataset)
        if meta is None:
            warnings.warn(HookWarning(f"{hook.label}: {len(steps)} held steps are dropped: "
                                      f"{hook.dataset} is gone"), stacklevel=5)  # fmt: skip
            return
        origin = (0,) * len(meta.shape)
        try:
            for step in steps:
                for block in step.blocks:
                    part = block.within(origin, meta.shape)
                    if part.size:
                        container.open_epoch.write(meta, block.offset, part)
        except Exception as error:  # fails the commit on every rank (Container.commit)
            self._local_error = self._local_error or error
        crash_point("trigger.persisted")

    def persist_held(self) -> None:
        """Make the next commit (close's) persist every held step."""
        self._closing = True

    # --- after the commit ---------------------------------------------------------------

    def committed(self) -> None:
        """After the epoch was published: what its commit decided holds."""
        self._landed, self._events = [], []
        for held in self._held.values():
            held.settle()

    def refused(self) -> None:
        """After a refused commit: its blocks are gone with the epoch; background
        outputs that landed in it land in the next commit instead; what was held
        stays held."""
        self._blocks.clear()
        self._written.clear()
        self._jobs.extendleft(reversed(self._landed))
        self._landed, self._events = [], []
        for held in self._held.values():
            held.discard()

    def finish(self) -> None:
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


def _path(dataset: str) -> str:
    return "/" + dataset.strip("/")


def _name_of(function: Any) -> str:
    inner = getattr(function, "py_func", function)  # a Numba dispatcher's Python function
    module = getattr(inner, "__module__", None) or "?"
    qualname = getattr(inner, "__qualname__", None) or type(function).__name__
    return f"{module}:{qualname}"
