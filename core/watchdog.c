/* watchdog.c - one thread per pool that sleeps until the earliest deadline of a running task.
 *
 * Deadlines are per item: a map chunk runs many items in one run, so at a deadline the
 * watchdog first looks whether a newer item has begun since the deadline was set
 * (interp__state_items); if so it sets a new deadline, now + the timeout, for that item (each
 * item thus gets between 1x and 2x the timeout, and the worker pays one relaxed store per
 * item, no clock read). At the deadline of an item still running it interrupts the run
 * (interp__state_interrupt with INTERP_ERR_TIMEOUT: the count hook raises in Lua, blocking
 * sleeps and channel waits wake; an interrupt that arrives just before the run enters its
 * state is remembered by the state, so one interrupt is always enough). A task interrupted by its
 * deadline, a cancel or shutdown_now that is still running stuck_grace later is stuck in C code no
 * hook reaches: the watchdog abandons it. It takes the run over (a compare-and-swap on the worker's
 * cur_task, so exactly one of the worker and the watchdog ends the job), fails the job, detaches
 * the thread and starts a replacement worker with a fresh state so the pool keeps its capacity.
 * Callbacks of futures failed this way run on the watchdog thread.
 *
 * Nothing here touches a worker's job unless the run it belongs to is still the worker's
 * current one (cur_task), checked under the pool lock. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core_impl.h"

static int ensure_started_locked(interp_pool *pool);

static struct timespec ts_of(double t)
{
    struct timespec ts;
    if (t > 4e9)
        t = 4e9;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Under pool->mu: run `id` of w is to be abandoned at `at` unless it ends. */
static void escalate_locked(interp__worker *w, uint64_t id, double at, int reason)
{
    interp_pool *pool = w->pool;
    if (w->esc_id != id) {
        w->esc_id = id;
        w->escalate_at = at;
        w->rearm_at = interp__now() + INTERP__IRQ_REARM_S;
        w->esc_reason = reason;
    } else if (at < w->escalate_at) {
        w->escalate_at = at;
    }
    ensure_started_locked(pool); /* on failure: retried at the next deadline or cancel */
    if (at < pool->wd_next) {
        pool->wd_next = at;
        interp__cond_signal(&pool->wd_cv);
    }
}

void interp__watchdog_deadline(interp__worker *w, uint64_t id, double timeout)
{
    interp_pool *pool = w->pool;
    /* the run has not begun its first item yet: that item makes the count one more */
    uint64_t first_item = interp__state_items(w->state) + 1;
    double deadline = interp__now() + timeout;
    interp__mutex_lock(&pool->mu);
    w->dl_id = id;
    w->deadline = deadline;
    w->dl_len = timeout;
    w->dl_items = first_item;
    w->dl_fired = false;
    ensure_started_locked(pool); /* on failure: retried at the next deadline or cancel */
    if (deadline < pool->wd_next) {
        pool->wd_next = deadline;
        interp__cond_signal(&pool->wd_cv);
    }
    interp__mutex_unlock(&pool->mu);
}

void interp__interrupt_run_locked(interp__worker *w, uint64_t id, int reason)
{
    interp_pool *pool = w->pool;
    if (!w->abandoned && w->state && atomic_load(&w->cur_task) == id) {
        interp__state_interrupt(w->state, id, reason);
        escalate_locked(w, id, interp__now() + pool->cancel_grace + pool->stuck_grace, reason);
    }
}

void interp__interrupt_run(interp__worker *w, uint64_t id, int reason)
{
    interp_pool *pool = w->pool;
    interp__mutex_lock(&pool->mu);
    interp__interrupt_run_locked(w, id, reason);
    interp__mutex_unlock(&pool->mu);
}

/* Under pool->mu, before the thread is detached (its pthread_t is valid): the abandoned thread
 * keeps running a C loop no hook reaches, so it must take no CPU that anything else wants.
 * SCHED_IDLE runs it only on a core nothing else wants (allowed without privileges since
 * Linux 2.6.39); where that is refused, the lowest priority (nice 19) for that thread alone.
 * Renamed "<prefix>-ab" so that top -H and the tests tell it from the live workers. Never
 * undone: the thread exits when its C call returns. */
