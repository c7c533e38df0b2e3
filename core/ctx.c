/* ctx.c - contexts (interp_ctx.h): persistent states run by the pool's workers.
 *
 * A context is a job (interp__ctx_ops) in the pool's queue while it has calls waiting
 * (at most one entry per context). Its calls are futures in its own FIFO, linked through
 * their queue link (job.next; job.queued stays false, so interp_future_cancel's queue removal
 * leaves them alone and only ends them: the runner then skips them). A worker that pops the
 * context puts its state in the worker's slot and runs up to INTERP__CTX_BATCH calls with the
 * ordinary task path (deadlines, cancel, shutdown_now, abandonment unchanged), then requeues
 * the context at the tail if calls are left. docs/DESIGN.md, "Contexts".
 *
 * Phases (under mu): IDLE (no calls, not queued: the next call queues it, taking a reference
 * for the queue) and ACTIVE (queued, being run, or parked: that reference is held; only the
 * worker that popped it touches the state). Lock order: ctx.mu is taken after a future's lock
 * is released and before the queue's and the pool's locks (core_impl.h).
 *
 * Each call runs as a coroutine of the state, in slices (interp__state_call_begin/resume): a
 * slice ends when the call ends, when a wait inside it parks (channels/park.h), or when its
 * time slice ends. A parked context is on the queue's parked list, holding the queue's
 * reference, until a fire (its channel, its timer, a cancel) makes it runnable: the queue's
 * push, then a worker's pop, hands the state over. The call in progress (`running`) goes on
 * before any later call; interrupts that reach it while no worker runs it wait in the park's
 * `reason` for its next slice. docs/DESIGN.md, "Contexts". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_impl.h"
#include "interp_ctx.h"
#include "msg_charge.h"
#include "park.h"

#define CTX_MAX_NAME 64
#define CTX_TIME_SLICE 0.01 /* seconds: the default time slice */

enum { CTX_IDLE = 0, CTX_ACTIVE = 1 };

/* How long a context's creation keeps an idle worker spinning for its first call: longer
 * than a state takes to be made (tens of microseconds; docs/DESIGN.md, Workers). */
#define CTX_HOT_NS 200000L

struct interp_ctx {
    interp__job job;   /* first: the pool queue's link (interp__ctx_ops) */
    atomic_int refs;   /* the host's handle, plus one while ACTIVE */
    interp_pool *pool; /* retained */
    pthread_mutex_t mu;
    /* guarded by mu */
    interp_future *head, *tail; /* calls not begun, linked through job.next */
    size_t n_queued;
    int phase;
    bool closed;
    bool broken;
    char *broken_reason;     /* set once, with broken; freed with the context */
    interp_future *running;  /* the call in progress (running, parked or between slices) */
    interp__worker *slice_w; /* the worker running a slice of it now (NULL: none) and */
    uint64_t slice_id;       /* that run's id */
    /* the call in progress, touched by the worker holding the context only */
    double deadline;               /* monotonic; INFINITY: none */
    uint64_t last_id;              /* the id of its last slice: slice ids grow on the state */
    interp__park park;             /* its waits (park.h) */
    interp__timer timer;           /* parked: wakes it at min(deadline, the wait's own end) */
    struct interp_ctx *waiting_on; /* pool->mu: the context whose call it waits for */
    /* immutable after create (the state itself is touched by its runner only) */
    interp_state *state;
    interp_shared *shared;
    double timeout;    /* default deadline of a call (interp_task's convention) */
    double time_slice; /* preemption (interp_ctx_options); INFINITY: never */
    interp_ctx_error_fn on_error;
    void *on_error_ud;
    bool sandboxed; /* reaches only its grants (ctx_names.c) */
    bool named;     /* registered in the pool's names until closed */
    interp__grants grants;
    atomic_uint_fast64_t st_calls, st_done, st_failed, st_posts_failed;
    char name[]; /* allocated to its length: most contexts have none ("") */
};

static void ctx_release(interp_ctx *ctx)
{
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (ctx->timer.idx)
        interp__timer_disarm(ctx->pool, &ctx->timer);
    interp__state_destroy(ctx->state);
    interp__shared_destroy(ctx->shared);
    interp__grants_destroy(&ctx->grants);
    free(ctx->broken_reason);
    interp__mutex_destroy(&ctx->mu);
    interp_pool *pool = ctx->pool;
    free(ctx);
    interp__pool_release(pool);
}

