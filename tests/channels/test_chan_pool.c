/* test_chan_pool.c - channels through the pool: named channels shared by host and workers, a
 * two-stage pipeline of workers, and blocked channel calls woken by cancellation, deadlines
 * and shutdown. Uses only the public API (interp_pool.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp_pool.h"

static const char *INIT =
    "function produce(n)\n"
    "  local out = interp.channel('raw')\n"
    "  for i = 1, n do out:send(i) end\n"
    "  out:close()\n"
    "  return n\n"
    "end\n"
    "function transform()\n"
    "  local inp, out = interp.channel('raw'), interp.channel('cooked')\n"
    "  local count = 0\n"
    "  while true do\n"
    "    local v, err = inp:recv()\n"
    "    if err == 'closed' then break end\n"
    "    out:send({v, v * 2})\n"
    "    count = count + 1\n"
    "  end\n"
    "  out:close()\n"
    "  return count\n"
    "end\n"
    "-- tell the host we are about to block, then block in `how` on channel `name`\n"
    "function block(how, name)\n"
    "  local ch = interp.channel(name, 1)\n"
    "  -- fill it before saying so: the host may cancel as soon as it hears, and a cancelled\n"
    "  -- task's first send would fail\n"
    "  if how == 'send' then ch:send(1) end\n"
    "  interp.channel('ready'):send(how)\n"
    "  if how == 'recv' then return ch:recv()\n"
    "  elseif how == 'send' then return ch:send(2)\n"
    "  else return interp.select({ch, interp.channel(name .. '2')}) end\n"
    "end\n"
    "function echo(n)\n"
    "  local inp, out = interp.channel('to_worker'), interp.channel('to_host')\n"
    "  for i = 1, n do out:send(inp:recv() + 1) end\n"
    "  return true\n"
    "end\n";

static interp_pool *new_pool(int workers)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.init_source = INIT;
    interp_pool *pool = NULL;
    char *err = NULL;
    int rc = interp_pool_create(&pool, &o, &err);
    if (rc != INTERP_OK)
        fail_msg("pool: %s: %s", interp_strerror(rc), err ? err : "");
    return pool;
}

/* The first value of m as an integer (-1 if it is not one). */
static int64_t first_int(const interp_msg *m)
{
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    if (!interp_msg_next(&it, &v) || v.type != INTERP_MSG_INT)
        return -1;
    return v.as.i;
}

static interp_msg *args2(const char *a, const char *b)
{
    interp_msg_builder *bld = interp_msg_builder_new();
    assert_non_null(bld);
    assert_int_equal(interp_msg_add_cstr(bld, a), INTERP_OK);
    assert_int_equal(interp_msg_add_cstr(bld, b), INTERP_OK);
    interp_msg *m;
    assert_int_equal(interp_msg_builder_finish(bld, &m), INTERP_OK);
    return m;
}

/* producer -> transformer -> host: 100,000 messages, in order, none lost or duplicated. */
static void chan_pool_pipeline(void **state)
{
    (void)state;
    enum { N = 100000 };
    interp_pool *pool = new_pool(2);
    interp_chan *cooked;
    assert_int_equal(interp_pool_channel(pool, "cooked", 256, &cooked), INTERP_OK);
    interp_future *fp, *ft;
    assert_int_equal(interp_pool_submit(pool, "transform", NULL, &ft), INTERP_OK);
    assert_int_equal(interp_pool_submit(pool, "produce", interp_msg_int(N), &fp), INTERP_OK);
    int64_t next = 1;
    int bad = 0;
    for (;;) {
        interp_msg *m;
        int rc = interp_chan_recv(cooked, INTERP_FOREVER, &m);
        if (rc == INTERP_ERR_CLOSED)
            break;
        assert_int_equal(rc, INTERP_OK);
        interp_msg_iter it = interp_msg_iter_init(m);
        interp_msg_value v, a, b;
        bool ok = interp_msg_next(&it, &v) && v.type == INTERP_MSG_ARRAY && v.as.seq.count == 2 &&
                  interp_msg_next(&v.as.seq.items, &a) && interp_msg_next(&v.as.seq.items, &b) &&
                  a.type == INTERP_MSG_INT && b.type == INTERP_MSG_INT && a.as.i == next &&
                  b.as.i == 2 * next;
        interp_msg_free(m);
        if (!ok && bad++ == 0)
            fail_msg("message %lld is wrong", (long long)next);
        next++;
    }
    assert_int_equal(next - 1, N);
    const interp_msg *r;
    assert_int_equal(interp_future_result(fp, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(first_int(r), N);
    assert_int_equal(interp_future_result(ft, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(first_int(r), N);
    interp_future_release(fp);
    interp_future_release(ft);
    interp_chan_release(cooked);
    interp_pool_destroy(pool);
}

/* The host and a worker talk both ways through named channels. */
static void chan_pool_host_worker(void **state)
{
    (void)state;
    interp_pool *pool = new_pool(1);
    interp_chan *to, *from;
    assert_int_equal(interp_pool_channel(pool, "to_worker", 4, &to), INTERP_OK);
    assert_int_equal(interp_pool_channel(pool, "to_host", 4, &from), INTERP_OK);
    interp_future *f;
    assert_int_equal(interp_pool_submit(pool, "echo", interp_msg_int(100), &f), INTERP_OK);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(interp_chan_send(to, interp_msg_int(i * 10), INTERP_FOREVER), INTERP_OK);
        interp_msg *m;
        assert_int_equal(interp_chan_recv(from, INTERP_FOREVER, &m), INTERP_OK);
        assert_int_equal(first_int(m), i * 10 + 1);
        interp_msg_free(m);
    }
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_OK);
    interp_future_release(f);
    interp_chan_release(to);
    interp_chan_release(from);
    interp_pool_destroy(pool);
}

/* Submit block(how, name) and wait until the worker says it is about to block. */
static interp_future *start_blocked(interp_pool *pool, interp_chan *ready, const char *how,
                                    const char *name, double timeout)
{
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "block"},
                     .args = args2(how, name),
                     .timeout = timeout};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(pool, &t, INTERP_FOREVER, &f), INTERP_OK);
    interp_msg *m;
    assert_int_equal(interp_chan_recv(ready, INTERP_FOREVER, &m), INTERP_OK);
    interp_msg_free(m);
    return f;
}

