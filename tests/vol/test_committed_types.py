"""Committed (named) datatypes through h5py: commit, open, use, list."""

import json

from tests.vol.conftest import Site, report

COMMIT = """
import json, sys
import h5py, numpy as np

name = sys.argv[1]
with h5py.File(name, "w") as f:
    f["level_t"] = np.dtype(">i2")
    d = f.create_dataset("levels", data=np.array([1, 2, 3]), dtype=f["level_t"])
with h5py.File(name, "r") as f:
    t = f["level_t"]
    print(json.dumps({"kind": type(t).__name__, "dtype": t.dtype.str, "list": list(f),
                      "values": f["levels"][...].tolist(), "levels": f["levels"].dtype.str,
                      "committed": t.id.committed()}))
"""


def test_h5py_commits_opens_and_uses_a_named_datatype(site: Site) -> None:
    result = site.python(COMMIT, "esdm://types/run1")
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == {
        "kind": "Datatype",
        "dtype": ">i2",
        "list": ["level_t", "levels"],
        "values": [1, 2, 3],
        "levels": ">i2",
        "committed": True,
    }
