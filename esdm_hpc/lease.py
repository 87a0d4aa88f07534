"""The single-writer lease of a container (DESIGN 3).

Taken at open for writing by creating the LEASE object exclusively; renewed at
every commit; released at close. A second writer is refused with the holder's
identity. A lease that expired (its writer died) is taken over; `esdm unlock`
breaks one explicitly.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, replace

from esdm_hpc.errors import LeaseHeldError
from esdm_hpc.store import ContainerStore

DEFAULT_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Lease:
    owner: str
    host: str
    pid: int
    job: str | None
    token: str
    expires: float

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes) -> Lease:
        return cls(**json.loads(data))

    def describe(self) -> str:
        until = datetime.datetime.fromtimestamp(self.expires).isoformat(timespec="seconds")
        job = f", job {self.job}" if self.job else ""
        return f"{self.owner}@{self.host} pid {self.pid}{job} (lease expires {until})"


def lease_name(store: ContainerStore) -> str:
    return store.prefix + "LEASE"


def acquire(store: ContainerStore, token: str, seconds: float | None = None) -> Lease:
    lease = Lease(
        owner=getpass.getuser(),
        host=socket.gethostname(),
        pid=os.getpid(),
        job=os.environ.get("SLURM_JOB_ID"),
        token=token,
        expires=time.time() + (seconds or _default_seconds()),
    )
    name = lease_name(store)
    for _ in range(2):
        if store.meta.create_exclusive(name, lease.encode()):
            return lease
        holder = current(store)
        if holder is not None and holder.expires > time.time():
            raise LeaseHeldError(
                f"esdm://{store.name} is open for writing by {holder.describe()}; "
                f"one writer at a time (`esdm unlock esdm://{store.name}` breaks an "
                "abandoned lease)"
            )
        store.meta.delete(name)  # expired: its writer is gone
    raise LeaseHeldError(f"esdm://{store.name}: another writer took the lease just now")


def renew(store: ContainerStore, lease: Lease, seconds: float | None = None) -> Lease:
    """Extend the lease, once half of it has run out (every commit calls this)."""
    seconds = seconds or _default_seconds()
    if lease.expires - time.time() > seconds / 2:
        return lease  # saves a synchronous metadata write on most commits
    renewed = replace(lease, expires=time.time() + seconds)
    store.meta.write_atomic(lease_name(store), renewed.encode())
    return renewed


def release(store: ContainerStore, lease: Lease) -> None:
    holder = current(store)
    if holder is not None and holder.token == lease.token:
        store.meta.delete(lease_name(store))


def current(store: ContainerStore) -> Lease | None:
    name = lease_name(store)
    if not store.meta.exists(name):
        return None
    try:
        return Lease.decode(store.meta.read_small(name))
    except (ValueError, TypeError, OSError):
        return None  # half-written by a writer that died: as good as expired


def break_lease(store: ContainerStore) -> Lease | None:
    holder = current(store)
    store.meta.delete(lease_name(store))
    return holder


def _default_seconds() -> float:
    return float(os.environ.get("ESDM_LEASE_SECONDS", DEFAULT_SECONDS))
