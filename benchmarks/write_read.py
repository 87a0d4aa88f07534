"""W1/W2: ESDM against raw POSIX files and parallel HDF5 on the same machine, same run.

    mpirun -n 4 python benchmarks/write_read.py [--total-gib 1] [--steps T] [--shape Z,Y,X]
        [--systems posix,esdm,h5py-collective,h5py-independent] [--repeat 3]
        [--block-size BYTES] [--commit-epochs 10] [--dir DIR] [--keep]
        [--no-drop-caches] [--json PATH] [--profile PATH] [--quick]

benchmarks/README.md has the method in full, the latest numbers and the findings.

W1 (write): every rank owns one block of a 3-D float32 field (the decomposition of
`esdm_hpc.kernels.decomposition.decompose`) and writes it at each of T time steps,
making every step durable before the next one:

- posix: one file per rank, ``pwrite`` + ``fsync`` per step (the physical limit);
- esdm: one 4-D dataset (time, z, y, x), ``dset[t, block] = data``, ``commit()``;
- h5py-collective, h5py-independent: one shared file through the MPI-IO driver of
  the project's parallel HDF5, collective or independent transfers, ``flush()``
  per step (which ends in ``MPI_File_sync``).

A step is timed from a barrier (every rank holds its data) to the barrier after
which every rank's data is durable: generating the data is not timed, load
imbalance is. A run is open + all steps + close. For ESDM each step is split
further: the write call, the data sync (``writer.sync()``, timed just before
``commit()`` so that the commit only publishes metadata) and the commit, whose
time is the commit overhead beyond the data flush.

W2 (read): one process (rank 0, as an analysis tool) reads from each system's
output a 16x16 column over all steps and all levels, and one horizontal 2-D slice
of one step, with the page cache dropped before each open when
/proc/sys/vm/drop_caches is writable (else the reads are "warm cache").

Commit: the commit overhead for P ranks x 100 small fragments each (4 KiB writes,
then one commit), repeated over several epochs.

Targets: ESDM writes >= 0.9x raw POSIX and >= 1.5x h5py collective; commit
overhead beyond the data flush <= 50 ms for 4 ranks x 100 fragments.

With --json, rank 0 also draws the figures next to it (the same path, .png).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import io
import json
import math
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plotting import Panel, chart_path, write_chart  # noqa: E402

import esdm_hpc  # noqa: E402
from esdm_hpc.config import load_config  # noqa: E402
from esdm_hpc.kernels.decomposition import decompose  # noqa: E402
from esdm_hpc.placement import split  # noqa: E402

try:
    import h5py
except ImportError:  # the h5py peers are skipped, and say so
    h5py = None

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
DTYPE = np.dtype("f4")
SYSTEMS = ("posix", "esdm", "h5py-collective", "h5py-independent")
COLUMN = 16  # the W2 column is COLUMN x COLUMN points wide
TARGET_VS_POSIX = 0.9
TARGET_VS_H5PY = 1.5
TARGET_COMMIT_S = 0.050
TARGET_COMMIT_RANKS = 4
FRAGMENTS_PER_RANK = 100


# --- the workload ----------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A hyperslab of the 4-D (time, z, y, x) output; reads keep all four axes."""

    name: str
    offset: tuple[int, ...]
    count: tuple[int, ...]

    @property
    def index(self) -> tuple[slice, ...]:
        return tuple(slice(o, o + c) for o, c in zip(self.offset, self.count, strict=True))

    @property
    def nbytes(self) -> int:
        return math.prod(self.count) * DTYPE.itemsize

    def __str__(self) -> str:
        return "[" + ", ".join(f"{s.start}:{s.stop}" for s in self.index) + "]"


