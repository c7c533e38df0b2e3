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
    JSON_MAX_DEPTH = 200,       /* as the pool's default message depth */
    JSON_MAX_NODES = 16 << 20,  /* bound on values printed for one result: shared subtables are
                                   printed in full at every place, which could otherwise grow
                                   exponentially */
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

int cli_json_to_msg(const char *text, size_t len, interp_msg **out, char *why, size_t whylen)
{
    *out = NULL;
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

/* Lua's own text for a float (lua_Number2str, then ".0" when it looks like an integer). */
static void fmt_float(char *buf, size_t n, double d)
{
    snprintf(buf, n, "%.14g", d);
    size_t len = strlen(buf);
    if (buf[strspn(buf, "-0123456789")] == '\0' && len + 3 <= n)
        memcpy(buf + len, ".0", 3);
}

/* The walk that turns values into cJSON nodes. Tables are numbered in the order they begin,
 * as the message's back-references count them (functions count too, but any function fails
 * the walk before a reference could count past it); a reference is printed as a copy of the
 * table it names (JSON has no sharing), and one that names a table still open (a cycle) fails.
 * A copy is walked again with `replay` counting the original numbers of the tables in it. */
typedef struct walk {
    struct tbl { interp_msg_value v; bool open; } *tables;
    size_t ntables, cap;
    size_t nodes;
    char *why;
    size_t whylen;
} walk;

static cJSON *node(walk *w, const interp_msg_value *v, size_t *replay, int depth);

static cJSON *fail(walk *w, const char *fmt, const char *arg)
{
    set_why(w->why, w->whylen, fmt, arg);
    return NULL;
}

/* The text of a map key: JSON keys are strings, so numbers and booleans become their text. */
static bool key_text(walk *w, const interp_msg_value *k, char *buf, size_t n, char **heap)
{
    *heap = NULL;
    switch (k->type) {
    case INTERP_MSG_STR:
        if (k->as.str.len < n) {
            memcpy(buf, k->as.str.ptr, k->as.str.len);
            buf[k->as.str.len] = '\0';
        } else {
            *heap = malloc(k->as.str.len + 1);
            if (!*heap)
                return fail(w, "%s", "out of memory"), false;
            memcpy(*heap, k->as.str.ptr, k->as.str.len);
            (*heap)[k->as.str.len] = '\0';
        }
        return true;
    case INTERP_MSG_INT:
        snprintf(buf, n, "%" PRId64, k->as.i);
        return true;
    case INTERP_MSG_FLOAT:
        fmt_float(buf, n, k->as.d);
        return true;
    case INTERP_MSG_BOOL:
        snprintf(buf, n, "%s", k->as.b ? "true" : "false");
        return true;
    default:
        fail(w, "%s", "a table key that is not a string, number or boolean cannot be printed");
        return false;
    }
}

static cJSON *table(walk *w, const interp_msg_value *v, size_t *replay, int depth)
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
    cJSON *t = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
    interp_msg_iter it = v->as.seq.items;
    interp_msg_value k, e;
    for (uint32_t i = 0; t && i < v->as.seq.count; i++) {
        char buf[64], *heap = NULL;
        if (is_map && (!interp_msg_next(&it, &k) || !key_text(w, &k, buf, sizeof buf, &heap))) {
            cJSON_Delete(t);
            t = NULL;
            break;
        }
        cJSON *c = interp_msg_next(&it, &e) ? node(w, &e, replay, depth + 1) : NULL;
        if (c && is_map)
            cJSON_AddItemToObject(t, heap ? heap : buf, c);
        else if (c)
            cJSON_AddItemToArray(t, c);
        free(heap);
        if (!c) {
            cJSON_Delete(t);
            t = NULL;
        }
    }
    if (!t && !w->why[0])
        fail(w, "%s", "out of memory");
    w->tables[idx].open = false;
    return t;
}

