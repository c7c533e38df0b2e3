/* lua_interrupt.h - internal: noticing Ctrl-C in a script host while a C call waits.
 *
 * lua5.4 (lua.c) and `interp-pool run` handle SIGINT by installing a hook on the main Lua
 * thread, which raises "interrupted!" at the next instruction; a C function blocked in a wait
 * runs no instruction, so it would never see it. A call that may block takes a snapshot of the
 * hooks of the running Lua thread and the main thread before it waits, and compares every
 * INTERP__LUA_INTR_POLL seconds while it waits: nothing else runs Lua code meanwhile, so a
 * changed hook comes from a signal handler (or, in a worker state, from a cancel of the task
 * waiting): an interrupt. The waiting call then cancels what it waited on and raises
 * "interrupted", an error like any other: the script may catch it with pcall, and uncaught it
 * ends the script as the interpreter reports errors. In a script host the interrupt is taken
 * over by that error: the interpreter's hook is removed again (else it would replace the
 * error at the next instruction, in the script's pcall or message handler); lua.c has already
 * reset SIGINT to its default, so a second Ctrl-C kills the process, as usual. In a worker
 * state (a task's cancel) the hook stays: it is the cancel's. */
#ifndef INTERP_LUA_INTERRUPT_H
#define INTERP_LUA_INTERRUPT_H

#include <lua.h>
#include <stdbool.h>

#define INTERP__LUA_INTR_POLL 0.02 /* seconds */

typedef struct interp__lua_intr {
    lua_State *L, *main;
    lua_Hook hook, main_hook;
    int mask, main_mask, count, main_count;
} interp__lua_intr;

/* Take the snapshot (L: the running thread). Does not raise. */
void interp__lua_intr_begin(lua_State *L, interp__lua_intr *s);
/* Whether a hook changed since the snapshot. */
bool interp__lua_intr_seen(const interp__lua_intr *s);
/* In a script host (no task token), remove the hooks that appeared since the snapshot. */
void interp__lua_intr_consume(const interp__lua_intr *s);
/* Raise the error "interrupted" (does not return). */
int interp__lua_intr_raise(lua_State *L);
/* A map option callback (ud: an interp__lua_intr). */
bool interp__lua_intr_poll(void *ud);

/* One bounded wait: wait up to `slice` seconds, INTERP_ERR_TIMEOUT when nothing came. */
typedef int (*interp__lua_intr_wait_fn)(void *ud, double slice);
/* Wait as `wait` does for up to `timeout` seconds (INTERP_FOREVER, < 0: no limit; 0: one try
 * without waiting), in slices of at most INTERP__LUA_INTR_POLL seconds, looking for an
 * interrupt of L between them. Returns what wait returned last (INTERP_ERR_TIMEOUT when the
 * timeout passed); INTERP_ERR_CANCELLED with *interrupted set when an interrupt was seen
 * (consumed already): the caller cancels what it waited on, then raises with
 * interp__lua_intr_raise. */
int interp__lua_intr_wait(lua_State *L, double timeout, interp__lua_intr_wait_fn wait, void *ud,
                          bool *interrupted);

#endif
