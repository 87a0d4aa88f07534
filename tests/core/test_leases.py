"""The single-writer lease and exclusive publication (docs/architecture.md §3.4, §3.5).

A living writer keeps its lease however long it goes between commits; a
writer whose lease was taken (it froze past expiry, or `esdm unlock --force`)
can never publish; publishing epoch n is exclusive whatever happens to leases;
gc and unlock never delete what is not theirs.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc import container as container_module
from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.manifest import Manifest
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import (
    CorruptMetadataError,
    LeaseHeldError,
    LeaseLostError,
    PublishConflictError,
)

LEASE_SECONDS = 0.4


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESDM_LEASE_SECONDS", str(LEASE_SECONDS))


@pytest.fixture
def frozen_keepers(monkeypatch: pytest.MonkeyPatch, short_leases: None) -> None:
    """Keepers that never renew: a writer frozen (SIGSTOP, swapped out) past its lease."""
    monkeypatch.setattr(leases, "RENEWALS_PER_PERIOD", 1e-9)


@pytest.fixture
def config_path(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "site.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture
def committed(config: dict) -> Iterator[str]:
    """esdm://c with epoch 1: x = 1."""
    with esdm_hpc.open("esdm://c", "w", config=config) as c:
        c.create_dataset("x", shape=(4,), dtype="i4")[:] = 1
    yield "esdm://c"


def capture_output() -> redirect_stdout[StringIO]:
    return redirect_stdout(StringIO())


def store_of(config: dict) -> ContainerStore:
    with esdm_hpc.open("esdm://c", config=config) as c:
        return c.store


def read(config: dict, epoch: int | None = None) -> np.ndarray:
    with esdm_hpc.open("esdm://c", config=config, epoch=epoch) as c:
        return c["x"][...]


def test_a_living_writer_keeps_its_lease_between_commits(
    config: dict, config_path: str, committed: str, short_leases: None
) -> None:
    with esdm_hpc.open(committed, "a", config=config) as writer:
        writer["x"][:] = 2
        time.sleep(3 * LEASE_SECONDS)  # a long model step between outputs
        with pytest.raises(LeaseHeldError, match="open for writing by"):
            esdm_hpc.open(committed, "a", config=config)
        assert cli.main(["--config", config_path, "gc", "--quiet", committed]) == 3
        assert leases.current(store_of(config)).expires > time.time()
        assert writer.commit() == 2
    np.testing.assert_array_equal(read(config), 2)


def test_gc_after_a_frozen_writer_lost_its_lease_never_loses_a_commit(
    config: dict, config_path: str, committed: str, frozen_keepers: None
) -> None:
    writer = esdm_hpc.open(committed, "a", config=config)
    writer["x"][:] = 2
    writer.commit()  # epoch 2
    big = writer.create_dataset("big", shape=(1 << 16,), dtype="f8")
    big[:] = 3.0  # in the epoch's data log already
    time.sleep(2 * LEASE_SECONDS)
    with capture_output() as out:
        assert cli.main(["--config", config_path, "gc", committed]) == 0  # took the lease over
    assert "removed 1 objects (514.0 KiB)" in out.getvalue()  # the frozen writer's log
    with pytest.raises(LeaseLostError, match="lost its lease: it was broken"):
        writer.commit()  # never acknowledged, so nothing acknowledged is lost
    writer.close()  # nothing pending: the refused commit discarded the epoch
    for epoch, value in [(1, 1), (2, 2)]:
        np.testing.assert_array_equal(read(config, epoch), value)
    assert store_of(config).head().epoch == 2
    assert cli.main(["--config", config_path, "verify", "--quiet", committed]) == 0


def test_of_two_writers_after_an_expiry_only_the_lease_holder_publishes(
    config: dict, committed: str, frozen_keepers: None
) -> None:
    first = esdm_hpc.open(committed, "a", config=config)
    first["x"][:] = 2
    time.sleep(2 * LEASE_SECONDS)
    second = esdm_hpc.open(committed, "a", config=config)  # takes the expired lease
    second["x"][:] = 3
    with pytest.raises(LeaseLostError, match="it is now held by"):
        first.commit()
    assert second.commit() == 2
    second.close()
    first["x"][:] = 4
    with pytest.raises(LeaseLostError, match="it was broken"):  # released by the second
        first.close()
    np.testing.assert_array_equal(read(config, 1), 1)
    np.testing.assert_array_equal(read(config), 3)


