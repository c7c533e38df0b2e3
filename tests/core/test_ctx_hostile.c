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
    return ctx_create_ok(p, &o);
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

/* A call that blocks (a wait inside its own coroutine) right after calling an idle context:
 * its worker keeps that context to run next, and the preempt tick hands it to the queue;
 * another worker, started on demand if none is started yet, must run it, or the caller
 * (full profile, no deadline: nothing else ends it) waits for good. */
static void test_blocked_caller_does_not_strand_its_callee(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL); /* one worker started; the other on demand */
    interp_ctx *a = ctx_new(p, "A", INTERP_SANDBOX_NONE, NULL);
    interp_ctx *b = ctx_new(p, "B", INTERP_SANDBOX_NONE, NULL);
    interp_future *f = NULL;
    assert_int_equal(interp_ctx_exec(a,
                                     "return coroutine.wrap(function()\n"
                                     "  return interp.context('B'):call('inc', 5):result()\n"
                                     "end)()",
                                     0, &f),
                     INTERP_OK);
    if (interp_future_wait(f, 60) != INTERP_OK)
        fail_msg("the callee never ran: its caller blocks the worker that kept it");
    const interp_msg *m = NULL;
    assert_int_equal(interp_future_result(f, 0, &m), INTERP_OK);
    assert_int_equal(util_int(m), 5);
    interp_future_release(f);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

/* ---- floods: who pays for what is queued ---------------------------------------------- */

/* A plugin that posts to itself twice per call (a fork bomb of calls): every queued call is
 * charged to the poster until it ends, so the queue stops growing at the plugin's memory
 * limit (its posts fail there); a neighbour's calls still run between its batches, and
 * closing the plugin ends the flood. */
static void test_self_post_fork_bomb(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *pl = plugin(p, "bomb", 0, 1 << 20,
                            "calls = 0\n"
                            "function boom()\n"
                            "  calls = calls + 1\n"
                            "  local me, s = interp.self(), string.rep('x', 2048)\n"
                            "  me:post('boom', s) me:post('boom', s)\n"
                            "end\n"
                            "function count() return calls end");
    interp_ctx *nb = ctx_new(p, "neighbour", INTERP_SANDBOX_NONE, NULL);
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "boom"}};
    assert_int_equal(interp_ctx_post(pl, &t), INTERP_OK);
    /* the neighbour gets the thread again and again while the flood goes on */
    uint64_t max_queued = 0;
    interp_ctx_stats st;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(run_int(nb, "return inc()"), i + 1);
        assert_int_equal(interp_ctx_stats_get(pl, &st), INTERP_OK);
        if (st.queued > max_queued)
            max_queued = st.queued;
    }
    /* 1 MiB of calls of 2 KiB each: a few hundred at most, whatever the machine's speed */
    assert_true(max_queued < 1024);
    assert_int_equal(interp_ctx_stats_get(pl, &st), INTERP_OK);
    assert_true(st.calls > 50);
    interp_ctx_close(pl); /* the flood ends with it: its pending calls are cancelled */
    assert_int_equal(run_int(nb, "return inc()"), 51);
    interp_ctx_close(nb);
    interp_pool_destroy(p);
}

/* A plugin that calls another context and keeps the futures makes the host hold their
 * results. Before, the callee paid (outside its heap limit, against the pool's budget
 * only, and a pool without a budget bounded nothing): 200 results of 256 KiB (50 MiB) for a
 * plugin limited to 2 MiB. The caller holds the futures, so the caller pays: its results
 * stop at its own limit (the next calls end INTERP_ERR_NOMEM), and releasing them gives the
 * room back. */
static void test_hoarded_results_charged_to_caller(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *svc = ctx_new(p, "svc", INTERP_SANDBOX_NONE,
                              "function big() return string.rep('r', 256 * 1024) end");
    interp_ctx *pl = plugin(p, "hoarder", 0, 2 << 20, NULL);
    assert_int_equal(interp_ctx_grant_context(pl, "svc", svc), INTERP_OK);
    int64_t r = 0;
    assert_int_equal(run_in(pl,
                            "local h, kept, n = interp.context('svc'), {}, 0\n"
                            "for i = 1, 200 do\n"
                            "  local f = h:call('big')\n"
                            "  f:wait()\n"
                            "  kept[i] = f\n"
                            "  local ok, v = pcall(f.result, f)\n"
                            "  if ok then n = n + 1 elseif not v:find('memory') then error(v) end\n"
                            "  v = nil\n"
                            "end\n"
                            "hoard = kept\n"
                            "return n",
                            &r),
                     INTERP_OK);
    assert_true(r >= 1 && r < 16); /* 2 MiB of 256 KiB results, not 200 */
    /* released, the room comes back */
    assert_int_equal(run_int(pl, "hoard = nil for i = 1, 200000 do local g = {} end\n"
                                 "return #interp.context('svc'):call('big'):result()"),
                     256 * 1024);
    interp_ctx_close(pl);
    interp_ctx_close(svc);
    interp_pool_destroy(p);
}

