/* test_pool.c - the pool: options, create, submit, deadlines, memory limit, recycling,
 * bounded queue, channels, shutdown variants, broken pool, abandoned stuck workers, stats. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg_lua.h"

#include "pool_util.h"

static void pool_create_defaults(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    assert_true(o.workers >= 1);
    interp_pool *p = NULL;
    char *err = (char *)1;
    assert_int_equal(interp_pool_create(&p, NULL, &err), INTERP_OK);
    assert_null(err);
    interp_pool_stats s;
    assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
    assert_int_equal(s.workers, 1); /* the others start on demand */
    assert_int_equal(s.max_workers, o.workers);
    interp_pool_destroy(p);
    interp_pool_destroy(NULL);
}

static void pool_create_rejects_bad_options(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.init_source = "x = 1";
    o.init_file = "/nonexistent";
    interp_pool *p = (interp_pool *)1;
    char *err = NULL;
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_INVALID);
    assert_null(p);
    assert_non_null(err);
    free(err);
    o = interp_pool_defaults();
    o.task_timeout = -1;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_pool_create(NULL, NULL, NULL), INTERP_ERR_INVALID);
}

static void pool_create_reports_initializer_error(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.init_source = "error('init exploded')";
    interp_pool *p = NULL;
    char *err = NULL;
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_SCRIPT);
    assert_null(p);
    assert_non_null(err);
    assert_non_null(strstr(err, "init exploded"));
    free(err);
    o.init_source = "this is not lua";
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_SCRIPT);
    assert_non_null(err);
    free(err);
    o.init_source = NULL;
    o.init_file = "/nonexistent/init.lua";
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_NOTFOUND);
    free(err);
}

static void tiny_memory(interp_pool_options *o) { o->memory_limit = 4096; }

static void pool_create_fails_when_memory_limit_too_small(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    tiny_memory(&o);
    interp_pool *p = NULL;
    char *err = NULL;
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_NOMEM);
    assert_null(p);
    assert_non_null(err);
    free(err);
}

static void pool_submit_result(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(21), &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 42);
    assert_true(interp_future_done(f));
    assert_false(interp_future_cancelled(f));
    assert_null(interp_future_error(f));
    assert_int_equal(interp_future_status(f), INTERP_OK);
    interp_future_release(f);

    assert_int_equal(interp_pool_submit(p, "many", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(interp_msg_count(r), 3);
    interp_future_release(f);

    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = "local a, b = ... return a * b"},
                     .args = util_ints(2, (int64_t)6, (int64_t)7)};
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 42);
    interp_future_release(f);
    interp_pool_destroy(p);
}

/* A Lua function copied as bytecode (with an upvalue) runs in a worker; the sandbox refuses
 * it. */
static void pool_submit_function(void **st)
{
    (void)st;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    assert_int_equal(luaL_dostring(L, "local k = 3 return function(x) return x * k end"), LUA_OK);
    interp_msg_opts mo = {.allow_functions = true};
    interp_msg *fnmsg = NULL;
    assert_int_equal(interp_msg_from_lua(L, -1, 1, &mo, &fnmsg, NULL), INTERP_OK);
    lua_close(L);
    interp_pool *p = util_pool(1, NULL);
    interp_task t = {.fn = {.kind = INTERP_FN_FUNCTION, .function = fnmsg},
                     .args = interp_msg_int(14)};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 42);
    interp_future_release(f);
    /* map with the same function */
    const interp_msg *in[2] = {NULL, NULL};
    interp_msg *a = interp_msg_int(1), *b = interp_msg_int(2), *out[2];
    in[0] = a;
    in[1] = b;
    assert_int_equal(interp_pool_map_fn(p, &t.fn, 2, in, out, NULL), INTERP_OK);
    assert_int_equal(util_int(out[1]), 6);
    interp_msg_free(out[0]);
    interp_msg_free(out[1]);
    interp_msg_free(a);
    interp_msg_free(b);
    interp_pool_destroy(p);

    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.sandbox = INTERP_SANDBOX_SAFE;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    t.args = interp_msg_int(1);
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_not_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_OK);
    interp_future_release(f);
    interp_pool_destroy(p);
    interp_msg_free(fnmsg); /* the pool copied it */
}

