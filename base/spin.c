/* spin.c - the spin before a blocking wait (spin.h). */
#include <sched.h>

#include "spin.h"
#include "sync.h"

/* The pause phase is short: when the thread we wait for shares our core, every round trip
 * pays the pause phase on both sides before the other thread runs (256 pauses made an idle
 * pool's round trip 8.4 us on a loaded 2-core machine, against 2.9 us for a plain
 * condition-variable ping-pong). A pause takes ~10 ns on older x86 but ~50 ns on this VM's
 * EPYC (and ~40 ns on Skylake and later), so 32 pauses are 0.3-1.6 us; a yield costs ~1 us
 * here even when the core has nothing else to run. The clock is read every 8 yields.
 *
 * When the two threads of a round trip share a CPU (the other CPU busy with other work), the
 * pause phase cannot succeed: the round trip of an idle pool was 4.8 us with it, 3.1 us
 * without, while threads on two CPUs catch each other within it (0.5 us; 1.9 us without it).
 * So a thread that knows its peer runs on its own CPU skips it (interp__spin_yield_first). */
enum { SPIN_PAUSES = 32, SPIN_CLOCK_EVERY = 8 };
/* A waiter whose last value came from another CPU pauses this long (6.4 us here) before its
 * first yield: it holds no CPU its peer needs, and each yield costs ~1 us even alone, so a
 * value that came during the yield phase was seen up to ~1 us late. Host alone on one CPU,
 * workers on the other (a loaded machine): round trip p50 1.63-1.76 us against 1.84-2.5, p90
 * 1.8-2.0 against 2.3-4.0; all on one CPU unchanged (3.1-3.2). */
enum { SPIN_PAUSES_LONG = 4 * SPIN_PAUSES, SPIN_LONG_MIN_NS = 20000 };

static INTERP__TLS bool tl_yield_first, tl_pause_long;

int interp__cpu_now(void)
{
#ifdef __linux__
    return sched_getcpu(); /* glibc reads it from the rseq area: a few nanoseconds */
#else
    return -1;
#endif
}

void interp__spin_yield_first(void) { tl_yield_first = true; }

void interp__spin_pause_long(void) { tl_pause_long = true; }

bool interp__spin_until(bool (*ready)(void *), void *arg, long ns, uint64_t deadline_ns)
{
    /* (the pauses read no clock: a short budget keeps the short phase) */
    unsigned pauses = tl_yield_first                            ? 0
                      : tl_pause_long && ns >= SPIN_LONG_MIN_NS ? SPIN_PAUSES_LONG
                                                                : SPIN_PAUSES;
    tl_yield_first = tl_pause_long = false;
    uint64_t end = 0;
    for (unsigned i = 0;; i++) {
        if (ready(arg))
            return true;
        if (i < pauses) {
            interp__cpu_relax();
            continue;
        }
        if (i % SPIN_CLOCK_EVERY == 0) {
            uint64_t t = interp__now_ns();
            if (!end) {
                end = t + (uint64_t)(ns > 0 ? ns : 0);
                if (deadline_ns && deadline_ns < end)
                    end = deadline_ns;
            }
            if (t >= end)
                return false;
        }
        sched_yield();
    }
}

bool interp__spin(bool (*ready)(void *), void *arg, long ns)
{
    return interp__spin_until(ready, arg, ns, 0);
}
