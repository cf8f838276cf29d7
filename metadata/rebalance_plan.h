/*
 * The rebalance planner and drain checks.  For every chunk it computes the
 * replica set weighted rendezvous placement wants under the current
 * membership (ts_place_choose over up servers; draining servers are not
 * eligible, which is what makes a drain empty a server) and pairs each
 * replica placement no longer wants with a wanted server lacking the chunk:
 * a move = copy to `to`, confirm, then delete from `from`, so a chunk never
 * drops below its factor.  The plan states the bytes each server sends and
 * receives, and the imbalance (the largest relative distance of an up
 * server's bytes from its weighted share) before and after.  Moves are
 * ordered most-overfull source first, so an interrupted rebalance has
 * already relieved the worst servers; re-planning after an interruption
 * simply yields the moves still to do (resumable by construction).
 *
 * Chunks below their factor are left to the repair planner (counted in
 * skipped_under_replicated); surplus replicas too.
 *
 * Pure: no I/O, no clock; deterministic for the same inputs.
 */
#ifndef TS_REBALANCE_PLAN_H
#define TS_REBALANCE_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/repair_plan.h"

typedef struct ts_rebalance_move {
    size_t chunk;        /* index into the chunk array */
    uint32_t from, to;   /* server indexes */
    uint64_t bytes;
} ts_rebalance_move;

typedef struct ts_rebalance_server {
    uint64_t bytes_before;    /* replica bytes on it now */
    uint64_t bytes_after;     /* once every move is done */
    uint64_t bytes_in, bytes_out;
    double share;             /* its weighted share of all replica bytes (0
                               * when not up: it should end empty) */
} ts_rebalance_server;

typedef struct ts_rebalance_plan {
    ts_rebalance_move *moves;       /* most-overfull source first */
    size_t nmoves;
    size_t nmoves_total;            /* before max_moves cut the list */
    ts_rebalance_server *servers;   /* one per input server */
    uint64_t total_bytes;           /* replica bytes (all chunks, all holders) */
    uint64_t bytes_to_move;         /* of the moves kept */
    double imbalance_before, imbalance_after;
    size_t skipped_under_replicated;
} ts_rebalance_plan;

/* Plans the moves; max_moves 0 = all.  TS_EINVAL on bad input (see
 * ts_plan_check_inputs), TS_ENOSPC when no server is up.  *out released
 * with ts_rebalance_plan_free. */
int ts_rebalance_plan_make(const ts_plan_server *servers, size_t nservers,
                           const ts_plan_chunk *chunks, size_t nchunks, size_t max_moves,
                           ts_rebalance_plan *out, ts_error *err);
void ts_rebalance_plan_free(ts_rebalance_plan *p);

/* ---- Drain ---- */

/* May server `which` start draining?  Refuses with TS_ENOSPC and the reason
 * when the servers left up and not draining would be fewer than
 * max_replication (chunks could not keep their full count), TS_EINVAL for a
 * server that is removed or out of range. */
int ts_drain_check(const ts_plan_server *servers, size_t nservers, uint32_t which,
                   unsigned max_replication, ts_error *err);

typedef struct ts_drain_status {
    size_t chunks_held;     /* chunks with a replica on the server */
    size_t chunks_short;    /* of those, with fewer than their factor on other up servers */
    uint64_t bytes_held;
    int complete;           /* chunks_short == 0: safe to remove */
    int stuck;              /* cannot complete as things stand (reason says why) */
    char reason[256];
} ts_drain_status;

/* Where the drain of server `which` stands.  TS_EINVAL on bad input. */
int ts_drain_status_of(const ts_plan_server *servers, size_t nservers,
                       const ts_plan_chunk *chunks, size_t nchunks, uint32_t which,
                       ts_drain_status *out, ts_error *err);

#endif
