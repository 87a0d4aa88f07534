"""Composite datatypes through the connector: compound, enum, opaque, bitfield.

A C program checks what only the C API shows (H5Tequal after reopening,
enum names, opaque tags, member subsets of attributes); h5py and the
Python API check each other's data in both directions.
"""

import json

import h5py
import numpy as np
import pytest
from numpy.lib.recfunctions import repack_fields

import esdm_hpc
from esdm_hpc.vol import dtypes
from tests.vol.conftest import PROGRAMS, Site, report

COLORS = {"RED": -1, "GREEN": 7, "BLUE": 300}
COLOR = h5py.enum_dtype(COLORS, basetype="<i2")
POINT = np.dtype(
    {
        "names": ["x", "n", "tag", "grid"],
        "formats": ["<f8", "<i2", "S3", ("<f4", (2, 3))],
        "offsets": [0, 8, 12, 16],  # padded after n and tag
        "itemsize": 48,
    }
)
NESTED = np.dtype([("id", "<u4"), ("point", POINT), ("weight", "<f4")])
# An enum member, as h5py spells it and as the core does (esdm_hpc.vol.dtypes)
TAGGED = np.dtype([("id", "<u4"), ("color", COLOR)])
TAGGED_CORE = np.dtype(
    [("id", "<u4"), ("color", "<i2")], metadata={"fields": {"color": {"enum": COLORS}}}
)


def nested_values() -> np.ndarray:
    values = np.zeros(4, dtype=NESTED)
    values["id"] = [1, 2, 3, 4]
    values["point"]["x"] = [0.5, 1.5, 2.5, 3.5]
    values["point"]["tag"] = [b"a", b"bb", b"ccc", b""]
    values["point"]["grid"] = np.arange(24).reshape(4, 2, 3)
    values["weight"] = [0.25, -1, 1e6, 0]
    return values


def packed(values: np.ndarray) -> bytes:
    """The bytes of the values without the padding between members (which holds garbage)."""
    return repack_fields(np.asarray(values), recurse=True).tobytes()


def tagged_values(dtype: np.dtype) -> np.ndarray:
    return np.array([(1, 7), (2, -1), (3, 300)], dtype=dtype)


def test_c_program_round_trips_composite_types(site: Site) -> None:
    result = site.run(str(PROGRAMS / "types"), "esdm://c/types")
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() == "ok", report(result)


H5PY_WRITES = """
import sys
import h5py, numpy as np
from tests.vol.test_types import COLOR, nested_values

with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("nested", data=nested_values())
    f.create_dataset("colors", data=np.array([300, -1, 7], dtype="<i2"), dtype=COLOR)
    f.create_dataset("blob", data=np.frombuffer(b"abcdefgh" * 2, dtype="V8"))
    f.create_dataset("complex", data=np.array([1 + 2j, 3 - 4j]))
    f.attrs["origin"] = nested_values()[1]
    f.attrs["palette"] = np.array([7, 300], dtype=COLOR)
"""


def test_h5py_compound_enum_and_opaque_data_read_back_through_the_python_api(site: Site) -> None:
    result = site.python(H5PY_WRITES, "esdm://types/h5py")
    assert result.returncode == 0, report(result)

    with esdm_hpc.open("esdm://types/h5py", config=site.config) as c:
        nested = c["nested"][...]
        assert nested.dtype.names == NESTED.names
        assert packed(nested) == packed(nested_values())
        assert nested.dtype["point"] == POINT  # offsets and padding kept
        colors = c["colors"]
        assert colors.dtype == np.dtype("<i2") and colors[...].tolist() == [300, -1, 7]
        assert colors.dtype.metadata["enum"] == COLORS
        assert c["blob"][...].tobytes() == b"abcdefgh" * 2
        assert c["complex"][...].tobytes() == np.array([1 + 2j, 3 - 4j]).tobytes()
        assert packed(c.attrs["origin"]) == packed(nested_values()[1])
        assert c.attrs["palette"].tolist() == [7, 300]


H5PY_READS = """
import json, sys
import h5py, numpy as np
from tests.vol.test_types import NESTED, nested_values, packed

with h5py.File(sys.argv[1], "r") as f:
    nested, colors, flags = f["nested"], f["colors"], f["flags"]
    print(json.dumps({
        "nested": nested.dtype == NESTED and packed(nested[...]) == packed(nested_values()),
        "rows": packed(nested[1:3]) == packed(nested_values()[1:3]),
        "member enum": h5py.check_enum_dtype(f["tagged"].dtype["color"]),
        "enum": h5py.check_enum_dtype(colors.dtype), "colors": colors[...].tolist(),
        "tag": f["blob"].id.get_type().get_tag().decode(),
        "flags": flags.id.get_type().get_class() == h5py.h5t.BITFIELD,
        "flag values": flags[...].tolist(),
        "attribute": packed(f.attrs["origin"]) == packed(nested_values()[2]),
    }))
"""


