import json
import os
import pickle
import re
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import esdm_hpc
from esdm_hpc.backends import BurstBufferBackend, open_backend
from esdm_hpc.config import (
    ConfigError,
    GiB,
    KiB,
    Limits,
    MiB,
    Options,
    SiteConfig,
    Weights,
    load_config,
    parse_bandwidth,
    parse_duration,
    parse_size,
)

SITE = {
    "backends": [
        {
            "id": "scratch",
            "type": "posix",
            "target": "/lustre/scratch/esdm",
            "tier": "pfs",
            "performance": {
                "latency_s": "2 ms",
                "read_bandwidth": "20 GiB/s",
                "write_bandwidth": "10 GiB/s",
                "capacity": "2 PiB",
            },
            "limits": {"max_fragment_bytes": "256 MiB", "threads": 4},
            "options": {"stripe_count": 8, "stripe_size": "4 MiB"},
        },
        {
            "id": "bb",
            "type": "burstbuffer",
            "target": "/dev/shm/esdm",
            "tier": "bb",
            "accessibility": "node-local",
            "drain_to": "scratch",
            "performance": {"write_bandwidth": 5e9},
        },
    ],
    "weights": {"time": 1, "capacity": 0.5},
    "metadata_backend": "scratch",
    "block_size": "4 MiB",
}

SITE_TOML = """\
metadata_backend = "scratch"
block_size = "4 MiB"

[weights]
time = 1
capacity = 0.5

[[backends]]
id = "scratch"
type = "posix"
target = "/lustre/scratch/esdm"
tier = "pfs"
limits = { max_fragment_bytes = "256 MiB", threads = 4 }
options = { stripe_count = 8, stripe_size = "4 MiB" }

[backends.performance]
latency_s = "2 ms"
read_bandwidth = "20 GiB/s"
write_bandwidth = "10 GiB/s"
capacity = "2 PiB"

[[backends]]
id = "bb"
type = "burstbuffer"
target = "/dev/shm/esdm"
tier = "bb"
accessibility = "node-local"
drain_to = "scratch"
performance = { write_bandwidth = 5e9 }
"""


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in an empty directory with no configuration in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("ESDM_CONFIG", "ESDM_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


NODE_LOCAL = {"id": "bb", "type": "burstbuffer", "target": "/x", "drain_to": "a"}
GLOBAL_A = {"id": "a", "type": "posix", "target": "/a"}


def with_backend(**changes: object) -> dict:
    """A one-backend configuration with ``changes`` applied to the backend."""
    return {"backends": [{"id": "a", "type": "posix", "target": "/data/a", **changes}]}


# --- discovery ---------------------------------------------------------------------------


def test_default_needs_no_file(tmp_path: Path) -> None:
    config = load_config()
    assert config.source == "<default>"
    (local,) = config.backends
    assert (local.id, local.type, local.tier, local.accessibility) == (
        "local",
        "posix",
        "pfs",
        "global",
    )
    assert local.target == str(tmp_path / "esdm-data")
    assert local.limits == Limits(max_fragment_bytes=64 * MiB, threads=1)
    assert config.metadata_backend == "local"
    assert (config.replicas, config.block_size, config.weights) == (1, 16 * KiB, Weights())


def test_default_honours_esdm_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESDM_ROOT", "relative/root")
    assert load_config().backend("local").target == str(tmp_path / "relative/root")


def test_esdm_config_names_json_or_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "site.json").write_text(json.dumps(SITE))
    (tmp_path / "site.toml").write_text(SITE_TOML)
    monkeypatch.setenv("ESDM_CONFIG", str(tmp_path / "site.json"))
    from_json = load_config()
    monkeypatch.setenv("ESDM_CONFIG", str(tmp_path / "site.toml"))
    from_toml = load_config()
    assert from_json.source == str(tmp_path / "site.json")
    assert from_toml.source == str(tmp_path / "site.toml")
    assert from_json.backends == from_toml.backends
    scratch = from_json.backend("scratch")
    assert scratch.performance.latency_s == pytest.approx(0.002)
    assert scratch.performance.write_bandwidth == 10 * GiB
    assert scratch.performance.capacity == 2 * 1024**5
    assert scratch.limits == Limits(max_fragment_bytes=256 * MiB, threads=4)
    assert dict(scratch.options) == {"stripe_count": 8, "stripe_size": 4 * MiB}
    bb = from_json.backend("bb")
    assert (bb.tier, bb.accessibility, bb.drain_to) == ("bb", "node-local", "scratch")
    assert bb.performance.write_bandwidth == 5e9
    assert from_json.weights == Weights(time=1.0, capacity=0.5, cost=0.0)
    assert from_json.block_size == 4 * MiB


