/* interp_limits.h - the bounds every size and count given to the API is checked against.
 *
 * One place for the numbers (as Lua keeps its own in luaconf.h): a call given a value past one
 * of these fails with INTERP_ERR_INVALID before it allocates anything, so that no size
 * arithmetic can wrap and no single call can ask the host for gigabytes. The Lua module and
 * the CLI do not check them again: they pass values through and report the library's reason
 * (interp_pool_create's text, interp_map_check_sizes, interp_chan_check). */
#ifndef INTERP_LIMITS_H
#define INTERP_LIMITS_H

/* The text of a limit's number, for messages: INTERP_LIMIT_TEXT(INTERP_POOL_MAX_WORKERS) is
 * "4096". */
#define INTERP_LIMIT_TEXT_(x) #x
#define INTERP_LIMIT_TEXT(x) INTERP_LIMIT_TEXT_(x)

/* The timeout that waits without limit (any negative timeout does the same). */
#define INTERP_FOREVER (-1.0)

/* Worker threads of one pool (interp_pool_options.workers, ip.new's workers, the CLI's
 * --workers): 1 to this many; the default (the online CPUs) is capped here too. */
#define INTERP_POOL_MAX_WORKERS 4096

/* Named channels of one pool, host and workers together (interp_pool_channel, interp.channel);
 * one more fails with INTERP_ERR_LIMIT. */
#define INTERP_POOL_MAX_CHANNELS 4096

/* Messages a channel may hold (interp_chan_create, interp_pool_channel, interp.channel). The
 * ring of slots is allocated when the channel is made (24 bytes a slot, rounded up to a power
 * of two): at most 24 MiB for one channel; a pool's channels are also charged to its memory
 * budget (interp_pool_options.memory_budget). */
#define INTERP_CHAN_MAX_CAPACITY ((size_t)1 << 20)

/* Bytes of a pool channel's name (interp_pool_channel, interp.channel): 1 to this many, with
 * no NUL byte inside. */
#define INTERP_CHAN_MAX_NAME 256

/* Items of one map chunk (interp_map_options.chunksize). */
#define INTERP_MAP_MAX_CHUNKSIZE ((size_t)1 << 20)

/* The largest chunk size map picks by itself (chunksize 0: items / (8 x workers), within 1 to
 * this many). */
#define INTERP_MAP_AUTO_CHUNKSIZE_MAX ((size_t)4096)

/* Items a map_stream keeps queued or running (max_in_flight), and pool:imap's window. */
#define INTERP_MAP_MAX_IN_FLIGHT ((size_t)1 << 24)

/* Futures one wait or as_completed watches, channels one select watches. */
#define INTERP_WAIT_MAX_FUTURES ((size_t)1 << 24)

/* Host libraries of one pool (interp_pool_options.host_libs, ip.new's libs), and the bytes of
 * one's name (1 to this many). */
#define INTERP_HOST_LIBS_MAX 256
#define INTERP_HOST_LIB_MAX_NAME 64

/* The sandbox's bound on one text chunk compiled by load or as a source task
 * (interp_pool_options.max_chunk_size): Lua's parser runs where no hook reaches and some
 * chunks parse in quadratic time (`return x or x or ... x`), so this default keeps the worst
 * known chunk well under the default stuck_grace (1 s; figures in docs/DESIGN.md, Sandbox).
 * A host may set up to INTERP_SANDBOX_CHUNK_MAX. */
#define INTERP_SANDBOX_CHUNK_DEFAULT ((size_t)32 << 10)
#define INTERP_SANDBOX_CHUNK_MAX ((size_t)64 << 20)

/* Abandoned threads (stuck in C code past stuck_grace, demoted to SCHED_IDLE) one pool lets
 * run at once (interp_pool_options.max_abandoned): the default, and the most a host may set.
 * One more breaks the pool. */
#define INTERP_ABANDONED_DEFAULT 4
#define INTERP_ABANDONED_MAX 4096

#endif
