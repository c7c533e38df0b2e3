/* future_lua.c - the future object of the Lua module: what pool:submit returns.
 * f:result([timeout]), f:error([timeout]), f:wait([timeout]), f:done(), f:running(),
 * f:cancelled(), f:cancel(), f:status(). */
#include "lm.h"

lm_future *interp__lm_future_new(lua_State *L)
{
    lm_future *lf = lua_newuserdatauv(L, sizeof *lf, 1);
    lf->f = NULL;
    lf->opts = &interp__lm_msg_opts;
    luaL_setmetatable(L, LM_FUTURE_MT);
    return lf;
}

lm_future *interp__lm_future_test(lua_State *L, int idx)
{
    lm_future *lf = luaL_testudata(L, idx, LM_FUTURE_MT);
    return lf && lf->f ? lf : NULL;
}

static interp_future *check_future(lua_State *L)
{
    lm_future *lf = luaL_checkudata(L, 1, LM_FUTURE_MT);
    luaL_argcheck(L, lf->f != NULL, 1, "future of a failed submit");
    return lf->f;
}

static const interp_msg_opts *opts_of(lua_State *L)
{
    return ((lm_future *)lua_touserdata(L, 1))->opts;
}

static int future_slice(void *ud, double slice) { return interp_future_wait(ud, slice); }

/* Wait for f up to timeout, looking for a Ctrl-C meanwhile: on one, cancel the task (as
 * leaving a <close> block would) and raise "interrupted". */
static int wait_interruptible(lua_State *L, interp_future *f, double timeout)
{
    bool interrupted;
    int rc = interp_lua_intr_wait(L, timeout, future_slice, f, &interrupted);
    if (interrupted) {
        interp_future_cancel(f);
        interp_lua_intr_raise(L);
    }
    return rc;
}

/* Wait up to the timeout at index 2; raise when the wait itself timed out. */
static void wait_or_raise(lua_State *L, interp_future *f, const char *where)
{
    double timeout = interp__lm_opt_timeout(L, 2, where);
    int rc = wait_interruptible(L, f, timeout);
    if (rc == INTERP_ERR_TIMEOUT)
        luaL_error(L, "%s: timed out after %f s waiting for the task (it is still %s)", where,
                   timeout, interp_future_running(f) ? "running" : "queued");
    if (rc != INTERP_OK)
        interp__lm_status_error(L, where, rc);
}

/* Push the failure of an ended, failed future: a script error as the task raised it (its
 * error object when that was not a string, else its text with the worker's traceback); any
 * other failure as a text naming the reason. */
static void push_failure(lua_State *L, interp_future *f, int status, const interp_msg_opts *opts)
{
    const char *text = interp_future_error(f);
    if (status == INTERP_ERR_SCRIPT) {
        const interp_msg *ev = interp_future_error_value(f);
        if (ev && interp_msg_count(ev) > 0) {
            int top = lua_gettop(L);
            interp_msg_push_lua(L, ev, opts);
            lua_settop(L, top + 1);
            return;
        }
        lua_pushstring(L, text ? text : "task failed with an unknown error");
    } else if (status == INTERP_ERR_CANCELLED) {
        lua_pushliteral(L, "interp_pool: the task was cancelled");
    } else if (text) {
        lua_pushfstring(L, "interp_pool: the task failed (%s): %s", interp_strerror(status), text);
    } else {
        lua_pushfstring(L, "interp_pool: the task failed: %s", interp_strerror(status));
    }
}

/* f:result([timeout]) -> every value the task returned; raises the task's error */
static int future_result(lua_State *L)
{
    interp_future *f = check_future(L);
    wait_or_raise(L, f, "future:result");
    const interp_msg *res = NULL;
    int rc = interp_future_result(f, 0, &res);
    if (rc != INTERP_OK) {
        push_failure(L, f, rc, opts_of(L));
        return lua_error(L);
    }
    lua_settop(L, 1);
    return res ? interp_msg_push_lua(L, res, opts_of(L)) : 0;
}

/* f:error([timeout]) -> nil when the task succeeded, else its error (as result raises it) */
static int future_error(lua_State *L)
{
    interp_future *f = check_future(L);
    wait_or_raise(L, f, "future:error");
    int rc = interp_future_status(f);
    if (rc == INTERP_OK)
        lua_pushnil(L);
    else
        push_failure(L, f, rc, opts_of(L));
    return 1;
}

/* f:wait([timeout]) -> true when the task has ended, false when the timeout passed first */
static int future_wait(lua_State *L)
{
    interp_future *f = check_future(L);
    double timeout = interp__lm_opt_timeout(L, 2, "future:wait");
    int rc = wait_interruptible(L, f, timeout);
    if (rc != INTERP_OK && rc != INTERP_ERR_TIMEOUT)
        return interp__lm_status_error(L, "future:wait", rc);
    lua_pushboolean(L, rc == INTERP_OK);
    return 1;
}

static int future_done(lua_State *L)
{
    lua_pushboolean(L, interp_future_done(check_future(L)));
    return 1;
}

static int future_running(lua_State *L)
{
    lua_pushboolean(L, interp_future_running(check_future(L)));
    return 1;
}

static int future_cancelled(lua_State *L)
{
    lua_pushboolean(L, interp_future_cancelled(check_future(L)));
    return 1;
}

/* f:cancel() -> true when the cancel took effect (a queued task never runs; a running one is
 * interrupted), false when the task had already ended */
static int future_cancel(lua_State *L)
{
    int rc = interp_future_cancel(check_future(L));
    if (rc != INTERP_OK && rc != INTERP_ERR_BUSY)
        return interp__lm_status_error(L, "future:cancel", rc);
    lua_pushboolean(L, rc == INTERP_OK);
    return 1;
}

static const char *state_name(interp_future *f)
{
    int st = interp_future_status(f);
    if (st == INTERP_ERR_AGAIN)
        return interp_future_running(f) ? "running" : "pending";
    if (st == INTERP_OK)
        return "done";
    return st == INTERP_ERR_CANCELLED ? "cancelled" : "failed";
}

/* f:status() -> "pending" | "running" | "done" | "failed" | "cancelled" */
static int future_status(lua_State *L)
{
    lua_pushstring(L, state_name(check_future(L)));
    return 1;
}

static int future_tostring(lua_State *L)
{
    lm_future *lf = luaL_checkudata(L, 1, LM_FUTURE_MT);
    lua_pushfstring(L, "interp_pool.future (%s): %p", lf->f ? state_name(lf->f) : "invalid",
                    (void *)lf);
    return 1;
}

static int future_gc(lua_State *L)
{
    lm_future *lf = luaL_checkudata(L, 1, LM_FUTURE_MT);
    interp_future_release(lf->f);
    lf->f = NULL;
    return 0;
}

static const luaL_Reg future_methods[] = {
    {"result", future_result}, {"error", future_error},     {"wait", future_wait},
    {"done", future_done},     {"running", future_running}, {"cancelled", future_cancelled},
    {"cancel", future_cancel}, {"status", future_status},   {NULL, NULL},
};

static const luaL_Reg future_meta[] = {
    {"__gc", future_gc},
    {"__tostring", future_tostring},
    {NULL, NULL},
};

void interp__lm_future_register(lua_State *L)
{
    interp__lm_register_class(L, LM_FUTURE_MT, future_meta, future_methods);
}