static void demote(interp_pool *pool, interp__worker *w)
{
    struct sched_param sp = {.sched_priority = 0};
    if (pthread_setschedparam(w->thread, SCHED_IDLE, &sp) != 0) {
        int tid = atomic_load_explicit(&w->tid, memory_order_relaxed);
        if (tid > 0)
            setpriority(PRIO_PROCESS, (id_t)tid, 19);
    }
    char name[16];
    snprintf(name, sizeof name, "%.9s-ab", pool->thread_name);
    pthread_setname_np(w->thread, name);
}

/* No lock held: end the abandoned job, drop the slot's reference, start a replacement. Past
 * max_abandoned threads still running, the pool breaks instead of replacing: a hard bound of
 * workers + max_abandoned threads per pool, each abandoned one demoted. */
static void finish_abandon(interp_pool *pool, interp__worker *w, interp__job *job, int reason,
                           int slot)
{
    atomic_fetch_add_explicit(&pool->st_abandoned, 1, memory_order_relaxed);
    int running = atomic_fetch_add_explicit(&pool->abandoned_running, 1, memory_order_relaxed) + 1;
    atomic_fetch_add_explicit(&pool->st_replaced, 1, memory_order_relaxed);
    job->ops->abandoned(job, reason); /* the worker keeps its reference to the job */
    if (interp__worker_flush_held(w)) /* a context it kept to run next goes to the others */
        interp__start_grow(pool);
    interp__worker_release(w); /* the slot's reference */
    /* Replace it unless the pool is closed and has nothing left to run. */
    bool spawn = false;
    if (running > pool->max_abandoned) {
        char why[160];
        snprintf(why, sizeof why,
                 "%d abandoned workers still run C code no hook reaches "
                 "(max_abandoned %d): the pool takes no more work; create a new one",
                 running, pool->max_abandoned);
        interp__pool_break(pool, why);
    } else if (!atomic_load(&pool->q.closed_flag) || interp__queue_count(&pool->q) > 0) {
        spawn = true;
    }
    interp__start_replace(pool, slot, spawn);
}

/* Under pool->mu: the deadline of w's run `cur`: moved on for a newer item, or fired (the
 * run interrupted, to be abandoned after the stuck grace). Lowers *next to when to look
 * again. */
static void check_deadline_locked(interp_pool *pool, interp__worker *w, uint64_t cur, double now,
                                  double *next)
{
    if (w->dl_id && w->dl_id != cur)
        w->dl_id = 0; /* that run has ended */
    if (!w->dl_id || w->dl_fired)
        return;
    if (now >= w->deadline && w->state) {
        uint64_t items = interp__state_items(w->state);
        if (items != w->dl_items) { /* a newer item: its own deadline */
            w->dl_items = items;
            w->deadline = now + w->dl_len;
        }
    }
    if (now >= w->deadline) {
        w->dl_fired = true;
        if (w->state)
            interp__state_interrupt(w->state, cur, INTERP_ERR_TIMEOUT);
        escalate_locked(w, cur, w->deadline + pool->stuck_grace, INTERP_ERR_TIMEOUT);
    } else if (w->deadline < *next) {
        *next = w->deadline;
    }
}

/* Under pool->mu: w's run `cur` was interrupted and has not ended: install the hook again
 * now and then, and at its escalation time take the run over. true when the watchdog took it
 * (w is to be abandoned). Lowers *next to when to look again. */
static bool check_escalation_locked(interp__worker *w, uint64_t cur, double now, double *next)
{
    if (w->esc_id && w->esc_id != cur)
        w->esc_id = 0;
    if (!w->esc_id)
        return false;
    if (now < w->escalate_at && w->state) {
        /* interrupted and still running: install the hook again on every thread that may
         * run (a coroutine resumed as the interrupt came, a hook removed) */
        if (now >= w->rearm_at) {
            interp__state_rearm(w->state, w->esc_id);
            w->rearm_at = now + INTERP__IRQ_REARM_S;
        }
        if (w->rearm_at < *next)
            *next = w->rearm_at;
    }
    if (now < w->escalate_at) {
        if (w->escalate_at < *next)
            *next = w->escalate_at;
        return false;
    }
    uint64_t expect = cur;
    return atomic_compare_exchange_strong(&w->cur_task, &expect, INTERP__TASK_ABANDONED);
}

