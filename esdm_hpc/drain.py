"""Draining burst buffers (docs/architecture.md §5).

A committed fragment whose only replica is on a node's burst buffer is at
risk: it is lost with the node. A drain reads it back there, checks every
block against the checksums its record holds, appends it to the global backend
the burst buffer's ``drain_to`` names and commits a new epoch whose records
give the fragments their global replicas (`EpochWriter.replicate`). Only
then, with the new replicas published, are the burst-buffer logs that no
current record needs deleted.

Progress is durable batch by batch: a drain commits every ``batch_bytes``, so a
killed drain loses at most its current batch (orphans for gc) and the next one
starts from what was committed. Bytes that do not verify are never drained;
the fragment stays at risk and is named in the report.

Each rank drains the fragments of its own node (ranks sharing a node share its
fragments out), so ``mpirun`` with one rank per node drains a whole job's
burst buffers; a single process drains the node it runs on.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from esdm_hpc.backends import Backend
from esdm_hpc.comm import Comm, as_comm, on_every
from esdm_hpc.container import Container
from esdm_hpc.container import open as open_container
from esdm_hpc.epochs import events
from esdm_hpc.epochs.history import History
from esdm_hpc.errors import LeaseHeldError
from esdm_hpc.fragment import Fragment, Replica
from esdm_hpc.placement import drain_targets, reaches
from esdm_hpc.selection import Hyperslab

logger = logging.getLogger(__name__)

BATCH_BYTES = 256 << 20  # committed at least this often: what a killed drain redoes
LEASE_POLL_SECONDS = 0.5


@dataclass(slots=True)
class DrainReport:
    fragments: int = 0  # drained by this rank: verified, copied, verified, committed
    bytes: int = 0
    epochs: list[int] = field(default_factory=list)  # the commits that published them
    refused: list[str] = field(default_factory=list)  # fragments whose bytes do not verify
    logs_removed: int = 0  # burst-buffer logs no current record needs
    at_risk: int = 0  # fragments of the container still only on node-local storage


@dataclass(frozen=True, slots=True)
class _Source:
    fragment: Fragment
    replica: Replica  # on this node's burst buffer
    backend: Backend


def drain(
    uri: str,
    *,
    config: Any = None,
    comm: Any = None,
    wait: float = 0.0,
    batch_bytes: int = BATCH_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> DrainReport:
    """Drain this node's burst buffers of container ``uri`` (collective over ``comm``).

    ``wait``: seconds to wait for the write lease while the application still
    holds it (0: fail at once with LeaseHeldError). ``progress(done, total)``
    counts bytes.
    """
    if batch_bytes <= 0:
        raise ValueError(f"batch_bytes must be positive, got {batch_bytes}")
    comm = as_comm(comm)
    report = DrainReport()
    with _open_waiting(uri, config, comm, wait) as container:
        sources = _shared_out(comm, _sources(container))
        batches = list(_batches(sources, batch_bytes))
        total, done = sum(s.replica.length for s in sources), 0
        # every rank commits as often as the busiest: commits are collective
        for i in range(max(comm.allgather(len(batches)))):
            batch = batches[i] if i < len(batches) else []
            on_every(comm, functools.partial(_drain_batch, container, batch, report))
            if any(comm.allgather(container.pending)):
                report.epochs.append(container.commit())
            done += sum(s.replica.length for s in batch)
            if progress:
                progress(done, total)
        report.fragments = sum(comm.allgather(report.fragments))
        report.bytes = sum(comm.allgather(report.bytes))
        report.logs_removed = _remove_drained(container, comm)
        current = History.load(container.store).fragments()
        report.at_risk = sum(f.is_local for f in current)
        if report.fragments and comm.rank == 0:
            fields = {"fragments": report.fragments, "bytes": report.bytes,
                      "refused": len(report.refused), "at_risk": report.at_risk}  # fmt: skip
            events.record(container.store, "drain", container.epoch, fields)
    return report


def _open_waiting(uri: str, config: Any, comm: Comm, wait: float) -> Container:
    """The container opened for writing, waiting up to ``wait`` seconds for the
    lease of a writer that is still running (or whose lease has not expired)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return open_container(uri, "a", comm=comm, config=config)
        except LeaseHeldError:
            if time.monotonic() >= deadline:
                raise
            logger.info("%s: waiting for the writer's lease before draining", uri)
            time.sleep(LEASE_POLL_SECONDS)


