/*
 * Dimension scales (H5DS, which uses object references with a connector
 * other than the native one) through the connector: two scales attached to
 * a 2-D dataset, labels, iteration, detaching; checked again after the
 * file is reopened.
 *
 *   dimscales FILE   ("ok" on stdout; what went wrong, with its error stack, otherwise)
 */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static hid_t
dataset(hid_t file, const char *name, int rank, const hsize_t *dims)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dset  = H5Dcreate2(file, name, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    return dset;
}

/* H5DSiterate_scales callback: the scale's name */
static herr_t
scale_name(hid_t did, unsigned dim, hid_t dsid, void *name)
{
    (void)did, (void)dim;
    return H5DSget_scale_name(dsid, name, 16) > 0 ? 1 : -1;
}

static void
check_attached(hid_t file, int y_attached)
{
    char  label[16] = "", name[16] = "";
    hid_t data = H5Dopen2(file, "data", H5P_DEFAULT), x = H5Dopen2(file, "x", H5P_DEFAULT);
    hid_t y = H5Dopen2(file, "y", H5P_DEFAULT);

    check(H5DSis_scale(x) > 0 && H5DSis_scale(data) == 0, "H5DSis_scale");
    check(H5DSis_attached(data, x, 1) > 0 && H5DSis_attached(data, x, 0) == 0, "H5DSis_attached (x)");
    check(H5DSis_attached(data, y, 0) == y_attached, "H5DSis_attached (y)");
    check(H5DSget_num_scales(data, 1) == 1 && H5DSget_num_scales(data, 0) == y_attached,
          "H5DSget_num_scales");
    check(H5DSget_label(data, 0, label, sizeof label) > 0 && !strcmp(label, "rows"), "H5DSget_label");
    check(H5DSiterate_scales(data, 1, NULL, scale_name, name) == 1 && !strcmp(name, "x"),
          "H5DSiterate_scales names the scale");
    H5Dclose(y);
    H5Dclose(x);
    H5Dclose(data);
}

int
main(int argc, char **argv)
{
    hsize_t dims[2] = {3, 4};

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* print only where this program says so */
    hid_t file = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t data = dataset(file, "data", 2, dims), y = dataset(file, "y", 1, &dims[0]);
    hid_t x    = dataset(file, "x", 1, &dims[1]);
    check(H5DSset_scale(x, "x") >= 0 && H5DSset_scale(y, "y") >= 0, "H5DSset_scale");
    check(H5DSattach_scale(data, x, 1) >= 0, "H5DSattach_scale (x)");
    check(H5DSattach_scale(data, y, 0) >= 0, "H5DSattach_scale (y)");
    check(H5DSset_label(data, 0, "rows") >= 0, "H5DSset_label");
    H5Dclose(x);
    H5Dclose(y);
    H5Dclose(data);
    check_attached(file, 1);
    check(H5Fclose(file) >= 0, "closing the file");

    file = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    check_attached(file, 1);
    data = H5Dopen2(file, "data", H5P_DEFAULT);
    y    = H5Dopen2(file, "y", H5P_DEFAULT);
    check(H5DSdetach_scale(data, y, 0) >= 0, "H5DSdetach_scale");
    H5Dclose(y);
    H5Dclose(data);
    check_attached(file, 0);
    check(H5Fclose(file) >= 0, "closing the reopened file");
    return verdict();
}
