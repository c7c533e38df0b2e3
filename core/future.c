/* future.c - futures: one allocation per submitted task (the task rides in the future),
 * reference counted apart from the pool, ended exactly once.
 *
 * States: PENDING (queued) -> RUNNING (a worker took it) -> ENDED (status says done, failed or
 * cancelled); PENDING -> ENDED directly for a cancel, a shutdown or a broken pool. Every
 * transition happens under f->mu; `state` is atomic so predicates and the waiters' spin read it
 * without the lock, and ENDED is stored with release after the outcome is written.
 *
 * f->pool may be dereferenced only while f is PENDING or RUNNING and under f->mu (or by the
 * worker running it): until f ends, some pool thread (a worker that popped it, or the thread
 * draining the queue) still has to take f->mu, and the pool is not freed before that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core_impl.h"
#include "park.h"
#include "msg_charge.h"
#include "msg_inner.h"

char *interp__dup_text(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

/* ---- watchers --------------------------------------------------------------------------- */

void interp__watcher_init(interp__watcher *w)
{
    interp__mutex_init(&w->mu);
    interp__cond_init(&w->cv);
    w->fired = 0;
    w->park = NULL;
    w->ready_head = w->ready_tail = NULL;
}

void interp__watcher_destroy(interp__watcher *w)
{
    interp__cond_destroy(&w->cv);
    interp__mutex_destroy(&w->mu);
}

/* Under the future's lock (or for a future that has ended). The node and the watcher may be
 * freed by their owner as soon as w->mu is released: touch neither afterwards. */
static void fire(interp__watch_node *node)
{
    interp__watcher *w = node->w;
    if (w->park) { /* a parked wait (ctx_lua_state.c): its context becomes runnable */
        interp__park_fire(w->park);
        return;
    }
    interp__mutex_lock(&w->mu);
    node->ready_next = NULL;
    if (w->ready_tail)
        w->ready_tail->ready_next = node;
    else
        w->ready_head = node;
    w->ready_tail = node;
    w->fired++;
    interp__cond_signal(&w->cv);
    interp__mutex_unlock(&w->mu);
}

void interp__watch(interp__watcher *w, interp__watch_node *node, interp_future *f)
{
    node->w = w;
    node->f = f;
    node->prev = NULL;
    interp__mutex_lock(&f->mu);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) == INTERP__F_ENDED) {
        node->linked = false;
        fire(node);
    } else {
        node->linked = true;
        node->next = f->watchers;
        if (f->watchers)
            f->watchers->prev = node;
        f->watchers = node;
    }
    interp__mutex_unlock(&f->mu);
}

void interp__unwatch(interp__watch_node *node)
{
    interp_future *f = node->f;
    interp__mutex_lock(&f->mu);
    if (node->linked) {
        if (node->prev)
            node->prev->next = node->next;
        else
            f->watchers = node->next;
        if (node->next)
            node->next->prev = node->prev;
        node->linked = false;
    }
    interp__mutex_unlock(&f->mu);
}

interp__watch_node *interp__watcher_take(interp__watcher *w)
{
    interp__mutex_lock(&w->mu);
    interp__watch_node *n = w->ready_head;
    if (n) {
        w->ready_head = n->ready_next;
        if (!w->ready_head)
            w->ready_tail = NULL;
    }
    interp__mutex_unlock(&w->mu);
    return n;
}

bool interp__watcher_wait(interp__watcher *w, size_t want, const struct timespec *deadline)
{
    interp__mutex_lock(&w->mu);
    bool ok = true;
    while (w->fired < want && ok)
        ok = interp__cond_wait_until(&w->cv, &w->mu, deadline);
    ok = w->fired >= want;
    interp__mutex_unlock(&w->mu);
    return ok;
}

/* ---- creation and ending ---------------------------------------------------------------- */

