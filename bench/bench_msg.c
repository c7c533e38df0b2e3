/* bench_msg.c - the message codec's round trip (encode in one lua_State, decode in another),
 * with encode and decode also timed apart:
 *   1 MiB strings       MB/s, and as a ratio to memcpy of the same bytes
 *   10,000 records      records/s, and as a ratio to building the same table in Lua code
 *   small scalars       values/s (one integer per message)
 * Runs in a few seconds; prints figures, asserts nothing about speed. Times are the thread's
 * CPU time, best of several batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg_lua.h"

/* CPU time of this thread: on a shared machine, time spent descheduled is not ours. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    return L;
}

static void must(int rc, const char *what)
{
    if (rc != INTERP_OK) {
        fprintf(stderr, "bench_msg: %s: %s\n", what, interp_strerror(rc));
        exit(1);
    }
}

static void run(lua_State *L, const char *src)
{
    if (luaL_dostring(L, src) != LUA_OK) {
        fprintf(stderr, "bench_msg: %s\n", lua_tostring(L, -1));
        exit(1);
    }
}

/* Times of n round trips of the value at the top of A, split into encode and decode. Each
 * figure is the best of REPS batches: the machine is shared, the minimum is the signal. */
enum { REPS = 5 };

typedef struct times {
    double enc, dec, total;
} times;

static double min2(double a, double b) { return a < b ? a : b; }

static times roundtrips(lua_State *A, lua_State *B, long n)
{
    times best = {1e30, 1e30, 1e30};
    interp_msg *m;
    /* warm up */
    must(interp_msg_from_lua(A, -1, 1, NULL, &m, NULL), "encode");
    must(interp_msg_to_lua(B, m, NULL, NULL), "decode");
    lua_settop(B, 0);
    interp_msg_free(m);
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        for (long i = 0; i < n; i++) {
            must(interp_msg_from_lua(A, -1, 1, NULL, &m, NULL), "encode");
            must(interp_msg_to_lua(B, m, NULL, NULL), "decode");
            lua_settop(B, 0);
            interp_msg_free(m);
        }
        best.total = min2(best.total, now() - t0);
        /* apart: encode (and free) n times, then decode one message n times */
        t0 = now();
        for (long i = 0; i < n; i++) {
            must(interp_msg_from_lua(A, -1, 1, NULL, &m, NULL), "encode");
            if (i + 1 < n)
                interp_msg_free(m);
        }
        best.enc = min2(best.enc, now() - t0);
        t0 = now();
        for (long i = 0; i < n; i++) {
            must(interp_msg_to_lua(B, m, NULL, NULL), "decode");
            lua_settop(B, 0);
        }
        best.dec = min2(best.dec, now() - t0);
        interp_msg_free(m);
    }
    return best;
}

static void bench_strings(void)
{
    enum { MIB = 1 << 20 };
    long n = 400;
    lua_State *A = new_state(), *B = new_state();
    char *src = malloc(MIB), *dst = malloc(MIB);
    if (!src || !dst)
        abort();
    for (size_t i = 0; i < MIB; i++)
        src[i] = (char)(i * 31 % 251);
    lua_pushlstring(A, src, MIB);
    times t = roundtrips(A, B, n);
    memset(dst, 1, MIB);
    double tm = 1e30, tmm = 1e30, tl = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        for (long i = 0; i < n; i++) {
            src[i % MIB]++; /* keep the copies from being folded away */
            memcpy(dst, src, MIB);
            __asm__ volatile("" : : "r"(dst) : "memory");
        }
        tm = min2(tm, now() - t0);
        t0 = now();
        for (long i = 0; i < n; i++) {
            char *d = malloc(MIB);
            if (!d)
                abort();
            memcpy(d, src, MIB);
            __asm__ volatile("" : : "r"(d) : "memory");
            free(d);
        }
        tmm = min2(tmm, now() - t0);
        /* the floor of any decode: Lua making a string of those bytes (and collecting it) */
        t0 = now();
        for (long i = 0; i < n; i++) {
            lua_pushlstring(B, src, MIB);
            lua_settop(B, 0);
        }
        tl = min2(tl, now() - t0);
    }
    double mb = (double)n * MIB / 1e6;
    printf("1 MiB strings:   round trip %8.0f MB/s (encode %8.0f MB/s, decode %8.0f MB/s)\n",
           mb / t.total, mb / t.enc, mb / t.dec);
    printf("                 memcpy %8.0f MB/s, malloc+memcpy+free %8.0f MB/s, lua_pushlstring "
           "%8.0f MB/s\n",
           mb / tm, mb / tmm, mb / tl);
    printf("                 ratio round trip / memcpy = %.2f (target >= 0.5; a round trip is two "
           "copies, so 0.5 is the ceiling)\n",
           tm / t.total);
    printf("                 encode / memcpy = %.2f, decode / lua_pushlstring = %.2f\n", tm / t.enc,
           tl / t.dec);
    free(src);
    free(dst);
    lua_close(A);
    lua_close(B);
}

