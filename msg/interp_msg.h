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
 * plain MessagePack cannot (see docs/DESIGN.md; the wire format is in msg/msg_impl.h):
 * INTERP_MSG_EXT_REF (a back-reference to a table seen earlier in the same message: shared
 * subtables and cycles) and INTERP_MSG_EXT_FUNCTION (a Lua function as bytecode with its
 * upvalues); a third, INTERP_MSG_EXT_FROZEN, a handle to a frozen value (interp_frozen.h),
 * which only this process writes (interp_msg_from_bytes refuses it).
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

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct interp_msg interp_msg;
/* A frozen value (interp_frozen.h): shared, immutable, reference-counted. */
typedef struct interp_frozen interp_frozen;

/* MessagePack extension type numbers used by interp_pool. */
enum { INTERP_MSG_EXT_REF = 1, INTERP_MSG_EXT_FUNCTION = 2, INTERP_MSG_EXT_FROZEN = 3 };

/* ---- whole messages ------------------------------------------------------------------ */

/* Number of top-level values in m. */
INTERP_API uint32_t interp_msg_count(const interp_msg *m);
/* The encoded MessagePack bytes of m (count values back to back) and their length.
 * The pointer is valid as long as m is. A message made in a worker may share a large string
 * with the worker's state instead of holding a copy (docs/DESIGN.md, Messages): its bytes are
 * then written out on the first call (later calls return the same pointer; thread-safe), and
 * that call returns NULL when memory runs out. interp_msg_size is always the size of these
 * bytes. */
INTERP_API const char *interp_msg_data(const interp_msg *m);
INTERP_API size_t interp_msg_size(const interp_msg *m);

/* Validate `len` untrusted bytes as a stream of MessagePack values (including interp_pool's
 * extension types) and copy them into a new message. Returns INTERP_OK and *out (owned by the
 * caller), INTERP_ERR_DECODE for malformed or truncated input, and for any function value
 * (INTERP_MSG_EXT_FUNCTION: Lua bytecode, which Lua never verifies, so crafted bytecode can
 * crash the process that loads it), INTERP_ERR_LIMIT for nesting deeper than max_depth (0 = the
 * default, 200), INTERP_ERR_INVALID for out NULL or data NULL with len > 0, INTERP_ERR_NOMEM.
 * Never reads past len. Thread-safe. */
INTERP_API int interp_msg_from_bytes(const void *data, size_t len, int max_depth, interp_msg **out);

/* interp_msg_from_bytes with flags. INTERP_MSG_TRUST_FUNCTIONS accepts function values: pass
 * it only for bytes from a sender you trust as much as your own code (a process of your own
 * over a pipe, say), never for bytes a tenant could have written. */
enum { INTERP_MSG_TRUST_FUNCTIONS = 1u };
INTERP_API int interp_msg_from_bytes_ex(const void *data, size_t len, int max_depth, unsigned flags,
                                        interp_msg **out);

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
/* (interp_msg_str also returns NULL for s == NULL with len > 0, or len > UINT32_MAX;
 * interp_msg_cstr for s == NULL.)
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
    INTERP_MSG_STR, /* MessagePack str or bin */
    INTERP_MSG_ARRAY,
    INTERP_MSG_MAP,
    INTERP_MSG_REF,      /* back-reference: `ref` objects back (1 = the table or function
                            begun most recently; see msg_impl.h) */
    INTERP_MSG_FUNCTION, /* a Lua function (opaque to C readers) */
    INTERP_MSG_FROZEN,   /* a handle to a frozen value (interp_frozen.h): as.frozen, borrowed
                            (valid as long as the message is; interp_frozen_retain to keep) */
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
        struct {
            const char *ptr;
            size_t len;
        } str; /* not NUL-terminated */
        struct {
            uint32_t count;
            interp_msg_iter items;
        } seq; /* ARRAY and MAP */
        uint32_t ref;
        const interp_frozen *frozen;
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

/* ---- format-driven building and reading (like Py_BuildValue / PyArg_ParseTuple) -------- */