int interp__future_new(interp_pool *pool, const interp_task *task, interp_future **out)
{
    const interp_fn *fn = &task->fn;
    if (interp__fn_check(fn, NULL) != INTERP_OK)
        return INTERP_ERR_INVALID;
    size_t extra = interp__fn_copy_size(fn);
    if (task->timeout != task->timeout) /* NaN */
        return INTERP_ERR_INVALID;
    interp_future *f = malloc(sizeof *f + extra);
    if (!f)
        return INTERP_ERR_NOMEM;
    f->job.prev = f->job.next = NULL;
    f->job.ops = &interp__task_ops;
    f->job.queued = false;
    atomic_init(&f->refs, 2);
    atomic_init(&f->state, INTERP__F_PENDING);
    atomic_init(&f->cancel_requested, false);
    atomic_init(&f->wait_cpu, -1);
    atomic_init(&f->end_cpu, -1);
    interp__mutex_init(&f->mu);
    f->pool = pool;
    f->worker = NULL;
    f->task_id = 0;
    f->status = INTERP_ERR_AGAIN;
    f->result = NULL;
    f->error = NULL;
    f->error_value = NULL;
    f->acct = NULL;
    f->charge = 0;
    f->charge_for_state = false;
    f->cb0 = NULL;
    f->ud0 = NULL;
    f->cbs = f->cbs_tail = NULL;
    f->watchers = NULL;
    f->ctx_post = false;
    f->args_acct = NULL;
    f->args_charge = 0;
    f->ctx = NULL;
    interp__fn_copy(&f->fn, fn, f->data);
    f->args = task->args;
    double t = task->timeout == 0 ? pool->task_timeout : task->timeout;
    f->timeout = t > 0 ? t : 0;
    *out = f;
    return INTERP_OK;
}

void interp__future_discard(interp_future *f)
{
    interp__account_refund(f->args_acct, f->args_charge, true);
    interp__account_release(f->args_acct);
    if (f->ctx)
        interp__ctx_release(f->ctx);
    interp__mutex_destroy(&f->mu);
    free(f);
}

static size_t outcome_charge(const interp_msg *result, const char *error,
                             const interp_msg *error_value)
{
    return (result ? interp__msg_charge(result) : 0) + (error ? strlen(error) + 33 : 0) +
           (error_value ? interp__msg_charge(error_value) : 0);
}

bool interp__future_end(interp_future *f, int from, int status, interp_msg *result, char *error,
                        interp_msg *error_value)
{
    return interp__future_end_paid(f, from, status, result, error, error_value, NULL);
}

/* The outcome a future keeps, under its lock: a cancel that returned INTERP_OK promised the
 * task ends cancelled; a failure keeps no result and always a text; with acct the outcome is
 * charged to it, or dropped for INTERP_ERR_NOMEM and the reason when the budget refuses.
 * Returns the status; the outcome's pieces are replaced in place (the old ones freed). */
static int settle_outcome(interp_future *f, int status, interp_msg **result, char **error,
                          interp_msg **error_value, interp__account *acct)
{
    if (atomic_load_explicit(&f->cancel_requested, memory_order_relaxed) &&
        status != INTERP_ERR_CANCELLED) {
        interp_msg_free(*result);
        interp_msg_free(*error_value);
        free(*error);
        *result = *error_value = NULL;
        *error = NULL;
        status = INTERP_ERR_CANCELLED;
    }
    if (status != INTERP_OK) {
        interp_msg_free(*result);
        *result = NULL;
        if (!*error)
            *error = interp__dup_text(interp__status_end_text(status)); /* NULL: out of memory */
    }
    /* a call made by a state: the caller holds the future, so the caller pays (its limit
     * too), not the callee: a plugin cannot make another's results pile up in the host */
    bool for_state = f->args_acct != NULL;
    if (for_state)
        acct = f->args_acct;
    size_t charge = acct ? outcome_charge(*result, *error, *error_value) : 0;
    if (!charge) /* the account's lock is a leaf */
        return status;
    char why[256];
    if (interp__account_charge(acct, charge, for_state, why, sizeof why) == INTERP_OK) {
        interp__account_retain(acct);
        f->acct = acct;
        f->charge = charge;
        f->charge_for_state = for_state;
        return status;
    }
    /* the host would hold more than the budget: the results are not kept */
    interp_msg_free(*result);
    interp_msg_free(*error_value);
    free(*error);
    *result = *error_value = NULL;
    size_t n = strlen(why) + 40;
    if ((*error = malloc(n)))
        snprintf(*error, n, "cannot keep the task's outcome: %s", why);
    return INTERP_ERR_NOMEM;
}

/* Callbacks run outside every lock, on this thread; they may release f's last host
 * reference, so hold one until they are done. */
static void run_callbacks(interp_future *f, interp_future_cb cb0, void *ud0, interp__cb_node *cbs)
{
    if (!cb0 && !cbs)
        return;
    interp_future_retain(f);
    if (cb0)
        cb0(f, ud0);
    while (cbs) {
        interp__cb_node *next = cbs->next;
        cbs->cb(f, cbs->ud);
        free(cbs);
        cbs = next;
    }
    interp_future_release(f);
}

