"""Serial h5py through the connector, and the same data through the Python API.

h5py runs in a subprocess with the `esdm vol-env` environment; the test
process checks the container with esdm_hpc.open, and the other way round.
"""

import json
import sys
from pathlib import Path

import numpy as np

import esdm_hpc
from esdm_hpc.vol.names import container_for_path
from tests.vol.conftest import Site, report

WRITE = """
import json, sys
import h5py, numpy as np

name = sys.argv[1]
with h5py.File(name, "w") as f:
    atmos = f.create_group("atmos")
    tas = atmos.create_dataset("tas", data=np.arange(60, dtype="f4").reshape(3, 4, 5),
                               maxshape=(None, 4, 5))
    tas.attrs["units"] = "K"
    tas.attrs["levels"] = np.array([1000, 850, 500], dtype="i4")
    f["/"].attrs["title"] = "esdm test"
    f["/"].attrs["version"] = 2.5
    counts = f.create_dataset("counts", shape=(10,), dtype="i2", fillvalue=-1)
    counts[2:5] = [1, 2, 3]
    counts[[7, 9]] = [7, 9]
    f.create_dataset("names", data=np.array([b"ab", b"cde"]))
    # a lone process reads back what it wrote before the file is closed
    assert (tas[1, :, ::2] == np.arange(20, 40, dtype="f4").reshape(4, 5)[:, ::2]).all()
    tas.resize((4, 4, 5))
    tas[3] = -1
with h5py.File(name, "r") as f:
    tas = f["atmos/tas"]
    print(json.dumps({
        "tas": tas[...].tolist(), "shape": tas.shape, "maxshape": tas.maxshape,
        "dtype": tas.dtype.str, "units": tas.attrs["units"],
        "levels": tas.attrs["levels"].tolist(), "title": f["/"].attrs["title"],
        "version": float(f["/"].attrs["version"]), "counts": f["counts"][...].tolist(),
        "fill": int(f["counts"].fillvalue), "names": [n.decode() for n in f["names"][...]],
        "members": len(f), "attrs": sorted(f["atmos/tas"].attrs),
    }))
"""


def test_h5py_writes_a_container_the_python_api_reads_identically(site: Site) -> None:
    result = site.python(WRITE, "esdm://h5py/run1")
    assert result.returncode == 0, report(result)
    seen = json.loads(result.stdout)

    tas = np.arange(80, dtype="f4").reshape(4, 4, 5)
    tas[3] = -1
    counts = [-1, -1, 1, 2, 3, -1, -1, 7, -1, 9]
    assert seen["tas"] == tas.tolist() and seen["counts"] == counts
    assert (seen["shape"], seen["maxshape"], seen["dtype"]) == ([4, 4, 5], [None, 4, 5], "<f4")
    assert (seen["units"], seen["levels"], seen["title"]) == ("K", [1000, 850, 500], "esdm test")
    assert (seen["version"], seen["fill"], seen["names"]) == (2.5, -1, ["ab", "cde"])
    assert seen["members"] == 3 and seen["attrs"] == ["levels", "units"]

    with esdm_hpc.open("esdm://h5py/run1", config=site.config) as c:
        stored = c["atmos/tas"]
        assert (stored[...] == tas).all() and stored.dtype == np.dtype("<f4")
        assert stored.maxshape == (None, 4, 5)
        assert stored.attrs["units"] == "K"
        assert stored.attrs["levels"].tolist() == [1000, 850, 500]
        assert c.attrs["title"] == "esdm test" and c.attrs["version"] == 2.5
        assert c["counts"][...].tolist() == counts and c["counts"].fillvalue == -1
        assert c["names"][...].tolist() == [b"ab", b"cde"]


READ = """
import json, sys
import h5py

with h5py.File(sys.argv[1], "r") as f:
    d = f["ocean/sst"]
    print(json.dumps({"sst": d[...].tolist(), "corner": d[1:, 2:].tolist(), "dtype": d.dtype.str,
                      "maxshape": d.maxshape, "chunks": d.chunks, "fill": float(d.fillvalue),
                      "attrs": {k: v.decode() if isinstance(v, bytes) else v.tolist()
                                for k, v in d.attrs.items()},
                      "text_type": type(d.attrs["long_name"]).__name__}))
"""


