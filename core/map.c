/* map.c - interp_pool_map, interp_pool_map_fn and interp_pool_map_stream.
 *
 * One engine serves all three. The calling thread cuts the inputs into chunks of `chunksize`
 * items and keeps a bounded window of chunks queued or running (max_in_flight items). A worker
 * runs a whole chunk with one interp__state_map call (one protected region, the function
 * looked up once, no allocation per item beyond the result message) into the chunk's outcome
 * array. The caller waits for the oldest chunk of the window only (results are delivered in
 * input order), moves each result straight into the caller's slot (or hands it to on_result),
 * and reuses the chunk's memory for the next inputs.
 *
 * Chunks are reference counted (caller, and the queue or the worker running it): a worker
 * abandoned inside a stuck C call may write its outcome array after the caller has returned.
 * Items of an abandoned chunk end with the abandon reason; its outcomes are freed with the
 * chunk. map() borrows its inputs: an abandoned worker must not read them after the interrupt
 * (interp__state_map gives the items it has not run the interrupt's status without decoding
 * them). */
#include <stdlib.h>
#include <string.h>

#include "core_impl.h"
#include "msg_impl.h"

typedef struct map_ctx {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool waiting;        /* guarded by mu: the caller sleeps on cv */
    atomic_int stop;     /* written under mu (first wins): status for items not yet started */
    bool stop_on_error;  /* immutable */
    /* map (not stream): the worker that ran a chunk moves its results straight into the
     * caller's slots (immutable pointers; each chunk writes only its own items, before it is
     * marked done under mu, which the caller takes before reading) */
    bool direct;
    interp_msg **out;
    int *status;
    char **errors;
    interp_fn fn;        /* owned copy */
    char data[];
} map_ctx;

enum { CH_QUEUED, CH_RUNNING, CH_DONE };

typedef struct map_chunk {
    interp__job job;     /* first */
    atomic_int refs;
    map_ctx *m;
    size_t first, n, cap;
    const interp_msg *const *args; /* n entries: into the caller's in[], or own */
    interp_msg **own;    /* stream: cap owned argument messages, else NULL */
    interp_outcome *outs; /* cap entries, zeroed when not in use */
    int state;           /* guarded by m->mu */
    int end_status;      /* guarded by m->mu: every item ended with this (not run) */
    bool skipped;        /* guarded by m->mu: not run because an earlier item failed */
    interp__worker *worker; /* guarded by m->mu while RUNNING */
    uint64_t id;
    atomic_bool done;
    /* direct delivery: what the worker delivered (read by the caller after done) */
    size_t n_ok, n_failed, n_cancelled, n_timed_out;
    int first_fail;      /* status of the chunk's first failed item, 0: none */
    struct map_chunk *next; /* the caller's window or free list */
} map_chunk;

static void ctx_release(map_ctx *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    interp__cond_destroy(&m->cv);
    interp__mutex_destroy(&m->mu);
    free(m);
}

static map_ctx *ctx_new(const interp_fn *fn, bool stop_on_error)
{
    size_t extra, tlen = 0;
    if (fn->kind == INTERP_FN_FUNCTION) {
        extra = sizeof(interp_msg) + fn->function->size + _Alignof(interp_msg);
    } else {
        tlen = fn->kind == INTERP_FN_SOURCE && fn->len ? fn->len : strlen(fn->text);
        extra = tlen + 1;
    }
    map_ctx *m = malloc(sizeof *m + extra);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    interp__mutex_init(&m->mu);
    interp__cond_init(&m->cv);
    m->waiting = false;
    atomic_init(&m->stop, 0);
    m->stop_on_error = stop_on_error;
    m->direct = false;
    m->out = NULL;
    m->status = NULL;
    m->errors = NULL;
    m->fn = *fn;
    if (fn->kind == INTERP_FN_FUNCTION) {
        uintptr_t p = (uintptr_t)m->data;
        p = (p + _Alignof(interp_msg) - 1) & ~(uintptr_t)(_Alignof(interp_msg) - 1);
        memcpy((void *)p, fn->function, sizeof(interp_msg) + fn->function->size);
        m->fn.function = (const interp_msg *)p;
        m->fn.text = NULL;
    } else {
        memcpy(m->data, fn->text, tlen);
        m->data[tlen] = '\0';
        m->fn.text = m->data;
        m->fn.len = fn->kind == INTERP_FN_SOURCE ? tlen : 0;
    }
    return m;
}