def test_a_writer_whose_lease_was_broken_by_force_cannot_commit(
    config: dict, config_path: str, committed: str
) -> None:
    writer = esdm_hpc.open(committed, "a", config=config)
    writer["x"][:] = 2
    assert cli.main(["--config", config_path, "unlock", "--force", committed]) == 0
    with pytest.raises(LeaseLostError):
        writer.commit()
    writer["x"][:] = 3
    with pytest.raises(LeaseLostError):
        writer.close()
    assert store_of(config).head().epoch == 1
    with esdm_hpc.open(committed, "a", config=config) as again:
        again["x"][:] = 4
    np.testing.assert_array_equal(read(config), 4)


def test_publishing_an_epoch_is_exclusive(config: dict, committed: str) -> None:
    store = store_of(config)
    parent = store.head()
    with esdm_hpc.open(committed, config=config) as c:
        namespace = c.catalogue.last.namespace

    def manifest(created: str) -> Manifest:
        return Manifest(2, parent.checksum, created, {}, namespace)

    won = store.publish(manifest("first"), parent=parent)
    with pytest.raises(PublishConflictError, match="another writer published first"):
        store.publish(manifest("second"), parent=parent)
    assert store.head() == won
    with pytest.raises(PublishConflictError):
        store.publish(Manifest(0, None, "again", {}, namespace))  # no HEAD expected


def test_the_lease_is_renewed_while_its_writer_lives(
    config: dict, committed: str, short_leases: None
) -> None:
    with esdm_hpc.open(committed, "a", config=config):
        first = leases.current(store_of(config)).expires
        time.sleep(LEASE_SECONDS)
        assert leases.current(store_of(config)).expires > first


def test_unlock_takes_an_unreaped_writer_for_gone(
    config: dict, config_path: str, committed: str
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while _state(child.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)  # exited, not reaped: a zombie
    assert _state(child.pid) == "Z"
    store = store_of(config)
    zombie = leases.Lease("someone", os.uname().nodename, child.pid, None, "t", time.time() + 99)
    store.meta.write_atomic(leases.lease_name(store), zombie.encode())
    try:
        assert cli.main(["--config", config_path, "unlock", committed]) == 0
        assert leases.current(store) is None
    finally:
        child.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0]


def test_unlock_removes_a_damaged_lease(
    config: dict, config_path: str, committed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_of(config)
    store.meta.write_atomic(leases.lease_name(store), b"{not json")
    assert cli.main(["--config", config_path, "unlock", committed]) == 0
    assert "removed a damaged lease" in capsys.readouterr().out
    assert not store.meta.exists(leases.lease_name(store))


def test_gc_deletes_nothing_through_a_linked_container_directory(
    tmp_path: Path, config: dict, config_path: str, committed: str
) -> None:
    containers = Path(config["backends"][0]["target"]) / "containers"
    outside = tmp_path / "outside"
    (containers / "c").rename(outside)
    (containers / "c").symlink_to(outside)
    stray = outside / "data" / "stray.log"
    stray.write_bytes(b"not referenced")
    before = sorted(p for p in outside.rglob("*"))
    cli.main(["--config", config_path, "gc", "--quiet", committed])
    assert sorted(p for p in outside.rglob("*")) == before
    assert stray.exists()


def test_stored_files_are_not_world_writable_under_a_permissive_umask(
    tmp_path: Path, config: dict
) -> None:
    old = os.umask(0)
    try:
        with esdm_hpc.open("esdm://modes", "w", config=config) as c:
            c.create_dataset("x", shape=(4,), dtype="i4")[:] = 1
    finally:
        os.umask(old)
    root = Path(config["backends"][0]["target"])
    for path in [root, *root.rglob("*")]:
        assert path.stat().st_mode & 0o002 == 0, path


def test_an_open_that_fails_after_taking_the_lease_gives_it_back(
    config: dict, committed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*args: object) -> None:
        raise CorruptMetadataError("esdm://c: damaged (as a test makes it)")

    with monkeypatch.context() as patch:
        patch.setattr(container_module, "Catalogue", unreadable)
        with pytest.raises(CorruptMetadataError, match="as a test makes it"):
            esdm_hpc.open(committed, "a", config=config)
    assert leases.current(store_of(config)) is None
    with esdm_hpc.open(committed, "a", config=config) as again:
        assert again.writable
