/* run_cmd.c - `interp-pool run SCRIPT [ARGS]`: run a Lua script as lua5.4 would, with
 * `require "interp_pool"` available without installing the module (package.preload). */
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "interp_pool_lua.h"

static const char run_usage[] =
    "Usage: interp-pool run SCRIPT [ARGS...]\n"
    "\n"
    "Run the Lua script SCRIPT (- for standard input) in a Lua 5.4 state with the standard\n"
    "libraries and the interp_pool module preloaded: `local ip = require \"interp_pool\"`\n"
    "works without LUA_CPATH. ARGS are the script's `...` and arg[1..n]; arg[0] is SCRIPT.\n"
    "\n"
    "  -h, --help    print this help\n"
    "\n"
    "Exit status: 0 when the script ends normally, 1 when it raises an error (the message\n"
    "and traceback go to stderr), or what it passes to os.exit.\n";

static lua_State *signal_state; /* the state an interrupt stops (as lua.c does) */

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/* Ctrl-C: stop the script at its next Lua instruction; a second one kills the process.
 * lua_sethook is the one Lua call that is safe from a signal handler. */
static void on_sigint(int sig)
{
    signal(sig, SIG_DFL);
    lua_sethook(signal_state, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Everything that touches the state runs protected, here. */
static int run_main(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_interp_pool);
    lua_setfield(L, -2, "interp_pool");
    lua_pop(L, 1);
    /* arg: [-2] "interp-pool", [-1] "run", [0] SCRIPT, [1..] ARGS */
    lua_createtable(L, argc, 3);
    lua_pushliteral(L, "interp-pool");
    lua_rawseti(L, -2, -2);
    lua_pushliteral(L, "run");
    lua_rawseti(L, -2, -1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");

    const char *script = argv[0];
    if (luaL_loadfile(L, strcmp(script, "-") == 0 ? NULL : script) != LUA_OK)
        return lua_error(L);
    luaL_checkstack(L, argc, "too many arguments");
    for (int i = 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    int base = lua_gettop(L) - argc + 1; /* the chunk */
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    signal_state = L;
    signal(SIGINT, on_sigint);
    int rc = lua_pcall(L, argc - 1, 0, base);
    signal(SIGINT, SIG_DFL);
    if (rc != LUA_OK)
        return lua_error(L); /* the message already carries the traceback */
    return 0;
}

int cli_run(int argc, char **argv)
{
    /* argv[0] is "run" */
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(run_usage, stdout);
        return CLI_EXIT_OK;
    }
    int first = 1;
    if (argc >= 2 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (argc <= first) {
        fprintf(stderr, "interp-pool run: expected SCRIPT\nTry 'interp-pool run --help'.\n");
        return CLI_EXIT_USAGE;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "interp-pool run: cannot create a Lua state: out of memory\n");
        return CLI_EXIT_FAILED;
    }
    /* Lua leaves the main thread's extra space uninitialised and every coroutine copies it;
     * the module keeps its channel context there once required. NULL until then is a
     * context channel code understands. */
    memset(lua_getextraspace(L), 0, LUA_EXTRASPACE);
    lua_pushcfunction(L, run_main);
    lua_pushinteger(L, argc - first);
    lua_pushlightuserdata(L, argv + first);
    int rc = lua_pcall(L, 2, 0, 0);
    int status = CLI_EXIT_OK;
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "interp-pool: %s\n", msg ? msg : "(error object is not a string)");
        status = CLI_EXIT_FAILED;
    }
    lua_close(L); /* collects the script's pools: their workers are joined here */
    return status;
}
