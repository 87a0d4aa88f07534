"""Writes and commits that fail: the outcome is all or nothing, and the writer goes on.

A write that fails (a real ENOSPC on a small tmpfs) fails the next commit on
every rank and discards the epoch; the writer can commit again once space is
free; closing after a refused commit releases the lease. Writes take effect in
the order of the calls, whatever the mix of synchronous and asynchronous ones.
"""

from pathlib import Path

import numpy as np
import pytest

import esdm_hpc
from esdm_hpc.errors import EpochWriteError
from tests.core.conftest import fill, site

ROW = 64 << 10  # bytes of one row below: written straight through, not buffered


def test_a_write_after_write_async_takes_effect_after_it(config: dict) -> None:
    ones = np.ones((512, 512))
    with esdm_hpc.open("esdm://order", "w", config=config) as c:
        a = c.create_dataset("a", shape=(512, 512), dtype="f8")
        for _ in range(16):  # still queued when the next line runs
            a.write_async(np.s_[:, :], ones)
        a[0, 0] = 2.0
        a.write_async(np.s_[1, :], ones[1] * 3)
        a[1, 1:3] = 4.0
        c.commit()
        expected = ones.copy()
        expected[0, 0], expected[1], expected[1, 1:3] = 2.0, 3.0, 4.0
        np.testing.assert_array_equal(a[...], expected)


