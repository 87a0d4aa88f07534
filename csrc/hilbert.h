/*
 * Hilbert space-filling curve in 2, 3 and 4 dimensions.
 *
 * The curve is the one of Hamilton, "Compact Hilbert Indices" (2006): per
 * level a state (entry point e, direction d) transforms the n coordinate bits
 * of that level into one n-bit digit of the key.  It starts at the origin and
 * consecutive keys are grid neighbours.  Keys of order `bits` (bits per
 * coordinate) use ndim*bits <= 64 bits.  The functions taking ndim and
 * bits return ESDM_EINVAL unless 2 <= ndim <= 4, bits >= 1 and
 * ndim*bits <= 64.
 *
 * All functions but hilbert_select_kernels are thread-safe once
 * hilbert_init() has returned.
 */
#ifndef ESDM_HILBERT_H
#define ESDM_HILBERT_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

/* Builds the lookup tables and picks the fastest kernel flavour; call once, first. */
int hilbert_init(void);

/* Flavours of the encode/decode kernels; both compute the same keys. */
enum hilbert_kernels {
    HILBERT_PORTABLE = 0, /* plain C */
    HILBERT_AVX2 = 1      /* x86-64 with AVX2 and BMI2 */
};

/*
 * Overrides the flavour hilbert_init() picked, e.g. to test both; returns
 * ESDM_EINVAL if the CPU cannot run it.  Not to be called while another
 * thread encodes or decodes.
 */
int hilbert_select_kernels(enum hilbert_kernels kernels);
enum hilbert_kernels hilbert_selected_kernels(void);

/*
 * Keys of `count` points stored row-major as `ndim` unsigned integers of
 * `width` bytes each (1, 2, 4 or 8).  Returns ESDM_ERANGE, with the keys
 * unspecified, if a coordinate is >= 2**valid_bits (valid_bits <= bits; a
 * caller passing signed data reinterpreted as unsigned lowers it below the
 * sign bit to reject negatives).
 */
int hilbert_encode(const void *points, size_t width, size_t count, unsigned ndim, unsigned bits,
                   unsigned valid_bits, uint64_t *keys);

/*
 * Inverse of hilbert_encode: `count` keys to row-major uint64 coordinates.
 * ESDM_ERANGE, with the points unspecified, if a key is >= 2**(ndim*bits).
 */
int hilbert_decode(const uint64_t *keys, size_t count, unsigned ndim, unsigned bits,
                   uint64_t *points);

/*
 * C-order flat indices of a block of extents shape[0..ndim) (ndim 2 or 3),
 * listed in the Hilbert order of the smallest power-of-two grid holding it.
 * `order` receives prod(shape) entries.
 */
int hilbert_order(const size_t *shape, unsigned ndim, intptr_t *order);

#endif