bool interp__future_end_paid(interp_future *f, int from, int status, interp_msg *result,
                             char *error, interp_msg *error_value, interp__account *acct)
{
    interp__mutex_lock(&f->mu);
    int st = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (st == INTERP__F_ENDED || (from >= 0 && st != from)) {
        interp__mutex_unlock(&f->mu);
        interp_msg_free(result);
        free(error);
        interp_msg_free(error_value);
        return false;
    }
    status = settle_outcome(f, status, &result, &error, &error_value, acct);
    f->status = status;
    f->result = result;
    f->error = error;
    f->error_value = error_value;
    f->worker = NULL;
    interp__pool_count(f->pool, status);
    f->pool = NULL;
    interp__watch_node *watchers = f->watchers;
    f->watchers = NULL;
    interp_future_cb cb0 = f->cb0;
    void *ud0 = f->ud0;
    interp__cb_node *cbs = f->cbs;
    f->cb0 = NULL;
    f->cbs = f->cbs_tail = NULL;
    int cpu = interp__cpu_now();
    atomic_store_explicit(&f->end_cpu, cpu, memory_order_relaxed);
    atomic_store_explicit(&f->state, INTERP__F_ENDED, memory_order_release);
    for (interp__watch_node *n = watchers, *next; n; n = next) {
        next = n->next;
        n->linked = false;
        fire(n);
    }
    interp__mutex_unlock(&f->mu);
    /* a waiter spinning on this CPU runs only once this thread lets go of it: this thread's
     * next spin (a worker's for the next job) yields at once */
    if (cpu >= 0 && atomic_load_explicit(&f->wait_cpu, memory_order_relaxed) == cpu)
        interp__spin_yield_first();
    run_callbacks(f, cb0, ud0, cbs);
    return true;
}

/* ---- public API ------------------------------------------------------------------------- */

void interp_future_retain(interp_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void interp_future_release(interp_future *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: the pool holds one until the future ends, so it has ended. */
    interp_msg_free(f->result);
    interp_msg_free(f->error_value);
    interp_msg_free(f->args);
    free(f->error);
    interp__account_refund(f->acct, f->charge, f->charge_for_state);
    interp__account_release(f->acct);
    interp__account_refund(f->args_acct, f->args_charge, true);
    interp__account_release(f->args_acct);
    if (f->ctx)
        interp__ctx_release(f->ctx);
    interp__mutex_destroy(&f->mu);
    free(f);
}

static bool ended(interp_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) == INTERP__F_ENDED;
}

typedef struct wait_arg {
    interp_future *f;
    interp__cancel *tok;
} wait_arg;

static bool wait_ready(void *arg)
{
    wait_arg *a = arg;
    return ended(a->f) || (a->tok && interp__cancel_reason(a->tok));
}

int interp__future_wait_tok(interp_future *f, double timeout, interp__cancel *tok)
{
    wait_arg a = {f, tok};
    if (!wait_ready(&a) && timeout != 0) {
        atomic_store_explicit(&f->wait_cpu, interp__cpu_now(), memory_order_relaxed);
        /* Spin briefly: short tasks end before a sleep/wake round trip would. */
        long spin = INTERP__WAIT_SPIN_NS;
        if (timeout > 0 && timeout * 1e9 < (double)spin)
            spin = (long)(timeout * 1e9);
        interp__spin(wait_ready, &a, spin);
    }
    if (!wait_ready(&a) && timeout != 0) {
        struct timespec dl;
        if (timeout > 0)
            dl = interp__deadline_in(timeout);
        interp__watcher w;
        interp__watch_node node;
        interp__watcher_init(&w);
        interp__watch(&w, &node, f);
        if (tok) /* firing the token wakes this wait */
            interp__cancel_arm(tok, &w.mu, &w.cv);
        interp__mutex_lock(&w.mu);
        bool more = true;
        while (more && w.fired == 0 && !(tok && interp__cancel_reason(tok)))
            more = interp__cond_wait_until(&w.cv, &w.mu, timeout > 0 ? &dl : NULL);
        interp__mutex_unlock(&w.mu);
        if (tok)
            interp__cancel_disarm(tok);
        /* fire() runs under f's lock, which unwatch takes: no fire is under way after it */
        interp__unwatch(&node);
        interp__watcher_destroy(&w);
    }
    if (ended(f)) {
        /* ended on this CPU: the thread that ends the next one likely runs here too, and this
         * thread's next spin (its wait for that one) yields at once; ended on another: it
         * likely runs there again, and pausing longer keeps nothing from it */
        int cpu = atomic_load_explicit(&f->end_cpu, memory_order_relaxed);
        int me = interp__cpu_now();
        if (cpu >= 0 && cpu == me)
            interp__spin_yield_first();
        else if (cpu >= 0 && me >= 0)
            interp__spin_pause_long();
        return INTERP_OK;
    }
    int reason = tok ? interp__cancel_reason(tok) : 0;
    return reason ? reason : INTERP_ERR_TIMEOUT;
}

