/*
 * Filters a program sets on a dataset are reported back as it set them, on the
 * dataset's creation property list right after H5Dcreate and after the file is
 * closed and opened again: shuffle + deflate, Fletcher32, and zstd and blosc by
 * the numbers HDF5's filter plugins have (which this HDF5 lacks: a program sets
 * them optional). The data reads back as written.
 *
 *   filters FILE     (prints "ok", or what failed)
 */
#include "check.h"

#include <string.h>

#define N       4096
#define ZSTD    32015
#define BLOSC   32001
#define NFILTER 4

struct filter {
    H5Z_filter_t id;
    unsigned int flags;
    size_t       nvalues;
    unsigned int values[7];
};

/* The pipeline each dataset is created with. */
static const struct {
    const char   *name;
    int           n;
    struct filter filters[NFILTER];
} datasets[] = {
    {"gzip", 2, {{H5Z_FILTER_SHUFFLE, H5Z_FLAG_OPTIONAL, 0, {0}},
                 {H5Z_FILTER_DEFLATE, H5Z_FLAG_OPTIONAL, 1, {6}}}},
    {"checked", 3, {{H5Z_FILTER_SHUFFLE, H5Z_FLAG_OPTIONAL, 0, {0}},
                    {H5Z_FILTER_DEFLATE, H5Z_FLAG_OPTIONAL, 1, {1}},
                    {H5Z_FILTER_FLETCHER32, H5Z_FLAG_MANDATORY, 0, {0}}}},
    {"zstd", 2, {{H5Z_FILTER_SHUFFLE, H5Z_FLAG_OPTIONAL, 0, {0}},
                 {ZSTD, H5Z_FLAG_OPTIONAL, 1, {5}}}},
    /* clevel 7, bit shuffle, zstd inside */
    {"blosc", 1, {{BLOSC, H5Z_FLAG_OPTIONAL, 7, {0, 0, 0, 0, 7, 2, 5}}}},
};
#define NDATASETS (sizeof datasets / sizeof *datasets)

static void
set_filters(hid_t dcpl, int n, const struct filter *filters)
{
    for (int i = 0; i < n; i++) {
        const struct filter *f = &filters[i];
        if (f->id == H5Z_FILTER_SHUFFLE)
            CHECK(H5Pset_shuffle(dcpl) >= 0);
        else if (f->id == H5Z_FILTER_DEFLATE)
            CHECK(H5Pset_deflate(dcpl, f->values[0]) >= 0);
        else if (f->id == H5Z_FILTER_FLETCHER32)
            CHECK(H5Pset_fletcher32(dcpl) >= 0);
        else
            CHECK(H5Pset_filter(dcpl, f->id, f->flags, f->nvalues, f->values) >= 0);
    }
}

/* What the dataset's creation property list says, filter by filter. */
static void
check_filters(hid_t dset, int n, const struct filter *filters, const char *when)
{
    hid_t dcpl     = H5Dget_create_plist(dset);
    int   reported = 0;
    for (int i = 0; i < n; i++) {
        const struct filter *f = &filters[i];
        unsigned int flags, values[8] = {0};
        size_t       nvalues = 8;
        char         name[64];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)reported, &flags, &nvalues, values,
                                         sizeof name, name, NULL);
        int same = id == f->id && nvalues == f->nvalues &&
                   !memcmp(values, f->values, nvalues * sizeof *values);
        if (!same)
            printf("%s: filter %d is %d with %zu values (%u), not %d\n", when, reported, (int)id,
                   nvalues, values[0], (int)f->id);
        CHECK(same);
        nvalues = 8;
        CHECK(H5Pget_filter_by_id2(dcpl, f->id, &flags, &nvalues, values, 0, NULL, NULL) >= 0);
        reported++;
    }
    if (H5Pget_nfilters(dcpl) != reported)
        printf("%s: %d filters, not %d\n", when, H5Pget_nfilters(dcpl), reported);
    CHECK(H5Pget_nfilters(dcpl) == reported);
    CHECK(H5Pget_layout(dcpl) == H5D_CHUNKED);
    H5Pclose(dcpl);
}

int
main(int argc, char **argv)
{
    static int data[N], back[N];
    hsize_t    dims[1] = {N}, chunk[1] = {1024};

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < N; i++)
        data[i] = i / 16;
    hid_t file  = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(1, dims, NULL);
    for (size_t d = 0; d < NDATASETS; d++) {
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        CHECK(H5Pset_chunk(dcpl, 1, chunk) >= 0);
        set_filters(dcpl, datasets[d].n, datasets[d].filters);
        hid_t dset = H5Dcreate2(file, datasets[d].name, H5T_NATIVE_INT, space, H5P_DEFAULT, dcpl,
                                H5P_DEFAULT);
        CHECK(dset >= 0);
        CHECK(H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
        check_filters(dset, datasets[d].n, datasets[d].filters, "created");
        H5Dclose(dset);
        H5Pclose(dcpl);
    }
    H5Sclose(space);
    CHECK(H5Fclose(file) >= 0);

    file = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    for (size_t d = 0; d < NDATASETS; d++) {
        hid_t dset = H5Dopen2(file, datasets[d].name, H5P_DEFAULT);
        CHECK(dset >= 0);
        check_filters(dset, datasets[d].n, datasets[d].filters, "reopened");
        memset(back, 0, sizeof back);
        CHECK(H5Dread(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
        CHECK(!memcmp(back, data, sizeof data));
        H5Dclose(dset);
    }
    CHECK(H5Fclose(file) >= 0);
    return verdict();
}
