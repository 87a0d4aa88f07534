"""The S3 backend: data logs and metadata objects in a bucket of any S3-compatible store.

The client is obstore (Rust's object_store behind Python). Measured on a
loopback SeaweedFS 4.48 (the test server), against boto3 1.44:

=================================  =======  =======
                                   obstore  boto3
=================================  =======  =======
200 PUT + GET of 4 KiB, serial     0.27 s   0.79 s
PUT of 64 MiB                      0.44 s   0.52 s
GET of 64 MiB in 8 ranges          0.20 s   0.35 s (8 threads)
=================================  =======  =======

obstore wins where metadata lives (small requests: HEAD, leases, locks, three
times faster), reads ranges concurrently and coalesces close ones itself
(`obstore.get_ranges`), writes conditionally (``If-None-Match: *``,
``If-Match``), and hands back buffers without a copy.

How the interface maps onto S3 (docs/architecture.md §5):

- A data log ``name`` is an *index* object at ``name`` (content type
  `LOG_CONTENT_TYPE`, JSON: the start and length of every part) and its
  *parts* at ``.esdm-parts/<name>/<start offset, 16 hex digits>``, one per
  flush. `S3LogWriter` buffers appends and uploads a part when the buffer
  reaches ``part_size`` (an append that large goes up on its own, uncopied),
  and at `S3LogWriter.sync` it uploads the rest and replaces the index: what
  the index lists is durable, and the offsets `append` returned address it.
  `create_log` creates the empty index with ``If-None-Match: *``, so a log
  exists (and is listed, for gc) from its creation on.
- Reads map byte ranges onto parts and fetch them with ranged GETs, close
  ranges coalesced, the parts of one read and the objects of
  `readinto_objects` concurrently. A closed log never changes, so indexes are
  cached; a range past the cached end fetches the index again.
- `write_atomic` is a PUT (S3 replaces whole objects); `create_exclusive` a
  PUT with ``If-None-Match: *``.
- Metadata needs no lock here: the backend is a `CompareAndSwap`.
  `read_versioned` is a GET that keeps the ETag, `replace_if` a PUT with
  ``If-Match`` on that ETag (``If-None-Match: *`` for an object that must not
  exist yet). A container's HEAD, manifests and lease use them
  (docs/architecture.md §3.4, §3.5).
- Failed requests are retried here, not inside obstore, so that each retry is
  logged (logger ``esdm_hpc.backends.s3`` at INFO, a retry being the ordinary
  answer to throttling: backend, object, attempt, cause): 5xx answers,
  throttling, timeouts and dropped connections, with exponential backoff and
  full jitter, at most ``retries`` times and never past ``retry_timeout``;
  then a BackendError naming backend and object. A refusal (no permission, a
  bad request) is not retried. A conditional PUT whose answer was lost may
  have been applied: when its retry finds the condition failed, the backend
  reads the object, and if it holds exactly the bytes written the write counts
  as done (`S3Backend.put_conditional`).
- `locked` creates the lock object with ``If-None-Match: *``, holding the
  holder's token and an expiry (``lock_lease`` seconds ahead, renewed with
  ``If-Match`` while the block runs). **S3 cannot release a lock when its
  holder dies**, so the lease stands in for it: a waiter replaces a lock whose
  expiry has passed (``If-Match`` on the stale version: one waiter wins). A
  holder frozen longer than its lease loses the lock; this assumes clocks of
  the hosts agree to well within the lease.
- Stores that ignore conditional headers exist. Before the first
  conditional write (`create_exclusive`, `replace_if`, `locked`: what metadata
  needs) the backend probes once: a second exclusive create of a probe object
  and a replacement of it with a wrong ``If-Match`` must both be refused, else
  every such call raises BackendError saying why. SeaweedFS (4.48) honours
  both headers.

Credentials come from the options (``access_key_id``, ``secret_access_key``,
``session_token``) or, absent there, from the environment as the AWS tools
read it (``AWS_ACCESS_KEY_ID`` and so on); they are never printed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    GenericError,
    NotFoundError,
    PreconditionError,
)
from obstore.store import S3Store

from esdm_hpc.backends.base import (
    LOCK_SECONDS,
    Backend,
    BackendError,
    Buffer,
    CompareAndSwap,
    LogWriter,
    ObjectNotFoundError,
    Versioned,
    byte_view,
    check_name,
    check_prefix,
    check_range,
)
from esdm_hpc.config import BackendConfig, MiB

LOG_CONTENT_TYPE = "application/x-esdm-log-index"
# Keys under these roots are the backend's own, never an object of the interface.
PARTS_ROOT = ".esdm-parts/"
PROBE_ROOT = ".esdm-probe/"
_RESERVED = (PARTS_ROOT, PROBE_ROOT)

# Defaults of the options (docs/configuration.md, "s3").
PART_SIZE = 8 * MiB
RETRIES = 5
RETRY_SECONDS = 20.0
REQUEST_SECONDS = 30.0
LOCK_LEASE_SECONDS = 30.0
CONCURRENCY = 16
# The backoff between attempts of a request: full jitter below a bound that
# doubles from the first to the last.
FIRST_BACKOFF = 0.05
LAST_BACKOFF = 2.0

logger = logging.getLogger(__name__)

_MISSING = (FileNotFoundError, NotFoundError)
_EXISTS = (FileExistsError, AlreadyExistsError, PreconditionError)
_T = TypeVar("_T")
# How obstore's message gives the HTTP status of an answer.
_STATUS = re.compile(r"status code: (\d{3})")
# Answers worth asking again: a timeout, throttling, the server's failures.
_RETRY_STATUSES = frozenset((408, 429))
# The condition of a PUT: the object must not exist, or must have this ETag.
PutMode = str | dict[str, str]


@dataclass(frozen=True)
class S3Settings:
    """What the backend takes from ``options`` beyond the store's own keys."""

    part_size: int
    retries: int
    retry_seconds: float
    request_seconds: float
    lock_lease: float
    concurrency: int

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> S3Settings:
        return cls(
            part_size=options.get("part_size", PART_SIZE),
            retries=options.get("retries", RETRIES),
            retry_seconds=options.get("retry_timeout", RETRY_SECONDS),
            request_seconds=options.get("request_timeout", REQUEST_SECONDS),
            lock_lease=options.get("lock_lease", LOCK_LEASE_SECONDS),
            concurrency=options.get("concurrency", CONCURRENCY),
        )


