/* bench_frozen.c - figures of frozen values (interp_frozen.h), each against its baseline in the
 * same run, in interleaved rounds (median of the per-round ratios):
 *   1. t[i] over a frozen array vs the same loop over a minimal C userdata whose __index only
 *      returns a number (the floor of any view) and over a native table;
 *   2. b:byte(i) on a frozen buffer vs s:byte(i) on a string;
 *   3. a 100 MB table: frozen once then summed by 2 workers at once, vs one copy of it through
 *      a message today (a task taking it as its argument).
 * Run: build/release/bench/bench_frozen [--quick]. Timing figures on a shared 2-core machine
 * are noisy: read the ratios. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frozen_impl.h"
#include "interp_msg_lua.h"
#include "interp_pool.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void check(lua_State *L, int rc)
{
    if (rc != LUA_OK) {
        fprintf(stderr, "bench_frozen: %s\n", lua_tostring(L, -1));
        exit(1);
    }
}

/* The floor: a userdata whose __index returns a number and does nothing else. */
static int floor_index(lua_State *L)
{
    lua_pushnumber(L, 1.5);
    return 1;
}

static const char LOOPS[] =
    "local ip = ...\n"
    "function index_loop(t, n) local s = 0.0 for i = 1, n do s = s + t[i] end return s end\n"
    "function byte_loop(s, n) local x = 0 for i = 1, n do x = x + s:byte(i) end return x end\n"
    "function make(n)\n"
    "  local t, p = {}, {}\n"
    "  for i = 1, n do t[i] = (i % 1024) * 0.25 + 0.5 p[i] = string.char(i % 251) end\n"
    "  local s = table.concat(p)\n"
    "  return t, ip.freeze(t), s, ip.buffer(s)\n"
    "end\n";

/* Seconds of one call of global fn(arg at stack index idx, n). */
static double timed(lua_State *L, const char *fn, int idx, lua_Integer n)
{
    lua_getglobal(L, fn);
    lua_pushvalue(L, idx);
    lua_pushinteger(L, n);
    double t0 = now();
    check(L, lua_pcall(L, 2, 1, 0));
    double t = now() - t0;
    lua_pop(L, 1);
    return t;
}

static void micro(int quick)
{
    lua_Integer n = quick ? 200000 : 2000000;
    enum { ROUNDS = 9 };
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    check(L, luaL_loadstring(L, LOOPS));
    lua_newtable(L);
    interp__frozen_lua_cfg cfg = {0};
    interp__frozen_lua_register(L, &cfg);
    check(L, lua_pcall(L, 1, 0, 0));
    lua_getglobal(L, "make");
    lua_pushinteger(L, n);
    check(L, lua_pcall(L, 1, 4, 0)); /* 1 native, 2 frozen, 3 string, 4 buffer */
    lua_newuserdatauv(L, 8, 0);      /* 5 floor */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, floor_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    int base = lua_gettop(L) - 4;
    double native[ROUNDS], fl[ROUNDS], fz[ROUNDS], str[ROUNDS], buf[ROUNDS];
    double r_floor[ROUNDS], r_native[ROUNDS], r_byte[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) { /* interleaved: the machine's load hits all alike */
        native[r] = timed(L, "index_loop", base, n);
        fz[r] = timed(L, "index_loop", base + 1, n);
        fl[r] = timed(L, "index_loop", base + 4, n);
        str[r] = timed(L, "byte_loop", base + 2, n);
        buf[r] = timed(L, "byte_loop", base + 3, n);
        r_floor[r] = fz[r] / fl[r];
        r_native[r] = fz[r] / native[r];
        r_byte[r] = buf[r] / str[r];
    }
    double k = 1e9 / (double)n;
    printf("t[i], %lld elements, median of %d interleaved rounds:\n", (long long)n, ROUNDS);
    printf("  native table        %6.1f ns\n", median(native, ROUNDS) * k);
    printf("  floor C userdata    %6.1f ns  (__index returns a number)\n", median(fl, ROUNDS) * k);
    printf("  frozen array        %6.1f ns\n", median(fz, ROUNDS) * k);
    printf("  frozen / floor      %6.2fx  (target <= 1.3)\n", median(r_floor, ROUNDS));
    printf("  frozen / native     %6.2fx\n", median(r_native, ROUNDS));
    printf("b:byte(i) vs s:byte(i):\n");
    printf("  string              %6.1f ns\n", median(str, ROUNDS) * k);
    printf("  frozen buffer       %6.1f ns\n", median(buf, ROUNDS) * k);
    printf("  buffer / string     %6.2fx  (target <= 2)\n", median(r_byte, ROUNDS));
    lua_close(L);
}

/* ---- 100 MB ------------------------------------------------------------------------------- */

static const char INIT[] =
    "function len(t) return #t end\n"
    "function sum(t) local s = 0.0 for i = 1, #t do s = s + t[i] end return s end\n"
    "function usum(t)\n" /* the bulk reader: 1024 values per call */
    "  local s, n = 0.0, #t\n"
    "  for k = 1, n, 1024 do\n"
    "    local c = {interp.unpack(t, k, k + 1023 < n and k + 1023 or n)}\n"
    "    for i = 1, #c do s = s + c[i] end\n"
    "  end\n"
    "  return s\n"
    "end\n";

static interp_pool *pool_of(int workers)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.prestart = true;
    o.init_source = INIT;
    interp_pool *p = NULL;
    char *err = NULL;
    if (interp_pool_create(&p, &o, &err) != INTERP_OK) {
        fprintf(stderr, "bench_frozen: pool: %s\n", err ? err : "?");
        exit(1);
    }
    return p;
}

