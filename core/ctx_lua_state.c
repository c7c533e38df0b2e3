/* ctx_lua_state.c - contexts as Lua code inside the pool's states sees them:
 *   interp.context(name) -> handle, or nil and why (ctx_names.c: who may reach whom)
 *   interp.self()        -> the handle of the context this state belongs to; nil in a task
 *   h:call(f, ...)       -> future      f: a global function's name of the target, or (full
 *   h:exec(src)          -> future         profile) a Lua function copied as bytecode
 *   h:post(f, ...)       -> true        fire and forget (failures counted in the target)
 *   h:name()             -> its name ("" when none)
 *   fut:result([timeout]) -> the call's values; raises its error (a Lua error value as it
 *                            was raised, else a text naming the failure), or on timeout
 *   fut:wait([timeout])  -> true once ended, false at the timeout
 *   fut:done(), fut:cancel() -> booleans
 * Timeouts in seconds; absent or nil: no limit. Every wait is interp__lua_wait_future: the
 * run's cancel, deadline and shutdown end it (the interruption error is raised). Values
 * cross as messages with the calling state's options (no functions from or to a sandbox).
 *
 * A handle holds one reference to the context's struct (not its state: closing the context
 * frees the state; calls on a closed context fail). Handles and futures cannot leave their
 * state (userdata do not cross as messages). */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core_impl.h"
#include "lua_ctx.h"
#include "park.h"

#define HANDLE_MT "interp.context"
#define FUTURE_MT "interp.context_future"

typedef struct handle_ud {
    interp_ctx *ctx;   /* retained; NULL after __gc */
    bool from_sandbox; /* held by a sandboxed state: it calls the target's Lua functions only */
} handle_ud;

typedef struct future_ud {
    interp_future *f; /* retained; NULL until the call is queued, and after __gc */
} future_ud;

static const interp__lua_ctx *lctx_of(lua_State *L) { return interp__lua_ctx_get(L); }

/* Set the metatable `name` on the value at the top, made at its first use in this state (a
 * state that never reaches a context pays nothing for them). */
static void set_class(lua_State *L, const char *name);

/* ---- the wait ----------------------------------------------------------------------------- */

/* The blocking wait (where a call cannot park, and for tasks): see wait_parked below. */
int interp__lua_wait_future(lua_State *L, interp__cancel *tok, interp_future *f, double timeout)
{
    (void)L;
    return interp__future_wait_tok(f, timeout, tok);
}

static bool ended(interp_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) == INTERP__F_ENDED;
}

/* ---- handles ------------------------------------------------------------------------------ */

static void push_handle(lua_State *L, interp_ctx *ctx, bool from_sandbox)
{
    handle_ud *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->ctx = NULL;
    h->from_sandbox = from_sandbox;
    set_class(L, HANDLE_MT);
    interp__ctx_retain(ctx);
    h->ctx = ctx;
}

/* The userdata at 1 when its metatable is the class a method was made with (its upvalue 1):
 * no lookup of the class by name on every call. Else luaL_checkudata says what is wrong. */
static void *check_class(lua_State *L, const char *name)
{
    void *p = lua_touserdata(L, 1);
    if (p && lua_getmetatable(L, 1)) {
        bool same = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
        if (same)
            return p;
    }
    return luaL_checkudata(L, 1, name);
}

static handle_ud *check_handle(lua_State *L)
{
    handle_ud *h = check_class(L, HANDLE_MT);
    if (!h->ctx)
        luaL_argerror(L, 1, "context handle already released");
    return h;
}

static double opt_timeout(lua_State *L, int idx, const char *where)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    lua_Number t = luaL_checknumber(L, idx);
    if (!(t >= 0))
        luaL_error(L, "%s: the timeout must be a number of seconds >= 0", where);
    return t;
}

static int queue_failed(lua_State *L, const char *where, interp_ctx *ctx, int rc)
{
    if (rc == INTERP_ERR_CANCELLED)
        return luaL_error(L, "%s: the context '%s' is closed", where, interp_ctx_name(ctx));
    return luaL_error(L, "%s: %s", where, interp_strerror(rc));
}

