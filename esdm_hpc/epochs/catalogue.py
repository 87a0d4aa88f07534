"""What an open container knows of its committed epochs (docs/architecture.md §3).

The manifests it loaded, the fragment records of every dataset (from the
packs and the manifests) and, per dataset read, the index over its fragments
(`FragmentView`), rebuilt only when new records or shrinks arrive. A record a
later commit made to give a fragment new replicas (a drain: ``replicated``)
takes the place of the fragment's record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from esdm_hpc.epochs.manifest import Manifest
from esdm_hpc.fragmentview import FragmentView
from esdm_hpc.namespace import DatasetMeta, Namespace


class Catalogue:
    def __init__(
        self,
        where: str,
        packed: list[dict[str, Any]],
        manifests: list[Manifest],
        later_replicas: list[dict[str, Any]] | None = None,
    ):
        self.where = where  # the container's URI, for messages
        self._manifests: list[Manifest] = []
        self._records: dict[str, list[dict[str, Any]]] = defaultdict(list)  # per dataset
        # fragment id -> (dataset, index in its records): made at the first record
        # of new replicas, which are rare (drains), and kept from then on
        self._where: dict[str, tuple[str, int]] | None = None
        self._views: dict[str, FragmentView] = {}
        self._add_records(packed)
        self.absorb(manifests)
        self._add_records(later_replicas or [])

    @property
    def manifests(self) -> list[Manifest]:
        """The manifests loaded and not packed since, oldest first; the shown epoch's last."""
        return self._manifests

    @property
    def last(self) -> Manifest:
        return self._manifests[-1]

    @property
    def epoch(self) -> int:
        """The committed epoch shown."""
        return self.last.epoch

    def namespace(self) -> Namespace:
        """The shown epoch's namespace, decoded afresh (callers may change their copy)."""
        return Namespace.from_json(self.last.namespace)

    def committed(self, identity: str) -> bool:
        """Whether the shown epoch has a group, dataset or named datatype ``identity``."""
        namespace = self.last.namespace
        known = (namespace["groups"], namespace["datasets"], namespace.get("datatypes", {}))
        return any(identity in names for names in known)

    def absorb(self, manifests: list[Manifest]) -> None:
        """Add newer committed manifests (oldest first)."""
        for manifest in manifests:
            self._manifests.append(manifest)
            self._add_records(manifest.records)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every committed fragment record, the newest of each fragment (as stored)."""
        for records in self._records.values():
            yield from records

    def absorb_replicas(self, records: list[dict[str, Any]]) -> None:
        """Take the new replicas of committed fragments from later epochs' ``records``
        (`ContainerStore.replicas_since`); the epoch shown stays as it is."""
        self._add_records([r for r in records if "replicated" in r])

    def forget_packed(self) -> None:
        """Drop the manifests the newest one's packs hold: their records stay."""
        packed = self.last.packed
        self._manifests = [m for m in self._manifests if m.epoch > packed]

    def view(self, meta: DatasetMeta) -> FragmentView:
        """The index over the committed fragments of the dataset ``meta``."""
        view = self._views.get(meta.path)
        if view is None or view.shrinks != meta.shrinks:
            records = [
                r for r in self._records.get(meta.path, ()) if r["epoch"] > meta.created_epoch
            ]
            where = f"{self.where} {meta.path}"
            view = FragmentView(records, len(meta.shape), meta.shrinks, where)
            self._views[meta.path] = view
        return view

    def _add_records(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            dataset = record["dataset"]
            if "replicated" in record:
                self._replace(record)
            else:
                self._records[dataset].append(record)
                if self._where is not None:
                    self._where[record["id"]] = (dataset, len(self._records[dataset]) - 1)
            self._views.pop(dataset, None)

    def _replace(self, record: dict[str, Any]) -> None:
        """Put ``record`` (new replicas) in place of its fragment's; a reader of an
        epoch before the fragment's has none and ignores it."""
        if self._where is None:
            self._where = {
                r["id"]: (dataset, i)
                for dataset, records in self._records.items()
                for i, r in enumerate(records)
            }
        found = self._where.get(record["id"])
        if found is not None:
            dataset, i = found
            self._records[dataset][i] = record
