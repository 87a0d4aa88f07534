"""The container API on one process: write, commit, read, epochs, namespace."""

from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.errors import ContainerExistsError, ContainerNotFoundError
from tests.core.conftest import site


def test_written_data_reads_back_after_commit(config: dict) -> None:
    field = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    with esdm_hpc.open("esdm://roundtrip", "w", config=config) as c:
        c.create_dataset("tas", shape=field.shape, dtype="f4")
        c["tas"][...] = field
    with esdm_hpc.open("esdm://roundtrip", config=config) as c:
        assert c.epoch == 1
        np.testing.assert_array_equal(c["tas"][...], field)
        np.testing.assert_array_equal(c["tas"][3:7, 10:12], field[3:7, 10:12])
        np.testing.assert_array_equal(c["tas"][5], field[5])
        assert c["tas"][5, 7] == field[5, 7]


def test_fill_value_where_nothing_was_written(config: dict) -> None:
    with esdm_hpc.open("esdm://fill", "w", config=config) as c:
        c.create_dataset("x", shape=(10, 10), dtype="i4", fillvalue=-9)
        c["x"][2:4, 2:4] = 1
    with esdm_hpc.open("esdm://fill", config=config) as c:
        expected = np.full((10, 10), -9, np.int32)
        expected[2:4, 2:4] = 1
        np.testing.assert_array_equal(c["x"][...], expected)
        assert c["x"].fillvalue == -9


def test_newest_epoch_wins_and_epochs_travel_back(config: dict) -> None:
    with esdm_hpc.open("esdm://epochs", "w", config=config) as c:
        x = c.create_dataset("x", shape=(8,), dtype="i8")
        x[:] = 1
        assert c.commit() == 1
        x[2:5] = 2
        assert c.commit() == 2
        x[4:8] = 3
    for epoch, expected in [
        (1, [1, 1, 1, 1, 1, 1, 1, 1]),
        (2, [1, 1, 2, 2, 2, 1, 1, 1]),
        (3, [1, 1, 2, 2, 3, 3, 3, 3]),
    ]:
        with esdm_hpc.open("esdm://epochs", config=config, epoch=epoch) as c:
            np.testing.assert_array_equal(c["x"][...], expected)
    with esdm_hpc.open("esdm://epochs", config=config, epoch=0) as c:
        assert "x" not in c


def test_readers_keep_their_snapshot_until_refresh(config: dict) -> None:
    writer = esdm_hpc.open("esdm://snap", "w", config=config)
    writer.create_dataset("x", shape=(4,), dtype="i4")
    writer["x"][:] = 1
    writer.commit()
    reader = esdm_hpc.open("esdm://snap", config=config)
    writer["x"][:] = 2
    writer.commit()
    assert reader["x"][0] == 1
    assert reader.refresh() == 2
    assert reader["x"][0] == 2
    writer.close()
    reader.close()


def test_a_writer_reads_only_committed_data(config: dict) -> None:
    with esdm_hpc.open("esdm://own", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4,), dtype="i4", fillvalue=7)
        x[:] = 1
        np.testing.assert_array_equal(x[:], [7, 7, 7, 7])
        c.commit()
        np.testing.assert_array_equal(x[:], [1, 1, 1, 1])


def test_large_writes_are_split_into_fragments(tmp_path: Path) -> None:
    config = site(tmp_path, backend={"limits": {"max_fragment_bytes": 4096}})
    field = np.arange(100 * 37, dtype=np.float64).reshape(100, 37)
    with esdm_hpc.open("esdm://split", "w", config=config) as c:
        c.create_dataset("x", data=field)
    with esdm_hpc.open("esdm://split", config=config) as c:
        fragments = c.catalogue.last.fragments
        assert len(fragments) > 1
        assert all(f.nbytes <= 4096 for f in fragments)
        np.testing.assert_array_equal(c["x"][...], field)
        np.testing.assert_array_equal(c["x"][17:83, 5:30], field[17:83, 5:30])


@pytest.mark.parametrize(
    "dtype",
    ["i1", "u2", "<i8", ">f4", "f8", "c8", "S6", "U3", [("t", "f4"), ("q", "i2", (2,))]],
)
def test_dtypes_round_trip(config: dict, dtype: object) -> None:
    dt = np.dtype(dtype)
    data = np.frombuffer(np.random.default_rng(1).bytes(12 * 5 * dt.itemsize), dtype=dt)
    data = data.reshape(12, 5)
    if dt.kind == "U":
        data = np.array([["ab", "c", "", "xyz", "q"]] * 12, dtype=dt)
    with esdm_hpc.open("esdm://dtypes", "w", config=config) as c:
        c.create_dataset("v", data=data)
    with esdm_hpc.open("esdm://dtypes", config=config) as c:
        assert c["v"].dtype == dt
        got = c["v"][...]
        assert got.tobytes() == data.tobytes()


