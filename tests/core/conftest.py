from pathlib import Path

import pytest


def site(root: Path, **overrides: object) -> dict:
    """A site configuration with one posix backend under ``root``."""
    backend = {"id": "disk", "type": "posix", "target": str(root / "disk")}
    backend.update(overrides.pop("backend", {}))  # type: ignore[arg-type]
    return {"backends": [backend], **overrides}


@pytest.fixture
def config(tmp_path: Path) -> dict:
    return site(tmp_path)
