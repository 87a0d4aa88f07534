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
import os
import socket
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from esdm_hpc.comm import Comm
from esdm_hpc.errors import EsdmError, OverlappingWritesError
from esdm_hpc.fragment import Fragment
from esdm_hpc.kernels.region import find_overlaps
from esdm_hpc.manifest import CorruptMetadataError, Head, Manifest
from esdm_hpc.namespace import Namespace
from esdm_hpc.selection import Hyperslab
from esdm_hpc.store import ContainerStore
from esdm_hpc.writer import EpochWriter


@dataclass(frozen=True, slots=True)
class Committed:
    head: Head
    manifest: Manifest


def commit(
    comm: Comm, store: ContainerStore, namespace: Namespace, writer: EpochWriter, head: Head
) -> Committed:
    writer.sync()
    gathered = comm.gather(writer.fragments, root=0)
    outcome: Committed | EsdmError | OSError | None = None
    if comm.rank == 0:
        assert gathered is not None
        fragments = [f for rank_fragments in gathered for f in rank_fragments]
        try:
            check_overlaps(head.epoch + 1, fragments)
            manifest = Manifest(
                epoch=head.epoch + 1,
                parent_checksum=head.checksum,
                created=datetime.datetime.now(datetime.UTC).isoformat(),
                writer=writer_record(comm.size),
                namespace=namespace.to_json(),
                fragments=fragments,
            )
            outcome = Committed(store.publish(manifest, parent=head), manifest)
        except (EsdmError, CorruptMetadataError, OSError) as error:
            outcome = error
    outcome = comm.bcast(outcome, root=0)
    if isinstance(outcome, Exception):
        raise outcome
    assert outcome is not None
    return outcome


def check_overlaps(epoch: int, fragments: Iterable[Fragment]) -> None:
    """Refuse an epoch in which two ranks wrote overlapping parts of a dataset."""
    by_dataset: dict[str, list[Fragment]] = defaultdict(list)
    for fragment in fragments:
        by_dataset[fragment.dataset].append(fragment)
    for path, group in by_dataset.items():
        if len({f.rank for f in group}) < 2:
            continue
        offsets = np.array([f.offset for f in group], dtype=np.int64).reshape(len(group), -1)
        counts = np.array([f.count for f in group], dtype=np.int64).reshape(len(group), -1)
        for i, j in find_overlaps(offsets, counts):
            a, b = group[i], group[j]
            if a.rank != b.rank:
                raise OverlappingWritesError(
                    f"epoch {epoch}: ranks {a.rank} and {b.rank} both wrote "
                    f"{path}{_overlap(a, b)}; writes of one epoch must not overlap "
                    f"(the previous epoch is unchanged)"
                )


def _overlap(a: Fragment, b: Fragment) -> Hyperslab:
    start = tuple(max(x, y) for x, y in zip(a.offset, b.offset, strict=True))
    stop = tuple(min(x, y) for x, y in zip(a.stop, b.stop, strict=True))
    return Hyperslab(start, tuple(e - s for s, e in zip(start, stop, strict=True)))


def writer_record(nranks: int) -> dict[str, object]:
    """Who committed: enough to find the job again (provenance grows from here)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "ranks": nranks,
        "argv": sys.argv,
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
    }
