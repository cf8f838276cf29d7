/*
 * The store: the namespace state machine made durable.  It owns the state,
 * the write-ahead log and the snapshot policy, and sequences commands:
 *
 *   submit(cmd):  take the state write lock; stamp cmd->now_ns from the
 *                 clock (monotonic: never below the previous stamp); apply;
 *                 on success encode and append to the WAL pending buffer;
 *                 every snapshot_every records write a snapshot; release
 *                 the lock; wait until the record is durable (group commit,
 *                 see wal.h); answer.
 *
 * A failed command changes nothing and is not logged, but its answer still
 * waits for the records it observed to be durable, so a client never sees
 * an error that only made sense in a state lost by a crash.
 *
 * Reads take the state read lock.  They may see applied records whose fsync
 * is still in flight (read-your-writes holds, a crash can lose what a read
 * saw but no acknowledged write); the Raft issue brings ReadIndex reads.
 *
 * Recovery (store_open): lock DATA/LOCK (one server per directory), load
 * the newest valid snapshot, replay the log after it.  The very first start
 * writes snapshot 0 holding the root directory, so every later start has a
 * snapshot to begin from.
 *
 * Snapshots are stop-the-world under the write lock in this issue (noted in
 * snapshot.h).
 */
#ifndef TS_META_STORE_H
#define TS_META_STORE_H

#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/command.h"
#include "metadata/namespace.h"
#include "metadata/wal.h"

typedef struct store store;

typedef struct store_opts {
    const char *data_dir;        /* created if missing */
    int wal_fsync;               /* 0 only for benchmarks: UNSAFE */
    uint64_t snapshot_every;     /* records between snapshots; 0 = 100000 */
    int64_t (*clock_ns)(void);   /* NULL = ts_now_ns; tests inject a fake */
} store_opts;

/* Opens or creates the data directory and recovers.  TS_EIO (unwritable or
 * locked directory), TS_ECORRUPT (damaged log or snapshots). */
int store_open(const store_opts *opts, store **out, ts_error *err);
/* Syncs the log and releases everything.  NULL is fine. */
void store_close(store *s);

/* Applies c durably (see above); c->now_ns is overwritten.  c stays owned
 * by the caller.  0 with *res, or the command's error. */
int store_submit(store *s, cmd *c, cmd_result *res, ts_error *err);

/* Read access: the namespace is valid between lock and unlock. */
const ns_state *store_read_lock(store *s);
void store_read_unlock(store *s);

/* Writes a snapshot now (tests, shutdown).  TS_EIO. */
int store_snapshot(store *s, ts_error *err);

typedef struct store_stats {
    uint64_t last_index;         /* last log index applied */
    uint64_t snapshot_index;     /* of the newest snapshot */
    uint64_t snapshots_written;
    uint64_t commands_ok, commands_failed;
    wal_stats wal;
} store_stats;
void store_get_stats(store *s, store_stats *st);

#endif
