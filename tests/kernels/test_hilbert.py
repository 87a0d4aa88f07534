"""Property tests of the Hilbert curve kernels against the numpy reference."""

import math
import re
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esdm_hpc.kernels import _hilbert, hilbert
from tests.reference import hilbert as reference

NDIMS = (2, 3, 4)
INTEGER_DTYPES = tuple(map(np.dtype, ("u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8")))
# Point counts at the edges of the kernels' blocks (256) and vectors (16 points).
EDGE_COUNTS = (1, 15, 16, 17, 255, 256, 257, 513)

SETTINGS = settings(max_examples=60, deadline=None)


@pytest.fixture(params=sorted(_hilbert.KERNELS), scope="module")
def kernels(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test with each flavour of the C kernels this CPU supports."""
    previous = _hilbert.selected_kernels()
    try:
        _hilbert.select_kernels(request.param)
    except ValueError:
        pytest.skip(f"this CPU cannot run the {request.param} kernels")
    yield request.param
    _hilbert.select_kernels(previous)


def manhattan_steps(points: np.ndarray) -> np.ndarray:
    """Manhattan distances between consecutive rows of a coordinate array."""
    return np.abs(np.diff(points.astype(np.int64), axis=0)).sum(axis=1)


@st.composite
def curves(draw: st.DrawFn) -> tuple[int, int]:
    ndim = draw(st.sampled_from(NDIMS))
    return ndim, draw(st.integers(1, 64 // ndim))


@st.composite
def point_sets(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """(points, bits): coordinates below 2**bits in an integer dtype that holds them."""
    ndim, bits = draw(curves())
    dtype = draw(st.sampled_from([d for d in INTEGER_DTYPES if np.iinfo(d).max >= 2**bits - 1]))
    count = draw(st.one_of(st.integers(0, 600), st.sampled_from(EDGE_COUNTS)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    points = rng.integers(0, 2**bits, size=(count, ndim), dtype=np.uint64)
    # Grid faces, where off-by-one errors in masks and shifts show.
    faces = rng.random(points.shape) < 0.1
    points[faces] = rng.choice(np.array([0, 2**bits - 1], np.uint64), size=faces.sum())
    return points.astype(dtype), bits


@st.composite
def key_sets(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    """(keys, ndim, bits): uint64 keys of the curve of that order."""
    ndim, bits = draw(curves())
    count = draw(st.one_of(st.integers(0, 600), st.sampled_from(EDGE_COUNTS)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    keys = rng.integers(0, 2 ** (ndim * bits), size=count, dtype=np.uint64)
    return keys, ndim, bits


# ---- encode / decode ---------------------------------------------------------


@SETTINGS
@given(point_sets())
def test_encode_matches_reference(kernels: str, case: tuple[np.ndarray, int]) -> None:
    points, bits = case
    np.testing.assert_array_equal(hilbert.encode(points, bits), reference.encode(points, bits))


@SETTINGS
@given(point_sets())
def test_encode_defaults_to_widest_order(kernels: str, case: tuple[np.ndarray, int]) -> None:
    points, _ = case
    ndim = points.shape[1]
    bits = min(8 * points.dtype.itemsize, 64 // ndim)
    np.testing.assert_array_equal(hilbert.encode(points), reference.encode(points, bits))


@SETTINGS
@given(point_sets())
def test_decode_inverts_encode(kernels: str, case: tuple[np.ndarray, int]) -> None:
    points, bits = case
    decoded = hilbert.decode(hilbert.encode(points, bits), points.shape[1], bits)
    assert decoded.dtype == np.uint64
    np.testing.assert_array_equal(decoded, points.astype(np.uint64))


@SETTINGS
@given(key_sets())
def test_decode_matches_reference(kernels: str, case: tuple[np.ndarray, int, int]) -> None:
    keys, ndim, bits = case
    points = hilbert.decode(keys, ndim, bits)
    assert points.shape == (keys.size, ndim)
    np.testing.assert_array_equal(points, reference.decode(keys, ndim, bits))
    np.testing.assert_array_equal(hilbert.encode(points, bits), keys)


@SETTINGS
@given(key_sets())
def test_consecutive_keys_are_neighbours(kernels: str, case: tuple[np.ndarray, int, int]) -> None:
    keys, ndim, bits = case
    keys = keys[keys < np.uint64(2 ** (ndim * bits) - 1)]
    pairs = np.stack([keys, keys + np.uint64(1)], axis=1).reshape(-1)
    steps = manhattan_steps(hilbert.decode(pairs, ndim, bits))[::2]
    assert (steps == 1).all()


SMALL_GRIDS = [(ndim, bits) for ndim in NDIMS for bits in range(1, 13 // ndim + 1)]


@pytest.mark.parametrize(("ndim", "bits"), SMALL_GRIDS)
def test_curve_walks_the_whole_grid(kernels: str, ndim: int, bits: int) -> None:
    grid = np.indices((2**bits,) * ndim).reshape(ndim, -1).T
    keys = hilbert.encode(grid, bits)
    np.testing.assert_array_equal(np.sort(keys), np.arange(grid.shape[0], dtype=np.uint64))
    walk = hilbert.decode(np.arange(grid.shape[0], dtype=np.uint64), ndim, bits)
    assert not walk[0].any(), "the curve starts at the origin"
    assert (manhattan_steps(walk) == 1).all()


@pytest.mark.parametrize(
    "layout",
    [
        lambda p: p[::2],
        lambda p: np.asfortranarray(p),
        lambda p: p.astype(p.dtype.newbyteorder(">")),
        lambda p: p.tolist(),
    ],
    ids=["strided", "fortran", "big-endian", "list"],
)
def test_encode_reads_any_layout(kernels: str, layout: Callable[[np.ndarray], object]) -> None:
    points = np.random.default_rng(0).integers(0, 2**16, size=(64, 3), dtype=np.int64)
    expected = reference.encode(np.asarray(layout(points)), 16)
    np.testing.assert_array_equal(hilbert.encode(layout(points), 16), expected)


# ---- order / serialise / deserialise --------------------------------------------

block_shapes = st.one_of(
    st.tuples(st.integers(0, 70), st.integers(0, 70)),
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)),
    st.permutations([1, 1, 300]).map(tuple),
    st.tuples(st.sampled_from([1, 2, 3]), st.integers(0, 500)),
)

STRUCTURED = np.dtype([("x", "<f4"), ("n", ">i2"), ("tag", "S3")])
block_dtypes = st.sampled_from(
    [*map(np.dtype, ("u1", "i2", "f4", "f8", "c16", "S5", ">i4")), STRUCTURED]
)


def random_block(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    """Random bytes viewed as a block (compared byte-wise below, so NaNs are fine)."""
    raw = np.random.default_rng(seed).integers(0, 256, math.prod(shape) * dtype.itemsize, np.uint8)
    return raw.view(dtype).reshape(shape)


@SETTINGS
@given(block_shapes)
def test_order_matches_reference(shape: tuple[int, ...]) -> None:
    permutation = hilbert.order(shape)
    assert permutation.dtype == np.intp
    np.testing.assert_array_equal(permutation, reference.order(shape))


def test_order_is_cached_and_read_only() -> None:
    permutation = hilbert.order((5, 7, 3))
    assert hilbert.order([5, 7, 3]) is permutation
    assert not permutation.flags.writeable


@SETTINGS
@given(block_shapes, block_dtypes, st.integers(0, 2**32 - 1))
def test_serialise_round_trip(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> None:
    block = random_block(shape, dtype, seed)
    serialised = hilbert.serialise(block)
    assert serialised.shape == (block.size,)
    assert serialised.dtype == dtype
    assert serialised.tobytes() == reference.serialise(block).tobytes()
    restored = hilbert.deserialise(serialised, shape)
    assert restored.shape == shape
    assert restored.tobytes() == block.tobytes()


def test_serialise_reads_any_layout() -> None:
    block = np.arange(6 * 10 * 4, dtype=np.float32).reshape(6, 10, 4)
    for view in (block[:, ::2], block.transpose(2, 0, 1), np.asfortranarray(block)):
        expected = reference.serialise(np.ascontiguousarray(view))
        np.testing.assert_array_equal(hilbert.serialise(view), expected)


@pytest.mark.parametrize("shape", [(16, 16), (32, 32), (8, 8, 8), (16, 16, 16)])
def test_serialised_cube_steps_to_neighbours(shape: tuple[int, ...]) -> None:
    flat = hilbert.serialise(np.arange(math.prod(shape)).reshape(shape))
    cells = np.stack(np.unravel_index(flat, shape), axis=1)
    assert (manhattan_steps(cells) == 1).all()


# ---- bad input ---------------------------------------------------------------------

POINTS = np.zeros((4, 3), np.uint16)
KEYS = np.zeros(4, np.uint64)

BAD_CALLS = [
    ("points", lambda: hilbert.encode(POINTS.astype(float))),
    ("points", lambda: hilbert.encode(POINTS.astype(bool))),
    ("points", lambda: hilbert.encode(POINTS.astype(object))),
    ("points", lambda: hilbert.encode(np.zeros(4, np.uint16))),
    ("points", lambda: hilbert.encode(np.zeros((4, 1), np.uint16))),
    ("points", lambda: hilbert.encode(np.zeros((4, 5), np.uint16))),
    ("points", lambda: hilbert.encode(np.array([[1 << 16, 0, 0]], np.uint32), bits=16)),
    ("points", lambda: hilbert.encode(np.array([[0, 4, 0]], np.uint8), bits=2)),
    ("points", lambda: hilbert.encode(np.array([[0, 0, -1]], np.int16), bits=16)),
    ("points", lambda: hilbert.encode(np.array([[0, -1]], np.int64))),
    ("bits", lambda: hilbert.encode(POINTS, bits=0)),
    ("bits", lambda: hilbert.encode(POINTS, bits=22)),
    ("bits", lambda: hilbert.encode(np.zeros((4, 4), np.uint16), bits=17)),
    ("bits", lambda: hilbert.encode(POINTS, bits=2.0)),
    ("bits", lambda: hilbert.encode(POINTS, bits=True)),
    ("ndim", lambda: hilbert.decode(KEYS, 1)),
    ("ndim", lambda: hilbert.decode(KEYS, 5)),
    ("ndim", lambda: hilbert.decode(KEYS, 3.0)),
    ("keys", lambda: hilbert.decode(KEYS.astype(float), 3)),
    ("keys", lambda: hilbert.decode(KEYS.reshape(2, 2), 2)),
    ("keys", lambda: hilbert.decode(np.array([-1]), 2)),
    ("keys", lambda: hilbert.decode(np.array([1 << 48], np.uint64), 3, bits=16)),
    ("bits", lambda: hilbert.decode(KEYS, 3, bits=22)),
    ("bits", lambda: hilbert.decode(KEYS, 2, bits=-1)),
    ("shape", lambda: hilbert.order((3,))),
    ("shape", lambda: hilbert.order((2, 3, 4, 5))),
    ("shape", lambda: hilbert.order((3, -1))),
    ("shape", lambda: hilbert.order((2.5, 3))),
    ("shape", lambda: hilbert.order(5)),
    ("shape", lambda: hilbert.order((1 << 40, 1 << 40))),
    ("block", lambda: hilbert.serialise(np.zeros(5))),
    ("block", lambda: hilbert.serialise(np.zeros((2, 2, 2, 2)))),
    ("buffer", lambda: hilbert.deserialise(np.zeros(5), (2, 3))),
    ("buffer", lambda: hilbert.deserialise(np.zeros((2, 3)), (2, 3))),
    ("shape", lambda: hilbert.deserialise(np.zeros(6), (6,))),
]


@pytest.mark.parametrize(("argument", "call"), BAD_CALLS)
def test_bad_input_names_the_argument(argument: str, call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=rf"\b{re.escape(argument)}\b"):
        call()
