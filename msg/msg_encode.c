/* msg_encode.c - Lua values -> message (interp_msg_from_lua).
 *
 * The encoder never raises and never creates a Lua object: it reads the values with raw,
 * non-allocating API calls (lua_next, lua_rawgeti, lua_getupvalue, lua_dump) and writes
 * MessagePack straight into an interp__msgbuf, which becomes the message without a copy.
 * Nesting is walked with an explicit stack of frames (never C recursion), so a deep value
 * costs heap, not C stack; depth and size limits bound both.
 *
 * Identity: every table and function gets an object number when first written (msg_impl.h);
 * a C map pointer -> number (msg_idmap.c) turns later encounters into REF (written as the
 * distance back), and upvalue cells (lua_upvalueid) already written into JOIN. The map needs
 * no setup while it holds a few entries, so scalar messages cost one allocation (the message)
 * and a few stores, and small tables little more.
 *
 * Tables: a table with no key 1 is a map, counted while written (placeholder header fixed at
 * the end); a table with a length n is first tried as an array in lua_next order, and only
 * when its keys do not come as 1..n are they all checked (array iff exactly 1..n) first.
 */
#include <msgpuck.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "interp_msg_lua.h"
#include "msg_impl.h"
#include "msg_lua_impl.h"
#include "msg_shstr.h"

enum { DEFAULT_DEPTH = 200, INLINE_FRAMES = 16 };

typedef interp__idmap_slot slot;
/* A map whose count is learnt while writing it gets a 5-byte placeholder header; when done, a
 * body up to this size is moved back so the header takes its shortest form (bounded, so that
 * nested maps never make the moves quadratic); larger bodies keep a map 32 header. */
enum { COMPACT_MAX = 4096 };
#define DEFAULT_SIZE ((size_t)256 << 20)

enum { K_ARRAY, K_MAP, K_FUNC };

typedef struct eframe {
    int kind;
    int idx;            /* stack index of the table or function */
    bool in_key;        /* K_MAP: the value being written is a key */
    bool patch;         /* K_MAP: the header at `at` is a map 32 placeholder, count unknown */
    lua_Integer i, n;   /* K_ARRAY: last element pushed, length; K_FUNC: upvalue, count;
                           K_MAP: pairs written */
    uint32_t obj;       /* K_FUNC: the function's object index */
    size_t at;          /* K_FUNC: offset of its ext 32 header (length patched at the end);
                           K_MAP with patch: offset of its header */
    const char *upname; /* K_FUNC: name of the current upvalue */
} eframe;

typedef struct enc {
    lua_State *L;
    interp__msgbuf buf;
    size_t max_size, lim; /* lim = min(buf.cap, room): the fast-path bound of writes */
    size_t room;          /* max_size less what shared strings add to the plain form */
    int max_depth;
    bool allow_functions;
    uint32_t flags;
    uint32_t nobj;
    int status;    /* of the failed write (NOMEM or LIMIT) */
    long long top; /* 1-based index of the top-level value being written */
    bool named;    /* the caller names the values: no "[top]" (interp_msg_from_lua_named) */
    const void *globals;
    eframe *frames;
    size_t nframes, capframes;
    interp__idmap ids; /* table/function -> object number; upvalue cell -> (function
                          object << 32) | upvalue index */
    interp_msg_error *err;
    eframe inline_frames[INLINE_FRAMES];
} enc;

/* ---- errors ------------------------------------------------------------------------------- */

/* err->text = text, or ": " text when the caller names the value. err may be NULL. */
static void say(interp_msg_error *err, bool named, const char *text)
{
    if (err)
        snprintf(err->text, sizeof err->text, "%s%s", named ? ": " : "", text);
}

