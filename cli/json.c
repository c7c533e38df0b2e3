/* json.c - JSON lines in, result lines out: JSON text <-> messages through Debian's cJSON, and
 * the plain-text form of results. */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
    JSON_MAX_DEPTH = 200, /* as the pool's default message depth */
};

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* ---- JSON -> message ------------------------------------------------------------------- */

static int add_json(interp_msg_builder *b, const cJSON *j)
{
    if (cJSON_IsNull(j))
        return interp_msg_add_nil(b);
    if (cJSON_IsBool(j))
        return interp_msg_add_bool(b, cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        /* cJSON keeps numbers as doubles: integral values that a double holds exactly are
         * integers, as Lua's 3 and JSON's 3 mean the same thing */
        if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            return interp_msg_add_int(b, (int64_t)d);
        return interp_msg_add_double(b, d);
    }
    if (cJSON_IsString(j))
        return interp_msg_add_cstr(b, j->valuestring);
    uint32_t n = 0;
    for (const cJSON *c = j->child; c; c = c->next)
        n++;
    int rc = cJSON_IsArray(j) ? interp_msg_add_array(b, n) : interp_msg_add_map(b, n);
    for (const cJSON *c = j->child; c && rc == INTERP_OK; c = c->next) {
        if (cJSON_IsObject(j))
            rc = interp_msg_add_cstr(b, c->string);
        if (rc == INTERP_OK)
            rc = add_json(b, c);
    }
    return rc;
}

/* Whether a JSON string of the text holds the escape \u0000: cJSON keeps strings
 * NUL-terminated and would cut it there, so such a line is refused rather than changed. */
static bool has_nul_escape(const char *t, size_t len)
{
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_str) {
            in_str = t[i] == '"';
        } else if (t[i] == '"') {
            in_str = false;
        } else if (t[i] == '\\' && i + 1 < len) {
            if (t[i + 1] == 'u' && i + 5 < len && memcmp(t + i + 2, "0000", 4) == 0)
                return true;
            i++;
        }
    }
    return false;
}

int cli_json_to_msg(const char *text, size_t len, interp_msg **out, char *why, size_t whylen)
{
    *out = NULL;
    if (has_nul_escape(text, len)) {
        set_why(why, whylen,
                "a JSON string holding \\u0000 (a NUL byte) is not supported "
                "as input");
        return INTERP_ERR_DECODE;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        size_t col = at && at >= text && at <= text + len ? (size_t)(at - text) + 1 : 1;
        set_why(why, whylen, len == 0 ? "invalid JSON: empty line" : "invalid JSON at column %zu",
                col);
        return INTERP_ERR_DECODE;
    }
    while (end && end < text + len && strchr(" \t\r\n", *end))
        end++;
    if (end && end < text + len) {
        cJSON_Delete(j);
        set_why(why, whylen, "invalid JSON: unexpected text at column %zu",
                (size_t)(end - text) + 1);
        return INTERP_ERR_DECODE;
    }
    interp_msg_builder *b = interp_msg_builder_new();
    int rc = b ? add_json(b, j) : INTERP_ERR_NOMEM;
    cJSON_Delete(j);
    if (rc != INTERP_OK) {
        interp_msg_builder_free(b);
        set_why(why, whylen, "out of memory");
        return rc;
    }
    rc = interp_msg_builder_finish(b, out);
    if (rc != INTERP_OK)
        set_why(why, whylen, "%s", interp_strerror(rc));
    return rc;
}

/* ---- message -> text ------------------------------------------------------------------- */

/* The output line is built in a buffer that never grows past `max` bytes: a result whose text
 * would be longer fails as a whole (nothing is written), however its tables are shared. */
typedef struct outbuf {
    char *p;
    size_t len, cap, max;
    bool over; /* the text passed max */
    bool nomem;
} outbuf;

