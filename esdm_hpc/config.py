"""The site configuration: which backends exist and what they cost (docs/architecture.md §4.1).

One JSON or TOML file, looked for in this order:

1. the path (or mapping, or `SiteConfig`) passed to `load_config`,
2. the file named by ``$ESDM_CONFIG``,
3. ``./esdm.json`` or ``./esdm.toml``,
4. none: the built-in default, one posix backend in ``$ESDM_ROOT`` or ``./esdm-data``.

The file is checked against the schema in this module (the ``_Key`` tables);
every problem raises a `ConfigError` naming the file, the key path and what is
wrong, e.g. ``esdm.json: backends[1].performance.write_bandwidth: must be a
positive number ..., got -3``. docs/configuration.md documents every key.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from math import inf
from pathlib import Path
from typing import Any, Literal, get_args

from esdm_hpc.errors import EsdmError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

BackendType = Literal["posix", "memory", "burstbuffer", "s3"]
Accessibility = Literal["global", "node-local"]
PerformanceSource = Literal["configured", "learned"]
HookWhen = Literal["write", "commit"]
OnFailure = Literal["record", "fail"]


class ConfigError(EsdmError, ValueError):
    """The site configuration cannot be found, parsed or validated."""


# --- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceModel:
    """What the layout component expects of a backend (seed 6.2.1)."""

    latency_s: float
    read_bandwidth: float  # bytes/s
    write_bandwidth: float  # bytes/s
    capacity: int | None = None  # bytes; None: unbounded


@dataclass(frozen=True)
class Limits:
    """Per-backend bounds on what the core asks of it at once."""

    max_fragment_bytes: int = 64 * MiB
    threads: int = 1


class Options(Mapping[str, Any]):
    """Read-only type-specific backend options whose repr never shows credentials."""

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = dict(items or {})

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        shown = {k: "***" if is_secret(k) else v for k, v in self._items.items()}
        return f"Options({shown!r})"


_SECRET = re.compile(r"secret|password|token|credential|access_key", re.IGNORECASE)


def is_secret(key: str) -> bool:
    """Whether an option holds a credential, to be masked wherever it could be printed."""
    return _SECRET.search(key) is not None


@dataclass(frozen=True, kw_only=True)
class BackendConfig:
    """One configured storage target; `load_config` builds and validates these."""

    id: str
    type: BackendType
    target: str  # directory (posix, burstbuffer: absolute), store name (memory), key prefix (s3)
    tier: str  # "bb", "pfs", "object", "memory" or free text
    accessibility: Accessibility
    performance: PerformanceModel
    limits: Limits = Limits()
    # Excluded from the hash: a mapping is not hashable, and the id identifies a backend.
    options: Mapping[str, Any] = field(default_factory=Options, hash=False)
    drain_to: str | None = None


@dataclass(frozen=True)
class Weights:
    """How the layout component weighs the estimated cost of placing a fragment."""

    time: float = 1.0
    capacity: float = 0.0
    cost: float = 0.0


@dataclass(frozen=True, kw_only=True)
class HookConfig:
    """An in-situ hook the configuration names (docs/configuration.md, "hooks"). Its
    function is imported when a container is opened for writing (`hooks.configured`),
    so tools that never run hooks (gc, verify, readers) need not import it."""

    dataset: str  # the dataset's path, "/tas"
    when: HookWhen
    function: str  # "module:function"
    args: Mapping[str, Any] = field(default_factory=Options, hash=False)  # keyword arguments
    budget_s: float | None = None  # seconds per call; None: no budget
    on_failure: OnFailure = "record"
    containers: tuple[str, ...] | None = None  # name patterns (fnmatch); None: every container
    name: str | None = None  # None: the function
    blocks: bool = True  # on_commit: the context holds this rank's blocks (copies of them)

    @property
    def label(self) -> str:
        """The hook as messages name it."""
        return f"{self.name or self.function} on {self.dataset} at {self.when}"


@dataclass(frozen=True, kw_only=True)
class TriggerConfig:
    """A dataset the configuration holds the last steps of in memory, persisted when a
    trigger fires (docs/configuration.md, "triggers"); imported as `HookConfig`'s."""

    dataset: str  # the dataset's path, "/tas"
    function: str  # "module:function", called as function(context, **args) -> bool
    keep_last: int  # steps held: the last ones committed
    then: int = 0  # steps persisted as written after each trigger
    args: Mapping[str, Any] = field(default_factory=Options, hash=False)  # keyword arguments
    on_failure: OnFailure = "record"
    containers: tuple[str, ...] | None = None  # name patterns (fnmatch); None: every container
    name: str | None = None  # None: the function

    @property
    def label(self) -> str:
        """The trigger as messages name it."""
        return f"{self.name or self.function} on {self.dataset}, keep_last {self.keep_last}"


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    """Everything the layout component and the backends need to know about the site."""

    backends: tuple[BackendConfig, ...]
    weights: Weights = Weights()
    replicas: int = 1
    metadata_backend: str  # id of the backend that holds container metadata
    # checksum block size: what a read verifies at least; small enough that a
    # column through a big fragment reads little, large enough for a small manifest
    block_size: int = 16 * KiB
    # "learned": placement uses the measured latency and bandwidth of each backend
    # (esdm_hpc/measured.py) once known; "configured": the figures above, always
    performance_model: PerformanceSource = "configured"
    # how long a read waits for another node's burst buffer to drain what it needs
    drain_wait: float = 30.0
    on_commit: tuple[OnCommit, ...] = ()  # commands started after commits (below)
    hooks: tuple[HookConfig, ...] = ()  # in-situ hooks of the containers written (below)
    triggers: tuple[TriggerConfig, ...] = ()  # datasets persisted only when triggered (below)
    source: str = "<dict>"  # the file it came from, "<default>" or "<dict>"

    def backend(self, id: str) -> BackendConfig:
        """The backend with this id; KeyError naming the configured ones if there is none."""
        for backend in self.backends:
            if backend.id == id:
                return backend
        known = ", ".join(b.id for b in self.backends)
        raise KeyError(f"{self.source}: no backend {id!r}; configured: {known}")


