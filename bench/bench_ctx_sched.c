/* bench_ctx_sched.c - the contexts' scheduler (issue 16): fairness, parked contexts,
 * preemption, and what preemption costs a call that is never preempted.
 *
 *   fairness     1,000 contexts with 100 queued calls of equal cost each on 2 threads, queued
 *                context after context (the order that gives ~2x to a scheduler running one
 *                context's calls to the end): when the last context finishes its calls over
 *                when the median one does (target <= 1.5).
 *   parked       10,000 contexts each waiting in recv on a 2-thread pool: threads, RSS per
 *                parked context, and the time from closing the channel to every call ended.
 *   preemption   on 1 thread, a context in `while true do end` without deadline: how long
 *                another context's call waits behind it, against its time slice.
 *   zero cost    the same calls with preemption on and off, in paired rounds (median ratio
 *                [lowest..highest]): a loop call alone (nothing armed) and tiny calls.
 *
 * Usage: bench_ctx_sched [scale]   (scale < 1 shrinks every count, for a smoke run)
 * The machine is shared: read the ratios, not the absolute times. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "interp_ctx.h"
#include "paired.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kib(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int threads(void)
{
    int n = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, interp_strerror(rc));
    exit(1);
}

static interp_pool *make_pool(int workers)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.prestart = true;
    interp_pool *p;
    int rc = interp_pool_create(&p, &o, NULL);
    if (rc != INTERP_OK)
        die("pool", rc);
    return p;
}

static interp_ctx *make_ctx(interp_pool *p, const char *src, double slice)
{
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.init_source = src;
    o.time_slice = slice;
    interp_ctx *c;
    int rc = interp_ctx_create(p, &o, &c, NULL);
    if (rc != INTERP_OK)
        die("context", rc);
    return c;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void send_str(interp_pool *p, const char *name, const char *v)
{
    interp_chan *ch;
    if (interp_pool_channel(p, name, 0, &ch) != INTERP_OK)
        exit(1);
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_str(b, v, strlen(v));
    interp_msg *m;
    interp_msg_builder_finish(b, &m);
    interp_chan_send(ch, m, INTERP_FOREVER);
    interp_chan_release(ch);
}

/* ---- fairness ---------------------------------------------------------------------------- */

static _Atomic double *g_finish;

static void on_last(interp_future *f, void *ud)
{
    (void)f;
    atomic_store(&g_finish[(size_t)ud], now_s());
}

static void fairness(double scale)
{
    int nc = (int)(1000 * scale), calls = 100;
    if (nc < 10)
        nc = 10;
    interp_pool *p = make_pool(2);
    const char *src = "function work(n) local s = 0 for i = 1, n do s = s + i end return s end";
    interp_ctx **cs = malloc(sizeof *cs * (size_t)nc);
    g_finish = calloc((size_t)nc, sizeof *g_finish);
    for (int i = 0; i < nc; i++)
        cs[i] = make_ctx(p, src, 0);
    /* hold both threads while every call is queued, so that the order is the queue's */
    interp_task gate = {
        .fn = {.kind = INTERP_FN_SOURCE, .text = "return interp.channel('gate'):recv()"}};
    interp_future *g[2];
    for (int i = 0; i < 2; i++)
        if (interp_pool_submit_task(p, &gate, -1, &g[i]) != INTERP_OK)
            exit(1);
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "work"}};
    for (int i = 0; i < nc; i++) {
        for (int k = 0; k < calls; k++) {
            interp_msg_builder *b = interp_msg_builder_new();
            interp_msg_add_int(b, 2000);
            interp_msg_builder_finish(b, &t.args);
            interp_future *f;
            int rc = interp_ctx_call_task(cs[i], &t, &f);
            if (rc != INTERP_OK)
                die("call", rc);
            if (k == calls - 1)
                interp_future_on_done(f, on_last, (void *)(size_t)i);
            interp_future_release(f);
        }
    }
    double t0 = now_s();
    send_str(p, "gate", "go");
    send_str(p, "gate", "go");
    for (int i = 0; i < 2; i++) {
        interp_future_result(g[i], -1, NULL);
        interp_future_release(g[i]);
    }
    double *done = malloc(sizeof *done * (size_t)nc);
    for (int i = 0; i < nc; i++) {
        while (atomic_load(&g_finish[i]) == 0) /* set by the callback */
            usleep(1000);
        done[i] = atomic_load(&g_finish[i]) - t0;
    }
    qsort(done, (size_t)nc, sizeof *done, cmp_d);
    double med = done[nc / 2], last = done[nc - 1];
    free(done);
    printf("fairness: %d contexts x %d calls on 2 threads: median context done at %.3f s, "
           "last at %.3f s: last/median %.3f (target <= 1.5)\n",
           nc, calls, med, last, last / med);
    for (int i = 0; i < nc; i++)
        interp_ctx_close(cs[i]);
    interp_pool_destroy(p);
    free(cs);
    free((void *)g_finish);
}