/* The function h:call / h:post names at index 2 (a global's name, or a function copied as
 * bytecode: the message returned, the caller's to free) into *fn. Raises when it cannot be. */
static interp_msg *called_fn(lua_State *L, const handle_ud *h, const char *where, interp_fn *fn)
{
    const interp__lua_ctx *lc = lctx_of(L);
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t len;
        const char *name = lua_tolstring(L, 2, &len);
        if (len == 0 || strlen(name) != len)
            luaL_error(L, "%s: the function name must be a non-empty string without NUL bytes",
                       where);
        /* a sandbox calls the target's own Lua functions, never its library's */
        fn->kind = h->from_sandbox ? INTERP__FN_NAME_LUA : INTERP_FN_NAME;
        fn->text = name;
        return NULL;
    }
    if (lua_type(L, 2) != LUA_TFUNCTION)
        luaL_error(L,
                   "%s: expected the name of a global function of the context or a function, "
                   "got %s",
                   where, luaL_typename(L, 2));
    if (!lc->msg_opts.allow_functions)
        luaL_error(L,
                   "%s: a sandboxed state cannot send functions; pass the name of a global "
                   "function of the context",
                   where);
    interp_msg *fnmsg = NULL;
    interp_msg_error me;
    if (interp_msg_from_lua(L, 2, 1, &lc->msg_opts, &fnmsg, &me) != INTERP_OK)
        luaL_error(L, "%s: cannot copy the function: %s", where, me.text);
    fn->kind = INTERP_FN_FUNCTION;
    fn->function = fnmsg;
    return fnmsg;
}

/* h:call / h:post / h:exec. kind: 0 call, 1 post, 2 exec. */
static int queue_call(lua_State *L, int kind)
{
    static const char *const wheres[] = {"context:call", "context:post", "context:exec"};
    const char *where = wheres[kind];
    handle_ud *h = check_handle(L);
    const interp__lua_ctx *lc = lctx_of(L);
    interp_task task;
    memset(&task, 0, sizeof task);
    int nargs = lua_gettop(L) - 2;
    if (nargs < 0)
        return luaL_error(L, "%s: expected a function or a function name", where);
    future_ud *fu = NULL;
    if (kind != 1) { /* made before anything is allocated: a memory error leaks nothing */
        fu = lua_newuserdatauv(L, sizeof *fu, 0);
        fu->f = NULL;
        set_class(L, FUTURE_MT);
    }
    interp_msg *fnmsg = NULL;
    if (kind == 2 && h->from_sandbox) /* code of its choosing would run with the target's rights */
        return luaL_error(L,
                          "%s: a sandboxed state cannot send code to a context; call one of "
                          "its global functions by name",
                          where);
    if (kind == 2) {
        size_t len;
        task.fn.kind = INTERP_FN_SOURCE;
        task.fn.text = luaL_checklstring(L, 2, &len);
        task.fn.len = len ? len : 1; /* 0 would mean strlen */
        if (!len)
            task.fn.text = " ";
        nargs = 0;
    } else {
        fnmsg = called_fn(L, h, where, &task.fn);
    }
    interp_msg *args = NULL;
    if (nargs > 0) {
        interp_msg_error me;
        int rc = interp_msg_from_lua(L, 3, nargs, &lc->msg_opts, &args, &me);
        if (rc != INTERP_OK) {
            interp_msg_free(fnmsg);
            return luaL_error(L, "%s: the arguments: %s", where, me.text);
        }
    }
    task.args = args;
    char why[256] = "";
    /* the caller pays for what it queues (its limit, the pool's budget): a plugin cannot make
     * the host hold calls without bound */
    int rc = interp__ctx_call_paid(h->ctx, &task, kind == 1, kind == 1 ? NULL : &fu->f, lc->acct,
                                   why, sizeof why);
    interp_msg_free(fnmsg); /* the future holds its own copy */
    if (rc != INTERP_OK) {
        interp_msg_free(args); /* refused: still ours */
        if (rc == INTERP_ERR_NOMEM && why[0])
            return luaL_error(L, "%s: %s", where, why);
        return queue_failed(L, where, h->ctx, rc);
    }
    if (kind == 1)
        lua_pushboolean(L, 1);
    return 1;
}

