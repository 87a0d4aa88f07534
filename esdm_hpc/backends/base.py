"""The storage backend interface: append-only data logs and small atomic objects.

The core talks to storage only through `Backend` and `LogWriter`, so a new
tier (burst buffer, S3) is a new implementation, never a change to the core.
Writes land in an append-only data log per (rank, epoch, backend); a fragment
is a byte range in it (docs/architecture.md §4.4). Metadata (HEAD, manifests, leases) uses the
small-object helpers, so it can live on any backend.

Names are relative, ``/``-separated paths such as
``containers/<name>/data/e000000005/r000003.log``, the same on every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np

from esdm_hpc.config import BackendConfig
from esdm_hpc.errors import EsdmError

Buffer = bytes | bytearray | memoryview | np.ndarray

# Names of in-flight temporary objects start with this. A writer killed at the
# wrong moment leaves them behind; `list` shows them so garbage collection can
# reclaim them.
TEMP_PREFIX = ".esdm-tmp-"
# How long `Backend.locked` waits: holders keep a lock for one metadata write,
# so a wait this long means a holder is stuck (a frozen process).
LOCK_SECONDS = 60.0


class BackendError(EsdmError, OSError):
    """A storage operation failed; the message names the backend and the object."""


class ObjectNotFoundError(BackendError, FileNotFoundError):
    """The named object does not exist on the backend."""


def check_name(name: str) -> str:
    """``name`` if it is a clean relative object name, else ValueError.

    Refuses absolute paths, ``.``/``..`` components and empty components so no
    name can reach outside a backend's target or alias another name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"object name must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
        raise ValueError(f"object name {name!r} must be a relative path without '.' or '..'")
    return name


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a clean name optionally ending in ``/``."""
    if prefix:
        check_name(prefix.removesuffix("/"))
    return prefix


def check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise ValueError(f"byte range needs offset >= 0 and length >= 0, got {offset}, {length}")


def byte_view(data: Buffer, *, writable: bool = False) -> memoryview:
    """A flat byte view of ``data`` that shares its memory (no copy)."""
    if isinstance(data, np.ndarray) and data.dtype.names:
        # numpy's buffer export refuses compounds whose fields overlap or are out
        # of order (HDF5 allows both); their bytes are plain bytes all the same
        if not data.flags.c_contiguous:
            raise ValueError("buffer must be C-contiguous (copy it with np.ascontiguousarray)")
        data = data.reshape(-1).view(np.uint8)
    view = memoryview(data)
    if not view.c_contiguous:
        raise ValueError("buffer must be C-contiguous (copy it with np.ascontiguousarray)")
    if writable and view.readonly:
        raise ValueError("buffer to read into is read-only")
    if view.nbytes == 0:  # memoryview refuses to cast views with a zero extent
        return memoryview(bytearray())
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class _ClosedOnExit:
    """``with`` support for anything with a ``close()``."""

    def close(self) -> None:  # overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LogWriter(_ClosedOnExit, ABC):
    """An append-only data log, written by one owner; fragments are byte ranges in it."""

    name: str

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes appended so far."""

    @abstractmethod
    def append(self, data: Buffer) -> int:
        """Append ``data`` (without copying it first) and return the offset where it
        starts: at the end of the log, or a little past it where the backend
        places data for faster reads."""

    @abstractmethod
    def sync(self) -> None:
        """Make everything appended so far durable."""

    @abstractmethod
    def close(self) -> None:
        """Sync and release the log; closing twice is harmless."""

    @abstractmethod
    def discard(self) -> None:
        """Release the log without syncing it: its epoch will not be committed (the
        log is an orphan for gc). Never raises; discarding twice is harmless."""


