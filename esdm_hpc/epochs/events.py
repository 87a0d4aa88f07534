"""A container's event log, and subscriptions to it (docs/architecture.md §7.4).

Every commit (written by rank 0 after the HEAD rename, after the events of its
epoch: in-situ hooks' outcomes, triggers), gc run, drain and user event
(`Container.log_event`) is one **event object** on the metadata backend,
``containers/<name>/events/<seq>.json``, numbered in the order of the appends
and created with `Backend.create_exclusive`. One object per event, not one
log object appended to: the backend interface has no append for metadata
objects (data logs are single-owner and never reopened), and rewriting a
whole log per event costs O(events) and races between appenders. With one
object each, an append is atomic (posix: a durable temporary file linked
into place: whole or absent), concurrent appenders never collide (the loser
of a number takes the next one), and each object carries its own XXH3
checksum, so an object torn by a crash or damaged later is skipped by
readers while every other event stays readable, and the next append simply
takes the next number.

`watch` yields new epochs (or events of some kinds) as they are committed,
woken by file-system notifications (watchfiles: inotify on Linux) on a posix
metadata backend, and by polling every `POLL_SECONDS` where there are none:
the memory backend, Lustre (notifications see only this node's changes),
``ESDM_WATCH=poll`` (other network file systems), or a watcher that cannot
start (say, inotify limits).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import logging
import os
import re
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from esdm_hpc.backends import open_backend
from esdm_hpc.backends.posix import PosixBackend, is_lustre
from esdm_hpc.config import EVENT_KIND, load_config
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import ContainerNotFoundError
from esdm_hpc.kernels.checksum import checksum
from esdm_hpc.uri import container_name

logger = logging.getLogger(__name__)

EVENTS = "events/"
# Kinds esdm itself writes; a user event may not pretend to be one (an on-commit
# command due on "hook" or "trigger" events must not be set off by a fake one).
RESERVED_KINDS = ("commit", "gc", "command", "drain", "hook", "trigger")
KIND = EVENT_KIND
_NAME = re.compile(r"(\d{12})\.json")
# The polling fallback's interval, and how often a notified watcher looks
# anyway (a commit between the first look and the watcher's start).
POLL_SECONDS = 0.5
RECHECK_MS = 1000
# How long a notified watcher gathers a burst of changes (milliseconds).
DEBOUNCE_MS, STEP_MS = 100, 10


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the log: ``epoch`` is the committed epoch (commit) or the
    epoch HEAD named when it was logged (gc, user events)."""

    seq: int
    kind: str
    time: str  # ISO 8601, UTC
    epoch: int
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """The event as one line of text (``esdm events``)."""
        shown = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}"
                         for k, v in sorted(self.fields.items()))  # fmt: skip
        return f"{self.seq:>6}  {self.time}  epoch {self.epoch:<6} {self.kind:<10} {shown}".rstrip()


