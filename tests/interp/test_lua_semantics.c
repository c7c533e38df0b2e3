/* test_lua_semantics.c - the differential test: every .lua file of tests/lua_semantics runs under
 * the stand-alone lua5.4 and inside a pool worker (full profile), and what it prints must be equal
 * byte for byte, apart from the deliberate differences named in `differences` below (README,
 * "Lua in a worker", lists them all).
 *
 * In the worker a script runs as lua5.4 runs it: its main chunk, loaded with the chunk name
 * "@<file>", is the task's function (copied as bytecode with its debug information), called
 * directly by the worker's protected call, so stack levels, error positions and tracebacks
 * read the same. Four runs per script, all on one worker:
 *   plain     no deadline;
 *   deadline  a deadline that never fires (an hour);
 *   late      the script, then a loop under a user hook (a different hook per script, some
 *             removing or replacing the pool's) that a deadline ends: the output before it
 *             must still be equal, the task must end timed out within the deadline + 1 s;
 *   again     plain once more: the worker serves the next task as before.
 * Scripts end without a top-level `return` (the late run appends its loop to the source). */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg_lua.h"
#include "interp_pool.h"

#ifndef LUA_SEM_DIR
#error "LUA_SEM_DIR: the folder of the scripts"
#endif
#ifndef LUA54_EXE
#error "LUA54_EXE: the stand-alone interpreter"
#endif

/* A deliberate difference: in `script`, lua5.4's output `lua54` reads `worker` in a worker. */
typedef struct difference {
    const char *name;
    const char *script;
    const char *lua54;
    const char *worker;
} difference;

static const difference differences[] = {
    {"the collector runs in incremental mode (lua5.4's stand-alone interpreter starts it in "
     "generational mode)",
     "gc_options.lua", "generational\tincremental\n", "incremental\tincremental\n"},
    {"no `arg` table (a task gets its arguments as ...)", "deliberate.lua", "arg\ttable\n",
     "arg\tnil\n"},
    {"the global `interp` module", "deliberate.lua", "interp\tnil\n", "interp\ttable\n"},
    {"os.exit raises instead of ending the process", "deliberate.lua", "exiting\n",
     "exiting\nos.exit\tfalse\tos.exit is not allowed in a worker (end the task with return or "
     "error instead)\n"},
};

/* Deadline of the late run (seconds): long enough for the script to finish first, from the
 * time its plain runs took on this machine now. */
#define LATE_DEADLINE(ran) (0.3 + 4 * (ran))
/* How long after that deadline a late run may end: 10x the slowest stop measured idle (0.2 s). */
#define LATE_MARGIN 2.0
/* The loops of the late run, one per script in turn. Each is appended after the script. */
static const char *const late_loops[] = {
    "debug.sethook(function() end, '', 1) while true do end",
    "debug.sethook(function() end, 'l') local n = 0 while true do n = n + 1 end",
    "debug.sethook(function() end, 'cr') while true do math.abs(1) end",
    "debug.sethook(function() end, 'crl', 7) while true do pcall(function() end) end",
    "while true do debug.sethook() end",
    "while true do debug.sethook(function() end, 'l') end",
    "while true do pcall(debug.sethook) pcall(function() while true do end end) end",
    "debug.sethook(function() end, 'c') while true do xpcall(function() while true do end end, "
    "function() while true do end end) end",
    "coroutine.wrap(function() debug.sethook(function() end, 'l') while true do "
    "debug.sethook() end end)()",
    "local co = coroutine.wrap(function() local x <close> = setmetatable({}, {__close = "
    "function() while true do end end}) table.sort({3, 2, 1}, function() while true do end "
    "end) end) debug.sethook(function() end, 'r') co()",
    "local gen = coroutine.wrap(function() while true do coroutine.yield(1) end end) "
    "debug.sethook(function() end, 'l') while true do gen() end",
};

typedef struct sink {
    pthread_mutex_t mu;
    char *buf;
    size_t len, cap;
} sink;