def test_the_python_apis_composite_types_read_back_through_h5py(site: Site) -> None:
    with esdm_hpc.open("esdm://types/core", "w", config=site.config) as c:
        c.create_dataset("nested", data=nested_values())
        c.create_dataset("tagged", data=tagged_values(TAGGED_CORE))
        c.create_dataset("colors", data=np.array([7, 300], dtype=COLOR))
        opaque = np.dtype("V3", metadata={"opaque_tag": "rgb"})
        c.create_dataset("blob", data=np.array([b"xyz"], dtype=opaque))
        bitfield = np.dtype("<u2", metadata={"bitfield": True})
        c.create_dataset("flags", data=np.array([1, 0x8000], dtype=bitfield))
        c.attrs["origin"] = nested_values()[2]
    result = site.python(H5PY_READS, "esdm://types/core")
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == {
        "nested": True,
        "rows": True,
        "member enum": COLORS,
        "enum": COLORS,
        "colors": [7, 300],
        "tag": "rgb",
        "flags": True,
        "flag values": [1, 0x8000],
        "attribute": True,
    }


H5PY_CONVERTS = """
import json, sys
import h5py, numpy as np
from tests.vol.test_types import TAGGED, tagged_values

with h5py.File(sys.argv[1], "w") as f:
    tagged = f.create_dataset("tagged", data=tagged_values(TAGGED))
    tagged["id"] = [10, 20, 30]  # one member: the others keep their values
    print(json.dumps({
        "colors": tagged["color"].tolist(),
        "rows": tagged[...].tolist(),
    }))
"""


def test_h5py_converts_compound_members_and_subsets(site: Site) -> None:
    result = site.python(H5PY_CONVERTS, "esdm://types/convert")
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == {
        "colors": [7, -1, 300],
        "rows": [[10, 7], [20, -1], [30, 300]],
    }


@pytest.mark.parametrize(
    "spelling",
    [
        "<i4",
        {"class": "enum", "base": ">i2", "members": [["RED", -1], ["BLUE", 300]]},
        {"class": "opaque", "size": 5, "tag": "five bytes"},
        {"class": "bitfield", "base": "<u4"},
        {"class": "string", "size": 4, "pad": "nullterm", "cset": "utf-8"},
        {"class": "array", "base": {"class": "bitfield", "base": "<u2"}, "shape": [3, 2]},
        {
            "class": "compound",
            "size": 40,
            "members": [
                ["flags", 32, {"class": "bitfield", "base": "|u1"}],
                ["grid", 0, {"class": "array", "base": "<f4", "shape": [2, 3]}],
                ["color", 24, {"class": "enum", "base": "|i1", "members": [["R", 0]]}],
            ],
        },
    ],
    ids=["integer", "enum", "opaque", "bitfield", "string", "array", "compound"],
)
def test_spellings_survive_the_core(spelling: dtypes.Spelling) -> None:
    assert dtypes.spelling(dtypes.to_numpy(spelling)) == spelling


H5PY_SEQUENCES = """
import json, sys
import h5py, numpy as np

ragged = np.empty(3, dtype=object)
ragged[:] = [np.array([1, 2, 3], "i4"), np.array([], "i4"), np.arange(5, dtype="i4")]
with h5py.File(sys.argv[1], "a") as f:
    f.attrs.create("ragged", ragged, dtype=h5py.vlen_dtype("i4"))
    back = f["/"].attrs["from core"]
    print(json.dumps({
        "base": h5py.check_vlen_dtype(back.dtype).str, "values": [s.tolist() for s in back],
    }))
"""


def test_variable_length_sequence_attributes_round_trip_both_ways(site: Site) -> None:
    sequences = np.empty(2, dtype=h5py.vlen_dtype(np.dtype("<f8")))
    sequences[:] = [np.array([0.5]), np.array([1.5, 2.5])]
    with esdm_hpc.open("esdm://types/sequences", "w", config=site.config) as c:
        c.attrs["from core"] = sequences
    result = site.python(H5PY_SEQUENCES, "esdm://types/sequences")
    assert result.returncode == 0, report(result)
    assert json.loads(result.stdout) == {"base": "<f8", "values": [[0.5], [1.5, 2.5]]}

    with esdm_hpc.open("esdm://types/sequences", config=site.config) as c:
        ragged = c.attrs["ragged"]
        assert [s.tolist() for s in ragged] == [[1, 2, 3], [], [0, 1, 2, 3, 4]]
        assert ragged.dtype.metadata["vlen"] == np.dtype("<i4")


H5PY_ARRAY_ELEMENTS = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("winds", (4,), dtype=np.dtype(("<f4", (2,))))  # H5T_ARRAY elements
    d[1:3] = [[1.0, 2.0], [3.0, 4.0]]
    f.attrs.create("corners", np.arange(6).reshape(3, 2), dtype=np.dtype(("<i8", (2,))))
with h5py.File(sys.argv[1], "r") as f:
    print(f["winds"].id.get_type().get_class() == h5py.h5t.ARRAY, f["winds"][...].tolist())
"""


def test_hdf5_array_types_as_whole_elements(site: Site) -> None:
    result = site.python(H5PY_ARRAY_ELEMENTS, "esdm://types/arrays")
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() == "True [[0.0, 0.0], [1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]"
    with esdm_hpc.open("esdm://types/arrays", config=site.config) as c:
        winds = c["winds"][...]  # the core keeps each element as a compound of one member
        assert winds.shape == (4,) and winds["value"].tolist()[2] == [3.0, 4.0]
        assert c.attrs["corners"]["value"].tolist() == [[0, 1], [2, 3], [4, 5]]
