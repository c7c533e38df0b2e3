/* test_ctx_run.c - how contexts' calls are run: a context made runnable by a call a worker
 * runs is kept to run next on that worker, yet never waits for the end of a long call; a call
 * dropped while parked (shutdown_now, a pool destroyed under it) still runs its <close>
 * handlers, and a handler that loops cannot hold the thread that drops it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctx_util.h"

static atomic_int closed_count;

static int l_mark(lua_State *L)
{
    (void)L;
    atomic_fetch_add(&closed_count, 1);
    return 0;
}

static int open_mark(lua_State *L)
{
    lua_pushcfunction(L, l_mark);
    return 1;
}

static const interp_host_lib MARK_LIB[] = {{.name = "mark", .open = open_mark}};

static interp_ctx *make_ctx(interp_pool *p, const char *name, const char *init,
                            void (*tweak)(interp_ctx_options *))
{
    interp_ctx_options o = {
        .name = name, .init_source = init, .host_libs = MARK_LIB, .n_host_libs = 1};
    if (tweak)
        tweak(&o);
    return ctx_create_ok(p, &o);
}

/* A post made by a call that then runs on: the posted context is kept by that call's worker,
 * but runs (on the other worker) while the call goes on, not after it. */
static void test_held_post_runs_during_long_call(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *b =
        make_ctx(p, "held_b", "function ping() interp.channel('from_b', 1):send(true) end", NULL);
    interp_ctx *a = make_ctx(p, "held_a",
                             "function post_then_spin()\n"
                             "  interp.context('held_b'):post('ping')\n"
                             "  local stop = interp.channel('stop_a', 1)\n"
                             "  while not stop:recv(0) do end\n"
                             "  return 1\n"
                             "end",
                             NULL);
    interp_future *f;
    assert_int_equal(interp_ctx_call(a, "post_then_spin", NULL, &f), INTERP_OK);
    interp_chan *from_b, *stop;
    assert_int_equal(interp_pool_channel(p, "from_b", 1, &from_b), INTERP_OK);
    assert_int_equal(interp_pool_channel(p, "stop_a", 1, &stop), INTERP_OK);
    interp_msg *m = NULL;
    /* without the watchdog's push of the held context this waits for ever: a spins until told */
    assert_int_equal(interp_chan_recv(from_b, 60, &m), INTERP_OK);
    interp_msg_free(m);
    assert_false(interp_future_done(f));
    assert_int_equal(interp_chan_send(stop, interp_msg_int(1), 60), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 60, &r), INTERP_OK);
    assert_int_equal(util_int(r), 1);
    interp_future_release(f);
    interp_chan_release(from_b);
    interp_chan_release(stop);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

static const char *const GUARDED =
    "local function guard(f) return setmetatable({}, {__close = f}) end\n"
    "function wait_guarded(name)\n"
    "  local g <close> = guard(function() mark() end)\n"
    "  local h <close> = guard(function() mark() end)\n"
    "  return interp.channel(name):recv()\n"
    "end\n"
    "function wait_hostile(name)\n"
    "  local h <close> = guard(function() while true do end end)\n"
    "  local k <close> = guard(function() while true do pcall(function() while true do end end)"
    " end end)\n"
    "  local g <close> = guard(function() mark() end)\n"
    "  return interp.channel(name):recv()\n"
    "end\n";

static void never_slice(interp_ctx_options *o) { o->time_slice = -1; }

/* Wait (up to 60 s) until the pool's queue holds n jobs. */
static size_t await_queued(interp_pool *p, size_t n)
{
    size_t got = interp__queue_count(&p->q);
    for (double end = interp__now() + 60; got < n && interp__now() < end;) {
        usleep(1000);
        got = interp__queue_count(&p->q);
    }
    return got;
}

/* shutdown_now takes a context out of the queue between two slices of its call (woken from
 * its wait, not yet resumed: the only worker is held by a loop that never yields): the call
 * ends there, and its <close> handlers run (last declared first); ones that loop cannot hold
 * the thread past the grace (shutdown_now returns). */
static void test_shutdown_now_closes_queued(void **state)
{
    (void)state;
    for (int hostile = 0; hostile < 2; hostile++) {
        atomic_store(&closed_count, 0);
        interp_pool *p = util_pool(1, NULL);
        interp_ctx *c = make_ctx(p, NULL, GUARDED, NULL);
        interp_future *f, *fx;
        interp_task t = {
            .fn = {.kind = INTERP_FN_NAME, .text = hostile ? "wait_hostile" : "wait_guarded"},
            .args = interp_msg_str("wake_c", 6)};
        assert_int_equal(interp_ctx_call_task(c, &t, &f), INTERP_OK);
        assert_int_equal(await_parked(p, 1), 1);
        interp_ctx *x = make_ctx(p, NULL,
                                 "function spin() interp.channel('x_started'):send(true)\n"
                                 "  while true do end end",
                                 never_slice);
        assert_int_equal(interp_ctx_call(x, "spin", NULL, &fx), INTERP_OK);
        util_recv(p, "x_started");
        interp_chan *wake;
        assert_int_equal(interp_pool_channel(p, "wake_c", 1, &wake), INTERP_OK);
        assert_int_equal(interp_chan_send(wake, interp_msg_int(1), 60), INTERP_OK);
        interp_chan_release(wake);
        assert_int_equal(await_queued(p, 1), 1);
        assert_int_equal(interp_pool_shutdown_now(p), INTERP_OK);
        assert_int_not_equal(interp_future_result(f, 60, NULL), INTERP_OK);
        assert_int_not_equal(interp_future_result(fx, 60, NULL), INTERP_OK);
        assert_int_equal(atomic_load(&closed_count), hostile ? 1 : 2);
        interp_future_release(f);
        interp_future_release(fx);
        interp_ctx_close(c);
        interp_ctx_close(x);
        interp_pool_destroy(p);
    }
}

