"""The Python half of the connector, called the way the C shim calls it."""

from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.vol import bridge
from esdm_hpc.vol.objects import Kind

SERIAL = -1


def boxes(*pairs: tuple[tuple[int, ...], tuple[int, ...]]) -> memoryview:
    """The box table the shim passes: [start..., count...] per box, as uint64."""
    table = np.array([[*start, *count] for start, count in pairs], dtype=np.uint64)
    return memoryview(table.tobytes())


def test_blocks_are_written_and_read_box_by_box(site_config: Path) -> None:
    f = bridge.file_create("esdm://b", True, SERIAL)
    d = bridge.dataset_create(f, "grid", "<i4", (4, 6), (-1, 6), None)
    table = boxes(((0, 0), (2, 3)), ((2, 3), (2, 3)))
    data = np.arange(12, dtype="<i4")
    bridge.dataset_write(d, 2, table, memoryview(data.tobytes()))

    out = bytearray(12 * 4)
    bridge.dataset_read(d, 2, table, memoryview(out))  # a lone process sees its writes
    assert (np.frombuffer(out, "<i4") == data).all()
    bridge.file_close(f)

    with esdm_hpc.open("esdm://b") as c:
        grid = c["grid"][...]
    assert (grid[:2, :3] == data[:6].reshape(2, 3)).all()
    assert (grid[2:, 3:] == data[6:].reshape(2, 3)).all()
    assert (grid[:2, 3:] == 0).all() and c["grid"].maxshape == (None, 6)


def test_datasets_describe_themselves_in_the_shims_terms(site_config: Path) -> None:
    f = bridge.file_create("esdm://d", True, SERIAL)
    bridge.group_create(f, "a/b")
    d = bridge.dataset_create(f, "a/b/x", ">f8", (3,), (3,), np.array([-1], ">f8").tobytes())
    spelling, shape, maxshape, fill, chunks, filters, _, virtual, external = (
        bridge.dataset_describe(d)
    )
    assert (spelling, shape, maxshape, chunks, filters) == (">f8", (3,), (3,), None, [])
    assert virtual is None and external is None
    assert np.frombuffer(fill, ">f8")[0] == -1
    handle, kind = bridge.object_open(f, "a/b/x")
    assert kind == Kind.DATASET and handle.path == "/a/b/x"
    assert bridge.object_info(f, "a") == (Kind.GROUP, "/a", 0, 1)
    assert bridge.object_info(f, "nothing")[0] == Kind.NONE
    assert bridge.group_members(f, ".") == ["a"]
    assert [(name, target) for name, _, target, _ in bridge.link_list(f, ".", True)] == [
        ("a", "/a"),
        ("a/b", "/a/b"),
        ("a/b/x", "/a/b/x"),
    ]
    bridge.dataset_set_extent(d, (2,))
    assert bridge.dataset_describe(d)[1] == (2,)
    bridge.file_close(f)


def test_attributes_keep_their_type_and_shape(site_config: Path) -> None:
    f = bridge.file_create("esdm://a", True, SERIAL)
    g = bridge.group_create(f, "g")
    levels = bridge.attribute_create(g, ".", "levels", "<i2", (3,))
    assert bridge.attribute_describe(levels) == ("<i2", (3,))
    bridge.attribute_write(levels, memoryview(np.array([1, 2, 3], "<i2").tobytes()))
    units = bridge.attribute_create(f, "g", "units", "vlen-str", ())
    bridge.attribute_write_strings(units, [b"kelvin"])
    label = bridge.attribute_create(f, "g", "label", "|S4", ())
    bridge.attribute_write(label, memoryview(b"ab\0\0"))

    assert bridge.attribute_names(f, "g") == ["label", "levels", "units"]
    assert bridge.attribute_exists(g, ".", "units")
    assert bridge.attribute_read_strings(bridge.attribute_open(g, ".", "units")) == [b"kelvin"]
    out = bytearray(6)
    bridge.attribute_read(levels, memoryview(out))
    assert np.frombuffer(out, "<i2").tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="already has"):
        bridge.attribute_create(g, ".", "units", "<f8", ())
    bridge.attribute_delete(g, ".", "label")
    bridge.file_close(f)

    with esdm_hpc.open("esdm://a") as c:
        attrs = c["g"].attrs
        assert attrs["units"] == "kelvin"
        assert attrs["levels"].tolist() == [1, 2, 3]
        assert "label" not in attrs


def test_unknown_type_spellings_are_refused(site_config: Path) -> None:
    f = bridge.file_create("esdm://t", True, SERIAL)
    with pytest.raises(TypeError, match="no HDF5 counterpart"):
        bridge.dataset_create(f, "c", "<c16", (1,), (1,), None)
    bridge.file_close(f)


def test_accessibility_is_a_question_not_an_error(site_config: Path) -> None:
    assert not bridge.file_accessible("esdm://nothing-here")
    bridge.file_close(bridge.file_create("esdm://here", True, SERIAL))
    assert bridge.file_accessible("esdm://here")


def test_groups_report_the_creation_order_flags_they_were_created_with(
    site_config: Path,
) -> None:
    f = bridge.file_create("esdm://order", True, SERIAL)
    bridge.group_create(f, "plain")
    bridge.group_create(f, "tracked", bridge.ORDER_TRACKED)
    both = bridge.ORDER_TRACKED | bridge.ORDER_INDEXED
    bridge.group_create(f, "indexed", both)
    bridge.object_copy(f, "tracked", f, "copy", (True, False, False))  # a copy keeps them
    bridge.file_close(f)
    f = bridge.file_open("esdm://order", False, SERIAL)
    flags = {g: bridge.group_creation_order(f, g) for g in ("plain", "tracked", "indexed", "copy")}
    assert flags == {"plain": 0, "tracked": bridge.ORDER_TRACKED, "indexed": both, "copy": 1}
    bridge.file_close(f)
