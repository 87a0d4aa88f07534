"""The event log and subscriptions (esdm_hpc/epochs/events.py, docs/architecture.md §7.4).

Commits, gc runs and user events land in order with their fields; a torn or
damaged event object leaves the others readable and the next append works;
appenders SIGKILLed at random points of their appends (50 processes) lose no
event they acknowledged and leave no number without a readable event;
`watch` wakes on commits of another process within 2 s, through file-system
notifications and through the polling fallback, and `esdm watch` sees each
epoch (and commit event) of a writer committing 100 epochs at full speed
exactly once; `esdm events` and `esdm watch` print them with the documented
exit codes.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.backends import BackendError, open_backend
from esdm_hpc.config import load_config
from esdm_hpc.epochs import events
from esdm_hpc.epochs.events import Event, EventLog
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import ContainerNotFoundError

from .conftest import site

URI = "esdm://ev"
# Commits one epoch every INTERVAL seconds and prints "<epoch> <monotonic time>" after
# each (CLOCK_MONOTONIC is one clock for every process of the machine), or logs a
# user event "note" after each commit when asked.
WRITER = """
import sys, time, esdm_hpc
config, count, interval, note = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
with esdm_hpc.open("esdm://ev", "a", config=config) as c:
    for step in range(count):
        time.sleep(interval)
        c["v"][0] = step
        epoch = c.commit()
        if note == "yes":
            c.log_event("note", step=step)
        print(epoch, time.monotonic(), flush=True)
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A site file with one posix backend, and the container esdm://ev at epoch 1."""
    monkeypatch.delenv("ESDM_WATCH", raising=False)
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site(tmp_path)))
    with esdm_hpc.open(URI, "w", config=str(path)) as c:
        c.create_dataset("v", shape=(4,), dtype="i8")
    return str(path)


def store_of(config: Any) -> ContainerStore:
    siteconfig = load_config(config)
    backends = {b.id: open_backend(b) for b in siteconfig.backends}
    return ContainerStore("ev", backends, siteconfig.metadata_backend)


def events_dir(config_file: str) -> Path:
    return Path(config_file).parent / "disk/containers/ev/events"


def esdm(*argv: str) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "esdm_hpc.cli", *argv], capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


# --- the log ------------------------------------------------------------------------------


def test_commits_gc_and_user_events_in_order_with_their_fields(config_file: str) -> None:
    with esdm_hpc.open(URI, "a", config=config_file) as c:
        c["v"][0] = 1
        assert c.commit() == 2
        note = c.log_event("note", step=7, what=["a", 1.5])
        c["v"][1] = 2
    # what an interrupted atomic write leaves: garbage for gc
    (events_dir(config_file).parent / ".esdm-tmp-0123").write_bytes(b"8 bytes!")
    assert cli.main(["--config", config_file, "gc", URI, "--quiet"]) == 0
    assert cli.main(["--config", config_file, "gc", URI, "--quiet"]) == 0  # no garbage: no event
    logged = EventLog(store_of(config_file)).read()
    assert [(e.seq, e.kind, e.epoch) for e in logged] == [
        (0, "commit", 1), (1, "commit", 2), (2, "note", 2), (3, "commit", 3), (4, "gc", 3)
    ]  # fmt: skip
    assert logged[2] == note and note.fields == {"step": 7, "what": ["a", 1.5]}
    commit = logged[3].fields
    assert commit["ranks"] == 1 and commit["who"]["pid"] == os.getpid()
    assert set(commit["who"]) == {"host", "pid", "argv", "slurm_job"}
    assert logged[4].fields["objects"] == 1 and logged[4].fields["bytes"] == 8
    assert [e.time for e in logged] == sorted(e.time for e in logged)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.from_regex(events.KIND, fullmatch=True).filter(
                lambda k: k not in events.RESERVED_KINDS
            ),
            st.dictionaries(
                st.text(max_size=5),
                st.recursive(
                    st.none()
                    | st.booleans()
                    | st.integers()
                    | st.text(max_size=8)
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: (
                        st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
                    ),
                    max_leaves=6,
                ),
                max_size=3,
            ),
        ),
        max_size=6,
    )
)
def test_user_events_read_back_as_logged(logged: list[tuple[str, dict]]) -> None:
    config = {"backends": [{"id": "m", "type": "memory", "target": os.urandom(8).hex()}]}
    with esdm_hpc.open(URI, "w", config=config) as c:
        appended = [c.log_event(kind, **fields) for kind, fields in logged]
    assert [(e.kind, e.fields) for e in appended] == logged
    assert EventLog(store_of(config)).read() == appended
    kinds = {kind for kind, _ in logged[:1]}
    assert EventLog(store_of(config)).read(kinds=kinds) == [e for e in appended if e.kind in kinds]


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[: len(data) // 2], lambda data: data.replace(b"7", b"8"), lambda _: b""],
    ids=["truncated", "changed", "empty"],
)
def test_torn_event_leaves_the_others_readable_and_the_next_append_works(
    config_file: str, caplog: pytest.LogCaptureFixture, damage: Any
) -> None:
    with esdm_hpc.open(URI, "a", config=config_file) as c:
        c.log_event("note", step=7)
        last = events_dir(config_file) / "000000000001.json"
        last.write_bytes(damage(last.read_bytes()))  # a torn (or damaged) newest event
        # a crash inside create_exclusive leaves at most its temporary object
        (events_dir(config_file) / ".esdm-tmp-deadbeef").write_bytes(b'{"seq": 9')
        assert [e.seq for e in EventLog(c.store).read()] == [0]  # epoch 1's commit
        assert "000000000001.json: damaged or torn event, skipped" in caplog.text
        after = c.log_event("after", ok=True)
    assert after.seq == 2
    assert [(e.seq, e.kind) for e in EventLog(store_of(config_file)).read()] == [
        (0, "commit"), (2, "after")
    ]  # fmt: skip
    assert cli.main(["--config", config_file, "gc", URI, "--quiet"]) == 0
    left = sorted(p.name for p in events_dir(config_file).iterdir())
    assert left == [
        "000000000000.json",
        "000000000001.json",
        "000000000002.json",
        "000000000003.json",
    ]  # fmt: skip (the temporary object went, gc logged)


