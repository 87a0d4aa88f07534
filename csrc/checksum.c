#include "checksum.h"

#include <xxhash.h>
#if defined(__x86_64__)
/* libxxhash picks the widest vector unit (SSE2, AVX2, AVX-512) at run time;
 * the baseline XXH3_64bits is SSE2 only and half as fast on AVX2 machines. */
#include <xxh_x86dispatch.h>
#define esdm_xxh3 XXH3_64bits_dispatch
#else
#define esdm_xxh3 XXH3_64bits
#endif

size_t esdm_checksum_nblocks(size_t nbytes, size_t block_size)
{
    /* not (nbytes + block_size - 1) / block_size: that wraps for block sizes
     * near SIZE_MAX and would leave a buffer without any digest */
    return block_size == 0 ? 0 : nbytes / block_size + (nbytes % block_size != 0);
}

int esdm_block_checksums(const void *buf, size_t nbytes, size_t block_size, uint64_t *out)
{
    if (block_size == 0)
        return -1;
    const unsigned char *p = buf;
    size_t nblocks = esdm_checksum_nblocks(nbytes, block_size);
    for (size_t i = 0; i < nblocks; i++) {
        size_t start = i * block_size;
        size_t len = nbytes - start < block_size ? nbytes - start : block_size;
        out[i] = esdm_xxh3(p + start, len);
    }
    return 0;
}

uint64_t esdm_checksum(const void *buf, size_t nbytes)
{
    return esdm_xxh3(buf, nbytes);
}
