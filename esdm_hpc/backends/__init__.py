"""Storage backends behind one interface (`base`): posix, memory, burstbuffer and s3."""

from __future__ import annotations

from esdm_hpc.backends.base import (
    Backend,
    BackendError,
    CompareAndSwap,
    LogWriter,
    ObjectNotFoundError,
    Versioned,
)
from esdm_hpc.backends.burstbuffer import BurstBufferBackend
from esdm_hpc.backends.memory import MemoryBackend
from esdm_hpc.backends.posix import PosixBackend
from esdm_hpc.backends.s3 import S3Backend
from esdm_hpc.config import BackendConfig

_IMPLEMENTATIONS: dict[str, type[Backend]] = {
    "posix": PosixBackend,
    "memory": MemoryBackend,
    "burstbuffer": BurstBufferBackend,
    "s3": S3Backend,
}


def open_backend(config: BackendConfig) -> Backend:
    """The backend for one configured storage target, chosen by ``config.type``."""
    try:
        implementation = _IMPLEMENTATIONS[config.type]
    except KeyError:
        known = ", ".join(_IMPLEMENTATIONS)
        raise ValueError(
            f"backend {config.id!r}: unknown type {config.type!r} (available: {known})"
        ) from None
    return implementation(config)


__all__ = [
    "Backend",
    "BackendError",
    "BurstBufferBackend",
    "CompareAndSwap",
    "LogWriter",
    "MemoryBackend",
    "ObjectNotFoundError",
    "PosixBackend",
    "S3Backend",
    "Versioned",
    "open_backend",
]
