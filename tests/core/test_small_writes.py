"""The small-write path: buffered log appends, combined row writes, box writes (issue 4).

Small appends to a posix data log gather in memory and reach the file in one
pwrite, at the latest with the commit's sync; what a commit publishes is
still durable and whole, and a failed write of the buffer fails the commit
instead of losing data.
"""

import errno
import os
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.backends import BackendError, PosixBackend
from esdm_hpc.backends import posix as posix_module
from esdm_hpc.config import load_config

LOG = "containers/c/data/e000000001/r000000.log"
SMALL = posix_module.SMALL_APPEND_BYTES // 4


@pytest.fixture
def backend(tmp_path: Path) -> PosixBackend:
    raw = {"id": "disk", "type": "posix", "target": str(tmp_path / "disk")}
    return PosixBackend(load_config({"backends": [raw]}).backends[0])


@pytest.fixture
def pwrites(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the pwrite calls the backend makes."""
    sizes: list[int] = []
    real_pwrite = os.pwrite

    def counting(fd: int, data: memoryview, offset: int) -> int:
        sizes.append(len(data))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", counting)
    return sizes


def test_small_appends_reach_the_file_in_one_write_at_sync(
    backend: PosixBackend, pwrites: list[int]
) -> None:
    chunks = [bytes([i]) * SMALL for i in range(10)]
    with backend.create_log(LOG) as log:
        starts = [log.append(chunk) for chunk in chunks]
        assert pwrites == []
        assert log.nbytes == 10 * SMALL
        log.sync()
        assert pwrites == [10 * SMALL]
    assert starts == [i * SMALL for i in range(10)]
    assert backend.read(LOG, 0, 10 * SMALL) == b"".join(chunks)


def test_a_full_buffer_is_written_before_sync(backend: PosixBackend, pwrites: list[int]) -> None:
    per_buffer = posix_module.BUFFER_BYTES // SMALL
    with backend.create_log(LOG) as log:
        for _ in range(per_buffer + 1):
            log.append(b"x" * SMALL)
        assert pwrites == [per_buffer * SMALL]
    assert backend.size(LOG) == (per_buffer + 1) * SMALL


def test_large_appends_keep_their_place_among_small_ones(
    backend: PosixBackend, pwrites: list[int]
) -> None:
    large = np.arange(posix_module.SMALL_APPEND_BYTES, dtype=np.uint8)
    with backend.create_log(LOG) as log:
        assert log.append(b"a" * 10) == 0
        assert log.append(large) == 10
        assert log.append(b"b" * 10) == 10 + large.nbytes
        assert pwrites == [10, large.nbytes]  # the buffer first, then the large one unbuffered
    assert backend.read(LOG, 0, 20 + large.nbytes) == b"a" * 10 + large.tobytes() + b"b" * 10


def test_a_failed_buffer_write_fails_the_sync_and_keeps_the_data(
    backend: PosixBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pwrite = os.pwrite

    def full(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with backend.create_log(LOG) as log:
        log.append(b"kept")
        monkeypatch.setattr(os, "pwrite", full)
        with pytest.raises(BackendError, match="No space left"):
            log.sync()
        monkeypatch.setattr(os, "pwrite", real_pwrite)
        assert log.append(b" too") == 4  # the buffer still grows after the failure
        log.sync()
    assert backend.read(LOG, 0, 8) == b"kept too"


def test_many_small_writes_commit_and_read_back(config: dict) -> None:
    rows = np.arange(200 * 1024, dtype=np.float32).reshape(200, 1024)
    with esdm_hpc.open("esdm://small", "w", config=config) as container:
        dataset = container.create_dataset("v", shape=rows.shape, dtype="f4")
        for i, row in enumerate(rows):
            dataset[i] = row
    with esdm_hpc.open("esdm://small", "r", config=config) as container:
        np.testing.assert_array_equal(container["v"][...], rows)


def test_boxes_write_and_read_like_index_expressions(config: dict) -> None:
    with esdm_hpc.open("esdm://boxes", "w", config=config) as container:
        dataset = container.create_dataset("v", shape=(4, 6), dtype="i4")
        dataset.write_box((1, 2), np.arange(6, dtype="i4").reshape(2, 3))
        container.commit()
        np.testing.assert_array_equal(dataset.read_box((1, 2), (2, 3)), dataset[1:3, 2:5])
        np.testing.assert_array_equal(dataset[1:3, 2:5], np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    ("offset", "shape"), [((3, 0), (2, 1)), ((0, -1), (1, 1)), ((0,), (1,)), ((0, 5), (1, 2))]
)
def test_boxes_outside_the_extent_are_refused(
    config: dict, offset: tuple[int, ...], shape: tuple[int, ...]
) -> None:
    with esdm_hpc.open("esdm://outside", "w", config=config) as container:
        dataset = container.create_dataset("v", shape=(4, 6), dtype="i4")
        with pytest.raises(IndexError, match="outside the extent"):
            dataset.write_box(offset, np.zeros(shape, dtype="i4"))
        with pytest.raises(IndexError, match="outside the extent"):
            dataset.read_box(offset, shape)


def test_box_writes_need_the_datasets_dtype(config: dict) -> None:
    with esdm_hpc.open("esdm://dtype", "w", config=config) as container:
        dataset = container.create_dataset("v", shape=(4,), dtype="i4")
        with pytest.raises(TypeError, match="float64 data for a dataset of int32"):
            dataset.write_box((0,), np.zeros(2))


def test_small_writes_of_consecutive_rows_become_one_fragment(tmp_path: Path) -> None:
    config = {"backends": [{"id": "disk", "type": "posix", "target": str(tmp_path / "d")}]}
    with esdm_hpc.open("esdm://rows", "w", config=config) as c:
        x = c.create_dataset("x", shape=(1000, 8), dtype="f4")
        rows = np.arange(8000, dtype="f4").reshape(1000, 8)
        buffer = np.empty((1, 8), dtype="f4")
        for i in range(1000):
            buffer[...] = rows[i]  # the caller reuses its buffer: the run keeps copies
            x[i : i + 1] = buffer
        x[10:12, 0:4] = -1  # not a continuation: the run is stored first, then this
        fragments = c.open_epoch.writer.fragments
        assert [f.count for f in fragments] == [(1000, 8), (2, 4)]
    expected = rows.copy()
    expected[10:12, 0:4] = -1
    with esdm_hpc.open("esdm://rows", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], expected)


def test_a_run_is_stored_by_the_commit_and_never_crosses_datasets(tmp_path: Path) -> None:
    config = {"backends": [{"id": "disk", "type": "posix", "target": str(tmp_path / "d")}]}
    with esdm_hpc.open("esdm://runs", "w", config=config) as c:
        a = c.create_dataset("a", shape=(4,), dtype="i4")
        b = c.create_dataset("b", shape=(4,), dtype="i4")
        a[0:2], b[2:4], a[2:4] = [1, 2], [3, 4], [5, 6]
        assert c.commit() == 1
        assert c["a"][...].tolist() == [1, 2, 5, 6]
        assert c["b"][...].tolist() == [0, 0, 3, 4]
