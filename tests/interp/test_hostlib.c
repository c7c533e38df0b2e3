/* test_hostlib.c - host libraries and on_state: the host's C functions in the full and the
 * safe profile (only the allowed ones there), in every state the pool makes (on demand, after
 * recycling, after a memory-limit replacement, after a stuck-worker replacement), on_state
 * failing in create and in a later state, bad lists refused, package paths, and the
 * documented pattern for host data (a light userdata in the registry and the host's lock)
 * with two workers calling at once (the TSan stage checks it). */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <lauxlib.h>

#include "pool_util.h"

/* ---- a host library: host.add, host.fail, host.block ------------------------------------ */

static int pipe_fds[2] = {-1, -1}; /* host.block reads one byte from pipe_fds[0] */
static atomic_int block_returned;  /* set (release) once host.block's read returned */

static int host_add(lua_State *L)
{
    lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
    return 1;
}

static int host_fail(lua_State *L) { return luaL_error(L, "host refuses"); }

/* A C call no hook reaches: blocks until the test writes to the pipe. */
static int host_block(lua_State *L)
{
    char c;
    bool got = read(pipe_fds[0], &c, 1) == 1;
    atomic_store_explicit(&block_returned, 1, memory_order_release);
    lua_pushboolean(L, got);
    return 1;
}

static int open_host(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"add", host_add}, {"fail", host_fail}, {"block", host_block}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

static int secret_get(lua_State *L)
{
    lua_pushliteral(L, "secret");
    return 1;
}

static int open_secret(lua_State *L)
{
    lua_pushcfunction(L, secret_get); /* a library may be a function, not a table */
    return 1;
}

static int open_broken(lua_State *L) { return luaL_error(L, "no engine here"); }

static const interp_host_lib LIBS[] = {
    {.name = "host", .open = open_host, .sandbox = true},
    {.name = "secret", .open = open_secret, .sandbox = false},
};

/* on_state counts the states made; fails once `fail_from` states were made (0: never). */
static atomic_int n_states;
static int fail_from;

static void count_states(lua_State *L, void *ud)
{
    if (ud != &n_states) /* no cmocka assert: this runs on worker threads too */
        luaL_error(L, "on_state got the wrong ud");
    int n = atomic_fetch_add(&n_states, 1) + 1;
    if (fail_from && n >= fail_from)
        luaL_error(L, "engine refused state %d", n);
    lua_pushinteger(L, n);
    lua_setglobal(L, "state_number");
}

static void with_libs(interp_pool_options *o)
{
    o->host_libs = LIBS;
    o->n_host_libs = 2;
    o->on_state = count_states;
    o->on_state_ud = &n_states;
}

static interp_pool *libs_pool(int workers, void (*more)(interp_pool_options *))
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.init_source = UTIL_INIT;
    with_libs(&o);
    if (more)
        more(&o);
    interp_pool *p = NULL;
    char *err = NULL;
    int rc = interp_pool_create(&p, &o, &err);
    if (rc != INTERP_OK)
        fprintf(stderr, "create: %s\n", err ? err : "");
    assert_int_equal(rc, INTERP_OK);
    assert_null(err);
    return p;
}

static void reset(void)
{
    atomic_store(&n_states, 0);
    fail_from = 0;
}

/* Run src; its first result is a string that must equal want. */
static void expect(interp_pool *p, const char *src, double timeout, const char *want)
{
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}, .timeout = timeout};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    const char *s = NULL;
    size_t len = 0;
    int rc = interp_future_resultf(f, INTERP_FOREVER, "s*", &s, &len);
    if (rc != INTERP_OK)
        fprintf(stderr, "task failed: %s\n", interp_future_error(f));
    assert_int_equal(rc, INTERP_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
    interp_future_release(f);
}

static interp_pool_stats stats(interp_pool *p)
{
    interp_pool_stats s;
    assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
    return s;
}

/* ---- profiles ---------------------------------------------------------------------------- */

static void hostlib_full_profile_sees_every_library(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(1, NULL);
    assert_int_equal(atomic_load(&n_states), 1);
    expect(p,
           "return string.format('%d %s %s %s %d', host.add(2, 3), secret(), "
           "tostring(require('host') == host), tostring(package.loaded.secret == secret), "
           "state_number)",
           0, "5 secret true true 1");
    /* a host function's error is the task's error */
    interp_future *f;
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = "return host.fail()"}};
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(interp_future_error(f), "host refuses"));
    interp_future_release(f);
    interp_pool_destroy(p);
}

static void safe(interp_pool_options *o)
{
    o->sandbox = INTERP_SANDBOX_SAFE;
    o->init_source = "function double(x) return 2 * x end";
}

