/* host_api.h - the game's C API for its plugins: the `host` library every worker state of
 * plugin_host opens (host.world, host.log, host.rand, host.spawn), and the game data behind
 * it. */
#ifndef PLUGIN_HOST_API_H
#define PLUGIN_HOST_API_H

#include <pthread.h>
#include <stdint.h>

#include "interp_pool.h"

#define MAX_ENTITIES 64
#define MAX_LOG_LINES 256 /* per frame; more are dropped (and counted) */
#define MAX_LOG_LINE 200  /* bytes kept of one line */

typedef struct entity {
    long long id, x, y, hp;
} entity;

/* Everything the host functions reach, through one light userdata in each state's registry.
 * Two kinds of access, the two safe patterns of interp_host_lib's contract:
 * - read-only while tasks run: the world (the host changes it only between frames, after every
 *   task of the frame has ended, and before it submits the next ones);
 * - behind the game's lock: the log lines and the random generator, which every worker may
 *   touch at once;
 * and the spawn requests, which go to the host through a channel (thread-safe itself). */
typedef struct game {
    entity world[MAX_ENTITIES];
    int n_entities;
    long long next_id;
    interp_chan *spawns; /* requests {x, y} from host.spawn, applied by the host */
    pthread_mutex_t mu;  /* guards what follows */
    uint64_t rng;        /* the game's seeded generator (xorshift64*) */
    char log[MAX_LOG_LINES][MAX_LOG_LINE + 1];
    int n_log;
    long dropped_log;
} game;

/* Initialise g (world of n entities, generator seeded with seed, spawn channel). 0 or -1. */
int game_init(game *g, int n, uint64_t seed);
void game_free(game *g);
/* The host library list and on_state callback for interp_pool_options (ud: the game). */
extern const interp_host_lib GAME_LIBS[1];
void game_on_state(struct lua_State *L, void *ud);
/* Host thread, between frames: print and clear the log lines; add the requested entities.
 * Returns how many entities were spawned. */
void game_flush_log(game *g);
int game_apply_spawns(game *g);

#endif