static void sink_add(sink *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        assert_non_null(s->buf);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void print_sink(void *ud, int worker_id, const char *line, size_t len)
{
    (void)worker_id;
    sink *s = ud;
    pthread_mutex_lock(&s->mu);
    sink_add(s, line, len);
    sink_add(s, "\n", 1);
    pthread_mutex_unlock(&s->mu);
}

static char *take(sink *s)
{
    pthread_mutex_lock(&s->mu);
    char *out = s->buf ? s->buf : calloc(1, 1);
    s->buf = NULL;
    s->len = s->cap = 0;
    pthread_mutex_unlock(&s->mu);
    return out;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    sink s = {.buf = NULL};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sink_add(&s, chunk, n);
    fclose(f);
    *len = s.len;
    return s.buf ? s.buf : calloc(1, 1);
}

/* What lua5.4 prints (stdout and stderr) running the script from the scripts' folder. */
static char *run_lua54(const char *name, int *status)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' '%s' 2>&1", LUA_SEM_DIR, LUA54_EXE, name);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    sink s = {.buf = NULL};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        sink_add(&s, chunk, n);
    *status = pclose(p);
    return s.buf ? s.buf : calloc(1, 1);
}

/* The script (plus `extra` after its last line) as a function message: its main chunk. */
static interp_msg *chunk_message(const char *name, const char *extra)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", LUA_SEM_DIR, name);
    size_t len;
    char *src = read_file(path, &len);
    if (extra) {
        size_t x = strlen(extra);
        src = realloc(src, len + x + 3);
        src[len++] = '\n';
        memcpy(src + len, extra, x);
        len += x;
        src[len] = '\0';
    }
    char chunkname[300];
    snprintf(chunkname, sizeof chunkname, "@%s", name);
    lua_State *L = luaL_newstate();
    if (luaL_loadbufferx(L, src, len, chunkname, "t") != LUA_OK)
        fail_msg("%s: %s", name, lua_tostring(L, -1));
    interp_msg_opts opts = {.allow_functions = true};
    interp_msg *m = NULL;
    interp_msg_error e;
    if (interp_msg_from_lua(L, -1, 1, &opts, &m, &e) != INTERP_OK)
        fail_msg("%s: cannot copy the chunk: %s", name, e.text);
    lua_close(L);
    free(src);
    return m;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the script in the pool; returns the status, *out what it printed, *took the seconds. */
