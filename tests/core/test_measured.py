"""Measured performance (esdm_hpc/measured.py): every manifest records what each backend's
writes took and what the cost model predicted; the site keeps moving averages per
backend; `esdm backends` shows them beside the configuration; with
``performance_model = "learned"`` placement follows them."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli, measured
from esdm_hpc.epochs.history import History
from esdm_hpc.measured import ALPHA, MIN_SAMPLES, Measured, Timing


def two_disks(root: Path, **site: object) -> dict:
    return {
        "backends": [
            {"id": "fast", "type": "posix", "target": str(root / "fast"),
             "performance": {"write_bandwidth": "10 GiB/s", "latency_s": "1 us"}},
            {"id": "slow", "type": "posix", "target": str(root / "slow"),
             "performance": {"write_bandwidth": "1 MB/s", "latency_s": "1 s"}},
        ],
        **site,
    }  # fmt: skip


def placed(config: dict, uri: str = "esdm://m") -> set[str]:
    with esdm_hpc.open(uri, config=config) as container:
        fragments = History.load(container.store).fragments()
    return {r.backend for f in fragments for r in f.replicas}


def write(config: dict, steps: int = 3, rows: int = 64) -> None:
    with esdm_hpc.open("esdm://m", "w", config=config) as container:
        field = container.create_dataset("t", shape=(steps, rows, 4096), dtype="f8")
        for step in range(steps):
            field[step] = np.full((rows, 4096), step, "f8")
            container.commit()


def test_each_manifest_records_the_writes_per_backend(tmp_path: Path) -> None:
    config = two_disks(tmp_path)
    write(config)
    with esdm_hpc.open("esdm://m", config=config) as container:
        history = History.load(container.store)
    for manifest in history.manifests[2:]:
        timing = manifest.writer["backends"]["fast"]
        assert timing["appends"] == 1 and timing["bytes"] == 64 * 4096 * 8
        assert timing["seconds"] > 0 and timing["predicted_s"] > 0
        assert set(manifest.writer["backends"]) == {"fast"}


def test_latency_comes_from_small_appends_and_bandwidth_from_large_ones() -> None:
    model = Measured()
    model = model.learn(Timing(appends=10, bytes=10 * 4096, seconds=0.01))
    assert (model.latency_s, model.latency_samples, model.bandwidth_samples) == (1e-3, 1, 0)
    model = model.learn(Timing(appends=10, bytes=10 * 4096, seconds=0.02))
    assert model.latency_s == pytest.approx((1 - ALPHA) * 1e-3 + ALPHA * 2e-3)
    model = model.learn(Timing(appends=2, bytes=8 << 20, seconds=0.5))
    assert model.write_bandwidth == (8 << 20) / 0.5 and model.bandwidth_samples == 1
    assert model.learn(Timing(appends=1, bytes=256 << 10, seconds=1.0)) == model  # neither
    assert model.learn(Timing()) == model


def test_the_site_keeps_what_it_measured_and_esdm_backends_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(measured, "STORE_SECONDS", 0.0)
    config = two_disks(tmp_path)
    write(config, steps=4, rows=512)  # 16 MiB appends: bandwidth samples
    path = tmp_path / "site.json"
    path.write_text(json.dumps(config))
    assert cli.main(["--config", str(path), "backends"]) == 0
    out = capsys.readouterr().out
    assert "placement by the configured figures; metadata on fast" in out
    lines = out.splitlines()
    fast = lines.index(next(line for line in lines if line.strip().startswith("fast")))
    assert "configured" in lines[fast] and "10.0 GiB/s" in lines[fast]
    assert "measured" in lines[fast + 1] and "(0 + 4 epochs)" in lines[fast + 1]
    meta = esdm_hpc.backends.open_backend(esdm_hpc.config.load_config(config).backend("fast"))
    assert measured.load(meta, "fast").bandwidth_samples == 4


def test_learned_placement_follows_the_measurements(tmp_path: Path) -> None:
    config = two_disks(tmp_path)
    # what the site measured: "fast" is slow, "slow" is fast
    meta = tmp_path / "fast" / "performance"
    meta.mkdir(parents=True)
    for backend, bandwidth in (("fast", 1e6), ("slow", 1e10)):
        model = Measured(1e-6, MIN_SAMPLES, bandwidth, MIN_SAMPLES)
        (meta / f"{backend}.json").write_text(json.dumps(dataclasses.asdict(model)))
    write(config, steps=1)
    assert placed(config) == {"fast"}  # configured figures: measurements only shown
    learned = {**config, "performance_model": "learned"}
    with esdm_hpc.open("esdm://n", "w", config=learned) as container:
        container.create_dataset("t", data=np.zeros((64, 4096)))
    assert placed(learned, "esdm://n") == {"slow"}


def test_a_measurement_with_too_few_samples_leaves_the_configured_figure() -> None:
    configured = esdm_hpc.config.PerformanceModel(1e-3, 1e9, 1e9)
    few = Measured(5.0, MIN_SAMPLES - 1, 1.0, MIN_SAMPLES)
    assert few.applied(configured) == dataclasses.replace(configured, write_bandwidth=1.0)