@dataclass(frozen=True)
class Workload:
    """T steps of a (Z, Y, X) float32 field, block-decomposed over ``nprocs`` ranks."""

    shape: tuple[int, int, int]
    steps: int
    nprocs: int
    offsets: np.ndarray = field(repr=False)  # (nprocs, 3): block origin of each rank
    counts: np.ndarray = field(repr=False)  # (nprocs, 3): block extent of each rank

    @classmethod
    def create(cls, shape: tuple[int, int, int], steps: int, nprocs: int) -> Workload:
        offsets, counts = decompose(shape, nprocs)
        return cls(shape, steps, nprocs, offsets, counts)

    @property
    def full_shape(self) -> tuple[int, ...]:
        return (self.steps, *self.shape)

    @property
    def step_bytes(self) -> int:
        return math.prod(self.shape) * DTYPE.itemsize

    @property
    def total_bytes(self) -> int:
        return self.steps * self.step_bytes

    def block_bytes(self, rank: int) -> int:
        return int(np.prod(self.counts[rank])) * DTYPE.itemsize

    def block(self, rank: int, step: int) -> Region:
        offset, count = self.offsets[rank].tolist(), self.counts[rank].tolist()
        return Region(f"rank {rank} step {step}", (step, *offset), (1, *count))

    @property
    def column(self) -> Region:
        """COLUMN x COLUMN points around the centre, all levels, all steps.

        The centre is where the blocks of 2 or 4 ranks meet, so the column
        crosses rank boundaries as it would in an analysis.
        """
        _, ny, nx = self.shape
        y0, x0 = max(0, ny // 2 - COLUMN // 2), max(0, nx // 2 - COLUMN // 2)
        return Region(
            "column",
            (0, 0, y0, x0),
            (self.steps, self.shape[0], min(COLUMN, ny), min(COLUMN, nx)),
        )

    @property
    def slice2d(self) -> Region:
        """The whole middle level of the middle step."""
        nz, ny, nx = self.shape
        return Region("slice", (self.steps // 2, nz // 2, 0, 0), (1, 1, ny, nx))

    def expected(self, region: Region) -> np.ndarray:
        """The field's values in ``region``: exact small integers, so checks are exact."""
        t, z, y, x = (
            np.arange(o, o + c, dtype=np.int64)
            for o, c in zip(region.offset, region.count, strict=True)
        )
        _, ny, nx = self.shape
        base = ((z[:, None, None] * ny + y[None, :, None]) * nx + x[None, None, :]) % (1 << 20)
        return (base[None] + t[:, None, None, None]).astype(DTYPE)


def fill(step: int, base: np.ndarray, out: np.ndarray) -> np.ndarray:
    """This rank's block at ``step`` (the stand-in for the simulation's computation)."""
    return np.add(base, np.float32(step), out=out)


# --- MPI and timing helpers --------------------------------------------------------------


def timed(comm: MPI.Comm, phase: Callable[[], object]) -> float:
    """Wall time of a collective phase: from every rank ready to every rank done."""
    comm.Barrier()
    start = time.perf_counter()
    phase()
    comm.Barrier()
    return time.perf_counter() - start


def idle_barrier(comm: MPI.Comm) -> None:
    """A barrier that sleeps rather than spins: ranks waiting for rank 0's reads must not
    take CPU from it on an oversubscribed node."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.002)


def on_root(comm: MPI.Comm, action: Callable[[], Any]) -> Any:
    """``action()`` on rank 0, its result on every rank; an error there raises everywhere."""
    result: Any = None
    if comm.rank == 0:
        try:
            result = action()
        except Exception as error:  # shipped to the other ranks
            result = error
    result = comm.bcast(result, root=0)
    if isinstance(result, Exception):
        raise result
    return result


class Profiler:
    """cProfile on rank 0 around the ESDM phases only, when --profile is given."""

    def __init__(self, enabled: bool) -> None:
        self.profile = cProfile.Profile() if enabled else None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self.profile is None:
            yield
            return
        self.profile.enable()
        try:
            yield
        finally:
            self.profile.disable()

    def report(self, path: Path, top: int = 25) -> str:
        assert self.profile is not None
        self.profile.dump_stats(path)
        text = io.StringIO()
        pstats.Stats(self.profile, stream=text).sort_stats("tottime").print_stats(top)
        return text.getvalue()


class PageCache:
    """Drops the page cache between phases (rank 0; one node) when the kernel lets us."""

    def __init__(self, enabled: bool) -> None:
        self.cold = enabled and self.drop(force=True)

    def drop(self, force: bool = False) -> bool:
        if not (force or self.cold):
            return False
        os.sync()
        try:
            with open("/proc/sys/vm/drop_caches", "w") as knob:
                knob.write("1\n")
        except OSError:
            return False
        return True

    @property
    def state(self) -> str:
        return "cold cache (dropped before each open)" if self.cold else "warm cache"


class Progress:
    """Step counter on rank 0's stderr, at most one line a second."""

    def __init__(self, enabled: bool, label: str, steps: int, step_bytes: int) -> None:
        self.enabled, self.label, self.steps, self.step_bytes = enabled, label, steps, step_bytes
        self.last = -math.inf

    def update(self, done: int, seconds: float) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 1.0 and done < self.steps):
            return
        self.last = now
        rate = done * self.step_bytes / MiB / seconds if seconds else 0.0
        print(f"  {self.label}: step {done}/{self.steps}, {rate:7.1f} MiB/s", file=sys.stderr)
        sys.stderr.flush()


# --- the systems -------------------------------------------------------------------------


class Reader(ABC):
    @abstractmethod
    def read(self, region: Region) -> np.ndarray: ...

    def close(self) -> None:  # noqa: B027 - most readers hold nothing
        """Release files."""


class System(ABC):
    """One way of writing W1 and reading W2; the driver calls every system alike."""

    name: str

    def __init__(self, workload: Workload, directory: Path, comm: MPI.Comm) -> None:
        self.workload = workload
        self.directory = directory
        self.comm = comm
        self.rank = comm.rank
        # per-step phase times on this rank, for systems that split a step
        self.phases: dict[str, list[float]] = {}

    @abstractmethod
    def create(self) -> None:
        """Create the empty output (collective; timed as part of the run)."""

    @abstractmethod
    def write_step(self, step: int, data: np.ndarray) -> None:
        """Write this rank's block of ``step`` and make it durable (collective)."""

    @abstractmethod
    def close(self) -> None:
        """Finish the output (collective)."""

    @abstractmethod
    def reader(self) -> Reader:
        """A reader of the finished output, for one process."""


def _pwrite_all(fd: int, data: np.ndarray, offset: int) -> None:
    view = memoryview(data).cast("B")
    done = 0
    while done < view.nbytes:
        done += os.pwrite(fd, view[done:], offset + done)


class RawPosix(System):
    """One file per rank; step t of the rank's block at byte t * block_bytes."""

    name = "posix"

    def path(self, rank: int) -> Path:
        return self.directory / f"rank{rank:05d}.raw"

    def create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path(self.rank), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)  # the file's name is durable too, as ESDM's logs are
        finally:
            os.close(dfd)

    def write_step(self, step: int, data: np.ndarray) -> None:
        _pwrite_all(self.fd, data, step * data.nbytes)
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)

    def reader(self) -> Reader:
        return RawReader(self)


