"""A container's committed history, loaded once for the maintenance commands."""

from __future__ import annotations

from dataclasses import dataclass

from esdm_hpc.fragment import Fragment
from esdm_hpc.manifest import Head, Manifest, manifest_name
from esdm_hpc.namespace import Namespace
from esdm_hpc.store import ContainerStore


@dataclass(frozen=True, slots=True)
class History:
    head: Head
    manifests: list[Manifest]

    @classmethod
    def load(cls, store: ContainerStore) -> History:
        head = store.head()
        return cls(head, store.chain(head))

    @property
    def namespace(self) -> Namespace:
        return Namespace.from_json(self.manifests[-1].namespace)

    def fragments(self) -> list[Fragment]:
        """Every fragment of every committed epoch (older epochs stay readable)."""
        return [f for m in self.manifests for f in m.fragments]

    def referenced(self, store: ContainerStore) -> set[tuple[str, str]]:
        """(backend, object) pairs committed metadata refers to: what gc must keep."""
        keep = {(store.meta.id, store.prefix + "HEAD")}
        keep |= {(store.meta.id, store.prefix + manifest_name(m.epoch)) for m in self.manifests}
        keep |= {(r.backend, r.location) for f in self.fragments() for r in f.replicas}
        return keep
