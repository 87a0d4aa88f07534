"""Lease and publication under contention (issue 11): real processes race on real files.

Writers whose lease runs out while they live (idle past ESDM_LEASE_SECONDS, or
frozen by SIGSTOP as a suspended job is), `esdm gc` and `esdm unlock --force`
racing them, a second writer taking an expired lease over and committing at
the same moment as the first, a lease renewal that fails. The racers are
worker processes (tests/programs/contention_worker.py) that start each step
at a moment the test chose. Every container is one round; after it these
must hold, whatever happened to the leases:

- no epoch number was told to two writers (commit() returned it to both);
- the container opens at every epoch 0..HEAD, and `esdm verify` passes;
- every epoch 1..HEAD is one a writer was told, and holds exactly what that
  writer wrote for it: an acknowledged epoch is never lost or unreadable, and
  a commit that raised left no trace (the outcome told is the outcome seen);
- a commit that fails says so with a library (or storage) error naming the
  container;
- the uncontended first commit of every container succeeds.

Rounds are timed races, not hypothesis examples: an example could not be
replayed (its outcome depends on the scheduler), so there would be nothing to
shrink. ESDM_CONTENTION_SEED changes the jitter of the races.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli
from tests.programs.contention_worker import (
    DATASET,
    At,
    Cli,
    Close,
    Commit,
    CommitRecord,
    Open,
    Outcome,
    Step,
    Write,
    content,
    serve,
    uri,
)

LEASE_SECONDS = 1.0
EXPIRED = LEASE_SECONDS + 0.3  # a wait after which a lease nobody renewed has run out
# a wait after which the lease is due for renewal (once half of it has run out)
RENEWAL_DUE = 0.6 * LEASE_SECONDS
REPLY_SECONDS = 30.0  # a worker silent this long is stuck
# One commit of 128 KiB takes about this long here (measured): the width of a
# race window, and the unit of the jitter between racers.
COMMIT_SECONDS = 0.003

ROUNDS = {"gc": 2 * 12, "takeover": 2 * 14, "unlock": 30, "renewal": 20}
BURST = 4  # commits a writer makes while `esdm unlock --force` and a second writer race it
SEED = int(os.environ.get("ESDM_CONTENTION_SEED", "11"))
# what a failed commit may raise: the library's errors, or the storage's
CLEAR_KINDS = {"EsdmError", "CorruptMetadataError", "OSError"}

FREEZE = pytest.mark.parametrize("frozen", [False, True], ids=["idle", "suspended"])


def test_there_are_at_least_a_hundred_rounds() -> None:
    assert sum(ROUNDS.values()) >= 100


# --- the site and the workers -------------------------------------------------------------


@dataclass(slots=True)
class Site:
    root: Path
    config: Path  # the site configuration file: one posix backend
    results: Path  # the workers' result files

    @classmethod
    def make(cls, tmp_path: Path) -> Site:
        config = tmp_path / "esdm.json"
        backend = {"id": "disk", "type": "posix", "target": str(tmp_path / "disk")}
        config.write_text(json.dumps({"backends": [backend]}))
        results = tmp_path / "results"
        results.mkdir()
        return cls(tmp_path / "disk", config, results)

    def records(self) -> dict[str, list[CommitRecord]]:
        """Every commit() of every worker, per container."""
        per_container: dict[str, list[CommitRecord]] = {}
        for path in sorted(self.results.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                record = CommitRecord.read(line)
                per_container.setdefault(record.container, []).append(record)
        return per_container

    def lease(self, container: str) -> Path:
        return self.root / "containers" / container / "LEASE"


@dataclass(slots=True)
class Workers:
    """Worker processes by name. None is waited for while another is frozen: the
    frozen one may hold a lock the other waits for."""

    site: Site
    processes: dict[str, BaseProcess] = field(default_factory=dict)
    pipes: dict[str, Connection] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)
    # steps other than commits that raised, by step and error: for the report
    failed_steps: Counter[str] = field(default_factory=Counter)

    def start(self, names: Sequence[str]) -> None:
        spawn = multiprocessing.get_context("spawn")
        for name in names:
            ours, theirs = spawn.Pipe()
            results = str(self.site.results / f"{name}.jsonl")
            process = spawn.Process(
                target=serve, args=(theirs, name, str(self.site.config), results), daemon=True
            )
            process.start()
            self.processes[name], self.pipes[name] = process, ours
        for name in names:
            assert self.reply(name) == "ready"

    def send(self, name: str, script: Sequence[Step]) -> None:
        self.pipes[name].send(list(script))

    def answered(self, name: str, timeout: float) -> bool:
        return self.pipes[name].poll(timeout)

    def reply(self, name: str) -> object:
        assert not self.frozen, f"waiting for {name} while {sorted(self.frozen)} is frozen"
        if not self.answered(name, REPLY_SECONDS):
            raise AssertionError(f"worker {name} gave no answer in {REPLY_SECONDS:g} s")
        try:
            return self.pipes[name].recv()
        except EOFError:
            self.processes[name].join(5)
            code = self.processes[name].exitcode
            raise AssertionError(f"worker {name} died (exit code {code})") from None

    def outcomes(self, name: str) -> list[Outcome]:
        answer = self.reply(name)
        assert isinstance(answer, list)
        for outcome in answer:
            if outcome.error is not None:
                step, error = outcome.step.partition("(")[0], outcome.error.partition(":")[0]
                self.failed_steps[f"{step} {error}"] += 1
        return answer

    def freeze(self, name: str) -> None:
        os.kill(self._pid(name), signal.SIGSTOP)
        self.frozen.add(name)

    def thaw(self, name: str) -> None:
        os.kill(self._pid(name), signal.SIGCONT)
        self.frozen.discard(name)

    def _pid(self, name: str) -> int:
        pid = self.processes[name].pid
        assert pid is not None
        return pid

    def stop(self) -> None:
        for name in list(self.frozen):
            self.thaw(name)
        for name, process in self.processes.items():
            if process.is_alive():
                self.pipes[name].send(None)
        for process in self.processes.values():
            process.join(5)
            if process.is_alive():  # e.g. a thread that never ends keeps it from exiting
                process.kill()
                process.join(5)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    # inherited by the workers, spawned after this
    monkeypatch.setenv("ESDM_LEASE_SECONDS", str(LEASE_SECONDS))
    return Site.make(tmp_path)


@pytest.fixture
def workers(site: Site) -> Iterator[Callable[..., Workers]]:
    started: list[Workers] = []

    def start(*names: str) -> Workers:
        pool = Workers(site)
        started.append(pool)
        pool.start(names)
        return pool

    yield start
    for pool in started:
        pool.stop()


# --- scripts -----------------------------------------------------------------------------


class Tokens:
    """Tokens unique over a test: the data of one commit, and whose it is."""

    def __init__(self) -> None:
        self._last = 1000
        self.uncontended: set[int] = set()  # those of the first commits, made alone

    def __call__(self) -> int:
        self._last += 1
        return self._last


@dataclass(slots=True)
class Problem:
    kind: str  # the same for the same invariant broken: what the report counts
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def prepare(
    pool: Workers, worker: str, containers: Sequence[str], tokens: Tokens, pending: bool
) -> dict[str, list[Problem]]:
    """Have ``worker`` create each container and commit epoch 1, alone, and with
    ``pending`` write the data of its next commit. What failed, per container."""
    script: list[Open | Write | Commit] = []
    for name in containers:
        first = tokens()
        tokens.uncontended.add(first)
        script += [Open(name, "w"), Write(name, first), Commit(name)]
        if pending:
            script.append(Write(name, tokens()))
    pool.send(worker, script)
    failed: dict[str, list[Problem]] = {}
    for step, outcome in zip(script, pool.outcomes(worker), strict=True):
        problem = outcome.error
        if isinstance(outcome.value, CommitRecord) and outcome.value.error is not None:
            problem = f"{outcome.value.error}: {outcome.value.message}"
        if problem is not None:
            failed.setdefault(step.container, []).append(
                Problem("an uncontended step failed", f"{step!r}: {problem}")
            )
    return failed


def commits(name: str, tokens: Tokens, count: int) -> list[Step]:
    steps: list[Step] = []
    for _ in range(count):
        steps += [Write(name, tokens()), Commit(name)]
    return steps


def closing(containers: Sequence[str]) -> list[Step]:
    return [Close(name) for name in containers]


def jitter(rng: random.Random, low: float, high: float) -> float:
    """A random offset between ``low`` and ``high`` commits' time."""
    return rng.uniform(low, high) * COMMIT_SECONDS