class RawReader(Reader):
    """Reads a region from offsets computed in the per-rank files, as an expert would.

    The rows a region takes from one (step, level) of a rank's block are read
    with one ``pread`` when the gaps between them are small (the kernel reads
    whole pages anyway), else row by row.
    """

    MAX_GAP = 64 * 1024  # bytes read over rather than split into two reads (HDF5's sieve)

    def __init__(self, system: RawPosix) -> None:
        self.system = system
        self.fds: dict[int, int] = {}

    def read(self, region: Region) -> np.ndarray:
        workload, itemsize = self.system.workload, DTYPE.itemsize
        out = np.empty(region.count, DTYPE)
        t0, z0, y0, x0 = region.offset
        lo = np.array(region.offset[1:])
        hi = lo + np.array(region.count[1:])
        for rank in range(workload.nprocs):
            start = np.maximum(lo, workload.offsets[rank])
            stop = np.minimum(hi, workload.offsets[rank] + workload.counts[rank])
            if np.any(start >= stop):
                continue
            fd = self._fd(rank)
            (bz, by, bx), (_, cy, cx) = workload.offsets[rank].tolist(), workload.counts[rank]
            (sz, sy, sx), (ez, ey, ex) = start.tolist(), stop.tolist()
            ny, nx = ey - sy, ex - sx
            block_bytes = workload.block_bytes(rank)
            together = (cx - nx) * itemsize <= self.MAX_GAP
            scratch = np.empty((ny, cx), DTYPE)
            span = scratch.reshape(-1)[: (ny - 1) * cx + nx]  # first to last wanted element
            for t in range(t0, t0 + region.count[0]):
                for z in range(sz, ez):
                    first = t * block_bytes + (((z - bz) * cy + sy - by) * cx + sx - bx) * itemsize
                    target = out[t - t0, z - z0, sy - y0 : ey - y0, sx - x0 : ex - x0]
                    if together:
                        self._pread(fd, span, first)
                        target[...] = scratch[:, :nx]
                    else:
                        for row in range(ny):
                            self._pread(fd, target[row], first + row * cx * itemsize)
        return out

    def _fd(self, rank: int) -> int:
        fd = self.fds.get(rank)
        if fd is None:
            fd = self.fds[rank] = os.open(self.system.path(rank), os.O_RDONLY)
        return fd

    def _pread(self, fd: int, into: np.ndarray, offset: int) -> None:
        if os.preadv(fd, [into], offset) != into.nbytes:
            raise OSError(f"{self.system.directory}: short read at byte {offset}")

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def esdm_config(directory: Path, block_size: int | None = None) -> dict[str, Any]:
    """The site configuration: one posix backend under ``directory``."""
    config: dict[str, Any] = {
        "backends": [{"id": "disk", "type": "posix", "target": str(directory)}]
    }
    if block_size is not None:
        config["block_size"] = block_size
    return config


