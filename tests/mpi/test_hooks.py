"""In-situ hooks on 2 and 4 ranks (esdm_hpc/hooks/): reductions across ranks
equal what is read back, every step, in exactly the raw data's epochs; a hook
failing, making other collective calls or running over budget on one rank is
reported the same on every rank, and no rank hangs."""

from __future__ import annotations

import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mpi4py import MPI

import esdm_hpc
from esdm_hpc.config import ConfigError
from esdm_hpc.epochs.events import EventLog
from esdm_hpc.epochs.history import History
from esdm_hpc.hooks import SOURCE_EPOCH, STRIKES, CommitContext, HookError, HookWarning
from esdm_hpc.kernels.decomposition import decompose
from tests.programs import insitu_hooks
from tests.programs.insitu_hooks import MEAN, field, regional_mean

from .test_epochs import shared_config

SHAPE = (24, 20)
LO, HI = (5, 3), (21, 17)  # across the ranks' blocks


def my_block() -> tuple[slice, ...]:
    """This rank's block of SHAPE."""
    comm = MPI.COMM_WORLD
    offsets, counts = decompose(SHAPE, comm.size)
    offset, count = offsets[comm.rank], counts[comm.rank]
    return tuple(slice(int(o), int(o + c)) for o, c in zip(offset, count, strict=True))


def region_mean(data: np.ndarray) -> float:
    return float(data[tuple(slice(a, b) for a, b in zip(LO, HI, strict=True))].mean())


def epochs_with_fragments(container: Any, path: str) -> set[int]:
    return {f.epoch for f in History.load(container.store).records() if f.dataset == path}


@pytest.fixture
def caught() -> Iterator[Callable[[], list[str]]]:
    """The HookWarnings so far, as messages."""
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        yield lambda: [str(w.message) for w in warned if issubclass(w.category, HookWarning)]