static void chunk_free(map_chunk *c)
{
    for (size_t i = 0; i < c->cap; i++)
        interp__outcome_clear(&c->outs[i]);
    if (c->own)
        for (size_t i = 0; i < c->n; i++)
            interp_msg_free(c->own[i]);
    ctx_release(c->m);
    free(c);
}

static void chunk_release(map_chunk *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        chunk_free(c);
}

static map_chunk *chunk_new(map_ctx *m, size_t cap, bool stream)
{
    size_t sz = sizeof(map_chunk) + cap * sizeof(interp_outcome) +
                (stream ? cap * sizeof(interp_msg *) : 0);
    map_chunk *c = calloc(1, sz);
    if (!c)
        return NULL;
    c->job.kind = INTERP__JOB_CHUNK;
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
static void chunk_finish(map_chunk *c, int status, bool failed)
{
    map_ctx *m = c->m;
    interp__mutex_lock(&m->mu);
    if (c->state != CH_DONE) {
        c->state = CH_DONE;
        c->end_status = status;
        c->worker = NULL;
        if (failed && m->stop_on_error && !atomic_load(&m->stop))
            atomic_store(&m->stop, INTERP_ERR_CANCELLED);
        atomic_store_explicit(&c->done, true, memory_order_release);
        if (m->waiting)
            interp__cond_signal(&m->cv);
    }
    interp__mutex_unlock(&m->mu);
}

void interp__chunk_abort(interp__job *job, int status)
{
    map_chunk *c = (map_chunk *)job;
    chunk_finish(c, status, false);
    chunk_release(c); /* the queue's reference */
}

void interp__chunk_abandoned(interp__job *job, int status)
{
    chunk_finish((map_chunk *)job, status, false);
}

static const char *stop_text(int status, bool skipped);
static char *dup_text(const char *s);

/* Worker, after a chunk ran (not abandoned): move every result into the caller's slots and
 * summarise, so that the caller does no per-item work. The outcomes end zeroed. */
static bool deliver_direct(map_chunk *c)
{
    map_ctx *m = c->m;
    c->n_ok = c->n_failed = c->n_cancelled = c->n_timed_out = 0;
    c->first_fail = 0;
    for (size_t i = 0; i < c->n; i++) {
        interp_outcome *o = &c->outs[i];
        size_t idx = c->first + i;
        int st = o->status;
        if (m->status)
            m->status[idx] = st;
        if (st == INTERP_OK) {
            c->n_ok++;
            if (m->out)
                m->out[idx] = o->result;
            else
                interp_msg_free(o->result);
            o->result = NULL;
            if (m->errors)
                m->errors[idx] = NULL;
            continue;
        }
        if (!c->first_fail)
            c->first_fail = st;
        if (st == INTERP_ERR_CANCELLED)
            c->n_cancelled++;
        else
            c->n_failed++;
        c->n_timed_out += st == INTERP_ERR_TIMEOUT;
        if (m->out)
            m->out[idx] = NULL;
        if (m->errors) {
            m->errors[idx] = o->error ? o->error : dup_text(stop_text(st, false));
            o->error = NULL;
        }
        interp__outcome_clear(o);
    }
    memset(c->outs, 0, c->n * sizeof *c->outs);
    return c->first_fail != 0;
}

bool interp__chunk_run(interp__worker *w, interp__job *job)
{
    map_chunk *c = (map_chunk *)job;
    map_ctx *m = c->m;
    uint64_t id = interp__worker_begin(w, job);
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
    if (skip) {
        bool alive = interp__worker_end(w, id);
        chunk_finish(c, skip, false);
        chunk_release(c);
        return alive;
    }
    if (atomic_load(&w->pool->stop_now))
        chunk_finish(c, INTERP_ERR_SHUTDOWN, false);
    else
        interp__state_map(w->state, id, &m->fn, c->n, c->args, c->outs);
    if (!interp__worker_end(w, id)) {
        chunk_release(c); /* abandoned: the watchdog ended the chunk */
        return false;
    }
    w->tasks_on_state++;
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
    chunk_finish(c, 0, failed);
    chunk_release(c);
    return true;
}

/* ---- the calling side ------------------------------------------------------------------- */

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
    struct timespec deadline;
    /* outcome */
    int rc, rc_secondary;
    uint64_t n_done, n_failed, n_cancelled, n_timed_out, n_submitted;
} engine;

