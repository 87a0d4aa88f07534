"""Placement (seed 6.2): how a write becomes fragments (`split`), which backends they go
to (`choose_backends`) and which replica a read tries first (`cheapest_first`), both by
one cost model (`CostModel`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from esdm_hpc.backends import Backend
from esdm_hpc.config import BackendConfig, SiteConfig, Weights
from esdm_hpc.errors import CorruptDataError, EsdmError, ReplicaUnreachableError
from esdm_hpc.fragment import Fragment, Replica


@dataclass(frozen=True)
class CostModel:
    """The estimated cost of writing or reading ``nbytes`` on a backend.

    Time is the backend's latency plus the size over its bandwidth (`_seconds`);
    a write also takes a share of the backend's capacity (so a nearly full tier
    is avoided). ``weights.time`` and ``weights.capacity`` trade the two off;
    ``weights.cost`` has no term yet, since the configuration gives no price per byte.

    The estimates come from each backend's `PerformanceModel`: the configured one,
    or with ``performance_model = "learned"`` the measured write latency and
    bandwidth in its place (`measured.learned_site`). Free space decides only
    whether a backend has room (`has_room`), not its cost.
    """

    weights: Weights

    def write_seconds(self, backend: BackendConfig, nbytes: int) -> float:
        """The estimated time of writing ``nbytes`` to ``backend``."""
        return self._seconds(backend, nbytes, backend.performance.write_bandwidth)

    def write_cost(self, backend: BackendConfig, nbytes: int) -> float:
        """The weighted cost of writing ``nbytes`` to ``backend``: lower is better."""
        model = backend.performance
        time = self.write_seconds(backend, nbytes)
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


def choose_backends(
    config: SiteConfig, nbytes: int, room: Callable[[BackendConfig], bool] = lambda _: True
) -> list[BackendConfig]:
    """Where a write of ``nbytes`` goes: the backends a rank reaches (every global one
    and its node's burst buffers), by increasing `CostModel.write_cost` under
    ``config.weights`` (in configuration order where costs tie), skipping those
    without ``room`` for it. The cheapest takes it: a burst buffer alone (its drain
    makes the global replicas later), or a global backend with the next global
    ones up to ``config.replicas``. Where nothing has room, the cheapest global
    ones are tried all the same, and the write fails there with the full disk's
    error.
    """
    if len(config.backends) == 1:  # no choice (the common site): no cost model per write
        return list(config.backends)
    model = CostModel(config.weights)
    ranked = sorted(config.backends, key=lambda b: model.write_cost(b, nbytes))
    fitting = [b for b in ranked if room(b)]
    if fitting and fitting[0].accessibility == "node-local":
        return fitting[:1]
    usable = [b for b in fitting if b.accessibility == "global"]
    usable += [b for b in ranked if b.accessibility == "global" and b not in usable]
    return usable[: config.replicas]


def drain_targets(
    config: SiteConfig, burst_buffer: BackendConfig, nbytes: int, kept: int = 0
) -> list[str]:
    """Where a fragment of ``nbytes`` drains to from ``burst_buffer``: its ``drain_to``,
    then the cheapest other global backends, until it has ``config.replicas`` global
    replicas with the ``kept`` it has already."""
    assert burst_buffer.drain_to is not None  # the configuration requires it
    cheapest = choose_backends(config, nbytes, lambda b: b.accessibility == "global")
    others = [b.id for b in cheapest if b.id != burst_buffer.drain_to]
    return [burst_buffer.drain_to, *others][: max(1, config.replicas - kept)]


def has_room(backend: Backend, nbytes: int) -> bool:
    """Whether ``backend`` reports room for ``nbytes`` and a reserve (`ROOM_RESERVE`)."""
    free = backend.free_bytes()
    return free is None or free >= nbytes + ROOM_RESERVE


# Kept free on a backend that reports its free space: a log's buffered small
# appends (posix gathers up to 1 MiB) are written later than placement sees them.
ROOM_RESERVE = 2 << 20


# The weights do not change a read's cost, so reads need no site configuration:
# the reader has only the open backends.
_READS = CostModel(Weights())


def cheapest_first(replicas: Sequence[Replica], backends: Mapping[str, Backend]) -> list[Replica]:
    """The replicas on one of ``backends`` (a node-local one only on its node), by
    increasing `CostModel.read_cost` of their length (in the fragment's order
    where costs tie); the others are left out."""
    reachable = [r for r in replicas if reaches(backends, r)]
    return sorted(reachable, key=lambda r: _READS.read_cost(backends[r.backend].config, r.length))


def reaches(backends: Mapping[str, Backend], replica: Replica) -> bool:
    """Whether ``replica`` can be read through ``backends`` on this node."""
    backend = backends.get(replica.backend)
    return backend is not None and backend.node == replica.node


def no_replica(path: str, fragment: Fragment, backends: Mapping[str, Backend]) -> EsdmError:
    """The error of a read that reaches no replica of ``fragment`` of dataset ``path``."""
    elsewhere = sorted({r.node for r in fragment.replicas if r.node is not None})
    if elsewhere and not any(reaches(backends, r) for r in fragment.replicas):
        nodes = ", ".join(elsewhere)
        return ReplicaUnreachableError(
            f"{path}: fragment {fragment.id} is only on the burst buffer of node {nodes}, "
            f"not drained yet: run `esdm drain` on {nodes}, or read it there"
        )
    return CorruptDataError(f"{path}: fragment {fragment.id} has no readable replica")


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
