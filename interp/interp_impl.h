/* interp_impl.h - internal to interp/: the bodies of interp_shared and interp_state and the
 * functions the files of interp/ call on each other. Tests may include it. */
#ifndef INTERP_IMPL_H
#define INTERP_IMPL_H

#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "budget.h"
#include "interp.h"
#include "threads.h"
#include "lua_ctx.h"
#include "status_text.h"
#include "sync.h"

typedef struct interp__host_lib {
    char *name; /* owned */
    lua_CFunction open;
    bool sandbox;
} interp__host_lib;

/* Immutable after interp__shared_compile; read by every worker at once. */
struct interp_shared {
    interp_sandbox sandbox;
    size_t memory_limit;
    interp_msg *init_args;    /* owned; NULL: none */
    interp_msg_opts msg_opts; /* allow_functions already forced off in the sandbox */
    double cancel_grace;      /* seconds, > 0 */
    size_t max_chunk;         /* sandbox: the largest text chunk load or a source task
                                 compiles (the parser runs where no hook reaches), > 0 */
    interp_print_fn print;    /* never NULL (the default sink is filled in) */
    void *print_ud;
    int (*chan_lookup)(void *ud, const char *name, size_t len, size_t capacity,
                       struct interp__account *acct, char *why, size_t whylen, interp_chan **out,
                       unsigned *rights);
    void *chan_lookup_ud;
    void (*module_ext)(lua_State *L, void *ud); /* core/'s names in `interp` (interp.h) */
    void *module_ext_ud;
    struct interp__frozen_space *frozen_space; /* not owned */
    char *init_code; /* owned bytecode of the initializer (lua_dump); NULL: none */
    size_t init_code_len;
    interp__host_lib *host_libs; /* owned copies (hostlib.c) */
    size_t n_host_libs;
    interp_state_fn on_state;
    void *on_state_ud;
    char *package_path, *package_cpath; /* owned; NULL: Lua's defaults */
    struct interp__budget *budget;      /* retained; NULL: none */
    /* The one field written after compile: the pack size the last state of this
     * configuration needed (alloc.h), a hint for the next (relaxed; any value is correct). */
    atomic_size_t pack_hint;
};

typedef struct interp__co_run interp__co_run;

struct interp_state {
    lua_State *L; /* main thread; owned */
    const interp_shared *sh;
    interp__alloc alloc;   /* the allocator's counters (L's lua_Alloc ud) */
    interp__lua_ctx ctx;   /* reachable from every thread of L (extra space) */
    interp__cancel cancel; /* fired by interp__state_interrupt */
    int worker_id;
    bool sandbox;
    bool broken;
    bool persistent;            /* a context's state: in the sandbox, one environment for
                                   every call (interp__state_set_persistent) */
    int src_cached;             /* entries in the source-chunk cache */
    lua_Integer next_object_id; /* sandbox: the last number shown for an object (ids.c) */
    size_t task_mem_base;       /* sandbox: heap bytes when the running task began */
    /* Items begun on this state (each map item, each call): stored by the worker (relaxed, one
     * store per item), read by any thread through interp__state_items. */
    _Atomic uint64_t items;
    /* Slabs of map results whose members the host has freed, for the next maps (msg_inner.h);
     * made by the first map, released with the state (NULL: none). */
    struct interp__slab_cache *slab_cache;

    /* Interruption (cancel.c). irq_mu guards running_task, last_task and the pending pair; it
     * is held only for a few instructions (never while Lua runs), by the worker when a run
     * begins or ends and by an interrupting thread while it installs the hook. Lock order:
     * irq_mu, then cancel.lock (interp__cancel_fire under irq_mu), then the mutex armed on the
     * token (sleep_mu, or a channel's); threads.mu is taken last and alone (the allocator takes
     * it with nothing else held by interp/); nothing takes irq_mu while holding another. */
    pthread_mutex_t irq_mu;
    uint64_t running_task;    /* 0: none */
    uint64_t last_task;       /* the run begun last (ended once running_task is 0) */
    uint64_t pending_task;    /* an interrupt that arrived before its run began: the run's */
    int pending_reason;       /* id and the reason, applied if that run is the next */
    lua_State *base;          /* the thread the run began on (the main thread for tasks) */
    bool armed_all;           /* worker only: the hook has armed every coroutine */
    atomic_llong escalate_at; /* monotonic ns: end of the grace */
    atomic_bool escalated;    /* the grace is over: strike at every instruction */
    atomic_bool raised;       /* the cancellation error has been raised once */
    atomic_uint hook_fires;   /* the hook has run (stored by the worker only) */
    interp__threads threads;  /* the state's coroutines, kept by the allocator */
    lua_CFunction pcall_fn;   /* the base library's pcall and xpcall (a strike looks for */
    lua_CFunction xpcall_fn;  /* their frames) */
    lua_Hook init_hook;       /* the main thread's hook after the initializer: every task */
    int init_hook_mask;       /* ends with it again */
    int init_hook_count;

    pthread_mutex_t sleep_mu; /* interp.sleep waits here, armed on `cancel` */
    pthread_cond_t sleep_cv;

    /* A context's call in progress, run as a coroutine (call.c): the coroutine (anchored in
     * the registry), the run (NULL: none), and a yield of the time slice's hook (set by the
     * hook just before it yields). */
    lua_State *co;
    struct interp__co_run *co_run;
    bool preempt_yield;

