import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esdm_hpc.kernels import decomposition
from tests.reference import decomposition as reference
from tests.reference import region as reference_region

# Awkward extents: empty, single, prime, and smaller than most rank counts.
extents = st.one_of(st.sampled_from([0, 1, 2, 3, 5, 7, 13, 31, 97, 127]), st.integers(0, 40))
small_shapes = st.lists(extents, min_size=1, max_size=4).map(tuple)
large_shapes = (
    st.lists(
        st.one_of(extents, st.sampled_from([1009, 4096, 65_537, 10**6])), min_size=1, max_size=4
    )
    .map(tuple)
    .filter(lambda s: math.prod(max(e, 1) for e in s) < 2**63)  # the supported array sizes
)
nprocs = st.one_of(st.integers(1, 1024), st.sampled_from([1021, 1024, 720, 512, 97, 64, 12]))


def assert_balanced(counts: np.ndarray) -> None:
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)


def assert_matches_reference(shape: tuple[int, ...], nprocs: int) -> tuple[np.ndarray, np.ndarray]:
    """Checks process_grid and decompose against the reference; returns the blocks."""
    grid = decomposition.process_grid(shape, nprocs)
    assert grid == reference.process_grid(shape, nprocs)
    assert math.prod(grid) == nprocs and len(grid) == len(shape)
    offsets, counts = decomposition.decompose(shape, nprocs)
    assert offsets.shape == counts.shape == (nprocs, len(shape))
    assert offsets.dtype == counts.dtype == np.int64
    want_offsets, want_counts = reference.decompose(shape, nprocs)
    np.testing.assert_array_equal(offsets, want_offsets)
    np.testing.assert_array_equal(counts, want_counts)
    assert_balanced(counts)
    return offsets, counts


@settings(deadline=None)
@given(small_shapes.filter(lambda s: math.prod(s) <= 50_000), nprocs)
def test_blocks_tile_small_shapes_exactly(shape: tuple[int, ...], nprocs: int) -> None:
    offsets, counts = assert_matches_reference(shape, nprocs)
    covered = np.zeros(shape, np.int64)
    for offset, count in zip(offsets, counts, strict=True):
        covered[tuple(slice(o, o + c) for o, c in zip(offset, count, strict=True))] += 1
    assert np.all(covered == 1)


@settings(deadline=None, max_examples=50)
@given(large_shapes, nprocs)
def test_blocks_tile_large_shapes_exactly(shape: tuple[int, ...], nprocs: int) -> None:
    offsets, counts = assert_matches_reference(shape, nprocs)
    assert np.all(offsets >= 0) and np.all(offsets + counts <= shape)
    assert counts.prod(axis=1).sum() == math.prod(shape)
    assert len(reference_region.find_overlaps(offsets, counts)) == 0


@given(large_shapes, nprocs, st.data())
def test_block_of_a_rank_or_its_coordinates(shape: tuple, nprocs: int, data: st.DataObject) -> None:
    grid = decomposition.process_grid(shape, nprocs)
    rank = data.draw(st.integers(0, nprocs - 1))
    coords = tuple(int(c) for c in np.unravel_index(rank, grid))
    offsets, counts = decomposition.decompose(shape, nprocs)
    for which in (rank, coords, np.int64(rank), np.array(coords)):
        offset, count = decomposition.block(shape, grid, which)
        np.testing.assert_array_equal(offset, offsets[rank])
        np.testing.assert_array_equal(count, counts[rank])
    want = reference.block(shape, grid, rank)
    np.testing.assert_array_equal(decomposition.block(shape, grid, rank), want)


