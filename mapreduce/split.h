/*
 * Input splits and line records of the MapReduce runner (pure: no I/O).
 *
 * A split is a byte range [start, end) of one input file, chunk-sized, with
 * the servers that hold most of its bytes (its preferred hosts).  Records are
 * lines, cut the way Hadoop's LineRecordReader cuts them, so that every line
 * of a file is processed by exactly one split:
 *
 *   a line belongs to the split that contains its first byte.
 *
 * A split therefore reads past its end to finish its last line, and every
 * split but the first skips its partial first line.  The reader cannot tell
 * whether the line at `start` begins there without looking at the byte
 * before it, so a split with start > 0 is read from start - 1: if that byte
 * is '\n', the line at `start` is whole and ours; otherwise everything up to
 * the next '\n' belongs to the previous split.
 *
 *     file:   ...xx\nline-A crosses|the boundary\nline-B\n...
 *                          split k ─┘└─ split k+1
 *     split k emits line-A whole; split k+1 skips to after its '\n' and
 *     starts with line-B.
 */
#ifndef MR_SPLIT_H
#define MR_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include "common/ts_error.h"

/* ------------------------------------------------------------ splits */

/* What split computation needs to know of one extent of an input file. */
typedef struct mr_extent_info {
    uint64_t file_offset, length;
    char *const *replicas;      /* server ids holding the chunk (borrowed) */
    size_t nreplicas;
} mr_extent_info;

typedef struct mr_file_info {
    const char *path;           /* borrowed */
    uint64_t ino, size;
    const mr_extent_info *extents; /* sorted by file_offset (borrowed) */
    size_t nextents;
} mr_file_info;

#define MR_MAX_HOSTS 8

typedef struct mr_split {
    size_t file;                /* index into the files given */
    uint64_t start, end;        /* [start, end) */
    /* Servers holding the extent that covers most of the split (ties: the
     * earlier extent), pointers into the extents' replica lists. */
    const char *hosts[MR_MAX_HOSTS];
    size_t nhosts;
} mr_split;

/* Cuts every file into splits of split_size bytes (the last one of a file
 * shorter; an empty file has none) and finds their hosts.  *out is malloc'd
 * (caller frees; NULL when *n is 0).  TS_EINVAL when split_size is 0. */
int mr_splits_compute(const mr_file_info *files, size_t nfiles, uint64_t split_size,
                      mr_split **out, size_t *n, ts_error *err);

/* ------------------------------------------------------- line records */

typedef struct mr_linerec {
    uint64_t start, end;        /* the split */
    uint64_t pos;               /* file offset of the next byte to feed */
    int skipping;               /* still discarding the previous split's line */
    int at_line_start;          /* pos is the first byte of a line */
    int mid_line;               /* some of the current line was emitted */
    int done;                   /* the split's last line is complete */
} mr_linerec;

/* Starts reading split [start, end).  Feed bytes from mr_linerec_pos(). */
void mr_linerec_init(mr_linerec *r, uint64_t start, uint64_t end);
/* File offset of the next byte the reader wants. */
uint64_t mr_linerec_pos(const mr_linerec *r);
/* Consumes buf (the bytes at mr_linerec_pos()) and sets [*emit_off,
 * *emit_off + *emit_len) to the part of buf that is record data of this
 * split (whole lines with their '\n', possibly the start of a line that a
 * later call finishes).  Returns the bytes consumed (< len only once done). */
size_t mr_linerec_feed(mr_linerec *r, const char *buf, size_t len, size_t *emit_off,
                       size_t *emit_len);
/* 1 once the split's records are complete (stop reading). */
int mr_linerec_done(const mr_linerec *r);
/* At end of file: 1 when the last emitted line had no '\n' (the caller adds
 * one so the mapper sees a whole line).  Marks the reader done. */
int mr_linerec_eof(mr_linerec *r);

/* ------------------------------------------------ keys and partitions */

/* Length of the key of a record line (up to the first tab, else the whole
 * line; line excludes its '\n'). */
size_t mr_key_len(const char *line, size_t len);
/* Partition of a key among nparts (FNV-1a 64 of the key bytes). */
unsigned mr_partition(const char *key, size_t len, unsigned nparts);
/* Orders keys as bytes (C locale): memcmp, then the shorter first. */
int mr_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
