import dataclasses
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esdm_hpc.backends import (
    Backend,
    BackendError,
    MemoryBackend,
    ObjectNotFoundError,
    PosixBackend,
    open_backend,
)
from esdm_hpc.backends import posix as posix_module
from esdm_hpc.backends.base import TEMP_PREFIX
from esdm_hpc.config import BackendConfig, load_config

LOG = "containers/demo/data/e000000001/r000003.log"


def backend_config(kind: str, target: str, **changes: object) -> BackendConfig:
    raw = {"id": f"test-{kind}", "type": kind, "target": target, **changes}
    return load_config({"backends": [raw]}).backends[0]


@pytest.fixture(params=["posix", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    target = str(tmp_path / "store") if request.param == "posix" else f"test-{uuid.uuid4().hex}"
    with open_backend(backend_config(request.param, target)) as opened:
        yield opened


def reopen(backend: Backend) -> Backend:
    """A second backend object on the same target, as another part of the process would get."""
    return open_backend(backend.config)


# --- data logs ---------------------------------------------------------------------------


def test_append_returns_offsets_and_reads_back(backend: Backend) -> None:
    with backend.create_log(LOG) as log:
        assert log.name == LOG
        assert log.append(b"earth") == 0
        assert log.append(bytearray(b" system")) == 5
        assert log.append(memoryview(b" data")) == 12
        assert log.append(b"") == 17
        assert log.nbytes == 17
        log.sync()
    other = reopen(backend)
    assert other.size(LOG) == 17
    assert other.read(LOG, 0, 17) == b"earth system data"
    assert other.read(LOG, 6, 6) == b"system"
    assert other.read(LOG, 17, 0) == b""
    buffer = bytearray(4)
    other.readinto(LOG, 13, memoryview(buffer))
    assert buffer == b"data"
    other.readinto(LOG, 17, bytearray())


def test_readinto_objects_reads_every_object_and_names_the_failures(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(posix_module, "OPEN_AT_ONCE", 2)  # several batches
    names = [f"containers/demo/data/e000000001/r{i:06d}.log" for i in range(5)]
    for i, name in enumerate(names):
        with backend.create_log(name) as log:
            log.append(bytes([i]) * 100)
    missing = "containers/demo/data/e000000001/gone.log"
    reads: dict[str, list[tuple[int, bytearray]]] = {
        name: [(10, bytearray(5)), (90, bytearray(10))] for name in names
    }
    reads[missing] = [(0, bytearray(1))]
    reads[names[3]].append((95, bytearray(10)))  # past the end
    errors = backend.readinto_objects(reads)
    assert sorted(errors) == sorted([missing, names[3]])
    assert isinstance(errors[missing], ObjectNotFoundError)
    assert "short read of bytes [95, 105)" in str(errors[names[3]])
    for i, name in enumerate(names):
        if name != names[3]:
            assert [bytes(b) for _, b in reads[name]] == [bytes([i]) * 5, bytes([i]) * 10]


def test_numpy_arrays_round_trip(backend: Backend) -> None:
    field = np.arange(24, dtype="<f8").reshape(4, 6)
    with backend.create_log(LOG) as log:
        log.append(b"header")
        start = log.append(field)
        log.append(np.empty((0, 3)))  # zero extent arrays are fine too
    out = np.empty_like(field)
    backend.readinto(LOG, start, out)
    np.testing.assert_array_equal(out, field)
    assert backend.read(LOG, start, field.nbytes) == field.tobytes()


def test_non_contiguous_and_read_only_buffers_are_refused(backend: Backend) -> None:
    field = np.arange(24, dtype="<i4").reshape(4, 6)
    with backend.create_log(LOG) as log:
        with pytest.raises(ValueError, match="C-contiguous"):
            log.append(field[:, ::2])
        log.append(field)
    with pytest.raises(ValueError, match="read-only"):
        backend.readinto(LOG, 0, memoryview(bytes(8)))


def test_short_read_names_backend_object_and_range(backend: Backend) -> None:
    with backend.create_log(LOG) as log:
        log.append(bytes(100))
    message = rf"backend '{backend.id}': {LOG}: short read of bytes \[90, 110\): only 10 of 20"
    with pytest.raises(BackendError, match=message):
        backend.read(LOG, 90, 20)
    with pytest.raises(BackendError, match=r"\[200, 201\): only 0 of 1"):
        backend.readinto(LOG, 200, bytearray(1))
    with pytest.raises(ValueError, match="offset >= 0"):
        backend.read(LOG, -1, 5)


def test_missing_objects(backend: Backend) -> None:
    for call in (
        lambda: backend.read("nope.log", 0, 1),
        lambda: backend.readinto("nope.log", 0, bytearray(1)),
        lambda: backend.size("nope.log"),
        lambda: backend.read_small("a/nope"),
    ):
        with pytest.raises(ObjectNotFoundError, match=f"backend '{backend.id}': .*nope"):
            call()
    assert issubclass(ObjectNotFoundError, FileNotFoundError)
    assert not backend.exists("nope.log")


def test_create_log_twice_is_an_error(backend: Backend) -> None:
    backend.create_log(LOG).close()
    with pytest.raises(BackendError, match=f"{LOG}: cannot create log: it exists already"):
        backend.create_log(LOG)


def test_closed_log(backend: Backend) -> None:
    log = backend.create_log(LOG)
    log.append(b"x")
    log.close()
    log.close()  # harmless
    with pytest.raises(ValueError, match="closed"):
        log.append(b"y")
    assert backend.read(LOG, 0, 1) == b"x"


def test_concurrent_appends_get_distinct_offsets(backend: Backend) -> None:
    log = backend.create_log(LOG)
    offsets: dict[int, list[int]] = {}

    def writer(tag: int) -> None:
        offsets[tag] = [log.append(bytes([tag]) * 64) for _ in range(50)]

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert backend.size(LOG) == 4 * 50 * 64
    for tag, starts in offsets.items():
        for start in starts:
            assert backend.read(LOG, start, 64) == bytes([tag]) * 64


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(st.binary(max_size=300), max_size=8), data=st.data())
def test_any_range_reads_what_was_appended(backend: Backend, chunks: list[bytes], data) -> None:
    name = f"logs/{uuid.uuid4().hex}.log"
    with backend.create_log(name) as log:
        starts = [log.append(chunk) for chunk in chunks]
    whole = b"".join(chunks)
    assert starts == [sum(map(len, chunks[:i])) for i in range(len(chunks))]
    offset = data.draw(st.integers(0, len(whole)))
    length = data.draw(st.integers(0, len(whole) - offset))
    assert backend.read(name, offset, length) == whole[offset : offset + length]


# --- objects -----------------------------------------------------------------------------


def test_list_size_delete(backend: Backend) -> None:
    names = [
        "containers/a/data/e1/r0.log",
        "containers/a/data/e1/r1.log",
        "containers/a/HEAD",
        "containers/ab/HEAD",
        "top",
    ]
    for i, name in enumerate(names):
        backend.write_atomic(name, bytes(i))
    assert sorted(backend.list()) == sorted(names)
    assert sorted(backend.list("containers/a/")) == sorted(names[:3])
    assert sorted(backend.list("containers/a")) == sorted(names[:4])
    assert sorted(backend.list("containers/a/data/e1/r1")) == names[1:2]
    assert list(backend.list("elsewhere/")) == []
    assert [backend.size(n) for n in names] == [0, 1, 2, 3, 4]
    backend.delete(names[0])
    backend.delete(names[0])  # idempotent
    assert not backend.exists(names[0])
    assert sorted(backend.list("containers/a/data/")) == names[1:2]


def test_write_atomic_replaces_whole_content(backend: Backend) -> None:
    backend.write_atomic("containers/c/HEAD", b"epoch 1")
    backend.write_atomic("containers/c/HEAD", b"epoch 2, longer")
    assert backend.read_small("containers/c/HEAD") == b"epoch 2, longer"
    assert list(backend.list()) == ["containers/c/HEAD"]


def test_readers_never_see_a_partial_replacement(backend: Backend) -> None:
    old, new = b"o" * 100_000, b"n" * 50_000
    backend.write_atomic("HEAD", old)
    seen: set[bytes] = set()
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.add(backend.read_small("HEAD"))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(20):
        backend.write_atomic("HEAD", new if i % 2 == 0 else old)
    done.set()
    thread.join()
    assert seen <= {old, new}


def test_create_exclusive(backend: Backend) -> None:
    assert backend.create_exclusive("containers/c/lease", b"rank 0 on node1")
    assert not backend.create_exclusive("containers/c/lease", b"rank 0 on node2")
    assert backend.read_small("containers/c/lease") == b"rank 0 on node1"
    assert list(backend.list()) == ["containers/c/lease"]
    backend.delete("containers/c/lease")
    assert backend.create_exclusive("containers/c/lease", b"node2")


def test_create_exclusive_has_one_winner(backend: Backend) -> None:
    wins: list[int] = []
    threads = [
        threading.Thread(
            target=lambda i=i: backend.create_exclusive("lease", b"%d" % i) and wins.append(i)
        )
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert backend.read_small("lease") == b"%d" % wins[0]


def test_a_lock_excludes_every_other_holder(backend: Backend) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def hold(i: int) -> None:
        with backend.locked("containers/c/LOCK"):
            inside.append(i)
            if len(inside) > 1:
                overlaps.append(i)
            time.sleep(0.005)
            inside.remove(i)

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_a_lock_held_too_long_is_an_error_naming_it(backend: Backend) -> None:
    with backend.locked("c/LOCK"):
        failed: list[BaseException] = []

        def wait() -> None:
            try:
                with reopen(backend).locked("c/LOCK", timeout=0.05):
                    pass
            except BackendError as error:
                failed.append(error)

        thread = threading.Thread(target=wait)
        thread.start()
        thread.join()
    assert len(failed) == 1 and "c/LOCK: cannot lock" in str(failed[0])
    with backend.locked("c/LOCK", timeout=0.05):  # free again
        pass


def test_a_discarded_log_is_released_without_sync(backend: Backend) -> None:
    log = backend.create_log(LOG)
    log.append(b"x" * 10)
    log.discard()
    log.discard()
    with pytest.raises(ValueError, match="closed log"):
        log.append(b"more")


@pytest.mark.parametrize(
    "name",
    ["../escape", "/etc/passwd", "a/../../escape", "a//b", "./a", "a/.", "", "a\0b"],
)
def test_names_cannot_escape_or_alias(backend: Backend, name: str) -> None:
    for call in (
        lambda: backend.create_log(name),
        lambda: backend.read(name, 0, 1),
        lambda: backend.readinto(name, 0, bytearray(1)),
        lambda: backend.size(name),
        lambda: backend.exists(name),
        lambda: backend.delete(name),
        lambda: backend.write_atomic(name, b"x"),
        lambda: backend.read_small(name),
        lambda: backend.create_exclusive(name, b"x"),
    ):
        with pytest.raises(ValueError, match="name"):
            call()
    with pytest.raises(ValueError):
        list(backend.list("../"))


# --- open_backend --------------------------------------------------------------------------


def test_open_backend_chooses_by_type(tmp_path: Path) -> None:
    assert isinstance(open_backend(backend_config("posix", str(tmp_path))), PosixBackend)
    assert isinstance(open_backend(backend_config("memory", "x")), MemoryBackend)
    posix = backend_config("posix", str(tmp_path))
    for coming in ("s3", "burstbuffer"):  # refused by the configuration until the tiers exist
        with pytest.raises(ValueError, match=f"unknown type '{coming}'"):
            open_backend(dataclasses.replace(posix, type=coming))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown type 'ceph'"):
        open_backend(dataclasses.replace(posix, type="ceph"))  # type: ignore[arg-type]


def test_memory_stores_are_shared_by_target() -> None:
    target = f"shared-{uuid.uuid4().hex}"
    first = open_backend(backend_config("memory", target))
    first.write_atomic("HEAD", b"1")
    assert open_backend(backend_config("memory", target)).read_small("HEAD") == b"1"
    assert not open_backend(backend_config("memory", target + "-other")).exists("HEAD")


# --- posix specifics -------------------------------------------------------------------------


@pytest.fixture
def posix(tmp_path: Path) -> PosixBackend:
    backend = open_backend(backend_config("posix", str(tmp_path / "missing/yet")))
    assert isinstance(backend, PosixBackend)
    return backend


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
