/* lua_match.h - Lua 5.4's pattern matching (the manual's section 6.4.1) on any run of bytes,
 * interruptible: the one matcher of the interruptible string.find/match/gmatch/gsub
 * (interp/lib_string.c) and of frozen buffers' find/match/gmatch (msg/frozen_buf.c), which
 * match in place in a buffer's bytes.
 *
 * Same results and error messages as Lua 5.4's own functions: the matcher explores the same
 * alternatives in the same order, so the first match found is the same, and it bounds its
 * recursion as Lua does (200 nested calls: "pattern too complex"), so a hostile pattern never
 * takes more C stack than string.find would. The subject needs no byte past its end (a
 * frontier at the end sees '\0', as the manual says); the pattern is a Lua string (its
 * terminating NUL is read).
 *
 * Ticks: Lua's matcher backtracks inside C, where no hook reaches, and a pattern of a few bytes
 * can make it run for hours. So every call of the matcher, every pattern byte it goes through
 * (counted when the call returns: one call is linear in the pattern), each test of a long set
 * by a greedy item (its length), every subject byte a greedy item or %b scans (times the
 * item's length), and 1/16 of the bytes a back-reference or a plain find compares are ticks;
 * every INTERP__TICKS ticks the ticker calls its poll function (interp/: the cancellation
 * poll, which may raise). The time between two polls is bounded whatever the pattern, the
 * subject or the backtracking. */
#ifndef INTERP_LUA_MATCH_H
#define INTERP_LUA_MATCH_H

#include <stddef.h>

#include <lua.h>

#define INTERP__TICKS 1024

/* Counts work done inside C and polls every INTERP__TICKS ticks. */
typedef struct interp__ticker {
    lua_State *L;
    void (*poll)(lua_State *L); /* may raise (a Lua error: longjmp); NULL: never polls */
    long left;                  /* ticks until the next poll */
} interp__ticker;

static inline void interp__ticker_start(interp__ticker *t, lua_State *L, void (*poll)(lua_State *))
{
    t->L = L;
    t->poll = poll;
    t->left = INTERP__TICKS;
}

/* The slow path of interp__tick. */
static inline void interp__ticker_look(interp__ticker *t)
{
    t->left = INTERP__TICKS;
    if (t->poll)
        t->poll(t->L);
}

/* Count `cost` ticks of work; may raise through the poll function. */
static inline void interp__tick(interp__ticker *t, long cost)
{
    t->left -= cost;
    if (t->left <= 0)
        interp__ticker_look(t);
}

#define INTERP__MAX_CAPTURES 32 /* LUA_MAXCAPTURES */

typedef struct interp__capture {
    const char *at;
    ptrdiff_t len; /* INTERP__CAP_OPEN, INTERP__CAP_POSITION or the length */
} interp__capture;

enum { INTERP__CAP_OPEN = -1, INTERP__CAP_POSITION = -2 };

typedef struct interp__matcher {
    const char *src, *src_end; /* the whole subject */
    const char *pat_end;
    lua_State *L;
    int depth; /* calls left before "pattern too complex" */
    int level; /* captures in use */
    interp__ticker tick;
    interp__capture cap[INTERP__MAX_CAPTURES];
} interp__matcher;

/* Match the subject s[0..ls) against the pattern p[0..lp) (a Lua string: '^' already taken
 * off by the caller when anchored). Errors of the pattern raise Lua's messages. */
void interp__matcher_init(interp__matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                          size_t lp, void (*poll)(lua_State *));
/* One attempt at s (inside the subject, or at its end): the end of the match, or NULL. Resets
 * the captures and the depth first. */
const char *interp__match_at(interp__matcher *m, const char *s, const char *p);
/* Capture i of the match s..e (the whole match when there are no captures and i is 0): pushes
 * a position capture and returns INTERP__CAP_POSITION; otherwise sets *at, returns the length. */
ptrdiff_t interp__match_capture(interp__matcher *m, int i, const char *s, const char *e,
                                const char **at);
/* Push capture i (as interp__match_capture says), always as one Lua value. */
void interp__match_push_capture(interp__matcher *m, int i, const char *s, const char *e);
/* Push every capture (or the whole match s..e when there are none and s is not NULL); returns
 * how many. */
int interp__match_push_captures(interp__matcher *m, const char *s, const char *e);

/* string.find (find != 0) or string.match on the subject s[0..ls), with the pattern, init and
 * plain at stack indices 2, 3, 4 of L (checked as Lua does); pushes the results, returns how
 * many. */
int interp__lua_find(lua_State *L, const char *s, size_t ls, int find, void (*poll)(lua_State *));

/* string.gmatch's state: the subject and pattern must stay alive (and unchanged) as long as it
 * is used (the caller keeps them, e.g. as upvalues of the iterator). */
typedef struct interp__gmatch {
    const char *next; /* where the next attempt starts */
    const char *last; /* end of the last match (an empty match there is skipped) */
    const char *p;
    interp__matcher m;
} interp__gmatch;

/* Set up g for string.gmatch(s, p, init): the pattern and init at stack indices 2 and 3. */
void interp__gmatch_init(interp__gmatch *g, lua_State *L, const char *s, size_t ls,
                         void (*poll)(lua_State *));
/* The next match, from L (the iterator may be called from another coroutine): pushes its
 * captures and returns how many, or 0 at the end. */
int interp__gmatch_step(interp__gmatch *g, lua_State *L);

#endif
