/*
 * The repair planner: given the membership, the chunks with their lengths
 * and replication factors, and where replicas are known to be, decides one
 * round of work for the metadata leader's re-replication loop:
 *
 *   - copy tasks for chunks with fewer counted replicas than their factor
 *     (a replica counts on an up or suspect server, server_state.h), most
 *     endangered first: 1 live replica before 2, and so on;  each names the
 *     destination, chosen by weighted rendezvous placement (the best ranked
 *     eligible server that lacks the chunk, so repair moves replicas toward
 *     where placement wants them), and source candidates in preference
 *     order (up, then draining, then suspect servers);
 *   - delete tasks for surplus replicas (a server came back, a drain is
 *     complete), only for chunks that get no copy this round, only when
 *     the replica locations are complete (every server reported), and
 *     never below the factor on up servers: copy, confirm (a later report
 *     or the copy's answer), then delete.
 *
 * A round respects per-server limits on concurrent copies (in and out,
 * counting copies already running) and a byte budget; what does not fit is
 * counted as deferred and comes back in a later round.
 *
 * Pure: no I/O, no clock, no global state; deterministic for the same
 * inputs.  Errors are returned, not aborted on, so simulators can test them.
 */
#ifndef TS_REPAIR_PLAN_H
#define TS_REPAIR_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include "common/chunk_id.h"
#include "common/ts_error.h"
#include "metadata/server_state.h"

#define TS_PLAN_MAX_SOURCES 4

/* One chunkserver as the planners see it. */
typedef struct ts_plan_server {
    const char *id;            /* "cs-1"; hashed by placement */
    const char *zone;          /* NULL or "" = its own */
    double weight;             /* > 0 */
    ts_server_state state;
    unsigned copies_in;        /* copies already running to it */
    unsigned copies_out;       /* copies already running from it */
} ts_plan_server;

/* One chunk: holders are indexes into the server array, distinct, in any
 * state (the planner looks at each holder's state). */
typedef struct ts_plan_chunk {
    ts_chunk_id id;
    uint64_t length;
    unsigned replication;      /* >= 1 */
    const uint32_t *holders;
    size_t nholders;
} ts_plan_chunk;

typedef struct ts_copy_task {
    size_t chunk;                             /* index into the chunk array */
    uint32_t dest;                            /* server index */
    uint32_t sources[TS_PLAN_MAX_SOURCES];    /* best first */
    size_t nsources;
    unsigned live;                            /* counted replicas before the copy */
} ts_copy_task;

typedef struct ts_delete_task {
    size_t chunk;
    uint32_t server;
} ts_delete_task;

typedef struct ts_repair_limits {
    unsigned max_copies_in;    /* per destination, running ones included; 0 = 2 */
    unsigned max_copies_out;   /* per source; 0 = 2 */
    uint64_t byte_budget;      /* bytes of copies this round; 0 = unlimited.  The
                                * first copy is planned even when larger, so a
                                * huge chunk cannot stall repair forever. */
    int reports_complete;      /* every live server has sent a full report since
                                * this leader started; no deletes otherwise */
} ts_repair_limits;

typedef struct ts_repair_plan {
    ts_copy_task *copies;      /* most endangered first */
    size_t ncopies;
    ts_delete_task *deletes;
    size_t ndeletes;
    uint64_t copy_bytes;       /* sum of the lengths copied */
    size_t under_replicated;   /* chunks below their factor */
    size_t deferred;           /* copies needed but left for later (limits, budget) */
    size_t unplaceable;        /* copies needed with no eligible server lacking the chunk */
    size_t lost;               /* chunks with no readable replica at all */
} ts_repair_plan;

/* Plans one round.  TS_EINVAL (naming the chunk or server) on bad input: a
 * holder index out of range, a replication factor of 0, a weight <= 0.
 * *out is filled on success and released with ts_repair_plan_free. */
int ts_repair_plan_make(const ts_plan_server *servers, size_t nservers,
                        const ts_plan_chunk *chunks, size_t nchunks,
                        const ts_repair_limits *limits, ts_repair_plan *out, ts_error *err);
void ts_repair_plan_free(ts_repair_plan *p);

/* Shared with rebalance_plan.c: validates the inputs (see above). */
int ts_plan_check_inputs(const ts_plan_server *servers, size_t nservers,
                         const ts_plan_chunk *chunks, size_t nchunks, ts_error *err);

#endif
