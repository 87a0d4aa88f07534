"""Smoke tests of the benchmarks: they run, on tiny sizes, and report what they promise."""

import json
import subprocess
import sys
from pathlib import Path

from tests.mpirun import ROOT, mpirun


def benchmark(script: str, *args: object, timeout: float) -> subprocess.CompletedProcess[str]:
    """``benchmarks/<script>`` run by this Python (a driver, not under mpirun)."""
    return subprocess.run(
        [sys.executable, f"benchmarks/{script}", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def report(run: subprocess.CompletedProcess[str]) -> str:
    return f"--- stdout\n{run.stdout[-6000:]}\n--- stderr\n{run.stderr[-4000:]}"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_chart(results: Path) -> Path:
    """The benchmark drew its chart next to its JSON (the same path, .png): a real PNG image."""
    chart = results.with_suffix(".png")
    assert chart.is_file(), f"no chart {chart.name} next to {results.name}"
    data = chart.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{chart.name} is not a PNG: {data[:16]!r}"
    assert len(data) > 10_000, f"{chart.name} has {len(data)} bytes: an empty image?"
    return chart


def test_write_read_benchmark_runs_and_reports_ratios(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run = mpirun(
        2,
        "benchmarks/write_read.py", "--quick", "--dir", str(tmp_path), "--json", str(results),
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, report(run)
    for line in (
        "ratio ESDM/raw-posix write:",
        "ratio ESDM/h5py-collective write:",
        "commit overhead beyond data flush, 2 ranks x 100 fragments:",
    ):
        assert line in run.stdout, report(run)
    record = json.loads(results.read_text())
    assert record["nprocs"] == 2
    assert {"posix", "esdm"} <= set(record["write"])
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart}, "the data directory was not removed"


def test_kernel_benchmark_runs_and_reports_every_kernel(tmp_path: Path) -> None:
    results = tmp_path / "kernels.json"
    run = benchmark("kernels.py", "--quick", "--json", results, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    kernels = {r["kernel"].split()[0] for r in json.loads(results.read_text())["results"]}
    assert kernels == {"hilbert", "checksum", "find_overlaps", "subtract", "box", "decompose"}
    assert "vs numpy" in run.stdout
    assert_chart(results)


def test_vol_benchmark_runs_both_connectors_and_reports_ratios(tmp_path: Path) -> None:
    results = tmp_path / "vol.json"
    run = benchmark("vol.py", "--quick", "--dir", tmp_path, "--json", results, timeout=600)
    assert run.returncode == 0, report(run)
    assert run.stdout.count("ratio esdm/native: write") == 2, report(run)
    record = json.loads(results.read_text())
    assert set(record["ranks"]) == {"1", "2"}
    for ranks in record["ranks"].values():
        assert {"native", "esdm"} == set(ranks["runs"])
        assert ranks["summary"]["call_time"] > 0
        assert ranks["summary"]["warm_read"] > 0
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart}, "the data directory was not removed"


def test_page_alignment_benchmark_reports_every_distance(tmp_path: Path) -> None:
    results = tmp_path / "alignment.json"
    run = benchmark(
        "page_alignment.py", "--mib", 1, "--dir", tmp_path, "--json", results, timeout=120
    )
    assert run.returncode == 0, run.stderr[-4000:]
    rows = [line.split() for line in run.stdout.splitlines()[2:]]
    distances = [0, 1, 16, 32, 33, 64, 512, 2064, 4080]
    assert [int(r[0]) for r in rows] == distances
    assert all(float(r[1]) > 0 for r in rows)
    rates = json.loads(results.read_text())["mib_s_by_distance"]
    assert [int(d) for d in rates] == distances and min(rates.values()) > 0
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart}, "the test file was not removed"


def test_timeseries_benchmark_reads_both_and_reports_ratios(tmp_path: Path) -> None:
    results = tmp_path / "timeseries.json"
    run = benchmark("timeseries.py", "--quick", "--dir", tmp_path, "--json", results, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    for line in ("point cold", "point warm", "box cold", "box warm"):
        assert line in run.stdout, run.stdout
    record = json.loads(results.read_text())
    assert record["esdm"]["box_warm_ms"] > 0 and record["hdf5"]["box_warm_ms"] > 0
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart}, "the data directory was not removed"


def test_open_benchmark_opens_on_every_rank_count(tmp_path: Path) -> None:
    results = tmp_path / "open.json"
    run = benchmark("open.py", "--quick", "--dir", tmp_path, "--json", results, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "open on 1 rank(s):" in run.stdout and "open on 2 rank(s):" in run.stdout
    opens = json.loads(results.read_text())["open_s"]
    assert set(opens) == {"1 rank(s)", "2 rank(s)"} and min(opens.values()) > 0
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart}, "the data directory was not removed"


def test_tiers_benchmark_drains_and_reports_ratios(tmp_path: Path) -> None:
    results = tmp_path / "tiers.json"
    shm = tmp_path / "shm"
    shm.mkdir()
    run = mpirun(
        2,
        "benchmarks/tiers.py", "--quick", "--dir", str(tmp_path), "--shm", str(shm),
        "--json", str(results),
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, report(run)
    for line in (
        "ratio ESDM-bb/raw-posix visible write:",
        "ratio time to durable ESDM-bb+drain/raw-posix:",
        "ratio drain/cp+fsync throughput:",
        "ratio ESDM/raw-client S3 write:",
        "ratio S3 column bytes fetched/asked, 32 B blocks:",
    ):
        assert line in run.stdout, report(run)
    record = json.loads(results.read_text())
    assert record["nprocs"] == 2 and record["summary"]["seconds"]["drain"] > 0
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart, shm}, "the data directory was not removed"
    assert list(shm.iterdir()) == [], "the burst buffer was not removed"


def test_insitu_benchmark_reports_ratios_against_the_targets(tmp_path: Path) -> None:
    results = tmp_path / "insitu.json"
    run = benchmark("insitu.py", "--quick", "--dir", tmp_path, "--json", results, timeout=120)
    assert run.returncode == 0, report(run)
    for line in (
        "in-situ means equal the read-back's: True",
        "ratio time to last result read-back/in-situ (Numba):",
        "ratio step time Numba hook/write alone:",
    ):
        assert run.stdout.count(line) == 2, report(run)  # 1 and 2 ranks
    record = json.loads(results.read_text())
    assert set(record["ranks"]) == {"1", "2"}
    for ranks in record["ranks"].values():
        read = ranks["summary"]["mib_read"]
        # in-situ reads metadata only; the read-back reads the box of every step
        assert read["numba"] < 0.1 * read["usual"] and read["python"] < 0.1 * read["usual"]
        assert ranks["summary"]["time_to_result_s"]["usual"] > 0
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart}, "the data directory was not removed"


def test_compression_benchmark_runs_both_systems_and_reports_ratios(tmp_path: Path) -> None:
    results = tmp_path / "compression.json"
    run = benchmark("compression.py", "--quick", "--dir", tmp_path, "--json", results, timeout=600)
    assert run.returncode == 0, report(run)
    for case in ("shuffle+deflate", "shuffle+zstd", "blosc"):
        assert run.stdout.count(f"ratio ESDM/HDF5 {case}: stored") == 2, report(run)
    record = json.loads(results.read_text())
    assert set(record["ranks"]) == {"1", "2"}
    for ranks in record["ranks"].values():
        gzip = ranks["summary"]["shuffle+deflate"]
        assert gzip["esdm_stored_mib"] < ranks["raw_bytes"] / (1 << 20) / 2  # it compressed
        assert 0.9 < gzip["ratio_stored_mib"] < 1.1
    chart = assert_chart(results)
    assert set(tmp_path.iterdir()) == {results, chart}, "the data directory was not removed"
