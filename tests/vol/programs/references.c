/*
 * Object references (H5R_ref_t) and tokens through the connector.
 *
 * References to a dataset and a group are created, compared, queried and
 * dereferenced; they are stored in attributes as H5DS stores them (plain,
 * in a compound with a number, in variable-length sequences) and, after
 * the file is reopened, read back, named and dereferenced again; so are a
 * dataset of references and a dataset of sequences of them. Objects open by
 * token.
 *
 *   references FILE   ("ok" on stdout; what went wrong, with its error stack,
 *                      on stdout otherwise)
 */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

typedef struct {
    H5R_ref_t ref;
    unsigned  dim;
} listed_t; /* H5DS's REFERENCE_LIST entry */

static hid_t
listed_type(void)
{
    hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(listed_t));
    H5Tinsert(type, "dataset", HOFFSET(listed_t, ref), H5T_STD_REF);
    H5Tinsert(type, "dimension", HOFFSET(listed_t, dim), H5T_NATIVE_UINT);
    return type;
}

/* The reference names the object at path: H5Rget_obj_name, H5Ropen_object. */
static int
names(H5R_ref_t *ref, const char *path)
{
    char  name[64] = "";
    hid_t object   = H5Ropen_object(ref, H5P_DEFAULT, H5P_DEFAULT);
    char  opened[64] = "";
    int   ok = H5Rget_obj_name(ref, H5P_DEFAULT, name, sizeof name) > 0 && !strcmp(name, path) &&
             object >= 0 && H5Iget_name(object, opened, sizeof opened) > 0 && !strcmp(opened, path);
    if (object >= 0)
        H5Oclose(object);
    return ok;
}

