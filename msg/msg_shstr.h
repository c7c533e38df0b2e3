/* msg_shstr.h - internal: large strings a message shares with the worker state that made them,
 * so that a big value crosses with one copy (the receiver's lua_pushlstring) instead of two
 * (into the message, then out of it). Not installed.
 *
 * How. A worker state's allocator (interp/alloc.c) puts a 16-byte header with a reference
 * count in front of every block of at least INTERP__SHBLOCK_MIN bytes (whatever the block
 * holds: Lua tells the allocator a block's size, never its type, at a free). When the encoder
 * (msg_encode.c) meets a string of at least INTERP__SHSTR_MIN bytes in such a state, it
 * writes a handle (ext type INTERP__MSG_EXT_SHARED, fixext 8: the header's address) instead of
 * the bytes, and the message takes a reference. Lua freeing the string drops its reference;
 * the block goes back to malloc with the last one, on whichever thread that is. So the bytes
 * outlive the sending state, its worker and the pool as long as a message names them, no
 * thread but the owner ever touches the state, and Lua strings being immutable (5.4 never
 * reallocates a string object) the bytes never change under a reader.
 *
 * Where the string's bytes sit in its block (the offset of TString's contents) is Lua's
 * private layout: it is measured once per process by a probe state (a string made through a
 * recording allocator); if the probe fails, nothing is shared (strings are copied as before).
 * A state shares only when its lua_Alloc is the one registered with interp__shstr_enable, so
 * a host's own states (plain lua5.4: no headers) are never read this way.
 *
 * Accounting. A message's size (interp_msg_size) is the size of its plain MessagePack form,
 * shared strings counted in full: channel charges (budget.h), max_size limits and the
 * decoder's limits see what they saw before. The state's heap (interp__alloc.in_use) drops
 * when Lua frees the string; what a queued message still holds is charged to the sender's
 * account through that size, as before.
 *
 * What readers see. The C reader (msg_read.c) and the Lua decoder present a handle as a
 * string; interp_msg_data gives the plain MessagePack form (built once, on first request, and
 * kept with the message); copies take their own references; a handle never sits inside a
 * function's payload (the encoder copies strings reached through upvalues). */
#ifndef INTERP_MSG_SHSTR_H
#define INTERP_MSG_SHSTR_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "msg_impl.h"

/* Blocks of at least this many bytes carry a header (allocator side). */
#define INTERP__SHBLOCK_MIN ((size_t)64 << 10)
/* Strings of at least this many bytes are shared rather than copied (encoder side); such a
 * string's block is larger still, so it always has a header. */
#define INTERP__SHSTR_MIN ((size_t)64 << 10)
/* The extension type of a handle (internal: never in interp_msg_data's bytes, refused by
 * interp_msg_from_bytes). */
enum { INTERP__MSG_EXT_SHARED = 4 };

/* ---- allocator side (interp/alloc.c). Owner thread of the state only, like a lua_Alloc. ---- */

/* Resize or make (ptr NULL, osize ignored) a block for a lua_Alloc when the old or the new
 * size is at least INTERP__SHBLOCK_MIN; nsize > 0. Blocks keep the invariant: a header iff
 * the size Lua knows is at least INTERP__SHBLOCK_MIN. Returns the block or NULL (ptr still
 * valid) when growing fails; a shrink never fails (the old block is kept if need be). A block
 * a message shares is never changed: the caller gets a fresh one. */
void *interp__shblock_realloc(void *ptr, size_t osize, size_t nsize);
/* Lua frees the block ptr (its size >= INTERP__SHBLOCK_MIN): drop Lua's reference. */
void interp__shblock_free(void *ptr);

/* States made with lua_newstate(f, ...) share their large strings (f puts headers on large
 * blocks as above). Runs the layout probe once per process. Any thread. */
void interp__shstr_enable(lua_Alloc f);

/* ---- message side (msg/) ------------------------------------------------------------------ */

/* The block of the string s (len bytes, a Lua string of L at a stack slot, so alive) when it
 * can be shared, else NULL. */
const void *interp__shstr_block(lua_State *L, const char *s, size_t len);
/* The bytes and length of the string a handle's payload (8 bytes) names. */
const char *interp__shstr_bytes(const char *payload, size_t *len);
/* Take (+1) or drop (-1) one reference per handle in data[0..len) (a whole message's bytes). */
void interp__shstr_msg_refs(const char *data, size_t len, int delta);

/* The trailer of a message with INTERP__MSG_HAS_SHARED, after its data. */
typedef struct interp__shstr_tail {
    size_t plain_size;     /* bytes of the plain MessagePack form */
    _Atomic(char *) plain; /* that form, built on first request (interp_msg_data), or NULL */
} interp__shstr_tail;
/* Bytes to reserve after `size` bytes of data for the trailer (alignment included). */
static inline size_t interp__shstr_tail_room(size_t size)
{
    return ((size + 7) & ~(size_t)7) - size + sizeof(interp__shstr_tail);
}
static inline interp__shstr_tail *interp__shstr_tail_of(const interp_msg *m)
{
    return (interp__shstr_tail *)(void *)((char *)m->data + ((m->size + 7) & ~(size_t)7));
}
/* The plain form of m (with INTERP__MSG_HAS_SHARED), built once; NULL when out of memory. */
const char *interp__shstr_plain(const interp_msg *m);
/* Free what the trailer holds and drop m's references (interp_msg_free). */
void interp__shstr_msg_release(interp_msg *m);

#endif