def esdm_layout(workload: Workload, block_size: int | None) -> str:
    """How ESDM will cut each rank's write, from the same site configuration."""
    site = load_config(esdm_config(Path("/"), block_size))
    limit = min(b.limits.max_fragment_bytes for b in site.backends)
    counts = [int(c) for c in workload.counts[0]]
    pieces = sum(1 for _ in split((0, 0, 0, 0), (1, *counts), DTYPE.itemsize, limit))
    return (
        f"{pieces} fragment(s) per rank per step (block {workload.block_bytes(0) / MiB:.1f} MiB, "
        f"max_fragment_bytes {limit / MiB:.0f} MiB), checksum blocks of "
        f"{site.block_size / KiB:.0f} KiB"
    )


class Esdm(System):
    """One 4-D dataset (time, z, y, x); each step one write per rank and one commit."""

    name = "esdm"
    uri = "esdm://w1"

    def __init__(self, *args: Any, profiler: Profiler, block_size: int | None) -> None:
        super().__init__(*args)
        self.profiler = profiler
        self.config = esdm_config(self.directory, block_size)
        self.phases = {"write": [], "sync": [], "commit": []}

    def create(self) -> None:
        with self.profiler():
            self.container = esdm_hpc.open(self.uri, "w", comm=self.comm, config=self.config)
            self.dataset = self.container.create_dataset(
                "field", shape=self.workload.full_shape, dtype=DTYPE, dims=("time", "z", "y", "x")
            )

    def write_step(self, step: int, data: np.ndarray) -> None:
        clock = time.perf_counter
        with self.profiler():
            start = clock()
            self.dataset[self.workload.block(self.rank, step).index] = data
            written = clock()
            # The data flush, timed on its own: commit() would do it first thing, and
            # then finds nothing left to sync. Private API, for measurement only.
            self.container.open_epoch.writer.sync()
            self.comm.Barrier()  # every rank's data is durable: the rest is the commit
            synced = clock()
            self.container.commit()
            end = clock()
        self.phases["write"].append(written - start)
        self.phases["sync"].append(synced - written)
        self.phases["commit"].append(end - synced)

    def close(self) -> None:
        with self.profiler():
            self.container.close()

    def reader(self) -> Reader:
        return EsdmReader(esdm_hpc.open(self.uri, "r", config=self.config))


class EsdmReader(Reader):
    def __init__(self, container: esdm_hpc.Container) -> None:
        self.container = container

    def read(self, region: Region) -> np.ndarray:
        return self.container["field"][region.index]

    def close(self) -> None:
        self.container.close()


class H5pyMpio(System):
    """One shared HDF5 file through the MPI-IO driver (contiguous layout, no fill)."""

    def __init__(self, *args: Any, collective: bool) -> None:
        super().__init__(*args)
        self.collective = collective
        self.name = "h5py-collective" if collective else "h5py-independent"
        self.path = self.directory / "field.h5"

    def create(self) -> None:
        if self.rank == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.comm.Barrier()
        self.file = h5py.File(self.path, "w", driver="mpio", comm=self.comm)
        # Parallel HDF5 allocates the whole dataset at creation; "never" states what
        # the default already does here (fill only a user-defined fill value).
        self.dataset = self.file.create_dataset(
            "field", shape=self.workload.full_shape, dtype=DTYPE, fill_time="never"
        )

    def write_step(self, step: int, data: np.ndarray) -> None:
        index = self.workload.block(self.rank, step).index
        if self.collective:
            with self.dataset.collective:
                self.dataset[index] = data
        else:
            self.dataset[index] = data
        self.file.flush()  # H5Fflush: metadata out, then MPI_File_sync

    def close(self) -> None:
        self.file.close()

    def reader(self) -> Reader:
        return H5pyReader(h5py.File(self.path, "r"))  # what an analysis tool opens with


