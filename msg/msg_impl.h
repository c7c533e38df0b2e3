/* msg_impl.h - internal: the layout of a message and the growable buffer that builds one.
 * Not installed; only channels/, the library's own tests and, through msg_slab.h, mpi/wire.c
 * and interp/call.c include it. */
#ifndef INTERP_MSG_IMPL_H
#define INTERP_MSG_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_msg.h"
#include "msg_inner.h"

/* ---- the wire format of interp_pool's extension types ---------------------------------
 *
 * Object numbering. Every array, map and function (INTERP_MSG_EXT_FUNCTION) of a message is
 * an object; objects are counted in the order their encoding begins (their first byte; a
 * container begins before its elements), across all top-level values. References name an
 * object by its DISTANCE back (see the note below): 1 = the object begun most recently
 * before the reference, 2 = the one begun before it, ... A reference may name an object still
 * open (a cycle). Distances make messages concatenation-safe.
 *
 * INTERP_MSG_EXT_REF (ext type 1): payload = the distance (>= 1, <= objects begun so far) as a
 * big-endian unsigned integer of 1, 2, 4 or 8 bytes (encoders write the shortest: fixext 1, 2
 * or 4). It stands for that same object: shared subtables, cycles, a function reached twice
 * (a recursive local function is its own upvalue).
 *
 * INTERP_MSG_EXT_FUNCTION (ext type 2, any ext header size; encoders write ext 32): payload =
 * a sequence of plain MessagePack items, nothing after the last:
 *   bin   the function's bytecode as lua_dump writes it, debug info kept (tracebacks keep
 *         their line numbers); starts with LUA_SIGNATURE "\x1bLua"
 *   uint  nups, the number of upvalues (0..255)
 *   then nups times:
 *     str   the upvalue's name (as lua_getupvalue gives it; may be empty)
 *     uint  a tag:
 *       0 (INTERP__MSG_UPV_VALUE)   followed by one value (any value: tables, refs, functions);
 *       1 (INTERP__MSG_UPV_GLOBALS) nothing follows: the sender's globals table (usually the
 *                                   `_ENV` upvalue); the receiver binds its own globals;
 *       2 (INTERP__MSG_UPV_JOIN)    followed by uint f (the distance back, as for REF, to a
 *                                   function begun earlier, possibly still open, this one
 *                                   included) and uint u (0-based upvalue index, u < f's
 *                                   nups): this upvalue is the same variable as f's upvalue u
 *                                   (closures sharing a local keep sharing it).
 * The function is an object begun at its ext header, before its upvalues; the upvalue values
 * are nested one level deeper (they count for max_depth like table elements). Bytecode is not
 * verified by Lua: only decode functions (allow_functions) from senders you trust.
 *
 * INTERP_MSG_EXT_FROZEN (ext type 3, fixext 8): payload = the address of a frozen object
 * (frozen_impl.h) in native byte order; the message owns one reference per handle, taken when
 * the handle is written (encoder, builder, copy) and dropped by interp_msg_free. Handles are
 * leaves (no object number) and never sit inside a function's upvalues. Bytes from outside
 * (interp_msg_from_bytes) never hold one: the validator refuses the type.
 *
 * Ext type 4 (INTERP__MSG_EXT_SHARED, msg_shstr.h): a large string this process shares with
 * the state that made it; never in interp_msg_data's bytes (the plain form has the string).
 *
 * Map headers: the Lua encoder writes the shortest header, except for a map whose pairs are
 * counted while it is written and whose body exceeds 4 KiB: that one keeps a map 32 header.
 *
 * Depth: arrays, maps and functions each add one nesting level; opening one at depth
 * max_depth is an error (max_depth nested tables are fine).
 */
enum { INTERP__MSG_UPV_VALUE = 0, INTERP__MSG_UPV_GLOBALS = 1, INTERP__MSG_UPV_JOIN = 2 };

/* Flags summarising what a message holds, so that a decoder can skip work it does not need. */
enum {
    INTERP__MSG_HAS_REFS = 1u,      /* at least one INTERP_MSG_EXT_REF or upvalue JOIN */
    INTERP__MSG_HAS_FUNCTIONS = 2u, /* at least one INTERP_MSG_EXT_FUNCTION */
    INTERP__MSG_HAS_FROZEN = 4u,    /* at least one INTERP_MSG_EXT_FROZEN: the message holds a
                                       reference per handle (frozen_impl.h) */
    INTERP__MSG_HAS_SHARED = 8u,    /* at least one shared string's handle (msg_shstr.h): one
                                       reference each, and a trailer after the data; a copy
                                       keeps it, a concatenation takes the plain form */
    /* what the bytes hold (a copy or a concatenation keeps these, never the others) */
    INTERP__MSG_CONTENT = INTERP__MSG_HAS_REFS | INTERP__MSG_HAS_FUNCTIONS | INTERP__MSG_HAS_FROZEN,
    /* not about the bytes: the message lives inside a slab (see below) */
    INTERP__MSG_SLAB = 0x80000000u,
};

