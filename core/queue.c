/* queue.c - the pool's task queue: FIFO, optionally bounded, one lock, wakes one worker per
 * job and only when no awake worker will take it anyway.
 *
 * Waking a sleeping thread through a condition variable costs tens of microseconds, so a
 * worker that finds the queue empty first spins (interp__spin, base/spin.h) on the lock-free
 * length for INTERP__WORKER_SPIN_NS, and a push signals only when the queued jobs outnumber
 * the workers already spinning or already woken (now and then also when the only spinners
 * share the pusher's CPU: escape_locked). */
#include <string.h>

#include "core_impl.h"

static bool queue_ready(void *arg)
{
    interp__queue *q = arg;
    return atomic_load_explicit(&q->len, memory_order_relaxed) != 0 ||
           atomic_load_explicit(&q->closed_flag, memory_order_relaxed);
}

void interp__queue_init(interp__queue *q, size_t max, interp__start *start)
{
    interp__mutex_init(&q->mu);
    interp__cond_init(&q->work_cv);
    interp__cond_init(&q->space_cv);
    q->head = q->tail = NULL;
    q->count = 0;
    atomic_init(&q->len, 0);
    atomic_init(&q->hot_until, 0);
    q->max = max;
    q->n_sleep = q->n_spin = q->n_wake = q->n_space_wait = 0;
    memset(q->spin_at, 0, sizeof q->spin_at);
    q->escape_at = 0;
    q->start = start;
    q->closed = false;
    atomic_init(&q->closed_flag, false);
    q->reason = 0;
    q->notify = NULL;
    q->notify_ud = NULL;
}

void interp__queue_destroy(interp__queue *q)
{
    interp__cond_destroy(&q->space_cv);
    interp__cond_destroy(&q->work_cv);
    interp__mutex_destroy(&q->mu);
}

static void unlink_job(interp__queue *q, interp__job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        q->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        q->tail = job->prev;
    job->prev = job->next = NULL;
    job->queued = false;
    q->count--;
    atomic_store_explicit(&q->len, q->count, memory_order_relaxed);
}

/* A job that only workers spinning on the pusher's CPU would take (mu held): they run only
 * once the pusher yields (a host about to wait for the job), while a sleeper may wake on
 * another CPU. A host and the worker of its round trips that once fell onto one CPU (the
 * other busy) otherwise stayed there once it was free again: 3 us a round trip against 0.5.
 * Waking for each job cost more where no other CPU is free (4.3 us), so once a millisecond. */
static bool escape_locked(interp__queue *q)
{
    int cpu = interp__cpu_now();
    int here = cpu >= 0 && cpu < INTERP__QUEUE_CPUS ? q->spin_at[cpu] : 0;
    if (!here || q->count <= (size_t)(q->n_spin - here + q->n_wake))
        return false;
    uint64_t now = interp__now_ns();
    if (now < q->escape_at)
        return false;
    q->escape_at = now + INTERP__ESCAPE_NS;
    return true;
}

/* Append job to the run queue (mu held) and say whether to wake a sleeper. */
static bool append_locked(interp__queue *q, interp__job *job)
{
    job->next = NULL;
    job->prev = q->tail;
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    job->queued = true;
    q->count++;
    atomic_store_explicit(&q->len, q->count, memory_order_relaxed);
    /* Wake a sleeper only for jobs no spinning or already-woken worker will take. */
    bool wake = q->n_sleep > q->n_wake && q->count > (size_t)(q->n_spin + q->n_wake);
    if (!wake && q->n_sleep > q->n_wake)
        wake = escape_locked(q);
    if (wake)
        q->n_wake++;
    return wake;
}

int interp__queue_push(interp__queue *q, interp__job *job, double timeout, bool bounded, bool *grow)
{
    *grow = false;
    struct timespec dl;
    bool have_dl = false;
    interp__mutex_lock(&q->mu);
    for (;;) {
        if (q->closed) {
            int rc = q->reason;
            interp__mutex_unlock(&q->mu);
            return rc;
        }
        if (!bounded || !q->max || q->count < q->max)
            break;
        if (timeout == 0) {
            interp__mutex_unlock(&q->mu);
            return INTERP_ERR_TIMEOUT;
        }
        if (timeout > 0 && !have_dl) {
            dl = interp__deadline_in(timeout);
            have_dl = true;
        }
        q->n_space_wait++;
        bool in_time = interp__cond_wait_until(&q->space_cv, &q->mu, have_dl ? &dl : NULL);
        q->n_space_wait--;
        if (!in_time && !q->closed && q->count >= q->max) {
            interp__mutex_unlock(&q->mu);
            return INTERP_ERR_TIMEOUT;
        }
    }
    bool wake = append_locked(q, job);
    /* Every waiting or starting worker will take one job: start one more for the rest. */
    *grow = interp__start_want(q->start, q->count, q->n_spin + q->n_sleep);
    interp__mutex_unlock(&q->mu);
    if (wake)
        interp__cond_signal(&q->work_cv);
    if (q->notify)
        q->notify(q->notify_ud);
    return INTERP_OK;
}

interp__job *interp__queue_try_pop(interp__queue *q)
{
    if (!atomic_load_explicit(&q->len, memory_order_relaxed))
        return NULL;
    interp__mutex_lock(&q->mu);
    interp__job *job = q->head;
    bool space = false;
    if (job) {
        unlink_job(q, job);
        space = q->n_space_wait > 0;
    }
    interp__mutex_unlock(&q->mu);
    if (space)
        interp__cond_signal(&q->space_cv);
    return job;
}

