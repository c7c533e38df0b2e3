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
 * INTERP_SANDBOX_NONE: all standard libraries; globals persist from task to task on the same
 *   state (as module-level state persists in a Python executor's worker); `os.exit` raises an
 *   error instead of exiting the host.
 * INTERP_SANDBOX_SAFE: for untrusted scripts. Keeps: base functions without dofile, loadfile,
 *   collectgarbage (only "count"), load of text chunks only; string (no string.dump, patterns
 *   bounded), table, math, utf8, coroutine; os.clock, os.time, os.date, os.difftime; the
 *   `interp` module. No io, debug, package/require of files or C code. setmetatable refuses
 *   __gc. Library tables and the string metatable are read-only, and every task runs in a fresh
 *   global environment over them, so one task's globals never reach the next. Functions cannot
 *   arrive as bytecode. The exact list is in interp/sandbox.c and the README. */
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
