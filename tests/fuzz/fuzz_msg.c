/* fuzz_msg.c - libFuzzer target for the message decoder.
 *
 * Each input is untrusted bytes: interp_msg_from_bytes validates them; a valid message is then
 * walked entirely with the C reader (interp_msg_iter_init/interp_msg_next) and printed
 * (interp_msg_to_text), and decoded into a fresh lua_State whose allocator fails past a small
 * limit (functions refused: bytecode from untrusted bytes must never reach lua_load), both
 * through interp_msg_to_lua, through interp_msg_push_lua and through interp_msg_store_lua (into
 * a table) inside protected calls; a value that decoded is encoded again, the encoder's output
 * must itself validate, and the three decoders' values must encode to the same bytes (their
 * tight loops for plain values agree with the general path). Any crash,
 * over-read (ASan), undefined behaviour (UBSan), leak, or broken invariant (abort) is a
 * finding.
 *
 * Time: each decode counts its steps (INTERP_MSG_STEPS, msg_plan.h: a value, a hash chain link
 * walked, 64 bytes copied); no input of S bytes may take more than STEPS_PER_BYTE * S +
 * STEPS_BASE. The count includes the chain walks the planner's table sizes imply in Lua's own
 * hash (and the worst case of every small map it does not plan), so keys crafted to collide
 * fail here; run_fuzz.sh's -timeout catches what the count would not see. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "interp_msg_lua.h"
#include "msg_impl.h"
#include "msg_plan.h"

enum { MEMORY_LIMIT = 16 << 20, STEPS_PER_BYTE = 32, STEPS_BASE = 256 };

static void check_steps(size_t size)
{
    if (interp__msg_steps > (uint64_t)STEPS_PER_BYTE * size + STEPS_BASE) {
        fprintf(stderr, "fuzz_msg: %llu decoder steps for %zu bytes\n",
                (unsigned long long)interp__msg_steps, size);
        abort();
    }
}

typedef struct budget {
    size_t used;
} budget;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    budget *b = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->used -= old;
        return NULL;
    }
    if (nsize > old && b->used + (nsize - old) > MEMORY_LIMIT)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        b->used = b->used - old + nsize;
    return p;
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_msg: broken invariant: %s\n", what);
        abort();
    }
}

/* Visit every value of m with the C reader (function payloads are opaque to it). Returns
 * whether some map key is a table, function or reference: such keys hash by address, so the
 * order in which the encoder meets them differs from one decode to the next. */
static bool walk(const interp_msg *m)
{
    enum { MAX_NEST = 256 }; /* the validator's default depth is 200 */
    interp_msg_iter stack[MAX_NEST];
    int depth = 0;
    uint32_t top = 0;
    size_t bytes = 0;
    bool in_map[MAX_NEST] = {false}, object_keys = false;
    stack[0] = interp_msg_iter_init(m);
    for (;;) {
        interp_msg_value v;
        bool key = in_map[depth] && stack[depth].left % 2 == 0;
        if (!interp_msg_next(&stack[depth], &v)) {
            check(stack[depth].left == 0, "the reader stops before the end of a valid run");
            if (depth-- == 0)
                break;
            continue;
        }
        if (depth == 0)
            top++;
        if (v.type == INTERP_MSG_STR)
            bytes += v.as.str.len; /* the pointer and length must lie inside the message */
        if (v.type == INTERP_MSG_STR && v.as.str.len)
            check(v.as.str.ptr >= interp_msg_data(m) &&
                      v.as.str.ptr + v.as.str.len <= interp_msg_data(m) + interp_msg_size(m),
                  "string inside the message");
        if (key && v.type >= INTERP_MSG_ARRAY)
            object_keys = true;
        if (v.type == INTERP_MSG_ARRAY || v.type == INTERP_MSG_MAP) {
            check(depth + 1 < MAX_NEST, "nesting within the validated depth");
            stack[++depth] = v.as.seq.items;
            in_map[depth] = v.type == INTERP_MSG_MAP;
        }
    }
    check(top == interp_msg_count(m), "the reader sees every top-level value");
    check(bytes <= interp_msg_size(m), "strings fit in the message");
    char *text;
    if (interp_msg_to_text(m, &text) == INTERP_OK)
        free(text);
    return object_keys;
}

static int push_protected(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    lua_settop(L, 0);
    return interp_msg_push_lua(L, m, NULL);
}

