"""The communicator the core talks to: an mpi4py communicator or a serial stand-in.

Everything collective in the core goes through the handful of operations
below, so a program without MPI (one process, no mpirun) runs the same code.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

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
