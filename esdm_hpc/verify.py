"""Scrubbing: check every manifest and pack, then read every committed fragment
replica and check every block (docs/architecture.md §7.1, §7.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from esdm_hpc.backends import BackendError
from esdm_hpc.epochs.chaincheck import MetadataDamage, check_chain
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.fragment import Fragment, Replica, newest_records
from esdm_hpc.placement import reaches
from esdm_hpc.reader import block_region
from esdm_hpc.selection import Hyperslab


@dataclass(frozen=True, slots=True)
class Damage:
    dataset: str
    region: str
    fragment: str
    backend: str
    location: str
    blocks: tuple[int, ...]
    problem: str

    def __str__(self) -> str:
        blocks = f" block(s) {list(self.blocks)}" if self.blocks else ""
        return (
            f"{self.dataset}{self.region}: {self.problem} in fragment {self.fragment}{blocks} "
            f"({self.backend}:{self.location})"
        )


@dataclass(slots=True)
class VerifyReport:
    manifests: int = 0
    packs: int = 0
    fragments: int = 0
    replicas: int = 0
    bytes_checked: int = 0
    elsewhere: int = 0  # replicas on other nodes' burst buffers: checked there
    damage: list[MetadataDamage | Damage] = field(default_factory=list)


def verify(
    store: ContainerStore, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """``progress(done, total)`` counts the manifests and packs (all checked by its
    first call) and the fragments."""
    chain = check_chain(store)
    report = VerifyReport(chain.manifests, chain.packs, damage=list(chain.damage))
    datasets = chain.namespace.datasets if chain.namespace else {}
    checked = chain.manifests + chain.packs
    fragments = newest_records(chain.fragments)
    total = checked + len(fragments)
    if progress:
        progress(checked, total)
    for done, fragment in enumerate(fragments, checked + 1):
        meta = datasets.get(fragment.dataset)
        itemsize = meta.dtype.itemsize if meta else 1
        report.fragments += 1
        for replica in fragment.replicas:
            if replica.backend in store.backends and not reaches(store.backends, replica):
                report.elsewhere += 1
                continue
            report.replicas += 1
            report.bytes_checked += replica.length
            problem = _check(store, fragment, replica, itemsize)
            if problem:
                report.damage.append(problem)
        if progress:
            progress(done, total)
    return report


def _check(
    store: ContainerStore, fragment: Fragment, replica: Replica, itemsize: int
) -> Damage | None:
    def damage(blocks: tuple[int, ...], problem: str, region: str) -> Damage:
        return Damage(
            fragment.dataset,
            region,
            fragment.id,
            replica.backend,
            replica.location,
            blocks,
            problem,
        )

    whole = str(Hyperslab(fragment.offset, fragment.count))
    backend = store.backends.get(replica.backend)
    if backend is None:
        return damage((), f"backend {replica.backend!r} is not configured", whole)
    try:
        data = backend.read(replica.location, replica.byte_offset, replica.length)
    except BackendError as error:
        return damage((), f"unreadable ({error})", whole)
    bad = tuple(fragment.mismatched_blocks(data))
    if not bad:
        return None
    return damage(bad, "checksum mismatch", block_region(fragment, bad[0], itemsize))
