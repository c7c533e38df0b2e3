/* exec_gil.c - the "thread pool" of the Python articles: N threads share ONE lua_State behind
 * one global lock, as CPython's threads share one interpreter behind the GIL.
 *
 * Each worker thread runs its tasks on its own coroutine of the shared state (lua_newthread,
 * anchored in the registry). It holds the lock while Lua runs (decoding arguments, the call,
 * encoding results all touch the shared state) and drops it between tasks and around `sleep`,
 * as CPython drops the GIL around blocking calls. No count hook imitates CPython's switch
 * interval: in Lua 5.4 a hook slows every instruction and would make the comparison unfair;
 * CPU-bound tasks therefore run one after another, which is exactly what a GIL does to them.
 *
 * Lock order: the GIL, then the queue's lock (only to complete a job); never the reverse. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "bench.h"
#include "sync.h"

typedef struct gil_exec gil_exec;

typedef struct gil_worker {
    gil_exec *g;
    lua_State *co; /* this thread's coroutine of the shared state */
    pthread_t thread;
} gil_worker;

struct gil_exec {
    pthread_mutex_t gil;
    bench_sleep_hooks hooks;
    lua_State *L;
    bench_queue q;
    int workers, started;
    gil_worker *w;
};

static void gil_release(void *ud) { interp__mutex_unlock(&((gil_exec *)ud)->gil); }
static void gil_acquire(void *ud) { interp__mutex_lock(&((gil_exec *)ud)->gil); }

static void *gil_worker_main(void *arg)
{
    gil_worker *w = arg;
    gil_exec *g = w->g;
    bench_job *j;
    while ((j = bench_queue_pop(&g->q)) != NULL) {
        for (size_t i = 0; i < j->n; i++) {
            char e[BENCH_ERRLEN];
            /* released between items, so that a waiting thread can take over between tasks */
            interp__mutex_lock(&g->gil);
            int rc = bench_lua_call(w->co, j->fn, j->in[i], &j->out[i], e);
            interp__mutex_unlock(&g->gil);
            if (rc != INTERP_OK)
                bench_job_fail(j, rc, e);
        }
        bench_queue_complete(&g->q, j);
    }
    return NULL;
}

static void gil_stop(gil_exec *g)
{
    bench_queue_close(&g->q);
    for (int i = 0; i < g->started; i++)
        pthread_join(g->w[i].thread, NULL);
    if (g->L)
        lua_close(g->L);
    bench_queue_destroy(&g->q);
    interp__mutex_destroy(&g->gil);
    free(g->w);
    free(g);
}

static int gil_create(void **out, int workers, const char *init, char err[BENCH_ERRLEN])
{
    gil_exec *g = calloc(1, sizeof *g);
    gil_worker *w = g ? calloc((size_t)workers, sizeof *w) : NULL;
    if (!w) {
        free(g);
        snprintf(err, BENCH_ERRLEN, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    g->w = w;
    g->workers = workers;
    bench_mutex_init(&g->gil);
    bench_queue_init(&g->q);
    g->hooks = (bench_sleep_hooks){gil_release, gil_acquire, g};
    interp__mutex_lock(&g->gil); /* the initializer may call sleep, which drops the lock */
    int rc = bench_lua_new(&g->L, init, &g->hooks, err);
    interp__mutex_unlock(&g->gil);
    if (rc != INTERP_OK) {
        gil_stop(g);
        return rc;
    }
    /* every coroutine exists before the first thread touches the shared state */
    for (int i = 0; i < workers; i++) {
        w[i].g = g;
        w[i].co = lua_newthread(g->L);
        luaL_ref(g->L, LUA_REGISTRYINDEX); /* anchored until lua_close */
    }
    for (int i = 0; i < workers; i++) {
        int prc = pthread_create(&w[i].thread, NULL, gil_worker_main, &w[i]);
        if (prc != 0) {
            snprintf(err, BENCH_ERRLEN, "pthread_create failed");
            gil_stop(g);
            return INTERP_ERR_SYSTEM;
        }
        g->started++;
    }
    *out = g;
    return INTERP_OK;
}

static int gil_submit(void *ex, const char *fn, interp_msg *args, void **job)
{
    gil_exec *g = ex;
    bench_job *j = bench_job_task(fn, args);
    if (!j)
        return INTERP_ERR_NOMEM;
    int rc = bench_queue_push(&g->q, j);
    if (rc != INTERP_OK) {
        j->own_in = NULL; /* the caller keeps args on error */
        bench_job_free(j);
        return rc;
    }
    *job = j;
    return INTERP_OK;
}

static int gil_result(void *ex, void *job, const interp_msg **out, const char **err)
{
    return bench_job_result(&((gil_exec *)ex)->q, job, out, err);
}

static void gil_release_job(void *ex, void *job)
{
    (void)ex;
    bench_job_free(job);
}

static int gil_map(void *ex, const char *fn, size_t n, const interp_msg *const in[],
                   interp_msg *out[], char err[BENCH_ERRLEN])
{
    gil_exec *g = ex;
    return bench_queue_map(&g->q, fn, n, in, out, bench_chunksize(n, g->workers), err);
}

static void gil_destroy(void *ex, long *child_rss_kib)
{
    *child_rss_kib = 0;
    if (ex)
        gil_stop(ex);
}

const bench_exec bench_exec_gil = {
    .name = "gil",
    .create = gil_create,
    .submit = gil_submit,
    .result = gil_result,
    .release = gil_release_job,
    .map = gil_map,
    .destroy = gil_destroy,
};
