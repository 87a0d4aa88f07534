/*
 * An ordinary parallel netCDF-4 program (it knows nothing of ESDM or HDF5):
 * every rank writes its band of latitudes of a (time, lat, lon) field
 * collectively, along an unlimited time dimension, and its band of a
 * (lat, lon) field independently; coordinate variables and attributes
 * (global and per variable, text and numeric) come with them. The file is
 * closed, reopened and every rank reads everything back and checks it.
 *
 *   mpirun -n 4 nc_par_write FILE
 *
 * Prints "ok <rank>" per rank; exits non-zero on any mismatch. With N ranks:
 * lat has 2N values (lat[j] = -45 + 10 j), lon 6 (lon[i] = 30 i), time NT
 * (time[t] = 0.5 t); tas[t][j][i] = t * 10000 + j * 100 + i, rank[j][i] is
 * the rank that wrote latitude j.
 */
#include <mpi.h>
#include <netcdf.h>
#include <netcdf_par.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT   3
#define NLON 6
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

static float
tas_value(size_t t, size_t j, size_t i)
{
    return (float)(t * 10000 + j * 100 + i);
}

static int
put_text(int ncid, int varid, const char *name, const char *text)
{
    return nc_put_att_text(ncid, varid, name, strlen(text), text);
}

static void
write_file(const char *path)
{
    static const int   levels[3]      = {1000, 850, 500};
    static const float valid_range[2] = {150, 350};
    double             version        = 1.5;
    int                ncid, dims[3], time_var, lat_var, lon_var, tas_var, rank_var;
    size_t             nlat = 2 * (size_t)size, band = 2 * (size_t)rank;

    CHECK(nc_create_par(path, NC_NETCDF4 | NC_CLOBBER, MPI_COMM_WORLD, MPI_INFO_NULL, &ncid));
    CHECK(nc_def_dim(ncid, "time", NC_UNLIMITED, &dims[0]));
    CHECK(nc_def_dim(ncid, "lat", nlat, &dims[1]));
    CHECK(nc_def_dim(ncid, "lon", NLON, &dims[2]));
    CHECK(nc_def_var(ncid, "time", NC_DOUBLE, 1, &dims[0], &time_var));
    CHECK(nc_def_var(ncid, "lat", NC_DOUBLE, 1, &dims[1], &lat_var));
    CHECK(nc_def_var(ncid, "lon", NC_DOUBLE, 1, &dims[2], &lon_var));
    CHECK(nc_def_var(ncid, "tas", NC_FLOAT, 3, dims, &tas_var));
    CHECK(nc_def_var(ncid, "rank", NC_INT, 2, &dims[1], &rank_var));

    CHECK(put_text(ncid, NC_GLOBAL, "title", "esdm nc_par_write"));
    CHECK(nc_put_att_double(ncid, NC_GLOBAL, "version", NC_DOUBLE, 1, &version));
    CHECK(nc_put_att_int(ncid, NC_GLOBAL, "levels", NC_INT, 3, levels));
    CHECK(put_text(ncid, time_var, "units", "days since 2000-01-01"));
    CHECK(put_text(ncid, lat_var, "units", "degrees_north"));
    CHECK(put_text(ncid, lon_var, "units", "degrees_east"));
    CHECK(put_text(ncid, tas_var, "units", "K"));
    CHECK(nc_put_att_float(ncid, tas_var, "valid_range", NC_FLOAT, 2, valid_range));
    CHECK(nc_put_att_int(ncid, rank_var, "ranks", NC_INT, 1, &size));
    CHECK(nc_enddef(ncid));

    /* Growing the unlimited dimension is collective: so is every write that
     * reaches along it, rank 0 writing the times and the others nothing. */
    CHECK(nc_var_par_access(ncid, time_var, NC_COLLECTIVE));
    CHECK(nc_var_par_access(ncid, tas_var, NC_COLLECTIVE));
    CHECK(nc_var_par_access(ncid, lat_var, NC_COLLECTIVE));
    CHECK(nc_var_par_access(ncid, lon_var, NC_INDEPENDENT));
    CHECK(nc_var_par_access(ncid, rank_var, NC_INDEPENDENT));

    double times[NT], lats[2], lons[NLON];
    float  tas[NT][2][NLON];
    int    ranks[2][NLON];
    for (size_t t = 0; t < NT; t++)
        times[t] = 0.5 * (double)t;
    for (size_t j = 0; j < 2; j++)
        lats[j] = -45 + 10 * (double)(band + j);
    for (size_t i = 0; i < NLON; i++)
        lons[i] = 30 * (double)i;
    for (size_t t = 0; t < NT; t++)
        for (size_t j = 0; j < 2; j++)
            for (size_t i = 0; i < NLON; i++) {
                tas[t][j][i] = tas_value(t, band + j, i);
                ranks[j][i]  = rank;
            }

    size_t time_start = 0, time_count = rank == 0 ? NT : 0;
    size_t lat_start = band, lat_count = 2, lon_start = 0, lon_count = NLON;
    size_t tas_start[3] = {0, band, 0}, tas_count[3] = {NT, 2, NLON};
    CHECK(nc_put_vara_double(ncid, time_var, &time_start, &time_count, times));
    CHECK(nc_put_vara_double(ncid, lat_var, &lat_start, &lat_count, lats));
    CHECK(nc_put_vara_float(ncid, tas_var, tas_start, tas_count, &tas[0][0][0]));
    CHECK(nc_put_vara_int(ncid, rank_var, &tas_start[1], &tas_count[1], &ranks[0][0]));
    if (rank == 0)
        CHECK(nc_put_vara_double(ncid, lon_var, &lon_start, &lon_count, lons));
    CHECK(nc_close(ncid));
}