void interp__ctx_retain(interp_ctx *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void interp__ctx_release(interp_ctx *ctx) { ctx_release(ctx); }
interp_pool *interp__ctx_pool(const interp_ctx *ctx) { return ctx->pool; }
bool interp__ctx_sandboxed(const interp_ctx *ctx) { return ctx->sandboxed; }
interp__grants *interp__ctx_grants(interp_ctx *ctx) { return &ctx->grants; }

/* A closed context that no worker runs lets its state go now (its finalizers run on this
 * thread), not with the last reference: Lua handles held by states (interp.context,
 * interp.self) keep contexts' structs, and states that hold each other's handles free each
 * other this way. */
static void drop_state(interp_ctx *ctx)
{
    interp__mutex_lock(&ctx->mu);
    interp_state *st = NULL;
    if (ctx->closed && ctx->phase == CTX_IDLE) {
        st = ctx->state;
        ctx->state = NULL;
    }
    interp__mutex_unlock(&ctx->mu);
    interp__state_destroy(st);
}

/* A fire found the context parked: back into the run queue (any thread; maybe under a
 * channel's, the pool's or this context's lock: the queue's lock is a leaf here). */
static void ctx_runnable(interp__park *p)
{
    interp_ctx *ctx = (interp_ctx *)(void *)((char *)p - offsetof(interp_ctx, park));
    interp__queue_push_ready(&ctx->pool->q, &ctx->job, true, NULL);
}

/* The parked call's timer: its deadline (a TIMEOUT for the next slice) or its wait's end. */
static void ctx_timer_fire(interp__timer *t, double now)
{
    interp_ctx *ctx = (interp_ctx *)(void *)((char *)t - offsetof(interp_ctx, timer));
    if (now >= ctx->deadline) {
        int none = 0;
        atomic_compare_exchange_strong(&ctx->park.reason, &none, INTERP_ERR_TIMEOUT);
    }
    interp__park_fire(&ctx->park);
}

/* Count the outcome of a call that has ended (f holds a reference). */
static void count_outcome(interp_ctx *ctx, interp_future *f)
{
    int status = interp_future_status(f);
    if (status == INTERP_OK) {
        atomic_fetch_add_explicit(&ctx->st_done, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&ctx->st_failed, 1, memory_order_relaxed);
    if (f->ctx_post) {
        atomic_fetch_add_explicit(&ctx->st_posts_failed, 1, memory_order_relaxed);
        if (ctx->on_error)
            ctx->on_error(ctx, status, interp_future_error(f), ctx->on_error_ud);
    }
}

/* End every call of the chain (taken out of the context) with status and text, and drop the
 * context's reference to each. No lock held. */
static void end_chain(interp_ctx *ctx, interp_future *f, int status, const char *text)
{
    while (f) {
        interp_future *next = (interp_future *)f->job.next;
        f->job.next = NULL;
        interp__future_end(f, INTERP__F_PENDING, status, NULL, interp__dup_text(text), NULL);
        count_outcome(ctx, f);
        interp_future_release(f);
        f = next;
    }
}

/* Why a context cannot be made on pool with o (*rc: its status), or NULL. */
static const char *check_create(const interp_pool *pool, const interp_ctx_options *o, int *rc)
{
    *rc = INTERP_ERR_INVALID;
    if (!pool)
        return "no pool";
    if (pool->backend)
        return "contexts need a pool with worker threads (this one has an external backend)";
    if (pool->span_refusal)
        return pool->span_refusal;
    if (o->name && strlen(o->name) > CTX_MAX_NAME)
        return "a context's name is at most 64 bytes";
    if (o->sandbox != INTERP_SANDBOX_NONE && o->sandbox != INTERP_SANDBOX_SAFE)
        return "unknown sandbox profile";
    if (o->timeout != o->timeout)
        return "timeout is NaN";
    if (o->time_slice != o->time_slice)
        return "time_slice is NaN";
    if (o->init_source_len && !o->init_source)
        return "init_source_len without init_source";
    if (atomic_load(&pool->q.closed_flag)) {
        *rc = INTERP_ERR_SHUTDOWN;
        return "the pool is shut down";
    }
    return NULL;
}

/* A context complete but for its state, made before the state: its bindings keep a pointer
 * to the context and an initializer may take interp.self(). Closed until create ends, so that
 * nothing queues a call while this thread still runs the initializer. NULL: out of memory. */
static interp_ctx *ctx_new(interp_pool *pool, const interp_ctx_options *o)
{
    size_t name_len = o->name ? strlen(o->name) : 0; /* at most CTX_MAX_NAME (check_create) */
    interp_ctx *ctx = calloc(1, sizeof *ctx + name_len + 1);
    if (!ctx)
        return NULL;
    ctx->job.ops = &interp__ctx_ops;
    ctx->park.runnable = ctx_runnable;
    atomic_init(&ctx->park.st, INTERP__PARK_RUNNING);
    atomic_init(&ctx->park.reason, 0);
    ctx->timer.fire = ctx_timer_fire;
    ctx->deadline = INFINITY;
    atomic_init(&ctx->refs, 1);
    interp__pool_retain(pool);
    ctx->pool = pool;
    interp__mutex_init(&ctx->mu);
    interp__grants_init(&ctx->grants);
    ctx->phase = CTX_IDLE;
    ctx->closed = true;
    ctx->timeout = o->timeout;
    ctx->on_error = o->on_error;
    ctx->on_error_ud = o->on_error_ud;
    ctx->time_slice = o->time_slice < 0   ? INFINITY
                      : o->time_slice > 0 ? o->time_slice
                                          : CTX_TIME_SLICE;
    memcpy(ctx->name, o->name ? o->name : "", name_len + 1);
    atomic_init(&ctx->st_calls, 0);
    atomic_init(&ctx->st_done, 0);
    atomic_init(&ctx->st_failed, 0);
    atomic_init(&ctx->st_posts_failed, 0);
    return ctx;
}

/* The context's own configuration derived from its pool's, its state opened and its
 * initializer run; then it is open. INTERP_OK, or the failure with *e (malloc'd or NULL). */
static int ctx_make_state(interp_ctx *ctx, const interp_ctx_options *o, char **e)
{
    interp_derive d = {.sandbox = o->sandbox,
                       .memory_limit = o->memory_limit,
                       .chan_lookup = interp__ctx_chan_lookup,
                       .chan_lookup_ud = ctx,
                       .module_ext = interp__ctx_lua_open_ctx,
                       .module_ext_ud = ctx,
                       .host_libs = o->host_libs,
                       .n_host_libs = o->n_host_libs};
    int rc = interp__shared_derive(ctx->pool->shared, &d, &ctx->shared, e);
    if (rc == INTERP_OK) {
        ctx->sandboxed = interp__shared_sandboxed(ctx->shared);
        rc = interp__state_open(ctx->shared, -1, &ctx->state, e);
    }
    if (rc == INTERP_OK) {
        interp__queue_prewake(&ctx->pool->q, CTX_HOT_NS); /* the rest: initializer, first call */
        interp__state_set_park(ctx->state, &ctx->park);
    }
    if (rc == INTERP_OK && o->init_source && !ctx->sandboxed) { /* else: init_call */
        size_t len = o->init_source_len ? o->init_source_len : strlen(o->init_source);
        rc = interp__shared_compile_source(ctx->shared, o->init_source, len, ctx->state, e);
    }
    if (rc == INTERP_OK)
        rc = interp__state_init(ctx->state, e);
    if (rc != INTERP_OK)
        return rc;
    interp__state_settle(ctx->shared, ctx->state);
    interp__state_set_persistent(ctx->state);
    interp__mutex_lock(&ctx->mu);
    ctx->closed = false;
    interp__mutex_unlock(&ctx->mu);
    return INTERP_OK;
}

/* A sandboxed context's initializer is the tenant's code: it runs as the context's first call,
 * on a worker (its deadline, cancel, the abandonment of a C call stuck where no hook reaches),
 * never on the creating thread, which no deadline could free (a plugin's top-level `while
 * true do end` held interp_ctx_create, the host's frame, for good). Create waits for it. */
static int init_call(interp_ctx *ctx, const interp_ctx_options *o, char **e)
{
    interp_task t = {
        .fn = {.kind = INTERP_FN_SOURCE,
               .text = o->init_source,
               .len = o->init_source_len ? o->init_source_len : strlen(o->init_source)}};
    interp_future *f;
    int rc = interp_ctx_call_task(ctx, &t, &f);
    if (rc != INTERP_OK)
        return rc;
    rc = interp_future_result(f, INTERP_FOREVER, NULL);
    if (rc != INTERP_OK) {
        const char *why = interp_future_error(f);
        const char *pre = "initializer failed: ";
        size_t n = strlen(pre) + strlen(why ? why : "") + 1;
        if ((*e = malloc(n)))
            snprintf(*e, n, "%s%s", pre, why ? why : "");
    }
    interp_future_release(f);
    return rc;
}

int interp_ctx_create(interp_pool *pool, const interp_ctx_options *opts, interp_ctx **out,
                      char **err)
{
    if (err)
        *err = NULL;
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    int rc;
    const char *why = check_create(pool, &o, &rc);
    if (why) {
        if (err)
            *err = interp__dup_text(why);
        return rc;
    }
    /* a first call usually follows: a worker wakes (or keeps spinning) while the state is
     * made, instead of paying its wake-up after the call is queued */
    interp__queue_prewake(&pool->q, CTX_HOT_NS);
    interp_ctx *ctx = ctx_new(pool, &o);
    if (!ctx) {
        if (err)
            *err = interp__dup_text("out of memory");
        return INTERP_ERR_NOMEM;
    }
    char *e = NULL;
    rc = ctx_make_state(ctx, &o, &e);
    if (rc == INTERP_OK && ctx->name[0]) { /* last: from here on other threads may find it */
        rc = interp__ctx_names_add(&pool->ctxs, ctx);
        ctx->named = rc == INTERP_OK;
        if (rc != INTERP_OK)
            e = interp__dup_text(rc == INTERP_ERR_INVALID
                                     ? "a context of that name is open in this pool"
                                     : "out of memory");
    }
    if (rc == INTERP_OK && ctx->sandboxed && o.init_source && (rc = init_call(ctx, &o, &e))) {
        interp_ctx_close(ctx); /* open now: a worker may still hold it */
        if (err)
            *err = e ? e : interp__dup_text(interp_strerror(rc));
        else
            free(e);
        return rc;
    }
    if (rc != INTERP_OK) {
        if (err)
            *err = e ? e : interp__dup_text(interp_strerror(rc));
        else
            free(e);
        ctx->closed = true;
        drop_state(ctx); /* first: handles its state holds may reference ctx */
        ctx_release(ctx);
        return rc;
    }
    *out = ctx;
    return INTERP_OK;
}

const char *interp_ctx_name(const interp_ctx *ctx) { return ctx ? ctx->name : NULL; }

/* Append a call; queue the context when it was idle. */
static int enqueue(interp_ctx *ctx, const interp_task *task, bool post, interp_future **out,
                   interp__account *payer, char *why, size_t whylen)
{
    if (out)
        *out = NULL;
    if (!ctx || !task || (!post && !out))
        return INTERP_ERR_INVALID;
    interp_task t = *task;
    if (t.timeout == 0)
        t.timeout = ctx->timeout;
    interp_pool *pool = ctx->pool;
    interp_future *f;
    int rc = interp__future_new(pool, &t, &f);
    if (rc != INTERP_OK)
        return rc;
    f->ctx_post = post;
    if (payer) { /* a state's call: its future and arguments count against the caller */
        size_t charge = sizeof *f + 64 + (t.args ? interp__msg_charge(t.args) : 0) +
                        (t.fn.kind == INTERP_FN_FUNCTION ? interp__msg_charge(t.fn.function)
                                                         : strlen(f->fn.text));
        rc = interp__account_charge(payer, charge, true, why, whylen);
        if (rc != INTERP_OK) {
            interp__future_discard(f);
            return rc;
        }
        interp__account_retain(payer);
        f->args_acct = payer;
        f->args_charge = charge;
    }
    interp__ctx_retain(ctx); /* released with f */
    f->ctx = ctx;
    bool grow = false;
    interp__mutex_lock(&ctx->mu);
    if (ctx->closed) {
        interp__mutex_unlock(&ctx->mu);
        interp__future_discard(f);
        return INTERP_ERR_CANCELLED;
    }
    if (ctx->tail)
        ctx->tail->job.next = &f->job;
    else
        ctx->head = f;
    ctx->tail = f;
    ctx->n_queued++;
    if (ctx->phase == CTX_IDLE) {
        /* idle means no calls were waiting: f is the only one */
        ctx->phase = CTX_ACTIVE;
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
        /* made by a call a worker runs: that worker runs it next (interp__worker_hold) */
        if (!interp__worker_hold(pool, &ctx->job))
            rc = interp__queue_push(&pool->q, &ctx->job, -1, false, &grow);
        if (rc != INTERP_OK) {
            ctx->head = ctx->tail = NULL;
            ctx->n_queued = 0;
            ctx->phase = CTX_IDLE;
            atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_relaxed); /* host's is left */
        }
    }
    interp__mutex_unlock(&ctx->mu);
    if (grow)
        interp__start_grow(pool);
    if (rc != INTERP_OK) {
        interp__future_discard(f); /* args stay the caller's */
        return rc;
    }
    atomic_fetch_add_explicit(&pool->st_submitted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ctx->st_calls, 1, memory_order_relaxed);
    if (post)
        interp_future_release(f); /* the caller's reference: the context keeps its own */
    else
        *out = f;
    return INTERP_OK;
}

int interp_ctx_call_task(interp_ctx *ctx, const interp_task *task, interp_future **out)
{
    return enqueue(ctx, task, false, out, NULL, NULL, 0);
}

int interp_ctx_post(interp_ctx *ctx, const interp_task *task)
{
    return enqueue(ctx, task, true, NULL, NULL, NULL, 0);
}

int interp__ctx_call_paid(interp_ctx *ctx, const interp_task *task, bool post, interp_future **out,
                          interp__account *payer, char *why, size_t whylen)
{
    return enqueue(ctx, task, post, out, payer, why, whylen);
}

int interp_ctx_call(interp_ctx *ctx, const char *fn, interp_msg *args, interp_future **out)
{
    if (!fn) {
        if (out)
            *out = NULL;
        return INTERP_ERR_INVALID;
    }
    interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = fn}, .args = args};
    return enqueue(ctx, &t, false, out, NULL, NULL, 0);
}

