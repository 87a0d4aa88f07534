"""Storage backends behind one interface (`base`): posix and memory.

The burst buffer and S3 tiers plug in here without changes to the core.
"""

from __future__ import annotations

from esdm_hpc.backends.base import Backend, BackendError, LogWriter, ObjectNotFoundError
from esdm_hpc.backends.memory import MemoryBackend
from esdm_hpc.backends.posix import PosixBackend
from esdm_hpc.config import BackendConfig

_IMPLEMENTATIONS: dict[str, type[Backend]] = {"posix": PosixBackend, "memory": MemoryBackend}
_COMING = ("burstbuffer", "s3")


def open_backend(config: BackendConfig) -> Backend:
    """The backend for one configured storage target, chosen by ``config.type``."""
    if config.type in _COMING:
        raise NotImplementedError(
            f"backend {config.id!r}: type {config.type!r} arrives with the tiers issue"
        )
    try:
        implementation = _IMPLEMENTATIONS[config.type]
    except KeyError:
        known = ", ".join(_IMPLEMENTATIONS)
        raise ValueError(
            f"backend {config.id!r}: unknown type {config.type!r} (known: {known})"
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
