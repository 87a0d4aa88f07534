"""Trigger-based persistence on one rank (`Dataset.keep_last`, esdm_hpc/hooks/triggers.py,
docs/architecture.md §7.4, seed UC 4.4.8).

What every epoch shows equals a plain-Python model of the semantics, for random
trigger patterns: the last N steps are held in memory only, persisted each at its
time index into the epoch the trigger fires in, then every step for the configured
while; close persists what is held, abort drops it, a refused commit keeps it.
In-situ hooks see every step, held or not. The trigger and what it persisted are
"trigger" events, logged before the epoch's commit event, so an on-commit command
due on them runs for that epoch. A SIGKILL during the commit of persisted steps
leaves all of them in the epoch or none. Bad arguments and configuration are
refused naming the trigger. The MPI side is tests/mpi/test_triggers.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.config import ConfigError
from esdm_hpc.epochs import oncommit
from esdm_hpc.epochs.events import EventLog
from esdm_hpc.hooks import CommitContext, HookError, HookWarning
from tests.mpirun import ROOT, mpi_env
from tests.programs import held_steps
from tests.programs.held_steps import SHAPE, anomaly, field, model

from .conftest import site

TRIGGERS = "tests.programs.held_steps"


def steps_shown(config: Any, uri: str, epoch: int | None = None) -> set[int]:
    """The steps of /t epoch ``epoch`` shows, each checked against its field."""
    with esdm_hpc.open(uri, config=config, epoch=epoch) as c:
        data = c["t"][...]
    shown = set()
    for step, row in enumerate(data):
        if row.any():
            expected = field(step)
            assert np.array_equal(row[row != held_steps.SPIKE], expected[row != held_steps.SPIKE])
            shown.add(step)
        # a step not shown is all fill value: nothing half-written
    return shown


def events_of(config: Any, uri: str, *kinds: str) -> list[tuple[str, int, dict]]:
    with esdm_hpc.open(uri, config=config) as c:
        log = EventLog(c.store).read(kinds=list(kinds) or None)
    return [(e.kind, e.epoch, e.fields) for e in log]


def write_steps(
    container: Any, fires: list[bool], keep: int, then: int, shape: tuple[int, ...] = SHAPE
) -> None:
    t = container.create_dataset("t", shape=(len(fires), *shape), dtype="f8")
    t.keep_last(keep, trigger=anomaly, then=then)
    for step, fired in enumerate(fires):
        t[step] = field(step, fired, shape)
        assert container.commit() == step + 1


# --- against the model ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_what_every_epoch_shows_equals_the_model(config: dict, seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = int(rng.integers(4, 14))
    keep, then = int(rng.integers(1, 5)), int(rng.integers(0, 4))
    fires = [bool(f) for f in rng.random(steps) < 0.2]
    expected = model(keep, then, fires)
    with esdm_hpc.open("esdm://m", "w", config=config) as c:
        write_steps(c, fires, keep, then)
    for step in range(steps):
        assert steps_shown(config, "esdm://m", epoch=step + 1) == expected.shown[step], step
    final = expected.shown[-1] | set(expected.at_close)
    with esdm_hpc.open("esdm://m", config=config) as c:
        assert c.epoch == steps + (1 if expected.at_close else 0)  # close's commit: held steps
    assert steps_shown(config, "esdm://m") == final
    logged = events_of(config, "esdm://m", "trigger")
    fired_at = [(epoch, f["cause"]) for _, epoch, f in logged]
    closing = [(steps + 1, "close")] if expected.at_close else []
    assert fired_at == [(s + 1, "trigger") for s in range(steps) if fires[s]] + closing


def test_a_trigger_persists_the_held_steps_at_their_time_indices_then_the_next_ones(
    config: dict,
) -> None:
    fires = [False] * 8
    fires[4] = True
    with esdm_hpc.open("esdm://ex", "w", config=config) as c:
        t = c.create_dataset("t", shape=(0, *SHAPE), maxshape=(None, *SHAPE), dtype="f8")
        t.keep_last(3, trigger=anomaly, then=2, name="spike")
        for step, fired in enumerate(fires):
            t.resize(step + 1, axis=0)
            t[step] = field(step, fired)
            c.commit()
            if step < 4:
                assert not c["t"][...].any()  # held: nothing written yet
    shown = [steps_shown(config, "esdm://ex", epoch=e) for e in range(1, 9)]
    persisted = {1, 2, 3, 4}  # the 3 steps held and the trigger's own
    assert shown == [set()] * 4 + [persisted, persisted | {5}, persisted | {5, 6}] + [
        persisted | {5, 6}
    ]
    with esdm_hpc.open("esdm://ex", config=config) as c:
        assert c.epoch == 9  # close persisted step 7, held since the window ended
        assert c["t"].shape == (8, *SHAPE)
    assert steps_shown(config, "esdm://ex") == {1, 2, 3, 4, 5, 6, 7}
    triggers = events_of(config, "esdm://ex", "trigger")
    assert triggers == [
        ("trigger", 5, {"dataset": "/t", "trigger": "spike", "cause": "trigger", "then": 2,
                        "persisted": [{"epoch": e, "time": [e - 1, e]} for e in (2, 3, 4, 5)]}),
        ("trigger", 9, {"dataset": "/t", "trigger": "spike", "cause": "close", "then": 0,
                        "persisted": [{"epoch": 8, "time": [7, 8]}]}),
    ]  # fmt: skip


def test_in_situ_hooks_see_every_step_while_the_raw_data_is_held(config: dict) -> None:
    def step_mean(context: CommitContext) -> None:
        (block,) = context.blocks
        context.write_part("/insitu/mean", [block.data.mean()], (block.offset[0],), (6,))

    with esdm_hpc.open("esdm://in", "w", config=config) as c:
        t = c.create_dataset("t", shape=(6, *SHAPE), dtype="f8")
        t.keep_last(2, trigger=anomaly)
        t.on_commit(step_mean)
        for step in range(6):
            request = t.write_async(step, field(step, step == 3))
            assert request.done()  # held: copied at the call, nothing to wait for
            c.commit()
    for epoch in range(1, 7):
        with esdm_hpc.open("esdm://in", config=config, epoch=epoch) as c:
            means = c["insitu/mean"][:epoch]
            expected = [field(s, s == 3).mean() for s in range(epoch)]
            np.testing.assert_array_equal(means, expected)  # every step's, held or not
    held = [steps_shown(config, "esdm://in", epoch=e) for e in (3, 4, 6)]
    assert held == [set(), {1, 2, 3}, {1, 2, 3}]


def test_close_persists_what_is_held_and_abort_drops_it(config: dict) -> None:
    with esdm_hpc.open("esdm://cl", "w", config=config) as c:
        write_steps(c, [False] * 5, keep=2, then=0)
    assert steps_shown(config, "esdm://cl", epoch=5) == set()
    assert steps_shown(config, "esdm://cl") == {3, 4}  # epoch 6: close's
    with esdm_hpc.open("esdm://ab", "w", config=config) as c:
        write_steps(c, [False] * 3, keep=2, then=0)
        c.abort()
    with esdm_hpc.open("esdm://ab", config=config) as c:
        assert c.epoch == 3 and not c["t"][...].any()
    assert events_of(config, "esdm://ab", "trigger") == []


def test_a_refused_commit_keeps_what_was_held(config: dict) -> None:
    def refuse_step_3(context: CommitContext) -> None:
        if any(b.offset[0] == 3 for b in context.blocks):
            raise RuntimeError("step 3 is not wanted")

    with esdm_hpc.open("esdm://rf", "w", config=config) as c:
        t = c.create_dataset("t", shape=(6, *SHAPE), dtype="f8")
        t.keep_last(4, trigger=anomaly)  # runs first: its steps are written, then refused
        t.on_commit(refuse_step_3, on_failure="fail", name="picky")
        for step in range(3):
            t[step] = field(step)
            c.commit()
        t[3] = field(3, anomalous=True)  # fires, but the commit is refused
        with pytest.raises(HookError, match="step 3 is not wanted"):
            c.commit()
        assert c.epoch == 3
        t[4] = field(4, anomalous=True)  # fires again: what was held is still held
        assert c.commit() == 4
        assert steps_shown(config, "esdm://rf") == {0, 1, 2, 4}  # step 3 went with its epoch


def test_a_failing_trigger_is_recorded_and_counts_as_not_fired(config: dict) -> None:
    def broken(context: CommitContext) -> bool:
        raise ValueError("the detector broke")

    with esdm_hpc.open("esdm://br", "w", config=config) as c:
        t = c.create_dataset("t", shape=(2, *SHAPE), dtype="f8")
        t.keep_last(2, trigger=broken, name="detector")
        t[0] = field(0, anomalous=True)
        with pytest.warns(HookWarning) as warned:
            assert c.commit() == 1
        assert [str(w.message) for w in warned] == [
            "trigger 'detector' on /t (keep_last 2), epoch 1: failed on ranks [0]: ValueError: "
            "the detector broke; it counts as not fired and the epoch commits, its steps held "
            "(on_failure='record')"
        ]
        assert not t[...].any()
    hooks = events_of(config, "esdm://br", "hook")
    assert [(e, f["hook"], f["when"], f["outcome"]) for _, e, f in hooks] == [
        (1, "detector", "trigger", "failed")
    ]
    assert steps_shown(config, "esdm://br") == {0}  # close persisted it


def test_a_trigger_returning_an_array_fails_saying_why(config: dict) -> None:
    def ambiguous(context: CommitContext) -> np.ndarray:
        return np.array([True, False])

    with esdm_hpc.open("esdm://am", "w", config=config) as c:
        t = c.create_dataset("t", shape=(1, *SHAPE), dtype="f8")
        t.keep_last(1, trigger=ambiguous, on_failure="fail")
        t[0] = field(0)
        with pytest.raises(HookError, match=r"truth value of an array .* is ambiguous"):
            c.commit()
        c.abort()


# --- the event log ---------------------------------------------------------------------------


def test_the_epochs_events_come_before_its_commit_event_and_commands_run_for_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs.txt"
    record = 'echo "$ESDM_EPOCH $ESDM_EVENTS" >> "$0"'
    config = site(tmp_path, on_commit=[{"command": ["sh", "-c", record, str(out)],
                                         "events": ["trigger"]}])  # fmt: skip
    fires = [False, False, True, False, True]
    with esdm_hpc.open("esdm://ev", "w", config=config) as c:
        write_steps(c, fires, keep=2, then=0)
    assert oncommit.wait(20) == 0
    logged = [(kind, epoch) for kind, epoch, _ in events_of(config, "esdm://ev")]
    assert logged == [
        ("commit", 1), ("commit", 2), ("trigger", 3), ("commit", 3), ("commit", 4),
        ("trigger", 5), ("commit", 5),
    ]  # fmt: skip
    seqs = {epoch: seq for seq, (kind, epoch) in enumerate(logged) if kind == "trigger"}
    runs = sorted(line.split() for line in out.read_text().splitlines())
    assert runs == [[str(e), str(seqs[e])] for e in (3, 5)]  # the trigger's own epoch


def test_a_user_event_may_not_pose_as_a_hook_or_trigger_event(config: dict) -> None:
    with esdm_hpc.open("esdm://u", "w", config=config) as c:
        for kind in ("hook", "trigger", "drain"):
            with pytest.raises(ValueError, match=f"'{kind}' is written by esdm itself"):
                c.log_event(kind)


# --- crashes ----------------------------------------------------------------------------------

TRIGGER_EPOCH = held_steps.ANOMALY + 1
# the publication's n-th pass is epoch n - 1's (the creation is epoch 0's)
CRASH_POINTS = [
    ("write.appended", 2),  # between the persisted steps' appends: the first is the held one's
    ("trigger.persisted", 1),
    ("write.synced", TRIGGER_EPOCH),
    ("publish.manifest-written", TRIGGER_EPOCH + 1),
    ("publish.head-renamed", TRIGGER_EPOCH + 1),
]


@pytest.mark.parametrize(("point", "nth"), CRASH_POINTS, ids=lambda p: str(p))
def test_a_kill_during_the_commit_of_persisted_steps_leaves_all_or_none(
    tmp_path: Path, point: str, nth: int
) -> None:
    root = tmp_path / "disk"
    program = ROOT / "tests" / "programs" / "held_steps.py"
    result = subprocess.run(
        [sys.executable, str(program), str(root)],
        capture_output=True, text=True, timeout=120,
        env={**mpi_env(), "ESDM_CRASH": f"{point}:{nth}"}, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    config = {"backends": [{"id": "disk", "type": "posix", "target": str(root)}]}
    fires = [step == held_steps.ANOMALY for step in range(held_steps.STEPS)]
    expected = model(held_steps.KEEP, held_steps.THEN, fires)
    with esdm_hpc.open("esdm://held", config=config) as c:
        last = c.epoch
    assert last in (TRIGGER_EPOCH - 1, TRIGGER_EPOCH)  # the kill may follow the HEAD rename
    assert steps_shown(config, "esdm://held") == expected.shown[last - 1]


# --- refused arguments and configuration --------------------------------------------------------


def test_bad_arguments_are_refused_naming_the_trigger(config: dict) -> None:
    with esdm_hpc.open("esdm://bad", "w", config=config) as c:
        t = c.create_dataset("t", shape=(2, 2), dtype="f8")
        with pytest.raises(ValueError, match="keep is an integer of at least 1, not 0"):
            t.keep_last(0, trigger=anomaly)
        with pytest.raises(ValueError, match="then is an integer of at least 0, not -1"):
            t.keep_last(2, trigger=anomaly, then=-1)
        with pytest.raises(TypeError, match=r"trigger 'x' on /t: int 3 is not callable"):
            t.keep_last(2, trigger=3, name="x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"trigger .* on /t: \(\) cannot be called as"):
            t.keep_last(2, trigger=lambda: True)
        t.keep_last(2, trigger=anomaly)
        with pytest.raises(ValueError, match=r"/t has a trigger already \('.*:anomaly'\)"):
            t.keep_last(3, trigger=anomaly, name="again")


def write_config(tmp_path: Path, triggers: list[dict]) -> str:
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site(tmp_path, triggers=triggers)))
    return str(path)


def test_a_trigger_named_in_the_configuration(tmp_path: Path) -> None:
    config = write_config(tmp_path, [
        {"dataset": "t", "function": f"{TRIGGERS}:anomaly", "keep_last": 2, "then": 1,
         "args": {"threshold": 50_000.0}, "containers": ["runs/*"]},
    ])  # fmt: skip
    fires = [False, False, False, True, False, False]
    for uri in ("esdm://runs/a", "esdm://other"):
        with esdm_hpc.open(uri, "w", config=config) as c:
            t = c.create_dataset("t", shape=(6, *SHAPE), dtype="f8")
            for step, fired in enumerate(fires):
                t[step] = field(step, fired)
                c.commit()
    assert steps_shown(config, "esdm://runs/a", epoch=6) == {1, 2, 3, 4}
    assert steps_shown(config, "esdm://other", epoch=1) == {0}  # no trigger: written


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({}, r"triggers\[0\]\.keep_last: required key is missing"),
        ({"keep_last": 0}, r"triggers\[0\]\.keep_last: must be a positive integer"),
        ({"keep_last": 2, "then": -1}, r"triggers\[0\]\.then: must be a non-negative integer"),
        ({"keep_last": 2, "budget_s": 1}, r"triggers\[0\]\.budget_s: unknown key"),
        ({"keep_last": 2, "function": "nowhere:f"},
         r"triggers\[0\] \(nowhere:f on /t, keep_last 2\): cannot import module 'nowhere'"),
        ({"keep_last": 2, "function": f"{TRIGGERS}:model"},
         r"triggers\[0\] .*: \(keep: .*\) -> 'Expected' cannot be called as \(context\): missing a "
         r"required argument: 'then'"),
    ],
    ids=["keep-missing", "keep-zero", "then", "budget", "module", "signature"],
)  # fmt: skip
def test_malformed_trigger_configuration_is_refused_naming_it(
    tmp_path: Path, entry: dict, problem: str
) -> None:
    spec = {"dataset": "/t", "function": f"{TRIGGERS}:anomaly", **entry}
    config = write_config(tmp_path, [spec])
    with pytest.raises(ConfigError, match=problem):
        esdm_hpc.open("esdm://bad", "w", config=config)


def test_two_configured_triggers_of_one_dataset_are_refused(tmp_path: Path) -> None:
    spec = {"dataset": "/t", "function": f"{TRIGGERS}:anomaly", "keep_last": 2}
    config = write_config(tmp_path, [spec, {**spec, "keep_last": 3}])
    with pytest.raises(ConfigError, match=r"triggers\[1\]: /t has a trigger already"):
        esdm_hpc.open("esdm://dup", "w", config=config)
    # different container patterns that both match: refused at the open
    config = write_config(tmp_path, [spec, {**spec, "containers": ["d*"]}])
    with pytest.raises(
        ConfigError,
        match=r"triggers\[1\] .*: /t of esdm://dup has a trigger already \(triggers\[0\]\)",
    ):
        esdm_hpc.open("esdm://dup", "w", config=config)