static void pool_submit_errors(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "boom", interp_msg_cstr("bad thing"), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(interp_future_error(f), "bad thing"));
    assert_non_null(strstr(interp_future_error(f), "stack traceback"));
    assert_null(interp_future_error_value(f));
    interp_future_release(f);

    assert_int_equal(interp_pool_submit(p, "no_such_fn", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_NOTFOUND);
    assert_non_null(interp_future_error(f));
    interp_future_release(f);

    /* the worker survived both */
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(2), &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 4);
    interp_future_release(f);

    /* bad arguments leave ownership with the caller */
    interp_msg *a = interp_msg_int(1);
    assert_int_equal(interp_pool_submit(p, NULL, a, &f), INTERP_ERR_INVALID);
    assert_null(f);
    interp_task t = {.fn = {.kind = (interp_fn_kind)99, .text = "x"}, .args = a};
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_ERR_INVALID);
    assert_int_equal(interp_pool_submit(NULL, "double", a, &f), INTERP_ERR_INVALID);
    interp_msg_free(a);
    interp_pool_destroy(p);
}

static void pool_task_timeout_interrupts_and_worker_survives(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "spin"}, .timeout = 0.05};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_TIMEOUT);
    assert_non_null(interp_future_error(f));
    interp_future_release(f);
    /* blocked in a channel receive: the deadline wakes it too */
    t.fn.text = "wait_go";
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_TIMEOUT);
    interp_future_release(f);
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(5), &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 10);
    interp_future_release(f);
    interp_pool_stats s;
    interp_pool_get_stats(p, &s);
    assert_int_equal(s.timed_out, 2);
    assert_int_equal(s.failed, 2);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.workers_abandoned, 0);
    interp_pool_destroy(p);
}

static void default_timeout(interp_pool_options *o) { o->task_timeout = 0.05; }

static void pool_default_task_timeout(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, default_timeout);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "spin", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_TIMEOUT);
    interp_future_release(f);
    /* timeout < 0: none, so this one must be cancelled instead */
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "started_then_spin"}, .timeout = -1};
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    util_recv(p, "started");
    assert_true(interp_future_running(f));
    assert_int_equal(interp_future_cancel(f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_CANCELLED);
    interp_future_release(f);
    interp_pool_destroy(p);
}

static void limit_1mb(interp_pool_options *o) { o->memory_limit = 1 << 20; }

static void pool_memory_limit(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, limit_1mb);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "hog", interp_msg_int(100000), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_NOMEM);
    interp_future_release(f);
    assert_int_equal(interp_pool_submit(p, "hog", interp_msg_int(10), &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 10);
    interp_future_release(f);
    size_t use = 0, peak = 0;
    assert_int_equal(interp_pool_worker_memory(p, 0, &use, &peak), INTERP_OK);
    assert_true(use > 0 && use <= (1 << 20));
    assert_true(peak >= use);
    assert_int_equal(interp_pool_worker_memory(p, 1, &use, &peak), INTERP_ERR_INVALID);
    interp_pool_destroy(p);
}

static void recycle_3(interp_pool_options *o) { o->max_tasks_per_worker = 3; }

static void pool_recycles_state_after_max_tasks(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, recycle_3);
    int64_t seen[7];
    for (int i = 0; i < 7; i++) {
        interp_future *f;
        assert_int_equal(interp_pool_submit(p, "count", NULL, &f), INTERP_OK);
        const interp_msg *r;
        assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
        seen[i] = util_int(r);
        interp_future_release(f);
    }
    /* a fresh state (initializer run again) every 3 tasks */
    int64_t want[7] = {1, 2, 3, 1, 2, 3, 1};
    for (int i = 0; i < 7; i++)
        assert_int_equal(seen[i], want[i]);
    interp_pool_stats s;
    interp_pool_get_stats(p, &s);
    assert_int_equal(s.states_replaced, 2);
    interp_pool_destroy(p);
}

static void pool_initializer_args(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.init_source = "local a, b = ... base = a * b function get() return base end";
    interp_msg *args = util_ints(2, (int64_t)6, (int64_t)7);
    o.init_args = args;
    interp_pool *p;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    interp_msg_free(args); /* copied by create */
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "get", NULL, &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 42);
    interp_future_release(f);
    interp_pool_destroy(p);
}

static void bounded_1(interp_pool_options *o) { o->max_queued = 1; }

static void pool_bounded_queue(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, bounded_1);
    interp_future *running, *queued, *f = NULL;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &running), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &queued), INTERP_OK);
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "double"}, .args = interp_msg_int(2)};
    assert_int_equal(interp_pool_submit_task(p, &t, 0, &f), INTERP_ERR_TIMEOUT);
    assert_int_equal(interp_pool_submit_task(p, &t, 0.02, &f), INTERP_ERR_TIMEOUT);
    assert_null(f);
    /* cancelling the queued task frees its slot */
    assert_int_equal(interp_future_cancel(queued), INTERP_OK);
    assert_int_equal(interp_pool_submit_task(p, &t, 0, &f), INTERP_OK);
    util_send(p, "go", 1);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 4);
    assert_int_equal(interp_future_result(running, INTERP_FOREVER, NULL), INTERP_OK);
    interp_pool_stats s;
    interp_pool_get_stats(p, &s);
    assert_int_equal(s.cancelled, 1);
    interp_future_release(f);
    interp_future_release(queued);
    interp_future_release(running);
    interp_pool_destroy(p);
}

