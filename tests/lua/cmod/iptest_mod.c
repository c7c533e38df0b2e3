/* iptest_mod.c - a C module for tests/lua/libs.lua, built by the tests as iptest_mod.so next
 * to interp_pool.so: ip.new{libs = {"iptest_mod"}} opens it in every worker state. `calls`
 * counts calls of `add` over the whole process (one library, many states); `state` is a
 * number per state, set by luaopen (each state opens the module itself). */
#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>

static atomic_long n_calls;
static atomic_long n_opens;

static int add(lua_State *L)
{
    atomic_fetch_add(&n_calls, 1);
    lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
    return 1;
}

static int calls(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)atomic_load(&n_calls));
    return 1;
}

int luaopen_iptest_mod(lua_State *L)
{
    static const luaL_Reg fns[] = {{"add", add}, {"calls", calls}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushinteger(L, (lua_Integer)atomic_fetch_add(&n_opens, 1) + 1);
    lua_setfield(L, -2, "state");
    return 1;
}
