import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esdm_hpc.kernels import checksum
from tests.reference import checksum as reference


@given(data=st.binary(max_size=5000), block_size=st.integers(1, 700))
def test_block_checksums_match_reference(data: bytes, block_size: int) -> None:
    got = checksum.block_checksums(data, block_size)
    np.testing.assert_array_equal(got, reference.block_checksums(data, block_size))
    assert got.dtype == np.uint64
    assert len(got) == -(-len(data) // block_size)


@given(
    shape=st.lists(st.integers(0, 17), min_size=1, max_size=3),
    dtype=st.sampled_from(["u1", "<i4", "<f8", "<c16"]),
)
def test_arrays_hash_their_bytes(shape: list[int], dtype: str) -> None:
    array = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    np.testing.assert_array_equal(
        checksum.block_checksums(array, 64), checksum.block_checksums(array.tobytes(), 64)
    )


def test_one_flipped_byte_changes_only_its_block() -> None:
    data = bytearray(np.random.default_rng(1).integers(0, 256, 10_000, dtype=np.uint8))
    before = checksum.block_checksums(data, 1024)
    data[5000] ^= 0x01
    after = checksum.block_checksums(data, 1024)
    assert list(np.nonzero(before != after)[0]) == [5000 // 1024]


def test_whole_buffer_digest_equals_single_block() -> None:
    data = b"earth system data" * 100
    assert checksum.checksum(data) == checksum.block_checksums(data, len(data))[0]
    assert checksum.ALGORITHM == "xxh3-64"


@pytest.mark.parametrize("block_size", [1 << 40, (1 << 63) - 1])
def test_a_block_larger_than_the_buffer_is_one_block(block_size: int) -> None:
    data = b"earth system data"
    assert checksum.block_checksums(data, block_size).tolist() == [checksum.checksum(data)]


@pytest.mark.parametrize("block_size", [0, -1, 1.5, True, "1", 1 << 63, 1 << 64, (1 << 64) + 1])
def test_bad_block_size(block_size: object) -> None:
    with pytest.raises(ValueError, match="block_size"):
        checksum.block_checksums(b"abc", block_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("buffer", [np.arange(10)[::2], "text", 3, None])
def test_bad_buffer(buffer: object) -> None:
    with pytest.raises(ValueError, match="buffer"):
        checksum.block_checksums(buffer)