typedef struct blocked_submit {
    interp_pool *pool;
    interp_future *f;
    int rc;
} blocked_submit;

static void *submit_forever(void *arg)
{
    blocked_submit *b = arg;
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "double"}, .args = interp_msg_int(21)};
    b->rc = interp_pool_submit_task(b->pool, &t, INTERP_FOREVER, &b->f);
    if (b->rc != INTERP_OK)
        interp_msg_free(t.args); /* still ours on error */
    return NULL;
}

/* A submit that waits without limit for queue space gets it once the queue drains, and one
 * blocked at shutdown is released with INTERP_ERR_SHUTDOWN. */
static void pool_bounded_queue_blocks_until_space(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, bounded_1);
    interp_future *running, *queued;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &running), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &queued), INTERP_OK);
    blocked_submit b = {.pool = p};
    pthread_t th;
    pthread_create(&th, NULL, submit_forever, &b);
    util_send(p, "go", 1);
    pthread_join(th, NULL);
    assert_int_equal(b.rc, INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(b.f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 42);
    interp_future_release(b.f);

    /* full again, then shut down while a submitter waits */
    interp_future *again, *full;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &again), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &full), INTERP_OK);
    blocked_submit c = {.pool = p};
    pthread_create(&th, NULL, submit_forever, &c);
    interp_pool_shutdown(p, false, false);
    pthread_join(th, NULL);
    assert_true(c.rc == INTERP_ERR_SHUTDOWN || c.rc == INTERP_OK);
    if (c.rc == INTERP_OK) /* it got in before the shutdown: it runs (drain) */
        interp_future_release(c.f);
    util_send(p, "go", 1);
    interp_pool_shutdown(p, true, false);
    assert_int_equal(interp_future_status(full), INTERP_OK);
    interp_future_release(again);
    interp_future_release(full);
    interp_future_release(queued);
    interp_future_release(running);
    interp_pool_destroy(p);
}

static void pool_channels_connect_host_and_workers(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_chan *in, *again;
    assert_int_equal(interp_pool_channel(p, "jobs", 8, &in), INTERP_OK);
    assert_int_equal(interp_pool_channel(p, "jobs", 0, &again), INTERP_OK);
    assert_ptr_equal(in, again);
    assert_int_equal(interp_chan_capacity(in), 8);
    interp_chan_release(again);
    assert_int_equal(interp_pool_channel(p, "", 0, &again), INTERP_ERR_INVALID);
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE,
                            .text = "local ch = interp.channel('jobs') local s = 0 "
                                    "for i = 1, 3 do s = s + ch:recv() end "
                                    "interp.channel('out'):send(s) return s"}};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(interp_chan_send(in, interp_msg_int(i * 10), INTERP_FOREVER), INTERP_OK);
    interp_chan *out;
    assert_int_equal(interp_pool_channel(p, "out", 0, &out), INTERP_OK);
    interp_msg *m;
    assert_int_equal(interp_chan_recv(out, INTERP_FOREVER, &m), INTERP_OK);
    assert_int_equal(util_int(m), 60);
    interp_msg_free(m);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_OK);
    interp_future_release(f);
    interp_pool_destroy(p);
    /* the host's references outlive the pool */
    assert_int_equal(interp_chan_send(in, interp_msg_int(1), 0), INTERP_OK);
    interp_chan_release(in);
    interp_chan_release(out);
}

static void pool_shutdown_wait_drains_queue(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *blocker, *fs[5];
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &blocker), INTERP_OK);
    util_recv(p, "started");
    for (int i = 0; i < 5; i++)
        assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(i), &fs[i]), INTERP_OK);
    util_send(p, "go", 1);
    assert_int_equal(interp_pool_shutdown(p, true, false), INTERP_OK);
    for (int i = 0; i < 5; i++) {
        const interp_msg *r;
        assert_true(interp_future_done(fs[i]));
        assert_int_equal(interp_future_result(fs[i], 0, &r), INTERP_OK);
        assert_int_equal(util_int(r), 2 * i);
        interp_future_release(fs[i]);
    }
    interp_future *late = NULL;
    interp_msg *a = interp_msg_int(1);
    assert_int_equal(interp_pool_submit(p, "double", a, &late), INTERP_ERR_SHUTDOWN);
    assert_null(late);
    interp_msg_free(a);
    assert_int_equal(interp_pool_shutdown(p, true, true), INTERP_OK); /* idempotent */
    interp_future_release(blocker);
    interp_pool_destroy(p);
}