static bool put(outbuf *b, const char *s, size_t n)
{
    if (b->over || b->nomem)
        return false;
    if (n == 0)
        return true;
    if (n > b->max - b->len) {
        b->over = true;
        return false;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > b->max / 2 ? b->max : 2 * cap;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->nomem = true;
            return false;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return true;
}

static bool puts_(outbuf *b, const char *s) { return put(b, s, strlen(s)); }

/* A JSON string: quotes, backslashes and control characters escaped (a NUL byte as \u0000);
 * other bytes, UTF-8 or not, as they are. */
static bool put_json_string(outbuf *b, const char *s, size_t n)
{
    if (!put(b, "\"", 1))
        return false;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (!put(b, s + run, i - run))
            return false;
        char esc[8];
        switch (c) {
        case '"':
            memcpy(esc, "\\\"", 3);
            break;
        case '\\':
            memcpy(esc, "\\\\", 3);
            break;
        case '\n':
            memcpy(esc, "\\n", 3);
            break;
        case '\t':
            memcpy(esc, "\\t", 3);
            break;
        case '\r':
            memcpy(esc, "\\r", 3);
            break;
        case '\b':
            memcpy(esc, "\\b", 3);
            break;
        case '\f':
            memcpy(esc, "\\f", 3);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            break;
        }
        if (!puts_(b, esc))
            return false;
        run = i + 1;
    }
    return put(b, s + run, n - run) && put(b, "\"", 1);
}

/* Lua's own text for a float (lua_Number2str, then ".0" when it looks like an integer). */
static void fmt_float(char *buf, size_t n, double d)
{
    snprintf(buf, n, "%.14g", d);
    size_t len = strlen(buf);
    if (buf[strspn(buf, "-0123456789")] == '\0' && len + 3 <= n)
        memcpy(buf + len, ".0", 3);
}

/* A float as JSON: NaN and infinities have no JSON form and print as null. */
static bool put_json_float(outbuf *b, double d)
{
    if (isnan(d) || isinf(d))
        return puts_(b, "null");
    char buf[64]; /* the short form when it reads back exactly, else all 17 digits */
    snprintf(buf, sizeof buf, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof buf, "%.17g", d);
    return puts_(b, buf);
}

/* The walk that writes values as JSON. Tables are numbered in the order they begin, as the
 * message's back-references count them (functions count too, but any function fails the walk
 * before a reference could count past it); a reference is printed as a copy of the table it
 * names (JSON has no sharing), and one that names a table still open (a cycle) fails. A copy
 * is walked again with `replay` counting the original numbers of the tables in it. The output
 * bound stops a result whose shared tables would expand past it. */
typedef struct walk {
    struct tbl {
        interp_msg_value v;
        bool open;
    } * tables;
    size_t ntables, cap;
    outbuf *out;
    char *why;
    size_t whylen;
} walk;

static bool node(walk *w, const interp_msg_value *v, size_t *replay, int depth);

static bool fail(walk *w, const char *fmt, const char *arg)
{
    if (!w->why[0])
        set_why(w->why, w->whylen, fmt, arg);
    return false;
}

/* A map key: JSON keys are strings, so numbers and booleans become their text. */
static bool put_key(walk *w, const interp_msg_value *k)
{
    char buf[64];
    switch (k->type) {
    case INTERP_MSG_STR:
        return put_json_string(w->out, k->as.str.ptr, k->as.str.len);
    case INTERP_MSG_INT:
        snprintf(buf, sizeof buf, "%" PRId64, k->as.i);
        break;
    case INTERP_MSG_FLOAT:
        fmt_float(buf, sizeof buf, k->as.d);
        break;
    case INTERP_MSG_BOOL:
        snprintf(buf, sizeof buf, "%s", k->as.b ? "true" : "false");
        break;
    default:
        return fail(w, "%s",
                    "a table key that is not a string, number or boolean cannot be "
                    "printed");
    }
    return put_json_string(w->out, buf, strlen(buf));
}

static bool table(walk *w, const interp_msg_value *v, size_t *replay, int depth)
{
    size_t idx;
    if (replay) {
        idx = (*replay)++;
    } else {
        if (w->ntables == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 16;
            struct tbl *t = realloc(w->tables, cap * sizeof *t);
            if (!t)
                return fail(w, "%s", "out of memory");
            w->tables = t;
            w->cap = cap;
        }
        idx = w->ntables++;
        w->tables[idx].v = *v;
    }
    w->tables[idx].open = true;
    bool is_map = v->type == INTERP_MSG_MAP;
    bool ok = put(w->out, is_map ? "{" : "[", 1);
    interp_msg_iter it = v->as.seq.items;
    interp_msg_value k, e;
    for (uint32_t i = 0; ok && i < v->as.seq.count; i++) {
        if (i > 0)
            ok = put(w->out, ",", 1);
        if (ok && is_map)
            ok = interp_msg_next(&it, &k) ? put_key(w, &k) && put(w->out, ":", 1)
                                          : fail(w, "%s", "a malformed result");
        if (ok)
            ok = interp_msg_next(&it, &e) ? node(w, &e, replay, depth + 1)
                                          : fail(w, "%s", "a malformed result");
    }
    if (ok)
        ok = put(w->out, is_map ? "}" : "]", 1);
    w->tables[idx].open = false;
    return ok;
}

