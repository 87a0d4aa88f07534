"""Storage backends behind one interface (`base`): posix, memory and s3.

The burst buffer tier plugs in here without changes to the core.
"""

from __future__ import annotations

from esdm_hpc.backends.base import Backend, BackendError, LogWriter, ObjectNotFoundError
from esdm_hpc.backends.memory import MemoryBackend
from esdm_hpc.backends.posix import PosixBackend
from esdm_hpc.backends.s3 import S3Backend
from esdm_hpc.config import BackendConfig

_IMPLEMENTATIONS: dict[str, type[Backend]] = {
    "posix": PosixBackend,
    "memory": MemoryBackend,
    "s3": S3Backend,
}


def open_backend(config: BackendConfig) -> Backend:
    """The backend for one configured storage target, chosen by ``config.type``."""
    try:
        implementation = _IMPLEMENTATIONS[config.type]
    except KeyError:
        known = ", ".join(_IMPLEMENTATIONS)
        # load_config refuses the types not implemented yet (burstbuffer);
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
    "S3Backend",
    "open_backend",
]
