/* bench.h - bench_compare: the executors under comparison and what they share.
 *
 * Every executor (sequential, gil, process, interp) offers the same small interface, so the
 * workloads (workloads.c) run unchanged on each. Task arguments and results are messages
 * (interp_msg), encoded and decoded with the library's codec (interp_msg_from_lua /
 * interp_msg_to_lua) in every executor, so the comparison measures the execution model and
 * not the serialisation. */
#ifndef BENCH_COMPARE_H
#define BENCH_COMPARE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "control.h"
#include "interp_msg.h"
#include "interp_status.h"

/* Room for an error text handed back by an executor. */
enum { BENCH_ERRLEN = 512 };

/* One executor. `ex` is the executor's opaque instance, `job` one submitted task. */
typedef struct bench_exec {
    const char *name;
    /* Start an executor with `workers` workers, each (or the shared state) running the Lua
     * chunk `init` once. Returns INTERP_OK and *ex, or an INTERP_ERR_* code with err set. */
    int (*create)(void **ex, int workers, const char *init, char err[BENCH_ERRLEN]);
    /* Queue a call of the global function `fn` (a static string) with the values of `args`
     * as arguments. On INTERP_OK the executor owns args; on error the caller still does. */
    int (*submit)(void *ex, const char *fn, interp_msg *args, void **job);
    /* Wait for job. INTERP_OK: *out is its result message (borrowed until release);
     * otherwise the task's status with *err its text (borrowed until release). */
    int (*result)(void *ex, void *job, const interp_msg **out, const char **err);
    /* Forget job (after result). */
    void (*release)(void *ex, void *job);
    /* Apply fn to the n argument messages in[] (borrowed), ordered results in out[] (owned by
     * the caller; NULL for a failed item). INTERP_OK or the first failure with err set. */
    int (*map)(void *ex, const char *fn, size_t n, const interp_msg *const in[], interp_msg *out[],
               char err[BENCH_ERRLEN]);
    /* Stop and free everything; *child_rss_kib receives the summed peak resident memory of
     * the worker processes (0 for executors without child processes). */
    void (*destroy)(void *ex, long *child_rss_kib);
} bench_exec;

extern const bench_exec bench_exec_sequential;
extern const bench_exec bench_exec_gil;
extern const bench_exec bench_exec_process;
extern const bench_exec bench_exec_interp;
/* interp's pools start every worker in create (the prestart option) instead of on demand. */
extern bool bench_interp_prestart;

/* ---- luahost.c: one plain lua_State as the baselines use it ------------------------------ */

/* Called by the `sleep` function around its wait (the GIL executor drops its lock there). */
typedef struct bench_sleep_hooks {
    void (*release)(void *ud);
    void (*acquire)(void *ud);
    void *ud;
} bench_sleep_hooks;

/* A new state with the standard libraries, `sleep(seconds)` and `interp.sleep(seconds)` (the
 * same function; hooks may be NULL, otherwise they must outlive the state), then the chunk
 * `init` run once. Returns INTERP_OK and *out, or an error code with err set. */
int bench_lua_new(lua_State **out, const char *init, const bench_sleep_hooks *hooks,
                  char err[BENCH_ERRLEN]);
/* Call global fn of L (a state or a thread of it) with the values of args (NULL: none),
 * protected, with a traceback on error. INTERP_OK and *out (owned by the caller) holding
 * every result, or INTERP_ERR_SCRIPT / _NOTFOUND / _DECODE / _ENCODE with err set. Leaves the
 * stack as it found it. */
int bench_lua_call(lua_State *L, const char *fn, const interp_msg *args, interp_msg **out,
                   char err[BENCH_ERRLEN]);

/* ---- jobq.c: the job and the queue of the gil and process pools ---------------------------- */

/* A job: one submitted task (n == 1, in/out point at own_in/own_out) or a chunk of a map (in
 * and out point into the caller's arrays). */
typedef struct bench_job {
    const char *fn;
    size_t n;
    const interp_msg *const *in;
    interp_msg **out;
    interp_msg *own_in, *own_out; /* a submitted task's argument and result */
    int status;                   /* first failure among the items, INTERP_OK otherwise */
    char *err;                    /* its text (malloc'd; NULL when none or out of memory) */
    bool done;
    uint64_t seq; /* the process pool's send order on one child */
    struct bench_job *next;
} bench_job;

/* A FIFO of jobs with completion signalling. Lock order: only q->mu. */
typedef struct bench_queue {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or the queue closed */
    pthread_cond_t done; /* a job completed */
    bench_job *head, *tail;
    bool closed;
} bench_queue;

/* A plain (default) pthread mutex for the baselines: the library's locks are tuned for its
 * own use (glibc adaptive mutexes), which would change what the gil and process executors
 * measure (an adaptive GIL spins while Lua runs). Aborts on failure like interp__mutex_init. */
void bench_mutex_init(pthread_mutex_t *mu);
void bench_queue_init(bench_queue *q);
void bench_queue_destroy(bench_queue *q);
/* Append; INTERP_ERR_SHUTDOWN after close. */
int bench_queue_push(bench_queue *q, bench_job *j);
/* Next job, blocking; NULL once closed and empty. */
bench_job *bench_queue_pop(bench_queue *q);
/* Close: pop drains what is queued and then returns NULL. */
void bench_queue_close(bench_queue *q);
/* Fail every queued job with status/text (used when no worker is left). */
void bench_queue_fail_all(bench_queue *q, int status, const char *why);
/* Mark j done and wake its waiter. */
void bench_queue_complete(bench_queue *q, bench_job *j);
/* Block until j is done. */
void bench_queue_wait(bench_queue *q, bench_job *j);

/* A submitted task's job (n == 1, owning args), or NULL when out of memory. */
bench_job *bench_job_task(const char *fn, interp_msg *args);
/* Record the first failure of a job. */
void bench_job_fail(bench_job *j, int status, const char *why);
/* Free a job (its error text and, for a task job, its argument and result). */
void bench_job_free(bench_job *j);
/* map over a queue: split into chunks of `chunk` items, push, wait for all in order. */
int bench_queue_map(bench_queue *q, const char *fn, size_t n, const interp_msg *const in[],
                    interp_msg *out[], size_t chunk, char err[BENCH_ERRLEN]);
/* The default chunk size of a map: about four chunks per worker, at least 1. */
size_t bench_chunksize(size_t n, int workers);

/* Shared result-accessors of the three baselines (they all use bench_job). */
int bench_job_result(bench_queue *q, bench_job *j, const interp_msg **out, const char **err);

#endif
