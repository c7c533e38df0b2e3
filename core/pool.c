/* pool.c - the pool: create, submit, shutdown, destroy, named channels, stats.
 *
 * Shutdown: close the queue (flag under its lock, broadcast), cancel the queued jobs or let the
 * workers drain them, join the workers; the watchdog stays up until every worker is joined so
 * that a worker stuck in a C call is abandoned rather than waited for forever (shutdown_now
 * and destroy). The pool struct is reference counted: abandoned worker threads keep it (and
 * the shared interpreter data their state needs) alive until they exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core_impl.h"
#include "msg_inner.h"
#include "frozen_impl.h"

void interp__pool_retain(interp_pool *pool) { atomic_fetch_add(&pool->refs, 1); }

static void pool_free(interp_pool *pool)
{
    if (pool->backend)
        pool->backend->free(pool->backend_ud);
    interp__chan_names_destroy(&pool->chans);
    interp__ctx_names_destroy(&pool->ctxs);
    interp__budget_release(pool->budget);
    interp__shared_destroy(pool->shared);
    interp__frozen_space_clear(pool->frozen);
    interp__frozen_space_release(pool->frozen);
    interp__queue_destroy(&pool->q);
    interp__timers_free(&pool->timers);
    interp__cond_destroy(&pool->wd_cv);
    interp__start_destroy(&pool->start);
    interp__mutex_destroy(&pool->mu);
    free(pool->broken_reason);
    free(pool->slots);
    free(pool);
}

void interp__pool_release(interp_pool *pool)
{
    if (pool && atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) == 1)
        pool_free(pool);
}

void interp__pool_count(interp_pool *pool, int status)
{
    if (!pool)
        return;
    switch (status) {
    case INTERP_OK:
        atomic_fetch_add_explicit(&pool->st_done, 1, memory_order_relaxed);
        break;
    case INTERP_ERR_CANCELLED:
        atomic_fetch_add_explicit(&pool->st_cancelled, 1, memory_order_relaxed);
        break;
    case INTERP_ERR_TIMEOUT:
        atomic_fetch_add_explicit(&pool->st_timed_out, 1, memory_order_relaxed);
        /* fall through */
    default:
        atomic_fetch_add_explicit(&pool->st_failed, 1, memory_order_relaxed);
        break;
    }
}

static void abort_chain(interp_pool *pool, interp__job *jobs, int status, const char *text)
{
    (void)pool;
    while (jobs) {
        interp__job *next = jobs->next;
        jobs->ops->abort(jobs, status, text);
        jobs = next;
    }
}

void interp__pool_break(interp_pool *pool, const char *reason)
{
    size_t n = strlen(reason) + 32;
    char *text = malloc(n);
    if (text)
        snprintf(text, n, "pool is broken: %s", reason);
    interp__mutex_lock(&pool->mu);
    if (pool->broken) {
        interp__mutex_unlock(&pool->mu);
        free(text);
        return;
    }
    pool->broken = true;
    pool->broken_reason = text;
    interp__mutex_unlock(&pool->mu);
    /* broken_reason is immutable from here on */
    interp__job *jobs = interp__queue_close(&pool->q, INTERP_ERR_BROKEN, true);
    abort_chain(pool, jobs, INTERP_ERR_BROKEN, text ? text : "pool is broken");
}

/* ---- channels by name ------------------------------------------------------------------- */

static int chan_lookup(void *ud, const char *name, size_t len, size_t capacity,
                       interp__account *acct, char *why, size_t whylen, interp_chan **out,
                       unsigned *rights)
{
    interp_pool *pool = ud;
    if (rights)
        *rights = INTERP_CHAN_SENDRECV;
    if (pool->span_refusal) {
        if (why && whylen)
            snprintf(why, whylen, "%s", pool->span_refusal);
        return INTERP_ERR_INVALID;
    }
    return interp__chan_names_get(&pool->chans, name, len, capacity, pool->max_msg_size, acct, why,
                                  whylen, out);
}

