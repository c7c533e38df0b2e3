/* lib_impl.h - internal to interp/: the interruptible library functions (lib_string.c,
 * lib_sort.c) that replace Lua's own pattern functions, string.rep and table.sort in every
 * profile, and the interrupt poll their loops share.
 *
 * The cancellation hook counts Lua instructions; these functions loop inside C, so they count
 * their own work in "ticks" (a step of the matcher, a byte scanned, a comparison) and every
 * INTERP__TICKS ticks look at the worker's cancellation token: one relaxed load while no
 * interrupt is pending. When one is, interp__poll_irq meets the hook exactly as Lua code would
 * (the first raise, the quiet grace, then a raise at every poll). */
#ifndef INTERP_LIB_IMPL_H
#define INTERP_LIB_IMPL_H

#include <lua.h>
#include <stdatomic.h>

#include "interp_impl.h"

#define INTERP__TICKS 1024

typedef struct interp__ticker {
    lua_State *L;
    interp__cancel *tok;   /* the worker's token (NULL: a state without one: never polls) */
    long left;             /* ticks until the next look */
} interp__ticker;

static inline void interp__ticker_init(interp__ticker *t, lua_State *L)
{
    t->L = L;
    t->tok = interp__lua_ctx_get(L)->cancel;
    t->left = INTERP__TICKS;
}

/* The slow path of interp__tick: look at the token (and meet the hook if it fired). */
static inline void interp__ticker_look(interp__ticker *t)
{
    t->left = INTERP__TICKS;
    if (t->tok && atomic_load_explicit(&t->tok->reason, memory_order_relaxed))
        interp__poll_irq(t->L);
}

/* Count `cost` ticks of work; may raise the cancellation error (a Lua error: longjmp). */
static inline void interp__tick(interp__ticker *t, long cost)
{
    t->left -= cost;
    if (t->left <= 0)
        interp__ticker_look(t);
}

/* Set, in the library table at the top of the stack, Lua's find/match/gmatch/gsub and rep
 * (lib_string.c) or sort (lib_sort.c) as the interruptible versions. Raise on memory error. */
void interp__lib_string(lua_State *L);
void interp__lib_table(lua_State *L);

#endif
