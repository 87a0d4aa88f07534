"""The single-writer lease of a container (docs/architecture.md §3.5).

Taken at open for writing, released at close; a second writer is refused with
the holder's identity. While its process lives, a `LeaseKeeper` thread renews
the lease, so a model that runs for hours between outputs keeps it. A lease
expires only when its writer is gone (or frozen past it): then it is taken
over, and `esdm unlock` breaks one explicitly. Every change of the LEASE
object is one `ContainerStore.update` (read, compare, write, with no other
writer in between: under the container's lock, or by compare-and-swap on s3),
and a commit publishes only while its writer still holds the lease (`check`),
so a writer whose lease was taken can never publish.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, replace

from esdm_hpc.epochs.store import Change, ContainerStore
from esdm_hpc.errors import CorruptMetadataError, EsdmError, LeaseHeldError, LeaseLostError

DEFAULT_SECONDS = 3600.0
LEASE = "LEASE"  # the object, next to HEAD
# A keeper renews this many times per lease period: a renewal that fails (a
# full disk, a slow server) is tried again well before the lease runs out.
RENEWALS_PER_PERIOD = 4
# Lost races in a row after which a change of the lease gives up: each means
# another writer changed the lease meanwhile, which a lease does not see often.
RACES = 100


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
    def decode(cls, data: bytes, where: str) -> Lease:
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError) as error:
            raise CorruptMetadataError(f"{where}: damaged lease ({error})") from None

    def describe(self) -> str:
        until = datetime.datetime.fromtimestamp(self.expires).isoformat(timespec="seconds")
        job = f", job {self.job}" if self.job else ""
        return f"{self.owner}@{self.host} pid {self.pid}{job} (lease expires {until})"

    @property
    def expired(self) -> bool:
        return self.expires <= time.time()


def lease_name(store: ContainerStore) -> str:
    return store.prefix + LEASE


def current(store: ContainerStore) -> Lease | None:
    """The lease as stored, None if there is none; CorruptMetadataError if damaged."""
    name = lease_name(store)
    if not store.meta.exists(name):
        return None
    return _decode(store, store.meta.read_small(name))


def _decode(store: ContainerStore, data: bytes | None) -> Lease | None:
    if not data:  # missing, or given up where leases are swapped (emptied)
        return None
    return Lease.decode(data, f"esdm://{store.name} LEASE")


def _holder(store: ContainerStore, data: bytes | None) -> Lease | None:
    """The lease stored as ``data`` as it counts for taking it: a damaged one is as
    good as expired."""
    try:
        return _decode(store, data)
    except CorruptMetadataError:
        return None


def _change(store: ContainerStore, change: Change) -> None:
    """Update the LEASE object by ``change``. Where it is swapped, a lost race means
    the lease changed after it was read (another writer, or this process's
    keeper renewing it), so ``change`` decides again on what it is now."""
    for _ in range(RACES):
        if store.update(LEASE, change):
            return
    raise EsdmError(
        f"esdm://{store.name}: the lease changed {RACES} times while this writer read it"
    )


def acquire(store: ContainerStore, token: str, seconds: float | None = None) -> Lease:
    lease = Lease(
        owner=getpass.getuser(),
        host=socket.gethostname(),
        pid=os.getpid(),
        job=os.environ.get("SLURM_JOB_ID"),
        token=token,
        expires=time.time() + (seconds or default_seconds()),
    )

    def take(data: bytes | None) -> bytes:
        holder = _holder(store, data)
        if holder is not None and not holder.expired:
            raise LeaseHeldError(
                f"esdm://{store.name} is open for writing by {holder.describe()}; "
                f"one writer at a time (`esdm unlock esdm://{store.name}` breaks an "
                "abandoned lease)"
            )
        if not store.swaps:  # under the lock: deleted first, never written through a
            # container directory that is a link leading outside (the delete refuses)
            store.meta.delete(lease_name(store))
        return lease.encode()  # over an expired or damaged one: its writer is gone

    _change(store, take)
    return lease


def check(store: ContainerStore, lease: Lease) -> None:
    """Raise LeaseLostError unless ``lease`` is still the stored one.

    Under the container's lock (`ContainerStore.update`), the answer holds for
    as long as the lock. Where leases are swapped nothing holds an answer, so
    the check renews the lease: no other writer can take it for a whole period.
    """
    if store.swaps:
        renew(store, lease)
        return
    name = lease_name(store)
    data = store.meta.read_small(name) if store.meta.exists(name) else None
    _check_holder(store, lease, data)


def _check_holder(store: ContainerStore, lease: Lease, data: bytes | None) -> None:
    holder = _holder(store, data)
    if holder is None or holder.token != lease.token:
        taken = f"it is now held by {holder.describe()}" if holder else "it was broken"
        raise LeaseLostError(
            f"esdm://{store.name}: this writer ({lease.describe()}) lost its lease: {taken}; "
            "nothing written since its last commit is committed"
        )


def renew(store: ContainerStore, lease: Lease, seconds: float | None = None) -> Lease:
    """The lease extended by ``seconds`` from now; LeaseLostError if it is not ours."""
    renewed = replace(lease, expires=time.time() + (seconds or default_seconds()))

    def extend(data: bytes | None) -> bytes:
        _check_holder(store, lease, data)
        return renewed.encode()

    _change(store, extend)
    return renewed


def release(store: ContainerStore, lease: Lease) -> None:
    def give_up(data: bytes | None) -> bytes | None:
        holder = _holder(store, data)
        return b"" if holder is not None and holder.token == lease.token else None

    _change(store, give_up)


def break_lease(store: ContainerStore, holder: Lease | None) -> bool:
    """Remove the lease of ``holder`` (None: a damaged one) if it is still the stored
    one (`esdm unlock`); its writer can no longer commit. Whether it was removed."""
    removed = False

    def remove(data: bytes | None) -> bytes | None:
        nonlocal removed
        try:
            found = _decode(store, data)
        except CorruptMetadataError:
            removed = holder is None
        else:
            removed = found is not None and holder is not None and found.token == holder.token
        return b"" if removed else None

    _change(store, remove)
    return removed


class LeaseKeeper:
    """A lease held for as long as the process lives: a daemon thread renews it.

    A renewal that fails for a storage error is tried again at the next turn;
    one that finds the lease taken stops the keeper (the writer's next commit
    then fails on `check`). The thread does nothing but metadata I/O, so it
    makes no MPI calls and is safe beside any threading level.
    """

    def __init__(self, store: ContainerStore, lease: Lease, seconds: float | None = None):
        self.store = store
        self.lease = lease
        self._seconds = seconds or default_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="esdm-lease", daemon=True)
        self._thread.start()

    @property
    def token(self) -> str:
        return self.lease.token

    def _run(self) -> None:
        while not self._stop.wait(self._seconds / RENEWALS_PER_PERIOD):
            try:
                self.lease = renew(self.store, self.lease, self._seconds)
            except LeaseLostError:
                return
            except (OSError, EsdmError):
                continue

    def release(self) -> None:
        """Stop renewing and give the lease up (if it is still ours)."""
        self._stop.set()
        self._thread.join()
        release(self.store, self.lease)


def default_seconds() -> float:
    text = os.environ.get("ESDM_LEASE_SECONDS") or str(DEFAULT_SECONDS)
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 1e9:
        raise ValueError(f"$ESDM_LEASE_SECONDS must be a positive number of seconds, not {text!r}")
    return seconds
