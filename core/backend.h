/* backend.h - internal seam between the pool and an external executor (the MPI pool, mpi/).
 *
 * A pool created with a backend has no worker threads of its own. Its queue, futures, map
 * engine, waits and shutdown are the ordinary ones; the backend's own thread takes queued jobs
 * (interp__backend_take), runs them wherever it likes (other processes), and ends them
 * (interp__backend_task_end, interp__backend_chunk_end). The pool calls the backend's hooks
 * when a job is queued, when a job the backend holds must be interrupted (cancel, a map's
 * timeout, shutdown_now), at shutdown and when the pool is freed.
 *
 * Only for libraries built with this one (mpi/): not part of the installed API. */
#ifndef INTERP_BACKEND_H
#define INTERP_BACKEND_H

#include <stdbool.h>

#include "interp.h"
#include "interp_pool.h"

typedef struct interp__job interp__job;

typedef struct interp__backend {
    /* A job was queued, or the queue closed. Any thread, no lock held; must not block. */
    void (*wake)(void *ud);
    /* A job the backend took must end soon with `reason` (INTERP_ERR_CANCELLED for a cancel
     * or an interrupted map, INTERP_ERR_TIMEOUT for a map's overall timeout). Any thread, no lock
     * held; must not block, must not end the job on this thread (the backend's thread ends it). */
    void (*interrupt)(void *ud, interp__job *job, int reason);
    /* The pool shuts down: its queue is closed. now: interrupt every job the backend holds
     * (they end with INTERP_ERR_SHUTDOWN). wait: return only once the queue is empty and every
     * job taken has ended. Called from interp_pool_shutdown / _now / destroy. */
    void (*shutdown)(void *ud, bool now, bool wait);
    /* interp_pool_destroy, after shutdown(now, wait): stop the backend's thread and whatever it
     * runs elsewhere. Then interrupt may still be called (must do nothing). */
    void (*stop)(void *ud);
    /* The pool is freed: free ud. */
    void (*free)(void *ud);
    /* The largest chunk size map picks by itself on this pool (chunksize 0; 0 here: a local
     * pool's, INTERP_MAP_AUTO_CHUNKSIZE_MAX): a chunk sent elsewhere costs more than a local
     * one, so larger ones may pay. */
    size_t auto_chunksize_max;
} interp__backend;

/* The backend's thread calls interp__set_pool_thread(pool) (core_impl.h) first: futures end
 * there, so callbacks run there, and a shutdown from such a callback must not wait. */

/* Create a pool whose jobs `be` runs. opts as interp_pool_create's (validated the same way;
 * init_source/init_file/init_args are not used here: the backend ships them), `workers` the
 * total capacity (the map's chunk size and window follow it). The pool owns ud from here on,
 * even on error (be->free is called). INTERP_OK and *out, else as interp_pool_create. */
int interp__pool_create_backend(interp_pool **out, const interp_pool_options *opts, int workers,
                                const interp__backend *be, void *ud, char **err);

/* interp_pool_create for a rank's local pool serving a pool that spans processes: named
 * channels (interp_pool_channel, interp.channel in its tasks and initializer) and contexts
 * (interp_ctx_create) are refused with INTERP_ERR_INVALID and the text `refusal` (static, kept
 * by the pool), since neither would reach the other processes. */
int interp__pool_create_rank(interp_pool **out, const interp_pool_options *opts,
                             const char *refusal, char **err);

/* What a taken job asks for. Pointers stay valid until the job is ended. */
typedef struct interp__backend_work {
    int kind; /* INTERP__JOB_TASK or INTERP__JOB_CHUNK */
    const interp_fn *fn;
    double timeout;                 /* task: resolved deadline (> 0) or 0 for none */
    const interp_msg *args;         /* task: its arguments (may be NULL) */
    size_t n;                       /* chunk: its items ... */
    const interp_msg *const *items; /* ... (each may be NULL) */
    size_t first;                   /* chunk: index of its first item in the map */
    bool stop_on_error;             /* chunk: the map stops after a failure */
} interp__backend_work;

