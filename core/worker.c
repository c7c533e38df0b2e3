/* worker.c - the worker thread: owns one interpreter state, takes jobs from the queue, runs
 * them, recycles its state after max_tasks_per_worker tasks and replaces a state that an
 * error left unusable. A worker the watchdog abandoned (stuck in a C call past its deadline)
 * notices it when the call returns, destroys its state and exits on its own (detached). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core_impl.h"

/* Which pool's worker or watchdog runs on this thread (per thread, so several pools can live
 * side by side): lets shutdown(wait) from a callback avoid waiting for its own thread. */
static INTERP__TLS const interp_pool *tl_pool;

bool interp__on_pool_thread(const interp_pool *pool) { return tl_pool == pool; }

void interp__set_pool_thread(const interp_pool *pool) { tl_pool = pool; }

/* The worker running on this thread (NULL: none). */
static INTERP__TLS interp__worker *tl_worker;

bool interp__worker_hold(interp_pool *pool, interp__job *job)
{
    interp__worker *w = tl_worker;
    if (!w || w->pool != pool || !w->may_hold ||
        atomic_load_explicit(&w->held, memory_order_relaxed) ||
        atomic_load_explicit(&pool->q.closed_flag, memory_order_relaxed))
        return false;
    if (w->handoffs >= INTERP__HOLD_MAX && interp__queue_count(&pool->q) > 0)
        return false; /* others wait: this one goes behind them */
    atomic_store_explicit(&w->held, job, memory_order_release);
    return true;
}

bool interp__worker_flush_held(interp__worker *w)
{
    interp__job *job = atomic_exchange_explicit(&w->held, NULL, memory_order_acq_rel);
    bool grow = false;
    if (job)
        interp__queue_push_ready(&w->pool->q, job, false, &grow);
    return grow;
}

/* The next job: the one held, else the queue's. NULL with *idled or at the end as
 * interp__queue_pop. */
static interp__job *next_job(interp__worker *w, bool busy, bool *idled, bool *starting)
{
    /* a plain load first: a pool's tasks never hold, and pay no locked instruction per job */
    interp__job *job = atomic_load_explicit(&w->held, memory_order_relaxed)
                           ? atomic_exchange_explicit(&w->held, NULL, memory_order_acq_rel)
                           : NULL;
    if (job) {
        *idled = false;
        w->handoffs++;
        return job;
    }
    w->handoffs = 0;
    return interp__queue_pop(&w->pool->q, busy ? INTERP__WORKER_IDLE_S : 0, idled, starting);
}

void interp__name_thread(const interp_pool *pool, int slot)
{
    char name[32];
    if (slot >= 0)
        snprintf(name, sizeof name, "%s-%d", pool->thread_name, slot);
    else
        snprintf(name, sizeof name, "%s-wd", pool->thread_name);
    name[15] = '\0';                          /* the kernel's limit */
    pthread_setname_np(pthread_self(), name); /* only a debugging aid: a failure is harmless */
}

