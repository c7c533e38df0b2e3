/* msg_inner.h - internal: what the layers above msg/ (channels/, interp/, core/, lua/, mpi/)
 * use of a message beyond the public interp_msg.h, without its layout (msg_impl.h stays
 * inside msg/ and the codec's tests): a function's copy, the result slabs of a producer, the
 * fast paths of small messages, the trim of the large-block cache. Not installed. */
#ifndef INTERP_MSG_INNER_H
#define INTERP_MSG_INNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_msg.h"

/* ---- a message copied into memory its holder owns (a task's function) ----------------- */

/* Bytes interp__msg_embed needs for m: its header and data, plus room to align it. */
size_t interp__msg_embed_size(const interp_msg *m);
/* Copy m into `room` (interp__msg_embed_size(m) bytes, any alignment) and return the copy, a
 * message for every reader that lives as long as `room` does: never pass it to
 * interp_msg_free. It takes no reference on frozen values, so m must hold none (a function
 * message never does). */
const interp_msg *interp__msg_embed(void *room, const interp_msg *m);

/* ---- slabs: many small messages in one allocation (msg_slab.c, msg_slab.h) -------------- */

/* ---- slabs: many small messages in one allocation ----------------------------------------
 *
 * A map makes one small result per item; one malloc each costs more than the item's Lua call
 * (and on a fresh heap, its page faults). A slab is one block from which a producer (one
 * thread) carves many messages. Each member is an ordinary message for every reader: same
 * header, same bytes, owned and freed one by one with interp_msg_free, from any thread, in any
 * order. Layout of a member: the slab's address (8 bytes), then the interp_msg header, then its
 * data, rounded up to 8 bytes; its flags carry INTERP__MSG_SLAB, which interp_msg_free reads
 * to drop one reference on the slab instead of freeing the member. The slab's memory goes back
 * (to malloc, or to its producer's cache, below) when its last member is freed and its producer
 * has let go (interp__slab_release): keeping one member alive keeps the whole slab (at most
 * INTERP__SLAB_MAX bytes). interp_msg_dup of a
 * member is an ordinary message; copies and concatenations never inherit INTERP__MSG_SLAB.
 *
 * Reference count: it starts at a large bias held by the producer, which counts the members it
 * makes in a plain field; a member's free subtracts 1; the producer's release subtracts the
 * bias minus its members. So making a member costs no atomic operation, and the count reaches
 * zero exactly once, after the release and every member's free. */
typedef struct interp__slab interp__slab;
typedef struct interp__slab_cache interp__slab_cache;

/* Slab cache of one producer: full-size slabs whose members have all been freed wait there
 * (up to max_bytes while the producer is busy, idle_bytes while it is idle) for the producer's next
 * slabs, instead of going back to malloc. A map producing a million results per run, which the host
 * frees before the next run, then works in memory already mapped: fresh pages cost a fault and a
 * zeroing each (a fifth of the cost of a small result otherwise). Any thread may put a slab back
 * (its last member's free); the producer takes them. NULL when out of memory. */
interp__slab_cache *interp__slab_cache_new(size_t max_bytes, size_t idle_bytes);
/* The producer has gone idle: the cache keeps at most idle_bytes (at most max_bytes) of slabs,
 * those kept beyond it are freed now and later ones beyond it as they come back, until the
 * producer's next full-size slab (interp__slab_grow) makes it busy again. So a burst of maps
 * reuses its slabs, and an idle producer holds little. Returns the number of slabs freed now.
 * Producer thread only. NULL-safe. */
size_t interp__slab_cache_idle(interp__slab_cache *cache);
/* Slabs kept now (each of INTERP__SLAB_MAX bytes), for tests. Any thread; NULL-safe. */
size_t interp__slab_cache_kept(interp__slab_cache *cache);
/* The producer is done with the cache: the slabs kept are freed, later ones are freed as
 * usual; the cache itself goes with the last slab made from it. NULL-safe. */
void interp__slab_cache_release(interp__slab_cache *cache);

/* The producer is done with slab (its members live on). NULL-safe. */
void interp__slab_release(interp__slab *slab);

