/* test_ctx.c - contexts (interp_ctx.h): persistent states on the pool's threads. Ordering per
 * context, parallelism across contexts (barriers through channels, never timings), globals
 * that persist, memory limit / deadline / cancel per context, close with pending and running
 * calls, posts and their error callback, stats, many contexts on few threads, shutdown. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctx_util.h"

static const char *const CTX_INIT =
    "n = 0\n"
    "function inc() n = n + 1 return n end\n"
    "function get() return n end\n"
    "last = {}\n"
    "seq = 0\n"
    "function rec(t, i)\n"
    "  if i ~= (last[t] or 0) + 1 then error('out of order: ' .. t .. ' ' .. i) end\n"
    "  last[t] = i seq = seq + 1 return seq\n"
    "end\n"
    "function hog(n) local t = {} for i = 1, n do t[i] = string.rep('x', 1024) end return #t end\n"
    "function spin() while true do end end\n"
    "function started_then_spin() interp.channel('started'):send(true) while true do end end\n"
    "function meet(mine, other)\n"
    "  interp.channel(mine):send(true)\n"
    "  local v, why = interp.channel(other):recv(30)\n"
    "  return v == true\n"
    "end\n"
    "function boom() error('boom') end\n"
    "function take(name, t) local v, why = interp.channel(name):recv(t) return v == nil and why or "
    "v end\n"
    "function take_in_pcall(name) local ok, v = pcall(function() return "
    "interp.channel(name):recv() end)\n"
    "  return ok and v end\n"
    "function take_in_co(name) return coroutine.wrap(function() return take(name) end)() end\n"
    "function pick(a, b) local ch, v = interp.select({interp.channel(a), interp.channel(b)})\n"
    "  return v end\n"
    "function nap(s) interp.sleep(s) return 1 end\n"
    "function loop_in_sort() table.sort({3, 2, 1}, function(a, b) while true do end end) end\n"
    "function give(name, n) local ch = interp.channel(name, 1) for i = 1, n do ch:send(i) end\n"
    "  return n end\n";

static interp_ctx *make_ctx(interp_pool *p, const char *name, void (*tweak)(interp_ctx_options *))
{
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.init_source = CTX_INIT;
    if (tweak)
        tweak(&o);
    return ctx_create_ok(p, &o);
}

/* Call fn with args in c and return its first integer result (the call must succeed). */
static int64_t call_int(interp_ctx *c, const char *fn, interp_msg *args)
{
    interp_future *f = NULL;
    assert_int_equal(interp_ctx_call(c, fn, args, &f), INTERP_OK);
    const interp_msg *r = NULL;
    int rc = interp_future_result(f, 30, &r);
    if (rc != INTERP_OK)
        fprintf(stderr, "%s: %s\n", fn, interp_future_error(f));
    assert_int_equal(rc, INTERP_OK);
    int64_t v = util_int(r);
    interp_future_release(f);
    return v;
}

static int call_status(interp_ctx *c, const char *fn, interp_msg *args)
{
    interp_future *f = NULL;
    assert_int_equal(interp_ctx_call(c, fn, args, &f), INTERP_OK);
    int rc = interp_future_result(f, 30, NULL);
    interp_future_release(f);
    return rc;
}

static void test_persistence(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, "persist", NULL);
    assert_string_equal(interp_ctx_name(c), "persist");
    for (int i = 1; i <= 3; i++)
        assert_int_equal(call_int(c, "inc", NULL), i);
    interp_future *f;
    assert_int_equal(interp_ctx_exec(c, "n = 100 function twice(x) return 2 * x end", 0, &f),
                     INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_OK);
    interp_future_release(f);
    assert_int_equal(call_int(c, "inc", NULL), 101);
    assert_int_equal(call_int(c, "twice", util_ints(1, 21)), 42);
    /* an anonymous task of the pool does not see the context's globals */
    assert_int_equal(interp_pool_submit(p, "count", NULL, &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 30, &r), INTERP_OK);
    assert_int_equal(util_int(r), 1);
    interp_future_release(f);
    /* nor does a second context */
    interp_ctx *c2 = make_ctx(p, "other", NULL);
    assert_int_equal(call_int(c2, "get", NULL), 0);
    assert_int_equal(call_status(c2, "twice", util_ints(1, 1)), INTERP_ERR_NOTFOUND);
    interp_ctx_close(c2);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

