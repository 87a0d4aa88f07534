"""h5py's navigation through the connector: listing, visiting, membership,
links and object identity (h5py calls HDF5's 1.10 API for these, which the
patched HDF5 allows for any connector: deps/patches)."""

import json

from tests.vol.conftest import Site, report

NAVIGATE = """
import json, sys
import h5py, numpy as np

name = sys.argv[1]
with h5py.File(name, "w") as f:
    f.create_group("b/inner")
    f.create_dataset("a", data=np.arange(4, dtype="i4"))
    f["b/inner"].create_dataset("x", data=np.ones(3))
    f["hard"] = f["a"]
    f["soft"] = h5py.SoftLink("/b/inner/x")
    f["dangling"] = h5py.SoftLink("/nowhere")
    f.create_group("gone")
    del f["gone"]
with h5py.File(name, "r") as f:
    visited = []
    f.visit(visited.append)
    items = []
    f.visititems(lambda n, o: items.append([n, type(o).__name__]))
    print(json.dumps({
        "list": list(f), "inner": list(f["b"]), "visit": visited, "items": items,
        "contains": ["b/inner/x" in f, "b/nothing" in f, "gone" in f, "dangling" in f],
        "soft": f.get("soft", getlink=True).path,
        "hard_kind": type(f.get("hard", getlink=True)).__name__,
        "same": f["a"] == f["hard"], "hash": hash(f["a"]) == hash(f["hard"]),
        "other": f["a"] == f["b/inner/x"],
        "soft_data": f["soft"][...].tolist(), "hard_data": f["hard"][...].tolist(),
        "rc": h5py.h5o.get_info(f["a"].id).rc,
        "fileno": f["a"].id.fileno == f["b"].id.fileno,
    }))
"""


def test_h5py_lists_visits_and_follows_links(site: Site) -> None:
    result = site.python(NAVIGATE, "esdm://nav/run1")
    assert result.returncode == 0, report(result)
    seen = json.loads(result.stdout)
    # name order: the root group does not track creation order here
    assert seen["list"] == ["a", "b", "dangling", "hard", "soft"]
    assert seen["inner"] == ["inner"]
    # every object once, through hard links only; soft links are not followed
    assert seen["visit"] == ["a", "b", "b/inner", "b/inner/x"]
    assert seen["items"] == [
        ["a", "Dataset"],
        ["b", "Group"],
        ["b/inner", "Group"],
        ["b/inner/x", "Dataset"],
    ]
    assert seen["contains"] == [True, False, False, True]  # h5py does not follow the last link
    assert seen["soft"] == "/b/inner/x" and seen["hard_kind"] == "HardLink"
    assert seen["same"] and seen["hash"] and not seen["other"]
    assert seen["soft_data"] == [1.0, 1.0, 1.0] and seen["hard_data"] == [0, 1, 2, 3]
    assert seen["rc"] == 2 and seen["fileno"]


DELETE_ONE_NAME = """
import json, sys
import h5py, numpy as np

name = sys.argv[1]
with h5py.File(name, "w") as f:
    f.create_dataset("data", data=np.arange(5, dtype="i8"))
    f["data"].attrs["units"] = "m"
    f["alias"] = f["data"]
    del f["data"]
with h5py.File(name, "r") as f:
    print(json.dumps({"list": list(f), "values": f["alias"][...].tolist(),
                      "units": f["alias"].attrs["units"],
                      "rc": h5py.h5o.get_info(f["alias"].id).rc}))
"""


def test_deleting_one_name_of_a_two_name_object_keeps_it(site: Site) -> None:
    result = site.python(DELETE_ONE_NAME, "esdm://nav/delete")
    assert result.returncode == 0, report(result)
    seen = json.loads(result.stdout)
    assert seen == {"list": ["alias"], "values": [0, 1, 2, 3, 4], "units": "m", "rc": 1}


TRACK_ORDER = """
import json, sys
import h5py

name = sys.argv[1]
with h5py.File(name, "w") as f:
    ordered = f.create_group("ordered", track_order=True)
    plain = f.create_group("plain")
    for member in ("z", "a", "m"):
        ordered.create_group(member)
        plain.create_group(member)
with h5py.File(name, "r") as f:
    print(json.dumps({"ordered": list(f["ordered"]), "plain": list(f["plain"])}))
"""


def test_groups_created_with_track_order_list_in_creation_order(site: Site) -> None:
    result = site.python(TRACK_ORDER, "esdm://nav/order")
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == {"ordered": ["z", "a", "m"], "plain": ["a", "m", "z"]}