static void pool_shutdown_cancel_pending(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *blocker, *fs[5];
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &blocker), INTERP_OK);
    util_recv(p, "started");
    for (int i = 0; i < 5; i++)
        assert_int_equal(interp_pool_submit(p, "mark", interp_msg_int(i), &fs[i]), INTERP_OK);
    assert_int_equal(interp_pool_shutdown(p, false, true), INTERP_OK);
    for (int i = 0; i < 5; i++) {
        assert_true(interp_future_cancelled(fs[i]));
        assert_int_equal(interp_future_status(fs[i]), INTERP_ERR_CANCELLED);
        interp_future_release(fs[i]);
    }
    /* the running task runs on and finishes */
    util_send(p, "go", 1);
    assert_int_equal(interp_future_result(blocker, INTERP_FOREVER, NULL), INTERP_OK);
    assert_int_equal(interp_pool_shutdown(p, true, false), INTERP_OK);
    interp_chan *ran;
    interp_pool_channel(p, "ran", 0, &ran);
    assert_int_equal(interp_chan_len(ran), 0); /* no cancelled task ever ran */
    interp_chan_release(ran);
    interp_future_release(blocker);
    interp_pool_destroy(p);
}

static void pool_shutdown_now_interrupts_running(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *a, *b, *q;
    assert_int_equal(interp_pool_submit(p, "started_then_spin", NULL, &a), INTERP_OK);
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &b), INTERP_OK);
    util_recv(p, "started");
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &q), INTERP_OK);
    assert_int_equal(interp_pool_shutdown_now(p), INTERP_OK);
    assert_int_equal(interp_future_status(a), INTERP_ERR_SHUTDOWN);
    assert_int_equal(interp_future_status(b), INTERP_ERR_SHUTDOWN);
    assert_int_equal(interp_future_status(q), INTERP_ERR_CANCELLED);
    interp_pool_stats s;
    interp_pool_get_stats(p, &s);
    assert_int_equal(s.workers, 0);
    assert_int_equal(s.failed, 2);
    assert_int_equal(s.cancelled, 1);
    interp_future_release(a);
    interp_future_release(b);
    interp_future_release(q);
    interp_pool_destroy(p);
}

static void pool_destroy_with_futures_held(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *done, *running, *queued;
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(4), &done), INTERP_OK);
    assert_int_equal(interp_future_wait(done, INTERP_FOREVER), INTERP_OK);
    assert_int_equal(interp_pool_submit(p, "started_then_spin", NULL, &running), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &queued), INTERP_OK);
    interp_pool_destroy(p);
    const interp_msg *r;
    assert_int_equal(interp_future_result(done, 0, &r), INTERP_OK);
    assert_int_equal(util_int(r), 8);
    assert_int_equal(interp_future_status(running), INTERP_ERR_SHUTDOWN);
    assert_true(interp_future_cancelled(queued));
    assert_int_equal(interp_future_cancel(queued), INTERP_ERR_BUSY);
    interp_future_release(done);
    interp_future_release(running);
    interp_future_release(queued);
}

/* The initializer succeeds once per pool, then fails: the first recycle breaks the pool. */
static void pool_broken_when_no_state_can_be_made(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.max_tasks_per_worker = 1;
    o.init_source = UTIL_INIT_ONCE;
    interp_pool *p;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    interp_future *first, *q1, *q2;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &first), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &q1), INTERP_OK);
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(2), &q2), INTERP_OK);
    util_send(p, "go", 1);
    assert_int_equal(interp_future_result(first, INTERP_FOREVER, NULL), INTERP_OK);
    assert_int_equal(interp_future_result(q1, INTERP_FOREVER, NULL), INTERP_ERR_BROKEN);
    assert_int_equal(interp_future_result(q2, INTERP_FOREVER, NULL), INTERP_ERR_BROKEN);
    assert_non_null(strstr(interp_future_error(q1), "second initializer refused"));
    interp_future *late = NULL;
    interp_msg *a = interp_msg_int(3);
    assert_int_equal(interp_pool_submit(p, "double", a, &late), INTERP_ERR_BROKEN);
    interp_msg_free(a);
    interp_future_release(first);
    interp_future_release(q1);
    interp_future_release(q2);
    interp_pool_destroy(p);
}