# --- the invariants ------------------------------------------------------------------------


def check_container(site: Site, name: str, records: list[CommitRecord]) -> list[Problem]:
    problems: list[Problem] = []
    told: dict[int, CommitRecord] = {}
    for record in records:
        if record.epoch is None:
            if not (CLEAR_KINDS & set(record.kinds) and name in record.message):
                problems.append(
                    Problem(
                        "a commit failed without a clear error",
                        f"{record.worker}: {record.error}: {record.message}",
                    )
                )
        elif record.epoch in told:
            first = told[record.epoch]
            problems.append(
                Problem(
                    "two writers were told the same epoch",
                    f"epoch {record.epoch}: {first.worker} (token {first.token}) and "
                    f"{record.worker} (token {record.token})",
                )
            )
        else:
            told[record.epoch] = record
    try:
        with esdm_hpc.open(uri(name), config=str(site.config)) as newest:
            head = newest.epoch
    except Exception as error:
        problems.append(
            Problem("the newest epoch does not open", f"{type(error).__name__}: {error}")
        )
        return problems
    by_token = {record.token: record for record in records}
    for epoch in range(head + 1):
        problems += check_epoch(site, name, epoch, told.get(epoch), by_token)
    problems += [
        Problem(
            "an acknowledged epoch was lost",
            f"epoch {epoch} was told to {record.worker} (token {record.token}); "
            f"HEAD is epoch {head}",
        )
        for epoch, record in sorted(told.items())
        if epoch > head
    ]
    code = cli.main(["--config", str(site.config), "verify", "--quiet", uri(name)])
    if code != 0:
        problems.append(Problem("esdm verify fails", f"exit {code}"))
    return problems


