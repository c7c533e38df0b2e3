/* bench_interp.c - figures of one interpreter state (interp/): creation, idle memory, the cost
 * of a task through interp__state_call and interp__state_map against a bare lua_pcall, the cost
 * of running under a deadline that never fires, how fast a cancel stops a loop, and the cost of
 * a call from Lua to a host C function inside a task against a bare lua_State.
 * Run: build/rel/bench/bench_interp (Release build). Prints one line per figure. */
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "interp_impl.h"
#include "interp_one_step.h"
#include "interp_pool.h"

static interp_state *make(interp_shared *sh)
{
    interp_state *s;
    char *err;
    if (interp__state_create(sh, 0, &s, &err) != INTERP_OK) {
        fprintf(stderr, "state: %s\n", err);
        exit(1);
    }
    return s;
}

static interp_shared *shared(interp_sandbox sb, const char *init)
{
    interp_config cfg = {.sandbox = sb, .init_source = init};
    interp_shared *sh;
    char *err;
    if (interp__shared_create(&cfg, &sh, &err) != INTERP_OK) {
        fprintf(stderr, "shared: %s\n", err);
        exit(1);
    }
    return sh;
}

static const char *INIT = "function id(x) return x end\nfunction dbl(x) return x * 2 end\n"
                          "function spin(n) local s = 0 for i = 1, n do s = s + i end return s end";

static void bench_create(void)
{
    for (int sb = 0; sb <= 1; sb++) {
        interp_shared *sh = shared((interp_sandbox)sb, INIT);
        enum { N = 300 };
        double t0 = interp__now();
        for (int i = 0; i < N; i++)
            interp__state_destroy(make(sh));
        double per = (interp__now() - t0) / N;
        interp_state *s = make(sh);
        lua_gc(interp__state_lua(s), LUA_GCCOLLECT);
        size_t used;
        interp__state_memory(s, &used, NULL);
        printf("state create+destroy (%s, libs + init chunk from bytecode): %.1f us; "
               "idle state memory: %.1f KiB\n",
               sb ? "sandbox" : "full", per * 1e6, used / 1024.0);
        interp__state_destroy(s);
        interp__shared_destroy(sh);
    }
}

static double bare_call_ns(int n)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_dostring(L, INIT);
    double t0 = interp__now();
    lua_Integer acc = 0;
    for (int i = 0; i < n; i++) {
        lua_getglobal(L, "dbl");
        lua_pushinteger(L, i);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK)
            abort();
        acc += lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    double ns = (interp__now() - t0) / n * 1e9;
    lua_close(L);
    if (acc == 42)
        puts("");
    return ns;
}

static void bench_call_and_map(void)
{
    enum { N = 1000000 };
    double bare = bare_call_ns(N);
    printf("bare lua_getglobal + lua_pcall of dbl(x) on a plain state: %.1f ns/call\n", bare);
    for (int sb = 0; sb <= 1; sb++) {
        interp_shared *sh = shared((interp_sandbox)sb, INIT);
        interp_state *s = make(sh);
        interp_msg *arg = interp_msg_int(21);
        interp_fn fn = {.kind = INTERP_FN_NAME, .text = "dbl"};
        interp_outcome o;
        enum { C = 300000 };
        double t0 = interp__now();
        for (int i = 0; i < C; i++) {
            interp__state_call(s, i + 1, &fn, arg, &o);
            interp__outcome_clear(&o);
        }
        double call = (interp__now() - t0) / C * 1e9;
        interp_fn src = {.kind = INTERP_FN_SOURCE, .text = "local x = ... return x * 2"};
        t0 = interp__now();
        for (int i = 0; i < C; i++) {
            interp__state_call(s, C + i + 1, &src, arg, &o);
            interp__outcome_clear(&o);
        }
        double callsrc = (interp__now() - t0) / C * 1e9;
        printf("%s: interp__state_call by name (decode + call + encode + outcome): %.1f ns; "
               "by source chunk: %.1f ns\n",
               sb ? "sandbox" : "full", call, callsrc);

        interp_msg **in = malloc(sizeof *in * N);
        interp_outcome *out = calloc(N, sizeof *out);
        for (int i = 0; i < N; i++)
            in[i] = interp_msg_int(i);
        enum { CH = 1000 }; /* in chunks of 1000, as a pool's map would; fresh heap */
        double t0c = interp__now();
        for (int c = 0; c < N / CH; c++)
            interp__state_map(s, 10000000 + c, &fn, CH, (const interp_msg *const *)in + c * CH,
                              out + c * CH);
        double mapch = (interp__now() - t0c) / N * 1e9;
        for (int i = 0; i < N; i++)
            interp__outcome_clear(&out[i]);
        t0 = interp__now(); /* the same again: the heap now has room for 10^6 results */
        interp__state_map(s, 9999999, &fn, N, (const interp_msg *const *)in, out);
        double map = (interp__now() - t0) / N * 1e9;
        for (int i = 0; i < N; i++) {
            interp__outcome_clear(&out[i]);
            interp_msg_free(in[i]);
        }
        printf("%s: interp__state_map of dbl over 10^6 ints: %.1f ns/item in chunks of %d "
               "(results malloc'd on a fresh heap), %.1f ns/item in one batch on a warm heap "
               "(bare pcall loop: %.1f ns)\n",
               sb ? "sandbox" : "full", mapch, CH, map, bare);
        free(in);
        free(out);
        interp_msg_free(arg);
        interp__state_destroy(s);
        interp__shared_destroy(sh);
    }
}