KILL_TRIALS = 50


def _append_until_killed(c: esdm_hpc.Container, trial: int, ack: int) -> None:
    """A forked child: log events without end, acknowledging each once log_event returned."""
    try:
        for i in itertools.count():
            event = c.log_event("trial", trial=trial, i=i)
            os.write(ack, f"{event.seq} {i}\n".encode())  # one write: whole lines only
    finally:
        os._exit(1)  # never back into pytest


def test_every_acknowledged_event_survives_sigkill_during_appends(config_file: str) -> None:
    rng = random.Random(15)
    log = EventLog(store_of(config_file))
    acked_total, interrupted = 0, 0
    left: set[str] = set()  # the temporary objects of interrupted appends
    with esdm_hpc.open(URI, config=config_file) as c:
        for trial in range(KILL_TRIALS):
            before = log.last_seq()
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                _append_until_killed(c, trial, write_end)
            os.close(write_end)
            time.sleep(rng.uniform(0.002, 0.04))  # a random point of some append
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            with os.fdopen(read_end, "rb") as acks:
                acked = [tuple(map(int, line.split())) for line in acks.read().splitlines()]
            stored = log.read(after=before)
            # every acknowledged event, as acknowledged; at most one more, the one
            # whose acknowledgement the kill prevented
            assert [(e.seq, e.fields["i"]) for e in stored[: len(acked)]] == acked
            assert len(stored) - len(acked) in (0, 1)
            assert all(e.kind == "trial" and e.fields["trial"] == trial for e in stored)
            acked_total += len(acked)
            temporary = {p.name for p in events_dir(config_file).glob(".esdm-tmp-*")}
            interrupted += bool(temporary - left)
            left = temporary
    assert acked_total >= KILL_TRIALS, "the appenders were killed before they appended"
    # some were killed inside create_exclusive (its temporary object left), not only
    # between appends
    assert interrupted > 0
    # every number taken holds a readable event: no append was torn
    code, out, err = esdm("--config", config_file, "events", URI, "--json")
    assert code == 0 and err == "", err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == list(range(log.last_seq() + 1))


