/*
 * Snapshots of the namespace state machine: DIR/snap-<index, 20 digits>.snap
 * holds the whole state after applying log record `index`, so a restart is
 * "load the newest valid snapshot, replay the log records after it".
 *
 * File format (common/codec.h): u32 magic "TSSN", u8 version 1, u64 index,
 * bytes namespace image (ns_encode), u32 crc32c of everything before it.
 * Written as snap-INDEX.tmp, fsynced, renamed into place, directory fsynced:
 * a crash leaves either the old set of snapshots or the new one complete.
 *
 * The store writes them from the background checkpointer's private copy of
 * the state (metadata/checkpoint.h), never from the live one.
 */
#ifndef TS_META_SNAPSHOT_H
#define TS_META_SNAPSHOT_H

#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/namespace.h"

/* Writes the snapshot of ns at index durably.  TS_EIO. */
int snapshot_write(const char *dir, uint64_t index, const ns_state *ns, ts_error *err);

/* Loads the newest snapshot that validates; an invalid newer one is skipped
 * with a warning (the log check then decides whether the older one plus the
 * log still give a complete history).  *ns = NULL and *index = 0 when there
 * is none.  TS_EIO on unreadable directories. */
int snapshot_load_latest(const char *dir, ns_state **ns, uint64_t *index, ts_error *err);

/* Loads one snapshot file.  TS_ECORRUPT naming the file and the problem. */
int snapshot_load_file(const char *path, ns_state **ns, uint64_t *index, ts_error *err);

/* Deletes snapshots older than keep_index and leftover .tmp files. */
int snapshot_prune(const char *dir, uint64_t keep_index, ts_error *err);

#endif
