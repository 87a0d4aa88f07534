"""What rank 0 does when a container opens (docs/architecture.md §3): check the
mode against what exists, take the lease for a writer, create epoch 0 for a
new container, and read the metadata to load. Every rank receives the result
as stored bytes and decodes its own copy.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.manifest import Head, Manifest
from esdm_hpc.epochs.store import ContainerStore, Stored
from esdm_hpc.errors import ContainerExistsError
from esdm_hpc.namespace import Namespace


@dataclass(slots=True)
class Opened:
    """What rank 0 finds at open and every rank receives."""

    head: Head
    stored: Stored  # the packs and manifests to load, as stored: each rank decodes them
    lease: leases.Lease | None
    fresh: bool  # "w" with overwrite: the namespace starts empty


def open_on_root(
    store: ContainerStore, mode: str, epoch: int | None, overwrite: bool, session: str
) -> Opened:
    exists = store.exists()
    if mode == "w" and exists and not overwrite:
        raise ContainerExistsError(
            f"esdm://{store.name} already exists: open it with mode 'a' to add epochs, "
            "or pass overwrite=True to start it afresh"
        )
    lease = leases.acquire(store, session) if mode in ("w", "a") else None
    try:
        if mode == "w" and not exists:
            created = datetime.datetime.now(datetime.UTC).isoformat()
            store.publish(Manifest(0, None, created, {}, Namespace().to_json()))
        head = store.head()
        if epoch is not None and not 0 <= epoch <= head.epoch:
            raise ValueError(
                f"esdm://{store.name} has epochs 0..{head.epoch}; epoch {epoch} does not exist"
            )
        stored = store.load(head, epoch)
    except BaseException:
        if lease is not None:
            leases.release(store, lease)
        raise
    return Opened(head, stored, lease, fresh=mode == "w" and exists)
