/* msg_lua_impl.h - internal to the Lua codec (msg_encode.c, msg_decode.c): the path of a
 * value inside a message, for error texts such as
 *   [2].handlers.on_load: upvalue 'sock': cannot copy a userdata
 * Segments: `[i]` (i-th top-level value, 1-based, or array element), `.name` (identifier
 * string key), `["k k"]` (other string key, escaped, shortened), `[3]`, `[2.5]`, `[true]`
 * (other keys), `: key` (inside a table key), `: upvalue 'name'` (inside a function's upvalue).
 * Building a path never touches the Lua heap: keys are read from the stack without conversion.
 */
#ifndef INTERP_MSG_LUA_IMPL_H
#define INTERP_MSG_LUA_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

enum { INTERP__PATH_CAP = 1024, INTERP__PATH_HEAD = 96 };

/* A path being built. When it outgrows its buffer the middle is dropped (the head, which
 * names the top-level value, and the tail, which names the culprit, are kept). */
typedef struct interp__path {
    char buf[INTERP__PATH_CAP];
    size_t len;
    bool cut; /* something was dropped after the first INTERP__PATH_HEAD bytes */
} interp__path;

void interp__path_init(interp__path *p);
/* Append `[i]`. */
void interp__path_index(interp__path *p, long long i);
/* Append the segment for the table key at stack index idx (see above). */
void interp__path_key(interp__path *p, lua_State *L, int idx);
/* Append `: key`. */
void interp__path_in_key(interp__path *p);
/* Append `: upvalue 'name'` (name of `len` bytes, need not be NUL-terminated). */
void interp__path_upvalue(interp__path *p, const char *name, size_t len);
/* Write "path: reason" into out (outlen bytes, NUL-terminated, shortened in the middle of the
 * path if needed). An empty path gives the reason alone. */
void interp__path_finish(const interp__path *p, const char *reason, char *out, size_t outlen);

#endif
