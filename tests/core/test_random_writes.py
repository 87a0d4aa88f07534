"""Random hyperslab writes over many epochs, against a numpy model of the committed state."""

import itertools
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import esdm_hpc
from tests.core.conftest import site

SHAPE = (13, 7, 5)


@st.composite
def hyperslabs(draw: st.DrawFn) -> tuple[slice, ...]:
    bounds = [sorted(draw(st.lists(st.integers(0, n), min_size=2, max_size=2))) for n in SHAPE]
    return tuple(slice(lo, hi) for lo, hi in bounds)


epochs = st.lists(st.lists(hyperslabs(), min_size=0, max_size=4), min_size=1, max_size=5)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=epochs, fragment_limit=st.sampled_from([64, 200, 1 << 20]))
def test_committed_state_matches_the_model(
    tmp_path: Path, history: list[list[tuple[slice, ...]]], fragment_limit: int
) -> None:
    root = tmp_path / f"case-{next(_cases)}"
    config = site(root, backend={"limits": {"max_fragment_bytes": fragment_limit}})
    model = np.full(SHAPE, -1, dtype=np.int64)
    states = [model.copy()]
    with esdm_hpc.open("esdm://random", "w", config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="i8", fillvalue=-1)
        for epoch, writes in enumerate(history, start=1):
            for i, region in enumerate(writes):
                values = (
                    np.arange(model[region].size).reshape(model[region].shape) + 1000 * epoch + i
                )
                x[region] = values
                model[region] = values
            c.commit()
            states.append(model.copy())
    for epoch, expected in enumerate(states[1:], start=1):  # every epoch stays readable
        with esdm_hpc.open("esdm://random", config=config, epoch=epoch) as c:
            np.testing.assert_array_equal(c["x"][...], expected)
            np.testing.assert_array_equal(c["x"][2:9, 1, 1:4], expected[2:9, 1, 1:4])


_cases = itertools.count()
