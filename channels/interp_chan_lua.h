/* interp_chan_lua.h - channels in a host's own Lua state, and waits there that notice Ctrl-C:
 * the channel objects and the select of the workers' `interp` table, for a host that runs Lua
 * itself (the `interp_pool` Lua module is built on these).
 *
 * Ctrl-C while a C function waits: lua5.4 (lua.c) and `interp-pool run` handle SIGINT by
 * installing a hook on the main Lua thread, which raises "interrupted!" at the next
 * instruction; a C function blocked in a wait runs no instruction, so it would never see it.
 * A call that may block takes a snapshot of the hooks of the running Lua thread and of the main
 * thread before it waits (interp_lua_intr_begin) and compares them while it waits: nothing else
 * runs Lua code meanwhile, so a changed hook comes from a signal handler (or, in a worker's
 * state, from a cancel of the task waiting): an interrupt. The waiting call then cancels what it
 * waited on and raises "interrupted" (interp_lua_intr_raise), an error like any other: the
 * script may catch it with pcall, and uncaught it ends the script as the interpreter reports
 * errors. In a host's state the interpreter's hook is removed again (interp_lua_intr_consume;
 * else it would replace the error at the next instruction); lua.c has already reset SIGINT to
 * its default, so a second Ctrl-C kills the process, as usual. In a worker's state the hook
 * stays: it is the cancel's.
 *
 * Every function here is for the thread running L, inside a lua_CFunction when it may raise. */
#ifndef INTERP_CHAN_LUA_H
#define INTERP_CHAN_LUA_H

#include <lua.h>
#include <stdbool.h>

#include "interp_chan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* [-0, +1, m] Push a channel object for ch (methods send, recv, close, len; #ch), holding a
 * reference of its own. Its waits end by timeout or close, and in a worker's state of a pool
 * also when the worker's task is cancelled; values it sends and receives follow the state's
 * message options (in a host's state: functions allowed, the host trusting its own state). */
INTERP_API void interp_chan_push_lua(lua_State *L, interp_chan *ch);

/* [-0, +0, -] The channel of the channel object at idx (borrowed: valid while the object is), or
 * NULL when the value is not a live channel object. */
INTERP_API interp_chan *interp_chan_test_lua(lua_State *L, int idx);

/* [-0, +1, m] Push the workers' interp.select(ch1, ch2, ... [, timeout]), bound to L's state as
 * interp_chan_push_lua binds its objects. */
INTERP_API void interp_chan_push_select(lua_State *L);

/* ---- waits that notice Ctrl-C ----------------------------------------------------------- */

/* A snapshot of the hooks (its fields are the library's). */
typedef struct interp_lua_intr {
    lua_State *L, *main;
    lua_Hook hook, main_hook;
    int mask, main_mask, count, main_count;
} interp_lua_intr;

/* Take the snapshot (L: the running thread). Does not raise. */
INTERP_API void interp_lua_intr_begin(lua_State *L, interp_lua_intr *s);
/* Whether a hook changed since the snapshot. */
INTERP_API bool interp_lua_intr_seen(const interp_lua_intr *s);
/* In a host's state (no task's cancel), remove the hooks that appeared since the snapshot. */
INTERP_API void interp_lua_intr_consume(const interp_lua_intr *s);
/* Raise the error "interrupted" (does not return). */
INTERP_API int interp_lua_intr_raise(lua_State *L);
/* interp_lua_intr_seen for a callback (ud: an interp_lua_intr), such as
 * interp_map_options.interrupted. */
INTERP_API bool interp_lua_intr_poll(void *ud);

/* One bounded wait: wait up to `slice` seconds, INTERP_ERR_TIMEOUT when nothing came. */
typedef int (*interp_lua_intr_wait_fn)(void *ud, double slice);
/* Wait as `wait` does for up to `timeout` seconds (INTERP_FOREVER, < 0: no limit; 0: one try
 * without waiting), in slices of at most 0.02 s, looking for an interrupt of L between them.
 * Returns what wait returned last (INTERP_ERR_TIMEOUT when the timeout passed);
 * INTERP_ERR_CANCELLED with *interrupted set when an interrupt was seen (consumed already): the
 * caller cancels what it waited on, then raises with interp_lua_intr_raise. */
INTERP_API int interp_lua_intr_wait(lua_State *L, double timeout, interp_lua_intr_wait_fn wait,
                                    void *ud, bool *interrupted);

#ifdef __cplusplus
}
#endif
#endif
