/* msg_print.c - interp_msg_to_text: readable, Lua-like text of a message for logs and tests.
 *
 * One linear pass over the bytes with an explicit heap stack (no recursion, so a deep
 * structure built with the C builder prints whole instead of overflowing the C stack). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_frozen.h"
#include "msg_impl.h"
#include "msg_read.h"

/* A growing NUL-terminated text; `failed` once an allocation failed. */
typedef struct text {
    char *s;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (n >= t->cap - t->len) {
        size_t cap = t->cap ? t->cap : 64;
        while (n >= cap - t->len) {
            if (cap > SIZE_MAX / 2) {
                t->failed = true;
                return;
            }
            cap *= 2;
        }
        char *s2 = realloc(t->s, cap);
        if (!s2) {
            t->failed = true;
            return;
        }
        t->s = s2;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

/* Length of a well-formed UTF-8 sequence of 2 to 4 bytes at p (no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else
        return 0;
    if (left < n)
        return 0;
    unsigned cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A quoted Lua string literal: printable ASCII and well-formed UTF-8 as they are; the usual
 * escapes (\n \t \\ \" ...); any other byte as a decimal \ddd, written with three digits when
 * a digit follows so that the text reads back as the same bytes in Lua. */
static void put_string(text *t, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    put(t, "\"", 1);
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        const char *esc = NULL;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\a':
            esc = "\\a";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\v':
            esc = "\\v";
            break;
        default:
            break;
        }
        if (esc) {
            puts_(t, esc);
            i++;
            continue;
        }
        if (c >= 0x20 && c < 0x7f) {
            size_t j = i + 1; /* a run of plain bytes at once */
            while (j < len && p[j] >= 0x20 && p[j] < 0x7f && p[j] != '"' && p[j] != '\\')
                j++;
            put(t, s + i, j - i);
            i = j;
            continue;
        }
        size_t u = c >= 0x80 ? utf8_len(p + i, len - i) : 0;
        if (u) {
            put(t, s + i, u);
            i += u;
            continue;
        }
        char buf[8];
        bool digit_next = i + 1 < len && p[i + 1] >= '0' && p[i + 1] <= '9';
        snprintf(buf, sizeof buf, digit_next ? "\\%03u" : "\\%u", c);
        puts_(t, buf);
        i++;
    }
    put(t, "\"", 1);
}

/* A float that reads back as the same double and looks like a float, as Python's repr()
 * writes it: the fewest significant digits that round-trip (0.1, not 0.10000000000000001),
 * positional for exponents -4 .. 15 (100.0, 1234.5), scientific otherwise (1e+16, 5e-324),
 * and ".0" added when the text would read as an integer. */
static void put_float(text *t, double d)
{
    char buf[40];
    if (isnan(d)) {
        puts_(t, "nan");
        return;
    }
    if (isinf(d)) {
        puts_(t, d > 0 ? "inf" : "-inf");
        return;
    }
    int prec = 1;
    for (; prec < 17; prec++) { /* up to 17 tries: a printer for logs and tests */
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* scientific (%e, not %g, which would go positional for 1.2345678901234568e+16) */
    snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    int exp10 = atoi(strchr(buf, 'e') + 1);
    if (exp10 >= -4 && exp10 < 16) /* positional, every digit before the point written */
        snprintf(buf, sizeof buf, "%.*g", prec > exp10 + 1 ? prec : exp10 + 1, d);
    puts_(t, buf);
    if (!strpbrk(buf, ".eE"))
        puts_(t, ".0");
}

static bool is_identifier(const char *s, size_t len)
{
    static const char *const reserved[] = {"and",   "break", "do",       "else", "elseif", "end",
                                           "false", "for",   "function", "goto", "if",     "in",
                                           "local", "nil",   "not",      "or",   "repeat", "return",
                                           "then",  "true",  "until",    "while"};
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], s, len) == 0)
            return false;
    return true;
}

