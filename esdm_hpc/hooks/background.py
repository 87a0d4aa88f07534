"""Where hooks over their budget run: a daemon worker thread, and for on_commit
hooks a communicator of their own (docs/architecture.md §7.4, "Budgets")."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from esdm_hpc.comm import Comm


class Worker:
    """One daemon thread running calls in order. A daemon: a call stuck in a collective
    whose peers are gone must not keep the process from exiting."""

    def __init__(self, name: str):
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._calls.put((future, call))
        return future

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as error:  # the submitter gets it
                    future.set_exception(error)

    def stop(self) -> None:
        self._calls.put(None)


def thread_comm(comm: Comm) -> tuple[Comm | None, str]:
    """A communicator a worker thread may use beside the main thread's (collective),
    or None and why not."""
    duplicate = getattr(comm, "Dup", None)
    if duplicate is None:  # the serial communicator: no messages to mix up
        return comm, ""
    from mpi4py import MPI

    able = all(comm.allgather(MPI.Query_thread() >= MPI.THREAD_MULTIPLE))
    if not able:
        return None, "MPI was not initialised with MPI_THREAD_MULTIPLE"
    return duplicate(), ""