int interp_ctx_exec(interp_ctx *ctx, const char *src, size_t len, interp_future **out)
{
    if (!src) {
        if (out)
            *out = NULL;
        return INTERP_ERR_INVALID;
    }
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src, .len = len}};
    return enqueue(ctx, &t, false, out, NULL, NULL, 0);
}

/* Under ctx->mu: the context cannot go on (the first reason stays). */
static void mark_broken_locked(interp_ctx *ctx, const char *why)
{
    if (ctx->broken)
        return;
    ctx->broken = true;
    size_t n = strlen(why) + strlen(ctx->name) + 32;
    ctx->broken_reason = malloc(n);
    if (ctx->broken_reason)
        snprintf(ctx->broken_reason, n, "context '%s' is broken: %s", ctx->name, why);
}

/* ---- preemption ---------------------------------------------------------------------------
 * While some worker runs a context's slice, the pool's preempt_tick timer fires every
 * CTX_TICK_S on the watchdog: a slice that has run its time slice while the queue holds other
 * work gets interp__state_preempt (a count hook that yields its coroutine). Nothing is armed
 * in a slice that ends in time or has nothing waiting behind it; a slice pays two stores and
 * a load. The tick stops when it finds no slice running. */
#define CTX_TICK_S 0.002
/* How long a sandboxed call asked to yield may still hold its thread (preempt_locked). */
#define CTX_HOLD_S 1.0

