"""The exceptions users of esdm-hpc see. Each message names what went wrong and where."""

from __future__ import annotations


class EsdmError(Exception):
    """Base of the middleware's own errors."""


class EsdmWarning(UserWarning):
    """Base of the middleware's own warnings."""


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


class EpochWriteError(EsdmError, OSError):
    """A write of the open epoch failed, so its commit is refused (the epoch is discarded)."""


class LeaseLostError(EsdmError, PermissionError):
    """The writer no longer holds the container's lease (broken by force, or taken
    over after it expired): nothing it wrote since its last commit is committed."""


class PublishConflictError(EsdmError, RuntimeError):
    """HEAD moved under a writer: another one published the epoch it built."""


class CorruptMetadataError(EsdmError, ValueError):
    """HEAD, a manifest, a pack or a lease is unreadable: truncated, edited or of
    another format."""


class CorruptDataError(EsdmError, OSError):
    """A block of a fragment does not match its checksum."""


class ReplicaUnreachableError(EsdmError, OSError):
    """Every replica of a fragment is on another node's burst buffer (not drained yet)."""


__all__ = [
    "CollectiveMismatchError",
    "ContainerExistsError",
    "ContainerNotFoundError",
    "CorruptDataError",
    "CorruptMetadataError",
    "EpochWriteError",
    "EsdmError",
    "EsdmWarning",
    "LeaseHeldError",
    "LeaseLostError",
    "OverlappingWritesError",
    "PublishConflictError",
    "ReplicaUnreachableError",
]
