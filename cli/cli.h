/* cli.h - internal to cli/: the pieces of the `interp-pool` command shared between its files.
 * The command is a thin front end over the public API (interp_pool.h); see cli/README.md. */
#ifndef INTERP_CLI_H
#define INTERP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "interp_pool.h"

/* Exit statuses of the command. */
enum {
    CLI_EXIT_OK = 0,     /* every item succeeded */
    CLI_EXIT_FAILED = 1, /* some item failed, or the script given to `run` raised an error */
    CLI_EXIT_USAGE = 2,  /* bad command line, or the pool could not start (script missing...) */
};

/* The subcommands: argv[0] is the subcommand's name. Each returns an exit status. */
int cli_map(int argc, char **argv);
int cli_run(int argc, char **argv);

/* ---- pool_create.c: a local pool, or an MPI pool under mpiexec -------------------------- */

/* interp_pool_create; under mpiexec with several ranks (a build with Open MPI) the collective
 * interp_mpi_pool_create instead: on the other ranks it serves, then returns with *out NULL
 * and *served true (the root reports a failed create). */
int cli_pool_create(interp_pool **out, const interp_pool_options *o, char **err, bool *served);
/* True unless this process is a rank other than 0 of an mpiexec job. */
bool cli_mpi_root(void);
/* Before exit: MPI_Finalize (or MPI_Abort when the ranks may still wait in create). Returns
 * status. */
int cli_mpi_end(int status);

/* ---- json.c: JSON text <-> messages (cJSON) --------------------------------------------- */

/* Parse one JSON text of len bytes (a whole line) into a message holding one value. Numbers
 * that are integral and within +-2^53 become integers, others floats. INTERP_OK and *out
 * (owned by the caller); otherwise INTERP_ERR_DECODE (why: the reason) or INTERP_ERR_NOMEM. */
int cli_json_to_msg(const char *text, size_t len, interp_msg **out, char *why, size_t whylen);

/* Write the values of m to f as one output line (without the newline), of at most max_bytes.
 * json: every value as JSON text; no values print `null`, several a JSON array of them.
 * plain: strings as they are, numbers as Lua prints them, booleans and nil by name, tables as
 * JSON; several values separated by tabs (as Lua's print does). JSON strings escape quotes,
 * backslashes and control characters (a NUL byte as \u0000); other bytes pass as they are.
 * The text is built in memory first (at most max_bytes of it) and written with one fwrite.
 * Returns INTERP_OK, or with why set: INTERP_ERR_ENCODE when a value has no text form (a
 * function, a table that contains itself, a table key that is a table), INTERP_ERR_LIMIT when
 * the text would pass max_bytes (shared tables are printed in full at each place),
 * INTERP_ERR_NOMEM, INTERP_ERR_SYSTEM when fwrite failed. Nothing is written on the other
 * errors. */
int cli_write_msg(FILE *f, const interp_msg *m, bool json, size_t max_bytes, char *why,
                  size_t whylen);

/* ---- progress.c: the progress line on stderr -------------------------------------------- */

typedef struct cli_progress {
    bool on;            /* stderr is a terminal */
    bool shown;         /* a progress line is on screen now */
    double start, last; /* monotonic seconds */
    off_t total;        /* input bytes when known (stdin is a regular file), else 0 */
    size_t done, failed;
    off_t bytes_done;
} cli_progress;

/* Set up for input read from fd (a regular file gives a known size, hence an ETA). */
void cli_progress_init(cli_progress *p, int fd);
/* Record progress and redraw at most ten times a second (always when force). */
void cli_progress_update(cli_progress *p, size_t done, size_t failed, off_t bytes_done, bool force);
/* Erase the line so that other text can be written to stderr; the next update redraws it. */
void cli_progress_clear(cli_progress *p);
/* Draw the final state and end the line. */
void cli_progress_finish(cli_progress *p);

#endif
