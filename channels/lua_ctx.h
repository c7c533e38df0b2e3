/* lua_ctx.h - internal: what C code running inside a worker's lua_State needs to know about
 * its worker, reachable from any Lua thread of that state through the state's extra space
 * (lua_getextraspace: a new coroutine gets a copy of its main thread's pointer).
 *
 * interp/ fills one per state; channels/'s Lua binding reads it (cancellation token for
 * blocking waits, message options, the named-channel lookup of the pool). */
#ifndef INTERP_LUA_CTX_H
#define INTERP_LUA_CTX_H

#include <lua.h>

#include "interp_chan.h"
#include "interp_msg_lua.h"
#include "sync.h"

typedef struct interp__lua_ctx {
    interp__cancel *cancel;  /* the worker's token; NULL in a state that has none */
    interp_msg_opts msg_opts; /* for values this state sends and receives */
    int worker_id;
    /* Find or create the pool's channel `name` (capacity used only when creating; 0: the
     * default). On INTERP_OK *out holds a new reference. NULL when the state has no pool. */
    int (*chan_lookup)(void *ud, const char *name, size_t capacity, interp_chan **out);
    void *chan_lookup_ud;
} interp__lua_ctx;

static inline interp__lua_ctx *interp__lua_ctx_get(lua_State *L)
{
    return *(interp__lua_ctx **)lua_getextraspace(L);
}
static inline void interp__lua_ctx_set(lua_State *L, interp__lua_ctx *ctx)
{
    *(interp__lua_ctx **)lua_getextraspace(L) = ctx;
}

/* channels/chan_lua.c: push a Lua object for ch (a full userdata holding a new reference,
 * released by its __gc). Methods: send, recv, close, len, __len. Raises on memory error. */
void interp__chan_push(lua_State *L, interp_chan *ch);
/* channels/chan_lua.c: add `select` (interp.select) and `channel` (interp.channel, through
 * ctx->chan_lookup) to the table at the top of the stack. */
void interp__chan_lua_register(lua_State *L);

#endif
