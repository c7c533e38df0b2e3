/* submitf.c - submit and result with formats (interp_msg_pack / interp_msg_unpack letters):
 * the Python-like one-call forms of interp_pool_submit and interp_future_result. */
#include <stdarg.h>

#include "interp_pool.h"

int interp_pool_submitf(interp_pool *pool, interp_future **out, const char *fn, const char *fmt,
                        ...)
{
    if (out)
        *out = NULL;
    if (!pool || !out || !fn || !fmt)
        return INTERP_ERR_INVALID;
    interp_msg *args = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = interp_msg_vpack(&args, fmt, ap);
    va_end(ap);
    if (rc != INTERP_OK)
        return rc;
    rc = interp_pool_submit(pool, fn, args, out);
    if (rc != INTERP_OK)
        interp_msg_free(args); /* still ours on error */
    return rc;
}

int interp_future_resultf(interp_future *f, double timeout, const char *fmt, ...)
{
    if (!f || !fmt)
        return INTERP_ERR_INVALID;
    const interp_msg *r = NULL;
    int rc = interp_future_result(f, timeout, &r);
    if (rc != INTERP_OK)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    rc = interp_msg_vunpack(r, fmt, ap);
    va_end(ap);
    return rc;
}
