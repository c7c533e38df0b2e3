/* hostlib.c - what the host adds to every new state, after the library profile and before
 * the initializer: its C libraries (interp_host_lib), the package paths of the full profile,
 * and its on_state callback. The shared copy of that configuration is made here too.
 *
 * Full profile: each library's value is the global `name` and package.loaded[name] (so
 * require(name) returns it without searching package.cpath).
 * Sandbox: only the libraries marked `sandbox` are opened; a table value becomes a read-only
 * proxy (as the standard libraries: one task must not replace a function every later task
 * calls); it is the global `name` and what the sandbox's own require(name) returns. That
 * require is installed only when at least one library is allowed, and finds nothing else. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "interp_impl.h"
#include "interp_limits.h"
#include "sandbox_impl.h"

int interp__hostlibs_copy(interp_shared *sh, const interp_config *cfg, char **err)
{
    if (cfg->n_host_libs && !cfg->host_libs) {
        *err = interp__strdupf("n_host_libs is %zu but host_libs is NULL", cfg->n_host_libs);
        return INTERP_ERR_INVALID;
    }
    if (cfg->n_host_libs > INTERP_HOST_LIBS_MAX) {
        *err = interp__strdupf("at most %d host libraries", INTERP_HOST_LIBS_MAX);
        return INTERP_ERR_INVALID;
    }
    for (size_t i = 0; i < cfg->n_host_libs; i++) {
        const interp_host_lib *h = &cfg->host_libs[i];
        if (!h->name || !h->name[0] || strlen(h->name) > INTERP_HOST_LIB_MAX_NAME) {
            *err = interp__strdupf("host library %zu: the name must be 1..%d bytes", i,
                                   INTERP_HOST_LIB_MAX_NAME);
            return INTERP_ERR_INVALID;
        }
        if (!h->open) {
            *err = interp__strdupf("host library '%s' has no open function", h->name);
            return INTERP_ERR_INVALID;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->host_libs[j].name, h->name) == 0) {
                *err = interp__strdupf("host library '%s' is given twice", h->name);
                return INTERP_ERR_INVALID;
            }
        }
    }
    if (cfg->n_host_libs) {
        sh->host_libs = interp__malloc(cfg->n_host_libs * sizeof *sh->host_libs);
        if (!sh->host_libs)
            goto err_nomem;
        memset(sh->host_libs, 0, cfg->n_host_libs * sizeof *sh->host_libs);
        sh->n_host_libs = cfg->n_host_libs;
        for (size_t i = 0; i < cfg->n_host_libs; i++) {
            const interp_host_lib *h = &cfg->host_libs[i];
            sh->host_libs[i].name = interp__strndup(h->name, strlen(h->name));
            if (!sh->host_libs[i].name)
                goto err_nomem;
            sh->host_libs[i].open = h->open;
            sh->host_libs[i].sandbox = h->sandbox;
        }
    }
    sh->on_state = cfg->on_state;
    sh->on_state_ud = cfg->on_state_ud;
    if (cfg->package_path &&
        !(sh->package_path = interp__strndup(cfg->package_path, strlen(cfg->package_path))))
        goto err_nomem;
    if (cfg->package_cpath &&
        !(sh->package_cpath = interp__strndup(cfg->package_cpath, strlen(cfg->package_cpath))))
        goto err_nomem;
    return INTERP_OK;

err_nomem: /* the caller's interp__shared_destroy frees what was copied */
    *err = interp__strdupf("out of memory");
    return INTERP_ERR_NOMEM;
}

void interp__hostlibs_free(interp_shared *sh)
{
    for (size_t i = 0; i < sh->n_host_libs; i++)
        free(sh->host_libs[i].name);
    free(sh->host_libs);
    free(sh->package_path);
    free(sh->package_cpath);
}

bool interp__hostlibs_wanted(const interp_shared *sh)
{
    return sh->n_host_libs || sh->package_path || sh->package_cpath;
}

/* The sandbox's require: the allowed host libraries (upvalue 1: name -> value), nothing else. */
static int sb_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;
    return luaL_error(L,
                      "module '%s' not found: the sandbox's require finds only the host "
                      "libraries allowed in the sandbox",
                      name);
}

/* Call lib's open with its name (like require); leaves its value on the stack (nil -> true,
 * as require stores it). A failure is raised again with the library's name. */
static void call_open(lua_State *L, const interp__host_lib *lib)
{
    lua_pushcfunction(L, lib->open);
    lua_pushstring(L, lib->name);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        luaL_error(L, "host library '%s' failed: %s", lib->name,
                   msg ? msg : "(error object is not a string)");
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
}

static void set_paths(lua_State *L, const interp_shared *sh)
{
    if (lua_getglobal(L, LUA_LOADLIBNAME) != LUA_TTABLE) { /* no package: nothing to set */
        lua_pop(L, 1);
        return;
    }
    if (sh->package_path) {
        lua_pushstring(L, sh->package_path);
        lua_setfield(L, -2, "path");
    }
    if (sh->package_cpath) {
        lua_pushstring(L, sh->package_cpath);
        lua_setfield(L, -2, "cpath");
    }
    lua_pop(L, 1);
}

/* Protected (lua_pushcfunction'd by state.c with the state as light userdata 1). */
int interp__open_hostlibs(lua_State *L)
{
    interp_state *s = lua_touserdata(L, 1);
    const interp_shared *sh = s->sh;
    if (!s->sandbox)
        set_paths(L, sh);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int loaded = g + 1;
    lua_newtable(L); /* sandbox: what its require finds */
    int allowed = g + 2;
    int n_allowed = 0;
    for (size_t i = 0; i < sh->n_host_libs; i++) {
        const interp__host_lib *lib = &sh->host_libs[i];
        if (s->sandbox && !lib->sandbox)
            continue;
        if (lua_getfield(L, g, lib->name) != LUA_TNIL)
            luaL_error(L, "host library '%s': the state already has a global of that name",
                       lib->name);
        lua_pop(L, 1);
        call_open(L, lib);
        if (s->sandbox) {
            if (lua_type(L, -1) == LUA_TTABLE)
                interp__sandbox_readonly(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, allowed, lib->name);
            n_allowed++;
        } else {
            lua_pushvalue(L, -1);
            lua_setfield(L, loaded, lib->name);
        }
        lua_setfield(L, g, lib->name);
    }
    if (n_allowed) {
        lua_pushvalue(L, allowed);
        lua_pushcclosure(L, sb_require, 1);
        lua_setfield(L, g, "require");
    }
    lua_settop(L, 1);
    return 0;
}

/* Protected, like interp__open_hostlibs. */
int interp__run_on_state(lua_State *L)
{
    interp_state *s = lua_touserdata(L, 1);
    lua_settop(L, 0);
    s->sh->on_state(L, s->sh->on_state_ud);
    return 0;
}
