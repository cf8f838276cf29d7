/*
 * The re-replication loop of the metadata leader: one thread that, while
 * this server is the leader, turns the namespace (every chunk a file
 * references, with its length) and the cluster soft state (server states,
 * replica locations; cluster.h) into repair_plan.h inputs, and carries the
 * plan out against the chunkservers:
 *
 *   copy:    POST /v1/chunk/ID/replicate {"from":[sources]} to the planned
 *            destination, by a small pool of workers.  503 EBUSY (the
 *            chunkserver is at its own copy limits) puts the destination
 *            on hold for its Retry-After; other failures hold the chunk
 *            back a few seconds.  Either way the chunk is planned again in
 *            a later round.  A copy that answered is "awaiting
 *            confirmation" until the destination's report lists the chunk
 *            (or a timeout drops it); meanwhile it counts as a replica, so
 *            the chunk is not copied twice.
 *   delete:  DELETE /v1/chunk/ID of a surplus replica, only in a round
 *            where no copy is running or awaiting confirmation and every
 *            live server has sent its full report to this leader.
 *
 * Pacing: a cluster-wide token bucket of repair_bytes_per_sec (copies
 * draw the chunk's length when started), the planner's per-server limits
 * on concurrent copies, and the chunkservers' own limits (503).  Nothing
 * is decided until every server that counts has reported since this
 * server became leader (cluster.h: servers never heard from turn down
 * after down_after_ms, which bounds the wait).
 *
 * Measurement, as GFS reported it: an "episode" starts when a round first
 * finds chunks below their factor; the time until no chunk is left with a
 * single live replica is reported apart from the time until every chunk
 * has its full count again (repair_stats).  Progress is logged every few
 * seconds while an episode lasts.
 *
 * The replication factor of every chunk is CLUSTER_REPLICATION: the
 * namespace does not record a per-file factor.
 */
#ifndef TS_META_REPAIR_H
#define TS_META_REPAIR_H

#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/cluster.h"
#include "metadata/store.h"

typedef struct repair repair;

typedef struct repair_opts {
    uint64_t bytes_per_sec;      /* cluster-wide copy budget; 0 = 64 MiB/s */
    unsigned max_copies_per_server; /* in and out, each; 0 = 2 */
    unsigned workers;            /* concurrent copy/delete requests; 0 = 8 */
    int64_t interval_ms;         /* between rounds; 0 = 500 */
    int64_t confirm_timeout_ms;  /* wait for a copy to show in a report; 0 = 30000 */
} repair_opts;

/* Starts the loop thread and its workers over st and cl (borrowed: they
 * must outlive repair_stop).  TS_EIO when a thread cannot start. */
int repair_start(store *st, cluster *cl, const repair_opts *o, repair **out, ts_error *err);
/* Stops and joins every thread (running requests finish first).  NULL ok. */
void repair_stop(repair *r);

typedef struct repair_stats {
    int leader;                     /* the loop acts (this server leads) */
    int reports_complete;           /* every counted server reported */
    uint64_t under_replicated;      /* last round: chunks below their factor */
    uint64_t single_replica;        /* ... with exactly one live replica */
    uint64_t lost;                  /* ... with no readable replica */
    uint64_t copies_running;        /* requests in flight */
    uint64_t copies_awaiting;       /* answered, not yet in a report */
    uint64_t copies_total;          /* confirmed copies */
    uint64_t copy_bytes_total;
    uint64_t copy_failures_total;
    uint64_t copy_busy_total;       /* 503 answers */
    uint64_t deletes_total;
    uint64_t deferred;              /* last round: left for later (limits, budget) */
    int episode_active;
    int64_t episode_ms;             /* how long the current episode has lasted */
    /* The last finished episode (-1: none yet): */
    int64_t last_single_restore_ms; /* to no single-replica chunk (-1: had none) */
    int64_t last_full_restore_ms;   /* to every chunk at its factor */
    uint64_t last_bytes;            /* copied during it */
    double last_mb_per_sec;         /* last_bytes / last_full_restore_ms */
    uint64_t bytes_per_sec;         /* the configured budget */
} repair_stats;

void repair_get_stats(repair *r, repair_stats *out);

/* Rebalance (rebalance_plan.h) runs inside the same loop while the durable
 * flag (namespace.h ns_rebalance) says so: every round re-plans over the
 * current membership and locations (so an interrupted rebalance, or a new
 * leader, simply finds the moves that remain), queues moves most-overfull
 * source first as copy tasks -- the same workers, per-server limits and
 * cluster-wide byte budget as re-replication, which goes first -- plus its
 * own bandwidth limit, and leaves the delete of the replica a move
 * replaces to repair's surplus deletes (copy, confirm, then delete).  When
 * no move remains (or max_moves worth of bytes moved), no rebalance copy
 * is in flight and no surplus replica is left, the loop clears the flag
 * through Raft (CMD_REBALANCE). */
typedef struct repair_rebalance_stats {
    int running;                /* the durable flag, as of the last round */
    int acting;                 /* this server leads and executes it */
    uint64_t bytes_remaining;   /* moves not started yet (last plan) */
    uint64_t moves_remaining;
    uint64_t copies_running;    /* rebalance copies in flight or awaiting a report */
    uint64_t copies_total;      /* confirmed by this leader */
    uint64_t bytes_copied;
    uint64_t copy_failures;     /* rebalance copies that failed (retried later) */
    uint64_t surplus_chunks;    /* chunks whose replaced replica still waits for deletion */
    double imbalance;           /* of the current placement (rebalance_plan.h) */
    double imbalance_after;     /* once the remaining moves are done */
    int64_t last_round_ms_ago;  /* -1: no round yet */
    char note[256];             /* what it waits for, or why it cannot plan */
} repair_rebalance_stats;
void repair_get_rebalance(repair *r, repair_rebalance_stats *out);
/* A rebalance was just started with this much to move: the figures start
 * afresh (until the loop's next round re-plans). */
void repair_rebalance_started(repair *r, uint64_t bytes, uint64_t moves);

#endif
