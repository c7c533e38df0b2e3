/* backend.c - pools whose jobs an external executor runs (backend.h): creation, and the
 * executor's side of taking and ending jobs. The futures, the map engine, waits and shutdown
 * are the local pool's own; only who runs a job differs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "map_impl.h"

int interp__pool_create_backend(interp_pool **out, const interp_pool_options *opts, int workers,
                                const interp__backend *be, void *ud, char **err)
{
    if (err)
        *err = NULL;
    if (!out || !be || workers < 1) {
        if (be)
            be->free(ud);
        return INTERP_ERR_INVALID;
    }
    *out = NULL;
    interp_pool_options o = opts ? *opts : interp_pool_defaults();
    interp_pool *pool = interp__pool_alloc(o.max_queued, 1);
    if (!pool) {
        be->free(ud);
        if (err)
            *err = interp__dup_text("out of memory");
        return INTERP_ERR_NOMEM;
    }
    pool->backend = be;
    pool->backend_ud = ud;
    interp_config cfg;
    const char *why;
    int rc = interp__options_resolve(&o, pool, &cfg, &why);
    if (rc == INTERP_OK) {
        pool->nworkers = workers;
        rc = interp__start_alloc_slots(pool);
        if (rc != INTERP_OK)
            why = "out of memory";
    }
    if (rc != INTERP_OK) {
        if (err)
            *err = interp__dup_text(why);
        interp__pool_release(pool); /* frees ud through be->free */
        return rc;
    }
    pool->q.notify = be->wake;
    pool->q.notify_ud = ud;
    *out = pool;
    return INTERP_OK;
}

interp__job *interp__backend_take(interp_pool *pool, interp__backend_work *w)
{
    for (;;) {
        interp__job *job = interp__queue_try_pop(&pool->q);
        if (!job)
            return NULL;
        memset(w, 0, sizeof *w);
        w->kind = job->ops->kind;
        if (job->ops->take(job, w)) /* else: ended while queued (cancel, a stopped map) */
            return job;
    }
}

bool interp__backend_drained(interp_pool *pool)
{
    return atomic_load(&pool->q.closed_flag) && interp__queue_count(&pool->q) == 0;
}

int interp__backend_stop_status(interp__job *job) { return job->ops->stop_status(job); }

void interp__backend_task_end(interp__job *job, int status, interp_msg *result, char *error,
                              interp_msg *error_value)
{
    interp_future *f = (interp_future *)job;
    interp_msg_free(f->args); /* the runner's, as a worker frees them after the call */
    f->args = NULL;
    interp__future_end(f, INTERP__F_RUNNING, status, result, error, error_value);
    interp_future_release(f); /* the queue's reference */
}

void interp__backend_chunk_end(interp__job *job, interp_outcome *outs, int status)
{
    map_chunk *c = (map_chunk *)job;
    if (!outs) {
        interp__chunk_finish(c, status, false);
        interp__chunk_release(c);
        return;
    }
    for (size_t i = 0; outs != c->outs && i < c->n; i++) {
        c->outs[i] = outs[i];
        memset(&outs[i], 0, sizeof outs[i]);
    }
    interp__chunk_complete(job);
}

interp_outcome *interp__backend_chunk_slots(interp__job *job) { return ((map_chunk *)job)->outs; }

/* A chunk of a backend's pool queued on a local pool (interp__backend_chunk_local). */
typedef struct local_chunk {
    interp__job job; /* first */
    map_chunk *c;
    void (*done)(void *ud);
    void *ud;
} local_chunk;

static bool local_run(interp__worker *w, interp__job *job)
{
    local_chunk lc = *(local_chunk *)job;
    free(job);
    bool alive = interp__chunk_ops.run(w, &lc.c->job);
    if (alive)
        lc.done(lc.ud);
    return alive;
}

static void local_abort(interp__job *job, int status, const char *text)
{
    local_chunk lc = *(local_chunk *)job;
    free(job);
    interp__chunk_ops.abort(&lc.c->job, status, text);
    lc.done(lc.ud);
}

