/* interp_msg.h - messages: immutable byte copies of values, the only thing that crosses
 * between the host and a worker, or between two workers.
 *
 * A message holds a sequence of `count` values (a task's argument list, a task's results,
 * one value sent on a channel), encoded as MessagePack (https://msgpack.org): a message with
 * count 1 is exactly one standard MessagePack value; a message with count N is N values one
 * after the other (a MessagePack stream). count 0 is allowed (no values).
 *
 * Values: nil, boolean, integer (int64), float (double), string (binary-safe bytes, encoded
 * as MessagePack str; bin is accepted on input), array, map. Two extension types carry what
 * plain MessagePack cannot (see docs/DESIGN.md; the wire format is in channels/msg_impl.h):
 * INTERP_MSG_EXT_REF (a back-reference to a table seen earlier in the same message: shared
 * subtables and cycles) and INTERP_MSG_EXT_FUNCTION (a Lua function as bytecode with its
 * upvalues).
 *
 * Ownership: a message has exactly one owner. Functions returning `interp_msg *` (or writing one
 * through an out-parameter) give the caller ownership; free it with interp_msg_free(). Functions
 * taking `const interp_msg *` only read it. A message is immutable, so several threads may read
 * one message at once.
 *
 * Thread-safety: all functions here are reentrant; none keeps global state.
 */
#ifndef INTERP_MSG_H
#define INTERP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct interp_msg interp_msg;

/* MessagePack extension type numbers used by interp_pool. */
enum { INTERP_MSG_EXT_REF = 1, INTERP_MSG_EXT_FUNCTION = 2 };

/* ---- whole messages ------------------------------------------------------------------ */

/* Number of top-level values in m. */
INTERP_API uint32_t interp_msg_count(const interp_msg *m);
/* The encoded MessagePack bytes of m (count values back to back) and their length.
 * The pointer is valid as long as m is. */
INTERP_API const char *interp_msg_data(const interp_msg *m);
INTERP_API size_t interp_msg_size(const interp_msg *m);

/* Validate `len` untrusted bytes as a stream of MessagePack values (including interp_pool's
 * extension types) and copy them into a new message. Returns INTERP_OK and *out (owned by the
 * caller), INTERP_ERR_DECODE for malformed or truncated input, INTERP_ERR_LIMIT for nesting
 * deeper than max_depth (0 = the default, 200), INTERP_ERR_NOMEM. Never reads past len. */
INTERP_API int interp_msg_from_bytes(const void *data, size_t len, int max_depth, interp_msg **out);

/* A copy of m (owned by the caller), or NULL when out of memory. */
INTERP_API interp_msg *interp_msg_dup(const interp_msg *m);

/* Free m. NULL-safe. */
INTERP_API void interp_msg_free(interp_msg *m);

/* ---- one-value messages from C values (each returns NULL when out of memory) ----------- */

INTERP_API interp_msg *interp_msg_nil(void);
INTERP_API interp_msg *interp_msg_bool(bool v);
INTERP_API interp_msg *interp_msg_int(int64_t v);
INTERP_API interp_msg *interp_msg_double(double v);
INTERP_API interp_msg *interp_msg_str(const char *s, size_t len); /* binary-safe copy */
INTERP_API interp_msg *interp_msg_cstr(const char *s);            /* NUL-terminated text */
/* (interp_msg_str/cstr also return NULL for s == NULL with len > 0 and len > UINT32_MAX.)
 * Integers take the smallest MessagePack form; doubles are always float64, so 3.0 stays a
 * float. */

/* ---- builder: any message from C ------------------------------------------------------ */

/* A builder appends values in order. Arrays and maps are opened with their element count
 * (a map's count is its number of key/value pairs) and are complete once that many values
 * (twice that many for maps: key, value, key, value...) have been appended; nesting is
 * allowed. Not thread-safe: one builder belongs to one thread. */
typedef struct interp_msg_builder interp_msg_builder;

/* A new empty builder (owned by the caller), or NULL when out of memory. */
INTERP_API interp_msg_builder *interp_msg_builder_new(void);
/* Each append returns INTERP_OK, or INTERP_ERR_NOMEM (the builder then refuses every further
 * append and finish reports the error; so does INTERP_ERR_LIMIT when more than UINT32_MAX
 * top-level values were appended). A refused argument appends nothing and the builder goes
 * on: INTERP_ERR_INVALID for a NULL builder, string or message (a NULL string is fine with
 * len 0), INTERP_ERR_LIMIT for a string longer than UINT32_MAX bytes. */
