/* lib_string.c - string.find/match/gmatch/gsub and string.rep, written here so that their loops
 * can be interrupted (lib_impl.h): Lua's matcher backtracks inside C, where no hook reaches, and
 * a pattern of a few bytes can make it run for hours; a plain find is O(n m).
 *
 * Same results and error messages as Lua 5.4's own functions (the pattern language of the
 * manual, section 6.4.1: the matcher below explores the same alternatives in the same order,
 * so the first match found is the same). Differences: none visible to scripts, apart from the
 * interrupt. Ticks: every call of the matcher, every pattern byte it goes through (counted
 * when the call returns: one call is linear in the pattern), each test of a long set by a
 * greedy item (its length), every subject byte a
 * greedy item or %b scans (times the item's length), 1/16 of the bytes a back-reference or a
 * plain find compares. So the time between two looks at the token is bounded whatever the
 * pattern, the subject or the backtracking.
 *
 * The subject and the pattern are Lua strings, so a byte past their end is always readable
 * (Lua keeps a NUL there); the matcher relies on it where the manual's semantics do (a
 * frontier at the end of the subject sees '\0'). */
#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "lib_impl.h"
#include "lua_pos.h"
#include "sandbox_impl.h"

#define ESC '%'
#define MAX_CAPTURES 32   /* LUA_MAXCAPTURES */
#define MAX_DEPTH 200     /* nested matcher calls per attempt: "pattern too complex" */
#define CAP_OPEN (-1)     /* a capture not closed yet */
#define CAP_POSITION (-2) /* a position capture `()` */

typedef struct capture {
    const char *at;
    ptrdiff_t len; /* CAP_OPEN, CAP_POSITION or the length */
} capture;

typedef struct matcher {
    const char *src, *src_end; /* the whole subject */
    const char *pat_end;
    lua_State *L;
    int depth;                 /* calls left before "pattern too complex" */
    int level;                 /* captures in use */
    interp__ticker tick;
    capture cap[MAX_CAPTURES];
} matcher;

/* ---- the pattern language ------------------------------------------------------------- */

/* Does byte c belong to class letter cl (%a, %d, ...; an upper-case letter complements)? A
 * letter that names no class stands for itself. */
static int in_class(int c, int cl)
{
    int r;
    switch (cl | 0x20) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    case 'z': r = c == 0; break; /* deprecated in the manual, still there in 5.4 */
    default: return cl == c;
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
static const char *item_end(matcher *m, const char *p)
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
static inline int item_matches(const matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->src_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case ESC: return in_class(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

static const char *match(matcher *m, const char *s, const char *p);

/* %bxy at s: the end of the balanced run, or NULL. */
static const char *match_balance(matcher *m, const char *s, const char *p)
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
static const char *match_greedy(matcher *m, const char *s, const char *p, const char *ep)
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
static const char *match_lazy(matcher *m, const char *s, const char *p, const char *ep)
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

static const char *open_capture(matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->level].at = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *r = match(m, s, p);
    if (!r)
        m->level--;
    return r;
}

static const char *close_capture(matcher *m, const char *s, const char *p)
{
    int i = m->level - 1;
    while (i >= 0 && m->cap[i].len != CAP_OPEN)
        i--;
    if (i < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[i].len = s - m->cap[i].at;
    const char *r = match(m, s, p);
    if (!r)
        m->cap[i].len = CAP_OPEN;
    return r;
}

/* %1-%9: the text of a closed capture again. */
static const char *match_backref(matcher *m, const char *s, int digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->level || m->cap[i].len == CAP_OPEN)
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
static const char *match(matcher *m, const char *s, const char *p)
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
                s = open_capture(m, s, p + 2, CAP_POSITION);
            else
                s = open_capture(m, s, p + 1, CAP_OPEN);
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
                int here = (unsigned char)*s; /* '\0' at the end of the subject */
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
            case '+': s = match_greedy(m, s + 1, p, ep); goto done;
            case '*': s = match_greedy(m, s, p, ep); goto done;
            case '-': s = match_lazy(m, s, p, ep); goto done;
            default: s++; p = ep; continue;
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

/* Capture i of a match s..e (the whole match when there are no captures and i is 0). Pushes a
 * position capture and returns CAP_POSITION; otherwise sets *at and returns the length. */
static ptrdiff_t get_capture(matcher *m, int i, const char *s, const char *e, const char **at)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        *at = s;
        return e - s;
    }
    ptrdiff_t len = m->cap[i].len;
    *at = m->cap[i].at;
    if (len == CAP_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(m->L, (lua_Integer)(m->cap[i].at - m->src) + 1);
    return len;
}

static void push_capture(matcher *m, int i, const char *s, const char *e)
{
    const char *at;
    ptrdiff_t len = get_capture(m, i, s, e, &at);
    if (len != CAP_POSITION)
        lua_pushlstring(m->L, at, (size_t)len);
}

/* Push every capture (or the whole match s..e when there are none and s is given). */
static int push_captures(matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

static void matcher_init(matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp)
{
    m->L = L;
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    interp__ticker_init(&m->tick, L);
}

static inline void matcher_reset(matcher *m)
{
    m->level = 0;
    m->depth = MAX_DEPTH;
}

/* ---- find and match ------------------------------------------------------------------- */

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++) {
        switch (p[i]) {
        case '^': case '$': case '*': case '+': case '?': case '.': case '(': case '[':
        case '%': case '-':
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

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = interp__lua_pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        lua_pushnil(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        interp__ticker t;
        interp__ticker_init(&t, L);
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
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    const char *from = s + init;
    do {
        matcher_reset(&m);
        const char *e = match(&m, from, p);
        if (e) {
            if (find) {
                lua_pushinteger(L, (lua_Integer)(from - s) + 1);
                lua_pushinteger(L, (lua_Integer)(e - s));
                return push_captures(&m, NULL, NULL) + 2;
            }
            return push_captures(&m, from, e);
        }
    } while (from++ < m.src_end && !anchored);
    lua_pushnil(L);
    return 1;
}

static int lib_find(lua_State *L)
{
    return find_or_match(L, 1);
}

static int lib_match(lua_State *L)
{
    return find_or_match(L, 0);
}

/* ---- gmatch --------------------------------------------------------------------------- */

typedef struct gmatch_state {
    const char *next;      /* where the next attempt starts */
    const char *last;      /* end of the last match (an empty match there is skipped) */
    const char *p;
    matcher m;
} gmatch_state;

static int gmatch_step(lua_State *L)
{
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L; /* the iterator may be called from another coroutine */
    interp__ticker_init(&g->m.tick, L);
    for (const char *from = g->next; from <= g->m.src_end; from++) {
        matcher_reset(&g->m);
        const char *e = match(&g->m, from, g->p);
        if (e && e != g->last) {
            g->next = g->last = e;
            return push_captures(&g->m, from, e);
        }
    }
    return 0;
}

static int lib_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = interp__lua_pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls)
        init = ls + 1; /* past the end: no match */
    lua_settop(L, 2); /* the subject and the pattern stay alive as upvalues */
    gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    matcher_init(&g->m, L, s, ls, p, lp);
    g->next = s + init;
    g->last = NULL;
    g->p = p;
    lua_pushcclosure(L, gmatch_step, 3);
    return 1;
}

/* ---- gsub ----------------------------------------------------------------------------- */

/* A replacement string: %0 the whole match, %1-%9 captures, %% a percent sign. */
static void add_template(matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *r = lua_tolstring(m->L, 3, &l);
    const char *pc;
    while ((pc = memchr(r, ESC, l)) != NULL) {
        luaL_addlstring(b, r, (size_t)(pc - r));
        pc++; /* the byte after '%' (Lua's terminating NUL if '%' ends the string) */
        if (*pc == ESC) {
            luaL_addchar(b, ESC);
        } else if (*pc == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)*pc)) {
            const char *at;
            ptrdiff_t len = get_capture(m, *pc - '1', s, e, &at);
            if (len == CAP_POSITION)
                luaL_addvalue(b);
            else
                luaL_addlstring(b, at, (size_t)len);
        } else {
            luaL_error(m->L, "invalid use of '%c' in replacement string", ESC);
        }
        l -= (size_t)(pc + 1 - r);
        r = pc + 1;
    }
    luaL_addlstring(b, r, l);
}

