"""Trigger-based persistence on 2 and 4 ranks (`Dataset.keep_last`): an anomaly seen
by one rank persists every rank's held steps, each at its time index, in the epoch
the trigger fires in, as the model (tests/programs/held_steps.py) says, epoch by
epoch; a trigger failing on one rank is reported on every rank and hangs none."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from mpi4py import MPI

import esdm_hpc
from esdm_hpc.epochs.events import EventLog
from esdm_hpc.hooks import CommitContext, HookWarning
from esdm_hpc.kernels.decomposition import decompose
from tests.programs.held_steps import anomaly, field, model

from .test_epochs import shared_config

SHAPE = (12, 10)  # of one step, decomposed over the ranks


def my_block() -> tuple[slice, ...]:
    comm = MPI.COMM_WORLD
    offsets, counts = decompose(SHAPE, comm.size)
    offset, count = offsets[comm.rank], counts[comm.rank]
    return tuple(slice(int(o), int(o + c)) for o, c in zip(offset, count, strict=True))


def shown(container: esdm_hpc.Container) -> set[int]:
    """The steps the container shows, each whole and equal to its field."""
    steps = set()
    for step, data in enumerate(container["t"][...]):
        if data.any():
            plain = field(step, shape=SHAPE)
            anomalous = field(step, anomalous=True, shape=SHAPE)
            assert np.array_equal(data, plain) or np.array_equal(data, anomalous), step
            steps.add(step)
    return steps


@pytest.mark.mpi(min_size=2)
def test_an_anomaly_on_one_rank_persists_every_ranks_held_steps_as_the_model_says() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    region = my_block()
    rng = np.random.default_rng(7)
    fires = [bool(f) for f in rng.random(12) < 0.25]
    keep, then = 2, 1
    expected = model(keep, then, fires)
    spike = field(0, anomalous=True, shape=SHAPE) != field(0, shape=SHAPE)
    assert sum(comm.allgather(bool(spike[region].any()))) == 1  # one rank sees it
    with esdm_hpc.open("esdm://held", "w", comm=comm, config=config) as c:
        t = c.create_dataset("t", shape=(len(fires), *SHAPE), dtype="f8")
        t.keep_last(keep, trigger=anomaly, then=then)
        for step, fired in enumerate(fires):
            t[(step, *region)] = field(step, fired, SHAPE)[region]
            c.commit()
    for step in range(len(fires)):
        with esdm_hpc.open("esdm://held", comm=comm, config=config, epoch=step + 1) as c:
            assert shown(c) == expected.shown[step], step
    with esdm_hpc.open("esdm://held", comm=comm, config=config) as c:
        assert shown(c) == expected.shown[-1] | set(expected.at_close)
        logged = EventLog(c.store).read(kinds=["trigger"])
    fired_epochs = [e.epoch for e in logged if e.fields["cause"] == "trigger"]
    assert fired_epochs == [s + 1 for s, f in enumerate(fires) if f]
    first = next(e for e in logged if e.fields["cause"] == "trigger")
    held_then = first.fields["persisted"]
    assert all(entry["time"] == [entry["epoch"] - 1, entry["epoch"]] for entry in held_then)


def fails_on_rank_0(context: CommitContext) -> bool:
    if context.rank == 0:
        raise ValueError("rank 0's detector broke")
    return bool(context.comm.allreduce(1))  # the others wait in a collective: no hang


@pytest.mark.mpi(min_size=2)
def test_a_trigger_failing_on_one_rank_is_reported_on_every_rank_and_hangs_none() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    region = my_block()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with esdm_hpc.open("esdm://fails", "w", comm=comm, config=config) as c:
            t = c.create_dataset("t", shape=(2, *SHAPE), dtype="f8")
            t.keep_last(1, trigger=fails_on_rank_0, name="detector")
            t[(0, *region)] = field(0, shape=SHAPE)[region]
            assert c.commit() == 1
            assert not t[...].any()  # not fired: held
    messages = [str(w.message) for w in warned if issubclass(w.category, HookWarning)]
    assert messages == [
        "trigger 'detector' on /t (keep_last 1), epoch 1: failed on ranks [0]: ValueError: "
        "rank 0's detector broke; it counts as not fired and the epoch commits, its steps "
        "held (on_failure='record')"
    ]
    with esdm_hpc.open("esdm://fails", comm=comm, config=config) as c:
        assert shown(c) == {0}  # close persisted every rank's part of it