def check_epoch(
    site: Site,
    name: str,
    epoch: int,
    expected: CommitRecord | None,
    by_token: dict[int, CommitRecord],
) -> list[Problem]:
    try:
        with esdm_hpc.open(uri(name), config=str(site.config), epoch=epoch) as container:
            data = container[DATASET][...] if epoch > 0 else None  # 0: what "w" made, empty
    except Exception as error:
        return [
            Problem("an epoch cannot be read", f"epoch {epoch}: {type(error).__name__}: {error}")
        ]
    if data is None:
        return []
    tokens = [int(t) for t in np.unique(data)]
    seen = "; ".join(describe(by_token.get(t), t) for t in tokens)
    if expected is None:
        raised = any(t in by_token and by_token[t].error is not None for t in tokens)
        kind = "a commit that raised is published" if raised else "an epoch nobody was told of"
        return [Problem(kind, f"epoch {epoch} holds {seen}")]
    if not np.array_equal(data, content(expected.token)):
        return [
            Problem(
                "an acknowledged epoch holds other data",
                f"epoch {epoch} was told to {expected.worker} for token {expected.token}; "
                f"it holds {seen}",
            )
        ]
    return []


def describe(record: CommitRecord | None, token: int) -> str:
    if record is None:
        return f"token {token}, which no commit() wrote"
    told = f"told epoch {record.epoch}" if record.error is None else f"raised {record.error}"
    return f"{record.worker}'s token {token} ({told})"


