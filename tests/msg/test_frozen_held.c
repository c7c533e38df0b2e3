/* test_frozen_held.c - a version of a shared value the host has replaced is paid for by the
 * state that keeps it (msg/frozen_lua.c, "what a state holds of shared values"): a sandboxed
 * script keeping every version it is shown runs into its own memory limit, while the current
 * version stays free to read whatever its size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp_frozen.h"
#include "interp_pool.h"

#define LIMIT ((size_t)8 << 20)
#define VERSION ((size_t)1 << 20)

static interp_pool *make_pool(void)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.sandbox = INTERP_SANDBOX_SAFE;
    o.memory_limit = LIMIT;
    o.task_timeout = 60.0;
    interp_pool *p;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    return p;
}

/* Share a new version of `cfg`: size bytes of `fill`. */
static void share_version(interp_pool *p, size_t size, char fill)
{
    char *bytes = malloc(size);
    assert_non_null(bytes);
    memset(bytes, fill, size);
    interp_frozen *f;
    assert_int_equal(interp_frozen_bytes(bytes, size, &f), INTERP_OK);
    free(bytes);
    assert_int_equal(interp_pool_share(p, "cfg", f), INTERP_OK);
    interp_frozen_release(f);
}

static interp_future *submit(interp_pool *p, const char *src)
{
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    return f;
}

/* The script runs `keep` 40 times, each time after the host replaced the value (the host
 * waits on "req", replaces, answers on "ack"); it must stop with `expect`, the frozen bytes
 * alive staying near the limit. */
static void keep_versions(const char *keep, const char *expect)
{
    interp_pool *p = make_pool();
    interp_chan *req, *ack;
    assert_int_equal(interp_pool_channel(p, "req", 4, &req), INTERP_OK);
    assert_int_equal(interp_pool_channel(p, "ack", 4, &ack), INTERP_OK);
    share_version(p, VERSION, 'a');
    char src[512];
    snprintf(src, sizeof src,
             "local keep = {} for i = 1, 40 do %s "
             "interp.channel('req'):send(i) interp.channel('ack'):recv() end return #keep",
             keep);
    interp_future *fut = submit(p, src);
    size_t most = 0;
    for (int i = 0; i < 40; i++) {
        interp_msg *m = NULL;
        while (!m && !interp_future_done(fut))
            interp_chan_recv(req, 0.05, &m);
        if (!m)
            break; /* the task stopped */
        interp_msg_free(m);
        share_version(p, VERSION, (char)('b' + i % 20));
        size_t bytes;
        interp_frozen_totals(NULL, &bytes);
        most = bytes > most ? bytes : most;
        assert_int_equal(interp_chan_send(ack, interp_msg_bool(true), 30.0), INTERP_OK);
    }
    int rc = interp_future_result(fut, 60.0, NULL);
    const char *why = rc == INTERP_OK ? "" : interp_future_error(fut);
    printf("%s x40: %s; most frozen bytes alive %.1f MiB\n", keep,
           rc == INTERP_OK ? "all kept" : why, (double)most / (1 << 20));
    assert_int_not_equal(rc, INTERP_OK);
    assert_non_null(strstr(why, "not enough memory"));
    assert_non_null(strstr(why, expect));
    assert_true(most <= LIMIT + 3 * VERSION);
    interp_future_release(fut);
    /* the task's views went with its garbage: the next task keeps a version again */
    fut = submit(p, "local a = interp.shared('cfg') return #a");
    assert_int_equal(interp_future_result(fut, 60.0, NULL), INTERP_OK);
    interp_future_release(fut);
    interp_chan_release(req);
    interp_chan_release(ack);
    interp_pool_destroy(p);
}

/* Before: 40 MiB pinned under an 8 MiB limit, nothing refused. */
static void kept_versions_are_charged(void **state)
{
    (void)state;
    keep_versions("keep[i] = interp.shared('cfg') assert(#keep[i] == 1 << 20)",
                  "replaced version of a shared value");
}

/* A version frozen inside a value of the state's own: the freeze pays for it. */
static void versions_frozen_inside_are_charged(void **state)
{
    (void)state;
    keep_versions("keep[i] = interp.freeze({interp.shared('cfg')})", "cannot freeze");
}

/* The current version is free to read, also past the reader's own limit, and a version kept
 * across one replacement fits. */
static void current_version_is_free(void **state)
{
    (void)state;
    interp_pool *p = make_pool();
    share_version(p, 2 * LIMIT, 'z');
    interp_future *fut = submit(p, "local n = 0 for i = 1, 100 do local v = interp.shared('cfg') "
                                   "n = n + #v end return n");
    assert_int_equal(interp_future_result(fut, 60.0, NULL), INTERP_OK);
    interp_future_release(fut);
    interp_chan *req, *ack;
    assert_int_equal(interp_pool_channel(p, "req", 4, &req), INTERP_OK);
    assert_int_equal(interp_pool_channel(p, "ack", 4, &ack), INTERP_OK);
    share_version(p, VERSION, 'a');
    fut = submit(p, "local old = interp.shared('cfg') interp.channel('req'):send(1) "
                    "interp.channel('ack'):recv() local new = interp.shared('cfg') "
                    "return old:byte(1) * 256 + new:byte(1)");
    interp_msg *m = NULL;
    assert_int_equal(interp_chan_recv(req, 30.0, &m), INTERP_OK);
    interp_msg_free(m);
    share_version(p, VERSION, 'b');
    assert_int_equal(interp_chan_send(ack, interp_msg_bool(true), 30.0), INTERP_OK);
    const interp_msg *res = NULL;
    assert_int_equal(interp_future_result(fut, 60.0, &res), INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(res);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.as.i, 'a' * 256 + 'b');
    interp_future_release(fut);
    interp_chan_release(req);
    interp_chan_release(ack);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kept_versions_are_charged),
        cmocka_unit_test(versions_frozen_inside_are_charged),
        cmocka_unit_test(current_version_is_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
