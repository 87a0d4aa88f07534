import pickle
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esdm_hpc.kernels import boxindex
from esdm_hpc.kernels.boxindex import BoxIndex, plan_cover
from tests.reference import boxindex as reference

# ---- query -------------------------------------------------------------------


@st.composite
def boxes_and_queries(draw: st.DrawFn, max_ndim: int = 4) -> tuple:
    """(offsets, counts, queries): up to 700 boxes (three tree levels) in 1 to max_ndim
    dimensions and a few query boxes, some empty, some outside the boxes' domain.  Half
    the time on a coarse lattice, where duplicate and touching boxes are common."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ndim = draw(st.integers(1, max_ndim))
    n = draw(st.one_of(st.sampled_from([0, 1, 2, 16, 17, 257]), st.integers(0, 700)))
    span = draw(st.sampled_from([4, 30, 1000, 2**60]))  # 2**60: extents beyond the key bits
    lattice = draw(st.booleans())

    def random_boxes(k: int, reach: int) -> tuple[np.ndarray, np.ndarray]:
        offsets = rng.integers(-reach, reach, (k, ndim))
        counts = rng.integers(0, span // 2 + 2, (k, ndim))
        if lattice:
            offsets, counts = offsets // 4 * 4, counts // 4 * 4
        return offsets, counts

    offsets, counts = random_boxes(n, span)
    queries = list(zip(*random_boxes(8, 2 * span), strict=True))
    return offsets, counts, queries


@settings(deadline=None)  # building 700 boxes is quick, but the machine may be loaded
@given(boxes_and_queries())
def test_query_matches_brute_force(case: tuple) -> None:
    offsets, counts, queries = case
    index = BoxIndex(offsets, counts)
    assert len(index) == len(offsets) and index.ndim == offsets.shape[1]
    for offset, count in [*queries, (offsets.min(0, initial=0), np.full(index.ndim, 2**61))]:
        hits = index.query(offset, count)
        assert hits.dtype == np.int64
        np.testing.assert_array_equal(hits, reference.query(offsets, counts, offset, count))


def test_query_examples() -> None:
    index = BoxIndex([[0], [2], [2], [5], [1]], [[2], [2], [0], [1], [3]])
    assert index.query([2], [1]).tolist() == [1, 4]  # [0, 2) touches [2, 3): no hit
    assert index.query([1], [2]).tolist() == [0, 1, 4]
    assert index.query([4], [1]).tolist() == []  # in the gap between [2, 4) and [5, 6)
    assert index.query([2], [0]).tolist() == []  # an empty query meets nothing
    assert index.query([-100], [1000]).tolist() == [0, 1, 3, 4]  # the empty box 2 never
    assert index.query([6], [10]).tolist() == []  # beyond all boxes


def test_query_of_few_boxes() -> None:
    none = BoxIndex(np.empty((0, 3), np.int32), np.empty((0, 3), np.int32))
    assert len(none) == 0 and none.ndim == 3
    assert none.query([0, 0, 0], [9, 9, 9]).tolist() == []
    one = BoxIndex([[1, 1]], [[2, 2]])
    assert one.query([0, 0], [2, 2]).tolist() == [0]
    assert one.query([3, 0], [2, 2]).tolist() == []
    empty = BoxIndex([[1, 1]], [[2, 0]])
    assert empty.query([0, 0], [9, 9]).tolist() == []


def grid_blocks(blocks: tuple[int, ...], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The decomposition of an array into a grid of blocks of `size` per axis, row-major."""
    corners = np.indices(blocks).reshape(len(blocks), -1).T * size
    return corners, np.full(corners.shape, size)


def test_query_of_a_grid_in_eight_dimensions() -> None:
    offsets, counts = grid_blocks((3, 2, 3, 2, 2, 3, 2, 2), 2)
    index = BoxIndex(offsets, counts)
    for offset, count in [([1] * 8, [2] * 8), ([0] * 8, [1] * 8), ([3] * 8, [10] * 8)]:
        np.testing.assert_array_equal(
            index.query(offset, count), reference.query(offsets, counts, offset, count)
        )


def test_boxes_and_pickle_round_trip() -> None:
    rng = np.random.default_rng(7)
    offsets = rng.integers(-50, 50, (300, 2)).astype(np.int16)
    counts = rng.integers(0, 9, (300, 2)).astype(np.uint8)  # some empty
    index = BoxIndex(offsets, counts)
    got_offsets, got_counts = index.boxes()
    np.testing.assert_array_equal(got_offsets, offsets)
    np.testing.assert_array_equal(got_counts, counts)
    assert got_offsets.dtype == got_counts.dtype == np.int64
    assert index.nbytes >= 300 * (2 * 2 * 8 + 4)
    assert repr(index) == "BoxIndex(300 boxes, ndim=2)"

    copy = pickle.loads(pickle.dumps(index))
    assert len(copy) == 300 and copy.ndim == 2
    for box in [([0, 0], [10, 10]), ([-60, 5], [200, 1])]:
        np.testing.assert_array_equal(copy.query(*box), index.query(*box))


