/* lua_pos.h - Lua 5.4's string position rules (lstrlib's posrelat), shared by the
 * interruptible string functions (interp/lib_string.c) and frozen buffers (frozen_buf.c). */
#ifndef INTERP_LUA_POS_H
#define INTERP_LUA_POS_H

#include <stddef.h>
#include <lua.h>

/* A start position as Lua reads it, 1-based: negative counts from the end, 0 and anything
 * before the start are 1. May exceed len (callers check). */
static inline size_t interp__lua_pos_start(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0)
        return 1;
    if (pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

/* An end position as Lua reads it: clamped to len; negative counts from the end; 0 before
 * the start. */
static inline size_t interp__lua_pos_end(lua_Integer pos, size_t len)
{
    if (pos > (lua_Integer)len)
        return len;
    if (pos >= 0)
        return (size_t)pos;
    if (pos < -(lua_Integer)len)
        return 0;
    return len + (size_t)pos + 1;
}

#endif