static void expect_failure(interp_future *f, int status, const char *text)
{
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), status);
    const char *e = interp_future_error(f);
    assert_non_null(e);
    if (!strstr(e, text))
        fail_msg("error \"%s\" does not contain \"%s\"", e, text);
}

static void chan_pool_cancel_wakes_worker(void **state)
{
    (void)state;
    interp_pool *pool = new_pool(3);
    interp_chan *ready;
    assert_int_equal(interp_pool_channel(pool, "ready", 8, &ready), INTERP_OK);
    interp_future *f[3];
    f[0] = start_blocked(pool, ready, "recv", "c0", 0);
    f[1] = start_blocked(pool, ready, "send", "c1", 0);
    f[2] = start_blocked(pool, ready, "select", "c2", 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(interp_future_cancel(f[i]), INTERP_OK);
    for (int i = 0; i < 3; i++) {
        expect_failure(f[i], INTERP_ERR_CANCELLED, "cancelled");
        interp_future_release(f[i]);
    }
    /* the workers are free again: a new task runs */
    interp_chan *c1;
    assert_int_equal(interp_pool_channel(pool, "c1", 1, &c1), INTERP_OK);
    assert_int_equal(interp_chan_len(c1), 1); /* the first send went through, the second not */
    interp_chan_release(c1);
    interp_future *g = start_blocked(pool, ready, "recv", "c3", 0);
    interp_chan *c3;
    assert_int_equal(interp_pool_channel(pool, "c3", 1, &c3), INTERP_OK);
    assert_int_equal(interp_chan_send(c3, interp_msg_int(7), INTERP_FOREVER), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(g, INTERP_FOREVER, &r), INTERP_OK);
    assert_int_equal(first_int(r), 7);
    interp_future_release(g);
    interp_chan_release(c3);
    interp_chan_release(ready);
    interp_pool_destroy(pool);
}

static void chan_pool_deadline_wakes_worker(void **state)
{
    (void)state;
    interp_pool *pool = new_pool(1);
    interp_chan *ready;
    assert_int_equal(interp_pool_channel(pool, "ready", 8, &ready), INTERP_OK);
    interp_future *f = start_blocked(pool, ready, "recv", "d0", 0.05);
    expect_failure(f, INTERP_ERR_TIMEOUT, "timed out");
    interp_future_release(f);
    interp_chan_release(ready);
    interp_pool_destroy(pool);
}

static void chan_pool_shutdown_wakes_worker(void **state)
{
    (void)state;
    interp_pool *pool = new_pool(2);
    interp_chan *ready;
    assert_int_equal(interp_pool_channel(pool, "ready", 8, &ready), INTERP_OK);
    interp_future *f[2];
    f[0] = start_blocked(pool, ready, "recv", "s0", 0);
    f[1] = start_blocked(pool, ready, "select", "s1", 0);
    assert_int_equal(interp_pool_shutdown_now(pool), INTERP_OK);
    for (int i = 0; i < 2; i++) {
        expect_failure(f[i], INTERP_ERR_SHUTDOWN, "shutdown");
        interp_future_release(f[i]);
    }
    interp_chan_release(ready);
    interp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chan_pool_pipeline),
        cmocka_unit_test(chan_pool_host_worker),
        cmocka_unit_test(chan_pool_cancel_wakes_worker),
        cmocka_unit_test(chan_pool_deadline_wakes_worker),
        cmocka_unit_test(chan_pool_shutdown_wakes_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
