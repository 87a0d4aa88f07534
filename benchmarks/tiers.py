"""Tiers: W1 through a burst buffer on /dev/shm that drains to the disk, against raw POSIX
with fsync on the disk, parallel HDF5 on the disk and raw writes to the same tmpfs, same run.

    mpirun -n 4 python benchmarks/tiers.py [--total-gib 1] [--steps T] [--shape Z,Y,X]
        [--repeat 3] [--dir DIR] [--shm DIR] [--json PATH] [--quick]

The workload and the peers are W1's (benchmarks/write_read.py): each rank writes its
block of a 3-D float32 field at every step, each step durable before the next.

- esdm-bb: ESDM with a burst buffer under --shm (default /dev/shm) whose ``drain_to``
  is a posix backend under --dir; each step a write and a commit (durable on the
  burst buffer). Its *application-visible* time is the open + steps + close.
- then ``esdm drain`` (`esdm_hpc.drain.drain`, one process per node: here the rank 0
  of the job, as `esdm drain --wait` at a job's end) copies everything to the disk,
  verified: *time to durable on disk* is the application's time plus the drain's.
- posix (disk) and h5py-collective (disk): W1 on the disk, ``fsync`` per step.
- tmpfs: raw POSIX on the same tmpfs as the burst buffer (its physical limit).
- cp+fsync: the tmpfs peer's files copied to the disk and fsynced, the peer of the
  drain's throughput.

S3 (rank 0 alone, on a SeaweedFS server started on loopback, unless --no-s3):
ESDM with its data on s3 (metadata on the disk) writes the same steps and
reads them back whole, against the raw client (obstore) putting and getting
one object per step; then a 16x16 column over all steps and levels is read,
and the bytes the s3 backend fetched are compared with the bytes asked, at
the default checksum block size and at a small one (a read fetches whole
checksum blocks, to verify them).

Targets (issue 13): application-visible bandwidth >= 2.5x posix and >= 2.5x
h5py-collective and >= 0.8x tmpfs; time to durable on disk <= 1.15x posix;
drain throughput >= 0.8x cp+fsync; on S3, write and read >= 0.9x the raw
client and a column read moving <= 1.2x the bytes asked.

With --json, the figures go there and their chart next to it (the same path, .png).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plotting import Panel, chart_path, write_chart
from write_read import (
    DTYPE,
    GiB,
    H5pyMpio,
    MiB,
    Profiler,
    Progress,
    RawPosix,
    Region,
    System,
    Workload,
    h5py,
    on_root,
    record_header,
    workload_shape,
    write_run,
)
from write_read import Esdm as EsdmOnDisk

import esdm_hpc
from esdm_hpc.drain import drain

TARGET_VS_DISK = 2.5  # application-visible bandwidth against posix and h5py on the disk
TARGET_VS_TMPFS = 0.8
TARGET_DURABLE = 1.15  # time to durable on disk, at most this times posix's
TARGET_DRAIN = 0.8  # drain throughput against cp + fsync
TARGET_S3 = 0.9  # ESDM on s3 against the raw client, write and read
TARGET_COLUMN = 1.2  # bytes a column read fetches from s3, at most this times those asked
SMALL_BLOCK = 32  # bytes: a checksum block size at which a column fetches what it asks


class EsdmBurstBuffer(EsdmOnDisk):
    """W1's ESDM system with a burst buffer in front of the disk."""

    name = "esdm-bb"
    uri = "esdm://tiers"

    def __init__(self, workload: Workload, disk: Path, shm: Path, comm: MPI.Comm) -> None:
        super().__init__(workload, disk, comm, profiler=Profiler(False), block_size=None)
        self.config = {
            "backends": [
                {"id": "disk", "type": "posix", "target": str(disk)},
                {"id": "bb", "type": "burstbuffer", "target": str(shm), "drain_to": "disk"},
            ]
        }