@pytest.mark.parametrize(
    ("shape", "nprocs", "grid"),
    [
        ((3, 1000), 4, (1, 4)),  # no part of 3 elements split 4 ways
        ((1000, 1000), 4, (2, 2)),
        ((1000, 10), 4, (4, 1)),  # larger extents get more parts
        ((5, 7, 1), 6, (2, 3, 1)),
        ((4, 3), 12, (4, 3)),  # a greedy factor assignment would leave ranks empty here
        ((3,), 4, (4,)),  # more ranks than elements: some blocks are empty
        ((0, 5), 4, (1, 4)),
        ((1000, 100, 100), 64, (16, 2, 2)),
        # On cubes, as MPI_Dims_create.
        ((600,) * 3, 12, (3, 2, 2)),
        ((600,) * 3, 16, (4, 2, 2)),
        ((600,) * 3, 24, (4, 3, 2)),
        ((600,) * 3, 64, (4, 4, 4)),
        ((600,) * 2, 7, (7, 1)),
        ((600,) * 2, 36, (6, 6)),
    ],
)
def test_process_grid_examples(shape: tuple, nprocs: int, grid: tuple) -> None:
    assert decomposition.process_grid(shape, nprocs) == grid


def test_block_examples() -> None:
    # 10 elements in 4 parts: 3, 3, 2, 2.
    assert [decomposition.block([10], [4], r)[1].tolist() for r in range(4)] == [[3], [3], [2], [2]]
    offset, count = decomposition.block((10, 7), (2, 3), (1, 2))
    assert offset.tolist() == [5, 5] and count.tolist() == [5, 2]


def test_large_rank_counts() -> None:
    assert decomposition.process_grid((10**6,) * 3, 2**31 - 2) == (1661, 1302, 993)
    assert math.prod(decomposition.process_grid((100,) * 8, 735_134_400)) == 735_134_400
    _, counts = decomposition.decompose((4096, 4096, 1024), 2**16)
    assert counts.prod(axis=1).sum() == 4096 * 4096 * 1024
    assert_balanced(counts)


BAD_INPUT = [
    (decomposition.process_grid, ((4, 4), 0), "nprocs must be in 1.."),
    (decomposition.process_grid, ((4, 4), 2**31), "nprocs must be in 1.."),
    (decomposition.process_grid, ((4, 4), 2.0), "nprocs must be an integer"),
    (decomposition.process_grid, ((4, 4), True), "nprocs must be an integer"),
    (decomposition.process_grid, ((4, -1), 2), "shape must not have negative extents"),
    (decomposition.process_grid, ((4, 2.5), 2), r"shape\[1\] must be an integer"),
    (decomposition.process_grid, ((), 2), "shape must have at least one dimension"),
    (decomposition.process_grid, (4, 2), "shape must be a sequence"),
    (decomposition.process_grid, ("44", 2), "shape must be a sequence"),
    (decomposition.process_grid, ((2**32, 2**32), 2), "shape .* has more than"),
    (decomposition.decompose, ((4, 4), -3), "nprocs must be in 1.."),
    (decomposition.decompose, ((-4,), 3), "shape must not have negative extents"),
    (decomposition.block, ((4, 4), (2, 2), 4), r"rank must be in 0\.\.3"),
    (decomposition.block, ((4, 4), (2, 2), -1), r"rank must be in 0\.\.3"),
    (decomposition.block, ((4, 4), (2, 2), "0"), "rank must be an integer"),
    (decomposition.block, ((4, 4), (2, 2), (0, 2)), "coords .* are not in the grid"),
    (decomposition.block, ((4, 4), (2, 2), (0,)), "coords .* are not in the grid"),
    (decomposition.block, ((4, 4), (2, 2), (0, 0.0)), r"coords\[1\] must be an integer"),
    (decomposition.block, ((4, 4), (2,), 0), "grid must have one entry per dimension"),
    (decomposition.block, ((4, 4), (2, 0), 0), "grid entries must be positive"),
    (decomposition.block, ((4, 4), (2**16, 2**16), 0), "grid .* has more than"),
    (decomposition.block, ((4, 4), 2, 0), "grid must be a sequence"),
]


@pytest.mark.parametrize(("function", "args", "message"), BAD_INPUT)
def test_rejects_bad_input(function, args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        function(*args)