/* Argument messages far larger than the plugin's heap (one string referenced many times, a
 * deep table) are refused before they reach the host's queue; the plugin pays for what it
 * queues, never the host. */
static void test_huge_arguments(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *svc = ctx_new(p, "svc", INTERP_SANDBOX_NONE, NULL);
    interp_ctx *pl = plugin(p, "plugin", 0, 4 << 20, NULL);
    assert_int_equal(interp_ctx_grant_context(pl, "svc", svc), INTERP_OK);
    int64_t r = 0;
    assert_int_equal(run_in(pl,
                            "local h, s = interp.context('svc'), string.rep('x', 1 << 20)\n"
                            "local t = {} for i = 1, 256 do t[i] = s end -- 256 MiB as a copy\n"
                            "local ok, e = pcall(h.post, h, 'take', t)\n"
                            "if ok then return 0 end\n"
                            "local deep = {} for i = 1, 5000 do deep = {deep} end\n"
                            "local ok2 = pcall(h.call, h, 'take', deep)\n"
                            "return ok2 and 0 or 1",
                            &r),
                     INTERP_OK);
    assert_int_equal(r, 1);
    interp_ctx_stats st;
    assert_int_equal(interp_ctx_stats_get(svc, &st), INTERP_OK);
    assert_int_equal(st.calls, 0); /* nothing was queued */
    assert_int_equal(run_int(pl, "return interp.context('svc'):call('inc', 3):result()"), 3);
    interp_ctx_close(pl);
    interp_ctx_close(svc);
    interp_pool_destroy(p);
}

/* ---- sleeping, waiting and cycles ------------------------------------------------------ */

/* interp.sleep with NaN, negative, huge and infinite values: refused, or parked and ended by
 * the call's deadline or the context's close; never a thread held, never a host error. */
static void test_sleep_values(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *pl = plugin(p, "plugin", 0.3, 0, NULL);
    int64_t r = 0;
    assert_int_equal(run_in(pl,
                            "local n = 0\n"
                            "for _, v in ipairs{0/0, -1, -math.huge, 'x', -0.5} do\n"
                            "  if not pcall(interp.sleep, v) then n = n + 1 end\n"
                            "end\n"
                            "interp.sleep(0) interp.sleep(1e-300)\n"
                            "return n",
                            &r),
                     INTERP_OK);
    assert_int_equal(r, 5);
    char why[256];
    static const char *const forever[] = {"interp.sleep(math.huge)", "interp.sleep(1e308)",
                                          "interp.sleep(2^63)", "interp.sleep('1e400')"};
    for (size_t i = 0; i < sizeof forever / sizeof *forever; i++)
        assert_int_equal(exec_why(pl, forever[i], why, sizeof why), INTERP_ERR_TIMEOUT);
    /* without a deadline: parked (the only thread runs the neighbour), ended by close */
    interp_ctx *nd = plugin(p, "nodeadline", -1, 0, NULL);
    interp_ctx *nb = ctx_new(p, "neighbour", INTERP_SANDBOX_NONE, NULL);
    interp_future *f = NULL;
    assert_int_equal(interp_ctx_exec(nd, "interp.sleep(math.huge)", 0, &f), INTERP_OK);
    assert_int_equal(run_int(nb, "return inc()"), 1);
    assert_int_equal(run_int(pl, "return 7"), 7);
    interp_ctx_close(nd);
    assert_int_equal(interp_future_wait(f, 60), INTERP_OK);
    assert_int_equal(interp_future_status(f), INTERP_ERR_CANCELLED);
    interp_future_release(f);
    interp_ctx_close(nb);
    interp_ctx_close(pl);
    interp_pool_destroy(p);
}

/* Plugins granted each other in a ring (a -> b -> c -> a) make a call that comes back to its
 * own context through the others, parked or blocked (inside a coroutine, where it cannot
 * park): the wait that closes the cycle raises instead of deadlocking three contexts. (With
 * fewer threads than blocked links, the hold bound ends the blocked ones first.) */
