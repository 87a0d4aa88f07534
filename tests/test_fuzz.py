"""Fuzzing of every user input (issue 11): configuration values and documents,
URIs, regions, index keys, dtypes and fill values, command lines.

Every input is handled in under a second, by a result or by one of the
documented errors (ConfigError, ValueError, TypeError, IndexError, KeyError,
EsdmError) whose message names the argument or key; never another exception
(OverflowError, RecursionError, NotImplementedError, ...) or a hang.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.config import ConfigError, SiteConfig, load_config
from esdm_hpc.errors import EsdmError
from esdm_hpc.selection import hyperslab, parse_region
from esdm_hpc.uri import container_name

DOCUMENTED = (ConfigError, ValueError, TypeError, IndexError, KeyError, EsdmError)
SECOND = 1.0

FUZZ = settings(
    max_examples=300,
    deadline=None,  # measured by `outcome` around the call under test, not the setup
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FEW = settings(FUZZ, max_examples=100)  # for examples that write and commit


def outcome(call: Callable[[], Any]) -> Any:
    """What ``call()`` returns, or the documented error it raises, in under a second."""
    start = time.perf_counter()
    try:
        result = call()
    except DOCUMENTED as error:
        result = error
    elapsed = time.perf_counter() - start
    assert elapsed < SECOND, f"took {elapsed:.2f} s"
    return result


_names = itertools.count()


def fresh(prefix: str) -> str:
    """A name no earlier example used."""
    return f"{prefix}{next(_names)}"


# --- strategies ----------------------------------------------------------------------------

SPACES = st.sampled_from(["", " ", "\t", "  "])
MANTISSAS = st.one_of(
    st.integers(0, 10**25).map(str),
    st.from_regex(r"\d{0,3}\.\d{0,3}", fullmatch=True),
    st.sampled_from(["", ".", "1.", ".5", "-1", "+1", "0x10", "1_000", "\u0661", "9" * 120]),
)
EXPONENTS = st.one_of(
    st.just(""),
    st.integers(-(10**9), 10**9).map("e{}".format),
    st.integers(-500, 500).map("E{:+d}".format),
    st.sampled_from(["e", "e+", "e" + "9" * 50, "e-" + "9" * 50]),
)
UNITS = st.sampled_from(
    [
        *("", "B", "kB", "KiB", "MiB", "GiB", "PiB", "Gb", "G", "B/s", "GiB/s", "MB/s", "/s"),
        *("s", "ms", "us", "\u00b5s", "ns", "h", "B /s", "iB"),
    ]
)
QUANTITIES = st.builds(
    lambda a, m, e, b, u, c: f"{a}{m}{e}{b}{u}{c}",
    SPACES,
    MANTISSAS,
    EXPONENTS,
    SPACES,
    UNITS,
    SPACES,
)
NUMBERS = st.one_of(
    st.integers(-10, 5000),
    st.integers(),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64 + 1, 10**40, 10**400, -(10**400)]),
    st.floats(),
)
WORDS = st.sampled_from(
    [
        *("posix", "memory", "s3", "burstbuffer", "global", "node-local", "a", "b", "local"),
        *("$HOME", "~", "$ESDM_FUZZ_UNSET/x", "${ESDM_FUZZ_UNSET}", "a\0b", "\ud800", "x" * 200),
    ]
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, QUANTITIES, WORDS, st.text(max_size=20))
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# What a mapping passed from Python may hold besides what JSON can express
PYTHON_ODDITIES = st.sampled_from(
    [
        *(b"x", (1, 2), frozenset({1}), 1j, Fraction(1, 3), Decimal("1e400"), Decimal("NaN")),
        *(np.int64(5), np.float64("nan"), np.float32(1e30), np.array([1, 2]), np.str_("posix")),
        *(object(), Path("/tmp"), range(3)),
    ]
)
PYTHON_VALUES = st.one_of(JSON_VALUES, PYTHON_ODDITIES)
KEY_NAMES = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)

BACKEND = ("backends", 0)
KEY_PATHS: list[tuple[Any, ...]] = [
    ("backends",),
    ("weights",),
    ("weights", "time"),
    ("weights", "capacity"),
    ("weights", "cost"),
    ("replicas",),
    ("metadata_backend",),
    ("block_size",),
    BACKEND,
    *((*BACKEND, key) for key in ("id", "type", "target", "tier", "accessibility", "drain_to")),
    (*BACKEND, "performance"),
    *((*BACKEND, "performance", key) for key in ("latency_s", "read_bandwidth")),
    *((*BACKEND, "performance", key) for key in ("write_bandwidth", "capacity")),
    (*BACKEND, "limits"),
    (*BACKEND, "limits", "max_fragment_bytes"),
    (*BACKEND, "limits", "threads"),
    (*BACKEND, "options"),
    (*BACKEND, "options", "stripe_count"),
    (*BACKEND, "options", "stripe_size"),
]
NUMERIC_PATHS = [
    path
    for path in KEY_PATHS
    if path[-1]
    in {"time", "capacity", "cost", "replicas", "block_size", "latency_s", "read_bandwidth"}
    | {"write_bandwidth", "max_fragment_bytes", "threads", "stripe_count", "stripe_size"}
]
TABLES = [path for path in KEY_PATHS if path[-1] in {"weights", "performance", "limits", "options"}]
# keys whose errors are about the whole configuration, whatever was changed
CROSS_REFERENCES = ("metadata_backend", "replicas", "backends[0].drain_to")


def site(target: str = "/nonexistent/esdm-fuzz") -> dict:
    """A valid configuration with every table present, for values to be placed in."""
    backend = {"id": "a", "type": "posix", "target": target}
    backend |= {"performance": {}, "limits": {}, "options": {}}
    return {"backends": [backend], "weights": {}}


def placed(config: dict, path: tuple[Any, ...], value: object) -> dict:
    changed = copy.deepcopy(config)
    table = changed
    for step in path[:-1]:
        table = table[step]
    table[path[-1]] = value
    return changed


def path_text(path: tuple[Any, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text


def assert_names_the_key(error: ConfigError, label: str, path: tuple[Any, ...]) -> None:
    message = str(error)
    assert message.startswith(f"{label}: "), message
    named = message[len(label) + 2 :].split(": ", 1)[0]
    changed = path_text(path)
    parent = changed.rsplit(".", 1)[0] if "." in changed else changed
    assert named.startswith(parent) or changed.startswith(named) or named in CROSS_REFERENCES, (
        f"{message!r} does not name {changed}"
    )


# --- configuration values ----------------------------------------------------------------


@FUZZ
@given(path=st.sampled_from(KEY_PATHS), value=PYTHON_VALUES)
def test_any_value_at_any_key(path: tuple[Any, ...], value: object) -> None:
    result = outcome(lambda: load_config(placed(site(), path, value)))
    if not isinstance(result, SiteConfig):
        assert isinstance(result, ConfigError), repr(result)
        assert_names_the_key(result, "<dict>", path)


@FUZZ
@given(path=st.sampled_from(NUMERIC_PATHS), value=st.one_of(NUMBERS, QUANTITIES))
def test_numbers_and_quantities_at_numeric_keys(path: tuple[Any, ...], value: object) -> None:
    result = outcome(lambda: load_config(placed(site(), path, value)))
    if isinstance(result, SiteConfig):
        accepted = _value_at(result, path)
        assert accepted is not None
        assert 0 <= accepted < 2**63 or path[-1] == "stripe_count"
    else:
        assert isinstance(result, ConfigError), repr(result)
        assert_names_the_key(result, "<dict>", path)


def _value_at(config: SiteConfig, path: tuple[Any, ...]) -> Any:
    if path[0] == "backends":
        backend = config.backends[0]
        section = {"performance": backend.performance, "limits": backend.limits}.get(path[2])
        if section is None:
            return backend.options[path[3]]
        return getattr(section, path[3])
    if path[0] == "weights":
        return getattr(config.weights, path[1])
    return getattr(config, path[0])


KNOWN_KEYS = {
    "weights": {"time", "capacity", "cost"},
    "performance": {"latency_s", "read_bandwidth", "write_bandwidth", "capacity"},
    "limits": {"max_fragment_bytes", "threads"},
    "options": {"stripe_count", "stripe_size"},
}


@FUZZ
@given(table=st.sampled_from(TABLES), key=KEY_NAMES, value=JSON_VALUES)
def test_unknown_keys_are_named(table: tuple[Any, ...], key: str, value: object) -> None:
    result = outcome(lambda: load_config(placed(site(), (*table, key), value)))
    if isinstance(result, ConfigError):
        assert_names_the_key(result, "<dict>", (*table, key))
    else:
        assert key in KNOWN_KEYS[table[-1]]


# --- whole configuration documents -----------------------------------------------------------


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("documents")


def load_document(directory: Path, suffix: str, content: str | bytes) -> Any:
    path = directory / (fresh("site") + suffix)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
    result = outcome(lambda: load_config(str(path)))
    if not isinstance(result, SiteConfig):
        assert isinstance(result, ConfigError), repr(result)
        assert str(result).startswith(f"{path}: "), str(result)
    return result


DOCUMENT_KEYS = st.one_of(
    st.sampled_from(["backends", "weights", "replicas", "metadata_backend", "block_size"]),
    st.text(max_size=8),
)
DOCUMENTS = st.one_of(
    st.dictionaries(DOCUMENT_KEYS, JSON_VALUES, max_size=4),
    st.builds(placed, st.builds(site), st.sampled_from(KEY_PATHS), JSON_VALUES),
    JSON_VALUES,
)


@FUZZ
@given(document=DOCUMENTS, cut=st.integers(0, 400), insert=st.text(max_size=3))
def test_json_documents(documents: Path, document: object, cut: int, insert: str) -> None:
    text = json.dumps(document, ensure_ascii=False)
    load_document(documents, ".json", text)
    load_document(documents, ".json", text[:cut] + insert + text[cut + 1 :])  # damaged


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            st.builds(
                "{} = {}".format,
                DOCUMENT_KEYS,
                st.one_of(
                    NUMBERS.map(lambda n: str(n) if not isinstance(n, float) else repr(n)),
                    QUANTITIES.map(json.dumps),
                    st.sampled_from(["inf", "-inf", "nan", "true", "[1, [2]]", "{a = 1}"]),
                    st.sampled_from(["1979-05-27T07:32:00Z", "9" * 5000, "[" * 2000]),
                ),
            ),
            st.sampled_from(["[weights]", "[[backends]]", "[backends.performance]", "[a.b]"]),
            st.sampled_from(['id = "a"', 'type = "posix"', 'target = "/nonexistent/x"']),
            st.text(max_size=12),
        ),
        max_size=8,
    )
)
def test_toml_documents(documents: Path, lines: list[str]) -> None:
    load_document(documents, ".toml", "\n".join(lines))


@FUZZ
@given(content=st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_any_bytes_as_a_configuration_file(documents: Path, content: bytes | str) -> None:
    load_document(documents, ".json", content)
    load_document(documents, ".toml", content)


@pytest.mark.parametrize(
    "text",
    [
        '{"replicas": ' + "9" * 5000 + "}",
        '{"block_size": ' + "9" * 100_000 + "}",
        '{"block_size": 1e400}',
        '{"block_size": "1e100000000 B"}',
        '{"weights": {"time": ' + "9" * 4000 + "}}",
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
    ],
    ids=["int-5000", "int-100000", "float-1e400", "exp-1e8", "weight-4000", "deep", "deep-obj"],
)
def test_huge_documents(documents: Path, text: str) -> None:
    assert isinstance(load_document(documents, ".json", text), ConfigError)


# --- URIs ------------------------------------------------------------------------------------

SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


@FUZZ
@given(
    uri=st.one_of(
        st.text(max_size=30),
        st.text(alphabet="ab1_.-/\\ :\u00e9\0", max_size=20).map("esdm://{}".format),
        st.sampled_from(["esdm:///x", "esdm://x/", "esdm://", "esdm://a//b", "ESDM://a"]),
        st.sampled_from(["esdm://.a", "esdm://a/../b", "esdm://a/./b", "esdm://" + "a" * 10**5]),
        st.sampled_from([None, 1, b"esdm://a", ["esdm://a"]]),
    )
)
def test_uris(uri: object) -> None:
    result = outcome(lambda: container_name(uri))  # type: ignore[arg-type]
    if isinstance(result, str):
        assert uri == "esdm://" + result
        assert all(SEGMENT.fullmatch(segment) for segment in result.split("/"))
    else:
        assert isinstance(result, ValueError), repr(result)
        assert str(result).startswith("uri "), str(result)
        assert len(str(result)) < 300


# --- regions and index keys ------------------------------------------------------------------

REGION_PARTS = st.one_of(
    st.integers(-6, 6).map(str),
    st.builds(
        "{}:{}".format,
        st.sampled_from(["", "-7", "0", "2", "9"]),
        st.sampled_from(["", "-1", "3", "99"]),
    ),
    st.sampled_from(["...", "", ":", "::", "1:2:3", "a", " 1 ", "1_0", "\u0661", "9" * 5000]),
)
VALID_REGION_PARTS = st.one_of(
    st.integers(-4, 4).map(str),
    st.builds(
        "{}:{}".format,
        st.sampled_from(["", "-2", "0", "1", "3"]),
        st.sampled_from(["", "-1", "2", "5"]),
    ),
    st.just("..."),
)
VALID_REGIONS = st.lists(VALID_REGION_PARTS, max_size=2).map(",".join)
REGIONS = st.one_of(
    VALID_REGIONS,
    st.lists(REGION_PARTS, max_size=4).map(",".join),
    st.text(alphabet="0123456789-:, .", max_size=15),
    st.text(max_size=10),
)
SHAPES = st.lists(st.integers(0, 5), max_size=3).map(tuple)


def numpy_selects(model: np.ndarray, key: object) -> np.ndarray | None:
    """What numpy reads for ``key``, or None if numpy refuses it."""
    try:
        return model[key]  # type: ignore[index]
    except Exception:  # numpy's own errors (IndexError, TypeError, ValueError, ...)
        return None


@FUZZ
@given(text=REGIONS, shape=SHAPES)
def test_regions(text: str, shape: tuple[int, ...]) -> None:
    key = outcome(lambda: parse_region(text))
    if isinstance(key, Exception):
        assert isinstance(key, ValueError), repr(key)
        assert str(key).startswith("region "), str(key)
        return
    model = np.arange(int(np.prod(shape))).reshape(shape)
    slab = outcome(lambda: hyperslab(key, shape, "r"))
    expected = numpy_selects(model, key)
    if isinstance(slab, Exception):
        assert isinstance(slab, IndexError) and str(slab).startswith("r: "), repr(slab)
        assert expected is None, f"numpy reads {key}, esdm refuses: {slab}"
    else:
        assert expected is not None, f"esdm reads {key}, numpy refuses"
        np.testing.assert_array_equal(model[slab.slices].reshape(slab.shape), expected)


BOUNDS = st.one_of(
    st.none(),
    st.integers(-7, 7),
    st.integers(),
    st.booleans(),
    st.sampled_from([np.True_, np.int8(2), np.uint64(1), 1.0, "1", np.array(2), Ellipsis]),
)
STEPS = st.one_of(st.none(), st.sampled_from([1, np.int64(1), 2, 0, -1, True, 1.0, 10**30]))
SMALL = st.one_of(st.none(), st.integers(-6, 6))
INDEX_ITEMS = st.one_of(
    st.integers(-6, 6),
    st.builds(slice, SMALL, SMALL),
    st.integers(),
    st.integers(-6, 6).map(np.int64),
    st.integers(0, 6).map(np.uint8),
    st.booleans(),
    st.sampled_from([np.True_, np.False_, None, Ellipsis, 1.5, "0", b"0", [0], (), [], 1j]),
    st.sampled_from([[True, False, True, False], np.array(1), np.array(True), np.array([1])]),
    st.sampled_from([np.array([[0]]), np.arange(4) < 2, np.array(1.0), {0: 1}]),
    st.builds(slice, BOUNDS, BOUNDS, STEPS),
)
INDEX_KEYS = st.one_of(INDEX_ITEMS, st.lists(INDEX_ITEMS, max_size=3).map(tuple))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, np.ndarray]]:
    """An open container with a (4, 5) int32 dataset, and the numpy model of its content."""
    config = site(str(tmp_path_factory.mktemp("keys")))
    container = esdm_hpc.open("esdm://keys", "w", config=config)
    x = container.create_dataset("x", shape=(4, 5), dtype="i4")
    model = np.arange(20, dtype=np.int32).reshape(4, 5)
    x[...] = model
    container.commit()
    yield container, x, model
    container.close()


@FEW
@given(key=INDEX_KEYS, value=st.integers(-100, 100))
def test_index_keys(dataset: tuple[Any, Any, np.ndarray], key: object, value: int) -> None:
    container, x, model = dataset
    expected = numpy_selects(model, key)
    read = outcome(lambda: x[key])
    if isinstance(read, Exception):
        assert isinstance(read, IndexError) and str(read).startswith("/x read: "), repr(read)
    else:
        assert expected is not None, f"esdm reads {key!r}, numpy refuses"
        np.testing.assert_array_equal(read, expected)
        assert read.shape == expected.shape
    written = outcome(lambda: x.__setitem__(key, value))
    if isinstance(written, Exception):
        assert isinstance(written, IndexError), repr(written)
        assert str(written).startswith("/x write: "), str(written)
    else:
        model[key] = value  # type: ignore[index]
        container.commit()
    np.testing.assert_array_equal(x[...], model)  # a refused write changed nothing


# --- dtypes and fill values ----------------------------------------------------------------

DTYPE_NAMES = ["i1", "i2", "i4", "i8", "u1", "u8", "f2", "f4", "f8", "c8", "c16", "?", "b1"]
DTYPE_NAMES += ["bool", "S1", "S5", "U3", "V4", "S0", "U0", "V0", "V", "S", "U", "O", "M8[ns]"]
DTYPE_NAMES += ["m8[s]", "M8", "<i4", ">f8", "|u1", "(2,)i4", "i4,f8", "f16", "g", "G", "int"]
DTYPE_NAMES += ["float", "complex", "str", "bytes", "object", "int128", "float80", "", "xyz"]
DTYPE_NAMES += ["0{", ",", "i4,", "(", "a1", "i4i4"]
DTYPES = st.one_of(
    st.sampled_from(DTYPE_NAMES),
    st.sampled_from([int, float, complex, bool, str, bytes, object, np.int32, np.float64]),
    st.sampled_from([np.void, np.str_, np.bytes_, None, np.dtype("V0"), np.dtype([])]),
    st.sampled_from([np.dtype([("a", "i4"), ("b", "f8")]), np.dtype([("a", "V0")])]),
    st.sampled_from([np.dtype("(0,)i4"), np.dtype([("s", "S0")]), np.dtype("S3")]),
    st.text(max_size=6),
    st.integers(-3, 3),
)
FILLVALUES = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.sampled_from([2**70, -(2**70), 2**64, 2**63, -1, 1.5, 2.7, 1e300, "x", b"x", "", True]),
    st.sampled_from([[1, 2], np.int64(3), 1j, np.array([1.0]), np.float64("nan")]),
)


@FEW
@given(dtype=DTYPES, fillvalue=FILLVALUES)
def test_dtypes_and_fill_values(
    tmp_path_factory: pytest.TempPathFactory, dtype: object, fillvalue: object
) -> None:
    config = site(str(tmp_path_factory.getbasetemp() / "dtypes"))
    uri = f"esdm://{fresh('dtypes')}"
    with esdm_hpc.open(uri, "w", config=config) as container:
        created = outcome(
            lambda: container.create_dataset("d", shape=(3,), dtype=dtype, fillvalue=fillvalue)
        )
        if isinstance(created, Exception):
            message = str(created)
            assert "/d" in message or "dtype" in message or "fillvalue" in message, message
            return
        fill = created.fillvalue
        assert_fill_kept(fillvalue, fill)
        assert outcome(container.commit) == 1
    with esdm_hpc.open(uri, config=config) as reader:  # what was published can be read
        data = outcome(lambda: reader["d"][...])
        assert isinstance(data, np.ndarray), repr(data)
        assert data.shape == (3,)
        assert data.dtype == created.dtype
        filled = np.full(3, fill, dtype=data.dtype)
        if data.dtype.kind == "O":  # variable-length strings
            assert data.tolist() == filled.tolist()
        else:  # bit for bit (NaN fields of compound types compare unequal), or by
            # value: np.full leaves the padding bytes of long doubles undefined
            assert data.tobytes() == filled.tobytes() or data.tolist() == filled.tolist()
        assert type(reader["d"].fillvalue) is type(fill)


def assert_fill_kept(given: object, stored: object) -> None:
    """A number given as fill value is kept (up to the rounding of a float type), not
    silently cast: NaN to INT_MIN, 2.7 to 2, 1j to 0, 2**70 to inf."""
    numbers = (int, float, complex, np.number, np.bool_)
    if not isinstance(given, numbers) or np.asarray(stored).dtype.kind not in "biufc":
        return  # strings, compound types, datetimes: compared by what the reader reads
    kept, wanted = complex(stored), complex(given)  # type: ignore[arg-type]
    kind = np.asarray(stored).dtype
    # rounding to the nearest value of the type, underflow to 0 included, is kept
    atol = float(np.finfo(kind).smallest_subnormal) if kind.kind in "fc" else 0
    assert np.isclose(kept, wanted, rtol=1e-3, atol=atol, equal_nan=True), (
        f"fillvalue {given!r} became {stored!r}"
    )


# --- command lines ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configuration file whose site holds esdm://run1: dataset x (4, 5) and group g,
    both from epoch 1; epochs 0..2."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "site.json"
    config.write_text(json.dumps({"backends": [{"id": "d", "type": "posix", "target": "data"}]}))
    with esdm_hpc.open("esdm://run1", "w", config=str(config)) as container:
        container.create_dataset("x", shape=(4, 5), dtype="i4")[...] = 1
        container.create_group("g")
        container.commit()
        container["x"][0] = 2
    return config


def exit_code(argv: list[str]) -> int:
    """What ``esdm argv`` exits with: cli.main's code, or argparse's SystemExit code for
    the usage errors it finds itself (unknown options, missing arguments, --help)."""

    def run() -> int:
        try:
            return cli.main(argv)
        except SystemExit as exit:
            assert exit.code in (0, 2), exit.code
            return exit.code

    code = outcome(run)
    assert code in (0, 1, 2, 3), repr(code)
    return code


TOKENS = st.one_of(
    st.sampled_from(["ls", "info", "dump", "verify", "gc", "unlock", "vol-env", "frobnicate"]),
    st.sampled_from(["--epoch", "--quiet", "--dry-run", "--force", "-h", "--shell", "csh"]),
    st.sampled_from(["esdm://run1", "esdm:///run1", "esdm://run1/", "esdm://nowhere", "esdm://"]),
    st.sampled_from(["x", "g", "/x", "nothing", "0", "-1", "2", "99", "0:2,1", "...,...", "--"]),
    REGIONS,
    st.text(max_size=12),
)


@FUZZ
@given(argv=st.lists(TOKENS, max_size=6))
def test_any_command_line(
    cli_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # whatever a command line might write lands here
    exit_code(["--config", str(cli_site), *argv])


def dump_exit(region: str, epoch: str | None, uri: str, dataset: str) -> int:
    """The exit code docs/cli.md gives for ``esdm dump`` of these arguments on cli_site."""
    try:
        number = None if epoch is None else int(epoch)
    except ValueError:
        return 2  # --epoch one
    try:
        name = container_name(uri)
    except ValueError:
        return 2
    if name != "run1":
        return 3  # no such container
    if number is not None and not 0 <= number <= 2:
        return 2  # an epoch that does not exist
    if number == 0 or dataset == "nothing":
        return 3  # no such dataset
    if dataset == "g":
        return 2  # dump of a group
    try:
        hyperslab(parse_region(region), (4, 5), "x")
    except ValueError:
        return 2  # region syntax
    except IndexError:
        return 3  # out of bounds
    return 0


@FUZZ
@given(
    region=VALID_REGIONS | REGIONS,
    epoch=st.none() | st.one_of(st.integers(-2, 4).map(str), st.sampled_from(["one", "", "1.0"])),
    uri=st.just("esdm://run1")
    | st.sampled_from(["esdm:///run1", "esdm://run1/", "esdm://nowhere", "x"]),
    dataset=st.sampled_from(["x", "/x"]) | st.sampled_from(["g", "nothing"]),
)
def test_dump_exit_codes(
    cli_site: Path, region: str, epoch: str | None, uri: str, dataset: str
) -> None:
    options = [] if epoch is None else [f"--epoch={epoch}"]
    argv = ["--config", str(cli_site), "dump", *options, "--", uri, dataset, region]
    assert exit_code(argv) == dump_exit(region, epoch, uri, dataset)


@FUZZ
@given(path=st.sampled_from(NUMERIC_PATHS), value=st.one_of(NUMBERS, QUANTITIES, JSON_VALUES))
def test_configuration_errors_are_usage_errors(
    tmp_path_factory: pytest.TempPathFactory, path: tuple[Any, ...], value: object
) -> None:
    root = tmp_path_factory.getbasetemp() / "cli-config"
    root.mkdir(exist_ok=True)
    config = root / (fresh("site") + ".json")
    config.write_text(json.dumps(placed(site(str(root / "data")), path, value)))
    valid = not isinstance(outcome(lambda: load_config(str(config))), Exception)
    assert exit_code(["--config", str(config), "ls"]) == (0 if valid else 2)
