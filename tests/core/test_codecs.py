"""Codec pipelines (esdm_hpc/codecs.py): every pipeline round-trips every dtype, a part
of a coded fragment reads, verifies and decodes only the blocks it touches, a damaged
coded block is refused by name, and fragments stored as serialised ("raw") read as
they always did."""

import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import esdm_hpc
from esdm_hpc import cli, codecs
from esdm_hpc.backends.posix import PosixBackend
from esdm_hpc.epochs.manifest import decode_fragment
from esdm_hpc.errors import CorruptDataError, CorruptMetadataError
from esdm_hpc.fragment import Fragment
from tests import model
from tests.core.conftest import site

PIPELINES = [
    ["shuffle"],
    ["deflate"],
    ["zstd"],
    ["blosc"],
    ["shuffle", "deflate:1"],
    ["shuffle", "zstd:1"],
    ["shuffle", "blosc:zstd:3:2"],
    ["zstd:-3"],
    ["blosc:blosclz:9:0"],
]
STRING_PIPELINES = [p for p in PIPELINES if p[0] != "shuffle"]


@pytest.fixture(autouse=True)
def small_blocks() -> Iterator[None]:
    """Blocks of 64 bytes for coded fragments too, so that small datasets have many."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codecs, "MIN_BLOCK", 64)
        yield


def memory_site(block_size: int = 64) -> dict:
    """A memory backend of its own (hypothesis runs many examples in one test)."""
    backend = {"id": "mem", "type": "memory", "target": uuid.uuid4().hex}
    return {"backends": [backend], "block_size": block_size}


def fragments(container: esdm_hpc.Container, path: str) -> list[Fragment]:
    return container.view(container.dataset_meta(path)).fragments


# --- pipelines alone -----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    specs=st.sampled_from(PIPELINES),
    itemsize=st.sampled_from([1, 2, 3, 4, 8, 12, 17, 24]),
    payload=st.binary(max_size=5000)
    | st.integers(0, 4000).map(lambda n: bytes(n % 7 for n in range(n))),
    block=st.integers(1, 700),
)
def test_a_pipeline_decodes_every_run_of_blocks_to_the_bytes_encoded(
    specs: list[str], itemsize: int, payload: bytes, block: int
) -> None:
    hinted = codecs.checked_hint("/x", {"codecs": specs}, np.dtype(f"V{itemsize}"))
    pipeline = codecs.for_dataset(hinted)
    assert pipeline is not None and codecs.get(pipeline.name) == pipeline
    data = np.frombuffer(payload, np.uint8)
    stored, bounds = pipeline.encode(data, block)
    nblocks = -(-len(data) // block)
    assert len(bounds) == nblocks + 1 and bounds[0] == 0 and bounds[-1] == len(stored)
    for first, stop in itertools.combinations(range(nblocks + 1), 2):
        out = np.empty(min(stop * block, len(data)) - first * block, np.uint8)
        run = bounds[first : stop + 1]
        pipeline.decode(stored[run[0] : run[-1]], run - run[0], out, block)
        assert out.tobytes() == payload[first * block : stop * block]
        if nblocks > 12:  # enough of the quadratic number of runs
            break


def test_hints_are_resolved_at_creation_and_refused_by_name(config: dict) -> None:
    with esdm_hpc.open("esdm://h", "w", config=config) as c:
        x = c.create_dataset("x", (4,), dtype="f8", hints={"codecs": ["shuffle", "zstd"]})
        assert x.hints["codecs"] == ["shuffle:8", "zstd:3"]  # what its writers do
        y = c.create_dataset("y", (4,), dtype="i2", hints={"codecs": ["blosc", "zstd"][:1]})
        assert y.hints["codecs"] == ["blosc:lz4:5:1:2"]
        s = c.create_dataset("s", (4,), dtype=str, hints={"codecs": ["deflate:9"]})
        assert s.hints["codecs"] == ["deflate:9"]
        for hint, message in (
            ("zstd", r"/bad: hints\['codecs'\] is a list of codecs"),
            (["zstd:23"], r"/bad: hints\['codecs'\]: 'zstd:23': zstd's level is -131072 to 22"),
            (["deflate", "shuffle"], r"'shuffle': a shuffle comes first, once"),
            (["deflate", "zstd"], r"'zstd': one compressor, last"),
            (["lzf"], r"'lzf': unknown codec \(known: shuffle, deflate, zstd, blosc\)"),
            (["blosc:snappy"], r"blosc's compressor is one of blosclz, lz4, lz4hc, zlib, zstd"),
            (["deflate:fast"], r"'deflate:fast': parameters are integers"),
        ):
            with pytest.raises(ValueError, match=message):
                c.create_dataset("bad", (4,), dtype="f4", hints={"codecs": hint})
        with pytest.raises(ValueError, match=r"/bad: .*'shuffle': strings have no elements"):
            c.create_dataset("bad", (4,), dtype=str, hints={"codecs": ["shuffle", "zstd"]})
        with pytest.raises(ValueError, match=r"/bad: hints\['filters'\] is a list of \[id, flags"):
            c.create_dataset("bad", (4,), dtype="f4", hints={"filters": [[1, 1, [-1]]]})


# --- every pipeline, every dtype, through the API ------------------------------------------


def shaped_values(dtype: np.dtype | str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values that compress (runs and repeats) half the time, else any bit pattern."""
    values = model.random_values(dtype, shape, seed)
    if seed % 2 and values.size:
        values.reshape(-1)[:] = values.reshape(-1)[np.arange(values.size) // 7]
    return values


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), dtype=st.sampled_from(model.DTYPES), seed=model.seeds)
def test_every_pipeline_round_trips_every_dtype(
    data: st.DataObject, dtype: np.dtype | str, seed: int
) -> None:
    pipelines = STRING_PIPELINES if dtype == model.STRING else PIPELINES
    specs = data.draw(st.sampled_from(pipelines), label="codecs")
    shape = data.draw(model.shapes, label="shape")
    serialisation = data.draw(
        st.sampled_from(["C", "hilbert"]) if dtype != model.STRING else st.just("C")
    )
    values = shaped_values(dtype, shape, seed)
    config = memory_site()
    hints = {"codecs": specs} | ({} if serialisation == "C" else {"serialisation": serialisation})
    with esdm_hpc.open("esdm://p", "w", config=config) as c:
        dataset = c.create_dataset(
            "x", shape, dtype=str if dtype == model.STRING else dtype, hints=hints
        )
        dataset[...] = values
    with esdm_hpc.open("esdm://p", config=config) as c:
        assert model.same(c["x"][...], values)
        for key in data.draw(st.lists(model.keys(shape), max_size=4), label="keys"):
            assert model.same(np.asarray(c["x"][key]), model.select(values, key)), key
        if values.size:
            (fragment,) = fragments(c, "/x")
            assert fragment.codec == "|".join(c["x"].hints["codecs"])
            assert all(r.length == fragment.stored_size for r in fragment.replicas)


