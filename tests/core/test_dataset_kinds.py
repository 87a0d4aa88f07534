"""Datasets of HDF5's null dataspace (`Empty`), of variable-length sequences, and
with their raw data in external files, through the Python API (the connector
maps h5py's and HDF5's onto these)."""

from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import strings
from esdm_hpc.creation import dataset_meta
from esdm_hpc.encoding import dtype_from_json, dtype_to_json

SEQUENCES = np.dtype("O", metadata={"vlen": np.dtype("<i4")})  # h5py's vlen_dtype("i4")


def sequences(*values: list[int]) -> np.ndarray:
    array = np.empty(len(values), dtype=SEQUENCES)
    for i, value in enumerate(values):
        array[i] = np.array(value, dtype="<i4")
    return array


def test_an_empty_dataset_has_a_type_and_no_elements_across_reopening(config: dict) -> None:
    with esdm_hpc.open("esdm://empty", "w", config=config) as c:
        e = c.create_dataset("e", data=esdm_hpc.Empty("f4"))
        assert e.empty and e[()] == esdm_hpc.Empty(np.dtype("f4"))
        assert not c.create_dataset("full", shape=(2,), dtype="f4").empty
        with pytest.raises(ValueError, match="an Empty dataset has no shape"):
            c.create_dataset("shaped", shape=(2,), data=esdm_hpc.Empty("f4"))
    with esdm_hpc.open("esdm://empty", config=config) as c:
        assert c["e"].empty and c["e"].dtype == np.dtype("f4")
        assert c["e"][...] == esdm_hpc.Empty(np.dtype("f4"))


def test_sequences_of_any_length_round_trip_by_region_over_epochs(config: dict) -> None:
    with esdm_hpc.open("esdm://ragged", "w", config=config) as c:
        r = c.create_dataset("r", shape=(4,), dtype=SEQUENCES)
        assert r.dtype.metadata == {"vlen": np.dtype("<i4")}
        r[0] = np.arange(3, dtype="<i4")  # one sequence for one element
        c.commit()
        r[1:3] = sequences([], list(range(1000)))
    with esdm_hpc.open("esdm://ragged", config=config) as c:
        back = c["r"][...]
        assert [v.tolist() for v in back] == [[0, 1, 2], [], list(range(1000)), []]
        assert c["r"][2][()].dtype == np.dtype("<i4") and c["r"][1:2][0].size == 0
        stored = c.dataset_meta("/r").dtype
        assert strings.sequence_base(stored) == np.dtype("<i4")  # kept as strings are
        assert dtype_from_json(dtype_to_json(stored)) == stored


def test_sequences_refuse_what_is_no_sequence_of_their_type(config: dict) -> None:
    with esdm_hpc.open("esdm://notragged", "w", config=config) as c:
        r = c.create_dataset("r", shape=(2,), dtype=SEQUENCES)
        wrong = np.empty(2, dtype=object)
        wrong[0], wrong[1] = [1, 2], "many words"
        with pytest.raises(TypeError, match=r"'many words' is no sequence of int32"):
            r[...] = wrong
        with pytest.raises(TypeError, match="only of fixed-size types"):
            c.create_dataset(
                "nested", shape=(1,), dtype=np.dtype("O", metadata={"vlen": SEQUENCES})
            )


def test_external_storage_keeps_the_raw_data_in_the_files_it_names(
    config: dict, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    segments = [[str(first), 16, 24], [str(second), 0, None]]  # 3 doubles, then the rest
    data = np.arange(12.0).reshape(3, 4)
    with esdm_hpc.open("esdm://outside", "w", config=config) as c:
        x = c.create_dataset("x", shape=(3, 4), dtype="<f8", hints={"external": segments})
        x[...] = data
        assert x[1:, 1:3].tolist() == data[1:, 1:3].tolist()  # at once, with no commit
    assert first.read_bytes()[16:] == data.reshape(-1)[:3].tobytes()
    assert second.read_bytes() == data.reshape(-1)[3:].tobytes()
    with esdm_hpc.open("esdm://outside", config=config) as c:
        assert c["x"][...].tolist() == data.tolist()
        assert len(c.view(c.dataset_meta("/x"))) == 0  # no fragments: the files hold it
        with pytest.raises(ValueError, match="hold 16 bytes, not 96"):
            dataset_meta("/y", (3, 4), "<f8", epoch=0, hints={"external": [[str(first), 0, 16]]})