/* A format is a string of items, each standing for one value; spaces, tabs, newlines and
 * commas between items are ignored ("i, s, d" is "isd"). The same letters serve both
 * directions; the argument each takes:
 *
 *   item   value     pack argument(s)                  unpack argument(s)
 *   n      nil       (none)                            (none): the value must be nil
 *   b      boolean   int (nonzero = true)              bool *
 *   i      integer   int                               int *
 *   l      integer   long                              long *
 *   L      integer   long long                         long long *
 *   I      integer   int64_t                           int64_t *
 *   z      integer   size_t (> INT64_MAX: LIMIT)       size_t *
 *   d      float     double (a float promotes)         double * (an integer is converted)
 *   s      string    const char * (NUL-terminated)     const char **, size_t *  (see below)
 *   S      string    const char *, size_t (any bytes)  const char **, size_t *  (as s)
 *   m      values    const interp_msg * (borrowed)     - (INVALID)
 *   ?      any       - (INVALID)                       (none): skip one value of any type
 *   *      rest      - (INVALID)                       (none): skip the level's other values
 *   [...]  array     its elements are the items inside
 *   {...}  map       items inside alternate key, value, key, value...
 *
 * pack: `m` appends every value of the message (through interp_msg_add_msg; inside an array
 * or map each of its values is one element). A NULL string is INTERP_ERR_INVALID for `s`,
 * and for `S` unless the length is 0.
 * unpack: integer letters need a MessagePack integer that fits the C type (INTERP_ERR_LIMIT
 * if it does not); a float never matches them, not even 3.0: integers and floats stay
 * distinct in this library (an unsigned integer above INT64_MAX, which only a foreign
 * encoder writes, is read as a float: only `d` takes it). Back-references and functions
 * (INTERP_MSG_REF, INTERP_MSG_FUNCTION) match only `?` and `*`. A string is returned as a
 * pointer to its bytes inside m and their length: borrowed, valid as long as m is, NOT
 * NUL-terminated. Every level (the message, each array, each map) must have exactly as many
 * values as items, unless its last item is `*`, which accepts any number of further values
 * (zero included): "[ii*]" takes an array of two or more elements, "s*" a message whose first
 * value is a string. A map is read positionally, in its stored order (key, value, ...): this
 * is not a lookup by key.
 * Nesting: at most INTERP_MSG_PACK_MAX_DEPTH brackets deep. The v variants take the
 * arguments as a va_list, which they read through copies (va_copy): the caller va_ends it. */
enum { INTERP_MSG_PACK_MAX_DEPTH = 32 };

/* Build a message from a format: each item of fmt appends one top-level value (`m` appends
 * as many as its message holds); an empty format makes an empty message (count 0).
 * Returns INTERP_OK and *out, a new message owned by the caller. On error *out is NULL
 * (when out is not NULL) and nothing is leaked:
 *   INTERP_ERR_INVALID  NULL out or fmt; a bad format (unknown letter, `?` or `*`, unbalanced
 *                       or mismatched brackets, a map with an odd number of items, counting
 *                       each value of an `m`); a NULL string or message argument.
 *   INTERP_ERR_LIMIT    brackets nested deeper than INTERP_MSG_PACK_MAX_DEPTH; a `z` above
 *                       INT64_MAX; a string, array, map or message of more than UINT32_MAX
 *                       bytes or elements.
 *   INTERP_ERR_NOMEM    out of memory.
 * The format is checked, and every argument read, before anything is built. Thread-safe. */
INTERP_API int interp_msg_pack(interp_msg **out, const char *fmt, ...);
INTERP_API int interp_msg_vpack(interp_msg **out, const char *fmt, va_list ap);

/* Read the top-level values of m as fmt says into the pointers that follow (see the table
 * above). All or nothing: the whole message is matched against the format first, and the
 * pointers are written only when it matches; on any error none is written. Allocates
 * nothing; m is only read (several threads may unpack one message at once).
 * Returns INTERP_OK, or:
 *   INTERP_ERR_INVALID  the call is wrong, whatever m holds: NULL m or fmt, a bad format
 *                       (unknown letter, `m`, `*` that is not last in its level, unbalanced
 *                       or mismatched brackets, a map with an odd number of items besides
 *                       `*`), a NULL destination pointer.
 *   INTERP_ERR_DECODE   m does not have the shape the format asks for: a value of another
 *                       type (a float for `i`, a string for `d`, an integer for `b`, a map
 *                       for `[`, ...), or a level with fewer or more values than its items
 *                       (and no `*`).
 *   INTERP_ERR_LIMIT    brackets nested deeper than INTERP_MSG_PACK_MAX_DEPTH; an integer
 *                       that does not fit the C type (3000000000 for `i` with a 32-bit int,
 *                       -1 for `z`).
 * The format and the pointers are checked before m is looked at, so a wrong call is reported
 * whatever m holds; otherwise the first mismatch reading left to right is reported. */
INTERP_API int interp_msg_unpack(const interp_msg *m, const char *fmt, ...);
INTERP_API int interp_msg_vunpack(const interp_msg *m, const char *fmt, va_list ap);

#ifdef __cplusplus
}
#endif
#endif
