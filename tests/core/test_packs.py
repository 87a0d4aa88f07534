"""Packs: the records of many epochs in one object, so an open reads few files."""

import json
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli, commit
from esdm_hpc.errors import CorruptMetadataError
from esdm_hpc.kernels.checksum import checksum
from esdm_hpc.manifest import Manifest
from esdm_hpc.store import ContainerStore
from tests.core.conftest import site

SHAPE = (12, 10)
EPOCHS = 20


@pytest.fixture(autouse=True)
def pack_every_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit, "PACK_EPOCHS", 3)


def write_epochs(config: dict, first: int, last: int, states: list[np.ndarray]) -> None:
    """Epochs first..last, each a random box of values; states[e]: the content after e."""
    mode = "w" if first == 1 else "a"
    with esdm_hpc.open("esdm://p", mode, config=config) as c:
        x = c["x"] if mode == "a" else c.create_dataset("x", shape=SHAPE, dtype="i4", fillvalue=-1)
        for epoch in range(first, last + 1):
            rng = np.random.default_rng(epoch)
            r, k = int(rng.integers(0, 10)), int(rng.integers(0, 8))
            values = np.full((2, 2), epoch, dtype="i4")
            x[r : r + 2, k : k + 2] = values
            state = states[-1].copy()
            state[r : r + 2, k : k + 2] = values
            states.append(state)
            assert c.commit() == epoch


def packs_on_disk(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "disk/containers/p/packs").glob("*.json"))


def test_every_epoch_reads_back_across_packs(tmp_path: Path, monkeypatch) -> None:
    config = site(tmp_path)
    states = [np.full(SHAPE, -1, dtype="i4")]
    write_epochs(config, 1, 8, states)
    write_epochs(config, 9, EPOCHS, states)  # a second writer goes on packing
    # a pack once 3 epochs are unpacked: at the commits of epochs 4, 7, 10, ...
    expected = [(1, 3), (4, 6), (7, 9), (10, 12), (13, 15), (16, 18)]
    assert packs_on_disk(tmp_path) == [f"e{a:09d}-e{b:09d}.json" for a, b in expected]
    read = []
    real = ContainerStore._metadata

    def spy(self: ContainerStore, name: str, missing: str) -> bytes:
        if name.startswith("manifests/"):
            read.append(int(name.removeprefix("manifests/e").removesuffix(".json")))
        return real(self, name, missing)

    monkeypatch.setattr(ContainerStore, "_metadata", spy)
    with esdm_hpc.open("esdm://p", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], states[EPOCHS])
    assert read == [20, 19]  # the manifests after the last pack, and no others
    for epoch in range(EPOCHS + 1):
        with esdm_hpc.open("esdm://p", config=config, epoch=epoch) as c:
            if epoch:
                np.testing.assert_array_equal(c["x"][...], states[epoch])


def test_a_reader_refreshes_across_packs(tmp_path: Path) -> None:
    config = site(tmp_path)
    states = [np.full(SHAPE, -1, dtype="i4")]
    write_epochs(config, 1, 2, states)
    with esdm_hpc.open("esdm://p", config=config) as reader:
        write_epochs(config, 3, 10, states)
        assert reader.refresh() == 10
        np.testing.assert_array_equal(reader["x"][...], states[10])


def test_damaged_packs_are_named(tmp_path: Path) -> None:
    config = site(tmp_path)
    write_epochs(config, 1, 5, [np.full(SHAPE, -1, dtype="i4")])
    pack = tmp_path / "disk/containers/p/packs/e000000001-e000000003.json"
    pack.write_bytes(pack.read_bytes()[:-10])
    with pytest.raises(
        CorruptMetadataError, match=r"e000000001-e000000003\.json: checksum mismatch"
    ):
        esdm_hpc.open("esdm://p", config=config)
    pack.unlink()
    with pytest.raises(CorruptMetadataError, match=r"e000000001-e000000003\.json: missing"):
        esdm_hpc.open("esdm://p", config=config)


def test_info_gc_and_verify_see_packed_epochs(tmp_path: Path, capsys) -> None:
    config = site(tmp_path)
    states = [np.full(SHAPE, -1, dtype="i4")]
    write_epochs(config, 1, 7, states)
    orphan = tmp_path / "disk/containers/p/packs/e000000007-e000000009.json"
    orphan.write_text("{}")  # as a writer killed after writing its pack leaves it
    path = tmp_path / "site.json"
    path.write_text(json.dumps(config))
    assert cli.main(["--config", str(path), "info", "esdm://p"]) == 0
    assert "epochs: 8  fragments: 7" in capsys.readouterr().out
    assert cli.main(["--config", str(path), "info", "--epoch", "5", "esdm://p"]) == 0
    assert "epochs: 6  fragments: 5" in capsys.readouterr().out
    assert cli.main(["--config", str(path), "gc", "--quiet", "esdm://p"]) == 0
    assert not orphan.exists()
    assert packs_on_disk(tmp_path) == ["e000000001-e000000003.json", "e000000004-e000000006.json"]
    assert cli.main(["--config", str(path), "verify", "--quiet", "esdm://p"]) == 0
    with esdm_hpc.open("esdm://p", config=config, epoch=2) as c:
        np.testing.assert_array_equal(c["x"][...], states[2])


def test_manifests_without_packs_still_read() -> None:
    plain = Manifest(3, 1, "now", {}, {"groups": {}}, [{"dataset": "/x"}])
    data = plain.encode()
    assert b"packs" not in data
    assert Manifest.decode(data, checksum(data), "m").packs == []