/* Watchdog, pool->mu held: w's slice has run its time slice while other work waits: ask it
 * to yield. A sandboxed call that has not yielded slice_hold after it was first asked (it
 * runs or waits where it cannot yield: inside a coroutine it made, a C function's callback)
 * is failed as at a deadline: a tenant cannot keep the thread from the others for good. */
static void preempt_locked(interp__worker *w, double now)
{
    uint64_t id = atomic_load(&w->cur_task);
    double hold = atomic_load(&w->slice_hold);
    if (w->asked_id != id) {
        w->asked_id = id;
        w->asked_at = now;
    } else if (hold > 0 && now >= w->asked_at + hold) {
        interp__interrupt_run_locked(w, id, INTERP_ERR_TIMEOUT);
        return;
    }
    interp__state_preempt(w->state, id);
}

/* Watchdog, pool->mu held (the pool's preempt_tick timer, interp__pool_alloc). */
void interp__ctx_preempt_tick(interp__timer *t, double now)
{
    interp_pool *pool = (interp_pool *)(void *)((char *)t - offsetof(interp_pool, preempt_tick));
    bool any = false, others = interp__queue_count(&pool->q) > 0;
    for (int i = 0; i < pool->nworkers; i++) {
        interp__worker *w = pool->slots[i];
        double end = w && !w->abandoned ? atomic_load(&w->slice_end) : 0;
        if (end == 0)
            continue;
        any = true;
        if (interp__worker_flush_held(w)) /* kept since this tick at most: others may take it */
            pool->grow_owed++;            /* its holder may be blocked: start a worker */
        if (others && now >= end && w->state)
            preempt_locked(w, now);
    }
    if (!any) { /* stop, unless a slice began meanwhile (it saw the flag still set) */
        atomic_store(&pool->preempt_ticking, false);
        for (int i = 0; i < pool->nworkers && !any; i++)
            any = pool->slots[i] && atomic_load(&pool->slots[i]->slice_end) != 0;
        if (!any)
            return;
        atomic_store(&pool->preempt_ticking, true);
    }
    interp__timers_add_locked(&pool->timers, t, now + CTX_TICK_S); /* no memory: it stops */
}

