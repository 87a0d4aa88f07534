"""The public API on one process against a numpy model of every epoch (tests/model.py)."""

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from esdm_hpc.comm import SerialComm
from esdm_hpc.epochs import commit
from tests.model import Lockstep, disk, machine

SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    # explaining a failure reruns it for minutes; the shrunk steps say enough
    phases=[p for p in Phase if p is not Phase.explain],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("kind", ["plain", "tmpfs"])
def test_the_api_matches_a_numpy_model_of_every_epoch(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "PACK_EPOCHS", 3)  # time travel through packs, too
    comm = SerialComm()
    with disk(comm, kind) as where:
        run_state_machine_as_test(machine(Lockstep(comm, where)), settings=SETTINGS)
