/* bench_chan.c - channel throughput and latency between two threads.
 *
 *   bench_chan [scale [spin_ns]]   (scale multiplies the iteration counts; default 1;
 *                                   spin_ns sets the channels' spin before sleeping)
 *
 * Pure C (interp_msg in and out) and through Lua (two threads, each owning a lua_State with
 * the channel binding: encode on one side, decode on the other, as two workers do):
 *   - small messages {i, "x", 3.5} one way, messages/s        (target >= 1,000,000/s)
 *   - 1 MiB strings one way, MB/s                              (target >= 5,000 MB/s)
 *   - ping-pong round trip over two channels, p50/p99 in us     (target <= 10 us)
 * Each figure is the best of a few runs (the machine is shared). */
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_impl.h"
#include "lua_ctx.h"
#include "msg_impl.h"
#include "sync.h"

enum { CAPACITY = 64, BIG = 1 << 20, RUNS = 3 };

static long scale = 1;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_chan: %s: %s\n", what, interp_strerror(rc));
    exit(1);
}

/* ---- pure C --------------------------------------------------------------------------- */

/* {i, "x", 3.5} as MessagePack: fixarray(3), int64, fixstr "x", float64. */
static interp_msg *small_msg(int64_t i)
{
    interp_msg *m = interp__msg_alloc(1 + 9 + 2 + 9, 1, 0);
    if (!m)
        die("alloc", INTERP_ERR_NOMEM);
    char *p = m->data;
    *p++ = (char)0x93;
    *p++ = (char)0xd3;
    for (int k = 0; k < 8; k++)
        *p++ = (char)((uint64_t)i >> (56 - 8 * k));
    *p++ = (char)0xa1;
    *p++ = 'x';
    *p++ = (char)0xcb;
    double d = 3.5;
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int k = 0; k < 8; k++)
        *p++ = (char)(u >> (56 - 8 * k));
    return m;
}

typedef struct {
    interp_chan *a, *b; /* a: forward, b: back (ping-pong) */
    long n;
    int mode; /* 0 small, 1 big, 2 pong */
    double *lat;
} c_arg;

static char *big_src, *big_dst;

static void *c_consumer(void *p)
{
    c_arg *a = p;
    for (long i = 0; i < a->n; i++) {
        interp_msg *m;
        int rc = interp_chan_recv(a->a, INTERP_FOREVER, &m);
        if (rc != INTERP_OK)
            die("recv", rc);
        if (a->mode == 1)
            memcpy(big_dst, m->data, m->size); /* one copy out */
        if (a->mode == 2) {
            if ((rc = interp_chan_send(a->b, m, INTERP_FOREVER)) != INTERP_OK)
                die("send", rc);
        } else {
            interp_msg_free(m);
        }
    }
    return NULL;
}

static double c_run(int mode, long n, double *lat)
{
    c_arg a = {.n = n, .mode = mode, .lat = lat};
    interp_chan_create(mode == 2 ? 1 : CAPACITY, 0, &a.a);
    interp_chan_create(1, 0, &a.b);
    pthread_t t;
    pthread_create(&t, NULL, c_consumer, &a);
    double t0 = interp__now();
    for (long i = 0; i < n; i++) {
        interp_msg *m;
        if (mode == 1) {
            m = interp__msg_alloc(BIG, 1, 0);
            if (!m)
                die("alloc", INTERP_ERR_NOMEM);
            memcpy(m->data, big_src, BIG); /* one copy in */
        } else {
            m = small_msg(i);
        }
        double s = interp__now();
        int rc = interp_chan_send(a.a, m, INTERP_FOREVER);
        if (rc != INTERP_OK)
            die("send", rc);
        if (mode == 2) {
            if ((rc = interp_chan_recv(a.b, INTERP_FOREVER, &m)) != INTERP_OK)
                die("recv", rc);
            interp_msg_free(m);
            lat[i] = interp__now() - s;
        }
    }
    pthread_join(t, NULL);
    double dt = interp__now() - t0;
    interp_chan_release(a.a);
    interp_chan_release(a.b);
    return dt;
}

/* ---- through Lua ----------------------------------------------------------------------- */

typedef struct {
    lua_State *L;
    interp__lua_ctx ctx;
} lstate;

static void lstate_init(lstate *s, interp_chan *a, interp_chan *b)
{
    s->L = luaL_newstate();
    luaL_openlibs(s->L);
    memset(&s->ctx, 0, sizeof s->ctx);
    interp__lua_ctx_set(s->L, &s->ctx);
    lua_newtable(s->L);
    interp__chan_lua_register(s->L);
    lua_setglobal(s->L, "interp");
    interp__chan_push(s->L, a, &s->ctx);
    lua_setglobal(s->L, "A");
    interp__chan_push(s->L, b, &s->ctx);
    lua_setglobal(s->L, "B");
}