@pytest.mark.mpi(min_size=2)
def test_regional_mean_over_the_ranks_equals_the_mean_read_back_every_step() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    region = my_block()
    raw = set()
    with esdm_hpc.open("esdm://mean", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8")
        y = c.create_dataset("y", shape=(2,), dtype="f8")
        x.on_commit(regional_mean, args={"lo": LO, "hi": HI})
        for step in range(1, 7):
            if step == 3:
                if comm.rank == 0:
                    y[...] = step  # /x unwritten: no mean in this epoch
            else:
                data = field(step, SHAPE)
                rows = region[0]
                half = (rows.start + rows.stop) // 2  # two blocks per rank
                x[rows.start : half, region[1]] = data[rows.start : half, region[1]]
                x[half : rows.stop, region[1]] = data[half : rows.stop, region[1]]
                raw.add(step)
            assert c.commit() == step
            if step != 3:
                read_back = region_mean(x[...])  # the committed raw data, every rank
                assert c[MEAN][()] == read_back == region_mean(field(step, SHAPE))
                assert c[MEAN].attrs[SOURCE_EPOCH] == step
        assert epochs_with_fragments(c, "/x") == raw == epochs_with_fragments(c, MEAN)


@pytest.mark.mpi(min_size=2)
def test_numba_partial_sums_at_write_reduced_at_commit() -> None:
    numba = pytest.importorskip("numba", reason="numba does not install for this Python")
    comm = MPI.COMM_WORLD
    config = shared_config()

    @numba.njit(cache=False)
    def partial(block, offset, lo, hi):  # type: ignore[no-untyped-def]
        total, count = 0.0, 0
        for i in range(block.shape[0]):
            for j in range(block.shape[1]):
                r, s = offset[0] + i, offset[1] + j
                if lo[0] <= r < hi[0] and lo[1] <= s < hi[1]:
                    total += block[i, j]
                    count += 1
        return total, count

    def reduce_partials(context: CommitContext) -> None:
        local = (sum(r.value[0] for r in context.results), sum(r.value[1] for r in context.results))
        total, n = context.comm.allreduce(local, op=insitu_hooks.pair_sum)
        context.write(MEAN, total / n)

    region = my_block()
    with esdm_hpc.open("esdm://numba", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8")
        x.on_write(partial, args={"lo": LO, "hi": HI})
        x.on_commit(reduce_partials)
        for step in (1, 2, 3):
            x[region] = field(step, SHAPE)[region]
            c.commit()
            assert c[MEAN][()] == region_mean(x[...])


@pytest.mark.mpi(min_size=2)
def test_parts_of_a_derived_dataset_from_every_rank() -> None:
    """Each rank's row means of its block, as its part of one derived dataset."""
    comm = MPI.COMM_WORLD
    config = shared_config()
    region = my_block()

    def row_means(context: CommitContext) -> None:
        for block in context.blocks:
            means = block.data.mean(axis=1)
            context.write_part("/rows", means[:, None], (block.offset[0], block.offset[1] // 5),
                               (SHAPE[0], SHAPE[1] // 5))  # fmt: skip

    with esdm_hpc.open("esdm://parts", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8")
        x.on_commit(row_means)
        x[region] = field(1, SHAPE)[region]
        c.commit()
        expected = np.full((SHAPE[0], SHAPE[1] // 5), 0.0)
        offsets, counts = decompose(SHAPE, comm.size)
        data = x[...]
        for o, n in zip(offsets, counts, strict=True):
            block = data[o[0] : o[0] + n[0], o[1] : o[1] + n[1]]
            expected[o[0] : o[0] + n[0], o[1] // 5] = block.mean(axis=1)
        np.testing.assert_array_equal(c["rows"][...], expected)


def fails_on_the_last_rank(context: CommitContext) -> None:
    if context.rank == context.size - 1:
        raise ValueError(f"rank {context.rank} gave up")
    regional_mean(context, LO, HI)  # the others wait in an allreduce: they must not hang


@pytest.mark.mpi(min_size=2)
def test_a_hook_failing_on_one_rank_is_reported_on_every_rank_and_hangs_none(
    caught: Callable[[], list[str]],
) -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    region = my_block()
    last = comm.size - 1
    with esdm_hpc.open("esdm://fail", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8")
        x.on_commit(fails_on_the_last_rank, name="flaky")
        x[region] = 1.0
        assert c.commit() == 1  # the raw data commits
        assert (x[...] == 1.0).all() and MEAN not in c
    assert caught() == [
        f"hook 'flaky' on /x (on_commit), epoch 1: failed on ranks [{last}]: ValueError: rank "
        f"{last} gave up; the epoch commits without its outputs (on_failure='record')"
    ]
    with esdm_hpc.open("esdm://fail", comm=comm, config=config) as c:
        (event,) = EventLog(c.store).read(kinds=["hook"])
        assert event.fields["ranks"] == [last] and event.fields["outcome"] == "failed"


@pytest.mark.mpi(min_size=2)
def test_a_hook_failing_on_one_rank_with_on_failure_fail_refuses_on_every_rank() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    region = my_block()
    with esdm_hpc.open("esdm://strict", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8")
        c.commit()
        x.on_commit(fails_on_the_last_rank, name="strict", on_failure="fail")
        x[region] = 2.0
        with pytest.raises(HookError, match=rf"failed on ranks \[{comm.size - 1}\]: ValueError"):
            c.commit()
        assert c.epoch == 1 and (x[...] == 0).all()


@pytest.mark.mpi(min_size=2)
def test_ranks_making_different_collective_calls_fail_the_hook_everywhere(
    caught: Callable[[], list[str]],
) -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()

    def one_more_on_rank_0(context: CommitContext) -> None:
        context.comm.allreduce(1)
        if context.rank == 0:
            context.comm.allreduce(1)

    def different_calls(context: CommitContext) -> None:
        if context.rank == 0:
            context.comm.bcast("x")
        else:
            context.comm.allreduce(1)

    with esdm_hpc.open("esdm://calls", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=(comm.size,), dtype="f8")
        x.on_commit(one_more_on_rank_0, name="more")
        x.on_commit(different_calls, name="different")
        x[comm.rank] = 1.0
        c.commit()
    others = list(range(1, comm.size))
    assert caught()[0].startswith(
        f"hook 'more' on /x (on_commit), epoch 1: failed on ranks [0]: rank 0 called allreduce "
        f"after ranks {others} had returned: every rank must make the same collective calls"
    )
    assert (
        "the ranks made different collective calls: {0: 'bcast(root=0)', 1: 'allreduce'"
        in (caught()[1])
    )


@pytest.mark.mpi(min_size=2)
def test_an_on_write_failure_on_one_rank_is_reported_on_every_rank(
    caught: Callable[[], list[str]],
) -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()

    def picky(block: np.ndarray, offset: tuple[int, ...], comm: Any) -> None:
        if comm.rank == 1:
            raise OSError("no room for the histogram")

    with esdm_hpc.open("esdm://picky", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=(comm.size,), dtype="f8")
        x.on_write(picky, name="picky")
        x[comm.rank] = 1.0
        c.commit()
        np.testing.assert_array_equal(x[...], np.ones(comm.size))
    assert caught() == [
        "hook 'picky' on /x (on_write), epoch 1: failed on ranks [1]: OSError: no room for the "
        "histogram (1 failed calls); the epoch commits without its outputs (on_failure='record')"
    ]


def slow_on_rank_0(context: CommitContext) -> None:
    if context.rank == 0:
        time.sleep(0.05)
    regional_mean(context, LO, HI)


@pytest.mark.mpi(min_size=2)
def test_a_hook_over_budget_on_one_rank_moves_to_the_background_on_all(
    caught: Callable[[], list[str]],
) -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    region = my_block()
    with esdm_hpc.open("esdm://slow", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8")
        x.on_commit(slow_on_rank_0, budget=0.01, name="slow")
        for step in range(1, 8):
            x[region] = field(step, SHAPE)[region]
            c.commit()
    assert len(caught()) == 1 and "it runs in the background from now on" in caught()[0]
    with esdm_hpc.open("esdm://slow", comm=comm, config=config) as c:
        last = c.epoch
        assert c[MEAN].attrs[SOURCE_EPOCH] == 7
        late = [e for e in EventLog(c.store).read(kinds=["hook"]) if e.fields["outcome"] == "ok"]
    assert sorted(e.fields["computed_from"] for e in late) == list(range(1, 8))
    assert all(e.epoch > e.fields["computed_from"] for e in late if e.fields["computed_from"] > 3)
    for epoch in range(1, last + 1):
        with esdm_hpc.open("esdm://slow", comm=comm, config=config, epoch=epoch) as c:
            source = int(c[MEAN].attrs[SOURCE_EPOCH])
            assert source <= min(epoch, 7) and (source == epoch or epoch > STRIKES)
            assert c[MEAN][()] == region_mean(field(source, SHAPE))  # its source's data


@pytest.mark.mpi(min_size=2)
def test_configured_hooks_on_every_rank_and_a_module_missing_on_one() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    hook = {"dataset": "/x", "when": "commit", "function": "tests.programs.insitu_hooks:extremes"}
    with esdm_hpc.open("esdm://conf", "w", comm=comm, config={**config, "hooks": [hook]}) as c:
        x = c.create_dataset("x", shape=(comm.size,), dtype="f8")
        x[comm.rank] = comm.rank
    with esdm_hpc.open("esdm://conf", comm=comm, config=config) as c:
        np.testing.assert_array_equal(c["insitu/extremes"][...], [0, comm.size - 1])

    # a module only rank 0 can import: the same error on every rank, nothing opened
    directory = Path(comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None))
    if comm.rank == 0:
        (directory / "only_here.py").write_text("def hook(context):\n    pass\n")
        sys.path.insert(0, str(directory))
    comm.Barrier()
    local = {**hook, "function": "only_here:hook"}
    try:
        with pytest.raises(
            ConfigError,
            match=r"hooks\[0\] \(only_here:hook on /x at commit\): cannot import module "
            r"'only_here': No module named 'only_here' "
            + re.escape(f"(on ranks {list(range(1, comm.size))})"),
        ):
            esdm_hpc.open("esdm://conf", "a", comm=comm, config={**config, "hooks": [local]})
    finally:
        if comm.rank == 0:
            sys.path.remove(str(directory))
    esdm_hpc.open("esdm://conf", "a", comm=comm, config=config).close()  # no lease was kept
