/* control.c - the machine's own parallel capacity, measured beside the executors.
 *
 * On a shared machine the cores another job takes decide a speedup check more than any
 * executor does: a run where every parallel executor (the process pool too) got 1.2x was a
 * machine with one free core, not a slow pool. The control runs the cpu workload's Lua loop in
 * plain lua_States on plain threads (no pool, no queue, no messages: what any pool of
 * interpreters could at best get); run in every round beside the executors, its 2-thread
 * speedup says how much parallelism the machine gave Lua code that round, and the speedup
 * checks compare each executor against it (compare/report.c, bench_pool.c's seed). A register-only
 * C loop was tried first: on this VM it scaled 2x in rounds where two Lua interpreters got 1.2-1.6x
 * (the two vCPUs share a core's caches at times), so it did not measure what the executors compete
 * for. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "control.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct part {
    uint64_t iters;
    int cpu; /* the CPU this thread is pinned to, or -1 */
    int ok;
} part;

static const char control_chunk[] =
    "return function(n) local s = 0 for i = 0, n - 1 do s = s + i end return s end";

/* One thread's share: the loop in a fresh state of its own. */
static void *spin(void *arg)
{
    part *p = arg;
    if (p->cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(p->cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one); /* a hint: failure is fine */
    }
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    luaL_openlibs(L);
    if (luaL_loadstring(L, control_chunk) == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK) {
        lua_pushinteger(L, (lua_Integer)p->iters);
        int64_t n = (int64_t)p->iters;
        p->ok = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_tointeger(L, -1) == n * (n - 1) / 2;
    }
    lua_close(L);
    return NULL;
}

/* The i-th CPU this process may run on, for a run of more than one thread (else -1): a fresh
 * thread is often placed on its creator's CPU and left there for a scheduler tick or more,
 * which cost a 15 ms run up to 10 ms on an idle VM (the control measured 1.2x in rounds where
 * the executors' long-lived workers got 1.9x). Pinned, the threads measure the CPUs
 * themselves: another job on one of them slows its thread as it slows a worker. */
static int nth_cpu(int i, int threads)
{
    cpu_set_t set;
    if (threads < 2 || sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < threads)
        return -1;
    for (int c = 0, seen = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set) && seen++ == i)
            return c;
    return -1;
}

double bench_control_run(int threads, uint64_t iters)
{
    enum { MAX_THREADS = 64 };
    pthread_t tid[MAX_THREADS];
    part parts[MAX_THREADS];
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        parts[i] = (part){.iters = iters / (uint64_t)threads, .cpu = nth_cpu(i, threads)};
        if (pthread_create(&tid[i], NULL, spin, &parts[i]) != 0) {
            fprintf(stderr, "bench control: cannot start a thread\n");
            exit(2);
        }
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double t = now() - t0;
    for (int i = 0; i < threads; i++)
        if (!parts[i].ok) {
            fprintf(stderr, "bench control: the Lua loop failed\n");
            exit(2);
        }
    return t;
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

paired_stat bench_control_share(const double *speedup, const double *control, int n, int *kept)
{
    double v[PAIRED_MAX];
    int k = 0;
    for (int i = 0; i < n && i < PAIRED_MAX; i++)
        if (control[i] >= BENCH_CONTROL_MIN)
            v[k++] = speedup[i] / control[i];
    *kept = k;
    return paired_of(v, k);
}
