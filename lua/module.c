/* module.c - `require "interp_pool"`: the module table and the helpers every part of the
 * binding shares (errors, timeouts, task functions, encoding, the host's channel context). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp_pool_lua.h"
#include "lm.h"

const interp_msg_opts interp__lm_msg_opts = {.allow_functions = true};
const interp_msg_opts interp__lm_msg_opts_untrusted = {.allow_functions = false};

int interp__lm_status_error(lua_State *L, const char *where, int status)
{
    return luaL_error(L, "%s: %s", where, interp_strerror(status));
}

static int push_string_protected(lua_State *L)
{
    lua_pushstring(L, (const char *)lua_touserdata(L, 1));
    return 1;
}

void interp__lm_register_class(lua_State *L, const char *name, const luaL_Reg *meta,
                               const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

void interp__lm_push_owned(lua_State *L, char *text, const char *fallback)
{
    if (!text) {
        lua_pushstring(L, fallback);
        return;
    }
    /* Light C functions and light userdata are values: pushing them never allocates. */
    lua_pushcfunction(L, push_string_protected);
    lua_pushlightuserdata(L, text);
    int rc = lua_pcall(L, 1, 1, 0);
    free(text);
    if (rc != LUA_OK)
        lua_error(L);
}

double interp__lm_opt_timeout(lua_State *L, int idx, const char *where)
{
    if (lua_isnoneornil(L, idx))
        return INTERP_FOREVER;
    int isnum = 0;
    lua_Number t = lua_tonumberx(L, idx, &isnum);
    if (!isnum)
        luaL_error(L, "%s: timeout must be a number of seconds or nil, got %s", where,
                   luaL_typename(L, idx));
    if (isnan(t) || t < 0)
        luaL_error(L, "%s: timeout must be >= 0 seconds (nil: no limit), got %f", where, t);
    /* beyond ~30 years is "forever": no deadline arithmetic overflows */
    return t > 1e9 ? INTERP_FOREVER : (double)t;
}

/* Why the function at idx cannot be sent to a worker: only _ENV may be an upvalue, because a
 * task runs in another state; the codec would copy other upvalues, so that the function would
 * silently work on a copy of the host's variables. Returns NULL when the function is fine;
 * *plain tells whether every upvalue holds the globals (so its copy never changes). */
static const char *bad_upvalue(lua_State *L, int idx, bool *plain)
{
    *plain = true;
    for (int i = 1;; i++) {
        const char *name = lua_getupvalue(L, idx, i);
        if (!name)
            return NULL;
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
        bool globals = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        *plain = *plain && globals;
        /* A stripped function has no upvalue names: accept what holds the globals. */
        if (strcmp(name, "_ENV") != 0 && !globals)
            return name;
    }
}

void interp__lm_check_fn(lua_State *L, int idx, const char *where, bool sandboxed, interp_fn *fn)
{
    memset(fn, 0, sizeof *fn);
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *name = lua_tolstring(L, idx, &len);
        if (len == 0 || strlen(name) != len)
            luaL_error(L, "%s: the function name must be a non-empty string without NUL bytes",
                       where);
        fn->kind = INTERP_FN_NAME;
        fn->text = name; /* borrowed from the stack slot, which outlives the call */
        return;
    }
    if (lua_type(L, idx) != LUA_TFUNCTION)
        luaL_error(L,
                   "%s: expected a function or the name of a global function of the "
                   "workers, got %s",
                   where, luaL_typename(L, idx));
    if (lua_iscfunction(L, idx))
        luaL_error(L,
                   "%s: a C function cannot be copied to a worker; define a Lua function "
                   "in init and pass its name",
                   where);
    if (sandboxed)
        luaL_error(L,
                   "%s: a sandboxed pool does not accept functions as bytecode; define the "
                   "function in init and pass its name",
                   where);
    bool plain;
    const char *up = bad_upvalue(L, idx, &plain);
    if (up)
        luaL_error(L,
                   "%s: the function uses the local variable '%s' of the host script (an "
                   "upvalue); a task runs in another Lua state: pass '%s' as an argument or "
                   "define it inside the function",
                   where, up, up);
    fn->kind = INTERP_FN_FUNCTION;
    /* The copy of a function whose only upvalue is the globals never changes: keep it in a
     * weak cache, so that submitting the same function again costs no encoding. */
    lua_getfield(L, LUA_REGISTRYINDEX, LM_FNCACHE);
    lua_pushvalue(L, idx);
    if (plain && lua_rawget(L, -2) == LUA_TUSERDATA) {
        fn->function = ((lm_box *)lua_touserdata(L, -1))->msgs[0];
        lua_pop(L, 2); /* the cache keeps the box while the function (on the stack) lives */
        return;
    }
    lua_pop(L, 1);
    lm_box *box = interp__lm_box_new(L, 1, 0);
    interp_msg_error err;
    int rc = interp_msg_from_lua(L, idx, 1, &interp__lm_msg_opts, &box->msgs[0], &err);
    if (rc != INTERP_OK) {
        box->msgs[0] = NULL;
        luaL_error(L, "%s: cannot copy the function: %s", where, err.text);
    }
    fn->function = box->msgs[0];
    if (plain) {
        lua_pushvalue(L, idx);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4); /* cache[function] = box */
    }
    /* Otherwise the box stays on the caller's stack until the call returns, then is freed by
     * the collector. */
    lua_remove(L, -2); /* the cache table */
}

