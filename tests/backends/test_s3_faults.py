"""The s3 backend under real faults (docs/architecture.md §5): a loopback proxy in front
of SeaweedFS that drops connections, answers 503 Slow Down or loses answers
(`tests.backends.faultproxy`), and the SeaweedFS process killed during a commit.

What holds: every write and read completes with the bytes written, each retry
logged with backend, object and attempt; a store that always fails gives a
BackendError naming backend and object once the retry budget is spent, in
bounded time, and never wrong data; a commit whose server dies fails with an
error naming the backend and object, the previous epoch stays intact, and
after a restart on the same data the writer commits again.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.backends import BackendError, S3Backend, open_backend
from esdm_hpc.config import load_config
from esdm_hpc.testing.seaweedfs import SeaweedFS, answers
from tests.backends.conformance import backend_config
from tests.backends.conftest import start_server
from tests.backends.faultproxy import KINDS, FaultPlan, FaultProxy

BACKEND_LOGGER = "esdm_hpc.backends.s3"
# Enough retries that a 30% fault rate never exhausts them, and small enough
# pauses and timeouts that a store that always fails gives up within seconds.
PATIENT = {"retries": 12, "retry_timeout": 8.0, "request_timeout": 2.0}
IMPATIENT = {"retries": 3, "retry_timeout": 1.5, "request_timeout": 1.0}


@pytest.fixture
def proxy(seaweed: SeaweedFS) -> Iterator[FaultProxy]:
    with FaultProxy(seaweed.s3_port) as running:
        yield running


def through(proxy: FaultProxy, seaweed: SeaweedFS, **options: Any) -> dict[str, Any]:
    """s3 options for SeaweedFS's test bucket, reached through ``proxy``."""
    return seaweed.options(endpoint=proxy.endpoint, **options)


def open_through(proxy: FaultProxy, seaweed: SeaweedFS, **options: Any) -> S3Backend:
    config = backend_config(
        "s3", f"t-{uuid.uuid4().hex}", options=through(proxy, seaweed, **options)
    )
    backend = open_backend(config)
    assert isinstance(backend, S3Backend)
    return backend


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == BACKEND_LOGGER and "retrying in" in record.getMessage()
    ]


def exercise(backend: S3Backend, rng: np.random.Generator) -> dict[str, bytes]:
    """Every kind of write and read the core makes; what each object holds."""
    expected: dict[str, bytes] = {}
    for i in range(6):
        name = f"data/e1/r{i}.log"
        chunks = [rng.bytes(int(n)) for n in rng.integers(1, 3000, size=8)]
        with backend.create_log(name) as log:
            for chunk in chunks:
                log.append(chunk)
            log.sync()
        expected[name] = b"".join(chunks)
    for i in range(4):
        expected[f"meta/m{i}"] = rng.bytes(200)
        backend.write_atomic(f"meta/m{i}", expected[f"meta/m{i}"])
    assert backend.create_exclusive("meta/lease", b"rank 0")
    assert not backend.create_exclusive("meta/lease", b"another writer")
    expected["meta/lease"] = b"rank 0"
    return expected


def check_reads(backend: S3Backend, expected: dict[str, bytes]) -> None:
    assert sorted(backend.list()) == sorted(expected)
    for name, data in expected.items():
        assert backend.size(name) == len(data)
        assert backend.read(name, 0, len(data)) == data
    logs = {name: data for name, data in expected.items() if name.endswith(".log")}
    reads = {name: [(7, bytearray(100)), (len(d) - 50, bytearray(50))] for name, d in logs.items()}
    assert backend.readinto_objects(reads) == {}
    for name, ranges in reads.items():
        assert [bytes(b) for _, b in ranges] == [logs[name][o : o + len(b)] for o, b in ranges]
    for name in expected:
        if name.startswith("meta/"):
            assert backend.read_small(name) == expected[name]