/* Worker: a slice of ctx begins on w. */
static void slice_begin(interp__worker *w, interp_ctx *ctx, double now)
{
    if (!isfinite(ctx->time_slice))
        return;
    interp_pool *pool = w->pool;
    atomic_store(&w->slice_hold, ctx->sandboxed ? CTX_HOLD_S : 0);
    atomic_store(&w->slice_end, now + ctx->time_slice);
    if (!atomic_load(&pool->preempt_ticking)) {
        atomic_store(&pool->preempt_ticking, true);
        if (interp__timer_arm(pool, &pool->preempt_tick, now + CTX_TICK_S) != INTERP_OK)
            atomic_store(&pool->preempt_ticking, false);
    }
}

enum { SLICE_DONE, SLICE_PARK, SLICE_YIELD, SLICE_SKIPPED, SLICE_ABANDONED };

/* f's slice `id` runs on w: f is marked running on its first slice (false when it is no
 * longer pending then), and its worker and run id follow the slice. */
static bool slice_claim(interp_future *f, interp__worker *w, uint64_t id, bool first)
{
    interp__mutex_lock(&f->mu);
    if (first && atomic_load_explicit(&f->state, memory_order_relaxed) != INTERP__F_PENDING) {
        interp__mutex_unlock(&f->mu);
        return false;
    }
    if (first)
        atomic_store_explicit(&f->state, INTERP__F_RUNNING, memory_order_release);
    f->worker = w;
    f->task_id = id;
    interp__mutex_unlock(&f->mu);
    return true;
}

/* Run one slice of f, the context's call in progress, on w (first: f has not begun). The
 * interrupt that reached f while no worker ran it, and its deadline, apply to this slice.
 * SLICE_DONE: the call has ended with *out, which the caller delivers to f once it has
 * cleared the context's slice and call in progress (slice_w is left set for that);
 * SLICE_PARK / SLICE_YIELD: it waits / its time slice ended; SLICE_SKIPPED: f had ended before
 * it began (cancelled); SLICE_ABANDONED: the watchdog took the run over (f ended by it). */
