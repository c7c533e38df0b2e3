/* msg_check.c - validation of untrusted message bytes, and messages made from such bytes.
 *
 * The validator walks the stream once, iteratively (an explicit stack of open containers,
 * never C recursion), and checks everything a decoder later relies on without re-checking:
 * every length stays inside the bytes, no reserved byte (0xc1), nesting within max_depth,
 * only interp_pool's extension types, REF distances naming an object already begun, FUNCTION
 * payloads laid out as msg_impl.h describes (JOINs naming an earlier function's upvalue).
 * It steps from value to value (and through a function payload's items) with the C reader's
 * interp__msg_head_step (msg_step.h), which knows each tag's layout and bounds; what is
 * judged here is what the reader does not: depth, REF distances, function payloads, and no
 * FROZEN or SHARED handle (an address) from bytes.
 *
 * This is the one file that defines MP_SOURCE: msgpuck's out-of-line copies of its inline
 * functions and its lookup tables live here.
 */
#define MP_SOURCE 1
#include <msgpuck.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_impl.h"
#include "msg_step.h"

enum { DEFAULT_DEPTH = 200, INLINE_FRAMES = 32, MAX_UPVALUES = 255 };

enum { F_SEQ, F_FUNC }; /* frame kinds: array/map elements, function upvalues */

typedef struct vframe {
    uint64_t left;     /* F_SEQ: items left (a map counts keys and values); F_FUNC: upvalues */
    const char *outer; /* F_FUNC: the limit to restore when the payload ends */
    const char *end;   /* F_FUNC: the end of the payload */
    int kind;
} vframe;

typedef struct vfunc { /* a function seen so far: JOIN targets */
    uint64_t obj;
    uint32_t nups;
} vfunc;

typedef struct vstate {
    const char *base; /* start of the bytes, for offsets in messages */
    vframe inline_frames[INLINE_FRAMES];
    vframe *frames;
    size_t nframes, capframes;
    vfunc *funcs;
    size_t nfuncs, capfuncs;
    uint64_t objects; /* objects opened so far */
    uint32_t flags;
    int max_depth;
    char *why;
    size_t whylen;
} vstate;

static int fail(vstate *s, int code, const char *at, const char *fmt, ...)
{
    if (s->why && s->whylen) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->why, s->whylen, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < s->whylen)
            snprintf(s->why + n, s->whylen - (size_t)n, " at byte %zu", (size_t)(at - s->base));
    }
    return code;
}

static int push_frame(vstate *s, const char *at, vframe f)
{
    if (s->nframes >= (size_t)s->max_depth)
        return fail(s, INTERP_ERR_LIMIT, at, "nesting deeper than %d", s->max_depth);
    if (s->nframes == s->capframes) {
        size_t cap = s->capframes * 2;
        vframe *n = malloc(cap * sizeof *n);
        if (!n)
            return fail(s, INTERP_ERR_NOMEM, at, "out of memory");
        memcpy(n, s->frames, s->nframes * sizeof *n);
        if (s->frames != s->inline_frames)
            free(s->frames);
        s->frames = n;
        s->capframes = cap;
    }
    s->frames[s->nframes++] = f;
    return INTERP_OK;
}

static int add_func(vstate *s, const char *at, uint64_t obj, uint32_t nups)
{
    if (s->nfuncs == s->capfuncs) {
        size_t cap = s->capfuncs ? s->capfuncs * 2 : 8;
        vfunc *n = realloc(s->funcs, cap * sizeof *n);
        if (!n)
            return fail(s, INTERP_ERR_NOMEM, at, "out of memory");
        s->funcs = n;
        s->capfuncs = cap;
    }
    s->funcs[s->nfuncs++] = (vfunc){obj, nups};
    return INTERP_OK;
}

/* The function numbered obj (funcs are sorted: numbering is in order), or NULL. */
static const vfunc *find_func(const vstate *s, uint64_t obj)
{
    size_t lo = 0, hi = s->nfuncs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->funcs[mid].obj == obj)
            return &s->funcs[mid];
        if (s->funcs[mid].obj < obj)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Step over one item of a function payload at *p (< lim) into *h: refused, `what` named in
 * the reason, when its marker is not of the family the payload wants there (`is`, `kind`) or
 * the item is cut short. */
static int payload_item(vstate *s, const char **p, const char *lim, bool (*is)(uint8_t),
                        const char *kind, const char *what, interp__msg_head *h)
{
    const char *at = *p;
    if (at >= lim)
        return fail(s, INTERP_ERR_DECODE, at, "truncated function (%s)", what);
    interp__msg_fault f = interp__msg_head_step(p, lim, h);
    if (!is(h->tag))
        return fail(s, INTERP_ERR_DECODE, at, "function payload: %s is not %s", what, kind);
    if (f)
        return fail(s, INTERP_ERR_DECODE, at, "truncated function (%s)", what);
    return INTERP_OK;
}

