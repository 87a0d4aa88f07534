"""Attributes in creation order (H5_INDEX_CRT_ORDER), which netCDF-4 iterates in."""

from pathlib import Path

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
