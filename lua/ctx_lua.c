/* ctx_lua.c - the context object of the Lua module (interp_ctx.h): pool:context{...} ->
 * ctx with ctx:call(f, ...), ctx:exec(src), ctx:post(f, ...), ctx:grant(name, obj),
 * ctx:grant_shared(name [, pool_name [, rights]]),
 * ctx:stats(), ctx:name(), ctx:close() (also <close> and __gc). A context object keeps its
 * pool object alive; its futures keep it alive. ip.channel(): a channel with no name. */
#include <stdlib.h>
#include <string.h>

#include "interp_ctx.h"
#include "lm.h"

#define LM_CTX_MT "interp_pool.context"

typedef struct lm_ctx {
    interp_ctx *ctx; /* NULL once closed */
    bool sandboxed;  /* functions as bytecode are refused; results decoded as untrusted */
} lm_ctx;

int interp__lm_ctx_new(lua_State *L, int pool_idx, interp_pool *pool, const interp_ctx_options *o,
                       bool sandboxed)
{
    pool_idx = lua_absindex(L, pool_idx);
    lm_ctx *c = lua_newuserdatauv(L, sizeof *c, 1);
    c->ctx = NULL;
    c->sandboxed = sandboxed || o->sandbox == INTERP_SANDBOX_SAFE;
    luaL_setmetatable(L, LM_CTX_MT);
    lua_pushvalue(L, pool_idx);
    lua_setiuservalue(L, -2, 1); /* the pool object lives as long as the context object */
    char *err = NULL;
    int rc = interp_ctx_create(pool, o, &c->ctx, &err);
    if (rc != INTERP_OK) {
        c->ctx = NULL;
        interp__lm_push_owned(L, err, interp_strerror(rc));
        return luaL_error(L, "pool:context: %s", lua_tostring(L, -1));
    }
    return 1;
}

static lm_ctx *check_open(lua_State *L, const char *where)
{
    lm_ctx *c = luaL_checkudata(L, 1, LM_CTX_MT);
    if (!c->ctx)
        luaL_error(L, "%s: the context is closed", where);
    return c;
}

/* Queue a call of the function at 2 with the values from 3 on; post: no future. */
static int queue_call(lua_State *L, const char *where, bool post)
{
    lm_ctx *c = check_open(L, where);
    int nargs = lua_gettop(L) - 2;
    if (nargs < 0)
        return luaL_error(L, "%s: expected a function or a function name", where);
    interp_fn fn;
    interp__lm_check_fn(L, 2, where, c->sandboxed, &fn);
    lm_future *lf = NULL;
    if (!post) {
        lf = interp__lm_future_new(L);
        if (c->sandboxed)
            lf->opts = &interp__lm_msg_opts_untrusted;
        lua_pushvalue(L, 1); /* a future keeps its context object alive */
        lua_setiuservalue(L, -2, 1);
    }
    interp_msg *args = NULL;
    interp__lm_encode(L, 3, nargs, where, "the arguments", &args);
    if (!c->ctx) { /* a finalizer run by the encode closed it */
        interp_msg_free(args);
        return luaL_error(L, "%s: the context is closed", where);
    }
    interp_task task = {.fn = fn, .args = args};
    int rc = post ? interp_ctx_post(c->ctx, &task) : interp_ctx_call_task(c->ctx, &task, &lf->f);
    if (rc != INTERP_OK) {
        if (lf)
            lf->f = NULL;
        interp_msg_free(args); /* refused: still ours */
        return interp__lm_status_error(L, where, rc);
    }
    if (post)
        lua_pushboolean(L, 1);
    return 1;
}

static int ctx_call(lua_State *L) { return queue_call(L, "ctx:call", false); }
static int ctx_post(lua_State *L) { return queue_call(L, "ctx:post", true); }

/* ctx:exec(src) -> future */
static int ctx_exec(lua_State *L)
{
    const char *where = "ctx:exec";
    lm_ctx *c = check_open(L, where);
    size_t len;
    const char *src = luaL_checklstring(L, 2, &len);
    if (len == 0)
        src = " "; /* an empty chunk: length 0 would mean strlen */
    lm_future *lf = interp__lm_future_new(L);
    if (c->sandboxed)
        lf->opts = &interp__lm_msg_opts_untrusted;
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    int rc = interp_ctx_exec(c->ctx, src, len ? len : 1, &lf->f);
    if (rc != INTERP_OK) {
        lf->f = NULL;
        return interp__lm_status_error(L, where, rc);
    }
    return 1;
}

/* ctx:grant(name, obj [, rights]): obj (a context object of the same pool, or a channel
 * object) becomes reachable in ctx under name: interp.context(name) / interp.channel(name)
 * there. The only way a sandboxed context reaches anything. A channel's rights: "send",
 * "recv" or "both" (the default). Returns ctx. */