/* Append the replacement of the match s..e; returns whether the text changed. */
static int add_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e, int type)
{
    lua_State *L = m->L;
    if (type == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (type == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_template(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the match */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int lib_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int type = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION ||
                            type == LUA_TTABLE,
                     3, "string/function/table");
    if (interp__state_of(L)->sandbox) /* a replacement calls Lua back: keep the reserve */
        interp__sandbox_check_c_stack(L);
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    const char *from = s, *last = NULL;
    lua_Integer n = 0;
    int changed = 0;
    while (n < max) {
        matcher_reset(&m);
        const char *e = match(&m, from, p);
        if (e && e != last) {
            n++;
            changed |= add_replacement(&m, &b, from, e, type);
            from = last = e;
        } else if (from < m.src_end) {
            luaL_addchar(&b, *from++);
        } else {
            break;
        }
        if (anchored)
            break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, from, (size_t)(m.src_end - from));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

/* ---- rep ------------------------------------------------------------------------------ */

/* Lua's bound on a string this library builds (lstrlib.c's MAXSIZE on 64-bit systems). */
#define MAX_RESULT ((size_t)INT_MAX)

/* string.rep(s, n [, sep]): one copy of s..sep, then doubling copies of what is written, so
 * the work is linear in the result (memory the task owns), and an empty result costs nothing
 * however large n is. */
static int lib_rep(lua_State *L)
{
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (l + lsep < l || l + lsep > MAX_RESULT / (size_t)n)
        return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, total);
    size_t done = l < total ? l : total;
    memcpy(out, s, done);
    if (done < total) {
        size_t k = lsep < total - done ? lsep : total - done;
        memcpy(out + done, sep, k);
        done += k;
    }
    interp__ticker t;
    interp__ticker_init(&t, L);
    while (done < total) { /* the text is periodic: a copy of its start continues it */
        size_t k = done < total - done ? done : total - done;
        memcpy(out + done, out, k);
        done += k;
        interp__tick(&t, (long)(k >> 12) + 1);
    }
    luaL_pushresultsize(&b, total);
    return 1;
}

/* ---- installation --------------------------------------------------------------------- */

/* Every profile gets these (the interrupt reaches them in trusted code too). gsub, which calls
 * Lua back, keeps the sandbox's C stack reserve (sandbox_bounds.c) in the sandbox. */
void interp__lib_string(lua_State *L)
{
    static const luaL_Reg fns[] = {{"find", lib_find},   {"match", lib_match},
                                   {"gmatch", lib_gmatch}, {"gsub", lib_gsub},
                                   {"rep", lib_rep},     {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
