"""Storage backends behind one interface (`base`): posix and memory.

The burst buffer and S3 tiers plug in here without changes to the core.
"""

from __future__ import annotations

from esdm_hpc.backends.base import Backend, BackendError, LogWriter, ObjectNotFoundError
from esdm_hpc.backends.memory import MemoryBackend
from esdm_hpc.backends.posix import PosixBackend
from esdm_hpc.config import BackendConfig

_IMPLEMENTATIONS: dict[str, type[Backend]] = {"posix": PosixBackend, "memory": MemoryBackend}


def open_backend(config: BackendConfig) -> Backend:
    """The backend for one configured storage target, chosen by ``config.type``."""
    try:
        implementation = _IMPLEMENTATIONS[config.type]
    except KeyError:
        known = ", ".join(_IMPLEMENTATIONS)
        # load_config refuses the types not implemented yet (burstbuffer, s3);
        # a BackendConfig made by hand gets this ValueError for them
        raise ValueError(
            f"backend {config.id!r}: unknown type {config.type!r} (available: {known})"
        ) from None
    return implementation(config)


__all__ = [
    "Backend",
    "BackendError",
    "LogWriter",
    "MemoryBackend",
    "ObjectNotFoundError",
    "PosixBackend",
    "open_backend",
]
