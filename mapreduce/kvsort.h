/*
 * The shuffle's sorting: an external merge sort of record lines with bounded
 * memory (mr_sorter) and a k-way merge of sorted line streams (mr_merge).
 *
 * Records are text lines "key<TAB>value" (or just "key"), kept with their
 * '\n'.  Order is by partition, then key as bytes (mr_key_cmp); records with
 * equal keys keep no particular order (as in Hadoop).
 *
 * A sorter collects records in memory up to mem_limit bytes (line bytes plus
 * a small per-record overhead); when full it sorts them, optionally runs the
 * combiner over each partition, and spills a run file into its directory.
 * mr_sorter_finish merges the runs into one output file in which partition
 * p is the byte range [offsets[p], offsets[p+1]), sorted: what a map task
 * serves to reducer p.  Memory stays below mem_limit plus one 64 KiB buffer
 * per run during the merge.
 */
#ifndef MR_KVSORT_H
#define MR_KVSORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/ts_error.h"
#include "common/util.h"

/* A sorted record line: line[0..len) including the '\n'; key is
 * line[0..keylen). */
typedef struct mr_line {
    const char *line;
    size_t len, keylen;
} mr_line;

/* The combiner hook: given the sorted records of one partition of one
 * spill, appends its output lines (each ending with '\n') to out.  They are
 * sorted again before being written.  Returns 0 or a negative code. */
typedef int (*mr_combine_fn)(void *ctx, unsigned part, const mr_line *recs, size_t n,
                             ts_buf *out, ts_error *err);

typedef struct mr_sorter mr_sorter;

typedef struct mr_sorter_stats {
    uint64_t records_in;        /* added */
    uint64_t records_out;       /* in the final output (after combining) */
    unsigned spills;
} mr_sorter_stats;

/* dir (existing) holds the run files.  nparts >= 1.  mem_limit >= 64 KiB.
 * combine may be NULL.  *out is freed with mr_sorter_free. */
int mr_sorter_open(const char *dir, unsigned nparts, size_t mem_limit, mr_combine_fn combine,
                   void *combine_ctx, mr_sorter **out, ts_error *err);
/* Adds one record line (len excludes the '\n', which the sorter adds). */
int mr_sorter_add(mr_sorter *s, const char *line, size_t len, ts_error *err);
/* Sorts and merges everything into out_path (created or replaced) and fills
 * offsets[0..nparts] (offsets[nparts] = file size). */
int mr_sorter_finish(mr_sorter *s, const char *out_path, uint64_t *offsets, ts_error *err);
void mr_sorter_get_stats(const mr_sorter *s, mr_sorter_stats *st);
/* Removes the run files and frees s. */
void mr_sorter_free(mr_sorter *s);

/* ---- k-way merge of sorted line streams ---- */

/* One sorted stream: bytes [start, end) of fd (borrowed; not closed). */
typedef struct mr_merge_src {
    int fd;
    uint64_t start, end;
} mr_merge_src;

typedef struct mr_merge mr_merge;

int mr_merge_open(const mr_merge_src *srcs, size_t n, mr_merge **out, ts_error *err);
/* The next line in key order into *line (valid until the next call).
 * Returns 1, 0 at the end, or a negative code (a read error, or a source
 * whose last line has no '\n': TS_ECORRUPT).  Sources must be sorted; an
 * unsorted one gives unsorted output, not an error. */
int mr_merge_next(mr_merge *m, mr_line *line, ts_error *err);
void mr_merge_free(mr_merge *m);

/* ---- buffered output file ---- */

typedef struct mr_outfile {
    int fd;
    uint64_t written;
    ts_buf buf;
    char *path;
} mr_outfile;

int mr_outfile_open(mr_outfile *o, const char *path, ts_error *err);
int mr_outfile_write(mr_outfile *o, const void *data, size_t len, ts_error *err);
/* Flushes and closes; also on error (o is then closed). */
int mr_outfile_close(mr_outfile *o, ts_error *err);

#endif