int interp_pool_channel(interp_pool *pool, const char *name, size_t capacity, interp_chan **out)
{
    if (out)
        *out = NULL;
    if (!pool || !name || !out)
        return INTERP_ERR_INVALID;
    if (pool->backend)
        return INTERP_ERR_INVALID; /* its tasks run in other processes: no channel spans them */
    /* strnlen: a name past the bound is refused without reading all of it */
    return chan_lookup(pool, name, strnlen(name, INTERP_CHAN_MAX_NAME + 1), capacity, NULL, NULL, 0,
                       out, NULL);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void set_err(char **err, const char *text)
{
    if (err && !*err)
        *err = interp__dup_text(text);
}

int interp_pool_shutdown(interp_pool *pool, bool wait, bool cancel_pending)
{
    if (!pool)
        return INTERP_ERR_INVALID;
    interp__job *jobs = interp__queue_close(&pool->q, INTERP_ERR_SHUTDOWN, cancel_pending);
    abort_chain(pool, jobs, INTERP_ERR_CANCELLED, "cancelled: the pool was shut down");
    if (pool->backend) { /* its thread (running a callback) cannot wait for itself */
        pool->backend->shutdown(pool->backend_ud, false, wait && !interp__on_pool_thread(pool));
        return INTERP_OK;
    }
    if (wait && !interp__on_pool_thread(pool)) {
        interp__start_join_all(pool);
        /* Every worker has exited: nothing queued may stay pending (only possible when the
         * last workers were abandoned or could not be replaced). */
        jobs = interp__queue_close(&pool->q, INTERP_ERR_SHUTDOWN, true);
        abort_chain(pool, jobs, INTERP_ERR_CANCELLED, "cancelled: the pool has no worker left");
    }
    return INTERP_OK;
}

static int shutdown_now(interp_pool *pool, bool wait)
{
    if (!pool)
        return INTERP_ERR_INVALID;
    atomic_store(&pool->stop_now, true); /* seq_cst: pairs with interp__worker_begin */
    interp__job *jobs = interp__queue_close(&pool->q, INTERP_ERR_SHUTDOWN, true);
    abort_chain(pool, jobs, INTERP_ERR_CANCELLED, "cancelled: the pool was shut down");
    if (pool->backend) {
        pool->backend->shutdown(pool->backend_ud, true, wait && !interp__on_pool_thread(pool));
        return INTERP_OK;
    }
    interp__ctx_wake_parked(pool, INTERP_ERR_SHUTDOWN); /* they end as running calls do */
    interp__worker *ws[64];
    uint64_t ids[64];
    for (int base = 0; base < pool->nworkers; base += 64) {
        int n = 0;
        interp__mutex_lock(&pool->mu);
        for (int i = base; i < pool->nworkers && i < base + 64; i++) {
            interp__worker *w = pool->slots[i];
            if (!w || w->abandoned)
                continue;
            uint64_t id = atomic_load(&w->cur_task);
            if (id == 0 || id == INTERP__TASK_ABANDONED)
                continue;
            atomic_fetch_add(&w->refs, 1);
            ws[n] = w;
            ids[n++] = id;
        }
        interp__mutex_unlock(&pool->mu);
        for (int i = 0; i < n; i++) {
            interp__interrupt_run(ws[i], ids[i], INTERP_ERR_SHUTDOWN);
            interp__worker_release(ws[i]);
        }
    }
    if (wait && !interp__on_pool_thread(pool)) {
        interp__start_join_all(pool);
        jobs = interp__queue_close(&pool->q, INTERP_ERR_SHUTDOWN, true);
        abort_chain(pool, jobs, INTERP_ERR_CANCELLED, "cancelled: the pool has no worker left");
    }
    return INTERP_OK;
}

int interp_pool_shutdown_now(interp_pool *pool) { return shutdown_now(pool, true); }

void interp_pool_destroy(interp_pool *pool)
{
    if (!pool)
        return;
    shutdown_now(pool, true);
    if (pool->backend)
        pool->backend->stop(pool->backend_ud);
    interp__watchdog_stop(pool);
    interp__mutex_lock(&pool->mu);
    int n = pool->nworkers;
    interp__worker **slots = pool->slots;
    interp__mutex_unlock(&pool->mu);
    for (int i = 0; i < n; i++) {
        interp__worker *w = slots[i];
        slots[i] = NULL; /* every thread that could touch slots is gone */
        interp__worker_release(w);
    }
    interp__pool_release(pool);
    interp__bigbuf_trim(); /* large message blocks kept for the pool's traffic */
}

interp_pool *interp__pool_alloc(size_t max_queued, int init_ready)
{
    interp_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    atomic_init(&pool->refs, 1);
    interp__mutex_init(&pool->mu);
    interp__chan_names_init(&pool->chans);
    interp__ctx_names_init(&pool->ctxs);
    interp__cond_init(&pool->wd_cv);
    atomic_init(&pool->stop_now, false);
    interp__start_init(&pool->start, init_ready);
    pool->preempt_tick.fire = interp__ctx_preempt_tick; /* preemption of contexts' calls */
    interp__queue_init(&pool->q, max_queued, &pool->start);
    return pool;
}

/* Give *err (when asked and not set yet) the text e, or rc's when e is NULL; e is taken. */
static void give_err(char **err, char *e, int rc)
{
    if (err && !*err)
        *err = e ? e : interp__dup_text(interp_strerror(rc));
    else
        free(e);
}

/* The caller's options (of any ABI size) over the defaults. */
static int read_options(interp_pool_options *o, const interp_pool_options *opts, char **err)
{
    *o = interp_pool_defaults();
    if (!opts)
        return INTERP_OK;
    const char *why = NULL;
    int rc =
        interp__struct_in(o, sizeof *o, opts, opts->struct_size, INTERP__POOL_OPTIONS_SIZE_0, &why);
    if (rc != INTERP_OK)
        set_err(err, why);
    return rc;
}

/* What the pool needs before its first worker: the resolved options, the space of frozen
 * values, the data every state shares, the worker slots and (with a default task timeout) the
 * watchdog. cfg points into o. */
static int set_up(interp_pool *pool, const interp_pool_options *o, interp_config *cfg, char **err)
{
    const char *why;
    int rc = interp__options_resolve(o, pool, cfg, &why);
    if (rc != INTERP_OK) {
        set_err(err, why);
        return rc;
    }
    cfg->chan_lookup = chan_lookup;
    cfg->chan_lookup_ud = pool;
    cfg->module_ext = interp__ctx_lua_open_pool; /* interp.context, interp.self */
    cfg->module_ext_ud = pool;
    if (!(pool->frozen = interp__frozen_space_new())) {
        set_err(err, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    cfg->frozen_space = pool->frozen;
    char *e = NULL;
    rc = interp__shared_new(cfg, &pool->shared, &e);
    if (rc != INTERP_OK) {
        give_err(err, e, rc);
        return rc;
    }
    rc = interp__start_alloc_slots(pool);
    if (rc != INTERP_OK) {
        set_err(err, "out of memory");
        return rc;
    }
    rc = interp__watchdog_start(pool);
    if (rc != INTERP_OK)
        set_err(err, "cannot start the watchdog thread");
    return rc;
}

/* The first worker's state, made here while its thread starts: opened, the
 * initializer compiled in it (its bytecode kept for the next states: prestarted workers open
 * theirs meanwhile and wait for it), then run in it. *rc: INTERP_OK to make it, else it is
 * not tried; NULL with *rc and *why (malloc'd or NULL) set when it cannot be made. */
static interp_state *first_state(interp_pool *pool, const interp_config *cfg, int *rc, char **why)
{
    interp_state *first = NULL;
    int r = *rc;
    if (r == INTERP_OK)
        r = interp__state_open(pool->shared, 0, &first, why);
    if (r == INTERP_OK)
        r = interp__shared_compile_in(pool->shared, cfg, first, why);
    interp__start_compiled(pool, r == INTERP_OK);
    if (r == INTERP_OK)
        r = interp__state_init(first, why);
    if (r != INTERP_OK) {
        interp__state_destroy(first);
        first = NULL;
    }
    *rc = r;
    return first;
}

/* Like Python's executors, workers start on demand (a push that finds no idle worker starts
 * one); the first starts now, so that a failing initializer fails create, and with prestart
 * all of them. Returns once each has its state or failed. */
static int start_workers(interp_pool *pool, const interp_pool_options *o, const interp_config *cfg,
                         char **err)
{
    int rc = INTERP_OK;
    int spawned = interp__start_initial(pool, o->prestart ? pool->nworkers : 1, &rc);
    if (rc != INTERP_OK)
        set_err(err, "cannot start a worker thread");
    int frc = rc;
    char *why = NULL;
    interp__start_hand_over(pool, spawned, first_state(pool, cfg, &frc, &why));
    if (frc != INTERP_OK && rc == INTERP_OK) {
        rc = frc;
        give_err(err, why, rc);
    } else {
        free(why);
    }
    int prc = interp__start_await(pool, spawned, rc == INTERP_OK ? err : NULL);
    return rc == INTERP_OK ? prc : rc;
}

static int pool_create(interp_pool **out, const interp_pool_options *opts, const char *span_refusal,
                       char **err);

int interp_pool_create(interp_pool **out, const interp_pool_options *opts, char **err)
{
    return pool_create(out, opts, NULL, err);
}

int interp__pool_create_rank(interp_pool **out, const interp_pool_options *opts,
                             const char *refusal, char **err)
{
    return pool_create(out, opts, refusal, err);
}

static int pool_create(interp_pool **out, const interp_pool_options *opts, const char *span_refusal,
                       char **err)
{
    if (err)
        *err = NULL;
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    interp_pool_options o;
    int rc = read_options(&o, opts, err);
    if (rc != INTERP_OK)
        return rc;
    interp_pool *pool = interp__pool_alloc(o.max_queued, 0);
    if (!pool) {
        set_err(err, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    pool->span_refusal = span_refusal;
    interp_config cfg;
    rc = set_up(pool, &o, &cfg, err);
    if (rc != INTERP_OK) {
        interp__watchdog_stop(pool);
        interp__pool_release(pool);
        return rc;
    }
    rc = start_workers(pool, &o, &cfg, err);
    if (rc != INTERP_OK) {
        set_err(err, interp_strerror(rc));
        interp_pool_destroy(pool); /* joins the workers that did start */
        return rc;
    }
    *out = pool;
    return INTERP_OK;
}

/* ---- submit ----------------------------------------------------------------------------- */

int interp_pool_submit_task(interp_pool *pool, const interp_task *task, double queue_timeout,
                            interp_future **out)
{
    if (out)
        *out = NULL;
    if (!pool || !task || !out || queue_timeout != queue_timeout)
        return INTERP_ERR_INVALID;
    interp_future *f;
    int rc = interp__future_new(pool, task, &f);
    if (rc != INTERP_OK)
        return rc;
    atomic_fetch_add_explicit(&pool->st_submitted, 1, memory_order_relaxed);
    bool grow;
    rc = interp__queue_push(&pool->q, &f->job, queue_timeout, true, &grow);
    if (grow)
        interp__start_grow(pool);
    if (rc != INTERP_OK) {
        atomic_fetch_sub_explicit(&pool->st_submitted, 1, memory_order_relaxed);
        interp__future_discard(f); /* args stay the caller's */
        return rc;
    }
    *out = f;
    return INTERP_OK;
}

int interp_pool_submit(interp_pool *pool, const char *fn, interp_msg *args, interp_future **out)
{
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = fn}, .args = args};
    if (!fn) {
        if (out)
            *out = NULL;
        return INTERP_ERR_INVALID;
    }
    return interp_pool_submit_task(pool, &t, INTERP_FOREVER, out);
}

/* ---- stats ------------------------------------------------------------------------------ */

int interp_pool_get_stats_sized(interp_pool *pool, interp_pool_stats *out, size_t struct_size)
{
    if (!pool || !out)
        return INTERP_ERR_INVALID;
    interp_pool_stats all, *st = &all;
    memset(st, 0, sizeof *st);
    st->submitted = atomic_load_explicit(&pool->st_submitted, memory_order_relaxed);
    st->done = atomic_load_explicit(&pool->st_done, memory_order_relaxed);
    st->failed = atomic_load_explicit(&pool->st_failed, memory_order_relaxed);
    st->cancelled = atomic_load_explicit(&pool->st_cancelled, memory_order_relaxed);
    st->timed_out = atomic_load_explicit(&pool->st_timed_out, memory_order_relaxed);
    st->states_replaced = atomic_load_explicit(&pool->st_replaced, memory_order_relaxed);
    st->workers_abandoned = atomic_load_explicit(&pool->st_abandoned, memory_order_relaxed);
    st->abandoned_running = atomic_load_explicit(&pool->abandoned_running, memory_order_relaxed);
    st->queued = interp__queue_count(&pool->q);
    st->budget_in_use = interp__budget_used(pool->budget);
    st->budget_limit = pool->budget->limit;
    interp__mutex_lock(&pool->mu);
    st->workers = 0;
    st->max_workers = pool->nworkers;
    for (int i = 0; i < pool->nworkers; i++) {
        interp__worker *w = pool->slots[i];
        if (!w || w->exited)
            continue;
        st->workers++;
        if (w->state) {
            size_t use = 0, peak = 0;
            interp__state_memory(w->state, &use, &peak);
            st->memory_in_use += use;
            if (peak > st->memory_peak)
                st->memory_peak = peak;
        }
    }
    interp__mutex_unlock(&pool->mu);
    interp__frozen_space_totals(pool->frozen, &st->frozen_values, &st->frozen_bytes);
    interp__struct_out(out, struct_size, st, sizeof *st);
    return INTERP_OK;
}

int interp_pool_worker_memory(interp_pool *pool, int worker, size_t *in_use, size_t *peak)
{
    if (in_use)
        *in_use = 0;
    if (peak)
        *peak = 0;
    if (!pool || worker < 0 || worker >= pool->nworkers)
        return INTERP_ERR_INVALID;
    size_t u = 0, p = 0;
    interp__mutex_lock(&pool->mu);
    interp__worker *w = pool->slots[worker];
    int rc = w && w->state ? INTERP_OK : INTERP_ERR_NOTFOUND;
    if (rc == INTERP_OK)
        interp__state_memory(w->state, &u, &p);
    interp__mutex_unlock(&pool->mu);
    if (in_use)
        *in_use = u;
    if (peak)
        *peak = p;
    return rc;
}

int interp_pool_share(interp_pool *pool, const char *name, const interp_frozen *f)
{
    if (!pool || !name)
        return INTERP_ERR_INVALID;
    return interp__frozen_space_set(pool->frozen, name, strlen(name), f, true);
}

int interp_pool_shared(interp_pool *pool, const char *name, interp_frozen **out)
{
    if (out)
        *out = NULL;
    if (!pool || !name || !out)
        return INTERP_ERR_INVALID;
    return interp__frozen_space_get(pool->frozen, name, strlen(name), out);
}