static int run_worker(interp_pool *pool, sink *s, const char *name, const char *extra,
                      double timeout, char **out, char **err, double *took)
{
    interp_msg *m = chunk_message(name, extra);
    interp_task t = {.fn = {.kind = INTERP_FN_FUNCTION, .function = m}, .timeout = timeout};
    interp_future *f = NULL;
    double t0 = now_s();
    assert_int_equal(interp_pool_submit_task(pool, &t, INTERP_FOREVER, &f), INTERP_OK);
    int rc = interp_future_result(f, 60.0, NULL);
    *took = now_s() - t0;
    const char *e = interp_future_error(f);
    *err = strdup(e ? e : "");
    interp_future_release(f);
    interp_msg_free(m);
    *out = take(s);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The expected worker output: lua5.4's with the deliberate differences of this script. */
static char *expected(const char *name, const char *lua54)
{
    char *exp = strdup(lua54);
    for (size_t i = 0; i < sizeof differences / sizeof differences[0]; i++) {
        const difference *d = &differences[i];
        if (strcmp(d->script, name) != 0)
            continue;
        char *at = strstr(exp, d->lua54);
        if (!at)
            fail_msg("%s: the deliberate difference '%s' is gone: lua5.4 no longer prints "
                     "'%s'",
                     name, d->name, d->lua54);
        size_t pre = (size_t)(at - exp), ol = strlen(d->lua54), nl = strlen(d->worker);
        char *next = malloc(strlen(exp) - ol + nl + 1);
        memcpy(next, exp, pre);
        memcpy(next + pre, d->worker, nl);
        strcpy(next + pre + nl, at + ol);
        free(exp);
        exp = next;
    }
    return exp;
}

static int failures;

/* Report a difference (every script is run, so that one run shows them all). */
static void check_equal(const char *name, const char *run, const char *exp, const char *got, int rc,
                        const char *err)
{
    if (rc != INTERP_OK) {
        printf("FAIL %s (%s): the task failed (%d): %s\n", name, run, rc, err);
        failures++;
    } else if (strcmp(exp, got) != 0) {
        size_t i = 0;
        while (exp[i] && exp[i] == got[i])
            i++;
        size_t from = i;
        while (from > 0 && exp[from - 1] != '\n')
            from--;
        printf("FAIL %s (%s): output differs at byte %zu\n--- lua5.4: %.*s\n--- worker: %.*s\n",
               name, run, i, (int)strcspn(exp + from, "\n"), exp + from,
               (int)strcspn(got + from, "\n"), got + from);
        failures++;
    }
}

static void lua_semantics_equal_to_lua54(void **st)
{
    (void)st;
    if (!LUA54_EXE[0])
        skip(); /* no lua5.4 to compare with */
    unsetenv("LUA_INIT");
    unsetenv("LUA_INIT_5_4");
    DIR *dir = opendir(LUA_SEM_DIR);
    assert_non_null(dir);
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && n < 512) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".lua") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof names[0], by_name);
    assert_true(n >= 40);
    /* the scripts open files by relative path, as lua5.4 does from their folder */
    assert_int_equal(chdir(LUA_SEM_DIR), 0);

    sink s = {.buf = NULL};
    pthread_mutex_init(&s.mu, NULL);
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    /* lua5.4 runs on the process's 8 MiB main stack: recursion.lua's 200 levels of C calls fit
     * the default 1 MiB in a Release build, not under the sanitizers' larger frames */
    o.thread_stack_size = (size_t)8 << 20;
    /* the late loops fight the hook; stopping one takes up to ~0.2 s here when idle (bench_interp)
     * and more when the machine is busy: a worker is abandoned only if one is truly stuck (the
     * default 1 s abandoned one on a loaded machine) */
    o.stuck_grace = 10.0;
    o.print = print_sink;
    o.print_ud = &s;
    interp_pool *pool = NULL;
    char *perr = NULL;
    assert_int_equal(interp_pool_create(&pool, &o, &perr), INTERP_OK);

    double worst_late = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        if (getenv("INTERP_TEST_VERBOSE")) {
            printf("# %s\n", name);
            fflush(stdout);
        }
        int status;
        char *lua54 = run_lua54(name, &status);
        if (status != 0)
            fail_msg("%s: lua5.4 failed (%d):\n%s", name, status, lua54);
        char *exp = expected(name, lua54);
        char *got, *err;
        double took;
        int rc = run_worker(pool, &s, name, NULL, -1, &got, &err, &took);
        check_equal(name, "plain", exp, got, rc, err);
        free(got), free(err);
        double ran = took;
        rc = run_worker(pool, &s, name, NULL, 3600, &got, &err, &took);
        check_equal(name, "deadline", exp, got, rc, err);
        free(got), free(err);
        double late = LATE_DEADLINE(took > ran ? took : ran);
        const char *loop = late_loops[i % (sizeof late_loops / sizeof late_loops[0])];
        rc = run_worker(pool, &s, name, loop, late, &got, &err, &took);
        if (rc != INTERP_ERR_TIMEOUT) {
            printf("FAIL %s (late, loop '%s'): status %d, not timed out: %s\n", name, loop, rc,
                   err);
            failures++;
        }
        check_equal(name, "late", exp, got, INTERP_OK, err);
        if (took > late + LATE_MARGIN) {
            printf("FAIL %s (late, loop '%s'): ended %.3f s after submit\n", name, loop, took);
            failures++;
        }
        if (took - late > worst_late)
            worst_late = took - late;
        free(got), free(err);
        rc = run_worker(pool, &s, name, NULL, -1, &got, &err, &took);
        check_equal(name, "again", exp, got, rc, err);
        free(got), free(err);
        free(exp);
        free(lua54);
    }
    interp_pool_stats ps;
    assert_int_equal(interp_pool_get_stats(pool, &ps), INTERP_OK);
    printf("# %zu scripts equal to lua5.4 (%zu deliberate differences named); late runs ended "
           "at most %.1f ms after their deadline; abandoned workers: %llu\n",
           n, sizeof differences / sizeof differences[0], worst_late * 1e3,
           (unsigned long long)ps.workers_abandoned);
    assert_int_equal(ps.workers_abandoned, 0);
    assert_int_equal(failures, 0);
    interp_pool_destroy(pool);
    pthread_mutex_destroy(&s.mu);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lua_semantics_equal_to_lua54),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
