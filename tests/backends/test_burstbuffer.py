"""The burst-buffer backend: the conformance suite, then what only it does (a
directory per node, its free space, a directory that disappears)."""

import os
from pathlib import Path

import numpy as np
import pytest

from esdm_hpc.backends import Backend, BackendError, BurstBufferBackend, open_backend
from tests.backends.conformance import BackendTests, backend_config


def open_burst_buffer(target: Path) -> BurstBufferBackend:
    backend = open_backend(backend_config("burstbuffer", str(target)))
    assert isinstance(backend, BurstBufferBackend)
    return backend


class TestBurstBufferBackend(BackendTests):
    def make_backend(self, tmp_path: Path) -> Backend:
        return open_burst_buffer(tmp_path / "bb")


def test_each_node_has_a_directory_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backends = {}
    for node in ("n1", "n2"):
        monkeypatch.setenv("ESDM_NODE", node)
        backends[node] = open_burst_buffer(tmp_path / "bb")
        assert backends[node].node == node
        with backends[node].create_log("c/log") as log:
            log.append(np.frombuffer(node.encode(), np.uint8))
    assert backends["n1"].read("c/log", 0, 2) == b"n1"
    assert backends["n2"].read("c/log", 0, 2) == b"n2"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("log")) == [
        "bb/n1/c/log",
        "bb/n2/c/log",
    ]


def test_free_space_is_what_the_file_system_reports(tmp_path: Path) -> None:
    status = os.statvfs(tmp_path)
    free = open_burst_buffer(tmp_path / "bb").free_bytes()
    assert free is not None
    assert abs(free - status.f_bavail * status.f_frsize) < 64 << 20  # others write too


def test_a_directory_that_disappears_is_an_error_not_a_new_directory(tmp_path: Path) -> None:
    backend = open_burst_buffer(tmp_path / "bb")
    backend.create_log("c/one").close()
    for path in sorted((tmp_path / "bb").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    with pytest.raises(BackendError, match=r"burst-buffer directory .* has disappeared"):
        backend.create_log("c/two")
    assert not any((tmp_path / "bb").rglob("two"))
