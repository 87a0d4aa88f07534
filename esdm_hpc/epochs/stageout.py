"""The background drain of a running writer (docs/architecture.md §5).

While the application runs, each rank copies what it committed to its node's
burst buffer to the global tier, in a thread of its own: each fragment is read
back, checked block by block and appended to its drain target through the
open epoch's writer (`EpochWriter.replicate`), so the new replicas are
published with the application's next commit, atomically like its data. Only
once that commit is published are the burst-buffer logs whose every fragment
has its global replica deleted. A commit waits for the copy in progress (at
most one fragment) and the thread waits for the commit: no replica is
published whose bytes the commit did not sync; the copies a refused
commit discarded are made again.

What is not copied when the writer closes (the last commit publishes what
was) stays for ``esdm drain --wait`` at the job's end. A burst buffer drains in
the background unless its options say ``drain = "at-end"``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from esdm_hpc.backends import Backend
from esdm_hpc.config import SiteConfig
from esdm_hpc.epochs.manifest import Manifest, decode_fragment
from esdm_hpc.epochs.open_epoch import OpenEpoch
from esdm_hpc.fragment import Fragment, Replica
from esdm_hpc.placement import drain_targets, reaches

logger = logging.getLogger(__name__)

_STOP = None  # what tells the thread to end


def background_burst_buffers(backends: Mapping[str, Backend]) -> list[Backend]:
    """The burst buffers of ``backends`` that drain while the writer runs."""
    return [
        b for b in backends.values()
        if b.node is not None and b.config.options.get("drain", "background") == "background"
    ]  # fmt: skip


class StageOut:
    """One rank's background drain; `Container` calls it around each commit.

    Which burst-buffer logs may go is counted, not assumed: for every log of
    this node, how many current records of any rank name it (a copy made by
    H5Ocopy shares its original's bytes, and the original may be another
    rank's or an earlier run's). Every rank counts every record of each
    published manifest alike, so a log goes when no record names it any more,
    whichever rank's commit made it so (deleting twice is harmless)."""

    def __init__(self, config: SiteConfig, backends: Mapping[str, Backend], rank: int,
                 epoch: OpenEpoch, current: Iterable[dict[str, Any]]):  # fmt: skip
        self._config = config
        self._backends = backends
        self._rank = rank
        self._epoch = epoch
        self._draining = {b.id for b in background_burst_buffers(backends)}
        self._queue: queue.Queue[Fragment | None] = queue.Queue()
        self._pause = threading.Lock()  # held by a commit, and by a copy
        self._copied: list[Fragment] = []  # given new replicas in the open epoch
        self._named: Counter[tuple[str, str]] = Counter()  # log -> current records naming it
        self._names: dict[str, tuple[tuple[str, str], ...]] = {}  # record id -> its logs here
        for record in current:
            self._count(record)
        self._failed = False  # an error stopped the copying: the rest waits for esdm drain
        self._thread = threading.Thread(target=self._run, name="esdm-stage-out", daemon=True)
        self._thread.start()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While a commit runs: no copy starts, and none is in progress."""
        with self._pause:
            yield

    def committed(self, manifest: Manifest) -> None:
        """After ``manifest`` was published (the commit holds the pause): count its
        records, delete the logs no record names now, queue this rank's new
        fragments that are only on the burst buffer."""
        self._copied = []
        superseded = [self._names.pop(r["id"], ()) for r in manifest.records if "replicated" in r]
        for record in manifest.records:  # what names a log first, then what stopped naming it
            self._count(record)
        for logs in superseded:
            for log in logs:
                self._named[log] -= 1
                if self._named[log] <= 0:
                    del self._named[log]
                    backend, location = log
                    self._backends[backend].delete(location)
        for record in manifest.records:
            if record["rank"] == self._rank and "replicated" not in record:
                fragment = decode_fragment(record, f"epoch {manifest.epoch}")
                if self._drains(fragment):
                    self._queue.put(fragment)

    def refused(self) -> None:
        """After a refused commit: its copies are gone with its epoch; copy them again."""
        refused, self._copied = self._copied, []
        for fragment in refused:
            self._queue.put(fragment)

    def close(self) -> None:
        """Stop the thread after the copy in progress; the rest is left for esdm drain."""
        while True:  # what is still queued is not copied now
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_STOP)
        self._thread.join()

    def _count(self, record: dict[str, Any]) -> None:
        logs = tuple(
            (r.backend, r.location)
            for r in map(Replica.from_json, record["replicas"])
            if r.node is not None and reaches(self._backends, r)
        )
        if logs:
            self._names[record["id"]] = logs
            self._named.update(logs)

    def _drains(self, fragment: Fragment) -> bool:
        """Whether this thread copies ``fragment``: at risk, and only on burst buffers
        of this node that drain in the background."""
        return fragment.is_local and all(
            r.backend in self._draining and reaches(self._backends, r) for r in fragment.replicas
        )

    def _run(self) -> None:
        while (fragment := self._queue.get()) is not _STOP:
            if self._failed:
                continue
            try:
                with self._pause:
                    self._copy(fragment)
            except Exception as error:  # the writer goes on; esdm drain finishes the job
                self._failed = True
                logger.warning("background drain stopped at fragment %s (%s); the rest "
                               "waits for `esdm drain`", fragment.id, error)  # fmt: skip

    def _copy(self, fragment: Fragment) -> None:
        replica = fragment.replicas[0]
        backend = self._backends[replica.backend]
        payload = np.empty(replica.length, np.uint8)
        backend.readinto(replica.location, replica.byte_offset, payload)
        bad = fragment.mismatched_blocks(payload)
        if bad:
            logger.error("%s: fragment %s on burst buffer %r (%s) does not match its "
                         "checksums in block(s) %s: not drained", fragment.dataset,
                         fragment.id, replica.backend, replica.location, bad)  # fmt: skip
            return
        targets = drain_targets(self._config, backend.config, replica.length)
        self._epoch.writer.replicate(fragment, payload, targets, ())
        self._copied.append(fragment)


class Idle:
    """The stage-out of a writer with nothing to drain in the background."""

    @contextmanager
    def paused(self) -> Iterator[None]:
        yield

    def committed(self, manifest: Manifest) -> None:
        """Nothing to count or copy."""

    def refused(self) -> None:
        """Nothing was copied."""

    def close(self) -> None:
        """No thread to stop."""


def start(config: SiteConfig, backends: Mapping[str, Backend], rank: int, epoch: OpenEpoch,
          current: Iterable[dict[str, Any]]) -> StageOut | Idle:  # fmt: skip
    """A writer's background drain, if the site has burst buffers that drain so."""
    if not background_burst_buffers(backends):
        return Idle()
    return StageOut(config, backends, rank, epoch, current)