class H5pyReader(Reader):
    def __init__(self, file: Any) -> None:
        self.file = file

    def read(self, region: Region) -> np.ndarray:
        return self.file["field"][region.index]

    def close(self) -> None:
        self.file.close()


# --- runs and results ---------------------------------------------------------------------


@dataclass
class WriteRun:
    open_s: float
    steps_s: list[float]
    close_s: float
    phases: dict[str, list[float]]  # rank 0's per-step split, where the system has one

    @property
    def seconds(self) -> float:
        return self.open_s + sum(self.steps_s) + self.close_s


@dataclass
class ReadRun:
    open_s: float
    read_s: float


@dataclass
class Results:
    write: dict[str, list[WriteRun]] = field(default_factory=dict)
    read: dict[str, dict[str, list[ReadRun]]] = field(default_factory=dict)

    def best_write(self, system: str) -> WriteRun:
        return min(self.write[system], key=lambda run: run.seconds)

    def best_read(self, system: str, region: str) -> ReadRun:
        return min(self.read[system][region], key=lambda run: run.read_s)


def write_run(system: System, base: np.ndarray, buffer: np.ndarray, progress: Progress) -> WriteRun:
    comm = system.comm
    open_s = timed(comm, system.create)
    steps_s = []
    for step in range(system.workload.steps):
        data = fill(step, base, buffer)
        steps_s.append(timed(comm, lambda step=step, data=data: system.write_step(step, data)))
        progress.update(step + 1, open_s + sum(steps_s))
    close_s = timed(comm, system.close)
    return WriteRun(open_s, steps_s, close_s, {k: list(v) for k, v in system.phases.items()})


def read_runs(system: System, regions: list[Region], cache: PageCache) -> dict[str, ReadRun]:
    """Each region read by a freshly opened reader (rank 0 only), checked for content."""
    runs = {}
    for region in regions:
        cache.drop()
        start = time.perf_counter()
        reader = system.reader()
        opened = time.perf_counter()
        data = reader.read(region)
        done = time.perf_counter()
        reader.close()
        expected = system.workload.expected(region)
        if data.shape != expected.shape or not np.array_equal(data, expected):
            raise AssertionError(f"{system.name}: {region.name} {region} read wrong data")
        runs[region.name] = ReadRun(opened - start, done - opened)
    return runs


@dataclass
class CommitBench:
    ranks: int
    fragments_per_rank: int
    sync_s: list[float]
    commit_s: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.commit_s)


def commit_bench(comm: MPI.Comm, directory: Path, epochs: int, profiler: Profiler) -> CommitBench:
    """P ranks x 100 fragments (4 KiB writes), one commit, repeated over ``epochs``.

    Every other row: consecutive rows would combine into one fragment (writer.py)."""
    rows = 2 * comm.size * FRAGMENTS_PER_RANK
    row = np.zeros(1024, DTYPE)
    sync_s, commit_s = [], []
    config = esdm_config(directory)
    with esdm_hpc.open("esdm://commits", "w", comm=comm, config=config) as container:
        dataset = container.create_dataset("small", shape=(rows, row.size), dtype=DTYPE)
        container.commit()  # the dataset itself: not part of the measurement
        for epoch in range(epochs):
            with profiler():
                for i in range(FRAGMENTS_PER_RANK):
                    dataset[2 * (comm.rank * FRAGMENTS_PER_RANK + i)] = row + epoch
                sync_s.append(timed(comm, container.open_epoch.writer.sync))
                commit_s.append(timed(comm, container.commit))
    return CommitBench(comm.size, FRAGMENTS_PER_RANK, sync_s, commit_s)