def test_hilbert_serialised_fragments_read_back(config: dict) -> None:
    field = np.random.default_rng(2).random((33, 17, 9))
    with esdm_hpc.open("esdm://hilbert", "w", config=config) as c:
        c.create_dataset("x", shape=field.shape, hints={"serialisation": "hilbert"})
        c["x"][...] = field
    with esdm_hpc.open("esdm://hilbert", config=config) as c:
        assert c.catalogue.last.fragments[0].serialisation == "hilbert"
        np.testing.assert_array_equal(c["x"][4:20, 3:9, 1:2], field[4:20, 3:9, 1:2])


def test_groups_attributes_and_dimensions(config: dict) -> None:
    with esdm_hpc.open("esdm://meta", "w", config=config) as c:
        c.attrs["experiment"] = "piControl"
        g = c.create_group("atmos/daily")
        tas = g.create_dataset("tas", shape=(3, 4), dtype="f4", dims=("lat", "lon"))
        tas.attrs["units"] = "K"
        tas.attrs["valid_range"] = np.array([150.0, 350.0])
        tas.attrs["levels"] = 19
    with esdm_hpc.open("esdm://meta", config=config) as c:
        assert c.attrs["experiment"] == "piControl"
        assert c.keys() == ["atmos"]
        assert c["atmos"].keys() == ["daily"]
        tas = c["atmos/daily/tas"]
        assert tas.dims == ("lat", "lon")
        assert tas.attrs["units"] == "K"
        np.testing.assert_array_equal(tas.attrs["valid_range"], [150.0, 350.0])
        assert tas.attrs["levels"] == 19
        assert dict(c["/atmos/daily"].items())["tas"].shape == (3, 4)


def test_unlimited_dimension_grows(config: dict) -> None:
    with esdm_hpc.open("esdm://grow", "w", config=config) as c:
        x = c.create_dataset("x", shape=(0, 4), maxshape=(None, 4), dtype="i4")
        for step in range(3):
            x.resize(step + 1, axis=0)
            x[step] = step
            c.commit()
        with pytest.raises(ValueError, match="axis 1 can grow to 4"):
            x.resize((3, 5))
    with esdm_hpc.open("esdm://grow", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], np.repeat(np.arange(3), 4).reshape(3, 4))


def test_mode_w_refuses_an_existing_container_unless_overwrite(config: dict) -> None:
    with esdm_hpc.open("esdm://again", "w", config=config) as c:
        c.create_dataset("x", data=np.ones(3))
    with pytest.raises(ContainerExistsError, match="esdm://again already exists"):
        esdm_hpc.open("esdm://again", "w", config=config)
    with esdm_hpc.open("esdm://again", "w", config=config, overwrite=True) as c:
        assert "x" not in c
        c.create_dataset("x", shape=(3,), dtype="f8", fillvalue=5)
    with esdm_hpc.open("esdm://again", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], [5, 5, 5])  # old fragments not mixed in


def test_append_mode_adds_epochs(config: dict) -> None:
    with esdm_hpc.open("esdm://append", "w", config=config) as c:
        c.create_dataset("x", shape=(4,), dtype="i4")
        c["x"][:2] = 1
    with esdm_hpc.open("esdm://append", "a", config=config) as c:
        c["x"][2:] = 2
    with esdm_hpc.open("esdm://append", config=config) as c:
        assert c.epoch == 2
        np.testing.assert_array_equal(c["x"][...], [1, 1, 2, 2])