static int run_slice(interp__worker *w, interp_ctx *ctx, interp_future *f, bool first,
                     interp_outcome *out)
{
    interp_pool *pool = w->pool;
    /* ids of a state's runs must grow (interp__state_interrupt tells runs apart by them), and
     * this state's slices run on several workers, each counting its own */
    if (w->next_id < ctx->last_id)
        w->next_id = ctx->last_id;
    uint64_t id = interp__worker_begin(w, &f->job);
    ctx->last_id = id;
    if (!slice_claim(f, w, id, first)) /* cancelled (or failed by a broken pool) while queued */
        return interp__worker_end(w, id) ? SLICE_SKIPPED : SLICE_ABANDONED;

    interp__mutex_lock(&ctx->mu);
    ctx->slice_w = w;
    ctx->slice_id = id;
    int reason = atomic_exchange(&ctx->park.reason, 0);
    interp__mutex_unlock(&ctx->mu);
    atomic_store(&ctx->park.st, INTERP__PARK_RUNNING);
    if (ctx->timer.idx)
        interp__timer_disarm(pool, &ctx->timer);
    bool stop = atomic_load(&pool->stop_now);
    double now = interp__now();
    if (first) {
        reason = 0; /* one meant for the call before this one */
        ctx->deadline = f->timeout > 0 ? now + f->timeout : INFINITY;
    }
    int irq = 0, step = INTERP__STEP_DONE;
    if (first && stop) {
        out->status = INTERP_ERR_SHUTDOWN;
    } else {
        if (stop && !reason)
            reason = INTERP_ERR_SHUTDOWN;
        if (isfinite(ctx->deadline)) {
            if (now >= ctx->deadline)
                reason = reason ? reason : INTERP_ERR_TIMEOUT;
            else
                interp__watchdog_deadline(w, id, ctx->deadline - now);
        }
        if (reason) /* remembered by the state for this run, which begins below */
            interp__interrupt_run(w, id, reason);
        slice_begin(w, ctx, now);
        if (first)
            step = interp__state_call_begin(ctx->state, id, &f->fn, f->args, out, &irq);
        else
            step = interp__state_call_resume(ctx->state, id, out, &irq);
    }
    atomic_store_explicit(&w->slice_end, 0, memory_order_relaxed);
    if (first) { /* the arguments are the runner's: freed after the first slice */
        interp_msg_free(f->args);
        f->args = NULL;
    }
    bool ended = interp__worker_end(w, id); /* false: abandoned, the watchdog ended f */
    if (!ended || step != INTERP__STEP_DONE) {
        interp__mutex_lock(&ctx->mu);
        ctx->slice_w = NULL;
        interp__mutex_unlock(&ctx->mu);
    }
    if (!ended) {
        interp__outcome_clear(out);
        return SLICE_ABANDONED;
    }
    if (step != INTERP__STEP_DONE) {
        if (irq) { /* for the next slice: the slice's end forgot it */
            int none = 0;
            atomic_compare_exchange_strong(&ctx->park.reason, &none, irq);
        }
        return step == INTERP__STEP_PARK ? SLICE_PARK : SLICE_YIELD;
    }
    return SLICE_DONE;
}

static bool park_commit(interp__job *job)
{
    interp_ctx *ctx = (interp_ctx *)job;
    if (atomic_load(&ctx->pool->stop_now)) /* shutdown_now may have woken the parked already */
        return false;
    int running = INTERP__PARK_RUNNING;
    return atomic_compare_exchange_strong(&ctx->park.st, &running, INTERP__PARK_PARKED);
}

/* After a slice that parks: let go of the context until a fire. false when it must go on at
 * once (an interrupt or a fire came meanwhile, or no timer could be made). */
static bool park(interp_ctx *ctx)
{
    if (atomic_load(&ctx->park.reason))
        return false;
    double at = ctx->deadline < ctx->park.until ? ctx->deadline : ctx->park.until;
    if (isfinite(at) && interp__timer_arm(ctx->pool, &ctx->timer, at) != INTERP_OK)
        return false;
    if (interp__queue_park(&ctx->pool->q, &ctx->job, park_commit))
        return true;
    if (ctx->timer.idx)
        interp__timer_disarm(ctx->pool, &ctx->timer);
    return false;
}

/* Under ctx->mu: the next call to run, or NULL (end of the batch, nothing left). *first: it
 * has not begun. */
static interp_future *next_call_locked(interp_ctx *ctx, int n, bool *first)
{
    bool batch_over = n >= INTERP__CTX_BATCH &&
                      !atomic_load_explicit(&ctx->pool->q.closed_flag, memory_order_relaxed);
    *first = false;
    if (ctx->running) /* the call in progress goes on first (after the batch: next time) */
        return batch_over ? NULL : ctx->running;
    interp_future *f = ctx->closed || batch_over ? NULL : ctx->head;
    if (!f)
        return NULL;
    ctx->head = (interp_future *)f->job.next;
    if (!ctx->head)
        ctx->tail = NULL;
    f->job.next = NULL;
    ctx->n_queued--;
    ctx->running = f;
    interp_future_retain(f); /* the run's, released when it ends */
    *first = true;
    return f;
}

/* The next call to run (next_call_locked), and whether the context is broken. */
static interp_future *pick(interp_ctx *ctx, int n, bool *first, bool *broken)
{
    interp__mutex_lock(&ctx->mu);
    interp_future *f = next_call_locked(ctx, n, first);
    *broken = ctx->broken;
    interp__mutex_unlock(&ctx->mu);
    return f;
}

/* The call in progress has ended (why: the context is broken by it, or NULL): no slice, no
 * call in progress; then, in the same step, the next call unless !more (as pick). */
