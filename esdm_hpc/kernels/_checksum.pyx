# Thin binding of csrc/checksum.c; arguments are checked in checksum.py.
import numpy as np

from libc.stdint cimport uint64_t


cdef extern from "checksum.h":
    const char *ESDM_CHECKSUM_ALGORITHM
    size_t esdm_checksum_nblocks(size_t nbytes, size_t block_size) nogil
    int esdm_block_checksums(const void *buf, size_t nbytes, size_t block_size,
                             uint64_t *out) nogil
    uint64_t esdm_checksum(const void *buf, size_t nbytes) nogil


ALGORITHM = ESDM_CHECKSUM_ALGORITHM.decode()


def block_checksums(const unsigned char[::1] data, size_t block_size):
    cdef size_t nbytes = data.shape[0]
    out = np.empty(esdm_checksum_nblocks(nbytes, block_size), dtype=np.uint64)
    cdef uint64_t[::1] digests = out
    if nbytes == 0:
        return out
    with nogil:
        esdm_block_checksums(&data[0], nbytes, block_size, &digests[0])
    return out


def checksum(const unsigned char[::1] data):
    cdef uint64_t digest
    cdef size_t nbytes = data.shape[0]
    if nbytes == 0:
        return esdm_checksum(NULL, 0)
    with nogil:
        digest = esdm_checksum(&data[0], nbytes)
    return digest
