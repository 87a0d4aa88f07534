"""Hooks named in the site configuration reach a C program writing through the HDF5
VOL connector, with no change to it (esdm_hpc/hooks/ `configured`)."""

import json

import numpy as np

import esdm_hpc
from esdm_hpc.epochs.history import History
from tests.vol.conftest import PROGRAMS, Site, report
from tests.vol.test_parallel import expected

HOOKS = "tests.programs.insitu_hooks"


def test_configured_hooks_run_in_an_unchanged_c_program_on_4_ranks(site: Site) -> None:
    config = json.loads(site.config.read_text())
    config["hooks"] = [
        {"dataset": "/collective", "when": "commit", "function": f"{HOOKS}:regional_mean",
         "args": {"lo": [1, 0, 0], "hi": [7, 6, 5]}},
        {"dataset": "/independent", "when": "commit", "function": f"{HOOKS}:extremes"},
    ]  # fmt: skip
    site.config.write_text(json.dumps(config))
    result = site.mpirun(4, str(PROGRAMS / "hyperslabs3d"), "esdm://c/hooked")
    assert result.returncode == 0, report(result)
    assert result.stdout.count("ok ") == 4, report(result)

    with esdm_hpc.open("esdm://c/hooked", config=site.config) as c:
        assert c.epoch == 1  # one commit, at H5Fclose: the derived data in it
        assert c["insitu/mean"][()] == expected((8, 6, 5))[1:7].mean()
        independent = expected((4, 24, 5))
        np.testing.assert_array_equal(
            c["insitu/extremes"][...], [independent.min(), independent.max()]
        )
        epochs = {f.epoch for f in History.load(c.store).records() if f.dataset == "/insitu/mean"}
        assert epochs == {1}
