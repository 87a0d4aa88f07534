"""The burst buffer in a container (docs/architecture.md §5): writes land on it
while it has room and spill to the disk when it is full; `esdm_hpc.drain`
gives every committed fragment a verified replica on the disk, refuses bytes
that do not verify, survives SIGKILL anywhere, and waits for a running writer;
a reader on another node is told which node holds what it needs."""

import json
import multiprocessing
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli, placement
from esdm_hpc.backends import BackendError
from esdm_hpc.drain import drain
from esdm_hpc.epochs.history import History
from esdm_hpc.errors import EpochWriteError, LeaseHeldError, ReplicaUnreachableError
from esdm_hpc.placement import ROOM_RESERVE
from esdm_hpc.verify import verify
from tests.core.conftest import fill, mounted_tmpfs

URI = "esdm://run"
STEPS, ROWS, COLUMNS = 6, 4, 128  # one fragment of 4 KiB per step


def tiered(root: Path, burst_buffer: Path | None = None) -> dict:
    bb = burst_buffer or root / "bb"
    return {
        "backends": [
            {"id": "disk", "type": "posix", "target": str(root / "disk")},
            # drained by `esdm_hpc.drain` only (the background drain: test_stageout.py)
            {"id": "bb", "type": "burstbuffer", "target": str(bb), "drain_to": "disk",
             "options": {"drain": "at-end"}},
        ]
    }  # fmt: skip


def step_values(step: int) -> np.ndarray:
    return np.random.default_rng(step).random((ROWS, COLUMNS))


def write_steps(config: dict, steps: int = STEPS) -> None:
    with esdm_hpc.open(URI, "w", config=config) as container:
        field = container.create_dataset("t", shape=(steps, ROWS, COLUMNS), dtype="f8")
        for step in range(steps):
            field[step] = step_values(step)
            container.commit()


def assert_every_epoch_reads_back(config: dict, steps: int = STEPS) -> None:
    """Epoch k (k >= 1) holds steps 0..k-1; the drain's epochs hold them all."""
    with esdm_hpc.open(URI, config=config) as newest:
        last = newest.epoch
    for epoch in range(1, last + 1):
        with esdm_hpc.open(URI, config=config, epoch=epoch) as container:
            values = container["t"][...]
        for step in range(steps):
            expected = step_values(step) if step < epoch else np.zeros((ROWS, COLUMNS))
            np.testing.assert_array_equal(values[step], expected, err_msg=f"epoch {epoch}")


def replicas_by_backend(config: dict) -> dict[str, int]:
    with esdm_hpc.open(URI, config=config) as container:
        fragments = History.load(container.store).fragments()
    found: dict[str, int] = {}
    for fragment in fragments:
        for replica in fragment.replicas:
            found[replica.backend] = found.get(replica.backend, 0) + 1
    return found


def bb_logs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "bb").rglob("*.log"))


def test_writes_land_on_the_burst_buffer_and_drain_to_the_disk(tmp_path: Path, capsys) -> None:
    config = tiered(tmp_path)
    write_steps(config)
    assert replicas_by_backend(config) == {"bb": STEPS}
    assert cli.main(["--config", _saved(tmp_path, config), "info", URI]) == 0
    info = capsys.readouterr().out
    assert "at risk (only on node-local storage" in info and "epoch 6: 4.0 KiB on bb@" in info

    before = esdm_hpc.open(URI, config=config)  # its records name the burst-buffer copies
    report = drain(URI, config=config, batch_bytes=8192)
    assert (report.fragments, report.bytes, report.refused) == (STEPS, STEPS * 4096, [])
    assert len(report.epochs) == 3 and report.at_risk == 0 and report.logs_removed == STEPS
    assert replicas_by_backend(config) == {"disk": STEPS}
    assert bb_logs(tmp_path) == []
    shutil.rmtree(tmp_path / "bb")  # the job's end: the node's tmpfs is gone
    assert_every_epoch_reads_back(config)
    with before:  # finds the copies gone, and the drain's records
        np.testing.assert_array_equal(before["t"][STEPS - 1], step_values(STEPS - 1))
        assert before.epoch == STEPS
    with esdm_hpc.open(URI, config=config) as container:
        assert not verify(container.store).damage
    assert drain(URI, config=config).fragments == 0  # nothing left: no epoch either


