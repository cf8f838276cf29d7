/*
 * The compaction planner: pure decisions (no I/O, no clock) on which files
 * to rewrite and how, taken by the metadata leader's compactor (compact.h)
 * and by `tessera admin compact --dry-run`.
 *
 * Append compaction (cp_plan_append): a file whose tail holds at least
 * min_extents "small" extents (shorter than small_extent) gets that tail
 * rewritten into new chunks of at most chunk_size.  Leading extents that
 * are not small are left alone -- a big file is never re-copied to absorb
 * a small tail -- except the one just before the tail when it is shorter
 * than a chunk and no longer than the tail's bytes (so repeated compaction
 * of a growing log fills chunks up instead of leaving one partial chunk
 * per round).
 *
 *   Write-amplification bound: a compaction copies the tail's new bytes
 *   plus at most as many old bytes (the absorbed extent is <= the tail),
 *   so every byte copied a second time is paid for by at least as many
 *   fresh bytes: over the life of a file the compactor writes at most 2x
 *   the bytes appended (each replica), on top of the original write.
 *
 * Small-file packing (cp_plan_pack): files of at most small_file bytes
 * whose chunks hold nothing of any other file are copied, in the order
 * given (the caller passes inode order: files created close in time end up
 * together), into shared pack chunks of up to chunk_size; a pack needs at
 * least min_pack_files files and takes at most max_pack_files (one
 * command carries every file of a pack).  A pack chunk whose live bytes (extents still
 * pointing into it) fall below repack_live of its length makes its
 * remaining files candidates again, so they move to a new pack and the old
 * chunk's space is reclaimed.
 *
 * The new extents of a file cover exactly the bytes its old extents cover
 * in the rewritten range (holes stay holes), as the compare-and-swap
 * command requires (ns_replace_extents).  New chunks are referred to by
 * index in their job; the executor gives them ids.
 */
#ifndef TS_META_COMPACT_PLAN_H
#define TS_META_COMPACT_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include "common/proto.h"
#include "common/ts_error.h"

typedef struct cp_opts {
    uint64_t chunk_size;        /* new chunks at most this long (64 MiB) */
    uint32_t min_extents;       /* small extents in a tail worth compacting (16) */
    uint64_t small_extent;      /* shorter extents are small (1 MiB) */
    uint64_t small_file;        /* files up to this size are packed (1 MiB); 0 = no packing */
    uint32_t min_pack_files;    /* files in one pack at least (8) */
    uint32_t max_pack_files;    /* ... and at most (4096): bounds one command's size */
    double repack_live;         /* repack a pack chunk below this live fraction (0.5) */
} cp_opts;

/* Fills o with the defaults above. */
void cp_opts_default(cp_opts *o);

/* A file as the planner sees it (borrowed arrays). */
typedef struct cp_file {
    uint64_t ino, version, size;
    const ts_extent *ext;       /* sorted, non-overlapping (the namespace's) */
    size_t n;
    const uint64_t *chunk_len;  /* the length of ext[i]'s chunk */
    int has_inline;             /* some extent is in an inline chunk (the caller's note) */
} cp_file;

typedef struct cp_piece {
    ts_chunk_id chunk;
    uint64_t offset, length;
} cp_piece;

typedef struct cp_chunk {
    cp_piece *pieces;
    size_t npieces;
    uint64_t length;
} cp_chunk;

typedef struct cp_file_job {
    uint64_t ino, version, offset, length;  /* the range replaced */
    ts_extent *ext;             /* new extents; .chunk is not set */
    uint32_t *ext_chunk;        /* index of ext[i]'s chunk in the job */
    size_t n;
    size_t old_extents;         /* extents replaced */
} cp_file_job;

enum cp_kind { CP_APPEND = 1, CP_PACK = 2 };

typedef struct cp_job {
    enum cp_kind kind;
    cp_chunk *chunks;
    size_t nchunks;
    cp_file_job *files;
    size_t nfiles;
    uint64_t bytes;             /* bytes copied */
} cp_job;

void cp_job_free(cp_job *j);

/* Plans append compaction of f.  1 with *out filled (free with
 * cp_job_free), 0 when the file does not need it. */
int cp_plan_append(const cp_file *f, const cp_opts *o, cp_job *out);

/* Plans packing of the small files among files[0..n) (in that order).
 * *jobs (malloc'd, free each with cp_job_free, then the array) gets one job
 * per pack chunk; *reclaimable the bytes of chunks no extent points into
 * any more (dead space of pack chunks).  TS_EINVAL for bad options. */
int cp_plan_pack(const cp_file *files, size_t n, const cp_opts *o, cp_job **jobs,
                 size_t *njobs, uint64_t *reclaimable, ts_error *err);

/* Checks a job against the file it was planned from: every file job's new
 * extents cover exactly what its old ones cover in the range, each piece
 * lies inside its source chunk, chunk lengths add up.  0 or TS_ECORRUPT
 * naming the first violation (tests call it after every plan). */
int cp_job_check(const cp_job *j, const cp_file *const *files, ts_error *err);

#endif
