/* msg_inner.h - internal: what the layers above msg/ (channels/, interp/, core/, lua/, mpi/)
 * use of a message beyond the public interp_msg.h, without its layout (msg_impl.h stays
 * inside msg/ and the codec's tests). Not installed. */
#ifndef INTERP_MSG_INNER_H
#define INTERP_MSG_INNER_H

#include <stddef.h>

#include "interp_msg.h"

/* ---- a message copied into memory its holder owns (a task's function) ----------------- */

/* Bytes interp__msg_embed needs for m: its header and data, plus room to align it. */
size_t interp__msg_embed_size(const interp_msg *m);
/* Copy m into `room` (interp__msg_embed_size(m) bytes, any alignment) and return the copy, a
 * message for every reader that lives as long as `room` does: never pass it to
 * interp_msg_free. It takes no reference on frozen values, so m must hold none (a function
 * message never does). */
const interp_msg *interp__msg_embed(void *room, const interp_msg *m);

#endif