/* interp_msg_store_lua into a fresh table at offset 3, then its values pushed back. */
static int store_protected(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_newtable(L);
    int n = interp_msg_store_lua(L, m, NULL, 1, 3);
    luaL_checkstack(L, n, "fuzz_msg");
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, 1, 3 + i);
    return n;
}

/* The values at the top of L (count of them) encode to exactly the bytes of `want` (NULL:
 * nothing to compare with); L's values are left in place. */
static void same_encoding(lua_State *L, int count, const interp_msg *want, const char *what)
{
    if (!want)
        return;
    interp_msg *got;
    interp_msg_error err;
    if (interp_msg_from_lua(L, lua_gettop(L) - count + 1, count, NULL, &got, &err) != INTERP_OK)
        return; /* out of memory under the fuzzer's limit */
    check(interp_msg_size(got) == interp_msg_size(want) &&
              memcmp(interp_msg_data(got), interp_msg_data(want), interp_msg_size(want)) == 0,
          what);
    interp_msg_free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    interp_msg *m;
    /* functions trusted here so that their payloads are validated too; the decoder below
     * refuses them (allow_functions off): bytecode from untrusted bytes never loads */
    int rc = interp_msg_from_bytes_ex(data, size, 0, INTERP_MSG_TRUST_FUNCTIONS, &m);
    if (rc != INTERP_OK) {
        check(rc == INTERP_ERR_DECODE || rc == INTERP_ERR_LIMIT || rc == INTERP_ERR_NOMEM,
              "from_bytes status");
        return 0;
    }
    check(interp_msg_size(m) == size, "message size");
    bool object_keys = walk(m);
    budget b = {0};
    lua_State *L = lua_newstate(limited_alloc, &b);
    if (!L) {
        interp_msg_free(m);
        return 0;
    }
    interp_msg_error err;
    interp_msg *first = NULL; /* interp_msg_to_lua's values, encoded again */
    lua_pushboolean(L, 1);
    interp__msg_steps = 0;
    rc = interp_msg_to_lua(L, m, NULL, &err);
    check_steps(size);
    if (rc == INTERP_OK) {
        check(lua_gettop(L) == 1 + (int)interp_msg_count(m), "values pushed");
        /* what decoded can be encoded again, into valid bytes */
        interp_msg *again;
        int erc = interp_msg_from_lua(L, 2, (int)interp_msg_count(m), NULL, &again, &err);
        check(erc == INTERP_OK || erc == INTERP_ERR_NOMEM || erc == INTERP_ERR_LIMIT, "re-encode");
        if (erc == INTERP_OK) {
            interp_msg *valid;
            check(interp_msg_from_bytes(interp_msg_data(again), interp_msg_size(again), 0,
                                        &valid) == INTERP_OK,
                  "re-encoded bytes validate");
            check(interp_msg_count(valid) == interp_msg_count(m), "re-encoded count");
            interp_msg_free(valid);
            if (object_keys)
                interp_msg_free(again);
            else
                first = again;
        }
    } else {
        check(rc == INTERP_ERR_DECODE || rc == INTERP_ERR_LIMIT || rc == INTERP_ERR_NOMEM,
              "to_lua status");
        check(lua_gettop(L) == 1, "stack unchanged after a failed decode");
    }
    lua_settop(L, 0);
    lua_pushcfunction(L, push_protected);
    lua_pushlightuserdata(L, m);
    interp__msg_steps = 0;
    int st = lua_pcall(L, 1, LUA_MULTRET, 0);
    check_steps(size);
    check(st == LUA_OK ? lua_gettop(L) == (int)interp_msg_count(m) : lua_gettop(L) == 1,
          "push_lua stack");
    if (st == LUA_OK)
        same_encoding(L, lua_gettop(L), first, "push_lua's values encode as to_lua's");
    lua_settop(L, 0);
    lua_pushcfunction(L, store_protected);
    lua_pushlightuserdata(L, m);
    interp__msg_steps = 0;
    st = lua_pcall(L, 1, LUA_MULTRET, 0);
    check_steps(size);
    check(st == LUA_OK ? lua_gettop(L) == (int)interp_msg_count(m) : lua_gettop(L) == 1,
          "store_lua stack");
    if (st == LUA_OK)
        same_encoding(L, lua_gettop(L), first, "store_lua's values encode as to_lua's");
    interp_msg_free(first);
    lua_close(L);
    interp_msg_free(m);
    return 0;
}
