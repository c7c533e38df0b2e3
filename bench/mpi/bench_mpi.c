/* bench_mpi - the MPI pool against a local pool on the same cores:
 *   mpiexec --oversubscribe -n 2 bench_mpi [cpu_n] [repeats] [workloads]
 * (workloads: a comma-separated subset of cpu,tiny,submit,data,idle; default all)
 * The MPI pool has 1 worker per rank (2 ranks); the local pool, made on rank 0 beside it, has 2
 * workers. Workloads as bench_compare's: cpu (15 x cpu_task(cpu_n), with a sequential run in
 * one lua_State as the base), tiny (maps of 100,000 and 1,000,000 x*2 items, in paired rounds
 * that alternate which pool runs first; the target is judged at 1,000,000), data (16 tasks,
 * each a 1 MiB table of floats as its argument). Then the idle cost: CPU time of the waiting
 * rank 1 and of the root over 3 s with nothing to do. Prints each time (best of `repeats`) and
 * same-run ratios; cpu (sequential, local, mpi rotated in each of `repeats` rounds) and data
 * (7 x `repeats` rounds, local and mpi alternating first) also as paired per-round ratios,
 * median [range], judged PASS / FAIL / NOISE (bench/paired.h). Timing on a shared 2-core
 * machine is noisy: compare ratios, not times. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "interp_mpi.h"
#include "paired.h"

static const char src[] =
    "function cpu_task(n) local s = 0 for i = 0, n - 1 do s = s + i end return s end\n"
    "function tiny_task(x) return x * 2 end\n"
    "function data_task(t) local s = 0.0 for i = 1, #t do s = s + t[i] end return s end\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_mpi: %s: %s\n", what, interp_strerror(rc));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static double run_cpu(interp_pool *p, int64_t n)
{
    enum { T = 15 };
    interp_future *fs[T];
    double t0 = now();
    for (int i = 0; i < T; i++) {
        int rc = interp_pool_submitf(p, &fs[i], "cpu_task", "I", n);
        if (rc)
            die("submit", rc);
    }
    for (int i = 0; i < T; i++) {
        int64_t s = 0;
        int rc = interp_future_resultf(fs[i], INTERP_FOREVER, "I", &s);
        if (rc || s != n * (n - 1) / 2)
            die("cpu result", rc ? rc : INTERP_ERR_DECODE);
        interp_future_release(fs[i]);
    }
    return now() - t0;
}

static double run_seq(int64_t n)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_dostring(L, src);
    double t0 = now();
    for (int i = 0; i < 15; i++) {
        lua_getglobal(L, "cpu_task");
        lua_pushinteger(L, n);
        lua_call(L, 1, 1);
        lua_pop(L, 1);
    }
    double t = now() - t0;
    lua_close(L);
    return t;
}

static double proc_cpu(int pid);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* CPU seconds (user + system) of this process, every thread. */
static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* CPU seconds spent by this process and the other rank (other_pid; 0: none) so far. */
static double job_cpu(int other_pid) { return self_cpu() + (other_pid ? proc_cpu(other_pid) : 0); }

/* The tiny map (check: its results); *cpu gains the CPU time it took (both ranks' processes). */
static double run_tiny(interp_pool *p, size_t n, interp_msg **in, int other_pid, double *cpu,
                       bool check)
{
    interp_msg **out = calloc(n, sizeof *out);
    double c0 = job_cpu(other_pid);
    double t0 = now();
    int rc = interp_pool_map(p, "tiny_task", n, (const interp_msg *const *)in, out, NULL);
    double t = now() - t0;
    *cpu += job_cpu(other_pid) - c0;
    if (rc)
        die("tiny map", rc);
    for (size_t i = 0; i < n; i++) {
        int64_t v = -1;
        if (check && (interp_msg_unpack(out[i], "I", &v) || v != 2 * (int64_t)i))
            die("tiny result", INTERP_ERR_DECODE);
        interp_msg_free(out[i]);
    }
    free(out);
    return t;
}