/* ---- deadline that never fires --------------------------------------------------------- */

typedef struct watch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
} watch;

static void *watch_main(void *p)
{
    watch *w = p;
    struct timespec far = interp__deadline_in(3600);
    interp__mutex_lock(&w->mu);
    while (!w->stop && interp__cond_wait_until(&w->cv, &w->mu, &far)) {
    }
    interp__mutex_unlock(&w->mu);
    return NULL;
}

static double spin_time(interp_state *s, uint64_t task)
{
    interp_msg *n = interp_msg_int(20000000);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "spin"};
    interp_outcome o;
    double t0 = interp__now();
    interp__state_call(s, task, &fn, n, &o);
    double t = interp__now() - t0;
    interp__outcome_clear(&o);
    interp_msg_free(n);
    return t;
}

static void bench_deadline(void)
{
    interp_shared *sh = shared(INTERP_SANDBOX_NONE, INIT);
    interp_state *s = make(sh);
    double none = 1e9, armed = 1e9;
    for (int r = 0; r < 3; r++) {
        double t = spin_time(s, 100 + r);
        if (t < none)
            none = t;
        watch w = {.stop = false};
        interp__mutex_init(&w.mu);
        interp__cond_init(&w.cv);
        pthread_t th;
        pthread_create(&th, NULL, watch_main, &w);
        t = spin_time(s, 200 + r);
        if (t < armed)
            armed = t;
        interp__mutex_lock(&w.mu);
        w.stop = true;
        interp__cond_signal(&w.cv);
        interp__mutex_unlock(&w.mu);
        pthread_join(th, NULL);
        interp__cond_destroy(&w.cv);
        interp__mutex_destroy(&w.mu);
    }
    printf("Lua loop of 2*10^7 additions: %.1f ms without a deadline, %.1f ms with a deadline "
           "that never fires (%+.1f%%; no hook is installed until a deadline fires)\n",
           none * 1e3, armed * 1e3, (armed / none - 1) * 100);
    interp__state_destroy(s);
    interp__shared_destroy(sh);
}

/* ---- through a pool: a deadline that never fires, one that fires under a user hook -------- */

static double pool_task(interp_pool *pool, const char *src, double timeout, int *status)
{
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}, .timeout = timeout};
    interp_future *f = NULL;
    double t0 = interp__now();
    if (interp_pool_submit_task(pool, &t, INTERP_FOREVER, &f) != INTERP_OK)
        exit(1);
    *status = interp_future_result(f, INTERP_FOREVER, NULL);
    double took = interp__now() - t0;
    interp_future_release(f);
    return took;
}

