"""The ``esdm`` command line (esdm_hpc/cli.py): ls, info, dump, verify, gc, unlock.

Commands run in-process through ``cli.main(argv)`` against a site configuration
file with one posix backend under ``tmp_path``; one test runs the real entry
point, ``python -m esdm_hpc.cli``, in a subprocess. Exit codes: 0 ok, 1 damage
found by verify, 2 usage error, 3 other error.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.epochs.lease import Lease, lease_name
from tests.mpirun import mpirun

ROOT = Path(__file__).resolve().parent.parent

# What each subcommand's --help must name.
OPTIONS = {
    "ls": [],
    "info": ["uri", "--epoch"],
    "dump": ["uri", "dataset", "region", "--epoch", "--npy"],
    "verify": ["uri", "--quiet"],
    "gc": ["uri", "--dry-run", "--quiet"],
    "unlock": ["uri", "--force"],
}

# The sample container esdm://run1 (see `run1`): /atmos/tas in epochs 1 and 2, /time in epoch 1.
TAS_EPOCH1 = np.arange(20, dtype=np.float32).reshape(4, 5)
TAS_EPOCH2 = TAS_EPOCH1.copy()
TAS_EPOCH2[0:2, 1:3] = -1
TIME = np.arange(4, dtype=np.int64) * 6
BYTES_EPOCH1 = TAS_EPOCH1.nbytes + TIME.nbytes  # 80 + 32
BYTES_EPOCH2 = BYTES_EPOCH1 + 2 * 2 * 4  # the 2x2 float32 patch


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration or lease length leaks in from the caller's environment."""
    for name in ("ESDM_CONFIG", "ESDM_ROOT", "ESDM_LEASE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def site(tmp_path: Path) -> dict:
    # Small checksum blocks, so that a flipped byte damages only a few rows.
    return {
        "backends": [{"id": "disk", "type": "posix", "target": str(tmp_path / "disk")}],
        "block_size": 64,
    }


@pytest.fixture
def config_file(tmp_path: Path, site: dict) -> Path:
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site))
    return path


