/* park.h - internal: a wait that parks a context's call instead of blocking its thread.
 *
 * A context's call runs as a coroutine of its state (interp/call.c). A C function that would
 * block (channel recv/send/select, interp.sleep, the result of another context's call) asks
 * interp__park_can: only in the call's own coroutine (`base`) and only where Lua can yield (no
 * C call boundary below: a metamethod called by C, table.sort's comparator, a gsub callback).
 * Then it registers the park with what it waits for (a channel's watch list, a future's
 * callback: each registration one `undo`), and yields with interp__park_yield and a
 * continuation. The worker that ran the slice sees `want`, parks the context (core/ctx.c) and
 * goes on with other jobs: no thread is held. When what the wait registered with fires
 * (interp__park_fire: a message, room, a close, a timer, a cancel, a future ending), the
 * context is made runnable again, a worker resumes the coroutine and the continuation calls
 * interp__park_resumed (which drops the registrations), then looks again: a fire may be
 * spurious, so every waiter loops.
 *
 * st: RUNNING while a worker holds the context; PARKED once the worker let it go; NOTIFIED
 * after a fire. A fire swaps in NOTIFIED: only the one that finds PARKED makes the context
 * runnable (exactly once per park); a fire that finds RUNNING makes the worker's own park fail,
 * so the call goes on at once instead (no lost wake-up).
 *
 * The owner (core/ctx.c) fills `runnable`; channels/ and interp/ only fire and yield. */
#ifndef INTERP_PARK_H
#define INTERP_PARK_H

#include <lua.h>
#include <stdatomic.h>
#include <stdbool.h>

enum { INTERP__PARK_RUNNING = 0, INTERP__PARK_PARKED = 1, INTERP__PARK_NOTIFIED = 2 };

typedef struct interp__park {
    /* The owner's: called by the fire that found PARKED, on any thread, possibly under a
     * channel's, the pool's or a context's lock (so it takes only the queue's lock, a leaf). */
    void (*runnable)(struct interp__park *p);
    atomic_int st;     /* INTERP__PARK_* */
    atomic_int reason; /* an interrupt (INTERP_ERR_CANCELLED/TIMEOUT/SHUTDOWN) that reached
                          the call while no worker ran it; applied at the next slice */
    /* The thread running the call only: */
    lua_State *base;         /* the coroutine of the call in progress (NULL: none: no parking) */
    bool want;               /* the call yielded to park (interp__park_yield) */
    double until;            /* the wait's own deadline (monotonic seconds; INFINITY: none) */
    void (*undo)(void *arg); /* the wait's registration, dropped by interp__park_resumed */
    void *undo_arg;
} interp__park;

/* Wake the parked call (any thread; see runnable for the locks it may be called under). */
static inline void interp__park_fire(interp__park *p)
{
    if (atomic_exchange_explicit(&p->st, INTERP__PARK_NOTIFIED, memory_order_acq_rel) ==
        INTERP__PARK_PARKED)
        p->runnable(p);
}

/* May the C function running on L park (p: the state's park, NULL in a state that has none)? */
static inline bool interp__park_can(const interp__park *p, lua_State *L)
{
    return p && p->base == L && lua_isyieldable(L);
}

/* Yield L to park until a fire, or until `until` (monotonic seconds; INFINITY: none). undo
 * (may be NULL) drops what the wait registered; it is called by interp__park_resumed, or by
 * the owner if the call never resumes. k runs when the call is resumed (it must call
 * interp__park_resumed first). Only after interp__park_can said yes. Does not return. */
static inline int interp__park_yield(lua_State *L, interp__park *p, double until,
                                     void (*undo)(void *), void *arg, lua_KContext kc,
                                     lua_KFunction k)
{
    p->want = true;
    p->until = until;
    p->undo = undo;
    p->undo_arg = arg;
    return lua_yieldk(L, 0, kc, k);
}

/* In the continuation (and by the owner for a call that ends parked): drop the wait's
 * registration. */
static inline void interp__park_resumed(interp__park *p)
{
    void (*undo)(void *) = p->undo;
    p->undo = NULL;
    p->want = false;
    if (undo)
        undo(p->undo_arg);
}

#endif
