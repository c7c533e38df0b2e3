/* ctx_shared.c - interp.shared in a context's state: the pool's shared values (frozen, by
 * name) reached through the context's grants, as its channels and contexts are
 * (ctx_names.c, interp_ctx_grant_shared).
 *
 *   interp.shared(name)    -> the value under the pool's name granted as `name` with READ
 *   interp.shared(name, v) -> registers v there (once), granted with REGISTER
 *
 * A sandboxed context reaches only its grants: a name it was not granted reads nil (the
 * answer for a name nothing is registered under, so names cannot be probed) and registering
 * it raises. A full-profile context looks at its grants first, then at the pool's names. The
 * reading and registering themselves are msg/frozen_lua.c's interp.shared, called with the
 * pool's name. */
#include <lauxlib.h>

#include "core_impl.h"
#include "interp_ctx.h"

/* Upvalues: 1 the state's own interp.shared (pool-wide names), 2 the context, 3 sandboxed. */
static int l_ctx_shared(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    bool reg = lua_gettop(L) >= 2;
    interp_ctx *ctx = lua_touserdata(L, lua_upvalueindex(2));
    bool sandboxed = lua_toboolean(L, lua_upvalueindex(3));
    char target[INTERP_SHARED_MAX_NAME];
    size_t tlen = 0;
    int g = interp__grants_shared(interp__ctx_grants(ctx), name, len,
                                  reg ? INTERP_SHARED_REGISTER : INTERP_SHARED_READ, target, &tlen);
    if (g < 0 || (g == 0 && sandboxed)) {
        if (!reg)
            return 0;
        return luaL_error(L,
                          "interp.shared: registering '%s' was not granted to this context "
                          "(%s)",
                          name,
                          g < 0 ? "its grant of that name is read-only"
                                : "a sandbox reaches only the shared names its host granted");
    }
    if (g > 0) {
        lua_pushlstring(L, target, tlen);
        lua_replace(L, 1);
    }
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

void interp__ctx_shared_open(lua_State *L, interp_ctx *ctx)
{
    if (lua_getfield(L, -1, "shared") != LUA_TFUNCTION) { /* no registry in this state */
        lua_pop(L, 1);
        return;
    }
    lua_pushlightuserdata(L, ctx);
    lua_pushboolean(L, interp__ctx_sandboxed(ctx));
    lua_pushcclosure(L, l_ctx_shared, 3);
    lua_setfield(L, -2, "shared");
}
