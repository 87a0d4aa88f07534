"""A worker process for the contention tests (tests/core/test_contention.py).

Started with multiprocessing's "spawn" method, a worker runs the scripts the
test sends it through a pipe: steps that open a container, write, commit,
close or run an `esdm` command, each at the moment the test chose, so that
workers really race. It answers each script with the outcome of every step.

Every commit() also goes to the worker's result file as one JSON line: the
epoch it returned, or the error it raised. What a commit publishes is the
dataset /x filled with the commit's token, unique over the test, so a reader
of any epoch can tell whose data it sees.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Protocol

import numpy as np

import esdm_hpc
from esdm_hpc import cli

DATASET = "x"
# 128 KiB a commit: large enough to go to its data log at once instead of waiting in
# memory for the commit (uncommitted data is on storage, where gc can see it), and a
# data log to sync besides manifest and HEAD, a wider window to race in
SHAPE = (16384,)
DTYPE = "i8"
FILL = -1


def uri(container: str) -> str:
    return f"esdm://{container}"


def content(token: int) -> np.ndarray:
    """What a commit of ``token`` publishes in /x."""
    return np.full(SHAPE, token, dtype=DTYPE)


@dataclass(slots=True)
class CommitRecord:
    """One commit() of a worker: the epoch it returned, or the error it raised."""

    worker: str
    container: str
    token: int
    seconds: float
    epoch: int | None = None
    error: str | None = None
    kinds: list[str] = field(default_factory=list)  # the error's classes, most derived first
    message: str = ""

    @classmethod
    def read(cls, line: str) -> CommitRecord:
        return cls(**json.loads(line))


class Skipped(Exception):
    """A step that cannot run because an earlier one failed (the container is not open)."""


@dataclass(slots=True)
class Worker:
    name: str
    config: str  # path of the site configuration file
    results: str  # path of the JSON lines file of CommitRecords
    containers: dict[str, esdm_hpc.Container] = field(default_factory=dict)
    # the token each open container was written with since its last commit
    pending: dict[str, int] = field(default_factory=dict)

    def container(self, name: str) -> esdm_hpc.Container:
        if name not in self.containers:
            raise Skipped(f"{uri(name)} is not open in worker {self.name}")
        return self.containers[name]

    def record(self, record: CommitRecord) -> None:
        with open(self.results, "a") as results:
            results.write(json.dumps(asdict(record)) + "\n")


class Step(Protocol):
    def run(self, worker: Worker) -> object: ...


@dataclass(frozen=True, slots=True)
class At:
    """Wait until ``when`` (time.time()): racers of one moment start together."""

    when: float

    def run(self, worker: Worker) -> float:
        time.sleep(max(0.0, self.when - time.time()))
        return time.time() - self.when  # how late it started


@dataclass(frozen=True, slots=True)
class Open:
    """Open ``container`` for writing; mode "w" creates it with the dataset /x."""

    container: str
    mode: str

    def run(self, worker: Worker) -> int:
        opened = esdm_hpc.open(uri(self.container), self.mode, config=worker.config)
        if self.mode == "w":
            opened.create_dataset(DATASET, shape=SHAPE, dtype=DTYPE, fillvalue=FILL)
        worker.containers[self.container] = opened
        return opened.epoch


@dataclass(frozen=True, slots=True)
class Write:
    """Fill /x with ``token`` (uncommitted until the next Commit)."""

    container: str
    token: int

    def run(self, worker: Worker) -> None:
        # a failed write leaves nothing known pending: the next Commit is skipped
        worker.pending.pop(self.container, None)
        worker.container(self.container)[DATASET][...] = content(self.token)
        worker.pending[self.container] = self.token


@dataclass(frozen=True, slots=True)
class Commit:
    """commit() what was written since the last one; its outcome goes to the result file."""

    container: str

    def run(self, worker: Worker) -> CommitRecord:
        opened = worker.container(self.container)
        if self.container not in worker.pending:
            raise Skipped(f"{uri(self.container)}: nothing written to commit")
        token = worker.pending.pop(self.container)
        record = CommitRecord(worker.name, self.container, token, seconds=0.0)
        start = time.perf_counter()
        try:
            record.epoch = opened.commit()
        except Exception as error:  # the outcome is the record, whatever it is
            record.error = type(error).__name__
            record.kinds = [kind.__name__ for kind in type(error).__mro__]
            record.message = str(error)
        record.seconds = time.perf_counter() - start
        worker.record(record)
        return record


@dataclass(frozen=True, slots=True)
class Close:
    container: str

    def run(self, worker: Worker) -> None:
        opened = worker.container(self.container)
        del worker.containers[self.container]
        opened.close()


@dataclass(frozen=True, slots=True)
class Cli:
    """Run ``esdm ARGV`` (with the worker's configuration); its exit code and output."""

    argv: tuple[str, ...]

    def run(self, worker: Worker) -> tuple[int, str]:
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = cli.main(["--config", worker.config, *self.argv])
        return code, output.getvalue()


@dataclass(frozen=True, slots=True)
class Outcome:
    step: str
    value: object = None
    error: str | None = None


def run_step(worker: Worker, step: Step) -> Outcome:
    try:
        return Outcome(repr(step), value=step.run(worker))
    except Exception as error:  # reported to the test, which judges it
        return Outcome(repr(step), error=f"{type(error).__name__}: {error}")


def serve(connection: Connection, name: str, config: str, results: str) -> None:
    """Run scripts (lists of steps) from ``connection`` until it sends None."""
    worker = Worker(name, config, results)
    connection.send("ready")
    while (script := connection.recv()) is not None:
        connection.send([run_step(worker, step) for step in script])