def test_threads_share_an_index() -> None:
    offsets, counts = grid_blocks((40, 40, 40), 4)
    index = BoxIndex(offsets, counts)
    columns = [([x, 7, 0], [3, 3, 160]) for x in range(0, 150, 3)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda box: index.query(*box), columns))
    for (offset, count), hits in zip(columns, results, strict=True):
        np.testing.assert_array_equal(hits, reference.query(offsets, counts, offset, count))


# ---- plan_cover --------------------------------------------------------------

# Small regions and fragments live in [LO, HI) per axis, so that they can be rasterised.
LO, HI = -2, 18


@st.composite
def plan_cases(draw: st.DrawFn) -> tuple:
    """(offset, count, offsets, counts, order) on a small raster, with a random subset
    of the fragments in a random order, some of them empty or outside the region."""
    ndim = draw(st.integers(1, 3))
    n = draw(st.integers(0, 12))
    coordinate, extent = st.integers(LO, 12), st.integers(0, 6)
    box = st.tuples(*[coordinate] * ndim), st.tuples(*[extent] * ndim)
    offset, count = draw(box[0]), draw(box[1])
    offsets = draw(st.lists(box[0], min_size=n, max_size=n))
    counts = draw(st.lists(box[1], min_size=n, max_size=n))
    ranked = draw(st.permutations(range(n)))
    order = ranked[: draw(st.integers(0, n))]
    return (
        np.array(offset, np.int64),
        np.array(count, np.int64),
        np.array(offsets, np.int64).reshape(n, ndim),
        np.array(counts, np.int64).reshape(n, ndim),
        np.array(order, np.int64),
    )


def assert_plan_is_right(case: tuple) -> None:
    """Checks plan_cover against painting the fragments cell by cell."""
    offset, count, _, _, order = case
    piece_offsets, piece_counts, source = plan_cover(*case)
    k, ndim = len(source), len(offset)
    assert piece_offsets.shape == piece_counts.shape == (k, ndim)
    assert piece_offsets.dtype == piece_counts.dtype == source.dtype == np.int64
    assert np.all(piece_counts > 0)
    assert np.all(piece_offsets >= offset)
    assert np.all(piece_offsets + piece_counts <= offset + count)

    # Disjoint and tiling the region: every cell lies in exactly one piece.
    layers = np.zeros(tuple(count), np.int64)
    cells = np.full(tuple(count), -2, np.int64)
    for lo, n, s in zip(piece_offsets, piece_counts, source, strict=True):
        layers[tuple(slice(a, a + b) for a, b in zip(lo - offset, n, strict=True))] += 1
        reference.paint(cells, offset, lo, n, s)
    assert np.all(layers == 1)
    np.testing.assert_array_equal(cells, reference.source_map(*case))

    # Grouped by source in priority order, the uncovered pieces last.
    rank = {int(f): r for r, f in enumerate(order)} | {-1: len(order)}
    ranks = [rank[int(s)] for s in source]
    assert ranks == sorted(ranks)


@given(plan_cases())
def test_plan_cover_matches_painting(case: tuple) -> None:
    assert_plan_is_right(case)


