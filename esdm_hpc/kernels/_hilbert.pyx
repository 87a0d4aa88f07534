"""Binding of csrc/hilbert.c.  Arguments are checked by esdm_hpc.kernels.hilbert;
the caller passes C-contiguous native-endian arrays and allocates the outputs.
Here only what memory safety needs is checked: that the outputs fit."""

import math

from libc.stdint cimport intptr_t, uint8_t, uint16_t, uint32_t, uint64_t

from esdm_hpc.kernels._status cimport ESDM_OK, check


cdef extern from "hilbert.h" nogil:
    enum hilbert_kernels:
        HILBERT_PORTABLE
        HILBERT_AVX2
    int hilbert_init()
    int hilbert_select_kernels(hilbert_kernels kernels)
    hilbert_kernels hilbert_selected_kernels()
    int hilbert_encode(const void *points, size_t width, size_t count, unsigned ndim,
                       unsigned bits, unsigned valid_bits, uint64_t *keys)
    int hilbert_decode(const uint64_t *keys, size_t count, unsigned ndim, unsigned bits,
                       uint64_t *points)
    int hilbert_order(const size_t *shape, unsigned ndim, intptr_t *order)


ctypedef fused coordinate_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t


# Once, at import: the tables are read-only afterwards, so no lazy-init races.
if hilbert_init() != ESDM_OK:
    raise ImportError("hilbert: the curve's state tables came out inconsistent")


#: Flavours of the encode/decode kernels, by name; hilbert_init() picked the fastest.
KERNELS = {"portable": HILBERT_PORTABLE, "avx2": HILBERT_AVX2}


def select_kernels(str name):
    """Run encode/decode with the kernels `name` (e.g. to test every flavour)."""
    if hilbert_select_kernels(KERNELS[name]) != ESDM_OK:
        raise ValueError(f"kernels {name!r} cannot run on this CPU")


def selected_kernels():
    """Name of the kernels encode/decode run with."""
    selected = hilbert_selected_kernels()
    return next(name for name, kernels in KERNELS.items() if kernels == selected)


cdef int check_output(Py_ssize_t size, Py_ssize_t expected, str name) except -1:
    if size != expected:
        raise ValueError(f"{name} must have {expected} entries, not {size}")
    return 0


def encode(const coordinate_t[:, ::1] points, unsigned bits, unsigned valid_bits,
           uint64_t[::1] keys):
    """Keys of `points` (N, ndim) into `keys` (N,); coordinates must be < 2**valid_bits."""
    cdef int status
    check_output(keys.shape[0], points.shape[0], "keys")
    if points.shape[0] == 0:
        return
    with nogil:
        status = hilbert_encode(&points[0, 0], sizeof(coordinate_t), points.shape[0],
                                points.shape[1], bits, valid_bits, &keys[0])
    check(status, "hilbert", f"points must be non-negative and below 2**bits = 2**{bits}")


def decode(const uint64_t[::1] keys, unsigned bits, uint64_t[:, ::1] points):
    """Coordinates of `keys` (N,) into `points` (N, ndim)."""
    cdef int status
    check_output(points.shape[0], keys.shape[0], "points")
    if keys.shape[0] == 0:
        return
    with nogil:
        status = hilbert_decode(&keys[0], keys.shape[0], points.shape[1], bits, &points[0, 0])
    check(status, "hilbert", f"keys must be below 2**(ndim*bits) = 2**{points.shape[1] * bits}")


def order(tuple shape, Py_ssize_t[::1] out):
    """Flat indices of a block of `shape` in curve order into `out` (prod(shape),)."""
    cdef size_t extents[3]
    cdef unsigned ndim = len(shape)
    cdef int status
    if ndim > 3:
        raise ValueError(f"shape must have 2 or 3 extents, got {ndim}")
    for j in range(ndim):
        extents[j] = shape[j]
    check_output(out.shape[0], math.prod(shape), "out")
    with nogil:
        status = hilbert_order(extents, ndim, <intptr_t *>&out[0] if out.shape[0] else NULL)
    check(status, "hilbert")