class Backend(_ClosedOnExit, ABC):
    """One configured storage target (a directory, a memory store, a bucket)."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    @property
    def id(self) -> str:
        return self.config.id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r} at {self.config.target!r}>"

    @property
    def node(self) -> str | None:
        """The node whose local storage this is (a burst buffer); None: every node
        reaches the same objects."""
        return None

    def free_bytes(self) -> int | None:
        """The bytes that can still be written here, as the storage reports it now
        (None: it does not say). Placement spills to the next tier below that."""
        return None

    # --- data logs --------------------------------------------------------------------

    @abstractmethod
    def create_log(self, name: str) -> LogWriter:
        """A new, empty data log; BackendError if ``name`` exists."""

    @abstractmethod
    def read(self, name: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; a short read is a BackendError."""

    @abstractmethod
    def readinto(self, name: str, offset: int, buffer: Buffer) -> None:
        """Fill ``buffer`` with the bytes at ``offset``; a short read is a BackendError."""

    def readinto_ranges(self, name: str, ranges: Sequence[tuple[int, Buffer]]) -> None:
        """``readinto`` for several (offset, buffer) pairs of one object.

        Backends that can serve them with one open file or request override it.
        """
        for offset, buffer in ranges:
            self.readinto(name, offset, buffer)

    def readinto_objects(
        self, reads: Mapping[str, Sequence[tuple[int, Buffer]]]
    ) -> dict[str, BackendError]:
        """``readinto_ranges`` for several objects; the errors by object (the other
        objects are read).

        One read of many ranges (a time series touches a block of thousands of
        logs): a backend that can fetch in parallel (the kernel's readahead,
        concurrent requests) announces them all before it reads any.
        """
        errors = {}
        for name, ranges in reads.items():
            try:
                self.readinto_ranges(name, ranges)
            except BackendError as error:
                errors[name] = error
        return errors

    # --- objects ----------------------------------------------------------------------

    @abstractmethod
    def size(self, name: str) -> int: ...

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Names of the objects under ``prefix`` (a string prefix), in no particular order."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the object; deleting a missing one is not an error."""

    # --- small objects for metadata -----------------------------------------------------

    @abstractmethod
    def write_atomic(self, name: str, data: bytes) -> None:
        """Create or replace the object so that readers see the old or the new content, whole."""

    @abstractmethod
    def read_small(self, name: str) -> bytes:
        """The whole object (meant for metadata, not data logs)."""

    @abstractmethod
    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Create the object with ``data`` unless it exists (then False).

        Readers see the object whole or not at all: it serves as a lock (leases).
        """

    @abstractmethod
    def locked(self, name: str, timeout: float = LOCK_SECONDS) -> AbstractContextManager[None]:
        """Hold the lock ``name`` exclusively for the ``with`` block.

        What publishes HEAD or changes a lease does it under the container's
        lock (where the backend is no `CompareAndSwap`): read, compare,
        replace, with no other process in between. A lock
        dies with the process that holds it, so a crash never leaves one behind.
        Waits at most ``timeout`` seconds, then raises BackendError.
        """

    def close(self) -> None:  # a hook: backends holding sessions release them here
        """Release connections and handles; written data stays."""

    # --- shared by implementations ------------------------------------------------------

    def error(self, name: str, problem: str) -> BackendError:
        return BackendError(f"backend {self.id!r}: {name}: {problem}")

    def not_found(self, name: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(f"backend {self.id!r}: {name}: no such object")

    def short_read(self, name: str, offset: int, length: int, got: int) -> BackendError:
        return self.error(
            name,
            f"short read of bytes [{offset}, {offset + length}): "
            f"only {got} of {length} bytes exist there",
        )


@dataclass(frozen=True, slots=True)
class Versioned:
    """An object's content and the version it had when read (an S3 ETag)."""

    data: bytes
    version: str


class CompareAndSwap(ABC):
    """What a backend that replaces objects by compare-and-swap adds (s3: conditional
    writes), beside `Backend`.

    Metadata on such a backend needs no lock: HEAD and the lease are read
    with their version and replaced only if nobody changed them in between
    (docs/architecture.md §3.4, §3.5). A lock there could only be a lease that
    a frozen holder outlives; a compare-and-swap cannot be outlived. Backends
    without it (posix, memory) publish under `Backend.locked`.
    """

    @abstractmethod
    def read_versioned(self, name: str) -> Versioned | None:
        """The object and its version; None if it does not exist."""

    @abstractmethod
    def replace_if(self, name: str, data: bytes, version: str | None) -> str | None:
        """Write ``data`` if the object is still at ``version`` (None: if it does not
        exist): its new version, or None if it was not (another writer was first).

        A write retried after its answer was lost counts as done when the object
        holds exactly ``data``. BackendError if the store cannot compare (it
        ignores the conditions).
        """
