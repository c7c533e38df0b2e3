/* ptr_hash.h - the slot of a pointer in an open-addressing table of `cap` slots (a power of
 * two): one hash for every pointer-keyed table of the library (the encoder's identity map,
 * a state's coroutine table, a select's set of channels). The pointer's bits are mixed
 * before the multiply, so aligned addresses (low bits all zero) spread as well. */
#ifndef INTERP_PTR_HASH_H
#define INTERP_PTR_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline size_t interp__ptr_slot(const void *p, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 29;
    h *= 0x9e3779b97f4a7c15u;
    return (size_t)(h >> 17) & (cap - 1);
}

#endif
