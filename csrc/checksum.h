/* Block checksums: one 64-bit digest per fixed-size block of a buffer.
 *
 * Fragments carry a digest per block so that a partial read verifies only the
 * blocks it touches. The hash is XXH3-64 from xxHash (not hand-written): it runs
 * near memory bandwidth and is stable across platforms and versions.
 */
#ifndef ESDM_CHECKSUM_H
#define ESDM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define ESDM_CHECKSUM_ALGORITHM "xxh3-64"

/* Number of digests esdm_block_checksums writes for a buffer of nbytes. */
size_t esdm_checksum_nblocks(size_t nbytes, size_t block_size);

/* Digest of each block_size block of buf (the last block may be shorter) into
 * out[esdm_checksum_nblocks(nbytes, block_size)]. Returns 0, or -1 when
 * block_size is 0. */
int esdm_block_checksums(const void *buf, size_t nbytes, size_t block_size, uint64_t *out);

/* Digest of the whole buffer. */
uint64_t esdm_checksum(const void *buf, size_t nbytes);

#endif
