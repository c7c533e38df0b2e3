/* exec_proc.c - the "process pool" of the Python articles: N forked worker processes, each
 * with its own lua_State; tasks and results travel as message bytes over pipes.
 *
 * Every child is forked in create() before this executor starts any thread (forking a
 * process that runs threads leaves locks held by threads that do not exist in the child);
 * the benchmark runs one executor at a time and the others join their threads on destroy.
 *
 * Parent side, per child: a writer thread takes jobs from the shared queue (at most WINDOW in
 * flight per child, so a child always has its next task ready, as Python's call queue does)
 * and a reader thread reads results in order and completes the jobs. A child that dies fails
 * its jobs with INTERP_ERR_BROKEN; when none is left, every queued job fails.
 *
 * Wire format (host byte order; parent and children are the same program on one machine):
 *   frame    = u64 body_len, body
 *   request  = u32 fn_len, fn bytes, u32 k, k x (u64 len, message bytes)
 *   response = u32 k, k x (i32 status, u64 len, bytes: the result message, or error text)
 * The first frame of each child is a response with k = 1: its initializer's outcome.
 * Closing the request pipe tells a child to exit.
 *
 * Locks: a child's mu and the queue's lock are never held together. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "proc_wire.h"
#include "sync.h"

enum { WINDOW = 2 }; /* jobs in flight per child */

typedef struct proc_exec proc_exec;

typedef struct proc_child {
    proc_exec *p;
    pid_t pid;
    int to_fd, from_fd; /* parent ends: requests out, responses in */
    pthread_t writer, reader;
    bool writer_started, reader_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* the window has room, a job was sent, or the child died */
    bench_job *fl_head, *fl_tail; /* in flight, oldest first (linked through next) */
    int inflight;
    uint64_t queued_seq; /* jobs handed to this child so far */
    uint64_t sent_seq;   /* jobs whose bytes the writer has finished with */
    bool dead;
    char *wbuf;
    size_t wcap;
} proc_child;

struct proc_exec {
    bench_queue q;
    int workers, forked;
    atomic_int alive;
    proc_child *c;
};

/* ---- parent side ---------------------------------------------------------------------- */

/* Write j as one request frame. 0 or -1. */
static int send_job(proc_child *c, const bench_job *j)
{
    uint32_t fn_len = (uint32_t)strlen(j->fn), k = (uint32_t)j->n;
    uint64_t body = sizeof fn_len + fn_len + sizeof k;
    for (size_t i = 0; i < j->n; i++)
        body += sizeof(uint64_t) + interp_msg_size(j->in[i]);
    size_t len = 0;
    if (!pw_put(&c->wbuf, &c->wcap, &len, &body, sizeof body) ||
        !pw_put(&c->wbuf, &c->wcap, &len, &fn_len, sizeof fn_len) ||
        !pw_put(&c->wbuf, &c->wcap, &len, j->fn, fn_len) ||
        !pw_put(&c->wbuf, &c->wcap, &len, &k, sizeof k))
        return -1;
    if (j->n == 1) { /* a single task: its (possibly large) bytes go out without a copy */
        uint64_t n = interp_msg_size(j->in[0]);
        if (!pw_put(&c->wbuf, &c->wcap, &len, &n, sizeof n))
            return -1;
        struct iovec iov[2] = {{c->wbuf, len}, {(void *)interp_msg_data(j->in[0]), (size_t)n}};
        return pw_writev_full(c->to_fd, iov, 2);
    }
    for (size_t i = 0; i < j->n; i++) {
        uint64_t n = interp_msg_size(j->in[i]);
        if (!pw_put(&c->wbuf, &c->wcap, &len, &n, sizeof n) ||
            !pw_put(&c->wbuf, &c->wcap, &len, interp_msg_data(j->in[i]), (size_t)n))
            return -1;
    }
    return pw_write_full(c->to_fd, c->wbuf, len);
}