INTERP_API int interp_msg_add_nil(interp_msg_builder *b);
INTERP_API int interp_msg_add_bool(interp_msg_builder *b, bool v);
INTERP_API int interp_msg_add_int(interp_msg_builder *b, int64_t v);
INTERP_API int interp_msg_add_double(interp_msg_builder *b, double v);
INTERP_API int interp_msg_add_str(interp_msg_builder *b, const char *s, size_t len);
INTERP_API int interp_msg_add_cstr(interp_msg_builder *b, const char *s);
INTERP_API int interp_msg_add_array(interp_msg_builder *b, uint32_t count);
INTERP_API int interp_msg_add_map(interp_msg_builder *b, uint32_t pairs);
/* Append every top-level value of m (copied bytes; back-references are relative, so they
 * keep their meaning). Inside an open array or map each value of m counts as one element.
 * m's flags (refs, functions) carry over to the result. */
INTERP_API int interp_msg_add_msg(interp_msg_builder *b, const interp_msg *m);
/* Finish: on INTERP_OK *out is a new message (owned by the caller) holding every top-level
 * value appended. INTERP_ERR_INVALID if an array or map is still open (too few elements),
 * INTERP_ERR_NOMEM after a failed append. The builder is freed in every case. */
INTERP_API int interp_msg_builder_finish(interp_msg_builder *b, interp_msg **out);
/* Free a builder without finishing. NULL-safe. */
INTERP_API void interp_msg_builder_free(interp_msg_builder *b);

/* ---- reading a message from C ---------------------------------------------------------- */

typedef enum interp_msg_type {
    INTERP_MSG_NIL,
    INTERP_MSG_BOOL,
    INTERP_MSG_INT,
    INTERP_MSG_FLOAT,
    INTERP_MSG_STR,      /* MessagePack str or bin */
    INTERP_MSG_ARRAY,
    INTERP_MSG_MAP,
    INTERP_MSG_REF,      /* back-reference: `ref` objects back (1 = the table or function
                            begun most recently; see msg_impl.h) */
    INTERP_MSG_FUNCTION, /* a Lua function (opaque to C readers) */
} interp_msg_type;

/* A cursor over a run of values. Plain data: copy it freely; it points into the message and
 * is valid as long as the message is. */
typedef struct interp_msg_iter {
    const char *pos;
    const char *end;
    uint32_t left; /* values left in this run (for a map run: keys and values both count) */
} interp_msg_iter;

/* One decoded value. For arrays and maps, `items` iterates the elements (maps: key, value,
 * key, value...), `count` is the element count (maps: pairs). */
typedef struct interp_msg_value {
    interp_msg_type type;
    union {
        bool b;
        int64_t i;
        double d;
        struct { const char *ptr; size_t len; } str; /* not NUL-terminated */
        struct { uint32_t count; interp_msg_iter items; } seq; /* ARRAY and MAP */
        uint32_t ref;
    } as;
} interp_msg_value;

/* A cursor over the top-level values of m. */
INTERP_API interp_msg_iter interp_msg_iter_init(const interp_msg *m);
/* Read the next value of the run into *v and advance past it (past the whole value, nested
 * elements included: O(size of the value)). Returns false at the end of the run, and on bytes
 * that are not a value (never for a message of this library; never reads past it->end).
 * Unsigned integers above INT64_MAX are read as INTERP_MSG_FLOAT. */
INTERP_API bool interp_msg_next(interp_msg_iter *it, interp_msg_value *v);

/* Readable text of all the values of m, for logs and tests: Lua-like syntax, e.g.
 * `1, "a\0b", {1, 2.5, true}, {x = nil, ["k k"] = {}}`, `@ref3`, `<function>`. Integers print
 * as 3, floats so that they read back as the same double and look like floats (3.0, 0.1,
 * 1e+20, -0.0, nan, inf, -inf); strings quoted with Lua escapes (\n, \ddd for other bytes
 * that are neither printable ASCII nor well-formed UTF-8); keys that are identifiers as
 * `k = v`, others as `[k] = v`. Returns INTERP_OK and *text (malloc'd, NUL-terminated, the
 * caller frees it with free()), INTERP_ERR_NOMEM, INTERP_ERR_INVALID (NULL argument), or
 * INTERP_ERR_DECODE (bytes that are not a message of this library). Long strings and deep
 * structures are printed whole. */
INTERP_API int interp_msg_to_text(const interp_msg *m, char **text);

#ifdef __cplusplus
}
#endif
#endif