/* Backend's thread: take the oldest queued job that is still to run (cancelled ones and chunks
 * of a stopping map are ended here), mark it running and describe it in *w. NULL when the
 * queue is empty (closed or not). Never blocks. */
interp__job *interp__backend_take(interp_pool *pool, interp__backend_work *w);
/* True once the pool's queue is closed (shutdown) and empty. */
bool interp__backend_drained(interp_pool *pool);
/* End a task the backend took (ownership of result/error/error_value passes). */
void interp__backend_task_end(interp__job *job, int status, interp_msg *result, char *error,
                              interp_msg *error_value);
/* End a chunk the backend took: outs[0..n) are its items' outcomes (moved out: zeroed
 * here). With outs NULL every item ends with `status` and the text of the map's stop (a map
 * timeout). */
void interp__backend_chunk_end(interp__job *job, interp_outcome *outs, int status);
/* A taken chunk's own outcome slots (its n items', zeroed), for a backend that fills them in
 * place and ends the chunk with interp__backend_chunk_end(job, slots, 0) (no copy). */
interp_outcome *interp__backend_chunk_slots(interp__job *job);
/* A taken chunk runs on a worker of `local` instead (an ordinary pool of this process: the
 * MPI root's own share), as that pool runs its own map chunks: its items are read in place and
 * its outcomes delivered by that worker, interrupts reach it as a local chunk's do (a map's
 * timeout, stop_on_error, shutdown_now of `local`). done(ud) runs once it has ended, on the
 * worker's thread, or on this one when it ended unqueued (not when its worker was abandoned:
 * that thread may return after the backend is gone). INTERP_OK, or local's close reason
 * (the chunk has then ended with it, done called). */
int interp__backend_chunk_local(interp__job *job, interp_pool *local, void (*done)(void *ud),
                                void *ud);
/* Items run outside any map (an MPI rank's unit): fn over items[0..n) (borrowed until every
 * run has been told) on the workers of pool `local`, cut into runs of at most `per` items,
 * each queued there as a map chunk of its own (one map's rules: stop_on_error across the
 * runs, the pool's task_timeout per item). As each run ends, done(ud, first, count, outs, 0,
 * NULL) gets its outcomes (outs[0..count) for items first.., which the callee may move out);
 * or, when its items did not run (the batch stopped, stop_on_error, local shut down or closed)
 * or its worker was abandoned, done(ud, first, count, NULL, status, text) says how every item
 * ended. done runs once per run: on the run's worker thread, the watchdog's, or the caller's
 * when it cannot be queued. INTERP_OK and *out (released with interp__backend_batch_release
 * once done has run for every run), or INTERP_ERR_NOMEM (nothing queued, done not called). */
typedef struct interp__backend_batch interp__backend_batch;
typedef void (*interp__batch_done_fn)(void *ud, size_t first, size_t count, interp_outcome *outs,
                                      int status, const char *text);
int interp__backend_batch_run(interp_pool *local, const interp_fn *fn, size_t n,
                              const interp_msg *const *items, bool stop_on_error, size_t per,
                              interp__batch_done_fn done, void *ud, interp__backend_batch **out);
/* Stop the batch: its running items are interrupted and the rest end with reason
 * (INTERP_ERR_CANCELLED, _TIMEOUT, _SHUTDOWN). Any thread until released. */
void interp__backend_batch_stop(interp__backend_batch *b, int reason);
void interp__backend_batch_release(interp__backend_batch *b);

/* A taken job that must not be sent after all: INTERP_ERR_CANCELLED for a task whose cancel
 * was requested, INTERP_ERR_TIMEOUT for a chunk whose map has timed out; else 0. (An interrupt
 * that came while the backend was taking the job may have found nothing to interrupt.) */
int interp__backend_stop_status(interp__job *job);

#endif
