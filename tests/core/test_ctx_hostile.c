/* test_ctx_hostile.c - a sandboxed tenant against contexts and parking: what can a plugin's
 * script make the host do, hold or wait for? Each test is one attack and asserts its bound;
 * each also shows the attacked context (or its neighbour) goes on. Ordering through
 * channels and futures, never timings; time bounds only as generous ceilings. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctx_util.h"

/* Run src in c; its status; the first line of its error text in why ("" on success). */
static int exec_why(interp_ctx *c, const char *src, char *why, size_t n)
{
    interp_future *f = NULL;
    assert_int_equal(interp_ctx_exec(c, src, 0, &f), INTERP_OK);
    int rc = interp_future_result(f, 120, NULL);
    const char *e = rc == INTERP_OK ? "" : interp_future_error(f);
    snprintf(why, n, "%.*s", (int)strcspn(e ? e : "", "\n"), e ? e : "");
    interp_future_release(f);
    return rc;
}

static interp_ctx *plugin(interp_pool *p, const char *name, double timeout, size_t limit,
                          const char *init)
{
    interp_ctx_options o = {.name = name,
                            .sandbox = INTERP_SANDBOX_SAFE,
                            .timeout = timeout,
                            .memory_limit = limit,
                            .init_source = init ? init : "x = 0"};
    interp_ctx *c = NULL;
    char *err = NULL;
    int rc = interp_ctx_create(p, &o, &c, &err);
    if (rc != INTERP_OK)
        fprintf(stderr, "plugin create: %s\n", err ? err : "");
    free(err);
    assert_int_equal(rc, INTERP_OK);
    return c;
}

/* ---- a granted privileged context is an API, not a shell ------------------------------- */

/* A plugin granted the host's full-profile "engine" context may call the engine's own Lua
 * functions; it cannot make the engine run code of its choosing (exec, a source chunk) nor
 * call the engine's C functions by name (load, dofile, require, collectgarbage, print, ...),
 * which would run with the engine's privileges. */
static void test_no_code_into_a_granted_context(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *engine = ctx_new(p, "engine", INTERP_SANDBOX_NONE,
                                 "hits = 0 function api(k) hits = hits + k return hits end");
    interp_ctx *pl = plugin(p, "plugin", 0, 0, NULL);
    assert_int_equal(interp_ctx_grant_context(pl, "engine", engine), INTERP_OK);
    char why[512];
    /* exec of source in the engine */
    assert_int_equal(exec_why(pl,
                              "return interp.context('engine'):exec("
                              "  'hits = 1000 return os.getenv(\"HOME\")'):result()",
                              why, sizeof why),
                     INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "sandbox"));
    /* the engine's C functions by name: none runs */
    int64_t r = 0;
    assert_int_equal(run_in(pl,
                            "local e = interp.context('engine')\n"
                            "local n = 0\n"
                            "for _, f in ipairs{'load', 'dofile', 'loadfile', 'require', "
                            "    'collectgarbage', 'print', 'rawset', 'setmetatable', 'error', "
                            "    'pcall', 'select', 'tostring', 'next'} do\n"
                            "  local ok, e = pcall(function() return e:call(f, 'x'):result() end)\n"
                            "  if not ok and tostring(e):find('not a Lua function') then n = n + 1 "
                            "  end\n"
                            "  ok, e = pcall(e.post, e, f, 'stop')\n"
                            "end\n"
                            "return n",
                            &r),
                     INTERP_OK);
    assert_int_equal(r, 13);
    /* the engine's own Lua API works, and nothing above ran there */
    assert_int_equal(run_int(pl, "return interp.context('engine'):call('api', 2):result()"), 2);
    assert_int_equal(run_int(engine, "return collectgarbage('isrunning') and hits or -5"), 2);
    interp_ctx_close(pl);
    interp_ctx_close(engine);
    interp_pool_destroy(p);
}

/* ---- holding a thread where the call cannot yield ------------------------------------- */

/* A sandboxed call without a deadline, asked to yield its thread at the end of its time
 * slice (other work waits), runs where it cannot yield: a loop or a wait inside a coroutine it
 * made, a string.gsub callback, a sort comparator, a __tostring called by tostring. On a
 * one-thread pool that would keep every other context from running for good; the call is
 * failed (INTERP_ERR_TIMEOUT) once it has held the thread a bounded time past the request,
 * the neighbour's call runs, and the plugin goes on. */
static void test_no_hold_where_it_cannot_yield(void **state)
{
    (void)state;
    static const char *const attacks[] = {
        "coroutine.wrap(function() while true do end end)()",
        "string.gsub('abc', '.', function() while true do end end)",
        "coroutine.wrap(function() interp.sleep(1e9) end)()",
        "table.sort({3, 2, 1}, function(a, b) interp.channel('never'):recv() return a < b end)",
        "tostring(setmetatable({}, {__tostring = function() interp.sleep(1e9) return '' end}))",
        "coroutine.wrap(function() interp.channel('never'):recv() end)()",
    };
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *pl = plugin(p, "plugin", 0, 0, NULL); /* no deadline: the pool has none */
    interp_ctx *nb = ctx_new(p, "neighbour", INTERP_SANDBOX_NONE, NULL);
    interp_chan *started = NULL, *never = NULL;
    assert_int_equal(interp_pool_channel(p, "started", 0, &started), INTERP_OK);
    assert_int_equal(interp_chan_create(1, 0, &never), INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel(pl, "started", started), INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel(pl, "never", never), INTERP_OK);
    for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++) {
        char src[512];
        snprintf(src, sizeof src, "interp.channel('started'):send(true) %s", attacks[i]);
        interp_future *held = NULL, *other = NULL;
        assert_int_equal(interp_ctx_exec(pl, src, 0, &held), INTERP_OK);
        util_recv(p, "started"); /* it runs: the neighbour's call waits behind it */
        assert_int_equal(interp_ctx_call(nb, "inc", NULL, &other), INTERP_OK);
        if (interp_future_wait(other, 60) != INTERP_OK)
            fail_msg("attack %zu held the only thread: %s", i, attacks[i]);
        assert_int_equal(interp_future_status(other), INTERP_OK);
        assert_int_equal(interp_future_wait(held, 60), INTERP_OK);
        assert_int_equal(interp_future_status(held), INTERP_ERR_TIMEOUT);
        interp_future_release(held);
        interp_future_release(other);
        assert_int_equal(run_int(pl, "x = x + 1 return x"), (int64_t)i + 1); /* it goes on */
    }
    interp_chan_release(started);
    interp_chan_release(never);
    interp_ctx_close(pl);
    interp_ctx_close(nb);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_code_into_a_granted_context),
        cmocka_unit_test(test_no_hold_where_it_cannot_yield),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