static int ctx_grant(lua_State *L)
{
    const char *where = "ctx:grant";
    lm_ctx *c = check_open(L, where);
    const char *name = interp__lm_check_chan(L, 2, where, 0);
    int rc;
    lm_ctx *other = luaL_testudata(L, 3, LM_CTX_MT);
    interp_chan *ch = interp_chan_test_lua(L, 3);
    if (other) {
        if (!other->ctx)
            return luaL_error(L, "%s: the context to grant is closed", where);
        rc = interp_ctx_grant_context(c->ctx, name, other->ctx);
        if (rc == INTERP_ERR_INVALID)
            return luaL_error(L, "%s: the context to grant belongs to another pool", where);
    } else if (ch) {
        static const char *const names[] = {"send", "recv", "both", NULL};
        static const unsigned rights[] = {INTERP_CHAN_SEND, INTERP_CHAN_RECV, INTERP_CHAN_SENDRECV};
        int r = luaL_checkoption(L, 4, "both", names);
        rc = interp_ctx_grant_channel_rights(c->ctx, name, ch, rights[r]);
    } else {
        return luaL_error(L, "%s: expected a context or a channel object, got %s", where,
                          luaL_typename(L, 3));
    }
    if (rc != INTERP_OK)
        return interp__lm_status_error(L, where, rc);
    lua_settop(L, 1);
    return 1;
}

/* ctx:grant_shared(name [, pool_name [, rights]]): the pool's shared value pool_name (default:
 * name) becomes interp.shared(name) in ctx; rights "r" (read, the default), "w" (register) or
 * "rw". Returns ctx. */
static int ctx_grant_shared(lua_State *L)
{
    static const char *const modes[] = {"r", "w", "rw", NULL};
    const char *where = "ctx:grant_shared";
    lm_ctx *c = check_open(L, where);
    const char *name = luaL_checkstring(L, 2);
    const char *pool_name = luaL_optstring(L, 3, name);
    unsigned rights = (unsigned)luaL_checkoption(L, 4, "r", modes) + 1;
    int rc = interp_ctx_grant_shared(c->ctx, name, pool_name, rights);
    if (rc == INTERP_ERR_INVALID)
        return luaL_error(L, "%s: the names must be strings of 1 to %d bytes", where,
                          INTERP_SHARED_MAX_NAME);
    if (rc != INTERP_OK)
        return interp__lm_status_error(L, where, rc);
    lua_settop(L, 1);
    return 1;
}

static int ctx_name(lua_State *L)
{
    lua_pushstring(L, interp_ctx_name(check_open(L, "ctx:name")->ctx));
    return 1;
}

int interp__lm_channel_new(lua_State *L)
{
    size_t cap = (size_t)luaL_optinteger(L, 1, 0); /* negative: past the bound */
    const char *why;
    if (interp_chan_check(NULL, 0, cap, &why) != INTERP_OK)
        return luaL_error(L, "ip.channel: %s", why);
    interp_chan *ch = NULL;
    int rc = interp_chan_create(cap ? cap : 64, 0, &ch);
    if (rc != INTERP_OK)
        return interp__lm_status_error(L, "ip.channel", rc);
    return interp__lm_push_chan(L, ch);
}

/* ctx:stats() -> {calls, done, failed, posts_failed, queued, memory, memory_peak, broken} */
static int ctx_stats(lua_State *L)
{
    lm_ctx *c = check_open(L, "ctx:stats");
    interp_ctx_stats st;
    int rc = interp_ctx_stats_get(c->ctx, &st);
    if (rc != INTERP_OK)
        return interp__lm_status_error(L, "ctx:stats", rc);
    lua_createtable(L, 0, 8);
    interp__lm_set_int(L, "calls", (lua_Integer)st.calls);
    interp__lm_set_int(L, "done", (lua_Integer)st.done);
    interp__lm_set_int(L, "failed", (lua_Integer)st.failed);
    interp__lm_set_int(L, "posts_failed", (lua_Integer)st.posts_failed);
    interp__lm_set_int(L, "queued", (lua_Integer)st.queued);
    interp__lm_set_int(L, "memory", (lua_Integer)st.memory_in_use);
    interp__lm_set_int(L, "memory_peak", (lua_Integer)st.memory_peak);
    lua_pushboolean(L, st.broken);
    lua_setfield(L, -2, "broken");
    return 1;
}

/* ctx:close(), __close, __gc: pending calls end cancelled, a running one is interrupted.
 * Idempotent. */
static int ctx_close(lua_State *L)
{
    lm_ctx *c = luaL_checkudata(L, 1, LM_CTX_MT);
    interp_ctx *ctx = c->ctx;
    c->ctx = NULL;
    interp_ctx_close(ctx);
    return 0;
}

static int ctx_tostring(lua_State *L)
{
    lm_ctx *c = luaL_checkudata(L, 1, LM_CTX_MT);
    if (c->ctx)
        lua_pushfstring(L, "interp_pool.context '%s' (%p)", interp_ctx_name(c->ctx), (void *)c);
    else
        lua_pushfstring(L, "interp_pool.context (closed)");
    return 1;
}

static const luaL_Reg ctx_methods[] = {
    {"call", ctx_call},
    {"post", ctx_post},
    {"exec", ctx_exec},
    {"grant", ctx_grant},
    {"grant_shared", ctx_grant_shared},
    {"stats", ctx_stats},
    {"name", ctx_name},
    {"close", ctx_close},
    {NULL, NULL},
};

static const luaL_Reg ctx_meta[] = {
    {"__gc", ctx_close},
    {"__close", ctx_close},
    {"__tostring", ctx_tostring},
    {NULL, NULL},
};

void interp__lm_ctx_register(lua_State *L)
{
    interp__lm_register_class(L, LM_CTX_MT, ctx_meta, ctx_methods);
}
