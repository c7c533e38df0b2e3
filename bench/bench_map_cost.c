/* bench_map_cost.c - per-item cost of a map, made for instruction counting (callgrind is immune
 * to the load of a shared machine; wall-clock figures are bench_pool's job).
 *
 * Three regions, each a function of its own that callgrind can isolate:
 *   region_bare   lua_getglobal + lua_pcall of dbl(i) on a plain lua_State (the reference);
 *   region_state  interp__state_map of dbl over integer messages, in chunks of 4096, on one
 *                 interpreter state (decode + call + encode, no threads);
 *   region_packed interp__state_map_packed of dbl over the same integers in packs of 1024
 *                 (the Lua module's pool:map: one message in, one out per pack);
 *   region_pool   interp_pool_map of dbl over the same messages on a 1-worker pool (everything:
 *                 chunking, delivery into out[], waiting).
 * Each region runs twice over N items (a fresh heap, then a warm one); results are freed
 * outside the regions.
 *
 *   valgrind --tool=callgrind --toggle-collect=region_state build/rel/bench/bench_map_cost
 *   -> "Collected" / (2 x N) = instructions per item (likewise region_bare, region_pool;
 *   region_pool also counts a worker spinning while it waits, so it is noisier).
 * Without valgrind it prints ns/item of each region. Usage: bench_map_cost [N] */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "interp.h"
#include "interp_impl.h"
#include "interp_one_step.h"
#include "interp_pool.h"

static const char *INIT = "function dbl(x) return x * 2 end";

/* CPU time of this thread (seconds): the bare and state regions run on it, so their figures
 * hold up better than wall-clock time when other processes load the machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static long long region_bare(lua_State *L, long n)
{
    long long acc = 0;
    for (long i = 0; i < n; i++) {
        lua_getglobal(L, "dbl");
        lua_pushinteger(L, i);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK)
            abort();
        acc += lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return acc;
}

__attribute__((noinline)) static void region_state(interp_state *s, long n, interp_msg **in,
                                                   interp_outcome *outs)
{
    enum { CH = 4096 };
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "dbl"};
    static uint64_t task = 1000;
    for (long first = 0; first < n; first += CH) {
        long k = n - first < CH ? n - first : CH;
        interp__state_map(s, ++task, &fn, (size_t)k, (const interp_msg *const *)in + first,
                          outs + first);
    }
}

/* interp__state_map_packed (the Lua module's pool:map) over packs of PACK integers. */
enum { PACK = 1024 };
__attribute__((noinline)) static void region_packed(interp_state *s, long npacks,
                                                    interp_msg **packs, interp_outcome *outs)
{
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "dbl"};
    static uint64_t task = 500000;
    interp__state_map_packed(s, ++task, &fn, (size_t)npacks, (const interp_msg *const *)packs,
                             outs);
}

__attribute__((noinline)) static int region_pool(interp_pool *p, long n, interp_msg **in,
                                                 interp_msg **out)
{
    return interp_pool_map(p, "dbl", (size_t)n, (const interp_msg *const *)in, out, NULL);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    if (n <= 0)
        return 2;
    interp_msg **in = malloc((size_t)n * sizeof *in);
    interp_msg **out = calloc((size_t)n, sizeof *out);
    interp_outcome *outs = calloc((size_t)n, sizeof *outs);
    if (!in || !out || !outs)
        return 1;
    for (long i = 0; i < n; i++)
        in[i] = interp_msg_int(i);

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_dostring(L, INIT);
    double t0 = interp__now(), c0 = cpu_now();
    long long acc = region_bare(L, n) + region_bare(L, n);
    double bare = (interp__now() - t0) / (2.0 * (double)n) * 1e9;
    double bare_cpu = (cpu_now() - c0) / (2.0 * (double)n) * 1e9;
    lua_close(L);
    if (acc != 2LL * n * (n - 1))
        abort();

    interp_config cfg = {.init_source = INIT};
    interp_shared *sh;
    interp_state *s;
    char *err = NULL;
    if (interp__shared_create(&cfg, &sh, &err) != INTERP_OK ||
        interp__state_create(sh, 0, &s, &err) != INTERP_OK) {
        fprintf(stderr, "state: %s\n", err ? err : "?");
        return 1;
    }
    double state = 0, state_cpu = 0;
    for (int r = 0; r < 2; r++) {
        t0 = interp__now();
        c0 = cpu_now();
        region_state(s, n, in, outs);
        state += interp__now() - t0;
        state_cpu += cpu_now() - c0;
        for (long i = 0; i < n; i++) {
            if (outs[i].status != INTERP_OK)
                abort();
            interp__outcome_clear(&outs[i]);
        }
    }
    state = state / (2.0 * (double)n) * 1e9;
    state_cpu = state_cpu / (2.0 * (double)n) * 1e9;
    long npacks = (n + PACK - 1) / PACK;
    interp_msg **packs = malloc((size_t)npacks * sizeof *packs);
    for (long k = 0; k < npacks; k++) {
        interp_msg_builder *b = interp_msg_builder_new();
        for (long i = k * PACK; i < n && i < (k + 1) * PACK; i++)
            interp_msg_add_int(b, i);
        if (!b || interp_msg_builder_finish(b, &packs[k]) != INTERP_OK)
            return 1;
    }
    double packed_cpu = 0;
    for (int r = 0; r < 2; r++) {
        c0 = cpu_now();
        region_packed(s, npacks, packs, outs);
        packed_cpu += cpu_now() - c0;
        for (long k = 0; k < npacks; k++) {
            if (outs[k].status != INTERP_OK || interp_msg_count(outs[k].result) !=
                                                   (uint32_t)(k + 1 < npacks ? PACK : n - k * PACK))
                abort();
            interp__outcome_clear(&outs[k]);
        }
    }
    packed_cpu = packed_cpu / (2.0 * (double)n) * 1e9;
    for (long k = 0; k < npacks; k++)
        interp_msg_free(packs[k]);
    free(packs);
    interp__state_destroy(s);
    interp__shared_destroy(sh);

    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = INIT;
    interp_pool *p;
    if (interp_pool_create(&p, &o, &err) != INTERP_OK) {
        fprintf(stderr, "pool: %s\n", err ? err : "?");
        return 1;
    }
    double pool = 0;
    for (int r = 0; r < 2; r++) {
        t0 = interp__now();
        if (region_pool(p, n, in, out) != INTERP_OK)
            abort();
        pool += interp__now() - t0;
        for (long i = 0; i < n; i++)
            interp_msg_free(out[i]);
    }
    pool = pool / (2.0 * (double)n) * 1e9;
    interp_pool_destroy(p);

    printf("per item over %ld items: bare pcall %.1f ns (cpu %.1f), interp__state_map %.1f ns "
           "(cpu %.1f), interp__state_map_packed (packs of %d) cpu %.1f ns, interp_pool_map (1 "
           "worker) %.1f ns\n",
           n, bare, bare_cpu, state, state_cpu, PACK, packed_cpu, pool);
    for (long i = 0; i < n; i++)
        interp_msg_free(in[i]);
    free(in);
    free(out);
    free(outs);
    return 0;
}
