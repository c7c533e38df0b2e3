/* map_chunk.c - the worker side of interp_pool_map: a chunk runs with one
 * interp__state_map call (one protected region, the function looked up once, no allocation per
 * item beyond the result message) into the chunk's outcome array; for map() (not the stream
 * form) the worker then moves each result straight into the caller's slot. Every item has the
 * pool's task_timeout (run_items below, watchdog.c).
 *
 * Chunks are reference counted (the caller, and the queue or the worker running it): a worker
 * abandoned inside a stuck C call may write its outcome array after the caller has returned.
 * Items of an abandoned chunk end with the abandon reason; its outcomes are freed with the
 * chunk. map() borrows its inputs: an abandoned worker must not read them after the interrupt
 * (interp__state_map gives the items it has not run the interrupt's status without decoding
 * them). */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "map_impl.h"

const char *interp__map_stop_text(int status, bool skipped)
{
    if (skipped)
        return "cancelled: an earlier item failed (stop_on_error)";
    switch (status) {
    case INTERP_ERR_TIMEOUT:
        return "timed out: the map's timeout passed";
    /* not skipped: the only other cancel of an item is the shutdown dropping its chunk from
     * the queue (base/status.c says why that is CANCELLED) */
    case INTERP_ERR_CANCELLED:
        return "cancelled: the pool was shut down";
    default:
        return interp__status_end_text(status);
    }
}

void interp__map_ctx_release(map_ctx *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    interp__cond_destroy(&m->cv);
    interp__mutex_destroy(&m->mu);
    free(m);
}

map_ctx *interp__map_ctx_new(const interp_fn *fn, bool stop_on_error)
{
    map_ctx *m = malloc(sizeof *m + interp__fn_copy_size(fn));
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    interp__mutex_init(&m->mu);
    interp__cond_init(&m->cv);
    m->waiting = false;
    m->wait_for = NULL;
    atomic_init(&m->stop, 0);
    m->stop_on_error = stop_on_error;
    m->packed = false;
    m->direct = false;
    m->out = NULL;
    m->status = NULL;
    m->errors = NULL;
    interp__fn_copy(&m->fn, fn, m->data);
    return m;
}

static void chunk_free(map_chunk *c)
{
    for (size_t i = 0; i < c->cap; i++)
        interp__outcome_clear(&c->outs[i]);
    if (c->own)
        for (size_t i = 0; i < c->n; i++)
            interp_msg_free(c->own[i]);
    interp__map_ctx_release(c->m);
    free(c);
}

void interp__chunk_release(map_chunk *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        chunk_free(c);
}

map_chunk *interp__chunk_new(map_ctx *m, size_t cap, bool stream)
{
    size_t sz = sizeof(map_chunk) + cap * sizeof(interp_outcome) +
                (stream ? cap * sizeof(interp_msg *) : 0);
    map_chunk *c = calloc(1, sz);
    if (!c)
        return NULL;
    c->job.ops = &interp__chunk_ops;
    atomic_init(&c->refs, 1);
    atomic_init(&c->done, false);
    atomic_fetch_add(&m->refs, 1);
    c->m = m;
    c->cap = cap;
    c->outs = (interp_outcome *)(c + 1);
    if (stream)
        c->own = (interp_msg **)(c->outs + cap);
    return c;
}

/* The chunk ended (ran, or ended without running when status != 0). */
void interp__chunk_finish(map_chunk *c, int status, bool failed)
{
    map_ctx *m = c->m;
    bool wake = false;
    interp__mutex_lock(&m->mu);
    if (c->state != CH_DONE) {
        c->state = CH_DONE;
        c->end_status = status;
        c->worker = NULL;
        if (failed && m->stop_on_error && !atomic_load(&m->stop))
            atomic_store(&m->stop, INTERP_ERR_CANCELLED);
        atomic_store_explicit(&c->done, true, memory_order_release);
        wake = m->waiting && m->wait_for == c; /* the caller waits for the oldest chunk only */
    }
    interp__mutex_unlock(&m->mu);
    /* Signalled after the unlock: the woken caller's first act is to take m->mu, and on a
     * machine with few cores it preempts this thread at the wake; were the lock still held, it
     * would block on it at once and cost two more context switches per chunk. m lives on: the
     * chunk holds a reference to it, and the caller (this thread's) holds the chunk. */
    if (wake)
        interp__cond_signal(&m->cv);
}