def encode(event: Event) -> bytes:
    """The stored form: the JSON record, then its checksum (hex), one line each."""
    body = json.dumps(event.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    data = body.encode()
    return data + f"\n{checksum(data):016x}\n".encode()


def decode(data: bytes, seq: int) -> Event | None:
    """The event stored as ``data`` under number ``seq``; None if torn or damaged."""
    body, _, rest = data.partition(b"\n")
    try:
        if rest != f"{checksum(body):016x}\n".encode():
            return None
        record = json.loads(body)
        event = Event(**record)
    except (ValueError, TypeError):
        return None
    return event if event.seq == seq else None


def check_user_event(kind: str, fields: dict[str, Any]) -> None:
    """ValueError/TypeError unless ``kind`` and ``fields`` make a user event."""
    if not isinstance(kind, str) or not KIND.fullmatch(kind):
        raise ValueError(
            f"event kind {kind!r}: use a letter, then up to 63 letters, digits, '_', '.', '-'"
        )
    if kind in RESERVED_KINDS:
        raise ValueError(f"event kind {kind!r} is written by esdm itself; choose another")
    for key, value in fields.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"event {kind!r}: field {key!r} must be JSON data (str, number, bool, None, "
                f"lists and dicts of them): {error}"
            ) from None


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class EventLog:
    """The event log of one container, read and appended through its store."""

    def __init__(self, store: ContainerStore):
        self.store = store
        self.prefix = store.prefix + EVENTS
        self._next: int | None = None  # the number the next append tries first
        self._reported: set[int] = set()  # damaged events already warned about

    def _numbers(self) -> list[int]:
        """The numbers of the stored events, in order (temporary objects excluded)."""
        numbers = []
        for name in self.store.meta.list(self.prefix):
            match = _NAME.fullmatch(name[len(self.prefix) :])
            if match:
                numbers.append(int(match[1]))
        return sorted(numbers)

    def object_name(self, seq: int) -> str:
        return f"{self.prefix}{seq:012d}.json"

    def names(self) -> list[str]:
        """The stored event objects (what gc keeps)."""
        return [self.object_name(seq) for seq in self._numbers()]

    def last_seq(self) -> int:
        """The newest event's number, -1 if there is none."""
        numbers = self._numbers()
        return numbers[-1] if numbers else -1

    def append(self, kind: str, epoch: int, fields: dict[str, Any]) -> Event:
        """Append one event, durably; the event as stored."""
        seq = self.last_seq() + 1 if self._next is None else self._next
        while True:
            event = Event(seq, kind, now(), epoch, fields)
            if self.store.meta.create_exclusive(self.object_name(seq), encode(event)):
                self._next = seq + 1
                return event
            # another appender (or a torn object) holds the number: after the newest
            seq = max(seq + 1, self.last_seq() + 1)

    def read(
        self,
        after: int = -1,
        kinds: Collection[str] | None = None,
        since_epoch: int | None = None,
    ) -> list[Event]:
        """The events numbered above ``after``, in order, of ``kinds`` (default: all)
        and of epoch ``since_epoch`` or later; damaged ones are skipped with a warning."""
        events = []
        for seq in self._numbers():
            if seq <= after:
                continue
            event = decode(self.store.meta.read_small(self.object_name(seq)), seq)
            if event is None:
                self._report_damaged(seq)
                continue
            if kinds is not None and event.kind not in kinds:
                continue
            if since_epoch is not None and event.epoch < since_epoch:
                continue
            events.append(event)
        return events

    def _report_damaged(self, seq: int) -> None:
        if seq not in self._reported:
            self._reported.add(seq)
            logger.warning(
                "esdm://%s %s: damaged or torn event, skipped (the others are intact)",
                self.store.name, self.object_name(seq)[len(self.store.prefix) :],
            )  # fmt: skip


def record(store: ContainerStore, kind: str, epoch: int, fields: dict[str, Any]) -> Event | None:
    """Append an event of esdm itself after the fact it reports is done (a published
    commit, a finished gc): a failure is logged, never raised, since the outcome is
    already decided and what a caller is told must be that outcome."""
    try:
        return EventLog(store).append(kind, epoch, fields)
    except Exception as error:  # the event is secondary to what it reports
        logger.warning("esdm://%s: event %r of epoch %d not logged: %s",
                       store.name, kind, epoch, error)  # fmt: skip
        return None


def record_commit(store: ContainerStore, epoch: int, writer: dict[str, Any]) -> Event | None:
    """The commit event of ``epoch``, published by ``writer`` (`commit.writer_record`)."""
    # who committed; the epoch's timings per backend stay in its manifest
    who = {key: value for key, value in writer.items() if key not in ("ranks", "backends")}
    return record(store, "commit", epoch, {"ranks": writer.get("ranks"), "who": who})


# --- subscriptions -----------------------------------------------------------------------


