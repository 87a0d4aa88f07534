"""Reference block checksums: the PyPI ``xxhash`` binding applied block by block."""

import numpy as np
import xxhash


def block_checksums(buffer: bytes | np.ndarray, block_size: int) -> np.ndarray:
    data = memoryview(buffer).cast("B")
    digests = [
        xxhash.xxh3_64_intdigest(data[start : start + block_size])
        for start in range(0, len(data), block_size)
    ]
    return np.array(digests, dtype=np.uint64)