static void test_cycle_through_a_third(void **state)
{
    (void)state;
    static const char *const init =
        "function relay(blocking)\n"
        "  local nxt = interp.context('next')\n"
        "  if blocking then\n"
        "    return coroutine.wrap(function() return nxt:call('relay', true):result() end)()\n"
        "  end\n"
        "  return nxt:call('relay', false):result()\n"
        "end";
    interp_pool *p = util_pool(3, NULL);
    interp_ctx *a = plugin(p, "a", 0, 0, init), *b = plugin(p, "b", 0, 0, init),
               *c = plugin(p, "c", 0, 0, init);
    assert_int_equal(interp_ctx_grant_context(a, "next", b), INTERP_OK);
    assert_int_equal(interp_ctx_grant_context(b, "next", c), INTERP_OK);
    assert_int_equal(interp_ctx_grant_context(c, "next", a), INTERP_OK);
    for (int blocking = 0; blocking < 2; blocking++) {
        interp_msg *args = NULL;
        interp_msg_builder *bld = interp_msg_builder_new();
        assert_int_equal(interp_msg_add_bool(bld, blocking), INTERP_OK);
        assert_int_equal(interp_msg_builder_finish(bld, &args), INTERP_OK);
        interp_future *f = NULL;
        assert_int_equal(interp_ctx_call(a, "relay", args, &f), INTERP_OK);
        assert_int_equal(interp_future_wait(f, 60), INTERP_OK);
        if (interp_future_status(f) != INTERP_ERR_SCRIPT)
            fprintf(stderr, "blocking %d: %s\n", blocking, interp_future_error(f));
        assert_int_equal(interp_future_status(f), INTERP_ERR_SCRIPT);
        assert_non_null(strstr(interp_future_error(f), "would never end"));
        interp_future_release(f);
    }
    assert_int_equal(run_int(c, "return 5"), 5); /* all three go on */
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

/* ---- yields and errors from odd places ------------------------------------------------- */

/* Waits where Lua can yield park (a __close handler, an __index metamethod, inside pcall);
 * a bare coroutine.yield at the call's level fails that call only; the plugin goes on. */
static void test_yields_from_odd_places(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *pl = plugin(p, "plugin", 30, 0, NULL);
    int64_t r = 0;
    assert_int_equal(run_in(pl,
                            "local n = 0\n"
                            "do local c <close> = setmetatable({}, {__close = function()\n"
                            "  interp.sleep(0.001) n = n + 1 end}) end\n"
                            "local t = setmetatable({}, {__index = function(_, k)\n"
                            "  interp.sleep(0.001) return k * 2 end})\n"
                            "n = n + t[1]\n"
                            "assert(pcall(interp.sleep, 0.001)) n = n + 1\n"
                            "local ok = pcall(function() local c <close> = setmetatable({}, "
                            "  {__close = function() interp.sleep(0.001) n = n + 10 end}) "
                            "  error('x') end)\n"
                            "return n",
                            &r),
                     INTERP_OK);
    assert_int_equal(r, 14);
    char why[256];
    assert_int_equal(exec_why(pl, "pcall(coroutine.yield, 1)", why, sizeof why), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "yield"));
    assert_int_equal(exec_why(pl, "setmetatable({}, {__gc = function() end})", why, sizeof why),
                     INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "__gc"));
    assert_int_equal(run_int(pl, "return 3"), 3);
    interp_ctx_close(pl);
    interp_pool_destroy(p);
}

/* Error values a caller must carry: tables, nil, a coroutine, a cycle, a deep nest, a huge
 * string, a __tostring that loops. Each call fails with INTERP_ERR_SCRIPT and a text; a
 * context waiting on it from Lua gets an error, never a crash; the plugin goes on. */
