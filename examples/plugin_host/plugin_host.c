/* plugin_host.c - a game host running untrusted plugin scripts in parallel, sandboxed, one
 * context per plugin.
 *
 *   plugin_host PLUGIN_DIR [--frames N] [--budget-ms MS] [--memory-limit BYTES]
 *               [--fix-looper-at F] [--seed S]
 *
 * Every *.lua file in PLUGIN_DIR is a plugin defining `on_tick(state, frame)` that returns
 * `actions, state`. Each plugin lives in a context of its own (core/interp_ctx.h), named after
 * it: its file is loaded once, when the context is made; its state stays inside the context
 * (a driver appended to the file keeps what on_tick returned and passes it back next frame:
 * nothing is copied to the host and back); it has its own memory limit (--memory-limit, per
 * plugin: a memory bomb hits its own limit, not a worker's shared one) and its own deadline
 * (the frame budget). Each frame the host calls every enabled plugin's context at once; the
 * pool's threads run them in parallel; then the host applies the returned actions (move, heal:
 * all or nothing, so a plugin that fails mid-tick changes nothing).
 *
 * The game's C API (host_api.c): every state opens the host library `host` (allowed in the
 * sandbox), whose functions find the game through a light userdata that on_state put in the
 * registry: host.world() reads the world (read-only while a frame runs), host.log(text) writes
 * the game's log and host.rand(n) draws from the game's seeded generator (both under the
 * game's lock), host.spawn(x, y) queues a request to the host through a channel, applied after
 * the frame. Contexts get the pool's host libraries and on_state.
 *
 * Isolation: a sandboxed context reaches only what its host granted it; this host grants
 * nothing, so a plugin cannot call another plugin's context or open a channel, even knowing
 * the names (snoop tries).
 *
 * Offenders: a plugin that misses the frame deadline (an infinite loop) or hits its memory
 * limit is disabled at once and its context closed (its state freed); a plugin that raises
 * keeps its context but restarts from a fresh state, and is disabled after 3 errors in a row.
 * Hot reload: a changed plugin file is run in the plugin's context (`exec`: new code, the
 * state kept) when the plugin is enabled, or gets a fresh context when it was disabled.
 * --fix-looper-at F rewrites looper.lua in PLUGIN_DIR at frame F with a well-behaved version,
 * to show a disabled plugin coming back after a fix on disk. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "host_api.h"
#include "interp_ctx.h"
#include "interp_pool.h"

#define MAX_PLUGINS 64
#define ENTITIES 16
#define MAX_STRIKES 3

typedef struct plugin {
    char name[64];
    char path[512];
    struct timespec mtime;
    char *source;    /* the plugin's file followed by the driver */
    interp_ctx *ctx; /* its context while enabled (NULL: none) */
    bool enabled;
    int strikes; /* errors in a row */
    int ticks_ok;
    interp_future *pending;
} plugin;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* The driver: the state stays in the context, in a local of this chunk's closures. */
    static const char call[] = "\nlocal state\n"
                               "function __host_tick(frame)\n"
                               "  local actions\n"
                               "  actions, state = on_tick(state, frame)\n"
                               "  return actions\n"
                               "end\n"
                               "function __host_reset() state = nil end\n"
                               "function __host_state() return state end\n";
    char *s = n >= 0 ? malloc((size_t)n + sizeof call) : NULL;
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n)
        memcpy(s + n, call, sizeof call);
    else {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

static interp_pool *the_pool;
static size_t plugin_memory_limit;
static double plugin_timeout;

/* A fresh context for p, its file loaded. */
static bool plugin_start(plugin *p)
{
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.name = p->name;
    o.init_source = p->source;
    o.sandbox = INTERP_SANDBOX_SAFE;
    o.memory_limit = plugin_memory_limit; /* this plugin's own */
    o.timeout = plugin_timeout;           /* each call: the frame budget */
    char *err = NULL;
    if (interp_ctx_create(the_pool, &o, &p->ctx, &err) != INTERP_OK) {
        int line_len = err ? (int)strcspn(err, "\n") : 0;
        printf("error in %s: %.*s\n", p->name, line_len, err ? err : "cannot load");
        free(err);
        p->ctx = NULL;
        return false;
    }
    return true;
}

/* (Re)load a plugin's file: in its context when it runs (new code, its state kept), else in
 * a fresh context; enabled again. */
static bool plugin_load(plugin *p)
{
    struct stat st;
    char *src = stat(p->path, &st) == 0 ? read_file(p->path) : NULL;
    if (!src) {
        fprintf(stderr, "plugin %s: cannot read %s: %s\n", p->name, p->path, strerror(errno));
        return false;
    }
    free(p->source);
    p->source = src;
    p->mtime = st.st_mtim;
    p->strikes = 0;
    if (p->ctx && p->enabled) {
        interp_future *f = NULL;
        int rc = interp_ctx_exec(p->ctx, p->source, 0, &f);
        if (rc == INTERP_OK)
            rc = interp_future_wait(f, INTERP_FOREVER) == INTERP_OK ? interp_future_status(f) : rc;
        if (rc != INTERP_OK)
            printf("error in %s: the new file failed: %s\n", p->name,
                   f && interp_future_error(f) ? interp_future_error(f) : interp_strerror(rc));
        interp_future_release(f);
        return rc == INTERP_OK;
    }
    interp_ctx_close(p->ctx);
    p->ctx = NULL;
    p->enabled = plugin_start(p);
    return p->enabled;
}

static bool plugin_changed(const plugin *p)
{
    struct stat st;
    return stat(p->path, &st) == 0 &&
           (st.st_mtim.tv_sec != p->mtime.tv_sec || st.st_mtim.tv_nsec != p->mtime.tv_nsec);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const plugin *)a)->name, ((const plugin *)b)->name);
}

