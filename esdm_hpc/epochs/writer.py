"""One rank's writes in the open epoch: data appended to logs, fragment records kept.

Nothing written here is visible to anyone (the writer included) until a
commit publishes the records in a manifest. A write that fails (a full disk)
fails the epoch: `sync`, the commit's first step, raises it again, so the
commit is refused on every rank rather than publishing the epoch without it.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from esdm_hpc import codecs
from esdm_hpc.backends import Backend, BackendError, LogWriter
from esdm_hpc.backends.base import byte_view
from esdm_hpc.config import BackendConfig, SiteConfig
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import EpochWriteError
from esdm_hpc.faults import crash_point
from esdm_hpc.fragment import Fragment, Replica, encode_digests, encode_ends, stored_checksums
from esdm_hpc.kernels import checksum
from esdm_hpc.measured import Timing
from esdm_hpc.namespace import DatasetMeta, renamed
from esdm_hpc.placement import CostModel, choose_backends, has_room, split
from esdm_hpc.serialisation import for_dataset
from esdm_hpc.strings import is_string

# A write smaller than COMBINE_BYTES that continues the one before it (the next
# rows of the same slab of the same dataset) joins it in one fragment of up to
# RUN_BYTES: a stream of small writes then costs a copy each, not a fragment
# record, a log append and a checksum each (and a read one fragment, not
# thousands). The run is stored when a write does not continue it and at the
# latest by `sync`, the commit's first step.
COMBINE_BYTES = 64 << 10
RUN_BYTES = 4 << 20


@dataclass(slots=True)
class _Run:
    """Small writes of consecutive rows of one slab, not stored yet."""

    meta: DatasetMeta
    offset: tuple[int, ...]
    rows: int  # along axis 0; the other axes are the first write's
    shape: tuple[int, ...]  # of one write's rows past axis 0
    data: bytearray

    def continued_by(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> bool:
        return (
            meta.path == self.meta.path
            and meta.dtype == self.meta.dtype  # not a new dataset of the same name
            and offset[0] == self.offset[0] + self.rows
            and offset[1:] == self.offset[1:]
            and data.shape[1:] == self.shape
        )

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=self.meta.dtype).reshape(self.rows, *self.shape)


class EpochWriter:
    def __init__(
        self,
        store: ContainerStore,
        config: SiteConfig,
        *,
        rank: int,
        epoch: int,
        session: str,
    ):
        self.store = store
        self.config = config
        self.rank = rank
        self.epoch = epoch
        self.session = session
        self._fragments: list[Fragment] = []
        self._logs: dict[str, LogWriter] = {}
        self._max_fragment_bytes = min(b.limits.max_fragment_bytes for b in config.backends)
        self._run: _Run | None = None
        self._lock = threading.Lock()  # synchronous writes and write_async's thread
        self._failed: BaseException | None = None  # the first failed write: the epoch is lost
        self._full: set[str] = set()  # burst buffers a write found full in this epoch
        self._timings: dict[str, Timing] = {}  # per backend: this epoch's appends and syncs
        self._model = CostModel(config.weights)

    @property
    def fragments(self) -> list[Fragment]:
        """The records of everything written so far in this epoch."""
        with self._lock:
            self._settle_run()
            return self._fragments

    @property
    def pending(self) -> bool:
        """Whether anything was written (or failed to be) in this epoch."""
        with self._lock:
            return bool(self._fragments) or self._run is not None or self._failed is not None

    def _settle_run(self) -> None:
        """Store the run of small writes; if that fails, remember it (the commit
        raises it) rather than raise: the callers are steps every rank must get
        through alike (a shrink, a rename, a copy, the commit's gather)."""
        try:
            self._store_run()
        except Exception as error:
            self._remember(error)

    def _remember(self, error: BaseException) -> None:
        """Keep the first error of a write: the epoch is lost (the caller holds the lock)."""
        if self._failed is None:
            self._failed = error

    def write(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        """Store ``data`` (already of the dataset's dtype and shape) at ``offset``."""
        with self._lock:
            try:
                self._write_locked(meta, offset, data)
            except BaseException as error:
                self._remember(error)
                raise

    def _write_locked(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        run = self._run
        if run is not None and self._joins(run, meta, offset, data):
            run.data += byte_view(np.ascontiguousarray(data))
            run.rows += data.shape[0]
            return
        self._store_run()
        if self._may_start_run(meta, data):
            # a copy: the caller's buffer (an application's, through the VOL)
            # is only lent for the call
            run_data = bytearray(byte_view(np.ascontiguousarray(data)))
            self._run = _Run(meta, offset, data.shape[0], data.shape[1:], run_data)
            return
        self._write_cut(meta, offset, data)

    def _joins(
        self, run: _Run, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray
    ) -> bool:
        fits = len(run.data) + data.nbytes <= min(RUN_BYTES, self._max_fragment_bytes)
        return data.nbytes < COMBINE_BYTES and fits and run.continued_by(meta, offset, data)

    def _may_start_run(self, meta: DatasetMeta, data: np.ndarray) -> bool:
        plain = meta.hints.get("serialisation", "C") == "C" and not meta.hints.get("statistics")
        plain = plain and not is_string(meta.dtype)
        return plain and data.ndim > 0 and 0 < data.nbytes < COMBINE_BYTES

    def _store_run(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            self._write_cut(run.meta, run.offset, run.array())

    def _write_cut(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        """Store ``data`` at ``offset`` in fragments of at most the configured size."""
        limit = self._max_fragment_bytes
        if 0 < data.nbytes <= limit:  # one piece, the common case: nothing to cut
            self._write_piece(meta, offset, data)
            return
        for piece_offset, piece_count in split(offset, data.shape, data.itemsize, limit):
            local = tuple(
                slice(po - o, po - o + c)
                for po, o, c in zip(piece_offset, offset, piece_count, strict=True)
            )
            self._write_piece(meta, piece_offset, data[local])

    def _write_piece(self, meta: DatasetMeta, offset: tuple[int, ...], piece: np.ndarray) -> None:
        serialisation = for_dataset(meta.dtype, meta.hints, piece.ndim)
        # as bytes: numpy exports no buffer of compounds with overlapping or
        # out-of-order fields (HDF5 allows both), and bytes is what is stored
        payload = np.ascontiguousarray(serialisation.encode(piece)).reshape(-1).view(np.uint8)
        pipeline = codecs.for_dataset(meta.hints)
        if pipeline is None:
            block_size, stored = self.config.block_size, payload
            digests, ends = checksum.block_checksums(payload, block_size), ""
        else:  # each block coded on its own, its checksum of what is stored (§4.7)
            block_size = pipeline.block_size(self.config.block_size)
            stored, bounds = pipeline.encode(payload, block_size)
            digests, ends = stored_checksums(stored, bounds), encode_ends(bounds)
        replicas = self._place(stored)
        seq = len(self._fragments)
        self._fragments.append(
            Fragment(
                id=self._fragment_id(seq),
                dataset=meta.path,
                epoch=self.epoch,
                rank=self.rank,
                seq=seq,
                offset=tuple(map(int, offset)),
                count=tuple(map(int, piece.shape)),
                serialisation=serialisation.name,
                codec=codecs.RAW if pipeline is None else pipeline.name,
                nbytes=payload.nbytes,
                block_size=block_size,
                checksums=encode_digests(digests),
                replicas=replicas,
                stored_ends=ends,
                **(_extremes(piece) if meta.hints.get("statistics") else _NO_EXTREMES),
            )
        )

    def _place(self, payload: np.ndarray) -> tuple[Replica, ...]:
        """Append ``payload`` where placement puts it. A burst buffer that fills up
        under the write (its free space was taken between the look and the write)
        is left for the rest of the epoch, and the write goes to the next tier."""
        while True:
            chosen = choose_backends(self.config, payload.nbytes, self._has_room(payload.nbytes))
            try:
                return tuple([self._append(b.id, payload) for b in chosen])
            except BackendError as error:
                if chosen[0].accessibility != "node-local" or not _is_full(error):
                    raise
                self._full.add(chosen[0].id)

    def _has_room(self, nbytes: int) -> Callable[[BackendConfig], bool]:
        def room(backend: BackendConfig) -> bool:
            local = backend.accessibility == "node-local"
            if local and backend.id in self._full:
                return False
            return has_room(self.store.backends[backend.id], nbytes)

        return room

    def replicate(
        self,
        fragment: Fragment,
        payload: np.ndarray,
        backend_ids: Iterable[str],
        keep: Iterable[Replica],
    ) -> None:
        """Give the committed ``fragment`` (whose bytes are ``payload``, verified) new
        replicas on ``backend_ids``: the record this epoch commits replaces the
        fragment's, with the replicas ``keep`` and the new ones (a drain keeps none
        of the burst buffer's, a repair all but the damaged one)."""
        with self._lock:
            new = [self._append(backend_id, payload) for backend_id in backend_ids]
            record = replace(fragment, replicas=(*keep, *new), replicated=self.epoch)
            self._fragments.append(record)

    def share(self, meta: DatasetMeta, fragments: Iterable[Fragment]) -> None:
        """Record ``fragments`` (another dataset's, oldest first) as written to the
        dataset ``meta`` in this epoch: their bytes are shared, not copied (H5Ocopy)."""
        with self._lock:
            self._settle_run()
        for fragment in fragments:
            seq = len(self._fragments)
            self._fragments.append(
                replace(
                    fragment,
                    id=self._fragment_id(seq),
                    dataset=meta.path,
                    epoch=self.epoch,
                    rank=self.rank,
                    seq=seq,
                    # a new fragment of this epoch, even where the one it shares its
                    # bytes with was given its replicas by a later record (a drain)
                    replicated=None,
                )
            )

    def rename(self, old: str, new: str) -> None:
        """Follow a change of identities (`Namespace.rename`) in what this epoch wrote."""
        with self._lock:
            self._settle_run()
            self._fragments = [
                replace(f, dataset=renamed(f.dataset, old, new)) for f in self._fragments
            ]

    def _fragment_id(self, seq: int) -> str:
        return f"e{self.epoch}-{self.session}-r{self.rank}-{seq}"

    def _append(self, backend_id: str, payload: np.ndarray) -> Replica:
        backend: Backend = self.store.backends[backend_id]
        log = self._logs.get(backend_id)
        if log is None:
            log = backend.create_log(self.store.log_name(self.epoch, self.rank, self.session))
            self._logs[backend_id] = log
        timing = self._timing(backend_id)
        timing.predicted_s += self._model.write_seconds(backend.config, payload.nbytes)
        began = time.perf_counter()
        start = log.append(payload)
        timing.seconds += time.perf_counter() - began
        timing.appends += 1
        timing.bytes += payload.nbytes
        crash_point("write.appended")
        return Replica(backend_id, log.name, start, payload.nbytes, backend.node)

    def sync(self) -> None:
        """Make every byte written so far durable: the first step of a commit.

        Raises the error of a write that failed in this epoch, if one did."""
        with self._lock:
            if self._failed is not None:
                raise EpochWriteError(
                    f"esdm://{self.store.name} epoch {self.epoch}: a write of rank {self.rank} "
                    f"failed ({self._failed}); the epoch is discarded"
                ) from self._failed
            self._store_run()  # a failure fails the commit: this epoch is discarded
            # the logs so far: a background drain's copy may add one meanwhile
            logs = list(self._logs.items())
        for backend_id, log in logs:
            began = time.perf_counter()
            log.sync()
            self._timing(backend_id).seconds += time.perf_counter() - began
        crash_point("write.synced")

    def _timing(self, backend_id: str) -> Timing:
        timing = self._timings.get(backend_id)
        if timing is None:
            timing = self._timings[backend_id] = Timing()
        return timing

    @property
    def timings(self) -> dict[str, Timing]:
        """Per backend, this epoch's appends and syncs so far, and what placement
        predicted of them (`measured`)."""
        return self._timings

    def close(self) -> None:
        """Release the logs of a committed epoch (they are durable already)."""
        for log in self._logs.values():
            log.close()
        self._logs.clear()

    def discard(self) -> None:
        """Give up the open epoch: its logs are released unsynced, orphans for gc."""
        self._run = None
        for log in self._logs.values():
            log.discard()
        self._logs.clear()


def _is_full(error: BackendError) -> bool:
    cause = error.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)


_NO_EXTREMES: dict[str, float | None] = {"minimum": None, "maximum": None}


def _extremes(piece: np.ndarray) -> dict[str, float | None]:
    # Asked for with hints={"statistics": True}: two passes over the data cost
    # as much as the checksums, for searches not every dataset needs.
    if piece.size == 0 or piece.dtype.kind not in "iuf":
        return _NO_EXTREMES
    low, high = float(np.min(piece)), float(np.max(piece))
    if not (np.isfinite(low) and np.isfinite(high)):
        return _NO_EXTREMES
    return {"minimum": low, "maximum": high}
