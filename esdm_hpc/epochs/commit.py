"""The collective commit that publishes an epoch (docs/architecture.md §3.3, §3.4).

1. every rank makes its data logs durable;
2. the fragment records are gathered on rank 0;
3. rank 0 rejects overlapping writes of different ranks that differ, builds the
   immutable manifest and decodes it as a reader will (nothing is published
   that cannot be read back), then, under the container's lock and only while
   this writer holds the lease and HEAD is the one it built on, writes the
   manifest and swaps HEAD by atomic rename;
4. the outcome is broadcast, so every rank returns the new epoch or raises
   the same error. A failure anywhere before step 3's rename leaves the
   previous epoch as HEAD; nothing after it can fail the commit, so what a
   writer is told is what readers see;
5. rank 0 appends the events of the epoch the proposal carries (in-situ hooks'
   outcomes, triggers), then its commit event, to the container's event log
   (`events.record`, `events.record_commit`: a failure to write one is logged,
   not raised) and starts the configured on-commit commands
   (`oncommit.after_commit`, never raises): an event of the epoch comes before
   its commit event, so a command due on its kind runs after that epoch.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from esdm_hpc import measured
from esdm_hpc.backends import Backend
from esdm_hpc.comm import Comm, transportable
from esdm_hpc.epochs import events, oncommit
from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.lease import Lease
from esdm_hpc.epochs.manifest import (
    PACK_EPOCHS,
    Head,
    Manifest,
    Pack,
    encode_fragments,
)
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.epochs.writer import EpochWriter
from esdm_hpc.errors import OverlappingWritesError
from esdm_hpc.fragment import fragment_boxes
from esdm_hpc.fragmentview import FragmentView
from esdm_hpc.kernels.checksum import checksum
from esdm_hpc.kernels.region import find_overlaps
from esdm_hpc.namespace import DatasetMeta, Namespace
from esdm_hpc.reader import read_region
from esdm_hpc.selection import Hyperslab
from esdm_hpc.strings import is_string


@dataclass(frozen=True, slots=True)
class Proposal:
    """What one rank proposes for the new epoch."""

    namespace: Namespace  # the open epoch's (the same on every rank)
    writer: EpochWriter  # this rank's writes
    error: Exception | None = None  # this rank's data cannot be committed (a failed write)
    # (kind, fields) of the epoch's events, logged by rank 0 once it is published
    events: Sequence[tuple[str, dict[str, Any]]] = ()


@dataclass(frozen=True, slots=True)
class Parent:
    """What the new epoch builds on."""

    head: Head  # the HEAD the writer opened or last committed
    loaded: Sequence[Manifest]  # the manifests read since the last pack, HEAD's last
    lease: Lease | None  # the writer's (rank 0's), checked at publication


@dataclass(frozen=True, slots=True)
class Committed:
    head: Head
    manifest: Manifest


def commit(comm: Comm, store: ContainerStore, proposal: Proposal, parent: Parent) -> Committed:
    """Publish ``proposal`` of every rank as the epoch after ``parent`` (collective).

    A rank's error travels with the records, so every rank raises it instead of
    waiting; rank 0 packs the loaded manifests after the last pack when due."""
    writer, local_error = proposal.writer, proposal.error
    if local_error is None:
        try:
            writer.sync()
        except Exception as error:  # every rank raises it below
            local_error = error
    # Records travel as JSON text: cheap to pickle, and rank 0 splices them
    # into the manifest without decoding and encoding them again.
    if local_error is None:
        sent = (encode_fragments(writer.fragments), None, writer.timings)
    else:  # nothing of this epoch will be published: only the error travels
        sent = ("[]", transportable(local_error), {})
    gathered = comm.gather(sent, root=0)
    outcome: tuple[Head, bytes] | Exception | None = None
    decoded: Manifest | None = None  # rank 0's, decoded before publishing
    if comm.rank == 0:
        assert gathered is not None
        failed = [failure for _, failure, _ in gathered if failure is not None]
        timings = measured.summed(t for _, _, t in gathered)
        try:
            if failed:
                raise failed[0]
            encoded = [text for text, _, _ in gathered]
            writer_info = {**writer_record(comm.size),
                           "backends": {b: t.to_json() for b, t in timings.items()}}  # fmt: skip
            new_head, data, decoded = _publish(
                store, proposal.namespace, parent, writer_info, encoded
            )
            outcome = (new_head, data)
        except Exception as error:  # every rank raises it, none waits for rank 0
            outcome = transportable(error)
    outcome = comm.bcast(outcome, root=0)
    if isinstance(outcome, Exception):
        raise outcome
    assert outcome is not None
    new_head, data = outcome
    if decoded is not None:  # rank 0, published: never raises (the outcome is decided)
        for kind, fields in proposal.events:
            events.record(store, kind, new_head.epoch, fields)
        logged = events.record_commit(store, new_head.epoch, decoded.writer)
        oncommit.after_commit(writer.config, store, new_head.epoch, logged)
        measured.record(store.meta, timings)
    return Committed(new_head, decoded or _readable(store, new_head.epoch, data))


def _publish(
    store: ContainerStore,
    namespace: Namespace,
    parent: Parent,
    writer: dict[str, Any],
    encoded: list[str],
) -> tuple[Head, bytes, Manifest]:
    head, lease = parent.head, parent.lease
    epoch = head.epoch + 1
    records = [record for text in encoded for record in json.loads(text)]
    check_overlaps(epoch, records, namespace, store.backends)
    replicated = any("replicated" in record for record in records)
    manifest = Manifest(
        epoch=epoch,
        parent_checksum=head.checksum,
        created=datetime.datetime.now(datetime.UTC).isoformat(),
        writer=writer,
        namespace=namespace.to_json(),
        packs=_packs(store, parent.loaded),
        replicated_in=parent.loaded[-1].replicated_in + ([epoch] if replicated else []),
    )
    data = manifest.encode(fragments_json=encoded)
    decoded = _readable(store, epoch, data)
    guard = None if lease is None else lambda: leases.check(store, lease)
    return store.publish_encoded(epoch, data, parent=head, guard=guard), data, decoded


def _readable(store: ContainerStore, epoch: int, data: bytes) -> Manifest:
    """The manifest ``data`` decoded as a reader decodes it: rank 0 calls this before
    publishing, so every rank decodes what was published without an error."""
    manifest = Manifest.decode(data, checksum(data), f"esdm://{store.name} epoch {epoch}")
    Namespace.from_json(manifest.namespace)
    return manifest


def _packs(store: ContainerStore, loaded: Sequence[Manifest]) -> list[Pack]:
    """The packs the next manifest lists: HEAD's, and a new one of the epochs since
    its last once there are PACK_EPOCHS of them (written before the manifest)."""
    packs = list(loaded[-1].packs)
    unpacked = [m for m in loaded if m.epoch > loaded[-1].packed]
    if len(unpacked) >= PACK_EPOCHS:
        packs.append(store.write_pack(unpacked))
    return packs


def check_overlaps(
    epoch: int,
    records: Iterable[dict],
    namespace: Namespace,
    backends: Mapping[str, Backend],
) -> None:
    """Refuse an epoch in which two ranks wrote different bytes to one place.

    ``records`` are fragment records as in the manifest (``Fragment.to_json``).
    Overlaps of different ranks are read back (the data is durable by now, and
    only the overlap's checksum blocks are read and verified) and compared:
    every rank writing the same scalar or coordinate variable is what many
    models and netCDF programs do, and HDF5 allows it.
    """
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if "replicated" not in record:  # new replicas of earlier epochs' fragments: no writes
            by_dataset[record["dataset"]].append(record)
    for path, group in by_dataset.items():
        if len({r["rank"] for r in group}) < 2:
            continue
        offsets, counts = fragment_boxes([r["offset"] for r in group], [r["count"] for r in group])
        for i, j in find_overlaps(offsets, counts):
            a, b = group[i], group[j]
            if a["rank"] == b["rank"]:
                continue
            overlap = _overlap(a, b)
            meta = namespace.datasets.get(path)
            if meta is None or not _same_values(meta, a, b, overlap, backends):
                raise OverlappingWritesError(
                    f"epoch {epoch}: ranks {a['rank']} and {b['rank']} both wrote "
                    f"{path}{overlap} with different values; writes of one epoch must not "
                    f"overlap unless they agree (the previous epoch is unchanged)"
                )


def _same_values(
    meta: DatasetMeta, a: dict, b: dict, overlap: Hyperslab, backends: Mapping[str, Backend]
) -> bool:
    """Whether the fragments ``a`` and ``b`` hold the same bytes in ``overlap``."""
    ndim = len(meta.shape)
    read = [
        read_region(meta, FragmentView([r], ndim, (), meta.path), overlap.offset,
                    overlap.count, backends)
        for r in (a, b)
    ]  # fmt: skip
    if is_string(meta.dtype):
        return read[0].tolist() == read[1].tolist()
    return read[0].tobytes() == read[1].tobytes()


def _overlap(a: dict, b: dict) -> Hyperslab:
    start = [max(x, y) for x, y in zip(a["offset"], b["offset"], strict=True)]
    stop = [
        min(ao + ac, bo + bc)
        for ao, ac, bo, bc in zip(a["offset"], a["count"], b["offset"], b["count"], strict=True)
    ]
    return Hyperslab(tuple(start), tuple(e - s for s, e in zip(start, stop, strict=True)))


def writer_record(nranks: int) -> dict[str, object]:
    """Who committed: enough to find the job again (provenance grows from here)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "ranks": nranks,
        "argv": sys.argv,
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
    }
