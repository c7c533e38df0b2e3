/* test_chan_host.c - channels in a host program's own lua_State through the `interp_pool`
 * module (lua/, linked in as `interp-pool run` does), when the state's extra space holds
 * garbage: Lua never initialises the main thread's slot, a coroutine created before `require`
 * copies it, and an embedding program may keep its own pointer there. Neither the module nor
 * the channel binding may read or write it in a state that interp/ did not make. */
#include <lauxlib.h>
#include <lualib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "interp_pool_lua.h"
#include "lua_ctx.h"

static void run_ok(lua_State *L, const char *code)
{
    int rc = luaL_loadstring(L, code);
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 1, 0);
    if (rc != LUA_OK)
        fail_msg("lua error: %s", lua_tostring(L, -1));
    if (!lua_toboolean(L, -1))
        fail_msg("script returned false: %s", code);
    lua_pop(L, 1);
}

static void chan_host_garbage_extraspace(void **state)
{
    (void)state;
    unsigned char garbage[LUA_EXTRASPACE];
    memset(garbage, 0xa5, sizeof garbage); /* a pointer there is non-canonical: a read faults */
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    memcpy(lua_getextraspace(L), garbage, LUA_EXTRASPACE);
    luaL_openlibs(L);
    /* a coroutine from before the module: it copied the garbage */
    run_ok(L, "co = coroutine.create(function(ip, inbox, outbox)\n"
              "  assert(outbox:send(20))\n"
              "  local ch, v = ip.select({inbox}, 30)\n"
              "  return rawequal(ch, inbox) and v == 40\n"
              "end)\n"
              "return true");
    luaL_requiref(L, "interp_pool", luaopen_interp_pool, 0);
    lua_pop(L, 1);
    assert_null(interp__chan_lua_ctx(L));
    run_ok(L, "local ip = require 'interp_pool'\n"
              "local pool <close> = ip.new{workers = 1}\n"
              "local inbox, outbox = pool:channel('to_host'), pool:channel('to_worker')\n"
              "local f = pool:submit(function()\n"
              "  local v = interp.channel('to_worker'):recv(30)\n"
              "  interp.channel('to_host'):send(v * 2)\n"
              "  return v\n"
              "end)\n"
              "local ok, r = coroutine.resume(co, ip, inbox, outbox)\n"
              "assert(ok and r, r)\n"
              "assert(f:result(30) == 20)\n"
              "local v, err = inbox:recv(0)\n"
              "assert(v == nil and err == 'timeout')\n"
              "assert(outbox:send({'main', 1}) and outbox:recv()[1] == 'main')\n"
              "local ch, t = ip.select({outbox, inbox}, 0)\n"
              "assert(ch == nil and t == 'timeout')\n"
              "inbox:close()\n"
              "return select(2, inbox:recv()) == 'closed'");
    assert_memory_equal(lua_getextraspace(L), garbage, LUA_EXTRASPACE);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chan_host_garbage_extraspace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
