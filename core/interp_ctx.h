/* interp_ctx.h - contexts: persistent, isolated interpreters run by a pool's threads.
 *
 * A context is one lua_State the host can address: its globals, loaded code, memory limit and
 * default deadline persist from call to call (in the sandbox too: it is one plugin's own
 * world). Contexts are many; they run on the pool's worker threads (M:N), sharing them and
 * the pool's queue with anonymous tasks. Calls on one context run one at a time, in the order
 * they were made (an actor); different contexts run in parallel. A context with queued calls
 * runs a bounded batch of them, then gives its thread to the next job in the pool's queue.
 *
 * Names: a context created with a name is registered pool-wide while it is open (a second
 * open context of the same name is refused); Lua code of the pool's full-profile states
 * reaches it with interp.context(name). A sandboxed context reaches only what its host
 * granted it (interp_ctx_grant_channel, interp_ctx_grant_context, interp_ctx_grant_shared):
 * names local to it, so a plugin cannot reach another plugin's channels, contexts or shared
 * values by guessing names.
 *
 * From a sandboxed state, a context reached by grant is an API: its global Lua functions may
 * be called by name; exec and its library (C) functions are refused.
 *
 * A call that waits (channel recv, send, select, interp.sleep) parks where Lua can yield: the
 * context lets go of its thread until the wait can go on (docs/DESIGN.md, "Contexts"); inside
 * a coroutine of the call or below a C function that calls Lua, it blocks its thread, bounded
 * by the call's deadline. A wait for another context's call parks too; one that would never
 * end (it waits for a context that waits, directly or not, for it) raises instead. A call
 * that has run its time_slice while other work waits yields its thread (preemption).
 *
 * Thread-safety: every function may be called from any thread at once, including from
 * future callbacks, except that interp_ctx_close must be the last use of the handle. */
#ifndef INTERP_CTX_H
#define INTERP_CTX_H

#include "interp_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct interp_ctx interp_ctx;

/* Called on a worker thread when a call made by interp_ctx_post fails: status, the error
 * text (borrowed for the call; may be NULL). Must not block for long; must not close ctx. */
typedef void (*interp_ctx_error_fn)(interp_ctx *ctx, int status, const char *error, void *ud);

/* How a context is made. Zero-initialise; every zero field takes its default. */
typedef struct interp_ctx_options {
    const char *name;             /* the context's pool-wide name (copied, at most 64 bytes;
                                     unique among the pool's open contexts) and its label in
                                     errors; NULL or "": none (reached by handle or grant) */
    const char *init_source;      /* a chunk run once in the new state (its globals stay);
                                     NULL: none. The pool's own initializer does not run in a
                                     context; its host libraries and on_state do */
    size_t init_source_len;       /* 0: strlen(init_source) */
    interp_sandbox sandbox;       /* 0: the pool's profile. INTERP_SANDBOX_SAFE in a pool
                                     without sandbox gives this context the sandbox; a context
                                     of a sandboxed pool is always sandboxed */
    size_t memory_limit;          /* bytes for this context's state; 0: the pool's */
    double timeout;               /* default deadline of each call, seconds from its start;
                                     0: the pool's task_timeout; < 0: none */
    interp_ctx_error_fn on_error; /* failures of posted calls; NULL: only counted */
    void *on_error_ud;
    const interp_host_lib *host_libs; /* this context's own host libraries (copied), opened
                                    after the pool's (one of the same name replaces the
                                    pool's); same rules as interp_pool_options.host_libs */
    size_t n_host_libs;
    double time_slice; /* preemption: seconds a call runs while other work of the
                          pool waits before it yields its thread and goes behind
                          that work (it goes on later where it was); 0: 0.01; < 0:
                          never (only its deadline bounds it). Not NaN. A sandboxed
                          call that cannot yield there (inside its own coroutine, a
                          C callback) fails INTERP_ERR_TIMEOUT 1 s after it was asked */
} interp_ctx_options;

/* Create a context of pool (a local pool: not one made with a backend such as MPI). Makes and
 * initialises its state on the calling thread (blocking: microseconds, plus init_source). A
 * sandboxed context's init_source is the tenant's code: it runs as the context's first call,
 * on a worker, under the context's deadline (and the sandbox's max_chunk_size), never on the
 * calling thread; create waits for it and fails with its status (INTERP_ERR_SCRIPT,
 * INTERP_ERR_TIMEOUT, INTERP_ERR_NOMEM, ...). What it defines lives in the context's one
 * environment, where calls by name find it. So give a sandboxed context a deadline (without
 * one, a looping initializer holds create), and do not create one from a worker of the same
 * pool (the initializer needs a worker).
 * opts may be NULL. INTERP_OK and *out (the caller closes it with interp_ctx_close);
 * INTERP_ERR_INVALID (NULL pool or out, a name too long, an unknown sandbox, a NaN or negative
 * memory setting, a pool with a backend), INTERP_ERR_SCRIPT (init_source, a host library or
 * on_state failed: text in *err), INTERP_ERR_NOMEM, INTERP_ERR_SHUTDOWN (the pool is shut
 * down). err (may be NULL) receives a malloc'd text on error, freed by the caller. */
INTERP_API int interp_ctx_create(interp_pool *pool, const interp_ctx_options *opts,
                                 interp_ctx **out, char **err);

/* Queue a call of task->fn (a global function by name, a chunk, or a function message) with
 * task->args in ctx; *out: its future (the same as interp_pool_submit_task's: result, wait,
 * cancel, callbacks, as_completed; the caller releases it). task->timeout: 0 takes the
 * context's default. Never blocks (a context's queue is unbounded). Ownership of task->args
 * as interp_pool_submit_task. INTERP_ERR_INVALID (bad arguments), INTERP_ERR_CANCELLED (the
 * context is closing), INTERP_ERR_SHUTDOWN / INTERP_ERR_BROKEN (the pool's), INTERP_ERR_NOMEM.
 * A broken context accepts the call; its future fails with INTERP_ERR_BROKEN and the reason. */
