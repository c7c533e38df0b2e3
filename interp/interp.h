/* interp.h - internal: one isolated interpreter (a lua_State with its allocator, profile,
 * caches and cancellation), independent of threads and queues. core/ says "run this task on
 * this state"; everything Lua-specific happens here.
 *
 * Threading: an interp_state is used by one thread at a time (its worker). The only calls
 * allowed from other threads are interp__state_interrupt() and interp__state_memory().
 * interp_shared is immutable after creation and read by every worker at once. */
#ifndef INTERP_INTERP_H
#define INTERP_INTERP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_limits.h"
#include "interp_msg_lua.h"
#include "interp_types.h"

typedef struct interp_chan interp_chan;
struct interp__account;
struct interp__budget;

/* How every state of a pool is built. Zero-initialised fields take their defaults. */
typedef struct interp_config {
    interp_sandbox sandbox;
    size_t memory_limit;         /* bytes per state; 0: none */
    const char *init_source;     /* initializer chunk, or NULL */
    size_t init_source_len;      /* 0: strlen(init_source) */
    const char *init_file;       /* or an initializer file (read and compiled once) */
    const interp_msg *init_args; /* values passed to the initializer as `...`; may be NULL */
    interp_msg_opts msg_opts;    /* limits for arguments, results and channel messages;
                                    allow_functions is forced off in the sandbox */
    double cancel_grace;         /* seconds a cancelled task's cleanup (<close>, its own error
                                    handling) may run before the hook fires on every
                                    instruction; 0: 0.01 */
    size_t max_chunk_size;       /* sandbox: largest text chunk compiled by load or as a
                                    source task; 0: INTERP_SANDBOX_CHUNK_DEFAULT */
    interp_print_fn print;       /* NULL: whole lines to stdout */
    void *print_ud;
    /* named channels of the pool (see lua_ctx.h); NULL: interp.channel raises */
    int (*chan_lookup)(void *ud, const char *name, size_t len, size_t capacity,
                       struct interp__account *acct, char *why, size_t whylen, interp_chan **out,
                       unsigned *rights);
    void *chan_lookup_ud;
    const interp_host_lib *host_libs; /* opened in every state (hostlib.c); copied */
    size_t n_host_libs;
    interp_state_fn on_state; /* NULL: none */
    void *on_state_ud;
    const char *package_path; /* full profile: package.path / cpath; NULL: Lua's */
    const char *package_cpath;
    /* where frozen values are charged and named (frozen_impl.h; the pool's, outliving every
     * state); NULL: interp.shared raises */
    struct interp__frozen_space *frozen_space;
    /* the pool's memory budget (budget.h; retained by the shared data); NULL: none. A state
     * gets an account on it when the budget has a limit or the state is sandboxed with a
     * memory limit */
    struct interp__budget *budget;
    /* core/: adds its names to the `interp` table of every state (interp.context, interp.self;
     * the table is at the top of L's stack; may raise a memory error); NULL: none. A sandboxed
     * state's table is filled when the state opens; a full-profile state's when a script first
     * reads it (interp/module.c), so this may run during a task */
    void (*module_ext)(lua_State *L, void *ud);
    void *module_ext_ud;
} interp_config;

typedef struct interp_shared interp_shared;
typedef struct interp_state interp_state;

/* Validate cfg and compile the initializer once (its bytecode is loaded into every state), in
 * two steps, so that states can be opened while the initializer compiles: shared_new validates
 * and copies everything it needs from cfg; shared_compile (once, before any state_init)
 * compiles cfg's initializer. On error they return INTERP_ERR_* with *err a malloc'd text
 * (syntax error, unreadable file). (Tests and benchmarks do both in one call:
 * tests/interp_one_step.h.) */
int interp__shared_new(const interp_config *cfg, interp_shared **out, char **err);
int interp__shared_compile(interp_shared *sh, const interp_config *cfg, char **err);
/* shared_compile in an opened state s of sh instead of a scratch state (one state fewer to
 * make and close; the parse counts against s's memory limit). Then interp__state_init(s). */
