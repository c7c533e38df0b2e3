/* map_cmd.c - `interp-pool map SCRIPT FUNC [OPTIONS]`: FUNC from SCRIPT applied to every line
 * of stdin on a pool, results on stdout one per line in input order.
 *
 * Streaming: lines go to interp_pool_map_stream(), which keeps a bounded number of items in
 * flight, so memory stays flat however long the input. Between reading a line and printing
 * its result, the line lives in a queue of events in input order: an item sent to the pool,
 * or a line that could not become one (invalid JSON), whose error is printed when its turn
 * comes. Such bad lines are few in sane input; if many pile up behind a slow item the stream
 * is ended early and restarted once everything before them is printed, to keep that queue
 * bounded too. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum { BAD_LINES_QUEUED_MAX = 4096 };

static const char map_usage[] =
    "Usage: interp-pool map SCRIPT FUNC [OPTIONS] < INPUT > OUTPUT\n"
    "\n"
    "Call the global function FUNC, defined by the Lua script SCRIPT, on every line of\n"
    "standard input, in parallel on a pool of isolated Lua states, and write the results to\n"
    "standard output, one line per input line, in input order.\n"
    "\n"
    "  SCRIPT                  Lua file run once in every worker state; defines FUNC\n"
    "  FUNC                    name of a global function of SCRIPT, called with one argument:\n"
    "                          the line without its newline (a string), or with --json the\n"
    "                          line's JSON value\n"
    "  -w, --workers N         worker threads (default: the number of CPUs)\n"
    "  -c, --chunksize K       lines per task (default: chosen by the pool)\n"
    "  -t, --timeout S         time limit of each line in seconds (a line gets between S and\n"
    "                          2 x S); a line over it fails, the others go on\n"
    "  -s, --sandbox           run SCRIPT in the safe profile (no io, os.execute, require,\n"
    "                          debug, load of bytecode; read-only library tables)\n"
    "  -m, --memory-limit N    bytes of memory for each worker state (suffix K, M or G)\n"
    "  -j, --json              each input line is a JSON value; results are written as JSON\n"
    "  -o, --max-output N      bytes of one output line at most (suffix K, M or G); a longer\n"
    "                          result fails its line (default: the memory limit, else 64M)\n"
    "  -h, --help              print this help\n"
    "\n"
    "Output: the values FUNC returns, as text: strings as they are, numbers as Lua\n"
    "prints them, tables as JSON, several values separated by tabs. With\n"
    "--json every value is JSON (several: a JSON array; none: null). A line that fails writes\n"
    "an empty line (null with --json) so that output line N still answers input line N, and\n"
    "its error, with the Lua traceback, goes to stderr as `line N: error`. print() in the\n"
    "script writes to stderr. A progress line is drawn on stderr when it is a terminal.\n"
    "\n"
    "Reading stops at the first read error and writing at the first failed write (exit 1).\n"
    "SIGINT or SIGTERM stops the run: no more lines are read, the lines in progress are\n"
    "cancelled, every output line is whole, and the count of lines done goes to stderr.\n"
    "\n"
    "Exit status: 0 if every line succeeded, 1 if any failed or reading or writing failed,\n"
    "2 on a usage error or when SCRIPT cannot be loaded, 128 + the signal's number after\n"
    "SIGINT (130) or SIGTERM (143).\n";

/* The signal that stopped the run (SIGINT, SIGTERM), 0 while none came. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

/* One input line on its way through the pool. */
typedef struct event {
    size_t line;
    off_t end;   /* input bytes read up to the end of this line */
    char *error; /* a line that could not become an item: why (malloc'd); NULL: an item */
} event;

typedef struct map_run {
    bool json;
    size_t max_output; /* bytes of one output line */
    int write_errno;   /* the first failed write to stdout; 0: none */
    FILE *in;
    char *buf;
    size_t bufcap;
    size_t line;  /* lines read */
    off_t offset; /* bytes read */
    bool eof;
    int read_errno;
    int fatal; /* INTERP_ERR_NOMEM when the event queue could not grow */
    event *ev; /* ring of events in input order */
    size_t head, count, cap;
    size_t bad_queued;
    size_t done, failed;
    off_t bytes_done;
    cli_progress progress;
    pthread_mutex_t err_mu; /* stderr: the progress line, errors, workers' print() */
} map_run;

