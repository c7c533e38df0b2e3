/* bench_lib.c - the interruptible library functions (interp/lib_string.c, lib_sort.c) against
 * Lua's own on ordinary inputs: the same Lua loops run in a plain lua_State (Lua's functions)
 * and in a worker state of the full profile (ours), interleaved over several rounds; the
 * figure is the ratio of the best thread CPU times (ours / Lua's; target <= 1.10).
 *
 * Then the CPU a demoted abandoned thread still takes: a pool of 2 workers runs a CPU-bound
 * map alone, then with 2 abandoned threads (stuck in a quadratic rehash, demoted to
 * SCHED_IDLE) beside it; printed: the map's throughput both times and the CPU time the
 * abandoned threads got meanwhile (from /proc/self/task). */
#include <dirent.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "interp.h"
#include "interp_impl.h"
#include "interp_one_step.h"
#include "interp_pool.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct workload {
    const char *name;
    const char *src; /* a chunk run as is; it loops itself */
} workload;

static const workload loads[] = {
    {"find plain", "local s = ('lorem ipsum dolor sit amet '):rep(40) .. 'needle' local n = 0 "
                   "for i = 1, 400000 do n = n + s:find('needle', 1, true) end"},
    {"find pattern", "local s = 'key_42 = some value here' local n = 0 "
                     "for i = 1, 200000 do n = n + s:find('%d+') end"},
    {"match captures", "local s = 'name=value; other=thing' "
                       "for i = 1, 200000 do local k, v = s:match('^(%w+)=(%w+)') end"},
    {"match trim", "local s = '   some text with spaces   ' "
                   "for i = 1, 200000 do local t = s:match('^%s*(.-)%s*$') end"},
    {"gmatch words", "local s = ('the quick brown fox jumps over the lazy dog '):rep(10) "
                     "for i = 1, 5000 do for w in s:gmatch('%a+') do end end"},
    {"gsub string", "local s = ('hello world, '):rep(20) "
                    "for i = 1, 20000 do local r = s:gsub('o', '0') end"},
    {"gsub function", "local s = ('a1b22c333 '):rep(10) local f = function(d) return #d end "
                      "for i = 1, 20000 do local r = s:gsub('%d+', f) end"},
    {"rep", "for i = 1, 100000 do local r = ('ab'):rep(50, ',') end"},
    {"sort numbers", "local seed = 1 for r = 1, 20 do local t = {} for i = 1, 10000 do "
                     "seed = (seed * 1103515245 + 12345) % 2147483648 t[i] = seed end "
                     "table.sort(t) end"},
    {"sort strings", "local seed = 1 for r = 1, 10 do local t = {} for i = 1, 10000 do "
                     "seed = (seed * 1103515245 + 12345) % 2147483648 t[i] = tostring(seed) end "
                     "table.sort(t) end"},
    {"sort comparator", "local seed = 1 local gt = function(a, b) return a > b end "
                        "for r = 1, 10 do local t = {} for i = 1, 10000 do "
                        "seed = (seed * 1103515245 + 12345) % 2147483648 t[i] = seed end "
                        "table.sort(t, gt) end"},
};

