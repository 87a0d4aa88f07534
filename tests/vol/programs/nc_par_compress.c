/*
 * A parallel netCDF-4 program writing compressed variables, modelled on
 * netCDF's own nc_test4/tst_parallel_compress.c: for each setting of shuffle
 * and each deflate level, every rank writes its band of rows of a 3-D int
 * variable, one slab of the last axis per call (collective: netCDF refuses
 * independent access to a filtered variable), with Fletcher32 checksums
 * asked for too. The file is closed and opened again, and every rank checks
 * the compression settings netCDF reports and reads its band back. Each
 * setting has a file of its own, FILE-S-L (shuffle S, deflate level L).
 *
 *   mpirun -n N nc_par_compress FILE
 *
 * Rank 0 prints one line per setting, "shuffle S deflate D level L
 * fletcher32 F" as netCDF reports them; every rank prints "ok <rank>" once
 * everything read back right. Exits non-zero on any mismatch.
 */
#include <mpi.h>
#include <netcdf.h>
#include <netcdf_par.h>
#include <stdio.h>
#include <stdlib.h>

#define ROWS  6 /* per rank */
#define COLS  24
#define SLABS 10
#define CHECK(call)                                                                                \
    do {                                                                                           \
        int status_ = (call);                                                                      \
        if (status_ != NC_NOERR) {                                                                 \
            fprintf(stderr, "rank %d: %s failed (line %d): %s\n", rank, #call, __LINE__,          \
                    nc_strerror(status_));                                                         \
            MPI_Abort(MPI_COMM_WORLD, 2);                                                          \
        }                                                                                          \
    } while (0)
#define EXPECT(condition)                                                                          \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "rank %d: expected %s (line %d)\n", rank, #condition, __LINE__);      \
            MPI_Abort(MPI_COMM_WORLD, 3);                                                          \
        }                                                                                          \
    } while (0)

static int rank, size;

/* What rank r writes into row i, column j of slab k: runs that compress. */
static int
value(int r, int i, int j, int k)
{
    return r * 100000 + k * 100 + (i * COLS + j) / 8;
}

static void
write_file(const char *path, int shuffle, int level)
{
    int    ncid, dims[3], var, slab[ROWS * COLS];
    size_t start[3] = {(size_t)rank * ROWS, 0, 0}, count[3] = {ROWS, COLS, 1};

    CHECK(nc_create_par(path, NC_NETCDF4 | NC_CLOBBER, MPI_COMM_WORLD, MPI_INFO_NULL, &ncid));
    CHECK(nc_def_dim(ncid, "d1", (size_t)size * ROWS, &dims[0]));
    CHECK(nc_def_dim(ncid, "d2", COLS, &dims[1]));
    CHECK(nc_def_dim(ncid, "d3", SLABS, &dims[2]));
    CHECK(nc_def_var(ncid, "v1", NC_INT, 3, dims, &var));
    CHECK(nc_def_var_deflate(ncid, var, shuffle, 1, level));
    CHECK(nc_def_var_fletcher32(ncid, var, NC_FLETCHER32));
    CHECK(nc_enddef(ncid));
    EXPECT(nc_var_par_access(ncid, var, NC_INDEPENDENT) == NC_EINVAL);
    for (start[2] = 0; start[2] < SLABS; start[2]++) {
        for (int i = 0; i < ROWS; i++)
            for (int j = 0; j < COLS; j++)
                slab[i * COLS + j] = value(rank, i, j, (int)start[2]);
        CHECK(nc_put_vara_int(ncid, var, start, count, slab));
    }
    CHECK(nc_close(ncid));
}

static void
check_file(const char *path, int shuffle, int level)
{
    int    ncid, shuffle_in, deflate_in, level_in, fletcher_in, slab[ROWS * COLS];
    size_t start[3] = {(size_t)rank * ROWS, 0, 0}, count[3] = {ROWS, COLS, 1};

    CHECK(nc_open_par(path, NC_NOWRITE, MPI_COMM_WORLD, MPI_INFO_NULL, &ncid));
    CHECK(nc_inq_var_deflate(ncid, 0, &shuffle_in, &deflate_in, &level_in));
    CHECK(nc_inq_var_fletcher32(ncid, 0, &fletcher_in));
    if (rank == 0)
        printf("shuffle %d deflate %d level %d fletcher32 %d\n", shuffle_in, deflate_in, level_in,
               fletcher_in);
    EXPECT(!shuffle_in == !shuffle && deflate_in && level_in == level && fletcher_in);
    for (start[2] = 0; start[2] < SLABS; start[2]++) {
        CHECK(nc_get_vara_int(ncid, 0, start, count, slab));
        for (int i = 0; i < ROWS; i++)
            for (int j = 0; j < COLS; j++)
                EXPECT(slab[i * COLS + j] == value(rank, i, j, (int)start[2]));
    }
    CHECK(nc_close(ncid));
}

int
main(int argc, char **argv)
{
    static const int levels[] = {1, 9};

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2) {
        if (rank == 0)
            fprintf(stderr, "usage: %s FILE\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    for (int shuffle = 0; shuffle <= 1; shuffle++)
        for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
            char path[4096];
            snprintf(path, sizeof path, "%s-%d-%d", argv[1], shuffle, levels[l]);
            write_file(path, shuffle, levels[l]);
            check_file(path, shuffle, levels[l]);
        }
    printf("ok %d\n", rank);
    MPI_Finalize();
    return 0;
}
