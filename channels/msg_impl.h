/* msg_impl.h - internal: the layout of a message and the growable buffer that builds one.
 * Not installed; only channels/ and the library's own tests include it. */
#ifndef INTERP_MSG_IMPL_H
#define INTERP_MSG_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "interp_msg.h"

/* Flags summarising what a message holds, so that a decoder can skip work it does not need. */
enum {
    INTERP__MSG_HAS_REFS = 1u,      /* at least one INTERP_MSG_EXT_REF */
    INTERP__MSG_HAS_FUNCTIONS = 2u, /* at least one INTERP_MSG_EXT_FUNCTION */
};

/* Back-references are relative (decided by the lead; please keep): objects that can be
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

/* A message with room for `size` bytes of data, count and flags set, data uninitialised.
 * NULL when out of memory. */
interp_msg *interp__msg_alloc(size_t size, uint32_t count, uint32_t flags);

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

/* Validate `len` bytes as a stream of MessagePack values with interp_pool's extension types:
 * structure, lengths (no over-read), nesting depth <= max_depth, REF indexes that point at an
 * already opened table, FUNCTION payloads well formed. On INTERP_OK *count and *flags describe
 * the stream. INTERP_ERR_DECODE or INTERP_ERR_LIMIT otherwise, with a reason in `why`
 * (may be NULL; at least 128 bytes). Iterative or depth-bounded: no C stack overflow. */
int interp__msg_validate(const char *data, size_t len, int max_depth, uint32_t *count,
                         uint32_t *flags, char *why, size_t whylen);

#endif
