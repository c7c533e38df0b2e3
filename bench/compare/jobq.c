/* jobq.c - jobs and the job queue shared by the gil and process pools (and the job shape of
 * the sequential executor). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sync.h"

void bench_mutex_init(pthread_mutex_t *mu)
{
    int rv = pthread_mutex_init(mu, NULL);
    if (rv != 0) {
        fprintf(stderr, "bench_compare: pthread_mutex_init: %s\n", strerror(rv));
        abort();
    }
}

void bench_queue_init(bench_queue *q)
{
    memset(q, 0, sizeof *q);
    bench_mutex_init(&q->mu);
    interp__cond_init(&q->work);
    interp__cond_init(&q->done);
}

void bench_queue_destroy(bench_queue *q)
{
    interp__cond_destroy(&q->done);
    interp__cond_destroy(&q->work);
    interp__mutex_destroy(&q->mu);
}

int bench_queue_push(bench_queue *q, bench_job *j)
{
    j->next = NULL;
    interp__mutex_lock(&q->mu);
    if (q->closed) {
        interp__mutex_unlock(&q->mu);
        return INTERP_ERR_SHUTDOWN;
    }
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    interp__cond_signal(&q->work);
    interp__mutex_unlock(&q->mu);
    return INTERP_OK;
}

bench_job *bench_queue_pop(bench_queue *q)
{
    interp__mutex_lock(&q->mu);
    while (!q->head && !q->closed)
        interp__cond_wait(&q->work, &q->mu);
    bench_job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
    }
    interp__mutex_unlock(&q->mu);
    return j;
}

void bench_queue_close(bench_queue *q)
{
    interp__mutex_lock(&q->mu);
    q->closed = true;
    interp__cond_broadcast(&q->work);
    interp__mutex_unlock(&q->mu);
}

void bench_queue_fail_all(bench_queue *q, int status, const char *why)
{
    interp__mutex_lock(&q->mu);
    q->closed = true;
    bench_job *j = q->head;
    q->head = q->tail = NULL;
    while (j) {
        bench_job *next = j->next;
        bench_job_fail(j, status, why);
        j->done = true;
        j = next;
    }
    interp__cond_broadcast(&q->done);
    interp__cond_broadcast(&q->work);
    interp__mutex_unlock(&q->mu);
}

void bench_queue_complete(bench_queue *q, bench_job *j)
{
    interp__mutex_lock(&q->mu);
    j->done = true;
    interp__cond_broadcast(&q->done);
    interp__mutex_unlock(&q->mu);
}

void bench_queue_wait(bench_queue *q, bench_job *j)
{
    interp__mutex_lock(&q->mu);
    while (!j->done)
        interp__cond_wait(&q->done, &q->mu);
    interp__mutex_unlock(&q->mu);
}

bench_job *bench_job_task(const char *fn, interp_msg *args)
{
    bench_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->fn = fn;
    j->n = 1;
    j->own_in = args;
    j->in = (const interp_msg *const *)&j->own_in;
    j->out = &j->own_out;
    return j;
}

void bench_job_fail(bench_job *j, int status, const char *why)
{
    if (j->status != INTERP_OK)
        return;
    j->status = status;
    j->err = strdup(why);
}

void bench_job_free(bench_job *j)
{
    if (!j)
        return;
    interp_msg_free(j->own_in);
    interp_msg_free(j->own_out);
    free(j->err);
    free(j);
}

size_t bench_chunksize(size_t n, int workers)
{
    size_t parts = (size_t)(workers > 0 ? workers : 1) * 4;
    size_t c = (n + parts - 1) / parts;
    return c ? c : 1;
}

int bench_queue_map(bench_queue *q, const char *fn, size_t n, const interp_msg *const in[],
                    interp_msg *out[], size_t chunk, char err[BENCH_ERRLEN])
{
    size_t nj = (n + chunk - 1) / chunk, pushed = 0;
    bench_job *jobs = calloc(nj ? nj : 1, sizeof *jobs);
    if (!jobs) {
        snprintf(err, BENCH_ERRLEN, "map: out of memory");
        return INTERP_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    int rc = INTERP_OK;
    for (; pushed < nj; pushed++) {
        bench_job *j = &jobs[pushed];
        size_t off = pushed * chunk;
        j->fn = fn;
        j->n = n - off < chunk ? n - off : chunk;
        j->in = in + off;
        j->out = out + off;
        if ((rc = bench_queue_push(q, j)) != INTERP_OK) {
            snprintf(err, BENCH_ERRLEN, "map: %s", interp_strerror(rc));
            break;
        }
    }
    for (size_t i = 0; i < pushed; i++) {
        bench_queue_wait(q, &jobs[i]);
        if (jobs[i].status != INTERP_OK && rc == INTERP_OK) {
            rc = jobs[i].status;
            snprintf(err, BENCH_ERRLEN, "map item %zu..: %.440s", i * chunk,
                     jobs[i].err ? jobs[i].err : interp_strerror(rc));
        }
        free(jobs[i].err);
    }
    free(jobs);
    return rc;
}

int bench_job_result(bench_queue *q, bench_job *j, const interp_msg **out, const char **err)
{
    if (q)
        bench_queue_wait(q, j);
    *out = j->own_out;
    *err = j->status == INTERP_OK ? NULL : j->err ? j->err : interp_strerror(j->status);
    return j->status;
}
