/* threads.c - the set of a state's coroutines (see threads.h). */
#include "threads.h"

#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "ptr_hash.h"
#include "sync.h"

enum { MIN_CAP = 4 }; /* a context has one coroutine of its own: 32 bytes, not 128 */

static lua_State *state_of_block(void *block)
{
    /* lua_getextraspace(L) is (char *)L - LUA_EXTRASPACE: the block starts with it */
    return (lua_State *)(void *)((char *)block + LUA_EXTRASPACE);
}

void interp__threads_init(interp__threads *t)
{
    t->slots = NULL;
    t->cap = t->count = t->block = 0;
    interp__mutex_init(&t->mu);
}

void interp__threads_destroy(interp__threads *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
    interp__mutex_destroy(&t->mu);
}

static size_t cap_for(size_t count)
{
    size_t cap = MIN_CAP;
    while (cap < 2 * count) /* load at most one half */
        cap *= 2;
    return cap;
}

size_t interp__threads_bytes(const interp__threads *t) { return t->cap * sizeof(lua_State *); }

size_t interp__threads_bytes_after_add(const interp__threads *t)
{
    size_t cap = 2 * (t->count + 1) > t->cap ? cap_for(t->count + 1) : t->cap;
    return cap * sizeof(lua_State *);
}

static void put(lua_State **slots, size_t cap, lua_State *co)
{
    size_t i = interp__ptr_slot(co, cap);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = co;
}

/* Rebuild the array with `cap` slots (under mu). False when out of memory. */
static bool resize(interp__threads *t, size_t cap)
{
    lua_State **slots = interp__malloc(cap * sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < cap; i++)
        slots[i] = NULL;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i])
            put(slots, cap, t->slots[i]);
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return true;
}

bool interp__threads_add(interp__threads *t, void *block, size_t size)
{
    lua_State *co = state_of_block(block);
    interp__mutex_lock(&t->mu);
    bool ok = true;
    if (2 * (t->count + 1) > t->cap)
        ok = resize(t, cap_for(t->count + 1));
    if (ok) {
        put(t->slots, t->cap, co);
        t->count++;
        if (!t->block)
            t->block = size;
    }
    interp__mutex_unlock(&t->mu);
    return ok;
}

static size_t find(const interp__threads *t, const lua_State *co)
{
    if (!t->cap)
        return SIZE_MAX;
    for (size_t i = interp__ptr_slot(co, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i] == co)
            return i;
        if (!t->slots[i])
            return SIZE_MAX;
    }
}

bool interp__threads_has(const interp__threads *t, lua_State *co)
{
    return find(t, co) != SIZE_MAX;
}

void interp__threads_forget(interp__threads *t, void *block, size_t size)
{
    if (size != t->block || !t->count)
        return;
    lua_State *co = state_of_block(block);
    size_t i = find(t, co); /* no lock: only this thread writes */
    if (i == SIZE_MAX)
        return; /* another object of the same size */
    interp__mutex_lock(&t->mu);
    /* backward-shift deletion: no tombstones, lookups stay short */
    size_t mask = t->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slots[j])
            break;
        size_t home = interp__ptr_slot(t->slots[j], t->cap);
        /* move slots[j] into the hole at i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = NULL;
    t->count--;
    if (t->cap > MIN_CAP && t->count * 8 < t->cap)
        resize(t, cap_for(t->count)); /* on failure the larger array stays: still correct */
    interp__mutex_unlock(&t->mu);
}

void interp__threads_each(interp__threads *t, void (*fn)(lua_State *co, void *ud), void *ud)
{
    interp__mutex_lock(&t->mu);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i])
            fn(t->slots[i], ud);
    interp__mutex_unlock(&t->mu);
}
