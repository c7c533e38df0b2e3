/* map_pack.h - internal (the Lua module's pool:map): a map whose items are packs of calls.
 * Not installed. */
#ifndef INTERP_MAP_PACK_H
#define INTERP_MAP_PACK_H

#include "interp_pool.h"

/* interp_pool_map_stream where each item is a pack: a message of k values, one call fn(value)
 * each, run one after the other by one worker (interp__state_map_packed). next_pack and
 * on_pack run on the calling thread; on_pack gets, in order, each pack's status and, when it
 * succeeded, a message of k values: the first result of each call; when it failed, the error
 * of its failed call and a message of one integer, that call's index in the pack (from 0), or
 * NULL (then the first; also when the pack never ran). The calls after a failed one in its pack
 * do not run; other packs do. One message per pack each way instead of one per call: the
 * per-call costs of a message (allocation, header, validation) and of a job are paid once per
 * pack. chunksize in opts counts packs per job (pass 1: a pack is a chunk of its own); the
 * window is max_in_flight packs. INTERP_ERR_INVALID for a pool with a backend (MPI). */
int interp__pool_map_packed(interp_pool *pool, const interp_fn *fn, interp_map_next_fn next_pack,
                            interp_map_result_fn on_pack, void *ud, size_t max_in_flight,
                            const interp_map_options *opts);

#endif