typedef struct {
    interp_ctx *c;
    int t;
    int n;
    interp_future **fs;
} caller_arg;

static void *caller(void *arg)
{
    caller_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        if (interp_ctx_call(a->c, "rec", util_ints(2, a->t, i + 1), &a->fs[i]) != INTERP_OK)
            a->fs[i] = NULL;
    }
    return NULL;
}

static void test_order_four_callers(void **state)
{
    (void)state;
    interp_pool *p = util_pool(4, NULL);
    interp_ctx *c = make_ctx(p, "order", NULL);
    enum { CALLERS = 4, N = 300 };
    pthread_t th[CALLERS];
    caller_arg a[CALLERS];
    for (int t = 0; t < CALLERS; t++) {
        a[t] = (caller_arg){.c = c, .t = t + 1, .n = N, .fs = calloc(N, sizeof(interp_future *))};
        assert_int_equal(pthread_create(&th[t], NULL, caller, &a[t]), 0);
    }
    for (int t = 0; t < CALLERS; t++)
        pthread_join(th[t], NULL);
    bool seen[CALLERS * N + 1];
    memset(seen, 0, sizeof seen);
    for (int t = 0; t < CALLERS; t++) {
        int64_t prev = 0;
        for (int i = 0; i < N; i++) {
            interp_future *f = a[t].fs[i];
            assert_non_null(f);
            const interp_msg *r;
            int rc = interp_future_result(f, 30, &r);
            if (rc != INTERP_OK)
                fprintf(stderr, "%s\n", interp_future_error(f));
            assert_int_equal(rc, INTERP_OK);
            int64_t seq = util_int(r);
            /* one caller's calls ran in the order it made them, each exactly once */
            assert_true(seq > prev && seq <= CALLERS * N);
            assert_false(seen[seq]);
            seen[seq] = true;
            prev = seq;
            interp_future_release(f);
        }
        free(a[t].fs);
    }
    interp_ctx_stats st;
    assert_int_equal(interp_ctx_stats_get(c, &st), INTERP_OK);
    assert_int_equal(st.calls, CALLERS * N);
    assert_int_equal(st.done, CALLERS * N);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.queued, 0);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

static void test_two_run_at_once(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *a = make_ctx(p, "a", NULL);
    interp_ctx *b = make_ctx(p, "b", NULL);
    /* each sends on its channel, then waits for the other's: both return true only if both
     * ran at the same time (one after the other, the first would wait 30 s and fail) */
    interp_msg_builder *m1 = interp_msg_builder_new();
    interp_msg_add_str(m1, "meet_a", 6);
    interp_msg_add_str(m1, "meet_b", 6);
    interp_msg_builder *m2 = interp_msg_builder_new();
    interp_msg_add_str(m2, "meet_b", 6);
    interp_msg_add_str(m2, "meet_a", 6);
    interp_msg *args1 = NULL, *args2 = NULL;
    assert_int_equal(interp_msg_builder_finish(m1, &args1), INTERP_OK);
    assert_int_equal(interp_msg_builder_finish(m2, &args2), INTERP_OK);
    interp_future *fa, *fb;
    assert_int_equal(interp_ctx_call(a, "meet", args1, &fa), INTERP_OK);
    assert_int_equal(interp_ctx_call(b, "meet", args2, &fb), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(fa, 60, &r), INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(r);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v) && v.type == INTERP_MSG_BOOL && v.as.b);
    assert_int_equal(interp_future_result(fb, 60, &r), INTERP_OK);
    it = interp_msg_iter_init(r);
    assert_true(interp_msg_next(&it, &v) && v.type == INTERP_MSG_BOOL && v.as.b);
    interp_future_release(fa);
    interp_future_release(fb);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

static void small_limit(interp_ctx_options *o) { o->memory_limit = 2u << 20; }