INTERP_API int interp_ctx_call_task(interp_ctx *ctx, const interp_task *task, interp_future **out);
/* Shorthand: call the global function fn of ctx with args (ownership as above). */
INTERP_API int interp_ctx_call(interp_ctx *ctx, const char *fn, interp_msg *args,
                               interp_future **out);
/* Shorthand: run the chunk src (len bytes; 0: strlen) in ctx; its globals stay. */
INTERP_API int interp_ctx_exec(interp_ctx *ctx, const char *src, size_t len, interp_future **out);
/* Fire and forget: as interp_ctx_call_task without a future. A failure of the call is counted
 * (interp_ctx_stats) and passed to the options' on_error. Errors as interp_ctx_call_task. */
INTERP_API int interp_ctx_post(interp_ctx *ctx, const interp_task *task);

/* Close ctx and let go of the handle: its pending calls end with INTERP_ERR_CANCELLED, a
 * running call is interrupted (it ends INTERP_ERR_CANCELLED, or stuck in C, as a cancel of a
 * task), and the state is freed (by the worker running it, once its call returns; else here).
 * Does not wait for the running call. Futures held by the host stay valid. NULL-safe. */
INTERP_API void interp_ctx_close(interp_ctx *ctx);

typedef struct interp_ctx_stats {
    uint64_t calls;        /* calls and posts made */
    uint64_t done;         /* ended with INTERP_OK */
    uint64_t failed;       /* ended otherwise (cancelled, timed out, broken included) */
    uint64_t posts_failed; /* of failed: posted calls */
    uint64_t queued;       /* made, not yet begun */
    size_t memory_in_use;  /* bytes of the context's state now */
    size_t memory_peak;    /* and its peak */
    bool broken;           /* later calls fail with INTERP_ERR_BROKEN */
} interp_ctx_stats;

/* Grant ctx the channel ch under `name` (1..256 bytes; local to ctx; a grant of the same name
 * is replaced): Lua code in ctx gets it from interp.channel(name). A sandboxed context reaches
 * only the channels granted to it; a full-profile one looks at its grants first, then at the
 * pool's names. ch is retained until ctx is closed. Any thread, at any time (a call running
 * in ctx sees the grant from its next lookup). INTERP_ERR_INVALID (NULL, a bad name),
 * INTERP_ERR_NOMEM, INTERP_ERR_CANCELLED (ctx is closed). */
INTERP_API int interp_ctx_grant_channel(interp_ctx *ctx, const char *name, interp_chan *ch);
/* interp_ctx_grant_channel with rights (a non-empty set of INTERP_CHAN_SEND, INTERP_CHAN_RECV,
 * interp_chan.h): the channel object ctx gets from interp.channel(name) raises on the calls
 * not granted (a plugin granted a request queue send-only cannot take others' requests from
 * it; one granted its replies receive-only cannot forge them). ch:len() is always allowed, and
 * ch:close() as for any grant. INTERP_ERR_INVALID also for bad rights. */
INTERP_API int interp_ctx_grant_channel_rights(interp_ctx *ctx, const char *name, interp_chan *ch,
                                               unsigned rights);
/* Grant ctx the context target (of the same pool) under `name`, for interp.context(name) in
 * ctx; as interp_ctx_grant_channel otherwise. target's struct is kept until ctx is closed (a
 * closed target refuses calls with INTERP_ERR_CANCELLED). */
INTERP_API int interp_ctx_grant_context(interp_ctx *ctx, const char *name, interp_ctx *target);

/* Rights of a shared-value grant (interp_ctx_grant_shared). */
enum {
    INTERP_SHARED_READ = 1,     /* interp.shared(name) reads the value */
    INTERP_SHARED_REGISTER = 2, /* interp.shared(name, v) registers one (once, as from Lua) */
    INTERP_SHARED_RW = 3,
};
#define INTERP_SHARED_MAX_NAME 255 /* bytes in a shared value's name */

/* Grant ctx the pool's shared-value name pool_name (interp_pool_share, interp.shared; NULL:
 * the same as name) under `name`, local to ctx (both 1..255 bytes), with rights (a non-empty
 * set of INTERP_SHARED_*). Lua code in ctx then reads / registers the pool's pool_name with
 * interp.shared(name [, v]); a read sees the value registered at that time (the host may
 * replace it with interp_pool_share). A sandboxed context reaches only the shared names
 * granted to it: any other name reads nil (as a name nothing is registered under) and cannot
 * be registered, so a plugin can neither read nor shadow another's shared values. A
 * full-profile context looks at its grants first, then at the pool's names. Shared-name
 * grants are a namespace apart from channel and context grants; one of the same name is
 * replaced. Any thread, any time. INTERP_ERR_INVALID (NULL ctx or name, bad names or
 * rights), INTERP_ERR_NOMEM, INTERP_ERR_CANCELLED (ctx is closed). */
INTERP_API int interp_ctx_grant_shared(interp_ctx *ctx, const char *name, const char *pool_name,
                                       unsigned rights);

/* Snapshot of ctx's counters. Never blocks for long. INTERP_ERR_INVALID for NULL. */
INTERP_API int interp_ctx_stats_get(interp_ctx *ctx, interp_ctx_stats *out);

/* The name given at creation ("" when none); valid until close. */
INTERP_API const char *interp_ctx_name(const interp_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
