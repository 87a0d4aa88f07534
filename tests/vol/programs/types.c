/*
 * Composite datatypes through the connector: a nested compound with an
 * array member (padded as C lays it out, and packed), an enum, an opaque
 * type with its tag and a bitfield, in datasets and attributes. After the
 * file is reopened every type must be what was created (H5Tequal, member
 * names and offsets, enum names, the tag) and the bytes what was written;
 * attributes convert to and from a subset of the compound's members as
 * HDF5 does. A top-level array type (each element an array) works too.
 *
 *   types FILE     ("ok" on stdout; what went wrong, with its error stack,
 *                   on stdout otherwise)
 */
#include <hdf5.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

typedef struct {
    char  tag[4];
    short flag;
} inner_t;

typedef struct {
    int     id;
    double  pos[3];
    inner_t inner;
} particle_t;

typedef struct {
    double pos[3];
    int    id;
} subset_t;

enum { N = 4 };

static hid_t
particle_type(void)
{
    hsize_t three = 3;
    hid_t   tag   = H5Tcopy(H5T_C_S1);
    H5Tset_size(tag, 4);
    hid_t inner = H5Tcreate(H5T_COMPOUND, sizeof(inner_t));
    H5Tinsert(inner, "tag", HOFFSET(inner_t, tag), tag);
    H5Tinsert(inner, "flag", HOFFSET(inner_t, flag), H5T_NATIVE_SHORT);
    hid_t pos  = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &three);
    hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(particle_t));
    H5Tinsert(type, "id", HOFFSET(particle_t, id), H5T_NATIVE_INT);
    H5Tinsert(type, "pos", HOFFSET(particle_t, pos), pos);
    H5Tinsert(type, "inner", HOFFSET(particle_t, inner), inner);
    H5Tclose(tag);
    H5Tclose(inner);
    H5Tclose(pos);
    return type;
}

/* The members "pos" and "id" only, in another order. */
static hid_t
subset_type(void)
{
    hsize_t three = 3;
    hid_t   pos   = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &three);
    hid_t   type  = H5Tcreate(H5T_COMPOUND, sizeof(subset_t));
    H5Tinsert(type, "pos", HOFFSET(subset_t, pos), pos);
    H5Tinsert(type, "id", HOFFSET(subset_t, id), H5T_NATIVE_INT);
    H5Tclose(pos);
    return type;
}

/* Colours as native shorts, or big-endian ones as the file holds them. */
static hid_t
color_type(bool big_endian)
{
    static const char *const names[]  = {"RED", "GREEN", "BLUE"};
    static const short       values[] = {-1, 7, 300};
    hid_t                    base     = big_endian ? H5T_STD_I16BE : H5T_NATIVE_SHORT;
    hid_t                    type     = H5Tenum_create(base);

    for (int i = 0; i < 3; i++) {
        short value = values[i]; /* enum values are given in the base type */
        H5Tconvert(H5T_NATIVE_SHORT, base, 1, &value, NULL, H5P_DEFAULT);
        H5Tenum_insert(type, names[i], &value);
    }
    return type;
}

static hid_t pair_type(void);