static int fail(enc *e, int code, const char *fmt, ...)
{
    if (e->err) {
        char reason[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        interp__path path;
        interp__path_init(&path);
        if (e->top > 0 && !e->named)
            interp__path_index(&path, e->top);
        for (size_t k = 0; k < e->nframes; k++) {
            const eframe *f = &e->frames[k];
            if (f->kind == K_ARRAY)
                interp__path_index(&path, f->i);
            else if (f->kind == K_MAP && f->in_key)
                interp__path_in_key(&path);
            else if (f->kind == K_MAP)
                interp__path_key(&path, e->L, f->idx + 1);
            else if (f->upname)
                interp__path_upvalue(&path, f->upname, strlen(f->upname));
        }
        if (e->named && path.len == 0)
            say(e->err, true, reason);
        else
            interp__path_finish(&path, reason, e->err->text, sizeof e->err->text);
    }
    return code;
}

static int fail_write(enc *e)
{
    if (e->status == INTERP_ERR_LIMIT)
        return fail(e, INTERP_ERR_LIMIT, "message larger than %zu bytes", e->max_size);
    return fail(e, INTERP_ERR_NOMEM, "out of memory");
}

/* ---- output ------------------------------------------------------------------------------- */

static char *need_slow(enc *e, size_t n)
{
    if (n > e->room - e->buf.used) {
        e->status = INTERP_ERR_LIMIT;
        return NULL;
    }
    char *w = interp__msgbuf_reserve(&e->buf, n);
    if (!w) {
        e->status = INTERP_ERR_NOMEM;
        return NULL;
    }
    e->lim = e->buf.cap < e->room ? e->buf.cap : e->room;
    return w;
}

/* Room for n bytes at the end of the output, or NULL (e->status says why). */
static inline char *need(enc *e, size_t n)
{
    if (n <= e->lim - e->buf.used)
        return e->buf.msg->data + e->buf.used;
    return need_slow(e, n);
}

static inline void wrote(enc *e, const char *w, const char *end)
{
    e->buf.used += (size_t)(end - w);
}

static int put_uint(enc *e, uint64_t v)
{
    char *w = need(e, 9);
    if (!w)
        return fail_write(e);
    wrote(e, w, mp_encode_uint(w, v));
    return INTERP_OK;
}

static int put_str(enc *e, const char *s, size_t len)
{
    if (len > UINT32_MAX)
        return fail(e, INTERP_ERR_LIMIT, "string of %zu bytes (MessagePack's limit is 4 GiB)", len);
    char *w = need(e, 5 + len);
    if (!w)
        return fail_write(e);
    char *p = mp_encode_strl(w, (uint32_t)len);
    memcpy(p, s, len);
    wrote(e, w, p + len);
    return INTERP_OK;
}

/* A reference to object number obj: written as the distance back (msg_impl.h). */
static int put_ref(enc *e, uint64_t target)
{
    uint64_t obj = e->nobj - target;
    char *w = need(e, 6);
    if (!w)
        return fail_write(e);
    unsigned char *u = (unsigned char *)w;
    size_t n;
    if (obj <= 0xff) {
        u[0] = 0xd4, u[1] = INTERP_MSG_EXT_REF, u[2] = (unsigned char)obj, n = 3;
    } else if (obj <= 0xffff) {
        u[0] = 0xd5, u[1] = INTERP_MSG_EXT_REF, u[2] = (unsigned char)(obj >> 8);
        u[3] = (unsigned char)obj, n = 4;
    } else {
        u[0] = 0xd6, u[1] = INTERP_MSG_EXT_REF;
        for (int k = 0; k < 4; k++)
            u[2 + k] = (unsigned char)(obj >> (24 - 8 * k));
        n = 6;
    }
    e->buf.used += n;
    e->flags |= INTERP__MSG_HAS_REFS;
    return INTERP_OK;
}

static void store_be32(char *at, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        at[k] = (char)(v >> (24 - 8 * k));
}

/* ---- identity ---------------------------------------------------------------------------- */

static inline slot *lookup(enc *e, const void *key) { return interp__idmap_lookup(&e->ids, key); }

static int insert(enc *e, slot *s, const void *key, uint64_t val)
{
    if (interp__idmap_insert(&e->ids, s, key, val) != INTERP_OK)
        return fail(e, INTERP_ERR_NOMEM, "out of memory");
    return INTERP_OK;
}

/* ---- frames ------------------------------------------------------------------------------- */

static int grow_frames(enc *e)
{
    size_t cap = e->capframes * 2;
    eframe *n = malloc(cap * sizeof *n);
    if (!n)
        return fail(e, INTERP_ERR_NOMEM, "out of memory");
    memcpy(n, e->frames, e->nframes * sizeof *n);
    if (e->frames != e->inline_frames)
        free(e->frames);
    e->frames = n;
    e->capframes = cap;
    return INTERP_OK;
}

/* Push a frame of the given kind for the object at stack index idx (fields stored one by one:
 * a whole-struct copy here costs a store-forwarding stall on every table). */
static int push_frame(enc *e, int kind, int idx, lua_Integer n, bool patch, size_t at, uint32_t obj)
{
    if (e->nframes == e->capframes && grow_frames(e))
        return INTERP_ERR_NOMEM;
    eframe *f = &e->frames[e->nframes++];
    f->kind = kind;
    f->idx = idx;
    f->in_key = false;
    f->patch = patch;
    f->i = 0;
    f->n = n;
    f->obj = obj;
    f->at = at;
    f->upname = NULL;
    return INTERP_OK;
}

/* Before opening a table or function (the value at the top): depth and Lua stack room. */
static int check_open(enc *e)
{
    if (e->nframes >= (size_t)e->max_depth)
        return fail(e, INTERP_ERR_LIMIT, "nesting deeper than %d", e->max_depth);
    if (!lua_checkstack(e->L, 6))
        return fail(e, INTERP_ERR_LIMIT, "nesting too deep for the Lua stack");
    return INTERP_OK;
}

/* ---- tables ------------------------------------------------------------------------------- */

static inline bool is_object(int type) { return type == LUA_TTABLE || type == LUA_TFUNCTION; }

/* The key at idx as an integer: *isint is set only for a key of integer subtype. Not
 * lua_tointegerx alone, which also converts the string "2": a table {1, nil, 3, ["2"] = x}
 * would pass for the array {1, nil, 3} and lose its string key. (A float key is never integral
 * in a table: Lua normalises 2.0 to 2.) */
static inline lua_Integer key_int(lua_State *L, int idx, int *isint)
{
    *isint = lua_isinteger(L, idx);
    return *isint ? lua_tointegerx(L, idx, NULL) : 0;
}
static int put_scalar(enc *e, int idx, int type);

/* put_scalar with numbers inline (array elements). */
static inline int put_elem(enc *e, int idx, int type)
{
    char *w;
    if (type != LUA_TNUMBER || !(w = need(e, 9)))
        return put_scalar(e, idx, type);
    if (lua_isinteger(e->L, idx)) {
        lua_Integer v = lua_tointegerx(e->L, idx, NULL);
        wrote(e, w, v >= 0 ? mp_encode_uint(w, (uint64_t)v) : mp_encode_int(w, v));
    } else {
        wrote(e, w, mp_encode_double(w, lua_tonumberx(e->L, idx, NULL)));
    }
    return INTERP_OK;
}

/* The array frame f (table at f->idx, length f->n, header written) was just opened: walk the
 * table with lua_next while the keys come as 1, 2, 3...; write scalar elements on the way.
 * At the first table or function element, check that the remaining keys keep coming in
 * order, and leave that element and the rest to the frame (rawgeti from f->i + 1). Returns 0
 * when the frame can go on (f->i elements written), 1 when the keys are not 1..n in order
 * (nothing but scalars was written), or an error. The stack is as it was in every case. */
static int array_run(enc *e, eframe *f)
{
    lua_State *L = e->L;
    lua_Integer want = 1;
    int isint, rc;
    lua_pushnil(L);
    while (lua_next(L, f->idx)) {
        if (key_int(L, -2, &isint) != want || !isint) {
            lua_pop(L, 2);
            return 1;
        }
        f->i = want; /* for error paths */
        int t = lua_type(L, -1);
        if (is_object(t)) {
            f->i = want - 1;
            lua_pop(L, 1);
            while (lua_next(L, f->idx)) {
                lua_pop(L, 1);
                if (key_int(L, -1, &isint) != ++want || !isint) {
                    lua_pop(L, 1);
                    return 1;
                }
            }
            return want == f->n ? 0 : 1;
        }
        if ((rc = put_elem(e, -1, t)))
            return rc;
        lua_pop(L, 1);
        want++;
    }
    return want - 1 == f->n ? 0 : 1;
}

/* The object (table or function) at the top of the stack: if this message has met it
 * before, write a back-reference, pop it and return 1; otherwise give it the next object number
 * (*obj) and return 0. Negative: an error (depth or size limit, out of memory). */
static int begin_object(enc *e, uint64_t *obj)
{
    const void *p = lua_topointer(e->L, -1);
    slot *s = lookup(e, p);
    if (s->key) {
        lua_pop(e->L, 1);
        int rc = put_ref(e, s->val);
        return rc ? rc : 1;
    }
    int rc = check_open(e);
    if (rc || (rc = insert(e, s, p, e->nobj)))
        return rc;
    *obj = e->nobj++;
    return 0;
}

static int open_table(enc *e)
{
    lua_State *L = e->L;
    uint64_t obj;
    int rc = begin_object(e, &obj);
    if (rc)
        return rc < 0 ? rc : 0;
    int t = lua_gettop(L);
    char *w = need(e, 5);
    if (!w)
        return fail_write(e);
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    if (n == 0) {
        /* no key 1 (the length is a border): a map, or the empty table. One pass: the pairs
         * are counted while written, the header is fixed when the map closes. */
        size_t at = e->buf.used;
        w[0] = (char)0xdf;
        e->buf.used += 5;
        lua_pushnil(L); /* the first key for lua_next */
        return push_frame(e, K_MAP, t, 0, true, at, 0);
    }
    if (n <= (lua_Integer)UINT32_MAX) {
        /* Optimistic: most tables with a length are arrays whose elements lua_next yields in
         * order 1..n; write them as they come. */
        size_t at = e->buf.used;
        wrote(e, w, mp_encode_array(w, (uint32_t)n));
        if ((rc = push_frame(e, K_ARRAY, t, n, false, 0, 0)) ||
            (rc = array_run(e, &e->frames[e->nframes - 1])) <= 0)
            return rc;
        /* not in order: undo (only scalars were written) and look at all the keys */
        e->nframes--;
        e->buf.used = at;
        if (!(w = need(e, 5)))
            return fail_write(e);
    }
    /* An array when its keys are exactly 1..n: all keys are integers in [1, n] and there
     * are n of them. */
    lua_Integer count = 0;
    bool array = true;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        count++;
        if (array) {
            int isint;
            lua_Integer k = key_int(L, -1, &isint);
            array = isint && k >= 1 && k <= n;
        }
    }
    if (count > (lua_Integer)UINT32_MAX)
        return fail(e, INTERP_ERR_LIMIT, "table of %lld entries", (long long)count);
    if (array && count == n) {
        wrote(e, w, mp_encode_array(w, (uint32_t)n));
        return push_frame(e, K_ARRAY, t, n, false, 0, 0);
    }
    wrote(e, w, mp_encode_map(w, (uint32_t)count));
    lua_pushnil(L);
    return push_frame(e, K_MAP, t, 0, false, 0, 0);
}