/* CPU time of this thread: on a loaded machine, wall time mostly measures the others. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double run_once(lua_State *L, const char *src)
{
    if (luaL_loadstring(L, src) != LUA_OK) {
        fprintf(stderr, "load: %s\n", lua_tostring(L, -1));
        exit(1);
    }
    double t0 = cpu_now();
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "run: %s\n", lua_tostring(L, -1));
        exit(1);
    }
    return cpu_now() - t0;
}

static void library_costs(int rounds)
{
    lua_State *plain = luaL_newstate();
    luaL_openlibs(plain);
    interp_config cfg = {.sandbox = INTERP_SANDBOX_NONE};
    interp_shared *sh = NULL;
    interp_state *s = NULL;
    char *err = NULL;
    if (interp__shared_create(&cfg, &sh, &err) != INTERP_OK ||
        interp__state_create(sh, 0, &s, &err) != INTERP_OK) {
        fprintf(stderr, "state: %s\n", err ? err : "");
        exit(1);
    }
    lua_State *ours = interp__state_lua(s);
    printf("%-16s %10s %10s %7s   (best of %d interleaved rounds; shared 2-core machine)\n",
           "workload", "lua cpu ms", "interp ms", "ratio", rounds);
    double worst = 0, sum = 0;
    size_t n = sizeof loads / sizeof loads[0];
    for (size_t i = 0; i < n; i++) {
        double bl = 1e9, bo = 1e9;
        for (int r = 0; r < rounds; r++) {
            double a = run_once(plain, loads[i].src);
            double b = run_once(ours, loads[i].src);
            if (a < bl)
                bl = a;
            if (b < bo)
                bo = b;
        }
        double ratio = bo / bl;
        if (ratio > worst)
            worst = ratio;
        sum += ratio;
        printf("%-16s %10.2f %10.2f %7.3f\n", loads[i].name, bl * 1e3, bo * 1e3, ratio);
    }
    printf("ratio: mean %.3f, worst %.3f (target <= 1.10)\n", sum / (double)n, worst);
    interp__state_destroy(s);
    interp__shared_destroy(sh);
    lua_close(plain);
}

/* CPU seconds of the pool's abandoned threads (named "<prefix>-ab"). */
static double abandoned_cpu(const char *prefix)
{
    char want[32];
    snprintf(want, sizeof want, "%s-ab", prefix);
    DIR *d = opendir("/proc/self/task");
    double total = 0;
    struct dirent *de;
    long hz = sysconf(_SC_CLK_TCK);
    while (d && (de = readdir(d)) != NULL) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || (size_t)(close - open - 1) != strlen(want) ||
            strncmp(open + 1, want, strlen(want)) != 0)
            continue;
        unsigned long ut = 0, st = 0;
        /* fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime */
        if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            total += (double)(ut + st) / (double)hz;
    }
    if (d)
        closedir(d);
    return total;
}

static double map_rate(interp_pool *p, double seconds)
{
    interp_fn fn = {.kind = INTERP_FN_SOURCE,
                    .text = "local x = 0 for i = 1, 200000 do x = x + i % 7 end return x"};
    double t0 = now();
    long done = 0;
    while (now() - t0 < seconds) {
        interp_future *f[32]; /* a batch keeps both workers busy but for its last tasks */
        for (int i = 0; i < 32; i++) {
            interp_task t = {.fn = fn};
            if (interp_pool_submit_task(p, &t, INTERP_FOREVER, &f[i]) != INTERP_OK)
                exit(1);
        }
        for (int i = 0; i < 32; i++) {
            interp_future_result(f[i], INTERP_FOREVER, NULL);
            interp_future_release(f[i]);
        }
        done += 32;
    }
    return (double)done / (now() - t0);
}

static void demoted_share(void)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.prestart = true;
    o.sandbox = INTERP_SANDBOX_SAFE;
    o.memory_limit = (size_t)64 << 20;
    o.task_timeout = 0.3;
    o.stuck_grace = 0.3;
    o.thread_name = "blib";
    interp_pool *p = NULL;
    if (interp_pool_create(&p, &o, NULL) != INTERP_OK)
        exit(1);
    double alone = map_rate(p, 3.0);
    /* two rehashes of 2^17 colliding keys: minutes of C work no hook reaches */
    interp_fn attack = {.kind = INTERP_FN_SOURCE,
                        .text = "local P = 17 local m = 2^(P + 1) - 1 local t = {} "
                                "for j = 1, 2^P do t[j * m] = true end t[-1] = true"};
    for (int i = 0; i < 2; i++) {
        interp_task t = {.fn = attack};
        interp_future *f = NULL;
        interp_pool_submit_task(p, &t, INTERP_FOREVER, &f);
        interp_future_result(f, INTERP_FOREVER, NULL);
        interp_future_release(f);
    }
    interp_pool_stats st;
    interp_pool_get_stats(p, &st);
    double cpu0 = abandoned_cpu("blib");
    double t0 = now();
    double beside = map_rate(p, 3.0);
    double wall = now() - t0;
    double cpu = abandoned_cpu("blib") - cpu0;
    printf("map on 2 busy workers: %.1f tasks/s alone, %.1f tasks/s beside %d demoted "
           "abandoned threads (%.3f); those threads got %.3f CPU s in %.2f s (%.1f%% of one "
           "core)\n",
           alone, beside, st.abandoned_running, beside / alone, cpu, wall, 100.0 * cpu / wall);
    interp_pool_destroy(p); /* the abandoned threads end with the process */
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    library_costs(rounds > 0 ? rounds : 5);
    demoted_share();
    return 0;
}
