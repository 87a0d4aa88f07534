"""Crash consistency: a writer SIGKILLed anywhere leaves the last committed epoch intact.

The writer (tests/programs/crash_writer.py) is killed at crash points spread
over writing and committing (esdm_hpc.faults): after data appends, after the
data flush, inside the atomic writes of manifest and HEAD (temp file written,
renamed), between manifest and HEAD. Each time the container must open, read
back its newest committed epoch bit-exact, and after `esdm unlock` + `esdm gc`
hold nothing that no epoch refers to, while still reading the same.
"""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.epochs.history import History
from esdm_hpc.epochs.store import LOCK
from esdm_hpc.errors import LeaseHeldError
from tests.mpirun import ROOT, mpi_env
from tests.programs import crash_writer

EPOCHS = 5
ATOMIC_WRITES = 2 * (EPOCHS + 1)  # manifest and HEAD of epochs 0..EPOCHS
CRASH_POINTS = [
    *(("write.appended", n) for n in range(1, 48, 4)),
    *(("write.synced", n) for n in range(1, EPOCHS + 1)),
    *(("atomic.temp-written", n) for n in range(1, ATOMIC_WRITES + 1)),
    *(("atomic.renamed", n) for n in range(1, ATOMIC_WRITES + 1)),
    *(("publish.manifest-written", n) for n in range(1, EPOCHS + 1)),
    *(("publish.head-renamed", n) for n in range(1, EPOCHS + 1)),
]


# With a pack every 2 epochs, the commits of epochs 3 and 5 write one (of the
# records of epochs 1-2 and 3-4) before their manifest: two more atomic writes.
PACK_EPOCHS = 2
PACKED_CRASH_POINTS = [
    *(("publish.pack-written", n) for n in (1, 2)),
    *(("atomic.temp-written", n) for n in range(1, ATOMIC_WRITES + 3)),
    *(("atomic.renamed", n) for n in range(1, ATOMIC_WRITES + 3)),
]


def test_there_are_at_least_fifty_crash_points() -> None:
    assert len(CRASH_POINTS) >= 50


def run_writer(root: Path, crash: str, pack_epochs: int | None) -> subprocess.CompletedProcess[str]:
    env = {**mpi_env(), "ESDM_CRASH": crash}
    program = ROOT / "tests" / "programs" / "crash_writer.py"
    packing = [] if pack_epochs is None else [str(pack_epochs)]
    return subprocess.run(
        [sys.executable, str(program), str(root), "c", str(EPOCHS), *packing],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip


def objects(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("point", "nth"), CRASH_POINTS, ids=lambda p: str(p))
def test_killed_writer_leaves_last_epoch_intact(tmp_path: Path, point: str, nth: int) -> None:
    check_killed_writer(tmp_path, point, nth, pack_epochs=None)


@pytest.mark.parametrize(("point", "nth"), PACKED_CRASH_POINTS, ids=lambda p: str(p))
def test_killed_packing_writer_leaves_last_epoch_intact(
    tmp_path: Path, point: str, nth: int
) -> None:
    check_killed_writer(tmp_path, point, nth, pack_epochs=PACK_EPOCHS)


def check_killed_writer(tmp_path: Path, point: str, nth: int, pack_epochs: int | None) -> None:
    root = tmp_path / "disk"
    result = run_writer(root, f"{point}:{nth}", pack_epochs)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    printed = [int(line.split()[1]) for line in result.stdout.splitlines()]
    last_seen = printed[-1] if printed else 0
    config = crash_writer.config(str(root))
    config_file = tmp_path / "esdm.json"
    config_file.write_text(json.dumps(config))

    if not (root / "containers/c/HEAD").exists():
        assert last_seen == 0  # killed before epoch 0 was published
        return
    with esdm_hpc.open("esdm://c", config=config) as c:
        # the kill may land after HEAD moved but before the line was printed
        assert c.epoch in (last_seen, last_seen + 1)
        epoch = c.epoch
        if epoch >= 1:
            np.testing.assert_array_equal(c["x"][...], crash_writer.expected(epoch))

    with pytest.raises(LeaseHeldError, match="pid"):
        esdm_hpc.open("esdm://c", "a", config=config)
    assert cli.main(["--config", str(config_file), "unlock", "esdm://c"]) == 0
    assert cli.main(["--config", str(config_file), "gc", "--quiet", "esdm://c"]) == 0

    store_objects = objects(root)
    with esdm_hpc.open("esdm://c", config=config) as c:
        assert c.epoch == epoch
        if epoch >= 1:
            np.testing.assert_array_equal(c["x"][...], crash_writer.expected(epoch))
        referenced = {name for _, name in History.load(c.store).referenced(c.store)}
        lock = c.store.prefix + LOCK  # live state, kept by gc
    assert store_objects == referenced | {lock}  # no orphan left, nothing referenced lost
    assert cli.main(["--config", str(config_file), "verify", "--quiet", "esdm://c"]) == 0
