/* stack_trim.c - give back the pages of a worker's stack that an idle worker does not use.
 *
 * A worker's stack is a 1 MiB mapping (thread_stack_size) of which only touched pages are
 * resident. Creating the state, running the initializer and running tasks (the Lua parser,
 * lua_pcall and the VM, the message codec) touch a few pages below the frames the worker
 * waits in; those pages stay resident for the thread's life, a third of an idle worker's
 * memory (8 KiB of ~39). When the worker has been idle for INTERP__WORKER_IDLE_S, the pages
 * below its current frame are dropped (madvise MADV_DONTNEED: they read back as zeroes and
 * are faulted in again by the next deep call; a dropped page costs one page fault, paid only
 * after an idle period, never per task). */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core_impl.h"

void *interp__stack_bounds(pthread_t t)
{
    void *lo = NULL;
#ifdef __GLIBC__
    pthread_attr_t a;
    if (pthread_getattr_np(t, &a) != 0)
        return NULL;
    void *addr = NULL;
    size_t size = 0, guard = 0;
    if (pthread_attr_getstack(&a, &addr, &size) == 0 && pthread_attr_getguardsize(&a, &guard) == 0)
        lo = (char *)addr + guard; /* the guard page is not ours to touch */
    pthread_attr_destroy(&a);
#else
    (void)t;
#endif
    return lo;
}

__attribute__((noinline)) void interp__stack_trim(void *lo)
{
    if (!lo)
        return;
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0)
        return;
    /* Everything below the page that holds this frame and the next 512 bytes (madvise's own
     * call runs there): the callers' frames are above, and what this worker calls next (the
     * queue's wait, ~0.5 KiB deeper than this frame on glibc) fits there or faults a page
     * back in. Keeping one page more, as before, kept a third page (4 KiB) resident in every
     * worker that had once run a deep task. */
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t end = (sp - 512) & ~((uintptr_t)pg - 1);
    uintptr_t start = ((uintptr_t)lo + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}
