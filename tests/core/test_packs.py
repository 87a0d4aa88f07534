"""Packs: the records of many epochs in one object, so an open reads few files."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.backends import open_backend
from esdm_hpc.config import load_config
from esdm_hpc.epochs import commit, store
from esdm_hpc.epochs.chaincheck import MetadataDamage
from esdm_hpc.epochs.manifest import PACK_FORMAT, Manifest, Pack, decode_pack, encode_pack
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import CorruptMetadataError
from esdm_hpc.kernels.checksum import checksum
from esdm_hpc.verify import verify
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


def epoch_of(name: str) -> int:
    return int(name.removeprefix("manifests/e").removesuffix(".json"))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the metadata objects the store reads, in order."""
    names: list[str] = []
    real = ContainerStore._metadata

    def spy(self: ContainerStore, name: str, missing: str) -> bytes:
        names.append(name)
        return real(self, name, missing)

    monkeypatch.setattr(ContainerStore, "_metadata", spy)
    return names


def old_style_packs(manifests: list[Manifest]) -> bytes:
    """A pack as written before packs recorded their epochs' parent checksums."""
    record = json.loads(encode_pack(manifests))
    del record["parent_checksums"]
    return json.dumps(record).encode()


@dataclass
class Committed:
    root: Path
    config: dict
    states: list[np.ndarray]  # states[e]: x as committed in epoch e (e >= 1)

    def meta(self, name: str) -> Path:
        return self.root / "disk/containers/p" / name


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Committed]:
    """Epochs 1-20, packed every 3: packs 1-3 and 4-6 as older writers wrote them."""
    root = tmp_path_factory.mktemp("mixed")
    config = site(root)
    states = [np.full(SHAPE, -1, dtype="i4")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(commit, "PACK_EPOCHS", 3)
        patch.setattr(store, "encode_pack", old_style_packs)
        write_epochs(config, 1, 7, states)  # epoch 7's commit writes pack 4-6
        patch.setattr(store, "encode_pack", encode_pack)
        write_epochs(config, 8, EPOCHS, states)
    yield Committed(root, config, states)


def travel(committed: Committed, epoch: int) -> np.ndarray:
    with esdm_hpc.open("esdm://p", config=committed.config, epoch=epoch) as c:
        return c["x"][...] if epoch else np.full(SHAPE, -1, dtype="i4")


def test_every_epoch_reads_back_across_packs(tmp_path: Path, reads: list[str]) -> None:
    config = site(tmp_path)
    states = [np.full(SHAPE, -1, dtype="i4")]
    write_epochs(config, 1, 8, states)
    write_epochs(config, 9, EPOCHS, states)  # a second writer goes on packing
    # a pack once 3 epochs are unpacked: at the commits of epochs 4, 7, 10, ...
    expected = [(1, 3), (4, 6), (7, 9), (10, 12), (13, 15), (16, 18)]
    assert packs_on_disk(tmp_path) == [f"e{a:09d}-e{b:09d}.json" for a, b in expected]
    reads.clear()
    with esdm_hpc.open("esdm://p", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], states[EPOCHS])
    read = [epoch_of(name) for name in reads if name.startswith("manifests/")]
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


def container_store(config: dict) -> ContainerStore:
    site_config = load_config(config)
    backends = {b.id: open_backend(b) for b in site_config.backends}
    return ContainerStore("p", backends, site_config.metadata_backend)


def first_unpacked(epoch: int) -> int:
    """The first epoch after epoch ``epoch``'s last pack (every 3, from epoch 4's commit)."""
    return 0 if epoch <= 3 else (epoch - 1) // 3 * 3 + 1


def test_time_travel_reads_about_what_an_open_of_the_newest_does(
    mixed: Committed, reads: list[str]
) -> None:
    for epoch in range(EPOCHS + 1):
        reads.clear()
        np.testing.assert_array_equal(travel(mixed, epoch), mixed.states[epoch])
        manifests = [epoch_of(name) for name in reads if name.startswith("manifests/")]
        own = [*range(epoch, first_unpacked(epoch) - 1, -1)]
        if 7 <= epoch + 1 <= 18:  # a pack that records checksums holds epoch+1
            assert manifests == [EPOCHS, *own], epoch
        else:  # the newest epochs, and packs written before they recorded checksums
            assert manifests == [*range(EPOCHS, epoch, -1), *own], epoch


def test_a_damaged_packed_manifest_fails_only_the_epochs_that_read_it(mixed: Committed) -> None:
    manifest = mixed.meta("manifests/e000000011.json")
    saved = manifest.read_bytes()
    manifest.write_bytes(saved.replace(b'"epoch":11', b'"epoch":12', 1))
    # a reader of epoch 12 reads the manifests after its last pack (10-12) too;
    # one of epochs 0-5 walks the chain from HEAD down (older packs record no checksums)
    broken = {11, 12, *range(6)}
    try:
        for epoch in broken:
            with pytest.raises(CorruptMetadataError, match=r"e000000011\.json: checksum mismatch"):
                travel(mixed, epoch)
        for epoch in {*range(EPOCHS + 1)} - broken:
            np.testing.assert_array_equal(travel(mixed, epoch), mixed.states[epoch])
        report = verify(container_store(mixed.config))
    finally:
        manifest.write_bytes(saved)
    [damage] = report.damage
    assert str(damage) == (
        "manifests/e000000011.json: checksum mismatch (truncated or modified after commit); "
        "epochs 0-5, 11-12 cannot be opened (disk:containers/p/manifests/e000000011.json)"
    )
    assert report.fragments == EPOCHS  # epoch 11's from its pack


