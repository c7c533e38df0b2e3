/* spin.c - the spin before a blocking wait (spin.h). */
#include <sched.h>

#include "spin.h"
#include "sync.h"

/* The pause phase is short (about 0.3 us; a pause takes ~10 ns on x86): when the thread we
 * wait for shares our core, every round trip pays the pause phase on both sides before the
 * other thread runs (256 pauses made an idle pool's round trip 8.4 us on a loaded 2-core
 * machine, against 2.9 us for a plain condition-variable ping-pong; 32 made it ~1.5 us). A
 * yield costs ~0.2 us when the core has nothing else to run, so threads on two cores still see
 * each other within a fraction of a microsecond. The clock is read every 8 yields. */
enum { SPIN_PAUSES = 32, SPIN_CLOCK_EVERY = 8 };

bool interp__spin_until(bool (*ready)(void *), void *arg, long ns, uint64_t deadline_ns)
{
    uint64_t end = 0;
    for (unsigned i = 0;; i++) {
        if (ready(arg))
            return true;
        if (i < SPIN_PAUSES) {
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