static void *writer_main(void *arg)
{
    proc_child *c = arg;
    proc_exec *p = c->p;
    for (;;) {
        interp__mutex_lock(&c->mu);
        while (c->inflight >= WINDOW && !c->dead)
            interp__cond_wait(&c->cv, &c->mu);
        bool dead = c->dead;
        interp__mutex_unlock(&c->mu);
        if (dead)
            break;
        bench_job *j = bench_queue_pop(&p->q);
        if (!j)
            break;
        interp__mutex_lock(&c->mu);
        if (c->dead) { /* died meanwhile: hand the job to another child if the pool runs on */
            interp__mutex_unlock(&c->mu);
            if (bench_queue_push(&p->q, j) != INTERP_OK) {
                bench_job_fail(j, INTERP_ERR_BROKEN, "worker process died");
                bench_queue_complete(&p->q, j);
            }
            break;
        }
        j->next = NULL;
        if (c->fl_tail)
            c->fl_tail->next = j;
        else
            c->fl_head = j;
        c->fl_tail = j;
        c->inflight++;
        j->seq = ++c->queued_seq;
        interp__mutex_unlock(&c->mu);
        int rc = send_job(c, j);
        interp__mutex_lock(&c->mu);
        c->sent_seq = j->seq;
        interp__cond_broadcast(&c->cv);
        interp__mutex_unlock(&c->mu);
        if (rc != 0) {
            kill(c->pid, SIGKILL); /* the reader sees end of file and fails the jobs in flight */
            break;
        }
    }
    close(c->to_fd); /* end of file: the child finishes what it has and exits */
    c->to_fd = -1;
    interp__mutex_lock(&c->mu);
    c->sent_seq = UINT64_MAX; /* the writer touches no job any more */
    interp__cond_broadcast(&c->cv);
    interp__mutex_unlock(&c->mu);
    return NULL;
}

/* Complete j once the writer is done with its bytes: a fast child can answer before writev
 * has returned, and the host may free j's argument as soon as j is complete. */
static void complete_sent(proc_child *c, bench_job *j)
{
    interp__mutex_lock(&c->mu);
    while (c->sent_seq < j->seq)
        interp__cond_wait(&c->cv, &c->mu);
    interp__mutex_unlock(&c->mu);
    bench_queue_complete(&c->p->q, j);
}

/* Fill j's results from a response body. false when the body is malformed. */
static bool take_response(proc_child *c, bench_job *j, const char *body, size_t len)
{
    (void)c;
    pw_cursor cur = {body, body + len, false};
    uint32_t k = pw_take_u32(&cur);
    if (cur.bad || k != j->n)
        return false;
    for (uint32_t i = 0; i < k; i++) {
        int32_t status = (int32_t)pw_take_u32(&cur);
        uint64_t n = pw_take_u64(&cur);
        const char *bytes = pw_take(&cur, (size_t)n);
        if (cur.bad)
            return false;
        if (status == INTERP_OK) {
            /* our own child process: its functions are trusted */
            int rc = interp_msg_from_bytes_ex(bytes, (size_t)n, 0, INTERP_MSG_TRUST_FUNCTIONS,
                                              &j->out[i]);
            if (rc != INTERP_OK)
                bench_job_fail(j, rc, "result: malformed message");
        } else {
            char text[BENCH_ERRLEN];
            int shown = (int)(n < BENCH_ERRLEN ? n : BENCH_ERRLEN - 1);
            snprintf(text, sizeof text, "%.*s", shown, bytes);
            bench_job_fail(j, status, text);
        }
    }
    return true;
}