# --- the driver ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="W1/W2: write and read a 4-D field through ESDM, raw POSIX and h5py mpio.",
    )
    parser.add_argument("--total-gib", type=float, default=1.0, help="data written per system")
    parser.add_argument("--steps", type=int, help="time steps (default: 64 MiB per step)")
    parser.add_argument("--shape", help="Z,Y,X of one step (default: Z,512,512 to fit)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument("--repeat", type=int, default=3, help="runs per system; best counts")
    parser.add_argument("--commit-epochs", type=int, default=10, help="commits measured")
    parser.add_argument("--block-size", type=int, help="ESDM checksum block size in bytes")
    parser.add_argument("--dir", type=Path, help="parent of the fresh data directory")
    parser.add_argument("--keep", action="store_true", help="keep the data written")
    parser.add_argument("--no-drop-caches", action="store_true", help="read with a warm cache")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--profile", type=Path, help="cProfile ESDM on rank 0 into this file")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.shape = args.shape or "8,64,64"
        args.steps = args.steps or 4
        args.repeat, args.commit_epochs, args.no_drop_caches = 1, 2, True
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.repeat < 1 or args.commit_epochs < 1:
        parser.error("--repeat and --commit-epochs must be positive")
    return args


def workload_shape(args: argparse.Namespace) -> tuple[tuple[int, int, int], int]:
    """(Z, Y, X) and T from the options: at least --total-gib in all unless both are given."""
    total = args.total_gib * GiB
    if args.shape:
        shape = tuple(int(n) for n in args.shape.split(","))
        if len(shape) != 3 or min(shape) < 1:
            raise SystemExit(f"--shape wants three positive extents Z,Y,X, got {args.shape!r}")
        step_bytes = math.prod(shape) * DTYPE.itemsize
        return shape, args.steps or max(1, math.ceil(total / step_bytes))  # type: ignore[return-value]
    plane = 512 * 512 * DTYPE.itemsize
    steps = args.steps or max(1, math.ceil(total / (64 * MiB)))
    return (max(1, math.ceil(total / steps / plane)), 512, 512), steps


def make_systems(
    names: list[str], workload: Workload, directory: Path, comm: MPI.Comm, **esdm: Any
) -> list[System]:
    systems: list[System] = []
    for name in names:
        where = directory / name
        if name == "posix":
            systems.append(RawPosix(workload, where, comm))
        elif name == "esdm":
            systems.append(Esdm(workload, where, comm, **esdm))
        else:
            systems.append(H5pyMpio(workload, where, comm, collective=name == "h5py-collective"))
    return systems


def machine() -> dict[str, Any]:
    info = {
        "node": platform.node(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "mpi": MPI.Get_library_version().splitlines()[0].strip("\x00 "),
        "esdm_hpc": esdm_hpc.__version__,
    }
    if h5py is not None:
        info |= {"h5py": h5py.version.version, "hdf5": h5py.version.hdf5_version}
    return info


def record_header(benchmark: str, comm: MPI.Comm, workload: Workload) -> dict[str, Any]:
    """What a W1 benchmark's JSON record starts with: the run, the machine, the workload."""
    return {
        "benchmark": benchmark,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "nprocs": comm.size,
        "shape": list(workload.shape),
        "steps": workload.steps,
        "dtype": DTYPE.str,
        "bytes_per_system": workload.total_bytes,
    }


def run(args: argparse.Namespace, comm: MPI.Comm) -> int:
    root = comm.rank == 0
    shape, steps = workload_shape(args)
    workload = Workload.create(shape, steps, comm.size)
    names = list(args.systems)
    if h5py is None or not h5py.get_config().mpi:
        skipped = [n for n in names if n.startswith("h5py")]
        names = [n for n in names if not n.startswith("h5py")]
        if root and skipped:
            print(f"note: h5py with MPI is not available; skipping {', '.join(skipped)}")

    def make_directory() -> Path:
        parent = args.dir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="esdm-bench-", dir=parent))

    directory: Path = on_root(comm, make_directory)
    cache = PageCache(enabled=root and not args.no_drop_caches)
    cold = comm.bcast(cache.cold, root=0)
    profiler = Profiler(enabled=root and args.profile is not None)
    if root:
        print(
            f"W1/W2 on {comm.size} rank(s), grid blocks {workload.counts.tolist()}\n"
            f"  field {shape} float32 x {steps} steps = {workload.total_bytes / GiB:.2f} GiB "
            f"per system ({workload.step_bytes / MiB:.1f} MiB per step), "
            f"best of {args.repeat}; data in {directory}; reads: {cache.state}"
        )
        if "esdm" in names:
            print(f"  esdm: {esdm_layout(workload, args.block_size)}")
        sys.stdout.flush()

    rank_block = workload.block(comm.rank, 0)
    base = workload.expected(rank_block)[0]
    buffer = np.empty_like(base)
    results = Results()
    regions = [workload.column, workload.slice2d]
    try:
        for rep in range(args.repeat):
            rep_dir = directory / f"run{rep}"
            order = names[rep % len(names) :] + names[: rep % len(names)]  # no favoured slot
            systems = make_systems(
                order, workload, rep_dir, comm, profiler=profiler, block_size=args.block_size
            )
            for system in systems:
                if root:
                    cache.drop()  # every system starts with the same (empty) page cache
                label = f"{system.name} run {rep + 1}/{args.repeat}"
                progress = Progress(root, label, steps, workload.step_bytes)
                measured = write_run(system, base, buffer, progress)
                results.write.setdefault(system.name, []).append(measured)
            if root:
                for system in systems:
                    for region, read in read_runs(system, regions, cache).items():
                        results.read.setdefault(system.name, {}).setdefault(region, []).append(read)
                if not args.keep:
                    shutil.rmtree(rep_dir)
            idle_barrier(comm)
        commits = commit_bench(comm, directory / "commits", args.commit_epochs, profiler)
    finally:
        if root and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)

    if root:
        summary = report(results, commits, workload, regions, names, cold)
        if args.profile is not None:
            print(f"\nprofile of rank 0, ESDM phases only (full stats in {args.profile}):")
            print(profiler.report(args.profile))
        if args.json is not None:
            record = {
                **record_header("write_read", comm, workload),
                "repeat": args.repeat,
                "esdm_block_size": args.block_size,
                "read_cache": "cold" if cold else "warm",
                "regions": {r.name: {"region": str(r), "bytes": r.nbytes} for r in regions},
                "write": {k: [asdict(r) for r in v] for k, v in results.write.items()},
                "read": {
                    k: {region: [asdict(r) for r in v] for region, v in by_region.items()}
                    for k, by_region in results.read.items()
                },
                "commit": asdict(commits),
                "summary": summary,
            }
            args.json.write_text(json.dumps(record, indent=2) + "\n")
            chart(summary, names, commits, workload, cold, chart_path(args.json))
    return 0