# --- units -----------------------------------------------------------------------------

# SI prefixes are powers of 1000, IEC ones of 1024. Bits ("Gb") and ambiguous
# shorthands ("1G") are refused rather than guessed: a silent factor of 8 or
# 1.07 in a performance model misplaces data.
_SIZE_UNITS: dict[str, int] = {
    "": 1, "B": 1,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KiB": KiB, "MiB": MiB, "GiB": GiB, "TiB": 1 << 40, "PiB": 1 << 50,
}  # fmt: skip
_TIME_UNITS: dict[str, Fraction] = {
    "": Fraction(1), "s": Fraction(1), "ms": Fraction(1, 10**3),
    "us": Fraction(1, 10**6), "µs": Fraction(1, 10**6), "ns": Fraction(1, 10**9),
}  # fmt: skip
_QUANTITY = re.compile(
    r"\s*(?P<mantissa>\d+(?:\.\d*)?|\.\d+)(?:[eE](?P<exponent>[+-]?\d+))?\s*(?P<unit>\S*?)\s*"
)
# Longer quantity strings are no configuration value (and would make the
# pattern above backtrack for long).
_MAX_QUANTITY_TEXT = 100
# A mantissa of at most _MAX_QUANTITY_TEXT characters with a decimal exponent
# beyond this is larger than every bound, or smaller than every float, so it
# is never computed exactly: Fraction("1e100000000") takes minutes.
_MAX_EXPONENT = 400
MAX_BYTES = 2**63 - 1  # what a signed 64-bit offset reaches: every size is at most this


def _quantity(value: str | float, units: Mapping[str, Fraction | int]) -> Fraction | float:
    """An exact non-negative amount in the base unit of ``units``, or inf when it is
    larger than any float (as ``float("1e400")`` is)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{_show(value)} is not a number")
    if isinstance(value, int | float):
        if value != value or value < 0:  # NaN is unequal to itself; isnan() overflows on big ints
            raise ValueError(f"{_show(value)} is negative or not a number")
        return value if value == inf else Fraction(value)
    match = _QUANTITY.fullmatch(value) if len(value) <= _MAX_QUANTITY_TEXT else None
    if match is None or match["unit"] not in units:
        accepted = ", ".join(u for u in units if u)
        raise ValueError(f"{_show(value)} is not a number with one of the units {accepted}")
    mantissa, exponent = Fraction(match["mantissa"]), int(match["exponent"] or 0)
    if mantissa == 0 or exponent < -_MAX_EXPONENT:
        return Fraction(0)
    if exponent > _MAX_EXPONENT:
        return inf
    return mantissa * Fraction(10) ** exponent * units[match["unit"]]


def _float(amount: Fraction | float) -> float:
    return inf if amount > sys.float_info.max else float(amount)


def _bytes(value: str | float) -> int | float:
    """A whole number of bytes, or inf when it is larger than any float."""
    amount = _quantity(value, _SIZE_UNITS)
    if isinstance(amount, float):
        return amount
    if amount.denominator != 1:
        raise ValueError(f"{_show(value)} is not a whole number of bytes")
    return int(amount)


def _rate(value: str | float) -> float:
    """Bytes per second, or inf when larger than any float."""
    if isinstance(value, str):
        if not value.rstrip().endswith("/s"):
            raise ValueError(f'{_show(value)} needs a rate unit such as "GiB/s"')
        value = value.rstrip()[:-2]
    return _float(_quantity(value, _SIZE_UNITS))


def _seconds(value: str | float) -> float:
    """Seconds, or inf when larger than any float."""
    return _float(_quantity(value, _TIME_UNITS))


def _at_most(amount: float, high: float, value: object, most: str) -> float:
    if amount > high:
        raise ValueError(f"{_show(value)} is more than {most}")
    return amount


def parse_size(value: str | float) -> int:
    """Bytes in ``4096``, ``"64 MiB"`` or ``"1.5 GB"``: a whole number up to `MAX_BYTES`."""
    return int(_at_most(_bytes(value), MAX_BYTES, value, "2**63-1 bytes"))


def parse_bandwidth(value: str | float) -> float:
    """Bytes per second in ``1e9``, ``"2 GiB/s"`` or ``"500 MB/s"``; finite."""
    return _at_most(_rate(value), sys.float_info.max, value, "the largest float")


def parse_duration(value: str | float) -> float:
    """Seconds in ``0.001``, ``"1 ms"`` or ``"50 us"``; finite."""
    return _at_most(_seconds(value), sys.float_info.max, value, "the largest float")


# --- schema ----------------------------------------------------------------------------


class _Invalid(Exception):
    """A problem at a key path; `load_config` prefixes the file it is in."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)


