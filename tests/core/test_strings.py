"""Datasets of variable-length strings through the Python API."""

import json
from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc import cli
from tests.core.conftest import site


@pytest.mark.parametrize("dtype", [str, object, np.dtypes.StringDType()])
def test_strings_of_any_length_round_trip_over_epochs(config: dict, dtype: object) -> None:
    rng = np.random.default_rng(2)
    words = ["", "a", "Grüße", "日本語", "x" * 100_000, "tab\tand\nnewline"]
    model = np.full((6, 7), "fill", dtype=object)
    with esdm_hpc.open("esdm://words", "w", config=config) as c:
        x = c.create_dataset("x", shape=model.shape, dtype=dtype, fillvalue="fill")
        for _ in range(4):
            for _ in range(3):
                lo = [int(rng.integers(0, n)) for n in model.shape]
                hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, model.shape, strict=True)]
                region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
                values = rng.choice(np.array(words, dtype=object), model[region].shape)
                x[region] = values
                model[region] = values
            c.commit()
            assert x[...].tolist() == model.tolist()
    with esdm_hpc.open("esdm://words", config=config) as c:
        assert c["x"].dtype.kind == "O" and c["x"].fillvalue == "fill"
        assert c["x"][...].tolist() == model.tolist()
        assert c["x"][2:5, 3].tolist() == model[2:5, 3].tolist()


def test_a_value_that_is_not_text_is_refused_by_name(config: dict) -> None:
    with esdm_hpc.open("esdm://refused", "w", config=config) as c:
        x = c.create_dataset("names", shape=(3,), dtype=str)
        with pytest.raises(TypeError, match=r"/names\[1:2\]: cannot store int 5 as a string"):
            x[1:2] = np.array([5], dtype=object)
        with pytest.raises(ValueError, match="strings take no statistics"):
            c.create_dataset("stats", shape=(3,), dtype=str, hints={"statistics": True})
        x[0] = b"bytes are UTF-8"
        x.write_async(2, "later").wait()
    with esdm_hpc.open("esdm://refused", config=config) as c:
        assert c["names"][...].tolist() == ["bytes are UTF-8", "", "later"]


def test_strings_follow_resizes_and_copies(config: dict) -> None:
    with esdm_hpc.open("esdm://grown", "w", config=config) as c:
        x = c.create_dataset("x", shape=(2,), maxshape=(None,), dtype=str, fillvalue="?")
        x[...] = ["one", "two"]
        c.commit()
        x.resize(1)
        x.resize(3)
        c.copy("x", "y")
    with esdm_hpc.open("esdm://grown", config=config) as c:
        assert c["x"][...].tolist() == ["one", "?", "?"]
        assert c["y"][...].tolist() == ["one", "?", "?"]


def test_dump_prints_strings_and_saves_them_as_plain_npy(tmp_path: Path, capsys) -> None:
    config = site(tmp_path)
    with esdm_hpc.open("esdm://dumped", "w", config=config) as c:
        c.create_dataset("names", data=np.array(["Hamburg", "Reading"], dtype=object))
    path = tmp_path / "esdm.json"
    path.write_text(json.dumps(config))
    assert cli.main(["--config", str(path), "dump", "esdm://dumped", "names"]) == 0
    assert "['Hamburg' 'Reading']" in capsys.readouterr().out
    npy = tmp_path / "names.npy"
    assert (
        cli.main(["--config", str(path), "dump", "--npy", str(npy), "esdm://dumped", "names"]) == 0
    )
    assert np.load(npy).tolist() == ["Hamburg", "Reading"]  # no pickle needed
    assert cli.main(["--config", str(path), "info", "esdm://dumped"]) == 0
    assert "string" in capsys.readouterr().out
    assert cli.main(["--config", str(path), "verify", "esdm://dumped"]) == 0