def cp_fsync(source: Path, target: Path) -> float:
    """Copy the files under ``source`` to ``target`` and fsync them: the seconds taken."""
    start = time.perf_counter()
    target.mkdir(parents=True)
    for file in sorted(source.iterdir()):
        copied = target / file.name
        shutil.copyfile(file, copied)
        fd = os.open(copied, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def one_run(args: argparse.Namespace, comm: MPI.Comm, workload: Workload, where: Path,
            shm: Path) -> dict[str, float]:  # fmt: skip
    """One run of every system: seconds by measurement."""
    rank_block = workload.block(comm.rank, 0)
    base = workload.expected(rank_block)[0]
    buffer = np.empty_like(base)
    systems: list[System] = [
        EsdmBurstBuffer(workload, where / "esdm-disk", shm / "esdm-bb", comm),
        RawPosix(workload, where / "posix", comm),
        RawPosix(workload, shm / "tmpfs", comm),
    ]
    systems[2].name = "tmpfs"
    if h5py is not None and h5py.get_config().mpi:
        systems.append(H5pyMpio(workload, where / "h5py", comm, collective=True))
    seconds: dict[str, float] = {}
    for system in systems:
        progress = Progress(comm.rank == 0 and not args.quick, system.name, workload.steps,
                            workload.step_bytes)  # fmt: skip
        seconds[system.name] = write_run(system, base, buffer, progress).seconds
    comm.Barrier()
    start = time.perf_counter()
    report = on_root(comm, lambda: drain(EsdmBurstBuffer.uri, config=systems[0].config))
    seconds["drain"] = time.perf_counter() - start
    if comm.rank == 0:
        assert report.at_risk == 0 and not report.refused, report
        check(systems[0], workload)
        seconds["cp+fsync"] = cp_fsync(shm / "tmpfs", where / "copied")
    seconds["cp+fsync"] = comm.bcast(seconds.get("cp+fsync"), root=0)
    comm.Barrier()
    return seconds


def check(system: System, workload: Workload) -> None:
    """The drained data reads back, with the burst buffer gone."""
    assert isinstance(system, EsdmBurstBuffer)
    shutil.rmtree(system.config["backends"][1]["target"])
    reader = system.reader()
    region = workload.column
    if not np.array_equal(reader.read(region), workload.expected(region)):
        raise AssertionError("esdm-bb: the drained data reads back wrong")
    reader.close()


def summarise(runs: list[dict[str, float]], workload: Workload) -> dict[str, Any]:
    best = {name: min(run[name] for run in runs) for name in runs[0]}
    total = workload.total_bytes
    bandwidth = {name: total / MiB / s for name, s in best.items()}
    durable = min(run["esdm-bb"] + run["drain"] for run in runs)
    ratios = {
        "visible_vs_posix": best["posix"] / best["esdm-bb"],
        "visible_vs_tmpfs": best["tmpfs"] / best["esdm-bb"],
        "durable_vs_posix": durable / best["posix"],
        "drain_vs_cp": best["cp+fsync"] / best["drain"],
    }
    if "h5py-collective" in best:
        ratios["visible_vs_h5py"] = best["h5py-collective"] / best["esdm-bb"]
    return {"seconds": best, "mib_s": bandwidth, "durable_s": durable, "ratios": ratios}


def s3_summary(s3: dict[str, float], nbytes: int) -> dict[str, Any]:
    asked = s3["column bytes asked"]
    return {
        "mib_s": {name: nbytes / MiB / s3[name] for name in
                  ("esdm write", "raw write", "esdm read", "raw read")},
        "column_bytes": {"asked": asked, "default block": s3["column bytes default"],
                         f"{SMALL_BLOCK} B blocks": s3[f"column bytes {SMALL_BLOCK} B"]},
        "ratios": {"write_vs_raw": s3["raw write"] / s3["esdm write"],
                   "read_vs_raw": s3["raw read"] / s3["esdm read"],
                   "column_default": s3["column bytes default"] / asked,
                   "column_small": s3[f"column bytes {SMALL_BLOCK} B"] / asked},
    }  # fmt: skip


def report(summary: dict[str, Any], workload: Workload) -> None:
    mib_s, ratios = summary["mib_s"], summary["ratios"]
    print(f"\n  {'system':<18} {'MiB/s':>9}  (open + {workload.steps} durable steps + close)")
    for name in ("esdm-bb", "tmpfs", "posix", "h5py-collective", "drain", "cp+fsync"):
        if name in mib_s:
            print(f"  {name:<18} {mib_s[name]:9.1f}")
    durable_mib_s = workload.total_bytes / MiB / summary["durable_s"]
    print(f"  {'esdm-bb + drain':<18} {durable_mib_s:9.1f}  (time to durable on disk)")

    def line(label: str, key: str, target: float, at_most: bool = False) -> None:
        if key in ratios:
            met = ratios[key] <= target if at_most else ratios[key] >= target
            sign = "<=" if at_most else ">="
            verdict = "met" if met else "MISSED"
            print(f"ratio {label}: {ratios[key]:.2f}x (target {sign} {target}x: {verdict})")

    line("ESDM-bb/raw-posix visible write", "visible_vs_posix", TARGET_VS_DISK)
    line("ESDM-bb/h5py-collective visible write", "visible_vs_h5py", TARGET_VS_DISK)
    line("ESDM-bb/raw-tmpfs visible write", "visible_vs_tmpfs", TARGET_VS_TMPFS)
    line("time to durable ESDM-bb+drain/raw-posix", "durable_vs_posix", TARGET_DURABLE, True)
    line("drain/cp+fsync throughput", "drain_vs_cp", TARGET_DRAIN)
    if "s3" in summary:
        s3 = summary["s3"]
        print("\n  S3 (one process, SeaweedFS on loopback):")
        for name, value in s3["mib_s"].items():
            print(f"  {name:<18} {value:9.1f} MiB/s")
        column = s3["column_bytes"]
        print(f"  16x16 column: {column['asked']} bytes asked, {column['default block']} "
              f"fetched (default checksum blocks), {column[f'{SMALL_BLOCK} B blocks']} "
              f"fetched ({SMALL_BLOCK} B blocks)")  # fmt: skip
        ratios = s3["ratios"]
        for label, key, target, at_most in (
            ("ESDM/raw-client S3 write", "write_vs_raw", TARGET_S3, False),
            ("ESDM/raw-client S3 read", "read_vs_raw", TARGET_S3, False),
            (
                "S3 column bytes fetched/asked, default blocks",
                "column_default",
                TARGET_COLUMN,
                True,
            ),
            (
                f"S3 column bytes fetched/asked, {SMALL_BLOCK} B blocks",
                "column_small",
                TARGET_COLUMN,
                True,
            ),
        ):
            met = ratios[key] <= target if at_most else ratios[key] >= target
            sign = "<=" if at_most else ">="
            print(f"ratio {label}: {ratios[key]:.2f}x (target {sign} {target}x: "
                  f"{'met' if met else 'MISSED'})")  # fmt: skip


def chart(summary: dict[str, Any], workload: Workload, path: Path) -> None:
    mib_s = summary["mib_s"]
    peers = [n for n in ("tmpfs", "posix", "h5py-collective") if n in mib_s]
    durable = workload.total_bytes / MiB / summary["durable_s"]
    panels = [
        Panel(
            "application-visible write (burst buffer on tmpfs)",
            "MiB/s",
            ["write"],
            {"esdm-bb": [mib_s["esdm-bb"]], **{n: [mib_s[n]] for n in peers}},
        ),
        Panel(
            "time to durable on disk, as bandwidth",
            "MiB/s",
            ["durable"],
            {"esdm-bb + drain": [durable], "posix": [mib_s["posix"]]},
        ),
        Panel(
            "drain throughput",
            "MiB/s",
            ["copy"],
            {"drain": [mib_s["drain"]], "cp+fsync": [mib_s["cp+fsync"]]},
        ),
    ]
    if "s3" in summary:
        s3 = summary["s3"]["mib_s"]
        panels.append(
            Panel(
                "S3 (SeaweedFS): ESDM against the raw client",
                "MiB/s",
                ["write", "read"],
                {
                    "esdm": [s3["esdm write"], s3["esdm read"]],
                    "raw client": [s3["raw write"], s3["raw read"]],
                },
            )
        )
    write_chart(path, f"Tiers on {workload.nprocs} rank(s): burst buffer, drain, disk", panels)


def s3_run(workload: Workload, directory: Path) -> dict[str, float]:
    """The S3 measurements, on one process (rank 0): seconds and bytes by name."""
    import obstore
    from obstore.store import S3Store

    from esdm_hpc.testing.seaweedfs import BUCKET, SeaweedFS

    server = SeaweedFS(directory / "seaweedfs").start()
    try:
        options = server.options()
        raw = S3Store(BUCKET, endpoint=options["endpoint"], region=options["region"],
                      access_key_id=options["access_key_id"],
                      secret_access_key=options["secret_access_key"],
                      client_options={"allow_http": True})  # fmt: skip
        full = Region("all", (0, 0, 0, 0), workload.full_shape)
        data = workload.expected(full)
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        for step in range(workload.steps):
            obstore.put(raw, f"raw/step{step}", memoryview(data[step]).cast("B"))
        seconds["raw write"] = time.perf_counter() - start
        start = time.perf_counter()
        for step in range(workload.steps):
            obstore.get(raw, f"raw/step{step}").bytes()
        seconds["raw read"] = time.perf_counter() - start
        for block, label in ((None, "default"), (SMALL_BLOCK, f"{SMALL_BLOCK} B")):
            config = {
                "backends": [
                    {"id": "disk", "type": "posix", "target": str(directory / "meta")},
                    {"id": "s3", "type": "s3", "target": f"esdm-{label}/", "options": options},
                ],
                "metadata_backend": "disk",
                **({} if block is None else {"block_size": block}),
            }
            config["backends"][0]["performance"] = {"write_bandwidth": "1 MB/s"}  # data to s3
            uri = f"esdm://s3-{block or 'default'}"
            start = time.perf_counter()
            with esdm_hpc.open(uri, "w", config=config) as container:
                field = container.create_dataset("field", shape=workload.full_shape, dtype=DTYPE)
                for step in range(workload.steps):
                    field[step] = data[step]
                    container.commit()
            if block is None:
                seconds["esdm write"] = time.perf_counter() - start
            with esdm_hpc.open(uri, config=config) as container:
                s3 = container.backends["s3"]
                if block is None:
                    start = time.perf_counter()
                    back = container["field"][...]
                    seconds["esdm read"] = time.perf_counter() - start
                    if not np.array_equal(back, data):
                        raise AssertionError("esdm on s3: the data reads back wrong")
                column = workload.column
                before = s3.traffic.bytes_read
                got = container["field"][column.index]
                seconds[f"column bytes {label}"] = s3.traffic.bytes_read - before
                if not np.array_equal(got, workload.expected(column)):
                    raise AssertionError("esdm on s3: the column reads back wrong")
        seconds["column bytes asked"] = workload.column.nbytes
        return seconds
    finally:
        server.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-gib", type=float, default=0.5, help="data written per system")
    parser.add_argument("--steps", type=int, help="time steps (default: 64 MiB per step)")
    parser.add_argument("--shape", help="Z,Y,X of one step (default: Z,512,512 to fit)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best counts")
    parser.add_argument("--dir", type=Path, help="parent of the data directory on the disk")
    parser.add_argument("--shm", type=Path, default=Path("/dev/shm"), help="the tmpfs")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 measurements")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.shape, args.steps, args.repeat = args.shape or "8,64,64", args.steps or 4, 1
    if args.repeat < 1:
        parser.error("--repeat must be positive")
    return args


def run(args: argparse.Namespace, comm: MPI.Comm) -> int:
    shape, steps = workload_shape(args)
    workload = Workload.create(shape, steps, comm.size)

    def directories() -> tuple[Path, Path]:
        parent = args.dir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        return (Path(tempfile.mkdtemp(prefix="esdm-tiers-", dir=parent)),
                Path(tempfile.mkdtemp(prefix="esdm-tiers-", dir=args.shm)))  # fmt: skip

    disk, shm = on_root(comm, directories)
    if comm.rank == 0:
        print(f"Tiers on {comm.size} rank(s): field {shape} float32 x {steps} steps = "
              f"{workload.total_bytes / GiB:.2f} GiB per system; disk {disk}, tmpfs {shm}; "
              f"best of {args.repeat}")  # fmt: skip
    runs = []
    try:
        for rep in range(args.repeat):
            runs.append(one_run(args, comm, workload, disk / f"run{rep}", shm / f"run{rep}"))
            if comm.rank == 0:
                shutil.rmtree(disk / f"run{rep}")
                shutil.rmtree(shm / f"run{rep}", ignore_errors=True)
            comm.Barrier()
    finally:
        if comm.rank == 0:
            shutil.rmtree(disk, ignore_errors=True)
            shutil.rmtree(shm, ignore_errors=True)
    s3 = None
    if comm.rank == 0 and not args.no_s3:
        s3_dir = Path(tempfile.mkdtemp(prefix="esdm-tiers-s3-", dir=args.dir or None))
        try:
            s3 = s3_run(Workload.create(shape, steps, 1), s3_dir)
        finally:
            shutil.rmtree(s3_dir, ignore_errors=True)
    if comm.rank == 0:
        summary = summarise(runs, workload)
        if s3 is not None:
            summary["s3"] = s3_summary(s3, workload.total_bytes)
        report(summary, workload)
        if args.json is not None:
            record = {
                **record_header("tiers", comm, workload),
                "runs": runs,
                "summary": summary,
            }
            args.json.write_text(json.dumps(record, indent=2) + "\n")
            chart(summary, workload, chart_path(args.json))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    comm = MPI.COMM_WORLD
    try:
        return run(args, comm)
    except Exception:
        traceback.print_exc()  # one rank failing must not leave the others waiting
        sys.stderr.flush()
        comm.Abort(1)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
