/* control.c - the machine's own parallel capacity, measured beside the executors.
 *
 * On a shared machine the cores another job takes decide a speedup check more than any
 * executor does: a run where every parallel executor (the process pool too) got 1.2x was a
 * machine with one free core, not a slow pool. The control is a plain C loop (no Lua, no
 * memory traffic) split over plain threads; run in every round beside the executors, its
 * 2-thread speedup says how much parallelism the machine gave that round, and the speedup
 * checks compare each executor against it (report.c). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "workloads.h"

typedef struct part {
    uint64_t iters, out;
} part;

/* A dependent chain of xorshift steps: one core's worth of work, nothing to vectorise or
 * fold, no memory touched. */
static void *spin(void *arg)
{
    part *p = arg;
    uint64_t x = 88172645463325252ull;
    for (uint64_t i = 0; i < p->iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    p->out = x;
    return NULL;
}

static volatile uint64_t sink; /* the results are used: the loops are not optimised away */

double bench_control_run(int threads, uint64_t iters)
{
    enum { MAX_THREADS = 64 };
    pthread_t tid[MAX_THREADS];
    part parts[MAX_THREADS];
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    double t0 = bench_now();
    for (int i = 0; i < threads; i++) {
        parts[i] = (part){.iters = iters / (uint64_t)threads};
        if (pthread_create(&tid[i], NULL, spin, &parts[i]) != 0) {
            fprintf(stderr, "bench_compare: cannot start a control thread\n");
            exit(2);
        }
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        sink ^= parts[i].out;
    }
    return bench_now() - t0;
}

uint64_t bench_control_iters(double secs)
{
    uint64_t n = 1u << 20;
    double best = 1e9;
    for (int i = 0; i < 3; i++) { /* the fastest of three: a busy moment must not shrink it */
        double t = bench_control_run(1, n);
        best = t < best ? t : best;
    }
    double per = best / (double)n;
    return per > 0 ? (uint64_t)(secs / per) : n;
}