static void bench_records(void)
{
    enum { RECORDS = 10000 };
    long n = 20;
    lua_State *A = new_state(), *B = new_state();
    run(A, "recs = {} for i = 1, 10000 do recs[i] = {id = i, name = 'item' .. i, score = i * 0.5} "
           "end");
    lua_getglobal(A, "recs");
    times t = roundtrips(A, B, n);
    /* the same table built by Lua code in the receiving state */
    run(B, "function build() local t = {} for i = 1, 10000 do "
           "t[i] = {id = i, name = 'item' .. i, score = i * 0.5} end return t end build()");
    lua_getglobal(B, "build");
    double tl = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        for (long i = 0; i < n; i++) {
            lua_pushvalue(B, -1);
            lua_call(B, 0, 1);
            lua_pop(B, 1);
        }
        tl = min2(tl, now() - t0);
    }
    lua_pop(B, 1);
    double r = (double)n * RECORDS;
    printf("10k records:     round trip %8.2f M records/s (encode %.2f M/s, decode %.2f M/s)\n",
           r / t.total / 1e6, r / t.enc / 1e6, r / t.dec / 1e6);
    printf("                 built by Lua code %.2f M records/s; ratio round trip / Lua = %.2f "
           "(target >= 0.7), decode alone / Lua = %.2f\n",
           r / tl / 1e6, tl / t.total, tl / t.dec);
    lua_close(A);
    lua_close(B);
}

static void bench_scalars(void)
{
    long n = 400000;
    lua_State *A = new_state(), *B = new_state();
    lua_pushinteger(A, 123456789);
    times t = roundtrips(A, B, n);
    printf("small scalars:   round trip %6.1f M values/s = %5.1f ns (encode %5.1f ns, decode "
           "%5.1f ns)\n",
           n / t.total / 1e6, t.total / n * 1e9, t.enc / n * 1e9, t.dec / n * 1e9);
    lua_settop(A, 0);
    lua_pushstring(A, "hello");
    t = roundtrips(A, B, n);
    printf("short string:    round trip %6.1f M values/s = %5.1f ns (encode %5.1f ns, decode "
           "%5.1f ns)\n",
           n / t.total / 1e6, t.total / n * 1e9, t.enc / n * 1e9, t.dec / n * 1e9);
    lua_settop(A, 0);
    run(A, "small = {1, 2.5, 'x'}");
    lua_getglobal(A, "small");
    t = roundtrips(A, B, n / 2);
    printf("{1, 2.5, 'x'}:   round trip %6.1f M values/s = %5.1f ns (encode %5.1f ns, decode "
           "%5.1f ns)\n",
           n / 2 / t.total / 1e6, t.total / (n / 2) * 1e9, t.enc / (n / 2) * 1e9,
           t.dec / (n / 2) * 1e9);
    lua_settop(A, 0);
    run(A, "nums = {} for i = 1, 1000 do nums[i] = i * 0.25 end");
    lua_getglobal(A, "nums");
    t = roundtrips(A, B, n / 200);
    double v = (double)(n / 200) * 1000;
    printf("1000 floats:     round trip %6.1f M elements/s = %5.1f ns each (encode %5.1f ns, "
           "decode %5.1f ns)\n",
           v / t.total / 1e6, t.total / v * 1e9, t.enc / v * 1e9, t.dec / v * 1e9);
    lua_close(A);
    lua_close(B);
}

int main(void)
{
    bench_scalars();
    bench_records();
    bench_strings();
    return 0;
}
