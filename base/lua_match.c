/* lua_match.c - Lua 5.4's pattern matching on any bytes, interruptible (lua_match.h): the
 * pattern language of the manual, section 6.4.1, written here from the manual. */
#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "lua_match.h"
#include "lua_pos.h"

#define ESC '%'
#define MAX_DEPTH 200 /* nested matcher calls per attempt: "pattern too complex" */

/* ---- the pattern language ------------------------------------------------------------- */

/* Does byte c belong to class letter cl (%a, %d, ...; an upper-case letter complements)? A
 * letter that names no class stands for itself. */
static int in_class(int c, int cl)
{
    int r;
    switch (cl | 0x20) {
    case 'a':
        r = isalpha(c);
        break;
    case 'c':
        r = iscntrl(c);
        break;
    case 'd':
        r = isdigit(c);
        break;
    case 'g':
        r = isgraph(c);
        break;
    case 'l':
        r = islower(c);
        break;
    case 'p':
        r = ispunct(c);
        break;
    case 's':
        r = isspace(c);
        break;
    case 'u':
        r = isupper(c);
        break;
    case 'w':
        r = isalnum(c);
        break;
    case 'x':
        r = isxdigit(c);
        break;
    case 'z':
        r = c == 0;
        break; /* deprecated in the manual, still there in 5.4 */
    default:
        return cl == c;
    }
    if (isupper(cl))
        r = !r;
    return r != 0;
}

/* Does byte c belong to the set `[...]` that starts at set ('[') and closes at close (']')? */
static int in_set(int c, const char *set, const char *close)
{
    int yes = 1;
    const char *p = set + 1;
    if (*p == '^') {
        yes = 0;
        p++;
    }
    for (; p < close; p++) {
        if (*p == ESC) {
            p++;
            if (in_class(c, (unsigned char)*p))
                return yes;
        } else if (p[1] == '-' && p + 2 < close) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return yes;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return yes;
        }
    }
    return !yes;
}

