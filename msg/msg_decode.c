/* msg_decode.c - message -> Lua values (interp_msg_to_lua, interp_msg_push_lua).
 *
 * A message's bytes were validated when it was made (msg_impl.h), so decoding reads them
 * without bounds checks; what remains to check is what only the receiving state can judge:
 * table keys that Lua refuses (nil, NaN), functions when they are not allowed, bytecode that
 * does not load, depth and Lua stack room.
 *
 * Time: linear in the message size whatever its content. Every map of INTERP__PLAN_MIN pairs
 * or more gets its hash size from the planner (msg_plan.h), run once over the rest of the
 * message when the first such map opens, before it is made: numeric keys chosen to collide
 * in Lua's hash get a table large enough to spread them, or are refused. Smaller maps take
 * the size Lua would give them (their chains cannot pass 31 links).
 *
 * Nesting is walked with an explicit stack of frames, never C recursion. Every table and
 * function is numbered as it opens (msg_impl.h); only a message flagged HAS_REFS keeps them, in
 * a Lua table, for REF and JOIN.
 *
 * Protection: creating strings, tables and functions may raise memory errors, so
 * interp_msg_to_lua runs the builder under lua_pcall of a C function; only a run of leading
 * nil/boolean/number values is pushed directly (pushing those cannot raise once the stack has
 * room), which keeps scalar messages free of the pcall. interp_msg_push_lua and
 * interp_msg_store_lua (already protected) push or store leading plain values, strings too,
 * in a tight loop, and set the decoder up only at the first other value. Our own errors are raised
 * with a light userdata (no allocation while reporting); interp_msg_push_lua raises them as
 * strings.
 */
#include <msgpuck.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "interp_msg_lua.h"
#include "msg_impl.h"
#include "msg_lua_impl.h"
#include "msg_plan.h"
#include "msg_shstr.h"
#include "msg_step.h"

enum { DEFAULT_DEPTH = 200, INLINE_FRAMES = 64, FAST_VALUES = 32, MAX_VALUES = 1000000 };
/* Map keys repeat (records): the last short keys seen are kept in stack slots, so a repeated
 * key costs a memcmp and a lua_pushvalue instead of Lua's string interning. Only for messages
 * big enough to repay reserving the slots. */
enum { KEY_CACHE = 16, KEY_CACHE_MIN_SIZE = 256, SHORT_KEY = 40 };
#define DEFAULT_SIZE ((size_t)256 << 20)

enum { K_ARRAY, K_MAP, K_FUNC };

typedef struct dframe {
    int kind;
    int idx;        /* stack index of the table or function */
    uint32_t i, n;  /* K_ARRAY: elements set, count; K_MAP: -, pairs left;
                       K_FUNC: current upvalue (1-based), count */
    bool in_key;    /* K_MAP: the value being read is a key */
    uint32_t uplen; /* K_FUNC: the current upvalue's name, for error texts */
    const char *upname;
} dframe;

typedef struct dec {
    lua_State *L;
    const char *p;
    uint32_t left; /* top-level values still to read */
    long long top; /* 1-based index of the top-level value being read */
    int max_depth;
    bool allow_functions;
    bool direct; /* raise errors as strings (interp_msg_push_lua) */
    bool has_refs;
    int refs;            /* stack index of the object table (HAS_REFS), 0 if none */
    int frames_slot;     /* stack index reserved for a bigger frame array, 0 if none */
    int keys_slot;       /* first of KEY_CACHE stack slots holding cached keys, 0 if none */
    int plan_slot;       /* stack index reserved for the plan's userdata, 0 if none */
    bool planned;        /* the planner has run (from the first big map on) */
    const uint8_t *plan; /* its decisions, one per big map in header order */
    size_t plan_n, plan_next;
    struct {
        const char *s; /* the bytes of the string in slot keys_slot + i (anchored there) */
        size_t len;
    } keys[KEY_CACHE];
    uint32_t nobj;
    size_t max_frames; /* min(max_depth, message size): frames ever needed */
    size_t size;       /* of the message */
    const char *base;  /* its first byte */
    dframe *frames;
    size_t nframes, capframes;
    int status;
    char why[sizeof(((interp_msg_error *)0)->text)];
    dframe inline_frames[INLINE_FRAMES];
} dec;

/* ---- errors ------------------------------------------------------------------------------- */

