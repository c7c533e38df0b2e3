/* sandbox.c - the library profiles of a worker state.
 *
 * Every profile: print goes to the pool's sink, os.exit raises an error, the `interp` module
 * is the global `interp`, and string's pattern functions and rep and table.sort are the
 * interruptible versions (lib_string.c, lib_sort.c: Lua's results). coroutine.*, xpcall and
 * debug.sethook are Lua's own (cancellation reaches coroutines without wrappers, cancel.c).
 *
 * INTERP_SANDBOX_NONE: every standard library (luaL_openlibs); globals persist from task to
 * task on the same state. Not closed here (trusted code): a looping __gc finalizer or a looping
 * debug hook function runs with hooks off and cannot be interrupted; debug.* can reach the
 * registry.
 *
 * INTERP_SANDBOX_SAFE opens only what it keeps (luaL_requiref), never all-then-delete:
 *   base:      assert error getmetatable ipairs next pairs pcall print rawequal rawget rawlen
 *              rawset select setmetatable tonumber tostring type xpcall _VERSION _G, plus
 *              load (text chunks only; default environment: the task's own) and
 *              collectgarbage("count") only. Gone: dofile loadfile warn require.
 *   string:    all but string.dump; find/match/gmatch/gsub refuse patterns whose worst-case
 *              backtracking on the subject passes a budget (sandbox_bounds.c).
 *   table, math, utf8, coroutine.
 *   os:        clock time date difftime, and exit (raises). Gone: execute getenv remove
 *              rename tmpname setlocale.
 *   interp:    the worker module.
 *   No io, debug, package. setmetatable refuses a metatable with __gc (finalizers run with
 *   hooks off, so no cancellation could stop one). rawset refuses the read-only tables.
 *   C loops the hook cannot reach poll the interrupt (table.*, gsub and load C callbacks;
 *   print in module.c); functions that call Lua back keep a C stack reserve; math.random is
 *   reseeded for every task; the globals lose _G once tasks run. (interp_types.h lists the
 *   rules and what stays open.)
 * Read-only: every library table above is an empty proxy (__index the real table, __newindex
 * raises, __pairs iterates the real table, __metatable false); the string metatable's
 * __index is the string proxy and getmetatable("") answers a read-only proxy of it.
 * Fresh environment: the state's real global table G (libraries, and whatever the trusted
 * initializer defines) is never handed to task code. A source task runs in a new table whose
 * metatable (shared, protected) reads through to G: its global writes die with it. Functions
 * defined by the initializer keep the initializer's environment G. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "interp_impl.h"
#include "lib_impl.h"
#include "sandbox_impl.h"

static const char ro_set_key = 0;     /* registry: set of read-only proxies */
static const char env_mt_key = 0;     /* registry: metatable of task environments */
static const char task_env_key = 0;   /* registry: the running task's environment (or nil) */
static const char init_chunk_key = 0; /* registry: the initializer's main chunk */

/* ---- read-only proxies ---------------------------------------------------------------- */

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify a read-only table");
}

/* The `next` that pairs(proxy) returns. A script can call it on any table: it must iterate
 * only a registered proxy's table (the environment's metatable reads through to the real
 * globals, whose _G is the real global table: handing that out would let a task write the
 * globals every later task sees). */
static int ro_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ro_set_key);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TNIL)
        return luaL_argerror(L, 1, "not a read-only library table");
    lua_settop(L, 2);
    if (!lua_getmetatable(L, 1) || lua_getfield(L, -1, "__index") != LUA_TTABLE)
        return 0;
    lua_pushvalue(L, 2);
    if (lua_next(L, -2))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_pushcfunction(L, ro_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Replace the table at the top of the stack by a read-only proxy of it. */
static void make_readonly(lua_State *L)
{
    lua_newtable(L); /* proxy */
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ro_set_key);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_remove(L, -2);
}

void interp__sandbox_readonly(lua_State *L) { make_readonly(L); }

static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ro_set_key);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return luaL_error(L, "attempt to modify a read-only table");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* ---- guarded base functions ----------------------------------------------------------- */

