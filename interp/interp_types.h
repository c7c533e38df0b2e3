/* interp_types.h - public types that describe what a worker state runs and how it is built.
 * Included by interp_pool.h; a host never needs to include it directly. */
#ifndef INTERP_TYPES_H
#define INTERP_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "interp_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library profile of every worker state.
 * Every profile: print goes to the pool's sink (whole lines); os.exit raises an error instead
 *   of exiting the host; the `interp` module is the global `interp`. Everything else is Lua's
 *   own (coroutine.*, xpcall, debug.sethook): cancellation reaches coroutines without
 *   wrappers (interp/cancel.c). Only in an interrupted task: a struck coroutine yields where
 *   it can, an xpcall message handler is not called for the cancellation error (Lua would run
 *   it with hooks off), and a coroutine killed inside a C call boundary loses its pending
 *   <close> handlers (they could not be stopped).
 * INTERP_SANDBOX_NONE: all standard libraries; globals persist from task to task on the same
 *   state (as module-level state persists in a Python executor's worker).
 * INTERP_SANDBOX_SAFE: for untrusted scripts. Opens only what it keeps: base functions
 *   (assert error getmetatable ipairs next pairs pcall print rawequal rawget rawlen rawset
 *   select setmetatable tonumber tostring type xpcall _VERSION _G) without dofile, loadfile,
 *   require and warn; collectgarbage("count") only, counting what the running task holds (the
 *   heap now less the heap when it began); tostring, print and string.format's %s/%p show
 *   tables, functions, coroutines and userdata with a per-state counter, never an address;
 *   load of text chunks only, at most max_chunk_size bytes each (its default environment is
 *   the task's own); string without string.dump; table, math, utf8,
 *   coroutine; os.clock, os.time, os.date, os.difftime (and os.exit, which raises); the
 *   `interp` module (interp.channel creates channels of at most 65536 messages, names of 1 to
 *   256 bytes: their ring and name are host memory, charged to the state as below). No io,
 *   debug, package. setmetatable refuses a metatable with a (raw)
 *   __gc field; a __gc added to the metatable later marks nothing, so no finalizer ever runs.
 *   rawset refuses the read-only tables. Library tables and the string metatable are
 *   read-only, and every task (by name or as source) runs in a fresh global environment over
 *   the globals, which the functions the initializer defined also see during that task, so
 *   one task's global writes never reach the next (the real global table loses its _G once
 *   tasks run: the initializer sees _G, tasks see their own). Tables the initializer built
 *   are shared: changing their contents is seen by later tasks. math.random is reseeded at
 *   every task (no task can fix or read back another's numbers; it is no CSPRNG). Functions
 *   cannot arrive as bytecode.
 *   Bounded time: the cancellation hook counts Lua instructions and sees every call (in every
 *   profile), so a C loop calling anything back stops at its next callback; the library
 *   functions that loop in C look at the interrupt as they work: string.find/match/gmatch/
 *   gsub/rep and table.sort (interp/lib_string.c, lib_sort.c, in every profile), and in the
 *   sandbox table.insert/remove/move/concat (ranges from arguments or __len), load's reader
 *   and print's lines. Every other library loop is linear in memory the task owns
 *   (string.format/pack, utf8, table.unpack up to Lua's stack limit), so a memory limit bounds
 *   it. The parser cannot be interrupted: the sandbox compiles at most max_chunk_size bytes
 *   per chunk (load, source tasks).
 *   Bounded C stack: Lua stops C recursion at 200 levels whatever each costs; the sandbox's
 *   functions that call Lua back (string.format, print, gsub,
 *   table.concat/sort, load) raise "C stack overflow" when less than 96 KiB of the thread's
 *   stack remain, so recursion through them ends cleanly even on the pool's 256 KiB floor.
 *   Not closed, by design or out of reach of a library: (1) without a memory limit nothing
 *   bounds memory (string.rep alone builds 2 GiB); always set one for untrusted code. (2) Two
 *   C loops inside the Lua core depend on metatables, which stay mutable after setmetatable:
 *   a __call chain (`local t = {} setmetatable(t, {__call = t}) t()`) costs time quadratic
 *   in the Lua stack (up to minutes), and the garbage collector's ephemeron pass (weak-key
 *   tables whose values chain to other keys) is quadratic in the number of entries (16,000:
 *   0.7 s, 64,000 in 5 MB: 21 s, in one GC step), as is a rehash of integer keys that all
 *   collide. None can be interrupted; the pool's stuck_grace abandons such a worker (its
 *   thread, demoted to SCHED_IDLE, ends when the loop does; at most max_abandoned per pool)
 *   and a small memory limit bounds them. (3) Results and channel messages are copied outside
 *   the state's heap, and strings are not shared in a message (a 1 MiB string referenced 8
 *   times is an 8 MiB result): a sandboxed pool's default max_msg_size is therefore its
 *   memory limit. What the host holds for a task is charged (base/budget.h): messages it
 *   queued on channels and the channels it made count against its state's memory limit until
 *   they are received (or the pool goes), and with its results and errors against the pool's
 *   memory_budget. (4) interp.channel(name) creates a pool channel for any new name, living
 *   as long as the pool: a pool holds at most 4096 named channels.
 *   (5) In INTERP_SANDBOX_NONE nothing here applies: a looping __gc, debug.*, os.execute. */