/* A scalar (anything but an array or map). */
static void put_scalar(text *t, const interp_msg_value *v)
{
    char buf[32];
    switch (v->type) {
    case INTERP_MSG_NIL:
        puts_(t, "nil");
        break;
    case INTERP_MSG_BOOL:
        puts_(t, v->as.b ? "true" : "false");
        break;
    case INTERP_MSG_INT:
        snprintf(buf, sizeof buf, "%lld", (long long)v->as.i);
        puts_(t, buf);
        break;
    case INTERP_MSG_FLOAT:
        put_float(t, v->as.d);
        break;
    case INTERP_MSG_STR:
        put_string(t, v->as.str.ptr, v->as.str.len);
        break;
    case INTERP_MSG_REF:
        snprintf(buf, sizeof buf, "@ref%lu", (unsigned long)v->as.ref);
        puts_(t, buf);
        break;
    case INTERP_MSG_FUNCTION:
        puts_(t, "<function>");
        break;
    case INTERP_MSG_FROZEN:
        puts_(t, interp_frozen_is_buffer(v->as.frozen) ? "<frozen buffer>" : "<frozen table>");
        break;
    case INTERP_MSG_ARRAY:
    case INTERP_MSG_MAP:
        break; /* not scalars */
    }
}

/* One open run being printed: the top level (no braces), an array or a map. */
typedef struct frame {
    uint64_t left; /* values still to print in this run */
    bool map;
    bool first;
    bool key_next;    /* map: the next value read is a key */
    bool key_bracket; /* map: the child being printed is a key written as [k] */
} frame;

int interp_msg_to_text(const interp_msg *m, char **out)
{
    if (!m || !out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    text t = {0};
    size_t cap = 16, depth = 1;
    frame *st = malloc(cap * sizeof *st);
    if (!st)
        return INTERP_ERR_NOMEM;
    st[0] = (frame){m->count, false, true, false, false};
    /* One cursor for the whole walk: values come in order, a container's elements right
     * after its head, so the stack only counts what each open run still owes. */
    const char *p = m->data, *end = m->data + m->size;
    int rc = INTERP_OK;
    put(&t, "", 0);
    while (depth > 0 && !t.failed) {
        frame *f = &st[depth - 1];
        interp_msg_value v;
        if (f->left == 0) {
            if (depth > 1)
                put(&t, "}", 1);
            depth--;
            if (depth > 0 && st[depth - 1].key_bracket) {
                puts_(&t, "] = ");
                st[depth - 1].key_bracket = false;
            }
            continue;
        }
        if (!interp__msg_read_head(&p, end, &v)) { /* bytes this library never writes */
            rc = INTERP_ERR_DECODE;
            break;
        }
        f->left--;
        bool key = f->map && f->key_next;
        if (f->map)
            f->key_next = !f->key_next;
        if (!f->first && (!f->map || key))
            puts_(&t, ", ");
        f->first = false;
        if (key && v.type == INTERP_MSG_STR && is_identifier(v.as.str.ptr, v.as.str.len)) {
            put(&t, v.as.str.ptr, v.as.str.len);
            puts_(&t, " = ");
            continue;
        }
        if (key)
            put(&t, "[", 1);
        if (v.type != INTERP_MSG_ARRAY && v.type != INTERP_MSG_MAP) {
            put_scalar(&t, &v);
            if (key)
                puts_(&t, "] = ");
            continue;
        }
        f->key_bracket = key;
        if (depth == cap) {
            frame *st2 = cap < SIZE_MAX / 2 / sizeof *st ? realloc(st, 2 * cap * sizeof *st) : NULL;
            if (!st2) {
                t.failed = true;
                break;
            }
            st = st2;
            cap *= 2;
        }
        put(&t, "{", 1);
        st[depth++] = (frame){v.as.seq.items.left, v.type == INTERP_MSG_MAP, true, true, false};
    }
    free(st);
    if (t.failed && rc == INTERP_OK)
        rc = INTERP_ERR_NOMEM;
    if (rc != INTERP_OK) {
        free(t.s);
        return rc;
    }
    *out = t.s;
    return INTERP_OK;
}
