/* lm.h - internal to lua/: the pieces of the `require "interp_pool"` module shared between its
 * files. The module is a thin binding over the public API (interp_pool.h, interp_ctx.h,
 * interp_msg_lua.h, interp_chan_lua.h); it knows nothing of the library's internals.
 *
 * Every function here runs on the host script's thread, inside a lua_CFunction (so it may
 * raise Lua errors). A function that holds C memory never raises while it holds it: it either
 * frees first or parks the memory in a userdata whose __gc frees it. */
#ifndef INTERP_LM_H
#define INTERP_LM_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>

#include "interp_chan_lua.h"
#include "interp_msg_lua.h"
#include "interp_pool.h"

#define LM_POOL_MT "interp_pool.pool"
#define LM_FUTURE_MT "interp_pool.future"
#define LM_ASCOMPLETED_MT "interp_pool.as_completed"
#define LM_BOX_MT "interp_pool.box"
#define LM_FNCACHE "interp_pool.fncache" /* registry: function -> box of its copy */

/* Message options of the host script's state: functions may travel both ways (the host is a
 * full Lua state of the user's own process); depth and size take the codec's defaults. */
extern const interp_msg_opts interp__lm_msg_opts;
/* For what comes back from a sandboxed pool, whose code is not trusted: no functions (Lua does
 * not verify bytecode). */
extern const interp_msg_opts interp__lm_msg_opts_untrusted;

/* ---- module.c: shared helpers --------------------------------------------------------- */

/* Create the metatable `name` with the metamethods `meta` and, when `methods` is not NULL,
 * an __index table of them; __metatable answers the name, so a script cannot reach __gc and
 * free what a running method still reads. Leaves the stack as it was. */
void interp__lm_register_class(lua_State *L, const char *name, const luaL_Reg *meta,
                               const luaL_Reg *methods);

/* t[k] = v for the table at the top of the stack (stats tables). */
static inline void interp__lm_set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* Raise "<where>: <interp_strerror(status)>". Never returns. */
int interp__lm_status_error(lua_State *L, const char *where, int status);

/* Push the malloc'd NUL-terminated `text` as a Lua string and free it, without leaking it
 * when pushing raises a memory error (the push runs protected; the error is re-raised after
 * the free). text NULL pushes `fallback`. */
void interp__lm_push_owned(lua_State *L, char *text, const char *fallback);

/* The optional timeout argument at idx: nil or none -> INTERP_FOREVER; otherwise a number
 * >= 0 (seconds). Raises on anything else (negative, NaN, not a number). */
double interp__lm_opt_timeout(lua_State *L, int idx, const char *where);

/* Read the task function argument at idx: a string names a global function of the workers
 * (fn->text borrows it); a Lua function is copied as bytecode, once: the copy is cached
 * weakly by the function when its only upvalue is the globals, else parked in a box left on
 * the stack ([-0, +0 or +1]); fn->function is valid while the function is alive and this C
 * call runs. Raises with a clear text for other values, C functions, functions with upvalues
 * other than _ENV, and functions sent to a sandboxed pool. */
void interp__lm_check_fn(lua_State *L, int idx, const char *where, bool sandboxed, interp_fn *fn);

/* Encode the values at first..first+count-1 into *out (NULL when count is 0). Raises
 * "<where>: <what>: <codec's reason>" on failure, with nothing allocated. */
void interp__lm_encode(lua_State *L, int first, int count, const char *where, const char *what,
                       interp_msg **out);

/* A box of C memory owned by a userdata, so that a Lua error cannot leak it: `nmsgs` message
 * slots and `ntexts` malloc'd text slots, all NULL at first; __gc frees whatever the slots
 * still hold (set a slot to NULL when its content is handed over). Pushes the box. */
typedef struct lm_box {
    size_t nmsgs, ntexts;
    interp_msg **msgs;
    char **texts;
} lm_box;
lm_box *interp__lm_box_new(lua_State *L, size_t nmsgs, size_t ntexts);
/* Free what the slots hold now (the box stays usable, every slot NULL). */
void interp__lm_box_clear(lm_box *b);

/* ---- pool_lua.c ----------------------------------------------------------------------- */

/* The channel or grant name at idx, and a channel's capacity (0: the default), checked by
 * interp_chan_check; raises "<where>: <its reason>" otherwise. */
const char *interp__lm_check_chan(lua_State *L, int idx, const char *where, size_t capacity);

/* Push a channel object for ch (interp_chan_push_lua) and drop the caller's reference to ch,
 * also when making the object fails (then the memory error is raised). Returns 1. */
int interp__lm_push_chan(lua_State *L, interp_chan *ch);

/* ip.new{...}: create a pool object. */
int interp__lm_pool_new(lua_State *L);
/* Create the pool metatable. */
void interp__lm_pool_register(lua_State *L);
/* pool:imap (imap_lua.c), added to the pool's methods; `now` is ip.now. */
void interp__lm_imap_register(lua_State *L, lua_CFunction now);

/* ---- ctx_lua.c ------------------------------------------------------------------------ */

struct interp_ctx_options;
/* Push a new context object of pool (whose object is at pool_idx: kept alive by it), created
 * with o; sandboxed: the pool's sandbox. Raises "pool:context: <reason>" on failure. */
int interp__lm_ctx_new(lua_State *L, int pool_idx, interp_pool *pool,
                       const struct interp_ctx_options *o, bool sandboxed);
void interp__lm_ctx_register(lua_State *L);
/* ip.channel([capacity]) -> a channel of no pool and no name: reached only by the objects
 * holding it (ctx:grant gives it to a context). */
int interp__lm_channel_new(lua_State *L);

/* ---- future_lua.c --------------------------------------------------------------------- */

typedef struct lm_future {
    interp_future *f;            /* one reference, released by __gc; NULL until submit succeeds */
    const interp_msg_opts *opts; /* to decode its results: the untrusted ones for a sandbox */
} lm_future;

/* Push a new future object with f == NULL (the caller fills it once the submit succeeded, so
 * that a memory error while pushing can never leak a future). */
lm_future *interp__lm_future_new(lua_State *L);
/* The future object at idx, or NULL when the value is not one. */
lm_future *interp__lm_future_test(lua_State *L, int idx);
/* Create the future metatable. */
void interp__lm_future_register(lua_State *L);

/* ---- wait_lua.c ----------------------------------------------------------------------- */

int interp__lm_wait(lua_State *L);         /* ip.wait(futs, mode [, timeout]) */
int interp__lm_as_completed(lua_State *L); /* ip.as_completed(futs [, timeout]) */
void interp__lm_wait_register(lua_State *L);

#endif
