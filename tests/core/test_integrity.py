"""Corruption and damaged metadata: clear errors, nothing silently wrong, nothing lost."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.epochs import commit
from esdm_hpc.epochs.lease import Lease, lease_name
from esdm_hpc.epochs.manifest import Manifest, Pack
from esdm_hpc.errors import CorruptDataError, CorruptMetadataError, LeaseHeldError
from esdm_hpc.kernels.checksum import checksum
from tests.core.conftest import site

FIELD = np.arange(64 * 32, dtype=np.float64).reshape(64, 32)  # 256 B per row


def write_field(root: Path) -> dict:
    config = site(root, block_size=1024)  # 4 rows per checksum block
    with esdm_hpc.open("esdm://f", "w", config=config) as c:
        c.create_dataset("x", data=FIELD)
    return config


def data_log(root: Path) -> Path:
    (log,) = (root / "disk").rglob("*.log")
    return log


def config_file(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "esdm.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_a_flipped_byte_fails_the_read_of_its_region_only(tmp_path: Path, capsys) -> None:
    config = write_field(tmp_path)
    log = data_log(tmp_path)
    with log.open("r+b") as f:  # row 21 lies in block 5 (rows 20-23)
        f.seek(21 * 256 + 8)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x40]))
    with esdm_hpc.open("esdm://f", config=config) as c:
        with pytest.raises(CorruptDataError, match=r"/x\[20:24, 0:32\]: corrupt data"):
            c["x"][21, 3]
        with pytest.raises(CorruptDataError):
            c["x"][...]
        np.testing.assert_array_equal(c["x"][:20], FIELD[:20])
        np.testing.assert_array_equal(c["x"][24:], FIELD[24:])
    assert (
        cli.main(["--config", config_file(tmp_path, config), "verify", "--quiet", "esdm://f"]) == 1
    )
    out = capsys.readouterr().out
    assert "/x[20:24, 0:32]: checksum mismatch" in out
    assert "1 damaged" in out


def test_verify_reports_every_corrupt_block(tmp_path: Path, capsys) -> None:
    config = write_field(tmp_path)
    log = data_log(tmp_path)
    data = bytearray(log.read_bytes())
    for row in (1, 30, 63):
        data[row * 256] ^= 0xFF
    log.write_bytes(bytes(data))
    assert (
        cli.main(["--config", config_file(tmp_path, config), "verify", "--quiet", "esdm://f"]) == 1
    )
    out = capsys.readouterr().out
    assert "block(s) [0, 7, 15]" in out


def test_verify_reports_a_damaged_older_manifest(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "PACK_EPOCHS", 3)
    config = write_field(tmp_path)
    with esdm_hpc.open("esdm://f", "a", config=config) as c:
        for epoch in range(2, 8):  # packs of epochs 1-3 and 4-6
            c["x"][0] = epoch
            assert c.commit() == epoch
    # HEAD's reader reads none of manifests 1-6: verify used to pass them by
    flip(tmp_path / "disk/containers/f/manifests/e000000002.json", 40)
    assert (
        cli.main(["--config", config_file(tmp_path, config), "verify", "--quiet", "esdm://f"]) == 1
    )
    damage, summary = capsys.readouterr().out.splitlines()
    assert damage == (
        "manifests/e000000002.json: checksum mismatch (truncated or modified after commit); "
        "epochs 2-3 cannot be opened (disk:containers/f/manifests/e000000002.json)"
    )  # epoch 3's reader reads manifests 0-3: it has no pack yet
    assert summary.startswith("esdm://f: 8 manifests, 2 packs, 7 fragments, 7 replicas, ")
    assert summary.endswith(", 1 damaged")


def test_truncated_head_gives_a_clear_error(tmp_path: Path) -> None:
    config = write_field(tmp_path)
    head = tmp_path / "disk/containers/f/HEAD"
    original = head.read_bytes()
    head.write_bytes(original[:10])
    with pytest.raises(CorruptMetadataError, match="esdm://f HEAD: unreadable"):
        esdm_hpc.open("esdm://f", config=config)
    head.write_bytes(original)  # the committed data was never touched
    with esdm_hpc.open("esdm://f", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], FIELD)


def test_truncated_manifest_gives_a_clear_error(tmp_path: Path) -> None:
    config = write_field(tmp_path)
    manifest = tmp_path / "disk/containers/f/manifests/e000000001.json"
    manifest.write_bytes(manifest.read_bytes()[:-40])
    with pytest.raises(CorruptMetadataError, match=r"e000000001\.json: checksum mismatch"):
        esdm_hpc.open("esdm://f", config=config)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(["format", "epoch", "parent_checksum", "created", "writer", "namespace",
                         "packs", "fragments"]),
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=3),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=6,
    ) | st.just(...),
)  # fmt: skip
def test_a_manifest_no_writer_wrote_is_corrupt_metadata(key: str, value: object) -> None:
    packs = [Pack("packs/e000000001-e000000002.json", 1, 2, 9)]
    record = json.loads(Manifest(3, 7, "now", {}, {"groups": {}}, packs=packs).encode())
    if value is ...:
        del record[key]
    else:
        record[key] = value
    data = json.dumps(record).encode()
    try:  # as esdm verify reads a manifest nothing verifies: by its own checksum
        manifest = Manifest.decode(data, checksum(data), "esdm://f manifests/e000000003.json")
    except CorruptMetadataError as error:
        assert str(error).startswith("esdm://f manifests/e000000003.json: ")
        return
    assert type(manifest.epoch) is int
    assert (manifest.parent_checksum is None) == (manifest.epoch == 0)


def test_malformed_configuration_is_named(tmp_path: Path) -> None:
    bad = {"backends": [{"id": "disk", "type": "posix", "target": str(tmp_path), "tier": 3}]}
    with pytest.raises(ValueError, match="tier"):
        esdm_hpc.open("esdm://f", "w", config=bad)


def test_a_second_writer_is_refused_with_the_holder_named(config: dict) -> None:
    with esdm_hpc.open("esdm://leased", "w", config=config):
        with pytest.raises(LeaseHeldError, match=rf"open for writing by .*pid {os.getpid()}"):
            esdm_hpc.open("esdm://leased", "a", config=config)
        with esdm_hpc.open("esdm://leased", config=config) as reader:  # readers are welcome
            assert reader.epoch == 0
    with esdm_hpc.open("esdm://leased", "a", config=config):
        pass


def test_an_expired_lease_is_taken_over(config: dict) -> None:
    esdm_hpc.open("esdm://expired", "w", config=config).close()
    store = esdm_hpc.open("esdm://expired", config=config).store
    gone = Lease("someone", "elsewhere", 1, None, "token", expires=time.time() - 1)
    store.meta.write_atomic(lease_name(store), gone.encode())  # its writer died
    with esdm_hpc.open("esdm://expired", "a", config=config) as second:
        assert second.writable


def test_unlock_refuses_a_live_writer_without_force(tmp_path: Path, config: dict) -> None:
    path = config_file(tmp_path, config)
    with esdm_hpc.open("esdm://held", "w", config=config):
        assert cli.main(["--config", path, "unlock", "esdm://held"]) == 3
        assert cli.main(["--config", path, "unlock", "--force", "esdm://held"]) == 0
        with esdm_hpc.open("esdm://held", "a", config=config) as c:
            assert c.writable


def test_reads_verify_only_the_blocks_they_touch(tmp_path: Path) -> None:
    field = np.random.default_rng(3).random((6, 20, 30))  # one fragment, 240 B rows
    config = site(tmp_path, block_size=240)  # one block per row of the last axis
    with esdm_hpc.open("esdm://column", "w", config=config) as c:
        c.create_dataset("x", data=field)
    rng = np.random.default_rng(4)
    with esdm_hpc.open("esdm://column", config=config) as c:
        for _ in range(50):
            lo = [int(rng.integers(0, n)) for n in field.shape]
            hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, field.shape, strict=True)]
            region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            np.testing.assert_array_equal(c["x"][region], field[region])
    log = data_log(tmp_path)
    data = bytearray(log.read_bytes())
    data[(2 * 20 + 7) * 240] ^= 0xFF  # the row x[2, 7, :]
    log.write_bytes(bytes(data))
    with esdm_hpc.open("esdm://column", config=config) as c:
        np.testing.assert_array_equal(c["x"][:, 3:5, 10:12], field[:, 3:5, 10:12])
        with pytest.raises(CorruptDataError, match=r"/x\[2:3, 7:8, 0:30\]"):
            c["x"][:, 7, 10:12]


@pytest.mark.parametrize(
    ("dtype", "shape", "block_size"),
    [
        (np.dtype("f4"), (3, 6, 4096), 4096),  # runs of 4 KiB and more, with gaps
        (np.dtype([("a", "i1"), ("b", "f8"), ("c", "i2")]), (5, 12, 40), 100),  # 11 B items
        (np.dtype("u2"), (7, 9, 33), 6),  # many runs, blocks not a multiple of rows
    ],
)
def test_sparse_reads_return_exactly_the_region(
    tmp_path: Path, dtype: np.dtype, shape: tuple[int, ...], block_size: int
) -> None:
    rng = np.random.default_rng(5)
    field = np.frombuffer(rng.bytes(int(np.prod(shape)) * dtype.itemsize), dtype).reshape(shape)
    config = site(tmp_path, block_size=block_size)
    with esdm_hpc.open("esdm://sparse", "w", config=config) as c:
        c.create_dataset("x", data=field)
    with esdm_hpc.open("esdm://sparse", config=config) as c:
        for _ in range(40):
            lo = [int(rng.integers(0, n)) for n in shape]
            hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, shape, strict=True)]
            region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            assert c["x"][region].tobytes() == field[region].tobytes(), region
        column = (slice(None), slice(2, 4), slice(0, 3))
        assert c["x"][column].tobytes() == field[column].tobytes()


def two_replicas(root: Path) -> dict:
    backends = [{"id": name, "type": "posix", "target": str(root / name)} for name in ("a", "b")]
    config = {"backends": backends, "replicas": 2, "block_size": 1024}
    with esdm_hpc.open("esdm://f", "w", config=config) as c:
        c.create_dataset("x", data=FIELD)
    return config


def flip(log: Path, at: int) -> None:
    with log.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_a_damaged_replica_is_read_from_the_other(tmp_path: Path, damage: str) -> None:
    config = two_replicas(tmp_path)
    for backend in ("a", "b"):  # each in turn: whichever the reader tries first
        (log,) = (tmp_path / backend).rglob("*.log")
        saved = log.read_bytes()
        if damage == "flip":
            flip(log, 21 * 256 + 8)
        else:
            log.unlink()
        with esdm_hpc.open("esdm://f", config=config) as c:
            np.testing.assert_array_equal(c["x"][...], FIELD)  # whole fragment
            np.testing.assert_array_equal(c["x"][20:28], FIELD[20:28])  # whole blocks
            np.testing.assert_array_equal(c["x"][18:30, 3:9], FIELD[18:30, 3:9])  # a part
            np.testing.assert_array_equal(c["x"][:, 5], FIELD[:, 5])
        log.write_bytes(saved)


def test_both_replicas_damaged_fails_with_the_region(tmp_path: Path) -> None:
    config = two_replicas(tmp_path)
    for backend in ("a", "b"):
        (log,) = (tmp_path / backend).rglob("*.log")
        flip(log, 21 * 256 + 8)
    with esdm_hpc.open("esdm://f", config=config) as c:
        with pytest.raises(CorruptDataError, match=r"/x\[20:24, 0:32\]: corrupt data"):
            c["x"][18:30, 3:9]
        with pytest.raises(CorruptDataError, match=r"/x\[20:24, 0:32\]: corrupt data"):
            c["x"][...]
        with pytest.raises(CorruptDataError, match=r"/x\[20:24, 0:32\]: corrupt data"):
            c["x"][20:28]
        np.testing.assert_array_equal(c["x"][30:40, 3:9], FIELD[30:40, 3:9])
        np.testing.assert_array_equal(c["x"][24:32], FIELD[24:32])