static void test_memory_limit(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, "small", small_limit);
    interp_ctx *big = make_ctx(p, "big", NULL);
    assert_int_equal(call_int(c, "inc", NULL), 1);
    interp_future *f;
    assert_int_equal(interp_ctx_call(c, "hog", util_ints(1, 8192), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_NOMEM);
    interp_future_release(f);
    /* the context goes on, with its globals */
    assert_int_equal(call_int(c, "inc", NULL), 2);
    /* the limit is the context's: another context of the pool is not bound by it */
    assert_int_equal(call_int(big, "hog", util_ints(1, 8192)), 8192);
    interp_ctx_stats st;
    assert_int_equal(interp_ctx_stats_get(c, &st), INTERP_OK);
    assert_true(st.memory_in_use > 0 && st.memory_in_use <= 2u << 20);
    assert_true(st.memory_peak >= st.memory_in_use && st.memory_peak <= 2u << 20);
    assert_int_equal(st.failed, 1);
    assert_false(st.broken);
    interp_ctx_close(c);
    interp_ctx_close(big);
    interp_pool_destroy(p);
}

static void short_deadline(interp_ctx_options *o) { o->timeout = 0.2; }

static void test_deadline(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, "dl", short_deadline);
    assert_int_equal(call_status(c, "spin", NULL), INTERP_ERR_TIMEOUT);
    assert_int_equal(call_int(c, "inc", NULL), 1);
    /* a call's own timeout overrides the context's default */
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE,
                            .text = "local i = 0 while i < 2e6 do "
                                    "i = i + 1 end return 7"},
                     .timeout = -1};
    interp_future *f;
    assert_int_equal(interp_ctx_call_task(c, &t, &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 60, &r), INTERP_OK);
    assert_int_equal(util_int(r), 7);
    interp_future_release(f);
    assert_int_equal(call_int(c, "inc", NULL), 2);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

static void test_cancel(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, "cancel", NULL);
    interp_future *run, *pend;
    assert_int_equal(interp_ctx_call(c, "started_then_spin", NULL, &run), INTERP_OK);
    assert_int_equal(interp_ctx_call(c, "inc", NULL, &pend), INTERP_OK);
    util_recv(p, "started");
    /* the pending call is cancelled without running; then the running one */
    assert_int_equal(interp_future_cancel(pend), INTERP_OK);
    assert_int_equal(interp_future_cancel(run), INTERP_OK);
    assert_int_equal(interp_future_result(run, 30, NULL), INTERP_ERR_CANCELLED);
    assert_int_equal(interp_future_result(pend, 30, NULL), INTERP_ERR_CANCELLED);
    interp_future_release(run);
    interp_future_release(pend);
    /* the context goes on; the cancelled inc never ran */
    assert_int_equal(call_int(c, "inc", NULL), 1);
    interp_ctx_stats st;
    assert_int_equal(interp_ctx_stats_get(c, &st), INTERP_OK);
    assert_int_equal(st.calls, 3);
    assert_int_equal(st.done, 1);
    assert_int_equal(st.failed, 2);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

static void test_close_pending_running(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, "closing", NULL);
    interp_future *run, *pend[5];
    assert_int_equal(interp_ctx_call(c, "started_then_spin", NULL, &run), INTERP_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(interp_ctx_call(c, "inc", NULL, &pend[i]), INTERP_OK);
    util_recv(p, "started");
    interp_ctx_close(c);
    assert_int_equal(interp_future_result(run, 30, NULL), INTERP_ERR_CANCELLED);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(interp_future_result(pend[i], 30, NULL), INTERP_ERR_CANCELLED);
        assert_non_null(strstr(interp_future_error(pend[i]), "closed"));
        interp_future_release(pend[i]);
    }
    interp_future_release(run);
    /* the pool goes on */
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "double", util_ints(1, 4), &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 30, &r), INTERP_OK);
    assert_int_equal(util_int(r), 8);
    interp_future_release(f);
    /* a context closed while idle, and one closed with calls queued behind a busy pool */
    interp_ctx *idle = make_ctx(p, "idle", NULL);
    assert_int_equal(call_int(idle, "inc", NULL), 1);
    interp_ctx_close(idle);
    interp_ctx_close(NULL);
    interp_pool_destroy(p);
}

static atomic_int g_errors;
static void on_err(interp_ctx *c, int status, const char *error, void *ud)
{
    (void)c;
    if (status == INTERP_ERR_SCRIPT && error && strstr(error, "boom") && ud == &g_errors)
        atomic_fetch_add(&g_errors, 1);
}
static void with_on_error(interp_ctx_options *o)
{
    o->on_error = on_err;
    o->on_error_ud = &g_errors;
}

