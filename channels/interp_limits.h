/* interp_limits.h - the bounds every size and count given to the API is checked against.
 *
 * One place for the numbers (as Lua keeps its own in luaconf.h): a call given a value past one
 * of these fails with INTERP_ERR_INVALID before it allocates anything, so that no size
 * arithmetic can wrap and no single call can ask the host for gigabytes. The Lua module and
 * the CLI check against the same numbers. */
#ifndef INTERP_LIMITS_H
#define INTERP_LIMITS_H

/* Messages a channel may hold (interp_chan_create, interp_pool_channel, interp.channel). The
 * ring of slots is allocated when the channel is made (16 bytes a slot, rounded up to a power
 * of two): at most 16 MiB for one channel; a pool's channels are also charged to its memory
 * budget (interp_pool_options.memory_budget). */
#define INTERP_CHAN_MAX_CAPACITY ((size_t)1 << 20)

/* Bytes of a pool channel's name (interp_pool_channel, interp.channel): 1 to this many, with
 * no NUL byte inside. */
#define INTERP_CHAN_MAX_NAME 256

/* Items of one map chunk (interp_map_options.chunksize). */
#define INTERP_MAP_MAX_CHUNKSIZE ((size_t)1 << 20)

/* Items a map_stream keeps queued or running (max_in_flight), and pool:imap's window. */
#define INTERP_MAP_MAX_IN_FLIGHT ((size_t)1 << 24)

/* Futures one wait or as_completed watches, channels one select watches. */
#define INTERP_WAIT_MAX_FUTURES ((size_t)1 << 24)

/* Host libraries of one pool (interp_pool_options.host_libs, ip.new's libs), and the bytes of
 * one's name (1 to this many). */
#define INTERP_HOST_LIBS_MAX 256
#define INTERP_HOST_LIB_MAX_NAME 64

#endif
