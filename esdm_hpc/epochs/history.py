"""A container's committed history, loaded once for the maintenance commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esdm_hpc.epochs.events import EventLog
from esdm_hpc.epochs.manifest import Head, Manifest, decode_fragment, manifest_name
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.fragment import Fragment, newest_records
from esdm_hpc.namespace import Namespace


@dataclass(frozen=True, slots=True)
class History:
    head: Head
    packed: list[dict[str, Any]]  # the fragment records of the packs before the manifests
    manifests: list[Manifest]  # up to the epoch loaded, oldest first
    later_replicas: list[dict[str, Any]]  # records of later epochs giving new replicas

    @classmethod
    def load(cls, store: ContainerStore, epoch: int | None = None) -> History:
        """The history up to ``epoch`` (default: HEAD's)."""
        head = store.head()
        if epoch is not None and not 0 <= epoch <= head.epoch:
            raise ValueError(f"esdm://{store.name} has epochs 0..{head.epoch}")
        return cls(head, *store.load(head, epoch).decode())

    @property
    def last(self) -> Manifest:
        return self.manifests[-1]

    @property
    def namespace(self) -> Namespace:
        return Namespace.from_json(self.last.namespace)

    def records(self) -> list[Fragment]:
        """Every fragment record of every committed epoch, as stored, oldest first:
        those a drain made to give a fragment new replicas included."""
        packed = [decode_fragment(r, f"pack before epoch {self.manifests[0].epoch}")
                  for r in self.packed]  # fmt: skip
        later = [decode_fragment(r, "a later epoch's new replicas") for r in self.later_replicas]
        return packed + [f for m in self.manifests for f in m.fragments] + later

    def fragments(self) -> list[Fragment]:
        """Every fragment of every committed epoch (older epochs stay readable), with
        its replicas as of the newest record of it."""
        return newest_records(self.records())

    def referenced(self, store: ContainerStore) -> set[tuple[str, str]]:
        """(backend, object) pairs committed metadata refers to, and the event log
        (docs/architecture.md §7.4): what gc must keep."""
        meta = store.meta.id
        keep = {(meta, store.prefix + "HEAD")}
        # every epoch's manifest, read or not: each is an epoch to travel back to
        keep |= {(meta, store.prefix + manifest_name(e)) for e in range(self.last.epoch + 1)}
        keep |= {(meta, store.prefix + pack.name) for pack in self.last.packs}
        keep |= {(r.backend, r.location) for f in self.records() for r in f.replicas}
        keep |= {(meta, name) for name in EventLog(store).names()}  # the log, not its temporaries
        return keep