static void wait_ok(interp_future *f)
{
    const interp_msg *res;
    if (interp_future_result(f, INTERP_FOREVER, &res) != INTERP_OK) {
        const char *e = interp_future_error(f);
        fprintf(stderr, "bench_frozen: task failed: %s\n", e ? e : "?");
        exit(1);
    }
}

/* Freeze the table at the top of L's stack (interp.freeze, as a script would); the new
 * reference is the caller's. */
static interp_frozen *freeze_top(lua_State *L)
{
    lua_getglobal(L, "freeze");
    lua_pushvalue(L, -2);
    check(L, lua_pcall(L, 1, 1, 0));
    interp_frozen *f = interp_frozen_retain(interp__frozen_toobj(L, -1));
    lua_pop(L, 1);

    return f;
}

/* Submit fn(handle to f) to pool twice, wait for both. */
static void two_sums(interp_pool *pool, const char *fn, const interp_frozen *f)
{
    interp_future *fs[2];
    for (int k = 0; k < 2; k++) {
        interp_msg_builder *b = interp_msg_builder_new();
        interp_msg *args = NULL;
        if (interp_msg_add_frozen(b, f) || interp_msg_builder_finish(b, &args) ||
            interp_pool_submit(pool, fn, args, &fs[k]))
            exit(1);
    }
    for (int k = 0; k < 2; k++) {
        wait_ok(fs[k]);
        interp_future_release(fs[k]);
    }
}

static void big(int quick)
{
    lua_Integer n = quick ? 1111111 : 11111111; /* floats of 9 bytes: 10 or 100 MB */
    enum { ROUNDS = 3 };
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    interp__frozen_lua_cfg cfg = {0};
    interp__frozen_lua_register(L, &cfg);
    lua_getfield(L, -1, "freeze");
    lua_setglobal(L, "freeze");
    lua_pop(L, 1);
    /* the same floats twice: made exactly of their size (as a decoder makes a table), and
     * grown by a loop (as a script does: Lua's array part then has room past the end, and a
     * freeze reads it by index) */
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushnumber(L, (lua_Number)(i % 1024) * 0.25 + 0.5);
        lua_rawseti(L, -2, i);
    }
    check(L, luaL_loadstring(L, "local t = {} for i = 1, ... do t[i] = (i % 1024) * 0.25 + 0.5 "
                                "end return t"));
    lua_pushinteger(L, n);
    check(L, lua_pcall(L, 1, 1, 0)); /* -1 grown by a loop, -2 exact */
    interp_pool *one = pool_of(1), *two = pool_of(2);
    double copy[ROUNDS], make[ROUNDS], make_exact[ROUNDS], sum[ROUNDS], usum[ROUNDS];
    double r_sum[ROUNDS], r_usum[ROUNDS], r_usum_exact[ROUNDS];
    size_t msg_size = 0;
    interp_msg_opts o = {.max_size = (size_t)1 << 30};
    for (int r = 0; r < ROUNDS; r++) {
        /* today: one copy, as a task's argument (encoded here, decoded in the worker) */
        double t0 = now();
        interp_msg *m = NULL;
        if (interp_msg_from_lua(L, -1, 1, &o, &m, NULL) != INTERP_OK)
            exit(1);
        msg_size = interp_msg_size(m);
        interp_future *f;
        interp_task task = {.fn = {.kind = INTERP_FN_NAME, .text = "len"}, .args = m};
        if (interp_pool_submit_task(one, &task, INTERP_FOREVER, &f) != INTERP_OK)
            exit(1);
        wait_ok(f);
        interp_future_release(f);
        copy[r] = now() - t0;
        /* frozen: once, then two workers each sum all of it at the same time */
        t0 = now();
        interp_frozen *fz = freeze_top(L);
        make[r] = now() - t0;
        lua_pushvalue(L, -2);
        t0 = now();
        interp_frozen *fz_exact = freeze_top(L);
        make_exact[r] = now() - t0;
        lua_pop(L, 1);
        interp_frozen_release(fz_exact);
        t0 = now();
        two_sums(two, "sum", fz);
        sum[r] = now() - t0;
        t0 = now();
        two_sums(two, "usum", fz);
        usum[r] = now() - t0;
        interp_frozen_release(fz);
        r_sum[r] = (make[r] + sum[r]) / copy[r];
        r_usum[r] = (make[r] + usum[r]) / copy[r];
        r_usum_exact[r] = (make_exact[r] + usum[r]) / copy[r];
    }
    printf("a table of %lld floats (message %.0f MB), median of %d interleaved rounds:\n",
           (long long)n, (double)msg_size / 1e6, ROUNDS);
    printf("  one copy through a message (task argument)   %7.1f ms\n", median(copy, ROUNDS) * 1e3);
    printf("  interp.freeze once (a table grown by a loop) %7.1f ms\n", median(make, ROUNDS) * 1e3);
    printf("  interp.freeze once (a table made exact)      %7.1f ms\n",
           median(make_exact, ROUNDS) * 1e3);
    printf("  2 workers each sum it, t[i] loop             %7.1f ms\n", median(sum, ROUNDS) * 1e3);
    printf("  2 workers each sum it, interp.unpack chunks  %7.1f ms\n", median(usum, ROUNDS) * 1e3);
    printf("  (freeze + sums) / one copy, t[i] loop        %7.2fx  (target <= 1)\n",
           median(r_sum, ROUNDS));
    printf("  (freeze + sums) / one copy, unpack chunks    %7.2fx  (target <= 1)\n",
           median(r_usum, ROUNDS));
    printf("  the same, the table made exact               %7.2fx\n", median(r_usum_exact, ROUNDS));
    interp_pool_destroy(one);
    interp_pool_destroy(two);
    lua_close(L);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    micro(quick);
    big(quick);
    return 0;
}