static const interp__job_ops local_chunk_ops = {
    .kind = INTERP__JOB_CHUNK,
    .run = local_run,
    .abort = local_abort,
};

int interp__backend_chunk_local(interp__job *job, interp_pool *local, void (*done)(void *ud),
                                void *ud)
{
    map_chunk *c = (map_chunk *)job;
    local_chunk *lc = malloc(sizeof *lc);
    if (!lc) {
        interp__backend_chunk_end(job, NULL, INTERP_ERR_NOMEM);
        done(ud);
        return INTERP_ERR_NOMEM;
    }
    *lc = (local_chunk){.job.ops = &local_chunk_ops, .c = c, .done = done, .ud = ud};
    /* taken (running, no worker): queued again, so that a worker of local claims it; a stop
     * of its map that came meanwhile is seen by that claim */
    interp__mutex_lock(&c->m->mu);
    if (c->state == CH_RUNNING)
        c->state = CH_QUEUED;
    interp__mutex_unlock(&c->m->mu);
    bool grow = false;
    int rc = interp__queue_push(&local->q, &lc->job, INTERP_FOREVER, false, &grow);
    if (grow)
        interp__start_grow(local);
    if (rc != INTERP_OK) {
        free(lc);
        interp__chunk_finish(c, rc, false);
        interp__chunk_release(c);
        done(ud);
    }
    return rc;
}

/* ---- batches: items run on a local pool outside any map --------------------------------- */

/* One run of a batch: a map chunk (first: the chunk's free frees it all) with its outcomes. */
typedef struct batch_run {
    map_chunk c;
    interp__batch_done_fn done;
    void *ud;
    atomic_bool told;
    bool kept; /* room for RUN_KEEP outcomes: goes back to the cache */
    interp_outcome outs[];
} batch_run;

/* Runs' memory (about 64 KiB for RUN_KEEP outcomes) is kept for the next batches, a few of
 * them: freed, glibc would give it back to the system and fault it in afresh at the next. */
enum { RUN_KEEP = 2048, RUN_CACHE = 8 };
static pthread_mutex_t run_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static batch_run *run_cache[RUN_CACHE];
static int run_cached;

/* A zeroed run for cnt outcomes. */
static batch_run *run_alloc(size_t cnt)
{
    bool keep = cnt <= RUN_KEEP && cnt >= RUN_KEEP / 8;
    batch_run *r = NULL;
    if (keep) {
        pthread_mutex_lock(&run_cache_mu);
        r = run_cached ? run_cache[--run_cached] : NULL;
        pthread_mutex_unlock(&run_cache_mu);
    }
    if (r) { /* its outcomes were cleared when it was kept */
        memset(r, 0, sizeof *r);
    } else {
        r = calloc(1, sizeof *r + (keep ? RUN_KEEP : cnt) * sizeof r->outs[0]);
        if (!r)
            return NULL;
    }
    r->kept = keep;
    return r;
}

/* The batch's reference to r goes: r is kept for another batch when nobody else holds it. */
static void run_drop(batch_run *r)
{
    if (!r->kept || atomic_load_explicit(&r->c.refs, memory_order_acquire) != 1) {
        interp__chunk_release(&r->c);
        return;
    }
    for (size_t i = 0; i < r->c.n; i++) { /* most were emptied by done: no call for those */
        interp_outcome *o = &r->outs[i];
        if (o->result || o->error || o->error_value)
            interp__outcome_clear(o);
        else
            o->status = 0;
    }
    interp__map_ctx_release(r->c.m);
    pthread_mutex_lock(&run_cache_mu);
    bool kept = run_cached < RUN_CACHE;
    if (kept)
        run_cache[run_cached++] = r;
    pthread_mutex_unlock(&run_cache_mu);
    if (!kept)
        free(r);
}

struct interp__backend_batch {
    map_ctx *m;
    size_t nruns;
    batch_run *runs[];
};

