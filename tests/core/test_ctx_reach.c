/* test_ctx_reach.c - reaching contexts from Lua (interp.context, interp.self, handles and their
 * futures), pool-wide names, the host's grants and what a sandboxed context cannot reach,
 * per-context host libraries, and waits on another context's call that end with the waiting
 * run's cancel or deadline. Ordering through channels, never timings. */
#include <lauxlib.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctx_util.h"

static void test_names_unique_and_free_again(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *a = ctx_new(p, "svc", INTERP_SANDBOX_NONE, NULL);
    interp_ctx_options o = {.name = "svc"};
    interp_ctx *b = NULL;
    char *err = NULL;
    assert_int_equal(interp_ctx_create(p, &o, &b, &err), INTERP_ERR_INVALID);
    assert_non_null(err);
    assert_non_null(strstr(err, "of that name is open"));
    free(err);
    assert_null(b);
    interp_ctx_close(a);
    /* closed: the name is free (a fresh context replaces the old one: hot reload) */
    b = ctx_new(p, "svc", INTERP_SANDBOX_NONE, NULL);
    int64_t r = 0;
    assert_int_equal(task_run(p, "return interp.context('svc'):call('inc', 5):result()", &r),
                     INTERP_OK);
    assert_int_equal(r, 5);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

static void test_task_reaches_context(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = ctx_new(p, "svc", INTERP_SANDBOX_NONE, NULL);
    int64_t r = 0;
    /* call with a future, post (fire and forget), exec, a function copied as bytecode */
    assert_int_equal(task_run(p,
                              "local h = interp.context('svc')\n"
                              "assert(h:name() == 'svc' and tostring(h):find('svc'))\n"
                              "assert(h == interp.context('svc'))\n"
                              "assert(h:post('inc', 10) == true)\n"
                              "local f = h:call('inc', 1)\n"
                              "assert(f:wait(30) == true and f:done())\n"
                              "assert(f:result() == 11)\n"
                              "h:exec('n = n * 2'):result()\n"
                              "return h:call(function(k) return n + k end, 100):result()",
                              &r),
                     INTERP_OK);
    assert_int_equal(r, 122);
    /* nothing by a name that is not open; self is nil in a task */
    assert_int_equal(task_run(p,
                              "local h, why = interp.context('nope')\n"
                              "assert(h == nil and why:find('no context named'))\n"
                              "assert(interp.self() == nil) return 1",
                              &r),
                     INTERP_OK);
    /* the callee's error reaches the caller as it was raised */
    assert_int_equal(task_run(p,
                              "local ok, e = pcall(function() "
                              "  return interp.context('svc'):call('fail'):result() end)\n"
                              "assert(not ok and type(e) == 'table' and e.code == 7)\n"
                              "ok, e = pcall(function() "
                              "  return interp.context('svc'):call('missing'):result() end)\n"
                              "assert(not ok and e:find('missing'), e) return 1",
                              &r),
                     INTERP_OK);
    interp_ctx_close(c);
    /* a handle to a closed context refuses calls */
    assert_int_equal(task_run(p, "local h = interp.context('svc') assert(h == nil) return 1", &r),
                     INTERP_OK);
    interp_pool_destroy(p);
}

static void test_context_to_context_and_self(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *a = ctx_new(p, "a", INTERP_SANDBOX_NONE, NULL);
    interp_ctx *b = ctx_new(p, "b", INTERP_SANDBOX_NONE, NULL);
    /* a keeps b's handle and b keeps a's: closing both frees both (ASan checks) */
    assert_int_equal(run_int(a, "peer = interp.context('b') me = interp.self() "
                                "assert(me:name() == 'a') return peer:call('inc', 3):result()"),
                     3);
    assert_int_equal(run_int(b, "peer = interp.context('a') "
                                "peer:post('inc', 2) return interp.self():call('get'):wait(0) "
                                "and 1 or 0"),
                     0); /* its own call cannot run while this one does */
    assert_int_equal(run_int(a, "return get()"), 2);
    /* a handle kept after its context closed */
    interp_ctx_close(b);
    int64_t r = 0;
    assert_int_equal(run_in(a,
                            "local ok, e = pcall(peer.call, peer, 'get') "
                            "return not ok and e:find('closed') ~= nil",
                            &r),
                     INTERP_OK);
    assert_int_equal(r, 1);
    interp_ctx_close(a);
    interp_pool_destroy(p);
}

/* ---- grants and the sandbox -------------------------------------------------------------- */

static void test_sandbox_reaches_only_grants(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *admin = ctx_new(p, "admin", INTERP_SANDBOX_NONE, NULL);
    interp_ctx *a = ctx_new(p, "plugin_a", INTERP_SANDBOX_SAFE, "x = 0");
    interp_ctx *b = ctx_new(p, "plugin_b", INTERP_SANDBOX_SAFE, "function hello() return 42 end");
    /* a pool-wide channel that holds b's secrets */
    interp_chan *secret = NULL;
    assert_int_equal(interp_pool_channel(p, "plugin_b.inbox", 8, &secret), INTERP_OK);
    interp_msg *m = util_ints(1, 99);
    assert_int_equal(interp_chan_send(secret, m, 0), INTERP_OK);
    /* a's own channel and the service it may call, under names local to a */
    interp_chan *mine = NULL;
    assert_int_equal(interp_chan_create(8, 0, &mine), INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel(a, "inbox", mine), INTERP_OK);
    assert_int_equal(interp_ctx_grant_context(a, "svc", admin), INTERP_OK);
    assert_int_equal(interp_ctx_grant_context(b, "friend", b), INTERP_OK); /* itself */

    /* name guessing: pool-wide names, the other plugin's, the other plugin's grant names */
    int64_t r = 0;
    assert_int_equal(
        run_in(a,
               "for _, n in ipairs{'admin', 'plugin_b', 'plugin_a', 'friend', 'inbox'} do\n"
               "  local h, why = interp.context(n)\n"
               "  if h ~= nil or not why:find('granted') then return false end\n"
               "end\n"
               "for _, n in ipairs{'plugin_b.inbox', 'svc', 'new_channel'} do\n"
               "  local ok, e = pcall(interp.channel, n)\n"
               "  if ok or not e:find('granted') then return false end\n"
               "end\n"
               "return true",
               &r),
        INTERP_OK);
    assert_int_equal(r, 1);
    /* no channel was made by the attempts, and b's message is still there */
    assert_int_equal(interp_chan_len(secret), 1);
    /* what was granted works, by the local names */
    assert_int_equal(run_int(a, "return interp.context('svc'):call('inc', 4):result()"), 4);
    assert_int_equal(run_int(a, "interp.channel('inbox'):send(5) return 1"), 1);
    interp_msg *got = NULL;
    assert_int_equal(interp_chan_recv(mine, 0, &got), INTERP_OK);
    assert_int_equal(util_int(got), 5);
    interp_msg_free(got);
    assert_int_equal(run_int(b, "return interp.context('friend'):call('hello'):wait(0) and 1 "
                                "or 0"),
                     0);
    /* a sandboxed anonymous task reaches no context either */
    interp_pool_options so = interp_pool_defaults();
    so.workers = 1;
    so.sandbox = INTERP_SANDBOX_SAFE;
    interp_pool *sbp = NULL;
    assert_int_equal(interp_pool_create(&sbp, &so, NULL), INTERP_OK);
    interp_ctx *named = ctx_new(sbp, "svc", INTERP_SANDBOX_NONE, NULL);
    assert_int_equal(task_run(sbp, "return interp.context('svc') == nil and 1 or 0", &r),
                     INTERP_OK);
    assert_int_equal(r, 1);
    interp_ctx_close(named);
    interp_pool_destroy(sbp);
    /* grants are refused once closed, and checked */
    assert_int_equal(interp_ctx_grant_channel(a, "", mine), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_grant_channel(a, NULL, mine), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_grant_context(a, "x", NULL), INTERP_ERR_INVALID);

    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_ctx_close(admin);
    interp_chan_release(secret);
    interp_chan_release(mine);
    interp_pool_destroy(p);
}

/* A sandboxed plugin cannot make the host hold calls without bound: what it queues on another
 * context counts against its own memory limit until the calls end. */
static void test_queued_calls_count_against_caller(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *svc = ctx_new(p, "svc", INTERP_SANDBOX_NONE, NULL);
    interp_ctx_options o = {.name = "plugin",
                            .sandbox = INTERP_SANDBOX_SAFE,
                            .memory_limit = 1 << 20,
                            .init_source = "x = 0"};
    interp_ctx *pl = NULL;
    assert_int_equal(interp_ctx_create(p, &o, &pl, NULL), INTERP_OK);
    assert_int_equal(interp_ctx_grant_context(pl, "svc", svc), INTERP_OK);
    /* the service is busy: every post waits in its queue */
    interp_future *busy = NULL;
    assert_int_equal(interp_ctx_call(svc, "block", NULL, &busy), INTERP_OK);
    util_recv(p, "started");
    int64_t r = 0;
    assert_int_equal(run_in(pl,
                            "local h, s = interp.context('svc'), string.rep('x', 4096)\n"
                            "local n = 0\n"
                            "while true do\n"
                            "  local ok, e = pcall(h.post, h, 'take', s)\n"
                            "  if not ok then\n"
                            "    assert(e:find('memory'), e) return n\n"
                            "  end\n"
                            "  n = n + 1\n"
                            "end",
                            &r),
                     INTERP_OK);
    assert_true(r > 10 && r < 256); /* 1 MiB of 4 KiB calls */
    interp_ctx_stats st;
    assert_int_equal(interp_ctx_stats_get(svc, &st), INTERP_OK);
    assert_int_equal(st.queued, (uint64_t)r);
    /* the calls end (cancelled with the service): the plugin may queue again */
    interp_ctx_close(svc);
    assert_int_equal(interp_future_wait(busy, 60), INTERP_OK);
    interp_future_release(busy);
    interp_ctx *svc2 = ctx_new(p, "svc2", INTERP_SANDBOX_NONE, NULL);
    assert_int_equal(interp_ctx_grant_context(pl, "svc", svc2), INTERP_OK);
    assert_int_equal(run_int(pl, "local h = interp.context('svc') "
                                 "for i = 1, 100 do h:post('take', string.rep('x', 4096)) end "
                                 "return h:call('get'):result()"),
                     100);
    interp_ctx_close(pl);
    interp_ctx_close(svc2);
    interp_pool_destroy(p);
}

static void test_full_context_grants_first(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *a = ctx_new(p, "a", INTERP_SANDBOX_NONE, NULL);
    interp_ctx *b = ctx_new(p, "b", INTERP_SANDBOX_NONE, NULL);
    assert_int_equal(interp_ctx_grant_context(a, "b", a), INTERP_OK); /* shadows b */
    assert_int_equal(run_int(b, "inc(100) return 1"), 1);
    assert_int_equal(run_int(a, "return interp.context('b'):name() == 'a' and 1 or 0"), 1);
    /* a grant of the same name replaces the first */
    assert_int_equal(interp_ctx_grant_context(a, "b", b), INTERP_OK);
    assert_int_equal(run_int(a, "return interp.context('b'):call('get'):result()"), 100);
    /* a grant's name may be longer than a context's (up to 256 bytes, as a channel's) */
    char longname[101];
    memset(longname, 'g', 100);
    longname[100] = '\0';
    assert_int_equal(interp_ctx_grant_context(a, longname, b), INTERP_OK);
    assert_int_equal(run_int(a, "return interp.context(string.rep('g', 100)):call('get')"
                                ":result()"),
                     100);
    /* pool-wide channels still reach a full-profile context */
    assert_int_equal(run_int(a, "interp.channel('pool_wide'):send(1) return 1"), 1);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

/* ---- per-context host libraries ------------------------------------------------------------ */

static int l_secret(lua_State *L)
{
    lua_pushinteger(L, 4242);
    return 1;
}

static int open_priv(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_secret);
    lua_setfield(L, -2, "secret");
    return 1;
}

static int open_other(lua_State *L)
{
    lua_pushinteger(L, 7);
    return 1;
}

static void test_context_host_libs(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_host_lib libs[] = {{.name = "priv", .open = open_priv, .sandbox = true},
                              {.name = "other", .open = open_other, .sandbox = false}};
    interp_ctx_options o = {.name = "privileged", .host_libs = libs, .n_host_libs = 2};
    interp_ctx *c = NULL;
    assert_int_equal(interp_ctx_create(p, &o, &c, NULL), INTERP_OK);
    assert_int_equal(run_int(c, "return priv.secret() + other"), 4249);
    /* a sandboxed context gets only the libraries allowed there */
    interp_ctx_options so = {.sandbox = INTERP_SANDBOX_SAFE, .host_libs = libs, .n_host_libs = 2};
    interp_ctx *s = NULL;
    assert_int_equal(interp_ctx_create(p, &so, &s, NULL), INTERP_OK);
    assert_int_equal(run_int(s, "return priv.secret() + (other == nil and 1 or 0)"), 4243);
    /* the pool's tasks and other contexts do not have them */
    interp_ctx *plain = ctx_new(p, "plain", INTERP_SANDBOX_NONE, NULL);
    assert_int_equal(run_int(plain, "return priv == nil and other == nil and 1 or 0"), 1);
    int64_t r = 0;
    assert_int_equal(task_run(p, "return priv == nil and 1 or 0", &r), INTERP_OK);
    assert_int_equal(r, 1);
    /* bad libraries are refused with the reason */
    interp_host_lib twice[] = {{.name = "x", .open = open_other},
                               {.name = "x", .open = open_other}};
    interp_ctx_options bo = {.host_libs = twice, .n_host_libs = 2};
    interp_ctx *bad = NULL;
    char *err = NULL;
    assert_int_equal(interp_ctx_create(p, &bo, &bad, &err), INTERP_ERR_INVALID);
    assert_non_null(err);
    assert_non_null(strstr(err, "twice"));
    free(err);
    interp_ctx_options no = {.n_host_libs = 1};
    assert_int_equal(interp_ctx_create(p, &no, &bad, NULL), INTERP_ERR_INVALID);
    interp_ctx_close(plain);
    interp_ctx_close(s);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

/* ---- waits on another context end with the waiting run's cancel and deadline ------------ */

static void test_wait_ends_with_cancel_and_deadline(void **state)
{
    (void)state;
    interp_pool *p = util_pool(3, NULL);
    interp_ctx *svc = ctx_new(p, "svc", INTERP_SANDBOX_NONE, NULL);
    interp_future *f = NULL;
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE,
                            .text = "return interp.context('svc'):call('block'):result()"}};
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    util_recv(p, "started"); /* the callee runs: the task waits on its result */
    assert_int_equal(interp_future_cancel(f), INTERP_OK);
    assert_int_equal(interp_future_wait(f, 60), INTERP_OK);
    assert_int_equal(interp_future_status(f), INTERP_ERR_CANCELLED);
    interp_future_release(f);
    /* a deadline ends the wait of a context's call the same way (the callee is still blocked:
     * this call waits behind it, queued) */
    interp_ctx_options o = {.name = "waiter", .timeout = 0.2};
    interp_ctx *w = NULL;
    assert_int_equal(interp_ctx_create(p, &o, &w, NULL), INTERP_OK);
    assert_int_equal(interp_ctx_exec(w, "return interp.context('svc'):call('get'):result()", 0, &f),
                     INTERP_OK);
    assert_int_equal(interp_future_wait(f, 60), INTERP_OK);
    assert_int_equal(interp_future_status(f), INTERP_ERR_TIMEOUT);
    interp_future_release(f);
    /* a wait with its own timeout */
    int64_t r = 0;
    assert_int_equal(run_in(w,
                            "local fu = interp.context('svc'):call('get') "
                            "return fu:wait(0.01) == false and not fu:done()",
                            &r),
                     INTERP_OK);
    assert_int_equal(r, 1);
    interp_ctx_close(w);
    interp_ctx_close(svc); /* interrupts the blocked call */
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_unique_and_free_again),
        cmocka_unit_test(test_task_reaches_context),
        cmocka_unit_test(test_context_to_context_and_self),
        cmocka_unit_test(test_sandbox_reaches_only_grants),
        cmocka_unit_test(test_queued_calls_count_against_caller),
        cmocka_unit_test(test_full_context_grants_first),
        cmocka_unit_test(test_context_host_libs),
        cmocka_unit_test(test_wait_ends_with_cancel_and_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