# --- the report ------------------------------------------------------------------------------


def _mib_s(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds if seconds > 0 else math.inf


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(
    results: Results,
    commits: CommitBench,
    workload: Workload,
    regions: list[Region],
    names: list[str],
    cold: bool,
) -> dict[str, Any]:
    """Print the tables and the ratio lines; return the numbers they show."""
    summary: dict[str, Any] = {"write_mib_s": {}, "read": {}, "ratios": {}, "targets": {}}
    total = workload.total_bytes
    print(f"\nW1 write ({workload.nprocs} ranks, open + {workload.steps} durable steps + close)")
    print(f"{'system':<18} {'MiB/s':>9} {'seconds':>8} {'step median':>12} {'open+close':>11}")
    for name in names:
        best = results.best_write(name)
        rate = summary["write_mib_s"][name] = _mib_s(total, best.seconds)
        print(
            f"{name:<18} {rate:>9.1f} {best.seconds:>8.2f} "
            f"{statistics.median(best.steps_s) * 1e3:>9.1f} ms "
            f"{(best.open_s + best.close_s) * 1e3:>8.1f} ms"
        )
    if "esdm" in names:
        phases = results.best_write("esdm").phases
        split = {k: statistics.median(v) for k, v in phases.items()}
        summary["esdm_step_ms"] = {k: v * 1e3 for k, v in split.items()}
        summary["commit_per_step_ms"] = {
            "median": split["commit"] * 1e3,
            "max": max(phases["commit"]) * 1e3,
        }
        print(
            f"esdm step on rank 0, median: write call {split['write'] * 1e3:.1f} ms, "
            f"data sync {split['sync'] * 1e3:.1f} ms, commit {split['commit'] * 1e3:.1f} ms "
            f"(max {max(phases['commit']) * 1e3:.1f} ms)"
        )

    print(f"\nW2 read (rank 0 alone, {'cold' if cold else 'warm'} cache, best of runs)")
    for region in regions:
        print(f"  {region.name}: {region} = {region.nbytes / MiB:.2f} MiB")
    header = "".join(f"{r.name + ' ms':>14} {'MiB/s':>9}" for r in regions)
    print(f"{'system':<18}{header} {'open ms':>9}")
    for name in names:
        row = f"{name:<18}"
        for region in regions:
            best = results.best_read(name, region.name)
            rate = _mib_s(region.nbytes, best.read_s)
            summary["read"].setdefault(name, {})[region.name] = {
                "read_ms": best.read_s * 1e3,
                "open_ms": best.open_s * 1e3,
                "mib_s": rate,
            }
            row += f"{best.read_s * 1e3:>14.1f} {rate:>9.1f}"
        opens = [run.open_s for by_region in results.read[name].values() for run in by_region]
        print(f"{row} {min(opens) * 1e3:>9.1f}")

    print()
    rates = summary["write_mib_s"]
    for peer, target in (("posix", TARGET_VS_POSIX), ("h5py-collective", TARGET_VS_H5PY)):
        label = "raw-posix" if peer == "posix" else peer
        if "esdm" not in rates or peer not in rates:
            print(f"ratio ESDM/{label} write: n/a ({peer if 'esdm' in rates else 'esdm'} not run)")
            continue
        ratio = summary["ratios"][f"esdm/{peer} write"] = rates["esdm"] / rates[peer]
        met = summary["targets"][f"esdm/{peer} write >= {target}x"] = ratio >= target
        print(f"ratio ESDM/{label} write: {ratio:.2f}x (target >= {target}x: {_verdict(met)})")
    if "esdm" in rates and "posix" in rates:
        for region in regions:
            esdm = summary["read"]["esdm"][region.name]["mib_s"]
            ratio = esdm / summary["read"]["posix"][region.name]["mib_s"]
            summary["ratios"][f"esdm/posix read {region.name}"] = ratio
            print(f"ratio ESDM/raw-posix read {region.name}: {ratio:.2f}x")
    if "commit_per_step_ms" in summary:
        per_step = summary["commit_per_step_ms"]
        print(
            f"commit overhead beyond data flush, W1 ({workload.nprocs} ranks x 1 fragment "
            f"per step): median {per_step['median']:.1f} ms, max {per_step['max']:.1f} ms"
        )
    median_ms = commits.median_s * 1e3
    summary["commit_small_ms"] = {
        "median": median_ms,
        "best": min(commits.commit_s) * 1e3,
        "max": max(commits.commit_s) * 1e3,
        "data_sync_median": statistics.median(commits.sync_s) * 1e3,
    }
    applies = commits.ranks == TARGET_COMMIT_RANKS
    met = median_ms <= TARGET_COMMIT_S * 1e3
    if applies:
        summary["targets"][f"commit 4x100 <= {TARGET_COMMIT_S * 1e3:.0f} ms"] = met
    verdict = _verdict(met) if applies else f"{_verdict(met)}; the target is for 4 ranks"
    print(
        f"commit overhead beyond data flush, {commits.ranks} ranks x {commits.fragments_per_rank} "
        f"fragments: median {median_ms:.1f} ms, best {min(commits.commit_s) * 1e3:.1f} ms, "
        f"max {max(commits.commit_s) * 1e3:.1f} ms over {len(commits.commit_s)} commits "
        f"(target <= {TARGET_COMMIT_S * 1e3:.0f} ms: {verdict})"
    )
    return summary


def chart(
    summary: dict[str, Any],
    names: list[str],
    commits: CommitBench,
    workload: Workload,
    cold: bool,
    path: Path,
) -> None:
    """The figures ``report`` printed: ESDM first, so that the ratios are ESDM's."""
    systems = sorted(names, key=lambda name: name != "esdm")
    regions = list(summary["read"][systems[0]])
    small = summary["commit_small_ms"]
    panels = [
        Panel(
            f"W1 write: open + {workload.steps} durable steps + close, best of runs",
            "MiB/s",
            ["write"],
            {name: [summary["write_mib_s"][name]] for name in systems},
        ),
        Panel(
            f"W2 read by rank 0 alone, {'cold' if cold else 'warm'} cache, best of runs",
            "MiB/s",
            [f"{region} read" for region in regions],
            {name: [summary["read"][name][r]["mib_s"] for r in regions] for name in systems},
        ),
        Panel(
            f"ESDM commit overhead beyond the data flush, {commits.ranks} ranks x "
            f"{commits.fragments_per_rank} fragments, {len(commits.commit_s)} commits",
            "ms",
            ["median", "best", "max"],
            {"esdm": [small["median"], small["best"], small["max"]]},
        ),
    ]
    write_chart(
        path, f"W1/W2 on {workload.nprocs} rank(s): ESDM, raw POSIX and parallel HDF5", panels
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    comm = MPI.COMM_WORLD
    try:
        return run(args, comm)
    except Exception:
        # One rank failing must not leave the others waiting in a collective forever.
        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
