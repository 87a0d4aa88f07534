"""The public API on one process against a numpy model of every epoch (tests/model.py)."""

import pytest

from esdm_hpc.comm import SerialComm
from esdm_hpc.epochs import commit
from tests.model import run


@pytest.mark.parametrize("kind", ["plain", "tmpfs", "tiers"])
def test_the_api_matches_a_numpy_model_of_every_epoch(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "PACK_EPOCHS", 3)  # time travel through packs, too
    # the tiers' S3 requests cost milliseconds each: fewer examples
    run(SerialComm(), kind, examples=20 if kind == "tiers" else 60, steps=30)