typedef enum interp_sandbox {
    INTERP_SANDBOX_NONE = 0,
    INTERP_SANDBOX_SAFE = 1,
} interp_sandbox;

/* What a task calls. */
typedef enum interp_fn_kind {
    INTERP_FN_NAME = 0,     /* a global function of the worker state, by name (`text`) */
    INTERP_FN_SOURCE = 1,   /* a Lua chunk (`text`, `len` bytes) called with the arguments as
                               `...`; compiled once per state and cached */
    INTERP_FN_FUNCTION = 2, /* a Lua function copied as bytecode: `function` is a message holding
                               one function value (see interp_msg_lua.h); refused by sandboxed
                               states */
} interp_fn_kind;

typedef struct interp_fn {
    interp_fn_kind kind;
    const char *text;           /* NAME: NUL-terminated name; SOURCE: chunk text */
    size_t len;                 /* SOURCE: chunk length (0: strlen(text)) */
    const interp_msg *function; /* FUNCTION: the message holding the function */
} interp_fn;

struct lua_State;

/* A host library: C functions of the host, opened in every state the pool creates.
 *
 * `open` is a lua_CFunction (a luaopen_* function, the same a C module exports: it is called
 * with the name as its argument and returns one value, usually a table of functions). Every
 * state the pool ever makes (the first worker's, those of workers started on demand, recycled
 * states, replacements after a memory error or for an abandoned stuck worker) calls it once,
 * after the standard libraries and before the initializer, on the thread that owns the state
 * then (the thread calling interp_pool_create for the first worker, the worker's own thread
 * otherwise). Its value becomes the global `name` and what `require(name)` returns: in
 * INTERP_SANDBOX_NONE through package.loaded; in INTERP_SANDBOX_SAFE only if `sandbox` is true,
 * as a read-only proxy (a table value), reachable as the global and through the sandbox's own
 * `require`, which finds the allowed host libraries and nothing else (never package.cpath).
 * A library not allowed in the sandbox is not opened there at all.
 *
 * The contract of the C functions a host library gives to scripts:
 * - They run on worker threads, in several states at the same time: whatever host data they
 *   reach must be thread-safe (behind the host's own lock, or read-only while the pool
 *   lives). The safe pattern: an on_state callback (interp_pool_options) stores a light
 *   userdata pointing at the host's object in the registry (lua_rawsetp under a static key);
 *   the function reads it back (lua_rawgetp) and takes the object's mutex around every access;
 *   nothing else is shared between states (tests/test_hostlib.c shows it, under TSan).
 * - They may block. A deadline, cancel or shutdown_now reaches the task at the first Lua
 *   instruction after the function returns; a function that never returns is the stuck-worker
 *   case (the task is abandoned after stuck_grace and its worker replaced; its thread ends
 *   when the call does, so it must end eventually and must not touch memory the host frees
 *   after interp_pool_destroy).
 * - They must not keep the lua_State * (or any value of it) beyond the call: the state may be
 *   recycled or closed between two tasks, and is touched by one thread at a time.
 * - Errors: raise with lua_error/luaL_error as usual (the task fails with INTERP_ERR_SCRIPT).
 *   An error in `open` is an error of state creation: interp_pool_create fails with its text,
 *   or, for a state made later, the pool breaks with it (interp_pool_create's doc). */
typedef struct interp_host_lib {
    const char *name;                 /* global and require name, 1..INTERP_HOST_LIB_MAX_NAME
                                         (64) bytes, unique in the list, not a global the
                                         profile already has */
    int (*open)(struct lua_State *L); /* its luaopen function (a lua_CFunction) */
    bool sandbox;                     /* also opened in INTERP_SANDBOX_SAFE states */
} interp_host_lib;

/* Called in every new state after its libraries and host libraries are open and before the
 * initializer (the same states, thread and moment as interp_host_lib's open), for a host that
 * needs more than a library: registry values, a light userdata to its engine object, globals.
 * It runs inside a protected call: report a failure by raising a Lua error (luaL_error); its
 * text becomes the error of interp_pool_create (INTERP_ERR_SCRIPT) or, in a state made later,
 * the reason the pool is broken. Must not keep L (see interp_host_lib). Runs concurrently with
 * itself for different workers: ud must be safe to read from several threads. */
typedef void (*interp_state_fn)(struct lua_State *L, void *ud);

/* Receives every line a worker prints (without its newline), whole. May be called from any
 * worker thread, concurrently with itself for different workers, and from the thread calling
 * interp_pool_create while the first worker's initializer runs there. */
typedef void (*interp_print_fn)(void *ud, int worker_id, const char *line, size_t len);

#ifdef __cplusplus
}
#endif
#endif
