/* frozen_buf.c - frozen buffers in Lua: #b and string-like readers that never copy the whole
 * buffer. b:len(), b:byte(i [, j]), b:sub(i [, j]), b:find(pat [, init [, plain]]),
 * b:match(pat [, init]) and b:gmatch(pat [, init]) follow the string functions of the same
 * names (same index rules, same results, same errors): the patterns are matched in place in
 * the buffer's bytes by the matcher of the interruptible string library (base/lua_match.c:
 * its recursion bounded as Lua's, its work counted in ticks that poll the state's
 * cancellation, interp__frozen_lua_cfg.poll). Only captures and sub's result are copied out.
 * b:unpack(fmt [, pos]) is string.unpack run on a window of the buffer: the bytes
 * the format needs (string.packsize), or, for variable-length formats, a window that grows 4x
 * until the values fit; the window starts 16-aligned below pos, so alignment options ('!',
 * 'X') give what they would on the whole string. */
#include <lauxlib.h>
#include <limits.h>
#include <string.h>

#include "frozen_impl.h"
#include "lua_match.h"
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

/* find, match and gmatch have the per-state table (frozen_lua.c) as upvalue 1: where the
 * state's poll is found. */
static void (*buf_poll(lua_State *L))(lua_State *)
{
    const interp__frozen_lua_cfg *cfg = interp__frozen_cfg(L, lua_upvalueindex(1));
    return cfg ? cfg->poll : NULL;
}

static int b_find(lua_State *L)
{
    const fz_buffer *b = check_buf(L, 1);
    return interp__lua_find(L, b->data, b->len, 1, buf_poll(L));
}

static int b_match(lua_State *L)
{
    const fz_buffer *b = check_buf(L, 1);
    return interp__lua_find(L, b->data, b->len, 0, buf_poll(L));
}

typedef struct buf_gmatch {
    interp__gmatch g;
    const interp_frozen *obj; /* the buffer the view (upvalue 1) held when made */
} buf_gmatch;

/* Upvalues: the view, the pattern, the state. The view holds the bytes alive; it is checked
 * again at every step (a hand-called __gc or a debug.setupvalue gives an error, never a read
 * of freed bytes). */
static int b_gmatch_step(lua_State *L)
{
    buf_gmatch *bg = lua_touserdata(L, lua_upvalueindex(3));
    fz_view *v = interp__fz_view_of(L, lua_upvalueindex(1), FZ_BUFFER);
    if (!v || v->obj != bg->obj || lua_tostring(L, lua_upvalueindex(2)) != bg->g.p)
        return luaL_error(L, "the frozen buffer of this gmatch is gone");
    return interp__gmatch_step(&bg->g, L);
}

static int b_gmatch(lua_State *L)
{
    const fz_buffer *b = check_buf(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 3);
    buf_gmatch *bg = lua_newuserdatauv(L, sizeof *bg, 0);
    bg->obj = &b->h;
    interp__gmatch_init(&bg->g, L, b->data, b->len, buf_poll(L));
    lua_remove(L, 3);
    lua_pushcclosure(L, b_gmatch_step, 3);
    return 1;
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
        if (end == b->len || !why ||
            (!strstr(why, "too short") && !strstr(why, "unfinished string")))
            return lua_error(L);
    }
}

static int b_newindex(lua_State *L) { return luaL_error(L, "attempt to modify a frozen buffer"); }

void interp__frozen_buf_methods(lua_State *L, int st)
{
    static const luaL_Reg methods[] = {
        {"len", b_len}, {"byte", b_byte}, {"sub", b_sub}, {NULL, NULL}};
    static const luaL_Reg matching[] = {
        {"find", b_find}, {"match", b_match}, {"gmatch", b_gmatch}, {NULL, NULL}};
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, st);
    luaL_setfuncs(L, matching, 1);
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