static _Noreturn void dfail(dec *d, int code, const char *fmt, ...)
{
    char reason[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    interp__path path;
    interp__path_init(&path);
    if (d->top > 0)
        interp__path_index(&path, d->top);
    for (size_t k = 0; k < d->nframes; k++) {
        const dframe *f = &d->frames[k];
        if (f->kind == K_ARRAY)
            interp__path_index(&path, (long long)f->i + 1);
        else if (f->kind == K_MAP && f->in_key)
            interp__path_in_key(&path);
        else if (f->kind == K_MAP)
            interp__path_key(&path, d->L, f->idx + 1);
        else if (f->upname)
            interp__path_upvalue(&path, f->upname, f->uplen);
    }
    interp__path_finish(&path, reason, d->why, sizeof d->why);
    d->status = code;
    lua_checkstack(d->L, 1); /* room for the error object (the stack may be exactly full) */
    if (d->direct)
        lua_pushstring(d->L, d->why);
    else
        lua_pushlightuserdata(d->L, d); /* no allocation while failing */
    lua_error(d->L);
    abort(); /* not reached: lua_error does not return */
}

/* ---- frames and objects ------------------------------------------------------------------- */

static void push_frame(dec *d, dframe f)
{
    if (d->nframes == d->capframes) {
        /* deeper than the inline frames: a bigger array as a userdata in the reserved slot,
         * so that a raised error cannot leak it */
        size_t cap = d->capframes * 2 < d->max_frames ? d->capframes * 2 : d->max_frames;
        dframe *n = lua_newuserdatauv(d->L, cap * sizeof *n, 0);
        memcpy(n, d->frames, d->nframes * sizeof *n);
        lua_replace(d->L, d->frames_slot);
        d->frames = n;
        d->capframes = cap;
    }
    d->frames[d->nframes++] = f;
}

static void check_open(dec *d)
{
    if (d->nframes >= (size_t)d->max_depth)
        dfail(d, INTERP_ERR_LIMIT, "nesting deeper than %d", d->max_depth);
    if (!lua_checkstack(d->L, 5))
        dfail(d, INTERP_ERR_LIMIT, "nesting too deep for the Lua stack");
}

/* Number the object at the top of the stack; keep it when the message has references. */
static void add_object(dec *d)
{
    d->nobj++;
    if (d->refs) {
        lua_pushvalue(d->L, -1);
        lua_rawseti(d->L, d->refs, d->nobj);
    }
}

/* Push the object begun `back` objects ago (1 = the most recent; msg_impl.h). */
static void push_object(dec *d, uint64_t back)
{
    if (!d->refs || back == 0 || back > d->nobj)
        dfail(d, INTERP_ERR_DECODE, "reference %llu objects back, not begun before",
              (unsigned long long)back);
    lua_rawgeti(d->L, d->refs, (lua_Integer)(d->nobj - back) + 1);
}

/* ---- functions ---------------------------------------------------------------------------- */

typedef struct chunk {
    const char *p;
    size_t n;
} chunk;

static const char *chunk_reader(lua_State *L, void *ud, size_t *size)
{
    (void)L;
    chunk *c = ud;
    *size = c->n;
    c->n = 0;
    return *size ? c->p : NULL;
}

/* Set the upvalues of function frame f that need no value (GLOBALS, JOIN) up to the next one
 * that does. Returns true when the function is complete. */
static bool func_advance(dec *d, dframe *f)
{
    lua_State *L = d->L;
    while (f->i < f->n) {
        f->i++;
        f->upname = mp_decode_str(&d->p, &f->uplen);
        uint64_t tag = mp_decode_uint(&d->p);
        if (tag == INTERP__MSG_UPV_VALUE)
            return false;
        if (tag == INTERP__MSG_UPV_GLOBALS) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
            lua_setupvalue(L, f->idx, (int)f->i);
            continue;
        }
        uint64_t back = mp_decode_uint(&d->p), up = mp_decode_uint(&d->p);
        push_object(d, back);
        if (lua_type(L, -1) != LUA_TFUNCTION || lua_iscfunction(L, -1) || up >= 255 ||
            !lua_getupvalue(L, -1, (int)up + 1))
            dfail(d, INTERP_ERR_DECODE, "upvalue joined to a missing upvalue");
        lua_pop(L, 1);
        lua_upvaluejoin(L, f->idx, (int)f->i, -1, (int)up + 1);
        lua_pop(L, 1);
    }
    return true;
}