def _sources(container: Container) -> list[_Source]:
    """The committed fragments only on a burst buffer of this node, with that replica."""
    backends = container.backends
    found = []
    for fragment in History.load(container.store).fragments():
        if not fragment.is_local:
            continue
        here = [r for r in fragment.replicas if reaches(backends, r)]
        if here:
            found.append(_Source(fragment, here[0], backends[here[0].backend]))
    return found


def _shared_out(comm: Comm, sources: list[_Source]) -> list[_Source]:
    """This rank's share of its node's fragments: ranks on one node take turns."""
    nodes = comm.allgather(sources[0].replica.node if sources else None)
    mine = nodes[comm.rank]
    peers = [rank for rank, node in enumerate(nodes) if node == mine]
    return sources[peers.index(comm.rank) :: len(peers)]


def _batches(sources: Sequence[_Source], batch_bytes: int) -> Iterator[list[_Source]]:
    batch: list[_Source] = []
    size = 0
    for source in sources:
        batch.append(source)
        size += source.replica.length
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _drain_batch(container: Container, batch: list[_Source], report: DrainReport) -> None:
    # one buffer for the batch: a fresh one per fragment costs a page fault per
    # page, as much as the copy (a log is done with what it appends on return)
    scratch = np.empty(max((s.replica.length for s in batch), default=0), np.uint8)
    for source in batch:
        _copy(container, source, scratch[: source.replica.length], report)


def _copy(container: Container, source: _Source, payload: np.ndarray, report: DrainReport) -> None:
    """Append the fragment's bytes, read into ``payload``, to its drain target if they
    verify; else the refusal goes into ``report``.

    The copy is not read back: what is appended is the verified buffer itself,
    and a read back now would come from the page cache (checking a memcpy, not
    the disk); the disk's copy is checked by every read of it and `esdm verify`."""
    fragment, replica = source.fragment, source.replica
    source.backend.readinto(replica.location, replica.byte_offset, payload)
    bad = fragment.mismatched_blocks(payload)
    if bad:
        region = Hyperslab(fragment.offset, fragment.count)
        report.refused.append(
            f"{fragment.dataset}{region}: fragment {fragment.id} on burst buffer "
            f"{replica.backend!r} of node {replica.node} ({replica.location}) does not "
            f"match its checksums in block(s) {bad}: not drained"
        )
        logger.error("%s", report.refused[-1])
        return
    kept = [r for r in fragment.replicas if r.node is None]
    targets = drain_targets(container.config, source.backend.config, replica.length, len(kept))
    container.open_epoch.writer.replicate(fragment, payload, targets, kept)
    report.bytes += replica.length
    report.fragments += 1


def _remove_drained(container: Container, comm: Comm) -> int:
    """Delete this node's burst-buffer logs of the container that no current record
    needs (the first rank of each node); the number deleted, over all nodes."""
    backends = [b for b in container.backends.values() if b.node is not None]
    nodes = comm.allgather(backends[0].node if backends else None)
    removed = 0
    if backends and nodes.index(nodes[comm.rank]) == comm.rank:
        needed = {
            (r.backend, r.location)
            for f in History.load(container.store).fragments()
            for r in f.replicas
            if reaches(container.backends, r)
        }
        for backend in backends:
            for name in list(backend.list(container.store.data_prefix())):
                if (backend.id, name) not in needed:
                    backend.delete(name)
                    removed += 1
    return sum(comm.allgather(removed))
