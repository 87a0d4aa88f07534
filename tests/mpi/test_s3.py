"""An s3 data backend on every rank, its SeaweedFS server killed mid-commit: every rank
gets the same error naming the backend, the previous epoch reads back intact, and
after a restart on the same data the writer commits again. Rank 0 runs the server
and the proxy that kills it (`tests.backends.faultproxy`)."""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import esdm_hpc
from esdm_hpc.backends import BackendError
from esdm_hpc.testing.seaweedfs import SeaweedFS, SeaweedUnavailable
from tests.backends.faultproxy import FaultProxy

SHAPE = (16, 12)


@pytest.fixture
def killable() -> Iterator[tuple[SeaweedFS | None, FaultProxy | None, dict]]:
    """On rank 0 the server and the proxy before it; on every rank the site
    configuration: data on s3 through the proxy, metadata on a shared posix directory."""
    comm = MPI.COMM_WORLD
    server = proxy = root = None
    site: dict | str | None = None
    if comm.rank == 0:
        root = Path(tempfile.mkdtemp(prefix="esdm-mpi-s3-"))
        try:
            server = SeaweedFS(root / "seaweedfs").start()
        except SeaweedUnavailable as why:
            site = f"SeaweedFS cannot start: {why}"
        else:
            proxy = FaultProxy(server.s3_port).start()
            # a dead server refuses at once, so the budget bounds only a server that
            # is slow to answer: generous, since 4 ranks on 2 cores slow the
            # restarted one (1 s timeouts failed its first write after restart)
            options = server.options(
                endpoint=proxy.endpoint, retries=4, retry_timeout=10.0, request_timeout=5.0
            )
            site = {
                "backends": [
                    {"id": "disk", "type": "posix", "target": str(root / "disk")},
                    {
                        "id": "object",
                        "type": "s3",
                        "target": f"site-{uuid.uuid4().hex}",
                        "options": options,
                        "performance": {"write_bandwidth": "100 GiB/s", "latency_s": 0},
                    },
                ],
                "metadata_backend": "disk",
            }
    site = comm.bcast(site)
    if isinstance(site, str):
        pytest.skip(site)
    assert isinstance(site, dict)
    try:
        yield server, proxy, site
    finally:
        comm.Barrier()
        if proxy is not None:
            proxy.stop()
        if server is not None:
            server.kill()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def rows(comm: MPI.Comm) -> slice:
    per = SHAPE[0] // comm.size
    return slice(comm.rank * per, (comm.rank + 1) * per)


@pytest.mark.mpi(min_size=2)
def test_a_server_killed_mid_commit_fails_it_on_every_rank_and_a_restart_recovers(
    killable: tuple[SeaweedFS | None, FaultProxy | None, dict],
) -> None:
    server, proxy, site = killable
    comm = MPI.COMM_WORLD
    first = np.arange(np.prod(SHAPE), dtype="f8").reshape(SHAPE)
    second, third = -first, first + 0.5
    mine = rows(comm)
    writer = esdm_hpc.open("esdm://killed/mpi", "w", comm=comm, config=site)
    try:
        field = writer.create_dataset("t", shape=SHAPE, dtype="f8")
        field[mine] = first[mine]
        assert writer.commit() == 1
        field[mine] = second[mine]
        if server is not None and proxy is not None:
            # the first request of epoch 2's logs, made by the commit, kills the server
            proxy.on_request = lambda method, path: (
                server.kill() if "/data/e000000002/" in path else None
            )
        comm.Barrier()
        with pytest.raises(BackendError) as failed:
            writer.commit()
        messages = comm.allgather(str(failed.value))
        assert len(set(messages)) == 1, messages  # the same error on every rank
        assert messages[0].startswith("backend 'object': containers/killed/mpi/data/e000000002/")
        if server is not None and proxy is not None:
            proxy.on_request = None
            server.start()  # the same data directory and ports
        comm.Barrier()
        with esdm_hpc.open("esdm://killed/mpi", comm=comm, config=site) as reader:
            assert reader.store.head().epoch == 1
            np.testing.assert_array_equal(reader["t"][...], first)
        field[mine] = third[mine]
        assert writer.commit() == 2
    finally:
        writer.close()
    with esdm_hpc.open("esdm://killed/mpi", comm=comm, config=site) as reader:
        np.testing.assert_array_equal(reader["t"][...], third)
