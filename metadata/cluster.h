/*
 * Cluster soft state of the metadata server: chunkserver liveness and load
 * (from heartbeats) and replica locations (chunk -> servers holding it, from
 * commits and chunk reports).  None of it is logged: as in HDFS it is
 * rebuilt from heartbeats after a restart or failover.
 *
 * Liveness: a server is up while its last heartbeat is at most
 * heartbeat_timeout_ms old; servers not heard from since this process
 * started are down.  Durable membership (id, address, zone, weight) lives in
 * the namespace (REGISTER_SERVER commands), not here.
 *
 * Reports: a heartbeat's full_report replaces everything known about that
 * server; `added` adds to it.  report_needed stays true for a server until it
 * sent a full report to this process.  Chunks the namespace does not know
 * are ignored (a `known` predicate is passed in), and locations of chunks
 * that left the namespace are dropped when next seen.
 *
 * Thread-safe (one internal mutex).  Callers that pass a namespace-backed
 * predicate hold the store's read lock; the lock order is store -> cluster.
 */
#ifndef TS_META_CLUSTER_H
#define TS_META_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include "common/chunk_id.h"

#define CLUSTER_ID_MAX 64          /* server id bytes (ns_register_server limit) */
#define CLUSTER_DEFAULT_TIMEOUT_MS 30000
#define CLUSTER_REPLICATION 3      /* default replication factor */

typedef struct cluster cluster;

/* 1 when the namespace knows chunk id. */
typedef int (*cluster_known_fn)(void *arg, const ts_chunk_id *id);

cluster *cluster_new(int64_t heartbeat_timeout_ms);
void cluster_free(cluster *c);

typedef struct cluster_heartbeat {
    const char *id;
    uint64_t capacity, used, chunk_count;
    int has_full_report;
    const ts_chunk_id *full_report;
    size_t n_full_report;
    const ts_chunk_id *added;
    size_t n_added;
} cluster_heartbeat;

/* Records a heartbeat received at now_ms (monotonic).  Returns report_needed
 * for the reply. */
int cluster_on_heartbeat(cluster *c, const cluster_heartbeat *hb, int64_t now_ms,
                         cluster_known_fn known, void *arg);

/* Records that server_id holds chunk id (writer-reported, on commit). */
void cluster_add_replica(cluster *c, const ts_chunk_id *id, const char *server_id);

/* Copies the ids of servers known to hold chunk id into out (up servers
 * first, each NUL-terminated), at most max; returns the count. */
size_t cluster_replicas(cluster *c, const ts_chunk_id *id, int64_t now_ms,
                        char out[][CLUSTER_ID_MAX + 1], size_t max);

typedef struct cluster_server_info {
    int seen;                   /* heartbeat received since this process started */
    int up;
    uint64_t capacity, used, chunk_count;
    int64_t last_heartbeat_ms_ago;   /* -1 when never seen */
    int report_needed;
} cluster_server_info;
/* Fills info for server id (zeros with seen = 0 if never heard from). */
void cluster_server(cluster *c, const char *id, int64_t now_ms, cluster_server_info *info);

/* Replicas of chunk id on servers that are up at now_ms (for counting
 * under-replicated chunks: the caller walks the namespace's chunks). */
size_t cluster_live_replicas(cluster *c, const ts_chunk_id *id, int64_t now_ms);

/* Drops the locations of every chunk `known` rejects. */
void cluster_prune(cluster *c, cluster_known_fn known, void *arg);

/* Number of (chunk, server) location pairs known. */
uint64_t cluster_location_count(cluster *c);

#endif
