"""The layout component (seed 6.2): how a write becomes fragments and where they go."""

from __future__ import annotations

from collections.abc import Iterator

from esdm_hpc.config import BackendConfig, SiteConfig


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


def choose_backends(config: SiteConfig, nbytes: int) -> list[BackendConfig]:
    """The ``config.replicas`` global backends with the lowest weighted cost for ``nbytes``.

    Cost is the estimated write time (latency + size / bandwidth) weighted by
    ``weights.time``, plus ``weights.capacity`` times the share of the backend's
    capacity the write would take (so a nearly full tier is avoided).
    """
    candidates = [b for b in config.backends if b.accessibility == "global"]
    if len(candidates) == 1:  # no choice (the common site): no cost model per write
        return candidates[: config.replicas]
    return sorted(candidates, key=lambda b: _cost(config, b, nbytes))[: config.replicas]


def _cost(config: SiteConfig, backend: BackendConfig, nbytes: int) -> float:
    model = backend.performance
    seconds = model.latency_s + nbytes / model.write_bandwidth
    share = nbytes / model.capacity if model.capacity else 0.0
    return config.weights.time * seconds + config.weights.capacity * share


def _nbytes(count: tuple[int, ...], itemsize: int) -> int:
    total = itemsize
    for c in count:
        total *= c
    return total
