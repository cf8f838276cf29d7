/*
 * Split computation and the line record reader (see split.h for the rule
 * that gives every line to exactly one split).
 */
#include "mapreduce/split.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ------------------------------------------------------------ splits */

/* Hosts of [start, end): the replicas of the extent overlapping it most. */
static void split_hosts(const mr_file_info *f, mr_split *s)
{
    uint64_t best = 0;
    const mr_extent_info *pick = NULL;

    for (size_t i = 0; i < f->nextents; i++) {
        const mr_extent_info *e = &f->extents[i];
        uint64_t a = TS_MAX(e->file_offset, s->start);
        uint64_t b = TS_MIN(e->file_offset + e->length, s->end);
        if (b > a && b - a > best) {
            best = b - a;
            pick = e;
        }
    }
    s->nhosts = 0;
    if (pick == NULL)
        return;      /* all holes: any server is as good as another */
    for (size_t i = 0; i < pick->nreplicas && s->nhosts < MR_MAX_HOSTS; i++)
        s->hosts[s->nhosts++] = pick->replicas[i];
}

int mr_splits_compute(const mr_file_info *files, size_t nfiles, uint64_t split_size,
                      mr_split **out, size_t *n, ts_error *err)
{
    mr_split *v = NULL;
    size_t cnt = 0, cap = 0;

    *out = NULL;
    *n = 0;
    if (split_size == 0)
        return ts_fail(err, TS_EINVAL, "split size must be > 0");
    for (size_t fi = 0; fi < nfiles; fi++) {
        for (uint64_t off = 0; off < files[fi].size; off += split_size) {
            if (cnt == cap) {
                cap = cap ? 2 * cap : 16;
                v = ts_realloc(v, cap * sizeof(*v));
            }
            mr_split *s = &v[cnt++];
            memset(s, 0, sizeof(*s));
            s->file = fi;
            s->start = off;
            s->end = TS_MIN(off + split_size, files[fi].size);
            split_hosts(&files[fi], s);
        }
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ------------------------------------------------------- line records */

void mr_linerec_init(mr_linerec *r, uint64_t start, uint64_t end)
{
    memset(r, 0, sizeof(*r));
    r->start = start;
    r->end = end;
    /* See split.h: look at the byte before start to know where our first
     * line begins. */
    r->pos = start > 0 ? start - 1 : 0;
    r->skipping = start > 0;
    r->at_line_start = start == 0;
    r->done = start >= end;
}

uint64_t mr_linerec_pos(const mr_linerec *r)
{
    return r->pos;
}

size_t mr_linerec_feed(mr_linerec *r, const char *buf, size_t len, size_t *emit_off,
                       size_t *emit_len)
{
    size_t i = 0;

    *emit_off = 0;
    *emit_len = 0;
    if (r->skipping && !r->done) {
        const char *nl = memchr(buf, '\n', len);
        if (nl == NULL) {
            r->pos += len;
            return len;
        }
        i = (size_t)(nl - buf) + 1;
        r->skipping = 0;
        r->at_line_start = 1;
    }
    *emit_off = i;
    while (i < len && !r->done) {
        if (r->at_line_start) {
            /* A line starting at or after end is the next split's. */
            if (r->pos + i >= r->end) {
                r->done = 1;
                break;
            }
            r->at_line_start = 0;
        }
        const char *nl = memchr(buf + i, '\n', len - i);
        if (nl == NULL) {
            i = len;
            r->mid_line = 1;
        } else {
            i = (size_t)(nl - buf) + 1;
            r->at_line_start = 1;
            r->mid_line = 0;
        }
    }
    *emit_len = i - *emit_off;
    r->pos += i;
    return i;
}

int mr_linerec_done(const mr_linerec *r)
{
    return r->done;
}

int mr_linerec_eof(mr_linerec *r)
{
    int need = r->mid_line && !r->done;

    r->done = 1;
    r->mid_line = 0;
    return need;
}

/* ------------------------------------------------ keys and partitions */

size_t mr_key_len(const char *line, size_t len)
{
    const char *tab = memchr(line, '\t', len);
    return tab ? (size_t)(tab - line) : len;
}

unsigned mr_partition(const char *key, size_t len, unsigned nparts)
{
    uint64_t h = 14695981039346656037ull;

    if (nparts <= 1)
        return 0;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return (unsigned)(h % nparts);
}

int mr_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, TS_MIN(alen, blen));
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}
