"""The public API on every rank against a numpy model of every epoch (tests/model.py):
hypothesis draws the steps on rank 0, every rank does them, each writing its own rows."""

import pytest
from mpi4py import MPI

from esdm_hpc.epochs import commit
from tests.model import run

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("kind", ["plain", "tmpfs", "tiers"])
def test_the_api_on_every_rank_matches_a_numpy_model_of_every_epoch(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "PACK_EPOCHS", 3)  # time travel through packs, too
    # the tiers' S3 requests cost milliseconds each: fewer examples
    run(MPI.COMM_WORLD, kind, examples=4 if kind == "tiers" else 15, steps=25)
