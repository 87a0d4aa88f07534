"""The posix backend: the conformance suite, then what only posix does (Lustre
striping, page placement, bounce reads, partial writes, temporary files,
symbolic links, a lock dying with its process, a target that is a file)."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from esdm_hpc.backends import Backend, BackendError, PosixBackend, open_backend
from esdm_hpc.backends import posix as posix_module
from esdm_hpc.backends.base import TEMP_PREFIX
from tests.backends.conformance import LOG, BackendTests, backend_config


def open_posix(target: Path) -> PosixBackend:
    backend = open_backend(backend_config("posix", str(target)))
    assert isinstance(backend, PosixBackend)
    return backend


class TestPosixBackend(BackendTests):
    def make_backend(self, tmp_path: Path) -> Backend:
        return open_posix(tmp_path / "store")

    @pytest.fixture
    def several_batches(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(posix_module, "OPEN_AT_ONCE", 2)


@pytest.fixture
def posix(tmp_path: Path) -> PosixBackend:
    return open_posix(tmp_path / "missing/yet")


def test_posix_creates_its_target_and_plain_files(posix: PosixBackend, tmp_path: Path) -> None:
    assert (tmp_path / "missing/yet").is_dir()
    with posix.create_log(LOG) as log:
        log.append(b"abc")
    assert (tmp_path / "missing/yet" / LOG).read_bytes() == b"abc"


def test_posix_lock_dies_with_its_process(posix: PosixBackend) -> None:
    script = (
        "import os, sys, fcntl; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"
    )
    path = os.path.join(posix.root, "c", "LOCK")
    os.makedirs(os.path.dirname(path))
    holder = subprocess.Popen(
        [sys.executable, "-c", script, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with (
            pytest.raises(BackendError, match="another process has held it"),
            posix.locked("c/LOCK", timeout=0.05),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with posix.locked("c/LOCK", timeout=5):  # the kill released it
        pass


def test_posix_target_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "root"
    target.write_text("not a directory")
    with pytest.raises(BackendError, match=r"target .*root exists and is not a directory"):
        open_backend(backend_config("posix", str(target)))


def test_posix_never_deletes_or_lists_through_a_link_out_of_its_target(
    posix: PosixBackend, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "x.log").write_bytes(b"keep")
    os.makedirs(os.path.join(posix.root, "containers"))
    os.symlink(outside, os.path.join(posix.root, "containers", "c"))
    assert list(posix.list("containers/c/")) == []
    with pytest.raises(BackendError, match="a symbolic link on its path leads outside"):
        posix.delete("containers/c/data/x.log")
    assert (outside / "data" / "x.log").read_bytes() == b"keep"


def test_posix_appends_numpy_without_copy(
    posix: PosixBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    field = np.random.default_rng(0).random((64, 64))
    written: list[memoryview] = []
    real_pwrite = os.pwrite

    def spy(fd: int, data: memoryview, offset: int) -> int:
        written.append(data)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", spy)
    with posix.create_log(LOG) as log:
        log.append(field)
    assert written
    assert all(np.shares_memory(np.frombuffer(view, np.uint8), field) for view in written)


def test_posix_partial_writes_are_continued(
    posix: PosixBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(fd, data[:7], offset))
    with posix.create_log(LOG) as log:
        log.append(b"x" * 100)
        assert log.append(b"y" * 30) == 100
    assert posix.read(LOG, 95, 10) == b"xxxxxyyyyy"


def test_posix_places_large_payloads_half_a_page_in(posix: PosixBackend) -> None:
    small = b"s" * 1000
    large = np.arange(posix_module.PLACED_APPEND_BYTES // 8, dtype="<i8")
    with posix.create_log(LOG) as log:
        assert log.append(small) == 0
        first = log.append(large)
        assert first % posix_module.PAGE_BYTES == posix_module.PAYLOAD_PAGE_OFFSET
        assert log.append(small) == first + large.nbytes  # small appends stay packed
        second = log.append(large)
        assert second % posix_module.PAGE_BYTES == posix_module.PAYLOAD_PAGE_OFFSET
        assert second - (first + large.nbytes + len(small)) < posix_module.PAGE_BYTES
        assert log.nbytes == second + large.nbytes
    assert posix.size(LOG) == second + large.nbytes
    assert posix.read(LOG, 0, len(small)) == small
    assert posix.read(LOG, first + large.nbytes, len(small)) == small
    for start in (first, second):
        back = np.empty_like(large)
        posix.readinto(LOG, start, back)
        np.testing.assert_array_equal(back, large)


@pytest.mark.parametrize("distance", [0, 1, 16, 63, 64, 2048])
@pytest.mark.parametrize("offset", [0, 5, 4096])
def test_posix_reads_at_any_buffer_distance(
    posix: PosixBackend, monkeypatch: pytest.MonkeyPatch, distance: int, offset: int
) -> None:
    monkeypatch.setattr(posix_module, "BOUNCE_BYTES", 3 * 4096)  # several pieces, a short last
    bounced = []
    real = PosixBackend._read_bounced
    monkeypatch.setattr(
        PosixBackend, "_read_bounced", lambda self, *args: bounced.append(1) or real(self, *args)
    )
    data = np.random.default_rng(distance).bytes(offset + 10 * 4096 + 123)
    with posix.create_log(LOG) as log:
        log.append(data)
    raw = np.zeros(len(data) + 2 * 4096, np.uint8)
    skip = (distance + offset - raw.ctypes.data) % 4096
    into = raw[skip : skip + len(data) - offset]
    posix.readinto(LOG, offset, into)
    assert into.tobytes() == data[offset:]
    assert not raw[:skip].any() and not raw[skip + into.size :].any()  # nothing else touched
    assert bool(bounced) == (0 < distance < 64)


def test_posix_temp_files_do_not_linger(posix: PosixBackend) -> None:
    posix.write_atomic("c/HEAD", b"1")
    posix.write_atomic("c/HEAD", b"2")
    posix.create_exclusive("c/lease", b"me")
    posix.create_exclusive("c/lease", b"you")
    leftovers = [p for p in Path(posix.root).rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert leftovers == []


def test_posix_lists_leftovers_of_killed_writers_for_gc(posix: PosixBackend) -> None:
    posix.write_atomic("c/HEAD", b"1")
    leftover = f"c/{TEMP_PREFIX}0123"  # what a writer killed before its rename leaves
    (Path(posix.root) / leftover).write_bytes(b"half")
    assert sorted(posix.list("c/")) == [leftover, "c/HEAD"]
    posix.delete(leftover)
    assert list(posix.list()) == ["c/HEAD"]


def test_posix_failed_atomic_write_leaves_old_content(
    posix: PosixBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    posix.write_atomic("c/HEAD", b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(BackendError, match=r"'test-posix': c/HEAD: cannot write: No space left"):
        posix.write_atomic("c/HEAD", b"new")
    monkeypatch.undo()
    assert posix.read_small("c/HEAD") == b"old"
    assert list(posix.list()) == ["c/HEAD"]
    assert os.listdir(Path(posix.root) / "c") == ["HEAD"]


def test_not_on_lustre_here(tmp_path: Path) -> None:
    assert posix_module.is_lustre(tmp_path) is False
    with pytest.raises(FileNotFoundError):
        posix_module.is_lustre(tmp_path / "does-not-exist")


def test_setstripe_command() -> None:
    command = posix_module.setstripe_command
    options = {"stripe_count": 8, "stripe_size": 4 << 20}
    assert command("lfs", "/l/e1", options) == [
        "lfs", "setstripe", "-c", "8", "-S", "4194304", "/l/e1"
    ]  # fmt: skip
    assert command("/usr/bin/lfs", "/d", {"stripe_count": -1}) == [
        "/usr/bin/lfs", "setstripe", "-c", "-1", "/d"
    ]  # fmt: skip
    assert command("lfs", "/d", {}) is None


def test_log_directories_are_striped_on_lustre(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "lfs-calls"
    fake_lfs = tmp_path / "bin/lfs"
    fake_lfs.parent.mkdir()
    fake_lfs.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake_lfs.chmod(fake_lfs.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake_lfs.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(posix_module, "is_lustre", lambda path: True)
    config = backend_config(
        "posix", str(tmp_path / "lustre"), options={"stripe_count": 4, "stripe_size": "1 MiB"}
    )
    backend = open_backend(config)
    backend.create_log("c/e1/r0.log").close()
    backend.create_log("c/e1/r1.log").close()  # the directory exists: striped once
    backend.write_atomic("c/HEAD", b"1")  # metadata directories are not striped
    (call,) = calls.read_text().splitlines()
    args = call.split()
    assert args[:4] == ["setstripe", "-c", "4", "-S"] and args[4] == str(1 << 20)
    assert Path(args[5]).parent == tmp_path / "lustre/c"
    assert Path(args[5]).name.startswith(TEMP_PREFIX)  # striped, then renamed into place
    assert sorted(backend.list()) == ["c/HEAD", "c/e1/r0.log", "c/e1/r1.log"]


def test_no_striping_without_lustre(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(posix_module.shutil, "which", lambda name: "/nonexistent/lfs")
    config = backend_config("posix", str(tmp_path), options={"stripe_count": 4})
    backend = open_backend(config)
    backend.create_log("c/e1/r0.log").close()  # would fail if it ran the missing lfs
    assert backend.exists("c/e1/r0.log")
