"""Encodings in manifests: compound layouts and the metadata HDF5 types need survive JSON;
block digests."""

import json

import numpy as np
import pytest

from esdm_hpc.encoding import array_from_json, array_to_json, dtype_from_json, dtype_to_json
from esdm_hpc.fragment import Fragment, encode_digests

COMPOUND = np.dtype(
    {
        "names": ["b", "a", "inner"],
        "formats": ["<i2", ("<f8", (2, 3)), [("tag", "S3"), ("n", ">u4")]],
        "offsets": [56, 0, 48],  # out of order, padded
        "itemsize": 64,
    }
)


def round_trip(dtype: np.dtype) -> np.dtype:
    return dtype_from_json(json.loads(json.dumps(dtype_to_json(dtype))))


@pytest.mark.parametrize(
    "dtype",
    [np.dtype("<f4"), np.dtype(">i8"), np.dtype("S7"), COMPOUND],
    ids=["float", "big-endian", "bytes", "compound"],
)
def test_dtypes_round_trip(dtype: np.dtype) -> None:
    back = round_trip(dtype)
    assert back == dtype and back.itemsize == dtype.itemsize
    assert back.names == dtype.names
    if dtype.names:
        assert [back.fields[n][1] for n in back.names] == [dtype.fields[n][1] for n in dtype.names]


def test_the_metadata_hdf5_types_need_is_kept_and_only_that() -> None:
    enum = np.dtype("i1", metadata={"enum": {"RED": 0, "BLUE": 2}, "unrelated": object()})
    assert round_trip(enum).metadata == {"enum": {"RED": 0, "BLUE": 2}}
    opaque = np.dtype("V8", metadata={"opaque_tag": "blob"})
    assert round_trip(opaque).metadata == {"opaque_tag": "blob"}
    fields = {
        "fields": {"b": {"enum": {"x": 1}}, "inner": {"fields": {"tag": {"strpad": "nullterm"}}}}
    }
    compound = np.dtype(COMPOUND, metadata=fields)
    back = round_trip(compound)
    assert back == COMPOUND and back.metadata == fields
    assert round_trip(np.dtype("<f8", metadata={"unrelated": 1})).metadata is None


def test_manifests_written_with_numpy_descr_lists_still_read() -> None:
    assert dtype_from_json([["a", "<i4"], ["", "|V4"], ["b", "<f8", [2]]]) == np.dtype(
        {"names": ["a", "b"], "formats": ["<i4", ("<f8", (2,))], "offsets": [0, 8], "itemsize": 24}
    )


def test_arrays_of_compound_values_round_trip() -> None:
    values = np.zeros(3, dtype=np.dtype(COMPOUND, metadata={"fields": {"b": {"bitfield": True}}}))
    values["b"] = [1, 2, 3]
    values["a"] = np.arange(18).reshape(3, 2, 3)
    values["inner"]["tag"] = [b"x", b"yy", b"zzz"]
    back = array_from_json(json.loads(json.dumps(array_to_json(values))))
    assert back.tobytes() == values.tobytes() and back.dtype.metadata == values.dtype.metadata


def fragment_record(checksums: object) -> dict:
    return {
        "id": "f", "dataset": "/x", "epoch": 1, "rank": 0, "seq": 0, "offset": [0],
        "count": [5], "serialisation": "C", "codec": "raw", "nbytes": 40, "block_size": 8,
        "checksums": checksums, "replicas": [["disk", "log", 0, 40]],
        "minimum": None, "maximum": None,
    }  # fmt: skip


def test_block_digests_are_base64_and_any_range_decodes_alone() -> None:
    digests = np.array([1, 2**64 - 1, 3, 2**63, 5], dtype=np.uint64)
    fragment = Fragment.from_json(fragment_record(encode_digests(digests)))
    assert json.loads(json.dumps(fragment.to_json())) == fragment_record(fragment.checksums)
    assert fragment.nblocks == 5
    for first in range(6):
        for stop in range(first, 7):
            assert fragment.digests(first, stop).tolist() == digests[first:stop].tolist()
    # manifests written before hold the digests as integers
    old = Fragment.from_json(fragment_record(digests.tolist()))
    assert old.checksums == fragment.checksums
    with pytest.raises(ValueError, match="not whole digests"):
        Fragment.from_json(fragment_record("AAAA"))