static bool push_event(map_run *r, size_t line, off_t end, char *error)
{
    if (r->count == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        event *ev = malloc(cap * sizeof *ev);
        if (!ev)
            return false;
        for (size_t i = 0; i < r->count; i++)
            ev[i] = r->ev[(r->head + i) % r->cap];
        free(r->ev);
        r->ev = ev;
        r->head = 0;
        r->cap = cap;
    }
    r->ev[(r->head + r->count) % r->cap] = (event){line, end, error};
    r->count++;
    return true;
}

static event pop_event(map_run *r)
{
    event e = r->ev[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
    return e;
}

/* Whether the run stops: a signal came or a write failed. Nothing more is read or printed. */
static bool stopping(const map_run *r) { return stop_signal != 0 || r->write_errno != 0; }

static bool map_interrupted(void *ud) { return stopping(ud); }

/* After writing to stdout: a failed write stops the run at once (with SIGPIPE ignored, a
 * closed pipe would otherwise let the map compute every remaining line). */
static void check_write(map_run *r)
{
    if (!r->write_errno && ferror(stdout))
        r->write_errno = errno ? errno : EIO;
}

/* Report line `line` as failed: a placeholder on stdout, the reason on stderr. */
static void report_failure(map_run *r, size_t line, off_t end, const char *reason,
                           const char *detail)
{
    if (stopping(r))
        return;
    fputs(r->json ? "null\n" : "\n", stdout);
    check_write(r);
    pthread_mutex_lock(&r->err_mu);
    cli_progress_clear(&r->progress);
    if (detail && reason)
        fprintf(stderr, "line %zu: %s: %s\n", line, reason, detail);
    else
        fprintf(stderr, "line %zu: %s\n", line, detail ? detail : reason);
    r->done++;
    r->failed++;
    r->bytes_done = end;
    cli_progress_update(&r->progress, r->done, r->failed, r->bytes_done, false);
    pthread_mutex_unlock(&r->err_mu);
}

/* Print the bad lines at the front of the queue (their turn has come). */
static void flush_bad(map_run *r)
{
    while (r->count > 0 && r->ev[r->head].error) {
        event e = pop_event(r);
        report_failure(r, e.line, e.end, NULL, e.error);
        free(e.error);
        r->bad_queued--;
    }
}

static bool next_input(void *ud, size_t index, interp_msg **args)
{
    map_run *r = ud;
    (void)index;
    while (!r->eof && !r->fatal && r->bad_queued < BAD_LINES_QUEUED_MAX && !stopping(r)) {
        errno = 0;
        ssize_t n = getline(&r->buf, &r->bufcap, r->in);
        if (n < 0) {
            /* getline also fails without the stream's error flag (ENOMEM for a line too
             * long to hold): anything but the end of the input is a read error */
            int e = errno;
            if (!(e == EINTR && stop_signal) && (ferror(r->in) || !feof(r->in)))
                r->read_errno = e ? e : EIO;
            r->eof = true;
            break;
        }
        r->line++;
        r->offset += n;
        size_t len = (size_t)n;
        if (len > 0 && r->buf[len - 1] == '\n')
            len--;
        if (len > 0 && r->buf[len - 1] == '\r')
            len--;
        interp_msg *m = NULL;
        char why[200] = "out of memory";
        int rc = INTERP_ERR_NOMEM;
        if (r->json)
            rc = cli_json_to_msg(r->buf, len, &m, why, sizeof why);
        else if ((m = interp_msg_str(r->buf, len)) != NULL)
            rc = INTERP_OK;
        if (rc == INTERP_OK) {
            if (!push_event(r, r->line, r->offset, NULL)) {
                interp_msg_free(m);
                r->fatal = INTERP_ERR_NOMEM;
                break;
            }
            *args = m;
            return true;
        }
        if (r->count == 0) { /* nothing before it is pending: its turn is now */
            report_failure(r, r->line, r->offset, NULL, why);
            continue;
        }
        char *copy = strdup(why);
        if (!copy || !push_event(r, r->line, r->offset, copy)) {
            free(copy);
            r->fatal = INTERP_ERR_NOMEM;
            break;
        }
        r->bad_queued++;
    }
    return false;
}

static void on_result(void *ud, size_t index, int status, interp_msg *result, const char *error)
{
    map_run *r = ud;
    (void)index;
    flush_bad(r);
    if (r->count == 0) { /* cannot happen: every item was queued by next_input */
        interp_msg_free(result);
        return;
    }
    event e = pop_event(r);
    if (stopping(r)) {
        /* the run stops: lines still arriving (cancelled or not) are not written */
    } else if (status == INTERP_OK) {
        char why[200];
        int rc = cli_write_msg(stdout, result, r->json, r->max_output, why, sizeof why);
        if (rc == INTERP_ERR_SYSTEM) {
            check_write(r);
            if (!r->write_errno)
                r->write_errno = EIO;
        } else if (rc == INTERP_OK) {
            fputc('\n', stdout);
            check_write(r);
            pthread_mutex_lock(&r->err_mu);
            r->done++;
            r->bytes_done = e.end;
            cli_progress_update(&r->progress, r->done, r->failed, r->bytes_done, false);
            pthread_mutex_unlock(&r->err_mu);
        } else {
            report_failure(r, e.line, e.end, "cannot print the result", why);
        }
    } else if (status == INTERP_ERR_SCRIPT && error) {
        report_failure(r, e.line, e.end, NULL, error);
    } else {
        report_failure(r, e.line, e.end, interp_strerror(status), error);
    }
    interp_msg_free(result);
}

/* Workers' print(): to stderr, whole lines, so that stdout holds only results. */
static void on_print(void *ud, int worker_id, const char *line, size_t len)
{
    map_run *r = ud;
    (void)worker_id;
    pthread_mutex_lock(&r->err_mu);
    cli_progress_clear(&r->progress);
    fwrite(line, 1, len, stderr);
    fputc('\n', stderr);
    pthread_mutex_unlock(&r->err_mu);
}

/* ---- command line ------------------------------------------------------------------------ */

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "interp-pool map: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'interp-pool map --help'.\n");
    return CLI_EXIT_USAGE;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v) || v <= 0 || isinf(v))
        return false;
    *out = v;
    return true;
}