/* A map frame is complete: give a placeholder header its count, in its shortest form. */
static void close_map(enc *e, const eframe *f)
{
    if (!f->patch)
        return;
    char *d = e->buf.msg->data + f->at;
    size_t body = e->buf.used - f->at - 5;
    uint32_t c = (uint32_t)f->n;
    if (c == 0) { /* the empty table: an empty array */
        d[0] = (char)0x90;
        e->buf.used = f->at + 1;
    } else if (c <= 15 && body <= COMPACT_MAX) {
        memmove(d + 1, d + 5, body);
        d[0] = (char)(0x80 | c);
        e->buf.used -= 4;
    } else if (c <= 0xffff && body <= COMPACT_MAX) {
        memmove(d + 3, d + 5, body);
        d[0] = (char)0xde;
        d[1] = (char)(c >> 8);
        d[2] = (char)c;
        e->buf.used -= 2;
    } else {
        store_be32(d + 1, c);
    }
}

/* ---- functions ---------------------------------------------------------------------------- */

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    enc *e = ud;
    char *w = need(e, sz);
    if (!w)
        return 1;
    memcpy(w, p, sz);
    e->buf.used += sz;
    return 0;
}

static int open_function(enc *e)
{
    lua_State *L = e->L;
    if (lua_iscfunction(L, -1))
        return fail(e, INTERP_ERR_ENCODE, "cannot copy a C function");
    if (!e->allow_functions)
        return fail(e, INTERP_ERR_ENCODE, "cannot copy a function (functions are not allowed)");
    uint64_t obj64;
    int rc = begin_object(e, &obj64);
    if (rc)
        return rc < 0 ? rc : 0;
    uint32_t obj = (uint32_t)obj64;
    e->flags |= INTERP__MSG_HAS_FUNCTIONS;
    if (!e->globals) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
        e->globals = lua_topointer(L, -1);
        lua_pop(L, 1);
    }
    /* ext 32 header and bin 32 header, lengths patched once known */
    char *w = need(e, 11);
    if (!w)
        return fail_write(e);
    size_t at = e->buf.used;
    memcpy(w, "\xc9\0\0\0\0\x02\xc6\0\0\0\0", 11);
    w[5] = INTERP_MSG_EXT_FUNCTION;
    e->buf.used += 11;
    if (lua_dump(L, dump_writer, e, 0) != 0)
        return e->status ? fail_write(e) : fail(e, INTERP_ERR_ENCODE, "cannot dump the function");
    size_t code = e->buf.used - at - 11;
    if (code > UINT32_MAX)
        return fail(e, INTERP_ERR_LIMIT, "function bytecode larger than 4 GiB");
    store_be32(e->buf.msg->data + at + 7, (uint32_t)code);
    int nups = 0;
    while (lua_getupvalue(L, -1, nups + 1)) {
        lua_pop(L, 1);
        nups++;
    }
    if ((rc = put_uint(e, (uint64_t)nups)))
        return rc;
    return push_frame(e, K_FUNC, lua_gettop(L), nups, false, at, obj);
}

