/*
 * Orphan replicas: chunk files that chunkservers report holding but the
 * namespace does not reference -- written by a writer that crashed before
 * its commit, or left behind when a chunk's reference count fell to zero
 * (delete, overwrite, truncate, compaction).  The garbage collector
 * (gc.h) deletes them once they have been orphans for a grace period.
 *
 * The table belongs to the leader's soft state (cluster.c keeps one and
 * calls it under its mutex); it is emptied when a term starts, so every
 * orphan was seen by this leader, and `since_ms` is the first time this
 * leader saw the chunk as an orphan.  A chunk that becomes known again
 * (a late commit) is taken out with orphans_take, never deleted.
 *
 * Servers are small indexes interned by the caller.  Not thread-safe.
 * Pure: no I/O, no clock (times are parameters).
 */
#ifndef TS_META_ORPHANS_H
#define TS_META_ORPHANS_H

#include <stddef.h>
#include <stdint.h>
#include "common/chunk_id.h"

typedef struct orphans orphans;

orphans *orphans_new(void);
void orphans_free(orphans *o);
/* Forgets everything (a new term). */
void orphans_clear(orphans *o);

/* Server srv holds orphan chunk id, seen at now_ms.  The first sighting of
 * the chunk is kept: a second server reporting it does not restart its
 * grace period. */
void orphans_note(orphans *o, const ts_chunk_id *id, uint16_t srv, int64_t now_ms);
/* Server srv no longer holds id (reported removed, or deleted by GC); the
 * chunk leaves the table with its last holder. */
void orphans_drop(orphans *o, const ts_chunk_id *id, uint16_t srv);
/* Forgets every orphan replica on srv (before its full report is applied). */
void orphans_forget_server(orphans *o, uint16_t srv);
/* Takes chunk id out of the table (it became known): its holders are
 * copied to srv (at most max) and their number returned; 0 when absent. */
size_t orphans_take(orphans *o, const ts_chunk_id *id, uint16_t *srv, size_t max);

/* 1 when srv holds orphan chunk id first seen at or before seen_by_ms. */
int orphans_holds(const orphans *o, const ts_chunk_id *id, uint16_t srv, int64_t seen_by_ms);

/* Calls fn for every orphan chunk (canonical order); stops on nonzero.
 * fn must not change the table. */
typedef int (*orphans_fn)(void *arg, const ts_chunk_id *id, const uint16_t *srv, size_t n,
                          int64_t since_ms);
void orphans_foreach(const orphans *o, orphans_fn fn, void *arg);

/* Orphan chunks, and (chunk, server) replicas of them. */
uint64_t orphans_chunks(const orphans *o);
uint64_t orphans_replicas(const orphans *o);

#endif
