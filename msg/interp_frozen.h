/* interp_frozen.h - frozen values: immutable, reference-counted tables and byte buffers that
 * every state of the process reads in place, without a copy.
 *
 * A frozen value lives outside every Lua heap. It is built once (from a message, from a Lua
 * value through the `interp` module's interp.freeze, from bytes, from a file) and never changes
 * afterwards, so any number of threads may read it at once without a lock. It travels inside
 * messages as a handle (MessagePack ext type INTERP_MSG_EXT_FROZEN): as a task argument or
 * result, through a channel, through a pool's registry of names (interp_pool_share). A state
 * that decodes the handle gets a view (a userdata reading the shared structure); no byte of
 * the value is copied. A handle never comes from untrusted bytes: interp_msg_from_bytes
 * refuses it.
 *
 * Tables: keys and values as messages allow (nil, booleans, integers, floats, strings,
 * tables; no functions), shared subtables and cycles kept, other frozen values nested by
 * reference. The hash part uses SipHash-1-3 with a random key per value, so crafted keys
 * cannot make lookups collide; the array part holds the keys 1..n.
 * Buffers: any bytes (a copy of host bytes, host bytes handed over with a release callback, or
 * a file mapped read-only).
 *
 * Ownership: every function that returns an `interp_frozen *` gives the caller one reference;
 * interp_frozen_release drops one; the value is freed with its last reference (messages,
 * views, registries and other frozen values holding it each keep one). A message holding a
 * handle holds a reference for it, dropped by interp_msg_free.
 *
 * Thread-safety: every function here may be called from any thread; the values are immutable.
 */
#ifndef INTERP_FROZEN_H
#define INTERP_FROZEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* (typedef struct interp_frozen interp_frozen; is in interp_msg.h) */

/* Freeze the one value of m (interp_msg_count(m) == 1), a table (array or map): on INTERP_OK
 * *out is a new frozen table. max_depth: nesting limit (0: 200). Errors, *out untouched:
 * INTERP_ERR_INVALID (NULL argument, m not one value, or the value is not a table: scalars
 * need no freezing), INTERP_ERR_DECODE (a function, a nil or NaN key), INTERP_ERR_LIMIT
 * (deeper than max_depth), INTERP_ERR_NOMEM. Frozen values inside m are kept by reference.
 * Does not block; m is only read. */
INTERP_API int interp_frozen_from_msg(const interp_msg *m, int max_depth, interp_frozen **out);

/* A frozen buffer holding a copy of data[0..len). INTERP_ERR_INVALID (NULL out, or NULL data
 * with len > 0), INTERP_ERR_NOMEM. */
INTERP_API int interp_frozen_bytes(const void *data, size_t len, interp_frozen **out);

/* A frozen buffer over the caller's bytes, without a copy: from now on the bytes must not
 * change, and release(ud, data, len) is called once (on any thread) when the last reference
 * goes (release may be NULL: the bytes then outlive every reference, e.g. static data). On an
 * error release is not called and the caller keeps the bytes. */
INTERP_API int interp_frozen_wrap(const void *data, size_t len,
                                  void (*release)(void *ud, const void *data, size_t len), void *ud,
                                  interp_frozen **out);

/* A frozen buffer of the whole file at path, mapped read-only (read once into memory where it
 * cannot be mapped, e.g. a pipe). INTERP_ERR_NOTFOUND (no such file), INTERP_ERR_SYSTEM (other
 * open/read/map errors), INTERP_ERR_NOMEM. Blocks while the file is read. Whoever writes the
 * file while it is mapped changes what readers see: map only files nobody rewrites in place. */
INTERP_API int interp_frozen_map_file(const char *path, interp_frozen **out);

/* One more reference to f (returned). NULL-safe. */
INTERP_API interp_frozen *interp_frozen_retain(const interp_frozen *f);
/* Drop one reference; the last frees the value. NULL-safe. */
INTERP_API void interp_frozen_release(const interp_frozen *f);

/* True for a buffer, false for a table. */
INTERP_API bool interp_frozen_is_buffer(const interp_frozen *f);
/* A buffer's bytes (valid while a reference is held); NULL with *len 0 for a table. */
INTERP_API const void *interp_frozen_data(const interp_frozen *f, size_t *len);
/* Bytes the whole value (of which f may be a nested table) takes outside every heap: what the
 * memory accounting charges once. */
INTERP_API size_t interp_frozen_size(const interp_frozen *f);

