"""Attributes in creation order (H5_INDEX_CRT_ORDER), which netCDF-4 iterates in."""

from pathlib import Path

import numpy as np
import pytest

from esdm_hpc.vol import bridge

SERIAL = -1
CREATED = ["zeta", "alpha", "mid"]


def create_attributes() -> bridge.FileHandle:
    f = bridge.file_create("esdm://order", True, SERIAL)
    for name in CREATED:
        bridge.attribute_create(f, ".", name, "<i4", ())
    return f


def test_attributes_list_in_creation_order_or_name_order(site_config: Path) -> None:
    f = create_attributes()
    assert bridge.attribute_names(f, ".", creation_order=True) == CREATED
    assert bridge.attribute_names(f, ".") == sorted(CREATED)
    bridge.attribute_delete(f, ".", "zeta")
    bridge.attribute_create(f, ".", "zeta", "<f8", ())
    assert bridge.attribute_names(f, ".", creation_order=True) == ["alpha", "mid", "zeta"]
    bridge.file_close(f)


def test_creation_order_survives_reopening(site_config: Path) -> None:
    bridge.file_close(create_attributes())
    f = bridge.file_open("esdm://order", False, SERIAL)
    assert bridge.attribute_names(f, ".", creation_order=True) == CREATED
    bridge.file_close(f)


def test_attributes_by_index_in_either_order(site_config: Path) -> None:
    f = create_attributes()
    assert bridge.attribute_at(f, ".", True, False, 0) == "zeta"  # H5_INDEX_CRT_ORDER, H5_ITER_INC
    assert bridge.attribute_at(f, ".", True, True, 0) == "mid"
    assert bridge.attribute_at(f, ".", False, False, 0) == "alpha"  # H5_INDEX_NAME
    assert bridge.attribute_at(f, ".", False, True, 2) == "alpha"
    with pytest.raises(IndexError, match="3 attributes, not 4"):
        bridge.attribute_at(f, ".", False, False, 3)
    bridge.file_close(f)


def test_renamed_attribute_keeps_its_value_and_is_newest(site_config: Path) -> None:
    f = create_attributes()
    handle = bridge.attribute_open(f, ".", "alpha")
    bridge.attribute_write(handle, memoryview(np.array(7, dtype="<i4").tobytes()))
    bridge.attribute_rename(f, ".", "alpha", "omega")
    assert bridge.attribute_names(f, ".", creation_order=True) == ["zeta", "mid", "omega"]
    assert bridge.attribute_open(f, ".", "omega").stored() == 7
    with pytest.raises(ValueError, match="already has an attribute 'mid'"):
        bridge.attribute_rename(f, ".", "omega", "mid")
    with pytest.raises(KeyError):
        bridge.attribute_rename(f, ".", "alpha", "beta")
    bridge.file_close(f)
