/* luahost.c - a plain lua_State as the baseline executors (sequential, gil, process) use it:
 * standard libraries, a `sleep` that can drop a lock, the initializer, and protected calls
 * whose arguments and results go through the library's message codec. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bench.h"
#include "interp_msg_lua.h"

/* sleep(seconds): the stand-in for a blocking call (a network request, a disk read). */
static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && isfinite(s), 1, "seconds must be a finite number >= 0");
    const bench_sleep_hooks *h = lua_touserdata(L, lua_upvalueindex(1));
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    if (h)
        h->release(h->ud);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    if (h)
        h->acquire(h->ud);
    return 0;
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void copy_err(char err[BENCH_ERRLEN], const char *what, const char *text)
{
    snprintf(err, BENCH_ERRLEN, "%s%s", what, text ? text : "(no message)");
}

int bench_lua_new(lua_State **out, const char *init, const bench_sleep_hooks *hooks,
                  char err[BENCH_ERRLEN])
{
    lua_State *L = luaL_newstate();
    if (!L) {
        copy_err(err, "luaL_newstate: ", "out of memory");
        return INTERP_ERR_NOMEM;
    }
    luaL_openlibs(L);
    lua_pushlightuserdata(L, (void *)hooks);
    lua_pushcclosure(L, l_sleep, 1);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "sleep");
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, "sleep");
    lua_setglobal(L, "interp");
    lua_pushcfunction(L, traceback);
    int rc = luaL_loadbuffer(L, init, strlen(init), "=init");
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, 1);
    if (rc != LUA_OK) {
        copy_err(err, "init: ", lua_tostring(L, -1));
        lua_close(L);
        return INTERP_ERR_SCRIPT;
    }
    lua_settop(L, 0);
    *out = L;
    return INTERP_OK;
}

int bench_lua_call(lua_State *L, const char *fn, const interp_msg *args, interp_msg **out,
                   char err[BENCH_ERRLEN])
{
    int top = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    if (lua_getglobal(L, fn) != LUA_TFUNCTION) {
        lua_settop(L, top);
        copy_err(err, "no global function ", fn);
        return INTERP_ERR_NOTFOUND;
    }
    interp_msg_error me;
    int nargs = 0;
    if (args) {
        int rc = interp_msg_to_lua(L, args, NULL, &me);
        if (rc != INTERP_OK) {
            lua_settop(L, top);
            copy_err(err, "arguments: ", me.text);
            return rc;
        }
        nargs = (int)interp_msg_count(args);
    }
    if (lua_pcall(L, nargs, LUA_MULTRET, top + 1) != LUA_OK) {
        copy_err(err, "", lua_tostring(L, -1));
        lua_settop(L, top);
        return INTERP_ERR_SCRIPT;
    }
    int rc = interp_msg_from_lua(L, top + 2, lua_gettop(L) - top - 1, NULL, out, &me);
    if (rc != INTERP_OK)
        copy_err(err, "results: ", me.text);
    lua_settop(L, top);
    return rc;
}