def test_verify_reads_on_below_a_damaged_manifest(mixed: Committed) -> None:
    names = ("manifests/e000000005.json", "manifests/e000000003.json")
    saved = {name: mixed.meta(name).read_bytes() for name in names}
    mixed.meta(names[0]).unlink()
    damage(mixed.meta(names[1]), "flip", 200)
    try:
        report = verify(container_store(mixed.config))
    finally:
        for name, data in saved.items():
            mixed.meta(name).write_bytes(data)
    # packs 1-3 and 4-6 record no checksums: only manifest 4 (not verified, as
    # manifest 5 is gone) tells what manifest 3 should be
    assert [str(d) for d in report.damage] == [
        "manifests/e000000005.json: missing (the epoch chain is broken); epochs 0-6 cannot be "
        "opened (disk:containers/p/manifests/e000000005.json)",
        "manifests/e000000003.json: checksum mismatch with what manifests/e000000004.json "
        "records, which nothing verifies; epochs 0-3 cannot be opened "
        "(disk:containers/p/manifests/e000000003.json)",
    ]
    assert report.fragments == EPOCHS  # epochs 3-5's from their (verified) packs


DAMAGE = st.sampled_from(["flip", "truncate", "delete"])
OBJECTS = [f"manifests/e{e:09d}.json" for e in range(EPOCHS + 1)] + [
    f"packs/e{a:09d}-e{a + 2:09d}.json" for a in range(1, 17, 3)
]


def damage(path: Path, kind: str, at: int) -> None:
    data = path.read_bytes()
    if kind == "delete":
        path.unlink()
    elif kind == "truncate":
        path.write_bytes(data[: at % len(data)])
    else:
        flipped = bytearray(data)
        flipped[at % len(data)] ^= 1 << at % 8
        path.write_bytes(bytes(flipped))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    harm=st.lists(
        st.tuples(st.sampled_from(OBJECTS), DAMAGE, st.integers(0, 1 << 20)),
        min_size=1,
        max_size=3,
        unique_by=lambda h: h[0],
    )
)
def test_verify_names_the_damage_and_exactly_the_epochs_it_breaks(
    mixed: Committed, harm: list[tuple[str, str, int]]
) -> None:
    saved = {name: mixed.meta(name).read_bytes() for name, _, _ in harm}
    try:
        for name, kind, at in harm:
            damage(mixed.meta(name), kind, at)
        report = verify(container_store(mixed.config))
        failed: dict[int, str] = {}
        for epoch in range(EPOCHS + 1):
            try:
                data = travel(mixed, epoch)
            except CorruptMetadataError as error:
                failed[epoch] = str(error)
            else:  # what opens reads back exactly as committed
                np.testing.assert_array_equal(data, mixed.states[epoch])
    finally:
        for name, data in saved.items():
            mixed.meta(name).write_bytes(data)
    named = {d.name: set(d.epochs) for d in report.damage if isinstance(d, MetadataDamage)}
    assert named, "damage went unreported"
    # nothing intact is blamed, unless by metadata nothing verifies (damaged itself, perhaps)
    certain = {d.name for d in report.damage if "nothing verifies" not in str(d)}
    assert certain <= saved.keys()
    assert set().union(*named.values()) == failed.keys()
    for epoch, error in failed.items():  # the object an open fails on is named for it
        assert any(name in error and epoch in epochs for name, epochs in named.items()), error
    for name in saved:  # a damaged manifest: its own epoch does not open
        if name.startswith("manifests/"):
            assert epoch_of(name) in failed


def test_verify_counts_the_metadata_in_its_progress(mixed: Committed) -> None:
    calls: list[tuple[int, int]] = []
    report = verify(container_store(mixed.config), lambda *call: calls.append(call))
    assert (report.manifests, report.packs, report.fragments, report.damage) == (21, 6, 20, [])
    metadata = report.manifests + report.packs
    assert calls == [(metadata + done, metadata + EPOCHS) for done in range(EPOCHS + 1)]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["format", "first", "last", "parent_checksums", "fragments"]),
       value=JSON | st.just(...))  # fmt: skip
def test_a_pack_no_writer_wrote_is_corrupt_metadata(key: str, value: object) -> None:
    record = {"format": PACK_FORMAT, "first": 1, "last": 2, "parent_checksums": [5, 6],
              "fragments": [{"epoch": 1}]}  # fmt: skip
    if value is ...:
        del record[key]
    else:
        record[key] = value
    data = json.dumps(record).encode()
    pack = Pack("packs/e000000001-e000000002.json", 1, 2, checksum(data))  # as its entry says
    try:
        contents = decode_pack(data, pack, "esdm://p packs/e000000001-e000000002.json")
    except CorruptMetadataError as error:
        assert str(error).startswith("esdm://p packs/e000000001-e000000002.json: ")
        return
    assert isinstance(contents.fragments, list)
    recorded = [contents.manifest_checksum(e) for e in (0, 1)]
    if key != "parent_checksums":
        assert recorded == [5, 6]
    else:  # two checksums, or none (null or absent: an older pack)
        assert recorded == (value if isinstance(value, list) else [None, None])
