/* interp_test_util.h - helpers shared by the tests of interp/ (test_interp*.c, test_sandbox.c,
 * test_cancel.c). Static functions only: each test file is its own program. */
#ifndef INTERP_TEST_UTIL_H
#define INTERP_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>

#include "interp.h"
#include "interp_impl.h"
#include "interp_one_step.h"

/* Lines printed by workers, captured by a sink. */
typedef struct captured {
    pthread_mutex_t mu;
    int n;
    char lines[32][256];
} captured;

static inline void capture_sink(void *ud, int worker_id, const char *line, size_t len)
{
    (void)worker_id;
    captured *c = ud;
    pthread_mutex_lock(&c->mu);
    if (c->n < 32) {
        snprintf(c->lines[c->n], sizeof c->lines[0], "%.*s", (int)len, line);
        c->n++;
    }
    pthread_mutex_unlock(&c->mu);
}

typedef struct fixture {
    interp_shared *sh;
    interp_state *s;
    uint64_t task;
    captured out;
} fixture;

/* Create shared + one state; asserts success. */
static inline void fx_open_cfg(fixture *f, interp_config *cfg)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->out.mu, NULL);
    cfg->print = capture_sink;
    cfg->print_ud = &f->out;
    char *err = NULL;
    int rc = interp__shared_create(cfg, &f->sh, &err);
    if (rc != INTERP_OK)
        fail_msg("shared_create: %d %s", rc, err ? err : "");
    rc = interp__state_create(f->sh, 7, &f->s, &err);
    if (rc != INTERP_OK)
        fail_msg("state_create: %d %s", rc, err ? err : "");
}

static inline void fx_open(fixture *f, interp_sandbox sb, const char *init)
{
    interp_config cfg = {.sandbox = sb, .init_source = init};
    fx_open_cfg(f, &cfg);
}

static inline void fx_close(fixture *f)
{
    interp__state_destroy(f->s);
    interp__shared_destroy(f->sh);
    pthread_mutex_destroy(&f->out.mu);
}

/* Run a source chunk with optional args; returns status. */
static inline int fx_src(fixture *f, const char *src, const interp_msg *args, interp_outcome *o)
{
    interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = src};
    return interp__state_call(f->s, ++f->task, &fn, args, o);
}

static inline int fx_name(fixture *f, const char *name, const interp_msg *args, interp_outcome *o)
{
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = name};
    return interp__state_call(f->s, ++f->task, &fn, args, o);
}

/* Text of the results of a successful outcome (static buffer). */
static const char *fx_text(const interp_outcome *o)
{
    static char buf[1024];
    if (o->status != INTERP_OK || !o->result) {
        snprintf(buf, sizeof buf, "<status %d: %s>", o->status, o->error ? o->error : "");
        return buf;
    }
    char *t = NULL;
    if (interp_msg_to_text(o->result, &t) != INTERP_OK)
        return "<to_text failed>";
    snprintf(buf, sizeof buf, "%s", t);
    free(t);
    return buf;
}

/* Run src and assert it returns exactly `expect` (as text). */
static inline void fx_expect(fixture *f, const char *src, const char *expect)
{
    interp_outcome o;
    fx_src(f, src, NULL, &o);
    const char *got = fx_text(&o);
    if (strcmp(got, expect) != 0)
        fail_msg("task `%s`: expected %s, got %s", src, expect, got);
    interp__outcome_clear(&o);
}

/* Run src and assert it fails with `status` and an error containing `needle`. */
static inline void fx_expect_err(fixture *f, const char *src, int status, const char *needle)
{
    interp_outcome o;
    fx_src(f, src, NULL, &o);
    if (o.status != status || !o.error || (needle && !strstr(o.error, needle)))
        fail_msg("task `%s`: expected status %d with \"%s\", got %d: %s", src, status,
                 needle ? needle : "", o.status, o.error ? o.error : fx_text(&o));
    interp__outcome_clear(&o);
}

#endif