def open_store(config: BackendConfig, settings: S3Settings) -> S3Store:
    """The client for the bucket and key prefix of ``config``."""
    options = config.options
    if "bucket" not in options:  # load_config requires it; a hand-made config may lack it
        raise ValueError(f"backend {config.id!r}: s3 needs the option 'bucket'")
    given = ("endpoint", "region", "access_key_id", "secret_access_key", "session_token")
    keys = {key: options[key] for key in given if key in options}
    endpoint = keys.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3", "")
    client = {
        "allow_http": endpoint.startswith("http://"),
        "timeout": timedelta(seconds=settings.request_seconds),
        "connect_timeout": timedelta(seconds=min(5.0, settings.request_seconds)),
    }
    prefix = config.target.strip("/") or None
    # the backend retries itself (`S3Backend.call`), so that each retry is logged
    return S3Store(
        options["bucket"],
        prefix=prefix,
        client_options=client,
        retry_config={"max_retries": 0},
        **keys,
    )


def transient(error: BaseException) -> bool:
    """Whether a failed request may succeed when sent again: a lost connection, a
    timeout, throttling or a 5xx answer; not a refusal (permissions, a bad request)."""
    if not isinstance(error, (GenericError, ConnectionError, TimeoutError)):
        return False
    status = _STATUS.search(str(error))
    return status is None or int(status[1]) >= 500 or int(status[1]) in _RETRY_STATUSES