/* Under pool->mu (released meanwhile): abandon the worker of slot, whose run the watchdog
 * took over. */
static void abandon_locked(interp_pool *pool, int slot)
{
    interp__worker *victim = pool->slots[slot];
    victim->abandoned = true;
    demote(pool, victim);
    pthread_detach(victim->thread);
    pool->slots[slot] = NULL;
    interp__start_replace_locked(pool);
    interp__job *job = victim->run_job;
    int reason = victim->esc_reason;
    interp__mutex_unlock(&pool->mu);
    finish_abandon(pool, victim, job, reason, slot);
    interp__mutex_lock(&pool->mu);
}

static void *watchdog_main(void *arg)
{
    interp_pool *pool = arg;
    interp__set_pool_thread(pool);
    interp__name_thread(pool, -1);
    interp__mutex_lock(&pool->mu);
    while (!pool->wd_stop) {
        double now = interp__now(), next = INFINITY;
        int victim = -1;
        for (int i = 0; i < pool->nworkers && victim < 0; i++) {
            interp__worker *w = pool->slots[i];
            if (!w || w->abandoned)
                continue;
            uint64_t cur = atomic_load(&w->cur_task);
            check_deadline_locked(pool, w, cur, now, &next);
            if (check_escalation_locked(w, cur, now, &next))
                victim = i;
        }
        if (victim >= 0) {
            abandon_locked(pool, victim);
            continue;
        }
        double due = interp__timers_run_locked(&pool->timers, now); /* parked waits */
        if (pool->grow_owed > 0) { /* the preempt tick handed held jobs to the queue */
            int n = pool->grow_owed;
            pool->grow_owed = 0;
            interp__mutex_unlock(&pool->mu);
            while (n-- > 0)
                interp__start_grow(pool);
            interp__mutex_lock(&pool->mu);
            continue;
        }
        if (due < next)
            next = due;
        pool->wd_next = next;
        if (isinf(next)) {
            interp__cond_wait(&pool->wd_cv, &pool->mu);
        } else {
            struct timespec ts = ts_of(next);
            interp__cond_wait_until(&pool->wd_cv, &pool->mu, &ts);
        }
    }
    interp__mutex_unlock(&pool->mu);
    return NULL;
}

/* Under pool->mu: start the watchdog thread if it is not running. A pool with no deadline, no
 * cancel of a running task and no shutdown_now never starts it: a short-lived pool then pays
 * for no thread it does not use. */
static int ensure_started_locked(interp_pool *pool)
{
    if (pool->wd_started || pool->wd_stop)
        return INTERP_OK;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return INTERP_ERR_SYSTEM;
    pthread_attr_setstacksize(&attr, pool->thread_stack);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits: no signal lands on it */
    int rv = pthread_create(&pool->wd_thread, &attr, watchdog_main, pool);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    pool->wd_started = rv == 0;
    return rv == 0 ? INTERP_OK : INTERP_ERR_SYSTEM;
}

int interp__timer_arm(interp_pool *pool, interp__timer *t, double at)
{
    interp__mutex_lock(&pool->mu);
    int rc = interp__timers_add_locked(&pool->timers, t, at);
    if (rc == INTERP_OK)
        rc = ensure_started_locked(pool);
    if (rc == INTERP_OK && at < pool->wd_next) {
        pool->wd_next = at;
        interp__cond_signal(&pool->wd_cv);
    }
    interp__mutex_unlock(&pool->mu);
    return rc;
}

int interp__watchdog_start(interp_pool *pool)
{
    interp__mutex_lock(&pool->mu);
    pool->wd_next = INFINITY;
    /* with a default task timeout every task needs it: start it now, so that a failure to
     * start it is reported by interp_pool_create */
    int rc = pool->task_timeout > 0 ? ensure_started_locked(pool) : INTERP_OK;
    interp__mutex_unlock(&pool->mu);
    return rc;
}

void interp__watchdog_stop(interp_pool *pool)
{
    interp__mutex_lock(&pool->mu);
    bool started = pool->wd_started;
    pool->wd_stop = true;
    pool->wd_started = false;
    interp__cond_signal(&pool->wd_cv);
    interp__mutex_unlock(&pool->mu);
    if (started)
        pthread_join(pool->wd_thread, NULL);
}
