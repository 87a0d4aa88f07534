"""h5py's own test suite (it ships inside h5py) through the connector and natively, per module.

    python -m tests.vol.h5py_suite                # run both, print the table, write the results
    python -m tests.vol.h5py_suite --raise-floor  # raise the floor to the last results

The suite runs in a subprocess under a recorder plugin (`h5py_recorder`) that
writes one line as each test starts and one as it ends: when a test takes the
process down, the runner records it as crashed and starts a new process for
the tests after it, so a crash costs that test, not the run (nor the pytest
that runs this). A hang ends the same way after `TEST_TIMEOUT`.

Each connector runs with a temporary directory, a site configuration and a
store of its own; h5py's tests make their files with `tempfile` there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py

from esdm_hpc.vol import env as vol_env
from tests.mpirun import MPI_ENV, ROOT
from tests.vol.conftest import write_site_config

H5PY = Path(h5py.__file__).resolve().parent
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "h5py_results.json"  # written by every run
FLOOR = HERE / "h5py_floor.json"  # committed: tests passing through the connector, per module
CONNECTORS = ("esdm", "native")
TEST_TIMEOUT = 120  # seconds per test; the slowest takes about 10 s through the connector
MAX_CRASHES = 50  # a run with more is broken beyond counting
OUTCOMES = ("passed", "failed", "skipped", "crashed")


@dataclass
class ModuleResult:
    """One test module's counts, and the names of the tests that failed or crashed."""

    module: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    crashed: int = 0
    failures: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)  # "name: how the process ended"


def module_of(nodeid: str) -> str:
    """``tests/test_vds/test_highlevel_vds.py::Class::test`` -> ``test_vds/test_highlevel_vds``."""
    path = nodeid.split("::", 1)[0]
    return path.removeprefix("tests/").removesuffix(".py")


def short_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[1]


def _read_record(record: Path) -> tuple[dict[str, str], list[str]]:
    """The outcome of every test that ended, and the tests that started, in order."""
    ended: dict[str, str] = {}
    started: list[str] = []
    if not record.exists():
        return ended, started
    for line in record.read_text().splitlines():
        entry = json.loads(line)
        if "start" in entry:
            started.append(entry["start"])
        else:
            ended[entry["end"]] = entry["outcome"]
    return ended, started


def _how_it_ended(run: subprocess.CompletedProcess[str]) -> str:
    if "+++ Timeout +++" in run.stderr:
        return f"timed out after {TEST_TIMEOUT} s"
    if run.returncode < 0:
        return f"killed by signal {-run.returncode}"
    return f"exited with {run.returncode} during the test"


def run_tests(env: dict[str, str], work: Path) -> list[ModuleResult]:
    """The whole suite in ``env`` (with work as its directory), process after process
    until every test has ended or crashed."""
    record = work / "record.jsonl"
    ini = work / "pytest.ini"  # rather than the project's, which h5py's tests know nothing of
    ini.write_text("[pytest]\n")
    command = [
        sys.executable, "-m", "pytest", str(H5PY / "tests"), "-c", str(ini),
        f"--rootdir={H5PY}", "-p", "tests.vol.h5py_recorder", "-p", "no:cacheprovider",
        "-q", "--no-header", "-W", "ignore::pytest.PytestUnknownMarkWarning",
        f"--timeout={TEST_TIMEOUT}", "--timeout-method=thread",
    ]  # fmt: skip
    crashes: dict[str, str] = {}
    while True:
        run = subprocess.run(
            command, capture_output=True, text=True, env={**env, "H5PY_SUITE_RECORD": str(record)},
            cwd=work, timeout=TEST_TIMEOUT * 10,
        )  # fmt: skip
        ended, started = _read_record(record)
        unfinished = [n for n in started if n not in ended and n not in crashes]
        if not unfinished:
            # 0: all passed, 1: some failed, 5: none left after the last crash
            if run.returncode not in (0, 1, 5):
                raise RuntimeError(
                    f"pytest of h5py's suite failed (exit {run.returncode}):\n"
                    f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
                )
            break
        for nodeid in unfinished:
            crashes[nodeid] = _how_it_ended(run)
        if len(crashes) > MAX_CRASHES:
            raise RuntimeError(f"more than {MAX_CRASHES} crashes: {list(crashes)[:10]} ...")
    return _tally(ended, crashes)


