/* frozen_lua_thaw.c - interp.thaw: a frozen value straight into ordinary Lua values.
 *
 * Every table and every long string is made once, however many places of the value hold it
 * (an identity map keyed by the object's address), so shared parts and cycles survive and a
 * thaw costs about the value's own size in the thawing state's heap, where its memory limit
 * counts it. It used to go through a message (interp_frozen_to_msg), which copies a string at
 * every place: 1000 places of one 1 MiB string, frozen under an 8 MiB limit, made the library
 * allocate 1 GiB outside the heap, and a state without a limit (the host's) took it all.
 * Nested values of other roots are copied too; buffers become strings. Recursive, bounded by
 * MAX_DEPTH (the depth a frozen value built from a message may have). */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>

#include "frozen_impl.h"

enum { MAX_DEPTH = 1000, SHORT_STRING = 40 /* Lua interns these: no map needed */ };

/* Push what the map holds for p and return true, or push nothing and return false. */
static bool push_made(lua_State *L, int made, const void *p)
{
    lua_pushlightuserdata(L, (void *)p);
    if (lua_rawget(L, made) != LUA_TNIL)
        return true;
    lua_pop(L, 1);
    return false;
}

/* The value at the top is what p became. */
static void remember(lua_State *L, int made, const void *p)
{
    lua_pushlightuserdata(L, (void *)p);
    lua_pushvalue(L, -2);
    lua_rawset(L, made);
}

static void push_bytes(lua_State *L, int made, const void *p, const char *s, size_t len)
{
    if (len > SHORT_STRING && push_made(L, made, p))
        return;
    lua_pushlstring(L, s, len);
    if (len > SHORT_STRING)
        remember(L, made, p);
}

static void push_value(lua_State *L, int made, const fz_val *v, int depth);

static void push_table(lua_State *L, int made, const fz_table *tb, int depth)
{
    if (push_made(L, made, tb))
        return;
    if (depth >= MAX_DEPTH)
        luaL_error(L, "cannot thaw: nested more than %d levels", MAX_DEPTH);
    luaL_checkstack(L, 8, "cannot thaw");
    lua_createtable(L, tb->asize > INT_MAX ? INT_MAX : (int)tb->asize,
                    tb->hcount > INT_MAX ? INT_MAX : (int)tb->hcount);
    remember(L, made, tb);
    for (uint32_t i = 0; i < tb->asize; i++) {
        fz_val v = interp__fz_at(tb, i);
        push_value(L, made, &v, depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    for (uint32_t i = 0; i < tb->hcap; i++) {
        const fz_slot *sl = &tb->hash[i];
        if (sl->key.type == FZ_NIL)
            continue;
        push_value(L, made, &sl->key, depth + 1);
        push_value(L, made, &sl->val, depth + 1);
        lua_rawset(L, -3);
    }
}

static void push_value(lua_State *L, int made, const fz_val *v, int depth)
{
    switch (v->type) {
    case FZ_NIL:
    case FZ_FALSE:
    case FZ_TRUE:
    case FZ_INT:
    case FZ_FLOAT:
        interp__fz_push_scalar(L, v);
        return;
    case FZ_STR: /* a long string is made once however often it appears */
        push_bytes(L, made, v->u.s, v->u.s->data, v->u.s->len);
        return;
    default:
        if (v->u.o->kind == FZ_BUFFER) {
            const fz_buffer *b = (const fz_buffer *)v->u.o;
            push_bytes(L, made, b, b->data, b->len);
        } else {
            push_table(L, made, (const fz_table *)v->u.o, depth);
        }
    }
}

void interp__frozen_lua_thaw(lua_State *L, const interp_frozen *o)
{
    luaL_checkstack(L, 4, "cannot thaw");
    lua_newtable(L); /* the identity map */
    int made = lua_gettop(L);
    fz_val v = {.type = FZ_OBJ, .u.o = o};
    push_value(L, made, &v, 0);
    lua_remove(L, made);
}