def test_the_python_api_writes_a_container_h5py_reads_identically(site: Site) -> None:
    sst = np.linspace(-2, 30, 12, dtype="f8").reshape(3, 4)
    with esdm_hpc.open("esdm://api/run1", "w", config=site.config) as c:
        d = c.create_dataset("ocean/sst", shape=(3, 4), dtype="f8", maxshape=(None, 4),
                             fillvalue=-999.0)  # fmt: skip
        d[0:2] = sst[0:2]
        d[2:] = sst[2:]
        d.attrs["scale"] = np.array([0.5, 2.0])
        d.attrs["long_name"] = "sea surface temperature"

    result = site.python(READ, "esdm://api/run1")
    assert result.returncode == 0, report(result)
    seen = json.loads(result.stdout)
    assert seen["sst"] == sst.tolist() and seen["corner"] == sst[1:, 2:].tolist()
    assert (seen["dtype"], seen["maxshape"], seen["fill"]) == ("<f8", [None, 4], -999.0)
    assert seen["chunks"] is not None  # an extendible dataset shows as chunked, as HDF5 needs
    assert seen["attrs"] == {"scale": [0.5, 2.0], "long_name": "sea surface temperature"}
    # the core keeps a str attribute as bytes, which HDF5 shows as a fixed-length
    # string (as netCDF writes text attributes), so h5py returns bytes
    assert seen["text_type"] == "bytes_"


PATHS = """
import sys
import h5py, numpy as np

for name in sys.argv[1:]:
    with h5py.File(name, "w") as f:
        f.create_dataset("x", data=np.arange(4))
"""


def test_plain_paths_and_container_documents_name_containers(site: Site, tmp_path: Path) -> None:
    plain = tmp_path / "runs" / "out.h5"
    document = tmp_path / "run.json"
    document.write_text(json.dumps({"container": "esdm://from-doc", "config": str(site.config)}))

    result = site.python(PATHS, str(plain), f"esd-cfg:{document}")
    assert result.returncode == 0, report(result)
    assert not plain.exists()  # a container, not a file
    for uri in (f"esdm://{container_for_path(str(plain))}", "esdm://from-doc"):
        with esdm_hpc.open(uri, config=site.config) as c:
            assert c["x"][...].tolist() == [0, 1, 2, 3]


ERRORS = """
import h5py, numpy as np

try:
    h5py.File("esdm://missing", "r")
except FileNotFoundError as error:
    print("missing:", error)
with h5py.File("esdm://errors", "w") as f:
    try:
        f.create_dataset("z", shape=(1,), dtype=h5py.regionref_dtype)
    except Exception as error:
        print("regions:", type(error).__name__, error)
    f.create_dataset("ok", data=np.arange(3))
with h5py.File("esdm://errors", "r") as f:
    try:
        f.create_group("g")
    except Exception as error:
        print("read-only:", type(error).__name__, error)
    print("still:", f["ok"][...].tolist())
"""


def test_failures_are_hdf5_errors_with_the_cores_message(site: Site) -> None:
    result = site.python(ERRORS)
    assert result.returncode == 0, report(result)
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert "ContainerNotFoundError: esdm://missing" in lines["missing"]
    assert "H5T_STD_REF_OBJ (a region reference) are not supported yet" in lines["regions"]
    assert "needs mode 'w' or 'a'" in lines["read-only"]
    assert lines["still"].strip() == "[0, 1, 2]"


def test_scalar_datasets_round_trip(site: Site) -> None:
    script = """
import h5py
with h5py.File("esdm://scalar", "w") as f:
    f.create_dataset("x", data=3.5)
with h5py.File("esdm://scalar", "r") as f:
    print(f["x"][()])
"""
    result = site.python(script)
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() == "3.5"


SLABS = """
import h5py, numpy as np

with h5py.File("esdm://slabs", "w") as f:
    line = f.create_dataset("line", shape=(1000,), dtype="f4")
    line[0:1000] = np.arange(1000)
    grid = f.create_dataset("grid", shape=(8, 10), dtype="i4")
    grid[:, 2:6] = np.ones((8, 4))
    grid[::2, 7:] = np.full((4, 3), 2)
    points = f.create_dataset("points", shape=(4, 5), dtype="f8", fillvalue=-1)
    mask = np.zeros((4, 5), dtype=bool)
    mask[1, 1:4] = mask[3, 0] = mask[0, 4] = True  # a point selection: 3 runs
    points[mask] = [1, 2, 3, 4, 5]
    assert points[mask].tolist() == [1, 2, 3, 4, 5]
"""


def test_a_slab_becomes_one_fragment_not_one_per_element(site: Site) -> None:
    # HDF5 lists h5py's slab selections as count x block-of-1: one-element
    # blocks the connector must join, or every element is a fragment.
    result = site.python(SLABS)
    assert result.returncode == 0, report(result)
    info = site.run(sys.executable, "-m", "esdm_hpc.cli", "info", "esdm://slabs")
    assert info.returncode == 0, report(info)
    fragments = {line.split()[0]: int(line.split()[-2]) for line in info.stdout.splitlines()
                 if line.rstrip().endswith("fragments") and line.startswith("  /")}  # fmt: skip
    assert fragments == {"/line": 1, "/grid": 1 + 4, "/points": 3}, info.stdout

    with esdm_hpc.open("esdm://slabs", config=site.config) as c:
        grid, points = c["grid"][...], c["points"][...]
    assert (grid[:, 2:6] == 1).all() and (grid[::2, 7:] == 2).all() and (grid[1::2, 7:] == 0).all()
    assert points[0, 4] == 1 and points[1, 1:4].tolist() == [2, 3, 4] and points[3, 0] == 5
    assert (points == -1).sum() == 20 - 5


