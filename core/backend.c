/* backend.c - pools whose jobs an external executor runs (backend.h): creation, and the
 * executor's side of taking and ending jobs. The futures, the map engine, waits and shutdown
 * are the local pool's own; only who runs a job differs. */
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
