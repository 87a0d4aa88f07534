"""The communicator the core talks to, and the collective calls made through it.

An mpi4py communicator or a serial stand-in: everything collective in the
core goes through the handful of operations of `Comm`, so a program without
MPI (one process, no mpirun) runs the same code.

Collective metadata calls must get the same arguments on every rank
(`agree`): a mismatch would silently fork the namespace between ranks;
instead every rank compares a digest of its arguments with all others and all
raise the same error. One allgather of 16 bytes per call: cheap, and it cannot
hang as long as every rank makes the call. Steps only one rank may do run
through `on_root`, which hands every rank the result or the error.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from esdm_hpc.errors import CollectiveMismatchError, EsdmError

T = TypeVar("T")


class Comm(Protocol):
    """The subset of mpi4py's ``Comm`` the core uses (lower-case, pickle-based)."""

    @property
    def rank(self) -> int: ...
    @property
    def size(self) -> int: ...
    def bcast(self, obj: T, root: int = 0) -> T: ...
    def gather(self, obj: T, root: int = 0) -> list[T] | None: ...
    def allgather(self, obj: T) -> list[T]: ...
    def allreduce(self, obj: Any, op: Any = None) -> Any: ...
    def Barrier(self) -> None: ...


class SerialComm:
    """A communicator of one process."""

    rank = 0
    size = 1

    def bcast(self, obj: T, root: int = 0) -> T:
        return obj

    def gather(self, obj: T, root: int = 0) -> list[T]:
        return [obj]

    def allgather(self, obj: T) -> list[T]:
        return [obj]

    def allreduce(self, obj: Any, op: Any = None) -> Any:
        return obj

    def Barrier(self) -> None:
        return None


def as_comm(comm: object | None) -> Comm:
    """``comm`` itself, or a serial communicator when there is none."""
    if comm is None:
        return SerialComm()
    for attribute in ("rank", "size", "bcast", "gather", "allgather", "allreduce", "Barrier"):
        if not hasattr(comm, attribute):
            raise ValueError(
                f"comm must be an mpi4py communicator (or None), not {type(comm).__name__}"
            )
    return comm  # type: ignore[return-value]


def agree(comm: Comm, call: str, arguments: dict[str, Any]) -> None:
    """Raise CollectiveMismatchError on every rank unless all ranks passed ``arguments``."""
    if comm.size == 1:
        return
    encoded = json.dumps(arguments, sort_keys=True, default=repr).encode()
    digests = comm.allgather(hashlib.sha256(encoded).hexdigest()[:16])
    differing = [rank for rank, digest in enumerate(digests) if digest != digests[0]]
    if differing:
        raise CollectiveMismatchError(
            f"{call} is collective: ranks {differing} passed different arguments than "
            f"rank 0 (rank {comm.rank} passed {arguments})"
        )


def on_root(comm: Comm, action: Callable[[], T]) -> T:
    """Run ``action`` on rank 0 and give its result, or raise its error, on every rank.

    For the fallible steps only one rank may do (read HEAD, take the lease):
    an exception on rank 0 must not leave the other ranks waiting forever.
    """
    outcome: T | Exception | None = None
    if comm.rank == 0:
        try:
            outcome = action()
        except Exception as error:  # every rank re-raises it below
            outcome = transportable(error)
    outcome = comm.bcast(outcome, root=0)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome  # type: ignore[return-value]


def on_every(comm: Comm, action: Callable[[], T]) -> T:
    """Run ``action`` on every rank; if it fails on any, raise the error of the
    lowest failing rank on all of them, so that none goes on to a collective
    step the others never reach."""
    result: T | None = None
    error: Exception | None = None
    try:
        result = action()
    except Exception as caught:
        error = transportable(caught)
    failed = [e for e in comm.allgather(error) if e is not None]
    if failed:
        raise error if error is not None else failed[0]
    return result  # type: ignore[return-value]


def transportable(error: Exception) -> Exception:
    """``error``, or an EsdmError saying the same if it cannot be pickled: what one
    rank sends the others must arrive, or they would wait for it forever."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return EsdmError(f"{type(error).__name__}: {error}")
    return error