static void run_tell(batch_run *r)
{
    if (atomic_exchange(&r->told, true))
        return;
    interp__mutex_lock(&r->c.m->mu);
    int end = r->c.end_status;
    bool skipped = r->c.skipped;
    interp__mutex_unlock(&r->c.m->mu);
    if (end)
        r->done(r->ud, r->c.first, r->c.n, NULL, end, interp__map_stop_text(end, skipped));
    else
        r->done(r->ud, r->c.first, r->c.n, r->outs, 0, NULL);
}

static bool run_run(interp__worker *w, interp__job *job)
{
    batch_run *r = (batch_run *)job;
    atomic_fetch_add_explicit(&r->c.refs, 1, memory_order_relaxed); /* past the run's release */
    bool alive = interp__chunk_ops.run(w, job);
    if (alive) /* else the watchdog told it (run_abandoned) */
        run_tell(r);
    interp__chunk_release(&r->c);
    return alive;
}

static void run_abort(interp__job *job, int status, const char *text)
{
    batch_run *r = (batch_run *)job;
    atomic_fetch_add_explicit(&r->c.refs, 1, memory_order_relaxed);
    interp__chunk_ops.abort(job, status, text);
    run_tell(r);
    interp__chunk_release(&r->c);
}

static void run_abandoned(interp__job *job, int reason)
{
    batch_run *r = (batch_run *)job;
    interp__chunk_ops.abandoned(job, reason); /* ends it: the worker may still write outs */
    run_tell(r);
}

static const interp__job_ops batch_run_ops = {
    .kind = INTERP__JOB_CHUNK,
    .run = run_run,
    .abort = run_abort,
    .abandoned = run_abandoned,
};

int interp__backend_batch_run(interp_pool *local, const interp_fn *fn, size_t n,
                              const interp_msg *const *items, bool stop_on_error, size_t per,
                              interp__batch_done_fn done, void *ud, interp__backend_batch **out)
{
    per = per ? per : 1;
    size_t nruns = n ? (n + per - 1) / per : 0;
    interp__backend_batch *b = calloc(1, sizeof *b + nruns * sizeof b->runs[0]);
    map_ctx *m = b ? interp__map_ctx_new(fn, stop_on_error) : NULL;
    for (size_t k = 0; m && k < nruns; k++) {
        size_t cnt = k + 1 < nruns ? per : n - k * per;
        batch_run *r = run_alloc(cnt);
        if (!r)
            break;
        r->c.job.ops = &batch_run_ops;
        atomic_init(&r->c.refs, 2); /* the queue's and the batch's */
        atomic_init(&r->c.done, false);
        atomic_fetch_add(&m->refs, 1);
        r->c.m = m;
        r->c.first = k * per;
        r->c.n = r->c.cap = cnt;
        r->c.args = items ? items + k * per : NULL;
        r->c.outs = r->outs;
        r->c.state = CH_QUEUED;
        r->done = done;
        r->ud = ud;
        b->runs[b->nruns++] = r;
    }
    if (!m || b->nruns < nruns) {
        for (size_t k = 0; k < b->nruns; k++) {
            interp__chunk_release(&b->runs[k]->c);
            interp__chunk_release(&b->runs[k]->c);
        }
        if (m)
            interp__map_ctx_release(m);
        free(b);
        return INTERP_ERR_NOMEM;
    }
    b->m = m;
    for (size_t k = 0; k < nruns; k++) {
        bool grow = false;
        int rc = interp__queue_push(&local->q, &b->runs[k]->c.job, INTERP_FOREVER, false, &grow);
        if (grow)
            interp__start_grow(local);
        if (rc != INTERP_OK)
            run_abort(&b->runs[k]->c.job, rc, NULL);
    }
    *out = b;
    return INTERP_OK;
}

void interp__backend_batch_stop(interp__backend_batch *b, int reason)
{
    interp__map_stop(b->m, reason);
    for (size_t k = 0; k < b->nruns; k++)
        interp__chunk_interrupt(&b->runs[k]->c, reason);
}

void interp__backend_batch_release(interp__backend_batch *b)
{
    if (!b)
        return;
    for (size_t k = 0; k < b->nruns; k++)
        run_drop(b->runs[k]);
    interp__map_ctx_release(b->m);
    free(b);
}