static bool parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return false;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (shift)
        end++;
    if (*end || v > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)(v << shift);
    return true;
}

/* Whether FUNC names nothing at all in a worker: one probe task. Any doubt (the probe
 * itself failing) counts as "exists": the items would then report the real error. */
static bool func_missing(interp_pool *pool, const char *func)
{
    static const char probe[] = "local name = ...\nreturn type(_ENV[name])";
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = probe}};
    t.args = interp_msg_cstr(func);
    interp_future *f = NULL;
    if (!t.args || interp_pool_submit_task(pool, &t, INTERP_FOREVER, &f) != INTERP_OK) {
        interp_msg_free(t.args);
        return false;
    }
    const interp_msg *res = NULL;
    bool missing = false;
    if (interp_future_result(f, INTERP_FOREVER, &res) == INTERP_OK && res) {
        interp_msg_iter it = interp_msg_iter_init(res);
        interp_msg_value v;
        missing = interp_msg_next(&it, &v) && v.type == INTERP_MSG_STR && v.as.str.len == 3 &&
                  memcmp(v.as.str.ptr, "nil", 3) == 0;
    }
    interp_future_release(f);
    return missing;
}

/* What the command line asks for. */
typedef struct map_args {
    interp_pool_options o; /* workers, sandbox, memory limit */
    long chunksize;        /* 0: the pool's choice */
    double timeout;        /* of each line; 0: none */
    bool json;
    size_t max_output; /* 0: the default */
    const char *script, *func;
} map_args;