def _tally(ended: dict[str, str], crashes: dict[str, str]) -> list[ModuleResult]:
    modules: dict[str, ModuleResult] = {}
    for nodeid, outcome in [*ended.items(), *((n, "crashed") for n in crashes)]:
        result = modules.setdefault(module_of(nodeid), ModuleResult(module_of(nodeid)))
        setattr(result, outcome, getattr(result, outcome) + 1)
        if outcome == "failed":
            result.failures.append(short_name(nodeid))
        elif outcome == "crashed":
            result.crashes.append(f"{short_name(nodeid)}: {crashes[nodeid]}")
    return [modules[name] for name in sorted(modules)]


def environments(work: Path) -> dict[str, dict[str, str]]:
    """Per connector, the environment to run the suite in, with a directory, temporary
    files and a store under work."""
    common = {**os.environ, **MPI_ENV}
    common["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    common.pop("ESDM_ROOT", None)
    native = {k: v for k, v in common.items() if k != "HDF5_VOL_CONNECTOR"}
    found = {"esdm": {**common, **vol_env.environment()}, "native": native}
    for connector, env in found.items():
        directory = work / connector
        (directory / "tmp").mkdir(parents=True)
        env["TMPDIR"] = str(directory / "tmp")
        env["ESDM_CONFIG"] = str(write_site_config(directory))
    return found


def run_suite(work: Path) -> dict[str, list[ModuleResult]]:
    return {c: run_tests(env, work / c) for c, env in environments(work).items()}


def totals(results: list[ModuleResult]) -> dict[str, int]:
    return {outcome: sum(getattr(r, outcome) for r in results) for outcome in OUTCOMES}


def passed(results: list[ModuleResult]) -> dict[str, int]:
    return {r.module: r.passed for r in results}


def write_results(results: dict[str, list[ModuleResult]], path: Path = RESULTS) -> None:
    record = {
        "h5py": h5py.version.version,
        "hdf5": h5py.version.hdf5_version,
        "totals": {connector: totals(modules) for connector, modules in results.items()},
        "modules": {c: [asdict(r) for r in modules] for c, modules in results.items()},
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def read_results(path: Path = RESULTS) -> dict[str, list[ModuleResult]]:
    record = json.loads(path.read_text())
    return {c: [ModuleResult(**r) for r in modules] for c, modules in record["modules"].items()}


def read_floor(path: Path = FLOOR) -> dict[str, int]:
    return json.loads(path.read_text())["passed"]


def write_floor(floor: dict[str, int], path: Path = FLOOR) -> None:
    record = {"h5py": h5py.version.version, "total": sum(floor.values()), "passed": floor}
    path.write_text(json.dumps(record, indent=1) + "\n")


def raised_floor(floor: dict[str, int], results: list[ModuleResult]) -> dict[str, int]:
    """Per module the larger of the floor and what passes now: it never goes down."""
    now = passed(results)
    return {m: max(floor.get(m, 0), now.get(m, 0)) for m in sorted({*floor, *now})}


def table(results: dict[str, list[ModuleResult]]) -> str:
    header = f"{'module':<32}" + "".join(f"{c + ' pass/fail/skip/crash':>30}" for c in results)
    rows = [header]
    by_connector = [{r.module: r for r in modules} for modules in results.values()]
    for module in sorted({m for found in by_connector for m in found}):
        cells = []
        for found in by_connector:
            r = found.get(module, ModuleResult(module))
            cells.append(f"{f'{r.passed}/{r.failed}/{r.skipped}/{r.crashed}':>30}")
        rows.append(f"{module:<32}" + "".join(cells))
    sums = [totals(modules) for modules in results.values()]
    rows.append(
        f"{'total':<32}"
        + "".join(f"{'{passed}/{failed}/{skipped}/{crashed}'.format(**s):>30}" for s in sums)
    )
    crashes = [
        f"{c} {r.module}::{crash}" for c, modules in results.items() for r in modules
        for crash in r.crashes
    ]  # fmt: skip
    return "\n".join(rows + crashes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--raise-floor", action="store_true",
        help=f"raise {FLOOR.name} to the results of the last run ({RESULTS.name}) and stop",
    )  # fmt: skip
    parser.add_argument(
        "--reset", action="store_true",
        help="with --raise-floor: set the floor to the last results even where they are lower",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.raise_floor:
        esdm = read_results()["esdm"]
        floor = passed(esdm) if args.reset else raised_floor(read_floor(), esdm)
        write_floor(floor)
        print(f"{FLOOR.name}: {sum(floor.values())} tests")
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="h5py-suite-") as work:
        results = run_suite(Path(work))
    write_results(results)
    print(table(results))
    print(f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
