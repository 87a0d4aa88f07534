/* Status codes of the C kernels: 0, or one of the negative values below.
 *
 * One set for all kernels so the Cython bindings turn them into Python
 * exceptions in one place (esdm_hpc/kernels/_status.pxd).
 */
#ifndef ESDM_STATUS_H
#define ESDM_STATUS_H

enum esdm_status {
    ESDM_OK = 0,
    ESDM_EINVAL = -1, /* arguments the kernel does not support (see each function) */
    ESDM_ENOMEM = -2, /* an allocation failed; nothing was leaked */
    ESDM_ERANGE = -3, /* a value does not fit (a coordinate beyond the curve order) */
    ESDM_EINIT = -4   /* tables built at start-up came out inconsistent */
};

#endif
