/*
 * A parallel netCDF-4 program writing quantized variables, modelled on
 * netCDF's own nc_test4/tst_quantize_par.c and on how climate output is
 * written: netCDF zeroes (or rounds) the bits beyond the precision asked for
 * before the data reaches HDF5, then shuffle and deflate compress it. Every
 * rank writes 5 values of each variable at its own offset, one variable per
 * quantize mode (BitGroom and Granular BitRound in significant digits,
 * BitRound in significant bits), floats and doubles; the file is closed and
 * opened again, every rank checks the quantize and deflate settings netCDF
 * reports and prints the bits of the values it reads back.
 *
 *   mpirun -n N nc_par_quantize FILE
 *
 * Prints "<rank> <variable> <mode> <nsd> <shuffle> <level>: <hex of each value>"
 * per rank and variable, then "ok <rank>"; exits non-zero on any mismatch.
 */
#include <inttypes.h>
#include <mpi.h>
#include <netcdf.h>
#include <netcdf_par.h>
#include <stdio.h>
#include <string.h>

#define N 5 /* values per rank */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        int status_ = (call);                                                                      \
        if (status_ != NC_NOERR) {                                                                 \
            fprintf(stderr, "rank %d: %s failed (line %d): %s\n", rank, #call, __LINE__,          \
                    nc_strerror(status_));                                                         \
            MPI_Abort(MPI_COMM_WORLD, 2);                                                          \
        }                                                                                          \
    } while (0)

static int rank, size;

static const struct {
    const char *name;
    nc_type     type;
    int         mode, nsd, shuffle, level; /* level 0: not deflated */
} vars[] = {
    {"groomed_f", NC_FLOAT, NC_QUANTIZE_BITGROOM, 3, 1, 1},
    {"groomed_d", NC_DOUBLE, NC_QUANTIZE_BITGROOM, 3, 0, 0},
    {"granular_f", NC_FLOAT, NC_QUANTIZE_GRANULARBR, 4, 1, 5},
    {"granular_d", NC_DOUBLE, NC_QUANTIZE_GRANULARBR, 6, 1, 1},
    {"rounded_f", NC_FLOAT, NC_QUANTIZE_BITROUND, 9, 0, 1},
    {"rounded_d", NC_DOUBLE, NC_QUANTIZE_BITROUND, 20, 1, 9},
};
#define NVARS (sizeof vars / sizeof *vars)

/* The values rank r writes: many significant digits, a range of magnitudes. */
static double
value(int r, int i)
{
    static const double base[N] = {2.718281828459, 7.0, 0.333333333333, 98765.4321, 6.02214076e-5};
    return base[i] * (1.0 + 0.125 * r);
}

static void
write_file(const char *path)
{
    int    ncid, dim, varid[NVARS];
    size_t start = (size_t)rank * N, count = N;

    CHECK(nc_create_par(path, NC_NETCDF4 | NC_CLOBBER, MPI_COMM_WORLD, MPI_INFO_NULL, &ncid));
    CHECK(nc_def_dim(ncid, "x", (size_t)size * N, &dim));
    for (size_t v = 0; v < NVARS; v++) {
        CHECK(nc_def_var(ncid, vars[v].name, vars[v].type, 1, &dim, &varid[v]));
        CHECK(nc_def_var_quantize(ncid, varid[v], vars[v].mode, vars[v].nsd));
        if (vars[v].level)
            CHECK(nc_def_var_deflate(ncid, varid[v], vars[v].shuffle, 1, vars[v].level));
    }
    CHECK(nc_enddef(ncid));
    for (size_t v = 0; v < NVARS; v++) {
        double values[N];
        float  floats[N];
        for (int i = 0; i < N; i++)
            floats[i] = (float)(values[i] = value(rank, i));
        if (vars[v].type == NC_FLOAT)
            CHECK(nc_put_vara_float(ncid, varid[v], &start, &count, floats));
        else
            CHECK(nc_put_vara_double(ncid, varid[v], &start, &count, values));
    }
    CHECK(nc_close(ncid));
}

static void
read_file(const char *path)
{
    int    ncid;
    size_t start = (size_t)rank * N, count = N;

    CHECK(nc_open_par(path, NC_NOWRITE, MPI_COMM_WORLD, MPI_INFO_NULL, &ncid));
    for (size_t v = 0; v < NVARS; v++) {
        int varid, mode, nsd, shuffle, deflate, level;
        CHECK(nc_inq_varid(ncid, vars[v].name, &varid));
        CHECK(nc_inq_var_quantize(ncid, varid, &mode, &nsd));
        CHECK(nc_inq_var_deflate(ncid, varid, &shuffle, &deflate, &level));
        if (mode != vars[v].mode || nsd != vars[v].nsd || !shuffle != !vars[v].shuffle ||
            !deflate != !vars[v].level || (deflate && level != vars[v].level)) {
            fprintf(stderr, "rank %d: %s reports quantize %d/%d, shuffle %d, deflate %d/%d\n",
                    rank, vars[v].name, mode, nsd, shuffle, deflate, level);
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        char line[512];
        int  at = snprintf(line, sizeof line, "%d %s %d %d %d %d:", rank, vars[v].name, mode, nsd,
                           shuffle, deflate ? level : 0);
        if (vars[v].type == NC_FLOAT) {
            float    values[N];
            uint32_t bits;
            CHECK(nc_get_vara_float(ncid, varid, &start, &count, values));
            for (int i = 0; i < N; i++) {
                memcpy(&bits, &values[i], sizeof bits);
                at += snprintf(line + at, sizeof line - (size_t)at, " %08" PRIx32, bits);
            }
        } else {
            double   values[N];
            uint64_t bits;
            CHECK(nc_get_vara_double(ncid, varid, &start, &count, values));
            for (int i = 0; i < N; i++) {
                memcpy(&bits, &values[i], sizeof bits);
                at += snprintf(line + at, sizeof line - (size_t)at, " %016" PRIx64, bits);
            }
        }
        printf("%s\n", line);
    }
    CHECK(nc_close(ncid));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2) {
        if (rank == 0)
            fprintf(stderr, "usage: %s FILE\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    write_file(argv[1]);
    read_file(argv[1]);
    printf("ok %d\n", rank);
    MPI_Finalize();
    return 0;
}
