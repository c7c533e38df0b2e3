/* bench_chan_pool.c - channels between two pool workers (public API only).
 *
 *   bench_chan_pool [scale]
 *
 * Worker to worker through named channels, Lua encode and decode included:
 *   - small messages {i, "x", 3.5}, messages/s      (target >= 1,000,000/s)
 *   - 1 MiB strings, MB/s                            (target >= 5,000 MB/s)
 *   - ping-pong, mean round trip in us               (target <= 10 us)
 * Times are taken on the host from submitting the two tasks to both results, so they include
 * two task dispatches (a few microseconds against runs of a second or so). Best of 3. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "interp_pool.h"

static const char *INIT =
    "function small_send(n) local c = interp.channel('small', 64)\n"
    "  for i = 1, n do c:send({i, 'x', 3.5}) end end\n"
    "function small_recv(n) local c = interp.channel('small', 64)\n"
    "  for i = 1, n do local v = c:recv() if v[1] ~= i then error('order') end end end\n"
    "function big_send(n) local c = interp.channel('big', 64) local s = ('x'):rep(1 << 20)\n"
    "  for i = 1, n do c:send(s) end end\n"
    "function big_recv(n) local c = interp.channel('big', 64)\n"
    "  for i = 1, n do if #c:recv() ~= 1 << 20 then error('len') end end end\n"
    "function ping(n) local a, b = interp.channel('ping', 1), interp.channel('pong', 1)\n"
    "  for i = 1, n do a:send(i) if b:recv() ~= i then error('pong') end end end\n"
    "function pong(n) local a, b = interp.channel('ping', 1), interp.channel('pong', 1)\n"
    "  for i = 1, n do b:send(a:recv()) end end\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Run fa(n) and fb(n) on two workers at once; seconds until both are done. */
static double pair(interp_pool *pool, const char *fa, const char *fb, long n)
{
    interp_future *a, *b;
    double t0 = now();
    if (interp_pool_submit(pool, fb, interp_msg_int(n), &b) != INTERP_OK ||
        interp_pool_submit(pool, fa, interp_msg_int(n), &a) != INTERP_OK) {
        fprintf(stderr, "bench_chan_pool: submit failed\n");
        exit(1);
    }
    int ra = interp_future_result(a, INTERP_FOREVER, NULL);
    int rb = interp_future_result(b, INTERP_FOREVER, NULL);
    double dt = now() - t0;
    if (ra != INTERP_OK || rb != INTERP_OK) {
        fprintf(stderr, "bench_chan_pool: %s / %s\n", ra ? interp_future_error(a) : "ok",
                rb ? interp_future_error(b) : "ok");
        exit(1);
    }
    interp_future_release(a);
    interp_future_release(b);
    return dt;
}

static double best(interp_pool *pool, const char *fa, const char *fb, long n)
{
    double b = 1e9;
    for (int r = 0; r < 3; r++) {
        double dt = pair(pool, fa, fb, n);
        if (dt < b)
            b = dt;
    }
    return b;
}

int main(int argc, char **argv)
{
    long scale = argc > 1 && atol(argv[1]) > 0 ? atol(argv[1]) : 1;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.init_source = INIT;
    interp_pool *pool;
    char *err = NULL;
    if (interp_pool_create(&pool, &o, &err) != INTERP_OK) {
        fprintf(stderr, "bench_chan_pool: %s\n", err ? err : "pool");
        return 1;
    }
    long n_small = 1000000 * scale, n_big = 2000 * scale, n_pong = 100000 * scale;
    double dt = best(pool, "small_send", "small_recv", n_small);
    printf("pool small {i,\"x\",3.5}  %10.0f msg/s\n", (double)n_small / dt);
    dt = best(pool, "big_send", "big_recv", n_big);
    printf("pool 1 MiB strings     %10.0f MB/s\n", (double)n_big * (1 << 20) / 1e6 / dt);
    dt = best(pool, "ping", "pong", n_pong);
    printf("pool ping-pong round trip  mean %6.2f us\n", dt / (double)n_pong * 1e6);
    interp_pool_destroy(pool);
    return 0;
}
