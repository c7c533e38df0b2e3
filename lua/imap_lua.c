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

/* window_bound(w): nil when w calls in flight are within the library's bound, else its reason
 * (interp_map_check_sizes, the rule of map_stream's max_in_flight). */
static int window_bound(lua_State *L)
{
    lua_Integer w = luaL_checkinteger(L, 1);
    const char *why = NULL;
    if (w > 0 && interp_map_check_sizes(0, (size_t)w, &why) == INTERP_OK)
        return 0;
    lua_pushstring(L, why ? why : "a window of at least 1 call");
    return 1;
}

void interp__lm_imap_register(lua_State *L, lua_CFunction now)
{
    luaL_getmetatable(L, LM_POOL_MT);
    lua_getfield(L, -1, "__index");
    if (luaL_loadbufferx(L, imap_source, sizeof imap_source - 1, "=interp_pool.imap", "t") !=
        LUA_OK)
        lua_error(L);
    lua_pushcfunction(L, now);
    lua_pushinteger(L, INTERP_MAP_WINDOW_CHUNKS);
    lua_pushcfunction(L, window_bound);
    lua_call(L, 3, 1);
    lua_setfield(L, -2, "imap");
    lua_pop(L, 2);
}