/* Read an unsigned integer item (positive fixint, uint 8..64) at *p < lim. */
static int read_uint(vstate *s, const char **p, const char *lim, uint64_t *v, const char *what)
{
    interp__msg_head h = {0}; /* zeroed: the compiler cannot see that the tag check guards
                                 every field read */
    int rc = payload_item(s, p, lim, interp__msg_tag_uint, "an unsigned integer", what, &h);
    if (rc == INTERP_OK)
        *v = h.tag <= 0x7f ? h.tag : h.u;
    return rc;
}

/* Read a str or bin item at *p < lim: *bytes and *len its payload (either may be NULL). */
static int read_blob(vstate *s, const char **p, const char *lim, bool want_str, const char **bytes,
                     size_t *len, const char *what)
{
    interp__msg_head h = {0}; /* zeroed, as in read_uint */
    int rc = want_str ? payload_item(s, p, lim, interp__msg_tag_str, "a str", what, &h)
                      : payload_item(s, p, lim, interp__msg_tag_bin, "a bin", what, &h);
    if (rc == INTERP_OK && bytes)
        *bytes = h.ptr;
    if (rc == INTERP_OK && len)
        *len = h.len;
    return rc;
}

/* Open a FUNCTION whose payload is [q, end): checks the bytecode and the upvalue count,
 * numbers the function, pushes a frame for its upvalues and makes `end` the limit until the
 * frame closes. *p is set to the first upvalue. */
static int open_function(vstate *s, const char *at, const char *q, const char *end, const char **p,
                         const char **lim)
{
    const char *code;
    size_t blen;
    uint64_t nups;
    int rc = read_blob(s, &q, end, false, &code, &blen, "bytecode");
    if (rc)
        return rc;
    if (blen < 4 || memcmp(code, "\x1bLua", 4) != 0)
        return fail(s, INTERP_ERR_DECODE, at, "function payload: not Lua bytecode");
    if ((rc = read_uint(s, &q, end, &nups, "upvalue count")))
        return rc;
    if (nups > MAX_UPVALUES)
        return fail(s, INTERP_ERR_DECODE, at, "function with %llu upvalues",
                    (unsigned long long)nups);
    if ((rc = push_frame(s, at, (vframe){nups, *lim, end, F_FUNC})) ||
        (rc = add_func(s, at, s->objects, (uint32_t)nups)))
        return rc;
    s->objects++;
    s->flags |= INTERP__MSG_HAS_FUNCTIONS;
    *lim = end;
    *p = q;
    return INTERP_OK;
}

/* Open an array or map of `n` values (a map counts keys and values) whose head ends at p:
 * numbers it and pushes a frame for its elements. */
static int open_seq(vstate *s, const char *at, const char *p, const char *lim, uint64_t n)
{
    /* every element takes at least one byte: a cheap early bound on absurd counts */
    if ((uint64_t)(lim - p) < n)
        return fail(s, INTERP_ERR_DECODE, at, "truncated message (more elements than bytes)");
    int rc = push_frame(s, at, (vframe){n, NULL, NULL, F_SEQ});
    if (rc)
        return rc;
    s->objects++;
    if (n == 0)
        s->nframes--;
    return INTERP_OK;
}

/* Validate one value at *p (< *lim) and advance *p past it, stepping with the reader's
 * interp__msg_head_step (msg_step.h); containers and functions push a frame and leave their
 * elements (upvalues) to the main loop. */
static int value(vstate *s, const char **p, const char **lim)
{
    const char *at = *p;
    interp__msg_head h;
    switch (interp__msg_head_step(p, *lim, &h)) {
    case INTERP__MSG_FAULT_NONE:
        break;
    case INTERP__MSG_FAULT_TRUNCATED:
        return fail(s, INTERP_ERR_DECODE, at, "truncated message");
    case INTERP__MSG_FAULT_RESERVED:
        return fail(s, INTERP_ERR_DECODE, at, "reserved byte 0xc1");
    case INTERP__MSG_FAULT_EXT:
        if (h.ext == INTERP_MSG_EXT_REF)
            return fail(s, INTERP_ERR_DECODE, at, "reference of %u bytes", (unsigned)h.len);
        return fail(s, INTERP_ERR_DECODE, at, "unknown extension type %d", (int)h.ext);
    }
    switch (h.type) {
    case INTERP_MSG_ARRAY:
    case INTERP_MSG_MAP:
        return open_seq(s, at, *p, *lim, h.children);
    case INTERP_MSG_REF:
        if (h.as.ref == 0 || h.as.ref > s->objects)
            return fail(s, INTERP_ERR_DECODE, at,
                        "reference %llu objects back, only %llu begun so far",
                        (unsigned long long)h.as.ref, (unsigned long long)s->objects);
        s->flags |= INTERP__MSG_HAS_REFS;
        return INTERP_OK;
    case INTERP_MSG_FUNCTION: /* its upvalues are read by the main loop */
        return open_function(s, at, h.ptr, h.ptr + h.len, p, lim);
    case INTERP_MSG_FROZEN: /* handles are addresses: never from untrusted bytes */
        return fail(s, INTERP_ERR_DECODE, at, "unknown extension type %d", (int)h.ext);
    default:
        if (h.ext) /* a shared string's handle (msg_shstr.h): an address, likewise */
            return fail(s, INTERP_ERR_DECODE, at, "unknown extension type %d", (int)h.ext);
        return INTERP_OK;
    }
}