def test_explicit_source_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESDM_CONFIG", str(tmp_path / "missing.json"))
    (tmp_path / "mine.json").write_text(json.dumps(SITE))
    assert load_config(tmp_path / "mine.json").metadata_backend == "scratch"
    assert load_config(SITE).source == "<dict>"
    config = load_config(SITE)
    assert load_config(config) is config


@pytest.mark.parametrize("name", ["esdm.json", "esdm.toml"])
def test_found_in_working_directory(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(json.dumps(SITE) if name.endswith("json") else SITE_TOML)
    assert load_config().source == str(tmp_path / name)


def test_json_and_toml_side_by_side_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "esdm.json").write_text("{}")
    (tmp_path / "esdm.toml").write_text("")
    with pytest.raises(ConfigError, match=r"both esdm\.json and esdm\.toml"):
        load_config()


def test_file_without_backends_keeps_the_default_backend(tmp_path: Path) -> None:
    (tmp_path / "esdm.json").write_text('{"block_size": "4 MiB"}')
    config = load_config()
    assert config.backend("local").target == str(tmp_path / "esdm-data")
    assert config.block_size == 4 * MiB


def test_relative_targets_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/site.json").write_text(json.dumps(with_backend(target="../data")))
    assert load_config("etc/site.json").backend("a").target == str(tmp_path / "data")


def test_targets_expand_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRATCH", "/scratch/u1")
    config = load_config(with_backend(target="${SCRATCH}/esdm/$SCRATCH"))
    assert config.backend("a").target == "/scratch/u1/esdm/scratch/u1"
    monkeypatch.delenv("SCRATCH")
    with pytest.raises(ConfigError, match=r"backends\[0\].target: environment variable \$SCRATCH"):
        load_config(with_backend(target="$SCRATCH/esdm"))


def test_type_decides_defaults() -> None:
    config = load_config(
        {
            "backends": [
                {"id": "m", "type": "memory", "target": "pool"},
                {"id": "p", "type": "burstbuffer", "target": "/p", "drain_to": "m"},
            ]
        }
    )
    assert config.backend("m").tier == "memory"
    assert config.backend("m").target == "pool"  # a store name, not a path
    assert config.backend("m").performance.latency_s == 1e-6
    assert (config.backend("p").tier, config.backend("p").accessibility) == ("bb", "node-local")
    # No global posix backend: metadata goes to the first global one.
    assert config.metadata_backend == "m"


def test_records_pickle_for_broadcast() -> None:
    config = load_config(SITE)
    assert pickle.loads(pickle.dumps(config)) == config
    assert hash(config) == hash(pickle.loads(pickle.dumps(config)))


def test_backend_lookup_names_known_ids() -> None:
    with pytest.raises(KeyError, match="no backend 'x'; configured: scratch, bb"):
        load_config(SITE).backend("x")


def test_documented_examples_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    doc = (Path(__file__).parents[1] / "docs/configuration.md").read_text()
    examples = re.findall(r"```(json|toml)\n(.*?)```", doc, re.DOTALL)
    assert [kind for kind, _ in examples] == ["json", "toml", "json", "toml", "toml", "toml",
                                              "toml"]  # fmt: skip
    configs = []
    for i, (kind, text) in enumerate(examples):
        (tmp_path / f"example{i}.{kind}").write_text(text)
        configs.append(load_config(f"example{i}.{kind}"))
    assert configs[0].backends == configs[1].backends
    assert configs[0].backend("scratch").target == str(tmp_path / "scratch/esdm")
    assert [b.type for b in configs[0].backends] == ["posix", "posix"]
    assert [c.command[0] for c in configs[3].on_commit] == ["sbatch", "sh"]  # on_commit
    assert [h.function for h in configs[4].hooks] == ["mymodel.insitu:regional_mean"]  # hooks
    assert [(t.dataset, t.keep_last, t.then) for t in configs[5].triggers] == [("/tas", 8, 24)]
    objects = configs[6].backend("objects")  # the s3 example
    assert (objects.type, objects.target, objects.options["bucket"]) == (
        "s3",
        "runs/2026/",
        "climate",
    )
    assert configs[6].metadata_backend == "project"