static void test_error_values(void **state)
{
    (void)state;
    static const char *const errs[] = {
        "error({code = 1})",
        "error(nil)",
        "error()",
        "error(coroutine.create(print))",
        "local t = {} t.t = t error(t)",
        "local d = {} for i = 1, 5000 do d = {d} end error(d)",
        "error(string.rep('e', 1 << 20))",
        "error(setmetatable({}, {__tostring = function() while true do end end}))",
        "error(setmetatable({}, {__index = function() error('again') end}))",
    };
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *pl = plugin(p, "plugin", 2, 8 << 20, "function raise(src) return load(src)() end");
    interp_ctx *caller = plugin(p, "caller", 30, 0, NULL);
    assert_int_equal(interp_ctx_grant_context(caller, "p", pl), INTERP_OK);
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++) {
        char why[256];
        int rc = exec_why(pl, errs[i], why, sizeof why);
        if (rc != INTERP_ERR_SCRIPT && rc != INTERP_ERR_TIMEOUT)
            fail_msg("%s: %s", errs[i], interp_strerror(rc));
        interp_msg_builder *b = interp_msg_builder_new();
        assert_int_equal(interp_msg_add_str(b, errs[i], strlen(errs[i])), INTERP_OK);
        interp_msg *args = NULL;
        assert_int_equal(interp_msg_builder_finish(b, &args), INTERP_OK);
        interp_future *f = NULL;
        interp_task t = {.fn = {.kind = INTERP_FN_SOURCE,
                                .text = "local ok, e = pcall(function(...) return "
                                        "interp.context('p'):call('raise', ...):result() end, ...)"
                                        " return not ok and type(e) ~= 'function'"},
                         .args = args};
        assert_int_equal(interp_ctx_call_task(caller, &t, &f), INTERP_OK);
        const interp_msg *m = NULL;
        assert_int_equal(interp_future_result(f, 60, &m), INTERP_OK);
        interp_msg_iter it = interp_msg_iter_init(m);
        interp_msg_value v;
        assert_true(interp_msg_next(&it, &v) && v.type == INTERP_MSG_BOOL && v.as.b);
        interp_future_release(f);
    }
    assert_int_equal(run_int(pl, "return 9"), 9);
    interp_ctx_close(caller);
    interp_ctx_close(pl);
    interp_pool_destroy(p);
}

/* ---- after close ----------------------------------------------------------------------- */

/* Handles and futures a plugin kept outlive the context they reach: calls on a closed
 * context raise, a future of a call it never ran raises cancelled; a plugin closed while it
 * waits on another's call frees nothing the callee still uses. */
