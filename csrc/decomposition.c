/*
 * Block decomposition (see decomposition.h for the conventions).
 *
 * The process grid is chosen exactly, by dynamic programming over the divisors
 * of nprocs: the best grid for dimensions d.. with product r extends the best
 * grid for dimensions d+1.. with product r / parts_d.  That is exact because
 * every criterion composes per dimension (a product of non-empty parts, a sum
 * of cut areas, then the parts in order), and it takes O(ndim * divisors^2)
 * steps, with at most 1600 divisors for nprocs below 2**31.
 */
#include "decomposition.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Cut areas add up to ndim * INT64_MAX; GCC and Clang have 128-bit integers on 64-bit targets. */
__extension__ typedef unsigned __int128 area_t;

static int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- Process grid --------------------------------------------------------- */

/* Product of the extents, zeros counted as one; -1 if an extent is negative or it overflows. */
static int64_t volume(size_t ndim, const int64_t *shape)
{
    int64_t product = 1;
    for (size_t d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return -1;
        int64_t extent = max_i64(shape[d], 1);
        if (product > INT64_MAX / extent)
            return -1;
        product *= extent;
    }
    return product;
}

/* The divisors of n >= 1 in increasing order, in a malloc'ed array. */
static int divisors(int64_t n, int64_t **out, size_t *count)
{
    size_t small = 0; /* divisors i <= sqrt(n), each paired with n / i */
    for (int64_t i = 1; i <= n / i; i++)
        small += n % i == 0;
    int64_t *found = malloc(2 * small * sizeof *found);
    if (!found)
        return ESDM_ENOMEM;
    for (int64_t i = 1, k = 0; i <= n / i; i++) {
        if (n % i == 0) {
            found[k] = i;
            found[2 * (int64_t)small - 1 - k] = n / i;
            k++;
        }
    }
    size_t total = 2 * small;
    if (found[small - 1] == found[small]) { /* n is a square: its root was paired with itself */
        memmove(found + small, found + small + 1, (small - 1) * sizeof *found);
        total--;
    }
    *out = found;
    *count = total;
    return ESDM_OK;
}

/* Position of `value` in sorted[0..n), where it is known to be. */
static size_t position(const int64_t *sorted, size_t n, int64_t value)
{
    size_t first = 0;
    while (n > 1) {
        size_t half = n / 2;
        if (sorted[first + half] <= value)
            first += half;
        n -= half;
    }
    return first;
}

/* The best grid found for the dimensions d.. and a given product of their parts. */
struct plan {
    int64_t busy;  /* ranks with a non-empty block; 0: no grid */
    area_t cut;    /* area of the cuts between blocks */
    int64_t parts; /* of dimension d */
};

/* Whether plan a beats plan b; see the priorities in decomposition.h. */
static bool better(const struct plan *a, const struct plan *b)
{
    if (a->busy != b->busy)
        return a->busy > b->busy;
    if (a->cut != b->cut)
        return a->cut < b->cut;
    return a->parts > b->parts;
}

/* `parts` along a dimension of `extent` whose cuts have area `cross`, then the plan `rest`. */
static struct plan extend(int64_t parts, int64_t extent, int64_t cross, const struct plan *rest)
{
    const int64_t used = min_i64(parts, extent); /* parts that hold elements */
    return (struct plan){rest->busy * used, rest->cut + (area_t)(used - 1) * (area_t)cross,
                         parts};
}

/*
 * Fills row d of the plans (one per divisor r of nprocs, for dimensions d..
 * with product r) from row d + 1.
 */
static void plan_dimension(struct plan *row, const struct plan *next_row, const int64_t *divisor,
                           size_t ndivisors, int64_t extent, int64_t cross)
{
    for (size_t i = 0; i < ndivisors; i++) {
        struct plan best = {0};
        for (size_t j = 0; j <= i; j++) {
            if (divisor[i] % divisor[j] != 0)
                continue;
            const struct plan *rest =
                &next_row[position(divisor, ndivisors, divisor[i] / divisor[j])];
            if (rest->busy == 0)
                continue;
            struct plan candidate = extend(divisor[j], extent, cross, rest);
            if (best.busy == 0 || better(&candidate, &best))
                best = candidate;
        }
        row[i] = best;
    }
}

int decomp_process_grid(size_t ndim, const int64_t *shape, int64_t nprocs, int64_t *grid)
{
    const int64_t total = volume(ndim, shape);
    if (ndim == 0 || nprocs < 1 || nprocs > DECOMP_MAX_NPROCS || total < 0)
        return ESDM_EINVAL;
    int64_t *divisor;
    size_t ndivisors;
    int status = divisors(nprocs, &divisor, &ndivisors);
    if (status != ESDM_OK)
        return status;
    /* Row d, divisor i: the best plan for dimensions d.. with product divisor[i]. */
    struct plan *plans = calloc((ndim + 1) * ndivisors, sizeof *plans);
    if (!plans) {
        free(divisor);
        return ESDM_ENOMEM;
    }
    plans[ndim * ndivisors] = (struct plan){.busy = 1}; /* no dimensions left: product 1 */
    for (size_t d = ndim; d-- > 0;) {
        const int64_t extent = max_i64(shape[d], 1);
        plan_dimension(plans + d * ndivisors, plans + (d + 1) * ndivisors, divisor, ndivisors,
                       extent, total / extent);
    }
    int64_t product = nprocs;
    for (size_t d = 0; d < ndim; d++) {
        grid[d] = plans[d * ndivisors + position(divisor, ndivisors, product)].parts;
        product /= grid[d];
    }
    free(plans);
    free(divisor);
    return ESDM_OK;
}

/* ---- Blocks --------------------------------------------------------------- */

int decomp_block(size_t ndim, const int64_t *shape, const int64_t *grid, int64_t rank,
                 int64_t *offset, int64_t *count)
{
    if (rank < 0)
        return ESDM_EINVAL;
    /* Row-major: peel the coordinates off the rank from the last dimension on. */
    for (size_t d = ndim; d-- > 0;) {
        if (shape[d] < 0 || grid[d] < 1)
            return ESDM_EINVAL;
        const int64_t index = rank % grid[d], base = shape[d] / grid[d],
                      extra = shape[d] % grid[d];
        rank /= grid[d];
        count[d] = base + (index < extra);
        offset[d] = index * base + min_i64(index, extra);
    }
    return rank == 0 ? ESDM_OK : ESDM_EINVAL; /* else rank >= the number of ranks */
}

int decomp_blocks(size_t ndim, const int64_t *shape, const int64_t *grid, int64_t nranks,
                  int64_t *offsets, int64_t *counts)
{
    for (int64_t rank = 0; rank < nranks; rank++) {
        const size_t row = (size_t)rank * ndim;
        int status = decomp_block(ndim, shape, grid, rank, offsets + row, counts + row);
        if (status != ESDM_OK)
            return status;
    }
    return ESDM_OK;
}
