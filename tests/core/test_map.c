/* test_map.c - interp_pool_map, map_fn and map_stream: ordered results, chunk sizes, per-item
 * status and errors, stop_on_error, overall timeout, bounded in-flight streaming, shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core_impl.h"
#include "interp_impl.h"
#include "msg_impl.h"
#include "pool_util.h"

static interp_msg **ints_upto(size_t n)
{
    interp_msg **in = malloc(n * sizeof *in);
    for (size_t i = 0; i < n; i++)
        in[i] = interp_msg_int((int64_t)i);
    return in;
}

/* n result slots holding garbage, as a caller's uncleared array would: the map must write
 * every slot (a NULL for each failed item) */
static interp_msg **dirty_slots(size_t n)
{
    interp_msg **out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = (interp_msg *)(uintptr_t)0xdeadbeef;
    return out;
}

static void free_msgs(interp_msg **m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        interp_msg_free(m[i]);
    free(m);
}

static void map_ordered_results_any_chunksize(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    const size_t n = 1000;
    interp_msg **in = ints_upto(n);
    size_t sizes[] = {0, 1, 7, 1000, 5000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        interp_msg **out = calloc(n, sizeof *out);
        interp_map_options mo = {.chunksize = sizes[k]};
        assert_int_equal(interp_pool_map(p, "double", n, (const interp_msg *const *)in, out, &mo),
                         INTERP_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(util_int(out[i]), 2 * (int64_t)i);
        free_msgs(out, n);
    }
    interp_pool_stats s;
    interp_pool_get_stats(p, &s);
    assert_int_equal(s.done, 5 * n);
    free_msgs(in, n);
    interp_pool_destroy(p);
}

static void map_empty_and_invalid(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    assert_int_equal(interp_pool_map(p, "double", 0, NULL, NULL, NULL), INTERP_OK);
    interp_msg *out[1];
    assert_int_equal(interp_pool_map(p, "double", 1, NULL, out, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_pool_map(NULL, "double", 0, NULL, out, NULL), INTERP_ERR_INVALID);
    const interp_msg *in[1] = {NULL};
    assert_int_equal(interp_pool_map(p, NULL, 1, in, out, NULL), INTERP_ERR_INVALID);
    /* NULL input: no arguments */
    interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = "return select('#', ...)"};
    assert_int_equal(interp_pool_map_fn(p, &fn, 1, in, out, NULL), INTERP_OK);
    assert_int_equal(util_int(out[0]), 0);
    interp_msg_free(out[0]);
    interp_pool_destroy(p);
}

static void map_reports_each_item(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_fn fn = {.kind = INTERP_FN_SOURCE,
                    .text = "local x = ... if x % 10 == 3 then error('bad item ' .. x) end "
                            "return x + 1"};
    const size_t n = 50;
    interp_msg **in = ints_upto(n);
    interp_msg **out = dirty_slots(n);
    int status[50];
    char *errors[50];
    interp_map_options mo = {.chunksize = 4, .status = status, .errors = errors};
    assert_int_equal(interp_pool_map_fn(p, &fn, n, (const interp_msg *const *)in, out, &mo),
                     INTERP_ERR_SCRIPT);
    for (size_t i = 0; i < n; i++) {
        if (i % 10 == 3) {
            assert_int_equal(status[i], INTERP_ERR_SCRIPT);
            assert_null(out[i]);
            char want[32];
            snprintf(want, sizeof want, "bad item %zu", i);
            assert_non_null(strstr(errors[i], want));
        } else {
            assert_int_equal(status[i], INTERP_OK);
            assert_null(errors[i]);
            assert_int_equal(util_int(out[i]), (int64_t)i + 1);
        }
        free(errors[i]);
    }
    free_msgs(out, n);
    free_msgs(in, n);
    interp_pool_destroy(p);
}

static void map_stop_on_error(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_fn fn = {.kind = INTERP_FN_SOURCE,
                    .text = "local x = ... if x == 2 then error('stop here') end return x"};
    const size_t n = 200;
    interp_msg **in = ints_upto(n);
    interp_msg **out = dirty_slots(n);
    int *status = calloc(n, sizeof *status);
    interp_map_options mo = {.chunksize = 1, .stop_on_error = true, .status = status};
    assert_int_equal(interp_pool_map_fn(p, &fn, n, (const interp_msg *const *)in, out, &mo),
                     INTERP_ERR_SCRIPT);
    assert_int_equal(status[0], INTERP_OK);
    assert_int_equal(status[1], INTERP_OK);
    assert_int_equal(status[2], INTERP_ERR_SCRIPT);
    /* the tail never started */
    assert_int_equal(status[n - 1], INTERP_ERR_CANCELLED);
    assert_null(out[n - 1]);
    size_t cancelled = 0;
    for (size_t i = 3; i < n; i++) {
        cancelled += status[i] == INTERP_ERR_CANCELLED;
        if (status[i] != INTERP_OK)
            assert_null(out[i]); /* written, though the map never ran it */
    }
    assert_true(cancelled > n / 2);
    free(status);
    free_msgs(out, n);
    free_msgs(in, n);
    interp_pool_destroy(p);
}

static void map_overall_timeout(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_fn fn = {.kind = INTERP_FN_SOURCE,
                    .text = "local x = ... if x >= 4 then while true do end end return x"};
    const size_t n = 40;
    interp_msg **in = ints_upto(n);
    interp_msg **out = dirty_slots(n);
    int status[40];
    char *errors[40];
    interp_map_options mo = {.chunksize = 2, .timeout = 0.5, .status = status, .errors = errors};
    assert_int_equal(interp_pool_map_fn(p, &fn, n, (const interp_msg *const *)in, out, &mo),
                     INTERP_ERR_TIMEOUT);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(status[i], INTERP_OK);
        assert_int_equal(util_int(out[i]), (int64_t)i);
    }
    for (size_t i = 4; i < n; i++) {
        assert_int_equal(status[i], INTERP_ERR_TIMEOUT);
        assert_null(out[i]);
        assert_non_null(errors[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(errors[i]);
    /* the workers are free again */
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_OK);
    interp_future_release(f);
    free_msgs(out, n);
    free_msgs(in, n);
    interp_pool_destroy(p);
}

static double g_task_timeout;
static void with_task_timeout(interp_pool_options *o) { o->task_timeout = g_task_timeout; }

/* task_timeout is each item's deadline: an item that loops forever times out, the others of
 * its chunk (before and after it) run and succeed; a second looping item in the same chunk
 * gets its own deadline too. */
static void map_item_deadline_spares_the_rest_of_its_chunk(void **st)
{
    (void)st;
    g_task_timeout = 0.2;
    interp_pool *p = util_pool(2, with_task_timeout);
    interp_fn fn = {.kind = INTERP_FN_SOURCE,
                    .text = "local x = ... if x == 3 or x == 7 then while true do end end "
                            "return x * 2"};
    const size_t n = 10;
    interp_msg **in = ints_upto(n);
    interp_msg **out = dirty_slots(n);
    int status[10];
    char *errors[10];
    size_t sizes[] = {10, 4}; /* all in one chunk; chunks of 4 */
    for (size_t k = 0; k < 2; k++) {
        interp_map_options mo = {.chunksize = sizes[k], .status = status, .errors = errors};
        assert_int_equal(interp_pool_map_fn(p, &fn, n, (const interp_msg *const *)in, out, &mo),
                         INTERP_ERR_TIMEOUT);
        for (size_t i = 0; i < n; i++) {
            if (i == 3 || i == 7) {
                assert_int_equal(status[i], INTERP_ERR_TIMEOUT);
                assert_null(out[i]);
                assert_non_null(strstr(errors[i], "timed out"));
            } else {
                assert_int_equal(status[i], INTERP_OK);
                assert_int_equal(util_int(out[i]), 2 * (int64_t)i);
                assert_null(errors[i]);
            }
            free(errors[i]);
            interp_msg_free(out[i]);
            out[i] = NULL;
        }
    }
    interp_pool_stats s;
    interp_pool_get_stats(p, &s);
    assert_int_equal(s.timed_out, 4);
    assert_int_equal(s.done, 16);
    free(out);
    free_msgs(in, n);
    interp_pool_destroy(p);
}

/* The deadline is per item, not per chunk: a chunk whose items together take several times
 * task_timeout, each well within it, succeeds (items sleep a tenth of the timeout). */
static void map_item_deadline_is_per_item_not_per_chunk(void **st)
{
    (void)st;
    g_task_timeout = 0.4;
    interp_pool *p = util_pool(1, with_task_timeout);
    interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = "interp.sleep(0.04) return (...)"};
    const size_t n = 30; /* 1.2 s in one chunk: 3 x task_timeout */
    interp_msg **in = ints_upto(n);
    interp_msg **out = calloc(n, sizeof *out);
    interp_map_options mo = {.chunksize = n};
    assert_int_equal(interp_pool_map_fn(p, &fn, n, (const interp_msg *const *)in, out, &mo),
                     INTERP_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(util_int(out[i]), (int64_t)i);
    free_msgs(out, n);
    free_msgs(in, n);
    interp_pool_destroy(p);
}

typedef struct stream_ctx {
    size_t n, read, delivered, max_outstanding, limit;
    int64_t sum;
    bool in_order;
    int failures;
} stream_ctx;

static bool next_in(void *ud, size_t index, interp_msg **args)
{
    stream_ctx *c = ud;
    if (index != c->read)
        c->in_order = false;
    if (c->read == c->n)
        return false;
    *args = interp_msg_int((int64_t)c->read);
    c->read++;
    size_t outstanding = c->read - c->delivered;
    if (outstanding > c->max_outstanding)
        c->max_outstanding = outstanding;
    return true;
}

static void on_res(void *ud, size_t index, int status, interp_msg *result, const char *error)
{
    stream_ctx *c = ud;
    if (index != c->delivered)
        c->in_order = false;
    c->delivered++;
    if (status == INTERP_OK)
        c->sum += util_int(result);
    else if (error)
        c->failures++;
    interp_msg_free(result);
}

static void map_stream_bounded_in_flight(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "double"};
    stream_ctx c = {.n = 5000, .in_order = true};
    interp_map_options mo = {.chunksize = 8};
    assert_int_equal(interp_pool_map_stream(p, &fn, next_in, on_res, &c, 64, &mo), INTERP_OK);
    assert_true(c.in_order);
    assert_int_equal(c.delivered, c.n);
    assert_int_equal(c.sum, (int64_t)c.n * (int64_t)(c.n - 1));
    assert_true(c.max_outstanding <= 64);
    /* default chunk size and window */
    stream_ctx d = {.n = 777, .in_order = true};
    assert_int_equal(interp_pool_map_stream(p, &fn, next_in, on_res, &d, 0, NULL), INTERP_OK);
    assert_int_equal(d.delivered, 777);
    assert_true(d.in_order);
    /* errors are reported per item, in order */
    interp_fn bad = {.kind = INTERP_FN_SOURCE,
                     .text = "local x = ... if x % 2 == 1 then error('odd') end return x"};
    stream_ctx e = {.n = 100, .in_order = true};
    assert_int_equal(interp_pool_map_stream(p, &bad, next_in, on_res, &e, 16, NULL),
                     INTERP_ERR_SCRIPT);
    assert_int_equal(e.failures, 50);
    assert_int_equal(e.delivered, 100);
    assert_int_equal(interp_pool_map_stream(p, &fn, NULL, on_res, &e, 16, NULL),
                     INTERP_ERR_INVALID);
    interp_pool_destroy(p);
}

typedef struct deadline_stream {
    size_t n, read;
    int status[8];
    int64_t value[8];
} deadline_stream;

static bool ds_next(void *ud, size_t index, interp_msg **args)
{
    deadline_stream *d = ud;
    (void)index;
    if (d->read == d->n)
        return false;
    *args = interp_msg_int((int64_t)d->read++);
    return true;
}

static void ds_result(void *ud, size_t index, int status, interp_msg *result, const char *error)
{
    deadline_stream *d = ud;
    (void)error;
    d->status[index] = status;
    d->value[index] = result ? util_int(result) : -1;
    interp_msg_free(result);
}

/* The stream form (what the CLI uses) gets the same per-item deadlines. */
static void map_stream_item_deadline(void **st)
{
    (void)st;
    g_task_timeout = 0.2;
    interp_pool *p = util_pool(2, with_task_timeout);
    interp_fn fn = {.kind = INTERP_FN_SOURCE,
                    .text = "local x = ... if x == 1 then while true do end end return x"};
    deadline_stream d = {.n = 5};
    interp_map_options mo = {.chunksize = 5};
    assert_int_equal(interp_pool_map_stream(p, &fn, ds_next, ds_result, &d, 0, &mo),
                     INTERP_ERR_TIMEOUT);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(d.status[i], i == 1 ? INTERP_ERR_TIMEOUT : INTERP_OK);
        assert_int_equal(d.value[i], i == 1 ? -1 : (int64_t)i);
    }
    interp_pool_destroy(p);
}