def check_rounds(
    pool: Workers, containers: Sequence[str], tokens: Tokens, setup: dict[str, list[Problem]]
) -> None:
    """Check every round's invariants; fail with a report of what broke in which."""
    site = pool.site
    records = site.records()
    rounds = {
        name: [*setup.get(name, []), *check_container(site, name, records.get(name, []))]
        for name in containers
    }
    contended = Counter(
        "acknowledged" if record.error is None else record.error
        for name in containers
        for record in records.get(name, [])
        if record.token not in tokens.uncontended
    )
    summary = (
        f"{len(containers)} rounds; contended commits: {dict(contended)}; "
        f"other steps that raised: {dict(pool.failed_steps)}"
    )
    print(summary)
    broken = {name: problems for name, problems in rounds.items() if problems}
    kinds = Counter(problem.kind for problems in broken.values() for problem in problems)
    rounds_per_kind = Counter(
        kind for problems in broken.values() for kind in {problem.kind for problem in problems}
    )
    shown = "".join(
        f"  {name}:\n" + "".join(f"    {problem}\n" for problem in problems)
        for name, problems in list(broken.items())[:8]
    )
    assert not broken, (
        f"{len(broken)} of {len(rounds)} rounds broke the invariants ({summary})\n"
        f"rounds per problem: {dict(rounds_per_kind)}; problems: {dict(kinds)}\n"
        f"the first rounds:\n{shown}"
    )


# --- the scenarios ---------------------------------------------------------------------------


@FREEZE
def test_gc_racing_a_live_writer_past_its_lease(
    site: Site, workers: Callable[..., Workers], frozen: bool
) -> None:
    """`esdm gc` while a live writer has uncommitted data and has not committed for longer
    than its lease: its next commits succeed and read back, or fail clearly. Suspended,
    half the gcs run while it is frozen, the others race its commits once it is thawed."""
    rng = random.Random(f"{SEED}-gc-{frozen}")
    count = ROUNDS["gc"] // 2
    containers = [f"gc-{'suspended' if frozen else 'idle'}-{i:02d}" for i in range(count)]
    tokens = Tokens()
    pool = workers("writer", "janitor")
    setup = prepare(pool, "writer", containers, tokens, pending=True)
    if frozen:
        pool.freeze("writer")
    time.sleep(EXPIRED)
    gap = 4 * COMMIT_SECONDS + 0.02
    # slot <= 0: before the writer is thawed; each slot's gc races the writer's commits
    first_racing = count // 2 if frozen else 0
    start = time.time() + 0.05 + first_racing * gap
    writer: list[Step] = []
    janitor: list[Step] = []
    for i, name in enumerate(containers):
        slot = i - first_racing + (1 if frozen else 0)
        when = start + slot * gap
        janitor += [At(when + jitter(rng, -2, 1)), Cli(("gc", "--quiet", uri(name)))]
        writer += [At(when), Commit(name), *commits(name, tokens, 1)]
    pool.send("janitor", janitor)
    pool.send("writer", [*writer, *closing(containers)])
    if frozen:
        time.sleep(max(0.0, start - time.time()))
        pool.thaw("writer")
    pool.outcomes("writer")
    pool.outcomes("janitor")
    check_rounds(pool, containers, tokens, setup)


@FREEZE
def test_second_writer_after_expiry_commits_with_the_first(
    site: Site, workers: Callable[..., Workers], frozen: bool
) -> None:
    """A second writer opens in mode "a" once the first writer's lease has run out (it
    was idle, or frozen), then both commit twice, at the same moment."""
    rng = random.Random(f"{SEED}-takeover-{frozen}")
    count = ROUNDS["takeover"] // 2
    containers = [f"takeover-{'suspended' if frozen else 'idle'}-{i:02d}" for i in range(count)]
    tokens = Tokens()
    pool = workers("first", "second")
    setup = prepare(pool, "first", containers, tokens, pending=True)
    if frozen:
        pool.freeze("first")
    time.sleep(EXPIRED)
    pool.send(
        "second", [s for name in containers for s in (Open(name, "a"), Write(name, tokens()))]
    )
    if frozen:
        pool.answered("second", 2.0)  # opened while the first is frozen, or waiting for it
        pool.thaw("first")
    pool.outcomes("second")
    gap = 6 * COMMIT_SECONDS + 0.02
    start = time.time() + 0.05
    scripts: dict[str, list[Step]] = {"first": [], "second": []}
    for i, name in enumerate(containers):
        when = start + i * gap
        scripts["first"] += [At(when), Commit(name), *commits(name, tokens, 1)]
        scripts["second"] += [
            At(when + jitter(rng, -1, 1)),
            Commit(name),
            *commits(name, tokens, 1),
        ]
    for worker, script in scripts.items():
        pool.send(worker, [*script, *closing(containers)])
    for worker in scripts:
        pool.outcomes(worker)
    check_rounds(pool, containers, tokens, setup)