/* Advance function frame f to its next upvalue that needs a value written: returns 1 with the
 * value pushed, 0 when the function is complete, or an error. */
static int next_upvalue(enc *e, eframe *f)
{
    lua_State *L = e->L;
    while (f->i < f->n) {
        int i = (int)++f->i;
        const char *name = lua_getupvalue(L, f->idx, i);
        f->upname = name;
        int rc = put_str(e, name, strlen(name));
        if (rc)
            return rc;
        const void *cell = lua_upvalueid(L, f->idx, i);
        slot *s = lookup(e, cell);
        if (s->key) { /* a variable shared with an upvalue written before */
            lua_pop(L, 1);
            if ((rc = put_uint(e, INTERP__MSG_UPV_JOIN)) ||
                (rc = put_uint(e, e->nobj - (s->val >> 32))) ||
                (rc = put_uint(e, s->val & 0xffffffffu)))
                return rc;
            e->flags |= INTERP__MSG_HAS_REFS;
            continue;
        }
        if ((rc = insert(e, s, cell, (uint64_t)f->obj << 32 | (uint64_t)(i - 1))))
            return rc;
        if (lua_type(L, -1) == LUA_TTABLE && lua_topointer(L, -1) == e->globals) {
            lua_pop(L, 1);
            if ((rc = put_uint(e, INTERP__MSG_UPV_GLOBALS)))
                return rc;
            continue;
        }
        if ((rc = put_uint(e, INTERP__MSG_UPV_VALUE)))
            return rc;
        return 1;
    }
    size_t len = e->buf.used - f->at - 6;
    if (len > UINT32_MAX)
        return fail(e, INTERP_ERR_LIMIT, "function larger than 4 GiB");
    store_be32(e->buf.msg->data + f->at + 1, (uint32_t)len);
    return 0;
}

