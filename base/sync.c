/* sync.c - checked pthread wrappers, monotonic time, cancellation token. */
#include "sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void check(int rv, const char *what)
{
    if (rv != 0) {
        fprintf(stderr, "interp_pool: %s: %s\n", what, strerror(rv));
        abort();
    }
}

/* Every lock of the library guards a few loads and stores. glibc's adaptive mutex spins a
 * little before it sleeps in the kernel: with a host submitting and two workers taking tiny
 * tasks, the task queue's lock then costs a third of the futex calls and submit + result
 * runs at 2.1-2.5 M tasks/s instead of 1.4-1.9 M (bench_pool, 2 cores). */
void interp__mutex_init(pthread_mutex_t *mu)
{
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_t a;
    check(pthread_mutexattr_init(&a), "pthread_mutexattr_init");
    check(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP), "pthread_mutexattr_settype");
    check(pthread_mutex_init(mu, &a), "pthread_mutex_init");
    pthread_mutexattr_destroy(&a);
#else
    check(pthread_mutex_init(mu, NULL), "pthread_mutex_init");
#endif
}
void interp__mutex_destroy(pthread_mutex_t *mu)
{
    check(pthread_mutex_destroy(mu), "pthread_mutex_destroy");
}
void interp__mutex_lock(pthread_mutex_t *mu)
{
    check(pthread_mutex_lock(mu), "pthread_mutex_lock");
}
void interp__mutex_unlock(pthread_mutex_t *mu)
{
    check(pthread_mutex_unlock(mu), "pthread_mutex_unlock");
}

void interp__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    check(pthread_condattr_init(&a), "pthread_condattr_init");
    check(pthread_condattr_setclock(&a, CLOCK_MONOTONIC), "pthread_condattr_setclock");
    check(pthread_cond_init(cv, &a), "pthread_cond_init");
    pthread_condattr_destroy(&a);
}
void interp__cond_destroy(pthread_cond_t *cv)
{
    check(pthread_cond_destroy(cv), "pthread_cond_destroy");
}
void interp__cond_signal(pthread_cond_t *cv)
{
    check(pthread_cond_signal(cv), "pthread_cond_signal");
}
void interp__cond_broadcast(pthread_cond_t *cv)
{
    check(pthread_cond_broadcast(cv), "pthread_cond_broadcast");
}
void interp__cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu)
{
    check(pthread_cond_wait(cv, mu), "pthread_cond_wait");
}

bool interp__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                             const struct timespec *deadline)
{
    if (!deadline) {
        interp__cond_wait(cv, mu);
        return true;
    }
    int rv = pthread_cond_timedwait(cv, mu, deadline);
    if (rv == ETIMEDOUT)
        return false;
    check(rv, "pthread_cond_timedwait");
    return true;
}

double interp__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t interp__random64(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u ^ (uint64_t)(uintptr_t)&v ^
        ((uint64_t)ts.tv_sec << 32);
    return v ^ (v >> 29);
}

uint64_t interp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return interp__timespec_ns(&ts);
}

struct timespec interp__deadline_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (seconds <= 0)
        return ts;
    if (seconds > 1e9) /* "practically never": keep tv_sec representable */
        seconds = 1e9;
    time_t whole = (time_t)seconds;
    long frac = (long)((seconds - (double)whole) * 1e9);
    ts.tv_sec += whole;
    ts.tv_nsec += frac;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

bool interp__deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

void interp__cancel_init(interp__cancel *tok)
{
    interp__mutex_init(&tok->lock);
    atomic_init(&tok->reason, 0);
    tok->armed_mu = NULL;
    tok->armed_cv = NULL;
}

void interp__cancel_destroy(interp__cancel *tok) { interp__mutex_destroy(&tok->lock); }

void interp__cancel_reset(interp__cancel *tok)
{
    atomic_store_explicit(&tok->reason, 0, memory_order_release);
}

void interp__cancel_fire(interp__cancel *tok, int reason)
{
    int none = 0;
    atomic_compare_exchange_strong(&tok->reason, &none, reason);
    interp__mutex_lock(&tok->lock);
    if (tok->armed_mu) {
        /* Taking the armed mutex orders this wake-up after the owner's check of the reason:
         * either the owner sees the reason, or it is already inside its wait. */
        interp__mutex_lock(tok->armed_mu);
        interp__cond_broadcast(tok->armed_cv);
        interp__mutex_unlock(tok->armed_mu);
    }
    interp__mutex_unlock(&tok->lock);
}

void interp__cancel_arm(interp__cancel *tok, pthread_mutex_t *mu, pthread_cond_t *cv)
{
    interp__mutex_lock(&tok->lock);
    tok->armed_mu = mu;
    tok->armed_cv = cv;
    interp__mutex_unlock(&tok->lock);
}

void interp__cancel_disarm(interp__cancel *tok)
{
    interp__mutex_lock(&tok->lock);
    tok->armed_mu = NULL;
    tok->armed_cv = NULL;
    interp__mutex_unlock(&tok->lock);
}
