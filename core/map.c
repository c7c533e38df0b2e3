/* map.c - interp_pool_map, interp_pool_map_fn and interp_pool_map_stream: the calling side.
 *
 * One engine serves all three. The calling thread cuts the inputs into chunks of `chunksize`
 * items and keeps a bounded window of chunks queued or running (max_in_flight items); workers
 * run them (map_chunk.c). The caller waits for the oldest chunk of the window only, so results
 * are delivered in input order: for map() the worker has already moved them into the caller's
 * slots and the caller only sums up; for the stream form it hands each to on_result. Chunk
 * memory is reused for the next inputs once the worker is done with it. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "map_impl.h"

typedef struct engine {
    interp_pool *pool;
    map_ctx *m;
    size_t chunksize, max_chunks;
    /* inputs: in[0..n) or next() */
    size_t n;
    const interp_msg *const *in;
    interp_map_next_fn next;
    void *ud;
    bool input_done;
    size_t next_index;
    /* outputs */
    interp_msg **out;
    int *status;
    char **errors;
    interp_map_result_fn on_result;
    /* window */
    map_chunk *head, *tail, *spare;
    size_t in_window;
    bool has_deadline, timed_out;
    bool (*interrupted)(void *ud); /* opts->interrupted, until it said true */
    void *interrupted_ud;
    bool was_interrupted;
    struct timespec deadline;
    /* outcome */
    int rc, rc_secondary;
    uint64_t n_done, n_failed, n_cancelled, n_timed_out, n_submitted;
} engine;

/* Deliver item idx. result and error are owned (either may be NULL). */
static void deliver(engine *e, size_t idx, int status, interp_msg *result, char *error,
                    bool secondary)
{
    if (status == INTERP_OK) {
        e->n_done++;
    } else {
        if (status == INTERP_ERR_CANCELLED)
            e->n_cancelled++;
        else
            e->n_failed++;
        if (status == INTERP_ERR_TIMEOUT)
            e->n_timed_out++;
        if (secondary) {
            if (!e->rc_secondary)
                e->rc_secondary = status;
        } else if (!e->rc) {
            e->rc = status;
        }
    }
    if (e->on_result) {
        e->on_result(e->ud, idx, status, result, status == INTERP_OK ? NULL : error);
        free(error);
        return;
    }
    if (e->out)
        e->out[idx] = result;
    else
        interp_msg_free(result);
    if (e->status)
        e->status[idx] = status;
    if (e->errors)
        e->errors[idx] = status == INTERP_OK ? NULL : error;
    else
        free(error);
}

static void stop(engine *e, int status) { interp__map_stop(e->m, status); }

static bool poll_interrupt(engine *e);

/* Fill c with the next inputs; false when there are none. */
static bool fill(engine *e, map_chunk *c)
{
    c->first = e->next_index;
    c->n = 0;
    if (e->in || !e->next) {
        size_t left = e->n - e->next_index;
        c->n = left < e->chunksize ? left : e->chunksize;
        c->args = e->in ? e->in + c->first : NULL;
        if (e->next_index + c->n >= e->n)
            e->input_done = true;
    } else {
        while (c->n < e->chunksize) {
            interp_msg *a = NULL;
            if ((e->interrupted && poll_interrupt(e)) ||
                !e->next(e->ud, e->next_index + c->n, &a)) {
                e->input_done = true;
                break;
            }
            c->own[c->n++] = a;
        }
        c->args = (const interp_msg *const *)c->own;
    }
    e->next_index += c->n;
    return c->n > 0;
}