@pytest.fixture
def esdm(config_file: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``esdm --config site.json ARGS...`` in-process; returns code, stdout, stderr."""

    def run(*argv: str) -> Result:
        capsys.readouterr()  # drop what the test printed before
        code = cli.main(["--config", str(config_file), *argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture(scope="module")
def run1_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """esdm://run1: epoch 1 writes /atmos/tas and /time, epoch 2 patches tas[0:2, 1:3].

    Written once per module (commits fsync) and copied into each test's site.
    """
    disk = tmp_path_factory.mktemp("template") / "disk"
    site = {"backends": [{"id": "disk", "type": "posix", "target": str(disk)}], "block_size": 64}
    with esdm_hpc.open("esdm://run1", "w", config=site) as c:
        c.create_group("atmos")
        tas = c.create_dataset("atmos/tas", shape=(4, 5), dtype="f4", dims=("lat", "lon"))
        tas[...] = TAS_EPOCH1  # written first: the first bytes of the epoch-1 log
        c.create_dataset("time", shape=(4,), dtype="i8", dims=("time",))
        c["time"][...] = TIME
        c.commit()
        tas[0:2, 1:3] = -1
    return disk


@pytest.fixture
def run1(run1_template: Path, tmp_path: Path) -> str:
    """A private copy of esdm://run1 on the test's site (its backend "disk")."""
    shutil.copytree(run1_template, tmp_path / "disk")
    return "esdm://run1"


def numbers(text: str) -> np.ndarray:
    """The numbers of an array printed by numpy, in order."""
    return np.array(text.replace("[", " ").replace("]", " ").split(), dtype=float)


def data_logs(tmp_path: Path, container: str, epoch: int) -> list[Path]:
    return sorted((tmp_path / "disk" / "containers" / container / "data").glob(f"e{epoch:09d}/*"))


def abandon_a_writer(site: dict, tmp_path: Path) -> list[Path]:
    """Open esdm://run1 for appending, write, and give up without committing; its logs."""
    writer = esdm_hpc.open("esdm://run1", "a", config=site)
    writer["time"][...] = -TIME  # 32 bytes into a log of epoch 3
    writer.open_epoch.writer.sync()  # in the log, as when a writer dies inside its commit
    writer.abort()
    return data_logs(tmp_path, "run1", 3)


# --- help and usage errors -------------------------------------------------------------


def test_top_level_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: esdm")
    assert "--config" in out
    assert all(command in out for command in OPTIONS)
    assert "Exit codes" in out


@pytest.mark.parametrize(("command", "options"), OPTIONS.items(), ids=list(OPTIONS))
def test_subcommand_help_names_its_options(
    capsys: pytest.CaptureFixture[str], command: str, options: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main([command, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: esdm {command}")
    for option in options:
        assert option in out


def test_no_command_prints_help_and_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: esdm")
    assert all(command in out for command in OPTIONS)


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["info"],
        ["dump", "esdm://run1"],
        ["info", "esdm://run1", "--epoch", "one"],
        ["unlock", "esdm://run1", "--forse"],
        ["ls", "--config", "site.json"],  # --config belongs before the command
    ],
    ids=[
        "unknown-command",
        "missing-uri",
        "missing-dataset",
        "bad-int",
        "bad-option",
        "late-config",
    ],
)
def test_bad_command_lines_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2
    assert "usage: esdm" in capsys.readouterr().err


def test_the_module_runs_as_a_program(config_file: Path, run1: str) -> None:
    def esdm(*argv: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        return subprocess.run(
            [sys.executable, "-m", "esdm_hpc.cli", "--config", str(config_file), *argv],
            capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
        )  # fmt: skip

    info = esdm("info", run1)
    assert info.returncode == 0, info.stderr
    assert "/atmos/tas" in info.stdout
    missing = esdm("info", "esdm://nowhere")
    assert missing.returncode == 3
    assert "no such container" in missing.stderr


# --- ls ----------------------------------------------------------------------------------


def test_ls_lists_containers_with_their_newest_epoch(esdm, site: dict, run1: str) -> None:
    with esdm_hpc.open("esdm://exp/b", "w", config=site) as c:
        c.create_dataset("x", data=np.arange(3))
    result = esdm("ls")
    assert result.code == 0
    assert result.out.splitlines() == ["esdm://exp/b\tepoch 1", "esdm://run1\tepoch 2"]
    assert result.err == ""


def test_ls_on_an_empty_site_says_so_on_stderr(esdm, tmp_path: Path) -> None:
    result = esdm("ls")
    assert result.code == 0
    assert result.out == ""
    assert "no containers on disk" in result.err
    assert str(tmp_path / "disk") in result.err


# --- info --------------------------------------------------------------------------------


def test_info_describes_datasets_epochs_fragments_and_bytes(esdm, run1: str) -> None:
    result = esdm("info", run1)
    assert result.code == 0
    header, tas, time_, totals, backend = result.out.splitlines()
    assert header.startswith("esdm://run1  epoch 2 of 2  committed ")
    assert tas.split() == ["/atmos/tas", "4x5", "<f4", "dims", "lat,lon", "2", "fragments"]
    assert time_.split() == ["/time", "4", "<i8", "dims", "time", "1", "fragments"]
    assert totals.split() == ["epochs:", "3", "fragments:", "3"]
    assert backend.strip() == f"disk: {BYTES_EPOCH2} B"


def test_info_epoch_describes_an_older_epoch(esdm, run1: str) -> None:
    result = esdm("info", "--epoch", "1", run1)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("esdm://run1  epoch 1 of 2  ")
    assert lines[1].split()[-2:] == ["1", "fragments"]
    assert lines[3].split() == ["epochs:", "2", "fragments:", "2"]
    assert lines[4].strip() == f"disk: {BYTES_EPOCH1} B"


def test_info_epoch_zero_is_the_empty_container(esdm, run1: str) -> None:
    result = esdm("info", "--epoch", "0", run1)
    assert result.code == 0
    assert result.out.splitlines()[1:] == ["  epochs: 1  fragments: 0"]


@pytest.mark.parametrize("epoch", ["3", "-1"])
def test_info_of_an_epoch_that_does_not_exist_is_a_usage_error(esdm, run1: str, epoch: str) -> None:
    result = esdm("info", "--epoch", epoch, run1)
    assert result.code == 2
    assert result.out == ""
    assert "esdm://run1 has epochs 0..2" in result.err


@pytest.mark.parametrize("uri", ["run1", "esdm://", "esdm://.hidden", "esdm://a b"])
def test_info_of_a_malformed_uri_is_a_usage_error(esdm, uri: str) -> None:
    result = esdm("info", uri)
    assert result.code == 2
    assert f"uri {uri!r}" in result.err


def test_info_of_an_unknown_container(esdm, run1: str) -> None:
    result = esdm("info", "esdm://nowhere")
    assert result.code == 3
    assert "esdm://nowhere: no such container" in result.err


def test_info_counts_only_the_fragments_of_the_current_dataset(esdm, site: dict) -> None:
    with esdm_hpc.open("esdm://again", "w", config=site) as c:
        c.create_dataset("x", data=np.arange(10.0))
    with esdm_hpc.open("esdm://again", "w", config=site, overwrite=True) as c:
        c.create_dataset("x", data=np.arange(3.0))
    result = esdm("info", "esdm://again")
    assert result.out.splitlines()[1].split()[-2:] == ["1", "fragments"]


# --- dump --------------------------------------------------------------------------------


def test_dump_prints_the_whole_dataset_by_default(esdm, run1: str) -> None:
    result = esdm("dump", run1, "atmos/tas")
    assert result.code == 0
    np.testing.assert_array_equal(numbers(result.out), TAS_EPOCH2.ravel())


def test_dump_prints_large_datasets_in_full(esdm, site: dict) -> None:
    field = np.arange(2000).reshape(40, 50)  # more than numpy's summary threshold
    with esdm_hpc.open("esdm://big", "w", config=site) as c:
        c.create_dataset("x", data=field)
    result = esdm("dump", "esdm://big", "x")
    assert "..." not in result.out
    np.testing.assert_array_equal(numbers(result.out), field.ravel())


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("0:2,1:3", TAS_EPOCH2[0:2, 1:3]),
        ("3", TAS_EPOCH2[3]),
        ("1:, -1", TAS_EPOCH2[1:, -1]),
        ("...,4", TAS_EPOCH2[..., 4]),
    ],
)
def test_dump_prints_a_region(esdm, run1: str, region: str, expected: np.ndarray) -> None:
    result = esdm("dump", run1, "/atmos/tas", region)
    assert result.code == 0
    np.testing.assert_array_equal(numbers(result.out), expected.ravel())


def test_dump_epoch_reads_an_older_epoch(esdm, run1: str) -> None:
    result = esdm("dump", "--epoch", "1", run1, "atmos/tas", "0:2,1:3")
    assert result.code == 0
    np.testing.assert_array_equal(numbers(result.out), TAS_EPOCH1[0:2, 1:3].ravel())


def test_dump_of_an_epoch_that_does_not_exist(esdm, run1: str) -> None:
    result = esdm("dump", "--epoch", "7", run1, "atmos/tas")
    assert result.code == 2
    assert "epoch 7 does not exist" in result.err


def test_dump_npy_writes_a_file_numpy_reads(esdm, run1: str, tmp_path: Path) -> None:
    target = tmp_path / "patch.npy"
    result = esdm("dump", "--npy", str(target), run1, "atmos/tas", "0:3,1:4")
    assert result.code == 0
    assert result.out == ""
    assert f"wrote (3, 3) float32 to {target}" in result.err
    saved = np.load(target)
    assert saved.dtype == np.float32
    np.testing.assert_array_equal(saved, TAS_EPOCH2[0:3, 1:4])


def test_dump_npy_writes_the_file_it_names(esdm, run1: str, tmp_path: Path) -> None:
    target = tmp_path / "patch.bin"
    result = esdm("dump", "--npy", str(target), run1, "atmos/tas")
    assert result.code == 0
    assert target.exists(), f"{sorted(p.name for p in tmp_path.iterdir())}; {result.err}"


def test_dump_of_a_group_is_refused(esdm, run1: str) -> None:
    result = esdm("dump", run1, "atmos")
    assert result.code == 2
    assert result.out == ""
    assert "atmos is a group, not a dataset" in result.err


def test_dump_of_an_unknown_dataset(esdm, run1: str) -> None:
    result = esdm("dump", run1, "atmos/pr")
    assert result.code == 3
    assert "no object '/atmos/pr'" in result.err


@pytest.mark.parametrize("region", ["0:2;1", "a", "0:4:2", ""])
def test_dump_with_bad_region_syntax_names_the_region(esdm, run1: str, region: str) -> None:
    result = esdm("dump", run1, "atmos/tas", region)
    assert result.code == 2
    assert result.out == ""
    assert f"region {region!r}" in result.err


@pytest.mark.parametrize(
    ("region", "problem"),
    [
        ("4", "index 4 is out of bounds for axis 0 with size 4"),
        ("0,-6", "index -6 is out of bounds for axis 1 with size 5"),
        ("0,0,0", "too many indices (3) for 2 dimensions"),
    ],
)
def test_dump_out_of_bounds_is_a_clear_error(esdm, run1: str, region: str, problem: str) -> None:
    result = esdm("dump", run1, "atmos/tas", region)
    assert result.code != 0
    assert result.out == ""
    assert problem in result.err


# --- verify ------------------------------------------------------------------------------


def test_verify_a_clean_container(esdm, run1: str) -> None:
    result = esdm("verify", "--quiet", run1)
    assert result.code == 0
    assert result.out.splitlines() == [
        f"esdm://run1: 3 manifests, 0 packs, 3 fragments, 3 replicas, {BYTES_EPOCH2} B checked, "
        "0 damaged"
    ]


def test_verify_reports_a_flipped_byte_and_where_it_is(esdm, run1: str, tmp_path: Path) -> None:
    [log] = data_logs(tmp_path, "run1", 1)
    data = bytearray(log.read_bytes())
    data[70] ^= 0xFF  # tas is first in the log: byte 70 is in block 1 (64..127), row 3
    log.write_bytes(data)
    result = esdm("verify", "--quiet", run1)
    assert result.code == 1
    damage, summary = result.out.splitlines()
    assert damage.startswith("/atmos/tas[3:4, 1:5]: checksum mismatch in fragment ")
    assert "block(s) [1]" in damage
    assert f"disk:containers/run1/data/e000000001/{log.name}" in damage
    assert summary.endswith(", 1 damaged")


def test_verify_reports_a_missing_manifest_and_checks_on(esdm, run1: str, tmp_path: Path) -> None:
    manifests = tmp_path / "disk/containers/run1/manifests"
    (manifests / "e000000001.json").unlink()
    result = esdm("verify", "--quiet", run1)
    assert result.code == 1
    assert result.out.splitlines() == [
        # without packs every epoch's reader reads the whole chain
        "manifests/e000000001.json: missing (the epoch chain is broken); epochs 0-2 cannot be "
        "opened (disk:containers/run1/manifests/e000000001.json)",
        # epoch 2's fragment is still checked: HEAD verifies its manifest
        "esdm://run1: 3 manifests, 0 packs, 1 fragments, 1 replicas, 16 B checked, 1 damaged",
    ]
    (manifests / "e000000002.json").write_text("{}")  # HEAD's manifest: nothing is verified
    result = esdm("verify", "--quiet", run1)
    assert result.code == 1
    assert result.out.splitlines() == [
        "manifests/e000000002.json: checksum mismatch (truncated or modified after commit); "
        "epochs 0-2 cannot be opened (disk:containers/run1/manifests/e000000002.json)",
        # which other epochs need manifest 1 only manifest 2 could say
        "manifests/e000000001.json: missing (the epoch chain is broken); epoch 1 cannot be "
        "opened (disk:containers/run1/manifests/e000000001.json)",
        "esdm://run1: 3 manifests, 0 packs, 0 fragments, 0 replicas, 0 B checked, 2 damaged",
    ]


def test_verify_of_a_damaged_head_is_an_error(esdm, run1: str, tmp_path: Path) -> None:
    (tmp_path / "disk/containers/run1/HEAD").write_text("garbage")
    result = esdm("verify", "--quiet", run1)
    assert result.code == 3  # nothing can be verified without HEAD
    assert "esdm://run1 HEAD: unreadable" in result.err


def test_dump_of_damaged_data_fails_rather_than_printing_it(
    esdm, run1: str, tmp_path: Path
) -> None:
    [log] = data_logs(tmp_path, "run1", 1)
    data = bytearray(log.read_bytes())
    data[70] ^= 0xFF  # row 3 of tas
    log.write_bytes(data)
    result = esdm("dump", run1, "atmos/tas", "3")
    assert result.code == 3
    assert result.out == ""
    assert "/atmos/tas" in result.err
    assert esdm("dump", run1, "atmos/tas", "0:2").code == 0  # block 0 is intact


@pytest.mark.parametrize("command", ["verify", "gc"])
def test_progress_goes_to_stderr_unless_quiet(
    esdm, run1: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a bar is drawn on terminals only (batch logs stay clean): pretend stderr is one
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    shown = esdm(command, run1)
    assert shown.code == 0
    assert command in shown.err
    assert "%|" in shown.err  # a tqdm bar: "verify:   0%|          | 0/3 [...]"
    assert "%|" not in shown.out
    monkeypatch.undo()
    assert esdm(command, run1).err == ""  # not a terminal: no bar
    quiet = esdm(command, "--quiet", run1)
    assert quiet.code == 0
    assert quiet.err == ""
    assert quiet.out.splitlines()[-1] == shown.out.splitlines()[-1]


# --- gc ----------------------------------------------------------------------------------


def test_gc_removes_the_logs_of_an_abandoned_writer(
    esdm, site: dict, run1: str, tmp_path: Path
) -> None:
    [orphan] = abandon_a_writer(site, tmp_path)
    size = orphan.stat().st_size
    result = esdm("gc", "--quiet", run1)
    assert result.code == 0
    removed, summary = result.out.splitlines()
    assert removed == f"removed disk:containers/run1/data/e000000003/{orphan.name}"
    assert summary.startswith(f"esdm://run1: removed 1 objects ({size} B), kept ")
    assert not orphan.exists()
    assert esdm("verify", "--quiet", run1).code == 0
    np.testing.assert_array_equal(numbers(esdm("dump", run1, "time").out), TIME)


def test_gc_dry_run_removes_nothing(esdm, site: dict, run1: str, tmp_path: Path) -> None:
    [orphan] = abandon_a_writer(site, tmp_path)
    result = esdm("gc", "--dry-run", "--quiet", run1)
    assert result.code == 0
    assert result.out.splitlines()[0].startswith("would remove disk:containers/run1/data/")
    assert "would remove 1 objects (32 B)" in result.out
    assert orphan.exists()
    assert "removed 1 objects (32 B)" in esdm("gc", "--quiet", run1).out


def test_gc_of_a_clean_container_removes_nothing(esdm, run1: str) -> None:
    result = esdm("gc", "--quiet", run1)
    assert result.code == 0
    assert result.out.startswith("esdm://run1: removed 0 objects (0 B), kept ")


def test_gc_refuses_while_a_writer_holds_the_lease(esdm, site: dict, run1: str) -> None:
    writer = esdm_hpc.open("esdm://run1", "a", config=site)
    try:
        writer["time"][...] = -TIME
        result = esdm("gc", "--quiet", run1)
        assert result.code == 3
        assert result.out == ""
        assert "esdm://run1 is open for writing by" in result.err
        assert f"@{socket.gethostname()} pid {os.getpid()}" in result.err
        writer.commit()  # the writer's open epoch was left alone
    finally:
        writer.abort()
    np.testing.assert_array_equal(numbers(esdm("dump", run1, "time").out), -TIME)


# --- unlock ------------------------------------------------------------------------------


def test_unlock_of_an_unlocked_container(esdm, run1: str) -> None:
    result = esdm("unlock", run1)
    assert result.code == 0
    assert result.out == "esdm://run1 is not locked\n"


def test_unlock_leaves_a_live_writer_alone_unless_forced(
    esdm, site: dict, run1: str, tmp_path: Path
) -> None:
    lease = tmp_path / "disk" / "containers" / "run1" / "LEASE"
    writer = esdm_hpc.open("esdm://run1", "a", config=site)
    try:
        refused = esdm("unlock", run1)
        assert refused.code == 3
        assert f"pid {os.getpid()}" in refused.err
        assert "--force" in refused.err
        assert lease.exists()

        forced = esdm("unlock", "--force", run1)
        assert forced.code == 0
        assert forced.out.startswith("esdm://run1: broke the lease of ")
        assert not lease.exists()
        esdm_hpc.open("esdm://run1", "a", config=site).abort()  # another writer gets in
    finally:
        writer.abort()


def test_unlock_breaks_an_expired_lease_without_force(esdm, site: dict, run1: str) -> None:
    store = esdm_hpc.open("esdm://run1", config=site).store
    gone = Lease("someone", "elsewhere", 1, None, "token", expires=time.time() - 1)
    store.meta.write_atomic(lease_name(store), gone.encode())  # its writer went away
    result = esdm("unlock", run1)
    assert result.code == 0
    assert result.out.startswith("esdm://run1: broke the lease of someone@elsewhere")
    assert esdm("unlock", run1).out == "esdm://run1 is not locked\n"


def test_unlock_breaks_the_lease_of_a_dead_process_on_this_host(
    esdm, run1: str, tmp_path: Path
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is now free: the lease below names a writer that is gone
    host = socket.gethostname()
    dead = Lease("someone", host, child.pid, None, "token", expires=time.time() + 3600)
    (tmp_path / "disk" / "containers" / "run1" / "LEASE").write_bytes(dead.encode())
    result = esdm("unlock", run1)
    assert result.code == 0
    assert result.out.startswith(f"esdm://run1: broke the lease of someone@{host} pid {child.pid}")


def test_unlock_of_an_unknown_container(esdm, run1: str) -> None:
    result = esdm("unlock", "esdm://nowhere")
    assert result.code == 3
    assert "no such container" in result.err


# --- configuration -----------------------------------------------------------------------

BAD_THREADS = json.dumps(
    {"backends": [{"id": "d", "type": "posix", "target": "d", "limits": {"threads": -1}}]}
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"replicas": 0}', "replicas: must be a positive integer, got 0"),
        ('{"block_sise": "1 MiB"}', "block_sise: unknown key (did you mean 'block_size'?)"),
        (BAD_THREADS, "backends[0].limits.threads: must be a positive integer, got -1"),
        ('{"replicas" 1}', "line 1, column 13: invalid JSON"),
    ],
    ids=["bad-value", "unknown-key", "nested-key", "not-json"],
)
@pytest.mark.parametrize(
    "argv", [["ls"], ["info", "esdm://run1"], ["dump", "esdm://run1", "x"]], ids=lambda a: a[0]
)
def test_a_malformed_config_file_is_a_usage_error_naming_file_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, problem: str, argv: list[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    assert cli.main(["--config", str(bad), *argv]) == 2
    assert f"esdm {argv[0]}: {bad}: {problem}" in capsys.readouterr().err


def test_a_missing_config_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["--config", str(tmp_path / "gone.json"), "ls"]) == 2
    assert "gone.json: cannot read the configuration" in capsys.readouterr().err


def test_config_discovery_order(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    config_file: Path,
    run1: str,
) -> None:
    def listed(*argv: str) -> str:
        assert cli.main([*argv, "ls"]) == 0
        return capsys.readouterr().out

    assert cli.main(["ls"]) == 0  # the built-in default: backend "local" in ./esdm-data
    assert f"no containers on local ({tmp_path / 'esdm-data'})" in capsys.readouterr().err
    (tmp_path / "esdm.json").write_text(config_file.read_text())
    assert listed() == "esdm://run1\tepoch 2\n"  # ./esdm.json
    monkeypatch.setenv("ESDM_CONFIG", str(tmp_path / "elsewhere.json"))
    assert cli.main(["ls"]) == 2  # $ESDM_CONFIG before ./esdm.json, even when missing
    assert "named by $ESDM_CONFIG" in capsys.readouterr().err
    assert listed("--config", str(config_file)) == "esdm://run1\tepoch 2\n"  # --config first


def test_corrupt_metadata_is_an_error_not_a_usage_error(esdm, run1: str, tmp_path: Path) -> None:
    (tmp_path / "disk" / "containers" / "run1" / "HEAD").write_text("garbage")
    result = esdm("info", run1)
    assert "esdm://run1 HEAD: unreadable" in result.err
    assert result.code == 3


def test_the_tiers_demo_drains_to_disk_and_s3(tmp_path: Path) -> None:
    """`make demo-tiers`: a real SeaweedFS, a burst buffer, the drain, the placement."""
    shm = tmp_path / "shm"
    shm.mkdir()
    run = mpirun(2, "-m", "esdm_hpc.tiers_demo", "--dir", str(tmp_path / "data"),
                 "--shm", str(shm), timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    out = run.stdout
    assert "at risk (only on node-local storage" in out
    assert "drained 12 fragments" in out and "0 fragments only on node-local storage" in out
    assert "epoch 7: new replicas of epochs 1-6" in out
    assert "epoch 6: disk 2.0 MiB, s3 2.0 MiB" in out
    assert "read back from disk/S3" in out and "configured against measured" in out
    assert list(shm.iterdir()) == []