void interp__chunk_abort(interp__job *job, int status)
{
    map_chunk *c = (map_chunk *)job;
    interp__chunk_finish(c, status, false);
    interp__chunk_release(c); /* the queue's reference */
}

static void chunk_abort(interp__job *job, int status, const char *text)
{
    (void)text; /* each item's text says why (interp__map_stop_text) */
    interp__chunk_abort(job, status);
}

static void chunk_abandoned(interp__job *job, int status)
{
    /* The abandoned worker may drop its reference at any moment: hold one across the finish,
     * which touches the map context after its unlock. */
    map_chunk *c = (map_chunk *)job;
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    interp__chunk_finish(c, status, false);
    interp__chunk_release(c);
}

/* Worker, after a chunk ran (not abandoned): move every result into the caller's slots and
 * summarise, so that the caller does no per-item work. The outcomes end zeroed. */
static bool deliver_direct(map_chunk *c)
{
    map_ctx *m = c->m;
    /* read once: the stores through them could alias m and c for the compiler */
    interp_msg **mout = m->out;
    int *mstatus = m->status;
    char **merrors = m->errors;
    size_t n = c->n, first = c->first, n_ok = 0;
    c->n_ok = c->n_failed = c->n_cancelled = c->n_timed_out = 0;
    c->first_fail = 0;
    for (size_t i = 0; i < n; i++) {
        interp_outcome *o = &c->outs[i];
        size_t idx = first + i;
        int st = o->status;
        if (mstatus)
            mstatus[idx] = st;
        if (st == INTERP_OK) {
            n_ok++;
            if (mout)
                mout[idx] = o->result;
            else
                interp_msg_free(o->result);
            o->result = NULL; /* the outcome is zero again (OK holds nothing else) */
            if (merrors)
                merrors[idx] = NULL;
            continue;
        }
        if (!c->first_fail)
            c->first_fail = st;
        if (st == INTERP_ERR_CANCELLED)
            c->n_cancelled++;
        else
            c->n_failed++;
        c->n_timed_out += st == INTERP_ERR_TIMEOUT;
        if (mout)
            mout[idx] = NULL;
        if (merrors) {
            merrors[idx] = o->error ? o->error : interp__dup_text(interp__map_stop_text(st, false));
            o->error = NULL;
        }
        interp__outcome_clear(o);
    }
    c->n_ok = n_ok;
    return c->first_fail != 0;
}

/* Run the chunk's items. Each item has the pool's task_timeout: when one runs past it, the
 * watchdog interrupts the run; the items after it, which never started, go on in a new run (a
 * new run id, so that the interrupt stays with the run it was meant for, and a new deadline).
 * *id is the current run id, published in c->id under the map lock (where the map's timeout
 * reads it). false if the worker was abandoned. */
static bool run_items(interp__worker *w, map_chunk *c, uint64_t *id)
{
    interp_pool *pool = w->pool;
    map_ctx *m = c->m;
    size_t from = 0;
    for (;;) {
        if (atomic_load(&pool->stop_now)) {
            interp__chunk_finish(c, INTERP_ERR_SHUTDOWN, false);
            break;
        }
        if (pool->task_timeout > 0)
            interp__watchdog_deadline(w, *id, pool->task_timeout);
        from += (m->packed ? interp__state_map_packed : interp__state_map)(
            w->state, *id, &m->fn, c->n - from, c->args + from, c->outs + from);
        if (from >= c->n || c->outs[from].status != INTERP_ERR_TIMEOUT || pool->task_timeout <= 0)
            break;
        /* stopped by a deadline: the item's own (go on), or the map's (stop is set first) */
        if (!interp__worker_end(w, *id))
            return false;
        *id = interp__worker_begin(w, &c->job);
        interp__mutex_lock(&m->mu);
        int stop = atomic_load(&m->stop);
        bool go = !stop && c->state == CH_RUNNING;
        if (go)
            c->id = *id;
        interp__mutex_unlock(&m->mu);
        for (size_t i = from; i < c->n; i++) {
            interp__outcome_clear(&c->outs[i]);
            if (!go) { /* the map is stopping: these items end as its other unstarted ones */
                c->outs[i].status = stop ? stop : INTERP_ERR_CANCELLED;
                c->outs[i].error = interp__dup_text(
                    interp__map_stop_text(c->outs[i].status, stop == INTERP_ERR_CANCELLED));
            }
        }
        if (!go)
            break;
    }
    return interp__worker_end(w, *id);
}

