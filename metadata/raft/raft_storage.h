/*
 * Durable state of one Raft server, in its data directory:
 *
 *   raft-state   hard state: u32 magic "TSRH", u8 version 1, u64 term,
 *                u64 vote, u32 crc32c of what precedes.  Replaced atomically
 *                (tmp, fsync, rename, fsync dir: ts_write_file_atomic).
 *   raft-snap    meta of the newest snapshot: u32 magic "TSRM", u8 version 1,
 *                u8 reset_pending, u64 index, u64 term, u64 size, bytes conf
 *                (raft_conf_encode), u32 crc32c.  Replaced atomically.  The
 *                image itself belongs to the caller (metadata/snapshot.h).
 *   wal-*.log    the log (metadata/wal.h: segment files, a CRC per record,
 *                torn tails dropped, corruption elsewhere reported with file
 *                and offset); record index = entry index, payload = u64 term,
 *                u8 type, bytes data.
 *
 * Installing a snapshot received from the leader replaces the whole log.
 * Crash safety: the meta is first written with reset_pending = 1, then the
 * log is reset, then the flag is cleared; an open that finds the flag set
 * finishes the reset (otherwise entries of a divergent history could be
 * loaded as if they followed the snapshot).  Compaction after a local
 * snapshot is the other way round: the meta first, then old segments go
 * (records the snapshot covers are skipped at open anyway).
 *
 * Not thread-safe: one driving thread calls everything.
 */
#ifndef TS_META_RAFT_STORAGE_H
#define TS_META_RAFT_STORAGE_H

#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/raft/raft.h"

typedef struct raft_storage raft_storage;

/* Opens (creating if needed) the state in dir and fills *rs with what it
 * holds, ready for raft_new (rs->bootstrap is left NULL; *rs points into
 * the storage and stays valid until raft_storage_loaded_free or close).
 * fsync = 0 only for benchmarks (UNSAFE).  TS_EIO, TS_ECORRUPT (naming the
 * file and the offset or field). */
int raft_storage_open(const char *dir, int fsync, raft_storage **out, raft_restore *rs,
                      ts_error *err);
/* Releases the entries loaded at open (after raft_new copied them). */
void raft_storage_loaded_free(raft_storage *s);

/* Persists a ready: the received snapshot's meta (rd->snapshot; the caller
 * has already made the image durable), then the entries (truncating a
 * conflicting suffix first; one fsync for all of them), then the hard
 * state when it changed.  Everything is durable when it returns 0.  TS_EIO. */
int raft_storage_save(raft_storage *s, const raft_ready *rd, ts_error *err);

/* A local snapshot is durable (raft_compact gave meta): record its meta and
 * drop log segments it covers.  TS_EIO. */
int raft_storage_snapshot_taken(raft_storage *s, const raft_snapshot_meta *meta, ts_error *err);

typedef struct raft_storage_stats {
    uint64_t first_index, last_index;   /* of the log on disk */
    uint64_t snapshot_index;
    uint64_t hard_state_writes, entry_syncs, entries_written;
} raft_storage_stats;
void raft_storage_get_stats(raft_storage *s, raft_storage_stats *st);

void raft_storage_close(raft_storage *s);

#endif