static void hostlib_sandbox_sees_only_allowed(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(1, safe);
    expect(p,
           "local ok, err = pcall(require, 'secret')\n"
           "local ok2 = pcall(require, 'io')\n"
           "local ok3, err3 = pcall(function() host.add = nil end)\n"
           "return string.format('%d %s %s %s %s %s %s', host.add(1, 2), tostring(secret), "
           "tostring(require('host') == host), tostring(ok), tostring(ok2), tostring(ok3), "
           "tostring(package))",
           0, "3 nil true false false false nil");
    expect(p, "local ok, err = pcall(require, 'secret') return err", 0,
           "module 'secret' not found: the sandbox's require finds only the host libraries "
           "allowed in the sandbox");
    /* the read-only proxy holds for the next task: host.add is still there */
    expect(p, "pcall(rawset, host, 'add', nil) return tostring(host.add(1, 1))", 0, "2");
    interp_pool_destroy(p);
}

/* Without an allowed library, the sandbox keeps no require at all. */
static void only_secret(interp_pool_options *o)
{
    safe(o);
    o->host_libs = &LIBS[1];
    o->n_host_libs = 1;
}

static void hostlib_sandbox_without_allowed_has_no_require(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(1, only_secret);
    expect(p, "return tostring(require) .. ' ' .. tostring(secret)", 0, "nil nil");
    interp_pool_destroy(p);
}

/* The initializer runs after the libraries and on_state: it can use both, in each profile. */
static void init_uses_host(interp_pool_options *o)
{
    o->init_source = "base = host.add(state_number, 100)";
}

static void init_uses_host_safe(interp_pool_options *o)
{
    init_uses_host(o);
    o->sandbox = INTERP_SANDBOX_SAFE;
}

static void hostlib_initializer_sees_libraries(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(1, init_uses_host);
    expect(p, "return tostring(base)", 0, "101");
    interp_pool_destroy(p);
    reset();
    p = libs_pool(1, init_uses_host_safe);
    expect(p, "return tostring(base)", 0, "101");
    interp_pool_destroy(p);
}

/* ---- every state the pool makes --------------------------------------------------------- */

static void hostlib_in_workers_started_on_demand(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(2, NULL);
    assert_int_equal(stats(p).workers, 1);
    interp_future *busy;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &busy), INTERP_OK);
    util_recv(p, "started");
    /* the first worker is busy: this task starts the second, whose state has the library */
    expect(p, "return string.format('%d %d', host.add(40, 2), state_number)", 0, "42 2");
    assert_int_equal(stats(p).workers, 2);
    util_send(p, "go", 1);
    assert_int_equal(interp_future_result(busy, INTERP_FOREVER, NULL), INTERP_OK);
    interp_future_release(busy);
    interp_pool_destroy(p);
}

static void recycle_1(interp_pool_options *o) { o->max_tasks_per_worker = 1; }

static void hostlib_in_recycled_states(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(1, recycle_1);
    for (int i = 1; i <= 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d %d", i + 1, i);
        /* state_number says a fresh state ran it, host.add that it has the library */
        expect(p, "return string.format('%d %d', host.add(state_number, 1), state_number)", 0,
               want);
    }
    assert_true(stats(p).states_replaced >= 2);
    interp_pool_destroy(p);
}

static void limit_1mb(interp_pool_options *o) { o->memory_limit = 1 << 20; }

static void hostlib_after_memory_limit_replacement(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(1, limit_1mb);
    /* a global keeps what it got: the state cannot breathe after the error and is replaced */
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE,
                            .text = "big = {} for i = 1, 1e7 do big[i] = i .. 'xxxxxxxx' end"}};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_NOMEM);
    interp_future_release(f);
    expect(p, "return string.format('%s %d %d', tostring(big), host.add(1, 1), state_number)", 0,
           "nil 2 2");
    assert_int_equal(stats(p).states_replaced, 1);
    interp_pool_destroy(p);
}

static void short_stuck(interp_pool_options *o) { o->stuck_grace = 0.05; }

