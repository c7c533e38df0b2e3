/* status_text.h - internal: the texts a job or a task's Lua code gets when it is stopped by a
 * status and has no text of its own. Every layer uses these, so that one event reads the same
 * wherever it is reported. Thread-safe; static texts. */
#ifndef INTERP_STATUS_TEXT_H
#define INTERP_STATUS_TEXT_H

/* The error text of a task or map item that ended with `status` and no text of its own:
 * interp_strerror's, but for TIMEOUT ("timed out: the task passed its deadline") and SHUTDOWN
 * ("interrupted by pool shutdown"). */
const char *interp__status_end_text(int status);

/* The error raised inside a task's Lua code when its cancellation token fires with `reason`
 * (by the instruction hook, interp/cancel.c, or by a channel wait, channels/chan_lua.c):
 * "interp: task timed out", "interp: task stopped by pool shutdown", else
 * "interp: task cancelled". */
const char *interp__irq_text(int reason);

#endif
