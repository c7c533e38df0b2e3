/* msg_path.c - paths of values inside a message, for the Lua codec's error texts. */
#include <stdio.h>
#include <string.h>

#include "msg_lua_impl.h"

enum { KEY_SHOWN = 32 }; /* bytes of a string key shown before "..." */

void interp__path_init(interp__path *p)
{
    p->len = 0;
    p->cut = false;
    p->buf[0] = '\0';
}

static void append(interp__path *p, const char *s, size_t n)
{
    if (n > INTERP__PATH_CAP - 1 - INTERP__PATH_HEAD) { /* keep only the end of a huge segment */
        s += n - (INTERP__PATH_CAP - 1 - INTERP__PATH_HEAD);
        n = INTERP__PATH_CAP - 1 - INTERP__PATH_HEAD;
    }
    if (p->len + n > INTERP__PATH_CAP - 1) {
        /* drop the oldest bytes after the head to make room */
        size_t head = p->len < INTERP__PATH_HEAD ? p->len : INTERP__PATH_HEAD;
        size_t drop = p->len + n - (INTERP__PATH_CAP - 1);
        memmove(p->buf + head, p->buf + head + drop, p->len - head - drop);
        p->len -= drop;
        p->cut = true;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

void interp__path_index(interp__path *p, long long i)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "[%lld]", i);
    append(p, tmp, (size_t)n);
}

void interp__path_in_key(interp__path *p) { append(p, ": key", 5); }

void interp__path_upvalue(interp__path *p, const char *name, size_t len)
{
    char tmp[KEY_SHOWN + 24];
    int n = snprintf(tmp, sizeof tmp, ": upvalue '%.*s%s'",
                     (int)(len > KEY_SHOWN ? KEY_SHOWN : len), name, len > KEY_SHOWN ? "..." : "");
    append(p, tmp, (size_t)n);
}

static bool is_identifier(const char *s, size_t n)
{
    static const char *const reserved[] = {"and",   "break", "do",       "else", "elseif", "end",
                                           "false", "for",   "function", "goto", "if",     "in",
                                           "local", "nil",   "not",      "or",   "repeat", "return",
                                           "then",  "true",  "until",    "while"};
    if (n == 0 || n > KEY_SHOWN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && (i == 0 || c < '0' || c > '9'))
            return false;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0)
            return false;
    return true;
}

void interp__path_key(interp__path *p, lua_State *L, int idx)
{
    char tmp[KEY_SHOWN * 4 + 16];
    size_t n = 0;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len); /* a string already: no conversion */
        if (is_identifier(s, len)) {
            tmp[n++] = '.';
            memcpy(tmp + n, s, len);
            n += len;
            break;
        }
        memcpy(tmp, "[\"", 2);
        n = 2;
        for (size_t i = 0; i < len && i < KEY_SHOWN; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\') {
                tmp[n++] = '\\';
                tmp[n++] = (char)c;
            } else if (c < 0x20 || c >= 0x7f) {
                n += (size_t)snprintf(tmp + n, sizeof tmp - n, "\\%u", c);
            } else {
                tmp[n++] = (char)c;
            }
        }
        if (len > KEY_SHOWN) {
            memcpy(tmp + n, "...", 3);
            n += 3;
        }
        memcpy(tmp + n, "\"]", 2);
        n += 2;
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            n = (size_t)snprintf(tmp, sizeof tmp, "[%lld]", (long long)lua_tointeger(L, idx));
        else
            n = (size_t)snprintf(tmp, sizeof tmp, "[%.14g]", (double)lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        n = (size_t)snprintf(tmp, sizeof tmp, "[%s]", lua_toboolean(L, idx) ? "true" : "false");
        break;
    default:
        n = (size_t)snprintf(tmp, sizeof tmp, "[<%s>]", lua_typename(L, lua_type(L, idx)));
        break;
    }
    append(p, tmp, n);
}

void interp__path_finish(const interp__path *p, const char *reason, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    if (p->len == 0) {
        snprintf(out, outlen, "%s", reason);
        return;
    }
    size_t rlen = strlen(reason);
    /* what fits of the path: the whole of it, or a head and a tail around "..." */
    size_t room = outlen > rlen + 3 ? outlen - rlen - 3 : 0; /* ": " and NUL */
    if (!p->cut && p->len <= room) {
        snprintf(out, outlen, "%s: %s", p->buf, reason);
        return;
    }
    size_t head = p->cut && p->len > INTERP__PATH_HEAD ? INTERP__PATH_HEAD : p->len;
    if (room < 3 + 16) { /* reason alone */
        snprintf(out, outlen, "%s", reason);
        return;
    }
    size_t avail = room - 3;
    if (head > avail / 3)
        head = avail / 3;
    size_t tail = avail - head;
    if (tail > p->len - head)
        tail = p->len - head;
    snprintf(out, outlen, "%.*s...%s: %s", (int)head, p->buf, p->buf + p->len - tail, reason);
}
