"""The writes of the open epoch on one rank (docs/architecture.md §3).

Synchronous writes and ``write_async`` requests go to one `EpochWriter`;
requests run on one thread, and whatever comes after them in the program
(a synchronous write, a shrink, a copy, a rename) waits for them first, so
every write takes effect in the order of the calls.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for

import numpy as np

from esdm_hpc.config import SiteConfig
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.epochs.writer import EpochWriter
from esdm_hpc.namespace import DatasetMeta


class OpenEpoch:
    def __init__(self, store: ContainerStore, config: SiteConfig, rank: int, session: str):
        self._store = store
        self._config = config
        self._rank = rank
        self._session = session
        self._generation = 0
        self._writer: EpochWriter | None = None
        self._async: ThreadPoolExecutor | None = None  # started by the first write_async
        self._requests: list[Future[None]] = []

    def start(self, epoch: int) -> None:
        """Open epoch ``epoch`` with a new writer. A refused commit leaves its logs
        (orphans for gc) under the epoch number the next writer uses: a generation
        in the session keeps their names apart."""
        self._generation += 1
        session = f"{self._session}.{self._generation}"
        self._writer = EpochWriter(
            self._store, self._config, rank=self._rank, epoch=epoch, session=session
        )

    @property
    def writer(self) -> EpochWriter:
        """The writer, once every ``write_async`` before this call is written (`settle`)."""
        assert self._writer is not None, "no epoch started"
        self.settle()
        return self._writer

    def settle(self) -> None:
        """Wait until every ``write_async`` so far is written: what comes next takes
        effect after them. Their errors wait for the commit."""
        if self._requests and not self._requests[-1].done():
            wait_for(self._requests[-1:])  # one thread: the last one is done last

    @property
    def pending(self) -> bool:
        """Whether anything was written, is being written or failed in this epoch."""
        return bool(self._requests) or (self._writer is not None and self._writer.pending)

    def write(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        self.writer.write(meta, offset, data)

    def write_async(
        self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray
    ) -> Future[None]:
        assert self._writer is not None, "no epoch started"
        if self._async is None:
            self._async = ThreadPoolExecutor(1, thread_name_prefix="esdm-write")
        request = self._async.submit(self._writer.write, meta, offset, data)
        self._requests.append(request)
        return request

    def finish_requests(self) -> Exception | None:
        """Wait for every ``write_async``; the first error, if any (the requests are
        then done with: a commit reports it)."""
        requests, self._requests = self._requests, []
        errors = [r.exception() for r in requests]
        return next((e for e in errors if e is not None), None)

    def end(self, committed: bool) -> None:
        """Close the epoch's writer: its logs are durable if ``committed``, else they
        are released unsynced (orphans for gc)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            if committed:
                writer.close()
            else:
                writer.discard()

    def close(self) -> None:
        """Stop the request thread (after the requests in flight) and give the epoch up."""
        if self._async is not None:
            self._async.shutdown(wait=True)
            self._async = None
        self.end(committed=False)