static interp_future *end_and_pick(interp_ctx *ctx, const char *why, bool more, int n, bool *first,
                                   bool *broken)
{
    interp__mutex_lock(&ctx->mu);
    ctx->slice_w = NULL;
    ctx->running = NULL;
    if (why)
        mark_broken_locked(ctx, why);
    interp_future *f = more ? next_call_locked(ctx, n, first) : NULL;
    *broken = ctx->broken;
    interp__mutex_unlock(&ctx->mu);
    return f;
}

/* After a batch: requeue ctx at the tail when calls are left, else it goes idle (and lets go
 * of the queue's reference, and of its state when it was closed while it ran). A call in
 * progress requeues even when the queue is closed: the workers stay until it ends. */
static void requeue(interp_ctx *ctx)
{
    interp_pool *pool = ctx->pool;
    bool grow = false, keep = false;
    interp__mutex_lock(&ctx->mu);
    if (ctx->running || (ctx->head && !ctx->closed)) {
        interp__queue_push_ready(&pool->q, &ctx->job, false, &grow);
        keep = true;
    } else {
        ctx->phase = CTX_IDLE;
    }
    bool closed = ctx->closed;
    interp__mutex_unlock(&ctx->mu);
    if (grow)
        interp__start_grow(pool);
    if (!keep) {
        if (closed)
            drop_state(ctx); /* closed while it ran */
        ctx_release(ctx);    /* the queue's reference */
    }
}

static bool ctx_run(interp__worker *w, interp__job *job)
{
    interp_ctx *ctx = (interp_ctx *)job;
    interp_pool *pool = w->pool;
    interp__mutex_lock(&pool->mu);
    interp_state *own = w->state;
    w->state = ctx->state; /* under the pool lock: interrupters and stats read it */
    interp__mutex_unlock(&pool->mu);
    unsigned saved_tasks = w->tasks_on_state;
    w->may_hold = isfinite(ctx->time_slice); /* the preempt tick bounds what it holds */

    bool alive = true, parked = false, first, broken;
    int n = 0;
    interp_future *f = pick(ctx, n, &first, &broken);
    while (f) {
        int r;
        interp_outcome out;
        memset(&out, 0, sizeof out);
        if (first && broken) {
            const char *why = ctx->broken_reason ? ctx->broken_reason : "context is broken";
            interp__future_end(f, INTERP__F_PENDING, INTERP_ERR_BROKEN, NULL, interp__dup_text(why),
                               NULL);
            r = SLICE_SKIPPED;
        } else {
            r = run_slice(w, ctx, f, first, &out);
        }
        if (r == SLICE_PARK || r == SLICE_YIELD) {
            if (r == SLICE_PARK && park(ctx)) {
                parked = true;
                break;
            }
            /* woken already: go on (counts in the batch); its time slice over: behind the
             * others */
            n = r == SLICE_PARK ? n + 1 : INTERP__CTX_BATCH;
            f = pick(ctx, n, &first, &broken);
            continue;
        }
        const char *why = NULL;
        alive = r != SLICE_ABANDONED;
        if (!alive) {
            why = "a call was stuck in a C function past its deadline or cancel and was "
                  "abandoned with its worker";
            interp__state_call_drop(ctx->state);
        } else if (!broken && interp__state_broken(ctx->state)) {
            why = "its state cannot go on after an error (re-create the context)";
        }
        if (ctx->waiting_on) /* a call that ended inside a wait (dropped) */
            interp__ctx_wait_end(ctx);
        interp_future *done = f;
        f = end_and_pick(ctx, why, alive, ++n, &first, &broken);
        if (r == SLICE_DONE) /* what waits for the host is charged to this state's account */
            interp__future_end_paid(done, INTERP__F_RUNNING, out.status, out.result, out.error,
                                    out.error_value, interp__state_account(ctx->state));
        count_outcome(ctx, done);
        interp_future_release(done); /* the context's */
        interp_future_release(done); /* the run's */
    }

    w->tasks_on_state = saved_tasks;
    w->may_hold = false;
    interp__mutex_lock(&pool->mu);
    w->state = own;
    interp__mutex_unlock(&pool->mu);
    if (parked) /* the parked list holds the queue's reference */
        return alive;

    requeue(ctx);
    return alive;
}

static void ctx_abort(interp__job *job, int status, const char *text)
{
    interp_ctx *ctx = (interp_ctx *)job;
    interp__mutex_lock(&ctx->mu);
    interp_future *left = ctx->head;
    interp_future *cur = ctx->running;
    ctx->running = NULL;
    ctx->head = ctx->tail = NULL;
    ctx->n_queued = 0;
    ctx->phase = CTX_IDLE;
    interp__mutex_unlock(&ctx->mu);
    if (cur) { /* begun, between two slices: it never goes on (no worker holds the state), but
                * its <close> handlers run here, bounded by the grace */
        interp__state_call_close(ctx->state, ++ctx->last_id, INTERP_ERR_SHUTDOWN);
        interp__ctx_wait_end(ctx);
        interp__future_end(cur, -1, status, NULL, interp__dup_text(text), NULL);
        count_outcome(ctx, cur);
        interp_future_release(cur);
        interp_future_release(cur);
    }
    end_chain(ctx, left, status, text);
    drop_state(ctx);
    ctx_release(ctx); /* the queue's reference */
}

