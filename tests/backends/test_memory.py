"""The memory backend: the conformance suite, then what only memory does (stores
shared by target within a process)."""

import uuid
from pathlib import Path

from esdm_hpc.backends import Backend, open_backend
from tests.backends.conformance import BackendTests, backend_config


class TestMemoryBackend(BackendTests):
    def make_backend(self, tmp_path: Path) -> Backend:
        return open_backend(backend_config("memory", f"test-{uuid.uuid4().hex}"))


def test_memory_stores_are_shared_by_target() -> None:
    target = f"shared-{uuid.uuid4().hex}"
    first = open_backend(backend_config("memory", target))
    first.write_atomic("HEAD", b"1")
    assert open_backend(backend_config("memory", target)).read_small("HEAD") == b"1"
    assert not open_backend(backend_config("memory", target + "-other")).exists("HEAD")