static cJSON *node(walk *w, const interp_msg_value *v, size_t *replay, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(w, "%s", "a result nested too deeply to be printed");
    if (++w->nodes > JSON_MAX_NODES)
        return fail(w, "%s", "a result too large to be printed (shared subtables expand)");
    char buf[64];
    switch (v->type) {
    case INTERP_MSG_NIL:
        return cJSON_CreateNull();
    case INTERP_MSG_BOOL:
        return cJSON_CreateBool(v->as.b);
    case INTERP_MSG_INT:
        /* raw text: cJSON's numbers are doubles, which would round integers above 2^53 */
        snprintf(buf, sizeof buf, "%" PRId64, v->as.i);
        return cJSON_CreateRaw(buf);
    case INTERP_MSG_FLOAT:
        return cJSON_CreateNumber(v->as.d); /* NaN and infinities print as null */
    case INTERP_MSG_STR: {
        if (memchr(v->as.str.ptr, '\0', v->as.str.len))
            return fail(w, "%s", "a string holding a NUL byte cannot be printed as JSON");
        char *s = malloc(v->as.str.len + 1);
        if (!s)
            return fail(w, "%s", "out of memory");
        memcpy(s, v->as.str.ptr, v->as.str.len);
        s[v->as.str.len] = '\0';
        cJSON *c = cJSON_CreateString(s);
        free(s);
        return c;
    }
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

/* One value as text into *text (malloc'd). */
static int value_text(walk *w, const interp_msg_value *v, bool json, char **text)
{
    char buf[64];
    *text = NULL;
    if (!json) {
        switch (v->type) {
        case INTERP_MSG_NIL:
            *text = strdup("nil");
            break;
        case INTERP_MSG_BOOL:
            *text = strdup(v->as.b ? "true" : "false");
            break;
        case INTERP_MSG_INT:
            snprintf(buf, sizeof buf, "%" PRId64, v->as.i);
            *text = strdup(buf);
            break;
        case INTERP_MSG_FLOAT:
            fmt_float(buf, sizeof buf, v->as.d);
            *text = strdup(buf);
            break;
        case INTERP_MSG_STR:
            *text = malloc(v->as.str.len + 1);
            if (*text) {
                memcpy(*text, v->as.str.ptr, v->as.str.len);
                (*text)[v->as.str.len] = '\0';
            }
            break;
        case INTERP_MSG_FUNCTION:
            fail(w, "%s", "a function cannot be printed");
            return INTERP_ERR_ENCODE;
        default:
            goto as_json;
        }
        if (!*text) {
            fail(w, "%s", "out of memory");
            return INTERP_ERR_NOMEM;
        }
        return INTERP_OK;
    }
as_json:;
    cJSON *c = node(w, v, NULL, 0);
    if (!c)
        return INTERP_ERR_ENCODE;
    *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!*text) {
        fail(w, "%s", "out of memory");
        return INTERP_ERR_NOMEM;
    }
    return INTERP_OK;
}

int cli_write_msg(FILE *f, const interp_msg *m, bool json, char *why, size_t whylen)
{
    walk w = {.why = why, .whylen = whylen};
    why[0] = '\0';
    uint32_t n = interp_msg_count(m);
    if (n == 0) {
        fputs(json ? "null" : "", f);
        return INTERP_OK;
    }
    /* Plain strings may hold any bytes (a NUL included): written with their length. */
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    char **texts = calloc(n, sizeof *texts);
    size_t *lens = calloc(n, sizeof *lens);
    int rc = texts && lens ? INTERP_OK : INTERP_ERR_NOMEM;
    for (uint32_t i = 0; i < n && rc == INTERP_OK; i++) {
        if (!interp_msg_next(&it, &v)) {
            rc = INTERP_ERR_DECODE;
            set_why(why, whylen, "a malformed result");
            break;
        }
        rc = value_text(&w, &v, json, &texts[i]);
        if (rc == INTERP_OK)
            lens[i] = (!json && v.type == INTERP_MSG_STR) ? v.as.str.len : strlen(texts[i]);
    }
    if (rc == INTERP_OK) {
        if (json && n > 1)
            fputc('[', f);
        for (uint32_t i = 0; i < n; i++) {
            if (i > 0)
                fputc(json ? ',' : '\t', f);
            fwrite(texts[i], 1, lens[i], f);
        }
        if (json && n > 1)
            fputc(']', f);
    } else if (rc == INTERP_ERR_NOMEM && !why[0]) {
        set_why(why, whylen, "out of memory");
    }
    for (uint32_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    free(w.tables);
    return rc;
}