static int h_call(lua_State *L) { return queue_call(L, 0); }
static int h_post(lua_State *L) { return queue_call(L, 1); }
static int h_exec(lua_State *L) { return queue_call(L, 2); }

static int h_name(lua_State *L)
{
    lua_pushstring(L, interp_ctx_name(check_handle(L)->ctx));
    return 1;
}

static int h_gc(lua_State *L)
{
    handle_ud *h = luaL_checkudata(L, 1, HANDLE_MT);
    interp_ctx *ctx = h->ctx;
    h->ctx = NULL;
    if (ctx)
        interp__ctx_release(ctx);
    return 0;
}

static int h_eq(lua_State *L)
{
    handle_ud *a = luaL_testudata(L, 1, HANDLE_MT), *b = luaL_testudata(L, 2, HANDLE_MT);
    lua_pushboolean(L, a && b && a->ctx == b->ctx);
    return 1;
}

static int h_tostring(lua_State *L)
{
    handle_ud *h = luaL_checkudata(L, 1, HANDLE_MT);
    lua_pushfstring(L, "context '%s'", h->ctx ? interp_ctx_name(h->ctx) : "(released)");
    return 1;
}

/* ---- futures ------------------------------------------------------------------------------ */

static interp_future *check_future(lua_State *L)
{
    future_ud *fu = check_class(L, FUTURE_MT);
    if (!fu->f)
        luaL_argerror(L, 1, "future already released");
    return fu->f;
}

/* ---- parked waits (channels/park.h) --------------------------------------------------
 * A context's call waiting for a future lets go of its thread where it can park: its park
 * watches the future (a watcher whose fire fires the park) and the call yields; resumed, the
 * op (result or wait) starts again from its arguments, which are still on the stack. Before
 * it waits, the wait is recorded in the contexts' wait-for graph: a call that would wait for
 * a context waiting (directly or not) for its own raises instead of deadlocking. */

typedef struct park_watch {
    interp__watcher w; /* only its park is used */
    interp__watch_node node;
    interp_future *f; /* retained */
} park_watch;

static void park_watch_drop(void *arg)
{
    park_watch *pw = arg;
    interp__unwatch(&pw->node);
    interp_future_release(pw->f);
    free(pw);
}

static double until_of(double timeout) { return timeout < 0 ? INFINITY : interp__now() + timeout; }

/* Wait for f until `until`; where the calling context's call may park, park (and do not
 * return: k starts the op again, with resumed true). INTERP_OK (ended), INTERP_ERR_TIMEOUT,
 * or the run's interrupt. */
static int wait_parked(lua_State *L, interp_future *f, double timeout, bool resumed,
                       lua_KFunction k)
{
    const interp__lua_ctx *lc = lctx_of(L);
    interp__park *p = lc->park;
    interp_ctx *self = p ? interp__ctx_of_park(p) : NULL;
    double until;
    if (resumed) {
        until = p->until;
        interp__park_resumed(p);
    } else {
        if (ended(f) || timeout == 0)
            return ended(f) ? INTERP_OK : INTERP_ERR_TIMEOUT;
        if (self && f->ctx && interp__ctx_wait_begin(self, f->ctx) != INTERP_OK)
            return luaL_error(L,
                              "context call: waiting for context '%s' would never end: it "
                              "waits, directly or through others, for this call's context "
                              "'%s'",
                              interp_ctx_name(f->ctx), interp_ctx_name(self));
        until = until_of(timeout);
    }
    int rc;
    for (;;) {
        int reason = lc->cancel ? interp__cancel_reason(lc->cancel) : 0;
        double now = interp__now();
        if (ended(f) || reason || now >= until) {
            rc = ended(f) ? INTERP_OK : reason ? reason : INTERP_ERR_TIMEOUT;
            break;
        }
        park_watch *pw = interp__park_can(p, L) ? malloc(sizeof *pw) : NULL;
        if (!pw) { /* it cannot park here: block, bounded by the run's interrupt */
            rc = interp__lua_wait_future(L, lc->cancel, f,
                                         until == INFINITY ? INTERP_FOREVER : until - now);
            break;
        }
        memset(&pw->w, 0, sizeof pw->w);
        pw->w.park = p;
        interp_future_retain(f);
        pw->f = f;
        interp__watch(&pw->w, &pw->node, f);
        if (ended(f)) { /* fired already */
            park_watch_drop(pw);
            continue;
        }
        return interp__park_yield(L, p, until, park_watch_drop, pw, 0, k);
    }
    if (self && f->ctx)
        interp__ctx_wait_end(self);
    return rc;
}

