"""The s3 backend against a real SeaweedFS: the conformance suite, then what only s3
does (logs across flushes, stale locks, retries ending in a clear error when the
server dies, a container's data on s3). Faults: test_s3_faults.py; metadata on
s3 and the conditional-write probe: test_s3_metadata.py."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest

import esdm_hpc
from esdm_hpc.backends import Backend, BackendError, S3Backend, open_backend
from esdm_hpc.backends import s3 as s3_module
from esdm_hpc.testing.seaweedfs import SeaweedFS
from tests.backends.conformance import LOG, BackendTests, backend_config, lock_elsewhere
from tests.backends.conftest import start_server


def s3_config(server: SeaweedFS, **options: Any) -> Any:
    return backend_config("s3", f"t-{uuid.uuid4().hex}/", options=server.options(**options))


def open_s3(server: SeaweedFS, **options: Any) -> S3Backend:
    backend = open_backend(s3_config(server, **options))
    assert isinstance(backend, S3Backend)
    return backend


def raw_keys(backend: S3Backend, prefix: str) -> list[str]:
    """Every key under ``prefix``, the backend's own included."""
    return [meta["path"] for chunk in obstore.list(backend.store, prefix) for meta in chunk]


class TestS3Backend(BackendTests):
    @pytest.fixture(autouse=True)
    def server(self, seaweed: SeaweedFS) -> None:
        self.seaweed = seaweed

    def make_backend(self, tmp_path: Path) -> Backend:
        return open_s3(self.seaweed)


@pytest.fixture
def s3(seaweed: SeaweedFS) -> Iterator[S3Backend]:
    with open_s3(seaweed, part_size=64) as backend:
        yield backend


def test_reads_span_parts_of_several_flushes(s3: S3Backend) -> None:
    rng = np.random.default_rng(5)
    chunks = [rng.bytes(int(n)) for n in rng.integers(1, 200, size=40)]
    with s3.create_log(LOG) as log:
        starts = []
        for i, chunk in enumerate(chunks):
            starts.append(log.append(chunk))
            if i % 7 == 0:
                log.sync()  # a flush of whatever the buffer holds: parts of any size
    whole = b"".join(chunks)
    assert starts == [sum(map(len, chunks[:i])) for i in range(len(chunks))]
    assert s3.size(LOG) == len(whole)
    parts = raw_keys(s3, s3_module.PARTS_ROOT)
    assert len(parts) > 10 and list(s3.list()) == [LOG]  # parts are hidden from list
    for offset, length in [(0, len(whole)), (63, 2), (100, 1000), (len(whole) - 1, 1)]:
        assert s3.read(LOG, offset, length) == whole[offset : offset + length]
    s3.delete(LOG)
    assert raw_keys(s3, s3_module.PARTS_ROOT) == []


def test_synced_bytes_are_readable_before_close_and_by_another_client(s3: S3Backend) -> None:
    log = s3.create_log(LOG)
    log.append(b"a" * 100)
    log.sync()
    other = open_backend(s3.config)
    assert other.read(LOG, 0, 100) == b"a" * 100
    log.append(b"b" * 10)
    log.close()
    assert other.read(LOG, 95, 15) == b"a" * 5 + b"b" * 10  # past its cached index


def test_reserved_names_are_refused(s3: S3Backend) -> None:
    with pytest.raises(ValueError, match="reserved for the s3 backend"):
        s3.write_atomic(".esdm-parts/x", b"1")


def test_a_stale_lock_is_broken_after_its_lease(seaweed: SeaweedFS) -> None:
    backend = open_s3(seaweed, lock_lease=0.3)
    # a holder that died: its lock object stays, with an expiry in the past
    backend.write_atomic("c/LOCK", b'{"holder": "dead", "expires": 0}')
    started = time.monotonic()
    with backend.locked("c/LOCK", timeout=5):
        assert b'"holder"' in backend.read_small("c/LOCK")
    assert time.monotonic() - started < 2
    assert not backend.exists("c/LOCK")


def test_a_held_lock_is_renewed_past_its_lease(seaweed: SeaweedFS) -> None:
    backend = open_s3(seaweed, lock_lease=0.3)
    with backend.locked("c/LOCK"):
        failed = lock_elsewhere(open_backend(backend.config), "c/LOCK", timeout=1.0)
    assert failed is not None and "c/LOCK: cannot lock" in str(failed)


def test_credentials_never_show(seaweed: SeaweedFS) -> None:
    config = s3_config(seaweed)
    for text in (repr(config), repr(open_backend(config)), str(config.options)):
        assert seaweed.options()["secret_access_key"] not in text


def test_credentials_from_the_environment(
    seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = seaweed.options()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", options.pop("access_key_id"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", options.pop("secret_access_key"))
    config = backend_config("s3", f"t-{uuid.uuid4().hex}", options=options)
    backend = open_backend(config)
    backend.write_atomic("HEAD", b"1")
    assert backend.read_small("HEAD") == b"1"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(BackendError, match=r"backend 'test-s3': HEAD: read failed"):
        open_backend(config).read_small("HEAD")


def site(seaweed: SeaweedFS, tmp_path: Path, metadata: str) -> dict[str, Any]:
    return {
        "backends": [
            {"id": "disk", "type": "posix", "target": str(tmp_path / "disk")},
            {
                "id": "object",
                "type": "s3",
                "target": f"site-{uuid.uuid4().hex}",
                "options": seaweed.options(part_size=4096),
                "performance": {"write_bandwidth": "100 GiB/s", "latency_s": 0},
            },
        ],
        "metadata_backend": metadata,
    }


def test_a_container_on_s3_round_trips(seaweed: SeaweedFS, tmp_path: Path) -> None:
    config = site(seaweed, tmp_path, "disk")
    field = np.arange(64 * 48, dtype="f8").reshape(64, 48)
    with esdm_hpc.open("esdm://runs/one", "w", config=config) as container:
        dataset = container.create_dataset("t", shape=field.shape, dtype="f8")
        dataset[:32] = field[:32]
        container.commit()
        dataset[32:] = field[32:]
    with esdm_hpc.open("esdm://runs/one", "r", config=config) as container:
        np.testing.assert_array_equal(container["t"][...], field)
        np.testing.assert_array_equal(container["t"][10:40, 7:9], field[10:40, 7:9])
    s3 = open_backend(esdm_hpc.config.load_config(config).backend("object"))
    assert any(name.endswith(".log") for name in s3.list("containers/"))
    assert not any(name.endswith("HEAD") for name in s3.list())


def test_a_killed_server_gives_a_clear_error_after_bounded_retries(tmp_path: Path) -> None:
    server = start_server(tmp_path / "doomed")
    try:
        backend = open_s3(server, part_size=1024, retries=2, retry_timeout=1.0, request_timeout=1.0)
        names = [f"logs/r{i}.log" for i in range(8)]
        for name in names:
            with backend.create_log(name) as log:
                log.append(bytes(16 * 1024))
        reads = {name: [(0, bytearray(16 * 1024))] for name in names}
        assert backend.readinto_objects(reads) == {}
        threading.Timer(0.05, server.kill).start()
        started = time.monotonic()
        errors: dict[str, BackendError] = {}
        while not errors and time.monotonic() - started < 10:
            errors = open_backend(backend.config).readinto_objects(reads)
        elapsed = time.monotonic() - started
    finally:
        server.kill()
    assert errors and elapsed < 15
    for name, error in errors.items():
        assert f"backend 'test-s3': {name}:" in str(error)
        assert "failed after 3 attempts in" in str(error)
        assert "(the retry budget: 2 retries within 1 s)" in str(error)