static void hostlib_after_stuck_worker_replacement(void **st)
{
    (void)st;
    reset();
    int threads_before = util_count_dir("/proc/self/task");
    assert_int_equal(pipe(pipe_fds), 0);
    interp_pool *p = libs_pool(1, short_stuck);
    /* host.block never returns by itself: past its deadline plus the stuck grace the worker
     * is abandoned and a replacement (a new state, with the library) takes its place */
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE,
                            .text = "interp.channel('started'):send(true) return host.block()"},
                     .timeout = 0.05};
    interp_future *stuck;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &stuck), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_future_result(stuck, INTERP_FOREVER, NULL), INTERP_ERR_TIMEOUT);
    assert_non_null(strstr(interp_future_error(stuck), "abandoned"));
    expect(p, "return string.format('%d %d', host.add(2, 2), state_number)", 0, "4 2");
    assert_int_equal(stats(p).workers_abandoned, 1);
    interp_future_release(stuck);
    interp_pool_destroy(p);
    /* unblock the abandoned call; its thread ends on its own. The pipe is closed only after
     * the read has returned (acquire: ordered after it, for TSan too). */
    assert_int_equal(write(pipe_fds[1], "x", 1), 1);
    for (double end = interp__now() + 30;
         !atomic_load_explicit(&block_returned, memory_order_acquire) && interp__now() < end;)
        sched_yield();
    assert_true(atomic_load_explicit(&block_returned, memory_order_acquire));
    int n = util_count_dir("/proc/self/task");
    for (double end = interp__now() + 30; n > threads_before && interp__now() < end;) {
        sched_yield();
        n = util_count_dir("/proc/self/task");
    }
    assert_int_equal(n, threads_before);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* ---- failures ----------------------------------------------------------------------------- */

static void hostlib_on_state_failure_fails_create(void **st)
{
    (void)st;
    reset();
    fail_from = 1;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.prestart = true;
    with_libs(&o);
    interp_pool *p = NULL;
    char *err = NULL;
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_SCRIPT);
    assert_null(p);
    assert_non_null(err);
    assert_non_null(strstr(err, "on_state failed: "));
    assert_non_null(strstr(err, "engine refused state"));
    free(err);

    /* a library whose open raises fails create with its name and text */
    interp_host_lib bad[] = {{.name = "engine", .open = open_broken}};
    o = interp_pool_defaults();
    o.workers = 1;
    o.host_libs = bad;
    o.n_host_libs = 1;
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(err, "host library 'engine' failed: no engine here"));
    free(err);
    /* in a sandbox where it is not allowed it is never opened: create succeeds */
    o.sandbox = INTERP_SANDBOX_SAFE;
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_OK);
    interp_pool_destroy(p);
}

static void hostlib_on_state_failure_breaks_pool_later(void **st)
{
    (void)st;
    reset();
    fail_from = 2; /* the first state is fine, the second (a worker started on demand) not */
    interp_pool *p = libs_pool(2, NULL);
    interp_future *busy, *f;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &busy), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(4), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_BROKEN);
    assert_non_null(strstr(interp_future_error(f), "pool is broken"));
    assert_non_null(strstr(interp_future_error(f), "engine refused state 2"));
    interp_future_release(f);
    interp_msg *a = interp_msg_int(5);
    assert_int_equal(interp_pool_submit(p, "double", a, &f), INTERP_ERR_BROKEN);
    interp_msg_free(a);
    /* the task that was running ends normally */
    util_send(p, "go", 1);
    assert_int_equal(interp_future_result(busy, INTERP_FOREVER, NULL), INTERP_OK);
    interp_future_release(busy);
    interp_pool_destroy(p);

    /* the same for a recycled state: the task queued behind the recycle ends broken */
    reset();
    fail_from = 2;
    p = libs_pool(1, recycle_1);
    interp_future *g;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &busy), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(4), &g), INTERP_OK);
    util_send(p, "go", 1);
    assert_int_equal(interp_future_result(busy, INTERP_FOREVER, NULL), INTERP_OK);
    assert_int_equal(interp_future_result(g, INTERP_FOREVER, NULL), INTERP_ERR_BROKEN);
    assert_non_null(strstr(interp_future_error(g), "engine refused state 2"));
    interp_future_release(busy);
    interp_future_release(g);
    interp_pool_destroy(p);
}

static void expect_invalid(const interp_host_lib *libs, size_t n, const char *why)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.host_libs = libs;
    o.n_host_libs = n;
    interp_pool *p = NULL;
    char *err = NULL;
    int rc = interp_pool_create(&p, &o, &err);
    assert_true(rc == INTERP_ERR_INVALID || rc == INTERP_ERR_SCRIPT);
    assert_null(p);
    assert_non_null(err);
    if (!strstr(err, why))
        fprintf(stderr, "got: %s\n", err);
    assert_non_null(strstr(err, why));
    free(err);
}