void interp__lm_encode(lua_State *L, int first, int count, const char *where, const char *what,
                       interp_msg **out)
{
    *out = NULL;
    if (count <= 0)
        return;
    interp_msg_error err;
    int rc = interp_msg_from_lua(L, first, count, &interp__lm_msg_opts, out, &err);
    if (rc != INTERP_OK) {
        *out = NULL;
        luaL_error(L, "%s: cannot copy %s: %s", where, what, err.text);
    }
}

lm_box *interp__lm_box_new(lua_State *L, size_t nmsgs, size_t ntexts)
{
    size_t max = (SIZE_MAX - sizeof(lm_box)) / sizeof(void *) / 2;
    if (nmsgs > max || ntexts > max)
        luaL_error(L, "interp_pool: too many items (%I)", (lua_Integer)(nmsgs + ntexts));
    size_t size = sizeof(lm_box) + (nmsgs + ntexts) * sizeof(void *);
    lm_box *b = lua_newuserdatauv(L, size, 0);
    memset(b, 0, size);
    b->nmsgs = nmsgs;
    b->ntexts = ntexts;
    b->msgs = (interp_msg **)(b + 1);
    b->texts = (char **)(b->msgs + nmsgs);
    luaL_setmetatable(L, LM_BOX_MT);
    return b;
}

void interp__lm_box_clear(lm_box *b)
{
    for (size_t i = 0; i < b->nmsgs; i++) {
        interp_msg_free(b->msgs[i]);
        b->msgs[i] = NULL;
    }
    for (size_t i = 0; i < b->ntexts; i++) {
        free(b->texts[i]);
        b->texts[i] = NULL;
    }
}

static int box_gc(lua_State *L)
{
    interp__lm_box_clear(luaL_checkudata(L, 1, LM_BOX_MT));
    return 0;
}

/* ip.now(): seconds on the monotonic clock, for timing a run (os.clock counts the CPU time of
 * every thread of the process, os.time has a resolution of one second). */
static int lm_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)interp_now());
    return 1;
}

/* ip.strerror(code) for the integer codes some results carry. */
static int lm_strerror(lua_State *L)
{
    lua_pushstring(L, interp_strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

static const luaL_Reg module_funcs[] = {
    {"new", interp__lm_pool_new},
    {"wait", interp__lm_wait},
    {"as_completed", interp__lm_as_completed},
    {"now", lm_now},
    {"strerror", lm_strerror},
    {"channel", interp__lm_channel_new},
    {NULL, NULL},
};

INTERP_API int luaopen_interp_pool(lua_State *L)
{
    luaL_checkversion(L);
    interp__lm_pool_register(L);
    interp__lm_ctx_register(L);
    interp__lm_imap_register(L, lm_now);
    interp__lm_future_register(L);
    interp__lm_wait_register(L);
    lua_newtable(L); /* the function cache: weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, LM_FNCACHE);
    luaL_newmetatable(L, LM_BOX_MT);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, LM_BOX_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    luaL_newlib(L, module_funcs);
    /* ip.select: the one the workers have (in a worker's state, bound to its task's cancel) */
    interp_chan_push_select(L);
    lua_setfield(L, -2, "select");
    /* ip.freeze, thaw, isfrozen, buffer, next, unpack, mapfile: values the host script freezes
     * are charged to no pool and to no limit (the host's own memory) */
    interp_frozen_lua_open(L);
    lua_pushliteral(L, "interp_pool 0.1.0");
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