/* A context closed, or its pool destroyed, while its call is parked: the <close> handlers
 * run. */
static void test_close_and_destroy_close_parked(void **state)
{
    (void)state;
    atomic_store(&closed_count, 0);
    interp_pool *p = util_pool(2, NULL);
    interp_ctx *c = make_ctx(p, NULL, GUARDED, NULL);
    interp_future *f;
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "wait_guarded"},
                     .args = interp_msg_str("never", 5)};
    assert_int_equal(interp_ctx_call_task(c, &t, &f), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    interp_ctx_close(c);
    assert_int_equal(interp_future_result(f, 60, NULL), INTERP_ERR_CANCELLED);
    interp_future_release(f);
    assert_int_equal(await_parked(p, 0), 0);
    assert_int_equal(atomic_load(&closed_count), 2);

    atomic_store(&closed_count, 0);
    c = make_ctx(p, NULL, GUARDED, NULL);
    t.args = interp_msg_str("never", 5);
    assert_int_equal(interp_ctx_call_task(c, &t, &f), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    interp_pool_destroy(p); /* shutdown_now inside: the parked call ends, closed */
    interp_future_release(f);
    interp_ctx_close(c);
    assert_int_equal(atomic_load(&closed_count), 2);
}

/* A sandboxed tenant's <close> handlers never run on the thread that drops its parked call
 * (interp_pool_destroy here: the host's). The hook bounds Lua code there, but no deadline
 * bounds a C path the hook cannot reach (a __call chain: minutes, quadratic in the stack),
 * and the host's own thread cannot be abandoned as a worker's is: a plugin held its host's
 * destroy for 155 s that way. The handlers are dropped with the call instead. */
static pthread_t dropper;
static atomic_int marks_on_dropper;

static int l_mark_thread(lua_State *L)
{
    (void)L;
    if (pthread_equal(pthread_self(), dropper))
        atomic_fetch_add(&marks_on_dropper, 1);
    atomic_fetch_add(&closed_count, 1);
    return 0;
}

static int open_probe(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_mark_thread);
    lua_setfield(L, -2, "mark");
    return 1;
}

static void test_sandboxed_close_handlers_not_on_dropper(void **state)
{
    (void)state;
    atomic_store(&closed_count, 0);
    atomic_store(&marks_on_dropper, 0);
    interp_pool *p = util_pool(1, NULL);
    static const interp_host_lib probe[] = {{.name = "probe", .open = open_probe, .sandbox = true}};
    interp_ctx_options o = {
        .sandbox = INTERP_SANDBOX_SAFE,
        .memory_limit = (size_t)2 << 20,
        .host_libs = probe,
        .n_host_libs = 1,
        .init_source = "local function guard(f) return setmetatable({}, {__close = f}) end\n"
                       "function wait_here()\n"
                       "  local g <close> = guard(function() probe.mark() end)\n"
                       "  local b <close> = guard(function() probe.mark()\n"
                       "    local t = {} setmetatable(t, {__call = t}) t() end)\n"
                       "  return interp.channel('never'):recv()\n"
                       "end\n"};
    interp_ctx *c = ctx_create_ok(p, &o);
    interp_chan *never;
    assert_int_equal(interp_pool_channel(p, "never", 1, &never), INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel(c, "never", never), INTERP_OK);
    interp_future *f;
    assert_int_equal(interp_ctx_call(c, "wait_here", NULL, &f), INTERP_OK);
    assert_int_equal(await_parked(p, 1), 1);
    /* the only worker spins; c, woken, waits in the queue, where destroy takes it out */
    interp_ctx *x = make_ctx(p, NULL,
                             "function spin() interp.channel('x_started'):send(true)\n"
                             "  while true do end end",
                             never_slice);
    interp_future *fx;
    assert_int_equal(interp_ctx_call(x, "spin", NULL, &fx), INTERP_OK);
    util_recv(p, "x_started");
    assert_int_equal(interp_chan_send(never, interp_msg_int(1), 60), INTERP_OK);
    assert_int_equal(await_queued(p, 1), 1);
    dropper = pthread_self();
    double t0 = interp__now();
    interp_pool_destroy(p); /* shutdown_now inside: the parked call ends here */
    double took = interp__now() - t0;
    printf("destroy took %.3f s, %d handlers ran, %d on its thread\n", took,
           atomic_load(&closed_count), atomic_load(&marks_on_dropper));
    assert_int_equal(atomic_load(&marks_on_dropper), 0);
    assert_true(took < 10.0);
    assert_int_not_equal(interp_future_result(f, 60, NULL), INTERP_OK);
    interp_future_release(f);
    interp_future_release(fx);
    interp_chan_release(never);
    interp_ctx_close(c);
    interp_ctx_close(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_post_runs_during_long_call),
        cmocka_unit_test(test_shutdown_now_closes_queued),
        cmocka_unit_test(test_close_and_destroy_close_parked),
        cmocka_unit_test(test_sandboxed_close_handlers_not_on_dropper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
