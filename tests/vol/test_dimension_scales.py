"""Dimension scales (H5DS) through the connector, from C and from h5py.

With a connector other than the native one H5DS keeps its links in
attributes of new-style references (DIMENSION_LIST, REFERENCE_LIST), so
these need what references need (see test_references).
"""

import json

from tests.vol.conftest import PROGRAMS, Site, report


def test_c_program_attaches_labels_iterates_and_detaches_scales(site: Site) -> None:
    result = site.run(str(PROGRAMS / "dimscales"), "esdm://c/dimscales")
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() == "ok", report(result)


H5PY_DIMS = """
import json, sys
import h5py, numpy as np

with h5py.File(sys.argv[1], "w") as f:
    data = f.create_dataset("data", data=np.arange(12.0).reshape(3, 4))
    x = f.create_dataset("x", data=np.arange(4.0))
    y = f.create_dataset("y", data=np.arange(3.0) * 10)
    x.make_scale("x")
    y.make_scale("y coordinate")
    data.dims[1].attach_scale(x)
    data.dims[0].attach_scale(y)
    data.dims[0].label = "rows"
with h5py.File(sys.argv[1], "r") as f:
    data = f["data"]
    print(json.dumps({
        "x": data.dims[1][0][...].tolist(), "x name": data.dims[1][0].name,
        "y": data.dims[0]["y coordinate"][...].tolist(),
        "label": data.dims[0].label, "scales": len(data.dims[1]), "is scale": f["x"].is_scale,
    }))
"""


def test_h5py_dims_attach_and_read_back(site: Site) -> None:
    result = site.python(H5PY_DIMS, "esdm://h5py/dims")
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == {
        "x": [0.0, 1.0, 2.0, 3.0],
        "x name": "/x",
        "y": [0.0, 10.0, 20.0],
        "label": "rows",
        "scales": 1,
        "is scale": True,
    }