/* Load the function whose payload starts at d->p; returns true when it is complete. */
static bool open_function(dec *d)
{
    lua_State *L = d->L;
    if (!d->allow_functions)
        dfail(d, INTERP_ERR_DECODE, "cannot accept a function (functions are not allowed)");
    check_open(d);
    uint32_t blen;
    chunk c;
    c.p = mp_decode_bin(&d->p, &blen);
    c.n = blen;
    INTERP__STEPS(blen / 64);
    uint32_t nups = (uint32_t)mp_decode_uint(&d->p);
    int st = lua_load(L, chunk_reader, &c, "=(message)", "b");
    if (st != LUA_OK) {
        if (st == LUA_ERRMEM)
            lua_error(L); /* the memory error itself */
        char text[120];
        snprintf(text, sizeof text, "%s",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        dfail(d, INTERP_ERR_DECODE, "cannot load function: %s", text);
    }
    uint32_t actual = 0;
    while (actual <= 255 && lua_getupvalue(L, -1, (int)actual + 1)) {
        lua_pop(L, 1);
        actual++;
    }
    if (actual != nups)
        dfail(d, INTERP_ERR_DECODE, "function has %u upvalues, message gives %u", (unsigned)actual,
              (unsigned)nups);
    add_object(d);
    push_frame(d, (dframe){.kind = K_FUNC, .idx = lua_gettop(L), .n = nups});
    if (!func_advance(d, &d->frames[d->nframes - 1])) /* frames may have moved */
        return false;
    d->nframes--;
    return true;
}

/* ---- values ------------------------------------------------------------------------------- */

/* Run the planner over the values from `at` (the header of the first big map) to the end. */
static void plan(dec *d, const char *at)
{
    lua_State *L = d->L;
    size_t cap = interp__plan_cap(d->size - (size_t)(at - d->base));
    uint8_t *out = lua_newuserdatauv(L, cap, 0); /* may raise a memory error: nothing leaks */
    lua_replace(L, d->plan_slot);
    uint64_t steps = 0;
    long n = interp__plan_maps(L, at, d->base + d->size, d->allow_functions, out, cap, &steps);
    INTERP__STEPS(steps);
    if (n < 0) { /* reported as Lua's own memory errors are, without a path */
        d->status = INTERP_ERR_NOMEM;
        snprintf(d->why, sizeof d->why, "%s", d->direct ? "not enough memory" : "out of memory");
        lua_pushlightuserdata(L, d);
        if (d->direct)
            lua_pushstring(L, d->why); /* may itself fail: a memory error either way */
        lua_error(L);
    }
    d->planned = true;
    d->plan = out;
    d->plan_n = (size_t)n;
    d->plan_next = 0;
}

static bool open_table(dec *d, uint32_t n, bool map, const char *at)
{
    check_open(d);
    int size = n > INT_MAX ? INT_MAX : (int)n;
    if (map && n >= INTERP__PLAN_MIN) {
        if (!d->planned)
            plan(d, at);
        uint8_t l = d->plan_next < d->plan_n ? d->plan[d->plan_next++] : INTERP__PLAN_REFUSE;
        if (l == INTERP__PLAN_REFUSE)
            dfail(d, INTERP_ERR_DECODE,
                  "table of %u keys refused: its number keys collide in Lua's hash (decoding "
                  "it would take time quadratic in its size)",
                  (unsigned)n);
        size = 1 << l; /* l <= 30 */
    } else if (map) {
        INTERP__STEPS((uint64_t)n * n / 2); /* the longest chains a small map can have */
    }
    INTERP__STEPS(n);
    lua_createtable(d->L, map ? 0 : size, map ? size : 0);
    add_object(d);
    if (n == 0)
        return true;
    push_frame(
        d, (dframe){.kind = map ? K_MAP : K_ARRAY, .idx = lua_gettop(d->L), .n = n, .in_key = map});
    return false;
}

/* Push the map key s (a short string), through the cache of recent keys. */
static void push_key(dec *d, const char *s, size_t len)
{
    unsigned h =
        ((unsigned)len * 31u + (unsigned char)s[0] * 7u + (len ? (unsigned char)s[len - 1] : 0u)) %
        KEY_CACHE;
    if (d->keys[h].len == len && d->keys[h].s && memcmp(d->keys[h].s, s, len) == 0) {
        lua_pushvalue(d->L, d->keys_slot + (int)h);
        return;
    }
    d->keys[h].s = lua_pushlstring(d->L, s, len);
    d->keys[h].len = len;
    lua_pushvalue(d->L, -1);
    lua_replace(d->L, d->keys_slot + (int)h);
}

/* read_value's extension types at d->p (c: the first byte): a reference, a function, a shared
 * string, a frozen value; their layout is msg_step.h's. */
static bool read_ext(dec *d, unsigned char c)
{
    lua_State *L = d->L;
    interp__msg_head h;
    if (interp__msg_head_step(&d->p, d->base + d->size, &h) != INTERP__MSG_FAULT_NONE)
        dfail(d, INTERP_ERR_DECODE, "invalid byte 0x%02x", c); /* not in a validated message */
    switch (h.ext) {
    case INTERP_MSG_EXT_REF:
        push_object(d, h.as.ref);
        return true;
    case INTERP_MSG_EXT_FUNCTION:
        d->p = h.ptr; /* its payload, read item by item */
        return open_function(d);
    case INTERP__MSG_EXT_SHARED: { /* a shared string: its one copy is this push */
        size_t n;
        const char *s = interp__shstr_bytes(h.ptr, &n);
        INTERP__STEPS(n / 64);
        lua_pushlstring(L, s, n);
        return true;
    }
    case INTERP_MSG_EXT_FROZEN: { /* a view; the message keeps its own reference */
        const interp_frozen *o;
        memcpy(&o, h.ptr, sizeof o);
        interp__frozen_push(L, o);
        return true;
    }
    default: /* the step knows no other */
        dfail(d, INTERP_ERR_DECODE, "invalid byte 0x%02x", c);
    }
}

/* Read the value at d->p: push it (true), or open a container or function whose elements
 * follow (false; complete ones return true). */
static bool read_value(dec *d)
{
    lua_State *L = d->L;
    unsigned char c = (unsigned char)*d->p;
    uint32_t len;
    const char *s;
    INTERP__STEPS(1);
    switch (mp_typeof((char)c)) {
    case MP_NIL:
        d->p++;
        lua_pushnil(L);
        return true;
    case MP_BOOL:
        d->p++;
        lua_pushboolean(L, c == 0xc3);
        return true;
    case MP_UINT: {
        uint64_t u = mp_decode_uint(&d->p);
        if (u > (uint64_t)INT64_MAX)
            lua_pushnumber(L, (lua_Number)u);
        else
            lua_pushinteger(L, (lua_Integer)u);
        return true;
    }
    case MP_INT:
        lua_pushinteger(L, (lua_Integer)mp_decode_int(&d->p));
        return true;
    case MP_FLOAT:
        lua_pushnumber(L, (lua_Number)mp_decode_float(&d->p));
        return true;
    case MP_DOUBLE:
        lua_pushnumber(L, (lua_Number)mp_decode_double(&d->p));
        return true;
    case MP_STR:
        s = mp_decode_str(&d->p, &len);
        INTERP__STEPS(len / 64);
        if (d->keys_slot && len <= SHORT_KEY && d->nframes && d->frames[d->nframes - 1].in_key)
            push_key(d, s, len);
        else
            lua_pushlstring(L, s, len);
        return true;
    case MP_BIN:
        s = mp_decode_bin(&d->p, &len);
        INTERP__STEPS(len / 64);
        lua_pushlstring(L, s, len);
        return true;
    case MP_ARRAY:
        return open_table(d, mp_decode_array(&d->p), false, NULL);
    case MP_MAP: {
        const char *at = d->p;
        return open_table(d, mp_decode_map(&d->p), true, at);
    }
    case MP_EXT:
        return read_ext(d, c);
    default:
        break;
    }
    dfail(d, INTERP_ERR_DECODE, "invalid byte 0x%02x", c); /* not in a validated message */
}

static inline bool push_plain1(lua_State *L, const char **pp, bool strings);

/* Push d->left values. */
static void decode_values(dec *d)
{
    lua_State *L = d->L;
    for (;;) {
        if (d->nframes == 0) {
            if (d->left == 0)
                return;
            d->left--;
            d->top++;
        }
        size_t depth = d->nframes;
        bool complete = read_value(d);
        bool plain = complete && d->nframes == depth; /* a scalar (or an empty table) */
        while (complete && d->nframes > 0) {          /* store the value into its container */
            dframe *f = &d->frames[d->nframes - 1];
            if (f->kind == K_ARRAY) {
                lua_rawseti(L, f->idx, (lua_Integer)++f->i);
                /* after a plain element, the plain ones that follow in a tight loop */
                while (plain && f->i < f->n && push_plain1(L, &d->p, true))
                    lua_rawseti(L, f->idx, (lua_Integer)++f->i);
                complete = f->i == f->n;
            } else if (f->kind == K_MAP) {
                if (f->in_key) {
                    int t = lua_type(L, -1);
                    if (t == LUA_TNIL)
                        dfail(d, INTERP_ERR_DECODE, "table key is nil");
                    if (t == LUA_TNUMBER && !lua_isinteger(L, -1) && isnan(lua_tonumber(L, -1)))
                        dfail(d, INTERP_ERR_DECODE, "table key is NaN");
                    f->in_key = false;
                    complete = false;
                } else {
                    lua_rawset(L, f->idx);
                    f->in_key = --f->n > 0;
                    complete = f->n == 0;
                }
            } else {
                lua_setupvalue(L, f->idx, (int)f->i);
                complete = func_advance(d, f);
            }
            if (complete)
                d->nframes--; /* the container is complete, at the top */
            plain = false;
        }
    }
}

/* ---- entry points ------------------------------------------------------------------------- */

static void dec_init(dec *d, lua_State *L, const interp_msg *m, const interp_msg_opts *opts)
{
    d->L = L;
    d->p = m->data;
    d->left = m->count;
    d->top = 0;
    d->max_depth = opts && opts->max_depth > 0 ? opts->max_depth : DEFAULT_DEPTH;
    d->allow_functions = opts && opts->allow_functions;
    d->direct = false;
    d->has_refs = (m->flags & INTERP__MSG_HAS_REFS) != 0;
    d->refs = d->frames_slot = d->keys_slot = 0;
    d->nobj = 0;
    d->max_frames = (size_t)d->max_depth < m->size ? (size_t)d->max_depth : m->size;
    d->size = m->size;
    d->base = m->data;
    d->plan_slot = 0;
    d->planned = false;
    d->plan = NULL;
    d->plan_n = d->plan_next = 0;
    d->frames = d->inline_frames;
    d->nframes = 0;
    d->capframes = INLINE_FRAMES;
    d->status = INTERP_OK;
    d->why[0] = '\0';
}

/* Push the helper slots (object table, room for deep frames, key cache) below the values;
 * returns how many. Reserves stack room for all of them and for every top-level value: the
 * values are pushed later without further checks (nested ones check as they open). */
static int push_helpers(dec *d)
{
    lua_State *L = d->L;
    bool keys = d->size >= KEY_CACHE_MIN_SIZE;
    bool big = d->size > 2 * INTERP__PLAN_MIN; /* room for a map the planner sizes */
    int n = (d->has_refs ? 1 : 0) + (d->max_frames > INLINE_FRAMES ? 1 : 0) + (big ? 1 : 0) +
            (keys ? KEY_CACHE : 0);
    if (d->left > MAX_VALUES || !lua_checkstack(L, (int)d->left + n + 8))
        dfail(d, INTERP_ERR_LIMIT, "%u values do not fit on the Lua stack", (unsigned)d->left);
    if (d->has_refs) {
        lua_newtable(L);
        d->refs = lua_gettop(L);
    }
    if (d->max_frames > INLINE_FRAMES) {
        lua_pushnil(L);
        d->frames_slot = lua_gettop(L);
    }
    if (big) {
        lua_pushnil(L);
        d->plan_slot = lua_gettop(L);
    }
    if (keys) {
        d->keys_slot = lua_gettop(L) + 1;
        for (int i = 0; i < KEY_CACHE; i++) {
            lua_pushnil(L);
            d->keys[i].s = NULL;
            d->keys[i].len = 0;
        }
    }
    return n;
}

static int decode_protected(lua_State *L)
{
    dec *d = lua_touserdata(L, 1);
    uint32_t count = d->left;
    push_helpers(d);
    decode_values(d);
    return (int)count;
}

/* Push the value at *pp when it is nil, a boolean, a number, or (when `strings`: pushing one
 * may raise a memory error) a string, and advance *pp; false, with nothing pushed, for any
 * other value. Stack room is the caller's. */
static inline bool push_plain1(lua_State *L, const char **pp, bool strings)
{
    const char *p = *pp;
    unsigned char c = (unsigned char)*p;
    INTERP__STEPS(1);
    if (c <= 0x7f) {
        lua_pushinteger(L, c);
        *pp = p + 1;
        return true;
    }
    if (c >= 0xe0) {
        lua_pushinteger(L, (int8_t)c);
        *pp = p + 1;
        return true;
    }
    switch (c) {
    case 0xcc:
        lua_pushinteger(L, (unsigned char)p[1]);
        p += 2;
        break;
    case 0xcd:
    case 0xce:
        lua_pushinteger(L, (lua_Integer)mp_decode_uint(&p));
        break;
    case 0xcf: {
        uint64_t u = mp_decode_uint(&p);
        if (u > (uint64_t)INT64_MAX)
            lua_pushnumber(L, (lua_Number)u);
        else
            lua_pushinteger(L, (lua_Integer)u);
        break;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        lua_pushinteger(L, (lua_Integer)mp_decode_int(&p));
        break;
    case 0xc0:
        lua_pushnil(L);
        p++;
        break;
    case 0xc2:
    case 0xc3:
        lua_pushboolean(L, c == 0xc3);
        p++;
        break;
    case 0xca:
        lua_pushnumber(L, (lua_Number)mp_decode_float(&p));
        break;
    case 0xcb:
        lua_pushnumber(L, (lua_Number)mp_decode_double(&p));
        break;
    default:
        if (strings && ((c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb))) {
            uint32_t len;
            const char *str = mp_decode_str(&p, &len);
            INTERP__STEPS(len / 64);
            lua_pushlstring(L, str, len);
            break;
        }
        return false;
    }
    *pp = p;
    return true;
}

/* Push leading plain values (push_plain1) from *p, at most `max` of them, with the stack room
 * already checked. Advances *p and decrements *left by the values pushed. */
static inline void push_plain(lua_State *L, const char **pp, uint32_t *left, uint32_t max,
                              bool strings)
{
    uint32_t n = *left;
    for (; n && max && push_plain1(L, pp, strings); n--, max--)
        ;
    *left = n;
}

static int set_error(interp_msg_error *err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int interp_msg_to_lua(lua_State *L, const interp_msg *m, const interp_msg_opts *opts,
                      interp_msg_error *err)
{
    if (err)
        err->text[0] = '\0';
    if (!L || !m)
        return set_error(err, INTERP_ERR_INVALID, "invalid arguments");
    size_t max_size = opts && opts->max_size ? opts->max_size : DEFAULT_SIZE;
    if (interp_msg_size(m) > max_size) /* shared strings counted in full (msg_shstr.h) */
        return set_error(err, INTERP_ERR_LIMIT, "message of %zu bytes, larger than %zu",
                         interp_msg_size(m), max_size);
    int base = lua_gettop(L);
    /* leading nil/boolean/number values: pushed directly, no pcall */
    const char *p = m->data;
    uint32_t left = m->count, fast = left < FAST_VALUES ? left : FAST_VALUES;
    if (fast && lua_checkstack(L, (int)fast)) {
        push_plain(L, &p, &left, fast, false);
        if (left == 0)
            return INTERP_OK;
    }
    dec d;
    dec_init(&d, L, m, opts);
    d.p = p;
    d.left = left;
    d.top = m->count - left;
    if (!lua_checkstack(L, 3)) {
        lua_settop(L, base);
        return set_error(err, INTERP_ERR_LIMIT, "no room on the Lua stack");
    }
    lua_pushcfunction(L, decode_protected);
    lua_pushlightuserdata(L, &d);
    int st = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (st == LUA_OK)
        return INTERP_OK;
    int rc;
    if (st == LUA_ERRMEM)
        rc = set_error(err, INTERP_ERR_NOMEM, "out of memory");
    else if (lua_touserdata(L, -1) == &d)
        rc = set_error(err, d.status, "%s", d.why);
    else /* a Lua error we did not raise ("table overflow", an error in a __gc...) */
        rc = set_error(err, INTERP_ERR_DECODE, "%s",
                       lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                      : "error while decoding");
    lua_settop(L, base);
    return rc;
}

int interp__msg_push_small(lua_State *L, const interp_msg *m, size_t max_size)
{
    uint32_t count = m->count;
    if (m->size > (max_size ? max_size : DEFAULT_SIZE))
        return -1; /* interp_msg_push_lua says why */
    int64_t v;
    if (interp__msg_small_uint(m, &v)) { /* one number, the usual argument: no loop */
        lua_pushinteger(L, (lua_Integer)v);
        return 1;
    }
    if (count > INTERP__MSG_SMALL_VALUES)
        return -1;
    const char *p = m->data;
    uint32_t left = count;
    push_plain(L, &p, &left, count, true);
    if (left == 0)
        return (int)count;
    lua_pop(L, (int)(count - left));
    return -1;
}

/* Raise: m is larger than opts's size limit, or L's stack has no room for `room` more. */
static _Noreturn void refuse(lua_State *L, const interp_msg *m, const interp_msg_opts *opts,
                             size_t max_size)
{
    dec d;
    dec_init(&d, L, m, opts);
    d.direct = true;
    if (interp_msg_size(m) > max_size)
        dfail(&d, INTERP_ERR_LIMIT, "message of %zu bytes, larger than %zu", interp_msg_size(m),
              max_size);
    dfail(&d, INTERP_ERR_LIMIT, "no room on the Lua stack");
}

/* Raise unless m fits opts's size limit (shared strings counted in full, interp_msg_size) and
 * L's stack has `room` more slots. */
static inline void check_size(lua_State *L, const interp_msg *m, const interp_msg_opts *opts,
                              int room)
{
    size_t max_size = opts && opts->max_size ? opts->max_size : DEFAULT_SIZE;
    if ((m->flags & INTERP__MSG_HAS_SHARED ? interp_msg_size(m) : m->size) > max_size ||
        (room && !lua_checkstack(L, room)))
        refuse(L, m, opts, max_size);
}

/* Push the values of m from p on (`left` of them, the ones before it already pushed) with the
 * decoder, raising. */
static void push_rest(lua_State *L, const interp_msg *m, const interp_msg_opts *opts, const char *p,
                      uint32_t left)
{
    dec d;
    dec_init(&d, L, m, opts);
    d.direct = true;
    d.p = p;
    d.left = left;
    d.top = m->count - left;
    int base = lua_gettop(L);
    int helpers = push_helpers(&d);
    decode_values(&d);
    if (helpers) { /* move the helper slots above the values, then drop them */
        lua_rotate(L, base + 1, -helpers);
        lua_pop(L, helpers);
    }
}

int interp_msg_push_lua(lua_State *L, const interp_msg *m, const interp_msg_opts *opts)
{
    check_size(L, m, opts, 0);
    /* plain values (a task's usual arguments, a map's pack of numbers): pushed directly, no
     * decoder set up; the decoder goes on from the first other value */
    uint32_t count = m->count, left = count;
    const char *p = m->data;
    if (count <= MAX_VALUES && lua_checkstack(L, (int)count + 1))
        push_plain(L, &p, &left, count, true);
    if (left)
        push_rest(L, m, opts, p, left);
    return (int)count;
}

int interp_msg_store_lua(lua_State *L, const interp_msg *m, const interp_msg_opts *opts, int t,
                         lua_Integer first)
{
    check_size(L, m, opts, 2);
    if (first > LUA_MAXINTEGER - (lua_Integer)m->count) { /* first + count would overflow */
        lua_pushfstring(L, "%d values from index %I + 1: past math.maxinteger", (int)m->count,
                        (LUAI_UACINT)first);
        lua_error(L);
    }
    t = lua_absindex(L, t);
    uint32_t count = m->count, left = count;
    const char *p = m->data;
    lua_Integer i = first;
    for (; left && push_plain1(L, &p, true); left--)
        lua_rawseti(L, t, ++i);
    if (left) { /* the rest through the stack */
        push_rest(L, m, opts, p, left);
        for (lua_Integer j = i + left; j > i; j--)
            lua_rawseti(L, t, j);
    }
    return (int)count;
}