def test_small_writes_joined_in_a_run_are_coded_as_one_fragment(config: dict) -> None:
    rows = np.arange(200 * 16, dtype="f4").reshape(200, 16) % 13
    with esdm_hpc.open("esdm://run", "w", config=config) as c:
        x = c.create_dataset("x", rows.shape, dtype="f4", hints={"codecs": ["shuffle", "zstd"]})
        for i, row in enumerate(rows):
            x[i] = row
    with esdm_hpc.open("esdm://run", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], rows)
        (fragment,) = fragments(c, "/x")
        assert fragment.codec == "shuffle:4|zstd:3"
        assert fragment.stored_size < rows.nbytes / 4


# --- partial reads and damage ----------------------------------------------------------------

FIELD = (np.arange(64 * 128 * 32, dtype="f4").reshape(64, 128, 32) % 1000) * 0.5  # 1 MiB
BLOCK = 64 << 10  # 4 planes of FIELD per block: 16 blocks


def write_field(root: Path, specs: list[str]) -> dict:
    config = site(root, block_size=BLOCK)
    with esdm_hpc.open("esdm://f", "w", config=config) as c:
        c.create_dataset("x", FIELD.shape, dtype="f4", hints={"codecs": specs})[...] = FIELD
    return config


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The ranges (offset, length) the posix backend is asked to read from data logs."""
    asked: list[tuple[int, int]] = []
    real = PosixBackend.readinto_objects

    def recording(self: PosixBackend, objects: dict) -> dict:
        for name, ranges in objects.items():
            if name.endswith(".log"):
                asked.extend((offset, memoryview(target).nbytes) for offset, target in ranges)
        return real(self, objects)

    monkeypatch.setattr(PosixBackend, "readinto_objects", recording)
    return asked


@pytest.mark.parametrize("specs", [["shuffle", "zstd:1"], ["shuffle", "deflate:1"], ["blosc"]])
def test_a_part_of_a_coded_fragment_reads_only_the_blocks_it_touches(
    tmp_path: Path, specs: list[str], reads: list[tuple[int, int]]
) -> None:
    config = write_field(tmp_path, specs)
    with esdm_hpc.open("esdm://f", config=config) as c:
        (fragment,) = fragments(c, "/x")
        assert fragment.nblocks == 16 and fragment.stored_size < FIELD.nbytes / 2
        start = fragment.replicas[0].byte_offset
        for region, first, stop in (
            ((9, 5, 7), 2, 3),  # one element: block 2 (planes 8-11)
            ((slice(4, 12), slice(None), 3), 1, 3),  # a column through blocks 1 and 2
            ((slice(13, 30),), 3, 8),  # whole planes: straight into the output
            ((slice(None), 0, 0), 0, 16),
        ):
            reads.clear()
            np.testing.assert_array_equal(c["x"][region], FIELD[region])
            bounds = fragment.stored_bounds(first, stop)
            assert reads == [(start + int(bounds[0]), int(bounds[-1] - bounds[0]))], region


def flip(root: Path, at: int) -> None:
    (log,) = (root / "disk").rglob("*.log")
    with log.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x10]))


@pytest.mark.parametrize("specs", [["shuffle", "zstd"], ["deflate"], ["shuffle"]])
def test_a_damaged_coded_block_is_refused_naming_it(
    tmp_path: Path, specs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_field(tmp_path, specs)
    with esdm_hpc.open("esdm://f", config=config) as c:
        (fragment,) = fragments(c, "/x")
        bounds = fragment.stored_bounds(5, 6)  # block 5: planes 20-23
    flip(tmp_path, fragment.replicas[0].byte_offset + int(bounds[0] + bounds[1]) // 2)
    with esdm_hpc.open("esdm://f", config=config) as c:
        where = r"/x\[20:24, 0:128, 0:32\]: corrupt data \(checksum mismatch in block\(s\) \[5\]"
        for region in ((21, 3, 4), (slice(None), 7, 7), (slice(18, 26),), Ellipsis):
            with pytest.raises(CorruptDataError, match=where):
                c["x"][region]
        np.testing.assert_array_equal(c["x"][:20], FIELD[:20])  # the rest reads
        np.testing.assert_array_equal(c["x"][24:, 5], FIELD[24:, 5])
    settings_file = tmp_path / "esdm.json"
    settings_file.write_text(json.dumps(config))
    assert cli.main(["--config", str(settings_file), "verify", "--quiet", "esdm://f"]) == 1
    out = capsys.readouterr().out
    assert "/x[20:24, 0:128, 0:32]: checksum mismatch" in out and "block(s) [5]" in out


def test_verify_and_a_second_replica_take_coded_fragments(tmp_path: Path, capsys) -> None:
    backends = [{"id": n, "type": "posix", "target": str(tmp_path / n)} for n in ("a", "b")]
    config = {"backends": backends, "replicas": 2, "block_size": BLOCK}
    with esdm_hpc.open("esdm://f", "w", config=config) as c:
        c.create_dataset("x", FIELD.shape, dtype="f4", hints={"codecs": ["zstd"]})[...] = FIELD
    settings_file = tmp_path / "esdm.json"
    settings_file.write_text(json.dumps(config))
    assert cli.main(["--config", str(settings_file), "verify", "--quiet", "esdm://f"]) == 0
    for backend in ("a", "b"):  # each in turn: whichever the reader tries first
        (log,) = (tmp_path / backend).rglob("*.log")
        saved = log.read_bytes()
        log.write_bytes(saved[:100] + bytes([saved[100] ^ 1]) + saved[101:])
        with esdm_hpc.open("esdm://f", config=config) as c:
            np.testing.assert_array_equal(c["x"][...], FIELD)
            np.testing.assert_array_equal(c["x"][:, 2, 3], FIELD[:, 2, 3])
        log.write_bytes(saved)
    capsys.readouterr()


# --- raw records ---------------------------------------------------------------------------


def test_a_dataset_without_codecs_is_stored_and_recorded_as_before(config: dict) -> None:
    with esdm_hpc.open("esdm://raw", "w", config=config) as c:
        c.create_dataset("x", data=FIELD[:4])
    with esdm_hpc.open("esdm://raw", config=config) as c:
        (fragment,) = fragments(c, "/x")
        record = fragment.to_json()
        assert record["codec"] == "raw" and "stored_ends" not in record
        assert record["nbytes"] == FIELD[:4].nbytes == fragment.replicas[0].length
        assert record["block_size"] == config.get("block_size", 16 << 10)
        np.testing.assert_array_equal(c["x"][...], FIELD[:4])


RECORD = {
    "id": "f", "dataset": "/x", "epoch": 1, "rank": 0, "seq": 0, "offset": [0], "count": [5],
    "serialisation": "C", "codec": "raw", "nbytes": 40, "block_size": 8,
    "checksums": "AAAAAAAAAAA=", "replicas": [["disk", "log", 0, 40]],
    "minimum": None, "maximum": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"codec": "lzf"}, "unknown codec"),
        ({"codec": "zstd"}, "1 parameter"),  # a record names every parameter
        ({"codec": "zstd:3"}, "stored_ends of 0 blocks, checksums of 1"),
        ({"stored_ends": "AAAAAAAAAAA="}, "stored_ends in a fragment stored as serialised"),
        ({"codec": "zstd:3", "stored_ends": "AAAA"}, "not whole offsets"),
    ],
)
def test_a_record_with_a_codec_no_writer_writes_is_corrupt_metadata(
    change: dict, message: str
) -> None:
    old = Fragment.from_json(RECORD)  # a record from before codecs, unchanged
    assert json.loads(json.dumps(old.to_json())) == RECORD
    with pytest.raises(CorruptMetadataError, match=message):
        decode_fragment(RECORD | change, "manifest 1")


def test_codecs_need_no_numcodecs_until_a_coded_fragment_is_read_or_written() -> None:
    script = (
        "import sys, numpy as np, esdm_hpc\n"
        "c = esdm_hpc.open('esdm://n', 'w', config={'backends': [{'id': 'm', 'type': 'memory',"
        " 'target': 'n'}]})\n"
        "c.create_dataset('x', data=np.arange(10)); c.commit()\n"
        "assert (c['x'][...] == np.arange(10)).all()\n"
        "print(any(m.startswith('numcodecs') for m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=os.environ
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
