/* status.c - texts and names of the status codes, generated from INTERP_STATUS_MAP, and the
 * texts of a job stopped without a text of its own. */
#include <string.h>

#include "interp_status.h"
#include "status_text.h"

const char *interp_strerror(int status)
{
    switch (status) {
    case INTERP_OK:
        return "ok";
#define TEXT_CASE(NAME, value, name, text)                                                         \
    case INTERP_ERR_##NAME:                                                                        \
        return text;
        INTERP_STATUS_MAP(TEXT_CASE)
#undef TEXT_CASE
    default:
        return "unknown status";
    }
}

const char *interp_status_name(int status)
{
    switch (status) {
    case INTERP_OK:
        return "ok";
#define NAME_CASE(NAME, value, name, text)                                                         \
    case INTERP_ERR_##NAME:                                                                        \
        return name;
        INTERP_STATUS_MAP(NAME_CASE)
#undef NAME_CASE
    default:
        return NULL;
    }
}

int interp_status_code(const char *name)
{
    if (!name)
        return 1;
    if (strcmp(name, "ok") == 0)
        return INTERP_OK;
#define CODE_IF(NAME, value, name_, text)                                                          \
    if (strcmp(name, name_) == 0)                                                                  \
        return INTERP_ERR_##NAME;
    INTERP_STATUS_MAP(CODE_IF)
#undef CODE_IF
    return 1;
}

/* A queued job the shutdown drops ends CANCELLED with "cancelled: the pool was shut down" (said
 * where it is dropped: core/pool.c, and for map items interp__map_stop_text): it never ran, and
 * CANCELLED is what pool:shutdown(cancel_pending) documents and stats count as cancelled. A job
 * stopped because shutdown_now came while it ran (or as it was taken) ends SHUTDOWN, with the
 * text below, which says that and nothing else. */
const char *interp__status_end_text(int status)
{
    switch (status) {
    case INTERP_ERR_TIMEOUT:
        return "timed out: the task passed its deadline";
    case INTERP_ERR_SHUTDOWN:
        return "interrupted by pool shutdown";
    default:
        return interp_strerror(status);
    }
}

const char *interp__irq_text(int reason)
{
    switch (reason) {
    case INTERP_ERR_TIMEOUT:
        return "interp: task timed out";
    case INTERP_ERR_SHUTDOWN:
        return "interp: task stopped by pool shutdown";
    default:
        return "interp: task cancelled";
    }
}