/* Where the single-byte item at p ends (one past it: a quantifier, if any, is there). */
static const char *item_end(interp__matcher *m, const char *p)
{
    char c = *p++;
    if (c == ESC) {
        if (p >= m->pat_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^')
            p++;
        /* the first byte of the set is a member even when it is ']' */
        do {
            if (p >= m->pat_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == ESC && p < m->pat_end)
                p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* Does the item p..ep match the byte at s (which must be inside the subject)? */
static inline int item_matches(const interp__matcher *m, const char *s, const char *p,
                               const char *ep)
{
    if (s >= m->src_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.':
        return 1;
    case ESC:
        return in_class(c, (unsigned char)p[1]);
    case '[':
        return in_set(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

static const char *match(interp__matcher *m, const char *s, const char *p);

/* %bxy at s: the end of the balanced run, or NULL. */
static const char *match_balance(interp__matcher *m, const char *s, const char *p)
{
    if (p >= m->pat_end - 1)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != p[0])
        return NULL;
    char open = p[0], close = p[1];
    int depth = 1;
    const char *start = s;
    while (++s < m->src_end) {
        if (*s == close) {
            if (--depth == 0) {
                interp__tick(&m->tick, s - start);
                return s + 1;
            }
        } else if (*s == open) {
            depth++;
        }
        if (((s - start) & 4095) == 0)
            interp__tick(&m->tick, 4096);
    }
    return NULL;
}

/* Greedy: as many repetitions of the item p..ep as match from s, then give them back one by
 * one until the rest of the pattern (after the quantifier at ep) matches. */
static const char *match_greedy(interp__matcher *m, const char *s, const char *p, const char *ep)
{
    long width = (long)(ep - p); /* a set costs its length at every byte */
    ptrdiff_t n = 0;
    while (item_matches(m, s + n, p, ep)) {
        n++;
        if (width > 64) /* a long set: each test is slow, count each */
            interp__tick(&m->tick, width);
        else if ((n & 255) == 0)
            interp__tick(&m->tick, 256 * width);
    }
    for (; n >= 0; n--) {
        const char *r = match(m, s + n, ep + 1);
        if (r)
            return r;
    }
    return NULL;
}

/* Lazy: the fewest repetitions of the item p..ep after which the rest matches. */
static const char *match_lazy(interp__matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = match(m, s, ep + 1);
        if (r)
            return r;
        if (!item_matches(m, s, p, ep))
            return NULL;
        interp__tick(&m->tick, (long)(ep - p));
        s++;
    }
}

static const char *open_capture(interp__matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= INTERP__MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->level].at = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *r = match(m, s, p);
    if (!r)
        m->level--;
    return r;
}

static const char *close_capture(interp__matcher *m, const char *s, const char *p)
{
    int i = m->level - 1;
    while (i >= 0 && m->cap[i].len != INTERP__CAP_OPEN)
        i--;
    if (i < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[i].len = s - m->cap[i].at;
    const char *r = match(m, s, p);
    if (!r)
        m->cap[i].len = INTERP__CAP_OPEN;
    return r;
}

/* %1-%9: the text of a closed capture again. */
static const char *match_backref(interp__matcher *m, const char *s, int digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->level || m->cap[i].len == INTERP__CAP_OPEN)
        luaL_error(m->L, "invalid capture index %%%d", i + 1);
    size_t len = (size_t)m->cap[i].len; /* a position capture: huge, never fits */
    if ((size_t)(m->src_end - s) < len)
        return NULL;
    interp__tick(&m->tick, (long)(len >> 4));
    return memcmp(m->cap[i].at, s, len) == 0 ? s + len : NULL;
}

/* Match the pattern from p on against the subject from s: the end of the match, or NULL.
 * Tail positions loop instead of recursing, so depth grows only with quantifiers and
 * captures. */
static const char *match(interp__matcher *m, const char *s, const char *p)
{
    if (m->depth-- == 0)
        luaL_error(m->L, "pattern too complex");
    const char *p0 = p; /* the pattern bytes taken by this call are its ticks (at done) */
    for (;;) {
        if (p == m->pat_end)
            break;
        const char *ep;
        switch (*p) {
        case '(':
            if (p[1] == ')')
                s = open_capture(m, s, p + 2, INTERP__CAP_POSITION);
            else
                s = open_capture(m, s, p + 1, INTERP__CAP_OPEN);
            goto done;
        case ')':
            s = close_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 != m->pat_end)
                goto single;
            if (s != m->src_end)
                s = NULL;
            goto done;
        case ESC:
            if (p[1] == 'b') {
                s = match_balance(m, s, p + 2);
                if (!s)
                    goto done;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (*p != '[')
                    luaL_error(m->L, "missing '[' after '%%f' in pattern");
                ep = item_end(m, p);
                int before = s == m->src ? 0 : (unsigned char)s[-1];
                int here = s < m->src_end ? (unsigned char)*s : 0; /* the manual: '\0' */
                if (in_set(before, p, ep - 1) || !in_set(here, p, ep - 1)) {
                    s = NULL;
                    goto done;
                }
                p = ep;
                continue;
            }
            if (isdigit((unsigned char)p[1])) {
                s = match_backref(m, s, (unsigned char)p[1]);
                if (!s)
                    goto done;
                p += 2;
                continue;
            }
            goto single;
        default:
        single:
            ep = item_end(m, p);
            if (!item_matches(m, s, p, ep)) {
                if (*ep == '*' || *ep == '?' || *ep == '-') { /* zero repetitions will do */
                    p = ep + 1;
                    continue;
                }
                s = NULL;
                goto done;
            }
            switch (*ep) {
            case '?': {
                const char *r = match(m, s + 1, ep + 1);
                if (r) {
                    s = r;
                    goto done;
                }
                p = ep + 1;
                continue;
            }
            case '+':
                s = match_greedy(m, s + 1, p, ep);
                goto done;
            case '*':
                s = match_greedy(m, s, p, ep);
                goto done;
            case '-':
                s = match_lazy(m, s, p, ep);
                goto done;
            default:
                s++;
                p = ep;
                continue;
            }
        }
    }
done:
    /* one tick per call, plus the pattern bytes it went through: a long literal or set costs
     * its length (linear in the pattern, so a call between two ticks is bounded by it) */
    interp__tick(&m->tick, 1 + (long)(p - p0));
    m->depth++;
    return s;
}

/* ---- captures ------------------------------------------------------------------------- */

ptrdiff_t interp__match_capture(interp__matcher *m, int i, const char *s, const char *e,
                                const char **at)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        *at = s;
        return e - s;
    }
    ptrdiff_t len = m->cap[i].len;
    *at = m->cap[i].at;
    if (len == INTERP__CAP_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == INTERP__CAP_POSITION)
        lua_pushinteger(m->L, (lua_Integer)(m->cap[i].at - m->src) + 1);
    return len;
}

void interp__match_push_capture(interp__matcher *m, int i, const char *s, const char *e)
{
    const char *at;
    ptrdiff_t len = interp__match_capture(m, i, s, e, &at);
    if (len != INTERP__CAP_POSITION)
        lua_pushlstring(m->L, at, (size_t)len);
}

int interp__match_push_captures(interp__matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        interp__match_push_capture(m, i, s, e);
    return n;
}

void interp__matcher_init(interp__matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                          size_t lp, void (*poll)(lua_State *))
{
    m->L = L;
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    m->level = 0;
    m->depth = MAX_DEPTH;
    interp__ticker_start(&m->tick, L, poll);
}

const char *interp__match_at(interp__matcher *m, const char *s, const char *p)
{
    m->level = 0;
    m->depth = MAX_DEPTH;
    return match(m, s, p);
}

/* ---- find and match ------------------------------------------------------------------- */

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++) {
        switch (p[i]) {
        case '^':
        case '$':
        case '*':
        case '+':
        case '?':
        case '.':
        case '(':
        case '[':
        case '%':
        case '-':
            return 1;
        default:
            break;
        }
    }
    return 0;
}

