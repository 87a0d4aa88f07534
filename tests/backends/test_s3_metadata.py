"""Container metadata on s3 (docs/architecture.md §3.4, §3.5, §5): HEAD, manifests and
the lease by compare-and-swap on a real SeaweedFS, with no lock.

What holds: SeaweedFS refuses a second exclusive create and a replacement with a
stale or wrong ETag, so the probe passes; a store that ignores the conditions
(SeaweedFS behind a proxy that drops the headers) is refused with a message
saying why. A container whose metadata lives on s3 writes, commits, reopens
and travels back in time; of writers racing to publish one epoch exactly one
wins; a writer whose lease expired and was taken over cannot publish; through
dropped connections and lost answers every commit lands once; a server killed
mid-commit fails the commit, and after a restart the writer commits again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.backends import BackendError, S3Backend, open_backend
from esdm_hpc.config import load_config
from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.manifest import Manifest
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import LeaseHeldError, LeaseLostError, PublishConflictError
from esdm_hpc.testing.seaweedfs import SeaweedFS, SeaweedUnavailable
from tests.backends.conformance import backend_config
from tests.backends.conftest import start_server
from tests.backends.faultproxy import FaultPlan, FaultProxy

LEASE_SECONDS = 0.6


def s3_site(options: dict[str, Any]) -> dict[str, Any]:
    """One s3 backend, ``object``, for data and metadata."""
    return {
        "backends": [
            {
                "id": "object",
                "type": "s3",
                "target": f"site-{uuid.uuid4().hex}",
                "options": {"part_size": 8192, **options},
            }
        ],
        "metadata_backend": "object",
    }


@pytest.fixture
def site(seaweed: SeaweedFS) -> dict[str, Any]:
    return s3_site(seaweed.options())


def bucket(config: dict[str, Any]) -> S3Backend:
    backend = open_backend(load_config(config).backend("object"))
    assert isinstance(backend, S3Backend)
    return backend


def write_epochs(uri: str, config: dict[str, Any], epochs: int) -> list[np.ndarray]:
    """Epoch k sets row k-1 of ``t`` to k; the field after each epoch, from epoch 0."""
    states = [np.zeros((epochs, 16))]
    with esdm_hpc.open(uri, "w", config=config) as container:
        field = container.create_dataset("t", shape=(epochs, 16), dtype="f8")
        for epoch in range(1, epochs + 1):
            field[epoch - 1] = epoch
            assert container.commit() == epoch
            states.append(states[-1].copy())
            states[-1][epoch - 1] = epoch
    return states


def test_seaweedfs_honours_conditional_writes(seaweed: SeaweedFS) -> None:
    config = backend_config("s3", f"t-{uuid.uuid4().hex}", options=seaweed.options())
    backend = open_backend(config)
    assert isinstance(backend, S3Backend)
    backend.require_conditional_writes()  # the probe passes
    first = backend.replace_if("HEAD", b"epoch 1", None)
    assert first is not None
    assert backend.replace_if("HEAD", b"again", None) is None  # If-None-Match: *
    second = backend.replace_if("HEAD", b"epoch 2", first)
    assert second is not None and second != first
    assert backend.replace_if("HEAD", b"stale", first) is None  # If-Match on an old ETag
    assert backend.replace_if("gone", b"x", second) is None  # If-Match on a missing object
    stored = backend.read_versioned("HEAD")
    assert stored is not None and (stored.data, stored.version) == (b"epoch 2", second)
    assert backend.read_versioned("gone") is None


@pytest.fixture(scope="module")
def careless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """A store that ignores conditional writes: SeaweedFS without authentication (so
    requests stay valid without their signed headers) behind a proxy dropping
    If-None-Match and If-Match."""
    server = SeaweedFS(tmp_path_factory.mktemp("careless"), authenticate=False)
    try:
        server.start()
    except SeaweedUnavailable as why:
        pytest.skip(f"SeaweedFS cannot start: {why}")
    try:
        with FaultProxy(server.s3_port, ignore_conditions=True) as proxy:
            yield proxy
    finally:
        server.kill()  # nothing to keep


def test_a_store_ignoring_conditional_writes_is_refused(
    careless: FaultProxy, seaweed: SeaweedFS
) -> None:
    options = seaweed.options(endpoint=careless.endpoint)
    backend = open_backend(backend_config("s3", f"t-{uuid.uuid4().hex}", options=options))
    with pytest.raises(BackendError, match="ignores conditional writes: If-None-Match: "):
        backend.create_exclusive("lease", b"x")
    with pytest.raises(BackendError, match="ignores conditional writes"), backend.locked("LOCK"):
        pass
    backend.write_atomic("data", b"plain objects still work")  # data needs no condition
    assert backend.read_small("data") == b"plain objects still work"
    with pytest.raises(BackendError) as refused:
        esdm_hpc.open("esdm://careless/run", "w", config=s3_site(options))
    message = str(refused.value)
    assert message.startswith("backend 'object': ")
    assert "container metadata (HEAD, manifests, leases) and locks cannot live here" in message


def test_a_container_with_metadata_on_s3_commits_reopens_and_travels_in_time(
    site: dict[str, Any],
) -> None:
    states = write_epochs("esdm://meta/run", site, 4)
    for epoch, state in enumerate(states):
        with esdm_hpc.open("esdm://meta/run", config=site, epoch=epoch) as container:
            if epoch:
                np.testing.assert_array_equal(container["t"][...], state)
    with esdm_hpc.open("esdm://meta/run", "a", config=site) as container:
        container["t"][:, 3] = -1.0
    with esdm_hpc.open("esdm://meta/run", config=site) as container:
        assert container.store.head().epoch == 5
        expected = states[-1].copy()
        expected[:, 3] = -1.0
        np.testing.assert_array_equal(container["t"][...], expected)
    names = set(bucket(site).list("containers/meta/run/"))
    assert {"containers/meta/run/HEAD", "containers/meta/run/LEASE"} <= names
    assert "containers/meta/run/manifests/e000000005.json" in names
    assert "containers/meta/run/LOCK" not in names  # published by compare-and-swap
    assert leases.current(container.store) is None  # given up at close (emptied)


def test_one_writer_at_a_time_and_esdm_tools_work_there(
    site: dict[str, Any], tmp_path: Path
) -> None:
    write_epochs("esdm://meta/tools", site, 2)
    config_path = tmp_path / "site.json"
    config_path.write_text(json.dumps(site))
    with esdm_hpc.open("esdm://meta/tools", "a", config=site) as writer:
        with pytest.raises(LeaseHeldError, match="is open for writing by"):
            esdm_hpc.open("esdm://meta/tools", "a", config=site)
        writer["t"][0] = 7.0
    base = ["--config", str(config_path)]
    assert cli.main([*base, "gc", "--quiet", "esdm://meta/tools"]) == 0
    assert cli.main([*base, "verify", "--quiet", "esdm://meta/tools"]) == 0
    with esdm_hpc.open("esdm://meta/tools", config=site) as container:
        assert container.store.head().epoch == 3
        np.testing.assert_array_equal(container["t"][0], 7.0)


def test_of_writers_racing_to_publish_an_epoch_exactly_one_wins(site: dict[str, Any]) -> None:
    write_epochs("esdm://meta/race", site, 1)
    with esdm_hpc.open("esdm://meta/race", config=site) as container:
        namespace = container.catalogue.last.namespace
        store = container.store
    parent = store.head()
    racers = 3
    start = threading.Barrier(racers)
    won: list[int] = []
    refused: list[PublishConflictError] = []

    def race(i: int) -> None:
        # a store of its own, as another process has
        backends = {"object": open_backend(store.meta.config)}
        mine = ContainerStore(store.name, backends, "object")
        manifest = Manifest(2, parent.checksum, f"writer {i}", {}, namespace)
        start.wait()
        try:
            mine.publish(manifest, parent=parent)
        except PublishConflictError as error:
            refused.append(error)
        else:
            won.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(refused) == racers - 1
    for error in refused:
        assert "another writer published first" in str(error)
    manifest, _ = store.read_manifest(2, store.head().checksum)
    assert manifest.created == f"writer {won[0]}"  # HEAD names the winner's manifest, whole


def test_a_writer_publishing_in_between_wins_and_the_other_replaces_nothing(
    site: dict[str, Any],
) -> None:
    write_epochs("esdm://meta/between", site, 1)
    with esdm_hpc.open("esdm://meta/between", config=site) as container:
        namespace = container.catalogue.last.namespace
        store = container.store
    other = ContainerStore(store.name, {"object": open_backend(store.meta.config)}, "object")
    parent = store.head()

    def manifest(epoch: int, on: Any, who: str) -> Manifest:
        return Manifest(epoch, on.checksum, who, {}, namespace)

    # the other publishes epoch 2 after this one read HEAD (its guard lets it in):
    # this one, holding a lease, finds a manifest of epoch 2 and HEAD moved on
    with pytest.raises(PublishConflictError, match=r"e000000002\.json written by another"):
        store.publish(
            manifest(2, parent, "mine"),
            parent=parent,
            guard=lambda: other.publish(manifest(2, parent, "theirs"), parent=parent),
        )
    head = store.head()
    assert store.read_manifest(2, head.checksum)[0].created == "theirs"

    # HEAD swapped by the other after this one read it: the swap is refused
    def late(stored: bytes | None) -> bytes:
        other.publish(manifest(3, head, "theirs"), parent=head)
        return b"a HEAD built on epoch 2"

    assert not store.update("HEAD", late)
    assert store.head().epoch == 3
    with esdm_hpc.open("esdm://meta/between", config=site) as container:
        assert container.store.head().epoch == 3


def test_a_writer_whose_lease_was_taken_over_cannot_publish(
    site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_epochs("esdm://meta/frozen", site, 1)
    monkeypatch.setenv("ESDM_LEASE_SECONDS", str(LEASE_SECONDS))
    monkeypatch.setattr(leases, "RENEWALS_PER_PERIOD", 1e-9)  # frozen keepers: never renew
    first = esdm_hpc.open("esdm://meta/frozen", "a", config=site)
    first["t"][0] = 2.0
    time.sleep(LEASE_SECONDS + 0.2)
    second = esdm_hpc.open("esdm://meta/frozen", "a", config=site)  # takes the expired lease
    second["t"][0] = 3.0
    with pytest.raises(LeaseLostError, match="it is now held by"):
        first.commit()
    assert second.commit() == 2
    second.close()
    first.close()  # nothing pending: the refused commit discarded the epoch
    with esdm_hpc.open("esdm://meta/frozen", config=site) as container:
        assert container.store.head().epoch == 2
        np.testing.assert_array_equal(container["t"][0], 3.0)


def test_metadata_on_s3_through_faults_commits_every_epoch_once(
    seaweed: SeaweedFS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="esdm_hpc.backends.s3")
    with FaultProxy(seaweed.s3_port) as proxy:
        options = seaweed.options(endpoint=proxy.endpoint, retries=12, retry_timeout=8.0)
        config = s3_site(options)
        proxy.plan = FaultPlan(rate=0.2, seed=11)
        states = write_epochs("esdm://meta/faults", config, 5)
        proxy.plan = FaultPlan()
        with esdm_hpc.open("esdm://meta/faults", config=config) as container:
            assert container.store.head().epoch == 5
            np.testing.assert_array_equal(container["t"][...], states[-1])
        with esdm_hpc.open("esdm://meta/faults", config=config, epoch=2) as container:
            np.testing.assert_array_equal(container["t"][...], states[2])
    assert proxy.injected["lost-answer"] > 3
    retried = {r.getMessage().split(": ")[1] for r in caplog.records if "retrying" in r.message}
    assert any(name.endswith("/HEAD") for name in retried)


def test_a_server_killed_as_head_is_replaced_fails_the_commit_until_it_is_back(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "doomed")
    try:
        with FaultProxy(server.s3_port) as proxy:
            options = server.options(
                endpoint=proxy.endpoint, retries=3, retry_timeout=1.5, request_timeout=1.0
            )
            config = s3_site(options)
            with esdm_hpc.open("esdm://meta/killed", "w", config=config) as writer:
                field = writer.create_dataset("t", shape=(8,), dtype="f8")
                field[...] = 1.0
                assert writer.commit() == 1
                field[...] = 2.0
                # the manifest is created; the server dies as the HEAD swap reaches it
                proxy.on_request = lambda method, path: (
                    server.kill() if method == "PUT" and path.endswith("/HEAD") else None
                )
                started = time.monotonic()
                with pytest.raises(BackendError) as failed:
                    writer.commit()
                assert time.monotonic() - started < 5
                assert str(failed.value).startswith(
                    "backend 'object': containers/meta/killed/HEAD: replace failed after 4"
                )
                proxy.on_request = None
                server.start()
                with esdm_hpc.open("esdm://meta/killed", config=config) as reader:
                    assert reader.store.head().epoch == 1
                    np.testing.assert_array_equal(reader["t"][...], 1.0)
                field[...] = 3.0  # over the failed commit's manifest of epoch 2
                assert writer.commit() == 2
            with esdm_hpc.open("esdm://meta/killed", config=config) as reader:
                np.testing.assert_array_equal(reader["t"][...], 3.0)
    finally:
        server.kill()