interp_ctx *interp__ctx_of_park(interp__park *p)
{
    return (interp_ctx *)(void *)((char *)p - offsetof(interp_ctx, park));
}

int interp__ctx_wait_begin(interp_ctx *self, interp_ctx *target)
{
    /* Each context in the chain has a call in progress that waits for a call of the next,
     * and holds that call's future (which holds its context): the chain is alive while the
     * lock is held. */
    interp__mutex_lock(&self->pool->mu);
    for (interp_ctx *t = target; t; t = t->waiting_on) {
        if (t == self) {
            interp__mutex_unlock(&self->pool->mu);
            return INTERP_ERR_INVALID;
        }
    }
    self->waiting_on = target;
    interp__mutex_unlock(&self->pool->mu);
    return INTERP_OK;
}

void interp__ctx_wait_end(interp_ctx *self)
{
    interp__mutex_lock(&self->pool->mu);
    self->waiting_on = NULL;
    interp__mutex_unlock(&self->pool->mu);
}

void interp__ctx_interrupt_call(interp_ctx *ctx, interp_future *f, int reason)
{
    interp__mutex_lock(&ctx->mu);
    if (ctx->running != f) {
        interp__mutex_unlock(&ctx->mu);
        return;
    }
    /* for its next slice, if the running one ends before it sees the interrupt */
    int none = 0;
    atomic_compare_exchange_strong(&ctx->park.reason, &none, reason);
    interp__worker *w = ctx->slice_w;
    uint64_t id = ctx->slice_id;
    if (w)
        atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
    interp__mutex_unlock(&ctx->mu);
    if (w) {
        interp__interrupt_run(w, id, reason);
        interp__worker_release(w);
    } else {
        interp__park_fire(&ctx->park); /* parked: wake it to end */
    }
}

static bool claim_parked(interp__job *job, void *ud)
{
    interp_ctx *ctx = (interp_ctx *)job;
    int none = 0;
    atomic_compare_exchange_strong(&ctx->park.reason, &none, *(int *)ud);
    return atomic_exchange(&ctx->park.st, INTERP__PARK_NOTIFIED) == INTERP__PARK_PARKED;
}

void interp__ctx_wake_parked(interp_pool *pool, int reason)
{
    interp__queue_wake_parked(&pool->q, claim_parked, &reason);
}

void interp_ctx_close(interp_ctx *ctx)
{
    if (!ctx)
        return;
    interp__mutex_lock(&ctx->mu);
    if (ctx->closed) { /* a second close is a caller's bug: the handle is already gone */
        interp__mutex_unlock(&ctx->mu);
        return;
    }
    ctx->closed = true;
    interp_future *left = ctx->head;
    ctx->head = ctx->tail = NULL;
    ctx->n_queued = 0;
    interp_future *running = ctx->running;
    if (running)
        interp_future_retain(running);
    bool dequeued = false;
    /* a context with a call in progress stays queued: that call ends cancelled when it runs */
    if (!running && ctx->phase == CTX_ACTIVE && interp__queue_remove(&ctx->pool->q, &ctx->job)) {
        dequeued = true;
        ctx->phase = CTX_IDLE;
    }
    interp__mutex_unlock(&ctx->mu);
    if (ctx->named)
        interp__ctx_names_remove(&ctx->pool->ctxs, ctx); /* the name is free again */
    end_chain(ctx, left, INTERP_ERR_CANCELLED, "cancelled: the context was closed");
    if (running) {
        interp_future_cancel(running);
        interp_future_release(running);
    }
    interp__grants_clear(&ctx->grants);
    drop_state(ctx); /* unless a worker runs it: then that worker does */
    if (dequeued)
        ctx_release(ctx); /* the queue's reference */
    ctx_release(ctx);     /* the host's */
}

int interp_ctx_stats_get(interp_ctx *ctx, interp_ctx_stats *out)
{
    if (!ctx || !out)
        return INTERP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->calls = atomic_load_explicit(&ctx->st_calls, memory_order_relaxed);
    out->done = atomic_load_explicit(&ctx->st_done, memory_order_relaxed);
    out->failed = atomic_load_explicit(&ctx->st_failed, memory_order_relaxed);
    out->posts_failed = atomic_load_explicit(&ctx->st_posts_failed, memory_order_relaxed);
    interp__mutex_lock(&ctx->mu);
    out->queued = ctx->n_queued;
    out->broken = ctx->broken;
    if (ctx->state) /* gone once closed */
        interp__state_memory(ctx->state, &out->memory_in_use, &out->memory_peak);
    interp__mutex_unlock(&ctx->mu);
    return INTERP_OK;
}

const interp__job_ops interp__ctx_ops = {
    .kind = INTERP__JOB_CTX,
    .run = ctx_run,
    .abort = ctx_abort,
    .abandoned = NULL, /* a run's job is one of its calls (a task) */
    .take = NULL,      /* refused on backend pools (interp_ctx_create) */
    .stop_status = NULL,
};