Parser = Callable[[object, str], Any]
_REQUIRED: Any = object()


@dataclass(frozen=True)
class _Key:
    parse: Parser
    default: Any = _REQUIRED


_SHOWN = 60  # characters of a value or key quoted in a message
# No integer key accepts anything near this: larger integers are shown by
# their length (repr refuses more than 4300 digits) and read from JSON as it.
_HUGE_DIGITS = 40
_HUGE = 10**_HUGE_DIGITS


def _show(value: object) -> str:
    """``value`` as written in the file, shortened to fit in a message."""
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int) and abs(value) >= _HUGE:
        return f"an integer of more than {_HUGE_DIGITS} digits"
    if isinstance(value, str):
        shown = json.dumps(value[:_SHOWN], ensure_ascii=False)  # as written in the file
        if len(value) > _SHOWN:
            shown = shown[:-1] + '..."'
        # escapes what no terminal can print (lone surrogates) rather than fail to print
        return shown.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, int | float | None):
        return json.dumps(value)
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _name(key: object) -> str:
    """A key of a table as a message names it."""
    if isinstance(key, str) and len(key) <= _SHOWN and key.isprintable():
        return key
    return _show(key)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _table(raw: object, where: str, schema: Mapping[str, _Key]) -> dict[str, Any]:
    """The keys of ``schema`` read from ``raw``, defaults filled in; null counts as absent."""
    if not isinstance(raw, Mapping):
        raise _Invalid(where, f"must be a table, got {_show(raw)}")
    for key in raw:
        if key not in schema:
            # a key longer than _SHOWN is close to none, and difflib indexes all of it
            short = isinstance(key, str) and len(key) <= _SHOWN
            close = difflib.get_close_matches(key, schema, n=1) if short else []
            hint = (
                f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(schema)}"
            )
            raise _Invalid(_join(where, _name(key)), f"unknown key ({hint})")
    values = {}
    for key, spec in schema.items():
        if raw.get(key) is not None:
            values[key] = spec.parse(raw[key], _join(where, key))
        elif spec.default is _REQUIRED:
            raise _Invalid(_join(where, key), "required key is missing")
        else:
            values[key] = spec.default
    return values


@dataclass(frozen=True)
class _Range:
    """The amounts a key accepts, inclusive, and how messages name the bounds."""

    low: float
    high: float
    least: str
    most: str


def _measure(amount: Callable[[Any], float], expected: str, bounds: _Range) -> Parser:
    """A key holding an amount of a unit; ``expected`` says what a valid value looks like."""

    def parser(value: object, where: str) -> Any:
        try:
            got = amount(value)
        except ValueError:
            got = None
        if got is None or (got <= 0 < bounds.low):  # not even positive: what a value is like
            raise _Invalid(where, f"must be {expected}, got {_show(value)}")
        if not bounds.low <= got <= bounds.high:
            bound = f"at least {bounds.least}" if got < bounds.low else f"at most {bounds.most}"
            raise _Invalid(where, f"must be {bound}, got {_show(value)}")
        return got

    return parser


