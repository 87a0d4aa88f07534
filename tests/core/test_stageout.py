"""The background drain of a running writer (esdm_hpc/epochs/stageout.py): what a
writer commits to the burst buffer is copied to the disk while it goes on,
published with its next commit, and the burst-buffer logs go once no record
names them; a copy that shares a drained fragment's bytes keeps them; a writer
killed at any point leaves every committed epoch readable and `esdm drain`
finishes the job."""

import multiprocessing
import random
import shutil
import time
from pathlib import Path

import numpy as np

import esdm_hpc
from esdm_hpc.container import Container
from esdm_hpc.drain import drain
from esdm_hpc.epochs.history import History
from esdm_hpc.verify import verify

URI = "esdm://bg"
ROWS, COLUMNS = 4, 128  # one fragment of 4 KiB per step


def background(root: Path) -> dict:
    return {
        "backends": [
            {"id": "disk", "type": "posix", "target": str(root / "disk")},
            {"id": "bb", "type": "burstbuffer", "target": str(root / "bb"), "drain_to": "disk"},
        ]
    }


def values(step: int) -> np.ndarray:
    return np.random.default_rng(step).random((ROWS, COLUMNS))


def at_risk(container: Container) -> int:
    return sum(f.is_local for f in History.load(container.store).fragments())


def commit_copies(container: Container, timeout: float = 20.0) -> None:
    """Commit until the background drain left nothing at risk."""
    deadline = time.monotonic() + timeout
    while at_risk(container):
        assert time.monotonic() < deadline, "the background drain did not finish"
        if container.pending:  # copies made: publish them
            container.commit()
        else:
            time.sleep(0.01)


def logs(root: Path) -> list[Path]:
    return sorted((root / "bb").rglob("*.log"))


def test_a_running_writer_drains_in_the_background(tmp_path: Path) -> None:
    config = background(tmp_path)
    with esdm_hpc.open(URI, "w", config=config) as container:
        field = container.create_dataset("t", shape=(6, ROWS, COLUMNS), dtype="f8")
        for step in range(6):
            field[step] = values(step)
            container.commit()
        commit_copies(container)
        assert logs(tmp_path) == []  # every burst-buffer copy went with its last record
        np.testing.assert_array_equal(field[...], np.stack([values(s) for s in range(6)]))
    shutil.rmtree(tmp_path / "bb")
    for epoch in range(1, 7):
        with esdm_hpc.open(URI, config=config, epoch=epoch) as old:
            np.testing.assert_array_equal(old["t"][epoch - 1], values(epoch - 1))
    with esdm_hpc.open(URI, config=config) as container:
        assert not verify(container.store).damage


def test_at_end_leaves_the_burst_buffer_to_esdm_drain(tmp_path: Path) -> None:
    config = background(tmp_path)
    config["backends"][1]["options"] = {"drain": "at-end"}
    with esdm_hpc.open(URI, "w", config=config) as container:
        field = container.create_dataset("t", shape=(3, ROWS, COLUMNS), dtype="f8")
        for step in range(3):
            field[step] = values(step)
            container.commit()
        time.sleep(0.2)
        assert not container.pending and at_risk(container) == 3
    assert drain(URI, config=config).fragments == 3


def test_a_copy_of_a_drained_dataset_keeps_its_bytes(tmp_path: Path) -> None:
    """H5Ocopy shares the original's bytes: its burst-buffer log must stay while the
    copy names it, even after the original's own record moved to the disk."""
    config = background(tmp_path)
    with esdm_hpc.open(URI, "w", config=config) as container:
        container.create_dataset("a", data=values(0))
        container.commit()
        container.copy("a", "b")  # before the copy of a's bytes is published
        container.commit()
        commit_copies(container)
        container.copy("b", "c")
        container.commit()
        commit_copies(container)
    shutil.rmtree(tmp_path / "bb")
    with esdm_hpc.open(URI, config=config) as container:
        for name in ("a", "b", "c"):
            np.testing.assert_array_equal(container[name][...], values(0), err_msg=name)


def _write_forever(config: dict) -> None:
    with esdm_hpc.open(URI, "a", config=config) as container:
        field = container["t"]
        for step in range(1, 1000):
            field[step % 8] = values(step)
            container.commit()


def test_a_writer_killed_while_it_drains_loses_no_committed_epoch(tmp_path: Path) -> None:
    template = tmp_path / "template"
    with esdm_hpc.open(URI, "w", config=background(template)) as container:
        container.create_dataset("t", shape=(8, ROWS, COLUMNS), dtype="f8")[0] = values(0)
    rng = random.Random(1204)
    context = multiprocessing.get_context("fork")
    for trial in range(20):
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(template, root)
        config = background(root)
        child = context.Process(target=_write_forever, args=(config,))
        child.start()
        time.sleep(rng.uniform(0.05, 0.4))
        child.kill()
        child.join()
        with esdm_hpc.open(URI, config=config) as container:
            assert not verify(container.store).damage, trial
            newest = container.epoch
        from esdm_hpc import cli

        assert cli.main(["--config", _saved(root, config), "unlock", URI]) == 0
        report = drain(URI, config=config)
        assert report.at_risk == 0 and not report.refused, (trial, report)
        shutil.rmtree(root / "bb")
        with esdm_hpc.open(URI, config=config) as container:
            data = container["t"][...]
            assert container.epoch >= newest
        assert np.isfinite(data).all(), trial
        shutil.rmtree(root)


def _saved(root: Path, config: dict) -> str:
    import json

    path = root / "site.json"
    path.write_text(json.dumps(config))
    return str(path)
