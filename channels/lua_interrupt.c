/* lua_interrupt.c - noticing Ctrl-C while a C call waits (interp_chan_lua.h). */
#include "interp_chan_lua.h"

#include "interp_status.h"
#include "lua_ctx.h"
#include "sync.h"

#define INTR_POLL 0.02 /* seconds between two looks (interp_chan_lua.h) */

void interp_lua_intr_begin(lua_State *L, interp_lua_intr *s)
{
    s->L = L;
    s->hook = lua_gethook(L);
    s->mask = lua_gethookmask(L);
    s->count = lua_gethookcount(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    s->main = lua_tothread(L, -1);
    lua_pop(L, 1);
    s->main_hook = s->main ? lua_gethook(s->main) : NULL;
    s->main_mask = s->main ? lua_gethookmask(s->main) : 0;
    s->main_count = s->main ? lua_gethookcount(s->main) : 0;
}

bool interp_lua_intr_seen(const interp_lua_intr *s)
{
    if (lua_gethook(s->L) != s->hook || lua_gethookmask(s->L) != s->mask)
        return true;
    return s->main &&
           (lua_gethook(s->main) != s->main_hook || lua_gethookmask(s->main) != s->main_mask);
}

void interp_lua_intr_consume(const interp_lua_intr *s)
{
    const interp__lua_ctx *ctx = interp__lua_ctx_get(s->L);
    if (ctx && ctx->cancel)
        return; /* a worker's task: the hook is its cancel's */
    lua_sethook(s->L, s->hook, s->mask, s->count);
    if (s->main && s->main != s->L)
        lua_sethook(s->main, s->main_hook, s->main_mask, s->main_count);
}

int interp_lua_intr_raise(lua_State *L)
{
    lua_pushliteral(L, "interrupted");
    return lua_error(L);
}

bool interp_lua_intr_poll(void *ud) { return interp_lua_intr_seen(ud); }

int interp_lua_intr_wait(lua_State *L, double timeout, interp_lua_intr_wait_fn wait, void *ud,
                         bool *interrupted)
{
    *interrupted = false;
    if (timeout == 0)
        return wait(ud, 0);
    interp_lua_intr s;
    interp_lua_intr_begin(L, &s);
    double end = timeout > 0 ? interp__now() + timeout : 0;
    for (;;) {
        double slice = INTR_POLL;
        if (timeout > 0) {
            double left = end - interp__now();
            if (left < slice)
                slice = left > 0 ? left : 0;
        }
        int rc = wait(ud, slice);
        if (rc != INTERP_ERR_TIMEOUT)
            return rc;
        if (interp_lua_intr_seen(&s)) {
            interp_lua_intr_consume(&s);
            *interrupted = true;
            return INTERP_ERR_CANCELLED;
        }
        if (timeout > 0 && interp__now() >= end)
            return INTERP_ERR_TIMEOUT;
    }
}
