"""HDF5's API test suite (``h5_api_test``) through the connector and natively, per group.

    python -m tests.vol.api_suite                # run both, print the table, write the results
    python -m tests.vol.api_suite --raise-floor  # raise the floor to the last results

Each group (file, group, dataset, ...) runs as a program of its own with a
timeout, so a crash or a hang costs one group, not the run. The suite seeds
rand() with the time and draws datatypes, shapes and selections from it;
`fixed_seed.c`, preloaded, pins the seed so that the counts repeat.
Asynchronous tests are excluded (this HDF5 does not build them).

Counts are read from the verdicts the suite prints (the same numbers as its
own summary, which a crash never reaches); its "did not pass" summary
counts some failures twice, the verdicts once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from esdm_hpc.vol import env as vol_env
from tests.mpirun import MPI_ENV, ROOT

PROGRAM = ROOT / ".deps" / "hdf5" / "bin" / "h5_api_test"
GROUPS = ("file", "group", "dataset", "datatype", "attribute", "link", "object", "misc")
SEED = 42  # changing it changes the counts: raise the floor anew (--raise-floor --reset)
GROUP_TIMEOUT = 180.0  # seconds; the slowest group takes about 10 s through the connector
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "api_conformance.json"  # written by every run
FLOOR = HERE / "api_floor.json"  # committed: tests passing through the connector, per group
CONNECTORS = ("esdm", "native")

_NAME = re.compile(r"^(?P<indent> *)Testing (?P<name>.*?)\s*(?:PASSED|\*FAILED\*|-SKIP-)?$")
_VERDICT = re.compile(r"(PASSED|\*FAILED\*|-SKIP-)$")


@dataclass
class GroupResult:
    """One group's run: verdict counts, the names of failed tests, how it ended."""

    group: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    outcome: str = "completed"  # or how the program died before its summary
    failures: list[str] = field(default_factory=list)


def parse(group: str, stdout: str) -> GroupResult:
    """Count the verdicts; a failure is named "test" or "test / part" for multi-part tests."""
    result = GroupResult(group)
    test = current = ""
    for line in stdout.splitlines():
        line = line.rstrip()
        if named := _NAME.match(line):
            if named["indent"]:
                current = f"{test} / {named['name']}"
            else:
                test = current = named["name"]
        verdict = _VERDICT.search(line)
        if verdict is None:
            continue
        if verdict[1] == "PASSED":
            result.passed += 1
        elif verdict[1] == "-SKIP-":
            result.skipped += 1
        else:
            result.failed += 1
            result.failures.append(current)
    if "API tests passed with VOL connector" not in stdout:
        result.outcome = "ended before its summary"
    return result


def run_group(group: str, env: dict[str, str], cwd: Path, timeout: float) -> GroupResult:
    try:
        run = subprocess.run(
            [str(PROGRAM), group], capture_output=True, text=True, env=env, cwd=cwd,
            timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as expired:
        partial = expired.stdout or b""
        result = parse(group, partial.decode() if isinstance(partial, bytes) else partial)
        result.outcome = f"timed out after {timeout:.0f} s"
        return result
    result = parse(group, run.stdout)
    if run.returncode < 0:
        result.outcome = f"killed by signal {-run.returncode}"
    return result


def build_seed_shim(directory: Path) -> Path:
    library = directory / "fixed_seed.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(HERE / "fixed_seed.c"), "-ldl"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return library


def environments(work: Path) -> dict[str, dict[str, str]]:
    """Per connector, the environment to run the suite in (the seed shim built into work)."""
    preload = [str(build_seed_shim(work)), os.environ.get("LD_PRELOAD", "")]
    common = {**os.environ, **MPI_ENV, "API_TEST_SEED": str(SEED)}
    common["LD_PRELOAD"] = " ".join(filter(None, preload))
    common["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    common.pop("ESDM_ROOT", None)
    native = {k: v for k, v in common.items() if k != "HDF5_VOL_CONNECTOR"}
    return {"esdm": {**common, **vol_env.environment()}, "native": native}


def site(directory: Path) -> dict[str, str]:
    """A site configuration storing under directory, as the variable that names it."""
    config = directory / "site.json"
    backend = {"id": "disk", "type": "posix", "target": str(directory / "disk")}
    config.write_text(json.dumps({"backends": [backend]}))
    return {"ESDM_CONFIG": str(config)}


def run_suite(work: Path, timeout: float = GROUP_TIMEOUT) -> dict[str, list[GroupResult]]:
    """Every group through each connector."""
    results: dict[str, list[GroupResult]] = {}
    for connector, env in environments(work).items():
        results[connector] = []
        for group in GROUPS:
            # A directory and a store per group: a crashed group leaves files and a
            # container lease behind that would fail the next one.
            cwd = work / connector / group
            cwd.mkdir(parents=True)
            results[connector].append(run_group(group, {**env, **site(cwd)}, cwd, timeout))
    return results


def passed(results: list[GroupResult]) -> dict[str, int]:
    return {r.group: r.passed for r in results}


def write_results(results: dict[str, list[GroupResult]], path: Path = RESULTS) -> None:
    record = {
        "seed": SEED,
        "passed": {
            connector: sum(passed(groups).values()) for connector, groups in results.items()
        },
        "groups": {connector: [asdict(r) for r in groups] for connector, groups in results.items()},
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def read_results(path: Path = RESULTS) -> dict[str, list[GroupResult]]:
    record = json.loads(path.read_text())
    return {c: [GroupResult(**r) for r in groups] for c, groups in record["groups"].items()}


def read_floor(path: Path = FLOOR) -> dict[str, int]:
    return json.loads(path.read_text())["passed"]


def write_floor(floor: dict[str, int], path: Path = FLOOR) -> None:
    record = {"seed": SEED, "total": sum(floor.values()), "passed": floor}
    path.write_text(json.dumps(record, indent=1) + "\n")


def raised_floor(floor: dict[str, int], results: list[GroupResult]) -> dict[str, int]:
    """Per group the larger of the floor and what passes now: it never goes down."""
    now = passed(results)
    return {group: max(floor.get(group, 0), now.get(group, 0)) for group in GROUPS}


def table(results: dict[str, list[GroupResult]]) -> str:
    header = f"{'group':<10}" + "".join(f"{c + ' pass/fail/skip':>26}" for c in results)
    rows = [header]
    by_connector = [{r.group: r for r in groups} for groups in results.values()]
    for group in GROUPS:
        cells = []
        for groups in by_connector:
            r = groups[group]
            note = "" if r.outcome == "completed" else " !"
            cells.append(f"{f'{r.passed}/{r.failed}/{r.skipped}{note}':>26}")
        rows.append(f"{group:<10}" + "".join(cells))
    totals = [sum(passed(groups).values()) for groups in results.values()]
    rows.append(f"{'passed':<10}" + "".join(f"{t:>26}" for t in totals))
    problems = [
        f"{c} {r.group}: {r.outcome}" for c, groups in results.items() for r in groups
        if r.outcome != "completed"
    ]  # fmt: skip
    return "\n".join(rows + problems)


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
        print(f"{FLOOR.name}: {sum(floor.values())} tests, {floor}")
        return 0
    with tempfile.TemporaryDirectory(prefix="api-suite-") as work:
        results = run_suite(Path(work))
    write_results(results)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
