"""In-situ hooks on one rank (esdm_hpc/hooks/, docs/architecture.md §7.4).

A regional mean computed in-situ equals the mean of the raw data read back,
every step, and the derived dataset is in exactly the epochs the raw data is;
on_write hooks see every block (a Numba function too) and feed on_commit hooks;
hooks named in the site configuration apply to every container written, and a
malformed one is refused naming it; a failing hook never loses the raw data (or
refuses the commit when told to); a hook over budget moves to the background
and its outputs land later, saying of which epoch; a writer SIGKILLed during a
hook or the commit of its outputs leaves both the raw and the derived data of
the epoch, or neither. The MPI side is tests/mpi/test_hooks.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.config import ConfigError
from esdm_hpc.epochs import oncommit
from esdm_hpc.epochs.events import EventLog
from esdm_hpc.epochs.history import History
from esdm_hpc.hooks import SOURCE_EPOCH, STRIKES, CommitContext, HookError, HookWarning
from tests.mpirun import ROOT, mpi_env
from tests.programs import insitu_hooks
from tests.programs.insitu_hooks import HI, LO, MEAN, field, regional_mean

from .conftest import site

HOOKS = "tests.programs.insitu_hooks"


def region_mean(data: np.ndarray, lo: tuple[int, ...], hi: tuple[int, ...]) -> float:
    return float(data[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))].mean())


def epochs_with_fragments(container: Any, path: str) -> set[int]:
    return {f.epoch for f in History.load(container.store).records() if f.dataset == path}


def hook_events(config: Any, uri: str) -> list[dict[str, Any]]:
    with esdm_hpc.open(uri, config=config) as c:
        return [e.fields | {"epoch": e.epoch} for e in EventLog(c.store).read(kinds=["hook"])]


# --- what hooks compute ------------------------------------------------------------------


def test_regional_mean_in_situ_equals_the_mean_read_back_every_step(config: dict) -> None:
    raw_epochs = set()
    with esdm_hpc.open("esdm://m", "w", config=config) as c:
        x = c.create_dataset("x", shape=insitu_hooks.SHAPE, dtype="f8")
        y = c.create_dataset("y", shape=(3,), dtype="i4")
        x.on_commit(regional_mean, args={"lo": LO, "hi": HI})
        for step in range(1, 8):
            if step == 4:
                y[...] = step  # an epoch without /x: no mean in it
            else:
                data = field(step)
                for rows in range(0, data.shape[0], 6):  # several blocks per epoch
                    x[rows : rows + 6] = data[rows : rows + 6]
                raw_epochs.add(step)
            assert c.commit() == step
            if step != 4:
                assert c[MEAN][()] == region_mean(x[...], LO, HI)
                assert c[MEAN].attrs[SOURCE_EPOCH] == step
        assert epochs_with_fragments(c, "/x") == raw_epochs
        assert epochs_with_fragments(c, MEAN) == raw_epochs
    for epoch in sorted(raw_epochs):
        with esdm_hpc.open("esdm://m", config=config, epoch=epoch) as c:
            assert c[MEAN][()] == region_mean(c["x"][...], LO, HI)
    logged = hook_events(config, "esdm://m")
    assert [(e["epoch"], e["outcome"], e["computed_from"]) for e in logged] == [
        (e, "ok", e) for e in sorted(raw_epochs)
    ]
    assert logged[0]["outputs"] == [MEAN] and logged[0]["hook"].endswith(":regional_mean")


def test_an_epochs_hook_events_precede_its_commit_event_and_commands_run_for_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs.txt"
    record = 'echo "$ESDM_EPOCH" >> "$0"'
    config = site(tmp_path, on_commit=[{"command": ["sh", "-c", record, str(out)],
                                         "events": ["hook"]}])  # fmt: skip
    with esdm_hpc.open("esdm://order", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4,), dtype="f8")
        c.commit()
        x.on_commit(insitu_hooks.extremes)
        for step in (2, 3):
            x[...] = step
            c.commit()
    assert oncommit.wait(20) == 0
    with esdm_hpc.open("esdm://order", config=config) as c:
        logged = [(e.kind, e.epoch) for e in EventLog(c.store).read()]
    assert logged == [("commit", 1), ("hook", 2), ("commit", 2), ("hook", 3), ("commit", 3)]
    assert sorted(out.read_text().split()) == ["2", "3"]  # in the epoch of the hook event


def test_on_write_sees_every_block_and_feeds_the_on_commit_hooks(config: dict) -> None:
    calls: list[tuple[tuple[int, ...], np.ndarray, int]] = []
    seen: list[CommitContext] = []

    def on_write(block: np.ndarray, offset: tuple[int, ...], comm: Any) -> float:
        with pytest.raises(ValueError, match="read-only"):
            block[...] = 0  # the data being written is not the hook's to change
        calls.append((offset, block.copy(), comm.size))
        return float(block.sum())

    def on_commit(context: CommitContext) -> None:
        seen.append(context)
        total = context.comm.allreduce(sum(r.value for r in context.results))
        context.write("/sums", total)

    with esdm_hpc.open("esdm://w", "w", config=config) as c:
        x = c.create_dataset("x", shape=(8, 4), dtype="i8")
        x.on_write(on_write, name="sum")
        x.on_commit(on_commit)
        x[0:2] = 1
        request = x.write_async(np.s_[2:8], np.arange(24).reshape(6, 4))
        x[7, 3] = 100  # after the request: call order
        request.wait()
        assert c.commit() == 1
        assert [offset for offset, _, _ in calls] == [(0, 0), (2, 0), (7, 3)]
        np.testing.assert_array_equal(calls[1][1], np.arange(24).reshape(6, 4))
        assert {size for _, _, size in calls} == {1}
        (context,) = seen
        assert context.epoch == 1 and context.dataset == "/x" and context.rank == 0
        assert [b.offset for b in context.blocks] == [(0, 0), (2, 0), (7, 3)]
        assert [(r.hook, r.epoch, r.offset) for r in context.results] == [
            ("sum", 1, (0, 0)), ("sum", 1, (2, 0)), ("sum", 1, (7, 3))
        ]  # fmt: skip
        assert c["sums"][()] == 8 + 276 + 100
        with pytest.raises(ValueError, match="the hook has returned"):
            context.write("/late", 1)
        c["x"][0, 0] = 5
        c.commit()
        assert [b.offset for b in seen[1].blocks] == [(0, 0)]  # only the epoch's own
        assert c["sums"][()] == 5


def test_a_numba_function_is_the_fast_path_of_on_write(config: dict) -> None:
    numba = pytest.importorskip("numba", reason="numba does not install for this Python")

    @numba.njit(cache=False)
    def region_sum(block, offset, lo, hi):  # type: ignore[no-untyped-def]
        total, count = 0.0, 0
        for i in range(block.shape[0]):
            for j in range(block.shape[1]):
                r, s = offset[0] + i, offset[1] + j
                if lo[0] <= r < hi[0] and lo[1] <= s < hi[1]:
                    total += block[i, j]
                    count += 1
        return total, count

    blocks_seen = []

    def mean_of_sums(context: CommitContext) -> None:
        blocks_seen.append(len(context.blocks))
        local = (sum(r.value[0] for r in context.results), sum(r.value[1] for r in context.results))
        total, n = context.comm.allreduce(local, op=insitu_hooks.pair_sum)
        context.write(MEAN, total / n)

    with esdm_hpc.open("esdm://nb", "w", config=config) as c:
        x = c.create_dataset("x", shape=insitu_hooks.SHAPE, dtype="f8")
        hook = x.on_write(region_sum, args={"lo": LO, "hi": HI})
        assert not hook.takes_comm and hook.name.endswith("region_sum")
        x.on_commit(mean_of_sums, blocks=False)  # no copy of the writes kept for it
        for step in (1, 2, 3):
            data = field(step)
            x[:12] = data[:12]
            x[12:] = data[12:]
            c.commit()
            assert c[MEAN][()] == region_mean(x[...], LO, HI)
        assert region_sum.signatures  # it ran compiled
        assert blocks_seen == [0, 0, 0]


def test_extremes_and_several_hooks_of_one_dataset(config: dict) -> None:
    with esdm_hpc.open("esdm://ex", "w", config=config) as c:
        x = c.create_dataset("x", shape=(5, 5), dtype="f4")
        x.on_commit(insitu_hooks.extremes)
        x.on_commit(regional_mean, args={"lo": (0, 0), "hi": (5, 5)}, name="mean")
        x[...] = np.arange(25).reshape(5, 5) - 7
        c.commit()
        np.testing.assert_array_equal(c["insitu/extremes"][...], [-7.0, 17.0])
        assert c[MEAN][()] == 5.0


# --- configured hooks ----------------------------------------------------------------------


def write_config(tmp_path: Path, hooks: list[dict]) -> Path:
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site(tmp_path, hooks=hooks)))
    return path


def test_hooks_named_in_the_configuration_apply_to_every_container_written(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, [
        {"dataset": "x", "when": "commit", "function": f"{HOOKS}:regional_mean",
         "args": {"lo": [0, 0], "hi": [2, 2]}},
        {"dataset": "/x", "when": "write", "function": f"{HOOKS}:block_sum", "budget_s": "1 s",
         "containers": ["runs/*"]},
    ])  # fmt: skip
    for uri in ("esdm://runs/a", "esdm://runs/b", "esdm://other"):
        with esdm_hpc.open(uri, "w", config=str(config)) as c:
            assert [h.name for h in c.hooks] == [f"{HOOKS}:regional_mean", f"{HOOKS}:block_sum"][
                : 1 if uri == "esdm://other" else 2
            ]
            c.create_dataset("x", shape=(4, 4), dtype="f8")[...] = np.arange(16.0).reshape(4, 4)
        with esdm_hpc.open(uri, config=str(config)) as c:
            assert c[MEAN][()] == 2.5
            assert len(c.hooks) == 0  # a reader runs none


@pytest.mark.parametrize(
    ("hook", "problem"),
    [
        ({"function": "no_such_module:f"},
         r"hooks\[0\] \(no_such_module:f on /x at commit\): cannot import module 'no_such_module'"),
        ({"function": f"{HOOKS}:missing"}, rf"module '{HOOKS}' has no 'missing'"),
        ({"function": f"{HOOKS}:NOT_CALLABLE"},
         rf"hooks\[0\] \({HOOKS}:NOT_CALLABLE on /x at commit\): int 42 is not callable"),
        ({"function": f"{HOOKS}:not_a_hook"},
         r"\(context: .*, \*, required: .*\) -> 'None' cannot be called as \(context\): "
         r"missing a required argument: 'required'"),
        ({"function": f"{HOOKS}:regional_mean", "args": {"lo": [0]}},
         r"cannot be called as \(context, lo=...\): missing a required argument: 'hi'"),
        ({"when": "write"},
         r"extremes on /x at write\): \(context: .*\) -> 'None' cannot be called as "
         r"\(block, offset\[, comm\]\): too many positional arguments"),
        ({"when": "sometimes"}, r"hooks\[0\]\.when: must be one of write, commit"),
        ({"function": "regional_mean"}, r'hooks\[0\]\.function: must be "module:function"'),
        ({"args": {"1x": 2}}, r"hooks\[0\]\.args\.1x: must be a Python name"),
        ({"budget_s": -1}, r"hooks\[0\]\.budget_s: must be a positive duration"),
        ({"budget": 1}, r"hooks\[0\]\.budget: unknown key \(did you mean 'budget_s'\?\)"),
        ({"on_failure": "ignore"}, r"hooks\[0\]\.on_failure: must be one of record, fail"),
        ({"dataset": "/"}, r"hooks\[0\]\.dataset: must be the path of a dataset"),
        ({"when": "write", "blocks": False}, r"hooks\[0\]\.blocks: is for hooks at commit"),
        ({"blocks": "no"}, r"hooks\[0\]\.blocks: must be true or false"),
    ],
    ids=["module", "missing", "not-callable", "signature", "args", "when-signature", "when",
         "function", "args-key", "budget", "budget-key", "on-failure", "dataset", "blocks",
         "blocks-flag"],
)  # fmt: skip
def test_malformed_hook_configuration_is_refused_naming_the_hook(
    tmp_path: Path, hook: dict, problem: str
) -> None:
    spec = {"dataset": "/x", "when": "commit", "function": f"{HOOKS}:extremes", **hook}
    config = write_config(tmp_path, [spec])
    with pytest.raises(ConfigError, match=problem) as raised:
        esdm_hpc.open("esdm://bad", "w", config=str(config))
    assert str(raised.value).startswith(str(config))
    assert "Traceback" not in str(raised.value)
    # nothing was opened: the next writer gets the lease at once
    esdm_hpc.open("esdm://bad", "w", config=site(tmp_path)).close()


def test_duplicate_configured_hooks_are_refused(tmp_path: Path) -> None:
    spec = {"dataset": "/x", "when": "commit", "function": f"{HOOKS}:extremes"}
    config = write_config(tmp_path, [spec, spec])
    with pytest.raises(ConfigError, match=r"hooks\[1\]: the hook .* is there already"):
        esdm_hpc.open("esdm://dup", "w", config=str(config))


def test_hooks_added_in_python_are_checked(config: dict) -> None:
    with esdm_hpc.open("esdm://py", "w", config=config) as c:
        x = c.create_dataset("x", shape=(2,), dtype="f8")
        with pytest.raises(TypeError, match=r"hook '.*<lambda>' on /x \(on_commit\): \(\) cannot"):
            x.on_commit(lambda: None)
        with pytest.raises(TypeError, match=r"on /x \(on_write\): int 42 is not callable"):
            x.on_write(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="when must be 'write' or 'commit'"):
            c.hooks.add("/x", "sometimes", print)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="budget is a positive number"):
            x.on_commit(insitu_hooks.extremes, budget=0)
        x.on_commit(insitu_hooks.extremes)
        with pytest.raises(ValueError, match=r"named .*extremes' already"):
            x.on_commit(insitu_hooks.extremes)
    with (
        esdm_hpc.open("esdm://py", config=config) as c,
        pytest.raises(PermissionError, match="registering a hook needs mode 'w' or 'a'"),
    ):
        c["x"].on_commit(insitu_hooks.extremes)


# --- failures -------------------------------------------------------------------------------


def failing(context: CommitContext) -> None:
    context.write("/partial", 1.0)  # never lands: the hook fails
    raise ValueError("the analysis broke")


def test_a_failing_hook_never_loses_the_raw_data(config: dict) -> None:
    def failing_on_write(block: np.ndarray, offset: tuple[int, ...]) -> None:
        raise RuntimeError("bad block")

    with esdm_hpc.open("esdm://f", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4,), dtype="f8")
        x.on_commit(failing, name="broken")
        x.on_write(failing_on_write, name="broken-write")
        x[:2] = 1.0
        x[2:] = 2.0
        with pytest.warns(HookWarning) as warned:
            assert c.commit() == 1
        messages = sorted(str(w.message) for w in warned)
        assert messages == [
            "hook 'broken' on /x (on_commit), epoch 1: failed on ranks [0]: ValueError: the "
            "analysis broke; the epoch commits without its outputs (on_failure='record')",
            "hook 'broken-write' on /x (on_write), epoch 1: failed on ranks [0]: RuntimeError: "
            "bad block (2 failed calls); the epoch commits without its outputs "
            "(on_failure='record')",
        ]
        np.testing.assert_array_equal(x[...], [1, 1, 2, 2])
        assert "partial" not in c
    logged = hook_events(config, "esdm://f")
    assert [(e["hook"], e["outcome"], e["epoch"], e["ranks"]) for e in logged] == [
        ("broken-write", "failed", 1, [0]), ("broken", "failed", 1, [0])
    ]  # fmt: skip
    assert logged[1]["error"] == "ValueError: the analysis broke"


def test_a_failing_hook_with_on_failure_fail_refuses_the_commit(config: dict) -> None:
    with esdm_hpc.open("esdm://ff", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4,), dtype="f8")
        c.commit()
        x.on_commit(failing, name="strict", on_failure="fail")
        x[...] = 7.0
        with pytest.raises(
            HookError,
            match=r"hook 'strict' on /x \(on_commit\), epoch 2: failed on ranks \[0\]: "
            r"ValueError: the analysis broke; on_failure='fail': the commit is refused",
        ):
            c.commit()
        assert c.epoch == 1
        np.testing.assert_array_equal(x[...], [0, 0, 0, 0])  # nothing of epoch 2 published
        assert c.commit() == 2  # the epoch was discarded: nothing written, no hook
    with esdm_hpc.open("esdm://ff", config=config) as c:
        assert c.epoch == 2 and "partial" not in c


def test_derived_outputs_that_do_not_fit_fail_the_hook(config: dict) -> None:
    def onto_itself(context: CommitContext) -> None:
        context.write("/x", 0.0)

    def wrong_shape(context: CommitContext) -> None:
        context.write("/y", [1.0, 2.0])

    with esdm_hpc.open("esdm://fit", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4,), dtype="f8")
        c.create_dataset("y", shape=(3,), dtype="f8")
        x.on_commit(onto_itself)
        x.on_commit(wrong_shape)
        x[...] = 1.0
        with pytest.warns(HookWarning) as warned:
            c.commit()
        messages = [str(w.message) for w in warned]
        assert "ValueError: /x: a hook writes derived datasets, not the one it is on" in messages[0]
        assert "the derived dataset /y is float64 (3,), the hook wrote float64 (2,)" in messages[1]
        np.testing.assert_array_equal(c["y"][...], [0, 0, 0])


# --- budgets --------------------------------------------------------------------------------


def test_a_hook_over_budget_moves_to_the_background_and_its_outputs_land_later(
    config: dict,
) -> None:
    args = {"seconds": 0.05, "lo": (0, 0), "hi": (4, 4)}
    landed: dict[int, int] = {}  # epoch -> the epoch its mean was computed from
    with esdm_hpc.open("esdm://b", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4, 4), dtype="f8")
        x.on_commit(insitu_hooks.slow_mean, args=args, budget=0.01, name="slow")
        for step in range(1, 9):
            x[...] = field(step, (4, 4))
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                assert c.commit() == step
            if step == STRIKES:
                (moved,) = [str(w.message) for w in warned]
                assert moved.startswith(
                    "hook 'slow' on /x (on_commit), epoch 3: over its budget of 0.01 s 3 times "
                    "in a row: it runs in the background from now on"
                )
            if MEAN in c:
                landed[step] = int(c[MEAN].attrs[SOURCE_EPOCH])
    assert [landed[e] for e in range(1, STRIKES + 1)] == [1, 2, 3]  # in the commit: the same
    late = {e: s for e, s in landed.items() if e > STRIKES}
    assert all(s < e for e, s in late.items()), landed  # in the background: later
    with esdm_hpc.open("esdm://b", config=config) as c:
        last = c.epoch
        assert c[MEAN].attrs[SOURCE_EPOCH] == 8  # close waited for the last and landed it
    assert last == 9  # an epoch of its own: nothing else was pending
    for epoch in range(1, last + 1):
        with esdm_hpc.open("esdm://b", config=config, epoch=epoch) as c:
            source = int(c[MEAN].attrs[SOURCE_EPOCH])
            with esdm_hpc.open("esdm://b", config=config, epoch=source) as then:
                assert c[MEAN][()] == then["x"][...].mean()  # of its source epoch's data
    logged = hook_events(config, "esdm://b")
    assert [e["outcome"] for e in logged if e["outcome"] != "ok"] == ["background"]
    oks = [(e["epoch"], e["computed_from"]) for e in logged if e["outcome"] == "ok"]
    assert sorted(s for _, s in oks) == list(range(1, 9))  # every step's mean, once
    assert all(s < e for e, s in oks if s > STRIKES)


def test_a_hook_that_may_fail_the_commit_stays_in_it_over_budget(config: dict) -> None:
    args = {"seconds": 0.02, "lo": (0,), "hi": (2,)}
    with esdm_hpc.open("esdm://bf", "w", config=config) as c:
        x = c.create_dataset("x", shape=(2,), dtype="f8")
        x.on_commit(insitu_hooks.slow_mean, args=args, budget=0.001, on_failure="fail")
        for step in range(1, 5):
            x[...] = step
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                c.commit()
            assert c[MEAN].attrs[SOURCE_EPOCH] == step
            if step == STRIKES:
                assert "it stays in the commit (on_failure=fail)" in str(warned[0].message)


def test_an_on_write_hook_over_budget_moves_to_the_background(config: dict) -> None:
    def slow_sum(block: np.ndarray, offset: tuple[int, ...]) -> float:
        time.sleep(0.02)
        return float(block.sum())

    got: list[list[tuple[int, float]]] = []

    def collect(context: CommitContext) -> None:
        got.append([(r.epoch, r.value) for r in context.results])

    with esdm_hpc.open("esdm://bw", "w", config=config) as c:
        x = c.create_dataset("x", shape=(10,), dtype="f8")
        x.on_write(slow_sum, budget=0.005, name="slow")
        x.on_commit(collect)
        for i in range(10):
            x[i] = i
        with pytest.warns(HookWarning, match="its results reach later commits"):
            c.commit()
        c.hooks.finish()  # the background calls of epoch 1 are done now
        x[0] = 100
        c.commit()
    # what was not done at the first commit reached the second, saying it is of epoch 1
    assert sorted(v for e, v in got[0] + got[1] if e == 1) == list(range(10))
    assert all(e in (1, 2) for e, _ in got[1]) and len(got[0]) < 10


# --- crashes --------------------------------------------------------------------------------

CRASH_EPOCHS = 3
# Each point is passed once per epoch 1..CRASH_EPOCHS; the publication's also for
# epoch 0 (the container's creation), so their n-th pass is epoch n - 1's.
CRASH_POINTS = [
    *((point, n)
      for point in ("hook.called", "test.in-hook", "hook.ran", "hook.landed", "write.synced")
      for n in range(1, CRASH_EPOCHS + 1)),
    *((point, n)
      for point in ("publish.manifest-written", "publish.head-renamed")
      for n in range(2, CRASH_EPOCHS + 2)),
]  # fmt: skip


@pytest.mark.parametrize(("point", "nth"), CRASH_POINTS, ids=lambda p: str(p))
def test_a_kill_during_a_hook_or_its_commit_leaves_both_or_neither(
    tmp_path: Path, point: str, nth: int
) -> None:
    root = tmp_path / "disk"
    program = ROOT / "tests" / "programs" / "insitu_hooks.py"
    env = {**mpi_env(), "ESDM_CRASH": f"{point}:{nth}"}
    result = subprocess.run(
        [sys.executable, str(program), str(root), str(CRASH_EPOCHS)],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    printed = [int(line.split()[1]) for line in result.stdout.splitlines()]
    config = {"backends": [{"id": "disk", "type": "posix", "target": str(root)}]}
    last_seen = printed[-1] if printed else 0
    with esdm_hpc.open("esdm://c", config=config) as c:
        assert c.epoch in (last_seen, last_seen + 1)  # the kill may follow the HEAD rename
        committed = set(range(1, c.epoch + 1))
        assert epochs_with_fragments(c, "/x") == committed
        assert epochs_with_fragments(c, MEAN) == committed  # the derived data with the raw
    for epoch in committed:
        with esdm_hpc.open("esdm://c", config=config, epoch=epoch) as c:
            np.testing.assert_array_equal(c["x"][...], field(epoch))
            assert c[MEAN][()] == region_mean(field(epoch), LO, HI)
            assert c[MEAN].attrs[SOURCE_EPOCH] == epoch