void interp__map_stop(map_ctx *m, int status)
{
    interp__mutex_lock(&m->mu);
    if (!atomic_load(&m->stop))
        atomic_store(&m->stop, status);
    interp__mutex_unlock(&m->mu);
}

bool interp__chunk_interrupt(map_chunk *c, int status)
{
    map_ctx *m = c->m;
    interp__mutex_lock(&m->mu);
    bool running = c->state == CH_RUNNING;
    interp__worker *w = running ? c->worker : NULL;
    uint64_t id = c->id;
    if (w)
        atomic_fetch_add(&w->refs, 1);
    interp__mutex_unlock(&m->mu);
    if (w) {
        interp__interrupt_run(w, id, status);
        interp__worker_release(w);
    }
    return running;
}

/* Mark c running (w: its worker, NULL for a backend; id: the run). 0, or the status its
 * items end with instead when its map stopped or it was ended while queued. */
static int claim(map_chunk *c, interp__worker *w, uint64_t id)
{
    map_ctx *m = c->m;
    interp__mutex_lock(&m->mu);
    int skip = atomic_load(&m->stop);
    if (!skip && c->state == CH_QUEUED) {
        c->state = CH_RUNNING;
        c->worker = w;
        c->id = id;
    } else if (!skip) {
        skip = INTERP_ERR_CANCELLED;
    } else if (skip == INTERP_ERR_CANCELLED) {
        c->skipped = true;
    }
    interp__mutex_unlock(&m->mu);
    return skip;
}

static bool chunk_run(interp__worker *w, interp__job *job)
{
    map_chunk *c = (map_chunk *)job;
    uint64_t id = interp__worker_begin(w, job);
    int skip = claim(c, w, id);
    if (skip) {
        bool alive = interp__worker_end(w, id);
        interp__chunk_finish(c, skip, false);
        interp__chunk_release(c);
        return alive;
    }
    if (!run_items(w, c, &id)) {
        interp__chunk_release(c); /* abandoned: the watchdog ended the chunk */
        return false;
    }
    w->tasks_on_state++;
    interp__chunk_complete(job);
    return true;
}

void interp__chunk_complete(interp__job *job)
{
    map_chunk *c = (map_chunk *)job;
    map_ctx *m = c->m;
    bool failed = false;
    interp__mutex_lock(&m->mu);
    bool ended = c->state == CH_DONE; /* ended early by shutdown_now */
    interp__mutex_unlock(&m->mu);
    if (m->direct && !ended) {
        failed = deliver_direct(c);
    } else if (m->stop_on_error) {
        for (size_t i = 0; i < c->n && !failed; i++)
            failed = c->outs[i].status != INTERP_OK;
    }
    interp__chunk_finish(c, 0, failed);
    interp__chunk_release(c);
}

static bool chunk_take(interp__job *job, interp__backend_work *w)
{
    map_chunk *c = (map_chunk *)job;
    int skip = claim(c, NULL, 0);
    if (skip) {
        interp__chunk_finish(c, skip, false);
        interp__chunk_release(c);
        return false;
    }
    w->fn = &c->m->fn;
    w->n = c->n;
    w->items = c->args;
    w->first = c->first;
    w->stop_on_error = c->m->stop_on_error;
    return true;
}

static int chunk_stop_status(interp__job *job)
{
    map_chunk *c = (map_chunk *)job;
    return atomic_load(&c->m->stop) == INTERP_ERR_TIMEOUT ? INTERP_ERR_TIMEOUT : 0;
}

const interp__job_ops interp__chunk_ops = {
    .kind = INTERP__JOB_CHUNK,
    .run = chunk_run,
    .abort = chunk_abort,
    .abandoned = chunk_abandoned,
    .take = chunk_take,
    .stop_status = chunk_stop_status,
};