/* Every rank reads every variable whole; returns the number of mismatches. */
static long
check_file(const char *path)
{
    int    ncid, varid;
    size_t nt, nlat, nlon;
    long   errors = 0;

    CHECK(nc_open_par(path, NC_NOWRITE, MPI_COMM_WORLD, MPI_INFO_NULL, &ncid));
    CHECK(nc_inq_dimlen(ncid, 0, &nt));
    CHECK(nc_inq_dimlen(ncid, 1, &nlat));
    CHECK(nc_inq_dimlen(ncid, 2, &nlon));
    if (nt != NT || nlat != 2 * (size_t)size || nlon != NLON) {
        fprintf(stderr, "rank %d: dimensions %zu %zu %zu\n", rank, nt, nlat, nlon);
        return 1;
    }
    float  *tas   = malloc(nt * nlat * nlon * sizeof *tas);
    int    *ranks = malloc(nlat * nlon * sizeof *ranks);
    double *lats  = malloc(nlat * sizeof *lats);
    CHECK(nc_inq_varid(ncid, "tas", &varid));
    CHECK(nc_get_var_float(ncid, varid, tas));
    CHECK(nc_inq_varid(ncid, "rank", &varid));
    CHECK(nc_get_var_int(ncid, varid, ranks));
    CHECK(nc_inq_varid(ncid, "lat", &varid));
    CHECK(nc_get_var_double(ncid, varid, lats));
    for (size_t j = 0; j < nlat; j++) {
        errors += lats[j] != -45 + 10 * (double)j;
        for (size_t i = 0; i < nlon; i++) {
            errors += ranks[j * nlon + i] != (int)(j / 2);
            for (size_t t = 0; t < nt; t++)
                errors += tas[(t * nlat + j) * nlon + i] != tas_value(t, j, i);
        }
    }
    if (errors)
        fprintf(stderr, "rank %d: %ld values differ\n", rank, errors);
    free(lats);
    free(ranks);
    free(tas);
    CHECK(nc_close(ncid));
    return errors;
}

int
main(int argc, char **argv)
{
    long errors, total = 0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    write_file(argv[1]);
    errors = check_file(argv[1]);
    MPI_Allreduce(&errors, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (total == 0)
        printf("ok %d\n", rank);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