def test_documented_messages_are_the_ones_given() -> None:
    doc = (Path(__file__).parents[1] / "docs/configuration.md").read_text()
    burst = {"id": "bb", "type": "burstbuffer", "target": "/dev/shm/esdm"}  # no drain_to
    fast = {"id": "b", "type": "posix", "target": "/b"}
    for config in (
        {"backends": [with_backend()["backends"][0], burst]},
        {"block_size": 2**64 + 1},
        {
            "backends": [
                with_backend()["backends"][0],
                {**fast, "performance": {"write_bandwidth": -3}},
            ]
        },
        {
            "backends": [
                with_backend()["backends"][0],
                {**fast, "performance": {"write_bandwidth": "1e400 B/s"}},
            ]
        },
    ):
        with pytest.raises(ConfigError) as error:
            load_config(config)
        assert str(error.value).removeprefix("<dict>: ") in doc


# --- ranges (issue 11, defect 10) ---------------------------------------------------------


def bandwidth(value: object) -> dict:
    return with_backend(performance={"read_bandwidth": value})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (bandwidth("1e400 B/s"), r"performance.read_bandwidth: must be at most 1 EB/s"),
        (bandwidth(1e300), "read_bandwidth: must be at most 1 EB/s, got 1e\\+300"),
        (bandwidth(10**400), "read_bandwidth: must be at most 1 EB/s, got an integer of more"),
        (bandwidth(float("inf")), "read_bandwidth: must be at most 1 EB/s, got Infinity"),
        (bandwidth(float("nan")), "read_bandwidth: must be a positive number .*got NaN"),
        (bandwidth("1e-400 B/s"), "read_bandwidth: must be a positive number"),
        (bandwidth(0.5), "read_bandwidth: must be at least 1 B/s, got 0.5"),
        ({"block_size": 2**64 + 1}, "block_size: must be at most 1 GiB .*got 18446744073709551617"),
        ({"block_size": "2 GiB"}, r"block_size: must be at most 1 GiB \(reads read and verify"),
        ({"block_size": "1e10000000 B"}, 'block_size: must be at most 1 GiB .*got "1e10000000 B"'),
        ({"block_size": "1e100000000 B"}, "block_size: must be at most 1 GiB"),
        ({"block_size": "1" * 101 + " B"}, "block_size: must be a positive size"),
        (
            with_backend(performance={"capacity": "9300 PB"}),
            r"performance.capacity: must be at most 2\*\*63-1 bytes, got \"9300 PB\"",
        ),
        (
            with_backend(limits={"max_fragment_bytes": 2**63}),
            "limits.max_fragment_bytes: must be at most 2\\*\\*63-1 bytes",
        ),
        (
            with_backend(performance={"latency_s": "2 h"}),
            'performance.latency_s: must be a non-negative duration .*got "2 h"',
        ),
        (
            with_backend(performance={"latency_s": 3601}),
            "performance.latency_s: must be at most 1 hour, got 3601",
        ),
        (
            with_backend(performance={"latency_s": "1e999 s"}),
            "performance.latency_s: must be at most 1 hour",
        ),
        (with_backend(limits={"threads": 1025}), "limits.threads: must be at most 1024, got 1025"),
        ({"replicas": 10**100}, "replicas: must be at most 64, got an integer of more than 40"),
        (
            with_backend(options={"stripe_count": 2001}),
            r"options.stripe_count: must be at most 2000 \(Lustre's limit\), got 2001",
        ),
        (
            with_backend(options={"stripe_size": 4 * GiB}),
            r"options.stripe_size: must be at most 4 GiB - 64 KiB",
        ),
        ({"weights": {"time": 10**400}}, "weights.time: must be at most 1e6"),
        ({"weights": {"time": float("nan")}}, "weights.time: must be a non-negative number"),
        (with_backend(target="/data/\0"), "target: must not contain a NUL character"),
        ({"x" * 10**6: 1}, '^<dict>: "x{60}\\.\\.\\.": unknown key'),
    ],
)
def test_out_of_range_numbers_are_refused_at_once(config: dict, message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=message) as error:
        load_config(config)
    assert time.perf_counter() - start < 0.05  # "1e100000000 B" took over a minute
    assert str(error.value).startswith("<dict>: ")