static void map_after_shutdown(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_pool_shutdown(p, true, false);
    interp_msg **in = ints_upto(3);
    interp_msg *out[3];
    int status[3];
    interp_map_options mo = {.status = status};
    assert_int_equal(interp_pool_map(p, "double", 3, (const interp_msg *const *)in, out, &mo),
                     INTERP_ERR_SHUTDOWN);
    assert_int_equal(status[2], INTERP_ERR_SHUTDOWN);
    assert_null(out[0]);
    free_msgs(in, 3);
    interp_pool_destroy(p);
}

/* Result slabs of the worker's state (kept for its next maps) beyond 2 MiB are let go once it
 * has been idle for a while (INTERP__WORKER_IDLE_S); its next maps work as before. */
static size_t kept_slabs(interp_pool *p)
{
    interp__mutex_lock(&p->mu);
    interp_state *s = p->slots[0] ? p->slots[0]->state : NULL;
    size_t n = s ? interp__slab_cache_kept(s->slab_cache) : 0;
    interp__mutex_unlock(&p->mu);
    return n;
}

static void map_idle_worker_keeps_few_result_slabs(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    const size_t n = 100000; /* 32 bytes a result: about 3 MiB of slabs */
    const size_t idle_max = ((size_t)2 << 20) / (sizeof(interp__slab) + INTERP__SLAB_MAX);
    interp_msg **in = ints_upto(n);
    for (int round = 0; round < 2; round++) {
        interp_msg **out = calloc(n, sizeof *out);
        assert_int_equal(interp_pool_map(p, "double", n, (const interp_msg *const *)in, out, NULL),
                         INTERP_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(util_int(out[i]), 2 * (int64_t)i);
        free_msgs(out, n); /* the slabs go back to the worker's cache, or are freed */
        /* the worker idles within INTERP__WORKER_IDLE_S; allow a loaded machine 20 s */
        double until = interp__now() + 20;
        while (kept_slabs(p) > idle_max && interp__now() < until) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        assert_true(kept_slabs(p) <= idle_max);
    }
    free_msgs(in, n);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_ordered_results_any_chunksize),
        cmocka_unit_test(map_empty_and_invalid),
        cmocka_unit_test(map_reports_each_item),
        cmocka_unit_test(map_stop_on_error),
        cmocka_unit_test(map_overall_timeout),
        cmocka_unit_test(map_stream_bounded_in_flight),
        cmocka_unit_test(map_after_shutdown),
        cmocka_unit_test(map_item_deadline_spares_the_rest_of_its_chunk),
        cmocka_unit_test(map_item_deadline_is_per_item_not_per_chunk),
        cmocka_unit_test(map_stream_item_deadline),
        cmocka_unit_test(map_idle_worker_keeps_few_result_slabs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
