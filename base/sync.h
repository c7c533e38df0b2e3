/* sync.h - internal: checked pthread wrappers, monotonic deadlines, and the cancellation
 * token that lets another thread wake a blocked worker.
 *
 * pthread functions return an error number rather than setting errno; a failure of lock,
 * unlock, signal or broadcast means a corrupted program, so these wrappers abort with the
 * error's text (as nng's posix_thread.c does). Timed waits use CLOCK_MONOTONIC. */
#ifndef INTERP_SYNC_H
#define INTERP_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

void interp__mutex_init(pthread_mutex_t *mu);
void interp__mutex_destroy(pthread_mutex_t *mu);
void interp__mutex_lock(pthread_mutex_t *mu);
void interp__mutex_unlock(pthread_mutex_t *mu);
/* A condition variable whose timed waits measure CLOCK_MONOTONIC. */
void interp__cond_init(pthread_cond_t *cv);
void interp__cond_destroy(pthread_cond_t *cv);
void interp__cond_signal(pthread_cond_t *cv);
void interp__cond_broadcast(pthread_cond_t *cv);
void interp__cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu);
/* Wait until signalled or until the absolute monotonic `deadline` (NULL: no deadline).
 * Returns false once the deadline has passed, true otherwise (spurious wake-ups included). */
bool interp__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                             const struct timespec *deadline);

/* A thread-local variable of the library, in the initial-exec model: it lives in the static TLS
 * block (glibc keeps room there for libraries loaded by dlopen, as the Lua module is), so a
 * read calls no __tls_get_addr and allocates nothing on a host's thread. (A dynamic TLS block
 * malloc'd on the host's thread can be misread at exit by ASan's leak checker, whose guess at
 * such blocks crashes its tracer.) */
#define INTERP__TLS _Thread_local __attribute__((tls_model("initial-exec")))

/* Seconds on the monotonic clock. */
double interp__now(void);
/* Nanoseconds on the monotonic clock (a clock_gettime call; never 0 in practice). */
uint64_t interp__now_ns(void);
/* 64 random bits for a hash seed or secret: getrandom, else (no entropy yet, early boot) the
 * clock and an address mixed. */
uint64_t interp__random64(void);
/* A monotonic timespec as nanoseconds on the interp__now_ns scale. */
static inline uint64_t interp__timespec_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}
/* The absolute monotonic time `seconds` from now (seconds <= 0: now). */
struct timespec interp__deadline_in(double seconds);
/* True once the monotonic clock has reached deadline. */
bool interp__deadline_passed(const struct timespec *deadline);

/* A cancellation token: one per worker state. Any thread may fire it with a reason (an
 * INTERP_ERR_* code: CANCELLED, TIMEOUT, SHUTDOWN); the owning thread checks it between steps
 * and, around every blocking wait, arms it with the mutex and condition variable it waits on so
 * that firing wakes it.
 *
 * Use (owner thread):
 *     interp__cancel_arm(tok, &mu, &cv);          // mu NOT held
 *     interp__mutex_lock(&mu);
 *     while (!ready && !interp__cancel_reason(tok)) interp__cond_wait_until(&cv, &mu, dl);
 *     interp__mutex_unlock(&mu);
 *     interp__cancel_disarm(tok);                 // mu NOT held
 * Lock order: tok->lock before the armed mutex (fire holds tok->lock while it locks the armed
 * mutex to broadcast; arm and disarm take tok->lock without holding the armed mutex, so there is
 * no inversion, and once disarm returns no firing thread touches the mutex any more). */
typedef struct interp__cancel {
    pthread_mutex_t lock;
    atomic_int reason;         /* 0, or the INTERP_ERR_* code of the first fire */
    pthread_mutex_t *armed_mu; /* guarded by lock */
    pthread_cond_t *armed_cv;  /* guarded by lock */
} interp__cancel;

void interp__cancel_init(interp__cancel *tok);
void interp__cancel_destroy(interp__cancel *tok);
/* Clear the reason (owner, between tasks). */
void interp__cancel_reset(interp__cancel *tok);
/* Set the reason if none is set yet (the first reason wins) and wake the owner if it is
 * blocked in an armed wait. Any thread; never blocks for long. */
void interp__cancel_fire(interp__cancel *tok, int reason);
/* 0, or the reason of the fire. Any thread; lock-free. */
static inline int interp__cancel_reason(interp__cancel *tok)
{
    return atomic_load_explicit(&tok->reason, memory_order_acquire);
}
void interp__cancel_arm(interp__cancel *tok, pthread_mutex_t *mu, pthread_cond_t *cv);
void interp__cancel_disarm(interp__cancel *tok);

#endif
