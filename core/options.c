/* options.c - the pool's options: defaults, validation, and their translation into the
 * interpreter's configuration. */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "core_impl.h"

#define STACK_DEFAULT ((size_t)1 << 20)
#define STACK_FLOOR ((size_t)256 << 10)

int interp__online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > INTERP_POOL_MAX_WORKERS ? INTERP_POOL_MAX_WORKERS : (int)n;
}

int interp_pool_options_init(interp_pool_options *out, size_t struct_size)
{
    if (!out || struct_size < INTERP__POOL_OPTIONS_SIZE_0)
        return INTERP_ERR_INVALID;
    interp_pool_options o = {0};
    o.struct_size = struct_size;
    o.workers = interp__online_cpus();
    o.sandbox = INTERP_SANDBOX_NONE;
    o.cancel_grace = 0.01;
    o.stuck_grace = 1.0;
    o.thread_stack_size = STACK_DEFAULT;
    interp__struct_out(out, struct_size, &o, sizeof o);
    return INTERP_OK;
}

static bool bad_seconds(double s) { return isnan(s) || s < 0; }

/* The ranges of the options: INTERP_OK, or INTERP_ERR_INVALID with *why. */
static int check_options(const interp_pool_options *o, const char **why)
{
    if (o->workers < 0 || o->workers > INTERP_POOL_MAX_WORKERS)
        *why = "workers must be from 0 (the online CPUs) to " INTERP_LIMIT_TEXT(
            INTERP_POOL_MAX_WORKERS);
    else if (o->init_source && o->init_file)
        *why = "init_source and init_file are both set";
    else if (o->sandbox != INTERP_SANDBOX_NONE && o->sandbox != INTERP_SANDBOX_SAFE)
        *why = "sandbox: unknown profile";
    else if (bad_seconds(o->task_timeout))
        *why = "task_timeout: negative or NaN";
    else if (bad_seconds(o->cancel_grace) || bad_seconds(o->stuck_grace))
        *why = "cancel_grace / stuck_grace: negative or NaN";
    else if (o->max_abandoned < 0 || o->max_abandoned > INTERP_ABANDONED_MAX)
        *why = "max_abandoned: negative or above INTERP_ABANDONED_MAX";
    else if (o->max_chunk_size > INTERP_SANDBOX_CHUNK_MAX)
        *why = "max_chunk_size: above INTERP_SANDBOX_CHUNK_MAX";
    else if (o->max_depth < 0)
        *why = "max_depth: negative";
    return *why ? INTERP_ERR_INVALID : INTERP_OK;
}

/* The pool's own resolved fields: workers, times, thread stack and name, message size. */
static void resolve_pool(const interp_pool_options *o, interp_pool *pool)
{
    pool->nworkers = o->workers ? o->workers : interp__online_cpus();
    pool->task_timeout = o->task_timeout;
    pool->cancel_grace = o->cancel_grace > 0 ? o->cancel_grace : 0.01;
    pool->stuck_grace = o->stuck_grace > 0 ? o->stuck_grace : 1.0;
    pool->max_tasks_per_worker = o->max_tasks_per_worker;
    pool->max_abandoned = o->max_abandoned ? o->max_abandoned : INTERP_ABANDONED_DEFAULT;
    size_t stack = o->thread_stack_size ? o->thread_stack_size : STACK_DEFAULT;
    if (stack < STACK_FLOOR)
        stack = STACK_FLOOR;
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0)
        stack = (stack + (size_t)page - 1) / (size_t)page * (size_t)page;
    pool->thread_stack = stack;
    snprintf(pool->thread_name, sizeof pool->thread_name, "%.9s",
             o->thread_name ? o->thread_name : "interp");
    pool->max_msg_size = o->max_msg_size ? o->max_msg_size : (size_t)256 << 20;
    /* Untrusted code: a result or channel message is host memory outside the state's limit,
     * and repeated strings are copied whole; by default keep it within the state's limit. */
    if (!o->max_msg_size && o->sandbox == INTERP_SANDBOX_SAFE && o->memory_limit &&
        o->memory_limit < pool->max_msg_size)
        pool->max_msg_size = o->memory_limit;
}

/* The memory budget (budget.h) in bytes, 0: none. By default only for untrusted code with a
 * limit. */
static size_t budget_of(const interp_pool_options *o, int nworkers)
{
    if (o->memory_budget || o->sandbox != INTERP_SANDBOX_SAFE || !o->memory_limit)
        return o->memory_budget;
    size_t per = o->memory_limit > SIZE_MAX / 4 / (size_t)nworkers
                     ? SIZE_MAX / 2
                     : 4 * (size_t)nworkers * o->memory_limit;
    return per > SIZE_MAX / 2 ? SIZE_MAX / 2 : per + ((size_t)64 << 20);
}

/* The interpreter's configuration (pointing into o). */
static void fill_config(const interp_pool_options *o, const interp_pool *pool, interp_config *cfg)
{
    *cfg = (interp_config){0};
    cfg->budget = pool->budget;
    cfg->sandbox = o->sandbox;
    cfg->memory_limit = o->memory_limit;
    cfg->init_source = o->init_source;
    cfg->init_file = o->init_file;
    cfg->init_args = o->init_args;
    cfg->msg_opts.max_depth = o->max_depth;
    cfg->msg_opts.max_size = pool->max_msg_size;
    cfg->msg_opts.allow_functions = o->sandbox == INTERP_SANDBOX_NONE;
    cfg->cancel_grace = pool->cancel_grace;
    cfg->max_chunk_size = o->max_chunk_size;
    cfg->print = o->print;
    cfg->print_ud = o->print_ud;
    cfg->host_libs = o->host_libs;
    cfg->n_host_libs = o->n_host_libs;
    cfg->on_state = o->on_state;
    cfg->on_state_ud = o->on_state_ud;
    cfg->package_path = o->package_path;
    cfg->package_cpath = o->package_cpath;
}

int interp__options_resolve(const interp_pool_options *o, interp_pool *pool, interp_config *cfg,
                            const char **why)
{
    *why = NULL;
    int rc = check_options(o, why);
    if (rc != INTERP_OK)
        return rc;
    resolve_pool(o, pool);
    if (!(pool->budget = interp__budget_new(budget_of(o, pool->nworkers)))) {
        *why = "out of memory";
        return INTERP_ERR_NOMEM;
    }
    pool->chans.budget = pool->budget;
    fill_config(o, pool, cfg);
    return INTERP_OK;
}
