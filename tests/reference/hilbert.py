"""Reference Hilbert curve: Hamilton's per-level definition, vectorised over points.

An independent oracle for ``esdm_hpc.kernels.hilbert`` (which runs precomputed
multi-level automaton tables in C) and the baseline of its benchmark.  It walks
the levels of "Compact Hilbert Indices" (Hamilton 2006) from the top; per level,
the n coordinate bits ``l`` of every point (bit j from axis j) become the key digit

    w = gray_inverse(rotr(l ^ e, d + 1)),

after which the state moves into the sub-cube: ``e ^= rotl(entry(w), d + 1)``,
``d = (d + direction(w) + 1) % n``.  The walk starts at e = d = 0, at the origin.
"""

import numpy as np

_DIGIT = np.uint8  # per-point digits and states have at most 4 bits


def _gray(i: np.ndarray) -> np.ndarray:
    return i ^ (i >> 1)


def _gray_inverse(g: np.ndarray) -> np.ndarray:
    g = g ^ (g >> 1)
    return g ^ (g >> 2)  # enough for digits of up to 4 bits


def _rotate_right(x: np.ndarray, r: np.ndarray, n: int) -> np.ndarray:
    # r in 1..n; x < 2**n, so the r == n case needs no special handling.
    return ((x >> r) | (x << (n - r))) & ((1 << n) - 1)


def _rotate_left(x: np.ndarray, r: np.ndarray, n: int) -> np.ndarray:
    return ((x << r) | (x >> (n - r))) & ((1 << n) - 1)


def _trailing_ones(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x & ~(x + 1))


def _entry(w: np.ndarray) -> np.ndarray:
    """Entry corner of the w-th sub-cube: 0 for w = 0, else gray(2 * ((w - 1) // 2))."""
    return _gray((w - (w != 0)) & ~_DIGIT(1))


def _direction(w: np.ndarray, n: int) -> np.ndarray:
    """Traversal axis of the w-th sub-cube: trailing ones of w (odd) or w - 1 (even)."""
    return np.where(w == 0, 0, _trailing_ones((w - 1) | 1) % n).astype(_DIGIT)


def _advance(e: np.ndarray, d: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The state (e, d) inside the sub-cube of digit w."""
    return e ^ _rotate_left(_entry(w), d + 1, n), (d + _direction(w, n) + 1) % n


def encode(points: np.ndarray, bits: int) -> np.ndarray:
    """Keys (uint64) of the (N, n) non-negative integer `points` on the curve of order `bits`."""
    count, n = points.shape
    coordinates = [np.ascontiguousarray(points[:, j]) for j in range(n)]
    e = np.zeros(count, _DIGIT)
    d = np.zeros(count, _DIGIT)
    keys = np.zeros(count, np.uint64)
    for level in range(bits - 1, -1, -1):
        corner = np.zeros(count, _DIGIT)  # Hamilton's l: the level's coordinate bits
        for j, column in enumerate(coordinates):
            corner |= (((column >> level) & 1) << j).astype(_DIGIT)
        w = _gray_inverse(_rotate_right(corner ^ e, d + 1, n))
        keys = (keys << np.uint64(n)) | w
        e, d = _advance(e, d, w, n)
    return keys


def decode(keys: np.ndarray, ndim: int, bits: int) -> np.ndarray:
    """Coordinates, shape (N, ndim) uint64, of the uint64 `keys` on the curve of order `bits`."""
    n = ndim
    keys = np.asarray(keys, np.uint64)
    e = np.zeros(keys.size, _DIGIT)
    d = np.zeros(keys.size, _DIGIT)
    points = np.zeros((keys.size, n), np.uint64)
    for level in range(bits - 1, -1, -1):
        w = ((keys >> np.uint64(n * level)) & np.uint64((1 << n) - 1)).astype(_DIGIT)
        corner = _rotate_left(_gray(w), d + 1, n) ^ e
        for j in range(n):
            points[:, j] |= ((corner >> j) & 1).astype(np.uint64) << np.uint64(level)
        e, d = _advance(e, d, w, n)
    return points


def order(shape: tuple[int, ...]) -> np.ndarray:
    """C-order flat indices of a block sorted by their keys on the smallest enclosing curve."""
    if 0 in shape:
        return np.zeros(0, np.intp)
    bits = max(1, (max(shape) - 1).bit_length())
    cells = np.indices(shape).reshape(len(shape), -1).T
    return np.argsort(encode(cells, bits), kind="stable")


def serialise(block: np.ndarray) -> np.ndarray:
    return block.reshape(-1)[order(block.shape)]


def deserialise(buf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    flat = np.empty(buf.size, buf.dtype)
    flat[order(shape)] = buf
    return flat.reshape(shape)