_SIZE = 'a positive size (bytes or a string like "64 MiB")'
_size = _measure(_bytes, _SIZE, _Range(1, MAX_BYTES, "1 byte", "2**63-1 bytes"))
# The checksum kernels take any size_t; a block is what every read of its
# fragment reads and verifies at least, so a sane bound is far below that.
_block_size = _measure(
    _bytes, _SIZE, _Range(1, GiB, "1 byte", "1 GiB (reads read and verify whole blocks)")
)
# Lustre keeps the stripe size in 32 bits, in units of 64 KiB.
_STRIPE_UNIT = 64 * KiB
_stripe_bytes = _measure(
    _bytes, _SIZE, _Range(1, 4 * GiB - _STRIPE_UNIT, "1 byte", "4 GiB - 64 KiB (Lustre's limit)")
)
# From a modem to a whole machine's burst buffer: beyond either end a
# performance model is a typo, and its cost estimates overflow or divide to nan.
_bandwidth = _measure(
    _rate,
    'a positive number of bytes/s or a string like "2 GiB/s"',
    _Range(1, 10**18, "1 B/s", "1 EB/s"),
)
_duration = _measure(
    _seconds,
    'a non-negative duration (seconds or a string like "50 us")',
    _Range(0, 3600, "0 s", "1 hour"),
)
_MAX_WEIGHT = 1e6  # larger only overflows the cost estimates


def _weight(value: object, where: str) -> float:
    # "not value >= 0" also refuses NaN
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise _Invalid(where, f"must be a non-negative number, got {_show(value)}")
    if value > _MAX_WEIGHT:
        raise _Invalid(where, f"must be at most 1e6 (weights are relative), got {_show(value)}")
    return float(value)


