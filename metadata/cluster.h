/*
 * Cluster soft state of the metadata server: chunkserver liveness and load
 * (from heartbeats) and replica locations (chunk -> servers holding it, from
 * commits and chunk reports).  None of it is logged: as in HDFS it is
 * rebuilt from heartbeats after a restart or failover.
 *
 * Liveness follows the server state machine (server_state.h): a server
 * silent for more than heartbeat_timeout_ms is suspect, for more than
 * down_after_ms down; a heartbeat brings it back up.  When this process
 * becomes leader (cluster_leader_start) every server starts suspect, as
 * last heard from at that moment, and must send a full report again, so a
 * new leader decides nothing from a view older than its own term.  Every
 * state change is logged.  Durable membership (id, address, zone, weight)
 * lives in the namespace (REGISTER_SERVER commands), not here.
 *
 * Reports: a heartbeat's full_report replaces everything known about that
 * server; `added` adds to it; `removed` and `corrupt` (replicas the server
 * quarantined) take away.  report_needed stays true for a server until it
 * sent a full report to this process since it became leader.  Chunks the
 * namespace does not know (a `known` predicate is passed in) are not
 * replica locations but orphans (orphans.h), and locations of chunks that
 * left the namespace become orphans when pruned.
 *
 * Thread-safe (one internal mutex).  Callers that pass a namespace-backed
 * predicate hold the store's read lock; the lock order is store -> cluster.
 */
#ifndef TS_META_CLUSTER_H
#define TS_META_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include "common/chunk_id.h"
#include "metadata/server_state.h"

#define CLUSTER_ID_MAX 64          /* server id bytes (ns_register_server limit) */
#define CLUSTER_DEFAULT_TIMEOUT_MS 30000
#define CLUSTER_REPLICATION 3      /* default replication factor */

typedef struct cluster cluster;

/* 1 when the namespace knows chunk id. */
typedef int (*cluster_known_fn)(void *arg, const ts_chunk_id *id);

/* Suspect after heartbeat_timeout_ms of silence (<= 0: the default), down
 * after twice that until cluster_set_down_after says otherwise. */
cluster *cluster_new(int64_t heartbeat_timeout_ms);
void cluster_free(cluster *c);
/* Silence before down; values not above heartbeat_timeout_ms are raised to
 * twice it (suspect must come first). */
void cluster_set_down_after(cluster *c, int64_t down_after_ms);

/* This process just became leader at now_ms: every server known is suspect
 * since now and must send a full report again (see above). */
void cluster_leader_start(cluster *c, int64_t now_ms);
/* Records the term this process leads in (store_leader_term; 0 = not
 * leading, ignored).  A term other than the last one recorded starts the
 * leadership afresh with cluster_leader_start; returns 1 then.  Called
 * before a heartbeat is applied, so no report of an older term counts. */
int cluster_lead_term(cluster *c, uint64_t term, int64_t now_ms);
/* Makes sure a server of the membership is tracked (suspect since the
 * leader start when new), so its later state changes are logged too. */
void cluster_track(cluster *c, const char *server_id);
/* Time passes: applies silence to every server (logging changes).  Returns
 * the number of servers that changed state. */
size_t cluster_tick(cluster *c, int64_t now_ms);

typedef struct cluster_heartbeat {
    const char *id;
    uint64_t capacity, used, chunk_count;
    int has_full_report;
    const ts_chunk_id *full_report;
    size_t n_full_report;
    const ts_chunk_id *added;
    size_t n_added;
    const ts_chunk_id *removed;     /* deleted, or lost with a data directory */
    size_t n_removed;
    const ts_chunk_id *corrupt;     /* quarantined: found damaged */
    size_t n_corrupt;
    size_t n_failed_dirs;           /* data directories out of service */
} cluster_heartbeat;

/* Records a heartbeat received at now_ms (monotonic).  Returns report_needed
 * for the reply. */
