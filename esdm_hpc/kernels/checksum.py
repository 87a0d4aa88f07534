"""Block checksums of buffers (XXH3-64, one digest per block).

A fragment stores one digest per block so that a read verifies only the blocks
it touches and a corrupt block can be named precisely.
"""

from __future__ import annotations

import numpy as np

from esdm_hpc.kernels import _checksum

ALGORITHM: str = _checksum.ALGORITHM
DEFAULT_BLOCK_SIZE = 1 << 20
MAX_BLOCK_SIZE = 1 << 63  # what the kernel's size_t arithmetic takes on every platform


def _as_bytes(buffer: object, name: str = "buffer") -> memoryview:
    try:
        view = memoryview(buffer)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(
            f"{name} must support the buffer protocol (bytes, bytearray, numpy array), "
            f"not {type(buffer).__name__}"
        ) from None
    if not view.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if view.nbytes == 0:  # memoryview refuses to cast views with a zero extent
        return memoryview(b"")
    return view.cast("B") if view.ndim != 1 or view.format != "B" else view


def block_checksums(buffer: object, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """One uint64 digest per ``block_size`` bytes of ``buffer``; the last block may be short."""
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer):
        raise ValueError(f"block_size must be an integer, not {type(block_size).__name__}")
    if not 0 < block_size < MAX_BLOCK_SIZE:
        raise ValueError(f"block_size must be positive and below 2**63, got {block_size}")
    return _checksum.block_checksums(_as_bytes(buffer), int(block_size))


def checksum(buffer: object) -> int:
    """The digest of the whole of ``buffer``."""
    return _checksum.checksum(_as_bytes(buffer))
