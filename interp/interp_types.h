/* interp_types.h - public types that describe what a worker state runs and how it is built.
 * Included by interp_pool.h; a host never needs to include it directly. */
#ifndef INTERP_TYPES_H
#define INTERP_TYPES_H

#include <stddef.h>

#include "interp_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library profile of every worker state.
 * Every profile: print goes to the pool's sink (whole lines); os.exit raises an error instead
 *   of exiting the host; coroutine.resume/wrap/close are wrapped so that cancellation reaches
 *   the running coroutine; an xpcall message handler is not called once the task has been
 *   interrupted (Lua would run it with hooks off); the `interp` module is the global `interp`.
 * INTERP_SANDBOX_NONE: all standard libraries; globals persist from task to task on the same
 *   state (as module-level state persists in a Python executor's worker).
 * INTERP_SANDBOX_SAFE: for untrusted scripts. Opens only what it keeps: base functions
 *   (assert error getmetatable ipairs next pairs pcall print rawequal rawget rawlen rawset
 *   select setmetatable tonumber tostring type xpcall _G _VERSION) without dofile, loadfile,
 *   require and warn; collectgarbage("count") only; load of text chunks only (its default
 *   environment is the task's own); string without string.dump, its find/match/gmatch/gsub
 *   refusing patterns whose worst-case backtracking on the subject passes ~10^8.5 steps (a
 *   quantifier that ends the pattern is free; see interp/sandbox.c); table, math, utf8,
 *   coroutine; os.clock, os.time, os.date, os.difftime (and os.exit, which raises); the
 *   `interp` module. No io, debug, package. setmetatable refuses a metatable with __gc; rawset
 *   refuses the read-only tables. Library tables and the string metatable are read-only, and
 *   every task (by name or as source) runs in a fresh global environment over the globals,
 *   which the functions the initializer defined also see during that task, so one task's
 *   global writes never reach the next. Tables the initializer built are shared: changing
 *   their contents is seen by later tasks. Functions cannot arrive as bytecode. */
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
    const char *text;          /* NAME: NUL-terminated name; SOURCE: chunk text */
    size_t len;                /* SOURCE: chunk length (0: strlen(text)) */
    const interp_msg *function; /* FUNCTION: the message holding the function */
} interp_fn;

/* Receives every line a worker prints (without its newline), whole. May be called from any
 * worker thread, concurrently with itself for different workers. */
typedef void (*interp_print_fn)(void *ud, int worker_id, const char *line, size_t len);

#ifdef __cplusplus
}
#endif
#endif
