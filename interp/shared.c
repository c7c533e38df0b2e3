/* shared.c - what every state of a pool shares: a copy of the configuration and the
 * initializer compiled once to bytecode (each new state loads the bytecode; no state parses
 * the initializer again). */
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_impl.h"

typedef struct dump_buf {
    char *data;
    size_t len, cap;
    bool failed;
} dump_buf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    dump_buf *b = ud;
    if (b->len + sz > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + sz)
            cap *= 2;
        char *d = interp__realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return 1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, sz);
    b->len += sz;
    return 0;
}

/* Read a whole file; INTERP_ERR_NOTFOUND / _SYSTEM / _NOMEM with *err set. */
static int read_file(const char *path, char **data, size_t *len, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        *err = interp__strdupf("initializer file '%s': %s", path, strerror(e));
        return e == ENOENT ? INTERP_ERR_NOTFOUND : INTERP_ERR_SYSTEM;
    }
    size_t cap = 4096, n = 0;
    char *buf = interp__malloc(cap);
    int rc = INTERP_OK;
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *more = interp__realloc(buf, cap * 2);
            if (!more) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = more;
            cap *= 2;
        }
    }
    if (!buf) {
        rc = INTERP_ERR_NOMEM;
        *err = interp__strdupf("initializer file '%s': out of memory", path);
    } else if (ferror(f)) {
        rc = INTERP_ERR_SYSTEM;
        *err = interp__strdupf("initializer file '%s': read error", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return rc;
}

/* Compile src in L and keep its bytecode in sh (debug info kept: tracebacks name the
 * initializer's lines). L's stack is left as it was. */
static int compile(lua_State *L, interp_shared *sh, const char *src, size_t len,
                   const char *chunkname, char **err)
{
    int rc = INTERP_OK;
    int st = luaL_loadbufferx(L, src, len, chunkname, "t");
    if (st != LUA_OK) {
        rc = st == LUA_ERRMEM ? INTERP_ERR_NOMEM : INTERP_ERR_SCRIPT;
        const char *msg = lua_tostring(L, -1);
        *err = interp__strdupf("initializer: %s", msg ? msg : "cannot compile");
    } else {
        dump_buf b = {0};
        if (lua_dump(L, dump_writer, &b, 0) != 0 || b.failed) {
            free(b.data);
            rc = INTERP_ERR_NOMEM;
            *err = interp__strdupf("initializer: out of memory");
        } else {
            sh->init_code = b.data;
            sh->init_code_len = b.len;
        }
    }
    lua_pop(L, 1);
    return rc;
}

int interp__shared_new(const interp_config *cfg, interp_shared **out, char **err)
{
    *out = NULL;
    *err = NULL;
    if (!cfg) {
        *err = interp__strdupf("no configuration");
        return INTERP_ERR_INVALID;
    }
    if (cfg->sandbox != INTERP_SANDBOX_NONE && cfg->sandbox != INTERP_SANDBOX_SAFE) {
        *err = interp__strdupf("unknown sandbox profile %d", (int)cfg->sandbox);
        return INTERP_ERR_INVALID;
    }
    if (isnan(cfg->cancel_grace) || cfg->cancel_grace < 0 || cfg->cancel_grace > 3600) {
        *err = interp__strdupf("cancel_grace must be between 0 and 3600 seconds");
        return INTERP_ERR_INVALID;
    }
    if (cfg->init_source && cfg->init_file) {
        *err = interp__strdupf("give init_source or init_file, not both");
        return INTERP_ERR_INVALID;
    }
    interp_shared *sh = interp__malloc(sizeof *sh);
    if (!sh)
        goto err_nomem;
    memset(sh, 0, sizeof *sh);
    sh->sandbox = cfg->sandbox;
    sh->memory_limit = cfg->memory_limit;
    sh->msg_opts = cfg->msg_opts;
    if (sh->sandbox == INTERP_SANDBOX_SAFE)
        sh->msg_opts.allow_functions = false;
    sh->cancel_grace = cfg->cancel_grace > 0 ? cfg->cancel_grace : 0.01;
    sh->max_chunk = cfg->max_chunk_size ? cfg->max_chunk_size : INTERP_SANDBOX_CHUNK_DEFAULT;
    sh->print = cfg->print ? cfg->print : interp__print_stdout;
    sh->print_ud = cfg->print ? cfg->print_ud : NULL;
    sh->chan_lookup = cfg->chan_lookup;
    sh->chan_lookup_ud = cfg->chan_lookup_ud;
    sh->module_ext = cfg->module_ext;
    sh->module_ext_ud = cfg->module_ext_ud;
    interp__budget_retain(cfg->budget);
    sh->budget = cfg->budget;
    int rc = interp__hostlibs_copy(sh, cfg, err);
    if (rc != INTERP_OK) {
        interp__shared_destroy(sh);
        return rc;
    }
    sh->frozen_space = cfg->frozen_space;
    if (cfg->init_args) {
        sh->init_args = interp_msg_dup(cfg->init_args);
        if (!sh->init_args)
            goto err_free_shared;
    }
    *out = sh;
    return INTERP_OK;

err_free_shared:
    interp__shared_destroy(sh);
err_nomem:
    *err = interp__strdupf("out of memory");
    return INTERP_ERR_NOMEM;
}

/* Compile cfg's initializer in L (NULL: a scratch state). */
static int compile_cfg(interp_shared *sh, const interp_config *cfg, lua_State *L, char **err)
{
    *err = NULL;
    if (!cfg->init_source && !cfg->init_file)
        return INTERP_OK;
    interp__alloc scratch = {0};
    lua_State *own = L ? NULL : lua_newstate(interp__alloc_fn, &scratch);
    if (!L && !(L = own)) {
        *err = interp__strdupf("initializer: out of memory");
        return INTERP_ERR_NOMEM;
    }
    int rc = INTERP_OK;
    if (cfg->init_source) {
        size_t len = cfg->init_source_len ? cfg->init_source_len : strlen(cfg->init_source);
        rc = compile(L, sh, cfg->init_source, len, "=init", err);
    } else if (cfg->init_file) {
        char *src;
        size_t len;
        rc = read_file(cfg->init_file, &src, &len, err);
        if (rc == INTERP_OK) {
            char *name = interp__strdupf("@%s", cfg->init_file);
            if (!name)
                rc = INTERP_ERR_NOMEM;
            else
                rc = compile(L, sh, src, len, name, err);
            free(name);
            free(src);
        }
    }
    if (own)
        lua_close(own);
    return rc;
}

int interp__shared_compile(interp_shared *sh, const interp_config *cfg, char **err)
{
    return compile_cfg(sh, cfg, NULL, err);
}

int interp__shared_compile_in(interp_shared *sh, const interp_config *cfg, interp_state *s,
                              char **err)
{
    return compile_cfg(sh, cfg, interp__state_lua(s), err);
}

void interp__state_settle(interp_shared *sh, interp_state *s)
{
    free(sh->init_code);
    sh->init_code = NULL;
    sh->init_code_len = 0;
    lua_gc(interp__state_lua(s), LUA_GCCOLLECT); /* a collection cannot raise in 5.4 */
}

void interp__shared_destroy(interp_shared *sh)
{
    if (!sh)
        return;
    interp_msg_free(sh->init_args);
    free(sh->init_code);
    interp__hostlibs_free(sh);
    interp__budget_release(sh->budget);
    free(sh);
}

bool interp__shared_sandboxed(const interp_shared *sh)
{
    return sh->sandbox != INTERP_SANDBOX_NONE;
}

int interp__shared_derive(const interp_shared *base, const interp_derive *d, interp_shared **out,
                          char **err)
{
    *out = NULL;
    *err = NULL;
    interp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.sandbox = d->sandbox != INTERP_SANDBOX_NONE ? d->sandbox : base->sandbox;
    cfg.memory_limit = d->memory_limit ? d->memory_limit : base->memory_limit;
    cfg.msg_opts = base->msg_opts;
    cfg.cancel_grace = base->cancel_grace;
    cfg.max_chunk_size = base->max_chunk;
    cfg.print = base->print;
    cfg.print_ud = base->print_ud;
    cfg.chan_lookup = d->chan_lookup ? d->chan_lookup : base->chan_lookup;
    cfg.chan_lookup_ud = d->chan_lookup ? d->chan_lookup_ud : base->chan_lookup_ud;
    cfg.module_ext = base->module_ext;
    cfg.module_ext_ud = d->module_ext_ud ? d->module_ext_ud : base->module_ext_ud;
    if (d->module_ext)
        cfg.module_ext = d->module_ext;
    cfg.on_state = base->on_state;
    cfg.on_state_ud = base->on_state_ud;
    cfg.package_path = base->package_path;
    cfg.package_cpath = base->package_cpath;
    cfg.frozen_space = base->frozen_space;
    cfg.budget = base->budget;
    if (d->n_host_libs && !d->host_libs) {
        *err = interp__strdupf("n_host_libs is %zu but host_libs is NULL", d->n_host_libs);
        return INTERP_ERR_INVALID;
    }
    /* the pool's libraries, but those the context gives again, then the context's: the copy
     * (interp__hostlibs_copy) checks the names and the count */
    size_t n = 0, cap = base->n_host_libs + d->n_host_libs;
    interp_host_lib stack_libs[8];
    interp_host_lib *libs = cap <= 8 ? stack_libs : interp__malloc(cap * sizeof *libs);
    if (!libs) {
        *err = interp__strdupf("out of memory");
        return INTERP_ERR_NOMEM;
    }
    for (size_t i = 0; i < base->n_host_libs; i++) {
        bool replaced = false;
        for (size_t j = 0; j < d->n_host_libs && !replaced; j++)
            replaced =
                d->host_libs[j].name && strcmp(d->host_libs[j].name, base->host_libs[i].name) == 0;
        if (!replaced)
            libs[n++] = (interp_host_lib){.name = base->host_libs[i].name,
                                          .open = base->host_libs[i].open,
                                          .sandbox = base->host_libs[i].sandbox};
    }
    for (size_t j = 0; j < d->n_host_libs; j++)
        libs[n++] = d->host_libs[j];
    cfg.host_libs = libs;
    cfg.n_host_libs = n;
    int rc = interp__shared_new(&cfg, out, err);
    if (libs != stack_libs)
        free(libs);
    return rc;
}

int interp__shared_compile_source(interp_shared *sh, const char *src, size_t len, interp_state *s,
                                  char **err)
{
    interp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.sandbox = sh->sandbox;
    cfg.init_source = src;
    cfg.init_source_len = len;
    return compile_cfg(sh, &cfg, interp__state_lua(s), err);
}
