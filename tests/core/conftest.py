import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def site(root: Path, **overrides: object) -> dict:
    """A site configuration with one posix backend under ``root``."""
    backend = {"id": "disk", "type": "posix", "target": str(root / "disk")}
    backend.update(overrides.pop("backend", {}))  # type: ignore[arg-type]
    return {"backends": [backend], **overrides}


@pytest.fixture
def config(tmp_path: Path) -> dict:
    return site(tmp_path)


@contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A real file system (tmpfs) of ``size`` on ``mount``, for the time of the block
    (the test is skipped where none can be mounted)."""
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB file system (tmpfs), for writes that fail with ENOSPC."""
    with mounted_tmpfs(tmp_path / "tmpfs", "2m") as mount:
        yield mount


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; the ballast file."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)
    return ballast
