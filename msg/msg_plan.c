/* msg_plan.c - hash sizes for the big maps of a message, before any Lua object is made (see
 * msg_plan.h for why). One pass over the bytes with an explicit stack of frames; the numeric
 * keys of every open big map wait on one stack of key records, so nested maps cost nothing
 * extra; a map's decision is made when its last pair has been read. Work: a constant per
 * value, plus at most three sizes tried per numeric key. */
#include <lauxlib.h>
#include <msgpuck.h>

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "msg_impl.h"
#include "msg_plan.h"
#include "msg_step.h"

#ifdef INTERP_MSG_STEPS
INTERP__TLS uint64_t interp__msg_steps;
#endif

/* ---- Lua's placement of numeric keys (ltable.c: hashint, l_hashfloat, hashmod) ------------ */

typedef struct keyrec {
    uint64_t h; /* integer keys: the integer as unsigned; floats: l_hashfloat's value */
    uint32_t isflt;
} keyrec;

/* ltable.c's l_hashfloat: frexp's mantissa scaled to an int, plus the exponent. */
static uint64_t hash_float(double n)
{
    int e;
    n = frexp(n, &e) * -(double)INT_MIN;
    if (!(n >= (double)LLONG_MIN && n < -(double)LLONG_MIN))
        return 0; /* inf, NaN */
    long long ni = (long long)n;
    unsigned u = (unsigned)e + (unsigned)ni;
    return u <= (unsigned)INT_MAX ? u : ~u;
}

/* A number key as Lua stores it: a float with an integral value in range is an integer. */
static keyrec key_of_double(double v)
{
    if (v >= -9223372036854775808.0 && v < 9223372036854775808.0 && v == floor(v))
        return (keyrec){.h = (uint64_t)(int64_t)v, .isflt = 0};
    return (keyrec){.h = hash_float(v), .isflt = 1};
}

static inline size_t main_position(interp__hash_model model, keyrec k, unsigned lsize)
{
    uint64_t size = (uint64_t)1 << lsize;
    if (!k.isflt && model == INTERP__HASH_POW2)
        return (size_t)(k.h & (size - 1));
    return (size_t)(k.h % ((size - 1) | 1));
}

/* ---- the start-up check ------------------------------------------------------------------- */

static interp__hash_model g_model;
static pthread_once_t g_model_once = PTHREAD_ONCE_INIT;

/* Keys of both kinds and every range the hash functions treat apart. */
static const double probe_floats[] = {0.5,     -2.25,      1e300,  3.0e-5, 7.75,
                                      -1e-300, 123456.125, -0.375, 1e20,   2.5e-10};
static const long long probe_ints[] = {7,
                                       8,
                                       3,
                                       12,
                                       64,
                                       1000,
                                       -1,
                                       -64,
                                       2147483647,
                                       2147483648LL,
                                       4294967297LL,
                                       -9223372036854775807LL - 1,
                                       99,
                                       31,
                                       65,
                                       9223372036854775807LL,
                                       1LL << 40,
                                       5,
                                       17,
                                       42};

/* Does a table of 64 nodes, given keys whose predicted main positions are all distinct, list
 * them (lua_next walks the nodes in order) in the predicted order? */
