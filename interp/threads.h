/* threads.h - internal: the set of a state's coroutines, kept by its allocator.
 *
 * Cancellation must reach whichever coroutine runs, without wrapping coroutine.resume (a
 * wrapper shows up in stack levels and hook events). Lua tells its allocator when it creates a
 * thread (ptr NULL, osize LUA_TTHREAD: the block holds the extra space, then the lua_State, as
 * lua_getextraspace says), and frees that block when the thread is collected: the allocator
 * keeps the live coroutines of its state here. No wrapper, no Lua-visible trace.
 *
 * Threading: only the state's owner thread adds and removes (from the allocator), under `mu`;
 * it looks entries up without the lock (no other thread writes). Another thread walks the set
 * under `mu` (interp__threads_lock), so no coroutine is freed while it is being looked at. */
#ifndef INTERP_THREADS_H
#define INTERP_THREADS_H

#include <lua.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct interp__threads {
    pthread_mutex_t mu;
    lua_State **slots; /* open addressing, linear probing; NULL: empty */
    size_t cap;        /* a power of two, or 0 */
    size_t count;
    size_t block; /* bytes of a coroutine's block (learnt at the first one); 0: none yet */
} interp__threads;

void interp__threads_init(interp__threads *t);
void interp__threads_destroy(interp__threads *t);

/* Bytes the set would hold after one more insertion (its array), for the memory limit. */
size_t interp__threads_bytes_after_add(const interp__threads *t);
size_t interp__threads_bytes(const interp__threads *t);
/* Owner thread: the allocator made a thread block of `size` bytes at `block`. Returns false
 * when the set cannot grow (out of memory): the allocation must then fail. */
bool interp__threads_add(interp__threads *t, void *block, size_t size);
/* Owner thread: the allocator frees a block of `size` bytes; forgets it if it is a thread. */
void interp__threads_forget(interp__threads *t, void *block, size_t size);
/* Owner thread: whether co is in the set (the layout check at state creation). */
bool interp__threads_has(const interp__threads *t, lua_State *co);

/* Call fn on every coroutine of the set (any thread; takes mu, so no coroutine is freed
 * meanwhile; fn must not allocate in the state). */
void interp__threads_each(interp__threads *t, void (*fn)(lua_State *co, void *ud), void *ud);

#endif
