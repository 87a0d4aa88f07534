"""Replica repair (docs/architecture.md §7.1): `esdm verify --repair`.

A fragment whose replica `esdm_hpc.verify` found damaged (a flipped block, a
truncated or missing log) is repaired from one of its other replicas that
verifies: those bytes are appended anew to the damaged replica's backend and
a new epoch records the fragment with the new replica in place of the damaged
one, published like any commit (`EpochWriter.replicate`, as a drain does). A
damaged copy on a burst buffer is only dropped: the fragment keeps its good
global replicas. A fragment with no good replica is reported by dataset and
region, and left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from esdm_hpc.backends import BackendError
from esdm_hpc.container import Container
from esdm_hpc.container import open as open_container
from esdm_hpc.epochs.history import History
from esdm_hpc.fragment import Fragment, Replica
from esdm_hpc.placement import cheapest_first
from esdm_hpc.selection import Hyperslab
from esdm_hpc.verify import Damage


@dataclass(slots=True)
class RepairReport:
    repaired: list[str] = field(default_factory=list)  # one line per repaired fragment
    unrepairable: list[str] = field(default_factory=list)  # by dataset and region
    epoch: int | None = None  # the epoch that published the repairs


def repair(uri: str, damage: Sequence[Damage], *, config: Any = None) -> RepairReport:
    """Repair the fragments of ``damage`` (from `verify`) that have a good replica."""
    report = RepairReport()
    damaged: dict[str, set[tuple[str, str]]] = {}
    for found in damage:
        damaged.setdefault(found.fragment, set()).add((found.backend, found.location))
    if not damaged:
        return report
    with open_container(uri, "a", config=config) as container:
        current = {f.id: f for f in History.load(container.store).fragments()}
        for fragment_id, bad in damaged.items():
            fragment = current[fragment_id]
            if not _repair(container, fragment, bad):
                region = Hyperslab(fragment.offset, fragment.count)
                report.unrepairable.append(
                    f"{fragment.dataset}{region}: fragment {fragment.id} has no replica that "
                    f"verifies ({', '.join(f'{b}:{n}' for b, n in sorted(bad))} damaged)"
                )
                continue
            places = ", ".join(f"{b}:{n}" for b, n in sorted(bad))
            report.repaired.append(f"{fragment.dataset}: fragment {fragment.id} ({places})")
        if container.pending:
            report.epoch = container.commit()
    return report


def _repair(container: Container, fragment: Fragment, bad: set[tuple[str, str]]) -> bool:
    """Record ``fragment`` with a new copy of a good replica's bytes in place of each
    damaged global replica; False if none of its replicas verifies."""
    kept = [r for r in fragment.replicas if (r.backend, r.location) not in bad]
    payload = _good_bytes(container, fragment, kept)
    if payload is None:
        return False
    lost = [r for r in fragment.replicas if (r.backend, r.location) in bad]
    again = list(dict.fromkeys(r.backend for r in lost if r.node is None))
    container.open_epoch.writer.replicate(fragment, payload, again, kept)
    return True


def _good_bytes(
    container: Container, fragment: Fragment, replicas: Sequence[Replica]
) -> np.ndarray | None:
    """The bytes of the first of ``replicas`` (cheapest first) that verify."""
    for replica in cheapest_first(replicas, container.backends):
        try:
            data = container.backends[replica.backend].read(
                replica.location, replica.byte_offset, replica.length
            )
        except BackendError:
            continue
        if not fragment.mismatched_blocks(data):
            return np.frombuffer(data, np.uint8)
    return None