def test_unknown_container(config: dict) -> None:
    with pytest.raises(ContainerNotFoundError, match="esdm://nothing: no such container"):
        esdm_hpc.open("esdm://nothing", config=config)
    with pytest.raises(ContainerNotFoundError):
        esdm_hpc.open("esdm://nothing", "a", config=config)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: esdm_hpc.open("esdm://bad", "x", config=c), ValueError, "mode must be one of"),
        (lambda c: esdm_hpc.open("bad", config=c), ValueError, "esdm://name"),
        (lambda c: esdm_hpc.open("esdm://a/../b", config=c), ValueError, "segments"),
        (lambda c: esdm_hpc.open("esdm://bad", "w", config=c, epoch=1), ValueError, "mode 'r'"),
    ],
)
def test_bad_open_arguments(config: dict, call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call(config)


def test_bad_selections_and_data_leave_committed_data_intact(config: dict) -> None:
    with esdm_hpc.open("esdm://strict", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4, 5), dtype="i4")
        x[...] = 3
        c.commit()
        with pytest.raises(IndexError, match="out of bounds for axis 0 with size 4"):
            x[4, 0] = 1
        with pytest.raises(IndexError, match="strided"):
            x[::2] = 1
        with pytest.raises(TypeError, match="cannot write float64 data into a dataset of int32"):
            x[0] = np.ones(5)
        with pytest.raises(ValueError, match=r"shape \(3,\) into a selection of shape \(5,\)"):
            x[0] = np.ones(3, dtype="i4")
        with pytest.raises(IndexError, match="too many indices"):
            _ = x[0, 0, 0]
        with pytest.raises(ValueError, match="already exists"):
            c.create_dataset("x", shape=(1,))
    with esdm_hpc.open("esdm://strict", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], np.full((4, 5), 3))
        with pytest.raises(PermissionError, match="needs mode 'w' or 'a'"):
            c["x"][0] = 1
        with pytest.raises(ValueError, match=r"epochs 0\.\.1; epoch 7 does not exist"):
            esdm_hpc.open("esdm://strict", config=config, epoch=7)


def test_scalar_datasets_keep_their_newest_value(config: dict) -> None:
    with esdm_hpc.open("esdm://scalar", "w", config=config) as c:
        s = c.create_dataset("s", shape=(), dtype="f8", fillvalue=-1)
        assert s[()] == -1
        s[()] = 1.5
        c.commit()
        s[...] = 2.5
    with esdm_hpc.open("esdm://scalar", config=config) as c:
        assert c["s"][()] == 2.5
    with esdm_hpc.open("esdm://scalar", config=config, epoch=1) as c:
        assert c["s"][()] == 1.5


def test_async_writes_are_committed_in_call_order(config: dict) -> None:
    with esdm_hpc.open("esdm://async", "w", config=config) as c:
        x = c.create_dataset("x", shape=(6, 4), dtype="i4")
        requests = [x.write_async(row, np.full(4, row)) for row in range(6)]
        x.write_async(slice(0, 2), 9)  # later call wins over the rows above
        requests[0].wait()
        assert requests[0].done()
        c.commit()  # waits for all
        np.testing.assert_array_equal(x[:, 0], [9, 9, 2, 3, 4, 5])
        x.write_async(5, -1)  # pending at close: close waits and commits it
    with esdm_hpc.open("esdm://async", config=config) as c:
        np.testing.assert_array_equal(c["x"][:, 3], [9, 9, 2, 3, 4, -1])


def test_a_failed_async_write_fails_wait_and_the_commit(
    config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    with esdm_hpc.open("esdm://async-error", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4,), dtype="i4")
        with pytest.raises(ValueError, match="cannot write an array of shape"):
            x.write_async(slice(0, 2), np.ones(3, dtype="i4"))  # checked at once
        monkeypatch.setattr(c.open_epoch.writer, "write", _failing_write)
        request = x.write_async(slice(0, 2), 1)
        with pytest.raises(OSError, match="disk on fire"):
            request.wait()
        with pytest.raises(OSError, match="disk on fire"):
            c.commit()  # an epoch missing a write is never published
        assert "x" not in c  # the whole epoch was discarded, its dataset too
        monkeypatch.undo()
        x = c.create_dataset("x", shape=(4,), dtype="i4")
        x[0:2] = 3
        assert c.commit() == 1
    with esdm_hpc.open("esdm://async-error", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], [3, 3, 0, 0])


def _failing_write(*args: object) -> None:
    raise OSError("disk on fire")


def test_an_empty_attribute_keeps_its_type_and_no_value(config: dict) -> None:
    with esdm_hpc.open("esdm://empty", "w", config=config) as c:
        c.attrs["flag"] = esdm_hpc.Empty("i2")
    with esdm_hpc.open("esdm://empty", config=config) as c:
        assert c.attrs["flag"] == esdm_hpc.Empty(np.int16)
        assert c.attrs["flag"].dtype == np.dtype("<i2")