/* Parse argv into *a: -1 to go on, else the exit status (help printed, or a usage error). */
static int parse_args(int argc, char **argv, map_args *a)
{
    static const struct option longopts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"chunksize", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 't'},
        {"sandbox", no_argument, NULL, 's'},
        {"memory-limit", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"max-output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *a = (map_args){.o = interp_pool_defaults()};
    long workers = 0;
    const char *why;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":w:c:t:sm:jo:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'w':
            /* the range is the pool's to check (interp_pool_create says why) */
            if (!parse_long(optarg, INT_MIN, INT_MAX, &workers))
                return usage_error("--workers: expected an integer, got '%s'", optarg);
            break;
        case 'c':
            if (!parse_long(optarg, 1, LONG_MAX, &a->chunksize))
                return usage_error("--chunksize: expected a positive integer, got '%s'", optarg);
            if (interp_map_check_sizes((size_t)a->chunksize, 0, &why) != INTERP_OK)
                return usage_error("--chunksize: %s", why);
            break;
        case 't':
            if (!parse_seconds(optarg, &a->timeout))
                return usage_error("--timeout: expected a positive number of seconds, got '%s'",
                                   optarg);
            break;
        case 's':
            a->o.sandbox = INTERP_SANDBOX_SAFE;
            break;
        case 'm':
            if (!parse_size(optarg, &a->o.memory_limit) || a->o.memory_limit == 0)
                return usage_error("--memory-limit: expected a number of bytes (suffix K, M or "
                                   "G), got '%s'",
                                   optarg);
            break;
        case 'j':
            a->json = true;
            break;
        case 'o':
            if (!parse_size(optarg, &a->max_output) || a->max_output == 0)
                return usage_error("--max-output: expected a number of bytes (suffix K, M or "
                                   "G), got '%s'",
                                   optarg);
            break;
        case 'h':
            fputs(map_usage, stdout);
            return CLI_EXIT_OK;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return usage_error("%s",
                           argc - optind < 2 ? "expected SCRIPT and FUNC" : "too many arguments");
    a->o.workers = (int)workers; /* 0: the pool's choice */
    a->script = argv[optind];
    a->func = argv[optind + 1];
    if (!*a->func)
        return usage_error("%s", "FUNC is empty");
    return -1;
}

/* The pool that runs SCRIPT, with FUNC checked. -1 with *pool set to go on, else the exit
 * status (CLI_EXIT_OK on a rank of an mpiexec job other than the root: it has computed). */
