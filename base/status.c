/* status.c - texts of the status codes. */
#include "interp_status.h"

const char *interp_strerror(int status)
{
    switch (status) {
    case INTERP_OK: return "ok";
    case INTERP_ERR_NOMEM: return "out of memory";
    case INTERP_ERR_INVALID: return "invalid argument";
    case INTERP_ERR_ENCODE: return "value cannot be copied";
    case INTERP_ERR_DECODE: return "malformed or refused message";
    case INTERP_ERR_LIMIT: return "depth or size limit exceeded";
    case INTERP_ERR_SCRIPT: return "script error";
    case INTERP_ERR_TIMEOUT: return "timed out";
    case INTERP_ERR_CANCELLED: return "cancelled";
    case INTERP_ERR_CLOSED: return "closed";
    case INTERP_ERR_AGAIN: return "would block";
    case INTERP_ERR_SHUTDOWN: return "pool is shut down";
    case INTERP_ERR_BROKEN: return "pool is broken";
    case INTERP_ERR_NOTFOUND: return "not found";
    case INTERP_ERR_SYSTEM: return "system call failed";
    case INTERP_ERR_BUSY: return "busy";
    default: return "unknown status";
    }
}
