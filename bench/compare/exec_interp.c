/* exec_interp.c - this library's pool (core/interp_pool.h) behind the benchmark's executor
 * interface: one isolated lua_State per worker thread, messages in and out. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "interp_pool.h"

bool bench_interp_prestart = false;

static int ip_create(void **out, int workers, const char *init, char err[BENCH_ERRLEN])
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.prestart = bench_interp_prestart;
    o.init_source = init;
    interp_pool *pool = NULL;
    char *e = NULL;
    int rc = interp_pool_create(&pool, &o, &e);
    if (rc != INTERP_OK) {
        snprintf(err, BENCH_ERRLEN, "%s", e ? e : interp_strerror(rc));
        free(e);
        return rc;
    }
    *out = pool;
    return INTERP_OK;
}

static int ip_submit(void *ex, const char *fn, interp_msg *args, void **job)
{
    interp_future *f = NULL;
    int rc = interp_pool_submit(ex, fn, args, &f);
    if (rc == INTERP_OK)
        *job = f;
    return rc;
}

static int ip_result(void *ex, void *job, const interp_msg **out, const char **err)
{
    (void)ex;
    int rc = interp_future_result(job, INTERP_FOREVER, out);
    *err = rc == INTERP_OK ? NULL : interp_future_error(job);
    if (rc != INTERP_OK && !*err)
        *err = interp_strerror(rc);
    return rc;
}

static void ip_release(void *ex, void *job)
{
    (void)ex;
    interp_future_release(job);
}

static int ip_map(void *ex, const char *fn, size_t n, const interp_msg *const in[],
                  interp_msg *out[], char err[BENCH_ERRLEN])
{
    int rc = interp_pool_map(ex, fn, n, in, out, NULL);
    if (rc != INTERP_OK)
        snprintf(err, BENCH_ERRLEN, "interp_pool_map: %s", interp_strerror(rc));
    return rc;
}

static void ip_destroy(void *ex, long *child_rss_kib)
{
    *child_rss_kib = 0;
    interp_pool_destroy(ex);
}

const bench_exec bench_exec_interp = {
    .name = "interp",
    .create = ip_create,
    .submit = ip_submit,
    .result = ip_result,
    .release = ip_release,
    .map = ip_map,
    .destroy = ip_destroy,
};
