import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from esdm_hpc.kernels import region
from tests.reference import region as reference

# Small boxes live in [LO, HI) per axis, so that they can be rasterised.
LO, HI = -2, 18


@st.composite
def box_sets(draw: st.DrawFn, max_ndim: int = 3, max_boxes: int = 10) -> tuple:
    """(offset, count, offsets, counts): one box and a set of boxes, some empty."""
    ndim = draw(st.integers(1, max_ndim))
    n = draw(st.integers(0, max_boxes))
    offset = draw(arrays(np.int64, ndim, elements=st.integers(LO, 12)))
    count = draw(arrays(np.int64, ndim, elements=st.integers(0, 6)))
    offsets = draw(arrays(np.int64, (n, ndim), elements=st.integers(LO, 12)))
    counts = draw(arrays(np.int64, (n, ndim), elements=st.integers(0, 6)))
    return offset, count, offsets, counts


def coverage(offsets: np.ndarray, counts: np.ndarray, ndim: int) -> np.ndarray:
    """How many of the boxes cover each cell of the raster."""
    grid = np.zeros((HI - LO,) * ndim, dtype=np.int64)
    for offset, count in zip(offsets, counts, strict=True):
        grid[tuple(slice(o - LO, o + c - LO) for o, c in zip(offset, count, strict=True))] += 1
    return grid


def raster(offset: np.ndarray, count: np.ndarray) -> np.ndarray:
    return coverage(offset[None], count[None], len(offset)) > 0


@given(box_sets())
def test_intersect_matches_rasters(boxes: tuple) -> None:
    offset, count, offsets, counts = boxes
    index, hit_offsets, hit_counts = region.intersect(*boxes)

    overlaps = [raster(offset, count) & raster(o, c) for o, c in zip(offsets, counts, strict=True)]
    assert index.tolist() == [i for i, cells in enumerate(overlaps) if cells.any()]
    assert np.all(hit_counts > 0)
    for k, i in enumerate(index):
        assert np.array_equal(raster(hit_offsets[k], hit_counts[k]), overlaps[i])
    for got, want in zip(
        (index, hit_offsets, hit_counts), reference.intersect(*boxes), strict=True
    ):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.int64


@given(box_sets())
def test_subtract_leaves_the_uncovered_part_in_disjoint_pieces(boxes: tuple) -> None:
    offset, count, offsets, counts = boxes
    piece_offsets, piece_counts = region.subtract(*boxes)

    assert piece_offsets.shape == piece_counts.shape == (len(piece_offsets), len(offset))
    assert np.all(piece_counts > 0)
    pieces = coverage(piece_offsets, piece_counts, len(offset))
    assert pieces.max(initial=0) <= 1
    uncovered = raster(offset, count) & (coverage(offsets, counts, len(offset)) == 0)
    assert np.array_equal(pieces == 1, uncovered)
    for got, want in zip((piece_offsets, piece_counts), reference.subtract(*boxes), strict=True):
        np.testing.assert_array_equal(got, want)


def test_subtract_examples() -> None:
    box = ([0, 0], [4, 4])
    none = np.empty((0, 2), np.int64)
    assert [a.tolist() for a in region.subtract(*box, none, none)] == [[[0, 0]], [[4, 4]]]
    assert region.subtract(*box, [[1, 1]], [[0, 0]])[0].tolist() == [[0, 0]]  # empty: no cut
    assert region.subtract(*box, [[-1, -1]], [[6, 6]])[0].shape == (0, 2)
    assert region.subtract([0, 0], [0, 4], none, none)[0].shape == (0, 2)
    # A hole in the middle: slabs below and above along axis 0, then along axis 1.
    offsets, counts = region.subtract(*box, [[1, 1]], [[2, 2]])
    assert offsets.tolist() == [[0, 0], [3, 0], [1, 0], [1, 3]]
    assert counts.tolist() == [[1, 4], [1, 4], [2, 1], [2, 1]]