int interp__shared_compile_in(interp_shared *sh, const interp_config *cfg, interp_state *s,
                              char **err);
void interp__shared_destroy(interp_shared *sh); /* NULL-safe; after every state is gone */
/* sh's states run the sandbox profile. */
bool interp__shared_sandboxed(const interp_shared *sh);
/* What a context changes in its pool's configuration (interp__shared_derive). */
typedef struct interp_derive {
    interp_sandbox sandbox; /* NONE: base's */
    size_t memory_limit;    /* 0: base's */
    /* the context's own channel lookup (grants, core/ctx_names.c) and module extension ud;
     * NULL lookup / ud: base's */
    int (*chan_lookup)(void *ud, const char *name, size_t len, size_t capacity,
                       struct interp__account *acct, char *why, size_t whylen, interp_chan **out,
                       unsigned *rights);
    void *chan_lookup_ud;
    void (*module_ext)(lua_State *L, void *ud);
    void *module_ext_ud;
    const interp_host_lib *host_libs; /* added to base's (one of the same name replaces it) */
    size_t n_host_libs;
} interp_derive;

/* A context's configuration (core/ctx.c): base's (host libraries, on_state, package paths,
 * channels, print, budget, frozen space, message limits) changed by d, and no initializer.
 * Errors as interp__shared_new (a bad host library of d included). */
int interp__shared_derive(const interp_shared *base, const interp_derive *d, interp_shared **out,
                          char **err);
/* Compile src (len bytes) as sh's initializer in the opened state s of sh (once, before
 * interp__state_init(s)). Errors as interp__shared_compile. */
int interp__shared_compile_source(interp_shared *sh, const char *src, size_t len, interp_state *s,
                                  char **err);
/* A context's state after its initializer ran (once; it is never made again from sh): free
 * sh's copy of the initializer's bytecode and collect the state's start-up garbage (the
 * compiled and reloaded chunk, the initializer's temporaries), which an idle state would
 * otherwise keep resident until its next collection. */
void interp__state_settle(interp_shared *sh, interp_state *s);

/* Create a state and run the initializer in it, in two steps: state_open makes the state with
 * its library profile, then the host's package paths, host libraries and on_state (hostlib.c;
 * an error of those is INTERP_ERR_SCRIPT with its text, as an initializer's); state_init
 * (after interp__shared_compile) runs the initializer in it. On error (INTERP_ERR_NOMEM,
 * INTERP_ERR_SCRIPT for a failing initializer, ...) *err is a malloc'd text; a state whose
 * state_init failed must be destroyed. (tests/interp_one_step.h does both in one call.) */
int interp__state_open(interp_shared *sh, int worker_id, interp_state **out, char **err);
int interp__state_init(interp_state *s, char **err);
void interp__state_destroy(interp_state *s); /* NULL-safe; runs pending finalizers */

/* The outcome of one task. */
typedef struct interp_outcome {
    int status;              /* INTERP_OK; INTERP_ERR_SCRIPT (Lua error), INTERP_ERR_NOMEM
                                (memory limit), INTERP_ERR_TIMEOUT / _CANCELLED / _SHUTDOWN
                                (interrupted), INTERP_ERR_ENCODE (result cannot be copied),
                                INTERP_ERR_DECODE (arguments refused), INTERP_ERR_NOTFOUND (no
                                such global function) */
    interp_msg *result;      /* INTERP_OK: every return value (owned by the holder) */
    char *error;             /* otherwise: malloc'd "message\nstack traceback:\n..." */
    interp_msg *error_value; /* INTERP_ERR_SCRIPT with a non-string error object: that object
                                (NULL when it could not be copied) */
} interp_outcome;

/* Free what an outcome holds and zero it. */
void interp__outcome_clear(interp_outcome *o);

