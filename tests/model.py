"""A numpy model of a container's epochs, and a hypothesis state machine that
drives the public API against it.

The machine creates datasets of many dtypes and shapes, writes random regions
with every basic index form, synchronously and with ``write_async``, resizes,
commits, closes and reopens the writer, refreshes a reader and travels back in
time; on a small tmpfs of its own a ballast file fills the disk (a real
ENOSPC), so writes and commits fail and must be refused as the README
promises. With tiers ("tiers": a burst buffer in front of the disk and an S3
store, a real SeaweedFS server, with replicas = 2) the writes land on the
burst buffer, and the machine drains it to the disk and S3 (`esdm_hpc.drain`)
and wipes it as a job's end does. After every step it reads everything back, whole and by random
regions, in the writer, in a reader and at a committed epoch.

Hypothesis runs on rank 0 only. Every step it draws goes to all ranks
(`Lockstep`), which do it together, each writing the rows of a region it owns
(`parts`): ranks never disagree about what comes next, and their writes never
overlap. tests/core/test_model.py runs it on one process, tests/mpi/test_model.py
on every rank of COMM_WORLD.
"""

from __future__ import annotations

import copy
import errno
import faulthandler
import itertools
import math
import os
import shutil
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

import esdm_hpc
from esdm_hpc.comm import Comm
from esdm_hpc.container import Container
from esdm_hpc.dataset import WriteRequest
from esdm_hpc.drain import drain
from esdm_hpc.testing.seaweedfs import SeaweedFS, SeaweedUnavailable

URI = "esdm://model"
NAMES = ("a", "b", "c", "d")  # few: a name discarded with a failed epoch comes back
MAX_ELEMENTS = 8192  # per dataset: big enough for writes that skip every buffer
BAND = 2  # rows of axis 0 that one rank owns before the next rank's (`owner`)
STEP_SECONDS = 60  # a step that takes longer hangs: dump every thread and exit
DRAIN_BATCH = 32 << 10  # bytes: a drain of a few fragments commits several epochs

# --- dtypes and values -------------------------------------------------------------------

STRING = "str"  # dtype=str: variable-length strings, Python str in object arrays
PLAIN = [
    np.dtype(spelling)
    for spelling in (
        "?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", ">i4", ">u8",
        "f2", "f4", "f8", ">f8", "c8", "c16", "S5", "U3", "V7",
    )
]  # fmt: skip
COMPOUND = [
    np.dtype([("a", "<i4"), ("b", "<f8"), ("c", "S3")]),
    np.dtype([("x", "u1"), ("inner", [("p", ">i2"), ("q", "?")]), ("v", "<f4", (2,))]),
    # out of order and padded, as HDF5 compounds may be
    np.dtype({"names": ["lo", "hi"], "formats": ["u1", "<f8"], "offsets": [8, 0], "itemsize": 24}),
]
DTYPES = [*PLAIN, *COMPOUND, STRING]
# create_dataset refuses these, by name: no bytes per element (nothing could be
# stored), times (no HDF5 or netCDF type holds them)
REFUSED = [
    np.dtype(d) for d in ("V0", "S0", "U0", [], [("a", "S0")], ("<f8", (0,)), "M8[s]", "m8[ms]")
]
TEXT = ["", "a", "é", "日本", "\U0001f600", "\x00", "tab\t", "zzzzzzz"]


def model_dtype(dtype: np.dtype | str) -> np.dtype:
    return np.dtype(object) if dtype == STRING else np.dtype(dtype)