static void test_post_and_stats(void **state)
{
    (void)state;
    atomic_store(&g_errors, 0);
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, "post", with_on_error);
    interp_task inc = {.fn = {.kind = INTERP_FN_NAME, .text = "inc"}};
    interp_task boom = {.fn = {.kind = INTERP_FN_NAME, .text = "boom"}};
    for (int i = 0; i < 10; i++)
        assert_int_equal(interp_ctx_post(c, &inc), INTERP_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(interp_ctx_post(c, &boom), INTERP_OK);
    /* a call after the posts runs after them (one order for calls and posts) */
    assert_int_equal(call_int(c, "get", NULL), 10);
    assert_int_equal(atomic_load(&g_errors), 3);
    interp_ctx_stats st;
    assert_int_equal(interp_ctx_stats_get(c, &st), INTERP_OK);
    assert_int_equal(st.calls, 14);
    assert_int_equal(st.done, 11);
    assert_int_equal(st.failed, 3);
    assert_int_equal(st.posts_failed, 3);
    assert_true(st.memory_in_use > 0 && st.memory_peak >= st.memory_in_use);
    /* bad input */
    interp_future *f = (interp_future *)1;
    assert_int_equal(interp_ctx_call(c, NULL, NULL, &f), INTERP_ERR_INVALID);
    assert_null(f);
    assert_int_equal(interp_ctx_call(NULL, "inc", NULL, &f), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_post(c, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_stats_get(c, NULL), INTERP_ERR_INVALID);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

static void test_create_errors(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *c = NULL;
    char *err = NULL;
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.init_source = "this is not lua";
    assert_int_equal(interp_ctx_create(p, &o, &c, &err), INTERP_ERR_SCRIPT);
    assert_null(c);
    assert_non_null(err);
    free(err);
    o.init_source = "error('init refused')";
    assert_int_equal(interp_ctx_create(p, &o, &c, &err), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(err, "init refused"));
    free(err);
    o.init_source = NULL;
    o.sandbox = (interp_sandbox)77;
    assert_int_equal(interp_ctx_create(p, &o, &c, &err), INTERP_ERR_INVALID);
    free(err);
    o.sandbox = INTERP_SANDBOX_NONE;
    o.name = "a name that is much too long for a context: more than sixty-four bytes in all";
    assert_int_equal(interp_ctx_create(p, &o, &c, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_create(NULL, NULL, &c, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_create(p, NULL, NULL, NULL), INTERP_ERR_INVALID);
    /* defaults: no options at all */
    assert_int_equal(interp_ctx_create(p, NULL, &c, NULL), INTERP_OK);
    assert_string_equal(interp_ctx_name(c), "");
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

static void sandboxed(interp_ctx_options *o) { o->sandbox = INTERP_SANDBOX_SAFE; }

static void test_sandbox_persists(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *c = make_ctx(p, "sb", sandboxed);
    assert_int_equal(call_int(c, "inc", NULL), 1);
    assert_int_equal(call_int(c, "inc", NULL), 2);
    interp_future *f;
    assert_int_equal(interp_ctx_exec(c, "return os.execute == nil and io == nil and 1 or 0", 0, &f),
                     INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 30, &r), INTERP_OK);
    assert_int_equal(util_int(r), 1);
    interp_future_release(f);
    /* a chunk's globals stay too, and are this context's only */
    assert_int_equal(interp_ctx_exec(c, "secret = 5", 0, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_OK);
    interp_future_release(f);
    interp_ctx *other = make_ctx(p, "sb2", sandboxed);
    const char *probe = "return secret == nil and 1 or secret";
    assert_int_equal(interp_ctx_exec(c, probe, 0, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, &r), INTERP_OK);
    assert_int_equal(util_int(r), 5);
    interp_future_release(f);
    assert_int_equal(interp_ctx_exec(other, probe, 0, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, &r), INTERP_OK);
    assert_int_equal(util_int(r), 1);
    interp_future_release(f);
    assert_int_equal(call_int(other, "inc", NULL), 1);
    interp_ctx_close(other);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

/* Many contexts, each with several calls, on two threads: every call runs, in order per
 * context (batches interleave contexts). */
static void test_many_contexts(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    enum { NC = 64, CALLS = 20 };
    interp_ctx *cs[NC];
    interp_future *fs[NC][CALLS];
    for (int i = 0; i < NC; i++)
        cs[i] = make_ctx(p, NULL, NULL);
    for (int k = 0; k < CALLS; k++)
        for (int i = 0; i < NC; i++)
            assert_int_equal(interp_ctx_call(cs[i], "inc", NULL, &fs[i][k]), INTERP_OK);
    for (int i = 0; i < NC; i++) {
        for (int k = 0; k < CALLS; k++) {
            const interp_msg *r;
            assert_int_equal(interp_future_result(fs[i][k], 30, &r), INTERP_OK);
            assert_int_equal(util_int(r), k + 1);
            interp_future_release(fs[i][k]);
        }
        interp_ctx_close(cs[i]);
    }
    interp_pool_destroy(p);
}

/* Shutdown of the pool with contexts holding queued calls: the calls end, later calls fail
 * with INTERP_ERR_SHUTDOWN, close after destroy is fine. */
static void test_pool_shutdown(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *busy = make_ctx(p, "busy", NULL);
    interp_ctx *c = make_ctx(p, "queued", NULL);
    interp_future *run, *q[4];
    assert_int_equal(interp_ctx_call(busy, "started_then_spin", NULL, &run), INTERP_OK);
    util_recv(p, "started");
    for (int i = 0; i < 4; i++)
        assert_int_equal(interp_ctx_call(c, "inc", NULL, &q[i]), INTERP_OK);
    assert_int_equal(interp_pool_shutdown_now(p), INTERP_OK);
    assert_int_equal(interp_future_result(run, 30, NULL), INTERP_ERR_SHUTDOWN);
    for (int i = 0; i < 4; i++) {
        int rc = interp_future_result(q[i], 30, NULL);
        assert_true(rc == INTERP_ERR_SHUTDOWN || rc == INTERP_ERR_CANCELLED);
        interp_future_release(q[i]);
    }
    interp_future_release(run);
    interp_future *f = (interp_future *)1;
    assert_int_equal(interp_ctx_call(c, "inc", NULL, &f), INTERP_ERR_SHUTDOWN);
    assert_null(f);
    interp_ctx *late = NULL;
    assert_int_equal(interp_ctx_create(p, NULL, &late, NULL), INTERP_ERR_SHUTDOWN);
    interp_pool_destroy(p);
    interp_ctx_close(c);
    interp_ctx_close(busy);
}

/* Contexts whose calls wait parked (not on a thread): how many are parked now. */
static interp_msg *str_arg(const char *s)
{
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_str(b, s, strlen(s));
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    return m;
}

/* The string result of an ended call. */
static void assert_str_result(interp_future *f, const char *want)
{
    const interp_msg *r;
    int rc = interp_future_result(f, 60, &r);
    if (rc != INTERP_OK)
        fprintf(stderr, "%s\n", interp_future_error(f));
    assert_int_equal(rc, INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(r);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_int_equal(v.as.str.len, strlen(want));
    assert_memory_equal(v.as.str.ptr, want, strlen(want));
}

static void send_str(interp_pool *p, const char *chan, const char *s)
{
    interp_chan *ch;
    assert_int_equal(interp_pool_channel(p, chan, 0, &ch), INTERP_OK);
    assert_int_equal(interp_chan_send(ch, str_arg(s), 30), INTERP_OK);
    interp_chan_release(ch);
}

/* A waiting call holds no thread: on a one-thread pool, a context parked in recv leaves the
 * thread to another context's call; the message then wakes it. */
static void test_park_frees_thread(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *a = make_ctx(p, "a", NULL);
    interp_ctx *b = make_ctx(p, "b", NULL);
    interp_future *fa;
    const interp_msg *r0;
    assert_int_equal(interp_ctx_call(a, "take", str_arg("to_a"), &fa), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    for (int i = 1; i <= 3; i++) /* blocked on the thread, these would wait forever */
        assert_int_equal(call_int(b, "inc", NULL), i);
    assert_false(interp_future_done(fa));
    send_str(p, "to_a", "hello");
    assert_str_result(fa, "hello");
    interp_future_release(fa);
    /* inside a pcall it parks too; select parks; sleep parks */
    assert_int_equal(interp_ctx_call(a, "take_in_pcall", str_arg("to_a"), &fa), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    assert_int_equal(call_int(b, "inc", NULL), 4);
    send_str(p, "to_a", "again");
    assert_str_result(fa, "again");
    interp_future_release(fa);
    interp_msg_builder *mb = interp_msg_builder_new();
    interp_msg_add_str(mb, "s1", 2);
    interp_msg_add_str(mb, "s2", 2);
    interp_msg *two = NULL;
    assert_int_equal(interp_msg_builder_finish(mb, &two), INTERP_OK);
    assert_int_equal(interp_ctx_call(a, "pick", two, &fa), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    assert_int_equal(call_int(b, "inc", NULL), 5);
    send_str(p, "s2", "second");
    assert_str_result(fa, "second");
    interp_future_release(fa);
    /* a send to a full channel parks until there is room */
    interp_msg_builder *gb = interp_msg_builder_new();
    interp_msg_add_str(gb, "full", 4);
    interp_msg_add_int(gb, 3);
    interp_msg *gargs = NULL;
    assert_int_equal(interp_msg_builder_finish(gb, &gargs), INTERP_OK);
    assert_int_equal(interp_ctx_call(a, "give", gargs, &fa), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    assert_int_equal(call_int(b, "inc", NULL), 6);
    interp_chan *full;
    assert_int_equal(interp_pool_channel(p, "full", 1, &full), INTERP_OK);
    for (int i = 1; i <= 3; i++) {
        interp_msg *m = NULL;
        assert_int_equal(interp_chan_recv(full, 30, &m), INTERP_OK);
        assert_int_equal(util_int(m), i);
        interp_msg_free(m);
    }
    interp_chan_release(full);
    assert_int_equal(interp_future_result(fa, 30, &r0), INTERP_OK);
    assert_int_equal(util_int(r0), 3);
    interp_future_release(fa);
    interp_future *fs;
    assert_int_equal(interp_ctx_call(a, "nap", util_ints(1, 0), &fs), INTERP_OK);
    assert_int_equal(interp_future_result(fs, 30, NULL), INTERP_OK);
    interp_future_release(fs);
    interp_task nap = {.fn = {.kind = INTERP_FN_SOURCE,
                              .text = "interp.sleep(0.05) return coroutine.isyieldable()"}};
    assert_int_equal(interp_ctx_call_task(a, &nap, &fs), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(fs, 30, &r), INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(r);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v) && v.type == INTERP_MSG_BOOL && v.as.b);
    interp_future_release(fs);
    /* a recv with a timeout ends "timeout" (the timer wakes it) */
    interp_msg_builder *tb = interp_msg_builder_new();
    interp_msg_add_str(tb, "nothing", 7);
    interp_msg_add_double(tb, 0.05);
    interp_msg *targs = NULL;
    assert_int_equal(interp_msg_builder_finish(tb, &targs), INTERP_OK);
    assert_int_equal(interp_ctx_call(a, "take", targs, &fa), INTERP_OK);
    assert_str_result(fa, "timeout");
    interp_future_release(fa);
    /* a yield at the call's own level fails as outside a coroutine in lua5.4 */
    interp_task y = {.fn = {.kind = INTERP_FN_SOURCE, .text = "coroutine.yield(1) return 2"}};
    assert_int_equal(interp_ctx_call_task(a, &y, &fs), INTERP_OK);
    assert_int_equal(interp_future_result(fs, 30, NULL), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(interp_future_error(fs), "outside a coroutine"));
    interp_future_release(fs);
    assert_int_equal(call_int(a, "inc", NULL), 1);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

static void tenth_deadline(interp_ctx_options *o) { o->timeout = 0.1; }

/* Deadline, cancel, close and shutdown_now reach a parked call; a wait inside a coroutine of
 * the call cannot park (it blocks its thread, bounded by the deadline). */
static void test_park_interrupts(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, "dl", tenth_deadline);
    interp_future *f;
    assert_int_equal(interp_ctx_call(c, "take", str_arg("never"), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_TIMEOUT);
    interp_future_release(f);
    assert_int_equal(interp_ctx_call(c, "take_in_co", str_arg("never"), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_TIMEOUT);
    interp_future_release(f);
    assert_int_equal(call_int(c, "inc", NULL), 1);
    interp_ctx_close(c);

    c = make_ctx(p, "cancel", NULL);
    interp_future *pend;
    assert_int_equal(interp_ctx_call(c, "take", str_arg("never"), &f), INTERP_OK);
    assert_int_equal(interp_ctx_call(c, "inc", NULL, &pend), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    assert_int_equal(interp_future_cancel(f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_CANCELLED);
    /* the call after it runs */
    const interp_msg *r;
    assert_int_equal(interp_future_result(pend, 30, &r), INTERP_OK);
    assert_int_equal(util_int(r), 1);
    interp_future_release(f);
    interp_future_release(pend);
    /* close with a parked call and one behind it */
    assert_int_equal(interp_ctx_call(c, "take", str_arg("never"), &f), INTERP_OK);
    assert_int_equal(interp_ctx_call(c, "inc", NULL, &pend), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    interp_ctx_close(c);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_CANCELLED);
    assert_int_equal(interp_future_result(pend, 30, NULL), INTERP_ERR_CANCELLED);
    interp_future_release(f);
    interp_future_release(pend);
    assert_int_equal(await_parked(p, 0), 0);
    /* shutdown_now ends parked calls */
    c = make_ctx(p, "down", NULL);
    assert_int_equal(interp_ctx_call(c, "take", str_arg("never"), &f), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    assert_int_equal(interp_pool_shutdown_now(p), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_SHUTDOWN);
    interp_future_release(f);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

/* 10,000 contexts each waiting in recv on a two-thread pool: no thread more than the pool's
 * (workers and watchdog); closing the channel wakes them all, each call ending with the
 * channel's "closed". */
static void test_park_10k(void **state)
{
    (void)state;
    enum { NC = 10000 };
    int before = util_count_dir("/proc/self/task");
    interp_pool *p = util_pool(2, NULL);
    interp_ctx **cs = calloc(NC, sizeof *cs);
    interp_future **fs = calloc(NC, sizeof *fs);
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.init_source = "function take(name) local v, why = interp.channel(name):recv() "
                    "return v == nil and why or v end";
    for (int i = 0; i < NC; i++) {
        assert_int_equal(interp_ctx_create(p, &o, &cs[i], NULL), INTERP_OK);
        assert_int_equal(interp_ctx_call(cs[i], "take", str_arg("parkq"), &fs[i]), INTERP_OK);
    }
    assert_int_equal(await_parked(p, NC), NC);
    int threads = util_count_dir("/proc/self/task");
    assert_true(threads <= before + 2 + 1);
    interp_chan *ch;
    assert_int_equal(interp_pool_channel(p, "parkq", 0, &ch), INTERP_OK);
    interp_chan_close(ch);
    interp_chan_release(ch);
    for (int i = 0; i < NC; i++) {
        assert_str_result(fs[i], "closed");
        interp_future_release(fs[i]);
        interp_ctx_close(cs[i]);
    }
    assert_int_equal(parked_count(p), 0);
    free(cs);
    free(fs);
    interp_pool_destroy(p);
}

static const char *const RING_INIT =
    "function get() return 7 end\n"
    "function slow(name) return interp.channel(name):recv() end\n"
    "function ask(to, ...) return interp.context(to):call(...):result() end\n"
    "function ask_wait(to, ...) return interp.context(to):call(...):wait() end\n";

static interp_ctx *named_ctx(interp_pool *p, const char *name)
{
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.init_source = RING_INIT;
    interp_ctx *c = NULL;
    assert_int_equal(interp_ctx_create(p, &o, &c, NULL), INTERP_OK);
    return c;
}

static interp_msg *strs(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    interp_msg_builder *b = interp_msg_builder_new();
    for (int i = 0; i < n; i++) {
        const char *a = va_arg(ap, const char *);
        interp_msg_add_str(b, a, strlen(a));
    }
    va_end(ap);
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    return m;
}

/* The call's error text contains want. */
static void assert_fails_with(interp_future *f, const char *want)
{
    assert_int_equal(interp_future_result(f, 60, NULL), INTERP_ERR_SCRIPT);
    const char *e = interp_future_error(f);
    if (!strstr(e, want))
        fail_msg("error: %s", e);
    interp_future_release(f);
}

/* A wait for another context's call parks too: on one thread, A waits for B's call, which
 * itself waits in recv; both go on once the message comes. */
static void test_park_on_future(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *a = named_ctx(p, "A"), *b = named_ctx(p, "B");
    interp_future *f;
    assert_int_equal(interp_ctx_call(a, "ask", strs(3, "B", "slow", "to_b"), &f), INTERP_OK);
    assert_int_equal(await_parked(p, 2), 2);
    send_str(p, "to_b", "through");
    assert_str_result(f, "through");
    interp_future_release(f);
    assert_int_equal(interp_ctx_call(a, "ask_wait", strs(3, "B", "slow", "to_b"), &f), INTERP_OK);
    assert_int_equal(await_parked(p, 2), 2);
    send_str(p, "to_b", "x");
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 60, &r), INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(r);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v) && v.type == INTERP_MSG_BOOL && v.as.b);
    interp_future_release(f);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

/* A call that would wait for a context waiting for it fails with a clear error: itself;
 * A -> B -> A; A -> B -> C -> A. The contexts go on afterwards. */
static void test_wait_cycles(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *a = named_ctx(p, "A"), *b = named_ctx(p, "B"), *c = named_ctx(p, "C");
    interp_future *f;
    interp_task self = {
        .fn = {.kind = INTERP_FN_SOURCE, .text = "return interp.self():call('get'):result()"}};
    assert_int_equal(interp_ctx_call_task(a, &self, &f), INTERP_OK);
    assert_fails_with(f, "would never end");
    /* A asks B, which asks A */
    assert_int_equal(interp_ctx_call(a, "ask", strs(4, "B", "ask", "A", "get"), &f), INTERP_OK);
    assert_fails_with(f, "would never end");
    /* A asks B, which asks C, which asks A */
    assert_int_equal(interp_ctx_call(a, "ask", strs(6, "B", "ask", "C", "ask", "A", "get"), &f),
                     INTERP_OK);
    assert_fails_with(f, "would never end");
    /* no cycle: A asks B, which asks C */
    assert_int_equal(interp_ctx_call(a, "ask", strs(4, "B", "ask", "C", "get"), &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 60, &r), INTERP_OK);
    assert_int_equal(util_int(r), 7);
    interp_future_release(f);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_ctx_close(c);
    interp_pool_destroy(p);
}

/* A call without a deadline that never ends does not keep the only thread from the others:
 * its time slice ends, it goes behind them, and is cancelled at last. A loop inside a C call
 * boundary (a sort comparator) cannot yield: its deadline bounds it. */
static void test_preemption(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_ctx *loop = make_ctx(p, "loop", NULL);
    interp_ctx *other = make_ctx(p, "other", NULL);
    interp_future *f;
    interp_task spin = {.fn = {.kind = INTERP_FN_NAME, .text = "started_then_spin"}, .timeout = -1};
    assert_int_equal(interp_ctx_call_task(loop, &spin, &f), INTERP_OK);
    util_recv(p, "started");
    for (int i = 1; i <= 5; i++) /* each waits for the looping call's slice to end */
        assert_int_equal(call_int(other, "inc", NULL), i);
    assert_false(interp_future_done(f));
    assert_int_equal(interp_future_cancel(f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_CANCELLED);
    interp_future_release(f);
    assert_int_equal(call_int(loop, "inc", NULL), 1);
    interp_task sorting = {.fn = {.kind = INTERP_FN_NAME, .text = "loop_in_sort"}, .timeout = 0.3};
    assert_int_equal(interp_ctx_call_task(loop, &sorting, &f), INTERP_OK);
    assert_int_equal(call_int(other, "inc", NULL), 6);
    assert_int_equal(interp_future_result(f, 30, NULL), INTERP_ERR_TIMEOUT);
    interp_future_release(f);
    interp_ctx_close(loop);
    interp_ctx_close(other);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_order_four_callers),
        cmocka_unit_test(test_two_run_at_once),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_close_pending_running),
        cmocka_unit_test(test_post_and_stats),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_sandbox_persists),
        cmocka_unit_test(test_many_contexts),
        cmocka_unit_test(test_pool_shutdown),
        cmocka_unit_test(test_park_frees_thread),
        cmocka_unit_test(test_park_interrupts),
        cmocka_unit_test(test_park_10k),
        cmocka_unit_test(test_park_on_future),
        cmocka_unit_test(test_wait_cycles),
        cmocka_unit_test(test_preemption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