@pytest.mark.parametrize("seed", [1, 2])
def test_every_write_and_read_completes_through_faults_with_each_retry_logged(
    seaweed: SeaweedFS, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    caplog.set_level(logging.INFO, logger=BACKEND_LOGGER)
    backend = open_through(proxy, seaweed, part_size=4096, **PATIENT)
    proxy.plan = FaultPlan(rate=0.3, seed=seed)
    expected = exercise(backend, np.random.default_rng(seed))
    check_reads(backend, expected)
    check_reads(open_backend(backend.config), expected)  # a reader with no cached index
    for name in expected:
        backend.delete(name)
    assert list(backend.list()) == []
    injected = sum(proxy.injected.values())
    assert set(proxy.injected) == set(KINDS) and injected > 20
    retries = retries_logged(caplog)
    # a fault fails one attempt; one attempt of several requests (ranged reads)
    # may meet more than one fault
    assert 0.5 * injected < len(retries) <= injected
    for message in retries:
        assert message.startswith(f"backend {backend.id!r}: ")
        assert "(attempt " in message and " of at most 13)" in message
    assert any("data/e1/r" in m for m in retries) and any("meta/m" in m for m in retries)


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_that_always_fails_gives_a_clear_error_in_bounded_time(
    seaweed: SeaweedFS, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.INFO, logger=BACKEND_LOGGER)
    backend = open_through(proxy, seaweed, part_size=4096, **IMPATIENT)
    backend.write_atomic("meta/kept", b"written before the faults")
    with backend.create_log("data/kept.log") as log:
        log.append(b"k" * 10_000)
    backend.require_conditional_writes()  # probed now: the create below names its object
    proxy.plan = FaultPlan(rate=1.0, kinds=(kind,))
    calls = {
        "meta/new": lambda: backend.write_atomic("meta/new", b"never acknowledged"),
        "meta/kept": lambda: backend.read_small("meta/kept"),
        "data/kept.log": lambda: open_backend(backend.config).read("data/kept.log", 0, 10),
        "data/new.log": lambda: backend.create_log("data/new.log").append(b"n" * 10_000),
        "meta/lease": lambda: backend.create_exclusive("meta/lease", b"rank 0"),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(BackendError) as failed:
            call()
        assert time.monotonic() - started < 4
        message = str(failed.value)
        assert message.startswith(f"backend {backend.id!r}: {name}: "), message
        assert "failed after 4 attempts in" in message
        assert "(the retry budget: 3 retries within 1.5 s)" in message
    assert len(retries_logged(caplog)) == 3 * len(calls)
    proxy.plan = FaultPlan()
    # never wrong data: what was there reads back; a write whose answers were lost
    # may have landed, whole
    reader = open_backend(backend.config)
    assert reader.read_small("meta/kept") == b"written before the faults"
    assert reader.read("data/kept.log", 0, 10_000) == b"k" * 10_000
    if reader.exists("meta/new"):
        assert kind == "lost-answer" and reader.read_small("meta/new") == b"never acknowledged"
    if reader.exists("meta/lease"):
        assert kind == "lost-answer" and reader.read_small("meta/lease") == b"rank 0"


def test_a_lost_answer_to_an_exclusive_create_is_no_lost_race(
    seaweed: SeaweedFS, proxy: FaultProxy
) -> None:
    backend = open_through(proxy, seaweed, **PATIENT)
    assert backend.create_exclusive("meta/probe-first", b"x")  # the probe, without faults
    # every create lands and loses its answer once: the retry finds the object
    # there, holding what it wrote
    proxy.plan = FaultPlan(rate=0.35, kinds=("lost-answer",), seed=7)
    for i in range(10):
        assert backend.create_exclusive(f"meta/lease{i}", b"rank 0 of writer %d" % i)
        assert not backend.create_exclusive(f"meta/lease{i}", b"another writer")
    assert proxy.injected["lost-answer"] > 3
    proxy.plan = FaultPlan()
    for i in range(10):
        assert backend.read_small(f"meta/lease{i}") == b"rank 0 of writer %d" % i


def site(endpoint_options: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Data on s3 (``object``), metadata on posix (``disk``)."""
    return {
        "backends": [
            {"id": "disk", "type": "posix", "target": str(tmp_path / "disk")},
            {
                "id": "object",
                "type": "s3",
                "target": f"site-{uuid.uuid4().hex}",
                "options": {"part_size": 8192, **endpoint_options},
                "performance": {"write_bandwidth": "100 GiB/s", "latency_s": 0},
            },
        ],
        "metadata_backend": "disk",
    }


def test_a_container_on_s3_through_faults_reads_back_what_it_wrote(
    seaweed: SeaweedFS, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=BACKEND_LOGGER)
    config = site(through(proxy, seaweed, **PATIENT), tmp_path)
    proxy.plan = FaultPlan(rate=0.25, seed=3)
    rng = np.random.default_rng(3)
    model = np.zeros((40, 30, 8))
    with esdm_hpc.open("esdm://faults/run", "w", config=config) as container:
        field = container.create_dataset("t", shape=model.shape, dtype="f8")
        for epoch in range(1, 5):
            for _ in range(3):
                lo = rng.integers(0, 30, size=3) % model.shape
                region = tuple(slice(int(a), int(a) + 10) for a in lo)
                values = rng.random(model[region].shape)
                model[region] = values
                field[region] = values
            assert container.commit() == epoch
    with esdm_hpc.open("esdm://faults/run", config=config) as container:
        np.testing.assert_array_equal(container["t"][...], model)
        np.testing.assert_array_equal(container["t"][3:17, 5, :], model[3:17, 5, :])
    assert sum(proxy.injected.values()) > 5
    assert retries_logged(caplog)
    s3 = open_backend(load_config(config).backend("object"))
    assert any(name.endswith(".log") for name in s3.list("containers/"))


def test_a_server_killed_mid_commit_fails_the_commit_and_the_writer_commits_after_a_restart(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "doomed")
    try:
        with FaultProxy(server.s3_port) as proxy:
            killed_mid_commit(server, proxy, tmp_path)
    finally:
        server.kill()


def killed_mid_commit(server: SeaweedFS, proxy: FaultProxy, tmp_path: Path) -> None:
    config = site(through(proxy, server, **IMPATIENT), tmp_path)
    first, second = np.arange(600.0).reshape(20, 30), -np.arange(600.0).reshape(20, 30)
    writer = esdm_hpc.open("esdm://killed/run", "w", config=config)
    try:
        field = writer.create_dataset("t", shape=first.shape, dtype="f8")
        field[...] = first
        assert writer.commit() == 1
        field[...] = second
        # the commit creates the epoch's log, uploads its part, then its index:
        # the server dies as the index reaches it
        log_puts = itertools.count(1)
        proxy.on_request = lambda method, path: (
            server.kill()
            if method == "PUT" and path.endswith(".log") and next(log_puts) == 2
            else None
        )
        started = time.monotonic()
        with pytest.raises(BackendError) as failed:
            writer.commit()
        assert time.monotonic() - started < 5
        assert not answers(server.s3_port)
        message = str(failed.value)
        assert "backend 'object': containers/killed/run/data/e000000002/" in message
        assert "write of the log's index failed after 4 attempts" in message
        with esdm_hpc.open("esdm://killed/run", config=config) as reader:
            assert reader.store.head().epoch == 1  # metadata on posix: readable now
        proxy.on_request = None
        server.start()  # the same data directory and ports
        with esdm_hpc.open("esdm://killed/run", config=config) as reader:
            np.testing.assert_array_equal(reader["t"][...], first)
        field[...] = second
        assert writer.commit() == 2
    finally:
        writer.close()
    with esdm_hpc.open("esdm://killed/run", config=config) as reader:
        np.testing.assert_array_equal(reader["t"][...], second)
    with esdm_hpc.open("esdm://killed/run", config=config, epoch=1) as reader:
        np.testing.assert_array_equal(reader["t"][...], first)