def _integer(low: int, high: int, expected: str, most: str) -> Parser:
    """A key holding an integer from ``low`` to ``high``."""

    def parser(value: object, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _Invalid(where, f"must be {expected}, got {_show(value)}")
        if value > high:
            raise _Invalid(where, f"must be at most {most}, got {_show(value)}")
        return int(value)

    return parser


_threads = _integer(1, 1024, "a positive integer", "1024")
_replicas = _integer(1, 64, "a positive integer", "64")
_stripe_count = _integer(
    -1, 2000, "-1 (all OSTs), 0 (file system default) or a count", "2000 (Lustre's limit)"
)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(where, f"must be a non-empty string, got {_show(value)}")
    return value


def _secret(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid(where, "must be a non-empty string (value not shown: it is a credential)")
    return value


_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _identifier(value: object, where: str) -> str:
    # Ids end up in manifests, log names and messages: keep them plain.
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise _Invalid(
            where, f"must be a name of letters, digits, '_', '.', '-', got {_show(value)}"
        )
    return value


def _choice(allowed: tuple[str, ...]) -> Parser:
    def parser(value: object, where: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _Invalid(where, f"must be one of {', '.join(allowed)}, got {_show(value)}")
        return value

    return parser


_ENV_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _directory(base_dir: str) -> Parser:
    """A directory target: ``$VARS`` and ``~`` expanded, relative to ``base_dir``."""

    def parser(value: object, where: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match[1] or match[2]
            if name not in os.environ:
                raise _Invalid(
                    where, f"environment variable ${_name(name)} is not set (in {_show(value)})"
                )
            return os.environ[name]

        expanded = os.path.expanduser(_ENV_VAR.sub(substitute, _string(value, where)))
        # what no file system takes is refused here rather than at the first write
        if "\0" in expanded:
            raise _Invalid(where, f"must not contain a NUL character, got {_show(value)}")
        try:
            os.fsencode(expanded)
        except UnicodeEncodeError:
            raise _Invalid(where, f"cannot be encoded as a file name, got {_show(value)}") from None
        return os.path.normpath(os.path.join(base_dir, expanded))

    return parser


def _stripe_size(value: object, where: str) -> int:
    size = _stripe_bytes(value, where)
    if size % _STRIPE_UNIT:  # Lustre's own constraint, checked here rather than at first write
        raise _Invalid(where, f"must be a multiple of 64 KiB, got {_show(value)}")
    return size


# S3 parts are uploaded whole; the store refuses parts over 5 GiB.
_part_size = _measure(_bytes, _SIZE, _Range(1, 5 * GiB, "1 byte", "5 GiB (S3's limit)"))
_retries = _integer(0, 100, "a non-negative integer", "100")
_concurrency = _integer(1, 1024, "a positive integer", "1024")
_timeout = _measure(
    _seconds,
    'a positive duration (seconds or a string like "500 ms")',
    _Range(1e-3, 3600, "1 ms", "1 hour"),
)

# Options each backend type understands; the tiers issue extends burstbuffer and s3.
_OPTIONS: dict[str, dict[str, _Key]] = {
    "posix": {"stripe_count": _Key(_stripe_count, None), "stripe_size": _Key(_stripe_size, None)},
    "memory": {},
    # when committed fragments leave it: in the writer's background (esdm_hpc/epochs/
    # stageout.py), or only with esdm drain (default: background)
    "burstbuffer": {"drain": _Key(_choice(("background", "at-end")), None)},
    "s3": {
        "endpoint": _Key(_string, None),
        "bucket": _Key(_string),
        "region": _Key(_string, None),
        "access_key_id": _Key(_secret, None),
        "secret_access_key": _Key(_secret, None),
        "session_token": _Key(_secret, None),
        # defaults in esdm_hpc/backends/s3.py
        "part_size": _Key(_part_size, None),
        "retries": _Key(_retries, None),
        "retry_timeout": _Key(_timeout, None),
        "request_timeout": _Key(_timeout, None),
        "lock_lease": _Key(_timeout, None),
        "concurrency": _Key(_concurrency, None),
    },
}


@dataclass(frozen=True)
class _TypeDefaults:
    tier: str
    accessibility: Accessibility
    performance: PerformanceModel
    target_is_directory: bool


_TYPES: dict[str, _TypeDefaults] = {
    "posix": _TypeDefaults("pfs", "global", PerformanceModel(1e-3, 1.0 * GiB, 1.0 * GiB), True),
    # Global within one process: the memory backend is for tests and in-situ pipelines.
    "memory": _TypeDefaults(
        "memory", "global", PerformanceModel(1e-6, 8.0 * GiB, 8.0 * GiB), False
    ),
    "burstbuffer": _TypeDefaults(
        "bb", "node-local", PerformanceModel(1e-4, 4.0 * GiB, 4.0 * GiB), True
    ),
    "s3": _TypeDefaults("object", "global", PerformanceModel(2e-2, 200e6, 200e6), False),
}


def _performance(default: PerformanceModel) -> Parser:
    def parser(value: object, where: str) -> PerformanceModel:
        schema = {
            "latency_s": _Key(_duration, default.latency_s),
            "read_bandwidth": _Key(_bandwidth, default.read_bandwidth),
            "write_bandwidth": _Key(_bandwidth, default.write_bandwidth),
            "capacity": _Key(_size, default.capacity),
        }
        return PerformanceModel(**_table(value, where, schema))

    return parser


def _limits(value: object, where: str) -> Limits:
    schema = {
        "max_fragment_bytes": _Key(_size, Limits.max_fragment_bytes),
        "threads": _Key(_threads, Limits.threads),
    }
    return Limits(**_table(value, where, schema))


def _options(kind: str) -> Parser:
    def parser(value: object, where: str) -> Options:
        given = _table(value, where, _OPTIONS[kind])
        return Options({k: v for k, v in given.items() if v is not None})

    return parser


def _backend(raw: object, where: str, base_dir: str) -> BackendConfig:
    if not isinstance(raw, Mapping):
        raise _Invalid(where, f"must be a table, got {_show(raw)}")
    if raw.get("type") is None:
        raise _Invalid(f"{where}.type", "required key is missing")
    # The type decides the defaults and options of every other key, so it is read first.
    kind = _choice(tuple(_TYPES))(raw["type"], f"{where}.type")
    defaults = _TYPES[kind]
    schema = {
        "id": _Key(_identifier),
        "type": _Key(_choice((kind,))),
        "target": _Key(_directory(base_dir) if defaults.target_is_directory else _string),
        "tier": _Key(_string, defaults.tier),
        "accessibility": _Key(_choice(get_args(Accessibility)), defaults.accessibility),
        "performance": _Key(_performance(defaults.performance), defaults.performance),
        "limits": _Key(_limits, Limits()),
        "options": _Key(_options(kind), Options()),
        "drain_to": _Key(_identifier, None),
    }
    backend = BackendConfig(**_table(raw, where, schema))
    _check_node_local(backend, where)
    return backend


def _backends(base_dir: str) -> Parser:
    def parser(value: object, where: str) -> tuple[BackendConfig, ...]:
        if not isinstance(value, list):
            raise _Invalid(where, f"must be a list of backend tables, got {_show(value)}")
        if not value:
            raise _Invalid(where, "must list at least one backend")
        return tuple(_backend(item, f"{where}[{i}]", base_dir) for i, item in enumerate(value))

    return parser


def _weights(value: object, where: str) -> Weights:
    names = ("time", "capacity", "cost")
    schema = {name: _Key(_weight, getattr(Weights, name)) for name in names}
    weights = Weights(**_table(value, where, schema))
    if not any((weights.time, weights.capacity)):
        # cost alone would rank every backend alike: placement would silently
        # fall back to the order of the configuration
        raise _Invalid(
            where,
            "at least one weight must be positive: time or capacity "
            "(cost is reserved: no backend has a cost model yet)",
        )
    return weights


def _default_backend() -> BackendConfig:
    """Works out of the box on the local disk: ``esdm://name`` needs no configuration."""
    root = os.environ.get("ESDM_ROOT") or "esdm-data"
    defaults = _TYPES["posix"]
    return BackendConfig(
        id="local",
        type="posix",
        target=os.path.abspath(os.path.expanduser(root)),
        tier=defaults.tier,
        accessibility=defaults.accessibility,
        performance=defaults.performance,
    )


# --- on-commit commands ----------------------------------------------------------------

# An event kind of the container's event log (esdm_hpc/epochs/events.py checks user
# events against it): defined here, where configured kinds are checked too.
EVENT_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class OnCommit:
    """A command the writer's rank 0 starts after a commit (esdm_hpc/epochs/oncommit.py)."""

    command: tuple[str, ...]  # the program and its arguments
    every: int = 1  # after the epochs every, 2 * every, ...
    # instead of every: after an epoch in which an event of one of these kinds was logged
    events: tuple[str, ...] | None = None
    containers: tuple[str, ...] | None = None  # name patterns (fnmatch); None: every container


_every = _integer(1, 10**9, "a positive integer", "1e9")


def _command(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise _Invalid(
            where,
            f'must be a list: the program and its arguments, e.g. ["sbatch", "post.sh"] '
            f'(a shell command is ["sh", "-c", "..."]), got {_show(value)}',
        )
    if not isinstance(value, list) or not value:
        raise _Invalid(where, f"must be a non-empty list of strings, got {_show(value)}")
    if not isinstance(value[0], str) or not value[0].strip():
        raise _Invalid(f"{where}[0]", f"must be the program to run, got {_show(value[0])}")
    for i, item in enumerate(value):
        # exec(2) takes C strings: a NUL would end the argument early
        if not isinstance(item, str) or "\0" in item:
            raise _Invalid(f"{where}[{i}]", f"must be a string without NUL, got {_show(item)}")
    return tuple(value)


def _kinds(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(where, f"must be a non-empty list of event kinds, got {_show(value)}")
    for i, kind in enumerate(value):
        if not isinstance(kind, str) or not EVENT_KIND.fullmatch(kind):
            raise _Invalid(
                f"{where}[{i}]",
                f"must be an event kind (a letter, then up to 63 letters, digits, '_', '.', "
                f"'-'), got {_show(kind)}",
            )
        if kind == "commit":
            raise _Invalid(f"{where}[{i}]", "every commit is 'every = 1', not an event kind")
    return tuple(value)


def _patterns(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(where, f"must be a non-empty list of container names, got {_show(value)}")
    for i, pattern in enumerate(value):
        _string(pattern, f"{where}[{i}]")
        if pattern.startswith("esdm://"):
            raise _Invalid(f"{where}[{i}]", f"a name without esdm://, got {_show(pattern)}")
    return tuple(value)


def _on_commit_entry(raw: object, where: str) -> OnCommit:
    schema = {
        "command": _Key(_command),
        "every": _Key(_every, None),
        "events": _Key(_kinds, None),
        "containers": _Key(_patterns, None),
    }
    values = _table(raw, where, schema)
    if values["every"] is not None and values["events"] is not None:
        raise _Invalid(where, "give every (epochs) or events (kinds), not both")
    return OnCommit(values["command"], values["every"] or 1, values["events"], values["containers"])


def _on_commit(value: object, where: str) -> tuple[OnCommit, ...]:
    if not isinstance(value, list):
        raise _Invalid(where, f"must be a list of command tables, got {_show(value)}")
    return tuple(_on_commit_entry(item, f"{where}[{i}]") for i, item in enumerate(value))


# --- in-situ hooks ---------------------------------------------------------------------

_FUNCTION = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_budget = _measure(
    _seconds,
    'a positive duration (seconds or a string like "50 ms")',
    _Range(1e-6, 3600, "1 us", "1 hour"),
)


def _function(value: object, where: str) -> str:
    if not isinstance(value, str) or not _FUNCTION.fullmatch(value):
        raise _Invalid(
            where,
            f'must be "module:function" (like "mypkg.insitu:regional_mean"), got {_show(value)}',
        )
    return value


def _dataset_path(value: object, where: str) -> str:
    path = _string(value, where).strip("/")
    if not path or "//" in path:
        raise _Invalid(where, f'must be the path of a dataset, like "/tas", got {_show(value)}')
    return "/" + path


def _hook_args(value: object, where: str) -> Options:
    if not isinstance(value, Mapping):
        raise _Invalid(where, f"must be a table of keyword arguments, got {_show(value)}")
    for key in value:
        if not (isinstance(key, str) and key.isidentifier()):
            raise _Invalid(_join(where, _name(key)), "must be a Python name (a keyword argument)")
    return Options(value)


def _hook(value: object, where: str) -> HookConfig:
    schema = {
        "dataset": _Key(_dataset_path),
        "when": _Key(_choice(get_args(HookWhen))),
        "function": _Key(_function),
        "args": _Key(_hook_args, Options()),
        "budget_s": _Key(_budget, None),
        "on_failure": _Key(_choice(get_args(OnFailure)), "record"),
        "containers": _Key(_patterns, None),
        "name": _Key(_string, None),
        "blocks": _Key(_flag, True),
    }
    hook = HookConfig(**_table(value, where, schema))
    if hook.when == "write" and not hook.blocks:
        raise _Invalid(_join(where, "blocks"), "is for hooks at commit (on_write hooks get one)")
    return hook


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(where, f"must be true or false, got {_show(value)}")
    return value


def _hooks(value: object, where: str) -> tuple[HookConfig, ...]:
    if not isinstance(value, list):
        raise _Invalid(where, f"must be a list of hook tables, got {_show(value)}")
    hooks = tuple(_hook(item, f"{where}[{i}]") for i, item in enumerate(value))
    first: dict[tuple[tuple[str, ...] | None, str, str, str], int] = {}
    for i, hook in enumerate(hooks):
        key = (hook.containers, hook.dataset, hook.when, hook.name or hook.function)
        if key in first:
            raise _Invalid(
                f"{where}[{i}]",
                f"the hook {hook.label} is there already ({where}[{first[key]}]): name one",
            )
        first[key] = i
    return hooks


_keep = _integer(1, 10**6, "a positive integer (steps)", "1e6")
_then = _integer(0, 10**9, "a non-negative integer (steps)", "1e9")


def _trigger(value: object, where: str) -> TriggerConfig:
    schema = {
        "dataset": _Key(_dataset_path),
        "function": _Key(_function),
        "keep_last": _Key(_keep),
        "then": _Key(_then, 0),
        "args": _Key(_hook_args, Options()),
        "on_failure": _Key(_choice(get_args(OnFailure)), "record"),
        "containers": _Key(_patterns, None),
        "name": _Key(_string, None),
    }
    return TriggerConfig(**_table(value, where, schema))


def _triggers(value: object, where: str) -> tuple[TriggerConfig, ...]:
    if not isinstance(value, list):
        raise _Invalid(where, f"must be a list of trigger tables, got {_show(value)}")
    triggers = tuple(_trigger(item, f"{where}[{i}]") for i, item in enumerate(value))
    first: dict[tuple[tuple[str, ...] | None, str], int] = {}
    for i, trigger in enumerate(triggers):
        key = (trigger.containers, trigger.dataset)
        if key in first:
            raise _Invalid(
                f"{where}[{i}]",
                f"{trigger.dataset} has a trigger already ({where}[{first[key]}]): one a dataset",
            )
        first[key] = i
    return triggers


# --- cross-references ------------------------------------------------------------------


def _check_ids(backends: tuple[BackendConfig, ...]) -> None:
    first: dict[str, int] = {}
    for i, backend in enumerate(backends):
        if backend.id in first:
            raise _Invalid(
                f"backends[{i}].id",
                f"duplicate backend id {backend.id!r} (also backends[{first[backend.id]}])",
            )
        first[backend.id] = i


def _check_node_local(backend: BackendConfig, where: str) -> None:
    """Node-local storage is a burst buffer, whose data drains to a global tier:
    anything else there would be lost with the node."""
    local = backend.accessibility == "node-local"
    if local != (backend.type == "burstbuffer"):
        problem = "must be node-local" if not local else "only a burstbuffer backend is node-local"
        raise _Invalid(f"{where}.accessibility", problem)
    if local and backend.drain_to is None:
        raise _Invalid(
            f"{where}.drain_to",
            "required for a burst buffer: the global backend its data drains to "
            "(node-local data is lost with the node)",
        )
    if not local and backend.drain_to is not None:
        raise _Invalid(f"{where}.drain_to", "only a burst buffer drains")


def _check_drains(backends: tuple[BackendConfig, ...]) -> None:
    by_id = {b.id: b for b in backends}
    for i, backend in enumerate(backends):
        if backend.drain_to is None:
            continue
        where = f"backends[{i}].drain_to"
        target = by_id.get(backend.drain_to)
        if target is None:
            raise _Invalid(
                where, f"no backend {backend.drain_to!r}; configured: {', '.join(by_id)}"
            )
        if target.accessibility != "global":
            raise _Invalid(where, f"backend {target.id!r} is node-local; drains go to a global one")


def _metadata_backend(chosen: str | None, backends: tuple[BackendConfig, ...]) -> str:
    """The named backend, else the first global posix one, else the first global one."""
    global_ids = [b.id for b in backends if b.accessibility == "global"]
    if chosen is None:  # there is one: every burst buffer drains to a global backend
        posix = [b.id for b in backends if b.accessibility == "global" and b.type == "posix"]
        return (posix or global_ids)[0]
    if chosen not in {b.id for b in backends}:
        known = ", ".join(b.id for b in backends)
        raise _Invalid("metadata_backend", f"no backend {chosen!r}; configured: {known}")
    if chosen not in global_ids:
        raise _Invalid(
            "metadata_backend", f"backend {chosen!r} is node-local; every rank must see metadata"
        )
    return chosen


def _check_replicas(replicas: int, backends: tuple[BackendConfig, ...]) -> None:
    global_ids = [b.id for b in backends if b.accessibility == "global"]
    if replicas > len(global_ids):
        raise _Invalid(
            "replicas",
            f"{replicas} replicas need as many global backends, "
            f"only {len(global_ids)} configured ({', '.join(global_ids) or 'none'})",
        )


def _site(raw: object, base_dir: str, source: str) -> SiteConfig:
    values = _table(
        raw,
        "",
        {
            "backends": _Key(_backends(base_dir), None),
            "weights": _Key(_weights, Weights()),
            "replicas": _Key(_replicas, 1),
            "metadata_backend": _Key(_identifier, None),
            "block_size": _Key(_block_size, SiteConfig.block_size),
            "performance_model": _Key(
                _choice(get_args(PerformanceSource)), SiteConfig.performance_model
            ),
            "drain_wait": _Key(_duration, SiteConfig.drain_wait),
            "hooks": _Key(_hooks, ()),
            "triggers": _Key(_triggers, ()),
            "on_commit": _Key(_on_commit, ()),
        },
    )
    backends = values["backends"] or (_default_backend(),)
    _check_ids(backends)
    _check_drains(backends)
    metadata_backend = _metadata_backend(values["metadata_backend"], backends)
    _check_replicas(values["replicas"], backends)
    return SiteConfig(
        backends=backends,
        weights=values["weights"],
        replicas=values["replicas"],
        metadata_backend=metadata_backend,
        block_size=values["block_size"],
        performance_model=values["performance_model"],
        drain_wait=values["drain_wait"],
        hooks=values["hooks"],
        triggers=values["triggers"],
        on_commit=values["on_commit"],
        source=source,
    )


# --- finding and reading the file ------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    path: Path
    named_by: str  # who named the file, for "cannot read": "" or " named by $ESDM_CONFIG"


def _locate(source: str | os.PathLike[str] | None) -> _Found | None:
    if source is not None:
        return _Found(Path(source), "")
    named = os.environ.get("ESDM_CONFIG")
    if named:  # an empty value counts as unset, as shells make unsetting awkward
        return _Found(Path(named), " named by $ESDM_CONFIG")
    present = [Path(name) for name in ("esdm.json", "esdm.toml") if Path(name).is_file()]
    if len(present) > 1:
        raise ConfigError(
            f"both esdm.json and esdm.toml exist in {os.getcwd()}: keep one or set $ESDM_CONFIG"
        )
    return _Found(present[0], "") if present else None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would silently keep the last of two equal keys.
    table: dict[str, Any] = {}
    for key, value in pairs:
        if key in table:
            raise ValueError(f"duplicate key {_name(key)!r}")
        table[key] = value
    return table


def _json_integer(text: str) -> int:
    # int() refuses more than 4300 digits; every integer key is bounded far
    # below _HUGE, so a longer integer is read as ±_HUGE, refused wherever it is.
    if len(text.lstrip("-")) > _HUGE_DIGITS:
        return -_HUGE if text.startswith("-") else _HUGE
    return int(text)


def _read(found: _Found) -> object:
    label = str(found.path)
    try:
        text = found.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{label}: cannot read the configuration{found.named_by}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # a NUL in the path, which no file system takes
        raise ConfigError(
            f"{label}: cannot read the configuration{found.named_by}: {exc}"
        ) from None
    try:
        if found.path.suffix.lower() == ".toml":
            return _parse_toml(text, label)
        return _parse_json(text, label)
    except RecursionError:
        raise ConfigError(f"{label}: nested too deeply to be a configuration") from None


def _parse_toml(text: str, label: str) -> object:
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(f"{label}: invalid TOML: {exc}") from None


def _parse_json(text: str, label: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=_json_integer)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{label}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{label}: invalid JSON: {exc}") from None


def _validated(raw: object, label: str, source: str, base_dir: str) -> SiteConfig:
    try:
        return _site(raw, base_dir, source)
    except _Invalid as exc:
        raise ConfigError(f"{label}: {exc}") from None


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | SiteConfig | None = None,
) -> SiteConfig:
    """The validated site configuration (see the module docstring for where it is looked for).

    Relative directory targets are resolved against the configuration file's
    directory, or the current directory for a mapping or the default.
    """
    if isinstance(source, SiteConfig):
        return source
    if isinstance(source, Mapping):
        return _validated(source, "<dict>", "<dict>", os.getcwd())
    found = _locate(source)
    if found is None:
        return _validated({}, "<default>", "<default>", os.getcwd())
    raw = _read(found)
    path = os.path.abspath(found.path)
    return _validated(raw, str(found.path), path, os.path.dirname(path))
