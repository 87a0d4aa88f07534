"""HDF5 file names -> containers (esdm_hpc.vol.names)."""

import json
from pathlib import Path

import pytest

from esdm_hpc.vol.names import Target, container_for_path, resolve


def test_esdm_uris_name_containers_directly() -> None:
    assert resolve("esdm://run1") == Target("esdm://run1")
    with pytest.raises(ValueError, match="does not end with '/'"):
        resolve("esdm://exp/run1/")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("out.h5", "out.h5"),
        ("./out.h5", "out.h5"),
        ("/scratch/run 1/out.h5", "scratch/run_1/out.h5"),
        ("runs//a/./b.nc", "runs/a/b.nc"),
        ("/tmp/.hidden/x.h5", "tmp/_hidden/x.h5"),
    ],
)
def test_paths_map_to_containers_of_the_same_path(path: str, name: str) -> None:
    assert container_for_path(path) == name
    assert resolve(path) == Target(f"esdm://{name}")


@pytest.mark.parametrize("path", ["../up.h5", "/", "", "."])
def test_paths_that_name_no_container_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        resolve(path)


def test_a_container_document_names_the_container_and_its_site(tmp_path: Path) -> None:
    document = tmp_path / "run.json"
    document.write_text(json.dumps({"container": "esdm://run7", "config": "site.json"}))
    assert resolve(f"esd-cfg:{document}") == Target("esdm://run7", str(tmp_path / "site.json"))

    inline = {"backends": [{"id": "m", "type": "memory", "target": "x"}]}
    document.write_text(json.dumps({"container": "run8", "config": inline}))
    assert resolve(f"esd-cfg:{document}") == Target("esdm://run8", inline)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"config": "site.json"}', "'container'"),
        ('{"container": "x", "color": "red"}', "unknown keys"),
        ('{"container": "x", "config": 3}', "'config'"),
    ],
)
def test_bad_container_documents_say_what_is_wrong(
    tmp_path: Path, content: str, message: str
) -> None:
    document = tmp_path / "run.json"
    document.write_text(content)
    with pytest.raises(ValueError, match=message):
        resolve(f"esd-cfg:{document}")


def test_a_missing_container_document_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="esd-cfg:"):
        resolve(f"esd-cfg:{tmp_path / 'nothing.json'}")