@st.composite
def many_fragment_plans(draw: st.DrawFn) -> tuple:
    """Plans from hundreds or thousands of fragments, enough to cut the region before
    walking it: random boxes, or a grid of blocks with newer blocks on top, shifted by
    half a block, in a random order."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ndim = draw(st.integers(1, 3))
    side = {1: 400, 2: 40, 3: 14}[ndim]
    if draw(st.booleans()):
        n = draw(st.integers(30, 300))
        offsets = rng.integers(-3, side, (n, ndim))
        counts = rng.integers(0, side // 3, (n, ndim))
    else:
        size = draw(st.integers(1, 4))
        offsets, counts = grid_blocks((side // size + 1,) * ndim, size)
        newer = rng.permutation(len(offsets))[: len(offsets) // 3]
        offsets = np.concatenate([offsets[newer] + size // 2, offsets])
        counts = np.concatenate([counts[newer], counts])
    order = rng.permutation(len(offsets))[: draw(st.integers(len(offsets) // 2, len(offsets)))]
    offset = rng.integers(-2, side // 2, ndim)
    count = rng.integers(0, side, ndim)
    return offset, count, offsets, counts, order


@settings(deadline=None, max_examples=60)
@given(many_fragment_plans())
def test_plan_cover_of_many_fragments_matches_painting(case: tuple) -> None:
    assert_plan_is_right(case)


def test_plan_cover_examples() -> None:
    region = ([0, 0], [4, 4])
    # Fragment 1 (newest) over the left half of fragment 0; the bottom row is uncovered.
    offsets, counts = [[0, 0], [0, 0]], [[3, 4], [3, 2]]
    piece_offsets, piece_counts, source = plan_cover(*region, offsets, counts, [1, 0])
    assert source.tolist() == [1, 0, -1]
    assert piece_offsets.tolist() == [[0, 0], [0, 2], [3, 0]]
    assert piece_counts.tolist() == [[3, 2], [3, 2], [1, 4]]
    # The other priority: fragment 0 hides fragment 1, which gets nothing.
    assert plan_cover(*region, offsets, counts, [0, 1])[2].tolist() == [0, -1]
    # Unlisted fragments take no part; by default all do, by index.
    assert plan_cover(*region, offsets, counts, [])[2].tolist() == [-1]
    assert plan_cover(*region, offsets, counts)[2].tolist() == [0, -1]
    # An empty region has no pieces.
    assert plan_cover([0, 0], [0, 4], offsets, counts)[0].shape == (0, 2)


def test_plan_cover_of_a_shuffled_grid_has_a_piece_per_block() -> None:
    offsets, counts = grid_blocks((30, 30, 30), 4)
    order = np.random.default_rng(3).permutation(len(offsets))
    region = (np.array([2, 6, 10]), np.array([80, 60, 40]))  # cuts through blocks at the edges
    _, piece_counts, source = plan_cover(*region, offsets, counts, order)
    assert sorted(source.tolist()) == reference.query(offsets, counts, *region).tolist()
    assert piece_counts.prod(axis=1).sum() == region[1].prod()


# ---- bad input -------------------------------------------------------------------

BAD_INDEX = [
    ([[0, 0]], [[1, 1, 1]], "counts must have the shape of offsets"),
    ([[0, 0]], [[1, -1]], "counts must be non-negative"),
    ([[0.0, 0.0]], [[1, 1]], "offsets must hold integers"),
    ([0, 0], [1, 1], r"offsets must have shape \(n, ndim\)"),
    (np.zeros((2, 9), int), np.ones((2, 9), int), "offsets: boxes must have 1 to 8"),
    ([[2**63 - 2]], [[2]], "offsets \\+ counts overflows"),
]


@pytest.mark.parametrize(("offsets", "counts", "message"), BAD_INDEX)
def test_box_index_rejects_bad_boxes(offsets, counts, message) -> None:
    with pytest.raises(ValueError, match=message):
        BoxIndex(offsets, counts)


BAD_QUERY = [
    ([0, 0, 0], [1, 1, 1], "offset: a box of 3 dimensions does not match the index of 2"),
    ([[0, 0]], [1, 1], r"offset must have shape \(ndim,\)"),
    ([0, 0], [1], "count must have the shape of offset"),
    ([0, 0], [1, -1], "count must be non-negative"),
    ([0, 0], [1.5, 1], "count must hold integers"),
]


@pytest.mark.parametrize(("offset", "count", "message"), BAD_QUERY)
def test_query_rejects_bad_boxes(offset, count, message) -> None:
    with pytest.raises(ValueError, match=message):
        BoxIndex([[0, 0]], [[1, 1]]).query(offset, count)


REGION, FRAGMENTS = ([0, 0], [4, 4]), ([[0, 0], [1, 1]], [[2, 2], [2, 2]])
BAD_PLAN = [
    (([0, 0, 0], [4, 4, 4], *FRAGMENTS, None), "offsets: boxes of 2 dimensions do not match"),
    (([0, 0], [4, -4], *FRAGMENTS, None), "count must be non-negative"),
    ((*REGION, [[0, 0]], [[1, 1], [1, 1]], None), "counts must have the shape of offsets"),
    ((*REGION, *FRAGMENTS, [0, 2]), "order must hold indices of the 2 fragments"),
    ((*REGION, *FRAGMENTS, [-1]), "order must hold indices of the 2 fragments"),
    ((*REGION, *FRAGMENTS, [1, 1]), "order must not repeat a fragment"),
    ((*REGION, *FRAGMENTS, [[0, 1]]), r"order must have shape \(k,\)"),
    ((*REGION, *FRAGMENTS, [0.0, 1.0]), "order must hold integers"),
]


@pytest.mark.parametrize(("args", "message"), BAD_PLAN)
def test_plan_cover_rejects_bad_input(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        plan_cover(*args)


def test_limits() -> None:
    assert boxindex.MAX_NDIM == 8
    assert boxindex.MAX_BOXES == 2**32 - 1


# ---- performance -------------------------------------------------------------------


def test_a_million_blocks_answer_a_column_query_in_well_under_10_ms() -> None:
    offsets, counts = grid_blocks((100, 100, 100), 10)  # a 1000**3 field in 10**3 blocks
    start = time.perf_counter()
    index = BoxIndex(offsets, counts)
    assert time.perf_counter() - start < 10  # about 0.3 s; generous on a loaded machine

    rng = np.random.default_rng(0)
    columns = [([x, y, 0], [16, 16, 1000]) for x, y in rng.integers(0, 1000 - 16, (100, 2))]
    start = time.perf_counter()
    hits = [index.query(*column) for column in columns]
    assert (time.perf_counter() - start) / len(columns) < 0.050  # typically 0.2 ms
    for column, got in list(zip(columns, hits, strict=True))[:3]:
        np.testing.assert_array_equal(got, reference.query(offsets, counts, *column))
        assert 400 <= len(got) <= 900  # 2 or 3 blocks across on each of two axes
