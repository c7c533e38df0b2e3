/* start.c - the worker start (start.h): how a pool's workers start, report and are joined.
 *
 * Waits on this object sit on latency paths (create waiting for states, a worker waiting for
 * create's bytecode, destroy joining threads), so each spins briefly (interp__spin) before it
 * sleeps on the object's condition variable: a wake-up costs tens of microseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_impl.h"

void interp__start_init(interp__start *s, int init_ready)
{
    s->to_start = 0;
    atomic_init(&s->n_starting, 0);
    interp__cond_init(&s->cv);
    s->slot_taken = NULL;
    s->busy = 0;
    atomic_init(&s->n_exits, 0);
    atomic_init(&s->init_ready, init_ready);
    atomic_init(&s->handoff, 0);
    atomic_init(&s->n_reported, 0);
    s->rc = INTERP_OK;
    s->rc_slot = 0;
    s->err = NULL;
}

void interp__start_destroy(interp__start *s)
{
    interp__cond_destroy(&s->cv);
    free(s->slot_taken);
    free(s->err);
}

int interp__start_alloc_slots(interp_pool *pool)
{
    pool->slots = calloc((size_t)pool->nworkers, sizeof *pool->slots);
    pool->start.slot_taken = calloc((size_t)pool->nworkers, sizeof *pool->start.slot_taken);
    return pool->slots && pool->start.slot_taken ? INTERP_OK : INTERP_ERR_NOMEM;
}

static bool flag_set(void *arg)
{
    return atomic_load_explicit((atomic_int *)arg, memory_order_acquire) != 0;
}

/* Wait until create sets *flag (under the pool lock, broadcasting cv), spinning first: create
 * is usually a few microseconds from it. Returns the flag. */
static int await_flag(interp_pool *pool, atomic_int *flag)
{
    if (!interp__spin(flag_set, flag, INTERP__WAIT_SPIN_NS)) {
        interp__mutex_lock(&pool->mu);
        while (!flag_set(flag))
            interp__cond_wait(&pool->start.cv, &pool->mu);
        interp__mutex_unlock(&pool->mu);
    }
    return atomic_load_explicit(flag, memory_order_acquire);
}

/* Set *flag to v under the pool lock and wake its waiters. */
static void set_flag(interp_pool *pool, atomic_int *flag, int v)
{
    interp__mutex_lock(&pool->mu);
    atomic_store_explicit(flag, v, memory_order_release);
    interp__cond_broadcast(&pool->start.cv);
    interp__mutex_unlock(&pool->mu);
}

/* ---- create ---------------------------------------------------------------------------- */

int interp__start_initial(interp_pool *pool, int n, int *rc)
{
    interp__start *s = &pool->start;
    for (int i = 0; i < n; i++)
        s->slot_taken[i] = true;
    s->to_start = pool->nworkers - n;
    /* a task submitted right after create waits for them rather than starting another */
    atomic_store(&s->n_starting, n);
    int started = 0;
    for (; started < n; started++) {
        int r = interp__worker_spawn(pool, started,
                                     started == 0 ? INTERP__SPAWN_FIRST : INTERP__SPAWN_INITIAL);
        if (r != INTERP_OK) {
            *rc = r;
            atomic_fetch_sub(&s->n_starting, n - started); /* they never will */
            break;
        }
    }
    return started;
}

void interp__start_compiled(interp_pool *pool, bool ok)
{
    set_flag(pool, &pool->start.init_ready, ok ? 1 : -1);
}

void interp__start_hand_over(interp_pool *pool, int started, interp_state *state)
{
    if (started == 0) {
        interp__state_destroy(state);
        return;
    }
    interp__mutex_lock(&pool->mu);
    pool->slots[0]->state = state;
    atomic_store_explicit(&pool->start.handoff, state ? 1 : -1, memory_order_release);
    interp__cond_broadcast(&pool->start.cv);
    interp__mutex_unlock(&pool->mu);
}

struct reported_wait {
    interp__start *s;
    int want;
};