/* ---- values ------------------------------------------------------------------------------- */

/* A handle to the frozen object o (a view's); its reference is taken when the message is
 * complete (interp_msg_from_lua), while the view still holds o. */
static int put_frozen(enc *e, const interp_frozen *o)
{
    for (size_t k = 0; k < e->nframes; k++)
        if (e->frames[k].kind == K_FUNC)
            return fail(e, INTERP_ERR_ENCODE, "cannot copy a frozen value inside a function");
    char *w = need(e, 10);
    if (!w)
        return fail_write(e);
    w[0] = (char)0xd7;
    w[1] = INTERP_MSG_EXT_FROZEN;
    memcpy(w + 2, &o, sizeof o);
    e->buf.used += 10;
    e->flags |= INTERP__MSG_HAS_FROZEN;
    return INTERP_OK;
}

/* A handle to the shared block blk of a string of len bytes (msg_shstr.h); its reference is
 * taken when the message is complete, while the string still lives. Inside a function's
 * upvalues the string is copied (handles are only looked for outside function payloads). */
static int put_shared(enc *e, const char *s, const void *blk, size_t len)
{
    for (size_t k = 0; k < e->nframes; k++)
        if (e->frames[k].kind == K_FUNC)
            return put_str(e, s, len);
    if (len > UINT32_MAX)
        return fail(e, INTERP_ERR_LIMIT, "string of %zu bytes (MessagePack's limit is 4 GiB)", len);
    size_t extra = 5 + len - 10; /* its plain form (str 32) against the handle */
    char *w = need(e, 10);
    if (!w || extra > e->room - e->buf.used - 10) {
        if (w)
            e->status = INTERP_ERR_LIMIT;
        return fail_write(e);
    }
    w[0] = (char)0xd7;
    w[1] = INTERP__MSG_EXT_SHARED;
    memcpy(w + 2, &blk, sizeof blk);
    e->buf.used += 10;
    e->room -= extra;
    if (e->lim > e->room)
        e->lim = e->room;
    e->flags |= INTERP__MSG_HAS_SHARED;
    return INTERP_OK;
}