/* Wait as the call asked; raise an interruption of the running call. */
static int wait_for(lua_State *L, interp_future *f, double timeout, bool resumed, lua_KFunction k)
{
    int rc = wait_parked(L, f, timeout, resumed, k);
    if (rc != INTERP_OK && rc != INTERP_ERR_TIMEOUT) {
        interp__lua_check_interrupt(L);
        return luaL_error(L, "context call: the wait ended: %s", interp_strerror(rc));
    }
    return rc;
}

static int f_result_go(lua_State *L, bool resumed);

static int f_result_k(lua_State *L, int status, lua_KContext kc)
{
    (void)status;
    (void)kc;
    return f_result_go(L, true);
}

static int f_result(lua_State *L) { return f_result_go(L, false); }

static int f_result_go(lua_State *L, bool resumed)
{
    interp_future *f = check_future(L);
    double timeout = opt_timeout(L, 2, "future:result");
    if (wait_for(L, f, timeout, resumed, f_result_k) == INTERP_ERR_TIMEOUT)
        return luaL_error(L, "future:result: timed out after %f s waiting for the context call",
                          timeout);
    const interp__lua_ctx *lc = lctx_of(L);
    const interp_msg *res = NULL;
    int status = interp_future_result(f, 0, &res);
    lua_settop(L, 1);
    if (status == INTERP_OK)
        return res ? interp_msg_push_lua(L, res, &lc->msg_opts) : 0;
    const interp_msg *ev = interp_future_error_value(f);
    if (status == INTERP_ERR_SCRIPT && ev && interp_msg_count(ev) > 0) {
        interp_msg_push_lua(L, ev, &lc->msg_opts);
        lua_settop(L, 2);
        return lua_error(L);
    }
    const char *text = interp_future_error(f);
    if (status == INTERP_ERR_SCRIPT && text)
        lua_pushstring(L, text);
    else
        lua_pushfstring(L, "context call failed (%s)%s%s", interp_strerror(status),
                        text ? ": " : "", text ? text : "");
    return lua_error(L);
}

static int f_wait_k(lua_State *L, int status, lua_KContext kc);

static int f_wait_go(lua_State *L, bool resumed)
{
    interp_future *f = check_future(L);
    int rc = wait_for(L, f, opt_timeout(L, 2, "future:wait"), resumed, f_wait_k);
    lua_pushboolean(L, rc == INTERP_OK);
    return 1;
}

static int f_wait_k(lua_State *L, int status, lua_KContext kc)
{
    (void)status;
    (void)kc;
    return f_wait_go(L, true);
}

static int f_wait(lua_State *L) { return f_wait_go(L, false); }

static int f_done(lua_State *L)
{
    lua_pushboolean(L, interp_future_done(check_future(L)));
    return 1;
}

static int f_cancel(lua_State *L)
{
    lua_pushboolean(L, interp_future_cancel(check_future(L)) == INTERP_OK);
    return 1;
}

