/* imap_lua.c - pool:imap(f, input [, {window =, timeout =}]): a lazy map for inputs too long to
 * hold (io.lines, a generator), like Python's Executor.map. Written in Lua (lua/imap.lua) on
 * top of pool:submit and the futures: it only orders calls the binding already has. At most
 * `window` calls are queued or running; results come in input order; a failed call raises
 * when the loop reaches it; leaving the loop early (break, error) cancels the calls still
 * pending. */
#include <lauxlib.h>

#include "lm.h"

/* static const char imap_source[]: lua/imap.lua, embedded at build time */
#include "imap_lua.h"

void interp__lm_imap_register(lua_State *L, lua_CFunction now)
{
    luaL_getmetatable(L, LM_POOL_MT);
    lua_getfield(L, -1, "__index");
    if (luaL_loadbufferx(L, imap_source, sizeof imap_source - 1, "=interp_pool.imap", "t") !=
        LUA_OK)
        lua_error(L);
    lua_pushcfunction(L, now);
    lua_pushinteger(L, INTERP_MAP_WINDOW_CHUNKS);
    lua_pushinteger(L, (lua_Integer)INTERP_MAP_MAX_IN_FLIGHT);
    lua_call(L, 3, 1);
    lua_setfield(L, -2, "imap");
    lua_pop(L, 2);
}
