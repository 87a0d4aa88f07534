/*
 * LD_PRELOAD shim for HDF5's API test suite (h5_api_test): the suite seeds
 * rand() with time(NULL) and draws datatypes, shapes and selections from it,
 * so its counts change from run to run. This replaces the seed with the
 * value of API_TEST_SEED, which makes a run repeatable (tests/vol/api_suite.py).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

void
srand(unsigned seed)
{
    const char *fixed = getenv("API_TEST_SEED");
    void (*next)(unsigned) = (void (*)(unsigned))dlsym(RTLD_NEXT, "srand");

    next(fixed ? (unsigned)strtoul(fixed, NULL, 10) : seed);
}