static int submit_more(engine *e)
{
    while (!e->input_done && !atomic_load(&e->m->stop) && e->in_window < e->max_chunks) {
        map_chunk *c = e->spare;
        if (c) {
            e->spare = c->next;
        } else {
            c = interp__chunk_new(e->m, e->chunksize, e->in == NULL && e->next != NULL);
            if (!c)
                return INTERP_ERR_NOMEM;
        }
        if (!fill(e, c)) {
            c->next = e->spare;
            e->spare = c;
            break;
        }
        c->state = CH_QUEUED;
        c->end_status = 0;
        c->skipped = false;
        atomic_store_explicit(&c->done, false, memory_order_relaxed);
        atomic_store_explicit(&c->refs, 2, memory_order_relaxed);
        c->next = NULL;
        if (e->tail)
            e->tail->next = c;
        else
            e->head = c;
        e->tail = c;
        e->in_window++;
        e->n_submitted += c->n;
        /* map chunks are not bounded by max_queued: the window bounds them */
        bool grow;
        int rc = interp__queue_push(&e->pool->q, &c->job, INTERP_FOREVER, false, &grow);
        if (grow)
            interp__start_grow(e->pool);
        if (rc != INTERP_OK) {
            atomic_store(&c->refs, 1);
            interp__chunk_finish(c, rc, false);
            stop(e, rc);
        }
    }
    return INTERP_OK;
}

/* The overall timeout passed (status INTERP_ERR_TIMEOUT) or the caller interrupted the map
 * (INTERP_ERR_CANCELLED): nothing more starts, queued chunks end at once, running ones are
 * interrupted (their unfinished items end with that status). */
static void halt(engine *e, int status)
{
    stop(e, status);
    for (map_chunk *c = e->head; c; c = c->next) {
        if (interp__queue_remove(&e->pool->q, &c->job))
            interp__chunk_abort(&c->job, status);
        if (interp__chunk_interrupt(c, status) && e->pool->backend)
            /* a backend holds it: it ends the chunk on its own thread */
            e->pool->backend->interrupt(e->pool->backend_ud, &c->job, status);
    }
}

static void time_out(engine *e)
{
    e->timed_out = true;
    halt(e, INTERP_ERR_TIMEOUT);
}

