/* lua_ctx.h - internal: what C code running inside a worker's lua_State needs to know about
 * its worker (cancellation token for blocking waits, message options, the named-channel lookup
 * of the pool).
 *
 * interp/ fills one per worker state and keeps a pointer to it in the state's extra space
 * (lua_getextraspace: a new coroutine gets a copy of its main thread's pointer), for its own
 * code. channels/'s Lua binding does not depend on the extra space: each channel object keeps
 * the context it was made with, and select and channel are closures over theirs. It reads the
 * extra space once, in interp__chan_lua_register, which only interp/ calls, in states it made.
 * A host script's state (plain lua5.4 with the lua/ module, or any program embedding Lua) never
 * has its extra space read or written by channels/ or lua/: Lua leaves the main thread's slot
 * uninitialised, a coroutine created before `require` copies whatever was there, and the
 * embedding program may use the slot for its own ends. */
#ifndef INTERP_LUA_CTX_H
#define INTERP_LUA_CTX_H

#include <lua.h>

#include "interp_chan.h"
#include "interp_msg_lua.h"
#include "sync.h"

struct interp__account;

typedef struct interp__lua_ctx {
    interp__cancel *cancel;   /* the worker's token; NULL in a state that has none */
    interp_msg_opts msg_opts; /* for values this state sends and receives */
    int worker_id;
    /* Find or create the pool's channel `name` (len bytes; capacity used only when creating;
     * 0: the default; a new channel's ring and name are charged to acct). On INTERP_OK *out
     * holds a new reference and *rights what this state may do with it (INTERP_CHAN_SEND |
     * INTERP_CHAN_RECV: a context's grant may give one); otherwise why (whylen bytes) may say
     * more. NULL when the state has no pool. */
    int (*chan_lookup)(void *ud, const char *name, size_t len, size_t capacity,
                       struct interp__account *acct, char *why, size_t whylen, interp_chan **out,
                       unsigned *rights);
    /* Who pays for what this state makes the host hold (budget.h); NULL: nobody counts. */
    struct interp__account *acct;
    void *chan_lookup_ud;
    /* A context's state (core/ctx.c): its waits park the call instead of blocking the thread
     * where they can (park.h). NULL: a pool worker's state (waits block). */
    struct interp__park *park;
    /* A sandboxed context's state: its channels are its host's grants, shared with others, so
     * ch:close() is refused (closing is the host's). */
    bool no_close;
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
 * released by its __gc). Methods: send, recv, close, len, __len. ctx is the context of L's
 * state (NULL: none: waits end only by timeout or close, values use the codec's default
 * options); the object keeps the pointer, so *ctx must outlive the object (and not change).
 * Raises on memory error (then nothing is retained). */
void interp__chan_push(lua_State *L, interp_chan *ch, const interp__lua_ctx *ctx);
/* channels/chan_lua.c: add `select` (interp.select) and `channel` (interp.channel, through
 * ctx->chan_lookup; raises in a state without one) to the table at the top of the stack, both
 * bound to ctx (NULL: none; same lifetime rule as interp__chan_push). Never touches the extra
 * space. */
void interp__chan_lua_register_ctx(lua_State *L, const interp__lua_ctx *ctx);
/* channels/chan_lua.c: for interp/'s worker states only, whose extra space holds the state's
 * context (set before this call): interp__chan_lua_register_ctx with that context, which it
 * also records in L's registry for interp__chan_lua_ctx. */
void interp__chan_lua_register(lua_State *L);
/* channels/chan_lua.c: only the recording half of interp__chan_lua_register (for a module
 * whose functions are made later: interp__chan_lua_register_ctx then). */
void interp__chan_lua_set_ctx(lua_State *L);
/* channels/chan_lua.c: the context interp__chan_lua_register recorded in L's state, or NULL
 * when it was never called there (a host script's state). Reads the registry only, never the
 * extra space: safe in any state. */
const interp__lua_ctx *interp__chan_lua_ctx(lua_State *L);

#endif
