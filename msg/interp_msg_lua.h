/* interp_msg_lua.h - copy Lua values into messages and messages into Lua states.
 *
 * For hosts that hold a lua_State of their own; the pool uses the same functions for task
 * arguments, results and channel messages.
 *
 * What is copied: nil, booleans, integers (they stay integers: 3 and 3.0 stay distinct),
 * floats (NaN, infinities and -0.0 survive), strings (any bytes, any length), tables (a proper
 * sequence 1..n with no other keys becomes an array, anything else a map; keys of any copyable
 * type; metatables are NOT copied), and, where opts allow it, Lua functions as bytecode with
 * copies of their upvalues; an upvalue `_ENV` that holds the sender's globals is rebound to the
 * receiver's globals. A table or function reached twice in one message (shared subtables,
 * cycles) is decoded as one object reached twice.
 *
 * Refused, with an error naming the path of the value: userdata, threads (coroutines),
 * C functions, Lua functions when opts forbid them, functions whose upvalues cannot be copied.
 * Example: `[2].handlers.on_load: upvalue 'sock': cannot copy a userdata` ([2] is the second
 * encoded value).
 */
#ifndef INTERP_MSG_LUA_H
#define INTERP_MSG_LUA_H

#include <lua.h>

#include "interp_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits and permissions of one encode or decode. Zero-initialised fields take the default. */
typedef struct interp_msg_opts {
    int max_depth;        /* tables nested deeper than this: INTERP_ERR_LIMIT (0: 200) */
    size_t max_size;      /* encoded messages larger than this: INTERP_ERR_LIMIT (0: 256 MiB) */
    bool allow_functions; /* encode: copy Lua functions; decode: accept them (the receiving
                             state allows binary chunks). false: refuse with INTERP_ERR_ENCODE /
                             INTERP_ERR_DECODE. Lua does not verify bytecode: decode functions
                             only from a sender you trust. */
} interp_msg_opts;

/* Error text of a failed encode or decode: the path and the reason. */
typedef struct interp_msg_error {
    char text[256];
} interp_msg_error;

/* Encode the `count` values at stack positions first .. first+count-1 of L into a new message.
 * [-0, +0, -]: never raises a Lua error and creates no Lua object (it may grow L's stack, as
 * lua_checkstack does); reads tables raw (no metamethod runs); leaves the stack as it was.
 * Returns INTERP_OK and *out (owned by the caller); INTERP_ERR_ENCODE (uncopyable value),
 * INTERP_ERR_LIMIT (depth or size) or INTERP_ERR_NOMEM with err->text set (err may be NULL).
 * On error nothing is allocated or leaked. opts may be NULL (defaults). */
INTERP_API int interp_msg_from_lua(lua_State *L, int first, int count, const interp_msg_opts *opts,
                                   interp_msg **out, interp_msg_error *err);

/* Decode every value of m and push them onto L (interp_msg_count(m) values), protected:
 * [-0, +count or +0, -]. Returns INTERP_OK with the values pushed; or, with nothing pushed,
 * INTERP_ERR_DECODE (malformed message, or a function when opts forbid it),
 * INTERP_ERR_LIMIT, INTERP_ERR_NOMEM (L's allocator failed, e.g. its memory limit).
 * Never leaves a partial value on the stack. opts may be NULL (defaults). */
INTERP_API int interp_msg_to_lua(lua_State *L, const interp_msg *m, const interp_msg_opts *opts,
                                 interp_msg_error *err);

/* The same decode for use inside a C function that already runs protected (a lua_CFunction):
 * pushes the values and returns their count, or raises a Lua error with the reason.
 * [-0, +count, e/m]. */
INTERP_API int interp_msg_push_lua(lua_State *L, const interp_msg *m, const interp_msg_opts *opts);

/* interp_msg_push_lua into a table: the values of m become t[first + 1], t[first + 2], ...
 * (raw sets; a nil value leaves a hole), without a stack slot per value. t is the stack index
 * of a table. Returns interp_msg_count(m); raises a Lua error with the reason as
 * interp_msg_push_lua does, after storing some of the values (before any when the last index
 * would pass math.maxinteger). [-0, +0, e/m]. */
INTERP_API int interp_msg_store_lua(lua_State *L, const interp_msg *m, const interp_msg_opts *opts,
                                    int t, lua_Integer first);

/* interp_msg_from_lua for a caller that names the values in its own words ("list[7]"): on
 * failure *bad (may be NULL) is the index (0 to count-1) of the value that could not be copied
 * (0 for a failure of no one value), and err->text goes on from the caller's name for it: the
 * path below the value and the reason (".handlers[2]: cannot copy a userdata"), or ": " and
 * the reason when the value itself is refused. */
INTERP_API int interp_msg_from_lua_named(lua_State *L, int first, int count,
                                         const interp_msg_opts *opts, interp_msg **out,
                                         interp_msg_error *err, int *bad);

/* ---- frozen values (interp_frozen.h) in a Lua state -------------------------------------- */

/* [-0, +1, m] Push a view of f (a userdata reading it in place; it holds a reference of its
 * own). The same value gives the same view while that view lives. */
INTERP_API void interp_frozen_push_lua(lua_State *L, const interp_frozen *f);
/* [-0, +0, -] The frozen value the view at idx reads (borrowed: valid while the view lives),
 * or NULL when the value at idx is not a live view. */
INTERP_API const interp_frozen *interp_frozen_test_lua(lua_State *L, int idx);
/* [-0, +0, -] Freeze the Lua table at idx (tables nested up to max_depth, 0: 200; views inside
 * it are kept by reference): on INTERP_OK *out is a new frozen table. INTERP_ERR_ENCODE (a
 * function, thread or userdata), INTERP_ERR_LIMIT, INTERP_ERR_NOMEM, INTERP_ERR_INVALID (not
 * a table), with the reason in err->text (err may be NULL). Never raises. */
INTERP_API int interp_frozen_from_lua(lua_State *L, int idx, int max_depth, interp_frozen **out,
                                      interp_msg_error *err);
/* [-0, +0, m] Add the functions of frozen values to the table at the top of the stack, as a
 * worker's `interp` table has them: freeze, thaw, isfrozen, buffer, next, unpack, mapfile. For a
 * host's own state: what it freezes is charged to no pool and no limit, and mapfile maps any
 * file the process may read. */
INTERP_API void interp_frozen_lua_open(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
