"""`esdm vol-env`: the exports that load the connector."""

import argparse
import shlex
import sys

import pytest

from esdm_hpc.vol import env as vol_env


def test_the_environment_names_the_connector_its_directory_and_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HDF5_PLUGIN_PATH", raising=False)
    variables = vol_env.environment()
    assert variables["HDF5_VOL_CONNECTOR"] == "esdm"
    assert variables["HDF5_PLUGIN_PATH"] == str(vol_env.plugin_dir())
    assert variables["ESDM_VOL_PYTHON"] == sys.executable
    assert (vol_env.plugin_dir().parent.parent / "esdm_hpc").is_dir()


def test_other_plugin_directories_are_kept_after_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HDF5_PLUGIN_PATH", "/opt/filters")
    assert vol_env.environment()["HDF5_PLUGIN_PATH"] == f"{vol_env.plugin_dir()}:/opt/filters"


def test_exports_are_quoted_for_the_shell() -> None:
    variables = {"A": "plain", "B": "with space"}
    assert vol_env.render(variables) == "export A=plain\nexport B='with space'"
    assert vol_env.render(variables, "csh") == "setenv A plain;\nsetenv B 'with space';"
    for line in vol_env.render(variables).splitlines():
        assert shlex.split(line)[0] == "export"


def test_run_prints_the_exports(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    vol_env.add_arguments(parser)
    assert vol_env.run(parser.parse_args([])) == 0
    assert "export HDF5_VOL_CONNECTOR=esdm" in capsys.readouterr().out
