/* exec_seq.c - the sequential baseline: one lua_State on the calling thread. submit runs the
 * task at once; the result is waiting when the caller asks for it. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "bench.h"

typedef struct seq_exec {
    lua_State *L;
} seq_exec;

static int seq_create(void **out, int workers, const char *init, char err[BENCH_ERRLEN])
{
    (void)workers; /* always one: the calling thread */
    seq_exec *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, BENCH_ERRLEN, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    int rc = bench_lua_new(&s->L, init, NULL, err);
    if (rc != INTERP_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return INTERP_OK;
}

static int seq_submit(void *ex, const char *fn, interp_msg *args, void **job)
{
    seq_exec *s = ex;
    bench_job *j = bench_job_task(fn, args);
    if (!j)
        return INTERP_ERR_NOMEM;
    char e[BENCH_ERRLEN];
    int rc = bench_lua_call(s->L, fn, args, &j->own_out, e);
    if (rc != INTERP_OK)
        bench_job_fail(j, rc, e);
    j->done = true;
    *job = j;
    return INTERP_OK;
}

static int seq_result(void *ex, void *job, const interp_msg **out, const char **err)
{
    (void)ex;
    return bench_job_result(NULL, job, out, err);
}

static void seq_release(void *ex, void *job)
{
    (void)ex;
    bench_job_free(job);
}

static int seq_map(void *ex, const char *fn, size_t n, const interp_msg *const in[],
                   interp_msg *out[], char err[BENCH_ERRLEN])
{
    seq_exec *s = ex;
    int first = INTERP_OK;
    for (size_t i = 0; i < n; i++) {
        char e[BENCH_ERRLEN];
        out[i] = NULL;
        int rc = bench_lua_call(s->L, fn, in[i], &out[i], e);
        if (rc != INTERP_OK && first == INTERP_OK) {
            first = rc;
            snprintf(err, BENCH_ERRLEN, "map item %zu: %.440s", i, e);
        }
    }
    return first;
}

static void seq_destroy(void *ex, long *child_rss_kib)
{
    seq_exec *s = ex;
    *child_rss_kib = 0;
    if (!s)
        return;
    lua_close(s->L);
    free(s);
}

const bench_exec bench_exec_sequential = {
    .name = "sequential",
    .create = seq_create,
    .submit = seq_submit,
    .result = seq_result,
    .release = seq_release,
    .map = seq_map,
    .destroy = seq_destroy,
};
