"""On-commit commands (esdm_hpc/epochs/oncommit.py, docs/architecture.md §7.4).

A configured command runs once after each committed epoch (or every Nth, or
after an epoch in which an event of given kinds was logged; for the
containers named), with the container, the epoch and the configuration file
in its environment and without the MPI launcher's wiring; the commit does
not wait for it, and a writer that ends waits for it. A writer inside a
command starts commands only for the container that started it (no post job
resubmitting itself). A command that cannot start, exits non-zero
or is killed becomes an event "command" with its status and the end of its
standard error, and never fails the commit. Malformed entries are refused
with a ConfigError naming the entry. The Slurm end-to-end proof (a commit
submits a post-processing job) is in tests/test_slurm.py.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.backends import open_backend
from esdm_hpc.config import ConfigError, OnCommit, load_config
from esdm_hpc.epochs import oncommit
from esdm_hpc.epochs.events import Event, EventLog
from esdm_hpc.epochs.store import ContainerStore

from .conftest import site

URI = "esdm://oc"
# Appends "<epoch> <container> <config> <events>" to the file named by its first argument.
RECORD = 'echo "$ESDM_EPOCH $ESDM_CONTAINER ${ESDM_CONFIG:-none} ${ESDM_EVENTS:-none}" >> "$0"'
# Creates esdm://oc and commits COUNT epochs (1..COUNT), one element each.
WRITER = """
import sys, esdm_hpc
config, count = sys.argv[1], int(sys.argv[2])
with esdm_hpc.open("esdm://oc", "w", config=config) as c:
    c.create_dataset("v", shape=(count,), dtype="i8")
    for step in range(count):
        c["v"][step] = step + 1
        c.commit()