static void
write_file(const char *name, const particle_t *particles)
{
    hsize_t n = N;
    hid_t   file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t   space = H5Screate_simple(1, &n, NULL), scalar = H5Screate(H5S_SCALAR);
    hid_t   particle = particle_type(), packed = H5Tcopy(particle), color = color_type(true);
    hid_t   opaque = H5Tcreate(H5T_OPAQUE, 6);
    short   colors[N] = {7, -1, 300, 7};
    unsigned short bits[N] = {0x8001, 0x00ff, 0xf00f, 0};
    H5Tpack(packed);
    H5Tset_tag(opaque, "esdm test blob");

    hid_t d = H5Dcreate2(file, "particles", particle, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Dwrite(d, particle, H5S_ALL, H5S_ALL, H5P_DEFAULT, particles) >= 0, "writing particles");
    /* attributes in the packed layout, written from the padded one */
    hid_t a = H5Acreate2(d, "first", packed, scalar, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Awrite(a, particle, &particles[0]) >= 0, "writing a packed compound attribute");
    H5Aclose(a);
    a = H5Acreate2(d, "second", packed, scalar, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Awrite(a, particle, &particles[1]) >= 0, "writing another packed compound attribute");
    H5Aclose(a);
    H5Dclose(d);

    /* enum values are written as native shorts and converted */
    hid_t native_color = color_type(false);
    d = H5Dcreate2(file, "colors", color, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Dwrite(d, native_color, H5S_ALL, H5S_ALL, H5P_DEFAULT, colors) >= 0, "writing enum values");
    a = H5Acreate2(d, "favourite", color, scalar, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Awrite(a, native_color, &colors[2]) >= 0, "writing an enum attribute");
    H5Aclose(a);
    H5Tclose(native_color);
    H5Dclose(d);

    d = H5Dcreate2(file, "blob", opaque, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Dwrite(d, opaque, H5S_ALL, H5S_ALL, H5P_DEFAULT, "abcdefghijklmnopqrstuvwx") >= 0,
          "writing opaque values");
    H5Dclose(d);
    d = H5Dcreate2(file, "bits", H5T_STD_B16LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(H5Dwrite(d, H5T_NATIVE_B16, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits) >= 0, "writing bitfields");
    H5Dclose(d);

    /* a top-level array type: each element a pair */
    int   pairs[N][2];
    hid_t pair = pair_type();
    for (int i = 0; i < N; i++)
        pairs[i][0] = i, pairs[i][1] = -i;
    d = H5Dcreate2(file, "pairs", pair, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(d >= 0 && H5Dwrite(d, pair, H5S_ALL, H5S_ALL, H5P_DEFAULT, pairs) >= 0,
          "writing a dataset of a top-level array type");
    H5Dclose(d);
    H5Tclose(pair);
    H5Tclose(opaque);
    H5Tclose(color);
    H5Tclose(packed);
    H5Tclose(particle);
    H5Sclose(space);
    H5Sclose(scalar);
    check(H5Fclose(file) >= 0, "closing the file");
}

static hid_t
pair_type(void)
{
    hsize_t two = 2;
    return H5Tarray_create2(H5T_NATIVE_INT, 1, &two);
}

static void
check_pairs(hid_t file)
{
    int   back[N][2];
    hid_t pair = pair_type(), d = H5Dopen2(file, "pairs", H5P_DEFAULT), type = H5Dget_type(d);
    check(H5Tget_class(type) == H5T_ARRAY && H5Tequal(type, pair) > 0, "the array type survives");
    memset(back, 0, sizeof back);
    check(H5Dread(d, pair, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0 && back[N - 1][1] == -(N - 1),
          "pairs read back as written");
    H5Tclose(type);
    H5Dclose(d);
    H5Tclose(pair);
}

static void
check_compounds(hid_t file, const particle_t *particles)
{
    particle_t back[N];
    subset_t   subset;
    hid_t      particle = particle_type(), packed = H5Tcopy(particle), subset_id = subset_type();
    H5Tpack(packed);

    hid_t d    = H5Dopen2(file, "particles", H5P_DEFAULT);
    hid_t type = H5Dget_type(d);
    check(H5Tequal(type, particle) > 0, "the dataset's compound type is the one created");
    char *name = H5Tget_member_name(type, 2);
    check(name && !strcmp(name, "inner") && H5Tget_member_offset(type, 2) == HOFFSET(particle_t, inner),
          "member names and offsets survive");
    H5free_memory(name);
    memset(back, 0, sizeof back);
    check(H5Dread(d, particle, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0, "reading particles");
    for (int i = 0; i < N; i++)
        check(back[i].id == particles[i].id && back[i].pos[2] == particles[i].pos[2] &&
                  !memcmp(back[i].inner.tag, particles[i].inner.tag, 4) &&
                  back[i].inner.flag == particles[i].inner.flag,
              "particles read back as written");

    hid_t a = H5Aopen(d, "first", H5P_DEFAULT), atype = H5Aget_type(a);
    check(H5Tequal(atype, packed) > 0 && H5Tget_size(atype) < sizeof(particle_t),
          "the attribute keeps the packed layout");
    memset(&back[0], 0, sizeof back[0]);
    check(H5Aread(a, particle, &back[0]) >= 0 && back[0].id == particles[0].id &&
              back[0].pos[1] == particles[0].pos[1] && back[0].inner.flag == particles[0].inner.flag,
          "a packed attribute reads back into the padded layout");
    check(H5Aread(a, subset_id, &subset) >= 0 && subset.id == particles[0].id &&
              subset.pos[0] == particles[0].pos[0],
          "a subset of members reads back");
    /* writing a subset changes those members only */
    subset = (subset_t){{-1, -2, -3}, 99};
    check(H5Awrite(a, subset_id, &subset) >= 0, "writing a subset of members");
    memset(&back[0], 0, sizeof back[0]);
    check(H5Aread(a, particle, &back[0]) >= 0 && back[0].id == 99 && back[0].pos[2] == -3 &&
              back[0].inner.flag == particles[0].inner.flag && !memcmp(back[0].inner.tag, "p0", 3),
          "members not written keep their values");
    H5Tclose(atype);
    H5Aclose(a);
    H5Tclose(type);
    H5Dclose(d);
    H5Tclose(subset_id);
    H5Tclose(packed);
    H5Tclose(particle);
}

static void
check_enum(hid_t file)
{
    short values[N] = {0}, favourite = 0, blue = 300;
    char  name[16];
    hid_t d = H5Dopen2(file, "colors", H5P_DEFAULT), type = H5Dget_type(d);
    hid_t color = color_type(true), native_color = color_type(false);

    check(H5Tequal(type, color) > 0, "the enum type is the one created, big-endian");
    check(H5Tenum_nameof(native_color, &blue, name, sizeof name) >= 0 && !strcmp(name, "BLUE"),
          "H5Tenum_nameof");
    char *member = H5Tget_member_name(type, 0);
    check(member && (!strcmp(member, "RED") || !strcmp(member, "BLUE") || !strcmp(member, "GREEN")),
          "H5Tget_member_name after reopening");
    H5free_memory(member);
    check(H5Dread(d, native_color, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0 && values[0] == 7 &&
              values[1] == -1 && values[2] == 300,
          "enum values read back");
    hid_t a = H5Aopen(d, "favourite", H5P_DEFAULT), atype = H5Aget_type(a);
    check(H5Tequal(atype, color) > 0, "the attribute's enum type is the one created");
    check(H5Aread(a, native_color, &favourite) >= 0 &&
              H5Tenum_nameof(native_color, &favourite, name, sizeof name) >= 0 && !strcmp(name, "BLUE"),
          "the enum attribute reads back");
    H5Tclose(atype);
    H5Aclose(a);
    H5Tclose(native_color);
    H5Tclose(color);
    H5Tclose(type);
    H5Dclose(d);
}

static void
check_opaque_and_bits(hid_t file)
{
    char           blob[N * 6 + 1] = {0};
    unsigned short bits[N];
    hid_t          d = H5Dopen2(file, "blob", H5P_DEFAULT), type = H5Dget_type(d);
    char          *tag = H5Tget_tag(type);

    check(H5Tget_class(type) == H5T_OPAQUE && H5Tget_size(type) == 6, "a 6-byte opaque type");
    check(tag && !strcmp(tag, "esdm test blob"), "the opaque tag survives");
    H5free_memory(tag);
    check(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, blob) >= 0 &&
              !strcmp(blob, "abcdefghijklmnopqrstuvwx"),
          "opaque bytes read back");
    H5Tclose(type);
    H5Dclose(d);
    d    = H5Dopen2(file, "bits", H5P_DEFAULT);
    type = H5Dget_type(d);
    check(H5Tget_class(type) == H5T_BITFIELD && H5Tequal(type, H5T_STD_B16LE) > 0, "a bitfield type");
    check(H5Dread(d, H5T_NATIVE_B16, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits) >= 0 && bits[0] == 0x8001 &&
              bits[2] == 0xf00f,
          "bitfields read back");
    H5Tclose(type);
    H5Dclose(d);
}

int
main(int argc, char **argv)
{
    particle_t particles[N];

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* print only where this program says so */
    memset(particles, 0, sizeof particles);
    for (int i = 0; i < N; i++) {
        particles[i].id = 10 + i;
        for (int k = 0; k < 3; k++)
            particles[i].pos[k] = i + k / 10.0;
        snprintf(particles[i].inner.tag, 4, "p%d", i);
        particles[i].inner.flag = (short)(-i);
    }
    write_file(argv[1], particles);
    hid_t file = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    check(file >= 0, "reopening the file");
    check_compounds(file, particles);
    check_enum(file);
    check_opaque_and_bits(file);
    check_pairs(file);
    check(H5Fclose(file) >= 0, "closing the file");
    return verdict();
}