def random_values(dtype: np.dtype | str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """An array of ``dtype`` and ``shape`` drawn from ``seed``: any bit pattern where
    every one is a value (NaN payloads, NaT, bytes with NULs), text of every width."""
    return _random(np.random.default_rng(seed), model_dtype(dtype), shape)


def _random(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    n = math.prod(shape)
    if dtype.names is not None:
        out = np.zeros(shape, dtype)
        for name in dtype.names:
            member = out[name]  # a view: an array member adds its axes
            member[...] = _random(rng, member.dtype, member.shape)
        return out
    if dtype.kind == "O":
        return _objects([_text(rng, 3) for _ in range(n)], shape)
    if dtype.kind == "U":
        chars = dtype.itemsize // 4
        return np.array([_text(rng, chars, single=True) for _ in range(n)], dtype).reshape(shape)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return np.frombuffer(rng.bytes(n * dtype.itemsize), dtype).reshape(shape).copy()


def _text(rng: np.random.Generator, pieces: int, single: bool = False) -> str:
    choices = "".join(TEXT) if single else TEXT
    return "".join(rng.choice(list(choices)) for _ in range(rng.integers(0, pieces + 1)))


def _objects(items: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.reshape(-1)[:] = items
    return out


def select(array: np.ndarray, key: Any) -> np.ndarray:
    """``array[key]`` as an array (a view), also where numpy would give a scalar."""
    items = key if isinstance(key, tuple) else (key,)
    return array[items if any(i is Ellipsis for i in items) else (*items, Ellipsis)]


def same(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Equal in shape, dtype and every byte of every member (padding aside)."""
    if not isinstance(actual, np.ndarray) or actual.shape != expected.shape:
        return False
    if expected.dtype.names is not None:
        return actual.dtype.names == expected.dtype.names and all(
            same(actual[name], expected[name]) for name in expected.dtype.names
        )
    if expected.dtype.kind == "O":
        return actual.dtype.kind == "O" and actual.tolist() == expected.tolist()
    return actual.dtype == expected.dtype and actual.tobytes() == expected.tobytes()


# --- strategies --------------------------------------------------------------------------

seeds = st.integers(0, 2**32 - 1)
# small ones for the corner cases, large ones for writes that go to the disk at once
shapes = st.one_of(
    st.lists(st.integers(0, 5), max_size=3).map(tuple),
    st.tuples(st.integers(256, MAX_ELEMENTS)),
    st.tuples(st.integers(24, 96), st.integers(24, 96)),
    st.tuples(st.integers(8, 24), st.integers(8, 24), st.integers(8, 24)),
).filter(lambda s: math.prod(s) <= MAX_ELEMENTS)


def maxshapes(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[int | None, ...] | None]:
    """None (fixed at ``shape``), or per axis unlimited or a limit at least ``shape``."""
    return st.none() | st.tuples(*[st.none() | st.integers(n, n + 4) for n in shape])


def resized(shape: tuple[int, ...], maxshape: tuple[int | None, ...]) -> st.SearchStrategy:
    axes = [
        st.integers(0, n + 6 if limit is None else limit)
        for n, limit in zip(shape, maxshape, strict=True)
    ]
    return st.tuples(*axes).filter(lambda s: math.prod(s) <= MAX_ELEMENTS)


def hints(dtype: np.dtype | str, ndim: int) -> st.SearchStrategy[dict[str, Any]]:
    if dtype == STRING:
        return st.sampled_from([{}, {"codecs": ["zstd:1"]}])  # strings take no others
    return st.sampled_from(
        [{}, {"statistics": True}, {"serialisation": "hilbert"}, {"chunks": [1] * ndim},
         {"codecs": ["shuffle", "zstd:1"]}]
    )  # fmt: skip


def _axis_items(n: int) -> st.SearchStrategy[Any]:
    bound = st.none() | st.integers(-n - 2, n + 2)  # past the ends too: numpy clips slices
    slices = st.builds(slice, bound, bound, st.sampled_from([None, 1]))
    if n == 0:
        return slices
    indices = st.integers(-n, n - 1)
    return st.one_of(indices, indices.map(np.int64), slices)


@st.composite
def keys(draw: st.DrawFn, shape: tuple[int, ...]) -> Any:
    """Any basic index numpy takes for ``shape`` and the library supports: integers
    (negative, numpy's), slices (None, negative or past the end bounds, step None or 1),
    an Ellipsis anywhere, tuples shorter than the dimensions, a bare item."""
    ndim = len(shape)
    count = draw(st.integers(0, ndim))
    ellipsis = draw(st.booleans())
    at = draw(st.integers(0, count)) if ellipsis else count
    # items after an Ellipsis index the last axes
    axes = [i if i < at else ndim - count + i for i in range(count)]
    items = [draw(_axis_items(shape[axis])) for axis in axes]
    if ellipsis:
        items.insert(at, Ellipsis)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


# --- which rank writes what ----------------------------------------------------------------


def owner(row: int, size: int) -> int:
    """The rank that writes ``row`` of axis 0: BAND rows each, in turn, whatever the shape
    (so a resize never gives a row another owner within an epoch)."""
    return row // BAND % size


def parts(
    key: Any, shape: tuple[int, ...], value: np.ndarray, rank: int, size: int
) -> list[tuple[Any, np.ndarray]]:
    """What ``rank`` writes of ``dataset[key] = value``: the rows of the region it owns.
    A region of one owner is written with ``key`` as drawn; ``value`` is of the
    selection's shape or 0-d."""
    if size == 1 or not shape:
        return [(key, value)] if rank == 0 else []
    items = _expand(key, len(shape))
    first = items[0]
    if isinstance(first, slice):
        start, stop, _ = first.indices(shape[0])
        rows = range(start, stop)
    else:
        start, rows = 0, range(int(first) % shape[0], int(first) % shape[0] + 1)
    owners = {owner(row, size) for row in rows}
    if len(owners) <= 1:
        return [(key, value)] if owners == {rank} else []
    mine = []
    for low in range(rows.start, rows.stop):
        if owner(low, size) == rank and (low == rows.start or low % BAND == 0):
            high = min(rows.stop, (low // BAND + 1) * BAND)
            part = value if value.ndim == 0 else value[low - start : high - start]
            mine.append(((slice(low, high), *items[1:]), part))
    return mine


def _expand(key: Any, ndim: int) -> list[Any]:
    items = list(key if isinstance(key, tuple) else (key,))
    if any(i is Ellipsis for i in items):
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        items[at : at + 1] = [slice(None)] * (ndim - len(items) + 1)
    return items + [slice(None)] * (ndim - len(items))


# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How a dataset was created."""

    dtype: np.dtype | str
    fill: np.ndarray  # 0-d, of `model_dtype`
    maxshape: tuple[int | None, ...]


@dataclass
class Variable:
    spec: Spec
    data: np.ndarray

    def resized(self, shape: tuple[int, ...]) -> Variable:
        """Kept where both shapes overlap, the fill value elsewhere (what a shrink cut
        off stays gone)."""
        grown = np.empty(shape, dtype=self.data.dtype)
        grown[...] = self.spec.fill
        common = tuple(slice(0, min(a, b)) for a, b in zip(self.data.shape, shape, strict=True))
        grown[common] = self.data[common]
        return Variable(self.spec, grown)


State = dict[str, Variable]


@dataclass(frozen=True)
class Write:
    """``dataset[key] = value``, ``value`` drawn from ``seed`` (``scalar``: 0-d, broadcast),
    written at once or started by ``write_async``."""

    name: str
    key: Any
    seed: int
    scalar: bool
    asynchronous: bool


@dataclass
class Model:
    """What every committed epoch holds, what the open one will, what the writer reads."""

    epochs: list[State] = field(default_factory=lambda: [{}])  # epochs[k]: epoch k
    pending: State = field(default_factory=dict)  # the open epoch, as it will commit
    visible: State = field(default_factory=dict)  # what the writer reads: committed data
    # in the open epoch's shapes (its writes are not visible before the commit)
    dirty: bool = False  # something to commit (close() commits it)
    failed: bool = False  # a write of the open epoch reported an error
    at_risk: bool = False  # a write of the open epoch may have failed unseen

    @property
    def latest(self) -> int:
        return len(self.epochs) - 1

    def create(self, name: str, spec: Spec, shape: tuple[int, ...]) -> None:
        data = np.empty(shape, dtype=model_dtype(spec.dtype))
        data[...] = spec.fill
        self.pending[name] = Variable(spec, data)
        self.visible[name] = Variable(spec, data.copy())
        self.dirty = True

    def write(self, name: str, key: Any, value: np.ndarray) -> None:
        target = select(self.pending[name].data, key)
        target[...] = value
        self.dirty = self.dirty or target.size > 0

    def resize(self, name: str, shape: tuple[int, ...]) -> None:
        for state in (self.pending, self.visible):
            state[name] = state[name].resized(shape)
        self.dirty = True

    def committed(self) -> None:
        self.epochs.append(copy.deepcopy(self.pending))
        self._open(self.epochs[-1])

    def discarded(self) -> None:
        self._open(self.epochs[-1])

    def _open(self, state: State) -> None:
        self.pending = copy.deepcopy(state)
        self.visible = copy.deepcopy(state)
        self.dirty = self.failed = self.at_risk = False


# --- the disk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disk:
    """Where the containers live; on a tmpfs of our own a ballast file fills it."""

    root: Path
    fillable: bool

    @property
    def ballast(self) -> Path:
        return self.root / "ballast"

    def fill(self, spare: int) -> None:
        """Write the ballast until not one more byte fits, then give ``spare`` bytes back
        (0: a real ENOSPC for the next write, whatever its size)."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 4096, 1):
                try:
                    while True:
                        os.write(fd, bytes(chunk))
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - spare))
        finally:
            os.close(fd)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


@contextmanager
def disk(comm: Comm, kind: str, size: str = "64m") -> Iterator[Disk]:
    """A directory all ranks share: ``kind`` "plain" on the file system of the temporary
    directory, "tmpfs" on a tmpfs of ``size`` mounted for it (skipped on every rank
    if rank 0 may not mount one)."""
    root, problem = None, None
    if comm.rank == 0:
        root = tempfile.mkdtemp(prefix=f"esdm-model-{kind}-")
        problem = _mount(root, size) if kind == "tmpfs" else None
    root, problem = comm.bcast((root, problem), root=0)
    if problem is not None:
        if comm.rank == 0:
            os.rmdir(root)
        pytest.skip(f"the disk-full rules need a tmpfs of our own: {problem}")
    try:
        yield Disk(Path(root), fillable=kind == "tmpfs")
    finally:
        comm.Barrier()
        if comm.rank == 0:
            if kind == "tmpfs":
                subprocess.run(["umount", "-l", root], check=False, capture_output=True)
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def object_store(comm: Comm, wanted: bool, where: Disk) -> Iterator[dict[str, Any] | None]:
    """The s3 options of a SeaweedFS server rank 0 starts for the run, if ``wanted``
    (skipped on every rank where it cannot start)."""
    if not wanted:
        yield None
        return
    server, problem = None, None
    if comm.rank == 0:
        try:
            server = SeaweedFS(where.root / "seaweedfs").start()
        except SeaweedUnavailable as error:
            problem = str(error)
    options, problem = comm.bcast((server.options() if server else None, problem), root=0)
    if problem is not None:
        pytest.skip(f"the tiers need SeaweedFS: {problem}")
    try:
        yield options
    finally:
        comm.Barrier()
        if server is not None:
            server.stop()


def _mount(where: str, size: str) -> str | None:
    """Mount a tmpfs of ``size`` on ``where``; why not, if it cannot be."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting needs root and mount(8)"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", where],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else f"mount failed: {done.stderr.strip()}"


def no_space(error: BaseException) -> bool:
    """Whether ``error`` is, or was caused by, a full disk (the cause is lost when an
    error travels between ranks; its message stays)."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "errno", None) == errno.ENOSPC or os.strerror(errno.ENOSPC) in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --- one rank's part -----------------------------------------------------------------------


class Session:
    """One rank's part of one run of the machine: its writer, its reader, its model.

    Each method is one step; every rank does the same steps with the same
    arguments (`Lockstep`). Collective calls come first in a step and checks
    after them, so a check that fails on one rank leaves no rank waiting.
    """

    def __init__(
        self,
        comm: Comm,
        disk: Disk,
        target: str,
        limit: int,
        block: int,
        object_store: dict[str, Any] | None,
    ):
        """``object_store``: the s3 options of the tiers (None: the disk alone)."""
        self.comm = comm
        self.disk = disk
        self.target = target
        limits = {"max_fragment_bytes": limit}
        backends = [{"id": "disk", "type": "posix", "target": target, "limits": limits}]
        self.config: dict[str, Any] = {"backends": backends, "block_size": block}
        self.burst_buffer = f"{target}-bb" if object_store is not None else None
        if object_store is not None:
            backends.append({"id": "bb", "type": "burstbuffer", "target": self.burst_buffer,
                             "drain_to": "disk", "limits": limits,
                             "options": {"drain": "at-end"}})  # fmt: skip
            backends.append({"id": "s3", "type": "s3", "target": f"{Path(target).name}/",
                             "limits": limits, "options": object_store})  # fmt: skip
            self.config["replicas"] = 2
        self.model = Model()
        self.spare: int | None = None  # bytes free beside the ballast; None: no ballast
        # per asynchronous `Write` not waited for: the requests of this rank's parts
        self.requests: list[list[WriteRequest]] = []
        self.writer: Container | None = self._open(mode="w")
        self.reader = self._open()
        self.reader_epoch = 0

    def _open(self, **options: Any) -> Container:
        return esdm_hpc.open(URI, comm=self.comm, config=self.config, **options)

    @property
    def writing(self) -> Container:
        assert self.writer is not None, "no writer is open"
        return self.writer

    # --- the open epoch --------------------------------------------------------------------

    def create(
        self,
        name: str,
        dtype: np.dtype | str,
        shape: tuple[int, ...],
        maxshape: tuple[int | None, ...] | None,
        fill: int | None,
        hints: dict[str, Any],
    ) -> None:
        fillvalue = None if fill is None else random_values(dtype, (), fill)
        self.writing.create_dataset(
            name,
            shape=shape,
            dtype=str if dtype == STRING else dtype,
            maxshape=maxshape,
            fillvalue=fillvalue,
            hints=hints,
        )
        default = np.asarray("", dtype=object) if dtype == STRING else np.zeros((), dtype)
        spec = Spec(dtype, default if fillvalue is None else fillvalue, maxshape or shape)
        self.model.create(name, spec, shape)

    def create_refused(self, name: str, dtype: np.dtype) -> None:
        with pytest.raises((TypeError, ValueError), match=name):
            self.writing.create_dataset(name, shape=(2, 3), dtype=dtype)
        assert name not in self.writing, f"{name} of {dtype!r} was refused, yet it exists"

    def write(self, writes: list[Write]) -> None:
        """Each of ``writes``, in order: this rank's part of it (`parts`)."""
        for write in writes:
            variable = self.model.pending[write.name]
            shape = () if write.scalar else select(variable.data, write.key).shape
            value = random_values(variable.spec.dtype, shape, write.seed)
            mine = parts(write.key, variable.data.shape, value, self.comm.rank, self.comm.size)
            self.model.write(write.name, write.key, value)  # in call order, whatever the kind
            self.model.at_risk |= self.spare is not None and bool(mine)
            dataset = self.writing[write.name]
            call = dataset.write_async if write.asynchronous else dataset.__setitem__
            started = [self._attempt(partial(call, key, part)) for key, part in mine]
            if write.asynchronous:
                self.requests.append([request for request in started if request is not None])

    def wait(self, index: int) -> None:
        for request in self.requests.pop(index):
            self._attempt(request.wait)

    def wait_all(self) -> None:
        self._attempt(self.writing.wait)
        self.requests.clear()

    def _attempt(self, call: Callable[[], Any]) -> Any:
        """A write or a wait for one, its result; None if a full disk failed it (and
        with it the epoch)."""
        try:
            return call()
        except Exception as error:
            if not no_space(error):
                raise
            self.model.failed = True
            return None

    def resize(self, name: str, shape: tuple[int, ...]) -> None:
        self.writing[name].resize(shape)
        self.model.resize(name, shape)

    # --- commit, close, reopen ---------------------------------------------------------------

    def _expected(self) -> str:
        """How a commit now must end: "fails", "either" way, or "succeeds"."""
        failed = any(self.comm.allgather(self.model.failed))
        at_risk = any(self.comm.allgather(self.model.at_risk))
        if failed or self.spare == 0:
            return "fails"
        return "either" if at_risk or self.spare is not None else "succeeds"

    def _outcome(self, call: Callable[[], Any]) -> tuple[Any, Exception | None]:
        """What ``call`` (collective) returned or raised; the same on every rank."""
        try:
            result, error = call(), None
        except Exception as exc:
            result, error = None, exc
        told = self.comm.allgather(repr(error) if error else repr(result))
        assert len(set(told)) == 1, f"ranks were told different outcomes: {told}"
        return result, error

    def commit(self) -> None:
        expected = self._expected()
        epoch, error = self._outcome(self.writing.commit)
        self.requests.clear()  # a commit waits for them all
        self._settle("commit", expected, error, published=error is None)
        if error is None:
            assert epoch == self.model.latest, f"commit returned {epoch}, model {self.model.latest}"

    def close(self) -> None:
        """close() commits what is pending, and is refused as a commit is; either way
        the container is closed and the lease released (`reopen` proves it)."""
        expected = self._expected()
        dirty = any(self.comm.allgather(self.model.dirty))
        _, error = self._outcome(self.writing.close)
        self.writer = None
        self.requests.clear()
        newest = self._open()
        published = newest.epoch == self.model.latest + 1
        newest.close()
        if not dirty:
            assert error is None, f"close() with nothing pending raised {error!r}"
            assert not published, "close() with nothing pending published an epoch"
            return
        assert published or error is not None, "close() dropped what was pending, silently"
        self._settle("close", expected, error, published)

    def _settle(self, what: str, expected: str, error: Exception | None, published: bool) -> None:
        if error is not None:
            if not no_space(error):
                raise error  # never an error of its own making (a closed log, a stale lease)
            assert expected != "succeeds", f"{what} raised {error!r}, yet no write failed"
            assert not published, f"{what} raised {error!r}, yet it published its epoch"
            self.model.discarded()
        else:
            assert expected != "fails", (
                f"{what} published, though the disk is full or a write of the epoch failed"
            )
            self.model.committed()

    def reopen(self) -> None:
        """A writer again (mode "a"): the lease the last one held must be free."""
        writer, error = self._outcome(lambda: self._open(mode="a"))
        if error is not None:
            if not (self.spare is not None and no_space(error)):
                raise error  # a LeaseHeldError here: close() kept the lease
            return
        self.writer = writer
        assert writer.epoch == self.model.latest, f"reopened at {writer.epoch}"

    def drain(self, wipe: str) -> None:
        """The stage-out at a job's end: the writer closes (committing what is
        pending), the drain copies the burst buffer's fragments to the disk and
        to S3 in epochs of its own (each holding what the last one did); then,
        by ``wipe``, the burst buffer goes ("bb", as a node's tmpfs does), and
        the disk's data logs too ("bb+disk": every read comes from S3). Every
        epoch must read back as before, in the reader opened before the drain
        too (its records name the burst-buffer copies the drain removed)."""
        if self.writer is not None:
            self.close()
        report = drain(URI, comm=self.comm, config=self.config, batch_bytes=DRAIN_BATCH)
        for _ in report.epochs:
            self.model.epochs.append(copy.deepcopy(self.model.epochs[-1]))
        self.model.discarded()  # nothing was pending
        assert (report.at_risk, report.refused) == (0, []), report
        self.comm.Barrier()
        if wipe != "none" and self.comm.rank == 0:
            assert self.burst_buffer is not None
            shutil.rmtree(self.burst_buffer)
            if wipe == "bb+disk":  # every fragment is drained: S3 holds a copy of each
                shutil.rmtree(Path(self.target) / "containers" / URI.removeprefix("esdm://")
                              / "data", ignore_errors=True)  # fmt: skip
        self.comm.Barrier()
        self.reopen()

    # --- readers and the disk ----------------------------------------------------------------

    def refresh(self) -> None:
        epoch = self.reader.refresh()
        assert epoch == self.model.latest, f"refresh() moved to {epoch}, model {self.model.latest}"
        self.reader_epoch = epoch

    def do(self, action: str, arguments: dict[str, Any]) -> None:
        """The step ``action``, on a disk as full as the model says: what the library
        freed of its own since (a discarded epoch's logs) is taken again."""
        if self.spare is not None:
            self._top_up()
        getattr(self, action)(**arguments)

    def _top_up(self) -> None:
        if self.comm.rank == 0:
            assert self.spare is not None
            self.disk.fill(self.spare)
        self.comm.Barrier()

    def fill(self, spare: int) -> None:
        self.spare = spare
        self._top_up()
        # a write_async still running may fail now, unseen until it is waited for
        self.model.at_risk |= any(not r.done() for started in self.requests for r in started)

    def free(self) -> None:
        if self.comm.rank == 0:
            self.disk.free()
        self.comm.Barrier()
        self.spare = None

    def end(self) -> None:
        """Clean up, checking nothing: a failed step may have left the model behind."""
        try:
            if self.spare is not None:
                self.free()
            if self.writer is not None:
                with suppress(Exception):
                    self.writer.close()
        finally:
            self.reader.close()
            self.comm.Barrier()
            if self.comm.rank == 0:
                shutil.rmtree(self.target)
                if self.burst_buffer is not None:
                    shutil.rmtree(self.burst_buffer, ignore_errors=True)

    # --- checks ------------------------------------------------------------------------------

    def check(self, writer: dict[str, Any], reader: dict[str, Any], travel: int | None) -> None:
        """Read back every dataset whole in the writer, the reader and at the epoch
        ``travel`` (None: the newest), and a region (``writer``/``reader``: a key by the
        name of a dataset) in the first two."""
        old = self._open(epoch=travel)
        try:
            expected = self.model.latest if travel is None else travel
            assert old.epoch == expected, f"opened epoch {old.epoch}, not {expected}"
            _compare(f"epoch {expected}", old, self.model.epochs[expected], {})
        finally:
            old.close()
        if self.writer is not None:
            assert self.writer.epoch == self.model.latest, f"the writer is at {self.writer.epoch}"
            _compare("the writer", self.writer, self.model.visible, writer)
        assert self.reader.epoch == self.reader_epoch, f"the reader moved to {self.reader.epoch}"
        _compare(
            f"the reader at {self.reader_epoch}",
            self.reader,
            self.model.epochs[self.reader_epoch],
            reader,
        )


def _compare(where: str, container: Container, state: State, keys: dict[str, Any]) -> None:
    assert sorted(container.keys()) == sorted(state), (
        f"{where}: datasets {container.keys()}, model {sorted(state)}"
    )
    for name, variable in state.items():
        dataset = container[name]
        assert dataset.shape == variable.data.shape, f"{where}: {name} has shape {dataset.shape}"
        strings = variable.spec.dtype == STRING
        assert dataset.dtype.kind == "O" if strings else dataset.dtype == variable.spec.dtype, (
            f"{where}: {name} has dtype {dataset.dtype!r}, model {variable.spec.dtype!r}"
        )
        assert dataset.maxshape == variable.spec.maxshape, f"{where}: {name} has {dataset.maxshape}"
        fill = np.asarray(dataset.fillvalue, dtype=variable.data.dtype)
        assert same(fill, variable.spec.fill), f"{where}: {name} has fill value {fill!r}"
        regions = [Ellipsis, *([keys[name]] if name in keys else [])]
        for key in regions:
            actual, model = dataset[key], select(variable.data, key)
            assert same(actual, model), (
                f"{where}: {name}[{key!r}] reads\n{actual!r}\nmodel\n{model!r}"
            )


# --- every rank in step ----------------------------------------------------------------------

STOP = "stop"


class Lockstep:
    """Does each step on every rank of ``comm``: rank 0, where hypothesis draws the steps,
    broadcasts each one; the others `follow`. A step's error on any rank is raised
    on rank 0, so hypothesis sees (and shrinks) every rank's failures."""

    def __init__(self, comm: Comm, disk: Disk, object_store: dict[str, Any] | None):
        self.comm = comm
        self.disk = disk
        # the s3 options of the tiers: writes go to a burst buffer, which the
        # machine drains to the disk and S3 (None: the disk alone)
        self.object_store = object_store
        self.session: Session | None = None

    def do(self, action: str, **arguments: Any) -> None:
        """On rank 0: ``action`` on every rank."""
        self.comm.bcast((action, arguments), root=0)
        error, reports = self._do(action, arguments)
        if error is not None:
            raise error
        failed = [(rank, report) for rank, report in enumerate(reports) if report]
        if failed:
            rank, report = failed[0]
            raise AssertionError(f"{action} failed on rank {rank}:\n{report}")

    def stop(self) -> None:
        self.comm.bcast((STOP, {}), root=0)

    def follow(self) -> None:
        """On the other ranks: do what rank 0 says until it says stop."""
        while True:
            action, arguments = self.comm.bcast(None, root=0)
            if action == STOP:
                return
            self._do(action, arguments)

    def _do(self, action: str, arguments: dict[str, Any]) -> tuple[BaseException | None, list]:
        faulthandler.dump_traceback_later(STEP_SECONDS, exit=True)
        error = None
        try:
            if action == "begin":
                self.session = Session(self.comm, self.disk, **arguments)
            else:
                assert self.session is not None
                self.session.do(action, arguments)
        except BaseException as exc:  # pytest's failures too: every rank reports, rank 0 raises
            error = exc
        finally:
            faulthandler.cancel_dump_traceback_later()
        report = "".join(traceback.format_exception(error)) if error is not None else None
        return error, self.comm.allgather(report)


# --- the machine -----------------------------------------------------------------------------

_cases = itertools.count()


class ContainerMachine(RuleBasedStateMachine):
    """The public API against the model (see the module's docstring); `machine` gives
    one bound to a `Lockstep`."""

    lockstep: Lockstep

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    @property
    def session(self) -> Session:
        assert self.lockstep.session is not None
        return self.lockstep.session

    @property
    def model(self) -> Model:
        return self.session.model

    def writing(self) -> bool:
        return self.started and self.session.writer is not None

    def step(self, data: st.DataObject, action: str, **arguments: Any) -> None:
        """``action`` on every rank, then everything read back."""
        self.lockstep.do(action, **arguments)
        model, session = self.model, self.session
        visible = model.visible if session.writer is not None else {}
        self.lockstep.do(
            "check",
            writer=_region(data, visible, "the writer"),
            reader=_region(data, model.epochs[session.reader_epoch], "the reader"),
            travel=data.draw(st.none() | st.integers(0, model.latest), label="travel to epoch"),
        )

    @initialize(
        data=st.data(),
        limit=st.sampled_from([64 << 20, 4096]),
        block=st.sampled_from([16 << 10, 64]),
    )
    def begin(self, data: st.DataObject, limit: int, block: int) -> None:
        target = self.lockstep.disk.root / f"case-{next(_cases)}"
        self.started = True
        self.step(data, "begin", target=str(target), limit=limit, block=block,
                  object_store=self.lockstep.object_store)  # fmt: skip
        self.create(data)  # a dataset to write from the first step on

    @precondition(lambda self: self.writing() and len(self.model.pending) < len(NAMES))
    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        """A dataset of a random dtype and shape, or one of a dtype that is refused."""
        free = [n for n in NAMES if n not in self.model.pending]
        name = data.draw(st.sampled_from(free), label="dataset")
        dtype = data.draw(st.sampled_from(DTYPES) | st.sampled_from(REFUSED), label="dtype")
        if dtype in REFUSED:
            self.step(data, "create_refused", name=name, dtype=dtype)
            return
        shape = data.draw(shapes, label="shape")
        self.step(
            data,
            "create",
            name=name,
            dtype=dtype,
            shape=shape,
            maxshape=data.draw(maxshapes(shape), label="maxshape"),
            fill=data.draw(st.none() | seeds, label="fill"),
            hints=data.draw(hints(dtype, len(shape)), label="hints"),
        )

    @precondition(lambda self: self.writing() and self.model.pending)
    @rule(data=st.data())
    def assign(self, data: st.DataObject) -> None:
        """``dataset[key] = value`` or ``write_async(key, value)``: a few in a row, of any
        datasets. (Named to sort first of the rules: hypothesis draws the first most often.)"""
        writes = []
        for _ in range(data.draw(st.integers(1, 4), label="writes")):
            again = bool(writes) and data.draw(st.booleans(), label="same dataset")
            if not again:
                name = data.draw(st.sampled_from(sorted(self.model.pending)), label="dataset")
            key = data.draw(keys(self.model.pending[name].data.shape), label="key")
            writes.append(
                Write(name, key, data.draw(seeds, label="seed"),
                      data.draw(st.booleans(), label="scalar"),
                      data.draw(st.booleans(), label="asynchronous"))
            )  # fmt: skip
        self.step(data, "write", writes=writes)

    @precondition(lambda self: self.writing() and self.session.requests)
    @rule(data=st.data(), everything=st.booleans())
    def wait(self, data: st.DataObject, everything: bool) -> None:
        """``container.wait()``, or one ``write_async`` step's ``request.wait()``."""
        if everything:
            self.step(data, "wait_all")
        else:
            index = data.draw(st.integers(0, len(self.session.requests) - 1), label="request")
            self.step(data, "wait", index=index)

    @precondition(lambda self: self.writing() and self.model.pending)
    @rule(data=st.data())
    def resize(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model.pending)), label="dataset")
        variable = self.model.pending[name]
        shape = data.draw(resized(variable.data.shape, variable.spec.maxshape), label="shape")
        self.step(data, "resize", name=name, shape=shape)

    @precondition(writing)
    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        self.step(data, "commit")

    @precondition(writing)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        """close(), and a next writer at once: the lease must be free."""
        self.step(data, "close")
        self.reopen(data)

    @precondition(lambda self: self.started and self.session.writer is None)
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        self.step(data, "reopen")

    @precondition(lambda self: self.started and self.session.reader_epoch < self.model.latest)
    @rule(data=st.data())
    def refresh(self, data: st.DataObject) -> None:
        self.step(data, "refresh")

    @precondition(
        lambda self: self.started and self.lockstep.disk.fillable and self.session.spare is None
    )
    @rule(data=st.data(), spare=st.sampled_from([0, 4096, 64 << 10, 1 << 20]))
    def fill(self, data: st.DataObject, spare: int) -> None:
        """Fill the disk, but for ``spare`` bytes: with none left, every write that goes
        to the disk and every commit fails; with some, any of them may."""
        self.step(data, "fill", spare=spare)

    @precondition(lambda self: self.started and self.session.spare is not None)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        self.step(data, "free")

    @precondition(lambda self: self.started and self.lockstep.object_store is not None)
    @rule(data=st.data(), wipe=st.sampled_from(["none", "bb", "bb+disk"]))
    def drain(self, data: st.DataObject, wipe: str) -> None:
        self.step(data, "drain", wipe=wipe)

    def teardown(self) -> None:
        if self.started:
            self.lockstep.do("end")


def _region(data: st.DataObject, state: State, where: str) -> dict[str, Any]:
    """A region of one dataset of ``state`` to read back in ``where``, by name."""
    if not state:
        return {}
    name = data.draw(st.sampled_from(sorted(state)), label=f"dataset read in {where}")
    return {name: data.draw(keys(state[name].data.shape), label="region")}


def machine(lockstep: Lockstep) -> type[ContainerMachine]:
    """The machine class hypothesis runs, bound to ``lockstep``."""
    return type("ContainerMachine", (ContainerMachine,), {"lockstep": lockstep})


def run(comm: Comm, kind: str, examples: int, steps: int) -> None:
    """Run the machine on ``comm``, on a disk of ``kind`` ("plain", "tmpfs", or
    "tiers": plain with a burst buffer and S3): hypothesis draws the steps on rank 0
    and every other rank follows them."""
    checks = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        # explaining a failure reruns it for minutes; the shrunk steps say enough
        phases=[p for p in Phase if p is not Phase.explain],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    with disk(comm, kind) as where, object_store(comm, kind == "tiers", where) as s3:
        lockstep = Lockstep(comm, where, s3)
        if comm.rank != 0:
            lockstep.follow()
            return
        try:
            run_state_machine_as_test(machine(lockstep), settings=checks)
        finally:
            lockstep.stop()
