/* msg_step.h - internal: the step over the head of one MessagePack value, the library's one
 * MessagePack tag switch. The C reader (msg_read.c) and the validator of untrusted bytes
 * (msg_check.c) both walk with it; static inline so that each loop gets its own copy, with
 * what it does not read of a head left out by the compiler. Not installed.
 *
 * Every length is checked against `end` before a byte is read: the step is safe on any bytes.
 * What it does not judge is left to its caller: what a REF names, a FUNCTION payload's
 * contents, and whether a FROZEN or SHARED handle (an address) may stand where it is. */
#ifndef INTERP_MSG_STEP_H
#define INTERP_MSG_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "interp_msg.h"
#include "msg_shstr.h" /* INTERP__MSG_EXT_SHARED */

/* Why interp__msg_head_step refused the bytes at *pos. */
typedef enum interp__msg_fault {
    INTERP__MSG_FAULT_NONE = 0,
    INTERP__MSG_FAULT_TRUNCATED, /* the value's head or payload runs past `end` */
    INTERP__MSG_FAULT_RESERVED,  /* 0xc1, the one marker MessagePack never uses */
    INTERP__MSG_FAULT_EXT,       /* an extension type interp_pool never writes, or a payload
                                    size its type never has (h->ext and h->len are set) */
} interp__msg_fault;

/* The head of one value, as interp__msg_head_step reads it. */
typedef struct interp__msg_head {
    interp_msg_type type; /* as interp_msg_next gives it; a SHARED handle has INTERP_MSG_STR */
    uint8_t tag;          /* the marker byte (see the interp__msg_tag_* families below) */
    int8_t ext;           /* extension values: the ext type; 0 for every other value */
    union {
        bool b;
        int64_t i;    /* INT */
        double d;     /* FLOAT; also a uint 64 above INT64_MAX (the nearest float) */
        uint64_t ref; /* REF: the distance back, as written (may exceed UINT32_MAX) */
    } as;
    uint64_t u;        /* uint 8/16/32/64 (tags 0xcc..0xcf): the value as written */
    const char *ptr;   /* str, bin and ext values: the payload (SHARED: the handle's bytes) */
    size_t len;        /* its length */
    uint32_t count;    /* arrays: elements, maps: pairs */
    uint64_t children; /* values nested directly inside (arrays: count, maps: 2 * count) */
} interp__msg_head;

/* Format families of a marker byte: positive fixint and uint 8..64; fixstr and str 8..32;
 * bin 8..32. */
static inline bool interp__msg_tag_uint(uint8_t t) { return t <= 0x7f || (t >= 0xcc && t <= 0xcf); }

static inline bool interp__msg_tag_str(uint8_t t)
{
    return (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb);
}

static inline bool interp__msg_tag_bin(uint8_t t) { return t >= 0xc4 && t <= 0xc6; }

/* The big-endian unsigned of n (1, 2, 4 or 8) bytes at p (the caller has checked that they
 * exist). */
static inline uint64_t interp__msg_load_be(const char *p, int n)
{
    const unsigned char *u = (const unsigned char *)p;
    switch (n) {
    case 1:
        return u[0];
    case 2:
        return (uint64_t)u[0] << 8 | u[1];
    case 4:
        return (uint64_t)u[0] << 24 | (uint64_t)u[1] << 16 | (uint64_t)u[2] << 8 | u[3];
    default:
        return (uint64_t)u[0] << 56 | (uint64_t)u[1] << 48 | (uint64_t)u[2] << 40 |
               (uint64_t)u[3] << 32 | (uint64_t)u[4] << 24 | (uint64_t)u[5] << 16 |
               (uint64_t)u[6] << 8 | u[7];
    }
}

/* Payload of `len` bytes at p: present before end? */
static inline bool interp__msg_fits(const char *p, const char *end, uint64_t len)
{
    return (uint64_t)(end - p) >= len;
}

/* The rest of a number whose marker c (0xca..0xd3) was just read (*pos is after it): its
 * bytes, as the value interp_msg_next gives. */