static void bench_pool_deadline(void)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    interp_pool *pool;
    char *err;
    if (interp_pool_create(&pool, &o, &err) != INTERP_OK)
        exit(1);
    const char *spin = "local s = 0 for i = 1, 2e7 do s = s + i end return s";
    double none = 1e9, armed = 1e9;
    int st;
    for (int r = 0; r < 5; r++) { /* interleaved, best of 5 each */
        double t = pool_task(pool, spin, -1, &st);
        none = t < none ? t : none;
        t = pool_task(pool, spin, 3600, &st);
        armed = t < armed ? t : armed;
    }
    printf("pool task, Lua loop of 2*10^7 additions: %.1f ms without a deadline, %.1f ms with a "
           "deadline that never fires (%+.1f%%, best of 5 each, interleaved)\n",
           none * 1e3, armed * 1e3, (armed / none - 1) * 100);
    static const char *const loops[] = {
        "debug.sethook(function() end, 'l') while true do end",
        "while true do debug.sethook() end",
        "coroutine.wrap(function() while true do debug.sethook() end end)()",
    };
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        double worst = 0, sum = 0;
        enum { N = 10 };
        for (int r = 0; r < N; r++) {
            double t = pool_task(pool, loops[i], 0.05, &st) - 0.05;
            if (st != INTERP_ERR_TIMEOUT)
                fprintf(stderr, "unexpected status %d\n", st);
            worst = t > worst ? t : worst;
            sum += t;
        }
        printf("deadline 50 ms, then stopped after (mean / max of %d): %.2f / %.2f ms: %s\n", N,
               sum / N * 1e3, worst * 1e3, loops[i]);
    }
    interp_pool_destroy(pool);
}

/* ---- coroutine switches against lua5.4's ------------------------------------------------- */

#define PINGPONG                                                                                   \
    "local n = 4000000 local co = coroutine.wrap(function() while true do "                        \
    "coroutine.yield() end end) local t0 = os.clock() for i = 1, n do co() end "                   \
    "return (os.clock() - t0) / n * 1e9"

static void bench_coroutines(void)
{
    interp_shared *sh = shared(INTERP_SANDBOX_NONE, NULL);
    interp_state *s = make(sh);
    double worker = 1e9, lua = 1e9;
    for (int r = 0; r < 5; r++) { /* interleaved, best of 5 each */
        interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = PINGPONG};
        interp_outcome o;
        interp__state_call(s, (uint64_t)r + 1, &fn, NULL, &o);
        double ns;
        if (o.status == INTERP_OK && interp_msg_unpack(o.result, "d", &ns) == INTERP_OK)
            worker = ns < worker ? ns : worker;
        interp__outcome_clear(&o);
        FILE *p = popen("lua5.4 -e 'print((function() " PINGPONG " end)())' 2>/dev/null", "r");
        if (p && fscanf(p, "%lf", &ns) == 1)
            lua = ns < lua ? ns : lua;
        if (p)
            pclose(p);
    }
    if (lua < 1e9)
        printf("coroutine.wrap ping-pong (resume + yield): %.1f ns in a worker, %.1f ns under "
               "lua5.4 (%+.1f%%, best of 5 each, interleaved)\n",
               worker, lua, (worker / lua - 1) * 100);
    else
        printf("coroutine.wrap ping-pong (resume + yield): %.1f ns in a worker (no lua5.4 found)\n",
               worker);
    interp__state_destroy(s);
    interp__shared_destroy(sh);
}

/* ---- cancel latency -------------------------------------------------------------------- */

typedef struct canceller {
    interp_state *s;
    uint64_t task;
    sem_t started;
    double fired;
} canceller;

static int l_started(lua_State *L)
{
    canceller *c = lua_touserdata(L, lua_upvalueindex(1));
    sem_post(&c->started);
    return 0;
}

static void *cancel_main(void *p)
{
    canceller *c = p;
    sem_wait(&c->started);
    for (volatile int i = 0; i < 20000; i++) { /* let the loop get going */
    }
    c->fired = interp__now();
    interp__state_interrupt(c->s, c->task, INTERP_ERR_CANCELLED);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_cancel(const char *label, const char *src)
{
    interp_shared *sh = shared(INTERP_SANDBOX_SAFE, NULL);
    interp_state *s = make(sh);
    enum { N = 100 };
    double lat[N];
    for (int i = 0; i < N; i++) {
        canceller c = {.s = s, .task = (uint64_t)i + 1};
        sem_init(&c.started, 0, 0);
        lua_State *L = interp__state_lua(s);
        lua_pushlightuserdata(L, &c);
        lua_pushcclosure(L, l_started, 1);
        lua_setglobal(L, "started");
        pthread_t th;
        pthread_create(&th, NULL, cancel_main, &c);
        interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = src};
        interp_outcome o;
        interp__state_call(s, c.task, &fn, NULL, &o);
        double end = interp__now();
        pthread_join(th, NULL);
        sem_destroy(&c.started);
        if (o.status != INTERP_ERR_CANCELLED)
            fprintf(stderr, "unexpected status %d\n", o.status);
        interp__outcome_clear(&o);
        lat[i] = end - c.fired;
    }
    qsort(lat, N, sizeof lat[0], cmp_double);
    printf("cancel -> call returns, %s: p50 %.1f us, max %.1f us (100 tries)\n", label,
           lat[N / 2] * 1e6, lat[N - 1] * 1e6);
    interp__state_destroy(s);
    interp__shared_destroy(sh);
}