/* Write a value that is not a table or function (at stack index idx). */
static int put_scalar(enc *e, int idx, int type)
{
    lua_State *L = e->L;
    char *w;
    switch (type) {
    case LUA_TNIL:
    case LUA_TBOOLEAN:
        if (!(w = need(e, 1)))
            return fail_write(e);
        *w = type == LUA_TNIL ? (char)0xc0 : lua_toboolean(L, idx) ? (char)0xc3 : (char)0xc2;
        e->buf.used++;
        return INTERP_OK;
    case LUA_TNUMBER:
        if (!(w = need(e, 9)))
            return fail_write(e);
        if (lua_isinteger(L, idx)) {
            lua_Integer v = lua_tointeger(L, idx);
            wrote(e, w, v >= 0 ? mp_encode_uint(w, (uint64_t)v) : mp_encode_int(w, v));
        } else {
            wrote(e, w, mp_encode_double(w, lua_tonumber(L, idx)));
        }
        return INTERP_OK;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        const void *blk = len >= INTERP__SHSTR_MIN ? interp__shstr_block(L, s, len) : NULL;
        return blk ? put_shared(e, s, blk, len) : put_str(e, s, len);
    }
    case LUA_TUSERDATA: {
        const interp_frozen *o = interp__frozen_toobj(L, idx);
        if (!o)
            return fail(e, INTERP_ERR_ENCODE, "cannot copy a userdata");
        return put_frozen(e, o);
    }
    case LUA_TLIGHTUSERDATA:
        return fail(e, INTERP_ERR_ENCODE, "cannot copy a userdata");
    case LUA_TTHREAD:
        return fail(e, INTERP_ERR_ENCODE, "cannot copy a thread");
    default:
        return fail(e, INTERP_ERR_ENCODE, "cannot copy a %s", lua_typename(L, type));
    }
}

/* Runs of plain values (numbers, nil, booleans: a list of numbers, a map's pack) are written
 * by a tight loop, room checked once per PLAIN_RUN values. */
enum { PLAIN_RUN = 64 };

/* Write the plain values at stack positions first, first + 1, ... (at most count of them)
 * while they come; returns how many were written. Stops at the first other value, or when
 * room for a run cannot be had at once (put_scalar then goes on one value at a time and
 * reports the limit where it is really hit). */
static int put_plain_run(enc *e, int first, int count)
{
    lua_State *L = e->L;
    int k = 0;
    while (k < count) {
        int run = count - k < PLAIN_RUN ? count - k : PLAIN_RUN;
        if ((size_t)run * 9 > e->lim - e->buf.used &&
            (size_t)run * 9 > e->room - e->buf.used) /* need_slow would fail: no LIMIT yet */
            return k;
        char *w = need(e, (size_t)run * 9);
        if (!w) {
            e->status = INTERP_OK;
            return k;
        }
        char *p = w;
        int j = 0, idx = first + k;
        for (; j < run; j++, idx++) {
            if (lua_isinteger(L, idx)) {
                lua_Integer v = lua_tointegerx(L, idx, NULL);
                p = v >= 0 ? mp_encode_uint(p, (uint64_t)v) : mp_encode_int(p, v);
                continue;
            }
            int t = lua_type(L, idx);
            if (t == LUA_TNUMBER)
                p = mp_encode_double(p, lua_tonumberx(L, idx, NULL));
            else if (t == LUA_TNIL)
                *p++ = (char)0xc0;
            else if (t == LUA_TBOOLEAN)
                *p++ = lua_toboolean(L, idx) ? (char)0xc3 : (char)0xc2;
            else
                break;
        }
        wrote(e, w, p);
        k += j;
        if (j < run)
            break;
    }
    return k;
}

/* Write the table or function at the top of the stack, and everything inside it; pops it.
 * Scalar elements are written in place by tight loops; a nested table or function jumps back
 * to `open`, which pushes its frame (or writes a REF). */
static int put_nested(enc *e)
{
    lua_State *L = e->L;
    int rc, t;
open:
    if ((rc = lua_type(L, -1) == LUA_TTABLE ? open_table(e) : open_function(e)))
        return rc;
    while (e->nframes > 0) {
        eframe *f = &e->frames[e->nframes - 1];
        if (f->kind == K_ARRAY) {
            while (f->i < f->n) {
                if (is_object(t = lua_rawgeti(L, f->idx, ++f->i)))
                    goto open;
                if ((rc = put_elem(e, -1, t)))
                    return rc;
                lua_pop(L, 1);
            }
        } else if (f->kind == K_MAP) {
            if (f->in_key) { /* a table or function key is written; now its value */
                f->in_key = false;
                if (is_object(t = lua_type(L, -1)))
                    goto open;
                if ((rc = put_scalar(e, -1, t)))
                    return rc;
                lua_pop(L, 1);
            }
            while (lua_next(L, f->idx)) { /* key at -2, value at -1 */
                if (++f->n > (lua_Integer)UINT32_MAX)
                    return fail(e, INTERP_ERR_LIMIT, "table of more than %u entries", UINT32_MAX);
                f->in_key = true;
                if (is_object(t = lua_type(L, -2))) {
                    lua_pushvalue(L, -2); /* written (and popped) as a value of its own */
                    goto open;
                }
                if ((rc = put_scalar(e, -2, t)))
                    return rc;
                f->in_key = false;
                if (is_object(t = lua_type(L, -1)))
                    goto open;
                if ((rc = put_scalar(e, -1, t)))
                    return rc;
                lua_pop(L, 1);
            }
            close_map(e, f);
        } else {
            while ((rc = next_upvalue(e, f)) == 1) {
                if (is_object(t = lua_type(L, -1)))
                    goto open;
                if ((rc = put_scalar(e, -1, t)))
                    return rc;
                lua_pop(L, 1);
            }
            if (rc < 0)
                return rc;
        }
        e->nframes--; /* complete: drop it from the stack */
        lua_pop(L, 1);
    }
    return INTERP_OK;
}

