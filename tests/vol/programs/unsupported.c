/*
 * Features the connector does not support yet must fail like any HDF5
 * error (a negative return and an error stack naming the feature) and
 * leave the program able to carry on: here a virtual dataset with an
 * unlimited mapping and a dataset of region references are refused, then an
 * ordinary dataset is written and the file closes cleanly.
 *
 *   unsupported FILE     (prints the error stacks to stderr, "ok" to stdout)
 */
#include <hdf5.h>
#include <stdio.h>

static int failures;

static void
expect_failure(herr_t status, const char *what)
{
    if (status >= 0) {
        printf("unexpected success: %s\n", what);
        failures++;
        return;
    }
    fprintf(stderr, "--- %s failed as expected:\n", what);
    H5Eprint2(H5E_DEFAULT, stderr);
}

int
main(int argc, char **argv)
{
    hsize_t dims[1] = {8};
    int     data[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8] = {0};

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* print only where this program says so */
    hid_t file  = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(1, dims, NULL);
    if (file < 0 || space < 0) {
        H5Eprint2(H5E_DEFAULT, stderr);
        return 1;
    }

    /* a virtual dataset mapping another dataset as it grows */
    hsize_t unlimited[1] = {H5S_UNLIMITED}, start[1] = {0}, one[1] = {1};
    hid_t   growing = H5Screate_simple(1, dims, unlimited);
    H5Sselect_hyperslab(growing, H5S_SELECT_SET, start, NULL, one, unlimited);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_virtual(dcpl, growing, "source.h5", "/data", growing);
    hid_t vds = H5Dcreate2(file, "virtual", H5T_NATIVE_INT, growing, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    expect_failure(vds, "H5Dcreate2 with an unlimited virtual mapping");
    H5Pclose(dcpl);
    H5Sclose(growing);

    /* the connector carries on: an ordinary dataset */
    hid_t dset = H5Dcreate2(file, "data", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (dset < 0 || H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        H5Eprint2(H5E_DEFAULT, stderr);
        return 1;
    }

    /* a dataset of region references */
    hid_t regions = H5Dcreate2(file, "regions", H5T_STD_REF_DSETREG, space, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT);
    expect_failure(regions, "H5Dcreate2 of region references");

    if (H5Dread(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0 || back[7] != 8) {
        H5Eprint2(H5E_DEFAULT, stderr);
        return 1;
    }
    H5Dclose(dset);
    H5Sclose(space);
    if (H5Fclose(file) < 0) {
        H5Eprint2(H5E_DEFAULT, stderr);
        return 1;
    }
    if (failures == 0)
        printf("ok\n");
    return failures ? 1 : 0;
}
