"""Placement: the cost model that places writes (`choose_backends`) and orders a read's
replicas (`cheapest_first`), and the cutting of writes into fragments (`split`)."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import esdm_hpc
from esdm_hpc.backends import Backend, open_backend
from esdm_hpc.config import BackendConfig, PerformanceModel, SiteConfig, Weights
from esdm_hpc.fragment import Replica
from esdm_hpc.placement import CostModel, cheapest_first, choose_backends, split

GB = 10**9

# Few distinct values, so that equal costs (and the order they keep) are common.
latencies = st.one_of(st.sampled_from([0.0, 1e-6, 1e-3]), st.floats(0, 3600))
bandwidths = st.one_of(st.sampled_from([1e6, 1e9]), st.floats(1, 1e18))
capacities = st.one_of(st.none(), st.sampled_from([1 << 20, 1 << 40]), st.integers(1, 2**63 - 1))
weights = st.builds(
    Weights, *[st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1e6))] * 3
).filter(lambda w: w.time or w.capacity or w.cost)
sizes = st.one_of(st.sampled_from([0, 1, 4096, 64 << 20]), st.integers(0, 2**62))


def backend(
    name: str,
    latency: float = 1e-3,
    bandwidth: float = GB,
    capacity: int | None = None,
    accessibility: str = "global",
) -> BackendConfig:
    return BackendConfig(
        id=name, type="memory", target=f"test-placement-{name}", tier="memory",
        accessibility=accessibility,  # type: ignore[arg-type]
        performance=PerformanceModel(latency, bandwidth, bandwidth, capacity),
    )  # fmt: skip


@st.composite
def sites(draw: st.DrawFn) -> SiteConfig:
    """One to five backends, the first global (metadata needs one), under any weights."""
    n = draw(st.integers(1, 5))
    where = ["global", *draw(st.lists(st.sampled_from(["global", "node-local"]), min_size=n - 1,
                                      max_size=n - 1))]  # fmt: skip
    backends = tuple(
        backend(f"b{i}", draw(latencies), draw(bandwidths), draw(capacities), where[i])
        for i in range(n)
    )
    replicas = draw(st.integers(1, where.count("global")))
    return SiteConfig(
        backends=backends, weights=draw(weights), replicas=replicas, metadata_backend="b0"
    )


def opened(*configs: BackendConfig) -> dict[str, Backend]:
    return {b.id: open_backend(b) for b in configs}


TIME = Weights()  # the default weights: time alone


def site(*backends: BackendConfig, weights: Weights = TIME) -> SiteConfig:
    return SiteConfig(backends=backends, weights=weights, metadata_backend=backends[0].id)


# --- writes -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sites(), sizes, st.data())
def test_writes_go_to_the_cheapest_burst_buffer_or_distinct_global_backends(
    config: SiteConfig, nbytes: int, data: st.DataObject
) -> None:
    """The cheapest backend with room takes the write: a burst buffer alone, or a global
    backend with the next cheapest global ones with room, up to ``replicas``."""
    full = data.draw(st.sets(st.sampled_from([b.id for b in config.backends])), label="full")
    chosen = choose_backends(config, nbytes, lambda b: b.id not in full)
    model = CostModel(config.weights)

    def rank(b: BackendConfig) -> tuple[bool, float, int]:  # those with room first
        return b.id in full, model.write_cost(b, nbytes), config.backends.index(b)

    ranked = sorted(config.backends, key=rank)
    if len(config.backends) == 1:
        assert chosen == list(config.backends)
    elif ranked[0].accessibility == "node-local" and ranked[0].id not in full:
        assert chosen == ranked[:1]
    else:
        candidates = [b for b in ranked if b.accessibility == "global"]
        assert chosen == candidates[: config.replicas]


@settings(max_examples=200, deadline=None)
@given(sites(), sizes)
def test_a_faster_backend_with_room_is_chosen_first(config: SiteConfig, nbytes: int) -> None:
    """Whatever the weights, no backend ranks above one with no latency, the highest
    bandwidth and no capacity limit (equal costs keep the configuration's order)."""
    best = backend("best", latency=0.0, bandwidth=1e18)
    assert choose_backends(site(best, *config.backends, weights=config.weights), nbytes)[0] == best


def test_small_writes_go_to_the_low_latency_backend_and_large_to_the_high_bandwidth_one() -> None:
    near = backend("near", latency=1e-6, bandwidth=1 * GB)
    wide = backend("wide", latency=1e-2, bandwidth=100 * GB)
    config = site(near, wide)
    assert choose_backends(config, 4096) == [near]
    assert choose_backends(config, 10 * GB) == [wide]


def test_the_capacity_weight_keeps_writes_off_a_nearly_full_backend() -> None:
    small = backend("small", bandwidth=10 * GB, capacity=1 << 30)
    large = backend("large", bandwidth=1 * GB)
    assert choose_backends(site(small, large), 512 << 20) == [small]
    assert choose_backends(site(small, large, weights=Weights(1, 10)), 512 << 20) == [large]


def test_a_burst_buffer_takes_writes_while_it_has_room_then_they_spill() -> None:
    slow = backend("slow", latency=60.0, bandwidth=1)
    local = backend("local", latency=0.0, bandwidth=1e18, accessibility="node-local")
    assert choose_backends(site(local, slow), 1 << 30) == [local]
    assert choose_backends(site(slow, local), 0) == [local]
    assert choose_backends(site(slow, local), 0, lambda b: b is not local) == [slow]
    # a cheaper global backend takes the write without the burst buffer
    fast = backend("fast", latency=0.0, bandwidth=1e18)
    assert choose_backends(site(fast, local), 1 << 30) == [fast]


def test_a_write_lands_on_the_backend_the_model_chooses(tmp_path: Path) -> None:
    def posix(name: str, bandwidth: str, capacity: str = "1 PiB") -> dict:
        performance = {"write_bandwidth": bandwidth, "capacity": capacity}
        return {"id": name, "type": "posix", "target": str(tmp_path / name),
                "performance": performance}  # fmt: skip

    field = np.arange(64 * 64, dtype=np.float64).reshape(64, 64)
    for name, weights, expected in [("time", {}, "fast"), ("room", {"capacity": 1e6}, "slow")]:
        backends = [posix("slow", "100 MB/s"), posix("fast", "10 GB/s", capacity="1 MiB")]
        config = {"backends": backends, "weights": weights}
        with esdm_hpc.open(f"esdm://{name}", "w", config=config) as c:
            c.create_dataset("x", data=field)
        logs = {b: len(list((tmp_path / b).rglob(f"*{name}*/**/*.log"))) for b in ("slow", "fast")}
        assert logs == {"slow": 0, "fast": 0} | {expected: 1}, (name, logs)
        with esdm_hpc.open(f"esdm://{name}", config=config) as c:
            np.testing.assert_array_equal(c["x"][...], field)


# --- reads --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sites(), st.data())
def test_reads_try_the_cheapest_replica_first(config: SiteConfig, data: st.DataObject) -> None:
    """Every replica on an open backend, by read cost, equal costs in the fragment's order."""
    names = [b.id for b in config.backends]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True), label="open backends")
    backends = opened(*(b for b in config.backends if b.id in chosen))
    where = st.tuples(st.sampled_from([*names, "gone"]), sizes)
    # the byte offset numbers the replicas, to find each one's place in the fragment
    replicas = [
        Replica(name, "log", i, length)
        for i, (name, length) in enumerate(data.draw(st.lists(where, max_size=6), label="where"))
    ]
    ordered = cheapest_first(replicas, backends)
    assert sorted(r.byte_offset for r in ordered) == [
        r.byte_offset for r in replicas if r.backend in chosen
    ]
    model = CostModel(config.weights)
    ranks = [
        (model.read_cost(backends[r.backend].config, r.length), r.byte_offset) for r in ordered
    ]
    assert ranks == sorted(ranks)
    # a read takes time and nothing else: the weights do not change its cost
    assert [model.read_cost(backends[r.backend].config, r.length) for r in ordered] == [
        CostModel(Weights(0, 1)).read_cost(backends[r.backend].config, r.length) for r in ordered
    ]