/* ---- small messages ------------------------------------------------------------------------
 * Most results are a few scalars (a number, a short string, nothing at all). They skip the
 * machinery above: they are written into a small buffer on the C stack, then copied into one
 * allocation of exactly their size (or a slab's member). */
enum { SMALL_VALUES = 8, SMALL_BYTES = 256 };
#define NOT_SMALL SIZE_MAX

/* Encode values first .. first + count - 1 into buf (room for SMALL_BYTES + 9 bytes) if they
 * are all scalars and take at most SMALL_BYTES together: returns their size, or NOT_SMALL.
 * One pass, integers tested first (the usual result). */
static size_t small_encode(lua_State *L, int first, int count, char *buf)
{
    if (count > SMALL_VALUES)
        return NOT_SMALL;
    char *w = buf;
    for (int idx = first; idx < first + count; idx++) {
        if (lua_isinteger(L, idx)) {
            lua_Integer v = lua_tointegerx(L, idx, NULL);
            w = v >= 0 ? mp_encode_uint(w, (uint64_t)v) : mp_encode_int(w, v);
        } else {
            switch (lua_type(L, idx)) {
            case LUA_TNIL:
                *w++ = (char)0xc0;
                break;
            case LUA_TBOOLEAN:
                *w++ = lua_toboolean(L, idx) ? (char)0xc3 : (char)0xc2;
                break;
            case LUA_TNUMBER:
                w = mp_encode_double(w, lua_tonumber(L, idx));
                break;
            case LUA_TSTRING: {
                size_t len;
                const char *s = lua_tolstring(L, idx, &len);
                if (len > SMALL_BYTES || (size_t)(w - buf) + 5 + len > SMALL_BYTES)
                    return NOT_SMALL;
                w = mp_encode_strl(w, (uint32_t)len);
                memcpy(w, s, len);
                w += len;
                break;
            }
            default:
                return NOT_SMALL;
            }
        }
        if ((size_t)(w - buf) > SMALL_BYTES)
            return NOT_SMALL;
    }
    return (size_t)(w - buf);
}

int interp__msg_from_lua_slab(lua_State *L, int first, int count, const interp_msg_opts *opts,
                              interp__slab_cache *cache, interp__slab **slab, size_t hint,
                              interp_msg **out, interp_msg_error *err)
{
    /* encoded in place, in a member reserved at the end of the slab */
    interp_msg *m;
    if (count == 1 && (!opts || !opts->max_size || opts->max_size >= 9) &&
        lua_isinteger(L, first)) { /* the usual result */
        if ((m = interp__slab_int(cache, slab, hint, lua_tointegerx(L, first, NULL)))) {
            *out = m;
            if (err)
                err->text[0] = '\0';
            return INTERP_OK;
        }
    } else if (count <= SMALL_VALUES &&
               (m = interp__slab_reserve(cache, slab, hint, SMALL_BYTES + 9))) {
        size_t size = small_encode(L, first, count, m->data);
        if (size != NOT_SMALL && (!opts || !opts->max_size || size <= opts->max_size)) {
            interp__slab_commit(*slab, m, size, (uint32_t)count, 0);
            *out = m;
            if (err)
                err->text[0] = '\0';
            return INTERP_OK;
        }
    }
    return interp_msg_from_lua(L, first, count, opts, out, err);
}

/* An encoder for L with opts (NULL: the defaults), reporting into err (may be NULL). */
static void enc_init(enc *e, lua_State *L, const interp_msg_opts *opts, interp_msg_error *err)
{
    e->L = L;
    e->buf = (interp__msgbuf){0};
    e->max_size = opts && opts->max_size ? opts->max_size : DEFAULT_SIZE;
    e->room = e->max_size;
    e->lim = 0;
    e->max_depth = opts && opts->max_depth > 0 ? opts->max_depth : DEFAULT_DEPTH;
    e->allow_functions = opts && opts->allow_functions;
    e->flags = 0;
    e->nobj = 0;
    e->status = INTERP_OK;
    e->globals = NULL;
    e->frames = e->inline_frames;
    e->nframes = 0;
    e->capframes = INLINE_FRAMES;
    interp__idmap_init(&e->ids);
    e->err = err;
    e->top = 0;
    e->named = false;
}

