"""Links in the core namespace: hard and soft links, deletion, creation order,
and their round trip through manifests."""

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.namespace import ExternalLinkFound, Link


def test_hard_and_soft_links_reach_the_object_and_survive_a_commit(config: dict) -> None:
    with esdm_hpc.open("esdm://links", "w", config=config) as c:
        c.create_dataset("grid/tas", data=np.arange(6.0))
        c["grid"].attrs["title"] = "x"
        c.create_hard_link("other", "grid")
        c.create_soft_link("latest", "grid/tas")
        c.create_soft_link("dangling", "/nowhere")
    with esdm_hpc.open("esdm://links", config=config) as c:
        assert c.keys() == ["dangling", "grid", "latest", "other"]
        assert c["other/tas"].name == "/grid/tas"  # one identity through both names
        assert c["other"].attrs["title"] == "x"
        np.testing.assert_array_equal(c["latest"][...], np.arange(6.0))
        assert c.link("latest").kind == "soft" and c.link("latest").target == "grid/tas"
        assert c.link("other").target == "/grid"
        assert "dangling" not in c
        with pytest.raises(KeyError, match="dangles"):
            c["dangling"]


def test_deleting_one_name_keeps_the_object_and_the_last_name_drops_it(config: dict) -> None:
    with esdm_hpc.open("esdm://delete", "w", config=config) as c:
        c.create_dataset("a/x", data=np.arange(3))
        c.commit()  # data is read from committed epochs
        c.create_hard_link("b", "a")
        del c["a"]
        assert c.keys() == ["b"]
        np.testing.assert_array_equal(c["b/x"][...], np.arange(3))
        with pytest.raises(ValueError, match="already exists"):
            c.create_group("a")  # its identity lives on under /b
        del c["b"]
        assert c.keys() == [] and not c.namespace.datasets
        c.create_group("a")  # the name is free once the object is gone


def test_creation_order_is_kept_per_group(config: dict) -> None:
    with esdm_hpc.open("esdm://order", "w", config=config) as c:
        for name in ("z", "a", "m"):
            c.create_group(f"g/{name}")
        c.create_soft_link("g/b", "/g/z")
    with esdm_hpc.open("esdm://order", config=config) as c:
        assert c.namespace.children_by_order("/g") == ["z", "a", "m", "b"]
        assert c["g"].keys() == ["a", "b", "m", "z"]


def test_soft_link_loops_fail_instead_of_hanging(config: dict) -> None:
    with esdm_hpc.open("esdm://loop", "w", config=config) as c:
        c.create_soft_link("p", "q")
        c.create_soft_link("q", "p")
        with pytest.raises(KeyError):
            c["p"]


def test_moving_a_name_keeps_identity_data_and_attributes(config: dict) -> None:
    with esdm_hpc.open("esdm://move", "w", config=config) as c:
        c.create_dataset("a/x", data=np.arange(4))
        c["a"].attrs["units"] = "K"
        c.create_soft_link("s", "a/x")
        c.commit()
        c.move("a", "g/b")  # a home name: the object stays /a underneath
        c.move("s", "g/s")
        c.edit("copy_link").move_link("/g/b", "/copy", keep_source=True)
        with pytest.raises(ValueError, match="into itself"):
            c.move("g/b", "g/b/inner")
    with esdm_hpc.open("esdm://move", config=config) as c:
        assert c.keys() == ["copy", "g"] and c["g"].keys() == ["b", "s"]
        np.testing.assert_array_equal(c["g/b/x"][...], np.arange(4))
        np.testing.assert_array_equal(c["copy/x"][...], np.arange(4))
        assert c["g/b"].attrs["units"] == "K"
        assert c.link("g/s") == Link("soft", "a/x")  # the value as it was, as HDF5 copies it
        assert c.namespace.children_by_order("/g") == ["b", "s"]