    /* warn() (module.c): as lua5.4's, off until "@on"; a message is gathered from its pieces
     * (at most WARN_MAX bytes) and goes to the print sink as "Lua warning: ..." */
    int warn_mode;  /* 0 off, 1 on, 2 inside a message of several pieces */
    char *warn_buf; /* malloc'd; NULL: none yet */
    size_t warn_len;
};

/* The state whose extra space L carries (any thread of the state). */
static inline interp_state *interp__state_of(lua_State *L)
{
    interp__lua_ctx *ctx = interp__lua_ctx_get(L);
    return (interp_state *)(void *)((char *)ctx - offsetof(interp_state, ctx));
}

/* ---- cancel.c ---- */
/* Worker: task_id starts running on s's main thread / has ended. irq_end removes the hook from
 * the main thread, forgets the interrupt and returns its reason (0: none). */
void interp__irq_begin(interp_state *s, uint64_t task_id);
/* Take a preemption hook (interp__state_preempt) off co, at a slice's end. */
void interp__preempt_disarm(lua_State *co);
/* The same for a run whose base thread is the coroutine `base` (a context's call). */
void interp__irq_begin_on(interp_state *s, uint64_t task_id, lua_State *base);
/* Begin run task_id on base already interrupted with reason and in its grace (its <close>
 * handlers run; after cancel_grace every instruction raises): for closing a dropped call.
 * *task_id 0: an id is picked (stored back). End it with interp__irq_end. */
void interp__irq_begin_closing(interp_state *s, uint64_t *task_id, lua_State *base, int reason);
int interp__irq_end(interp_state *s);
/* Protected, once the profile is open: record what the hook needs (pcall, xpcall, the value
 * a defused <close> slot gets). */
void interp__irq_open(lua_State *L);
/* After the initializer: the main thread's hook now is the one every task ends with. */
void interp__irq_keep_init_hook(interp_state *s);
/* Raise the cancellation error (a plain string without position, so that it reads the same
 * wherever it struck) and remember that it was raised once. Inline, like interp__irq_check:
 * under TSan every instrumented frame that a Lua error longjmps over stays on TSan's shadow
 * stack (liblua is not instrumented), so the raising paths keep their frames few. */
long long interp__irq_grace_end(const interp_state *s); /* now + the grace, monotonic ns */
static inline int interp__irq_raise(lua_State *L, interp_state *s, int reason)
{
    /* The grace starts when the error is first delivered, not when the interrupt was asked
     * for: a worker that was not scheduled meanwhile still gets its whole grace. */
    if (!atomic_load_explicit(&s->raised, memory_order_relaxed)) {
        atomic_store_explicit(&s->escalate_at, interp__irq_grace_end(s), memory_order_relaxed);
        atomic_store_explicit(&s->raised, true, memory_order_relaxed);
    }
    lua_pushstring(L, interp__irq_text(reason));
    return lua_error(L);
}
/* Raise the cancellation error in L if the running task is interrupted; returns otherwise. */
static inline void interp__irq_check(lua_State *L)
{
    interp_state *s = interp__state_of(L);
    int reason = interp__cancel_reason(&s->cancel);
    if (reason)
        interp__irq_raise(L, s, reason);
}

/* ---- sandbox.c ---- */
/* Open the libraries of the profile into L's globals (raises on memory error). */
int interp__open_profile(lua_State *L);
/* Sandbox: push a fresh environment table for one task (it becomes the task's environment,
 * the default of `load`, and the environment of every function the initializer defined). */
void interp__push_task_env(lua_State *L);
/* The same for a context's state: the environment made for its first call is kept (in the
 * registry) and pushed again for every later call, so its globals persist. */
void interp__push_persistent_env(lua_State *L);
/* sandbox.c: push the global `name` of a sandboxed context's state as its calls see it,
 * through its one environment (what its initializer and exec'd chunks defined, reading through
 * to the globals); lua_getglobal before its first call. Returns the value's type. */
int interp__get_ctx_global(lua_State *L, const char *name);
/* Sandbox: remember the initializer's main chunk (at idx), whose _ENV upvalue every function
 * it defines shares, so that each task can point that shared upvalue at its own environment. */
void interp__sandbox_keep_init(lua_State *L, int idx);

/* ---- hostlib.c ---- */
/* Validate and copy cfg's host libraries, on_state and package paths into sh (a failure
 * leaves what was copied for interp__shared_destroy). INTERP_ERR_INVALID / _NOMEM, *err set. */
int interp__hostlibs_copy(interp_shared *sh, const interp_config *cfg, char **err);
void interp__hostlibs_free(interp_shared *sh);
/* True when interp__open_hostlibs has something to do. */
bool interp__hostlibs_wanted(const interp_shared *sh);
/* Protected steps of state creation (light userdata 1: the interp_state): set the package
 * paths and open the host libraries; call the host's on_state. */
int interp__open_hostlibs(lua_State *L);
int interp__run_on_state(lua_State *L);

/* ---- module.c ---- */
/* Push the `interp` module table (raises on memory error). */
void interp__push_module(lua_State *L);
/* Install print into the globals at index g and os.exit into the os table at index os. */
void interp__install_io(lua_State *L, int g, int os);
/* Set the state's warning function (any profile; the sandbox has no warn, Lua's own warnings
 * such as an error in a __gc finalizer still arrive). Free its buffer at state destruction. */
void interp__install_warn(interp_state *s);
void interp__free_warn(interp_state *s);
/* Inside a C loop: if the task is interrupted, meet the hook as Lua code would (may raise). */
void interp__poll_irq(lua_State *L);
/* The default print sink: whole lines to stdout, never interleaved mid-line. */
void interp__print_stdout(void *ud, int worker_id, const char *line, size_t len);

#endif
