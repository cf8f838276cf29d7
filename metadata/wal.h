/*
 * Write-ahead log of the metadata server: append-only segment files
 * DIR/wal-<first index, 20 digits>.log holding records
 *
 *     u32 length, u32 crc32c(payload), u64 index, payload[length]
 *
 * (little-endian), indexes consecutive from 1.  A record is durable once
 * wal_wait() returned for its index; the server answers a client only then.
 *
 * Group commit: appends (made under the caller's state lock, so the log
 * order is the apply order) only go to an in-memory pending buffer.  Waiters
 * then take turns as the flusher: the first waiter that finds nobody flushing
 * writes EVERYTHING pending in one write() and one fdatasync(), and wakes all
 * whose index is now durable.  N concurrent clients thus share one fsync.
 *
 * Segments are zero-filled ahead of the records (wal.c "Preallocation"), so
 * a commit's fdatasync writes no file-system metadata; zeros from a record
 * boundary to the end of a segment are that space, and end it.
 *
 * Recovery (wal_open): segments are read in order and each record after the
 * given index is handed to a replay callback.  A bad record at the very tail
 * of the last segment (a header or payload running past end of file, or a
 * CRC mismatch on the last record before the end or the zero tail) is a
 * write torn by a crash: it is truncated away with a warning.  A bad record followed by more data, a
 * gap in the indexes, or a bad tail in an older segment is corruption: open
 * fails with "wal DIR/wal-....log: corrupt record at offset N: reason".
 *
 * Failure policy: if a write or fsync fails the process aborts (ts_die):
 * the in-memory state is already ahead of the disk and cannot be trusted.
 * fsync=0 skips fdatasync (benchmarks only -- UNSAFE: a machine crash loses
 * acknowledged updates).
 *
 * Thread-safety: wal_append and wal_rotate must be serialized by the caller
 * (the store's state lock); wal_wait may be called from any thread.
 */
#ifndef TS_META_WAL_H
#define TS_META_WAL_H

#include <stddef.h>
#include <stdint.h>
#include "common/ts_error.h"

#define WAL_HEADER_LEN 16
#define WAL_MAX_RECORD (64u << 20)

typedef struct wal wal;

/* Called for each record with index > after_index, in order.  A nonzero
 * return stops recovery and becomes wal_open's result. */
typedef int (*wal_replay_fn)(void *arg, uint64_t index, const void *payload, size_t len,
                             ts_error *err);

/* Opens (creating if needed) the log in dir.  after_index is the last index
 * already contained in the loaded snapshot (0 for none); records up to it are
 * skipped, and the log must continue right after it.  On success *out is
 * ready for appends after the last record.  TS_ECORRUPT, TS_EIO. */
int wal_open(const char *dir, uint64_t after_index, int fsync_enabled, wal_replay_fn fn,
             void *arg, wal **out, ts_error *err);

/* Queues a record and returns its index (last index + 1).  Not yet durable. */
uint64_t wal_append(wal *w, const void *payload, size_t len);
/* Blocks until the record `index` is durable (flushing as described above). */
void wal_wait(wal *w, uint64_t index);
/* Everything appended so far is durable when this returns. */
void wal_sync(wal *w);

/* Makes everything durable, then starts a new segment at last index + 1 and
 * deletes all older segments (their records must be covered by a durable
 * snapshot).  Caller serializes with appends.  TS_EIO. */
int wal_rotate(wal *w, ts_error *err);

/* The Raft log (metadata/raft/raft_storage.h) also needs: */

/* Makes everything durable, then removes records >= from (a conflicting
 * suffix): the segment holding `from` is cut there and later segments are
 * deleted; the next append gets index `from`.  No-op when from is beyond
 * the last index.  TS_EINVAL (from before the first segment), TS_EIO. */
int wal_truncate(wal *w, uint64_t from, ts_error *err);
/* Deletes every segment and continues with an empty log whose next record
 * is after + 1 (a snapshot from the leader replaced the whole log).  TS_EIO. */
int wal_reset(wal *w, uint64_t after, ts_error *err);
/* Makes everything durable and starts a new segment at last index + 1,
 * keeping the older ones (size-bounded segments).  TS_EIO. */
int wal_roll(wal *w, ts_error *err);
/* Deletes the segments all of whose records are <= upto (covered by a
 * durable snapshot); never the current one.  TS_EIO. */
int wal_compact(wal *w, uint64_t upto, ts_error *err);
/* Bytes in the current segment, pending ones included. */
uint64_t wal_segment_bytes(wal *w);

uint64_t wal_last_index(wal *w);

typedef struct wal_stats {
    uint64_t records;       /* appended by this process */
    uint64_t replayed;      /* handed to the replay callback at open */
    uint64_t flushes;       /* write+fsync rounds */
    uint64_t bytes;         /* written by this process */
    uint64_t torn_dropped;  /* torn tails truncated at open */
} wal_stats;
void wal_get_stats(wal *w, wal_stats *st);

/* Flushes what is pending and closes.  NULL is fine. */
void wal_close(wal *w);

#endif