/* An ordinary message (a deep copy, owned by the caller) of the table f, or of a buffer as one
 * string. Nested frozen values are copied too. INTERP_ERR_INVALID, INTERP_ERR_NOMEM. */
INTERP_API int interp_frozen_to_msg(const interp_frozen *f, interp_msg **out);

/* Append a handle to f to a message builder (a new reference, owned by the message). Errors as
 * the other interp_msg_add_* (nothing appended, no reference taken). Reading the message in C,
 * interp_msg_next gives it as INTERP_MSG_FROZEN with a borrowed pointer. */
INTERP_API int interp_msg_add_frozen(interp_msg_builder *b, const interp_frozen *f);

/* ---- reading frozen tables from C --------------------------------------------------------
 * Values come out as interp_msg_value (interp_msg.h) of type INTERP_MSG_NIL, _BOOL, _INT,
 * _FLOAT, _STR or _FROZEN (a nested table or a buffer: as.frozen, readable with these same
 * functions). What a value points at (a string's bytes, as.frozen) is borrowed: valid while the
 * caller holds a reference to the value it was read from (any object of the same value keeps
 * all of it); interp_frozen_retain(as.frozen) keeps a nested object on its own.
 * Every reader checks its arguments: NULL, a buffer where a table is expected, an absent key or
 * an index out of range read as nil (the function returns false), never outside the value.
 * None blocks; any thread may read at once (the values never change). */

/* True for a table (false for a buffer and for NULL). */
INTERP_API bool interp_frozen_is_table(const interp_frozen *f);

/* #t of a table: n, its array part holding the keys 1..n (n + 1 is absent, a border as Lua's
 * # gives); the byte length of a buffer; 0 for NULL. */
INTERP_API size_t interp_frozen_len(const interp_frozen *f);

/* How many keys a table has (its array part and its other keys); 0 for a buffer or NULL. */
INTERP_API size_t interp_frozen_count(const interp_frozen *f);

/* t[i]: true with the value in *out when t is a table holding the key i; false with *out nil
 * otherwise. O(1) for i in 1..#t, a hash lookup for other integers. out must not be NULL. */
INTERP_API bool interp_frozen_geti(const interp_frozen *t, int64_t i, interp_msg_value *out);

/* t[key] for a string key of len bytes (any bytes; key may be NULL when len is 0). As
 * interp_frozen_geti otherwise. */
INTERP_API bool interp_frozen_getfield(const interp_frozen *t, const char *key, size_t len,
                                       interp_msg_value *out);

/* t[key] for a key of any type a table can hold: BOOL, INT, FLOAT (an integral float finds the
 * integer key, as in Lua), STR, FROZEN (by identity). A NIL or NaN key, or a type no frozen
 * table holds (ARRAY, MAP, REF, FUNCTION), finds nothing. As interp_frozen_geti otherwise. */
INTERP_API bool interp_frozen_get(const interp_frozen *t, const interp_msg_value *key,
                                  interp_msg_value *out);

/* A cursor over every key and value of a table: the array part 1..#t in order, then the other
 * keys in the table's (fixed, unspecified) order, the order Lua's pairs gives on a view. Plain
 * data: copy it freely; valid while the caller holds a reference to the table's value. */
typedef struct interp_frozen_iter {
    const interp_frozen *t;
    uint64_t pos;
} interp_frozen_iter;

/* A cursor at the first entry of t (a buffer or NULL gives an empty run). */
INTERP_API interp_frozen_iter interp_frozen_iter_init(const interp_frozen *t);

/* The next entry into *key and *val (either may be NULL when not wanted); false at the end
 * (then the cursor stays there). */
INTERP_API bool interp_frozen_iter_next(interp_frozen_iter *it, interp_msg_value *key,
                                        interp_msg_value *val);

/* Bulk read of numbers: t[first], t[first + 1], ... (first >= 1) of the array part as doubles
 * into out[0..n), integers converted (rounded beyond 2^53). Returns how many were written:
 * it stops at n, at the end of the array part (#t), and before the first value that is not a
 * number; 0 for a buffer, NULL, or first outside 1..#t. One call reads millions of elements
 * (a memcpy when the array holds only floats). */
INTERP_API size_t interp_frozen_read_numbers(const interp_frozen *t, int64_t first, size_t n,
                                             double *out);

/* Process-wide totals of frozen values alive now: how many, and their bytes. */
INTERP_API void interp_frozen_totals(size_t *values, size_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
