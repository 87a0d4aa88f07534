"""The public API on every rank against a numpy model of every epoch (tests/model.py):
hypothesis draws the steps on rank 0, every rank does them, each writing its own rows."""

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from mpi4py import MPI

from esdm_hpc.epochs import commit
from tests.model import Lockstep, disk, machine

pytestmark = pytest.mark.mpi

SETTINGS = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    # explaining a failure reruns it for minutes; the shrunk steps say enough
    phases=[p for p in Phase if p is not Phase.explain],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("kind", ["plain", "tmpfs"])
def test_the_api_on_every_rank_matches_a_numpy_model_of_every_epoch(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "PACK_EPOCHS", 3)  # time travel through packs, too
    comm = MPI.COMM_WORLD
    with disk(comm, kind) as where:
        lockstep = Lockstep(comm, where)
        if comm.rank != 0:
            lockstep.follow()
            return
        try:
            run_state_machine_as_test(machine(lockstep), settings=SETTINGS)
        finally:
            lockstep.stop()