static void test_calls_after_close(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *svc = ctx_new(p, "svc", INTERP_SANDBOX_NONE, NULL);
    interp_ctx *pl = plugin(p, "plugin", 0, 0, NULL);
    assert_int_equal(interp_ctx_grant_context(pl, "svc", svc), INTERP_OK);
    assert_int_equal(run_int(pl, "h = interp.context('svc') me = interp.self() return 1"), 1);
    interp_future *busy = NULL;
    assert_int_equal(interp_ctx_call(svc, "block", NULL, &busy), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(run_int(pl, "pending = h:call('get') return 1"), 1);
    interp_ctx_close(svc);
    assert_int_equal(interp_future_wait(busy, 60), INTERP_OK);
    interp_future_release(busy);
    int64_t r = 0;
    assert_int_equal(run_in(pl,
                            "local n = 0\n"
                            "local ok, e = pcall(pending.result, pending)\n"
                            "if not ok and e:find('cancel') then n = n + 1 end\n"
                            "for _, m in ipairs{'call', 'post'} do\n"
                            "  ok, e = pcall(h[m], h, 'get')\n"
                            "  if not ok and e:find('closed') then n = n + 1 end\n"
                            "end\n"
                            "local h2 = interp.context('svc') -- a grant of a closed context\n"
                            "if h2 == nil or not pcall(h2.call, h2, 'get') then n = n + 1 end\n"
                            "return n",
                            &r),
                     INTERP_OK);
    assert_int_equal(r, 4);
    /* closed while it waits (parked) on another's call, which ends after it */
    interp_ctx *svc2 = ctx_new(p, "svc2", INTERP_SANDBOX_NONE, NULL);
    assert_int_equal(interp_ctx_grant_context(pl, "svc", svc2), INTERP_OK);
    assert_int_equal(interp_ctx_call(svc2, "block", NULL, &busy), INTERP_OK);
    util_recv(p, "started");
    interp_future *waiting = NULL;
    assert_int_equal(
        interp_ctx_exec(pl, "return interp.context('svc'):call('get'):result()", 0, &waiting),
        INTERP_OK);
    interp_ctx_close(pl);
    assert_int_equal(interp_future_wait(waiting, 60), INTERP_OK);
    assert_int_equal(interp_future_status(waiting), INTERP_ERR_CANCELLED);
    interp_future_release(waiting);
    interp_ctx_close(svc2);
    assert_int_equal(interp_future_wait(busy, 60), INTERP_OK);
    interp_future_release(busy);
    interp_pool_destroy(p);
}

/* A plugin's file is its context's initializer (examples/plugin_host): tenant code. It used to
 * run on the thread creating the context, with no deadline: a top-level loop held the host's
 * interp_ctx_create (its frame) for as long as it ran. It runs on a worker, as the first call,
 * under the context's deadline; create waits for it and reports its failure. */
static void test_initializer_has_a_deadline(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx_options o = {.sandbox = INTERP_SANDBOX_SAFE,
                            .timeout = 0.2,
                            .init_source =
                                "local t0 = os.clock() while os.clock() - t0 < 20 do end"};
    interp_ctx *c = NULL;
    char *err = NULL;
    double t0 = interp__now();
    int rc = interp_ctx_create(p, &o, &c, &err);
    double took = interp__now() - t0;
    printf("looping initializer: %s after %.3f s: %.80s\n", interp_strerror(rc), took,
           err ? err : "");
    assert_int_equal(rc, INTERP_ERR_TIMEOUT);
    assert_null(c);
    assert_non_null(err);
    assert_non_null(strstr(err, "initializer failed"));
    free(err);
    assert_true(took < 10.0);
    /* a failing initializer: its error; a good one: its globals serve the calls */
    o.init_source = "error('no config')";
    assert_int_equal(interp_ctx_create(p, &o, &c, &err), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(err, "no config"));
    free(err);
    o.init_source = "local k = 40 function answer() return k + 2 end";
    o.name = "init_ok";
    c = ctx_create_ok(p, &o);
    assert_int_equal(run_int(c, "return answer()"), 42);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

/* A sandboxed context's globals live in its one environment: a chunk exec'd there (a plugin's
 * hot reload) defines functions that calls by name, from the host or through a handle, must
 * find. They used to look in the state's globals only: the reloaded plugin kept its old code,
 * and a function defined only by exec was "not found". */
static void test_exec_defines_what_calls_find(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *pl = plugin(p, "reloaded", 0, 0, "function version() return 1 end");
    interp_ctx *caller = plugin(p, "caller", 0, 0, "x = 0");
    assert_int_equal(interp_ctx_grant_context(caller, "target", pl), INTERP_OK);
    char why[256];
    assert_int_equal(exec_why(pl,
                              "function version() return 2 end "
                              "function added() return 3 end",
                              why, sizeof why),
                     INTERP_OK);
    interp_future *f;
    const interp_msg *r;
    assert_int_equal(interp_ctx_call(pl, "version", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 60, &r), INTERP_OK);
    assert_int_equal(util_int(r), 2);
    interp_future_release(f);
    assert_int_equal(interp_ctx_call(pl, "added", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 60, &r), INTERP_OK);
    assert_int_equal(util_int(r), 3);
    interp_future_release(f);
    assert_int_equal(run_int(caller, "local t = interp.context('target') "
                                     "return t:call('version'):result() * 10 + "
                                     "t:call('added'):result()"),
                     23);
    interp_ctx_close(caller);
    interp_ctx_close(pl);
    interp_pool_destroy(p);
}

/* A channel the host grants to several plugins is shared: one plugin closing it ended it for
 * the others and for the host, for good. A sandboxed context reaches channels only by its
 * host's grants; it sends and receives on them, and closing stays the host's. */
static void test_granted_channel_not_closed_by_tenant(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_chan *ch;
    assert_int_equal(interp_pool_channel(p, "requests", 4, &ch), INTERP_OK);
    interp_ctx *a = plugin(p, "closer", 0, 0, NULL), *b = plugin(p, "sender", 0, 0, NULL);
    assert_int_equal(interp_ctx_grant_channel(a, "requests", ch), INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel(b, "requests", ch), INTERP_OK);
    char why[256];
    assert_int_equal(exec_why(a, "interp.channel('requests'):close()", why, sizeof why),
                     INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "close"));
    assert_int_equal(
        exec_why(b, "assert(interp.channel('requests'):send('hi', 0))", why, sizeof why),
        INTERP_OK);
    interp_msg *m = NULL;
    assert_int_equal(interp_chan_recv(ch, 60, &m), INTERP_OK);
    interp_msg_free(m);
    interp_chan_release(ch);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_code_into_a_granted_context),
        cmocka_unit_test(test_no_hold_where_it_cannot_yield),
        cmocka_unit_test(test_blocked_caller_does_not_strand_its_callee),
        cmocka_unit_test(test_self_post_fork_bomb),
        cmocka_unit_test(test_hoarded_results_charged_to_caller),
        cmocka_unit_test(test_huge_arguments),
        cmocka_unit_test(test_sleep_values),
        cmocka_unit_test(test_cycle_through_a_third),
        cmocka_unit_test(test_yields_from_odd_places),
        cmocka_unit_test(test_error_values),
        cmocka_unit_test(test_calls_after_close),
        cmocka_unit_test(test_initializer_has_a_deadline),
        cmocka_unit_test(test_exec_defines_what_calls_find),
        cmocka_unit_test(test_granted_channel_not_closed_by_tenant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