interp__job *interp__queue_pop(interp__queue *q, double idle, bool *idled, bool *starting)
{
    bool spun = false, dl_set = false;
    struct timespec dl;
    bool timed = idle > 0 && idled;
    if (idled)
        *idled = false;
    interp__mutex_lock(&q->mu);
    if (starting && *starting) {
        interp__start_started_locked(q->start);
        *starting = false;
    }
    for (;;) {
        if (q->head) {
            interp__job *job = q->head;
            unlink_job(q, job);
            bool space = q->n_space_wait > 0;
            interp__mutex_unlock(&q->mu);
            if (space)
                interp__cond_signal(&q->space_cv);
            return job;
        }
        if (q->closed && q->n_parked == 0) { /* a parked context comes back: stay for it */
            interp__mutex_unlock(&q->mu);
            return NULL;
        }
        if (!spun) {
            spun = true;
            int cpu = interp__cpu_now();
            bool seen = cpu >= 0 && cpu < INTERP__QUEUE_CPUS;
            q->n_spin++;
            if (seen)
                q->spin_at[cpu]++;
            interp__mutex_unlock(&q->mu);
            interp__spin(queue_ready, q, INTERP__WORKER_SPIN_NS);
            interp__mutex_lock(&q->mu);
            q->n_spin--;
            if (seen)
                q->spin_at[cpu]--;
            continue;
        }
        if (atomic_load_explicit(&q->hot_until, memory_order_relaxed) > (long)interp__now_ns()) {
            spun = false; /* a job is coming (prewake): spin on */
            continue;
        }
        if (timed && !dl_set) {
            dl = interp__deadline_in(idle);
            dl_set = true;
        }
        q->n_sleep++;
        bool in_time = interp__cond_wait_until(&q->work_cv, &q->mu, timed ? &dl : NULL);
        q->n_sleep--;
        if (q->n_wake > 0) {
            q->n_wake--;
            spun = false; /* woken for a job (perhaps one still coming: prewake): spin again */
        }
        if (!in_time && !q->head && !q->closed) {
            interp__mutex_unlock(&q->mu);
            *idled = true;
            return NULL;
        }
    }
}

void interp__queue_prewake(interp__queue *q, long ns)
{
    atomic_store_explicit(&q->hot_until, (long)interp__now_ns() + ns, memory_order_relaxed);
    interp__mutex_lock(&q->mu);
    bool wake = !q->closed && q->n_spin == 0 && q->n_wake == 0 && q->n_sleep > 0;
    if (wake)
        q->n_wake++;
    interp__mutex_unlock(&q->mu);
    if (wake)
        interp__cond_signal(&q->work_cv);
}

bool interp__queue_remove(interp__queue *q, interp__job *job)
{
    interp__mutex_lock(&q->mu);
    bool removed = job->queued;
    if (removed)
        unlink_job(q, job);
    bool space = removed && q->n_space_wait > 0;
    interp__mutex_unlock(&q->mu);
    if (space)
        interp__cond_signal(&q->space_cv);
    return removed;
}

interp__job *interp__queue_close(interp__queue *q, int reason, bool take_all)
{
    interp__job *taken = NULL;
    interp__mutex_lock(&q->mu);
    if (!q->closed) {
        q->closed = true;
        q->reason = reason;
        atomic_store_explicit(&q->closed_flag, true, memory_order_relaxed);
    }
    if (take_all) {
        taken = q->head;
        for (interp__job *j = q->head; j; j = j->next)
            j->queued = false;
        q->head = q->tail = NULL;
        q->count = 0;
        atomic_store_explicit(&q->len, 0, memory_order_relaxed);
    }
    interp__mutex_unlock(&q->mu);
    interp__cond_broadcast(&q->work_cv);
    interp__cond_broadcast(&q->space_cv);
    if (q->notify)
        q->notify(q->notify_ud);
    return taken;
}

size_t interp__queue_count(interp__queue *q)
{
    return atomic_load_explicit(&q->len, memory_order_relaxed);
}

/* ---- parked contexts (core/ctx.c, channels/park.h) ------------------------------------- */

static void unlink_parked_locked(interp__queue *q, interp__job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        q->parked = job->next;
    if (job->next)
        job->next->prev = job->prev;
    job->prev = job->next = NULL;
    q->n_parked--;
}

bool interp__queue_park(interp__queue *q, interp__job *job, bool (*commit)(interp__job *job))
{
    interp__mutex_lock(&q->mu);
    bool parked = commit(job);
    if (parked) {
        job->prev = NULL;
        job->next = q->parked;
        if (q->parked)
            q->parked->prev = job;
        q->parked = job;
        q->n_parked++;
    }
    interp__mutex_unlock(&q->mu);
    return parked;
}

void interp__queue_push_ready(interp__queue *q, interp__job *job, bool unpark, bool *grow)
{
    if (grow)
        *grow = false;
    interp__mutex_lock(&q->mu);
    if (unpark)
        unlink_parked_locked(q, job);
    bool wake = append_locked(q, job);
    if (grow && !q->closed)
        *grow = interp__start_want(q->start, q->count, q->n_spin + q->n_sleep);
    interp__mutex_unlock(&q->mu);
    if (wake)
        interp__cond_signal(&q->work_cv);
}

void interp__queue_wake_parked(interp__queue *q, bool (*claim)(interp__job *job, void *ud),
                               void *ud)
{
    interp__mutex_lock(&q->mu);
    interp__job *next;
    for (interp__job *j = q->parked; j; j = next) {
        next = j->next;
        if (claim(j, ud)) {
            unlink_parked_locked(q, j);
            append_locked(q, j);
        }
    }
    interp__mutex_unlock(&q->mu);
    interp__cond_broadcast(&q->work_cv);
}
