"""Resizing: what a shrink cuts off stays gone when the dataset grows again (as HDF5)."""

import numpy as np
import pytest

import esdm_hpc

FILL = -1


def model_resize(model: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The model after a resize: kept where both shapes overlap, the fill value elsewhere."""
    grown = np.full(shape, FILL, dtype=model.dtype)
    common = tuple(slice(0, min(a, b)) for a, b in zip(model.shape, shape, strict=True))
    grown[common] = model[common]
    return grown


def test_random_resizes_and_writes_over_epochs_match_a_model(config: dict) -> None:
    rng = np.random.default_rng(11)
    model = np.full((6, 5), FILL, dtype=np.int32)
    epochs = []  # committed state after each epoch
    with esdm_hpc.open("esdm://resize", "w", config=config) as c:
        x = c.create_dataset(
            "x", shape=model.shape, maxshape=(None, None), dtype="i4", fillvalue=FILL
        )
        for epoch in range(8):
            for _ in range(6):
                if rng.random() < 0.4:
                    shape = (int(rng.integers(0, 10)), int(rng.integers(1, 8)))
                    x.resize(shape)
                    model = model_resize(model, shape)
                elif model.size:
                    lo = [int(rng.integers(0, n)) for n in model.shape]
                    hi = [
                        int(rng.integers(a + 1, n + 1))
                        for a, n in zip(lo, model.shape, strict=True)
                    ]
                    region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
                    values = rng.integers(0, 1000, model[region].shape, dtype=np.int32)
                    x[region] = values
                    model[region] = values
            c.commit()
            np.testing.assert_array_equal(x[...], model, err_msg=f"epoch {epoch}")
            epochs.append((c.epoch, model.copy()))
    for epoch, expected in epochs:
        with esdm_hpc.open("esdm://resize", config=config, epoch=epoch) as c:
            np.testing.assert_array_equal(c["x"][...], expected, err_msg=f"epoch {epoch}")


def test_shrink_and_grow_in_one_epoch_drops_what_was_written_before(config: dict) -> None:
    with esdm_hpc.open("esdm://again", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4, 3), maxshape=(None, 3), dtype="i4", fillvalue=FILL)
        x[...] = 1  # written, not committed
        x.resize((2, 3))
        x.resize((4, 3))
        x[3] = 2  # after the shrink: stays
    with esdm_hpc.open("esdm://again", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], [[1, 1, 1], [1, 1, 1], [-1] * 3, [2, 2, 2]])


def test_a_copy_keeps_what_the_shrinks_cut_off_away(config: dict) -> None:
    with esdm_hpc.open("esdm://copied", "w", config=config) as c:
        x = c.create_dataset("x", shape=(6,), maxshape=(None,), dtype="i4", fillvalue=FILL)
        x[...] = np.arange(6)
        c.commit()
        x.resize(2)
        x[1] = 10
        x.resize(6)
        x[4] = 40
        c.commit()
        x.resize(3)
        c.copy("x", "y")
        c["y"].resize(6)
        x.resize(6)
    expected = [0, 10, -1, -1, -1, -1]
    with esdm_hpc.open("esdm://copied", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], expected)
        np.testing.assert_array_equal(c["y"][...], expected)


def test_older_epochs_still_show_what_a_later_shrink_cut_off(config: dict) -> None:
    with esdm_hpc.open("esdm://travel", "w", config=config) as c:
        x = c.create_dataset("x", shape=(4,), maxshape=(None,), dtype="i4", fillvalue=FILL)
        x[...] = 7
        first = c.commit()
        x.resize(1)
        x.resize(4)
    with esdm_hpc.open("esdm://travel", config=config, epoch=first) as c:
        np.testing.assert_array_equal(c["x"][...], [7, 7, 7, 7])
    with esdm_hpc.open("esdm://travel", config=config) as c:
        np.testing.assert_array_equal(c["x"][...], [7, -1, -1, -1])


@pytest.mark.parametrize("shape", [(0,), (2,)])
def test_shrinking_below_nothing_written_is_harmless(config: dict, shape: tuple[int, ...]) -> None:
    with esdm_hpc.open("esdm://empty", "w", config=config) as c:
        x = c.create_dataset("x", shape=(3,), maxshape=(None,), dtype="i4", fillvalue=FILL)
        x.resize(shape)
        x.resize((5,))
        np.testing.assert_array_equal(x[...], [-1] * 5)
