/* interp_pool_lua.h - the opener of the `interp_pool` Lua module, for a host program that
 * links the module's code into itself (as `interp-pool run` does) rather than loading
 * interp_pool.so: put it in package.preload, or call it through luaL_requiref. */
#ifndef INTERP_POOL_LUA_H
#define INTERP_POOL_LUA_H

#include <lua.h>

#include "interp_status.h"

/* [-0, +1, e] Push the module table (ip.new, ip.wait, ip.as_completed, ip.now, ...). */
INTERP_API int luaopen_interp_pool(lua_State *L);

#endif