int cluster_on_heartbeat(cluster *c, const cluster_heartbeat *hb, int64_t now_ms,
                         cluster_known_fn known, void *arg);

/* Records that server_id holds chunk id (writer-reported, on commit). */
void cluster_add_replica(cluster *c, const ts_chunk_id *id, const char *server_id);
/* Forgets that server_id holds chunk id (after a DELETE it answered). */
void cluster_drop_replica(cluster *c, const ts_chunk_id *id, const char *server_id);
/* 1 when server_id is known to hold chunk id. */
int cluster_holds(cluster *c, const ts_chunk_id *id, const char *server_id);

/* Copies the ids of servers known to hold chunk id into out (up servers
 * first, each NUL-terminated), at most max; returns the count. */
size_t cluster_replicas(cluster *c, const ts_chunk_id *id, int64_t now_ms,
                        char out[][CLUSTER_ID_MAX + 1], size_t max);

typedef struct cluster_server_info {
    int seen;                   /* heartbeat received since this process started */
    int up;                     /* state == TS_SERVER_UP */
    ts_server_state state;
    int64_t state_since_ms_ago; /* in the current state for this long */
    uint64_t failed_dirs;       /* from its last heartbeat */
    uint64_t corrupt_reported;  /* replicas it reported corrupt to this process */
    uint64_t capacity, used, chunk_count;
    int64_t last_heartbeat_ms_ago;   /* -1 when never seen */
    int report_needed;
} cluster_server_info;
/* Fills info for server id (applying silence first).  A server never heard
 * from is suspect, then down, counted from the leader start. */
void cluster_server(cluster *c, const char *id, int64_t now_ms, cluster_server_info *info);

/* Replicas of chunk id on servers whose state counts toward replication
 * (up or suspect, ts_server_state_counts) at now_ms (for counting
 * under-replicated chunks: the caller walks the namespace's chunks). */
size_t cluster_live_replicas(cluster *c, const ts_chunk_id *id, int64_t now_ms);

/* Drops the locations of every chunk `known` rejects; those replicas
 * become orphans (below). */
void cluster_prune(cluster *c, cluster_known_fn known, void *arg);

/* ---- Orphan replicas (orphans.h; deleted by the garbage collector) ----
 * Reported replicas of chunks the namespace does not know, since this
 * process became leader: from full reports and `added` lists, and the
 * locations cluster_prune drops (chunks whose refcount fell to zero). */

/* Prunes at now_ms (as cluster_prune) and takes chunks that became known
 * (a late commit) out of the orphans, back into the replica locations. */
void cluster_orphans_refresh(cluster *c, cluster_known_fn known, void *arg, int64_t now_ms);

typedef struct cluster_orphan {
    ts_chunk_id id;
    char server[CLUSTER_ID_MAX + 1];
    int64_t since_ms;          /* first seen as an orphan by this leader */
} cluster_orphan;
/* Fills out with up to max orphan replicas that have been orphans for at
 * least grace_ms at now_ms, on servers that are up and have sent their
 * full report to this leader.  Returns the count. */
size_t cluster_orphans_due(cluster *c, int64_t now_ms, int64_t grace_ms, cluster_orphan *out,
                           size_t max);
/* 1 when server_id still holds orphan id, an orphan for grace_ms at now_ms
 * (the re-check right before a delete). */
int cluster_orphan_still(cluster *c, const ts_chunk_id *id, const char *server_id,
                         int64_t now_ms, int64_t grace_ms);
/* server_id answered the delete of orphan id. */
void cluster_orphan_deleted(cluster *c, const ts_chunk_id *id, const char *server_id);
/* Orphan chunks and (chunk, server) orphan replicas known now. */
void cluster_orphan_counts(cluster *c, uint64_t *chunks, uint64_t *replicas);

/* Number of (chunk, server) location pairs known. */
uint64_t cluster_location_count(cluster *c);
/* Replicas reported corrupt by chunkservers since this process started. */
uint64_t cluster_corrupt_count(cluster *c);

#endif
