/*
 * An ordinary parallel HDF5 program (it knows nothing of ESDM): every rank
 * writes its part of two 3-D datasets, one collectively, one independently
 * with a strided selection out of a larger memory buffer; the file is
 * closed, reopened and every rank reads everything back and checks it.
 *
 *   mpirun -n 4 hyperslabs3d FILE
 *
 * Prints "ok <rank> <checksum>" per rank; exits non-zero on any mismatch.
 * The value at (i, j, k) is i * 10000 + j * 100 + k in both datasets.
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define NY 6
#define NZ 5
#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) < 0) {                                                                          \
            fprintf(stderr, "rank %d: %s failed (line %d)\n", rank, #call, __LINE__);             \
            MPI_Abort(MPI_COMM_WORLD, 2);                                                          \
        }                                                                                          \
    } while (0)

static int rank, size;

static double
value(hsize_t i, hsize_t j, hsize_t k)
{
    return (double)(i * 10000 + j * 100 + k);
}

/* "collective": dims (2*size, NY, NZ); rank r writes the slab i in [2r, 2r+2). */
static void
write_collective(hid_t file)
{
    hsize_t dims[3]  = {2 * (hsize_t)size, NY, NZ};
    hsize_t start[3] = {2 * (hsize_t)rank, 0, 0}, count[3] = {2, NY, NZ};
    double  buf[2][NY][NZ];
    hid_t   space, mem, dset, dxpl;

    for (hsize_t i = 0; i < 2; i++)
        for (hsize_t j = 0; j < NY; j++)
            for (hsize_t k = 0; k < NZ; k++)
                buf[i][j][k] = value(start[0] + i, j, k);
    CHECK(space = H5Screate_simple(3, dims, NULL));
    CHECK(dset = H5Dcreate2(file, "collective", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT));
    CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL));
    CHECK(mem = H5Screate_simple(3, count, NULL));
    CHECK(dxpl = H5Pcreate(H5P_DATASET_XFER));
    CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    CHECK(H5Dwrite(dset, H5T_NATIVE_DOUBLE, mem, space, dxpl, buf));
    H5Pclose(dxpl);
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(dset);
}

/* "independent": dims (4, NY*size, NZ) of int; rank r writes every size-th
 * j plane starting at r (a strided selection), taken from the middle of a
 * memory buffer with a margin around it, and converted from double. */
static void
write_independent(hid_t file)
{
    hsize_t dims[3]   = {4, NY * (hsize_t)size, NZ};
    hsize_t start[3]  = {0, (hsize_t)rank, 0}, stride[3] = {1, (hsize_t)size, 1};
    hsize_t count[3]  = {4, NY, NZ}, one[3] = {1, 1, 1};
    hsize_t mdims[3]  = {6, NY + 2, NZ + 2}, mstart[3] = {1, 1, 1};
    double(*buf)[NY + 2][NZ + 2] = calloc(6, sizeof *buf);
    hid_t space, mem, dset, dxpl;

    for (hsize_t i = 0; i < 4; i++)
        for (hsize_t j = 0; j < NY; j++)
            for (hsize_t k = 0; k < NZ; k++)
                buf[i + 1][j + 1][k + 1] = value(i, (hsize_t)rank + j * (hsize_t)size, k);
    CHECK(space = H5Screate_simple(3, dims, NULL));
    CHECK(dset = H5Dcreate2(file, "independent", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT));
    CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, stride, count, one));
    CHECK(mem = H5Screate_simple(3, mdims, NULL));
    CHECK(H5Sselect_hyperslab(mem, H5S_SELECT_SET, mstart, NULL, count, NULL));
    CHECK(dxpl = H5Pcreate(H5P_DATASET_XFER));
    CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT));
    CHECK(H5Dwrite(dset, H5T_NATIVE_DOUBLE, mem, space, dxpl, buf));
    H5Pclose(dxpl);
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(dset);
    free(buf);
}

/* Read a whole dataset as double and compare; returns the number of errors. */
static long
check(hid_t file, const char *name, double *sum)
{
    hid_t   dset, space;
    hsize_t dims[3];
    long    errors = 0;

    CHECK(dset = H5Dopen2(file, name, H5P_DEFAULT));
    CHECK(space = H5Dget_space(dset));
    CHECK(H5Sget_simple_extent_dims(space, dims, NULL));
    double *buf = malloc(dims[0] * dims[1] * dims[2] * sizeof *buf);
    CHECK(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    for (hsize_t i = 0; i < dims[0]; i++)
        for (hsize_t j = 0; j < dims[1]; j++)
            for (hsize_t k = 0; k < dims[2]; k++) {
                double got = buf[(i * dims[1] + j) * dims[2] + k];
                *sum += got;
                if (got != value(i, j, k) && errors++ < 5)
                    fprintf(stderr, "rank %d: %s[%llu,%llu,%llu] = %g, expected %g\n", rank, name,
                            (unsigned long long)i, (unsigned long long)j, (unsigned long long)k, got,
                            value(i, j, k));
            }
    free(buf);
    H5Sclose(space);
    H5Dclose(dset);
    return errors;
}

int
main(int argc, char **argv)
{
    hid_t  fapl, file;
    long   errors = 0, total = 0;
    double sum = 0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    CHECK(fapl = H5Pcreate(H5P_FILE_ACCESS));
    CHECK(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));

    CHECK(file = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
    write_collective(file);
    write_independent(file);
    CHECK(H5Fclose(file));

    CHECK(file = H5Fopen(argv[1], H5F_ACC_RDONLY, fapl));
    errors += check(file, "collective", &sum);
    errors += check(file, "independent", &sum);
    CHECK(H5Fclose(file));
    H5Pclose(fapl);

    MPI_Allreduce(&errors, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (total == 0)
        printf("ok %d %.0f\n", rank, sum);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
