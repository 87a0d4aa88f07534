"""On-commit commands: programs the site configuration starts after commits
(docs/architecture.md §7.4; the key ``on_commit`` in docs/configuration.md).

The writer's rank 0 calls `after_commit` once HEAD names the new epoch and its
commit event is logged. Every configured command due after that epoch (each
epoch, each Nth, or an epoch in which an event of given kinds was logged; of
the containers it names) starts with the container, the epoch and the
configuration file in its environment; the typical one submits a
post-processing job with ``sbatch``.

A writer that runs inside an on-commit command (its environment has
ESDM_CONTAINER) starts commands only for that container: a job that writes a
derived container under the same configuration would otherwise submit itself
again without end, while a job that continues the run (its next chunk, into
the same container) keeps its commands.
The commit waits for the start only: a thread waits for the command, and a
command that cannot start or ends with a non-zero status becomes an event of
kind ``command`` in the container's log (the status, the end of its standard
error). Nothing here can fail the commit: the epoch is published already.

A thread, not a supervising process: the command starts at once (no
interpreter to start first), and its outcome is logged through the same
backend configuration, a memory backend included. What that costs: a writer
that ends waits for its commands still running, up to `EXIT_WAIT_SECONDS`
(`wait`, at exit), and a writer killed outright leaves their outcome
unlogged. The wait matters under Slurm too, where what a job step started
ends with the step: an ``sbatch`` killed half-way submits nothing.
"""

from __future__ import annotations

import atexit
import fnmatch
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from esdm_hpc.backends import ObjectNotFoundError, open_backend
from esdm_hpc.config import BackendConfig, OnCommit, SiteConfig
from esdm_hpc.epochs import events
from esdm_hpc.epochs.store import ContainerStore

logger = logging.getLogger(__name__)

STDERR_TAIL = 2000  # bytes of a failed command's standard error kept in its event
EXIT_WAIT_SECONDS = 30.0  # how long a writer that ends waits for its commands

_running: list[threading.Thread] = []
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Run:
    """One start of a configured command."""

    entry: int  # its index in the configuration's on_commit
    command: tuple[str, ...]
    container: str  # the name, without esdm://
    epoch: int
    triggers: tuple[int, ...] = ()  # the numbers of the events that made it due

    def __str__(self) -> str:
        return f"esdm://{self.container} epoch {self.epoch}: on_commit[{self.entry}]"


def after_commit(
    config: SiteConfig, store: ContainerStore, epoch: int, logged: events.Event | None
) -> None:
    """Start the commands of ``config`` due after ``epoch``: called by rank 0 once HEAD
    names it, ``logged`` being its commit event (None if it could not be written).
    Never raises."""
    if not config.on_commit:
        return
    started_by = os.environ.get("ESDM_CONTAINER")
    if started_by not in (None, f"esdm://{store.name}"):
        logger.info("esdm://%s epoch %d: no on-commit commands in a command of %s",
                    store.name, epoch, started_by)  # fmt: skip
        return
    try:
        kinds = any(entry.events for entry in config.on_commit)
        since = since_last_commit(store, logged) if kinds else []
        for index, entry in enumerate(config.on_commit):
            triggers = due(entry, store.name, epoch, since)
            if triggers is not None:
                run = Run(index, entry.command, store.name, epoch, triggers)
                start(run, environment(run, config), store.meta.config)
    except Exception as error:  # the epoch is published: nothing may fail its commit now
        logger.warning("esdm://%s epoch %d: on-commit commands not started: %s",
                       store.name, epoch, error)  # fmt: skip


def due(
    entry: OnCommit, container: str, epoch: int, since: Sequence[events.Event]
) -> tuple[int, ...] | None:
    """The events that make ``entry`` due after ``epoch`` of ``container`` (none for one
    run every N epochs), or None when it is not due; ``since`` are the epoch's events."""
    if entry.containers is not None and not any(
        fnmatch.fnmatchcase(container, pattern) for pattern in entry.containers
    ):
        return None
    if entry.events is None:
        return () if epoch % entry.every == 0 else None
    triggers = tuple(event.seq for event in since if event.kind in entry.events)
    return triggers or None


def since_last_commit(store: ContainerStore, logged: events.Event | None) -> list[events.Event]:
    """The events logged between the previous commit event and ``logged`` (the newest
    event if None), oldest first: read back from there, so only the epoch's events
    are read, however long the log."""
    log = events.EventLog(store)
    seq = (log.last_seq() + 1 if logged is None else logged.seq) - 1
    found = []
    while seq >= 0:
        try:
            event = events.decode(store.meta.read_small(log.object_name(seq)), seq)
        except ObjectNotFoundError:  # numbers have no gaps, but a damaged log may
            event = None
        if event is not None:
            if event.kind == "commit":
                break
            found.append(event)
        seq -= 1
    return found[::-1]


