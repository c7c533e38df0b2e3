/* msg_shstr.c - large strings shared between a worker state and the messages that carry them
 * (msg_shstr.h): the headed blocks of the state's allocator, the layout probe, the handles'
 * references and a message's plain form. */
#include "msg_shstr.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg_read.h"

/* In front of every large block of a worker state: 16 bytes, so the block stays 16-aligned. */
typedef struct shblock {
    atomic_size_t refs; /* Lua's (while the object lives) + one per handle in a message */
    size_t size;        /* the block's size as Lua knows it */
} shblock;
_Static_assert(sizeof(shblock) == 16, "the header keeps malloc's alignment");
#define HEAD sizeof(shblock)

static shblock *head_of(void *p) { return (shblock *)(void *)((char *)p - HEAD); }

/* Drop one reference; the last frees the block. A count of 1 seen with acquire is the caller's
 * own and nobody can add one (a new reference comes from the owner's encoder while the string
 * lives, or from a copy of a message that already holds one): no atomic write needed. */
static void unref(shblock *h)
{
    if (atomic_load_explicit(&h->refs, memory_order_acquire) == 1 ||
        atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
        free(h);
}

void *interp__shblock_realloc(void *ptr, size_t osize, size_t nsize)
{
    bool had = ptr && osize >= INTERP__SHBLOCK_MIN, wants = nsize >= INTERP__SHBLOCK_MIN;
    if (!had) { /* new, or plain -> headed (nsize > osize): the contents move up past the header */
        if (nsize > SIZE_MAX - HEAD)
            return NULL;
        char *raw = realloc(ptr, nsize + HEAD);
        if (!raw)
            return NULL;
        if (ptr)
            memmove(raw + HEAD, raw, osize);
        shblock *h = (shblock *)(void *)raw;
        atomic_init(&h->refs, 1);
        h->size = nsize;
        return raw + HEAD;
    }
    shblock *h = head_of(ptr);
    if (atomic_load_explicit(&h->refs, memory_order_acquire) != 1) {
        /* a message shares it (Lua never resizes a string, but whatever it is, the message's
         * bytes must not change): a fresh block, the old one stays with the message */
        void *n = wants ? interp__shblock_realloc(NULL, 0, nsize) : malloc(nsize);
        if (!n)
            return nsize <= osize ? ptr : NULL; /* a shrink keeps the old block */
        memcpy(n, ptr, osize < nsize ? osize : nsize);
        unref(h);
        return n;
    }
    if (wants) {
        if (nsize > SIZE_MAX - HEAD)
            return NULL;
        shblock *raw = realloc(h, nsize + HEAD);
        if (!raw) {
            if (nsize > osize)
                return NULL;
            raw = h; /* a shrink that could not move: keep the block */
        }
        raw->size = nsize;
        return (char *)raw + HEAD;
    }
    /* headed -> plain (nsize < osize): the contents move down over the header */
    memmove(h, ptr, nsize);
    void *raw = realloc(h, nsize);
    return raw ? raw : (void *)h;
}

void interp__shblock_free(void *ptr) { unref(head_of(ptr)); }

/* ---- the layout probe -------------------------------------------------------------------- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static size_t str_off;                 /* contents - block start of a long string; 0: unknown */
static _Atomic(lua_Alloc) share_alloc; /* the registered allocator; NULL: none */

typedef struct probe_rec {
    char *block; /* the last string object of at least INTERP__SHSTR_MIN bytes */
    size_t size;
} probe_rec;

static void *probe_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    probe_rec *r = ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p && !ptr && osize == LUA_TSTRING && nsize >= INTERP__SHSTR_MIN) {
        r->block = p;
        r->size = nsize;
    }
    return p;
}

static int probe_push(lua_State *L)
{
    char *buf = lua_touserdata(L, 1);
    lua_pushlstring(L, buf, INTERP__SHSTR_MIN);
    return 1;
}