/* One upvalue entry of the innermost function frame: name, tag, and for JOIN its indexes.
 * Sets *want_value when a value follows. */
static int upvalue(vstate *s, const char **p, const char *lim, bool *want_value)
{
    const char *at = *p;
    uint64_t tag;
    int rc = read_blob(s, p, lim, true, NULL, NULL, "upvalue name");
    if (rc)
        return rc;
    if ((rc = read_uint(s, p, lim, &tag, "upvalue tag")))
        return rc;
    *want_value = false;
    switch (tag) {
    case INTERP__MSG_UPV_VALUE:
        *want_value = true;
        return INTERP_OK;
    case INTERP__MSG_UPV_GLOBALS:
        return INTERP_OK;
    case INTERP__MSG_UPV_JOIN: {
        uint64_t f, u;
        if ((rc = read_uint(s, p, lim, &f, "joined function")) ||
            (rc = read_uint(s, p, lim, &u, "joined upvalue")))
            return rc;
        const vfunc *vf = f >= 1 && f <= s->objects ? find_func(s, s->objects - f) : NULL;
        if (!vf)
            return fail(s, INTERP_ERR_DECODE, at,
                        "upvalue joined to %llu objects back, not a function begun before",
                        (unsigned long long)f);
        if (u >= vf->nups)
            return fail(s, INTERP_ERR_DECODE, at,
                        "upvalue joined to upvalue %llu of a function with %u",
                        (unsigned long long)u, (unsigned)vf->nups);
        s->flags |= INTERP__MSG_HAS_REFS;
        return INTERP_OK;
    }
    default:
        return fail(s, INTERP_ERR_DECODE, at, "unknown upvalue tag %llu", (unsigned long long)tag);
    }
}

int interp__msg_validate(const char *data, size_t len, int max_depth, uint32_t *count,
                         uint32_t *flags, char *why, size_t whylen)
{
    vstate s;
    s.base = data;
    s.frames = s.inline_frames;
    s.nframes = 0;
    s.capframes = INLINE_FRAMES;
    s.funcs = NULL;
    s.nfuncs = s.capfuncs = 0;
    s.objects = 0;
    s.flags = 0;
    s.max_depth = max_depth > 0 ? max_depth : DEFAULT_DEPTH;
    s.why = why;
    s.whylen = whylen;
    if (why && whylen)
        why[0] = '\0';
    if (len == 0) { /* also keeps NULL + 0 out of the arithmetic below */
        *count = 0;
        *flags = 0;
        return INTERP_OK;
    }

    const char *p = data, *lim = data + len;
    uint64_t values = 0;
    int rc = INTERP_OK;
    for (;;) {
        if (s.nframes == 0) {
            if (p == data + len)
                break;
            if (values == UINT32_MAX) {
                rc = fail(&s, INTERP_ERR_DECODE, p, "more than %u values", UINT32_MAX);
                break;
            }
            values++;
        } else {
            vframe *f = &s.frames[s.nframes - 1];
            if (f->left == 0) {
                if (f->kind == F_FUNC) {
                    if (p != f->end) {
                        rc = fail(&s, INTERP_ERR_DECODE, p, "%zu stray bytes in a function",
                                  (size_t)(f->end - p));
                        break;
                    }
                    lim = f->outer;
                }
                s.nframes--;
                continue;
            }
            f->left--;
            if (f->kind == F_FUNC) {
                bool want;
                if ((rc = upvalue(&s, &p, lim, &want)))
                    break;
                if (!want)
                    continue;
            }
        }
        if ((rc = value(&s, &p, &lim)))
            break;
    }
    if (s.frames != s.inline_frames)
        free(s.frames);
    free(s.funcs);
    if (rc == INTERP_OK) {
        *count = (uint32_t)values;
        *flags = s.flags;
    }
    return rc;
}

int interp_msg_from_bytes_ex(const void *data, size_t len, int max_depth, unsigned flags,
                             interp_msg **out)
{
    if (!out || (!data && len))
        return INTERP_ERR_INVALID;
    *out = NULL;
    uint32_t count, has;
    int rc = interp__msg_validate(data, len, max_depth, &count, &has, NULL, 0);
    if (rc)
        return rc;
    if ((has & INTERP__MSG_HAS_FUNCTIONS) && !(flags & INTERP_MSG_TRUST_FUNCTIONS))
        return INTERP_ERR_DECODE; /* bytecode from untrusted bytes never reaches lua_load */
    interp_msg *m = interp__msg_alloc(len, count, has);
    if (!m)
        return INTERP_ERR_NOMEM;
    if (len)
        memcpy(m->data, data, len);
    *out = m;
    return INTERP_OK;
}

int interp_msg_from_bytes(const void *data, size_t len, int max_depth, interp_msg **out)
{
    return interp_msg_from_bytes_ex(data, len, max_depth, 0, out);
}