static const char *stop_text(int status, bool skipped)
{
    if (skipped)
        return "cancelled: an earlier item failed (stop_on_error)";
    switch (status) {
    case INTERP_ERR_TIMEOUT: return "timed out: the map's timeout passed";
    case INTERP_ERR_CANCELLED: return "cancelled: the pool was shut down";
    case INTERP_ERR_SHUTDOWN: return "cancelled: the pool is shut down";
    default: return interp_strerror(status);
    }
}

static char *dup_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

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

static void stop(engine *e, int status)
{
    interp__mutex_lock(&e->m->mu);
    if (!atomic_load(&e->m->stop))
        atomic_store(&e->m->stop, status);
    interp__mutex_unlock(&e->m->mu);
}

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
            if (!e->next(e->ud, e->next_index + c->n, &a)) {
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
            c = chunk_new(e->m, e->chunksize, e->in == NULL && e->next != NULL);
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
        int rc = interp__queue_push(&e->pool->q, &c->job, INTERP_FOREVER, false);
        if (rc != INTERP_OK) {
            atomic_store(&c->refs, 1);
            chunk_finish(c, rc, false);
            stop(e, rc);
        }
    }
    return INTERP_OK;
}

/* The overall timeout passed: nothing more starts, queued chunks end at once, running ones
 * are interrupted (their unfinished items end with INTERP_ERR_TIMEOUT). */
static void time_out(engine *e)
{
    e->timed_out = true;
    stop(e, INTERP_ERR_TIMEOUT);
    for (map_chunk *c = e->head; c; c = c->next) {
        if (interp__queue_remove(&e->pool->q, &c->job))
            interp__chunk_abort(&c->job, INTERP_ERR_TIMEOUT);
        interp__mutex_lock(&e->m->mu);
        interp__worker *w = c->state == CH_RUNNING ? c->worker : NULL;
        uint64_t id = c->id;
        if (w)
            atomic_fetch_add(&w->refs, 1);
        interp__mutex_unlock(&e->m->mu);
        if (w) {
            interp__interrupt_run(w, id, INTERP_ERR_TIMEOUT);
            interp__worker_release(w);
        }
    }
}

static bool chunk_done(void *arg)
{
    return atomic_load_explicit(&((map_chunk *)arg)->done, memory_order_acquire);
}

static void wait_chunk(engine *e, map_chunk *c)
{
    /* Spin only for small chunks: a big one takes far longer than a wake-up, and a spinning
     * caller would take CPU time from the workers on a machine with few cores. */
    if (interp__spin(chunk_done, c, c->n >= 64 ? 0 : INTERP__WAIT_SPIN_NS))
        return;
    map_ctx *m = e->m;
    interp__mutex_lock(&m->mu);
    while (!atomic_load_explicit(&c->done, memory_order_acquire)) {
        m->waiting = true;
        bool in_time = interp__cond_wait_until(&m->cv, &m->mu,
                                               e->has_deadline && !e->timed_out ? &e->deadline
                                                                                : NULL);
        m->waiting = false;
        if (!in_time && !atomic_load(&c->done)) {
            interp__mutex_unlock(&m->mu);
            time_out(e);
            interp__mutex_lock(&m->mu);
        }
    }
    interp__mutex_unlock(&m->mu);
}

