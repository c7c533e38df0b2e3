/* ctx_util.h - helpers shared by the context tests (test_ctx, test_ctx_run, test_ctx_reach,
 * test_ctx_shared, test_ctx_hostile). Header-only; every function is static. Include after
 * cmocka.h. */
#ifndef CTX_UTIL_H
#define CTX_UTIL_H

#include "core_impl.h"
#include "interp_ctx.h"
#include "pool_util.h"

static const char *const SVC_INIT = "n = 0\n"
                                    "function inc(k) n = n + (k or 1) return n end\n"
                                    "function get() return n end\n"
                                    "function take() n = n + 1 end\n"
                                    "function fail() error({code = 7, why = 'bad'}) end\n"
                                    "function block() interp.channel('started'):send(true) "
                                    "  return interp.channel('never'):recv() end\n";

/* A context of p made with *o (the creation must succeed). */
static inline interp_ctx *ctx_create_ok(interp_pool *p, const interp_ctx_options *o)
{
    interp_ctx *c = NULL;
    char *err = NULL;
    int rc = interp_ctx_create(p, o, &c, &err);
    if (rc != INTERP_OK)
        fprintf(stderr, "ctx create: %s: %s\n", interp_strerror(rc), err ? err : "");
    free(err);
    assert_int_equal(rc, INTERP_OK);
    return c;
}

static inline interp_ctx *ctx_new(interp_pool *p, const char *name, interp_sandbox sb,
                                  const char *init)
{
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.sandbox = sb;
    o.init_source = init ? init : SVC_INIT;
    return ctx_create_ok(p, &o);
}

/* Contexts parked in p's queue now. */
static inline int parked_count(interp_pool *p)
{
    interp__mutex_lock(&p->q.mu);
    int n = p->q.n_parked;
    interp__mutex_unlock(&p->q.mu);
    return n;
}

/* Wait (up to 60 s) until n contexts are parked; how many are. */
static inline int await_parked(interp_pool *p, int n)
{
    int got = parked_count(p);
    for (double end = interp__now() + 60; got < n && interp__now() < end;) {
        usleep(1000);
        got = parked_count(p);
    }
    return got;
}

/* Run src in c (exec) and return its status; *r (may be NULL) its first value as an integer,
 * or -1 for false / nil, 1 for true. */
static inline int run_in(interp_ctx *c, const char *src, int64_t *r)
{
    interp_future *f = NULL;
    assert_int_equal(interp_ctx_exec(c, src, 0, &f), INTERP_OK);
    const interp_msg *m = NULL;
    int rc = interp_future_result(f, 60, &m);
    if (rc != INTERP_OK)
        fprintf(stderr, "run_in: %s\n", interp_future_error(f));
    if (rc == INTERP_OK && r) {
        interp_msg_iter it = interp_msg_iter_init(m);
        interp_msg_value v;
        *r = -1;
        if (interp_msg_next(&it, &v)) {
            if (v.type == INTERP_MSG_INT)
                *r = v.as.i;
            else if (v.type == INTERP_MSG_BOOL)
                *r = v.as.b ? 1 : -1;
        }
    }
    interp_future_release(f);
    return rc;
}

static inline int64_t run_int(interp_ctx *c, const char *src)
{
    int64_t r = 0;
    assert_int_equal(run_in(c, src, &r), INTERP_OK);
    return r;
}

/* An anonymous task running src (a chunk); its status, first integer in *r. */
static inline int task_run(interp_pool *p, const char *src, int64_t *r)
{
    interp_future *f = NULL;
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}};
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    const interp_msg *m = NULL;
    int rc = interp_future_result(f, 60, &m);
    if (rc != INTERP_OK)
        fprintf(stderr, "task_run: %s\n", interp_future_error(f));
    if (rc == INTERP_OK && r)
        *r = util_int(m);
    interp_future_release(f);
    return rc;
}

#endif