/* Internal kind of interp_fn: a global by name (as INTERP_FN_NAME) that must be a Lua
 * function of the state, not a C function nor a callable table: what a sandboxed state may
 * call in a context (core/ctx_lua_state.c), so that it runs only what the target's own Lua
 * code defines and never the target's library functions (load, require, ...). */
#define INTERP__FN_NAME_LUA ((interp_fn_kind)16)

/* Check fn (fn.c): INTERP_OK, or INTERP_ERR_INVALID with *why (may be NULL) a static text:
 * fn NULL, an unknown kind, a NULL text or message, or an empty name. Every layer that takes
 * an interp_fn checks it with this one rule. */
int interp__fn_check(const interp_fn *fn, const char **why);
/* Bytes interp__fn_copy needs for a checked fn (the name or chunk and a NUL, or the function
 * message and room to align it). */
size_t interp__fn_copy_size(const interp_fn *fn);
/* Copy a checked fn into *out, its text or message into `room` (interp__fn_copy_size bytes,
 * any alignment), so that *out lives as long as room and owes nothing to fn. */
void interp__fn_copy(interp_fn *out, const interp_fn *fn, void *room);

/* Run fn with the values of args (NULL: no arguments) as its arguments. task_id names this
 * run for interp__state_interrupt(); it must differ from the previous run's. Returns
 * out->status. Never raises; a memory error leaves the state usable (or marks it broken). */
int interp__state_call(interp_state *s, uint64_t task_id, const interp_fn *fn,
                       const interp_msg *args, interp_outcome *out);

/* A context's call (core/ctx.c), run as a coroutine of s in slices, so that a wait inside it
 * can park the context instead of blocking the thread (channels/park.h), and so that its time
 * slice can end in a yield. A slice returns INTERP__STEP_DONE (the call ended: *out filled as
 * by interp__state_call), INTERP__STEP_PARK (it waits: the state's park has `want` set; resume
 * it when the park fires) or INTERP__STEP_YIELD (its time slice ended: resume it later). *irq:
 * the reason of an interrupt that fired during the slice (0: none): for a call that did not
 * end, the caller must apply it again to the next slice (the slice's end forgets it). Each
 * slice is a run with its own task_id (interp__state_interrupt reaches it). args are read in
 * the first slice only. One call in progress per state. */
enum { INTERP__STEP_DONE = 0, INTERP__STEP_PARK = 1, INTERP__STEP_YIELD = 2 };
int interp__state_call_begin(interp_state *s, uint64_t task_id, const interp_fn *fn,
                             const interp_msg *args, interp_outcome *out, int *irq);
int interp__state_call_resume(interp_state *s, uint64_t task_id, interp_outcome *out, int *irq);
/* Any thread: the time slice of run task_id, a context's call running on s, is over while
 * other work waits: arm a count hook on the call's coroutine that yields it (INTERP__STEP_YIELD)
 * at its next instruction where Lua can yield (inside a C call boundary it tries again every
 * 1000 instructions, so the slice is extended, bounded by the call's deadline). No effect on
 * another run, on a run being interrupted, or when the coroutine has a hook of its own. */
void interp__state_preempt(interp_state *s, uint64_t task_id);
/* Drop the call in progress without running it further (its pending <close> handlers never
 * run; the park's registrations are dropped). No effect without one. */
void interp__state_call_drop(interp_state *s);
/* End the call in progress without running it further, but close its coroutine first: its
 * pending <close> handlers run on the calling thread (protected: their errors are dropped)
 * under an interrupt `reason` already in its grace (run id task_id: it must differ from the
 * state's other runs; 0: one is picked), so after the pool's cancel_grace every instruction
 * raises and a handler that loops cannot hold the thread. The caller holds the state (no
 * worker runs it). No effect without a call in progress. In a sandboxed state the handlers
 * do not run (interp__state_call_drop): a tenant's C paths that no hook reaches could hold
 * this thread, which no deadline can abandon. */