static bool model_matches(lua_State *L, interp__hash_model model)
{
    enum { LSIZE = 6, SIZE = 1 << LSIZE };
    struct {
        keyrec k;
        double f;
        long long i;
    } pos[SIZE];
    bool used[SIZE] = {false};
    int n = 0;
    enum { NI = sizeof probe_ints / sizeof probe_ints[0] };
    for (size_t j = 0; j < NI + sizeof probe_floats / sizeof probe_floats[0]; j++) {
        bool flt = j >= NI; /* the integers, then the floats */
        keyrec k = flt ? key_of_double(probe_floats[j - NI])
                       : (keyrec){.h = (uint64_t)probe_ints[j], .isflt = 0};
        size_t b = main_position(model, k, LSIZE);
        if (used[b]) /* a key predicted where another is: left out */
            continue;
        used[b] = true;
        pos[b].k = k;
        pos[b].f = flt ? probe_floats[j - NI] : 0;
        pos[b].i = flt ? 0 : probe_ints[j];
        n++;
    }
    lua_createtable(L, 0, SIZE);
    for (int b = SIZE - 1; b >= 0; b--) { /* inserted in reverse: order comes from the hash */
        if (!used[b])
            continue;
        if (pos[b].k.isflt)
            lua_pushnumber(L, pos[b].f);
        else
            lua_pushinteger(L, pos[b].i);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    int b = 0, seen = 0;
    bool ok = true;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        while (b < SIZE && !used[b])
            b++;
        if (b == SIZE) {
            ok = false;
        } else if (pos[b].k.isflt) {
            ok = ok && !lua_isinteger(L, -1) && lua_tonumber(L, -1) == pos[b].f;
        } else {
            ok = ok && lua_isinteger(L, -1) && lua_tointeger(L, -1) == pos[b].i;
        }
        b++;
        seen++;
    }
    lua_pop(L, 1);
    return ok && seen == n;
}

static void pick_model(void)
{
    interp__hash_model built =
        LUA_VERSION_RELEASE_NUM >= 50404 ? INTERP__HASH_MOD : INTERP__HASH_POW2;
    interp__hash_model other = built == INTERP__HASH_MOD ? INTERP__HASH_POW2 : INTERP__HASH_MOD;
    lua_State *L = luaL_newstate();
    if (!L)
        return; /* unknown: blind mode */
    if (model_matches(L, built))
        g_model = built;
    else if (model_matches(L, other))
        g_model = other;
    lua_close(L);
}

interp__hash_model interp__plan_model(void)
{
    pthread_once(&g_model_once, pick_model);
    return g_model;
}

/* ---- the walk ----------------------------------------------------------------------------- */

enum { F_ARRAY, F_MAP, F_FUNC };

typedef struct pframe {
    int kind;
    uint64_t left;  /* F_ARRAY: elements; F_MAP: keys and values; F_FUNC: upvalues */
    uint32_t pairs; /* F_MAP */
    long slot;      /* F_MAP: its byte in out, -1 when small */
    size_t keys_at; /* F_MAP (big): its first record on the key stack */
} pframe;

typedef struct planner {
    lua_Alloc alloc;
    void *ud;
    interp__hash_model model;
    pframe *frames;
    size_t nframes, capframes;
    keyrec *keys;
    size_t nkeys, capkeys;
    uint32_t *counts;
    size_t capcounts;
    uint64_t steps;
    bool oom;
} planner;

static void *grow(planner *pl, void *ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return ptr;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIZE_MAX / elem) {
        pl->oom = true;
        return NULL;
    }
    void *n = pl->alloc(pl->ud, ptr, ptr ? *cap * elem : 0, ncap * elem);
    if (!n) {
        pl->oom = true;
        return NULL;
    }
    *cap = ncap;
    return n;
}

static void give_back(planner *pl, void *ptr, size_t bytes)
{
    if (ptr)
        pl->alloc(pl->ud, ptr, bytes, 0);
}

/* Walking cost of keys[0..n) at 2^lsize nodes, stopping once it passes budget. */
static uint64_t chain_cost(planner *pl, const keyrec *keys, size_t n, unsigned lsize,
                           uint64_t budget)
{
    size_t size = (size_t)1 << lsize, had = pl->capcounts;
    uint32_t *c = grow(pl, pl->counts, &pl->capcounts, size, sizeof *c);
    if (!c)
        return UINT64_MAX;
    pl->counts = c;
    if (pl->capcounts != had) /* the counts are kept at zero between uses */
        memset(c + had, 0, (pl->capcounts - had) * sizeof *c);
    uint64_t cost = 0;
    size_t i = 0;
    for (; i < n && cost <= budget; i++)
        cost += c[main_position(pl->model, keys[i], lsize)]++;
    for (size_t j = 0; j < i; j++) /* back to zero for the next map, in O(keys) */
        c[main_position(pl->model, keys[j], lsize)] = 0;
    pl->steps += 2 * i;
    return cost;
}