int interp_future_wait(interp_future *f, double timeout)
{
    if (!f || timeout != timeout) /* NaN: neither a wait nor a try */
        return INTERP_ERR_INVALID;
    return interp__future_wait_tok(f, timeout, NULL);
}

int interp_future_result(interp_future *f, double timeout, const interp_msg **result)
{
    if (result)
        *result = NULL;
    if (!f)
        return INTERP_ERR_INVALID;
    int rc = interp_future_wait(f, timeout);
    if (rc != INTERP_OK)
        return rc;
    if (result && f->status == INTERP_OK)
        *result = f->result;
    return f->status;
}

const char *interp_future_error(interp_future *f)
{
    if (!f || !ended(f) || f->status == INTERP_OK)
        return NULL;
    return f->error ? f->error : interp_strerror(f->status);
}

const interp_msg *interp_future_error_value(interp_future *f)
{
    if (!f || !ended(f))
        return NULL;
    return f->error_value;
}

int interp_future_status(interp_future *f)
{
    if (!f)
        return INTERP_ERR_INVALID;
    return ended(f) ? f->status : INTERP_ERR_AGAIN;
}

bool interp_future_done(interp_future *f) { return f && ended(f); }

bool interp_future_running(interp_future *f)
{
    return f && atomic_load_explicit(&f->state, memory_order_acquire) == INTERP__F_RUNNING;
}

bool interp_future_cancelled(interp_future *f)
{
    return f && ended(f) && f->status == INTERP_ERR_CANCELLED;
}

int interp_future_cancel(interp_future *f)
{
    if (!f)
        return INTERP_ERR_INVALID;
    interp__mutex_lock(&f->mu);
    int st = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (st == INTERP__F_ENDED) {
        interp__mutex_unlock(&f->mu);
        return INTERP_ERR_BUSY;
    }
    atomic_store(&f->cancel_requested, true);
    if (st == INTERP__F_PENDING) {
        /* Lock order: future, then queue. If a worker already popped it, that worker will
         * find it ended and drop it. */
        bool removed = interp__queue_remove(&f->pool->q, &f->job);
        interp__mutex_unlock(&f->mu);
        interp__future_end(f, INTERP__F_PENDING, INTERP_ERR_CANCELLED, NULL, NULL, NULL);
        if (removed)
            interp_future_release(f); /* the queue's reference */
        return INTERP_OK;
    }
    if (f->ctx) { /* a context's call, running or parked: the context knows where it is */
        struct interp_ctx *ctx = f->ctx;
        interp__ctx_retain(ctx); /* alive: its call has not ended */
        interp__mutex_unlock(&f->mu);
        interp__ctx_interrupt_call(ctx, f, INTERP_ERR_CANCELLED);
        interp__ctx_release(ctx);
        return INTERP_OK;
    }
    interp__worker *w = f->worker;
    uint64_t id = f->task_id;
    if (!w) { /* a backend runs it (backend.h); the pool lives while f is running */
        interp_pool *pool = f->pool;
        interp__pool_retain(pool);
        interp__mutex_unlock(&f->mu);
        pool->backend->interrupt(pool->backend_ud, &f->job, INTERP_ERR_CANCELLED);
        interp__pool_release(pool);
        return INTERP_OK;
    }
    atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
    interp__mutex_unlock(&f->mu);
    interp__interrupt_run(w, id, INTERP_ERR_CANCELLED);
    interp__worker_release(w);
    return INTERP_OK;
}

int interp_future_on_done(interp_future *f, interp_future_cb cb, void *ud)
{
    if (!f || !cb)
        return INTERP_ERR_INVALID;
    interp__mutex_lock(&f->mu);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) == INTERP__F_ENDED) {
        interp__mutex_unlock(&f->mu);
        cb(f, ud);
        return INTERP_OK;
    }
    if (!f->cb0) {
        f->cb0 = cb;
        f->ud0 = ud;
    } else {
        interp__cb_node *n = malloc(sizeof *n);
        if (!n) {
            interp__mutex_unlock(&f->mu);
            return INTERP_ERR_NOMEM;
        }
        n->next = NULL;
        n->cb = cb;
        n->ud = ud;
        if (f->cbs_tail)
            f->cbs_tail->next = n;
        else
            f->cbs = n;
        f->cbs_tail = n;
    }
    interp__mutex_unlock(&f->mu);
    return INTERP_OK;
}
