/* bench_ctx.c - contexts' figures (issue 16), each printed against its target:
 *   1. create + first call of a context, against a bare luaL_newstate + luaL_openlibs + one
 *      lua_pcall of the same chunk, interleaved rounds, paired ratio (target <= 1.3)
 *   2. 100,000 contexts created, called once each, then idle, on a 2-thread pool: resident
 *      memory per idle context against a bare state made in the same run (target <= bare +
 *      4 KiB); the process's thread count never above 1 (this thread) + workers + watchdog;
 *      then all closed
 *   3. round trip of one call to an idle context, p50 / p99 (target p50 <= 2 us)
 *   4. actor ring: 1,000 contexts pass a token by interp.context(name):post, 100 times
 *      round: hops/s (target >= 1,000,000)
 * Usage: bench_ctx [scale [sections]]  (scale < 1 shortens every run; sections: a list such
 * as "ring,rtt"). On a shared 2-core machine every figure moves with the load: compare the
 * same-run ratios, not the absolute numbers. */
#include <lauxlib.h>
#include <lualib.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp_ctx.h"
#include "bench_mem.h"
#include "paired.h"
#include "sync.h"

static double scale = 1.0;
static int failures;

static void verdict(const char *what, double value, double target, bool higher_better,
                    const char *unit)
{
    bool ok = higher_better ? value >= target : value <= target;
    printf("%-58s %12.2f %-8s target %s %.2f  %s\n", what, value, unit,
           higher_better ? ">=" : "<=", target, ok ? "MET" : "MISSED");
}

static void verdict_paired(const char *what, paired_stat s, double target, bool higher_better)
{
    char buf[64];
    paired_verdict v = paired_judge(s, target, higher_better);
    printf("%-58s %22s  target %s %.2f  %s\n", what, paired_fmt(buf, sizeof buf, s),
           higher_better ? ">=" : "<=", target,
           v == PAIRED_PASS   ? "MET"
           : v == PAIRED_FAIL ? "MISSED"
                              : "within noise");
}

static interp_pool *make_pool(int workers)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.prestart = true;
    interp_pool *p;
    char *err = NULL;
    if (interp_pool_create(&p, &o, &err) != INTERP_OK) {
        fprintf(stderr, "create: %s\n", err ? err : "?");
        exit(1);
    }
    return p;
}

static interp_ctx *make_ctx(interp_pool *p, const char *name, const char *init)
{
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.init_source = init;
    interp_ctx *c = NULL;
    char *err = NULL;
    if (interp_ctx_create(p, &o, &c, &err) != INTERP_OK) {
        fprintf(stderr, "ctx create: %s\n", err ? err : "?");
        exit(1);
    }
    return c;
}

static void call_ok(interp_ctx *c, const char *fn)
{
    interp_future *f;
    if (interp_ctx_call(c, fn, NULL, &f) != INTERP_OK ||
        interp_future_result(f, 60, NULL) != INTERP_OK) {
        fprintf(stderr, "call %s failed\n", fn);
        exit(1);
    }
    interp_future_release(f);
}

static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static const char *const CHUNK = "function nop() end";

/* ---- 1. create + first call against a bare state ------------------------------------------ */

static double bare_batch(lua_State **keep, int k)
{
    double t0 = interp__now();
    for (int i = 0; i < k; i++) {
        lua_State *L = luaL_newstate();
        luaL_openlibs(L);
        if (luaL_loadstring(L, CHUNK) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK)
            exit(1);
        keep[i] = L;
    }
    return interp__now() - t0;
}

static double call_part; /* of the contexts' time: the first calls */

static double ctx_batch(interp_pool *p, interp_ctx **keep, int k)
{
    double t0 = interp__now(), calls = 0;
    for (int i = 0; i < k; i++) {
        keep[i] = make_ctx(p, NULL, CHUNK);
        double t1 = interp__now();
        call_ok(keep[i], "nop");
        calls += interp__now() - t1;
    }
    double dt = interp__now() - t0;
    call_part += calls / dt;
    return dt;
}

