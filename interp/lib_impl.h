/* lib_impl.h - internal to interp/: the interruptible library functions (lib_string.c,
 * lib_sort.c) that replace Lua's own pattern functions, string.rep and table.sort in every
 * profile, and the interrupt poll their loops share.
 *
 * The cancellation hook counts Lua instructions; these functions loop inside C, so they count
 * their own work in "ticks" (a step of the matcher, a byte scanned, a comparison; the ticker is
 * base/lua_match.h's) and every INTERP__TICKS ticks call interp__poll_irq: one atomic load while
 * no interrupt is pending; when one is, it meets the hook exactly as Lua code would (the first
 * raise, the quiet grace, then a raise at every poll). */
#ifndef INTERP_LIB_IMPL_H
#define INTERP_LIB_IMPL_H

#include <lua.h>

#include "interp_impl.h"

#include "lua_match.h" /* interp__ticker, interp__tick */

/* The poll of L's ticks: the cancellation poll of its worker, NULL in a state without a
 * token (never polls). */
static inline void (*interp__lib_poll(lua_State *L))(lua_State *)
{
    return interp__lua_ctx_get(L)->cancel ? interp__poll_irq : NULL;
}

static inline void interp__ticker_init(interp__ticker *t, lua_State *L)
{
    interp__ticker_start(t, L, interp__lib_poll(L));
}

/* Set, in the library table at the top of the stack, Lua's find/match/gmatch/gsub and rep
 * (lib_string.c) or sort (lib_sort.c) as the interruptible versions. Raise on memory error. */
void interp__lib_string(lua_State *L);
void interp__lib_table(lua_State *L);

#endif
