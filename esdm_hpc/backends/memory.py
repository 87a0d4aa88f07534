"""The memory backend: objects in process memory, for tests and in-situ pipelines.

All backends with the same target in one process share one store, so a
container written and re-opened in the same process sees its data. Nothing
survives the process, so `LogWriter.sync` has nothing to do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from esdm_hpc.backends.base import (
    LOCK_SECONDS,
    Backend,
    Buffer,
    LogWriter,
    byte_view,
    check_name,
    check_prefix,
    check_range,
)
from esdm_hpc.config import BackendConfig


class _Store:
    """The objects of one target; data logs are bytearrays that grow in place."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, bytearray | bytes] = {}
        self.named_locks: dict[str, threading.Lock] = {}  # `MemoryBackend.locked`


_stores: dict[str, _Store] = {}
_stores_lock = threading.Lock()


def _store(target: str) -> _Store:
    with _stores_lock:
        if target not in _stores:
            _stores[target] = _Store()
        return _stores[target]


class MemoryBackend(Backend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self._store = _store(config.target)

    def _get(self, name: str) -> bytearray | bytes:
        """The object (the store's lock held by the caller)."""
        try:
            return self._store.objects[check_name(name)]
        except KeyError:
            raise self.not_found(name) from None

    # --- data logs -------------------------------------------------------------------

    def create_log(self, name: str) -> MemoryLogWriter:
        check_name(name)
        with self._store.lock:
            if name in self._store.objects:
                raise self.error(name, "cannot create log: it exists already")
            data = self._store.objects[name] = bytearray()
        return MemoryLogWriter(name, data, self._store.lock)

    def read(self, name: str, offset: int, length: int) -> bytes:
        buffer = bytearray(length)
        self.readinto(name, offset, buffer)
        return bytes(buffer)

    def readinto(self, name: str, offset: int, buffer: Buffer) -> None:
        target = byte_view(buffer, writable=True)
        length = target.nbytes
        check_range(offset, length)
        with self._store.lock:
            data = self._get(name)
            if offset + length > len(data):
                raise self.short_read(name, offset, length, max(0, len(data) - offset))
            # the view is released before the log may grow again
            with memoryview(data) as view:
                target[:] = view[offset : offset + length]

    # --- objects -----------------------------------------------------------------------

    def size(self, name: str) -> int:
        with self._store.lock:
            return len(self._get(name))

    def exists(self, name: str) -> bool:
        check_name(name)
        with self._store.lock:
            return name in self._store.objects

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        with self._store.lock:
            names = sorted(n for n in self._store.objects if n.startswith(prefix))
        return iter(names)

    def delete(self, name: str) -> None:
        check_name(name)
        with self._store.lock:
            self._store.objects.pop(name, None)

    # --- small objects for metadata ----------------------------------------------------

    def write_atomic(self, name: str, data: bytes) -> None:
        check_name(name)
        content = bytes(data)
        with self._store.lock:
            self._store.objects[name] = content

    def read_small(self, name: str) -> bytes:
        with self._store.lock:
            return bytes(self._get(name))

    def create_exclusive(self, name: str, data: bytes) -> bool:
        check_name(name)
        content = bytes(data)
        with self._store.lock:
            if name in self._store.objects:
                return False
            self._store.objects[name] = content
            return True

    @contextmanager
    def locked(self, name: str, timeout: float = LOCK_SECONDS) -> Iterator[None]:
        check_name(name)
        with self._store.lock:
            lock = self._store.named_locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise self.error(name, f"cannot lock: another thread has held it for {timeout:g} s")
        try:
            yield
        finally:
            lock.release()


class MemoryLogWriter(LogWriter):
    def __init__(self, name: str, data: bytearray, lock: threading.Lock) -> None:
        self.name = name
        self._data = data
        self._lock = lock  # the store's: readers must not see the bytearray mid-resize
        self._closed = False

    @property
    def nbytes(self) -> int:
        return len(self._data)

    def append(self, data: Buffer) -> int:
        view = byte_view(data)
        with self._lock:
            if self._closed:
                raise ValueError(f"log {self.name}: I/O on a closed log")
            start = len(self._data)
            self._data += view
            return start

    def sync(self) -> None:
        """Nothing to do: memory is as durable as it gets."""

    def close(self) -> None:
        self._closed = True

    def discard(self) -> None:
        self._closed = True