static int open_pool(map_args *a, map_run *r, interp_pool **pool)
{
    a->o.init_file = a->script;
    a->o.task_timeout = a->timeout; /* the pool gives every map item its own deadline */
    a->o.print = on_print;
    a->o.print_ud = r;
    char *err = NULL;
    bool served;
    int rc = cli_pool_create(pool, &a->o, &err, &served);
    if (served) /* another rank of an mpiexec job: it computed; rank 0 wrote the results */
        return CLI_EXIT_OK;
    if (rc == INTERP_ERR_INVALID) { /* an option out of the pool's bounds */
        fprintf(stderr, "interp-pool map: %s\n", err ? err : interp_strerror(rc));
        free(err);
        return CLI_EXIT_USAGE;
    }
    if (rc != INTERP_OK) {
        fprintf(stderr, "interp-pool map: cannot load %s: %s\n", a->script,
                err ? err : interp_strerror(rc));
        free(err);
        return CLI_EXIT_USAGE;
    }
    if (func_missing(*pool, a->func)) {
        fprintf(stderr, "interp-pool map: %s defines no global function '%s'\n", a->script,
                a->func);
        interp_pool_destroy(*pool);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* Stream stdin through the pool until the input ends, a signal stops it or the pool fails
 * (SIGINT, SIGTERM: stop between lines; no SA_RESTART, so a blocked read returns). The pool
 * is destroyed on return. The exit status so far. */
static int run_stream(interp_pool *pool, const map_args *a, map_run *r)
{
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, sizeof outbuf);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = a->func};
    interp_map_options mo = {
        .chunksize = (size_t)a->chunksize, .interrupted = map_interrupted, .interrupted_ud = r};
    struct sigaction sa = {.sa_handler = on_stop_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int status = CLI_EXIT_OK;
    while (!r->eof && !r->fatal && !stopping(r)) {
        size_t lines = r->line, done = r->done, failed = r->failed;
        int rc = interp_pool_map_stream(pool, &fn, next_input, on_result, r, 0, &mo);
        flush_bad(r); /* every item is printed: the bad lines after them have their turn */
        if (stopping(r))
            break;
        /* Item failures are reported per line; a failure of the pool itself (or a call that
         * made no progress at all) ends the run. */
        bool progressed = r->line != lines || r->done != done;
        if (rc == INTERP_ERR_BROKEN || rc == INTERP_ERR_SHUTDOWN || rc == INTERP_ERR_INVALID ||
            (rc != INTERP_OK && (!progressed || r->failed == failed))) {
            pthread_mutex_lock(&r->err_mu);
            cli_progress_clear(&r->progress);
            fprintf(stderr, "interp-pool map: the pool failed: %s\n", interp_strerror(rc));
            pthread_mutex_unlock(&r->err_mu);
            status = CLI_EXIT_FAILED;
            break;
        }
    }
    pthread_mutex_lock(&r->err_mu);
    if (r->progress.on)
        cli_progress_finish(&r->progress);
    pthread_mutex_unlock(&r->err_mu);
    interp_pool_destroy(pool); /* joins the workers: no print callback runs after this */
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return status;
}

/* Report how the run ended (out of memory, read and write errors, a signal, failed lines) on
 * stderr; the exit status. */
static int report_end(map_run *r, int status)
{
    if (r->fatal) {
        fprintf(stderr, "interp-pool map: out of memory\n");
        status = CLI_EXIT_FAILED;
    }
    if (r->read_errno) {
        fprintf(stderr, "interp-pool map: reading stdin: %s\n", strerror(r->read_errno));
        status = CLI_EXIT_FAILED;
    }
    if (!r->write_errno && (fflush(stdout) != 0 || ferror(stdout)))
        r->write_errno = errno ? errno : EIO;
    if (r->write_errno) {
        fprintf(stderr, "interp-pool map: writing stdout: %s; stopped after %zu lines\n",
                strerror(r->write_errno), r->done);
        status = CLI_EXIT_FAILED;
    }
    if (stop_signal && !r->write_errno) {
        fprintf(stderr,
                "interp-pool map: stopped by %s after %zu lines (%zu failed); every "
                "output line is whole\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", r->done, r->failed);
        status = 128 + stop_signal;
    }
    if (r->failed > 0 && status == CLI_EXIT_OK)
        status = CLI_EXIT_FAILED;
    return status;
}

int cli_map(int argc, char **argv)
{
    map_args a;
    int status = parse_args(argc, argv, &a);
    if (status >= 0)
        return status;
    if (cli_mpi_root() && access(a.script, R_OK) != 0) { /* MPI: the root sends it to all */
        fprintf(stderr, "interp-pool map: cannot read %s: %s\n", a.script, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    if (!a.max_output) /* what one worker state may hold, or else a bound of its own */
        a.max_output = a.o.memory_limit ? a.o.memory_limit : (size_t)64 << 20;
    map_run r = {.json = a.json, .in = stdin, .max_output = a.max_output};
    pthread_mutex_init(&r.err_mu, NULL);
    cli_progress_init(&r.progress, fileno(stdin));
    interp_pool *pool = NULL;
    status = open_pool(&a, &r, &pool);
    if (status < 0)
        status = report_end(&r, run_stream(pool, &a, &r));
    while (r.count > 0)
        free(pop_event(&r).error);
    free(r.ev);
    free(r.buf);
    pthread_mutex_destroy(&r.err_mu);
    return status;
}