LEFT_OPEN = """
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w")  # never closed: the exit commits it
f.create_dataset("x", data=np.arange(3))
kept = f["x"]  # an ID still open when Python goes
"""


def test_a_file_left_open_is_committed_at_exit_without_a_crash(site: Site) -> None:
    result = site.python(LEFT_OPEN, "esdm://h5py/left-open")
    assert result.returncode == 0, report(result)
    assert "Error" not in result.stderr, report(result)
    with esdm_hpc.open("esdm://h5py/left-open", config=site.config) as c:
        assert c["x"][...].tolist() == [0, 1, 2]


ANONYMOUS = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["x"] = np.arange(3)  # H5Dcreate_anon, then H5Olink
    d = f.create_dataset(None, data=np.zeros(4))
    f["later"] = d
    d[0] = 42  # the open ID follows the object to its name
    f.create_dataset(None, data=np.ones(2))  # never linked: gone with its ID
    g = f.create_group(None)
    g["inner"] = np.arange(2)
    f["group"] = g
    e = f.create_dataset(None, data=np.ones(2))  # while d's handle still lives
    del d  # its object was renamed: nothing of e's may go with it
    f["kept"] = e
    print(f["x"].name, f["later"].name, g["inner"].name, e.name)
"""


def test_h5py_anonymous_objects_take_the_name_they_are_linked_by(site: Site) -> None:
    result = site.python(ANONYMOUS, "esdm://h5py/anonymous")
    assert result.returncode == 0, report(result)
    assert result.stdout.split() == ["/x", "/later", "/group/inner", "/kept"]
    with esdm_hpc.open("esdm://h5py/anonymous", config=site.config) as c:
        assert sorted(c.namespace.datasets) == ["/group/inner", "/kept", "/later", "/x"]
        assert c["later"][...].tolist() == [42.0, 0.0, 0.0, 0.0]
        assert c["group/inner"].name == "/group/inner" and not c.namespace.unlinked


POINTS = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("d", data=np.arange(10.0))
    mask = np.arange(10) % 3 == 0
    d[mask] = -1.0  # a point selection in the file
    out = np.zeros(10)
    d.read_direct(out, np.s_[1:5], mask)  # one in memory
    print(d[mask].tolist(), d[...].tolist(), out.tolist())
"""


def test_point_selections_read_and_write_without_hdf5_error_output(site: Site) -> None:
    result = site.python(POINTS, "esdm://h5py/points")
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() == (
        "[-1.0, -1.0, -1.0, -1.0] [-1.0, 1.0, 2.0, -1.0, 4.0, 5.0, -1.0, 7.0, 8.0, -1.0] "
        "[1.0, 0.0, 0.0, 2.0, 0.0, 0.0, -1.0, 0.0, 0.0, 4.0]"
    )
    assert "HDF5-DIAG" not in result.stderr, report(result)


WEAK_CLOSE = """
import sys, h5py, numpy as np
dset = h5py.File(sys.argv[1], "w").create_dataset("x", data=np.arange(4))  # no name keeps the file
dset[1] = 10
print(h5py.File(sys.argv[1], "a")["x"][...].tolist())  # reopened: the same, still open
del dset  # the last open object: closes and commits
print(h5py.File(sys.argv[1], "r")["x"][::2].tolist())
"""


def test_an_open_object_keeps_its_file_open_as_the_weak_close_degree_does(site: Site) -> None:
    result = site.python(WEAK_CLOSE, "esdm://h5py/weak")
    assert result.returncode == 0, report(result)
    assert result.stdout.split("\n")[:2] == ["[0, 10, 2, 3]", "[0, 2]"]
    with esdm_hpc.open("esdm://h5py/weak", config=site.config) as c:
        assert c["x"][...].tolist() == [0, 10, 2, 3]


COPY_BETWEEN = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as a, h5py.File(sys.argv[2], "w") as b:
    g = a.create_group("g")
    g.attrs["k"] = 3
    g.create_dataset("x", data=np.arange(12.0).reshape(3, 4))
    g.create_dataset("s", data=np.array(["a", "bc"], dtype=h5py.string_dtype()))
    g["soft"] = h5py.SoftLink("/g/x")
    g["hard"] = g["x"]
    a["t"] = np.dtype("<i2")
    a.copy(a["g"], b, "copied")
    a.copy(a["t"], b, "t2")