static int load_plugins(const char *dir, plugin *ps)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "plugin_host: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_PLUGINS) {
        size_t len = strlen(e->d_name);
        if (len < 5 || len >= sizeof ps[n].name + 4 || strcmp(e->d_name + len - 4, ".lua"))
            continue;
        memset(&ps[n], 0, sizeof ps[n]);
        snprintf(ps[n].name, sizeof ps[n].name, "%.*s", (int)(len - 4), e->d_name);
        snprintf(ps[n].path, sizeof ps[n].path, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(ps, (size_t)n, sizeof *ps, compare_names);
    return n;
}

static bool key_is(const interp_msg_value *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == INTERP_MSG_STR && k->as.str.len == n && memcmp(k->as.str.ptr, s, n) == 0;
}

/* Apply one action table; malformed actions are ignored (and counted). */
static bool apply_action(interp_msg_value *action, game *g)
{
    if (action->type != INTERP_MSG_MAP)
        return false;
    char op[16] = "";
    long long id = -1, dx = 0, dy = 0, amount = 0;
    interp_msg_iter it = action->as.seq.items;
    interp_msg_value k, v;
    while (interp_msg_next(&it, &k) && interp_msg_next(&it, &v)) {
        if (key_is(&k, "op") && v.type == INTERP_MSG_STR && v.as.str.len < sizeof op)
            memcpy(op, v.as.str.ptr, v.as.str.len), op[v.as.str.len] = 0;
        else if (v.type == INTERP_MSG_INT) {
            if (key_is(&k, "id"))
                id = v.as.i;
            if (key_is(&k, "dx"))
                dx = v.as.i;
            if (key_is(&k, "dy"))
                dy = v.as.i;
            if (key_is(&k, "amount"))
                amount = v.as.i;
        }
    }
    if (id < 1 || id > g->n_entities)
        return false;
    entity *e = &g->world[id - 1];
    if (!strcmp(op, "move") && dx >= -1 && dx <= 1 && dy >= -1 && dy <= 1) {
        e->x += dx;
        e->y += dy;
        return true;
    }
    if (!strcmp(op, "heal") && amount > 0 && amount <= 100) {
        e->hp = e->hp + amount > 100 ? 100 : e->hp + amount;
        return true;
    }
    return false;
}

static void disable(plugin *p, const char *why)
{
    p->enabled = false;
    interp_ctx_stats st;
    if (interp_ctx_stats_get(p->ctx, &st) == INTERP_OK)
        printf("disabled %s: %s (its context: peak %zu KiB of its own %zu KiB)\n", p->name, why,
               st.memory_peak / 1024, plugin_memory_limit / 1024);
    interp_ctx_close(p->ctx); /* its state is freed */
    p->ctx = NULL;
}