/* The encoded bytes of count values as a message in *out: with a shared-string tail when it
 * holds shared strings, and a reference on every shared string and frozen value it holds.
 * INTERP_OK or INTERP_ERR_NOMEM (the buffer stays e's). */
static int enc_finish(enc *e, uint32_t count, interp_msg **out)
{
    size_t used = e->buf.used;
    if ((e->flags & INTERP__MSG_HAS_SHARED) &&
        !interp__msgbuf_reserve(&e->buf, interp__shstr_tail_room(used)))
        return fail(e, INTERP_ERR_NOMEM, "out of memory");
    *out = interp__msgbuf_finish(&e->buf, count, e->flags);
    if (!*out) {
        say(e->err, e->named, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    if (e->flags & INTERP__MSG_HAS_SHARED) {
        interp__shstr_tail *t = interp__shstr_tail_of(*out);
        t->plain_size = used + (e->max_size - e->room);
        atomic_init(&t->plain, NULL);
        interp__shstr_msg_refs((*out)->data, used, +1);
    }
    if (e->flags & INTERP__MSG_HAS_FROZEN)
        interp__frozen_msg_refs((*out)->data, (*out)->size, +1);
    return INTERP_OK;
}

/* interp_msg_from_lua; named: the caller names the values in its error texts, and *bad gets the
 * index of the value that failed. */
static int encode(lua_State *L, int first, int count, const interp_msg_opts *opts, interp_msg **out,
                  interp_msg_error *err, bool named, int *bad)
{
    if (err)
        err->text[0] = '\0';
    if (!L || !out || count < 0 || (count > 0 && first == 0)) {
        if (err)
            snprintf(err->text, sizeof err->text, "invalid arguments");
        return INTERP_ERR_INVALID;
    }
    *out = NULL;
    int base = lua_gettop(L);
    if (count > 0) {
        first = lua_absindex(L, first);
        if (first < 1 || first > base - count + 1) {
            if (err)
                snprintf(err->text, sizeof err->text, "values %d..%d are not on the stack", first,
                         first + count - 1);
            return INTERP_ERR_INVALID;
        }
    }
    char small_buf[SMALL_BYTES + 9];
    size_t small = small_encode(L, first, count, small_buf);
    if (small != NOT_SMALL && (!opts || !opts->max_size || small <= opts->max_size)) {
        /* one allocation of exactly the right size */
        interp_msg *m = interp__msg_alloc(small, (uint32_t)count, 0);
        if (!m) {
            say(err, named, "out of memory");
            return INTERP_ERR_NOMEM;
        }
        memcpy(m->data, small_buf, small);
        *out = m;
        return INTERP_OK;
    }
    enc e;
    enc_init(&e, L, opts, err);
    e.named = named;

    /* room for the message header and a few scalars in one allocation */
    int rc = need_slow(&e, e.max_size < 64 ? e.max_size : 64) ? INTERP_OK : fail_write(&e);
    for (int k = 0; k < count && rc == INTERP_OK; k++) {
        if (count - k > 1 && (k += put_plain_run(&e, first + k, count - k)) == count)
            break;
        int idx = first + k, type = lua_type(L, idx);
        e.top = k + 1;
        if (!is_object(type)) {
            rc = put_scalar(&e, idx, type);
        } else if (!lua_checkstack(L, 6)) {
            rc = fail(&e, INTERP_ERR_LIMIT, "no room on the Lua stack");
        } else {
            lua_pushvalue(L, idx);
            rc = put_nested(&e);
        }
    }
    if (e.frames != e.inline_frames)
        free(e.frames);
    interp__idmap_free(&e.ids);
    lua_settop(L, base);
    if (rc == INTERP_OK)
        rc = enc_finish(&e, (uint32_t)count, out);
    else if (bad && e.top > 0)
        *bad = (int)(e.top - 1);
    interp__msgbuf_free(&e.buf);
    return rc;
}

int interp_msg_from_lua(lua_State *L, int first, int count, const interp_msg_opts *opts,
                        interp_msg **out, interp_msg_error *err)
{
    return encode(L, first, count, opts, out, err, false, NULL);
}

int interp_msg_from_lua_named(lua_State *L, int first, int count, const interp_msg_opts *opts,
                              interp_msg **out, interp_msg_error *err, int *bad)
{
    if (bad)
        *bad = 0;
    return encode(L, first, count, opts, out, err, true, bad);
}