static bool all_reported(void *arg)
{
    struct reported_wait *rw = arg;
    return atomic_load_explicit(&rw->s->n_reported, memory_order_acquire) >= rw->want;
}

int interp__start_await(interp_pool *pool, int started, char **err)
{
    interp__start *s = &pool->start;
    struct reported_wait rw = {s, started > 1 ? started - 1 : 0};
    interp__spin(all_reported, &rw, INTERP__WAIT_SPIN_NS);
    interp__mutex_lock(&pool->mu);
    while (!all_reported(&rw))
        interp__cond_wait(&s->cv, &pool->mu);
    int rc = s->rc;
    if (rc != INTERP_OK && err && !*err) {
        *err = s->err;
        s->err = NULL;
    }
    interp__mutex_unlock(&pool->mu);
    return rc;
}

/* ---- growth and replacement ------------------------------------------------------------ */

void interp__start_grow(interp_pool *pool)
{
    interp__start *s = &pool->start;
    /* A free slot exists: to_start counts the slots not taken (a failed start frees its slot
     * before it gives its start back). */
    interp__mutex_lock(&pool->mu);
    int slot = 0;
    while (slot < pool->nworkers && s->slot_taken[slot])
        slot++;
    bool free_slot = slot < pool->nworkers;
    if (free_slot)
        s->slot_taken[slot] = true;
    interp__mutex_unlock(&pool->mu);
    if (free_slot && interp__worker_spawn(pool, slot, INTERP__SPAWN_GROW) == INTERP_OK)
        return;
    if (free_slot) {
        interp__mutex_lock(&pool->mu);
        s->slot_taken[slot] = false;
        interp__mutex_unlock(&pool->mu);
    }
    interp__mutex_lock(&pool->q.mu); /* the start is given back: a later push may try again */
    atomic_fetch_sub_explicit(&s->n_starting, 1, memory_order_relaxed);
    s->to_start++;
    interp__mutex_unlock(&pool->q.mu);
    interp__mutex_lock(&pool->mu);
    interp__cond_broadcast(&s->cv); /* a join may wait for the start */
    interp__mutex_unlock(&pool->mu);
}

void interp__start_replace_locked(interp_pool *pool) { pool->start.busy++; }

void interp__start_replace(interp_pool *pool, int slot, bool spawn)
{
    if (spawn && interp__worker_spawn(pool, slot, INTERP__SPAWN_REPLACE) != INTERP_OK)
        interp__pool_break(pool, "a replacement for an abandoned worker could not be started");
    interp__mutex_lock(&pool->mu);
    pool->start.busy--;
    interp__cond_broadcast(&pool->start.cv);
    interp__mutex_unlock(&pool->mu);
}

/* ---- the worker's side ----------------------------------------------------------------- */

int interp__start_await_init(interp_pool *pool)
{
    return await_flag(pool, &pool->start.init_ready);
}

int interp__start_await_first(interp_pool *pool)
{
    return await_flag(pool, &pool->start.handoff) > 0 ? INTERP_OK : INTERP_ERR_CANCELLED;
}

/* Prestarted worker: tell create (the lowest slot's failure wins). Takes err. */
static void report_to_create(interp__worker *w, int rc, char *err)
{
    interp__start *s = &w->pool->start;
    interp__mutex_lock(&w->pool->mu);
    if (rc != INTERP_OK && (s->rc == INTERP_OK || w->slot < s->rc_slot)) {
        free(s->err);
        s->rc = rc;
        s->rc_slot = w->slot;
        s->err = err;
        err = NULL;
    }
    atomic_fetch_add_explicit(&s->n_reported, 1, memory_order_release);
    interp__cond_broadcast(&s->cv);
    interp__mutex_unlock(&w->pool->mu);
    free(err);
}

bool interp__start_counts(const interp__worker *w) { return w->kind != INTERP__SPAWN_REPLACE; }