/* Take a finished task's outcome: apply its actions, keep its state, or punish the plugin. */
static void collect(plugin *p, game *g, int *ignored)
{
    const interp_msg *res = NULL;
    int rc = interp_future_result(p->pending, INTERP_FOREVER, &res);
    if (rc == INTERP_ERR_TIMEOUT) {
        disable(p, "missed the frame deadline (timed out)");
    } else if (rc == INTERP_ERR_NOMEM) {
        disable(p, "hit its memory limit");
    } else if (rc != INTERP_OK) {
        const char *err = interp_future_error(p->pending);
        int line_len = err ? (int)strcspn(err, "\n") : 0;
        printf("error in %s: %.*s\n", p->name, line_len, err ? err : interp_strerror(rc));
        /* restart: the next frame starts from a fresh state (a post runs before it) */
        interp_task reset = {.fn = {.kind = INTERP_FN_NAME, .text = "__host_reset"}};
        interp_ctx_post(p->ctx, &reset);
        if (++p->strikes >= MAX_STRIKES)
            disable(p, "3 errors in a row");
    } else {
        p->strikes = 0;
        p->ticks_ok++;
        interp_msg_iter it = interp_msg_iter_init(res);
        interp_msg_value actions;
        if (interp_msg_next(&it, &actions) && actions.type == INTERP_MSG_ARRAY) {
            interp_msg_iter a = actions.as.seq.items;
            interp_msg_value action;
            while (interp_msg_next(&a, &action))
                if (!apply_action(&action, g))
                    (*ignored)++;
        }
    }
    interp_future_release(p->pending);
    p->pending = NULL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char FIXED_LOOPER[] =
    "-- looper, fixed on disk while the game runs: now it returns promptly.\n"
    "function on_tick(state, frame)\n"
    "  state = (state or 0) + 1\n"
    "  return {}, state\n"
    "end\n";

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int frames = 60, fix_looper_at = -1;
    double budget_ms = 20;
    size_t memory_limit = 8u << 20;
    unsigned long long seed = 42;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--budget-ms") && i + 1 < argc)
            budget_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--memory-limit") && i + 1 < argc)
            memory_limit = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--fix-looper-at") && i + 1 < argc)
            fix_looper_at = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "usage: plugin_host PLUGIN_DIR [--frames N] [--budget-ms MS] "
                            "[--memory-limit BYTES] [--fix-looper-at FRAME] [--seed S]\n");
            return 2;
        }
    }
    if (!dir || frames < 1 || budget_ms <= 0) {
        fprintf(stderr, "plugin_host: need a plugin folder, frames >= 1, budget > 0\n");
        return 2;
    }
    static plugin ps[MAX_PLUGINS];
    int n = load_plugins(dir, ps);
    if (n <= 0) {
        fprintf(stderr, "plugin_host: no plugins in %s\n", dir);
        return 1;
    }

    static game g; /* outlives the pool: its functions may run until interp_pool_destroy */
    if (game_init(&g, ENTITIES, seed) != 0) {
        fprintf(stderr, "plugin_host: cannot create the game\n");
        return 1;
    }
    interp_pool_options o = interp_pool_defaults();
    o.host_libs = GAME_LIBS;
    o.n_host_libs = 1;
    o.on_state = game_on_state;
    o.on_state_ud = &g;
    o.sandbox = INTERP_SANDBOX_SAFE;
    o.memory_limit = memory_limit;
    o.task_timeout = budget_ms / 1000.0;
    o.cancel_grace = 0.002;
    o.prestart = true; /* every worker ready before the first frame: no thread start in a frame */
    interp_pool *pool;
    char *err = NULL;
    if (interp_pool_create(&pool, &o, &err) != INTERP_OK) {
        fprintf(stderr, "plugin_host: %s\n", err ? err : "cannot create pool");
        free(err);
        return 1;
    }
    the_pool = pool;
    plugin_memory_limit = memory_limit;
    plugin_timeout = budget_ms / 1000.0;
    for (int i = 0; i < n; i++)
        plugin_load(&ps[i]); /* one context each, its file loaded once */

    double *frame_ms = calloc((size_t)frames, sizeof *frame_ms);
    int *offending = calloc((size_t)frames, sizeof *offending);
    int ignored = 0, failed_submits = 0;
    for (int f = 1; f <= frames; f++) {
        if (f == fix_looper_at) {
            char path[600];
            snprintf(path, sizeof path, "%s/looper.lua", dir);
            FILE *lf = fopen(path, "w");
            if (lf) {
                fputs(FIXED_LOOPER, lf);
                fclose(lf);
            }
        }
        for (int i = 0; i < n; i++)
            if (plugin_changed(&ps[i]) && plugin_load(&ps[i]))
                printf("reloaded %s at frame %d\n", ps[i].name, f);

        double t0 = now();
        for (int i = 0; i < n; i++) {
            if (!ps[i].enabled)
                continue;
            interp_msg *args = interp_msg_int(f);
            if (!args ||
                interp_ctx_call(ps[i].ctx, "__host_tick", args, &ps[i].pending) != INTERP_OK) {
                interp_msg_free(args);
                failed_submits++;
            }
        }
        /* Every task of the frame ends before any action is applied: host.world reads the
         * world without a lock, which holds only while no task runs and the host writes. */
        for (int i = 0; i < n; i++)
            if (ps[i].pending)
                interp_future_wait(ps[i].pending, INTERP_FOREVER);
        for (int i = 0; i < n; i++) {
            if (!ps[i].pending)
                continue;
            bool was_enabled = ps[i].enabled;
            collect(&ps[i], &g, &ignored);
            if (was_enabled && !ps[i].enabled)
                offending[f - 1] = 1;
        }
        game_flush_log(&g);
        game_apply_spawns(&g);
        frame_ms[f - 1] = (now() - t0) * 1000.0;
    }

    /* Frame times of the frames in which no plugin had to be disabled. */
    double *clean = calloc((size_t)frames, sizeof *clean);
    int nclean = 0;
    for (int f = 0; f < frames; f++)
        if (!offending[f])
            clean[nclean++] = frame_ms[f];
    qsort(clean, (size_t)nclean, sizeof *clean, compare_doubles);
    for (int i = 0; i < n; i++) {
        char *text = NULL;
        const interp_msg *state = NULL;
        interp_future *f = NULL;
        interp_ctx_stats cs = {0};
        if (ps[i].ctx && interp_ctx_call(ps[i].ctx, "__host_state", NULL, &f) == INTERP_OK &&
            interp_future_result(f, INTERP_FOREVER, &state) == INTERP_OK && state &&
            interp_msg_count(state) > 0)
            interp_msg_to_text(state, &text);
        interp_future_release(f);
        interp_ctx_stats_get(ps[i].ctx, &cs);
        printf("%s: %s, %d good ticks, memory %zu KiB (peak %zu)%s%s\n", ps[i].name,
               ps[i].enabled ? "enabled" : "disabled", ps[i].ticks_ok, cs.memory_in_use / 1024,
               cs.memory_peak / 1024, text ? ", state " : "", text ? text : "");
        free(text);
    }
    interp_pool_stats st;
    interp_pool_get_stats(pool, &st);
    printf("frames: %d, budget %.1f ms; frames without an offender: %d, median %.3f ms, "
           "p95 %.3f ms, max %.3f ms\n",
           frames, budget_ms, nclean, nclean ? clean[nclean / 2] : 0.0,
           nclean ? clean[nclean * 95 / 100] : 0.0, nclean ? clean[nclean - 1] : 0.0);
    printf("calls: %llu done, %llu failed (%llu timed out), states replaced %llu; "
           "ignored actions %d, failed calls %d\n",
           (unsigned long long)st.done, (unsigned long long)st.failed,
           (unsigned long long)st.timed_out, (unsigned long long)st.states_replaced, ignored,
           failed_submits);
    printf("entities: %d (%lld spawned), log lines dropped: %ld\n", g.n_entities,
           g.next_id - 1 - ENTITIES, g.dropped_log);
    for (int i = 0; i < n; i++) {
        interp_ctx_close(ps[i].ctx);
        free(ps[i].source);
    }
    interp_pool_destroy(pool);
    game_free(&g);
    free(frame_ms);
    free(offending);
    free(clean);
    return failed_submits ? 1 : 0;
}