static int f_gc(lua_State *L)
{
    future_ud *fu = luaL_checkudata(L, 1, FUTURE_MT);
    interp_future *f = fu->f;
    fu->f = NULL;
    interp_future_release(f);
    return 0;
}

/* ---- interp.context, interp.self -------------------------------------------------------- */

/* Upvalues: 1 the pool, 2 the context of this state (NULL: a task's), 3 sandboxed. */
static int l_context(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    interp_pool *pool = lua_touserdata(L, lua_upvalueindex(1));
    interp_ctx *from = lua_touserdata(L, lua_upvalueindex(2));
    bool sandboxed = lua_toboolean(L, lua_upvalueindex(3));
    /* the userdata first: a memory error must not leak the reference */
    handle_ud *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->ctx = NULL;
    h->from_sandbox = sandboxed;
    set_class(L, HANDLE_MT);
    if (pool->span_refusal) { /* a rank of a pool spanning processes: none reach them */
        lua_pushnil(L);
        lua_pushfstring(L, "interp.context: %s", pool->span_refusal);
        return 2;
    }
    interp_ctx *c = NULL;
    if (len > 0 && len <= INTERP_CHAN_MAX_NAME && !memchr(name, '\0', len)) /* grants: 256 */
        c = interp__ctx_reach(pool, from, sandboxed, name, len);
    if (!c) { /* one answer for "none" and "not yours": names cannot be probed */
        lua_pushnil(L);
        lua_pushfstring(L, "interp.context: no context named '%s' is reachable from here%s", name,
                        sandboxed ? " (a sandbox reaches only what its host granted)" : "");
        return 2;
    }
    h->ctx = c;
    return 1;
}

static int l_self(lua_State *L)
{
    interp_ctx *self = lua_touserdata(L, lua_upvalueindex(1));
    if (!self)
        lua_pushnil(L);
    else
        push_handle(L, self, interp__ctx_sandboxed(self));
    return 1;
}

static const luaL_Reg handle_methods[] = {
    {"call", h_call}, {"post", h_post}, {"exec", h_exec}, {"name", h_name}, {NULL, NULL},
};
static const luaL_Reg future_methods[] = {
    {"result", f_result}, {"wait", f_wait}, {"done", f_done}, {"cancel", f_cancel}, {NULL, NULL},
};

static void set_class(lua_State *L, const char *name)
{
    if (luaL_newmetatable(L, name)) {
        bool handle = strcmp(name, HANDLE_MT) == 0;
        lua_newtable(L);
        lua_pushvalue(L, -2); /* the methods' upvalue: check_class */
        luaL_setfuncs(L, handle ? handle_methods : future_methods, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, handle ? h_gc : f_gc);
        lua_setfield(L, -2, "__gc");
        if (handle) {
            lua_pushcfunction(L, h_eq);
            lua_setfield(L, -2, "__eq");
            lua_pushcfunction(L, h_tostring);
            lua_setfield(L, -2, "__tostring");
        }
        lua_pushstring(L, name); /* getmetatable answers the name: no script reaches __gc */
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
}

static void open_common(lua_State *L, interp_pool *pool, interp_ctx *self, bool sandboxed)
{
    lua_pushlightuserdata(L, pool);
    lua_pushlightuserdata(L, self);
    lua_pushboolean(L, sandboxed);
    lua_pushcclosure(L, l_context, 3);
    lua_setfield(L, -2, "context");
    lua_pushlightuserdata(L, self);
    lua_pushcclosure(L, l_self, 1);
    lua_setfield(L, -2, "self");
}

void interp__ctx_lua_open_pool(lua_State *L, void *ud)
{
    interp_pool *pool = ud;
    open_common(L, pool, NULL, interp__shared_sandboxed(pool->shared));
}

void interp__ctx_lua_open_ctx(lua_State *L, void *ud)
{
    interp_ctx *ctx = ud;
    open_common(L, interp__ctx_pool(ctx), ctx, interp__ctx_sandboxed(ctx));
    interp__ctx_shared_open(L, ctx);
}
