/* spin.h - internal: the spin before a blocking wait, one tuning for every waiter (the pool's
 * queue and joins, futures, channels).
 *
 * Waking a thread asleep on a condition variable costs tens of microseconds, so a thread about
 * to block first spins for a short budget on a lock-free condition. The first rounds use the
 * CPU's pause instruction, the later ones sched_yield, so that a spinner never starves the
 * thread it waits for when both share a core (a loaded machine with fewer cores than
 * threads). */
#ifndef INTERP_SPIN_H
#define INTERP_SPIN_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* One pause of a spin loop: lets a sibling hyper-thread run and saves power; no fence. */
static inline void interp__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* The CPU this thread runs on now (-1: unknown). A hint only: the thread may move at once. */
int interp__cpu_now(void);
/* Make the next spin of this thread start with sched_yield, skipping the pause phase: the
 * thread it will wait for runs on this CPU (the waiter of a future that this thread just
 * ended, or the thread that ended the future this thread just waited for), so pausing would
 * only keep it from running. Used once, by the next interp__spin(_until) of this thread. */
void interp__spin_yield_first(void);
/* Make the next spin of this thread pause four times as long before its first yield: the
 * thread it waits for runs on another CPU (the last value it waited for came from there).
 * Used once; interp__spin_yield_first wins when both are set. */
void interp__spin_pause_long(void);
/* Spin until ready(arg) holds (true), or for about `ns` nanoseconds (false). ready is called
 * between rounds and must not block. The first rounds read no clock, so a condition met
 * within a few hundred nanoseconds costs no system call. Any thread. */
bool interp__spin(bool (*ready)(void *), void *arg, long ns);
/* The same, also giving up once the monotonic clock (interp__now_ns) reaches deadline_ns
 * (0: no deadline). */
bool interp__spin_until(bool (*ready)(void *), void *arg, long ns, uint64_t deadline_ns);

#endif