# --- index forms that are refused by name (issue 11, defect 9) ------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (False, "boolean indices are not supported"),
        (True, "boolean indices are not supported"),
        (np.False_, "boolean indices are not supported"),
        (np.array(True), "boolean indices are not supported"),
        ((0, np.True_), "boolean indices are not supported"),
        (slice(False, 2), "boolean indices are not supported"),
        (slice(np.True_, 2), "boolean indices are not supported"),
        (None, r"new axes \(None, np.newaxis\) are not supported"),
        ((np.newaxis, 0), r"new axes \(None, np.newaxis\) are not supported"),
        ([0, 1], r"only integers, slices with step 1 and '...' .*not \[0, 1\] \(list\)"),
        (np.array([0]), r"only integers, .*not array\(\[0\]\) \(ndarray\)"),
        (np.array([True, False, True, False]), "boolean indices are not supported"),
        (1.0, r"only integers, .*not 1.0 \(float\)"),
        ("0", r"only integers, .*not '0' \(str\)"),
        (slice(0.5, 2), r"only integers, .*not 0.5 \(float\)"),
        (slice(0, 2, 0), "strided selections are not supported"),
        (slice(None, None, -1), "strided selections are not supported"),
        (10**100, "index an integer of 333 bits is out of bounds for axis 0 with size 4"),
    ],
    ids=repr,
)
def test_index_forms_not_supported_are_refused_by_name(
    config: dict, key: object, message: str
) -> None:
    with esdm_hpc.open("esdm://keys", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4, 5), dtype="i4")
        x[...] = 3
        c.commit()
        with pytest.raises(IndexError, match=f"^/x read: {message}"):
            _ = x[key]
        with pytest.raises(IndexError, match=f"^/x write: {message}"):
            x[key] = -1
        with pytest.raises(IndexError, match=f"^/x write: {message}"):
            x.write_async(key, -1)
    with esdm_hpc.open("esdm://keys", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], np.full((4, 5), 3))  # row 0 was not written


def test_integer_scalars_of_numpy_select_as_integers(config: dict) -> None:
    with esdm_hpc.open("esdm://numpy-keys", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4, 5), dtype="i4")
        x[np.int64(1)] = 1
        x[np.array(2), np.uint8(3)] = 2
        x[np.int8(-1), slice(np.int16(1), np.int32(3), 1)] = 3
        c.commit()
        expected = np.zeros((4, 5), np.int32)
        expected[1], expected[2, 3], expected[-1, 1:3] = 1, 2, 3
        np.testing.assert_array_equal(x[...], expected)
        np.testing.assert_array_equal(x[np.array(1)], expected[1])


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("esdm:///x", r"uri 'esdm:///x': no '/' may follow 'esdm://'"),
        ("esdm://x/", r"uri 'esdm://x/': a container name does not end with '/'"),
        ("esdm://a/b/", r"uri 'esdm://a/b/': a container name does not end with '/'"),
        ("esdm://", "uri 'esdm://': a container name is one or more segments"),
        ("esdm://a//b", "uri 'esdm://a//b': a container name is one or more segments"),
    ],
)
def test_uris_with_a_slash_too_many_are_refused(config: dict, uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        esdm_hpc.open(uri, "w", config=config)


def test_read_boxes_reads_many_boxes_as_one_region(config: dict) -> None:
    field = np.arange(12 * 10, dtype="i4").reshape(12, 10)
    with esdm_hpc.open("esdm://boxes", "w", config=config) as c:
        x = c.create_dataset("x", shape=field.shape, dtype="i4", fillvalue=-1)
        for row in range(0, 12, 3):  # four fragments
            x[row : row + 3] = field[row : row + 3]
    with esdm_hpc.open("esdm://boxes", config=config) as c:
        boxes = [((0, 0), np.empty((2, 10), "i4")), ((2, 3), np.empty((5, 4), "i4")),
                 ((11, 9), np.empty((1, 1), "i4")), ((4, 4), np.empty((0, 3), "i4"))]  # fmt: skip
        c["x"].read_boxes(boxes)
        for (row, column), out in boxes:
            rows, columns = out.shape
            np.testing.assert_array_equal(out, field[row : row + rows, column : column + columns])
        with pytest.raises(IndexError, match="outside the extent"):
            c["x"].read_boxes([((11, 0), np.empty((2, 1), "i4"))])
        with pytest.raises(ValueError, match="read into float64"):
            c["x"].read_boxes([((0, 0), np.empty((1, 1)))])
