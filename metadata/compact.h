/*
 * The compactor of the metadata leader: plans append compaction and
 * small-file packing with compact_plan.h over the namespace, has
 * chunkservers build the new chunks (POST /v1/chunk/ID/build: the data
 * never flows through the metadata server), then commits each job with one
 * CMD_REPLACE_EXTENTS command -- a compare-and-swap per file on the version
 * the plan read, so a file written meanwhile keeps its new data and is
 * simply compacted in a later round.  The chunks a compaction replaced
 * become orphans and are deleted by the garbage collector (gc.h) after its
 * grace period, so readers holding the old extent list keep reading them
 * until then.  New chunks whose command failed (CAS lost everywhere,
 * leadership lost) are orphans too.
 *
 * Background rounds (when enabled) run every interval_ms while this server
 * leads, copying at most bytes_per_sec (a token bucket; a job is started
 * while tokens remain), over files not modified for min_age_ms in
 * directories whose entries did not change for as long; compact_run does
 * the same on demand for a subtree
 * (`tessera admin compact`), or only plans it (dry run).  One run at a
 * time.
 */
#ifndef TS_META_COMPACT_H
#define TS_META_COMPACT_H

#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/cluster.h"
#include "metadata/compact_plan.h"
#include "metadata/store.h"

typedef struct compact compact;

typedef struct compact_opts {
    cp_opts plan;
    int background;             /* run rounds by itself */
    int64_t interval_ms;        /* between rounds; 0 = 10000 */
    uint64_t bytes_per_sec;     /* copy budget of background rounds; 0 = 32 MiB/s */
    int64_t min_age_ms;         /* background rounds skip files modified more recently */
} compact_opts;

/* Starts the thread (which acts only when opts->background) over st and cl
 * (borrowed: they must outlive compact_stop).  TS_EIO. */
int compact_start(store *st, cluster *cl, const compact_opts *o, compact **out, ts_error *err);
/* Stops and joins (a running job finishes first).  NULL ok. */
void compact_stop(compact *c);

typedef struct compact_report {
    uint64_t files;             /* regular files looked at */
    uint64_t append_files;      /* planned for append compaction */
    uint64_t pack_files;        /* planned into packs */
    uint64_t packs;             /* pack chunks planned */
    uint64_t extents_before;    /* of the planned files, in the ranges rewritten */
    uint64_t extents_after;
    uint64_t new_chunks;
    uint64_t bytes;             /* to copy */
    uint64_t reclaimable;       /* dead bytes in chunks still referenced */
    /* when run (not a dry run): */
    uint64_t files_replaced;    /* CAS succeeded */
    uint64_t cas_failures;      /* a writer won: retried in a later round */
    uint64_t jobs_failed;       /* build or commit failed (logged) */
    uint64_t deferred_files;    /* planned, left for a later call (max_bytes reached) */
} compact_report;

/* Plans files under inode root (a directory, walked recursively, or one
 * file; TS_ROOT_INO for everything) and runs the jobs unless dry_run,
 * starting jobs while fewer than max_bytes (0 = no limit) were copied: the
 * rest are counted as deferred, for the next call.  *rep says what was
 * planned and done.  TS_ENOTLEADER when not leading, TS_ENOENT for an
 * unknown root. */
int compact_run(compact *c, uint64_t root, int dry_run, uint64_t max_bytes,
                compact_report *rep, ts_error *err);

typedef struct compact_stats {
    int background;
    uint64_t rounds;
    uint64_t files_compacted_total;  /* append compactions committed */
    uint64_t files_packed_total;     /* files moved into packs */
    uint64_t cas_failures_total;
    uint64_t jobs_failed_total;
    uint64_t chunks_built_total;
    uint64_t bytes_copied_total;
    uint64_t reclaimable;            /* last plan: dead bytes in referenced chunks */
    uint64_t small_extent;           /* the thresholds, for the status */
} compact_stats;
void compact_get_stats(compact *c, compact_stats *out);

#endif