static unsigned ceil_log2(uint64_t n)
{
    unsigned l = 0;
    while (((uint64_t)1 << l) < n)
        l++;
    return l;
}

/* The decision for a big map of `pairs` pairs whose numeric keys are keys[0..n). */
static uint8_t decide(planner *pl, const keyrec *keys, size_t n, uint32_t pairs)
{
    unsigned l0 = ceil_log2(pairs);
    uint64_t budget = 2 * (uint64_t)pairs + 32;
    if (pl->model == INTERP__HASH_UNKNOWN)
        return n > INTERP__PLAN_BLIND_MAX ? INTERP__PLAN_REFUSE : (uint8_t)l0;
    for (unsigned l = l0; l <= l0 + 2 && l <= 30; l++) { /* 2^30: Lua's largest hash part */
        uint64_t cost = chain_cost(pl, keys, n, l, budget);
        if (pl->oom)
            return INTERP__PLAN_REFUSE;
        if (cost <= budget) {
            pl->steps += cost;
            return (uint8_t)l;
        }
    }
    return INTERP__PLAN_REFUSE;
}

static bool push(planner *pl, pframe f)
{
    pframe *fr = grow(pl, pl->frames, &pl->capframes, pl->nframes + 1, sizeof *fr);
    if (!fr)
        return false;
    pl->frames = fr;
    pl->frames[pl->nframes++] = f;
    return true;
}

/* Note the key at *p (a key of the big map f) when it is a number. */
static bool note_key(planner *pl, const char *p)
{
    keyrec k;
    switch (mp_typeof(*p)) {
    case MP_UINT:
        k = (keyrec){.h = mp_decode_uint(&p), .isflt = 0};
        break;
    case MP_INT:
        k = (keyrec){.h = (uint64_t)mp_decode_int(&p), .isflt = 0};
        break;
    case MP_FLOAT:
        k = key_of_double(mp_decode_float(&p));
        break;
    case MP_DOUBLE:
        k = key_of_double(mp_decode_double(&p));
        break;
    default:
        return true;
    }
    keyrec *ks = grow(pl, pl->keys, &pl->capkeys, pl->nkeys + 1, sizeof *ks);
    if (!ks)
        return false;
    pl->keys = ks;
    pl->keys[pl->nkeys++] = k;
    return true;
}

/* The step of one value at *pp: a container pushes its frame, a map of INTERP__PLAN_MIN
 * pairs or more takes the next slot of out; a function value stops the walk (*stopped) unless
 * functions are decoded. false when out of memory (or of slots, which valid bytes never
 * are). */
