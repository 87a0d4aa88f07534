"""The exceptions users of esdm-hpc see. Each message names what went wrong and where."""

from __future__ import annotations

from esdm_hpc.manifest import CorruptMetadataError


class EsdmError(Exception):
    """Base of the middleware's own errors."""


class ContainerNotFoundError(EsdmError, FileNotFoundError):
    """The container does not exist (or has no committed epoch)."""


class ContainerExistsError(EsdmError, FileExistsError):
    """Mode "w" on an existing container without ``overwrite=True``."""


class CollectiveMismatchError(EsdmError, ValueError):
    """Ranks called a collective operation with different arguments."""


class OverlappingWritesError(EsdmError, ValueError):
    """Two ranks wrote overlapping regions of one dataset in one epoch."""


class LeaseHeldError(EsdmError, PermissionError):
    """Another application holds the container's write lease."""


class CorruptDataError(EsdmError, OSError):
    """A block of a fragment does not match its checksum."""


__all__ = [
    "CollectiveMismatchError",
    "ContainerExistsError",
    "ContainerNotFoundError",
    "CorruptDataError",
    "CorruptMetadataError",
    "EsdmError",
    "LeaseHeldError",
    "OverlappingWritesError",
]
