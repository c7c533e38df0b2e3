/* sandbox_bounds.c - the safe profile's bounds on what runs inside C, where the cancellation
 * hook (which counts Lua instructions) does not reach: loops over ranges a script chooses,
 * C functions called back from C loops, and the C stack. (The pattern functions, string.rep
 * and table.sort are interruptible in every profile: lib_string.c, lib_sort.c.)
 * Installed by sandbox.c (declarations in sandbox_impl.h); the rules are listed at
 * INTERP_SANDBOX_SAFE in interp_types.h. */
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "interp_impl.h"
#include "lib_impl.h"
#include "sandbox_impl.h"

/* ---- interrupt polls inside C loops ----------------------------------------------------
 * The cancellation hook counts Lua instructions, so a loop inside a C function that runs no
 * Lua code (table.move over a huge range, a sort or gsub calling C functions back) is out of
 * its reach. Such loops poll (interp__poll_irq, module.c) every POLL_EVERY iterations. */

#define POLL_EVERY 256

#define poll_irq interp__poll_irq

static inline void poll_at(lua_State *L, lua_Unsigned i)
{
    if ((i & (POLL_EVERY - 1)) == POLL_EVERY - 1)
        poll_irq(L);
}

/* ---- C stack reserve -------------------------------------------------------------------
 * Lua stops C recursion after 200 levels, whatever each level costs. Library functions with a
 * luaL_Buffer on the C stack (string.format, gsub, table.concat, print) take ~1.5 KiB a level
 * (more under sanitizers), so `__tostring = function(o) return string.format('%s', o) end`
 * needs ~400 KiB: beyond the pool's 256 KiB floor, a SIGSEGV. The sandbox's versions of the
 * functions that call Lua code back refuse to start when less than STACK_RESERVE bytes of the
 * thread's stack remain (the message handler and the unwinding run in that reserve). */

#define STACK_RESERVE ((uintptr_t)96 << 10)

static INTERP__TLS uintptr_t stack_floor_tl; /* 0: not known yet; 1: cannot be known */

static uintptr_t stack_floor(void)
{
    if (!stack_floor_tl) {
        uintptr_t floor = 1;
        pthread_attr_t a;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstack(&a, &addr, &size) == 0 && size > 2 * STACK_RESERVE)
                floor = (uintptr_t)addr + STACK_RESERVE;
            pthread_attr_destroy(&a);
        }
        stack_floor_tl = floor;
    }
    return stack_floor_tl;
}

/* Raise "C stack overflow" when the running thread's stack is nearly used up. The frame
 * address, not a local's: under ASan a local may live on a heap "fake stack". */
void interp__sandbox_check_c_stack(lua_State *L)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (here < stack_floor())
        luaL_error(L,
                   "C stack overflow (the sandbox keeps %d KiB of the thread's stack in "
                   "reserve)",
                   (int)(STACK_RESERVE >> 10));
}

/* Upvalue 1: the standard function. Checks the C stack, then calls it. */
int interp__sandbox_stack_checked(lua_State *L)
{
    interp__sandbox_check_c_stack(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- loops bounded by the interrupt ---------------------------------------------------
 * Loops whose length a script chooses with a number rather than with memory it owns: Lua's
 * table.insert/remove/move/concat walk a range (#t may come from __len, and raw nils are
 * free to read and write: `table.move({}, 1, 1e15, 1)` runs for days without allocating).
 * The sandbox's versions keep Lua's behaviour and messages and poll the interrupt (above) in
 * their loops. */

enum { TAB_R = 1, TAB_W = 2, TAB_L = 4 };

/* Lua's rule: a table, or a value with the metamethods the operation needs. */
static void check_tab(lua_State *L, int arg, int what)
{
    if (lua_type(L, arg) == LUA_TTABLE)
        return;
    static const char *const ev[] = {"__index", "__newindex", "__len"};
    for (int i = 0; i < 3; i++) {
        if (!(what & (1 << i)))
            continue;
        if (luaL_getmetafield(L, arg, ev[i]) == LUA_TNIL)
            luaL_checktype(L, arg, LUA_TTABLE); /* raises "table expected" */
        lua_pop(L, 1);
    }
}

static int sb_tinsert(lua_State *L)
{
    check_tab(L, 1, TAB_R | TAB_W | TAB_L);
    lua_Integer e = (lua_Integer)((lua_Unsigned)luaL_len(L, 1) + 1u); /* first empty slot */
    lua_Integer pos = e;
    switch (lua_gettop(L)) {
    case 2:
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        for (lua_Integer i = e; i > pos; i--) { /* shift up */
            poll_at(L, (lua_Unsigned)(e - i));
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

static int sb_tremove(lua_State *L)
{
    check_tab(L, 1, TAB_R | TAB_W | TAB_L);
    lua_Integer size = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    lua_geti(L, 1, pos);                               /* the result */
    for (lua_Unsigned n = 0; pos < size; pos++, n++) { /* shift down */
        poll_at(L, n);
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

static int sb_tmove(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = lua_isnoneornil(L, 5) ? 1 : 5;
    check_tab(L, 1, TAB_R);
    check_tab(L, tt, TAB_W);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1; /* elements to move */
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
            for (lua_Integer i = 0; i < n; i++) {
                poll_at(L, (lua_Unsigned)i);
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        } else { /* overlapping, destination after the source: copy backwards */
            for (lua_Integer i = n - 1; i >= 0; i--) {
                poll_at(L, (lua_Unsigned)(n - 1 - i));
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

static void concat_field(lua_State *L, luaL_Buffer *b, lua_Integer i)
{
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (at index %I) in table for 'concat'", (LUAI_UACINT)i);
    luaL_addvalue(b);
}

static int sb_tconcat(lua_State *L)
{
    interp__sandbox_check_c_stack(L);
    check_tab(L, 1, TAB_R | TAB_L);
    lua_Integer last = luaL_len(L, 1);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Unsigned n = 0; i < last; i++, n++) {
        poll_at(L, n); /* balanced: the buffer's use of the stack is undisturbed */
        concat_field(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
    }
    if (i == last)
        concat_field(L, &b, i);
    luaL_pushresult(&b);
    return 1;
}

static void set_fn(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
}

/* ---- installation ---------------------------------------------------------------------- */

void interp__sandbox_bound_string(lua_State *L)
{
    interp__lib_string(L); /* find/match/gmatch/gsub/rep: interruptible (lib_string.c) */
    /* format: the C stack reserve is checked by sandbox_ids.c's wrapper */
}

void interp__sandbox_bound_table(lua_State *L)
{
    set_fn(L, "insert", sb_tinsert);
    set_fn(L, "remove", sb_tremove);
    set_fn(L, "move", sb_tmove);
    set_fn(L, "concat", sb_tconcat);
    interp__lib_table(L); /* sort: interruptible (lib_sort.c) */
}