static void *reader_main(void *arg)
{
    proc_child *c = arg;
    proc_exec *p = c->p;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    while (pw_read_frame(c->from_fd, &buf, &cap, &len) == 0) {
        interp__mutex_lock(&c->mu);
        bench_job *j = c->fl_head;
        if (j) {
            c->fl_head = j->next;
            if (!c->fl_head)
                c->fl_tail = NULL;
        }
        interp__mutex_unlock(&c->mu);
        if (!j || !take_response(c, j, buf, len)) {
            if (j) {
                bench_job_fail(j, INTERP_ERR_BROKEN, "malformed response from worker process");
                complete_sent(c, j);
            }
            kill(c->pid, SIGKILL);
            break;
        }
        complete_sent(c, j);
        interp__mutex_lock(&c->mu);
        c->inflight--;
        interp__cond_signal(&c->cv);
        interp__mutex_unlock(&c->mu);
    }
    free(buf);
    interp__mutex_lock(&c->mu);
    c->dead = true;
    bench_job *j = c->fl_head;
    c->fl_head = c->fl_tail = NULL;
    c->inflight = 0;
    interp__cond_broadcast(&c->cv);
    interp__mutex_unlock(&c->mu);
    while (j) {
        bench_job *next = j->next;
        bench_job_fail(j, INTERP_ERR_BROKEN, "worker process died");
        complete_sent(c, j);
        j = next;
    }
    if (atomic_fetch_sub(&p->alive, 1) == 1)
        bench_queue_fail_all(&p->q, INTERP_ERR_BROKEN, "every worker process died");
    return NULL;
}

/* Close every descriptor from 3 up except a and b. */
static void close_all_but(int a, int b)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;
    if (lo > 3)
        close_range(3, (unsigned)lo - 1, 0);
    if (hi > lo + 1)
        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
    close_range((unsigned)hi + 1, ~0U, 0);
}

/* Stop whatever create() got to: close the queue, join, close pipes, reap children. */
static void proc_stop(proc_exec *p, long *child_rss_kib)
{
    long rss = 0;
    bench_queue_close(&p->q);
    for (int i = 0; i < p->forked; i++) {
        proc_child *c = &p->c[i];
        if (c->writer_started)
            pthread_join(c->writer, NULL);
        else if (c->to_fd >= 0)
            close(c->to_fd);
        if (c->reader_started)
            pthread_join(c->reader, NULL);
        close(c->from_fd);
        struct rusage ru = {0};
        int st;
        while (wait4(c->pid, &st, 0, &ru) < 0 && errno == EINTR) {
        }
        rss += ru.ru_maxrss; /* KiB on Linux */
        free(c->wbuf);
        interp__cond_destroy(&c->cv);
        interp__mutex_destroy(&c->mu);
    }
    bench_queue_destroy(&p->q);
    free(p->c);
    free(p);
    if (child_rss_kib)
        *child_rss_kib = rss;
}

static int proc_create(void **out, int workers, const char *init, char err[BENCH_ERRLEN])
{
    proc_exec *p = calloc(1, sizeof *p);
    proc_child *cs = p ? calloc((size_t)workers, sizeof *cs) : NULL;
    if (!cs) {
        free(p);
        snprintf(err, BENCH_ERRLEN, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    p->c = cs;
    p->workers = workers;
    bench_queue_init(&p->q);
    signal(SIGPIPE, SIG_IGN); /* a dead child shows as EPIPE, not as a signal */
    fflush(NULL);             /* no buffered output duplicated into the children */
    for (int i = 0; i < workers; i++) {
        int req[2], res[2];
        if (pipe2(req, O_CLOEXEC) != 0) {
            snprintf(err, BENCH_ERRLEN, "pipe: %s", strerror(errno));
            goto err_stop;
        }
        if (pipe2(res, O_CLOEXEC) != 0) {
            snprintf(err, BENCH_ERRLEN, "pipe: %s", strerror(errno));
            close(req[0]);
            close(req[1]);
            goto err_stop;
        }
        /* large task messages pass in fewer round trips (best effort) */
        fcntl(req[1], F_SETPIPE_SZ, 1 << 20);
        fcntl(res[1], F_SETPIPE_SZ, 1 << 20);
        pid_t pid = fork();
        if (pid < 0) {
            snprintf(err, BENCH_ERRLEN, "fork: %s", strerror(errno));
            close(req[0]), close(req[1]), close(res[0]), close(res[1]);
            goto err_stop;
        }
        if (pid == 0) {
            /* Keep only its own two pipe ends: the parent ends of the earlier children, and
             * those of any other process pool alive in the parent (bench_compare runs the
             * executors of a workload side by side), would keep their pipes open and their
             * children from seeing end of file. */
            close_all_but(req[0], res[1]);
            pw_child_main(req[0], res[1], init);
        }
        close(req[0]);
        close(res[1]);
        cs[i] = (proc_child){.p = p, .pid = pid, .to_fd = req[1], .from_fd = res[0]};
        bench_mutex_init(&cs[i].mu);
        interp__cond_init(&cs[i].cv);
        p->forked++;
    }
    /* every child reports its initializer before any thread starts */
    for (int i = 0; i < workers; i++) {
        char *buf = NULL;
        size_t cap = 0, len = 0;
        bench_job hello = {.fn = "init", .n = 1};
        interp_msg *dummy = NULL;
        hello.out = &dummy;
        if (pw_read_frame(cs[i].from_fd, &buf, &cap, &len) != 0 ||
            !take_response(&cs[i], &hello, buf, len)) {
            snprintf(err, BENCH_ERRLEN, "worker process %d failed to start", i);
            hello.status = INTERP_ERR_SYSTEM;
        } else if (hello.status != INTERP_OK) {
            snprintf(err, BENCH_ERRLEN, "%s",
                     hello.err ? hello.err : interp_strerror(hello.status));
        }
        free(hello.err);
        free(buf);
        interp_msg_free(dummy);
        if (hello.status != INTERP_OK) {
            proc_stop(p, NULL);
            return hello.status;
        }
    }
    atomic_store(&p->alive, workers);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&cs[i].reader, NULL, reader_main, &cs[i]) != 0)
            goto err_threads;
        cs[i].reader_started = true;
        if (pthread_create(&cs[i].writer, NULL, writer_main, &cs[i]) != 0)
            goto err_threads;
        cs[i].writer_started = true;
    }
    *out = p;
    return INTERP_OK;

