/* chan_impl.h - internal: channel operations that a cancellation token can interrupt.
 *
 * Worker states block in channels through these, with the worker's token (interp/ fires it on
 * cancel, deadline and shutdown). They behave exactly like interp_chan_send/recv/select (same
 * ownership, same timeouts, same errors) with one addition: when `tok` (may be NULL: then they
 * are the public functions) has fired, they fail with the token's reason
 * (INTERP_ERR_CANCELLED, INTERP_ERR_TIMEOUT or INTERP_ERR_SHUTDOWN) instead of blocking, or as
 * soon as it fires while they are blocked. A token already fired at entry fails the call at
 * once, even if it could have completed: a cancelled task must not take messages it will never
 * handle. Since a token reason INTERP_ERR_TIMEOUT looks like the call's own timeout, a caller
 * that must tell them apart checks interp__cancel_reason(tok) after a failure.
 *
 * Not installed; channels/, interp/, core/ and the library's tests include it. */
#ifndef INTERP_CHAN_IMPL_H
#define INTERP_CHAN_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "interp_chan.h"
#include "sync.h"

int interp__chan_send_c(interp_chan *ch, interp_msg *m, double timeout, interp__cancel *tok);
/* interp__chan_send_c for a message whose charge, interp__msg_charge(m) bytes for the state
 * (budget.h), the caller has put on acct (may be NULL): on INTERP_OK the channel carries the
 * charge and refunds it when m is received or freed with the channel; on an error the caller
 * still has it to refund. */
struct interp__account;
int interp__chan_send_paid(interp_chan *ch, interp_msg *m, double timeout, interp__cancel *tok,
                           struct interp__account *acct);
int interp__chan_recv_c(interp_chan *ch, double timeout, interp__cancel *tok, interp_msg **out);
/* How long a caller about to block spins before it sleeps, for every channel of the process
 * (default 20000 ns; 0: never spin). For tests, which use 0 to drive every wait through the
 * sleep and wake-up path, and for benchmarks. */
void interp__chan_set_spin(unsigned ns);
/* The bytes a channel of `capacity` allocates (its ring and itself), for budgets. */
size_t interp__chan_footprint(size_t capacity);

int interp__chan_select_c(interp_chan *const chans[], size_t n, double timeout, interp__cancel *tok,
                          size_t *index, interp_msg **out);

/* Parked waits (park.h): register p on chans (receiver: a message or a close on any fires
 * p; sender, n == 1: room or a close). Returns the registration, NULL when out of memory;
 * *ready: the condition holds already (then unwatch and try again rather than park). The
 * registration holds a reference to each channel until interp__chan_unwatch (NULL-safe). */
struct interp__park;
void *interp__chan_watch(interp_chan *const chans[], size_t n, bool sender, struct interp__park *p,
                         bool *ready);
void interp__chan_unwatch(void *reg);
/* The most C memory a wait over n channels holds (a parked registration, or a blocked
 * select's nodes, and for a moment the set that finds repeated channels), for charging. */
size_t interp__chan_wait_bytes(size_t n);
/* Hand reg a charge of `bytes` already made to acct (budget.h): interp__chan_unwatch refunds
 * it (on whatever thread drops the registration). Retains acct. */
struct interp__account;
void interp__chan_watch_pay(void *reg, struct interp__account *acct, size_t bytes);

#endif