/* Poll the caller's interrupt; once it said true, halt and stop polling. */
static bool poll_interrupt(engine *e)
{
    if (!e->interrupted || !e->interrupted(e->interrupted_ud))
        return false;
    e->interrupted = NULL;
    e->was_interrupted = true;
    halt(e, INTERP_ERR_CANCELLED);
    return true;
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static bool chunk_done(void *arg)
{
    return atomic_load_explicit(&((map_chunk *)arg)->done, memory_order_acquire);
}

static void wait_chunk(engine *e, map_chunk *c)
{
    /* Spin only for small chunks: a big one (or a pack of calls) takes far longer than a
     * wake-up, and a spinning caller would take CPU time from the workers on a machine with
     * few cores. */
    if (interp__spin(chunk_done, c, c->n >= 64 || e->m->packed ? 0 : INTERP__WAIT_SPIN_NS))
        return;
    map_ctx *m = e->m;
    interp__mutex_lock(&m->mu);
    while (!atomic_load_explicit(&c->done, memory_order_acquire)) {
        m->waiting = true;
        m->wait_for = c;
        const struct timespec *until = e->has_deadline && !e->timed_out ? &e->deadline : NULL;
        struct timespec poll;
        bool polling = false;
        if (e->interrupted) {
            poll = interp__deadline_in(INTERP_MAP_INTERRUPT_POLL);
            if (!until || ts_before(&poll, until)) {
                until = &poll;
                polling = true;
            }
        }
        bool in_time = interp__cond_wait_until(&m->cv, &m->mu, until);
        m->waiting = false;
        if (!in_time && !atomic_load(&c->done)) {
            interp__mutex_unlock(&m->mu);
            if (!polling)
                time_out(e);
            else
                poll_interrupt(e);
            interp__mutex_lock(&m->mu);
        }
    }
    interp__mutex_unlock(&m->mu);
}

static void consume(engine *e, map_chunk *c)
{
    interp__mutex_lock(&e->m->mu); /* pairs with interp__chunk_finish */
    int end = c->end_status;
    bool skipped = c->skipped;
    interp__mutex_unlock(&e->m->mu);
    if (e->m->direct && !end) {
        /* the worker delivered every item */
        e->n_done += c->n_ok;
        e->n_failed += c->n_failed;
        e->n_cancelled += c->n_cancelled;
        e->n_timed_out += c->n_timed_out;
        if (c->first_fail) {
            if (!e->rc)
                e->rc = c->first_fail;
            if (e->m->stop_on_error)
                stop(e, INTERP_ERR_CANCELLED);
        }
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        size_t idx = c->first + i;
        if (end) {
            deliver(e, idx, end, NULL, interp__dup_text(interp__map_stop_text(end, skipped)),
                    skipped);
            continue;
        }
        interp_outcome *o = &c->outs[i];
        int st = o->status;
        char *err = NULL;
        if (st != INTERP_OK)
            err = o->error ? o->error : interp__dup_text(interp__map_stop_text(st, false));
        /* packed: a failed pack's result says which of its calls failed */
        bool keep = st == INTERP_OK || e->m->packed;
        deliver(e, idx, st, keep ? o->result : NULL, err, false);
        if (keep)
            o->result = NULL;
        o->error = NULL;
        interp__outcome_clear(o);
        if (st != INTERP_OK && e->m->stop_on_error)
            stop(e, INTERP_ERR_CANCELLED);
    }
    /* owned inputs go now, unless an abandoned worker still holds the chunk (then they go
     * with it) */
    if (c->own && atomic_load_explicit(&c->refs, memory_order_acquire) == 1)
        for (size_t i = 0; i < c->n; i++) {
            interp_msg_free(c->own[i]);
            c->own[i] = NULL;
        }
}

static int run(engine *e, const interp_map_options *opts)
{
    if (opts && opts->timeout > 0) {
        e->has_deadline = true;
        e->deadline = interp__deadline_in(opts->timeout);
    }
    if (opts && opts->interrupted) {
        e->interrupted = opts->interrupted;
        e->interrupted_ud = opts->interrupted_ud;
    }
    int rc = submit_more(e);
    while (e->head) {
        map_chunk *c = e->head;
        if (e->m->direct && c->n >= 64 && !chunk_done(c)) {
            /* map(): the workers deliver the results, so the caller only keeps the window
             * full. When the oldest chunk is still running, it sleeps until the chunk half a
             * window ahead has ended (then the ones before it have too, nearly always: they
             * were queued first), and then takes every ended chunk without sleeping: one
             * wake-up per half window instead of one per chunk. On a machine with few cores
             * every wake-up of the caller preempts a worker; the half window still queued or
             * running keeps the workers busy meanwhile. */
            size_t ahead = (e->in_window < e->max_chunks / 2 ? e->in_window : e->max_chunks / 2);
            map_chunk *t = c;
            for (size_t i = 1; i < ahead && t->next; i++)
                t = t->next;
            wait_chunk(e, t);
        }
        wait_chunk(e, c);
        e->head = c->next;
        if (!e->head)
            e->tail = NULL;
        e->in_window--;
        consume(e, c);
        if (atomic_load_explicit(&c->refs, memory_order_acquire) == 1) {
            c->next = e->spare; /* the worker is done with it: reuse */
            e->spare = c;
        } else {
            interp__chunk_release(c); /* an abandoned worker still holds it */
        }
        if (rc == INTERP_OK)
            rc = submit_more(e);
    }
    /* inputs never started (map only: a stream stops reading) */
    int st = atomic_load(&e->m->stop);
    if (!st && rc != INTERP_OK)
        st = rc;
    if (e->in || !e->next) {
        for (size_t idx = e->next_index; idx < e->n; idx++)
            deliver(e, idx, st, NULL,
                    interp__dup_text(e->was_interrupted
                                         ? "cancelled: interrupted"
                                         : interp__map_stop_text(st, st == INTERP_ERR_CANCELLED &&
                                                                         !e->timed_out)),
                    st == INTERP_ERR_CANCELLED && !e->was_interrupted);
        e->n_submitted += e->n - e->next_index;
    }
    while (e->spare) {
        map_chunk *c = e->spare;
        e->spare = c->next;
        interp__chunk_release(c);
    }
    interp_pool *p = e->pool;
    atomic_fetch_add_explicit(&p->st_submitted, e->n_submitted, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_done, e->n_done, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_failed, e->n_failed, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_cancelled, e->n_cancelled, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_timed_out, e->n_timed_out, memory_order_relaxed);
    if (e->was_interrupted)
        return INTERP_ERR_CANCELLED;
    if (rc != INTERP_OK && !e->rc)
        return rc;
    return e->rc ? e->rc : e->rc_secondary;
}

static int pool_usable(interp_pool *pool)
{
    if (!atomic_load(&pool->q.closed_flag))
        return INTERP_OK;
    interp__mutex_lock(&pool->q.mu);
    int rc = pool->q.reason;
    interp__mutex_unlock(&pool->q.mu);
    return rc;
}

int interp_map_check_sizes(size_t chunksize, size_t max_in_flight, const char **why)
{
    _Static_assert(INTERP_MAP_MAX_CHUNKSIZE == 1048576 && INTERP_MAP_MAX_IN_FLIGHT == 16777216,
                   "the texts below");
    *why = NULL;
    if (chunksize > INTERP_MAP_MAX_CHUNKSIZE)
        *why = "chunksize must be at most 1048576 (INTERP_MAP_MAX_CHUNKSIZE)";
    else if (max_in_flight > INTERP_MAP_MAX_IN_FLIGHT)
        *why = "max_in_flight must be at most 16777216 (INTERP_MAP_MAX_IN_FLIGHT)";
    return *why ? INTERP_ERR_INVALID : INTERP_OK;
}

/* Check the sizes and set up the engine. *why: a static text saying what was invalid. */
static int start(engine *e, interp_pool *pool, const interp_fn *fn, size_t n_hint,
                 size_t max_in_flight, const interp_map_options *opts, const char **why)
{
    *why = NULL;
    int rc = interp__fn_check(fn, why);
    if (rc != INTERP_OK)
        return rc;
    if (opts && (opts->timeout != opts->timeout)) {
        *why = "timeout is NaN";
        return INTERP_ERR_INVALID;
    }
    /* sizes first: no arithmetic below may wrap (a chunksize of 2^61 made 4 x cs x workers 0) */
    rc = interp_map_check_sizes(opts ? opts->chunksize : 0, max_in_flight, why);
    if (rc == INTERP_OK)
        rc = pool_usable(pool);
    if (rc != INTERP_OK)
        return rc;
    e->pool = pool;
    size_t workers = (size_t)pool->nworkers;
    size_t cs = opts ? opts->chunksize : 0;
    if (!cs) {
        size_t max = pool->backend && pool->backend->auto_chunksize_max
                         ? pool->backend->auto_chunksize_max
                         : INTERP_MAP_AUTO_CHUNKSIZE_MAX;
        cs = n_hint ? n_hint / (workers * 8) : 16;
        cs = cs < 1 ? 1 : cs > max ? max : cs;
    }
    /* a chunk's slots are allocated whole: never more of them than there are items */
    if (n_hint && cs > n_hint)
        cs = n_hint;
    if (!max_in_flight) /* <= 4 x 2^20 x 4096 = 2^34 (chunksize, workers bounds): no wrap */
        max_in_flight = INTERP_MAP_WINDOW_CHUNKS * cs * workers;
    if (max_in_flight < cs)
        cs = max_in_flight;
    e->chunksize = cs;
    e->max_chunks = max_in_flight / cs;
    e->m = interp__map_ctx_new(fn, opts && opts->stop_on_error);
    return e->m ? INTERP_OK : INTERP_ERR_NOMEM;
}

int interp_pool_map_fn(interp_pool *pool, const interp_fn *fn, size_t n,
                       const interp_msg *const in[], interp_msg *out[],
                       const interp_map_options *opts)
{
    if (!pool || (n && !in))
        return INTERP_ERR_INVALID;
    /* out[] is not cleared first: every item is delivered (a NULL for each that failed), and
     * clearing a million slots before the first chunk was ~3% of a tiny map's time */
    interp_map_options copy;
    const char *abi_why;
    if (opts && interp__struct_in(&copy, sizeof copy, opts, opts->struct_size,
                                  INTERP__MAP_OPTIONS_SIZE_0, &abi_why) != INTERP_OK) {
        for (size_t i = 0; out && i < n; i++)
            out[i] = NULL;
        return INTERP_ERR_INVALID;
    }
    opts = opts ? &copy : NULL;
    if (n == 0)
        return interp__fn_check(fn, NULL);
    engine e = {0};
    const char *why;
    int rc = start(&e, pool, fn, n, 0, opts, &why);
    if (rc != INTERP_OK) {
        for (size_t i = 0; i < n; i++) {
            if (out)
                out[i] = NULL;
            if (opts && opts->status)
                opts->status[i] = rc;
            if (opts && opts->errors)
                opts->errors[i] = interp__dup_text(why ? why : interp_strerror(rc));
        }
        return rc;
    }
    e.n = n;
    e.in = in;
    e.out = out;
    e.status = opts ? opts->status : NULL;
    e.errors = opts ? opts->errors : NULL;
    e.m->direct = true;
    e.m->out = e.out;
    e.m->status = e.status;
    e.m->errors = e.errors;
    rc = run(&e, opts);
    interp__map_ctx_release(e.m);
    return rc;
}

int interp_pool_map(interp_pool *pool, const char *fn, size_t n, const interp_msg *const in[],
                    interp_msg *out[], const interp_map_options *opts)
{
    interp_fn f = {.kind = INTERP_FN_NAME, .text = fn};
    return interp_pool_map_fn(pool, &f, n, in, out, opts);
}

static int map_stream(interp_pool *pool, const interp_fn *fn, interp_map_next_fn next_input,
                      interp_map_result_fn on_result, void *ud, size_t max_in_flight,
                      const interp_map_options *opts, bool packed)
{
    if (!pool || !next_input || !on_result || (packed && pool->backend))
        return INTERP_ERR_INVALID;
    interp_map_options copy;
    const char *abi_why;
    if (opts && interp__struct_in(&copy, sizeof copy, opts, opts->struct_size,
                                  INTERP__MAP_OPTIONS_SIZE_0, &abi_why) != INTERP_OK)
        return INTERP_ERR_INVALID;
    opts = opts ? &copy : NULL;
    engine e = {0};
    const char *why;
    int rc = start(&e, pool, fn, 0, max_in_flight, opts, &why);
    if (rc != INTERP_OK)
        return rc;
    e.n = SIZE_MAX;
    e.next = next_input;
    e.ud = ud;
    e.on_result = on_result;
    e.m->packed = packed;
    rc = run(&e, opts);
    interp__map_ctx_release(e.m);
    return rc;
}

int interp_pool_map_stream(interp_pool *pool, const interp_fn *fn, interp_map_next_fn next_input,
                           interp_map_result_fn on_result, void *ud, size_t max_in_flight,
                           const interp_map_options *opts)
{
    return map_stream(pool, fn, next_input, on_result, ud, max_in_flight, opts, false);
}

int interp_pool_map_packed(interp_pool *pool, const interp_fn *fn, interp_map_next_fn next_pack,
                           interp_map_result_fn on_pack, void *ud, size_t max_in_flight,
                           const interp_map_options *opts)
{
    return map_stream(pool, fn, next_pack, on_pack, ud, max_in_flight, opts, true);
}