def test_a_flipped_byte_on_the_burst_buffer_is_refused_and_named(tmp_path: Path, capsys) -> None:
    config = tiered(tmp_path)
    write_steps(config)
    damaged = bb_logs(tmp_path)[2]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))

    assert cli.main(["--config", _saved(tmp_path, config), "drain", URI, "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "fragment e3-" in err and "does not match its checksums in block(s) [0]" in err
    assert "not drained" in err and "burst buffer 'bb' of node" in err
    assert "drained 5 fragments" in out and "1 fragments only on node-local storage" in out
    assert bb_logs(tmp_path) == [damaged]  # the only copy stays, for a repair by hand
    assert replicas_by_backend(config) == {"disk": 5, "bb": 1}


@pytest.fixture
def small_burst_buffer(tmp_path: Path) -> Iterator[Path]:
    """A burst buffer on a real 8 MiB tmpfs."""
    with mounted_tmpfs(tmp_path / "bbfs", "8m") as mount:
        yield mount


def test_a_full_burst_buffer_spills_to_the_disk_and_nothing_is_lost(
    tmp_path: Path, small_burst_buffer: Path, capsys
) -> None:
    config = tiered(tmp_path, burst_buffer=small_burst_buffer)
    ballast = fill(small_burst_buffer)
    with ballast.open("r+b") as f:  # room for three steps past the reserve
        f.truncate(ballast.stat().st_size - ROOM_RESERVE - 3 * 4096 - 2048)
    write_steps(config)
    assert replicas_by_backend(config) == {"bb": 3, "disk": STEPS - 3}
    assert cli.main(["--config", _saved(tmp_path, config), "info", URI]) == 0
    info = capsys.readouterr().out
    assert "  bb: 12.0 KiB\n  disk: 12.0 KiB\n" in info
    assert "epoch 3: 4.0 KiB on bb@" in info and "epoch 4:" not in info
    assert_every_epoch_reads_back(config)
    assert drain(URI, config=config).fragments == 3
    assert_every_epoch_reads_back(config)


def test_writes_spill_when_the_burst_buffer_fills_under_them(
    tmp_path: Path, small_burst_buffer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free space the placement saw is gone at the append (another job filled the
    tmpfs): the append fails with ENOSPC and the write goes to the disk."""
    config = tiered(tmp_path, burst_buffer=small_burst_buffer)
    with esdm_hpc.open(URI, "w", config=config) as container:
        field = container.create_dataset("t", shape=(STEPS, ROWS, COLUMNS), dtype="f8")
        field[0] = step_values(0)
        container.commit()
        fill(small_burst_buffer)
        monkeypatch.setattr(placement, "ROOM_RESERVE", -(1 << 40))  # it sees room
        for step in range(1, STEPS):
            field[step] = step_values(step)
            container.commit()
    assert replicas_by_backend(config) == {"bb": 1, "disk": STEPS - 1}
    assert_every_epoch_reads_back(config)


def test_a_burst_buffer_directory_that_disappears_is_a_clear_error(tmp_path: Path) -> None:
    config = tiered(tmp_path)
    with esdm_hpc.open(URI, "w", config=config) as container:
        field = container.create_dataset("t", shape=(STEPS, ROWS, COLUMNS), dtype="f8")
        field[0] = step_values(0)
        container.commit()
        shutil.rmtree(tmp_path / "bb")
        big = np.ones((1, ROWS, 64 << 10))  # not held back for the commit, as small ones are
        with pytest.raises(BackendError, match=r"burst-buffer directory .* has disappeared"):
            container.create_dataset("big", data=big)[...] = big
        field[1] = step_values(1)  # stored at the commit, which fails
        with pytest.raises(EpochWriteError, match=r"burst-buffer directory .* has disappeared"):
            container.commit()
    with esdm_hpc.open(URI, config=config) as container:
        assert container.epoch == 1  # the create and step 0; the failed epoch is gone


def test_a_reader_on_another_node_is_told_where_the_data_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {**tiered(tmp_path), "drain_wait": "0.3 s"}
    monkeypatch.setenv("ESDM_NODE", "writer-node")
    write_steps(config)
    monkeypatch.setenv("ESDM_NODE", "analysis-node")
    with (
        esdm_hpc.open(URI, config=config) as container,
        pytest.raises(ReplicaUnreachableError) as error,
    ):
        container["t"][0]
    message = str(error.value)
    assert "/t: fragment e1-" in message and "node writer-node, not drained yet" in message
    assert message.endswith("(waited 0.3 s for its drain)")
    assert drain(URI, config=config).fragments == 0  # not this node's to drain
    monkeypatch.setenv("ESDM_NODE", "writer-node")
    assert drain(URI, config=config).fragments == STEPS
    monkeypatch.setenv("ESDM_NODE", "analysis-node")
    assert_every_epoch_reads_back(config)


def test_drain_waits_for_the_running_writer(tmp_path: Path) -> None:
    config = tiered(tmp_path)
    write_steps(config, steps=2)
    writer = esdm_hpc.open(URI, "a", config=config)
    with pytest.raises(LeaseHeldError):
        drain(URI, config=config)
    closing = threading.Timer(1.0, writer.close)
    closing.start()
    started = time.monotonic()
    report = drain(URI, config=config, wait=30)
    closing.join()
    assert report.fragments == 2 and time.monotonic() - started >= 0.9


# --- SIGKILL during a drain -----------------------------------------------------------------

TRIALS = 100


def _drain_in_child(config: dict) -> None:
    drain(URI, config=config, batch_bytes=4096)


def test_a_drain_killed_anywhere_resumes_and_never_publishes_bad_bytes(tmp_path: Path) -> None:
    template = tmp_path / "template"
    config_template = tiered(template)
    write_steps(config_template)
    context = multiprocessing.get_context("fork")
    rng = random.Random(20261204)
    timing = tmp_path / "timing"
    shutil.copytree(template, timing)
    started = time.monotonic()
    drain(URI, config=tiered(timing), batch_bytes=4096)
    duration = time.monotonic() - started
    outcomes = {"before": 0, "during": 0, "after": 0}
    for trial in range(TRIALS):
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(template, root)
        config = tiered(root)
        child = context.Process(target=_drain_in_child, args=(config,))
        child.start()
        time.sleep(rng.uniform(0, duration * 1.2))
        child.kill()
        child.join()
        with esdm_hpc.open(URI, config=config) as container:
            drained = container.epoch - STEPS
            damage = verify(container.store).damage
        assert not damage, f"trial {trial}: {damage}"
        outcomes["before" if drained <= 0 else "after" if child.exitcode == 0 else "during"] += 1
        report = _resume(config)
        assert report.at_risk == 0 and not report.refused, (trial, report)
        assert replicas_by_backend(config) == {"disk": STEPS}, trial
        assert bb_logs(root) == [], trial
        if trial % 10 == 0:
            assert_every_epoch_reads_back(config)
        shutil.rmtree(root)
    assert outcomes["during"] >= 10, outcomes  # most kills land inside the drain


def _resume(config: dict):
    """The next drain, once the killed one's lease has been broken (`esdm unlock`
    finds its process gone)."""
    assert cli.main(["--config", _config_file(config), "unlock", URI]) == 0
    return drain(URI, config=config, batch_bytes=4096)


def _config_file(config: dict) -> str:
    root = Path(config["backends"][0]["target"]).parent
    return _saved(root, config)


def _saved(root: Path, config: dict) -> str:
    path = root / "site.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_a_copy_made_after_a_drain_has_the_data(tmp_path: Path) -> None:
    """A copy shares the bytes of the fragments it copies; those records came from the
    drain (new replicas of an earlier epoch's fragments), yet the copy's are new
    fragments of its own epoch (they were dropped as replica records: zeros)."""
    config = tiered(tmp_path)
    write_steps(config)
    drain(URI, config=config)
    with esdm_hpc.open(URI, "a", config=config) as container:
        container.copy("t", "copy")
    shutil.rmtree(tmp_path / "bb")
    with esdm_hpc.open(URI, config=config) as container:
        np.testing.assert_array_equal(container["copy"][...], container["t"][...])
        assert container["copy"][STEPS - 1].tolist() == step_values(STEPS - 1).tolist()


def test_a_reader_on_another_node_waits_for_the_drain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiered(tmp_path)  # drain_wait: 30 s by default
    monkeypatch.setenv("ESDM_NODE", "writer-node")
    write_steps(config)
    monkeypatch.setenv("ESDM_NODE", "analysis-node")
    with esdm_hpc.open(URI, config=config) as reader:
        monkeypatch.setenv("ESDM_NODE", "writer-node")  # the drain's backends: that node's
        stage_out = threading.Timer(0.5, drain, args=(URI,), kwargs={"config": config})
        stage_out.start()
        started = time.monotonic()
        np.testing.assert_array_equal(reader["t"][STEPS - 1], step_values(STEPS - 1))
        assert time.monotonic() - started >= 0.4
        assert reader.epoch == STEPS  # the epoch it shows is still the one it opened
        stage_out.join()