static double run_data(interp_pool *p, const interp_msg *table, double sum)
{
    enum { T = 16 };
    interp_msg *args[T];
    for (int i = 0; i < T; i++)
        args[i] = interp_msg_dup(table); /* made before the clock: the host's own copies */
    interp_future *fs[T];
    double t0 = now();
    for (int i = 0; i < T; i++) {
        int rc = interp_pool_submit(p, "data_task", args[i], &fs[i]);
        if (rc)
            die("data submit", rc);
    }
    for (int i = 0; i < T; i++) {
        double s = 0;
        int rc = interp_future_resultf(fs[i], INTERP_FOREVER, "d", &s);
        if (rc || s != sum)
            die("data result", rc ? rc : INTERP_ERR_DECODE);
        interp_future_release(fs[i]);
    }
    return now() - t0;
}

/* n tiny tasks submitted one by one, then collected: each is one unit through the root */
static double run_submit(interp_pool *p, size_t n)
{
    interp_future **fs = calloc(n, sizeof *fs);
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        int rc = interp_pool_submitf(p, &fs[i], "tiny_task", "I", (int64_t)i);
        if (rc)
            die("submit", rc);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t v = -1;
        int rc = interp_future_resultf(fs[i], INTERP_FOREVER, "I", &v);
        if (rc || v != 2 * (int64_t)i)
            die("submit result", rc ? rc : INTERP_ERR_DECODE);
        interp_future_release(fs[i]);
    }
    free(fs);
    return now() - t0;
}

/* The tiny map's sizes: 100,000 items (~1-2 ms on the local pool here: start-up and the last
 * chunks weigh) and 1,000,000 (~10-20 ms: the throughput, on which the target is judged). */
#define TINY_SMALL 100000
#define TINY_BIG 1000000

/* Paired rounds of the tiny map of n items on both pools, which one runs first alternating
 * round by round (a change of the machine's load hits both alike): each round's ratio of
 * throughputs mpi / local, their median and range, the best of each, and the CPU time per
 * item (both ranks' processes). The verdict: MET when the median is >= 50%, WITHIN NOISE
 * when the range reaches 50% only, else MISSED. Other jobs' load squeezes both pools and pulls
 * the ratio towards 100%; the CPU per item it changes least: the local pool's share of the
 * MPI pool's (>= 50%) is judged too, what the throughput ratio tends to on two free cores. */
static void tiny_report(interp_pool *lp, interp_pool *mp, size_t n, interp_msg **in, int rounds,
                        int other_pid)
{
    double *ratio = calloc((size_t)rounds, sizeof *ratio);
    double tl = 1e9, tm = 1e9, cpul = 0, cpum = 0;
    for (int r = 0; r < rounds; r++) {
        double l, m;
        if (r % 2 == 0) {
            l = run_tiny(lp, n, in, 0, &cpul, true);
            m = run_tiny(mp, n, in, other_pid, &cpum, true);
        } else {
            m = run_tiny(mp, n, in, other_pid, &cpum, true);
            l = run_tiny(lp, n, in, 0, &cpul, true);
        }
        tl = l < tl ? l : tl;
        tm = m < tm ? m : tm;
        ratio[r] = l / m;
    }
    qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
    double med = 100.0 * ratio[rounds / 2], lo = 100.0 * ratio[0], hi = 100.0 * ratio[rounds - 1];
    const char *verdict = n != TINY_BIG ? "not judged at this size (start-up weighs)"
                          : med >= 50   ? "MET (target >= 50%)"
                          : hi >= 50    ? "WITHIN NOISE (target >= 50%)"
                                        : "MISSED (target >= 50%)";
    printf("tiny  map of %d x*2, %d paired rounds (which pool runs first alternating): mpi/local "
           "throughput median %.1f%% [%.0f..%.0f]: %s; best of each: local %.1f M items/s, mpi "
           "%.1f M items/s (%.0f%%)\n",
           (int)n, rounds, med, lo, hi, verdict, 1e-6 * (double)n / tl, 1e-6 * (double)n / tm,
           100.0 * tl / tm);
    /* CPU per item (every thread of the root's process, and rank 1's from /proc in 10 ms
     * ticks): what the load of other jobs changes least */
    double share = 100.0 * cpul / cpum; /* on two free cores the throughput ratio tends to it */
    printf("tiny  CPU per item of %d x*2 over %d rounds: local %.0f ns, mpi %.0f ns (both ranks; "
           "local %.0f%% of it%s)\n",
           (int)n, rounds, 1e9 * cpul / ((double)n * rounds), 1e9 * cpum / ((double)n * rounds),
           share,
           n != TINY_BIG ? ""
           : share >= 50 ? ": MET, the load-robust form of the target (>= 50%)"
                         : ": MISSED, the load-robust form of the target (>= 50%)");
    free(ratio);
}

