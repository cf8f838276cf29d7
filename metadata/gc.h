/*
 * The garbage collector of the metadata leader: one thread that deletes
 * orphan replicas (cluster.h, orphans.h) -- chunk files chunkservers hold
 * that the namespace does not reference: written by a writer that crashed
 * before committing, or left when a chunk's reference count fell to zero
 * (delete, overwrite, truncate, compaction).
 *
 * Safety rules, each for a reason:
 *   - only while this server leads, and only orphans seen in full or
 *     incremental reports since it became leader (the table is emptied at
 *     every term start): a new leader never acts on an older view;
 *   - only on servers that sent their full report to this leader and are
 *     up (they answer the delete);
 *   - only after the chunk has been an orphan for grace_ms: a writer
 *     commits within seconds of sealing, so an uncommitted chunk older
 *     than the grace period belongs to a dead writer; a reader that
 *     fetched an extent list before the chunk left the namespace (delete,
 *     compaction) keeps reading it for that long;
 *   - right before each DELETE, under the store's read lock, the chunk is
 *     checked again: still unknown to the namespace, still an orphan for
 *     grace_ms.  A commit that races the DELETE itself (a writer silent
 *     for the whole grace period that commits in the very millisecond of
 *     the delete) is the one case not covered; the grace period makes it
 *     a writer stalled for longer than it (default 1 h).
 *
 * Pacing: at most deletes_per_sec DELETE requests, up to 4 at a time (each
 * costs the chunkserver a directory fsync: a mass delete needs parallelism).
 */
#ifndef TS_META_GC_H
#define TS_META_GC_H

#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/cluster.h"
#include "metadata/store.h"

#define GC_DEFAULT_GRACE_MS (3600 * 1000)

typedef struct gc gc;

typedef struct gc_opts {
    int64_t grace_ms;           /* orphan for this long before deletion; 0 = 1 h */
    int64_t interval_ms;        /* between rounds; 0 = 1000 */
    unsigned deletes_per_sec;   /* 0 = 1000 */
} gc_opts;

/* Starts the thread over st and cl (borrowed: they must outlive gc_stop).
 * TS_EIO when it cannot start. */
int gc_start(store *st, cluster *cl, const gc_opts *o, gc **out, ts_error *err);
/* Stops and joins the thread (a running delete finishes first).  NULL ok. */
void gc_stop(gc *g);

typedef struct gc_stats {
    int leader;                 /* the loop acts (this server leads) */
    int64_t grace_ms;
    uint64_t orphan_chunks;     /* last round: orphan chunks known */
    uint64_t orphan_replicas;   /* ... and their replicas */
    uint64_t due;               /* ... replicas past the grace period */
    uint64_t deletes_total;     /* orphan replicas deleted */
    uint64_t delete_failures_total;
    uint64_t rechecks_saved;    /* due replicas the last re-check spared */
} gc_stats;

void gc_get_stats(gc *g, gc_stats *out);

#endif
