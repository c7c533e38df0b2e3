/* frozen_buf.c - frozen buffers in Lua: #b and string-like readers that never copy the whole
 * buffer. b:len(), b:byte(i [, j]), b:sub(i [, j]) and b:find(s [, init [, plain]]) follow
 * string.byte/sub/find (same index rules); find takes plain substrings only (a pattern with
 * magic characters and plain not true raises: a pattern match would need the bytes as a Lua
 * string). b:unpack(fmt [, pos]) is string.unpack run on a window of the buffer: the bytes
 * the format needs (string.packsize), or, for variable-length formats, a window that grows 4x
 * until the values fit; the window starts 16-aligned below pos, so alignment options ('!',
 * 'X') give what they would on the whole string. */
#include <lauxlib.h>
#include <limits.h>
#include <string.h>

#include "frozen_impl.h"
#include "lua_pos.h"

static const fz_buffer *check_buf(lua_State *L, int idx)
{
    return (const fz_buffer *)interp__frozen_check(L, idx, FZ_BUFFER);
}

static int b_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_buf(L, 1)->len);
    return 1;
}

static int b_byte(lua_State *L)
{
    const fz_buffer *b = check_buf(L, 1);
    lua_Integer pi = luaL_optinteger(L, 2, 1);
    size_t i = interp__lua_pos_start(pi, b->len);
    size_t j = interp__lua_pos_end(luaL_optinteger(L, 3, pi), b->len); /* default: pi as given */
    if (i > j)
        return 0;
    if (j - i >= (size_t)INT_MAX)
        return luaL_error(L, "string slice too long");
    int n = (int)(j - i) + 1;
    luaL_checkstack(L, n, "string slice too long");
    const unsigned char *p = (const unsigned char *)b->data + i - 1;
    for (int k = 0; k < n; k++)
        lua_pushinteger(L, p[k]);
    return n;
}

static int b_sub(lua_State *L)
{
    const fz_buffer *b = check_buf(L, 1);
    size_t i = interp__lua_pos_start(luaL_checkinteger(L, 2), b->len);
    size_t j = interp__lua_pos_end(luaL_optinteger(L, 3, -1), b->len);
    if (i > j)
        lua_pushliteral(L, "");
    else
        lua_pushlstring(L, b->data + i - 1, j - i + 1);
    return 1;
}

static int b_find(lua_State *L)
{
    const fz_buffer *b = check_buf(L, 1);
    size_t plen;
    const char *pat = luaL_checklstring(L, 2, &plen);
    size_t init = interp__lua_pos_start(luaL_optinteger(L, 3, 1), b->len);
    if (init > b->len + 1) {
        lua_pushnil(L);
        return 1;
    }
    if (!lua_toboolean(L, 4))
        for (size_t k = 0; k < plen; k++)
            if (pat[k] && strchr("^$*+?.([%-", pat[k]))
                return luaL_argerror(L, 2, "patterns are not supported on a frozen buffer "
                                           "(pass plain = true)");
    const char *hay = b->data + init - 1;
    const char *at = memmem(hay, b->len - (init - 1), pat, plen);
    if (!at) {
        lua_pushnil(L);
        return 1;
    }
    lua_Integer s = (lua_Integer)(at - b->data) + 1;
    lua_pushinteger(L, s);
    lua_pushinteger(L, s + (lua_Integer)plen - 1);
    return 2;
}

/* Call string.unpack(fmt, b[base .. end), pos - base + 1) protected; on success the results
 * replace everything above `top`, the last one shifted by base. Returns the pcall status. */
static int unpack_window(lua_State *L, int top, const fz_buffer *b, size_t base, size_t end,
                         size_t pos)
{
    lua_settop(L, top);
    lua_pushvalue(L, lua_upvalueindex(1)); /* string.unpack */
    lua_pushvalue(L, 2);
    lua_pushlstring(L, b->data + base, end - base);
    lua_pushinteger(L, (lua_Integer)(pos - base) + 1);
    int rc = lua_pcall(L, 3, LUA_MULTRET, 0);
    if (rc == LUA_OK) {
        lua_Integer next = lua_tointeger(L, -1) + (lua_Integer)base;
        lua_pop(L, 1);
        lua_pushinteger(L, next);
    }
    return rc;
}

static int b_unpack(lua_State *L)
{
    const fz_buffer *b = check_buf(L, 1);
    luaL_checkstring(L, 2);
    size_t pos = interp__lua_pos_start(luaL_optinteger(L, 3, 1), b->len) - 1;
    luaL_argcheck(L, pos <= b->len, 3, "initial position out of string");
    if (lua_isnil(L, lua_upvalueindex(1)))
        return luaL_error(L, "string.unpack is not available in this state");
    lua_settop(L, 3);
    int top = 3;
    size_t base = pos & ~(size_t)15;
    /* fixed-size formats: exactly the bytes they need */
    lua_pushvalue(L, lua_upvalueindex(2)); /* string.packsize */
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
        size_t need = (size_t)lua_tointeger(L, -1);
        size_t end = need > b->len - pos ? b->len : pos + need;
        if (unpack_window(L, top, b, base, end, pos) != LUA_OK)
            return lua_error(L);
        return lua_gettop(L) - top;
    }
    const char *why = lua_tostring(L, -1);
    if (!why || !strstr(why, "variable-length"))
        return lua_error(L); /* an invalid format: packsize's reason */
    for (size_t w = 256;; w *= 4) {
        size_t end = w > b->len - pos ? b->len : pos + w;
        if (unpack_window(L, top, b, base, end, pos) == LUA_OK)
            return lua_gettop(L) - top;
        why = lua_tostring(L, -1);
        if (end == b->len || !why || (!strstr(why, "too short") && !strstr(why, "unfinished string")))
            return lua_error(L);
    }
}

static int b_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify a frozen buffer");
}

void interp__frozen_buf_methods(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"len", b_len}, {"byte", b_byte}, {"sub", b_sub}, {"find", b_find}, {NULL, NULL}};
    luaL_setfuncs(L, methods, 0);
    /* string.unpack and string.packsize as they are now (a later change by a script does not
     * reach the buffers) */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "string");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "unpack");
        lua_getfield(L, -2, "packsize");
    } else {
        lua_pushnil(L);
        lua_pushnil(L);
    }
    lua_pushcclosure(L, b_unpack, 2);
    lua_setfield(L, -4, "unpack");
    lua_pop(L, 2);
}

void interp__frozen_buf_meta(lua_State *L)
{
    lua_pushcfunction(L, b_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, b_newindex);
    lua_setfield(L, -2, "__newindex");
}
