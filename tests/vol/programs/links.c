/*
 * Links, navigation and committed datatypes through plain HDF5 calls: hard
 * and soft links, their info and values, deletion, iteration by name and by
 * creation order, by-index locations, and a committed type used by a
 * dataset. Each check that fails prints what it expected.
 *
 *   links FILE     (prints "ok" to stdout when every check passed)
 */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

/* Names in the order H5Literate2 reports them, comma-separated. */
static herr_t
collect(hid_t group, const char *name, const H5L_info2_t *info, void *data)
{
    (void)group, (void)info;
    strcat(strcat(data, name), ",");
    return 0;
}

static void
expect_order(hid_t file, H5_index_t index, H5_iter_order_t order, const char *expected)
{
    char names[256] = "";
    CHECK(H5Literate2(file, index, order, NULL, collect, names) >= 0);
    if (strcmp(names, expected))
        printf("iteration (index %d, order %d): %s, not %s\n", (int)index, (int)order, names, expected);
    CHECK(!strcmp(names, expected));
}

static void
links(hid_t file)
{
    hsize_t     dims[1] = {4};
    int         data[4] = {1, 2, 3, 4}, back[4] = {0};
    hid_t       space   = H5Screate_simple(1, dims, NULL);
    hid_t       dset    = H5Dcreate2(file, "zeta", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT,
                                     H5P_DEFAULT);
    H5L_info2_t zeta, alias, soft;
    H5O_info2_t info;
    char        value[64];
    int         cmp = 1;

    CHECK(dset >= 0 && H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    CHECK(H5Gclose(H5Gcreate2(file, "alpha", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0);
    /* H5L_SAME_LOC: HDF5 passes the connector no object for the new link */
    CHECK(H5Lcreate_hard(file, "zeta", H5L_SAME_LOC, "alpha/alias", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    CHECK(H5Lcreate_soft("/zeta", file, "beta", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    CHECK(H5Lcreate_soft("/missing", file, "dangling", H5P_DEFAULT, H5P_DEFAULT) >= 0);

    /* one object, two names: one token, reference count 2 */
    CHECK(H5Lget_info2(file, "zeta", &zeta, H5P_DEFAULT) >= 0 && zeta.type == H5L_TYPE_HARD);
    CHECK(H5Lget_info2(file, "alpha/alias", &alias, H5P_DEFAULT) >= 0 && alias.type == H5L_TYPE_HARD);
    CHECK(H5Otoken_cmp(file, &zeta.u.token, &alias.u.token, &cmp) >= 0 && cmp == 0);
    CHECK(H5Oget_info_by_name3(file, "alpha/alias", &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0);
    CHECK(info.rc == 2 && info.type == H5O_TYPE_DATASET);
    CHECK(zeta.corder_valid && zeta.corder == 0);

    /* soft links: value, traversal, dangling */
    CHECK(H5Lget_info2(file, "beta", &soft, H5P_DEFAULT) >= 0 && soft.type == H5L_TYPE_SOFT);
    CHECK(soft.u.val_size == strlen("/zeta") + 1);
    CHECK(H5Lget_val(file, "beta", value, sizeof value, H5P_DEFAULT) >= 0 && !strcmp(value, "/zeta"));
    hid_t through = H5Dopen2(file, "beta", H5P_DEFAULT);
    CHECK(through >= 0 && H5Dread(through, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    CHECK(back[3] == 4);
    H5Dclose(through);
    CHECK(H5Lexists(file, "dangling", H5P_DEFAULT) > 0);
    H5E_BEGIN_TRY { CHECK(H5Oopen(file, "dangling", H5P_DEFAULT) < 0); }
    H5E_END_TRY

    /* by name, by creation order, both directions */
    expect_order(file, H5_INDEX_NAME, H5_ITER_INC, "alpha,beta,dangling,zeta,");
    expect_order(file, H5_INDEX_CRT_ORDER, H5_ITER_INC, "zeta,alpha,beta,dangling,");
    expect_order(file, H5_INDEX_CRT_ORDER, H5_ITER_DEC, "dangling,beta,alpha,zeta,");

    /* by-index locations */
    CHECK(H5Lget_name_by_idx(file, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, 1, value, sizeof value,
                             H5P_DEFAULT) == 5 &&
          !strcmp(value, "alpha"));
    CHECK(H5Oget_info_by_idx3(file, ".", H5_INDEX_NAME, H5_ITER_DEC, 0, &info, H5O_INFO_BASIC,
                              H5P_DEFAULT) >= 0 &&
          info.type == H5O_TYPE_DATASET);
    hid_t group = H5Oopen_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, 0, H5P_DEFAULT);
    CHECK(group >= 0 && H5Iget_type(group) == H5I_GROUP);
    H5Oclose(group);

    /* deleting one name keeps the object under the other */
    CHECK(H5Ldelete(file, "zeta", H5P_DEFAULT) >= 0);
    CHECK(H5Lexists(file, "zeta", H5P_DEFAULT) == 0);
    CHECK(H5Oget_info_by_name3(file, "alpha/alias", &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0);
    CHECK(info.rc == 1);
    CHECK(H5Dread(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0 && back[0] == 1);
    H5Dclose(dset);
    H5Sclose(space);
}

static void
committed_types(hid_t file)
{
    hsize_t     dims[1] = {3};
    short       data[3] = {-1, 0, 7}, back[3] = {0};
    hid_t       type    = H5Tcopy(H5T_STD_I16BE);
    hid_t       space   = H5Screate_simple(1, dims, NULL);
    H5O_info2_t info;

    CHECK(H5Tcommit2(file, "types/level", type, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) >= 0);
    CHECK(H5Tcommitted(type) > 0);
    hid_t dset = H5Dcreate2(file, "levels", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(dset >= 0 && H5Dwrite(dset, H5T_NATIVE_SHORT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    CHECK(H5Dread(dset, H5T_NATIVE_SHORT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0 && back[2] == 7);
    H5Dclose(dset);
    H5Tclose(type);

    hid_t opened = H5Topen2(file, "types/level", H5P_DEFAULT);
    CHECK(opened >= 0 && H5Tequal(opened, H5T_STD_I16BE) > 0);
    hid_t tcpl = H5Tget_create_plist(opened);
    CHECK(tcpl >= 0);
    H5Pclose(tcpl);
    H5Tclose(opened);
    CHECK(H5Oget_info_by_name3(file, "types/level", &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0);
    CHECK(info.type == H5O_TYPE_NAMED_DATATYPE);
    H5Sclose(space);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t file = H5Fcreate(argv[1], H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    if (file < 0) {
        H5Eprint2(H5E_DEFAULT, stderr);
        return 1;
    }
    links(file);
    committed_types(file);
    CHECK(H5Fclose(file) >= 0);

    /* everything survives the commit */
    file = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(file >= 0);
    expect_order(file, H5_INDEX_CRT_ORDER, H5_ITER_INC, "alpha,beta,dangling,types,levels,");
    CHECK(H5Fclose(file) >= 0);
    H5Pclose(fcpl);
    return verdict();
}
