"""The same random h5py program (tests/vol/differential.py) with native HDF5
and through the connector must read the same values and end with the same
file: datasets of every kind of type, selections, resizes that shrink,
flushes, point writes, compound fields, attributes and reopening."""

import json
from pathlib import Path

import pytest

from tests.vol.conftest import Site, report

PROGRAM = str(Path(__file__).with_name("differential.py"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_h5py_sees_the_same_through_the_connector_as_natively(site: Site, seed: int) -> None:
    native = site.native(site.env["ESDM_VOL_PYTHON"], PROGRAM, "native.h5", str(seed), "300")
    through = site.run(site.env["ESDM_VOL_PYTHON"], PROGRAM, f"esdm://diff{seed}", str(seed), "300")
    assert through.returncode == 0, report(through)
    expected, seen = json.loads(native.stdout), json.loads(through.stdout)
    first = next((i for i, (a, b) in enumerate(zip(expected, seen, strict=True)) if a != b), None)
    assert first is None, f"step {first}: native {expected[first]}, esdm {seen[first]}"
    assert len(expected) > 250