static void
write_file(const char *filename)
{
    hsize_t   two = 2;
    int       data[2] = {42, 43};
    H5R_ref_t refs[2], again;
    hid_t     file = H5Fcreate(filename, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t     space = H5Screate_simple(1, &two, NULL);
    hid_t     group = H5Gcreate2(file, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t     dset  = H5Dcreate2(group, "d", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5O_type_t type;

    check(H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "writing /g/d");
    check(H5Rcreate_object(file, "g/d", H5P_DEFAULT, &refs[0]) >= 0, "H5Rcreate_object (a dataset)");
    check(H5Rcreate_object(group, ".", H5P_DEFAULT, &refs[1]) >= 0, "H5Rcreate_object (a group)");
    check(H5Rcreate_object(dset, ".", H5P_DEFAULT, &again) >= 0, "H5Rcreate_object (the dataset again)");
    check(H5Rget_obj_type3(&refs[0], H5P_DEFAULT, &type) >= 0 && type == H5O_TYPE_DATASET,
          "H5Rget_obj_type3 (a dataset)");
    check(H5Rget_obj_type3(&refs[1], H5P_DEFAULT, &type) >= 0 && type == H5O_TYPE_GROUP,
          "H5Rget_obj_type3 (a group)");
    check(H5Requal(&refs[0], &again) > 0 && H5Requal(&refs[0], &refs[1]) == 0, "H5Requal");
    check(names(&refs[0], "/g/d") && names(&refs[1], "/g"), "references name their objects");

    hid_t a = H5Acreate2(file, "targets", H5T_STD_REF, space, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Awrite(a, H5T_STD_REF, refs) >= 0, "writing an attribute of references");
    H5Aclose(a);

    hid_t    listed = listed_type();
    listed_t list[2] = {{refs[0], 0}, {refs[1], 1}};
    a = H5Acreate2(dset, "listed", listed, space, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Awrite(a, listed, list) >= 0, "writing references in a compound");
    H5Aclose(a);

    hid_t sequences = H5Tvlen_create(H5T_STD_REF);
    hvl_t lists[2]  = {{2, refs}, {0, NULL}};
    a               = H5Acreate2(dset, "lists", sequences, space, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Awrite(a, sequences, lists) >= 0, "writing sequences of references");
    H5Aclose(a);

    hid_t stored = H5Dcreate2(file, "refs", H5T_STD_REF, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(stored >= 0 && H5Dwrite(stored, H5T_STD_REF, H5S_ALL, H5S_ALL, H5P_DEFAULT, refs) >= 0,
          "writing a dataset of references");
    H5Dclose(stored);
    stored = H5Dcreate2(file, "lists", sequences, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(stored >= 0 && H5Dwrite(stored, sequences, H5S_ALL, H5S_ALL, H5P_DEFAULT, lists) >= 0,
          "writing a dataset of sequences of references");
    H5Dclose(stored);

    H5Rdestroy(&refs[0]);
    H5Rdestroy(&refs[1]);
    H5Rdestroy(&again);
    H5Tclose(sequences);
    H5Tclose(listed);
    H5Dclose(dset);
    H5Gclose(group);
    H5Sclose(space);
    check(H5Fclose(file) >= 0, "closing the file");
}

static void
read_file(const char *filename)
{
    H5R_ref_t   refs[2];
    listed_t    list[2];
    hvl_t       lists[2];
    int         data[2] = {0};
    H5O_info2_t info;
    hid_t       file = H5Fopen(filename, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t       dset = H5Dopen2(file, "g/d", H5P_DEFAULT);

    hid_t a = H5Aopen(file, "targets", H5P_DEFAULT), type = H5Aget_type(a);
    check(H5Tequal(type, H5T_STD_REF) > 0, "the attribute's type is H5T_STD_REF");
    check(H5Aread(a, H5T_STD_REF, refs) >= 0, "reading an attribute of references");
    check(names(&refs[0], "/g/d") && names(&refs[1], "/g"), "stored references name their objects");
    hid_t target = H5Ropen_object(&refs[0], H5P_DEFAULT, H5P_DEFAULT);
    check(H5Dread(target, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0 && data[1] == 43,
          "reading through a stored reference");
    H5Dclose(target);
    H5Rdestroy(&refs[0]);
    H5Rdestroy(&refs[1]);
    H5Tclose(type);
    H5Aclose(a);

    hid_t listed = listed_type();
    a            = H5Aopen(dset, "listed", H5P_DEFAULT);
    type         = H5Aget_type(a);
    check(H5Tequal(type, listed) > 0, "the compound of a reference and a number comes back");
    check(H5Aread(a, listed, list) >= 0 && list[1].dim == 1 && names(&list[0].ref, "/g/d") &&
              names(&list[1].ref, "/g"),
          "reading references in a compound");
    H5Rdestroy(&list[0].ref);
    H5Rdestroy(&list[1].ref);
    H5Tclose(type);
    H5Tclose(listed);
    H5Aclose(a);

    a    = H5Aopen(dset, "lists", H5P_DEFAULT);
    type = H5Aget_type(a);
    check(H5Tget_class(type) == H5T_VLEN, "a variable-length type");
    check(H5Aread(a, type, lists) >= 0 && lists[0].len == 2 && lists[1].len == 0 &&
              names(&((H5R_ref_t *)lists[0].p)[1], "/g"),
          "reading sequences of references");
    hid_t space = H5Aget_space(a);
    check(H5Treclaim(type, space, H5P_DEFAULT, lists) >= 0, "H5Treclaim");
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(a);

    hid_t stored = H5Dopen2(file, "refs", H5P_DEFAULT);
    type         = stored < 0 ? H5I_INVALID_HID : H5Dget_type(stored);
    check(H5Tequal(type, H5T_STD_REF) > 0 && H5Dread(stored, H5T_STD_REF, H5S_ALL, H5S_ALL, H5P_DEFAULT, refs) >= 0 &&
              names(&refs[0], "/g/d") && names(&refs[1], "/g"),
          "reading a dataset of references");
    H5Rdestroy(&refs[0]);
    H5Rdestroy(&refs[1]);
    H5Tclose(type);
    H5Dclose(stored);
    stored = H5Dopen2(file, "lists", H5P_DEFAULT);
    type   = stored < 0 ? H5I_INVALID_HID : H5Dget_type(stored);
    check(H5Dread(stored, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, lists) >= 0 && lists[0].len == 2 &&
              lists[1].len == 0 && names(&((H5R_ref_t *)lists[0].p)[0], "/g/d"),
          "reading a dataset of sequences of references");
    space = H5Dget_space(stored);
    check(H5Treclaim(type, space, H5P_DEFAULT, lists) >= 0, "H5Treclaim of a dataset's sequences");
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(stored);

    check(H5Oget_info3(dset, &info, H5O_INFO_BASIC) >= 0, "H5Oget_info3");
    hid_t by_token = H5Oopen_by_token(file, info.token);
    char  name[16] = "";
    check(by_token >= 0 && H5Iget_name(by_token, name, sizeof name) > 0 && !strcmp(name, "/g/d"),
          "H5Oopen_by_token");
    if (by_token >= 0)
        H5Oclose(by_token);
    H5Dclose(dset);
    check(H5Fclose(file) >= 0, "closing the reopened file");
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* print only where this program says so */
    write_file(argv[1]);
    read_file(argv[1]);
    return verdict();
}