static bool node(walk *w, const interp_msg_value *v, size_t *replay, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(w, "%s", "a result nested too deeply to be printed");
    char buf[64];
    switch (v->type) {
    case INTERP_MSG_NIL:
        return puts_(w->out, "null");
    case INTERP_MSG_BOOL:
        return puts_(w->out, v->as.b ? "true" : "false");
    case INTERP_MSG_INT:
        snprintf(buf, sizeof buf, "%" PRId64, v->as.i); /* exact, also above 2^53 */
        return puts_(w->out, buf);
    case INTERP_MSG_FLOAT:
        return put_json_float(w->out, v->as.d);
    case INTERP_MSG_STR:
        return put_json_string(w->out, v->as.str.ptr, v->as.str.len);
    case INTERP_MSG_ARRAY:
    case INTERP_MSG_MAP:
        return table(w, v, replay, depth);
    case INTERP_MSG_REF: {
        /* `ref` counts back from the object begun most recently (1: that one) */
        size_t begun = replay ? *replay : w->ntables;
        if (v->as.ref == 0 || v->as.ref > begun)
            return fail(w, "%s", "a malformed table reference");
        size_t k = begun - v->as.ref;
        if (w->tables[k].open)
            return fail(w, "%s", "a table that contains itself cannot be printed");
        interp_msg_value t = w->tables[k].v;
        size_t count = k;
        return table(w, &t, &count, depth);
    }
    case INTERP_MSG_FUNCTION:
        return fail(w, "%s", "a function cannot be printed");
    case INTERP_MSG_FROZEN:
        return fail(w, "%s", "a frozen value cannot be printed (interp.thaw it first)");
    }
    return fail(w, "%s", "a value of unknown type");
}

/* One value: plain text (strings as they are, numbers as Lua prints them, tables as JSON) or
 * JSON. */
static bool value_text(walk *w, const interp_msg_value *v, bool json)
{
    char buf[64];
    if (!json) {
        switch (v->type) {
        case INTERP_MSG_NIL:
            return puts_(w->out, "nil");
        case INTERP_MSG_BOOL:
            return puts_(w->out, v->as.b ? "true" : "false");
        case INTERP_MSG_INT:
            snprintf(buf, sizeof buf, "%" PRId64, v->as.i);
            return puts_(w->out, buf);
        case INTERP_MSG_FLOAT:
            fmt_float(buf, sizeof buf, v->as.d);
            return puts_(w->out, buf);
        case INTERP_MSG_STR: /* any bytes, a NUL included: written with their length */
            return put(w->out, v->as.str.ptr, v->as.str.len);
        case INTERP_MSG_FUNCTION:
            return fail(w, "%s", "a function cannot be printed");
        default:
            break;
        }
    }
    return node(w, v, NULL, 0);
}

int cli_write_msg(FILE *f, const interp_msg *m, bool json, size_t max_bytes, char *why,
                  size_t whylen)
{
    outbuf out = {.max = max_bytes};
    walk w = {.out = &out, .why = why, .whylen = whylen};
    why[0] = '\0';
    uint32_t n = interp_msg_count(m);
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    bool ok = true;
    if (n == 0)
        ok = puts_(&out, json ? "null" : "");
    if (ok && json && n > 1)
        ok = put(&out, "[", 1);
    for (uint32_t i = 0; ok && i < n; i++) {
        if (i > 0)
            ok = put(&out, json ? "," : "\t", 1);
        if (ok)
            ok = interp_msg_next(&it, &v) ? value_text(&w, &v, json)
                                          : fail(&w, "%s", "a malformed result");
    }
    if (ok && json && n > 1)
        ok = put(&out, "]", 1);
    int rc = INTERP_OK;
    if (!ok) {
        if (out.over) {
            set_why(why, whylen, "the result's text is longer than %zu bytes (--max-output)",
                    max_bytes);
            rc = INTERP_ERR_LIMIT;
        } else if (out.nomem) {
            set_why(why, whylen, "out of memory");
            rc = INTERP_ERR_NOMEM;
        } else {
            rc = INTERP_ERR_ENCODE;
        }
    } else if (out.len > 0 && fwrite(out.p, 1, out.len, f) != out.len) {
        rc = INTERP_ERR_SYSTEM;
        set_why(why, whylen, "%s", "cannot write the result");
    }
    free(out.p);
    free(w.tables);
    return rc;
}