def first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def part_key(name: str, start: int) -> str:
    return f"{PARTS_ROOT}{name}/{start:016x}"


@dataclass(frozen=True)
class _Layout:
    """Where the bytes of an object are: the parts of a log, or a plain object's content."""

    size: int
    starts: tuple[int, ...] = ()
    lengths: tuple[int, ...] = ()
    content: bytes | None = None  # a plain object, read whole

    @classmethod
    def of_index(cls, data: bytes) -> _Layout:
        parts = json.loads(data)["parts"]
        starts = tuple(start for start, _ in parts)
        lengths = tuple(length for _, length in parts)
        return cls(size=sum(lengths), starts=starts, lengths=lengths)


def encode_index(parts: Sequence[tuple[int, int]]) -> bytes:
    return json.dumps({"format": "esdm-s3-log/1", "parts": list(parts)}).encode()


@dataclass(frozen=True)
class _Fetched:
    """A whole object as one GET returned it."""

    data: bytes
    e_tag: str
    content_type: str | None


@dataclass
class _Piece:
    """One range of one part, and the bytes of the caller's buffer it fills."""

    start: int  # in the part
    end: int
    target: memoryview


@dataclass
class Traffic:
    """The data this backend moved: log parts uploaded and ranges read (their indexes
    and the metadata objects not counted), for measurements (benchmarks/tiers.py)."""

    parts_written: int = 0
    bytes_written: int = 0
    range_reads: int = 0  # requests: one per part of a read, its ranges together
    bytes_read: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def wrote(self, nbytes: int) -> None:
        with self._lock:
            self.parts_written += 1
            self.bytes_written += nbytes

    def read(self, nbytes: int) -> None:
        with self._lock:
            self.range_reads += 1
            self.bytes_read += nbytes


