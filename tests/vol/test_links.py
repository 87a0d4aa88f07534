"""Links, navigation and committed datatypes from C (tests/vol/programs/links.c)."""

import esdm_hpc
from esdm_hpc.namespace import Link
from tests.vol.conftest import PROGRAMS, Site, report


def test_c_program_creates_follows_iterates_and_deletes_links(site: Site) -> None:
    result = site.run(str(PROGRAMS / "links"), "esdm://c/links")
    assert result.returncode == 0 and result.stdout.strip() == "ok", report(result)
    with esdm_hpc.open("esdm://c/links", config=site.config) as c:
        # the file creation property list asked for creation order
        assert c.keys() == ["alpha", "beta", "dangling", "types", "levels"]
        assert c.link("alpha/alias").target == "/zeta"  # the object's identity
        assert c.link("beta").kind == "soft"
        assert c["alpha/alias"][...].tolist() == [1, 2, 3, 4]
        assert c["levels"][...].tolist() == [-1, 0, 7]


H5PY_LINKS = """
import sys, h5py, numpy as np
with h5py.File("other.h5", "w") as other:  # a container named by a plain path
    other.create_dataset("grid/tas", data=np.arange(4.0))
with h5py.File(sys.argv[1], "w") as f:
    f.create_group("run/fields")
    f["outside"] = h5py.ExternalLink("other.h5", "/grid/tas")
    f["nowhere"] = h5py.ExternalLink("missing.h5", "/x")
    f.move("run/fields", "fields")
    with h5py.File(sys.argv[1], "a") as again:  # the open file, shared, not a second writer
        again["again"] = h5py.SoftLink("/fields")
with h5py.File(sys.argv[1], "r") as f:
    link = f.get("outside", getlink=True)
    print(type(link).__name__, link.filename, link.path, sorted(f), sorted(f["run"]))
    print(f["outside"][...].tolist())  # followed: other.h5 opens for as long as needed
    try:
        f["nowhere"]
    except (KeyError, FileNotFoundError) as error:
        print("dangling")
with h5py.File("other.h5", "w") as other:  # closed again: it can be created anew
    pass
"""


def test_h5py_external_links_moves_and_a_shared_reopen(site: Site) -> None:
    result = site.python(H5PY_LINKS, "esdm://h5py/links")
    assert result.returncode == 0, report(result)
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "ExternalLink other.h5 /grid/tas ['again', 'fields', 'nowhere', 'outside', 'run'] []"
    )
    assert lines[1:] == ["[0.0, 1.0, 2.0, 3.0]", "dangling"]
    with esdm_hpc.open("esdm://h5py/links", config=site.config) as c:
        assert c.link("outside") == Link("external", "/grid/tas", "other.h5")
        assert c.link("again") == Link("soft", "/fields")
        assert c["fields"].name == "/run/fields"  # moved, same identity


H5PY_COPY = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("run/tas", data=np.arange(4.0)).attrs["units"] = "K"
    f["run"].attrs["title"] = "r1"
    f.flush()
    f.copy("run", "copy")
    f.copy(f["run/tas"], f["copy"], name="bare", without_attrs=True)
with h5py.File(sys.argv[1], "r") as f:
    print(sorted(f["copy"]), f["copy/tas"][...].tolist(), f["copy"].attrs["title"],
          f["copy/tas"].attrs["units"], sorted(f["copy/bare"].attrs))
"""


def test_h5py_copies_objects_within_a_file(site: Site) -> None:
    result = site.python(H5PY_COPY, "esdm://h5py/copy")
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() == "['bare', 'tas'] [0.0, 1.0, 2.0, 3.0] r1 K []"