static void bench_create(void)
{
    enum { R = 8 };
    int k = (int)(2000 * scale);
    if (k < 10)
        k = 10;
    interp_pool *p = make_pool(2);
    lua_State **bare = malloc((size_t)k * sizeof *bare);
    interp_ctx **ctxs = malloc((size_t)k * sizeof *ctxs);
    double tb[R], tc[R];
    for (int r = 0; r < R; r++) {
        if (r % 2) {
            tb[r] = bare_batch(bare, k);
            tc[r] = ctx_batch(p, ctxs, k);
        } else {
            tc[r] = ctx_batch(p, ctxs, k);
            tb[r] = bare_batch(bare, k);
        }
        for (int i = 0; i < k; i++) {
            lua_close(bare[i]);
            interp_ctx_close(ctxs[i]);
        }
    }
    printf("create + first call: context %.2f us (the call %.0f%% of it), bare newstate + "
           "openlibs + pcall %.2f us (medians of %d rounds of %d)\n",
           paired_of(tc, R).med * 1e6 / k, call_part * 100 / R, paired_of(tb, R).med * 1e6 / k, R,
           k);
    verdict_paired("create + first call, context / bare state", paired_ratio(tc, tb, R), 1.3,
                   false);
    free(bare);
    free(ctxs);
    interp_pool_destroy(p);
}

/* ---- 2. 100,000 contexts: memory per idle context, threads ------------------------------- */

static void bench_many(void)
{
    int n = (int)(100000 * scale), nb = n < 10000 ? n : 10000;
    if (n < 100)
        n = nb = 100;
    /* warm the allocator and the code pages first */
    interp_pool_destroy(make_pool(1));
    lua_State *warm = luaL_newstate();
    luaL_openlibs(warm);
    lua_close(warm);

    malloc_trim(0); /* the bare states must not reuse pages an earlier section freed */
    long before = bench_rss_kib();
    lua_State **bare = malloc((size_t)nb * sizeof *bare);
    for (int i = 0; i < nb; i++) {
        bare[i] = luaL_newstate();
        luaL_openlibs(bare[i]);
        if (luaL_loadstring(bare[i], CHUNK) != LUA_OK || lua_pcall(bare[i], 0, 0, 0) != LUA_OK)
            exit(1);
    }
    double bare_per = (double)(bench_rss_kib() - before) / nb;
    double bare_heap =
        (lua_gc(bare[0], LUA_GCCOUNT, 0) * 1024.0 + lua_gc(bare[0], LUA_GCCOUNTB, 0)) / 1024;
    for (int i = 0; i < nb; i++)
        lua_close(bare[i]);
    free(bare);
    malloc_trim(0); /* the contexts must not reuse the bare states' resident pages */

    const int W = 2;
    int threads0 = threads_now();
    interp_pool *p = make_pool(W);
    interp_ctx **c = malloc((size_t)n * sizeof *c);
    before = bench_rss_kib();
    int max_threads = threads_now();
    double t0 = interp__now();
    for (int i = 0; i < n; i++) {
        c[i] = make_ctx(p, NULL, CHUNK);
        call_ok(c[i], "nop");
        if (i % 1000 == 0) {
            int t = threads_now();
            max_threads = t > max_threads ? t : max_threads;
        }
    }
    double dt = interp__now() - t0;
    usleep(300000); /* idle: the workers have let go of what they keep for the next tasks */
    long after = bench_rss_kib();
    int t = threads_now();
    max_threads = t > max_threads ? t : max_threads;
    interp_ctx_stats st;
    interp_ctx_stats_get(c[0], &st);
    double t1 = interp__now();
    for (int i = 0; i < n; i++)
        interp_ctx_close(c[i]);
    double close_dt = interp__now() - t1;
    free(c);
    interp_pool_destroy(p);
    double per = (double)(after - before) / n;
    printf("%d contexts on %d workers: created + called in %.2f s (%.1f us each), closed in "
           "%.2f s; %.1f KiB resident each (Lua heap %.1f); a bare state (newstate + openlibs "
           "+ pcall, same run, %d of them): %.1f KiB (Lua heap %.1f)\n",
           n, W, dt, dt * 1e6 / n, close_dt, per, (double)st.memory_in_use / 1024, nb, bare_per,
           bare_heap);
    verdict("resident memory per idle context minus a bare state", per - bare_per, 4, false, "KiB");
    /* this thread, the workers, the watchdog (started on first need) */
    int pool_threads = max_threads - threads0;
    printf("threads: %d before the pool, at most %d while %d contexts lived\n", threads0,
           max_threads, n);
    verdict("the pool's threads at most (workers + watchdog)", pool_threads, W + 1, false,
            "threads");
    if (pool_threads > W + 1)
        failures++;
}

