"""The SeaweedFS server the S3 tests share (`seaweed`, one per test session) and
`start_server` for a test that needs one of its own (to kill it)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from esdm_hpc.testing.seaweedfs import SeaweedFS, SeaweedUnavailable


def start_server(directory: Path) -> SeaweedFS:
    try:
        return SeaweedFS(directory).start()
    except SeaweedUnavailable as why:
        pytest.skip(f"SeaweedFS cannot start: {why}")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = start_server(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()
