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
        w->kind = job->kind;
        if (job->kind == INTERP__JOB_CHUNK) {
            if (!interp__chunk_take(job))
                continue;
            map_chunk *c = (map_chunk *)job;
            w->fn = &c->m->fn;
            w->n = c->n;
            w->items = c->args;
            w->first = c->first;
            w->stop_on_error = c->m->stop_on_error;
            return job;
        }
        interp_future *f = (interp_future *)job;
        interp__mutex_lock(&f->mu);
        if (atomic_load_explicit(&f->state, memory_order_relaxed) != INTERP__F_PENDING) {
            interp__mutex_unlock(&f->mu); /* cancelled (or failed) while queued */
            interp_future_release(f);
            continue;
        }
        atomic_store_explicit(&f->state, INTERP__F_RUNNING, memory_order_release);
        f->worker = NULL;
        interp__mutex_unlock(&f->mu);
        w->fn = &f->fn;
        w->timeout = f->timeout;
        w->args = f->args;
        return job;
    }
}

bool interp__backend_drained(interp_pool *pool)
{
    return atomic_load(&pool->q.closed_flag) && interp__queue_count(&pool->q) == 0;
}

int interp__backend_stop_status(interp__job *job)
{
    if (job->kind == INTERP__JOB_TASK)
        return atomic_load(&((interp_future *)job)->cancel_requested) ? INTERP_ERR_CANCELLED : 0;
    map_chunk *c = (map_chunk *)job;
    return atomic_load(&c->m->stop) == INTERP_ERR_TIMEOUT ? INTERP_ERR_TIMEOUT : 0;
}

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
    for (size_t i = 0; i < c->n; i++) {
        c->outs[i] = outs[i];
        memset(&outs[i], 0, sizeof outs[i]);
    }
    interp__chunk_complete(job);
}