static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    /* raw: a metatable's own __index must not run here (Lua itself reads __gc raw) */
    if (t == LUA_TTABLE && (lua_pushliteral(L, "__gc"), lua_rawget(L, 2)) != LUA_TNIL)
        return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the standard setmetatable */
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage: only \"count\" is allowed in the sandbox");
    /* what the task holds: the heap now less the heap when the task began (garbage that
     * earlier tasks left, collected meanwhile, may make it 0; never below) */
    size_t now = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
    size_t base = interp__state_of(L)->task_mem_base;
    lua_pushnumber(L, now > base ? (lua_Number)(now - base) / 1024 : 0.0);
    return 1;
}

/* Push the running task's environment; outside a task (the initializer), the globals. */
static void push_current_env(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_env_key) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushglobaltable(L);
    }
}

/* Upvalue 1: the script's reader, upvalue 2: bytes read so far. Called by the parser: polls
 * the interrupt (a C reader runs out of the hook's reach), calls the reader, and raises once
 * the chunk passes the bound (load then returns nil and the message, as for a syntax error). */
static int counted_reader(lua_State *L)
{
    interp__poll_irq(L);
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 1);
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t max = interp__state_of(L)->sh->max_chunk;
        size_t total = (size_t)lua_tointeger(L, lua_upvalueindex(2)) + lua_rawlen(L, 1);
        if (total > max)
            return luaL_error(L, "chunk larger than %I bytes (the sandbox's max_chunk_size)",
                              (LUAI_UACINT)max);
        lua_pushinteger(L, (lua_Integer)total);
        lua_replace(L, lua_upvalueindex(2));
    }
    return 1;
}

/* load in the sandbox: text only, the task's environment by default, and at most max_chunk
 * bytes of source (Lua's parser cannot be interrupted and is quadratic on some chunks). */
static int sb_load(lua_State *L)
{
    interp__sandbox_check_c_stack(L);
    bool has_env = !lua_isnone(L, 4);
    lua_settop(L, 4);
    if (!lua_isnoneornil(L, 3) && !strchr(luaL_checkstring(L, 3), 't'))
        return luaL_error(L, "load: only text chunks are allowed in the sandbox");
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    size_t max = interp__state_of(L)->sh->max_chunk;
    if (lua_type(L, 1) == LUA_TSTRING && lua_rawlen(L, 1) > max) {
        lua_pushnil(L);
        lua_pushfstring(L,
                        "chunk of %I bytes: larger than %I bytes (the sandbox's "
                        "max_chunk_size)",
                        (LUAI_UACINT)lua_rawlen(L, 1), (LUAI_UACINT)max);
        return 2;
    }
    if (lua_type(L, 1) == LUA_TFUNCTION) {
        lua_pushvalue(L, 1);
        lua_pushinteger(L, 0);
        lua_pushcclosure(L, counted_reader, 2);
        lua_replace(L, 1);
    }
    if (!has_env) {
        push_current_env(L);
        lua_replace(L, 4);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* the standard load */
    lua_insert(L, 1);
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- the random generator, reseeded for every task --------------------------------------
 * math.random's state belongs to the Lua state: a task could seed it (fixing the "random"
 * numbers of the next task) or read it out (xoshiro256** can be run backwards: the numbers an
 * earlier task drew). Each task starts from a fresh seed (clock, address and a counter mixed). */

static const char randomseed_key = 0; /* registry: the standard math.randomseed */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static void reseed_random(lua_State *L)
{
    static INTERP__TLS uint64_t counter; /* per thread: no cache line shared by workers */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t c = ++counter;
    uint64_t a = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    uint64_t b = mix64(a ^ (uint64_t)(uintptr_t)L ^ mix64(c));
    lua_rawgetp(L, LUA_REGISTRYINDEX, &randomseed_key);
    lua_pushinteger(L, (lua_Integer)a);
    lua_pushinteger(L, (lua_Integer)b);
    lua_call(L, 2, 0);
}

void interp__sandbox_keep_init(lua_State *L, int idx)
{
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &init_chunk_key);
}

/* Every task gets a fresh environment whose reads fall through to the shared, read-only-
 * library globals G. The functions the initializer defined share one _ENV upvalue (that of the
 * initializer's main chunk): it is pointed at the task's environment too, so a task called by
 * name writes its globals there, and they are gone for the next task. (Tables the initializer
 * built stay shared: a task that changes their contents changes them for later tasks.) */