/* Make one long string in a scratch state and see where its bytes sit in its block. */
static void probe(void)
{
    probe_rec r = {0};
    char *buf = calloc(1, INTERP__SHSTR_MIN);
    lua_State *L = buf ? lua_newstate(probe_alloc, &r) : NULL;
    if (L) {
        lua_pushcfunction(L, probe_push);
        lua_pushlightuserdata(L, buf);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && r.block) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            size_t off = (size_t)(s - r.block);
            if (s > r.block && off <= 64 && len == INTERP__SHSTR_MIN && off + len + 1 == r.size)
                str_off = off;
        }
        lua_close(L);
    }
    free(buf);
}

void interp__shstr_enable(lua_Alloc f)
{
    pthread_once(&probe_once, probe);
    if (str_off && atomic_load_explicit(&share_alloc, memory_order_relaxed) != f)
        atomic_store_explicit(&share_alloc, f, memory_order_release);
}

const void *interp__shstr_block(lua_State *L, const char *s, size_t len)
{
    if (len < INTERP__SHSTR_MIN)
        return NULL;
    lua_Alloc f = atomic_load_explicit(&share_alloc, memory_order_acquire);
    if (!f || lua_getallocf(L, NULL) != f)
        return NULL;
    shblock *h = (shblock *)(void *)((char *)(uintptr_t)s - str_off - HEAD);
    /* the probe's layout holds for this string too (a check: it always should) */
    if (h->size != str_off + len + 1)
        return NULL;
    return h;
}

const char *interp__shstr_bytes(const char *payload, size_t *len)
{
    shblock *h;
    memcpy(&h, payload, sizeof h);
    *len = h->size - str_off - 1;
    return (const char *)h + HEAD + str_off;
}

/* Is the value at p a handle? (p is at the head of a value of a valid message.) */
static bool is_handle(const char *p)
{
    return (unsigned char)p[0] == 0xd7 && p[1] == INTERP__MSG_EXT_SHARED;
}

void interp__shstr_msg_refs(const char *data, size_t len, int delta)
{
    const char *p = data, *end = data + len;
    interp_msg_type type;
    uint32_t ref;
    while (p < end) {
        if (is_handle(p)) {
            shblock *h;
            memcpy(&h, p + 2, sizeof h);
            if (delta > 0)
                atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
            else
                unref(h);
            p += 10;
        } else if (!interp__msg_step(&p, end, &type, &ref)) {
            return; /* not in a message made by this library */
        }
    }
}

const char *interp__shstr_plain(const interp_msg *m)
{
    interp__shstr_tail *t = interp__shstr_tail_of(m);
    char *plain = atomic_load_explicit(&t->plain, memory_order_acquire);
    if (plain)
        return plain;
    plain = malloc(t->plain_size ? t->plain_size : 1);
    if (!plain)
        return NULL;
    const char *p = m->data, *end = m->data + m->size, *from = p;
    char *w = plain;
    interp_msg_type type;
    uint32_t ref;
    while (p < end) {
        if (is_handle(p)) {
            memcpy(w, from, (size_t)(p - from));
            w += p - from;
            size_t n;
            const char *s = interp__shstr_bytes(p + 2, &n);
            *w++ = (char)0xdb; /* str 32: a shared string is at least 64 KiB */
            for (int k = 3; k >= 0; k--)
                *w++ = (char)(n >> (8 * k));
            memcpy(w, s, n);
            w += n;
            p = from = p + 10;
        } else if (!interp__msg_step(&p, end, &type, &ref)) {
            break;
        }
    }
    memcpy(w, from, (size_t)(end - from));
    char *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&t->plain, &none, plain, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free(plain); /* another reader built it first */
        return none;
    }
    return plain;
}

void interp__shstr_msg_release(interp_msg *m)
{
    interp__shstr_msg_refs(m->data, m->size, -1);
    free(atomic_load_explicit(&interp__shstr_tail_of(m)->plain, memory_order_acquire));
}
