/* primes.c - a C host that counts primes in Lua with interp_pool_map(), on 1 worker and on
 * every CPU, and prints the speedup.
 *
 *   primes [LIMIT [BLOCKS]]      count primes below LIMIT (default 3,000,000) in BLOCKS ranges
 *
 * Each map item is one range [lo, hi) checked by trial division in a Lua loop: CPU-bound work
 * that a GIL would serialise and that an interpreter pool spreads over all cores. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "interp_pool.h"

static const char *COUNT_PRIMES = "function count_primes(lo, hi)\n"
                                  "  local n = 0\n"
                                  "  for x = math.max(lo, 2), hi - 1 do\n"
                                  "    local prime, d = true, 2\n"
                                  "    while d * d <= x do\n"
                                  "      if x % d == 0 then prime = false; break end\n"
                                  "      d = d + 1\n"
                                  "    end\n"
                                  "    if prime then n = n + 1 end\n"
                                  "  end\n"
                                  "  return n\n"
                                  "end\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Count primes below limit on `workers` workers; returns the count or -1 (error printed). */
static long long count_on(int workers, long long limit, size_t blocks, double *seconds)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.init_source = COUNT_PRIMES;
    interp_pool *pool;
    char *err = NULL;
    int rc = interp_pool_create(&pool, &o, &err);
    if (rc != INTERP_OK) {
        fprintf(stderr, "primes: cannot create pool: %s\n", err ? err : interp_strerror(rc));
        free(err);
        return -1;
    }
    interp_msg **in = calloc(blocks, sizeof *in), **out = calloc(blocks, sizeof *out);
    long long total = -1;
    if (!in || !out)
        goto done;
    for (size_t i = 0; i < blocks; i++) /* item i: the two arguments lo, hi */
        if (interp_msg_pack(&in[i], "L, L", (long long)(limit * i / blocks),
                            (long long)(limit * (i + 1) / blocks)) != INTERP_OK)
            goto done;
    double t0 = now();
    char **errors = calloc(blocks, sizeof *errors);
    interp_map_options mo = {.chunksize = 1, .errors = errors};
    rc = interp_pool_map(pool, "count_primes", blocks, (const interp_msg *const *)in, out, &mo);
    *seconds = now() - t0;
    if (rc != INTERP_OK) {
        for (size_t i = 0; i < blocks; i++)
            if (errors && errors[i]) {
                fprintf(stderr, "primes: block %zu: %s\n", i, errors[i]);
                break;
            }
    } else {
        total = 0;
        for (size_t i = 0; i < blocks; i++) {
            long long count;
            if (interp_msg_unpack(out[i], "L", &count) != INTERP_OK) {
                total = -1;
                break;
            }
            total += count;
        }
    }
    for (size_t i = 0; errors && i < blocks; i++)
        free(errors[i]);
    free(errors);
done:
    for (size_t i = 0; in && i < blocks; i++) {
        interp_msg_free(in[i]);
        interp_msg_free(out[i]);
    }
    free(in);
    free(out);
    interp_pool_destroy(pool);
    return total;
}

int main(int argc, char **argv)
{
    long long limit = argc > 1 ? atoll(argv[1]) : 3000000;
    size_t blocks = argc > 2 ? (size_t)atoll(argv[2]) : 64;
    int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (limit < 2 || blocks < 1) {
        fprintf(stderr, "usage: primes [LIMIT >= 2 [BLOCKS >= 1]]\n");
        return 2;
    }
    double t1 = 0, tn = 0;
    long long one = count_on(1, limit, blocks, &t1);
    long long many = count_on(cpus, limit, blocks, &tn);
    if (one < 0 || many < 0)
        return 1;
    if (one != many) {
        fprintf(stderr, "primes: results differ: %lld vs %lld\n", one, many);
        return 1;
    }
    printf("primes below %lld: %lld\n", limit, one);
    printf("1 worker: %.3f s, %d workers: %.3f s, speedup %.2fx\n", t1, cpus, tn, t1 / tn);
    return 0;
}