void interp__start_started_locked(interp__start *s)
{
    atomic_fetch_sub_explicit(&s->n_starting, 1, memory_order_relaxed);
}

bool interp__start_report(interp__worker *w, int rc, char *err)
{
    interp_pool *pool = w->pool;
    if (rc != INTERP_OK && interp__start_counts(w)) { /* it will never take a job; one that
                                                        will stops counting at its first pop */
        interp__mutex_lock(&pool->q.mu);
        interp__start_started_locked(&pool->start);
        interp__mutex_unlock(&pool->q.mu);
    }
    if (w->kind == INTERP__SPAWN_INITIAL) {
        report_to_create(w, rc, err);
        return rc == INTERP_OK;
    }
    if (rc == INTERP_OK || w->kind == INTERP__SPAWN_FIRST) { /* create has the first's error */
        free(err);
        return rc == INTERP_OK;
    }
    size_t n = (err ? strlen(err) : 0) + 64;
    char *why = malloc(n);
    if (why)
        snprintf(why, n, "a %s worker could not create its state: %s",
                 w->kind == INTERP__SPAWN_GROW ? "new" : "replacement",
                 err ? err : interp_strerror(rc));
    interp__pool_break(pool, why ? why : interp_strerror(rc));
    free(why);
    free(err);
    return false;
}

void interp__start_exited(interp__worker *w)
{
    interp_pool *pool = w->pool;
    interp__mutex_lock(&pool->mu);
    w->exited = true;
    atomic_fetch_add(&pool->start.n_exits, 1);
    interp__cond_broadcast(&pool->start.cv);
    interp__mutex_unlock(&pool->mu);
}

/* ---- shutdown -------------------------------------------------------------------------- */

static bool try_join(void *arg) { return pthread_tryjoin_np(*(pthread_t *)arg, NULL) == 0; }

struct exits_wait {
    interp__start *s;
    int seen;
};

static bool exits_moved(void *arg)
{
    struct exits_wait *ew = arg;
    return atomic_load_explicit(&ew->s->n_exits, memory_order_relaxed) != ew->seen;
}

/* Pool lock held: a worker that exited and nobody joins yet (claimed: marked joined), or
 * NULL; *pending says whether any start, join or unjoined worker is left. */
static interp__worker *claim_exited_locked(interp_pool *pool, bool *pending)
{
    interp__start *s = &pool->start;
    *pending = s->busy > 0 || atomic_load_explicit(&s->n_starting, memory_order_relaxed) > 0;
    for (int i = 0; i < pool->nworkers; i++) {
        interp__worker *w = pool->slots[i];
        if (!w || w->joined)
            continue;
        *pending = true;
        if (w->exited) {
            w->joined = true;
            return w;
        }
    }
    return NULL;
}

void interp__start_join_all(interp_pool *pool)
{
    interp__start *s = &pool->start;
    bool spun = false;
    interp__mutex_lock(&pool->mu);
    for (;;) {
        bool pending;
        interp__worker *claim = claim_exited_locked(pool, &pending);
        if (claim) {
            s->busy++;
            pthread_t t = claim->thread;
            interp__mutex_unlock(&pool->mu);
            /* it is exiting: a short spin usually joins it without a futex sleep and wake */
            if (!interp__spin(try_join, &t, INTERP__WAIT_SPIN_NS))
                pthread_join(t, NULL);
            interp__mutex_lock(&pool->mu);
            s->busy--;
            interp__cond_broadcast(&s->cv);
            spun = false;
            continue;
        }
        if (!pending)
            break;
        if (!spun) { /* workers that were told to stop exit within microseconds: spin first */
            spun = true;
            struct exits_wait ew = {s, atomic_load(&s->n_exits)};
            interp__mutex_unlock(&pool->mu);
            interp__spin(exits_moved, &ew, INTERP__WAIT_SPIN_NS);
            interp__mutex_lock(&pool->mu);
            continue;
        }
        interp__cond_wait(&s->cv, &pool->mu);
    }
    interp__mutex_unlock(&pool->mu);
}