class S3Backend(Backend, CompareAndSwap):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self.settings = S3Settings.of(config.options)
        self.store = open_store(config, self.settings)
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="esdm-s3")
        self._layouts: dict[str, _Layout] = {}  # indexes of logs, by name
        self._layouts_lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._conditional_ok = False
        self.traffic = Traffic()

    def check(self, name: str) -> str:
        """``name`` if it is clean and not under the backend's own key roots."""
        if check_name(name).startswith(_RESERVED):
            raise ValueError(f"object name {name!r} is reserved for the s3 backend's own keys")
        return name

    def call(self, name: str, what: str, operation: Callable[[], _T]) -> _T:
        """``operation()``, sent again while it fails for a passing cause (`transient`)
        within the retry budget, each retry logged; its failures as BackendError
        naming this backend and ``name`` (a missing object as ObjectNotFoundError;
        a failed condition is raised as it is)."""
        retries, limit = self.settings.retries, self.settings.retry_seconds
        started = time.monotonic()
        attempt = 1
        while True:
            try:
                return operation()
            except _MISSING:
                raise self.not_found(name) from None
            except (BaseError, OSError) as exc:
                if isinstance(exc, (BackendError, *_EXISTS)):
                    raise
                if not transient(exc):
                    raise self.error(name, f"{what} failed: {first_line(exc)}") from None
                elapsed = time.monotonic() - started
                pause = random.uniform(0, min(LAST_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1)))
                if attempt > retries or elapsed + pause > limit:
                    raise self.error(
                        name,
                        f"{what} failed after {attempt} attempts in {elapsed:.1f} s (the retry "
                        f"budget: {retries} retries within {limit:g} s): {first_line(exc)}",
                    ) from None
                logger.info(
                    "backend %r: %s: %s failed (attempt %d of at most %d), retrying in %.0f ms: %s",
                    self.id, name, what, attempt, retries + 1, pause * 1000, first_line(exc),
                )  # fmt: skip
                time.sleep(pause)
                attempt += 1

    # --- data logs -------------------------------------------------------------------

    def create_log(self, name: str) -> S3LogWriter:
        self.check(name)
        self.forget(name)
        # a log's name is its writer's own (session token, rank), so an empty index
        # found by a retried create is the one this create wrote
        attributes = {"Content-Type": LOG_CONTENT_TYPE}
        if self.put_conditional(name, encode_index([]), "create", attributes) is None:
            raise self.error(name, "cannot create log: it exists already")
        return S3LogWriter(self, name)

    def forget(self, name: str) -> None:
        with self._layouts_lock:
            self._layouts.pop(name, None)

    def layout(self, name: str, end: int = 0) -> _Layout:
        """The layout of ``name``, cached for logs while it reaches ``end``."""
        with self._layouts_lock:
            cached = self._layouts.get(name)
        if cached is not None and cached.size >= end:
            return cached
        fetched = self.fetch(name)
        if fetched.content_type != LOG_CONTENT_TYPE:
            return _Layout(size=len(fetched.data), content=fetched.data)
        try:
            layout = _Layout.of_index(fetched.data)
        except (ValueError, KeyError, TypeError) as exc:
            raise self.error(name, f"the log's index is damaged: {exc}") from None
        with self._layouts_lock:
            self._layouts[name] = layout
        return layout

    def fetch(self, name: str) -> _Fetched:
        """The whole object ``name``, with its ETag: one GET, retried as a whole."""

        def get() -> _Fetched:
            result = obstore.get(self.store, name)
            data = bytes(result.bytes())  # a connection lost in the body fails here
            content_type = result.attributes.get("Content-Type")
            return _Fetched(data, result.meta["e_tag"] or "", str(content_type or "") or None)

        return self.call(name, "read", get)

    def read(self, name: str, offset: int, length: int) -> bytes:
        buffer = bytearray(length)
        self.readinto(name, offset, buffer)
        return bytes(buffer)

    def readinto(self, name: str, offset: int, buffer: Buffer) -> None:
        self.readinto_ranges(name, [(offset, buffer)])

    def readinto_ranges(self, name: str, ranges: Sequence[tuple[int, Buffer]]) -> None:
        self.read_ranges(name, ranges, self.run_all)

    def readinto_objects(
        self, reads: Mapping[str, Sequence[tuple[int, Buffer]]]
    ) -> dict[str, BackendError]:
        def one(name: str) -> BackendError | None:
            try:
                self.read_ranges(name, reads[name], run_serially)
            except BackendError as error:
                return error
            return None

        outcomes = self.run_all([lambda name=name: one(name) for name in reads])
        return {name: e for name, e in zip(reads, outcomes, strict=True) if e is not None}

    def run_all(self, calls: Sequence[Callable[[], _T]]) -> list[_T]:
        """The results of ``calls``, run concurrently on the backend's threads."""
        if len(calls) <= 1:
            return run_serially(calls)
        return [future.result() for future in [self._pool.submit(call) for call in calls]]

    def read_ranges(
        self,
        name: str,
        ranges: Sequence[tuple[int, Buffer]],
        run: Callable[[Sequence[Callable[[], None]]], list[None]],
    ) -> None:
        self.check(name)
        targets = [(offset, byte_view(buffer, writable=True)) for offset, buffer in ranges]
        for offset, target in targets:
            check_range(offset, target.nbytes)
        wanted = [(o, t) for o, t in targets if t.nbytes]
        if not wanted:
            self.size(name)  # a missing object is an error even for empty ranges
            return
        end = max(offset + target.nbytes for offset, target in wanted)
        layout = self.layout(name, end)
        for offset, target in wanted:
            if offset + target.nbytes > layout.size:
                got = max(0, layout.size - offset)
                raise self.short_read(name, offset, target.nbytes, got)
        if layout.content is not None:
            for offset, target in wanted:
                target[:] = layout.content[offset : offset + target.nbytes]
            return
        pieces = split_over_parts(layout, wanted)
        run([lambda i=i, p=p: self.fetch_part(name, layout, i, p) for i, p in pieces.items()])

    def fetch_part(self, name: str, layout: _Layout, part: int, pieces: list[_Piece]) -> None:
        key = part_key(name, layout.starts[part])
        starts = [piece.start for piece in pieces]
        ends = [piece.end for piece in pieces]
        got = self.call(
            name,
            f"read of part {key}",
            lambda: obstore.get_ranges(self.store, key, starts=starts, ends=ends),
        )
        self.traffic.read(sum(piece.end - piece.start for piece in pieces))
        for piece, data in zip(pieces, got, strict=True):
            if len(data) != piece.end - piece.start:
                raise self.error(
                    name,
                    f"part {key} holds fewer bytes than the log's index says "
                    f"(bytes [{piece.start}, {piece.end}) of the part asked, {len(data)} there)",
                )
            piece.target[:] = memoryview(data)

    # --- objects -----------------------------------------------------------------------

    def size(self, name: str) -> int:
        return self.layout(self.check(name)).size

    def exists(self, name: str) -> bool:
        self.check(name)
        try:
            self.call(name, "head", lambda: obstore.head(self.store, name))
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        # the store lists by whole path segments; the interface by string prefix
        directory = prefix.rpartition("/")[0]
        chunks = self.call(
            prefix or "/", "list", lambda: [m["path"] for c in self.listing(directory) for m in c]
        )
        return iter(
            sorted(
                key for key in chunks if key.startswith(prefix) and not key.startswith(_RESERVED)
            )
        )

    def listing(self, directory: str) -> Iterator[Sequence[dict[str, Any]]]:
        return iter(obstore.list(self.store, directory or None, chunk_size=1000))

    def delete(self, name: str) -> None:
        self.check(name)
        self.forget(name)
        parts_prefix = f"{PARTS_ROOT}{name}"
        listed = self.call(
            name, "list parts", lambda: obstore.list_with_delimiter(self.store, parts_prefix)
        )
        parts = [meta["path"] for meta in listed["objects"]]
        if parts:  # the parts first: a log whose index is gone would hide them from gc
            self.call(name, "delete parts", lambda: obstore.delete(self.store, parts))
        self.call(name, "delete", lambda: obstore.delete(self.store, name))

    # --- small objects for metadata ----------------------------------------------------

    def write_atomic(self, name: str, data: bytes) -> None:
        self.check(name)
        self.forget(name)
        content = bytes(data)
        self.call(name, "write", lambda: obstore.put(self.store, name, content))

    def read_small(self, name: str) -> bytes:
        layout = self.layout(self.check(name))
        if layout.content is not None:
            return layout.content
        return self.read(name, 0, layout.size)

    def create_exclusive(self, name: str, data: bytes) -> bool:
        return self.replace_if(name, data, None) is not None

    # --- compare-and-swap --------------------------------------------------------------

    def read_versioned(self, name: str) -> Versioned | None:
        self.check(name)
        try:
            fetched = self.fetch(name)
        except ObjectNotFoundError:
            return None
        return Versioned(fetched.data, fetched.e_tag)

    def replace_if(self, name: str, data: bytes, version: str | None) -> str | None:
        self.check(name)
        self.require_conditional_writes()
        self.forget(name)
        return self.put_conditional(
            name, bytes(data), "create" if version is None else {"e_tag": version}
        )

    def put_conditional(
        self, name: str, data: bytes, mode: PutMode, attributes: dict[str, str] | None = None
    ) -> str | None:
        """PUT ``data`` at ``name`` if ``mode`` holds (``"create"``: it does not exist,
        ``{"e_tag": ...}``: it has that ETag): the new ETag, or None if it did not.

        An attempt whose answer was lost may have been applied, and then the
        retry finds the condition failed: the object holding exactly ``data``
        means it was, and the write counts as done.
        """
        attempts = 0

        def put() -> str:
            nonlocal attempts
            attempts += 1
            result = obstore.put(self.store, name, data, mode=mode, attributes=attributes)
            return result["e_tag"] or ""

        what = "create" if mode == "create" else "replace"
        try:
            return self.call(name, what, put)
        except _EXISTS:
            pass
        except ObjectNotFoundError:  # If-Match on an object deleted meanwhile
            if mode == "create":
                raise
        if attempts > 1:
            found = self.read_versioned(name)
            if found is not None and found.data == data:
                return found.version
        return None

    def require_conditional_writes(self) -> None:
        """BackendError unless the store refuses a second exclusive create and a
        replacement with a wrong ETag (probed once per backend)."""
        with self._probe_lock:
            if self._conditional_ok:
                return
            probe = f"{PROBE_ROOT}{uuid.uuid4().hex}"
            try:
                first = self.put_conditional(probe, b"1", "create")
                second = self.put_conditional(probe, b"2", "create")
                wrong = self.put_conditional(probe, b"3", {"e_tag": '"esdm-probe-wrong-etag"'})
            except BackendError:
                with suppress(BackendError):  # the probe's failure is the one to report
                    self.call(probe, "delete", lambda: obstore.delete(self.store, probe))
                raise
            self.call(probe, "delete", lambda: obstore.delete(self.store, probe))
            ignored = (
                "If-None-Match: * (a second exclusive create succeeded)"
                if first is None or second is not None
                else "If-Match (a replacement with a wrong ETag succeeded)"
                if wrong is not None
                else None
            )
            if ignored is not None:
                raise self.error(
                    probe,
                    f"the store ignores conditional writes: {ignored}, so container "
                    "metadata (HEAD, manifests, leases) and locks cannot live here; name "
                    "another backend in metadata_backend",
                )
            self._conditional_ok = True

    @contextmanager
    def locked(self, name: str, timeout: float = LOCK_SECONDS) -> Iterator[None]:
        self.check(name)
        self.require_conditional_writes()
        lock = S3Lock(self, name)
        lock.acquire(timeout)
        try:
            yield
        finally:
            lock.release()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def run_serially(calls: Sequence[Callable[[], _T]]) -> list[_T]:
    return [call() for call in calls]


