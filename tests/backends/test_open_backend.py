"""`open_backend`: the implementation chosen by the configured type."""

import dataclasses
from pathlib import Path

import pytest

from esdm_hpc.backends import BurstBufferBackend, MemoryBackend, PosixBackend, open_backend
from tests.backends.conformance import backend_config


def test_open_backend_chooses_by_type(tmp_path: Path) -> None:
    assert isinstance(open_backend(backend_config("posix", str(tmp_path))), PosixBackend)
    assert isinstance(open_backend(backend_config("memory", "x")), MemoryBackend)
    bb = backend_config("burstbuffer", str(tmp_path / "bb"))
    assert isinstance(open_backend(bb), BurstBufferBackend)
    posix = backend_config("posix", str(tmp_path))
    with pytest.raises(ValueError, match="unknown type 'ceph'"):
        open_backend(dataclasses.replace(posix, type="ceph"))  # type: ignore[arg-type]