def watch(
    uri: str,
    config: Any = None,
    kinds: Collection[str] | None = None,
    timeout: float | None = None,
    after_epoch: int | None = None,
) -> Iterator[Any]:
    """Yield what is committed to ``uri`` from now on, as it happens.

    Without ``kinds``: each new epoch number, every one once, in order (from
    HEAD, so epochs whose commit event could not be written are there too).
    With ``kinds``: each new `Event` of those kinds. ``after_epoch``: start
    after that epoch instead of now (a subscriber resuming where it stopped, or
    one started beside a writer, misses nothing committed before its first
    look). Ends after ``timeout`` seconds (None: never); Ctrl-C raises
    KeyboardInterrupt as usual, the watcher released. ContainerNotFoundError
    if ``uri`` does not exist.
    """
    site = load_config(config)
    backend = open_backend(site.backend(site.metadata_backend))
    try:
        store = ContainerStore(container_name(uri), {backend.id: backend}, backend.id)
        if not store.exists():
            raise ContainerNotFoundError(f"esdm://{store.name}: no such container")
        source = (
            _EpochSource(store, after_epoch)
            if kinds is None
            else _EventSource(store, kinds, after_epoch)
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        directory = _notified_directory(store)
        if directory is not None:
            yield from _notified(source, directory, deadline)
        else:
            yield from _polled(source, deadline)
    finally:
        backend.close()


class _EpochSource:
    def __init__(self, store: ContainerStore, after: int | None):
        self.store = store
        self.last = store.head().epoch if after is None else after

    def new(self) -> list[int]:
        head = self.store.head()
        if head.epoch < self.last:  # recreated (overwrite=True): all its epochs are new
            self.last = -1
        fresh = list(range(self.last + 1, head.epoch + 1))
        self.last = head.epoch
        return fresh

    def directories(self, root: str) -> list[str]:
        return [root]


class _EventSource:
    def __init__(self, store: ContainerStore, kinds: Collection[str], after: int | None):
        self.log = EventLog(store)
        self.kinds = set(kinds)
        self.after = after  # the epoch the events must be later than, if given
        self.last = self.log.last_seq() if after is None else -1

    def new(self) -> list[Event]:
        events = self.log.read(after=self.last)
        if events:
            self.last = events[-1].seq
        return [
            event
            for event in events
            if event.kind in self.kinds and (self.after is None or event.epoch > self.after)
        ]

    def directories(self, root: str) -> list[str]:
        events = os.path.join(root, EVENTS)
        # until the first event, the container directory shows it appear
        return [root, events] if os.path.isdir(events) else [root]


def _notified_directory(store: ContainerStore) -> str | None:
    """The container's directory if notifications can wake a watcher of it, else None
    (and the one message saying why it polls)."""
    meta = store.meta
    why = None
    if not isinstance(meta, PosixBackend):
        why = f"the metadata backend {meta.id!r} is of type {meta.config.type!r}"
    elif os.environ.get("ESDM_WATCH") == "poll":
        why = "ESDM_WATCH=poll"
    elif is_lustre(meta.root):
        why = f"the metadata backend {meta.id!r} is on Lustre (notifications see one node only)"
    elif importlib.util.find_spec("watchfiles") is None:
        why = "the package watchfiles is not installed"
    if why is None:
        return os.path.join(meta.root, store.prefix)
    logger.warning("watch esdm://%s: no file-system notifications (%s); polling every %g s",
                   store.name, why, POLL_SECONDS)  # fmt: skip
    return None


def _polled(source: _EpochSource | _EventSource, deadline: float | None) -> Iterator[Any]:
    while True:
        yield from source.new()
        pause = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
        if pause <= 0:
            return
        time.sleep(pause)


def _notified(
    source: _EpochSource | _EventSource, root: str, deadline: float | None
) -> Iterator[Any]:
    stop = threading.Event()
    timer = None
    if deadline is not None:
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop.set)
        timer.daemon = True
        timer.start()
    try:
        yield from source.new()  # what came before the first look
        while not stop.is_set():
            watched = source.directories(root)
            with _Watcher(watched, stop) as watcher:
                while watcher.wait():
                    yield from source.new()
                    if source.directories(root) != watched:
                        break  # the events directory appeared: watch it too
            if watcher.failed:
                yield from _polled(source, deadline)
                return
    finally:
        if timer is not None:
            timer.cancel()


class _Watcher:
    """watchfiles over ``directories`` (not recursive: the data directories'
    churn never wakes it), woken by changes, every RECHECK_MS, or ``stop``."""

    def __init__(self, directories: list[str], stop: threading.Event):
        import watchfiles

        self.directories = directories
        self.failed = False
        self._changes = watchfiles.watch(
            *directories, watch_filter=None, debounce=DEBOUNCE_MS, step=STEP_MS,
            stop_event=stop, rust_timeout=RECHECK_MS, yield_on_timeout=True, recursive=False,
        )  # fmt: skip

    def wait(self) -> bool:
        """Whether to look again: False once stopped, or when the watcher failed."""
        try:
            next(self._changes)
        except StopIteration:
            return False
        except (OSError, RuntimeError) as error:  # e.g. inotify limits reached
            logger.warning("watch %s: file-system notifications failed (%s); polling every "
                           "%g s", self.directories[0], error, POLL_SECONDS)  # fmt: skip
            self.failed = True
            return False
        return True

    def __enter__(self) -> _Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._changes.close()