static void lstate_run(lstate *s, const char *code, long n)
{
    if (luaL_loadstring(s->L, code) != LUA_OK) {
        fprintf(stderr, "bench_chan: %s\n", lua_tostring(s->L, -1));
        exit(1);
    }
    lua_pushinteger(s->L, n);
    if (lua_pcall(s->L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "bench_chan: %s\n", lua_tostring(s->L, -1));
        exit(1);
    }
}

typedef struct {
    lstate *s;
    const char *code;
    long n;
} l_arg;

static void *l_thread(void *p)
{
    l_arg *a = p;
    lstate_run(a->s, a->code, a->n);
    return NULL;
}

static const char *L_SMALL_SEND = "local n = ... for i = 1, n do A:send({i, 'x', 3.5}) end";
static const char *L_SMALL_RECV = "local n = ... for i = 1, n do local v = A:recv() "
                                  "if v[1] ~= i then error('out of order') end end";
static const char *L_BIG_SEND =
    "local n = ... local s = string.rep('x', 1 << 20) for i = 1, n do A:send(s) end";
static const char *L_BIG_RECV =
    "local n = ... for i = 1, n do local v = A:recv() if #v ~= 1 << 20 then error('len') end end";
static const char *L_PONG = "local n = ... for i = 1, n do B:send(A:recv()) end";

/* The host side of the ping-pong in Lua too, timing each round trip with os.clock-free C:
 * the times go through a global array filled by a C function. */
static double *lat_out;
static int l_now(lua_State *L)
{
    lua_pushnumber(L, interp__now());
    return 1;
}
static int l_record(lua_State *L)
{
    lat_out[luaL_checkinteger(L, 1) - 1] = luaL_checknumber(L, 2);
    return 0;
}
static const char *L_PING = "local n = ... for i = 1, n do local t = now() A:send({i, 'x', 3.5}) "
                            "local v = B:recv() record(i, now() - t) end";

static double l_run(int mode, long n, double *lat)
{
    interp_chan *a, *b;
    interp_chan_create(mode == 2 ? 1 : CAPACITY, 0, &a);
    interp_chan_create(1, 0, &b);
    lstate p, c;
    lstate_init(&p, a, b);
    lstate_init(&c, a, b);
    lua_register(p.L, "now", l_now);
    lua_register(p.L, "record", l_record);
    lat_out = lat;
    l_arg ca = {&c, mode == 0 ? L_SMALL_RECV : mode == 1 ? L_BIG_RECV : L_PONG, n};
    pthread_t t;
    pthread_create(&t, NULL, l_thread, &ca);
    double t0 = interp__now();
    lstate_run(&p, mode == 0 ? L_SMALL_SEND : mode == 1 ? L_BIG_SEND : L_PING, n);
    pthread_join(t, NULL);
    double dt = interp__now() - t0;
    lua_close(p.L);
    lua_close(c.L);
    interp_chan_release(a);
    interp_chan_release(b);
    return dt;
}

/* ---- report ------------------------------------------------------------------------------ */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void report(const char *label, double (*run)(int, long, double *))
{
    long n_small = 1000000 * scale, n_big = 2000 * scale, n_pong = 20000 * scale;
    double best = 1e9;
    for (int r = 0; r < RUNS; r++) {
        double dt = run(0, n_small, NULL);
        if (dt < best)
            best = dt;
    }
    printf("%-4s small {i,\"x\",3.5}  %10.0f msg/s\n", label, (double)n_small / best);
    best = 1e9;
    for (int r = 0; r < RUNS; r++) {
        double dt = run(1, n_big, NULL);
        if (dt < best)
            best = dt;
    }
    printf("%-4s 1 MiB strings     %10.0f MB/s\n", label, (double)n_big * BIG / 1e6 / best);
    double *lat = malloc((size_t)n_pong * sizeof *lat);
    double p50 = 1e9, p99 = 1e9;
    for (int r = 0; r < RUNS; r++) {
        run(2, n_pong, lat);
        qsort(lat, (size_t)n_pong, sizeof *lat, cmp_double);
        if (lat[n_pong / 2] < p50) {
            p50 = lat[n_pong / 2];
            p99 = lat[n_pong * 99 / 100];
        }
    }
    printf("%-4s ping-pong round trip  p50 %6.2f us  p99 %6.2f us\n", label, p50 * 1e6, p99 * 1e6);
    free(lat);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        scale = atol(argv[1]) > 0 ? atol(argv[1]) : 1;
    if (argc > 2)
        interp__chan_set_spin((unsigned)atol(argv[2]));
    big_src = malloc(BIG);
    big_dst = malloc(BIG);
    memset(big_src, 'x', BIG);
    report("C", c_run);
    report("Lua", l_run);
    free(big_src);
    free(big_dst);
    return 0;
}