void interp__push_task_env(lua_State *L)
{
    /* G._G is G itself: a task that clears its own _G (`_G = nil`) would read G's through the
     * environment's __index and could write every later task's globals. The initializer has
     * run: G._G goes (a raw no-op after the first task). */
    lua_pushglobaltable(L);
    lua_pushliteral(L, "_G");
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &env_mt_key);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task_env_key);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &init_chunk_key) == LUA_TFUNCTION) {
        lua_pushvalue(L, -2);
        if (!lua_setupvalue(L, -2, 1)) /* a main chunk's only upvalue is _ENV */
            lua_pop(L, 1);
    }
    lua_pop(L, 1);
    reseed_random(L);
    interp__state_of(L)->task_mem_base =
        (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
}

static const char ctx_env_key = 0; /* registry: a context's one environment (or nil) */

void interp__push_persistent_env(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_env_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        interp__push_task_env(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_env_key);
        return;
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task_env_key);
    reseed_random(L);
}

int interp__get_ctx_global(lua_State *L, const char *name)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_env_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        return lua_getglobal(L, name);
    }
    int t = lua_getfield(L, -1, name);
    lua_remove(L, -2);
    return t;
}

/* ---- profiles ------------------------------------------------------------------------- */

/* Set G[name] to a read-only proxy of the library table at the top (popped). */
static void set_library(lua_State *L, int g, const char *name)
{
    make_readonly(L);
    lua_setfield(L, g, name);
}

static void open_sandbox(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ro_set_key);

    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    int g = lua_gettop(L);
    static const char *const gone[] = {"dofile", "loadfile", "warn", "require", NULL};
    for (int i = 0; gone[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, g, gone[i]);
    }
    lua_pushcfunction(L, sb_rawset);
    lua_setfield(L, g, "rawset");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, g, "collectgarbage");
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, sb_load, 1);
    lua_setfield(L, g, "load");

    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    interp__sandbox_bound_string(L);
    interp__sandbox_ids_install(L, g, lua_gettop(L));
    set_library(L, g, LUA_STRLIBNAME);
    /* The string metatable: __index the read-only string table, and what getmetatable("")
     * returns is a read-only proxy of the metatable itself. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_getfield(L, g, LUA_STRLIBNAME);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    make_readonly(L);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
    interp__sandbox_bound_table(L);
    set_library(L, g, LUA_TABLIBNAME);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
    lua_getfield(L, -1, "randomseed");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &randomseed_key);
    set_library(L, g, LUA_MATHLIBNAME);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
    set_library(L, g, LUA_UTF8LIBNAME);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 0);
    set_library(L, g, LUA_COLIBNAME);

    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_createtable(L, 0, 5);
    static const char *const kept_os[] = {"clock", "time", "date", "difftime", NULL};
    for (int i = 0; kept_os[i]; i++) {
        lua_getfield(L, -2, kept_os[i]);
        lua_setfield(L, -2, kept_os[i]);
    }
    lua_remove(L, -2);
    interp__install_io(L, g, lua_gettop(L));
    set_library(L, g, LUA_OSLIBNAME);
    lua_getfield(L, g, "print");
    lua_pushcclosure(L, interp__sandbox_stack_checked, 1);
    lua_setfield(L, g, "print");

    interp__push_module(L);
    set_library(L, g, "interp");

    /* The metatable of every task environment: reads fall through to G; protected. */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, g);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &env_mt_key);
    lua_settop(L, g - 1);
}

static void open_full(lua_State *L)
{
    luaL_openlibs(L);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    /* the interruptible pattern functions, rep and sort: a cancel or deadline reaches them in
     * trusted code too (same results as Lua's; lib_string.c, lib_sort.c) */
    lua_getfield(L, g, LUA_STRLIBNAME);
    interp__lib_string(L);
    lua_pop(L, 1);
    lua_getfield(L, g, LUA_TABLIBNAME);
    interp__lib_table(L);
    lua_pop(L, 1);
    lua_getfield(L, g, LUA_OSLIBNAME);
    interp__install_io(L, g, lua_gettop(L));
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    interp__push_module(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, g, "interp");
    lua_setfield(L, -2, "interp"); /* require "interp" works too */
    lua_settop(L, g - 1);
}

int interp__open_profile(lua_State *L)
{
    if (interp__state_of(L)->sandbox)
        open_sandbox(L);
    else
        open_full(L);
    return 0;
}
