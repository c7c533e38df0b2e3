/* msg_plan.h - internal to the decoder (msg_decode.c): the hash size of every big map,
 * chosen before any Lua object is made, so that decoding stays linear in the message size
 * whatever its keys.
 *
 * Why: Lua puts a table's integer and float keys in its hash part at a "main position" that a
 * sender can predict (5.4.4+: the key modulo 2^k - 1; 5.4.0-5.4.3: its low k bits). Keys chosen
 * to share one main position at the size a table of n keys gets make each insertion walk a
 * chain of all the keys before it: n^2/2 steps inside one C call (2^18 keys: 76 s). The
 * planner computes, for each map of at least INTERP__PLAN_MIN pairs, the chains its numeric
 * keys would form at the natural size (the smallest power of two >= n) and, when they are too
 * long (more than 2n + 32 steps of walking in all), at twice and four times that size; a map
 * whose keys collide at all three is refused (INTERP_ERR_DECODE). String keys are placed by a
 * per-state random seed (lstate.c's luai_makeseed), which a sender cannot know; other keys
 * (booleans, tables, functions) cannot be chosen to collide in numbers that matter.
 *
 * The prediction is Lua's private business, so it is tied to the Lua version found at build
 * time and checked at start-up (interp__plan_model): a table of keys with known, distinct main
 * positions is built and its lua_next order compared with the prediction. If the running Lua
 * matches neither model, the planner cannot predict and refuses maps with more than
 * INTERP__PLAN_BLIND_MAX numeric keys (then a chain costs at most that many steps a key). */
#ifndef INTERP_MSG_PLAN_H
#define INTERP_MSG_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "sync.h"

enum {
    INTERP__PLAN_MIN = 32,         /* smaller maps: at most 31 * 30 / 2 steps, never planned */
    INTERP__PLAN_BLIND_MAX = 1024, /* numeric keys of one map when the model is unknown */
    INTERP__PLAN_REFUSE = 0xff,    /* the decision for a map that cannot be made cheaply */
};

/* Lua's placement of numeric keys, as found at start-up. */
typedef enum interp__hash_model {
    INTERP__HASH_UNKNOWN = 0, /* neither below: blind mode */
    INTERP__HASH_POW2 = 1,    /* Lua 5.4.0-5.4.3: integer keys by their low bits */
    INTERP__HASH_MOD = 2,     /* Lua 5.4.4+: integer keys modulo (size - 1) | 1 */
} interp__hash_model;

/* The model of the Lua this process runs, checked once (thread-safe) against a scratch state:
 * the build's model first, then the other. */
interp__hash_model interp__plan_model(void);

/* Plan the maps of the values in [p, end) (whole values; p is a map header with at least
 * INTERP__PLAN_MIN pairs): for each map of at least INTERP__PLAN_MIN pairs, in the order their
 * headers come, one byte into out (room for out_cap): log2 of the hash size to create it with,
 * or INTERP__PLAN_REFUSE. `functions`: walk into function payloads (else stop at the first
 * function: the decoder refuses it before it reaches any later map). Scratch memory comes
 * from L's allocator (lua_getallocf: it counts against the state's limit; no Lua object is
 * made and nothing is raised). Returns the number of bytes written, or -1 when out of memory.
 * *steps (may be NULL) receives the work done plus the chain walks the decisions imply. */
long interp__plan_maps(lua_State *L, const char *p, const char *end, int functions, uint8_t *out,
                       size_t out_cap, uint64_t *steps);

/* Test builds only (the fuzzer defines INTERP_MSG_STEPS): the decoder's work on this thread, in
 * steps of a constant cost (a value, a chain link walked, 64 bytes copied), so that a fuzz
 * target can assert that no input of S bytes takes more than C * S of them. */
#ifdef INTERP_MSG_STEPS
extern INTERP__TLS uint64_t interp__msg_steps;
#define INTERP__STEPS(n) (interp__msg_steps += (uint64_t)(n))
#else
#define INTERP__STEPS(n) ((void)0)
#endif

/* The room interp__plan_maps may need for n bytes of values. */
static inline size_t interp__plan_cap(size_t n) { return n / (2 * INTERP__PLAN_MIN) + 1; }

#endif