/* The first occurrence of needle in hay: each candidate found by memchr is compared whole
 * (O(n m) at worst, like Lua's), counting the compared bytes as ticks. */
static const char *find_plain(interp__ticker *t, const char *hay, size_t lh, const char *needle,
                              size_t ln)
{
    if (ln == 0)
        return hay;
    if (ln > lh)
        return NULL;
    const char *end = hay + (lh - ln) + 1; /* candidates start before end */
    const char *s = hay;
    long per = 1 + (long)(ln >> 4);
    while (s < end) {
        const char *c = memchr(s, needle[0], (size_t)(end - s));
        if (!c)
            return NULL;
        interp__tick(t, per + ((c - s) >> 6));
        if (memcmp(c + 1, needle + 1, ln - 1) == 0)
            return c;
        s = c + 1;
    }
    return NULL;
}

int interp__lua_find(lua_State *L, const char *s, size_t ls, int find, void (*poll)(lua_State *))
{
    size_t lp;
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = interp__lua_pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        lua_pushnil(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        interp__ticker t;
        interp__ticker_start(&t, L, poll);
        const char *at = find_plain(&t, s + init, ls - init, p, lp);
        if (at) {
            lua_pushinteger(L, (lua_Integer)(at - s) + 1);
            lua_pushinteger(L, (lua_Integer)(at - s + (ptrdiff_t)lp));
            return 2;
        }
        lua_pushnil(L);
        return 1;
    }
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    interp__matcher m;
    interp__matcher_init(&m, L, s, ls, p, lp, poll);
    const char *from = s + init;
    do {
        const char *e = interp__match_at(&m, from, p);
        if (e) {
            if (find) {
                lua_pushinteger(L, (lua_Integer)(from - s) + 1);
                lua_pushinteger(L, (lua_Integer)(e - s));
                return interp__match_push_captures(&m, NULL, NULL) + 2;
            }
            return interp__match_push_captures(&m, from, e);
        }
    } while (from++ < m.src_end && !anchored);
    lua_pushnil(L);
    return 1;
}

/* ---- gmatch --------------------------------------------------------------------------- */

void interp__gmatch_init(interp__gmatch *g, lua_State *L, const char *s, size_t ls,
                         void (*poll)(lua_State *))
{
    size_t lp;
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = interp__lua_pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls)
        init = ls + 1; /* past the end: no match */
    interp__matcher_init(&g->m, L, s, ls, p, lp, poll);
    g->next = s + init;
    g->last = NULL;
    g->p = p;
}

int interp__gmatch_step(interp__gmatch *g, lua_State *L)
{
    interp__ticker_start(&g->m.tick, L, g->m.tick.poll);
    g->m.L = L;
    for (const char *from = g->next; from <= g->m.src_end; from++) {
        const char *e = interp__match_at(&g->m, from, g->p);
        if (e && e != g->last) {
            g->next = g->last = e;
            return interp__match_push_captures(&g->m, from, e);
        }
    }
    return 0;
}
