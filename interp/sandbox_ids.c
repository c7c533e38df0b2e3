/* sandbox_ids.c - no heap addresses in the sandbox: tostring, print and string.format's %s
 * and %p show a table, function, coroutine or userdata as "<type>: 0x<counter>", where the
 * counter numbers the objects of this state in the order they were first shown (a weak-keyed
 * registry table holds the numbers, so a shown object is still collected). An address tells a
 * task about the heap layout other tasks left behind (and defeats address randomisation); a
 * counter tells it only how many objects this state has shown so far. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "interp_impl.h"
#include "sandbox_impl.h"

static const char ids_key = 0; /* registry: weak-keyed table object -> number */

static bool has_identity(int t)
{
    return t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TTHREAD || t == LUA_TUSERDATA ||
           t == LUA_TLIGHTUSERDATA;
}

/* The number of the object at idx (given one on first use). */
static lua_Integer object_id(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ids_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &ids_key);
    }
    lua_pushvalue(L, idx);
    lua_Integer id;
    if (lua_rawget(L, -2) == LUA_TNUMBER) {
        id = lua_tointeger(L, -1);
    } else {
        id = ++interp__state_of(L)->next_object_id;
        lua_pushvalue(L, idx);
        lua_pushinteger(L, id);
        lua_rawset(L, -4);
    }
    lua_pop(L, 2);
    return id;
}

static void push_id_text(lua_State *L, const char *kind, lua_Integer id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "0x%08llx", (unsigned long long)id);
    if (kind)
        lua_pushfstring(L, "%s: %s", kind, buf);
    else
        lua_pushstring(L, buf);
}

/* luaL_tolstring with a counter in place of the address. */
const char *interp__sandbox_tolstring(lua_State *L, int idx, size_t *len)
{
    idx = lua_absindex(L, idx);
    if (luaL_callmeta(L, idx, "__tostring")) {
        if (!lua_isstring(L, -1))
            luaL_error(L, "'__tostring' must return a string");
        return lua_tolstring(L, -1, len);
    }
    if (!has_identity(lua_type(L, idx)))
        return luaL_tolstring(L, idx, len);
    lua_Integer id = object_id(L, idx);
    int nt = luaL_getmetafield(L, idx, "__name"); /* pushes nothing when nil */
    const char *kind = nt == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, idx);
    push_id_text(L, kind, id);
    if (nt != LUA_TNIL)
        lua_remove(L, -2);
    return lua_tolstring(L, -1, len);
}

static int sb_tostring(lua_State *L)
{
    luaL_checkany(L, 1);
    interp__sandbox_tolstring(L, 1, NULL);
    return 1;
}

/* string.format (upvalue 1: the sandbox's format): arguments of %s that would show an address
 * are shown with their counter; %p shows the counter of tables, functions, coroutines and
 * userdata and "(null)" for anything else (Lua's own text for values without an address;
 * a string's address is not shown either). The format is rewritten only when it has %p. */
static int sb_format(lua_State *L)
{
    interp__sandbox_check_c_stack(L); /* __tostring may recurse through format */
    size_t lf;
    const char *f = luaL_checklstring(L, 1, &lf);
    int arg = 1, top = lua_gettop(L);
    char *nf = lua_newuserdatauv(L, lf ? lf : 1, 0); /* the format, %p turned into %s */
    memcpy(nf, f, lf);
    for (size_t i = 0; i < lf; i++) {
        if (f[i] != '%')
            continue;
        if (++i >= lf)
            break;
        if (f[i] == '%')
            continue;
        while (i < lf && f[i] != '\0' && strchr("-+ #0.123456789", f[i]))
            i++; /* flags, width, precision */
        if (i >= lf || ++arg > top)
            break; /* the real format raises its own error */
        int t = lua_type(L, arg);
        if (f[i] == 's' && has_identity(t)) {
            interp__sandbox_tolstring(L, arg, NULL);
            lua_replace(L, arg);
        } else if (f[i] == 'p') {
            nf[i] = 's';
            if (has_identity(t))
                push_id_text(L, NULL, object_id(L, arg));
            else
                lua_pushliteral(L, "(null)");
            lua_replace(L, arg);
        }
    }
    lua_pushlstring(L, nf, lf);
    lua_replace(L, 1);
    lua_settop(L, top);
    /* called in this frame (not through lua_call), so that its errors name 'format' */
    return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

void interp__sandbox_ids_install(lua_State *L, int g, int string)
{
    lua_pushcfunction(L, sb_tostring);
    lua_setfield(L, g, "tostring");
    lua_getfield(L, string, "format");
    lua_pushcclosure(L, sb_format, 1);
    lua_setfield(L, string, "format");
}