# The variables by which an MPI launcher wires up its ranks: a command is no rank
# of the writer, and an MPI program it starts must not try to join the writer's job.
_WIRING = ("PMIX_", "PMI_", "OMPI_")
_KEPT = ("OMPI_MCA_", "OMPI_ALLOW_RUN_AS_ROOT")  # settings of the user, not wiring
_KEPT_NOT = ("OMPI_MCA_orte_", "OMPI_MCA_ess", "OMPI_MCA_pmix")  # ... except these


def _wiring(name: str) -> bool:
    if not name.startswith(_WIRING):
        return False
    return not name.startswith(_KEPT) or name.startswith(_KEPT_NOT)


def environment(run: Run, config: SiteConfig) -> dict[str, str]:
    """The command's environment: the writer's, without the MPI launcher's wiring,
    with ESDM_CONTAINER, ESDM_EPOCH, ESDM_CONFIG (when the configuration is a file)
    and ESDM_EVENTS (the triggering events' numbers, when events made it due)."""
    env = {name: value for name, value in os.environ.items() if not _wiring(name)}
    env["ESDM_CONTAINER"] = f"esdm://{run.container}"
    env["ESDM_EPOCH"] = str(run.epoch)
    # a mapping has no file to name, and the default is found again as it was
    if os.path.isabs(config.source):
        env["ESDM_CONFIG"] = config.source
    else:
        env.pop("ESDM_CONFIG", None)
    env.pop("ESDM_EVENTS", None)
    if run.triggers:
        env["ESDM_EVENTS"] = ",".join(map(str, run.triggers))
    return env


def start(run: Run, env: dict[str, str], meta: BackendConfig) -> None:
    """Start ``run``'s command, detached (its own session, no terminal input), and a
    thread that logs its failure through a backend of ``meta``."""
    # a file, not a pipe: nothing to drain, no EOF to wait for; the thread closes it
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        process = subprocess.Popen(run.command, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                                   start_new_session=True)  # fmt: skip
    except OSError as error:  # no such program, not executable, no processes left
        stderr.close()
        _record(run, meta, {"status": None, "error": f"cannot start: {error.strerror or error}"})
        return
    thread = threading.Thread(target=_await, args=(run, process, stderr, meta),
                              name=f"esdm {run}", daemon=True)  # fmt: skip
    thread.start()
    with _lock:
        _running[:] = [t for t in _running if t.is_alive()]
        _running.append(thread)


def _await(run: Run, process: subprocess.Popen, stderr: IO[bytes], meta: BackendConfig) -> None:
    try:
        with stderr:
            status = process.wait()
            if status == 0:
                return
            size = stderr.seek(0, os.SEEK_END)
            stderr.seek(max(0, size - STDERR_TAIL))
            tail = stderr.read().decode(errors="replace")
        outcome: dict[str, Any] = {"status": status, "stderr": tail}
        if status < 0:
            outcome["signal"] = _signal_name(-status)
        _record(run, meta, outcome)
    except Exception as error:  # a thread of its own: say it, the writer goes on
        logger.warning("%s: outcome not logged: %s", run, error)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal, say: Signals names few of them
        return f"signal {number}"


def _record(run: Run, meta: BackendConfig, outcome: dict[str, Any]) -> None:
    """Log a failed run as an event of kind "command", and on the writer's stderr."""
    what = outcome.get("error") or f"exited with status {outcome['status']}"
    logger.warning("%s %s: %s", run, list(run.command), what)
    fields = {"entry": run.entry, "command": list(run.command), **outcome}
    try:
        # a backend of its own: the writer may have closed its container by now
        with open_backend(meta) as backend:
            store = ContainerStore(run.container, {backend.id: backend}, backend.id)
            events.record(store, "command", run.epoch, fields)
    except Exception as error:
        logger.warning("%s: event 'command' not logged: %s", run, error)


def wait(timeout: float) -> int:
    """Wait up to ``timeout`` seconds for the commands still running; how many are left."""
    with _lock:
        running = [t for t in _running if t.is_alive()]
    deadline = time.monotonic() + timeout
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(t.is_alive() for t in running)


@atexit.register
def _wait_at_exit() -> None:
    left = wait(EXIT_WAIT_SECONDS)
    if left:
        logger.warning("%d on-commit command(s) still running after %g s are left running; "
                       "their outcome is not logged", left, EXIT_WAIT_SECONDS)  # fmt: skip
