/* task.c - a submitted task as a job (interp__task_ops): run on a worker, ended without
 * running, ended for an abandoned worker, taken by a backend. The future that carries it is
 * future.c's. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core_impl.h"

/* Mark f running (w: its worker, NULL for a backend; id: the run). false when f is no longer
 * pending: cancelled (or failed by a broken pool) while queued. */
static bool claim(interp_future *f, interp__worker *w, uint64_t id)
{
    interp__mutex_lock(&f->mu);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != INTERP__F_PENDING) {
        interp__mutex_unlock(&f->mu);
        return false;
    }
    atomic_store_explicit(&f->state, INTERP__F_RUNNING, memory_order_release);
    f->worker = w;
    f->task_id = id;
    interp__mutex_unlock(&f->mu);
    return true;
}

bool interp__worker_run_task(interp__worker *w, interp_future *f)
{
    interp_pool *pool = w->pool;
    uint64_t id = interp__worker_begin(w, &f->job);
    if (!claim(f, w, id)) {
        bool alive = interp__worker_end(w, id);
        interp_future_release(f);
        return alive;
    }

    interp_outcome out;
    memset(&out, 0, sizeof out);
    if (atomic_load(&pool->stop_now)) {
        out.status = INTERP_ERR_SHUTDOWN;
    } else {
        if (f->timeout > 0)
            interp__watchdog_deadline(w, id, f->timeout);
        interp__state_call(w->state, id, &f->fn, f->args, &out);
    }
    /* The arguments are the runner's: freed here, after the call, even if abandoned. */
    interp_msg_free(f->args);
    f->args = NULL;
    if (!interp__worker_end(w, id)) {
        /* abandoned: the watchdog has ended f; only our reference is left to drop */
        interp__outcome_clear(&out);
        interp_future_release(f);
        return false;
    }
    w->tasks_on_state++;
    /* what waits in the future for the host is charged to this state's account */
    interp__future_end_paid(f, INTERP__F_RUNNING, out.status, out.result, out.error,
                            out.error_value, interp__state_account(w->state));
    interp_future_release(f);
    return true;
}

static bool task_run(interp__worker *w, interp__job *job)
{
    return interp__worker_run_task(w, (interp_future *)job);
}

static void task_abort(interp__job *job, int status, const char *text)
{
    interp_future *f = (interp_future *)job;
    interp__future_end(f, INTERP__F_PENDING, status, NULL, interp__dup_text(text), NULL);
    interp_future_release(f); /* the queue's reference */
}

static const char *abandon_text(int reason)
{
    switch (reason) {
    case INTERP_ERR_TIMEOUT:
        return "timed out: the task passed its deadline and did not return from a C call "
               "within the stuck grace; its worker was abandoned and replaced";
    case INTERP_ERR_CANCELLED:
        return "cancelled: the task did not return from a C call within the stuck grace; its "
               "worker was abandoned and replaced";
    default:
        return "interrupted by shutdown: the task did not return from a C call within the "
               "stuck grace; its worker was abandoned";
    }
}

static void task_abandoned(interp__job *job, int reason)
{
    /* The abandoned worker keeps its reference and may drop it at any moment, the host its
     * own: hold one across the end, which touches f after it publishes the outcome. */
    interp_future *f = (interp_future *)job;
    interp_future_retain(f);
    interp__future_end(f, -1, reason, NULL, interp__dup_text(abandon_text(reason)), NULL);
    interp_future_release(f);
}

static bool task_take(interp__job *job, interp__backend_work *w)
{
    interp_future *f = (interp_future *)job;
    if (!claim(f, NULL, 0)) {
        interp_future_release(f);
        return false;
    }
    w->fn = &f->fn;
    w->timeout = f->timeout;
    w->args = f->args;
    return true;
}

static int task_stop_status(interp__job *job)
{
    return atomic_load(&((interp_future *)job)->cancel_requested) ? INTERP_ERR_CANCELLED : 0;
}

const interp__job_ops interp__task_ops = {
    .kind = INTERP__JOB_TASK,
    .run = task_run,
    .abort = task_abort,
    .abandoned = task_abandoned,
    .take = task_take,
    .stop_status = task_stop_status,
};
