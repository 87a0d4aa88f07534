/*
 * What the test programs share: a check that fails prints what it expected
 * with HDF5's error stack and is counted; a program ends with verdict(),
 * which prints "ok" (what the tests look for) only when nothing failed.
 */
#ifndef ESDM_TEST_CHECK_H
#define ESDM_TEST_CHECK_H

#include <hdf5.h>
#include <stdio.h>

static int failures;

static inline void
check(int ok, const char *what)
{
    if (ok)
        return;
    printf("FAILED: %s\n", what);
    H5Eprint2(H5E_DEFAULT, stdout);
    failures++;
}

#define CHECK(condition) check((condition), #condition)

static inline int
verdict(void)
{
    if (failures == 0)
        printf("ok\n");
    return failures ? 1 : 0;
}

#endif /* ESDM_TEST_CHECK_H */