void interp__worker_release(interp__worker *w)
{
    if (!w || atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
        return;
    interp_pool *pool = w->pool;
    free(w);
    interp__pool_release(pool);
}

uint64_t interp__worker_begin(interp__worker *w, interp__job *job)
{
    uint64_t id = ++w->next_id;
    if (id == INTERP__TASK_ABANDONED)
        id = w->next_id = 1;
    w->run_job = job;
    /* seq_cst: pairs with shutdown_now's store of stop_now and load of cur_task */
    atomic_store(&w->cur_task, id);
    return id;
}

bool interp__worker_end(interp__worker *w, uint64_t id)
{
    uint64_t expect = id;
    return atomic_compare_exchange_strong(&w->cur_task, &expect, 0);
}

static int make_state(interp__worker *w, char **err)
{
    interp_state *st = NULL;
    *err = NULL;
    int rc = interp__state_open(w->pool->shared, w->slot, &st, err);
    if (rc != INTERP_OK)
        return rc;
    /* The first workers open their states while create compiles the initializer. */
    if (interp__start_await_init(w->pool) < 0)
        rc = INTERP_ERR_CANCELLED; /* not reported: create has the compiler's error */
    else
        rc = interp__state_init(st, err);
    if (rc != INTERP_OK) {
        interp__state_destroy(st);
        return rc;
    }
    interp__mutex_lock(&w->pool->mu);
    w->state = st; /* under the pool lock: interrupters and stats read it */
    interp__mutex_unlock(&w->pool->mu);
    w->tasks_on_state = 0;
    return INTERP_OK;
}

static void drop_state(interp__worker *w)
{
    interp__mutex_lock(&w->pool->mu);
    interp_state *st = w->state;
    w->state = NULL;
    interp__mutex_unlock(&w->pool->mu);
    interp__state_destroy(st);
}

/* Recycle or replace the state; false when no new state could be made (pool now broken). */
static bool replace_state(interp__worker *w)
{
    interp_pool *pool = w->pool;
    drop_state(w);
    atomic_fetch_add_explicit(&pool->st_replaced, 1, memory_order_relaxed);
    char *err = NULL;
    int rc = make_state(w, &err);
    if (rc == INTERP_OK)
        return true;
    size_t n = (err ? strlen(err) : 0) + 64;
    char *why = malloc(n);
    if (why)
        snprintf(why, n, "a replacement state could not be created: %s",
                 err ? err : interp_strerror(rc));
    interp__pool_break(pool, why ? why : interp_strerror(rc));
    free(why);
    free(err);
    return false;
}

static void *worker_main(void *arg)
{
    interp__worker *w = arg;
    interp_pool *pool = w->pool;
    interp__set_pool_thread(pool);
    tl_worker = w;
    interp__name_thread(pool, w->slot);
    atomic_store_explicit(&w->tid, (int)syscall(SYS_gettid), memory_order_relaxed);
    char *err = NULL;
    int rc = w->kind == INTERP__SPAWN_FIRST ? interp__start_await_first(pool) : make_state(w, &err);
    if (!interp__start_report(w, rc, err))
        goto exit_joinable;

    bool busy = true; /* a task or chunk ran since the last interp__state_idle */
    bool starting = interp__start_counts(w); /* until the first pop takes it off the count */
    for (;;) {
        bool idled;
        interp__job *job = next_job(w, busy, &idled, &starting);
        if (idled) { /* nothing to run for a while: let go of memory kept for the next tasks */
            interp__state_idle(w->state);
            interp__stack_trim(atomic_load_explicit(&w->stack_lo, memory_order_acquire));
            busy = false;
            continue;
        }
        if (!job)
            break;
        busy = true;
        if (!job->ops->run(w, job))
            goto exit_abandoned;
        if (interp__state_broken(w->state) ||
            (pool->max_tasks_per_worker && w->tasks_on_state >= pool->max_tasks_per_worker)) {
            if (!replace_state(w))
                break;
        }
    }

exit_joinable:
    drop_state(w);
    interp__start_exited(w);
    interp__worker_release(w); /* the thread's reference; the slot keeps w until joined */
    return NULL;

exit_abandoned:
    /* Detached by the watchdog, which already ended our job and started a replacement. Only
     * reference-counted memory is touched from here on. */
    if (interp__worker_flush_held(w)) /* held after the watchdog's look, if ever */
        interp__start_grow(pool);
    drop_state(w);
    atomic_fetch_sub_explicit(&pool->abandoned_running, 1, memory_order_relaxed);
    interp__worker_release(w); /* may free the pool if it was destroyed meanwhile */
    return NULL;
}

int interp__worker_spawn(interp_pool *pool, int slot, int kind)
{
    interp__worker *w = calloc(1, sizeof *w);
    if (!w)
        return INTERP_ERR_NOMEM;
    atomic_init(&w->refs, 2); /* slot + thread */
    atomic_init(&w->cur_task, 0);
    atomic_init(&w->held, NULL);
    atomic_init(&w->stack_lo, NULL);
    interp__pool_retain(pool);
    w->pool = pool;
    w->slot = slot;
    w->kind = kind;

    pthread_attr_t attr;
    int rv = pthread_attr_init(&attr);
    bool have_attr = rv == 0;
    if (rv == 0)
        rv = pthread_attr_setstacksize(&attr, pool->thread_stack);
    /* The slot is filled under the pool lock in the same step as the thread starts: the new
     * worker can take and finish a task at once, and whoever sees that result must also see
     * the worker in its slot (stats, shutdown_now, join). */
    interp__mutex_lock(&pool->mu);
    if (rv == 0) {
        /* Workers take no signals: the host's handlers run on the host's threads. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rv = pthread_create(&w->thread, &attr, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rv == 0) {
        /* for the idle worker's stack trim: NULL until stored (then no trim) */
        atomic_store_explicit(&w->stack_lo, interp__stack_bounds(w->thread), memory_order_release);
        pool->slots[slot] = w;
        interp__cond_broadcast(&pool->start.cv);
    }
    interp__mutex_unlock(&pool->mu);
    if (have_attr)
        pthread_attr_destroy(&attr);
    if (rv != 0) {
        free(w);
        interp__pool_release(pool);
        return INTERP_ERR_SYSTEM;
    }
    return INTERP_OK;
}