def split_over_parts(
    layout: _Layout, ranges: Sequence[tuple[int, memoryview]]
) -> dict[int, list[_Piece]]:
    """The pieces of ``ranges`` (each inside the log) by the index of the part holding them."""
    pieces: dict[int, list[_Piece]] = {}
    for offset, target in ranges:
        position, done = offset, 0
        part = bisect_right(layout.starts, offset) - 1
        while done < target.nbytes:
            start = position - layout.starts[part]
            take = min(layout.lengths[part] - start, target.nbytes - done)
            piece = _Piece(start, start + take, target[done : done + take])
            pieces.setdefault(part, []).append(piece)
            position, done, part = position + take, done + take, part + 1
    return pieces


class S3Lock:
    """One holding of the lock object ``name``: a lease renewed while held."""

    def __init__(self, backend: S3Backend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.token = uuid.uuid4().hex
        self.lease = backend.settings.lock_lease
        self.e_tag = ""
        self.lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def body(self) -> bytes:
        return json.dumps(
            {
                "holder": self.token,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "expires": time.time() + self.lease,
            }
        ).encode()

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for attempt in range(1_000_000):
            e_tag = self.backend.put_conditional(self.name, self.body(), "create")
            if e_tag is None:
                e_tag = self.take_if_stale()
            if e_tag is not None:
                self.e_tag = e_tag
                self._renewer = threading.Thread(target=self.renew, daemon=True)
                self._renewer.start()
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # full jitter: waiters spread out instead of polling in step
            time.sleep(min(left, random.uniform(0, min(0.2, 0.005 * 2**attempt))))
        raise self.backend.error(
            self.name, f"cannot lock: another process has held it for {timeout:g} s"
        )

    def take_if_stale(self) -> str | None:
        """Replace the lock if its holder's lease has expired (or it is ours): the ETag."""
        try:
            result = obstore.get(self.backend.store, self.name)
            data = bytes(result.bytes())
        except _MISSING:
            return None  # released meanwhile: the next create may win
        except (BaseError, OSError):
            return None  # a store hiccup counts as held; the caller retries until its deadline
        try:
            held = json.loads(data)
            holder, expires = held["holder"], float(held["expires"])
        except (ValueError, KeyError, TypeError):
            holder, expires = "", result.meta["last_modified"].timestamp() + self.lease
        if holder == self.token:  # a retried create that had succeeded
            return result.meta["e_tag"] or ""
        if expires >= time.time():
            return None
        return self.backend.put_conditional(
            self.name, self.body(), {"e_tag": result.meta["e_tag"] or ""}
        )

    def renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                e_tag = self.backend.put_conditional(self.name, self.body(), {"e_tag": self.e_tag})
            except BackendError:
                continue  # the next renewal may get through before the lease ends
            if e_tag is None:
                self.lost = True
                return
            self.e_tag = e_tag

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.lost:
            raise self.backend.error(
                self.name, f"lock lost while held: not renewed within its {self.lease:g} s lease"
            )
        # S3 cannot delete conditionally here: delete only while the lock is still ours
        try:
            current = obstore.head(self.backend.store, self.name)["e_tag"]
        except _MISSING:
            return
        except (BaseError, OSError):
            current = self.e_tag  # deleting is what a store hiccup must not prevent
        if current == self.e_tag:
            self.backend.call(
                self.name, "unlock", lambda: obstore.delete(self.backend.store, self.name)
            )


class S3LogWriter(LogWriter):
    """Appends buffered in memory, uploaded as one part per flush (see the module docstring)."""

    def __init__(self, backend: S3Backend, name: str) -> None:
        self.name = name
        self._backend = backend
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._nbytes = 0
        self._parts: list[tuple[int, int]] = []  # uploaded: (start, length)
        self._indexed = 0  # how many of them the stored index lists
        self._closed = False

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def append(self, data: Buffer) -> int:
        view = byte_view(data)
        with self._lock:
            if self._closed:
                raise ValueError(f"log {self.name}: I/O on a closed log")
            start = self._nbytes
            if view.nbytes >= self._backend.settings.part_size:
                self._flush()
                self._upload(start, view)
            else:
                self._buffer += view
            self._nbytes += view.nbytes
            if len(self._buffer) >= self._backend.settings.part_size:
                self._flush()
            return start

    def _flush(self) -> None:
        """Upload the buffer as a part (the lock held)."""
        if self._buffer:
            self._upload(self._nbytes - len(self._buffer), self._buffer)
            self._buffer = bytearray()

    def _upload(self, start: int, data: bytearray | memoryview) -> None:
        key = part_key(self.name, start)
        store = self._backend.store
        self._backend.call(
            self.name, f"upload of part {key}", lambda: obstore.put(store, key, data)
        )
        self._parts.append((start, memoryview(data).nbytes))
        self._backend.traffic.wrote(memoryview(data).nbytes)

    def sync(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush()
            if self._indexed == len(self._parts):
                return
            index = encode_index(self._parts)
            attributes = {"Content-Type": LOG_CONTENT_TYPE}
            store = self._backend.store
            self._backend.call(
                self.name,
                "write of the log's index",
                lambda: obstore.put(store, self.name, index, attributes=attributes),
            )
            self._indexed = len(self._parts)

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._closed = True

    def discard(self) -> None:
        with self._lock:
            self._closed = True
            self._buffer = bytearray()