/* CPU seconds (user + system) of process pid, from /proc (same node). */
static double proc_cpu(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv)
{
    char *err = NULL;
    if (interp_mpi_init(&argc, &argv, &err) != INTERP_OK) {
        fprintf(stderr, "bench_mpi: %s\n", err);
        return 2;
    }
    int64_t cpu_n = argc > 1 ? atoll(argv[1]) : 5000000;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    const char *only = argc > 3 ? argv[3] : "cpu,tiny,submit,data,idle";
    int me, size, pid = getpid(), pids[64] = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Gather(&pid, 1, MPI_INT, pids, 1, MPI_INT, 0, MPI_COMM_WORLD);
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = src;
    interp_pool *mp = NULL;
    int rc = interp_mpi_pool_create(&mp, MPI_COMM_WORLD, &o, NULL, &err);
    if (rc)
        die(err ? err : "create", rc);
    if (!mp) { /* a serving rank: done */
        MPI_Finalize();
        return 0;
    }
    interp_pool_options lo = o;
    lo.workers = size; /* as many workers as the MPI pool has */
    interp_pool *lp = NULL;
    if ((rc = interp_pool_create(&lp, &lo, &err)))
        die(err ? err : "local create", rc);
    printf("bench_mpi: %d ranks x 1 worker against one process with %d workers (best of %d)\n",
           size, lo.workers, reps);

    /* cpu: rounds of sequential, local and mpi in a rotated order; the best of each and the
     * paired per-round speedups (a round where another job took a core slows all three) */
    enum { ROUNDS_MAX = 64 };
    int cr = reps < ROUNDS_MAX ? reps : ROUNDS_MAX;
    double ts[ROUNDS_MAX], tl[ROUNDS_MAX], tm[ROUNDS_MAX];
    double seq = 1e9, cl = 1e9, cm = 1e9;
    for (int r = 0; r < cr && strstr(only, "cpu"); r++) {
        for (int k = 0; k < 3; k++) {
            int side = (k + r) % 3;
            if (side == 0)
                ts[r] = run_seq(cpu_n);
            else
                (side == 1 ? tl : tm)[r] = run_cpu(side == 1 ? lp : mp, cpu_n);
        }
        seq = ts[r] < seq ? ts[r] : seq;
        cl = tl[r] < cl ? tl[r] : cl;
        cm = tm[r] < cm ? tm[r] : cm;
    }
    if (strstr(only, "cpu")) {
        paired_stat sm = paired_ratio(ts, tm, cr), sl = paired_ratio(ts, tl, cr);
        printf("cpu   15 x cpu_task(%lld): sequential %.3f s, local %.3f s (%.2fx), mpi %.3f s "
               "(%.2fx; target >= 1.85x)\n",
               (long long)cpu_n, seq, cl, seq / cl, cm, seq / cm);
        printf("cpu   paired over %d rounds: mpi speedup %.2f [%.2f..%.2f] %s, local's in the same "
               "rounds %.2f [%.2f..%.2f]\n",
               cr, sm.med, sm.lo, sm.hi, paired_word(paired_judge(sm, 1.85, true)), sl.med, sl.lo,
               sl.hi);
    }

    /* tiny: paired interleaved rounds at two sizes (the verdict at the larger: throughput) */
    size_t n = strstr(only, "tiny") ? TINY_BIG : 0;
    interp_msg **in = calloc(n ? n : 1, sizeof *in);
    for (size_t i = 0; i < n; i++)
        interp_msg_pack(&in[i], "I", (int64_t)i);
    double cpum = 0, cpul = 0;
    /* mtiny / ltiny: the MPI or the local pool's map of TINY_SMALL alone, results not checked,
     * for instruction counts (callgrind on each rank: the difference of two repeat counts) */
    for (int r = 0; r < reps && strstr(only, "mtiny"); r++)
        run_tiny(mp, TINY_SMALL, in, 0, &cpum, false);
    for (int r = 0; r < reps && strstr(only, "ltiny"); r++)
        run_tiny(lp, TINY_SMALL, in, 0, &cpul, false);
    if (n && !strstr(only, "mtiny") && !strstr(only, "ltiny")) {
        tiny_report(lp, mp, TINY_SMALL, in, 10 * reps + 1, size > 1 ? pids[1] : 0);
        tiny_report(lp, mp, TINY_BIG, in, 6 * reps + 3, size > 1 ? pids[1] : 0);
    }
    for (size_t i = 0; i < n; i++)
        interp_msg_free(in[i]);
    free(in);

    size_t ns = 20000;
    double sl = 1e9, sm = 1e9;
    for (int r = 0; r < reps && strstr(only, "submit"); r++) {
        double t = run_submit(lp, ns);
        sl = t < sl ? t : sl;
        t = run_submit(mp, ns);
        sm = t < sm ? t : sm;
    }
    if (strstr(only, "submit"))
        printf("submit %zu x*2 tasks one by one: local %.0f tasks/s, mpi %.0f tasks/s (%.0f%%): "
               "the root's unit rate\n",
               ns, (double)ns / sl, (double)ns / sm, 100.0 * sl / sm);

    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_array(b, 131072);
    double sum = 0;
    for (int k = 0; k < 131072; k++) {
        double v = (double)(k % 1024) * 0.25 + 0.5;
        sum += v;
        interp_msg_add_double(b, v);
    }
    interp_msg *table = NULL;
    interp_msg_builder_finish(b, &table);
    /* data: paired rounds, local and mpi alternating first (each round takes ~40 ms) */
    int dr = 7 * reps < ROUNDS_MAX ? 7 * reps : ROUNDS_MAX;
    double dlv[ROUNDS_MAX], dmv[ROUNDS_MAX];
    double dl = 1e9, dm = 1e9;
    for (int r = 0; r < dr && strstr(only, "data"); r++) {
        for (int k = 0; k < 2; k++)
            if ((k + r) % 2 == 0)
                dlv[r] = run_data(lp, table, sum);
            else
                dmv[r] = run_data(mp, table, sum);
        dl = dlv[r] < dl ? dlv[r] : dl;
        dm = dmv[r] < dm ? dmv[r] : dm;
    }
    double mib = (double)interp_msg_size(table) / 1048576.0;
    if (strstr(only, "data")) {
        paired_stat d = paired_ratio(dmv, dlv, dr);
        printf("data  16 tasks of a %.2f MiB table: local %.3f s, mpi %.3f s (best of each: "
               "%.2fx local's time); %.0f MiB/s through the root\n",
               mib, dl, dm, dm / dl, 16 * mib / dm);
        printf("data  paired over %d rounds: mpi / local time %.2f [%.2f..%.2f] %s (target <= "
               "1.5x)\n",
               dr, d.med, d.lo, d.hi, paired_word(paired_judge(d, 1.5, false)));
    }
    interp_msg_free(table);

    interp_pool_destroy(lp);
    if (!strstr(only, "idle")) {
        interp_pool_destroy(mp);
        MPI_Finalize();
        return 0;
    }
    /* idle: nothing submitted for 3 s; rank 1 waits in serve, the root's thread polls */
    usleep(300 * 1000);
    double c1 = size > 1 ? proc_cpu(pids[1]) : 0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now();
    sleep(3);
    double el = now() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    double c1b = size > 1 ? proc_cpu(pids[1]) : 0;
    double self = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                  (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                  (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) * 1e-6 +
                  (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) * 1e-6;
    printf("idle  over %.1f s: rank 1 (waiting in serve) %.2f%% of a core, root %.2f%% "
           "(target < 1%%; /proc ticks are 10 ms: below ~0.3%% reads as 0)\n",
           el, 100.0 * (c1b - c1) / el, 100.0 * self / el);
    interp_pool_destroy(mp);
    MPI_Finalize();
    return 0;
}