static bool plan_value(planner *pl, const char **pp, const char *end, int functions, uint8_t *out,
                       size_t out_cap, long *nout, bool *stopped)
{
    const char *p = *pp;
    switch (mp_typeof(*p)) {
    case MP_ARRAY: {
        uint32_t n = mp_decode_array(&p);
        if (n && !push(pl, (pframe){.kind = F_ARRAY, .left = n, .slot = -1}))
            return false;
        break;
    }
    case MP_MAP: {
        uint32_t n = mp_decode_map(&p);
        pframe f = {
            .kind = F_MAP, .left = 2 * (uint64_t)n, .pairs = n, .slot = -1, .keys_at = pl->nkeys};
        if (n >= INTERP__PLAN_MIN) {
            if ((size_t)*nout >= out_cap) { /* not for valid bytes: refuse, never overflow */
                pl->oom = true;
                return false;
            }
            f.slot = (*nout)++;
            out[f.slot] = INTERP__PLAN_REFUSE;
        }
        if (n && !push(pl, f))
            return false;
        break;
    }
    case MP_EXT: {
        interp__msg_head h;
        interp__msg_fault fault = interp__msg_head_step(&p, end, &h);
        if (!fault && h.ext != INTERP_MSG_EXT_FUNCTION) /* references, handles: opaque */
            break;
        if (fault || !functions) { /* the decoder stops here: no later map is ever made */
            *stopped = true;
            p = end;
            break;
        }
        p = h.ptr; /* the function's payload, item by item */
        uint32_t blen;
        mp_decode_bin(&p, &blen);
        pl->steps += blen / 64;
        uint64_t nups = mp_decode_uint(&p);
        if (nups && !push(pl, (pframe){.kind = F_FUNC, .left = nups, .slot = -1}))
            return false;
        break;
    }
    case MP_STR: {
        uint32_t len;
        mp_decode_str(&p, &len);
        pl->steps += len / 64;
        break;
    }
    case MP_BIN: {
        uint32_t len;
        mp_decode_bin(&p, &len);
        pl->steps += len / 64;
        break;
    }
    default:
        mp_next(&p);
        break;
    }
    *pp = p;
    return true;
}

/* decide for the map frame top, whose keys are the last ones kept; they are dropped. */
static uint8_t decide_top(planner *pl, const pframe *top)
{
    /* no key kept yet (a big map of other keys): pl->keys is still NULL */
    const keyrec *keys = pl->keys ? pl->keys + top->keys_at : NULL;
    uint8_t l = decide(pl, keys, pl->nkeys - top->keys_at, top->pairs);
    pl->nkeys = top->keys_at;
    return l;
}

long interp__plan_maps(lua_State *L, const char *p, const char *end, int functions, uint8_t *out,
                       size_t out_cap, uint64_t *steps)
{
    planner pl = {0};
    pl.alloc = lua_getallocf(L, &pl.ud);
    pl.model = interp__plan_model();
    long nout = 0;
    bool stopped = false;
    /* [p, end) holds whole values: the walk ends with the bytes */
    while (p < end && !pl.oom) {
        pframe *top = pl.nframes ? &pl.frames[pl.nframes - 1] : NULL;
        if (top && top->left == 0) { /* a container is complete */
            if (top->kind == F_MAP && top->slot >= 0) {
                out[top->slot] = decide_top(&pl, top);
            }
            pl.nframes--;
            continue;
        }
        if (top && top->kind == F_FUNC) { /* the next upvalue: name, tag [, value] */
            top->left--;
            uint32_t len;
            mp_decode_str(&p, &len);
            uint64_t tag = mp_decode_uint(&p);
            if (tag == INTERP__MSG_UPV_JOIN) {
                mp_decode_uint(&p);
                mp_decode_uint(&p);
            }
            if (tag != INTERP__MSG_UPV_VALUE)
                continue;
        } else if (top) {
            if (top->kind == F_MAP && top->slot >= 0 && top->left % 2 == 0 && !note_key(&pl, p))
                break;
            top->left--;
        }
        pl.steps++;
        if (!plan_value(&pl, &p, end, functions, out, out_cap, &nout, &stopped))
            goto done;
    }
    /* close what the bytes end (left 0), or what a stop at a function leaves open: those maps
     * are decided on the keys before it, the decoder failing at the function anyway */
    while (!pl.oom && pl.nframes) {
        pframe *top = &pl.frames[--pl.nframes];
        if (top->kind == F_MAP && top->slot >= 0 && (top->left == 0 || stopped)) {
            out[top->slot] = decide_top(&pl, top);
        }
    }
done:
    give_back(&pl, pl.frames, pl.capframes * sizeof *pl.frames);
    give_back(&pl, pl.keys, pl.capkeys * sizeof *pl.keys);
    give_back(&pl, pl.counts, pl.capcounts * sizeof *pl.counts);
    if (steps)
        *steps = pl.steps;
    return pl.oom ? -1 : nout;
}