def test_a_block_size_beyond_64_bits_is_refused_before_any_commit(tmp_path: Path) -> None:
    config = {"backends": [{"id": "d", "type": "posix", "target": str(tmp_path)}]}
    with pytest.raises(ConfigError, match="block_size: must be at most 1 GiB"):
        esdm_hpc.open("esdm://x", "w", config={**config, "block_size": 2**64 + 1})
    assert not list(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("big.json", '{"replicas": ' + "9" * 5000 + "}", "replicas: must be at most 64, got an"),
        ("neg.json", '{"replicas": -' + "9" * 50 + "}", "replicas: must be a positive integer"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("big.toml", "replicas = " + "9" * 5000, "invalid TOML: Exceeds the limit"),
        ("deep.toml", "a = " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_files_with_huge_numbers_or_nesting(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=f"^{re.escape(name)}: {message}"):
        load_config(name)
    assert time.perf_counter() - start < 0.5


@given(
    number=st.integers(min_value=0, max_value=2**70),
    unit=st.sampled_from(["B", "KiB", "MB", "PiB"]),
    exponent=st.integers(min_value=-3, max_value=30),
)
@settings(max_examples=200, deadline=None)
def test_sizes_parse_exactly_up_to_63_bits(number: int, unit: str, exponent: int) -> None:
    exact = (
        Fraction(number)
        * Fraction(10) ** exponent
        * {"B": 1, "KiB": KiB, "MB": 10**6, "PiB": 2**50}[unit]
    )
    text = f"{number}e{exponent} {unit}"
    if exact.denominator == 1 and exact <= 2**63 - 1:
        assert parse_size(text) == exact
    else:
        with pytest.raises(ValueError):
            parse_size(text)


# --- burst buffers ------------------------------------------------------------------------


def test_a_burst_buffer_opens_on_its_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESDM_NODE", "n7")
    backend = {"id": "bb", "type": "burstbuffer", "target": str(tmp_path / "bb"), "drain_to": "a"}
    site = load_config({"backends": [{"id": "a", "type": "posix", "target": "/a"}, backend]})
    opened = open_backend(site.backend("bb"))
    assert isinstance(opened, BurstBufferBackend)
    assert opened.node == "n7" and opened.root == str(tmp_path / "bb" / "n7")


# --- units -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (4096, 4096),
        (4096.0, 4096),
        ("512", 512),
        ("64 MiB", 64 * MiB),
        ("64MiB", 64 * MiB),
        ("1.5 GiB", 3 * GiB // 2),
        ("2 kB", 2000),
        ("1e3 B", 1000),
        ("3 TB", 3 * 10**12),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1 Gb", "1G", "-1 MiB", "0.5 B", "MiB", "1 MiB/s", True, 1.5])
def test_parse_size_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)  # type: ignore[arg-type]


def test_parse_bandwidth_and_duration() -> None:
    assert parse_bandwidth("2 GiB/s") == 2 * GiB
    assert parse_bandwidth("500 MB/s") == 500e6
    assert parse_bandwidth(1e9) == 1e9
    assert parse_duration("50 us") == pytest.approx(50e-6)
    assert parse_duration("1 ms") == pytest.approx(1e-3)
    assert parse_duration(0.25) == 0.25
    with pytest.raises(ValueError, match="rate unit"):
        parse_bandwidth("2 GiB")
    with pytest.raises(ValueError):
        parse_duration("1 h")


# --- validation errors -------------------------------------------------------------------


def test_error_names_file_key_path_and_value(tmp_path: Path) -> None:
    site = json.loads(json.dumps(SITE))
    site["backends"][1]["performance"]["write_bandwidth"] = -3
    (tmp_path / "esdm.json").write_text(json.dumps(site))
    expected = "esdm.json: backends[1].performance.write_bandwidth: must be a positive number"
    with pytest.raises(ConfigError, match=r"got -3$") as error:
        load_config()
    assert str(error.value).startswith(expected)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            with_backend(performance={"write_bandwith": 1}),
            r"backends\[0\].performance.write_bandwith: unknown key \(did you mean "
            r"'write_bandwidth'\?\)",
        ),
        ({"backend": []}, "backend: unknown key"),
        (with_backend(id=3), r"backends\[0\].id: must be a name .*, got 3"),
        (with_backend(target=""), r"backends\[0\].target: must be a non-empty string"),
        ({"backends": [{"id": "a", "target": "x"}]}, r"backends\[0\].type: required key"),
        ({"backends": [{"type": "posix", "target": "x"}]}, r"backends\[0\].id: required key"),
        (with_backend(type="ceph"), r'backends\[0\].type: must be one of posix, .*got "ceph"'),
        (with_backend(accessibility="local"), r"backends\[0\].accessibility: must be one of"),
        (
            with_backend(performance={"read_bandwidth": 0}),
            r"backends\[0\].performance.read_bandwidth: must be a positive",
        ),
        (with_backend(performance={"read_bandwidth": "1 GiB"}), r'backends\[0\].*got "1 GiB"'),
        (
            with_backend(performance={"latency_s": -1}),
            r"backends\[0\].performance.latency_s: must be a non-negative",
        ),
        (
            with_backend(performance={"capacity": "1 Tb"}),
            r"backends\[0\].performance.capacity: must be a positive size",
        ),
        (with_backend(performance=[1]), r"backends\[0\].performance: must be a table, got a list"),
        (
            with_backend(limits={"threads": 0}),
            r"backends\[0\].limits.threads: must be a positive integer, got 0",
        ),
        (
            with_backend(limits={"threads": True}),
            r"backends\[0\].limits.threads: must be a positive integer, got true",
        ),
        (
            with_backend(limits={"max_fragment_bytes": 0}),
            r"backends\[0\].limits.max_fragment_bytes: must be a positive",
        ),
        (
            with_backend(options={"stripe_size": "100 KiB"}),
            r"backends\[0\].options.stripe_size: must be a multiple",
        ),
        (
            with_backend(options={"stripe_count": -2}),
            r"backends\[0\].options.stripe_count: must be -1",
        ),
        (with_backend(options={"endpoint": "x"}), r"backends\[0\].options.endpoint: unknown key"),
        ({"backends": []}, "backends: must list at least one backend"),
        ({"backends": {"id": "a"}}, "backends: must be a list of backend tables, got a table"),
        ({"backends": ["posix"]}, r'backends\[0\]: must be a table, got "posix"'),
        (
            {"backends": [*with_backend()["backends"], *with_backend()["backends"]]},
            r"backends\[1\].id: duplicate backend id 'a' \(also backends\[0\]\)",
        ),
        ({"metadata_backend": "nope"}, "metadata_backend: no backend 'nope'; configured: local"),
        (
            {"backends": [GLOBAL_A, NODE_LOCAL], "metadata_backend": "bb"},
            "metadata_backend: backend 'bb' is node-local",
        ),
        (with_backend(drain_to="tape"), r"backends\[0\].drain_to: only a burst buffer drains"),
        (
            {"backends": [GLOBAL_A, {**NODE_LOCAL, "drain_to": "tape"}]},
            r"backends\[1\].drain_to: no backend 'tape'",
        ),
        (
            {"backends": [GLOBAL_A, {**NODE_LOCAL, "drain_to": "bb"}]},
            r"backends\[1\].drain_to: backend 'bb' is node-local",
        ),
        (
            {"backends": [GLOBAL_A, {**NODE_LOCAL, "drain_to": None}]},
            r"backends\[1\].drain_to: required for a burst buffer",
        ),
        (
            {"backends": [GLOBAL_A, {**NODE_LOCAL, "accessibility": "global"}]},
            r"backends\[1\].accessibility: must be node-local",
        ),
        (
            with_backend(accessibility="node-local"),
            r"backends\[0\].accessibility: only a burstbuffer backend is node-local",
        ),
        ({"replicas": 2}, "replicas: 2 replicas need as many global backends, only 1"),
        ({"replicas": 0}, "replicas: must be a positive integer, got 0"),
        ({"weights": {"time": 0}}, "weights: at least one weight must be positive"),
        (
            {"weights": {"time": 0, "cost": 1}},
            "weights: at least one weight must be positive: time or",
        ),
        ({"weights": {"time": -1}}, "weights.time: must be a non-negative number, got -1"),
        ({"block_size": "1 Gb"}, 'block_size: must be a positive size .*got "1 Gb"'),
    ],
)
def test_invalid_configurations(config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^<dict>: {message}"):
        load_config(config)


def test_json_syntax_error_has_line_number(tmp_path: Path) -> None:
    (tmp_path / "esdm.json").write_text('{\n  "replicas": 1,\n  "block_size" "1 MiB"\n}')
    with pytest.raises(ConfigError, match=r"^esdm.json: line 3, column 16: invalid JSON"):
        load_config()


def test_json_duplicate_keys_are_refused(tmp_path: Path) -> None:
    (tmp_path / "esdm.json").write_text('{"replicas": 1, "replicas": 2}')
    with pytest.raises(ConfigError, match=r"esdm\.json: invalid JSON: duplicate key 'replicas'"):
        load_config()


def test_toml_syntax_error_has_line_number(tmp_path: Path) -> None:
    (tmp_path / "esdm.toml").write_text('replicas = 1\nblock_size "1 MiB"\n')
    with pytest.raises(ConfigError, match=r"^esdm.toml: invalid TOML: .*line 2"):
        load_config()


def test_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^nope\.json: cannot read the configuration: No such"):
        load_config("nope.json")
    monkeypatch.setenv("ESDM_CONFIG", "gone.toml")
    with pytest.raises(ConfigError, match=r"^gone.toml: cannot read .* named by \$ESDM_CONFIG"):
        load_config()


def test_errors_in_a_file_name_it(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text("[weights]\ntime = -1\n")
    with pytest.raises(ConfigError, match=r"^site.toml: weights.time: must be a non-negative"):
        load_config(Path("site.toml"))


# --- credentials -------------------------------------------------------------------------

S3 = {
    "id": "obj",
    "type": "s3",
    "target": "runs/",
    "options": {
        "endpoint": "http://127.0.0.1:8333",
        "bucket": "esdm",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI-very-secret",
    },
}


def test_credentials_are_masked_in_repr() -> None:
    backend = load_config({"backends": [S3]}).backends[0]
    options = backend.options
    assert isinstance(options, Options)
    assert options["secret_access_key"] == "wJalrXUtnFEMI-very-secret"
    for text in (repr(backend), str(backend), repr(options)):
        assert "wJalrXUtnFEMI" not in text
        assert "AKIAEXAMPLE" not in text
        assert "http://127.0.0.1:8333" in text


def test_credentials_are_not_echoed_in_errors() -> None:
    bad = {**S3, "options": {**S3["options"], "session_token": 1234567}}
    with pytest.raises(ConfigError) as error:
        load_config({"backends": [bad]})
    assert "session_token: must be a non-empty string" in str(error.value)
    assert "1234567" not in str(error.value)


def test_s3_options_are_checked() -> None:
    options = {"bucket": "b", "part_size": "16 MiB", "retry_timeout": "500 ms", "retries": 0}
    backend = load_config({"backends": [{**S3, "options": options}]}).backends[0]
    assert (backend.type, backend.tier, backend.target) == ("s3", "object", "runs/")
    assert dict(backend.options) == {**options, "part_size": 16 << 20, "retry_timeout": 0.5}
    for key, value, problem in [
        ("part_size", "6 GiB", "must be at most 5 GiB"),
        ("retries", -1, "must be a non-negative integer"),
        ("lock_lease", 0, "must be a positive duration"),
        ("concurrency", 0, "must be a positive integer"),
    ]:
        bad = {**S3, "options": {"bucket": "b", key: value}}
        with pytest.raises(ConfigError, match=rf"backends\[0\].options.{key}: {problem}"):
            load_config({"backends": [bad]})


def test_s3_needs_a_bucket() -> None:
    with pytest.raises(ConfigError, match=r"backends\[0\].options.bucket: required key"):
        load_config({"backends": [{**S3, "options": {}}]})


def test_site_config_is_a_frozen_record() -> None:
    config = load_config()
    with pytest.raises(AttributeError):
        config.replicas = 2  # type: ignore[misc]
    assert isinstance(config, SiteConfig)
    assert os.path.isabs(config.backend("local").target)
