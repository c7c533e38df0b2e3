/* interp_chan.h - channels: bounded multi-producer multi-consumer FIFOs of messages.
 *
 * A channel carries messages between any threads: host threads and pool workers (workers reach
 * channels from Lua; see the `interp` module). It is bounded: send blocks while it holds
 * `capacity` messages. Closing wakes every waiter; messages already queued can still be
 * received, after which receive reports INTERP_ERR_CLOSED.
 *
 * Timeouts are in seconds: a negative timeout (INTERP_FOREVER) waits without limit, 0 does not
 * wait at all (the try-variants), a positive value waits at most that long and then fails with
 * INTERP_ERR_TIMEOUT.
 *
 * Lifetime: reference counted. The creator holds one reference; interp_chan_retain() adds one,
 * interp_chan_release() drops one and frees the channel (and any messages still queued) with
 * the last. All functions are thread-safe.
 *
 * The reference rule: every thread that calls a function on a channel must hold a reference
 * of its own for the whole duration of the call (retain before handing the channel to another
 * thread, not after). A borrowed pointer is not enough, even for a short call: a send touches
 * the channel after its message is in (to wake a receiver), so a receiver that takes the
 * message and drops the last reference at once would free the channel under the sender still
 * inside send. The same holds for close (it wakes waiters after the flag is set) and for every
 * waiter woken by it.
 */
#ifndef INTERP_CHAN_H
#define INTERP_CHAN_H

#include <stdbool.h>
#include <stddef.h>

#include "interp_limits.h"
#include "interp_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct interp_chan interp_chan;

/* What Lua code may do with a channel it was granted (interp_ctx_grant_channel_rights):
 * ch:send, or ch:recv and interp.select. */
enum { INTERP_CHAN_SEND = 1, INTERP_CHAN_RECV = 2, INTERP_CHAN_SENDRECV = 3 };

/* Create a channel holding at most `capacity` messages (1 to INTERP_CHAN_MAX_CAPACITY) of at
 * most `max_msg_size` bytes each (0: no limit beyond the message's own). *out holds one
 * reference. The ring of slots is allocated here (24 bytes per slot, capacity rounded up to a
 * power of two), so a large capacity costs memory up front (24 MiB at the bound; a pool's
 * named channels are charged to its memory budget).
 * INTERP_ERR_INVALID (out NULL, capacity 0 or past the bound), INTERP_ERR_NOMEM. */
INTERP_API int interp_chan_create(size_t capacity, size_t max_msg_size, interp_chan **out);
/* The bounds of a channel: capacity 0 (the default where one is given: 64) to
 * INTERP_CHAN_MAX_CAPACITY, and, unless name is NULL, a name of len bytes, 1 to
 * INTERP_CHAN_MAX_NAME, without a NUL byte. INTERP_OK, or INTERP_ERR_INVALID with *why (a
 * static text). The one check of interp_chan_create, interp_pool_channel and interp.channel,
 * for a front end that reports a bad argument in its own words. */
INTERP_API int interp_chan_check(const char *name, size_t len, size_t capacity, const char **why);
INTERP_API void interp_chan_retain(interp_chan *ch);
/* Drop a reference. NULL-safe. */
INTERP_API void interp_chan_release(interp_chan *ch);

/* Append m. Blocks while the channel is full, up to timeout. On INTERP_OK the channel owns m;
 * on any error the caller still does: INTERP_ERR_CLOSED, INTERP_ERR_TIMEOUT,
 * INTERP_ERR_AGAIN (timeout 0 and full), INTERP_ERR_LIMIT (m larger than max_msg_size). */
INTERP_API int interp_chan_send(interp_chan *ch, interp_msg *m, double timeout);
/* Take the oldest message; *out is then owned by the caller. Blocks while empty, up to
 * timeout. INTERP_ERR_CLOSED (closed and drained), INTERP_ERR_TIMEOUT, INTERP_ERR_AGAIN. */
INTERP_API int interp_chan_recv(interp_chan *ch, double timeout, interp_msg **out);
/* Receive from whichever of n channels first has a message; *index says which. Fair: when
 * several are ready, the scan starts after the channel served last time (remembered per
 * calling thread), so a busy channel cannot starve the others. A closed and drained channel
 * among open ones is skipped; INTERP_ERR_CLOSED once every channel is closed and drained.
 * A channel may appear more than once. INTERP_ERR_INVALID for n 0 or past
 * INTERP_WAIT_MAX_FUTURES, a NULL channel or a NaN timeout. */
INTERP_API int interp_chan_select(interp_chan *const chans[], size_t n, double timeout,
                                  size_t *index, interp_msg **out);
/* Close: idempotent; wakes every blocked sender (they fail with INTERP_ERR_CLOSED) and
 * receiver (they drain what is queued, then fail with INTERP_ERR_CLOSED). */
INTERP_API void interp_chan_close(interp_chan *ch);
INTERP_API bool interp_chan_is_closed(const interp_chan *ch);
/* Messages queued now (a snapshot). */
INTERP_API size_t interp_chan_len(const interp_chan *ch);
INTERP_API size_t interp_chan_capacity(const interp_chan *ch);

#ifdef __cplusplus
}
#endif
#endif
