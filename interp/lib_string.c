/* lib_string.c - string.find/match/gmatch/gsub and string.rep, written here so that their loops
 * can be interrupted (lib_impl.h): Lua's matcher backtracks inside C, where no hook reaches, and
 * a pattern of a few bytes can make it run for hours; a plain find is O(n m).
 *
 * The matcher is base/lua_match.c (shared with frozen buffers): same results and error
 * messages as Lua 5.4's own functions, bounded recursion, and ticks for every step of work, so
 * the time between two looks at the cancellation token is bounded whatever the pattern, the
 * subject or the backtracking. Differences: none visible to scripts, apart from the
 * interrupt. */
#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "lib_impl.h"
#include "lua_match.h"
#include "sandbox_impl.h"

#define ESC '%'

static int lib_find(lua_State *L)
{
    size_t ls;
    const char *s = luaL_checklstring(L, 1, &ls);
    return interp__lua_find(L, s, ls, 1, interp__lib_poll(L));
}

static int lib_match(lua_State *L)
{
    size_t ls;
    const char *s = luaL_checklstring(L, 1, &ls);
    return interp__lua_find(L, s, ls, 0, interp__lib_poll(L));
}

/* ---- gmatch --------------------------------------------------------------------------- */

static int gmatch_step(lua_State *L)
{
    return interp__gmatch_step(lua_touserdata(L, lua_upvalueindex(3)), L);
}

static int lib_gmatch(lua_State *L)
{
    size_t ls;
    const char *s = luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    lua_settop(L, 3); /* the subject and the pattern stay alive as upvalues */
    interp__gmatch *g = lua_newuserdatauv(L, sizeof *g, 0);
    interp__gmatch_init(g, L, s, ls, interp__lib_poll(L));
    lua_remove(L, 3);
    lua_pushcclosure(L, gmatch_step, 3);
    return 1;
}

/* ---- gsub ----------------------------------------------------------------------------- */

/* A replacement string: %0 the whole match, %1-%9 captures, %% a percent sign. */
static void add_template(interp__matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *r = lua_tolstring(m->L, 3, &l);
    const char *pc;
    while ((pc = memchr(r, ESC, l)) != NULL) {
        luaL_addlstring(b, r, (size_t)(pc - r));
        pc++; /* the byte after '%' (Lua's terminating NUL if '%' ends the string) */
        if (*pc == ESC) {
            luaL_addchar(b, ESC);
        } else if (*pc == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)*pc)) {
            const char *at;
            ptrdiff_t len = interp__match_capture(m, *pc - '1', s, e, &at);
            if (len == INTERP__CAP_POSITION)
                luaL_addvalue(b);
            else
                luaL_addlstring(b, at, (size_t)len);
        } else {
            luaL_error(m->L, "invalid use of '%c' in replacement string", ESC);
        }
        l -= (size_t)(pc + 1 - r);
        r = pc + 1;
    }
    luaL_addlstring(b, r, l);
}

/* Append the replacement of the match s..e; returns whether the text changed. */
static int add_replacement(interp__matcher *m, luaL_Buffer *b, const char *s, const char *e,
                           int type)
{
    lua_State *L = m->L;
    if (type == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = interp__match_push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (type == LUA_TTABLE) {
        interp__match_push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_template(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the match */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int lib_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int type = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L,
                     type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION ||
                         type == LUA_TTABLE,
                     3, "string/function/table");
    if (interp__state_of(L)->sandbox) /* a replacement calls Lua back: keep the reserve */
        interp__sandbox_check_c_stack(L);
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    interp__matcher m;
    interp__matcher_init(&m, L, s, ls, p, lp, interp__lib_poll(L));
    const char *from = s, *last = NULL;
    lua_Integer n = 0;
    int changed = 0;
    while (n < max) {
        const char *e = interp__match_at(&m, from, p);
        if (e && e != last) {
            n++;
            changed |= add_replacement(&m, &b, from, e, type);
            from = last = e;
        } else if (from < m.src_end) {
            luaL_addchar(&b, *from++);
        } else {
            break;
        }
        if (anchored)
            break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, from, (size_t)(m.src_end - from));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

/* ---- rep ------------------------------------------------------------------------------ */

/* Lua's bound on a string this library builds (lstrlib.c's MAXSIZE on 64-bit systems). */
#define MAX_RESULT ((size_t)INT_MAX)

/* string.rep(s, n [, sep]): one copy of s..sep, then doubling copies of what is written, so
 * the work is linear in the result (memory the task owns), and an empty result costs nothing
 * however large n is. */
static int lib_rep(lua_State *L)
{
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (l + lsep < l || l + lsep > MAX_RESULT / (size_t)n)
        return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, total);
    size_t done = l < total ? l : total;
    memcpy(out, s, done);
    if (done < total) {
        size_t k = lsep < total - done ? lsep : total - done;
        memcpy(out + done, sep, k);
        done += k;
    }
    interp__ticker t;
    interp__ticker_init(&t, L);
    while (done < total) { /* the text is periodic: a copy of its start continues it */
        size_t k = done < total - done ? done : total - done;
        memcpy(out + done, out, k);
        done += k;
        interp__tick(&t, (long)(k >> 12) + 1);
    }
    luaL_pushresultsize(&b, total);
    return 1;
}

/* ---- installation --------------------------------------------------------------------- */

/* Every profile gets these (the interrupt reaches them in trusted code too). gsub, which calls
 * Lua back, keeps the sandbox's C stack reserve (sandbox_bounds.c) in the sandbox. */
void interp__lib_string(lua_State *L)
{
    static const luaL_Reg fns[] = {{"find", lib_find}, {"match", lib_match}, {"gmatch", lib_gmatch},
                                   {"gsub", lib_gsub}, {"rep", lib_rep},     {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
