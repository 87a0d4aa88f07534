"""Placement (seed 6.2): how a write becomes fragments (`split`), which backends they go
to (`choose_backends`) and which replica a read tries first (`cheapest_first`), both by
one cost model (`CostModel`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from esdm_hpc.backends import Backend
from esdm_hpc.config import BackendConfig, SiteConfig, Weights
from esdm_hpc.fragment import Replica


@dataclass(frozen=True)
class CostModel:
    """The estimated cost of writing or reading ``nbytes`` on a backend.

    Time is the backend's latency plus the size over its bandwidth (`_seconds`);
    a write also takes a share of the backend's capacity (so a nearly full tier
    is avoided). ``weights.time`` and ``weights.capacity`` trade the two off;
    ``weights.cost`` has no term yet, since the configuration gives no price per byte.

    The estimates come from each backend's configured `PerformanceModel`. Where a
    model learns, measured latency and bandwidth per backend go in `_seconds`, and
    free capacity (``statvfs``, bucket limits) in the share of `write_cost`: writes
    and reads then both follow them.
    """

    weights: Weights

    def write_cost(self, backend: BackendConfig, nbytes: int) -> float:
        """The weighted cost of writing ``nbytes`` to ``backend``: lower is better."""
        model = backend.performance
        time = self._seconds(backend, nbytes, model.write_bandwidth)
        share = nbytes / model.capacity if model.capacity else 0.0
        return self.weights.time * time + self.weights.capacity * share

    def read_cost(self, backend: BackendConfig, nbytes: int) -> float:
        """The cost of reading ``nbytes`` from ``backend``: its estimated time alone.

        A read takes no capacity and has no price, so no weight applies: a time
        weight would only scale every replica alike, or with ``weights.time = 0``
        make them all equal.
        """
        return self._seconds(backend, nbytes, backend.performance.read_bandwidth)

    def _seconds(self, backend: BackendConfig, nbytes: int, bandwidth: float) -> float:
        """The estimated time of moving ``nbytes`` at ``bandwidth`` (bytes/s) after the
        backend's latency."""
        return backend.performance.latency_s + nbytes / bandwidth


def choose_backends(config: SiteConfig, nbytes: int) -> list[BackendConfig]:
    """The ``config.replicas`` global backends with the lowest `CostModel.write_cost` for
    ``nbytes`` under ``config.weights`` (in configuration order where costs tie)."""
    candidates = [b for b in config.backends if b.accessibility == "global"]
    if len(candidates) == 1:  # no choice (the common site): no cost model per write
        return candidates[: config.replicas]
    model = CostModel(config.weights)
    return sorted(candidates, key=lambda b: model.write_cost(b, nbytes))[: config.replicas]


# The weights do not change a read's cost, so reads need no site configuration:
# the reader has only the open backends.
_READS = CostModel(Weights())


def cheapest_first(replicas: Sequence[Replica], backends: Mapping[str, Backend]) -> list[Replica]:
    """The replicas on one of ``backends``, by increasing `CostModel.read_cost` of their
    length (in the fragment's order where costs tie); the others are left out."""
    reachable = [r for r in replicas if r.backend in backends]
    return sorted(reachable, key=lambda r: _READS.read_cost(backends[r.backend].config, r.length))


def split(
    offset: tuple[int, ...], count: tuple[int, ...], itemsize: int, max_bytes: int
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Cut a hyperslab into pieces of at most ``max_bytes``, along the slowest axes.

    Pieces stay whole rows of the fastest axes so each one is contiguous in C
    order; a single row larger than the limit is cut along its own axis.
    """
    if 0 in count:
        return
    if not count:  # a scalar dataset: one element, one piece
        yield offset, count
        return
    if _nbytes(count, itemsize) <= max_bytes:
        yield offset, count
        return
    inner = _nbytes(count[1:], itemsize)
    if inner > max_bytes and len(count) > 1:
        for i in range(count[0]):
            head = (offset[0] + i,)
            for sub_offset, sub_count in split(offset[1:], count[1:], itemsize, max_bytes):
                yield head + sub_offset, (1, *sub_count)
        return
    step = max(1, max_bytes // inner)
    for start in range(0, count[0], step):
        n = min(step, count[0] - start)
        yield (offset[0] + start, *offset[1:]), (n, *count[1:])


def _nbytes(count: tuple[int, ...], itemsize: int) -> int:
    total = itemsize
    for c in count:
        total *= c
    return total