void interp__state_call_close(interp_state *s, uint64_t task_id, int reason);
/* Before the first call: the park through which s's waits park its calls (NULL: none). */
struct interp__park;
void interp__state_set_park(interp_state *s, struct interp__park *p);

/* Run fn once per argument message, in order, filling outs[i] (zeroed by the caller). Cheaper
 * per item than repeated calls (one protected region for many calls). An item's error does not
 * stop the others; an interrupt does: every item not yet run gets the interrupt's status.
 * Returns how many items ran: outs[0 .. ret) are the items' own outcomes (an item interrupted
 * while it ran included); outs[ret .. n) never started and carry a copy of the status that
 * stopped the run (an interrupt, a function that could not be resolved, a broken state), so a
 * caller may run them again. */
size_t interp__state_map(interp_state *s, uint64_t task_id, const interp_fn *fn, size_t n,
                         const interp_msg *const args[], interp_outcome outs[]);

/* interp__state_map where every item is a pack: args[i] holds one value per call, fn(value) is
 * called for each in turn (each a call of its own for the watchdog and the sandbox), and the
 * first result of each makes one value of outs[i].result, in order. When a call fails, the
 * pack ends there (the calls after it in the pack do not run): outs[i] has that call's status
 * and error, and outs[i].result holds one integer, the call's index in the pack (from 0), or
 * is NULL (then say the first). */
size_t interp__state_map_packed(interp_state *s, uint64_t task_id, const interp_fn *fn, size_t n,
                                const interp_msg *const args[], interp_outcome outs[]);

/* Any thread: stop run task_id with `reason` (INTERP_ERR_TIMEOUT, _CANCELLED or _SHUTDOWN) if
 * it is running on s, or as soon as it begins if it has not begun yet (the interrupt is
 * remembered for the next run if that run has this id; the most recent such interrupt is
 * kept). No effect on a run that has ended. Installs the count hook on the running Lua thread
 * and wakes a blocked sleep or channel wait. */
void interp__state_interrupt(interp_state *s, uint64_t task_id, int reason);

/* Any thread: while run task_id is interrupted and has not ended, install the hook again on
 * every Lua thread of s that may be running (a coroutine resumed just as the interrupt came,
 * or a hook the task removed or replaced with debug.sethook). The pool's watchdog calls it
 * every INTERP__IRQ_REARM_S seconds until the run ends. No effect otherwise. */
void interp__state_rearm(interp_state *s, uint64_t task_id);
#define INTERP__IRQ_REARM_S 0.02

/* Any thread: how many items (map items and calls) s has begun so far; grows by one as each
 * item starts. Lets a watchdog tell a new item from one item that runs long. */
uint64_t interp__state_items(const interp_state *s);

/* The owner thread, when the state has had nothing to run for a while: it lets go of memory
 * kept for the next tasks (result slabs beyond 2 MiB; they are kept again from its next big
 * map on). */
void interp__state_idle(interp_state *s);

/* The owner thread, before the first call: s is a context's (core/ctx.c): in the sandbox,
 * globals a call sets persist for the later calls (one environment instead of one per call),
 * and its channels (its host's grants) cannot be closed from Lua. */
void interp__state_set_persistent(interp_state *s);

/* Inside a C function called from L (a state of interp/): raise the interruption error if the
 * running call is cancelled, timed out or stopped by shutdown, as the hook would; returns
 * otherwise. For core/'s waits, which end early when the state's token fires. */
void interp__lua_check_interrupt(struct lua_State *L);

/* True when the state must be replaced (an error left it unusable, or it is the state of a
 * task that timed out inside a C call). */
bool interp__state_broken(const interp_state *s);

/* Any thread: bytes in use now and the peak, from the counting allocator. */
void interp__state_memory(const interp_state *s, size_t *in_use, size_t *peak);
/* The account that pays for what s makes the host hold (budget.h), or NULL (nothing counts). */
struct interp__account *interp__state_account(interp_state *s);

/* The raw Lua state, for tests and benchmarks only. */
struct lua_State *interp__state_lua(interp_state *s);

#endif