err_threads:
    snprintf(err, BENCH_ERRLEN, "pthread_create failed");
    for (int i = 0; i < workers; i++) /* end of file on every request pipe: children exit */
        if (!cs[i].writer_started && cs[i].to_fd >= 0) {
            close(cs[i].to_fd);
            cs[i].to_fd = -1;
        }
    proc_stop(p, NULL);
    return INTERP_ERR_SYSTEM;
err_stop:
    for (int i = 0; i < p->forked; i++) {
        close(cs[i].to_fd);
        cs[i].to_fd = -1;
    }
    proc_stop(p, NULL);
    return INTERP_ERR_SYSTEM;
}

static int proc_submit(void *ex, const char *fn, interp_msg *args, void **job)
{
    proc_exec *p = ex;
    if (strlen(fn) > PW_MAX_FN)
        return INTERP_ERR_INVALID;
    bench_job *j = bench_job_task(fn, args);
    if (!j)
        return INTERP_ERR_NOMEM;
    int rc = bench_queue_push(&p->q, j);
    if (rc != INTERP_OK) {
        j->own_in = NULL;
        bench_job_free(j);
        return rc;
    }
    *job = j;
    return INTERP_OK;
}

static int proc_result(void *ex, void *job, const interp_msg **out, const char **err)
{
    return bench_job_result(&((proc_exec *)ex)->q, job, out, err);
}

static void proc_release(void *ex, void *job)
{
    (void)ex;
    bench_job_free(job);
}

static int proc_map(void *ex, const char *fn, size_t n, const interp_msg *const in[],
                    interp_msg *out[], char err[BENCH_ERRLEN])
{
    proc_exec *p = ex;
    if (strlen(fn) > PW_MAX_FN)
        return INTERP_ERR_INVALID;
    return bench_queue_map(&p->q, fn, n, in, out, bench_chunksize(n, p->workers), err);
}

static void proc_destroy(void *ex, long *child_rss_kib)
{
    *child_rss_kib = 0;
    if (ex)
        proc_stop(ex, child_rss_kib);
}

const bench_exec bench_exec_process = {
    .name = "process",
    .create = proc_create,
    .submit = proc_submit,
    .result = proc_result,
    .release = proc_release,
    .map = proc_map,
    .destroy = proc_destroy,
};
