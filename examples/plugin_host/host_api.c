/* host_api.c - the `host` library of plugin_host: C functions of the game called by sandboxed
 * plugin scripts on the pool's worker threads, several at the same time.
 *
 *   host.world()      -> {{id =, x =, y =, hp =}, ...}  a copy of the world (read-only data)
 *   host.log(text)    the game's log (buffered under the game's lock, printed by the host)
 *   host.rand(n)      -> 1..n from the game's seeded generator (under the game's lock)
 *   host.spawn(x, y)  asks the host for a new entity at (x, y), -10..10: the request is queued
 *                     to the host through a channel and applied after the frame
 *
 * Each state finds the game through a light userdata that game_on_state puts in its registry:
 * no C global, no lua_State kept, and nothing here blocks (the log lock is held for a copy). */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "host_api.h"

static const char game_key = 0; /* registry key of the game (light userdata) */

static game *game_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &game_key);
    game *g = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!g)
        luaL_error(L, "host: no game in this state");
    return g;
}

static void set_int(lua_State *L, const char *k, long long v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static int host_world(lua_State *L)
{
    game *g = game_of(L);
    lua_createtable(L, g->n_entities, 0);
    for (int i = 0; i < g->n_entities; i++) {
        lua_createtable(L, 0, 4);
        set_int(L, "id", g->world[i].id);
        set_int(L, "x", g->world[i].x);
        set_int(L, "y", g->world[i].y);
        set_int(L, "hp", g->world[i].hp);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int host_log(lua_State *L)
{
    game *g = game_of(L);
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    if (len > MAX_LOG_LINE)
        len = MAX_LOG_LINE;
    pthread_mutex_lock(&g->mu);
    if (g->n_log < MAX_LOG_LINES) {
        memcpy(g->log[g->n_log], text, len);
        g->log[g->n_log][len] = '\0';
        g->n_log++;
    } else {
        g->dropped_log++;
    }
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static int host_rand(lua_State *L)
{
    game *g = game_of(L);
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 1 << 30, 1, "must be 1..2^30");
    pthread_mutex_lock(&g->mu);
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    uint64_t r = g->rng * 0x2545F4914F6CDD1DULL;
    pthread_mutex_unlock(&g->mu);
    lua_pushinteger(L, (lua_Integer)(r % (uint64_t)n) + 1);
    return 1;
}

static int host_spawn(lua_State *L)
{
    game *g = game_of(L);
    lua_Integer x = luaL_checkinteger(L, 1), y = luaL_checkinteger(L, 2);
    luaL_argcheck(L, x >= -10 && x <= 10, 1, "must be -10..10");
    luaL_argcheck(L, y >= -10 && y <= 10, 2, "must be -10..10");
    interp_msg *m = NULL;
    if (interp_msg_pack(&m, "I, I", (int64_t)x, (int64_t)y) != INTERP_OK)
        return luaL_error(L, "host.spawn: out of memory");
    int rc = interp_chan_send(g->spawns, m, 0); /* never blocks a worker: a full queue refuses */
    if (rc != INTERP_OK) {
        interp_msg_free(m); /* on error the message is still ours */
        return luaL_error(L, "host.spawn: %s",
                          rc == INTERP_ERR_AGAIN ? "the spawn queue is full" : interp_strerror(rc));
    }
    return 0;
}

static int open_host(lua_State *L)
{
    static const luaL_Reg fns[] = {{"world", host_world},
                                   {"log", host_log},
                                   {"rand", host_rand},
                                   {"spawn", host_spawn},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

const interp_host_lib GAME_LIBS[1] = {{.name = "host", .open = open_host, .sandbox = true}};

void game_on_state(lua_State *L, void *ud)
{
    lua_pushlightuserdata(L, ud);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &game_key);
}

int game_init(game *g, int n, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    if (n > MAX_ENTITIES)
        n = MAX_ENTITIES;
    for (int i = 0; i < n; i++)
        g->world[i] = (entity){i + 1, (i * 7) % 21 - 10, (i * 13) % 21 - 10, 50 + i};
    g->n_entities = n;
    g->next_id = n + 1;
    g->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    pthread_mutex_init(&g->mu, NULL);
    return interp_chan_create(16, 64, &g->spawns) == INTERP_OK ? 0 : -1;
}

void game_free(game *g)
{
    interp_chan_release(g->spawns);
    pthread_mutex_destroy(&g->mu);
}

void game_flush_log(game *g)
{
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < g->n_log; i++)
        printf("log: %s\n", g->log[i]);
    g->n_log = 0;
    pthread_mutex_unlock(&g->mu);
}

int game_apply_spawns(game *g)
{
    int n = 0;
    interp_msg *m;
    while (interp_chan_recv(g->spawns, 0, &m) == INTERP_OK) {
        int64_t x, y;
        if (interp_msg_unpack(m, "I, I", &x, &y) == INTERP_OK && g->n_entities < MAX_ENTITIES) {
            entity *e = &g->world[g->n_entities++];
            *e = (entity){g->next_id++, x, y, 100};
            printf("spawned entity %lld at (%lld, %lld)\n", e->id, e->x, e->y);
            n++;
        }
        interp_msg_free(m);
    }
    return n;
}