def test_a_failed_write_fails_the_commit_and_discards_the_epoch(tmpfs: Path) -> None:
    config = site(tmpfs)
    rows = np.arange(4 * ROW // 8, dtype="f8").reshape(4, -1)
    with esdm_hpc.open("esdm://full", "w", config=config) as c:
        x = c.create_dataset("x", shape=rows.shape, dtype="f8", fillvalue=-1)
        x[0] = rows[0]
        assert c.commit() == 1
        x[1] = rows[1]
        ballast = fill(tmpfs)
        with pytest.raises(OSError, match="No space left on device"):
            x[2] = rows[2]
        ballast.unlink()
        x[3] = rows[3]  # succeeds, but its epoch is lost already
        with pytest.raises(EpochWriteError, match="epoch 2: a write of rank 0 failed"):
            c.commit()
        assert c.epoch == 1
        np.testing.assert_array_equal(x[1:], -1)  # nothing of the refused epoch
        x[2] = rows[2]  # the writer goes on
        assert c.commit() == 2
    with esdm_hpc.open("esdm://full", config=config) as c:
        assert c.epoch == 2
        np.testing.assert_array_equal(c["x"][0], rows[0])
        np.testing.assert_array_equal(c["x"][1], -1)
        np.testing.assert_array_equal(c["x"][2], rows[2])
        np.testing.assert_array_equal(c["x"][3], -1)


def test_close_after_a_refused_commit_releases_the_lease(tmpfs: Path) -> None:
    config = site(tmpfs)
    c = esdm_hpc.open("esdm://refused", "w", config=config)
    x = c.create_dataset("x", shape=(1000,), dtype="i1")
    c.commit()
    ballast = fill(tmpfs)
    x[:10] = 7  # small: buffered, so the commit's sync is what fails
    with pytest.raises(OSError, match="No space left on device"):
        c.commit()
    ballast.unlink()
    c.close()  # nothing pending after the refused commit
    with (
        pytest.raises(OSError, match="No space left on device"),
        esdm_hpc.open("esdm://refused", "a", config=config) as again,
    ):
        again["x"][:10] = 8
        ballast = fill(tmpfs)  # closing commits, and fails: raised, the lease released
    ballast.unlink()
    with esdm_hpc.open("esdm://refused", "a", config=config) as again:
        assert again.epoch == 1
        np.testing.assert_array_equal(again["x"][:10], 0)


def test_a_close_whose_commit_fails_raises_and_releases_the_lease(tmpfs: Path) -> None:
    config = site(tmpfs)
    c = esdm_hpc.open("esdm://close", "w", config=config)
    c.create_dataset("x", shape=(1000,), dtype="i1")[:10] = 7
    ballast = fill(tmpfs)
    with pytest.raises(OSError, match="No space left on device"):
        c.close()
    ballast.unlink()
    with esdm_hpc.open("esdm://close", "a", config=config) as again:
        assert again.epoch == 0 and "x" not in again


@pytest.mark.parametrize(
    "dtype",
    ["V0", "S0", "U0", np.dtype([]), np.dtype(("f4", (2,))), "M8[s]", [("t", "m8[ms]")]],
)
def test_dtypes_that_cannot_be_stored_are_refused_at_create(config: dict, dtype: object) -> None:
    with esdm_hpc.open("esdm://dtypes", "w", config=config, overwrite=True) as c:
        c.create_dataset("ok", shape=(2,), dtype="i4")[:] = 1
        with pytest.raises(TypeError, match=r"/bad: dtype .*(no bytes|array type|not supported)"):
            c.create_dataset("bad", shape=(3,), dtype=dtype, hints={"statistics": True})
        assert c.commit() == 1
    with esdm_hpc.open("esdm://dtypes", "a", config=config) as c:
        np.testing.assert_array_equal(c["ok"][...], [1, 1])
        assert "bad" not in c


@pytest.mark.parametrize(
    ("fillvalue", "dtype"), [(2**70, "i8"), (300, "u1"), (-1, "u4"), ("warm", "f4"), ([1, 2], "f8")]
)
def test_fill_values_that_do_not_fit_are_refused(
    config: dict, fillvalue: object, dtype: str
) -> None:
    with (
        esdm_hpc.open("esdm://fills", "w", config=config) as c,
        pytest.raises(ValueError, match=r"/x: fillvalue"),
    ):
        c.create_dataset("x", shape=(3,), dtype=dtype, fillvalue=fillvalue)


def test_text_that_cannot_be_stored_is_refused_at_the_write(config: dict) -> None:
    with esdm_hpc.open("esdm://text", "w", config=config) as c:
        names = c.create_dataset("names", shape=(2,), dtype=str)
        numbers = c.create_dataset("numbers", shape=(2,), dtype="f8")
        numbers[:] = 1.5
        with pytest.raises(ValueError, match=r"names\[0:1\]: .* is not valid text"):
            names[0] = "\ud800"  # a lone surrogate has no UTF-8 form
        names[1] = "ok"
        assert c.commit() == 1  # the epoch's other writes are kept
        assert numbers[...].tolist() == [1.5, 1.5] and names[...].tolist() == ["", "ok"]


def test_a_shrink_leaves_a_failed_held_write_to_the_commit(tmpfs: Path) -> None:
    config = site(tmpfs)
    with esdm_hpc.open("esdm://held", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4, 4096), maxshape=(None, 4096), dtype="f8")
        c.commit()
        x[0, :3072] = 1.0  # 24 KiB: held in memory until stored, then written through
        ballast = fill(tmpfs)
        x.resize((1, 4096))  # stores it, and fails: the epoch is lost, the shrink is not
        assert x.shape == (1, 4096)
        with pytest.raises(EpochWriteError, match="No space left on device"):
            c.commit()
        ballast.unlink()
        assert x.shape == (4, 4096)


def test_compounds_with_fields_out_of_order_round_trip(config: dict) -> None:
    dt = np.dtype({"names": ["lo", "hi"], "formats": ["u1", "<f8"], "offsets": [8, 0],
                   "itemsize": 24})  # fmt: skip
    small, large = np.zeros(3, dt), np.zeros((40, 40), dt)
    small["lo"], small["hi"] = [1, 2, 3], [0.5, 1.5, 2.5]
    large["lo"], large["hi"] = 7, np.arange(1600).reshape(40, 40)
    with esdm_hpc.open("esdm://compound", "w", config=config) as c:
        c.create_dataset("small", shape=(3,), dtype=dt)[...] = small  # a run of small writes
        c.create_dataset("large", shape=(40, 40), dtype=dt)[...] = large
        c.create_dataset("hilbert", shape=(40, 40), dtype=dt, hints={"serialisation": "hilbert"})
        c["hilbert"][...] = large
    with esdm_hpc.open("esdm://compound", config=config) as c:
        # by field: the padding between the fields is no data (numpy copies fields)
        assert c["small"][...].tolist() == small.tolist()
        assert c["large"][3:9, 5:7].tolist() == large[3:9, 5:7].tolist()
        assert c["hilbert"][...].tolist() == large.tolist()