static void hostlib_bad_lists_refused(void **st)
{
    (void)st;
    reset();
    interp_host_lib no_name[] = {{.name = NULL, .open = open_host}};
    expect_invalid(no_name, 1, "the name must be 1..64 bytes");
    interp_host_lib empty[] = {{.name = "", .open = open_host}};
    expect_invalid(empty, 1, "the name must be 1..64 bytes");
    char longname[80];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    interp_host_lib too_long[] = {{.name = longname, .open = open_host}};
    expect_invalid(too_long, 1, "the name must be 1..64 bytes");
    interp_host_lib no_open[] = {{.name = "host"}};
    expect_invalid(no_open, 1, "host library 'host' has no open function");
    interp_host_lib twice[] = {{.name = "host", .open = open_host},
                               {.name = "host", .open = open_secret}};
    expect_invalid(twice, 2, "host library 'host' is given twice");
    interp_host_lib clash[] = {{.name = "string", .open = open_host}};
    expect_invalid(clash, 1, "host library 'string': the state already has a global");
    expect_invalid(NULL, 1, "host_libs is NULL");
    expect_invalid(LIBS, 257, "at most 256 host libraries");
}

static void paths(interp_pool_options *o)
{
    o->package_path = "/nowhere/?.lua";
    o->package_cpath = "/nowhere/?.so";
}

static void hostlib_package_paths(void **st)
{
    (void)st;
    reset();
    interp_pool *p = libs_pool(1, paths);
    expect(p, "return package.path .. ' ' .. package.cpath", 0, "/nowhere/?.lua /nowhere/?.so");
    interp_pool_destroy(p);
}

/* ---- the documented pattern: a light userdata in the registry and the host's lock ------ */

typedef struct engine {
    pthread_mutex_t mu;
    long total; /* guarded by mu */
} engine;

static const char engine_key = 0; /* registry key: the engine (light userdata) */

static engine *engine_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &engine_key);
    engine *e = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!e)
        luaL_error(L, "no engine in this state");
    return e;
}

static int engine_bump(lua_State *L)
{
    engine *e = engine_of(L);
    lua_Integer by = luaL_optinteger(L, 1, 1);
    pthread_mutex_lock(&e->mu);
    e->total += (long)by;
    long now = e->total;
    pthread_mutex_unlock(&e->mu);
    lua_pushinteger(L, now);
    return 1;
}

static int engine_total(lua_State *L)
{
    engine *e = engine_of(L);
    pthread_mutex_lock(&e->mu);
    long now = e->total;
    pthread_mutex_unlock(&e->mu);
    lua_pushinteger(L, now);
    return 1;
}

static int open_engine(lua_State *L)
{
    static const luaL_Reg fns[] = {{"bump", engine_bump}, {"total", engine_total}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

static void put_engine(lua_State *L, void *ud)
{
    lua_pushlightuserdata(L, ud);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &engine_key);
}

static void hostlib_two_workers_share_host_data_under_its_lock(void **st)
{
    (void)st;
    engine e = {.total = 0};
    pthread_mutex_init(&e.mu, NULL);
    interp_host_lib libs[] = {{.name = "engine", .open = open_engine, .sandbox = true}};
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.prestart = true;
    o.host_libs = libs;
    o.n_host_libs = 1;
    o.on_state = put_engine;
    o.on_state_ud = &e;
    o.sandbox = INTERP_SANDBOX_SAFE; /* the same functions serve untrusted code */
    interp_pool *p;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    /* both tasks are running before either starts calling: the calls overlap */
    static const char *src = "interp.channel('started'):send(true)\n"
                             "interp.channel('go'):recv()\n"
                             "for i = 1, 20000 do engine.bump() end\n"
                             "return engine.total()";
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}};
    interp_future *f[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f[i]), INTERP_OK);
    util_recv(p, "started");
    util_recv(p, "started");
    util_send(p, "go", 2);
    for (int i = 0; i < 2; i++) {
        int64_t seen = 0;
        assert_int_equal(interp_future_resultf(f[i], INTERP_FOREVER, "I", &seen), INTERP_OK);
        assert_true(seen >= 20000 && seen <= 40000);
        interp_future_release(f[i]);
    }
    interp_pool_destroy(p);
    assert_int_equal(e.total, 40000);
    pthread_mutex_destroy(&e.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostlib_full_profile_sees_every_library),
        cmocka_unit_test(hostlib_sandbox_sees_only_allowed),
        cmocka_unit_test(hostlib_sandbox_without_allowed_has_no_require),
        cmocka_unit_test(hostlib_initializer_sees_libraries),
        cmocka_unit_test(hostlib_in_workers_started_on_demand),
        cmocka_unit_test(hostlib_in_recycled_states),
        cmocka_unit_test(hostlib_after_memory_limit_replacement),
        cmocka_unit_test(hostlib_after_stuck_worker_replacement),
        cmocka_unit_test(hostlib_on_state_failure_fails_create),
        cmocka_unit_test(hostlib_on_state_failure_breaks_pool_later),
        cmocka_unit_test(hostlib_bad_lists_refused),
        cmocka_unit_test(hostlib_package_paths),
        cmocka_unit_test(hostlib_two_workers_share_host_data_under_its_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