static void consume(engine *e, map_chunk *c)
{
    interp__mutex_lock(&e->m->mu); /* pairs with chunk_finish */
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
            deliver(e, idx, end, NULL, dup_text(stop_text(end, skipped)), skipped);
            continue;
        }
        interp_outcome *o = &c->outs[i];
        int st = o->status;
        char *err = NULL;
        if (st != INTERP_OK)
            err = o->error ? o->error : dup_text(stop_text(st, false));
        deliver(e, idx, st, st == INTERP_OK ? o->result : NULL, err, false);
        if (st == INTERP_OK)
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
    int rc = submit_more(e);
    while (e->head) {
        map_chunk *c = e->head;
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
            chunk_release(c); /* an abandoned worker still holds it */
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
            deliver(e, idx, st, NULL, dup_text(stop_text(st, st == INTERP_ERR_CANCELLED &&
                                                                  !e->timed_out)),
                    st == INTERP_ERR_CANCELLED);
        e->n_submitted += e->n - e->next_index;
    }
    while (e->spare) {
        map_chunk *c = e->spare;
        e->spare = c->next;
        chunk_release(c);
    }
    interp_pool *p = e->pool;
    atomic_fetch_add_explicit(&p->st_submitted, e->n_submitted, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_done, e->n_done, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_failed, e->n_failed, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_cancelled, e->n_cancelled, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->st_timed_out, e->n_timed_out, memory_order_relaxed);
    if (rc != INTERP_OK && !e->rc)
        return rc;
    return e->rc ? e->rc : e->rc_secondary;
}

static int check_fn(const interp_fn *fn)
{
    if (!fn)
        return INTERP_ERR_INVALID;
    switch (fn->kind) {
    case INTERP_FN_NAME: return fn->text && fn->text[0] ? INTERP_OK : INTERP_ERR_INVALID;
    case INTERP_FN_SOURCE: return fn->text ? INTERP_OK : INTERP_ERR_INVALID;
    case INTERP_FN_FUNCTION: return fn->function ? INTERP_OK : INTERP_ERR_INVALID;
    default: return INTERP_ERR_INVALID;
    }
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

static int start(engine *e, interp_pool *pool, const interp_fn *fn, size_t n_hint,
                 size_t max_in_flight, const interp_map_options *opts)
{
    int rc = check_fn(fn);
    if (rc != INTERP_OK)
        return rc;
    if (opts && (opts->timeout != opts->timeout))
        return INTERP_ERR_INVALID;
    rc = pool_usable(pool);
    if (rc != INTERP_OK)
        return rc;
    e->pool = pool;
    size_t workers = (size_t)pool->nworkers;
    size_t cs = opts ? opts->chunksize : 0;
    if (!cs) {
        cs = n_hint ? n_hint / (workers * 8) : 16;
        cs = cs < 1 ? 1 : cs > 4096 ? 4096 : cs;
    }
    if (!max_in_flight)
        max_in_flight = 4 * cs * workers;
    if (max_in_flight < cs)
        cs = max_in_flight;
    e->chunksize = cs;
    e->max_chunks = max_in_flight / cs;
    e->m = ctx_new(fn, opts && opts->stop_on_error);
    return e->m ? INTERP_OK : INTERP_ERR_NOMEM;
}

int interp_pool_map_fn(interp_pool *pool, const interp_fn *fn, size_t n,
                       const interp_msg *const in[], interp_msg *out[],
                       const interp_map_options *opts)
{
    if (!pool || (n && !in))
        return INTERP_ERR_INVALID;
    for (size_t i = 0; out && i < n; i++)
        out[i] = NULL;
    if (n == 0)
        return check_fn(fn);
    engine e = {0};
    int rc = start(&e, pool, fn, n, 0, opts);
    if (rc != INTERP_OK) {
        for (size_t i = 0; i < n; i++) {
            if (opts && opts->status)
                opts->status[i] = rc;
            if (opts && opts->errors)
                opts->errors[i] = dup_text(interp_strerror(rc));
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
    ctx_release(e.m);
    return rc;
}

int interp_pool_map(interp_pool *pool, const char *fn, size_t n, const interp_msg *const in[],
                    interp_msg *out[], const interp_map_options *opts)
{
    interp_fn f = {.kind = INTERP_FN_NAME, .text = fn};
    return interp_pool_map_fn(pool, &f, n, in, out, opts);
}

int interp_pool_map_stream(interp_pool *pool, const interp_fn *fn, interp_map_next_fn next_input,
                           interp_map_result_fn on_result, void *ud, size_t max_in_flight,
                           const interp_map_options *opts)
{
    if (!pool || !next_input || !on_result)
        return INTERP_ERR_INVALID;
    engine e = {0};
    int rc = start(&e, pool, fn, 0, max_in_flight, opts);
    if (rc != INTERP_OK)
        return rc;
    e.n = SIZE_MAX;
    e.next = next_input;
    e.ud = ud;
    e.on_result = on_result;
    rc = run(&e, opts);
    ctx_release(e.m);
    return rc;
}