def test_a_commit_event_that_cannot_be_written_never_fails_the_commit(
    config_file: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> Event:
        raise BackendError("backend 'disk': events: no space left")

    monkeypatch.setattr(EventLog, "append", refuse)
    with esdm_hpc.open(URI, "a", config=config_file) as c:
        c["v"][0] = 5
        assert c.commit() == 2
    monkeypatch.undo()
    assert store_of(config_file).head().epoch == 2
    assert "event 'commit' of epoch 2 not logged: backend 'disk': events: no space" in caplog.text
    with esdm_hpc.open(URI, config=config_file) as c:
        assert c["v"][0] == 5


@pytest.mark.parametrize(
    ("kind", "fields", "error", "message"),
    [
        ("commit", {}, ValueError, "'commit' is written by esdm itself"),
        ("1st", {}, ValueError, "event kind '1st'"),
        ("note", {"data": b"raw"}, TypeError, "field 'data' must be JSON data"),
        ("note", {"x": float("nan")}, TypeError, "field 'x' must be JSON data"),
    ],
)
def test_log_event_refuses_bad_kinds_and_fields(
    config_file: str, kind: str, fields: dict, error: type, message: str
) -> None:
    with esdm_hpc.open(URI, config=config_file) as c, pytest.raises(error, match=message):
        c.log_event(kind, **fields)
    with pytest.raises(ValueError, match="is closed"):
        c.log_event("note")


# --- watch --------------------------------------------------------------------------------


def collect(
    iterator: Iterator[Any], count: int
) -> tuple[threading.Thread, list[tuple[Any, float]]]:
    """``iterator``'s first ``count`` items, each with when it came, gathered by a thread."""
    got: list[tuple[Any, float]] = []

    def run() -> None:
        with closing(iterator):  # type: ignore[type-var]
            for item in iterator:
                got.append((item, time.monotonic()))
                if len(got) == count:
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


def run_writer(config_file: str, count: int, note: bool = False) -> list[tuple[int, float]]:
    done = subprocess.run([sys.executable, "-c", WRITER, config_file, str(count), "0.3",
                           "yes" if note else "no"],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return [(int(e), float(t)) for e, t in (line.split() for line in done.stdout.splitlines())]


@pytest.mark.parametrize("mode", ["notified", "polled"])
def test_watch_wakes_on_each_commit_of_another_process(
    config_file: str, mode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if mode == "polled":
        monkeypatch.setenv("ESDM_WATCH", "poll")
    caplog.set_level(logging.WARNING)
    thread, got = collect(esdm_hpc.watch(URI, config=config_file, timeout=8), 3)
    time.sleep(0.3)  # the watcher's first look
    committed = run_writer(config_file, 3)
    deadline = time.monotonic() + 3
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [item for item, _ in got] == [epoch for epoch, _ in committed] == [2, 3, 4]
    for (_, woke), (epoch, at) in zip(got, committed, strict=True):
        assert woke - at < 2, f"epoch {epoch} seen {woke - at:.2f} s after its commit"
    polling = "no file-system notifications (ESDM_WATCH=poll); polling every 0.5 s"
    assert (polling in caplog.text) == (mode == "polled")
    thread.join(10)
    assert not thread.is_alive()


def test_watch_of_kinds_yields_those_events_of_another_process(config_file: str) -> None:
    thread, got = collect(esdm_hpc.watch(URI, config=config_file, kinds=["note"], timeout=6), 2)
    time.sleep(0.3)
    committed = run_writer(config_file, 2, note=True)
    deadline = time.monotonic() + 3
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(e.kind, e.epoch, e.fields) for e, _ in got] == [
        ("note", epoch, {"step": step}) for step, (epoch, _) in enumerate(committed)
    ]
    thread.join(10)


def watching(pid: int) -> bool:
    """Whether process ``pid`` has an inotify watch (it took its first look before)."""
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    for entry in fdinfo.iterdir():
        try:
            if "inotify wd:" in entry.read_text():
                return True
        except OSError:  # the descriptor closed meanwhile
            continue
    return False


def test_esdm_watch_sees_every_epoch_of_a_fast_writer_once(config_file: str) -> None:
    count = 100
    argv = [sys.executable, "-m", "esdm_hpc.cli", "--config", config_file, "watch", URI,
            "--count", str(count), "--timeout", "60", "--json"]  # fmt: skip
    watchers = [subprocess.Popen(argv + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for extra in ([], ["--kind", "commit"])]  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not all(watching(w.pid) for w in watchers):
            assert time.monotonic() < deadline, "the watchers did not start"
            assert all(w.poll() is None for w in watchers), watchers[0].communicate()
            time.sleep(0.05)
        done = subprocess.run([sys.executable, "-c", WRITER, config_file, str(count), "0", "no"],
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        committed = [int(line.split()[0]) for line in done.stdout.splitlines()]
        outputs = [w.communicate(timeout=30) for w in watchers]
    finally:
        for w in watchers:
            w.kill()
            w.wait()
    assert committed == list(range(2, count + 2))
    (epochs, err), (commits, _) = outputs
    assert [w.returncode for w in watchers] == [0, 0], err
    assert [json.loads(line)["epoch"] for line in epochs.splitlines()] == committed
    commit_events = [json.loads(line) for line in commits.splitlines()]
    assert [e["epoch"] for e in commit_events] == committed
    assert len({e["seq"] for e in commit_events}) == count


@pytest.mark.parametrize("mode", ["notified", "polled", "memory"])
def test_watch_ends_on_timeout(
    config_file: str, mode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config: Any = config_file
    if mode == "polled":
        monkeypatch.setenv("ESDM_WATCH", "poll")
    if mode == "memory":
        config = {"backends": [{"id": "m", "type": "memory", "target": os.urandom(8).hex()}]}
        esdm_hpc.open(URI, "w", config=config).close()
    start = time.monotonic()
    assert list(esdm_hpc.watch(URI, config=config, timeout=0.4)) == []
    assert 0.4 <= time.monotonic() - start < 1.5
    if mode == "memory":
        assert "metadata backend 'm' is of type 'memory'" in caplog.text


def test_watch_of_a_missing_container_raises(config_file: str) -> None:
    with pytest.raises(ContainerNotFoundError, match="esdm://nowhere: no such container"):
        next(esdm_hpc.watch("esdm://nowhere", config=config_file, timeout=1))


# --- the commands ---------------------------------------------------------------------------


def test_esdm_events_prints_filters_and_json(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with esdm_hpc.open(URI, "a", config=config_file) as c:
        c["v"][0] = 1
        c.commit()
        c.log_event("note", step=1)
    capsys.readouterr()
    assert cli.main(["--config", config_file, "events", URI]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "commit" in lines[0] and "note       step=1" in lines[2]
    assert cli.main(["--config", config_file, "events", URI, "--kind", "note", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) | {"time": None} == {
        "seq": 2, "kind": "note", "epoch": 2, "fields": {"step": 1}, "time": None
    }  # fmt: skip
    assert cli.main(["--config", config_file, "events", URI, "--since-epoch", "2", "--json"]) == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [1, 2]
    assert cli.main(["--config", config_file, "events", "esdm://nowhere"]) == cli.EXIT_ERROR
    assert "esdm events: esdm://nowhere: no such container" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        cli.main(["--config", config_file, "events", URI, "--since-epoch", "x"])
    assert exited.value.code == cli.EXIT_USAGE


def test_esdm_watch_prints_counts_and_times_out(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def commit_twice() -> None:
        time.sleep(0.3)
        with esdm_hpc.open(URI, "a", config=config_file) as c:
            for step in range(2):
                c["v"][0] = step
                c.commit()

    writer = threading.Thread(target=commit_twice)
    writer.start()
    assert cli.main(["--config", config_file, "watch", URI, "--count", "2", "--timeout", "8"]) == 0
    writer.join()
    assert capsys.readouterr().out.splitlines() == [f"{URI} epoch 2", f"{URI} epoch 3"]
    argv = ["--config", config_file, "watch", URI, "--count", "1", "--timeout", "0.2", "--json"]
    assert cli.main(argv) == cli.EXIT_TIMEOUT
    assert "esdm watch: esdm://ev: 0 of 1 before the timeout of 0.2 s" in capsys.readouterr().err
    assert cli.main(["--config", config_file, "watch", URI, "--timeout", "0.2"]) == 0
    assert cli.main(["--config", config_file, "watch", URI, "--count", "0"]) == cli.EXIT_USAGE
    assert cli.main(["--config", config_file, "watch", "esdm://nowhere"]) == cli.EXIT_ERROR


def test_esdm_watch_ends_cleanly_on_ctrl_c(config_file: str) -> None:
    watcher = subprocess.Popen([sys.executable, "-m", "esdm_hpc.cli", "--config", config_file,
                                "watch", URI], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    time.sleep(1.5)  # started and watching
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=10)
    assert watcher.returncode == cli.EXIT_INTERRUPTED, err
    assert "Traceback" not in err and out == ""


def test_esdm_events_entry_point(config_file: str) -> None:
    code, out, err = esdm("--config", config_file, "events", URI, "--json")
    assert code == 0, err
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["commit"]
