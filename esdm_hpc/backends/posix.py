"""The posix backend: directories on a local or parallel file system (docs/architecture.md §5).

Durability follows the usual POSIX recipe: data is fsynced, and so is every
directory whose entries changed, once. Small metadata objects are replaced by
write-temp, fsync, rename, fsync-directory, so a reader sees old or new, whole.
On Lustre, log directories get the configured striping (``lfs setstripe``).
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from esdm_hpc.backends.base import (
    LOCK_SECONDS,
    TEMP_PREFIX,
    Backend,
    BackendError,
    Buffer,
    LogWriter,
    byte_view,
    check_name,
    check_prefix,
    check_range,
)
from esdm_hpc.config import BackendConfig
from esdm_hpc.faults import crash_point

logger = logging.getLogger(__name__)

LUSTRE_SUPER_MAGIC = 0x0BD00BD0


# --- Lustre ----------------------------------------------------------------------------


def is_lustre(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on Lustre, by the statfs(2) magic (os.statvfs does not report it)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if libc.statfs(os.fsencode(path), buf) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), os.fspath(path))
    f_type = ctypes.c_long.from_buffer(buf).value  # the first member, a long, on 64-bit Linux
    return f_type & 0xFFFFFFFF == LUSTRE_SUPER_MAGIC


def setstripe_command(lfs: str, directory: str, options: Mapping[str, Any]) -> list[str] | None:
    """The ``lfs setstripe`` call giving ``directory`` the configured layout, if any is set."""
    args = []
    if "stripe_count" in options:
        args += ["-c", str(options["stripe_count"])]
    if "stripe_size" in options:
        args += ["-S", str(options["stripe_size"])]
    return [lfs, "setstripe", *args, directory] if args else None


# --- small helpers -----------------------------------------------------------------------

# Explicit modes, so that a permissive umask (000 in some batch environments)
# never makes stored data world-writable; a stricter umask still applies.
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


# Large appends go out in pieces of this size, each handed to the kernel for
# writeback at once: the disk writes while the next piece is copied, instead of
# idling until the commit's fdatasync has all of it to do.
WRITE_BEHIND_BYTES = 8 << 20
# Appends smaller than this gather in memory and go out in one pwrite once
# BUFFER_BYTES have gathered, or at the latest with sync: a small write costs
# a copy instead of a system call. Durability is unchanged: nothing appended
# is durable before sync, which writes the rest before its fdatasync.
SMALL_APPEND_BYTES = 16 << 10
BUFFER_BYTES = 1 << 20
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback, do not wait
# Appends of at least PLACED_APPEND_BYTES start PAYLOAD_PAGE_OFFSET bytes into a
# page (the gap before them is a hole). The kernel copies a read from the page
# cache at a quarter of its speed when the destination lies 1-31 bytes past
# the source's position in a page (rep movsb on AMD Zen: 2.6 against 10 GB/s
# measured), and malloc'd buffers, numpy's and HDF5's included, start 16
# bytes past a page boundary: payloads at page offset 0 hit exactly that. Half
# a page in, no common buffer alignment comes near; HDF5's own raw data starts
# there too. At most 1/16 of a placed append is padding.
PLACED_APPEND_BYTES = 64 << 10
PAYLOAD_PAGE_OFFSET = 2048
PAGE_BYTES = 4096
# The buffer of a read is the application's, at any address. A read of at
# least BOUNCE_BYTES whose buffer lies within SHORT_DISTANCE bytes past its
# source's page position goes through a bounce buffer half a page away from
# both: two fast copies (6 GB/s measured) instead of one slow one (2.5 GB/s).
# glibc's memcpy avoids the same distances for the same reason.
BOUNCE_BYTES = 1 << 20
SHORT_DISTANCE = 64
# A read of ranges of many objects holds at most OPEN_AT_ONCE of them open,
# and announces at most PREFETCH_BYTES of each such batch before reading it.
OPEN_AT_ONCE = 256
PREFETCH_BYTES = 256 << 20


def _load_sync_file_range() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None  # not Linux: the commit's fdatasync does all the work
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    # Positioned writes: a failed append leaves the file offset of later ones intact.
    done = 0
    while done < view.nbytes:
        piece = view[done : done + WRITE_BEHIND_BYTES]
        written = 0
        while written < piece.nbytes:
            written += os.pwrite(fd, piece[written:], offset + done + written)
        if _sync_file_range is not None and view.nbytes > WRITE_BEHIND_BYTES:
            _sync_file_range(fd, offset + done, written, _SYNC_FILE_RANGE_WRITE)
        done += written


def _address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def _short_distance(view: memoryview, offset: int) -> bool:
    """Whether the kernel's copy of file ``offset`` into ``view`` is a slow one (see
    PAYLOAD_PAGE_OFFSET): the buffer lies 1 to SHORT_DISTANCE-1 bytes past the source."""
    return 0 < (_address(view) - offset) % PAGE_BYTES < SHORT_DISTANCE


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


@contextmanager
def _os_errors(backend: Backend, name: str, action: str) -> Iterator[None]:
    """OSErrors become BackendErrors that name the backend and the object."""
    try:
        yield
    except BackendError:
        raise
    except FileNotFoundError:
        raise backend.not_found(name) from None
    except OSError as exc:
        raise backend.error(name, f"cannot {action}: {exc.strerror or exc}") from exc


# --- the backend -------------------------------------------------------------------------


class PosixBackend(Backend):
    gather_below = SMALL_APPEND_BYTES  # appends gathered in memory (`PosixLogWriter`)

    def __init__(self, config: BackendConfig, root: str | None = None) -> None:
        """``root``: the directory the objects are in (default: the target)."""
        super().__init__(config)
        self.root = os.path.abspath(config.target if root is None else root)
        if os.path.lexists(self.root) and not os.path.isdir(self.root):
            raise BackendError(
                f"backend {self.id!r}: target {self.root} exists and is not a directory"
            )
        try:
            os.makedirs(self.root, mode=DIRECTORY_MODE, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"backend {self.id!r}: cannot create the target {self.root}: {exc.strerror or exc}"
            ) from None
        self._real_root = os.path.realpath(self.root)
        self._lfs = self._find_lfs()

    def _find_lfs(self) -> str | None:
        """The ``lfs`` tool, when striping is configured and the target is on Lustre."""
        if setstripe_command("lfs", self.root, self.config.options) is None:
            return None
        lfs = shutil.which("lfs")
        return lfs if lfs is not None and is_lustre(self.root) else None

    def _path(self, name: str) -> str:
        return os.path.join(self.root, check_name(name))

    def _inside(self, path: str) -> bool:
        """Whether ``path`` (under the root) resolves to itself under the real root:
        no symbolic link on the way leads out of the target (or back into it)."""
        relative = os.path.relpath(path, self.root)
        return os.path.realpath(path) == os.path.normpath(os.path.join(self._real_root, relative))

    # --- directories -------------------------------------------------------------------

    def _make_dirs(self, directory: str, *, lfs: str | None = None) -> list[str]:
        """Create ``directory`` and missing ancestors; the directories whose entries changed.

        With ``lfs``, ``directory`` itself gets the configured Lustre striping.
        """
        missing = []
        path = directory
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            if lfs is not None and path == directory:
                self._mkdir_striped(path, lfs)
            else:
                with suppress(FileExistsError):  # another rank made it first
                    os.mkdir(path, DIRECTORY_MODE)
        return [os.path.dirname(path) for path in missing]

    def _mkdir_striped(self, directory: str, lfs: str) -> None:
        """Create ``directory`` with the configured Lustre layout, in one atomic step.

        The layout is set on a temporary sibling that is then renamed into place,
        so no rank can create a log in the directory before it is striped.
        """
        temp = os.path.join(os.path.dirname(directory), f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        os.mkdir(temp, DIRECTORY_MODE)
        command = setstripe_command(lfs, temp, self.config.options)
        if command is not None:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:  # striping is an optimisation: never fail a write over it
                logger.warning("backend %r: %s: %s", self.id, " ".join(command), done.stderr)
        try:
            os.rename(temp, directory)
        except OSError:  # another rank won; its directory has the same layout
            os.rmdir(temp)
            if not os.path.isdir(directory):
                raise

    # --- data logs -------------------------------------------------------------------------

    def create_log(self, name: str) -> PosixLogWriter:
        path = self._path(name)
        directory = os.path.dirname(path)
        with _os_errors(self, name, "create log"):
            changed = self._make_dirs(directory, lfs=self._lfs)
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                fd = os.open(path, flags, FILE_MODE)
            except FileExistsError:
                raise self.error(name, "cannot create log: it exists already") from None
        return PosixLogWriter(
            self, name, fd, unsynced_dirs=[directory, *changed], gather_below=self.gather_below
        )

    def read(self, name: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        chunks = []
        got = 0
        with self._opened(name) as fd:
            while got < length:
                chunk = os.pread(fd, length - got, offset + got)
                if not chunk:
                    raise self.short_read(name, offset, length, got)
                chunks.append(chunk)
                got += len(chunk)
        return b"".join(chunks)  # no copy when one pread returned everything

    def readinto(self, name: str, offset: int, buffer: Buffer) -> None:
        self.readinto_ranges(name, [(offset, buffer)])

    def readinto_ranges(self, name: str, ranges: Sequence[tuple[int, Buffer]]) -> None:
        with self._opened(name) as fd:  # one open for all: reads touch many small ranges
            self._readinto_fd(fd, name, ranges)

    def readinto_objects(
        self, reads: Mapping[str, Sequence[tuple[int, Buffer]]]
    ) -> dict[str, BackendError]:
        errors: dict[str, BackendError] = {}
        announce = sum(len(ranges) for ranges in reads.values()) > 1
        names = list(reads)
        for first in range(0, len(names), OPEN_AT_ONCE):
            batch = {name: reads[name] for name in names[first : first + OPEN_AT_ONCE]}
            fds = self._open_all(batch, errors, announce)
            try:
                for name, fd in fds.items():
                    try:
                        with _os_errors(self, name, "read"):
                            self._readinto_fd(fd, name, batch[name])
                    except BackendError as error:
                        errors[name] = error
            finally:
                for fd in fds.values():
                    os.close(fd)
        return errors

    def _open_all(
        self,
        reads: Mapping[str, Sequence[tuple[int, Buffer]]],
        errors: dict[str, BackendError],
        announce: bool,
    ) -> dict[str, int]:
        """Open every object of ``reads`` (the failures go to ``errors``) and, if
        ``announce``, tell the kernel about their ranges (up to PREFETCH_BYTES):
        it queues them all at once and the disk serves them in parallel, where
        reads one after another wait a round trip each."""
        fds: dict[str, int] = {}
        budget = PREFETCH_BYTES if announce else 0
        for name, ranges in reads.items():
            try:
                with _os_errors(self, name, "read"):
                    fd = fds[name] = os.open(self._path(name), os.O_RDONLY | os.O_CLOEXEC)
            except BackendError as error:
                errors[name] = error
                continue
            for offset, buffer in ranges if budget > 0 else ():
                length = memoryview(buffer).nbytes
                with suppress(OSError):  # only a hint
                    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
                budget -= length
        return fds

    def _readinto_fd(self, fd: int, name: str, ranges: Sequence[tuple[int, Buffer]]) -> None:
        views = [(offset, byte_view(buffer, writable=True)) for offset, buffer in ranges]
        for offset, view in views:
            check_range(offset, view.nbytes)
        for offset, view in views:
            if view.nbytes >= BOUNCE_BYTES and _short_distance(view, offset):
                self._read_bounced(fd, name, view, offset)
            else:
                self._read_exact(fd, name, view, offset)

    def _read_exact(self, fd: int, name: str, view: memoryview, offset: int) -> None:
        got = 0
        while got < view.nbytes:
            n = os.preadv(fd, [view[got:]], offset + got)
            if n == 0:
                raise self.short_read(name, offset, view.nbytes, got)
            got += n

    def _read_bounced(self, fd: int, name: str, view: memoryview, offset: int) -> None:
        raw = bytearray(BOUNCE_BYTES + PAGE_BYTES)
        skip = (PAYLOAD_PAGE_OFFSET + offset - _address(memoryview(raw))) % PAGE_BYTES
        bounce = memoryview(raw)[skip : skip + BOUNCE_BYTES]
        for start in range(0, view.nbytes, BOUNCE_BYTES):  # keeps bounce's page distance
            piece = view[start : start + BOUNCE_BYTES]
            self._read_exact(fd, name, bounce[: piece.nbytes], offset + start)
            piece[:] = bounce[: piece.nbytes]

    @contextmanager
    def _opened(self, name: str) -> Iterator[int]:
        path = self._path(name)
        with _os_errors(self, name, "read"):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                yield fd
            finally:
                os.close(fd)

    # --- objects -------------------------------------------------------------------------

    def size(self, name: str) -> int:
        path = self._path(name)
        with _os_errors(self, name, "stat"):
            status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            raise self.not_found(name)
        return status.st_size

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def free_bytes(self) -> int | None:
        try:
            status = os.statvfs(self.root)
        except OSError:  # a target gone: the write that follows says so
            return None
        return status.f_bavail * status.f_frsize

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        head = prefix.rpartition("/")[0]
        top = os.path.join(self.root, head) if head else self.root
        if not self._inside(top):  # a link out of the target: nothing of ours is there
            return
        # os.walk follows no links below top: their objects are not listed
        for directory, subdirs, files in os.walk(top):
            rel = os.path.relpath(directory, self.root)
            base = "" if rel == "." else rel + "/"
            # Descend only where names can still start with the prefix.
            subdirs[:] = sorted(d for d in subdirs if f"{base}{d}/".startswith(prefix))
            for file in sorted(files):
                if f"{base}{file}".startswith(prefix):
                    yield f"{base}{file}"

    def delete(self, name: str) -> None:
        path = self._path(name)
        if not self._inside(os.path.dirname(path)):
            # e.g. a container directory that is a link elsewhere: never delete there
            raise self.error(name, "cannot delete: a symbolic link on its path leads outside")
        with _os_errors(self, name, "delete"):
            _unlink_quietly(path)

    @contextmanager
    def locked(self, name: str, timeout: float = LOCK_SECONDS) -> Iterator[None]:
        path = self._path(name)
        with _os_errors(self, name, "lock"):
            self._make_dirs(os.path.dirname(path))
            # flock(2): held per open file, so two openers in one process exclude
            # each other too; the kernel drops it when the holder dies
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            self._flock(fd, name, timeout)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _flock(self, fd: int, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise self.error(
                        name, f"cannot lock: another process has held it for {timeout:g} s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            except OSError as exc:
                raise self.error(name, f"cannot lock: {exc.strerror or exc}") from exc

    # --- small objects for metadata ----------------------------------------------------------

    def write_atomic(self, name: str, data: bytes) -> None:
        path = self._path(name)
        directory = os.path.dirname(path)
        with _os_errors(self, name, "write"):
            changed = self._make_dirs(directory)
            temp = self._write_temp(directory, data)
            crash_point("atomic.temp-written")
            try:
                os.replace(temp, path)
            except BaseException:
                _unlink_quietly(temp)
                raise
            crash_point("atomic.renamed")
            for synced in {directory, *changed}:
                _fsync_dir(synced)

    def read_small(self, name: str) -> bytes:
        chunks = []
        with self._opened(name) as fd:
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        return b"".join(chunks)

    def create_exclusive(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        directory = os.path.dirname(path)
        with _os_errors(self, name, "create"):
            changed = self._make_dirs(directory)
            temp = self._write_temp(directory, data)
            try:
                # link(2) fails if the name exists, and publishes the content whole;
                # unlike O_EXCL it is also atomic on NFS.
                os.link(temp, path)
            except FileExistsError:
                return False
            finally:
                _unlink_quietly(temp)
            for synced in {directory, *changed}:
                _fsync_dir(synced)
        return True

    def _write_temp(self, directory: str, data: bytes) -> str:
        """A durable temporary file in ``directory`` holding ``data``."""
        temp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            _pwrite_all(fd, byte_view(data), 0)
            os.fsync(fd)
        except BaseException:
            _unlink_quietly(temp)
            raise
        finally:
            os.close(fd)
        return temp


class PosixLogWriter(LogWriter):
    def __init__(
        self,
        backend: Backend,
        name: str,
        fd: int,
        unsynced_dirs: list[str],
        gather_below: int = SMALL_APPEND_BYTES,
    ) -> None:
        """Appends smaller than ``gather_below`` are gathered in memory first."""
        self.name = name
        self._gather_below = gather_below
        self._backend = backend
        self._fd: int | None = fd
        self._nbytes = 0  # appended, the buffered bytes included
        self._buffer = bytearray()  # small appends not written yet: the last bytes of the log
        self._unsynced_dirs = unsynced_dirs  # entries made for this log, fsynced once
        self._lock = threading.Lock()  # appends from scheduler threads get distinct offsets

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def append(self, data: Buffer) -> int:
        view = byte_view(data)
        with self._lock:
            fd = self._open_fd()
            small = view.nbytes < self._gather_below
            if not small or len(self._buffer) + view.nbytes > BUFFER_BYTES:
                self._write_buffer()
            start = self._placed(self._nbytes, view.nbytes)
            if small:
                self._buffer += view
            else:
                with _os_errors(self._backend, self.name, "append"):
                    _pwrite_all(fd, view, start)
            self._nbytes = start + view.nbytes
            return start

    @staticmethod
    def _placed(end: int, nbytes: int) -> int:
        """Where an append of ``nbytes`` to a log of ``end`` bytes starts."""
        if nbytes < PLACED_APPEND_BYTES:
            return end
        return end + (PAYLOAD_PAGE_OFFSET - end) % PAGE_BYTES

    def sync(self) -> None:
        with self._lock:
            self._sync()

    def close(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            try:
                self._sync()
            finally:
                self._release()

    def discard(self) -> None:
        with self._lock:
            if self._fd is not None:
                self._release()

    def _release(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        self._buffer = bytearray()

    def _write_buffer(self) -> None:
        """Write the buffered appends. If that fails they stay buffered, so that
        the next try, at the latest the commit's sync, writes them or fails too."""
        if not self._buffer:
            return
        start = self._nbytes - len(self._buffer)
        try:
            with _os_errors(self._backend, self.name, "append"):
                _pwrite_all(self._open_fd(), memoryview(self._buffer), start)
        except BaseException:
            # a copy: the error's traceback keeps views of the old buffer,
            # which could then no longer grow
            self._buffer = bytearray(self._buffer)
            raise
        self._buffer = bytearray()

    def _sync(self) -> None:
        self._write_buffer()
        with _os_errors(self._backend, self.name, "sync"):
            os.fdatasync(self._open_fd())  # covers the size too: reading the data needs it
            for directory in dict.fromkeys(self._unsynced_dirs):
                _fsync_dir(directory)
        self._unsynced_dirs = []

    def _open_fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"log {self.name}: I/O on a closed log")
        return self._fd