/* ---- parked ------------------------------------------------------------------------------ */

static void parked(double scale)
{
    int nc = (int)(10000 * scale);
    if (nc < 10)
        nc = 10;
    int th0 = threads();
    interp_pool *p = make_pool(2);
    const char *src = "function take() local v, why = interp.channel('parkq'):recv() "
                      "return v == nil and why or v end";
    interp_ctx **cs = malloc(sizeof *cs * (size_t)nc);
    interp_future **fs = malloc(sizeof *fs * (size_t)nc);
    /* the contexts' own size first: made and called once (idle), then parked */
    long r0 = rss_kib();
    for (int i = 0; i < nc; i++)
        cs[i] = make_ctx(p, src, 0);
    long r1 = rss_kib();
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "take"}};
    for (int i = 0; i < nc; i++)
        if (interp_ctx_call_task(cs[i], &t, &fs[i]) != INTERP_OK)
            exit(1);
    /* wait until every call is parked: none has ended, and the threads are free again */
    interp_task probe = {.fn = {.kind = INTERP_FN_SOURCE, .text = "return 1"}};
    interp_future *pf;
    if (interp_pool_submit_task(p, &probe, -1, &pf) != INTERP_OK)
        exit(1);
    interp_future_result(pf, -1, NULL);
    interp_future_release(pf);
    usleep(200000);
    long r2 = rss_kib();
    int th = threads();
    interp_chan *ch;
    interp_pool_channel(p, "parkq", 0, &ch);
    double t0 = now_s();
    interp_chan_close(ch);
    for (int i = 0; i < nc; i++)
        interp_future_wait(fs[i], -1);
    double wake = now_s() - t0;
    interp_chan_release(ch);
    int ok = 0;
    for (int i = 0; i < nc; i++) {
        ok += interp_future_status(fs[i]) == INTERP_OK;
        interp_future_release(fs[i]);
        interp_ctx_close(cs[i]);
    }
    printf("parked: %d contexts waiting in recv on 2 workers: threads %d (before the pool %d); "
           "RSS per context %.1f KiB idle, %.1f KiB parked (call, coroutine, watch node); "
           "close -> all %d calls ended in %.1f ms (%.2f us per call), %d ended OK\n",
           nc, th, th0, (double)(r1 - r0) / nc, (double)(r2 - r0) / nc, nc, wake * 1e3,
           wake * 1e6 / nc, ok);
    interp_pool_destroy(p);
    free(cs);
    free(fs);
}

/* ---- preemption latency ------------------------------------------------------------------ */

