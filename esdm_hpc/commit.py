"""The collective commit that publishes an epoch (DESIGN 3).

1. every rank makes its data logs durable;
2. the fragment records are gathered on rank 0;
3. rank 0 rejects overlapping writes of different ranks, then writes the
   immutable manifest and swaps HEAD by atomic rename;
4. the outcome is broadcast, so every rank returns the new epoch or raises
   the same error. A failure anywhere before step 3's rename leaves the
   previous epoch as HEAD.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from esdm_hpc import lease as leases
from esdm_hpc.comm import Comm
from esdm_hpc.errors import EsdmError, OverlappingWritesError
from esdm_hpc.fragment import fragment_boxes
from esdm_hpc.kernels.region import find_overlaps
from esdm_hpc.lease import Lease
from esdm_hpc.manifest import (
    PACK_EPOCHS,
    CorruptMetadataError,
    Head,
    Manifest,
    Pack,
    encode_fragments,
)
from esdm_hpc.namespace import Namespace
from esdm_hpc.selection import Hyperslab
from esdm_hpc.store import ContainerStore
from esdm_hpc.writer import EpochWriter


@dataclass(frozen=True, slots=True)
class Committed:
    head: Head
    manifest: Manifest
    lease: Lease | None


def commit(
    comm: Comm,
    store: ContainerStore,
    namespace: Namespace,
    writer: EpochWriter,
    head: Head,
    loaded: Sequence[Manifest],
    lease: Lease | None = None,
    local_error: Exception | None = None,
) -> Committed:
    """``loaded``: the committed manifests the container has read, HEAD's last
    (rank 0 packs those after the last pack). ``local_error``: this rank's data
    cannot be committed (a failed write); it travels with the records, so every
    rank raises it instead of waiting."""
    if local_error is None:
        try:
            writer.sync()
        except OSError as error:
            local_error = error
    # Records travel as JSON text: cheap to pickle, and rank 0 splices them
    # into the manifest without decoding and encoding them again.
    gathered = comm.gather((encode_fragments(writer.fragments), local_error), root=0)
    outcome: tuple[Head, bytes, Lease | None] | Exception | None = None
    if comm.rank == 0:
        assert gathered is not None
        failed = [error for _, error in gathered if error is not None]
        try:
            if failed:
                raise failed[0]
            encoded = [text for text, _ in gathered]
            new_head, data = _publish(store, namespace, head, loaded, comm.size, encoded)
            # renewed here, so the commit needs no collective round of its own for it
            outcome = (new_head, data, leases.renew(store, lease) if lease else None)
        except (EsdmError, CorruptMetadataError, OSError) as error:
            outcome = error
    outcome = comm.bcast(outcome, root=0)
    if isinstance(outcome, Exception):
        raise outcome
    assert outcome is not None
    new_head, data, renewed = outcome
    where = f"esdm://{store.name} epoch {new_head.epoch}"
    return Committed(new_head, Manifest.decode(data, new_head.checksum, where), renewed)


def _publish(
    store: ContainerStore,
    namespace: Namespace,
    head: Head,
    loaded: Sequence[Manifest],
    nranks: int,
    encoded: list[str],
) -> tuple[Head, bytes]:
    epoch = head.epoch + 1
    check_overlaps(epoch, [record for text in encoded for record in json.loads(text)])
    manifest = Manifest(
        epoch=epoch,
        parent_checksum=head.checksum,
        created=datetime.datetime.now(datetime.UTC).isoformat(),
        writer=writer_record(nranks),
        namespace=namespace.to_json(),
        packs=_packs(store, loaded),
    )
    data = manifest.encode(fragments_json=encoded)
    return store.publish_encoded(epoch, data, parent=head), data


def _packs(store: ContainerStore, loaded: Sequence[Manifest]) -> list[Pack]:
    """The packs the next manifest lists: HEAD's, and a new one of the epochs since
    its last once there are PACK_EPOCHS of them (written before the manifest)."""
    packs = list(loaded[-1].packs)
    unpacked = [m for m in loaded if m.epoch > loaded[-1].packed]
    if len(unpacked) >= PACK_EPOCHS:
        packs.append(store.write_pack(unpacked))
    return packs


def check_overlaps(epoch: int, records: Iterable[dict]) -> None:
    """Refuse an epoch in which two ranks wrote overlapping parts of a dataset.

    ``records`` are fragment records as in the manifest (``Fragment.to_json``).
    """
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_dataset[record["dataset"]].append(record)
    for path, group in by_dataset.items():
        if len({r["rank"] for r in group}) < 2:
            continue
        offsets, counts = fragment_boxes([r["offset"] for r in group], [r["count"] for r in group])
        for i, j in find_overlaps(offsets, counts):
            a, b = group[i], group[j]
            if a["rank"] != b["rank"]:
                raise OverlappingWritesError(
                    f"epoch {epoch}: ranks {a['rank']} and {b['rank']} both wrote "
                    f"{path}{_overlap(a, b)}; writes of one epoch must not overlap "
                    f"(the previous epoch is unchanged)"
                )


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