@st.composite
def random_box_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Up to 300 boxes in 1 to 8 dimensions, dense enough to overlap, with duplicates,
    touching and empty boxes from a coarse lattice of coordinates."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(0, 300))
    ndim = draw(st.integers(1, region.MAX_NDIM))
    span = draw(st.sampled_from([4, 30, 1000]))
    offsets = rng.integers(-span, span, (n, ndim))
    counts = rng.integers(0, span // 2 + 2, (n, ndim))
    if draw(st.booleans()):  # coarse lattice: many equal and touching bounds
        offsets, counts = offsets // 4 * 4, counts // 4 * 4
    return offsets, counts


@settings(deadline=None)  # the O(n^2) reference takes its time under load
@given(random_box_sets())
def test_find_overlaps_matches_all_pairs(boxes: tuple[np.ndarray, np.ndarray]) -> None:
    pairs = region.find_overlaps(*boxes)
    assert pairs.dtype == np.int64 and pairs.shape[1:] == (2,)
    np.testing.assert_array_equal(pairs, reference.find_overlaps(*boxes))


@given(box_sets(max_boxes=14))
def test_find_overlaps_of_small_boxes(boxes: tuple) -> None:
    _, _, offsets, counts = boxes
    np.testing.assert_array_equal(
        region.find_overlaps(offsets, counts), reference.find_overlaps(offsets, counts)
    )


@settings(deadline=None)  # the O(n^2) reference takes its time under load
@given(random_box_sets(), st.integers(0, 50))
def test_find_overlaps_stops_at_max_pairs(boxes: tuple, max_pairs: int) -> None:
    every = {tuple(p) for p in reference.find_overlaps(*boxes).tolist()}
    pairs = region.find_overlaps(*boxes, max_pairs=max_pairs)
    assert len(pairs) == min(max_pairs, len(every))
    assert {tuple(p) for p in pairs.tolist()} <= every
    assert pairs.tolist() == sorted(pairs.tolist())
    assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)


