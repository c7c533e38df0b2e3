/* msg_charge.h - internal: what a message costs the memory budget (base/budget.h) while the
 * host holds it: its allocation plus a fixed overhead for its header. Kept with the codec so
 * base/ does not depend on messages. */
#ifndef INTERP_MSG_CHARGE_H
#define INTERP_MSG_CHARGE_H

#include <stddef.h>

#include "interp_msg.h"

static inline size_t interp__msg_charge(const interp_msg *m) { return interp_msg_size(m) + 32; }

#endif
