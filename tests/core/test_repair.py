"""Replicas (docs/architecture.md §4.3, §7.1): with ``replicas = 2`` every fragment is on
two backends; a read finds a corrupted or deleted replica and reads the other;
`esdm verify --repair` copies it anew from the good one, and reports what has no
good replica left by dataset and region."""

import json
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.epochs.history import History

URI = "esdm://twice"
STEPS = 4


def replicated(root: Path) -> dict:
    return {
        "backends": [
            {"id": "a", "type": "posix", "target": str(root / "a")},
            {"id": "b", "type": "posix", "target": str(root / "b")},
        ],
        "replicas": 2,
    }


def step_values(step: int) -> np.ndarray:
    return np.random.default_rng(step).random((8, 256))


@pytest.fixture
def site(tmp_path: Path) -> tuple[dict, str]:
    config = replicated(tmp_path)
    with esdm_hpc.open(URI, "w", config=config) as container:
        field = container.create_dataset("t", shape=(STEPS, 8, 256), dtype="f8")
        for step in range(STEPS):
            field[step] = step_values(step)
            container.commit()
    path = tmp_path / "site.json"
    path.write_text(json.dumps(config))
    return config, str(path)


def logs(root: Path, backend: str) -> list[Path]:
    return sorted((root / backend).rglob("*.log"))


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def assert_reads_back(config: dict) -> None:
    with esdm_hpc.open(URI, config=config) as container:
        np.testing.assert_array_equal(
            container["t"][...], np.stack([step_values(s) for s in range(STEPS)])
        )


def test_every_fragment_has_a_replica_on_each_backend(site: tuple[dict, str]) -> None:
    config, _ = site
    with esdm_hpc.open(URI, config=config) as container:
        fragments = History.load(container.store).fragments()
    assert len(fragments) == STEPS
    assert all(sorted(r.backend for r in f.replicas) == ["a", "b"] for f in fragments)


def test_a_damaged_replica_is_read_around_and_repaired(
    site: tuple[dict, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, path = site
    flip(logs(tmp_path, "a")[1])
    logs(tmp_path, "b")[2].unlink()
    assert_reads_back(config)  # each read finds the other replica
    assert cli.main(["--config", path, "verify", URI, "--quiet"]) == 1
    assert "2 damaged" in capsys.readouterr().out

    assert cli.main(["--config", path, "verify", URI, "--quiet", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "repaired 2 fragments in epoch 5" in out and "0 have no good replica" in out
    assert cli.main(["--config", path, "verify", URI, "--quiet"]) == 0
    assert "0 damaged" in capsys.readouterr().out
    for epoch in range(1, STEPS + 2):  # time travel reads the new replicas too
        with esdm_hpc.open(URI, config=config, epoch=epoch) as container:
            values = container["t"][: min(epoch, STEPS)]
        np.testing.assert_array_equal(values[-1], step_values(min(epoch, STEPS) - 1))


def test_a_fragment_with_no_good_replica_is_reported_by_dataset_and_region(
    site: tuple[dict, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = site
    flip(logs(tmp_path, "a")[0])
    flip(logs(tmp_path, "b")[0])
    flip(logs(tmp_path, "b")[3])
    assert cli.main(["--config", path, "verify", URI, "--quiet", "--repair"]) == 1
    out = capsys.readouterr().out
    assert "not repaired: /t[0:1, 0:8, 0:256]: fragment e1-" in out
    assert "has no replica that verifies (a:" in out
    assert "repaired 1 fragments in epoch 5; 1 have no good replica" in out