def test_external_and_user_defined_links_are_kept_not_followed(config: dict) -> None:
    with esdm_hpc.open("esdm://ext", "w", config=config) as c:
        c.create_external_link("e", "other.h5", "grid/../tas")
        c.edit("create_link").create_link("/u", Link("user", "00ff", user_class=187))
    with esdm_hpc.open("esdm://ext", config=config) as c:
        assert c.link("e") == Link("external", "/tas", "other.h5")
        assert c.link("u") == Link("user", "00ff", user_class=187)
        assert c.keys() == ["e", "u"]
        with pytest.raises(ExternalLinkFound, match=r"other\.h5") as found:
            c["e/sub"]
        assert (found.value.file, found.value.path) == ("other.h5", "/tas/sub")
        with pytest.raises(KeyError, match="user-defined link"):
            c["u"]


def test_an_emptied_group_counts_creation_order_from_zero(config: dict) -> None:
    with esdm_hpc.open("esdm://corder", "w", config=config) as c:
        for name in ("a", "b"):
            c.create_group(f"g/{name}")
        del c["g/a"]
        assert c.namespace.next_order["/g"] == 2  # not while a name is left
        del c["g/b"]
        c.create_group("g/c")
        assert c.namespace.order["/g/c"] == 0


def test_copies_share_data_keep_structure_and_follow_the_options(config: dict) -> None:
    with esdm_hpc.open("esdm://copy", "w", config=config) as c:
        c.create_dataset("run/tas", data=np.arange(6.0)).attrs["units"] = "K"
        c.create_group("run/sub/deep")
        c.create_hard_link("run/alias", "run/tas")
        c.create_soft_link("run/soft", "/run/tas")
        c.commit()
        c["run/tas"][0:2] = [10.0, 11.0]  # pending: copied too (one process)
        c.copy("run", "copy")
        c.copy("run", "flat", shallow=True, expand_soft=True, without_attrs=True)
        with pytest.raises(ValueError, match="into itself"):
            c.copy("run", "run/sub/again")
    with esdm_hpc.open("esdm://copy", config=config) as c:
        expected = [10.0, 11.0, 2.0, 3.0, 4.0, 5.0]
        np.testing.assert_array_equal(c["copy/tas"][...], expected)
        np.testing.assert_array_equal(c["run/tas"][...], expected)
        assert c["copy/tas"].attrs["units"] == "K" and "units" not in c["flat/tas"].attrs
        assert c.link("copy/alias") == Link("hard", "/copy/tas")  # one copy, two names
        assert c.link("copy/soft") == Link("soft", "/run/tas")
        np.testing.assert_array_equal(c["flat/soft"][...], expected)  # expanded: a dataset
        assert c["copy/sub"].keys() == ["deep"] and c["flat/sub"].keys() == []
        assert c["copy"].keys() == c["run"].keys()


def test_objects_copy_into_another_container_with_their_data(config: dict) -> None:
    with esdm_hpc.open("esdm://from", "w", config=config) as a:
        g = a.create_group("g", track_order=True)
        g.attrs["units"] = "K"
        x = g.create_dataset("x", shape=(5, 3), maxshape=(None, 3), dtype="i4", fillvalue=-1)
        x[1:3] = 7
        a.commit()
        x.resize((2, 3))  # a shrink: the copy holds what readers of "from" see
        g.create_dataset("names", data=np.array(["a", "bc"], dtype=object))
        g.create_hard_link("same", "x")
        g.create_soft_link("soft", "/g/x")
        a.commit()
        with esdm_hpc.open("esdm://to", "w", config=config) as b:
            copied = b.copy(a["g"], "copied")
            b["copied"].copy(a["g/names"], "names2")
    with esdm_hpc.open("esdm://to", config=config) as b:
        assert b["copied/x"][...].tolist() == [[-1] * 3, [7] * 3]
        assert b["copied/x"].maxshape == (None, 3) and b["copied/x"].fillvalue == -1
        assert b["copied/names"][...].tolist() == ["a", "bc"] == b["copied/names2"][...].tolist()
        assert b["copied"].attrs["units"] == "K" and b["copied"].keys()[:2] == ["x", "names"]
        assert b.namespace.resolve("/copied/same") == "/copied/x"  # still one object
        assert b.link("copied/soft").target == "/g/x"  # as HDF5: a soft link is copied as it is
    assert isinstance(copied, esdm_hpc.Group)