with h5py.File(sys.argv[2], "r") as b:
    c = b["copied"]
    print(c["x"][1].tolist(), c["s"].asstr()[...].tolist(), dict(c.attrs), sorted(c),
          c["hard"] == c["x"], c.get("soft", getlink=True).path, b["t2"].dtype)
"""


def test_h5py_copies_objects_between_files_as_native_hdf5_does(site: Site) -> None:
    native = site.native(site.env["ESDM_VOL_PYTHON"], "-c", COPY_BETWEEN, "a.h5", "b.h5")
    result = site.python(COPY_BETWEEN, "esdm://copy/a", "esdm://copy/b")
    assert result.returncode == 0, report(result)
    assert result.stdout == native.stdout
    assert "[4.0, 5.0, 6.0, 7.0] ['a', 'bc']" in result.stdout


CHUNKS = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("asked", (4, 6), chunks=(2, 3), maxshape=(None, 6), dtype="f4")
    f.create_dataset("grows", (4, 6), maxshape=(None, 6), dtype="f4")
    f.create_dataset("fixed", (4, 6), dtype="f4")
with h5py.File(sys.argv[1], "r") as f:
    print(f["asked"].chunks, f["grows"].chunks, f["fixed"].chunks)
"""


def test_datasets_report_the_chunk_shape_they_were_created_with(site: Site) -> None:
    native = site.native(site.env["ESDM_VOL_PYTHON"], "-c", CHUNKS, "chunks.h5")
    result = site.python(CHUNKS, "esdm://h5py/chunks")
    assert result.returncode == 0, report(result)
    assert result.stdout.split(") ")[0] == native.stdout.split(") ")[0] == "(2, 3"
    assert result.stdout.split()[-1] == "None"  # fixed: contiguous
    with esdm_hpc.open("esdm://h5py/chunks", config=site.config) as c:
        assert c["asked"].hints == {"chunks": [2, 3]}


EMPTY = """
import sys, h5py
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["none"] = h5py.Empty("f4")
    f.attrs["text"] = h5py.Empty(h5py.string_dtype())
    f.attrs["x"] = 1
with h5py.File(sys.argv[1], "r") as f:
    print(f.attrs["none"], f.attrs["text"], sorted(f.attrs), f.attrs.get_id("none").shape)
"""


def test_attributes_with_a_null_dataspace_read_back_as_h5py_empty(site: Site) -> None:
    native = site.native(site.env["ESDM_VOL_PYTHON"], "-c", EMPTY, "empty.h5")
    result = site.python(EMPTY, "esdm://h5py/empty")
    assert result.returncode == 0, report(result)
    assert result.stdout == native.stdout
    assert result.stdout.startswith("Empty(dtype=dtype('<f4'))")
    with esdm_hpc.open("esdm://h5py/empty", config=site.config) as c:
        assert c.attrs["none"] == esdm_hpc.Empty("<f4")


REGION_REFERENCES = """
import h5py, numpy as np
with h5py.File("esdm://regions", "w") as f:
    d = f.create_dataset("x", data=np.arange(100).reshape(10, 10))
    for _ in range(5):  # HDF5 refuses each; the error stack must survive them all
        try:
            d.regionref[:2]
        except RuntimeError as error:
            refused = str(error)
    d[0] = np.full(10, -1)
with h5py.File("esdm://regions", "r") as f:
    print(refused)
    print(f["x"][0, :3].tolist(), f["x"][9, 9])
"""


def test_region_references_are_refused_and_the_program_carries_on(site: Site) -> None:
    # HDF5 pushes its major message H5E_VOL as a minor one when it refuses them:
    # without the connector's references on it, the second refusal crashed h5py.
    result = site.python(REGION_REFERENCES)
    assert result.returncode == 0, report(result)
    refused, data = result.stdout.strip().splitlines()
    assert "must use native VOL connector to create reference" in refused
    assert data == "[-1, -1, -1] 99"


BROADCAST = """
import h5py, numpy as np
with h5py.File("esdm://broadcast", "w") as f:
    d = f.create_dataset("d", shape=(4, 5), dtype="i4")
    d[:] = np.arange(5)  # one row written four times through H5Soffset_simple
    d[1:3, :2] = np.array([7, 8])
    print(d[...].tolist())
"""


def test_broadcast_writes_land_where_their_selections_were_moved(site: Site) -> None:
    result = site.python(BROADCAST)
    assert result.returncode == 0, report(result)
    row = [0, 1, 2, 3, 4]
    assert result.stdout.strip() == str([row, [7, 8, 2, 3, 4], [7, 8, 2, 3, 4], row])