static void preemption(double slice, int rounds)
{
    interp_pool *p = make_pool(1);
    const char *src = "function spin() interp.channel('spinning'):send(true) while true do end end "
                      "function one() return 1 end";
    interp_ctx *loop = make_ctx(p, src, slice);
    interp_ctx *other = make_ctx(p, src, slice);
    interp_task spin = {.fn = {.kind = INTERP_FN_NAME, .text = "spin"}, .timeout = -1};
    interp_future *lf;
    if (interp_ctx_call_task(loop, &spin, &lf) != INTERP_OK)
        exit(1);
    interp_chan *ch;
    interp_pool_channel(p, "spinning", 0, &ch);
    interp_msg *m;
    interp_chan_recv(ch, -1, &m);
    interp_msg_free(m);
    interp_chan_release(ch);
    double *lat = malloc(sizeof *lat * (size_t)rounds);
    interp_task one = {.fn = {.kind = INTERP_FN_NAME, .text = "one"}};
    for (int i = 0; i < rounds; i++) {
        double t0 = now_s();
        interp_future *f;
        if (interp_ctx_call_task(other, &one, &f) != INTERP_OK)
            exit(1);
        interp_future_result(f, -1, NULL);
        lat[i] = now_s() - t0;
        interp_future_release(f);
    }
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_d);
    printf("preemption: time slice %.1f ms, 1 thread, another context looping: a call waits "
           "p50 %.2f ms, max %.2f ms (%d calls)\n",
           slice * 1e3, lat[rounds / 2] * 1e3, lat[rounds - 1] * 1e3, rounds);
    interp_future_cancel(lf);
    interp_future_wait(lf, -1);
    interp_future_release(lf);
    interp_ctx_close(loop);
    interp_ctx_close(other);
    interp_pool_destroy(p);
    free(lat);
}

/* ---- zero cost --------------------------------------------------------------------------- */

/* n calls of fn (with arg) on c, waiting for each; seconds. */
static double run_calls(interp_ctx *c, const char *fn, int arg, int n)
{
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = fn}};
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        interp_msg_builder *b = interp_msg_builder_new();
        interp_msg_add_int(b, arg);
        interp_msg_builder_finish(b, &t.args);
        interp_future *f;
        if (interp_ctx_call_task(c, &t, &f) != INTERP_OK)
            exit(1);
        interp_future_result(f, -1, NULL);
        interp_future_release(f);
    }
    return now_s() - t0;
}

static void zero_cost(double scale)
{
    enum { ROUNDS = 7 };
    interp_pool *p = make_pool(2);
    const char *src = "function work(n) local s = 0 for i = 1, n do s = s + i end return s end";
    interp_ctx *on = make_ctx(p, src, 0), *off = make_ctx(p, src, -1);
    int loop_n = (int)(2e7 * scale), tiny_n = (int)(20000 * scale);
    double lon[ROUNDS], loff[ROUNDS], ton[ROUNDS], toff[ROUNDS];
    run_calls(on, "work", 1, 100); /* warm both */
    run_calls(off, "work", 1, 100);
    for (int r = 0; r < ROUNDS; r++) {
        if (r % 2) {
            lon[r] = run_calls(on, "work", loop_n, 1);
            loff[r] = run_calls(off, "work", loop_n, 1);
        } else {
            loff[r] = run_calls(off, "work", loop_n, 1);
            lon[r] = run_calls(on, "work", loop_n, 1);
        }
        if (r % 2) {
            ton[r] = run_calls(on, "work", 1, tiny_n);
            toff[r] = run_calls(off, "work", 1, tiny_n);
        } else {
            toff[r] = run_calls(off, "work", 1, tiny_n);
            ton[r] = run_calls(on, "work", 1, tiny_n);
        }
    }
    char a[64], b[64];
    paired_stat sl = paired_ratio(lon, loff, ROUNDS), st = paired_ratio(ton, toff, ROUNDS);
    paired_stat base;
    double per[ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        per[r] = loff[r] / loop_n * 1e9;
    base = paired_of(per, ROUNDS);
    printf("zero cost: a loop call alone (%d iterations, %.2f ns each without preemption), "
           "preemption on / off: %s\n",
           loop_n, base.med, paired_fmt(a, sizeof a, sl));
    for (int r = 0; r < ROUNDS; r++)
        per[r] = toff[r] / tiny_n * 1e6;
    base = paired_of(per, ROUNDS);
    printf("zero cost: tiny calls waited one by one (%.2f us each without preemption), on / "
           "off: %s\n",
           base.med, paired_fmt(b, sizeof b, st));
    interp_ctx_close(on);
    interp_ctx_close(off);
    interp_pool_destroy(p);
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    if (scale <= 0)
        scale = 1.0;
    printf("bench_ctx_sched (2-core machine shared with other jobs: read the ratios)\n");
    fairness(scale);
    parked(scale);
    preemption(0.01, scale < 1 ? 5 : 20);
    preemption(0.002, scale < 1 ? 5 : 20);
    zero_cost(scale);
    return 0;
}
