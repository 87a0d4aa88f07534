"""A pytest plugin for the h5py suite runner (tests/vol/h5py_suite.py): one JSON line per
test, written as the test starts and again as it ends, flushed at once.

A test that started and never ended is the one that took the process down (a
segmentation fault, an abort): the runner records it as crashed and goes on
with the tests after it in a new process, with the same record, whose tests
this plugin leaves out. The file is named by the ``H5PY_SUITE_RECORD`` variable.
"""

from __future__ import annotations

import json
import os
from typing import IO

import pytest

_record: IO[str] | None = None
_outcomes: dict[str, str] = {}


def _write(entry: dict[str, str]) -> None:
    if _record is not None:
        _record.write(json.dumps(entry) + "\n")
        _record.flush()
        os.fsync(_record.fileno())  # the next instruction may be the one that crashes


def pytest_configure(config: pytest.Config) -> None:
    global _record
    _record = open(os.environ["H5PY_SUITE_RECORD"], "a+")  # noqa: SIM115 (lives for the session)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the tests an earlier process of this run started (and ended or crashed in)."""
    assert _record is not None
    _record.seek(0)
    started = {json.loads(line).get("start") for line in _record if line.endswith("\n")}
    kept = [item for item in items if item.nodeid not in started]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid in started])
        items[:] = kept


def pytest_runtest_logstart(nodeid: str) -> None:
    _write({"start": nodeid})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # The worst phase decides: a failing teardown fails a passed test; a skip
    # (in setup or a call) or an expected failure counts as skipped.
    if report.failed and not hasattr(report, "wasxfail"):
        outcome = "failed"
    elif report.skipped:
        outcome = "skipped"
    elif report.when == "call":
        outcome = "passed"
    else:
        return
    if _outcomes.get(report.nodeid) != "failed":
        _outcomes[report.nodeid] = outcome


def pytest_runtest_logfinish(nodeid: str) -> None:
    _write({"end": nodeid, "outcome": _outcomes.pop(nodeid, "skipped")})
