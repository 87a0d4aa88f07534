"""Garbage collection: remove what no committed epoch refers to (docs/architecture.md §3.8).

A writer that dies before its commit leaves data logs (and perhaps a manifest
that HEAD never named, or temporary files of an atomic write) behind. gc takes
the container's lease first (and keeps it renewed), so it never races a live
writer's open epoch: a live writer's lease does not expire, and one whose lease
gc took over can no longer publish the epoch whose logs gc removes. The event
log stays (its temporary objects go), and a run that removes ends with a "gc"
event: objects and bytes removed, objects kept.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from esdm_hpc.backends import Backend
from esdm_hpc.epochs import events
from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.history import History
from esdm_hpc.epochs.store import LOCK, ContainerStore
from esdm_hpc.errors import ContainerNotFoundError

# Kept even though no manifest names them: the lease and the lock are live state.
_LIVE = ("LEASE", LOCK)


@dataclass(slots=True)
class GcReport:
    removed: list[tuple[str, str]] = field(default_factory=list)
    bytes_freed: int = 0
    kept: int = 0


def collect_garbage(
    store: ContainerStore,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GcReport:
    if not store.exists():
        raise ContainerNotFoundError(f"esdm://{store.name}: no such container")
    keeper = leases.LeaseKeeper(store, leases.acquire(store, f"gc-{secrets.token_hex(4)}"))
    try:
        history = History.load(store)
        keep = history.referenced(store)
        keep |= {(store.meta.id, store.prefix + name) for name in _LIVE}
        candidates = list(_objects(store.backends, store.prefix))
        report = GcReport()
        for done, (backend, name) in enumerate(candidates, 1):
            if (backend.id, name) in keep:
                report.kept += 1
            else:
                report.bytes_freed += backend.size(name)
                report.removed.append((backend.id, name))
                if not dry_run:
                    backend.delete(name)
            if progress:
                progress(done, len(candidates))
        if report.removed and not dry_run:  # a run that changed nothing is no event
            fields = {"objects": len(report.removed), "bytes": report.bytes_freed,
                      "kept": report.kept}  # fmt: skip
            events.record(store, "gc", history.head.epoch, fields)
        return report
    finally:
        keeper.release()


def _objects(backends: Mapping[str, Backend], prefix: str):
    for backend in backends.values():
        for name in backend.list(prefix):
            yield backend, name