/* interp_msg_free of ms[0..n) (NULL entries skipped), each entry set to NULL; members of one
 * slab next to each other drop their references in one step (a map's results and inputs). */
void interp__msg_free_many(interp_msg **ms, size_t n);

struct lua_State;
struct interp_msg_opts;
struct interp_msg_error;

/* interp_msg_from_lua for a producer with a slab (msg_encode.c): values that are all nil,
 * booleans, numbers or short strings (a small message) are written straight into *slab (see
 * interp__slab_reserve for cache and hint); anything else, or a failure, goes the ordinary way.
 * first must be an absolute index and count >= 0 (the caller's values are on the stack). */
int interp__msg_from_lua_slab(struct lua_State *L, int first, int count,
                              const struct interp_msg_opts *opts, interp__slab_cache *cache,
                              interp__slab **slab, size_t hint, interp_msg **out,
                              struct interp_msg_error *err);

/* interp_msg_push_lua's fast path for a message of at most INTERP__MSG_SMALL_VALUES values that
 * are all nil, booleans, numbers or strings and of at most max_size bytes (0: the default
 * limit, 256 MiB, as in interp_msg_opts): pushes them and returns their count; -1 (nothing
 * pushed) for any other message. The caller has made room for INTERP__MSG_SMALL_VALUES
 * values. May raise a memory error, like interp_msg_push_lua. */
enum { INTERP__MSG_SMALL_VALUES = 8 };
int interp__msg_push_small(struct lua_State *L, const interp_msg *m, size_t max_size);

/* ---- messages between processes of one program (msg_wire.c; the MPI pool, mpi/) ---------
 *
 * Records: what another process of the same program needs to make a message again (its
 * bytes, a shared string's plain form; its top-level count; its content flags), 12 bytes of
 * head and the bytes. Made again there without validating: only for peers running this
 * program, whose bytes are as trusted as our own. Messages are read from and written to
 * arrays of pointers `stride` bytes apart (sizeof(interp_msg *) for a plain array, the size
 * of a struct to fill one of its pointer fields). */

/* Bytes of the records of ms[0..n) (entries may be NULL); *frozen: some holds frozen
 * handles (such messages cannot be recorded: their handles are addresses here). */
size_t interp__msg_wire_bytes(const interp_msg *const *ms, size_t stride, size_t n, bool *frozen);
/* Write the records of ms[0..n) at dst (interp__msg_wire_bytes bytes; none holds frozen
 * handles). false when out of memory building a shared string's plain form. */
bool interp__msg_wire_put(char *dst, const interp_msg *const *ms, size_t stride, size_t n);
/* Members of at most this many bytes are carved from the caller's slab. */
enum { INTERP__MSG_WIRE_SLAB = 1024 };
/* Make out[0..n) from the n records at *src (before end; *src advances past them): small ones
 * members of *slab (the producer's, with its cache, which may be NULL; released with
 * interp__slab_release), the others allocated alone; an absent record gives NULL. Every slot
 * is set (NULL past a failure; those made are the caller's to free). INTERP_OK,
 * INTERP_ERR_DECODE when the records end early, INTERP_ERR_NOMEM. */
int interp__msg_wire_take(interp__slab_cache *cache, interp__slab **slab, const char **src,
                          const char *end, size_t n, interp_msg **out, size_t stride);

/* m (may be NULL) holds handles of frozen values. */
bool interp__msg_holds_frozen(const interp_msg *m);
/* m's own bytes, to rewrite in place (mpi/ swaps placeholders for handles); not the plain form
 * of shared strings (a message that holds one is not to be rewritten). */
char *interp__msg_bytes(interp_msg *m);
/* After handles were written into m's bytes (holds true); or drop the references of every
 * handle in them, and the mark (holds false). */
void interp__msg_frozen_mark(interp_msg *m, bool holds);

/* ---- msg_bigbuf.c -------------------------------------------------------------------- */

/* Free every kept block (an idle worker calls it). Any thread. */
void interp__bigbuf_trim(void);

#endif
