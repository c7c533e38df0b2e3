/* fn.c - checking and copying the function a task calls (interp_fn), for every layer: the
 * pool's submit and map check with it and keep a copy, and the interpreter checks again before
 * a call, with the same rule and the same texts. */
#include <string.h>

#include "interp.h"
#include "msg_inner.h"

int interp__fn_check(const interp_fn *fn, const char **why)
{
    const char *w = NULL;
    bool name = fn && (fn->kind == INTERP_FN_NAME || fn->kind == INTERP__FN_NAME_LUA);
    if (!fn)
        w = "no function given";
    else if (name && !fn->text)
        w = "no function name given";
    else if (name && !fn->text[0])
        w = "the function name is empty"; /* no global a task could mean */
    else if (fn->kind == INTERP_FN_SOURCE && !fn->text)
        w = "no source chunk given";
    else if (fn->kind == INTERP_FN_FUNCTION && !fn->function)
        w = "no function message given";
    else if (!name && fn->kind != INTERP_FN_SOURCE && fn->kind != INTERP_FN_FUNCTION)
        w = "unknown function kind";
    if (why)
        *why = w;
    return w ? INTERP_ERR_INVALID : INTERP_OK;
}

static size_t text_len(const interp_fn *fn)
{
    return fn->kind == INTERP_FN_SOURCE && fn->len ? fn->len : strlen(fn->text);
}

size_t interp__fn_copy_size(const interp_fn *fn)
{
    return fn->kind == INTERP_FN_FUNCTION ? interp__msg_embed_size(fn->function) : text_len(fn) + 1;
}

void interp__fn_copy(interp_fn *out, const interp_fn *fn, void *room)
{
    *out = *fn;
    if (fn->kind == INTERP_FN_FUNCTION) {
        out->function = interp__msg_embed(room, fn->function);
        out->text = NULL;
        return;
    }
    size_t len = text_len(fn);
    char *text = room;
    memcpy(text, fn->text, len);
    text[len] = '\0';
    out->text = text;
    out->len = fn->kind == INTERP_FN_SOURCE ? len : 0;
}
