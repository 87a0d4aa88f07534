"""The conformance ratchet: HDF5's API test suite through the connector never passes fewer
tests than the committed floor (tests/vol/api_floor.json), group by group.

Every run writes the counts of both connectors to tests/vol/api_conformance.json and
warns when the floor can rise (vol_plugin/README.md, "Conformance", says how).
"""

import warnings
from pathlib import Path

import pytest

from tests.vol import api_suite


class FloorCanRise(UserWarning):
    """More API tests pass through the connector than the committed floor says."""


@pytest.mark.skipif(not api_suite.PROGRAM.exists(), reason="h5_api_test is not built")
def test_api_suite_passes_at_least_the_recorded_floor(plugin: Path, tmp_path: Path) -> None:
    results = api_suite.run_suite(tmp_path)
    api_suite.write_results(results)
    summary = api_suite.table(results)
    print(summary)

    # The suite itself works here: natively it fails nothing and finishes every group.
    native = results["native"]
    assert all(r.outcome == "completed" and r.failed == 0 for r in native), summary

    floor = api_suite.read_floor()
    esdm = api_suite.passed(results["esdm"])
    dropped = [f"{g}: {esdm[g]} < {floor[g]}" for g in api_suite.GROUPS if esdm[g] < floor[g]]
    assert not dropped, f"fewer API tests pass than the floor: {dropped}\n{summary}"

    if api_suite.raised_floor(floor, results["esdm"]) != floor:
        gained = {g: f"{floor[g]} -> {esdm[g]}" for g in api_suite.GROUPS if esdm[g] > floor[g]}
        warnings.warn(
            FloorCanRise(
                f"more API tests pass ({gained}): raise the floor with "
                "`python -m tests.vol.api_suite --raise-floor` and commit tests/vol/api_*.json"
            ),
            stacklevel=1,
        )