def test_unlock_force_racing_a_live_writer(site: Site, workers: Callable[..., Workers]) -> None:
    """`esdm unlock --force` breaks a live writer's lease in the middle of a burst of its
    commits, and a second writer opens at once and commits twice."""
    rng = random.Random(f"{SEED}-unlock")
    containers = [f"unlock-{i:02d}" for i in range(ROUNDS["unlock"])]
    tokens = Tokens()
    pool = workers("writer", "breaker")
    setup = prepare(pool, "writer", containers, tokens, pending=False)
    gap = (BURST + 6) * COMMIT_SECONDS + 0.02
    start = time.time() + 0.05
    writer: list[Step] = []
    breaker: list[Step] = []
    for i, name in enumerate(containers):
        when = start + i * gap
        writer += [At(when), *commits(name, tokens, BURST)]
        breaker += [
            At(when + jitter(rng, -2, BURST)),
            Cli(("unlock", "--force", uri(name))),
            Open(name, "a"),
            *commits(name, tokens, 2),
            Close(name),
        ]
    pool.send("breaker", breaker)
    pool.send("writer", [*writer, *closing(containers)])
    pool.outcomes("writer")
    pool.outcomes("breaker")
    check_rounds(pool, containers, tokens, setup)


def block_renewal(lease: Path) -> bytes:
    """Make every replacement of the LEASE object fail (a directory is in its way), as
    storage refusing a write does. Returns the lease that was there."""
    for _ in range(100):
        held = lease.read_bytes() if lease.is_file() else b""
        lease.unlink(missing_ok=True)
        try:
            lease.mkdir()
        except FileExistsError:
            continue  # a renewal put the file back in between
        (lease / "in-the-way").touch()
        return held
    raise AssertionError(f"{lease} kept coming back")


def unblock_renewal(lease: Path, held: bytes | None) -> None:
    """Remove what is in the lease's way; with ``held``, put the lease back."""
    shutil.rmtree(lease, ignore_errors=True)
    if held:
        temp = lease.with_name(".restored-lease")
        temp.write_bytes(held)
        os.replace(temp, lease)


def test_failed_lease_renewal_is_the_outcome_readers_see(
    site: Site, workers: Callable[..., Workers]
) -> None:
    """Renewing the lease fails at the commit that is due to renew it: for half the rounds
    until the writer closed, for the others only until about the moment of the commit.
    Whether the commit is told it succeeded or failed, readers must see the same."""
    rng = random.Random(f"{SEED}-renewal")
    containers = [f"renewal-{i:02d}" for i in range(ROUNDS["renewal"])]
    tokens = Tokens()
    pool = workers("writer")
    setup = prepare(pool, "writer", containers, tokens, pending=True)
    held = {name: block_renewal(site.lease(name)) for name in containers}
    gap = 2 * COMMIT_SECONDS + 0.01
    start = time.time() + RENEWAL_DUE
    pool.send("writer", [s for i, name in enumerate(containers)
                         for s in (At(start + i * gap), Commit(name), Close(name))])  # fmt: skip
    transient = containers[::2]
    for i, name in enumerate(transient):
        time.sleep(max(0.0, start + 2 * i * gap + jitter(rng, -1, 3) - time.time()))
        unblock_renewal(site.lease(name), held[name])
    pool.outcomes("writer")
    for name in containers[1::2]:
        unblock_renewal(site.lease(name), None)
    check_rounds(pool, containers, tokens, setup)