def test_a_small_read_goes_to_the_low_latency_replica_and_a_large_one_to_the_wide() -> None:
    near = backend("near", latency=1e-6, bandwidth=1 * GB)
    wide = backend("wide", latency=1e-2, bandwidth=100 * GB)
    backends = opened(near, wide)

    def first(length: int) -> str:
        replicas = [Replica(name, "log", 0, length) for name in ("wide", "near")]
        return cheapest_first(replicas, backends)[0].backend

    assert (first(4096), first(10 * GB)) == ("near", "wide")


# --- cutting writes into fragments --------------------------------------------------------

shapes = st.lists(st.integers(0, 6), max_size=4).map(tuple)


@settings(max_examples=300, deadline=None)
@given(shapes, st.integers(1, 16), st.integers(1, 2000), st.data())
def test_split_tiles_the_hyperslab_in_contiguous_pieces(
    count: tuple[int, ...], itemsize: int, max_bytes: int, data: st.DataObject
) -> None:
    offset = tuple(data.draw(st.lists(st.integers(0, 100), min_size=len(count),
                                      max_size=len(count))))  # fmt: skip
    pieces = list(split(offset, count, itemsize, max_bytes))
    covered = np.zeros(count, dtype=np.int64)
    for piece_offset, piece_count in pieces:
        rel = [p - o for p, o in zip(piece_offset, offset, strict=True)]
        covered[tuple(slice(r, r + c) for r, c in zip(rel, piece_count, strict=True))] += 1
        assert int(np.prod(piece_count)) * itemsize <= max(max_bytes, itemsize)
        # whole rows of the fastest axes: ones, then one cut axis, then full extents
        cut = next((i for i, c in enumerate(piece_count) if c != 1), len(count))
        assert piece_count[cut + 1 :] == count[cut + 1 :], (piece_count, count)
    assert (covered == 1).all()
    if 0 in count:
        assert pieces == []
    starts = [p for p, _ in pieces]
    assert starts == sorted(starts)  # in C order


@pytest.mark.parametrize(
    ("count", "max_bytes", "pieces"),
    [
        ((), 1, [((), ())]),
        ((0, 5), 1, []),
        ((4, 5), 160, [((0, 0), (4, 5))]),
        ((4, 5), 80, [((0, 0), (2, 5)), ((2, 0), (2, 5))]),
        ((2, 5), 16, [((0, 0), (1, 2)), ((0, 2), (1, 2)), ((0, 4), (1, 1)),
                      ((1, 0), (1, 2)), ((1, 2), (1, 2)), ((1, 4), (1, 1))]),
    ],
)  # fmt: skip
def test_split_examples(
    count: tuple[int, ...], max_bytes: int, pieces: list[tuple[tuple[int, ...], ...]]
) -> None:
    assert list(split((0,) * len(count), count, 8, max_bytes)) == pieces