"""


def recorder(path: Path) -> list[str]:
    return ["sh", "-c", RECORD, str(path)]


def config_file(tmp_path: Path, *entries: dict[str, Any]) -> str:
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site(tmp_path, on_commit=list(entries))))
    return str(path)


def recorded(path: Path) -> list[list[str]]:
    """The lines the recorder wrote, in epoch order (commands run concurrently)."""
    lines = path.read_text().splitlines() if path.exists() else []
    return sorted((line.split() for line in lines), key=lambda words: int(words[0]))


def logged(config: Any, kind: str = "command") -> list[Event]:
    site_config = load_config(config)
    backend = open_backend(site_config.backend(site_config.metadata_backend))
    with backend:
        return EventLog(ContainerStore("oc", {backend.id: backend}, backend.id)).read(kinds=[kind])


def commit_steps(config: Any, count: int, before_commit: Any = None) -> None:
    """Commit epochs 1..count in this process (``before_commit(container, epoch)``
    first, if given), then wait for the commands they started."""
    with esdm_hpc.open(URI, "w", config=config) as c:
        c.create_dataset("v", shape=(count,), dtype="i8")
        for step in range(count):
            c["v"][step] = step + 1
            if before_commit is not None:
                before_commit(c, step + 1)
            assert c.commit() == step + 1
    assert oncommit.wait(20) == 0


# --- when it runs ---------------------------------------------------------------------


def test_runs_once_per_epoch_and_the_writer_waits_for_it_at_exit(tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    config = config_file(tmp_path, {"command": recorder(out)})
    subprocess.run([sys.executable, "-c", WRITER, config, "12"], check=True, timeout=60)
    assert recorded(out) == [[str(e), URI, config, "none"] for e in range(1, 13)]
    assert logged(config) == []  # no failures


def test_every_nth_epoch(tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    commit_steps(config_file(tmp_path, {"command": recorder(out), "every": 3}), 7)
    assert [words[0] for words in recorded(out)] == ["3", "6"]


def test_after_epochs_in_which_events_of_the_kinds_were_logged(tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    config = config_file(tmp_path, {"command": recorder(out), "events": ["anomaly", "alarm"]})
    triggers: dict[int, list[int]] = {}

    def log(c: esdm_hpc.Container, epoch: int) -> None:
        kinds = {2: ["anomaly"], 4: ["note"], 5: ["alarm", "note", "anomaly"]}.get(epoch, [])
        seqs = [c.log_event(kind, epoch=epoch).seq for kind in kinds]
        if kinds and kinds != ["note"]:
            triggers[epoch] = [s for s, k in zip(seqs, kinds, strict=True) if k != "note"]

    commit_steps(config, 6, log)
    assert recorded(out) == [
        [str(epoch), URI, config, ",".join(map(str, seqs))] for epoch, seqs in triggers.items()
    ]
    assert list(triggers) == [2, 5]


def test_only_for_the_containers_named(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.txt", tmp_path / "theirs.txt"
    config = config_file(tmp_path, {"command": recorder(ours), "containers": ["x", "o?"]},
                         {"command": recorder(theirs), "containers": ["run*"]})  # fmt: skip
    commit_steps(config, 2)
    assert [words[0] for words in recorded(ours)] == ["1", "2"]
    assert not theirs.exists()


def test_a_command_writing_another_container_starts_none_one_continuing_its_own_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    derived, continued = tmp_path / "derived", tmp_path / "continued"
    for case, started_by in ((derived, "esdm://run"), (continued, URI)):
        case.mkdir()
        # the environment of a job the command of esdm://run (esdm://oc) submitted
        monkeypatch.setenv("ESDM_CONTAINER", started_by)
        commit_steps(config_file(case, {"command": recorder(case / "runs.txt")}), 2)
    assert not (derived / "runs.txt").exists()  # else a post job would resubmit itself
    assert [words[0] for words in recorded(continued / "runs.txt")] == ["1", "2"]


def test_the_commit_does_not_wait_for_the_command(tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    config = config_file(tmp_path, {"command": ["sh", "-c", f"sleep 1; {RECORD}", str(out)]})
    with esdm_hpc.open(URI, "w", config=config) as c:
        c.create_dataset("v", shape=(1,), dtype="i8")
        started = time.monotonic()
        assert c.commit() == 1
        took = time.monotonic() - started
        assert not out.exists()
    assert took < 0.8, f"the commit took {took:.2f} s"
    assert oncommit.wait(20) == 0
    assert [words[0] for words in recorded(out)] == ["1"]


# --- failures -------------------------------------------------------------------------


def test_failures_are_logged_and_never_fail_the_commit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    noisy = "x" * 3000 + "boom"
    entries = [
        {"command": ["sh", "-c", f"echo {noisy} >&2; exit 3"]},
        {"command": [str(tmp_path / "no-such-program"), "--flag"]},
        {"command": ["sh", "-c", "kill -TERM $$"]},
        {"command": ["true"]},
    ]
    config = config_file(tmp_path, *entries)
    caplog.set_level(logging.WARNING)
    commit_steps(config, 2)
    with esdm_hpc.open(URI, config=config) as c:
        assert c.epoch == 2 and c["v"][:].tolist() == [1, 2]
    failed = sorted(logged(config), key=lambda e: (e.epoch, e.fields["entry"]))
    assert [(e.epoch, e.fields["entry"]) for e in failed] == [(1, 0), (1, 1), (1, 2), (2, 0),
                                                              (2, 1), (2, 2)]  # fmt: skip
    exited, missing, killed = failed[:3]
    assert exited.fields == {
        "entry": 0, "command": entries[0]["command"], "status": 3,
        "stderr": (noisy + "\n")[-oncommit.STDERR_TAIL :],
    }  # fmt: skip
    assert missing.fields == {"entry": 1, "command": entries[1]["command"], "status": None,
                              "error": "cannot start: No such file or directory"}  # fmt: skip
    assert killed.fields | {"stderr": ""} == {
        "entry": 2, "command": entries[2]["command"], "status": -15, "signal": "SIGTERM",
        "stderr": "",
    }  # fmt: skip
    assert "esdm://oc epoch 1: on_commit[0] ['sh', '-c'," in caplog.text
    assert "exited with status 3" in caplog.text


def test_esdm_events_shows_the_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, {"command": ["sh", "-c", "echo disk full >&2; exit 1"]})
    commit_steps(config, 1)
    capsys.readouterr()
    assert cli.main(["--config", config, "events", URI, "--kind", "command"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "epoch 1      command    command=" in line
    assert 'status=1 stderr="disk full\\n"' in line


def test_a_user_event_may_not_pose_as_a_command_event(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    with esdm_hpc.open(URI, "w", config=config) as c, pytest.raises(ValueError, match="itself"):
        c.log_event("command", status=0)


# --- the environment ------------------------------------------------------------------


def test_environment_without_launcher_wiring_and_memory_backend_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "env.txt"
    wiring = {"PMIX_RANK": "0", "PMI_FD": "5", "OMPI_COMM_WORLD_RANK": "0",
              "OMPI_MCA_ess_base_jobid": "7", "OMPI_MCA_orte_hnp_uri": "x"}  # fmt: skip
    kept = {"OMPI_MCA_btl": "self,vader", "OMPI_ALLOW_RUN_AS_ROOT": "1", "SLURM_JOB_ID": "42"}
    stale = {"ESDM_CONFIG": str(tmp_path / "other.json"), "ESDM_EVENTS": "1,2"}
    for name, value in (wiring | kept | stale).items():
        monkeypatch.setenv(name, value)
    config = {
        "backends": [{"id": "m", "type": "memory", "target": os.urandom(8).hex()}],
        "on_commit": [{"command": ["sh", "-c", 'env > "$0"; exit 9', str(out)]}],
    }
    commit_steps(config, 1)
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["ESDM_CONTAINER"] == URI and env["ESDM_EPOCH"] == "1"
    assert not set(wiring) & set(env)
    assert {name: env.get(name) for name in kept} == kept
    # a mapping has no file to name: the inherited one is not the writer's configuration
    assert "ESDM_CONFIG" not in env and "ESDM_EVENTS" not in env
    (failure,) = logged(config)  # logged through the in-process memory backend
    assert failure.fields["status"] == 9


# --- the configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_commit", "message"),
    [
        ({"command": ["a"]}, "on_commit: must be a list of command tables, got a table"),
        ([{"command": "sbatch post.sh"}],
         'on_commit[0].command: must be a list: the program and its arguments, e.g. ["sbatch"'),
        ([{"command": []}], "on_commit[0].command: must be a non-empty list of strings"),
        ([{"command": ["", "x"]}], 'on_commit[0].command[0]: must be the program to run, got ""'),
        ([{"command": ["a", 3]}], "on_commit[0].command[1]: must be a string without NUL, got 3"),
        ([{"command": ["a\0b"]}], "on_commit[0].command[0]: must be a string without NUL"),
        ([{"command": ["a"], "every": 0}], "on_commit[0].every: must be a positive integer, got 0"),
        ([{"command": ["a"], "every": True}], "on_commit[0].every: must be a positive integer"),
        ([{"command": ["a"], "every": 2, "events": ["x"]}],
         "on_commit[0]: give every (epochs) or events (kinds), not both"),
        ([{"command": ["a"], "events": []}], "on_commit[0].events: must be a non-empty list"),
        ([{"command": ["a"], "events": ["x", "1st"]}],
         'on_commit[0].events[1]: must be an event kind (a letter, then up to 63 letters, '
         "digits, '_', '.', '-'), got \"1st\""),
        ([{"command": ["a"], "events": ["commit"]}],
         "on_commit[0].events[0]: every commit is 'every = 1', not an event kind"),
        ([{"command": ["a"], "evry": 2}], "on_commit[0].evry: unknown key (did you mean 'every'?)"),
        ([{"every": 2}], "on_commit[0].command: required key is missing"),
        ([{"command": ["a"]}, "b"], "on_commit[1]: must be a table"),
        ([{"command": ["a"], "containers": "run"}],
         "on_commit[0].containers: must be a non-empty list of container names"),
        ([{"command": ["a"], "containers": ["esdm://run"]}],
         'on_commit[0].containers[0]: a name without esdm://, got "esdm://run"'),
        ([{"command": ["a"], "containers": ["run", ""]}],
         "on_commit[0].containers[1]: must be a non-empty string"),
    ],
)  # fmt: skip
def test_malformed_entries_are_refused_naming_them(on_commit: Any, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config({"on_commit": on_commit})
    assert str(refused.value).startswith("<dict>: ")
    assert message in str(refused.value)


def test_entries_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        'on_commit = [\n  { command = ["sbatch", "post.sbatch"], every = 2 },\n'
        '  { command = ["notify"], events = ["anomaly"], containers = ["run*"] },\n'
        '  { command = ["true"] },\n]\n'
    )
    assert load_config(path).on_commit == (
        OnCommit(("sbatch", "post.sbatch"), every=2),
        OnCommit(("notify",), events=("anomaly",), containers=("run*",)),
        OnCommit(("true",)),
    )
    assert load_config({}).on_commit == ()