/* A task stuck in a C call no hook reaches (a blocking read of a pipe) past its deadline plus
 * the stuck grace is abandoned; a replacement keeps the capacity; the stuck thread exits on
 * its own once the call returns, even after the pool is destroyed. */
static void short_stuck(interp_pool_options *o) { o->stuck_grace = 0.05; }

static void pool_abandons_task_stuck_in_c(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    interp_pool *p = util_pool(1, short_stuck);
    char src[256];
    snprintf(src, sizeof src,
             "local f = io.open('/proc/self/fd/%d', 'r') interp.channel('started'):send(true) "
             "local s = f:read(1) f:close() return s",
             fds[0]);
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}, .timeout = 0.05};
    interp_future *stuck;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &stuck), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_future_result(stuck, INTERP_FOREVER, NULL), INTERP_ERR_TIMEOUT);
    assert_non_null(strstr(interp_future_error(stuck), "abandoned"));
    /* capacity kept: the replacement runs tasks */
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(8), &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 16);
    interp_pool_stats s;
    interp_pool_get_stats(p, &s);
    assert_int_equal(s.workers_abandoned, 1);
    assert_int_equal(s.workers, 1);
    interp_future_release(f);
    interp_future_release(stuck);
    interp_pool_destroy(p);
    /* unblock the stuck call; its thread cleans up and exits */
    assert_int_equal(util_unblock_abandoned(fds, threads_before), threads_before);
}

static void pool_two_pools_side_by_side(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = "function who() return 1 end";
    interp_pool *a, *b;
    assert_int_equal(interp_pool_create(&a, &o, NULL), INTERP_OK);
    o.init_source = "function who() return 2 end";
    assert_int_equal(interp_pool_create(&b, &o, NULL), INTERP_OK);
    interp_future *fa, *fb;
    assert_int_equal(interp_pool_submit(a, "who", NULL, &fa), INTERP_OK);
    assert_int_equal(interp_pool_submit(b, "who", NULL, &fb), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(fa, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 1);
    assert_int_equal(interp_future_result(fb, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(util_int(r), 2);
    interp_future_release(fa);
    interp_future_release(fb);
    interp_pool_destroy(a);
    interp_pool_destroy(b);
}

static void pool_stats_count_outcomes(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *fs[4];
    interp_pool_submit(p, "double", interp_msg_int(1), &fs[0]);
    interp_pool_submit(p, "boom", NULL, &fs[1]);
    interp_pool_submit(p, "double", interp_msg_int(2), &fs[2]);
    interp_pool_submit(p, "nope", NULL, &fs[3]);
    assert_int_equal(interp_futures_wait(fs, 4, INTERP_WAIT_ALL, INTERP_FOREVER, NULL), INTERP_OK);
    interp_pool_stats s;
    assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
    assert_int_equal(s.submitted, 4);
    assert_int_equal(s.done, 2);
    assert_int_equal(s.failed, 2);
    assert_int_equal(s.cancelled, 0);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.workers, 2);
    assert_true(s.memory_in_use > 0);
    assert_true(s.memory_peak > 0);
    for (int i = 0; i < 4; i++)
        interp_future_release(fs[i]);
    assert_int_equal(interp_pool_get_stats(NULL, &s), INTERP_ERR_INVALID);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_create_defaults),
        cmocka_unit_test(pool_create_rejects_bad_options),
        cmocka_unit_test(pool_create_reports_initializer_error),
        cmocka_unit_test(pool_create_fails_when_memory_limit_too_small),
        cmocka_unit_test(pool_submit_result),
        cmocka_unit_test(pool_submit_function),
        cmocka_unit_test(pool_submit_errors),
        cmocka_unit_test(pool_task_timeout_interrupts_and_worker_survives),
        cmocka_unit_test(pool_default_task_timeout),
        cmocka_unit_test(pool_memory_limit),
        cmocka_unit_test(pool_recycles_state_after_max_tasks),
        cmocka_unit_test(pool_initializer_args),
        cmocka_unit_test(pool_bounded_queue),
        cmocka_unit_test(pool_bounded_queue_blocks_until_space),
        cmocka_unit_test(pool_channels_connect_host_and_workers),
        cmocka_unit_test(pool_shutdown_wait_drains_queue),
        cmocka_unit_test(pool_shutdown_cancel_pending),
        cmocka_unit_test(pool_shutdown_now_interrupts_running),
        cmocka_unit_test(pool_destroy_with_futures_held),
        cmocka_unit_test(pool_broken_when_no_state_can_be_made),
        cmocka_unit_test(pool_abandons_task_stuck_in_c),
        cmocka_unit_test(pool_two_pools_side_by_side),
        cmocka_unit_test(pool_stats_count_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