def grid_blocks(blocks: tuple[int, ...], size: int, halo: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grid decomposition into blocks of `size` per axis, grown by `halo` on every side."""
    corners = np.indices(blocks).reshape(len(blocks), -1).T * size
    return corners - halo, np.full(corners.shape, size + 2 * halo)


def test_find_overlaps_of_a_grid_with_halos() -> None:
    offsets, counts = grid_blocks((6, 5, 4), 10, halo=1)
    pairs = region.find_overlaps(offsets, counts)
    np.testing.assert_array_equal(pairs, reference.find_overlaps(offsets, counts))
    # The overlaps are the pairs of neighbours, diagonal ones included.
    coords = np.indices((6, 5, 4)).reshape(3, -1).T
    neighbours = np.abs(coords[:, None] - coords[None]).max(axis=2) == 1
    assert np.array_equal(pairs, np.argwhere(np.triu(neighbours)))
    assert not len(region.find_overlaps(*grid_blocks((6, 5, 4), 10)))


def random_small_boxes(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.integers(0, 10_000, (n, 3)), rng.integers(1, 100, (n, 3))


def last_axis_slabs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D decomposition along the last axis: every box spans axes 0 and 1."""
    offsets = np.zeros((n, 3), np.int64)
    offsets[:, 2] = np.arange(n) * 10
    return offsets, np.broadcast_to([100, 100, 10], (n, 3))


# (boxes, number of overlapping pairs or None if unknown)
LARGE_CASES = {
    "random": (random_small_boxes(100_000), None),
    "grid-50x50x40": (grid_blocks((50, 50, 40), 10), 0),
    "last-axis": (last_axis_slabs(100_000), 0),
}


@pytest.mark.parametrize("case", LARGE_CASES)
def test_find_overlaps_is_fast_on_100k_boxes(case: str) -> None:
    (offsets, counts), expected = LARGE_CASES[case]
    start = time.perf_counter()
    pairs = region.find_overlaps(offsets, counts)
    assert time.perf_counter() - start < 5  # generous; benchmarks/ measures it
    if expected is not None:
        assert len(pairs) == expected
    lo, hi = offsets[pairs], offsets[pairs] + counts[pairs]
    assert np.all((lo[:, 0] < hi[:, 1]) & (lo[:, 1] < hi[:, 0]))  # all reported pairs overlap


def test_find_overlaps_is_exact_on_2000_random_boxes() -> None:
    offsets, counts = random_small_boxes(2000)
    offsets = offsets // 10  # denser: a few hundred pairs
    np.testing.assert_array_equal(
        region.find_overlaps(offsets, counts), reference.find_overlaps(offsets, counts)
    )


def test_accepts_any_integer_dtype() -> None:
    offsets = np.array([[0, 0], [1, 1]], np.int32)
    counts = np.array([[2, 2], [2, 2]], np.uint64)
    assert region.find_overlaps(offsets, counts).tolist() == [[0, 1]]
    index, _, _ = region.intersect(np.array([1, 1], np.uint8), [1, 1], offsets, counts)
    assert index.tolist() == [0, 1]


ONE = ([0, 0], [1, 1])
BAD_FIND_OVERLAPS = [
    ([[0, 0]], [[1, 1, 1]], {}, "counts must have the shape"),
    ([[0, 0]], [[1, -1]], {}, "counts must be non-negative"),
    ([[0.0, 0.0]], [[1, 1]], {}, "offsets must hold integers"),
    ([[0, 0]], [[True, True]], {}, "counts must hold integers"),
    ([0, 0], [1, 1], {}, r"offsets must have shape \(n, ndim\)"),
    ([[[0]]], [[[1]]], {}, r"offsets must have shape \(n, ndim\)"),
    (np.zeros((2, 9), int), np.ones((2, 9), int), {}, "offsets: boxes must have 1 to 8"),
    (np.zeros((2, 0), int), np.ones((2, 0), int), {}, "offsets: boxes must have 1 to 8"),
    ([[2**63 - 2]], [[2]], {}, "offsets \\+ counts overflows"),
    (np.array([[2**63]], np.uint64), [[1]], {}, "offsets does not fit int64"),
    ([[0, 0]], [[1, 1]], {"max_pairs": -1}, "max_pairs must be non-negative"),
    ([[0, 0]], [[1, 1]], {"max_pairs": 1.5}, "max_pairs must be an integer"),
]


@pytest.mark.parametrize(("offsets", "counts", "kwargs", "message"), BAD_FIND_OVERLAPS)
def test_find_overlaps_rejects_bad_input(offsets, counts, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        region.find_overlaps(offsets, counts, **kwargs)


BAD_BOX_AND_SET = [
    (([[0, 0]], [1, 1], *ONE), r"offset must have shape \(ndim,\)"),
    (([0, 0], [1], *ONE), "count must have the shape of offset"),
    (([0, 0], [-1, 1], *ONE), "count must be non-negative"),
    (([0, 0], [1, 1], [[0, 0, 0]], [[1, 1, 1]]), "offsets: boxes of 3 dimensions do not match"),
    (([0, 0], [1, 1], [0, 0], [1, 1]), r"offsets must have shape \(n, ndim\)"),
    (([0, 0], [1, 1], [[0, 0]], [[1.0, 1.0]]), "counts must hold integers"),
]


@pytest.mark.parametrize("function", [region.intersect, region.subtract])
@pytest.mark.parametrize(("args", "message"), BAD_BOX_AND_SET)
def test_intersect_and_subtract_reject_bad_input(function, args, message) -> None:
    with pytest.raises(ValueError, match=message):
        function(*args)


@settings(max_examples=20)
@given(st.integers(1, region.MAX_NDIM))
def test_empty_sets(ndim: int) -> None:
    none = np.empty((0, ndim), np.int64)
    box = (np.zeros(ndim, np.int64), np.ones(ndim, np.int64))
    assert region.find_overlaps(none, none).shape == (0, 2)
    assert [a.shape for a in region.intersect(*box, none, none)] == [(0,), (0, ndim), (0, ndim)]
    offsets, counts = region.subtract(*box, none, none)
    assert offsets.tolist() == [[0] * ndim] and counts.tolist() == [[1] * ndim]