/* Back-references are relative (the format depends on it: keep them so): objects that can be
 * referenced (tables and functions) are numbered in the order their encoding begins,
 * counting from the start of the whole message (all top-level values). An INTERP_MSG_EXT_REF
 * payload holds the DISTANCE back: 1 = the most recently begun object, 2 = the one begun before
 * it, and so on. Relative distances stay correct when messages are concatenated (the C
 * builder's interp_msg_add_msg appends a message after other values without rewriting its
 * bytes), so a host can pass a result message back as part of the next task's arguments. */

/* One allocation: header then bytes. `data` is valid MessagePack by construction: every path
 * that makes a message (the Lua encoder, the C builder, interp_msg_from_bytes) validates. */
struct interp_msg {
    size_t size;    /* bytes in data */
    uint32_t count; /* top-level values */
    uint32_t flags; /* INTERP__MSG_* */
    char data[];
};

/* m holds one non-negative integer below 2^32 (the usual argument of a map item): true and
 * its value in *v; false for any other message. Inline for interp__msg_push_small and the
 * worker's map loop (interp/call.c). */
static inline bool interp__msg_small_uint(const interp_msg *m, int64_t *v)
{
    if (m->count != 1 || m->size > 5)
        return false;
    const unsigned char *u = (const unsigned char *)m->data;
    switch (u[0]) {
    case 0xcc:
        *v = u[1];
        return true;
    case 0xcd:
        *v = (int64_t)u[1] << 8 | u[2];
        return true;
    case 0xce:
        *v = (int64_t)u[1] << 24 | (int64_t)u[2] << 16 | (int64_t)u[3] << 8 | u[4];
        return true;
    default:
        *v = u[0];
        return u[0] <= 0x7f;
    }
}

/* A message with room for `size` bytes of data, count and flags set, data uninitialised.
 * NULL when out of memory. */
interp_msg *interp__msg_alloc(size_t size, uint32_t count, uint32_t flags);

/* ---- msg_bigbuf.c: blocks of freed large messages, kept for the next large message ------ */

/* Messages of at least this many bytes (header included) go back to the cache at free. */
#define INTERP__BIGBUF_MIN ((size_t)256 << 10)
/* A kept block of at least `need` bytes (and at most 4x that), or NULL. Any thread. */
void *interp__bigbuf_take(size_t need);
/* Keep the malloc block p (from a message) for a later take, or free it (too small, too big,
 * cache full). Any thread; NULL-safe. */
void interp__bigbuf_put(void *p);

/* A growable byte buffer that is already laid out as a message: the header sits in front of
 * the bytes, so finishing hands the same allocation over without copying the data. */
typedef struct interp__msgbuf {
    interp_msg *msg; /* NULL until the first reserve */
    size_t used;     /* bytes of data written */
    size_t cap;      /* bytes of data allocated */
} interp__msgbuf;

/* Make room for `more` bytes after `used`; returns a pointer to write at, or NULL when out
 * of memory (the buffer stays as it was). */
char *interp__msgbuf_reserve(interp__msgbuf *b, size_t more);
/* Hand the bytes over as a message (count, flags set); the buffer is emptied. NULL when out
 * of memory. An empty buffer yields a message of size 0. */
interp_msg *interp__msgbuf_finish(interp__msgbuf *b, uint32_t count, uint32_t flags);
/* Free the buffer's memory. */
void interp__msgbuf_free(interp__msgbuf *b);

/* msg_build.c: append n bytes holding one complete value (a handle to f) to the builder, add
 * flags, and take a reference to f; errors as interp_msg_add_*. */
struct interp_msg_builder;
int interp__msg_add_raw(struct interp_msg_builder *b, const char *bytes, size_t n, uint32_t flags,
                        const interp_frozen *f);

#include "msg_slab.h" /* the slab layout, which needs the message's */

/* Validate `len` bytes as a stream of MessagePack values with interp_pool's extension types:
 * structure, lengths (no over-read), nesting depth <= max_depth, REF indexes that point at an
 * already opened table, FUNCTION payloads well formed. On INTERP_OK *count and *flags describe
 * the stream. INTERP_ERR_DECODE or INTERP_ERR_LIMIT otherwise, with a reason in `why`
 * (may be NULL; at least 128 bytes). Iterative or depth-bounded: no C stack overflow. */
int interp__msg_validate(const char *data, size_t len, int max_depth, uint32_t *count,
                         uint32_t *flags, char *why, size_t whylen);

#endif
