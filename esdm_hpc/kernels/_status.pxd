# Shared by the kernel bindings: C status codes become Python exceptions, and
# C-allocated result tables become numpy arrays. Inline, so no module of its own.
from libc.stdint cimport int64_t
from libc.string cimport memcpy


cdef extern from "status.h":
    enum esdm_status:
        ESDM_OK
        ESDM_EINVAL
        ESDM_ENOMEM
        ESDM_ERANGE
        ESDM_EINIT


cdef inline int check(int status, str kernel, str range_error=None) except -1:
    if status == ESDM_OK:
        return 0
    if status == ESDM_ENOMEM:
        raise MemoryError()
    if status == ESDM_ERANGE and range_error is not None:
        raise ValueError(range_error)
    raise ValueError(f"{kernel}: unsupported arguments (status {status})")


cdef inline object copied(const int64_t *data, size_t rows, size_t cols):
    """A new (rows, cols) int64 array with a copy of a C result."""
    from numpy import empty, int64

    out = empty((rows, cols), dtype=int64)
    cdef int64_t[:, ::1] view = out
    if rows and cols:
        memcpy(&view[0, 0], data, rows * cols * sizeof(int64_t))
    return out