static inline interp__msg_fault interp__msg_number_step(uint8_t c, const char **pos,
                                                        const char *end, interp__msg_head *h)
{
    const char *p = *pos;
    int w; /* bytes after the marker */
    if (c <= 0xcb)
        w = c == 0xca ? 4 : 8;
    else
        w = 1 << (c <= 0xcf ? c - 0xcc : c - 0xd0);
    if (!interp__msg_fits(p, end, w))
        return INTERP__MSG_FAULT_TRUNCATED;
    uint64_t u = interp__msg_load_be(p, w);
    *pos = p + w;
    if (c == 0xca) { /* float 32 */
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof f);
        h->type = INTERP_MSG_FLOAT;
        h->as.d = f;
    } else if (c == 0xcb) { /* float 64 */
        h->type = INTERP_MSG_FLOAT;
        memcpy(&h->as.d, &u, sizeof h->as.d);
    } else if (c <= 0xcf) { /* uint 8/16/32/64 */
        h->u = u;
        if (u > INT64_MAX) { /* no Lua integer holds it: the nearest float */
            h->type = INTERP_MSG_FLOAT;
            h->as.d = (double)u;
        } else {
            h->type = INTERP_MSG_INT;
            h->as.i = (int64_t)u;
        }
    } else { /* int 8/16/32/64: sign-extend the w-byte two's complement value */
        h->type = INTERP_MSG_INT;
        if (w == 8)
            h->as.i = (int64_t)u;
        else if (w == 4)
            h->as.i = (int32_t)(uint32_t)u;
        else if (w == 2)
            h->as.i = (int16_t)(uint16_t)u;
        else
            h->as.i = (int8_t)(uint8_t)u;
    }
    return INTERP__MSG_FAULT_NONE;
}

/* The rest of a str 8/16/32 or bin 8/16/32 (0xd9..0xdb, 0xc4..0xc6: length, then payload,
 * stepped over) or an array or map 16/32 (0xdc..0xdf: count) whose marker c was just read. */
static inline interp__msg_fault interp__msg_sized_step(uint8_t c, const char **pos, const char *end,
                                                       interp__msg_head *h)
{
    const char *p = *pos;
    int w; /* width of the length or count field */
    if (c >= 0xdc)
        w = c == 0xdc || c == 0xde ? 2 : 4;
    else
        w = 1 << (c >= 0xd9 ? c - 0xd9 : c - 0xc4);
    if (!interp__msg_fits(p, end, w))
        return INTERP__MSG_FAULT_TRUNCATED;
    uint64_t n = interp__msg_load_be(p, w);
    p += w;
    if (c >= 0xdc) {
        h->type = c <= 0xdd ? INTERP_MSG_ARRAY : INTERP_MSG_MAP;
        h->count = (uint32_t)n;
        h->children = h->type == INTERP_MSG_MAP ? 2 * n : n;
    } else {
        if (!interp__msg_fits(p, end, n))
            return INTERP__MSG_FAULT_TRUNCATED;
        h->type = INTERP_MSG_STR;
        h->ptr = p;
        h->len = (size_t)n;
        p += n;
    }
    *pos = p;
    return INTERP__MSG_FAULT_NONE;
}

/* The rest of an extension value whose marker c was just read (*pos is after it): its
 * length, type byte and payload, and the payload sizes interp_pool's types have
 * (msg_impl.h). */