/* ---- 3. round trip to an idle context ---------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pctl(double *v, int n, int pct)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[(long)n * pct / 100];
}

static void bench_rtt(void)
{
    int n = (int)(20000 * scale);
    if (n < 100)
        n = 100;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.prestart = true;
    o.init_source = CHUNK;
    interp_pool *p;
    if (interp_pool_create(&p, &o, NULL) != INTERP_OK)
        exit(1);
    interp_ctx *c = make_ctx(p, "idle", CHUNK);
    double *v = malloc((size_t)n * sizeof *v), *vt = malloc((size_t)n * sizeof *vt);
    for (int i = 0; i < 1000; i++)
        call_ok(c, "nop"); /* warm */
    /* interleaved with the same call as an anonymous task of the same pool */
    for (int i = 0; i < n; i++) {
        double t0 = interp__now();
        call_ok(c, "nop");
        double t1 = interp__now();
        interp_future *f;
        if (interp_pool_submit(p, "nop", NULL, &f) != INTERP_OK ||
            interp_future_result(f, 60, NULL) != INTERP_OK)
            exit(1);
        interp_future_release(f);
        v[i] = t1 - t0;
        vt[i] = interp__now() - t1;
    }
    double p50 = pctl(v, n, 50), p99 = pctl(v, n, 99);
    double t50 = pctl(vt, n, 50);
    printf("round trip to an idle context (%d calls): p50 %.2f us, p99 %.2f us; the same as a "
           "task of the pool, interleaved: p50 %.2f us\n",
           n, p50 * 1e6, p99 * 1e6, t50 * 1e6);
    verdict("call round trip to an idle context, p50", p50 * 1e6, 2, false, "us");
    free(v);
    free(vt);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

/* ---- 4. actor ring ------------------------------------------------------------------------ */

static void bench_ring(void)
{
    int n = 1000, rounds = (int)(100 * scale);
    if (rounds < 2)
        rounds = 2;
    interp_pool *p = make_pool(2);
    interp_ctx **c = malloc((size_t)n * sizeof *c);
    char name[32], init[512];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "r%d", i);
        snprintf(init, sizeof init,
                 "local nxt\n"
                 "function pass(left)\n"
                 "  if left == 0 then return interp.channel('ring_done'):send(true) end\n"
                 "  nxt = nxt or interp.context('r%d')\n"
                 "  nxt:post('pass', left - 1)\n"
                 "end\n",
                 (i + 1) % n);
        c[i] = make_ctx(p, name, init);
    }
    interp_chan *done;
    interp_pool_channel(p, "ring_done", 0, &done);
    long hops = (long)n * rounds;
    double t0 = interp__now();
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "pass"},
                     .args = interp_msg_int(hops - 1)};
    if (interp_ctx_post(c[0], &t) != INTERP_OK)
        exit(1);
    interp_msg *m = NULL;
    if (interp_chan_recv(done, 600, &m) != INTERP_OK) {
        fprintf(stderr, "the token did not come back\n");
        exit(1);
    }
    double dt = interp__now() - t0;
    interp_msg_free(m);
    interp_chan_release(done);
    uint64_t failed = 0;
    for (int i = 0; i < n; i++) {
        interp_ctx_stats st;
        interp_ctx_stats_get(c[i], &st);
        failed += st.failed;
        interp_ctx_close(c[i]);
    }
    free(c);
    interp_pool_destroy(p);
    printf("ring of %d contexts on 2 workers: %ld hops in %.3f s, %llu failed\n", n, hops, dt,
           (unsigned long long)failed);
    verdict("actor ring hops/s", hops / dt, 1e6, true, "hops/s");
    if (failed)
        failures++;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        scale = atof(argv[1]);
    if (scale <= 0 || scale > 10)
        scale = 1;
    const char *only = argc > 2 ? argv[2] : "";
#define RUN(name)                                                                                  \
    if (!*only || strstr(only, #name))                                                             \
        bench_##name();
    RUN(create)
    RUN(many)
    RUN(rtt)
    RUN(ring)
    printf(failures ? "bench_ctx: FAILED\n" : "bench_ctx: ok\n");
    return failures ? 1 : 0;
}
