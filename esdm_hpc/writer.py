"""One rank's writes in the open epoch: data appended to logs, fragment records kept.

Nothing written here is visible to anyone (the writer included) until a
commit publishes the records in a manifest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from esdm_hpc.backends import Backend, LogWriter
from esdm_hpc.config import SiteConfig
from esdm_hpc.faults import crash_point
from esdm_hpc.fragment import Fragment, Replica
from esdm_hpc.kernels import checksum, hilbert
from esdm_hpc.layout import choose_backends, split
from esdm_hpc.namespace import DatasetMeta
from esdm_hpc.store import ContainerStore


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
        self.fragments: list[Fragment] = []
        self._logs: dict[str, LogWriter] = {}
        self._max_fragment_bytes = min(b.limits.max_fragment_bytes for b in config.backends)

    def write(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        """Store ``data`` (already of the dataset's dtype and shape) at ``offset``."""
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
        serialisation = meta.hints.get("serialisation", "C")
        if serialisation == "hilbert" and piece.ndim in (2, 3):
            payload = hilbert.serialise(piece)
        else:
            serialisation = "C"
            payload = np.ascontiguousarray(piece).reshape(-1)
        block_size = self.config.block_size
        replicas = tuple(
            [self._append(b.id, payload) for b in choose_backends(self.config, payload.nbytes)]
        )
        seq = len(self.fragments)
        self.fragments.append(
            Fragment(
                id=self._fragment_id(seq),
                dataset=meta.path,
                epoch=self.epoch,
                rank=self.rank,
                seq=seq,
                offset=tuple(map(int, offset)),
                count=tuple(map(int, piece.shape)),
                serialisation=serialisation,
                codec="raw",
                nbytes=payload.nbytes,
                block_size=block_size,
                checksums=tuple(checksum.block_checksums(payload, block_size).tolist()),
                replicas=replicas,
                **(_extremes(piece) if meta.hints.get("statistics") else _NO_EXTREMES),
            )
        )

    def share(self, meta: DatasetMeta, fragments: Iterable[Fragment]) -> None:
        """Record ``fragments`` (another dataset's, oldest first) as written to the
        dataset ``meta`` in this epoch: their bytes are shared, not copied (H5Ocopy)."""
        for fragment in fragments:
            seq = len(self.fragments)
            self.fragments.append(
                replace(
                    fragment,
                    id=self._fragment_id(seq),
                    dataset=meta.path,
                    epoch=self.epoch,
                    rank=self.rank,
                    seq=seq,
                )
            )

    def _fragment_id(self, seq: int) -> str:
        return f"e{self.epoch}-{self.session}-r{self.rank}-{seq}"

    def _append(self, backend_id: str, payload: np.ndarray) -> Replica:
        log = self._logs.get(backend_id)
        if log is None:
            backend: Backend = self.store.backends[backend_id]
            log = backend.create_log(self.store.log_name(self.epoch, self.rank, self.session))
            self._logs[backend_id] = log
        start = log.append(payload)
        crash_point("write.appended")
        return Replica(backend_id, log.name, start, payload.nbytes)

    def sync(self) -> None:
        """Make every byte written so far durable: the first step of a commit."""
        for log in self._logs.values():
            log.sync()
        crash_point("write.synced")

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()


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