static inline interp__msg_fault interp__msg_ext_step(uint8_t c, const char **pos, const char *end,
                                                     interp__msg_head *h)
{
    const char *p = *pos;
    if (c >= 0xd4) { /* fixext 1/2/4/8/16 */
        h->len = (size_t)1 << (c - 0xd4);
    } else { /* ext 8/16/32 */
        int w = 1 << (c - 0xc7);
        if (!interp__msg_fits(p, end, w))
            return INTERP__MSG_FAULT_TRUNCATED;
        h->len = (size_t)interp__msg_load_be(p, w);
        p += w;
    }
    if (!interp__msg_fits(p, end, 1 + (uint64_t)h->len))
        return INTERP__MSG_FAULT_TRUNCATED;
    h->ext = (int8_t)(uint8_t)*p++;
    h->ptr = p;
    p += h->len;
    switch (h->ext) {
    case INTERP_MSG_EXT_REF: /* a big-endian unsigned of 1, 2, 4 or 8 bytes */
        if (h->len != 1 && h->len != 2 && h->len != 4 && h->len != 8)
            return INTERP__MSG_FAULT_EXT;
        h->type = INTERP_MSG_REF;
        h->as.ref = interp__msg_load_be(h->ptr, (int)h->len);
        break;
    case INTERP_MSG_EXT_FUNCTION:
        h->type = INTERP_MSG_FUNCTION;
        break;
    case INTERP_MSG_EXT_FROZEN: /* an address */
        if (h->len != sizeof(void *))
            return INTERP__MSG_FAULT_EXT;
        h->type = INTERP_MSG_FROZEN;
        break;
    case INTERP__MSG_EXT_SHARED: /* an address; reads as the string it shares */
        if (h->len != sizeof(void *))
            return INTERP__MSG_FAULT_EXT;
        h->type = INTERP_MSG_STR;
        break;
    default:
        return INTERP__MSG_FAULT_EXT;
    }
    *pos = p;
    return INTERP__MSG_FAULT_NONE;
}

/* Step over the head of the value at *pos, never reading at or past `end`: its marker, length
 * and scalar bytes, and the payload of a str, bin or extension, but not the elements of an
 * array or map. Returns INTERP__MSG_FAULT_NONE with *pos past the head, or a fault with *pos
 * unchanged (h->tag is set whenever *pos < end). The one-byte values and fixed sizes are
 * here, the others in the steps above. */
static inline interp__msg_fault interp__msg_head_step(const char **pos, const char *end,
                                                      interp__msg_head *h)
{
    const char *p = *pos;
    if (p >= end)
        return INTERP__MSG_FAULT_TRUNCATED;
    uint8_t c = (uint8_t)*p++;
    h->tag = c;
    h->ext = 0;
    h->children = 0;
    interp__msg_fault f = INTERP__MSG_FAULT_NONE;
    if (c <= 0x7f) { /* positive fixint */
        h->type = INTERP_MSG_INT;
        h->as.i = c;
    } else if (c >= 0xe0) { /* negative fixint */
        h->type = INTERP_MSG_INT;
        h->as.i = (int8_t)c;
    } else if (c <= 0x9f) { /* fixmap, fixarray */
        h->type = c <= 0x8f ? INTERP_MSG_MAP : INTERP_MSG_ARRAY;
        h->count = c & 0x0f;
        h->children = h->type == INTERP_MSG_MAP ? 2 * (uint64_t)h->count : h->count;
    } else if (c <= 0xbf) { /* fixstr */
        h->type = INTERP_MSG_STR;
        h->len = c & 0x1f;
        if (!interp__msg_fits(p, end, h->len))
            return INTERP__MSG_FAULT_TRUNCATED;
        h->ptr = p;
        p += h->len;
    } else if (c == 0xc0) {
        h->type = INTERP_MSG_NIL;
    } else if (c == 0xc2 || c == 0xc3) {
        h->type = INTERP_MSG_BOOL;
        h->as.b = c == 0xc3;
    } else if (c >= 0xca && c <= 0xd3) { /* float, uint, int */
        f = interp__msg_number_step(c, &p, end, h);
    } else if ((c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8)) { /* ext, fixext */
        f = interp__msg_ext_step(c, &p, end, h);
    } else if (c == 0xc1) { /* never used */
        return INTERP__MSG_FAULT_RESERVED;
    } else { /* bin, str 8/16/32; array, map 16/32 */
        f = interp__msg_sized_step(c, &p, end, h);
    }
    if (f != INTERP__MSG_FAULT_NONE)
        return f;
    *pos = p;
    return INTERP__MSG_FAULT_NONE;
}

#endif