/* ---- a call from Lua to a host C function ------------------------------------------------
 * The same loop calling a host library's C function, in a bare lua_State (the library opened
 * with luaL_requiref) and inside a task on a worker state (the library opened as a host
 * library), in both profiles. Two forms: the function read once into a local, and `h.add(s, i)`
 * looked up at every call (in the sandbox, `h` is read through the task's environment and the
 * library's read-only proxy). */

static int h_add(lua_State *L)
{
    lua_pushinteger(L, lua_tointeger(L, 1) + lua_tointeger(L, 2));
    return 1;
}

static int open_h(lua_State *L)
{
    static const luaL_Reg fns[] = {{"add", h_add}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

#define HOST_CALLS 4000000
static const char *const HOST_LOOPS[2] = {
    "local add, s = h.add, 0 for i = 1, 4000000 do s = add(s, i) end return s",
    "local s = 0 for i = 1, 4000000 do s = h.add(s, i) end return s",
};

static double bare_host_ns(const char *src)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "h", open_h, 1);
    lua_pop(L, 1);
    if (luaL_loadstring(L, src) != LUA_OK)
        abort();
    double t0 = interp__now();
    if (lua_pcall(L, 0, 1, 0) != LUA_OK ||
        lua_tointeger(L, -1) != (lua_Integer)HOST_CALLS * (HOST_CALLS + 1) / 2)
        abort();
    double ns = (interp__now() - t0) / HOST_CALLS * 1e9;
    lua_close(L);
    return ns;
}

static double task_host_ns(interp_state *s, uint64_t id, const char *src)
{
    interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = src};
    interp_outcome o;
    double t0 = interp__now();
    if (interp__state_call(s, id, &fn, NULL, &o) != INTERP_OK)
        abort();
    double ns = (interp__now() - t0) / HOST_CALLS * 1e9;
    interp__outcome_clear(&o);
    return ns;
}

static int cmp_ns(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_host_call(void)
{
    interp_host_lib lib = {.name = "h", .open = open_h, .sandbox = true};
    for (int form = 0; form < 2; form++) {
        for (int sb = 0; sb <= 1; sb++) {
            interp_config cfg = {
                .sandbox = (interp_sandbox)sb, .host_libs = &lib, .n_host_libs = 1};
            interp_shared *sh;
            char *err;
            if (interp__shared_create(&cfg, &sh, &err) != INTERP_OK) {
                fprintf(stderr, "shared: %s\n", err);
                exit(1);
            }
            interp_state *s = make(sh);
            /* interleaved runs, medians: the machine's load drifts alike for both */
            enum { R = 9 };
            double bare[R], task[R];
            for (int r = 0; r < R; r++) {
                bare[r] = bare_host_ns(HOST_LOOPS[form]);
                task[r] = task_host_ns(s, (uint64_t)r + 1, HOST_LOOPS[form]);
            }
            qsort(bare, R, sizeof *bare, cmp_ns);
            qsort(task, R, sizeof *task, cmp_ns);
            printf("host C function call, %s, %s: %.2f ns in a task vs %.2f ns in a bare "
                   "lua_State, ratio %.3f (fastest of %d; medians %.2f / %.2f: %.3f): %s "
                   "(target: within 10%%)\n",
                   form ? "h.add(s, i) looked up per call" : "through a local",
                   sb ? "sandbox" : "full", task[0], bare[0], task[0] / bare[0], R, task[R / 2],
                   bare[R / 2], task[R / 2] / bare[R / 2],
                   task[0] / bare[0] <= 1.10 ? "MET" : "MISSED");
            interp__state_destroy(s);
            interp__shared_destroy(sh);
        }
    }
}

int main(void)
{
    bench_create();
    bench_call_and_map();
    bench_host_call();
    bench_deadline();
    bench_pool_deadline();
    bench_coroutines();
    bench_cancel("plain `while true do end`", "started() while true do end");
    bench_cancel("pcall loop (ends after the default 10 ms grace)",
                 "started() while true do pcall(function() while true do end end) end");
    return 0;
}
