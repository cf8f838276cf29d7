/*
 * External merge sort of record lines and the k-way merge (see kvsort.h).
 * Records live in one byte arena (offsets, not pointers, so the arena may
 * grow); a spill sorts an index of them with qsort_r and writes a run.
 */
#include "mapreduce/kvsort.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapreduce/split.h"

#define READ_BUF (64u * 1024)
#define WRITE_BUF (1u << 20)
#define REC_OVERHEAD sizeof(struct rec)

struct rec {
    uint64_t off;               /* into the arena */
    uint32_t len;               /* with the '\n' */
    uint32_t keylen;
    uint32_t part;
};

struct run {
    char *path;
    uint64_t records;
    uint64_t *offsets;          /* nparts + 1 */
};

struct mr_sorter {
    char *dir;
    unsigned nparts;
    size_t mem_limit;
    mr_combine_fn combine;
    void *combine_ctx;
    ts_buf arena;
    struct rec *recs;
    size_t nrecs, caprecs;
    struct run *runs;
    size_t nruns;
    mr_sorter_stats stats;
    uint64_t last_written;      /* records in the last write_sorted output */
};

/* ------------------------------------------------------------ outfile */

int mr_outfile_open(mr_outfile *o, const char *path, ts_error *err)
{
    memset(o, 0, sizeof(*o));
    o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0)
        return ts_fail(err, TS_EIO, "create %s: %s", path, strerror(errno));
    o->path = ts_strdup(path);
    return 0;
}

static int outfile_flush(mr_outfile *o, ts_error *err)
{
    if (o->buf.len == 0)
        return 0;
    if (ts_write_full(o->fd, o->buf.data, o->buf.len) != 0)
        return ts_fail(err, TS_EIO, "write %s: %s", o->path, strerror(errno));
    o->buf.len = 0;
    return 0;
}

int mr_outfile_write(mr_outfile *o, const void *data, size_t len, ts_error *err)
{
    ts_buf_append(&o->buf, data, len);
    o->written += len;
    return o->buf.len >= WRITE_BUF ? outfile_flush(o, err) : 0;
}

int mr_outfile_close(mr_outfile *o, ts_error *err)
{
    int rc = o->fd >= 0 ? outfile_flush(o, err) : 0;

    if (o->fd >= 0 && close(o->fd) != 0 && rc == 0)
        rc = ts_fail(err, TS_EIO, "close %s: %s", o->path, strerror(errno));
    o->fd = -1;
    ts_buf_free(&o->buf);
    free(o->path);
    o->path = NULL;
    return rc;
}

/* ------------------------------------------------------------- sorter */

int mr_sorter_open(const char *dir, unsigned nparts, size_t mem_limit, mr_combine_fn combine,
                   void *combine_ctx, mr_sorter **out, ts_error *err)
{
    if (nparts == 0)
        return ts_fail(err, TS_EINVAL, "sorter: at least one partition");
    if (mem_limit < 64 * 1024)
        return ts_fail(err, TS_EINVAL, "sorter: memory limit %zu is below 64 KiB", mem_limit);
    mr_sorter *s = ts_calloc(1, sizeof(*s));
    s->dir = ts_strdup(dir);
    s->nparts = nparts;
    s->mem_limit = mem_limit;
    s->combine = combine;
    s->combine_ctx = combine_ctx;
    *out = s;
    return 0;
}

static int rec_cmp(const void *a, const void *b, void *arg)
{
    const struct rec *x = a, *y = b;
    const char *base = arg;

    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    return mr_key_cmp(base + x->off, x->keylen, base + y->off, y->keylen);
}

static void push_rec(mr_sorter *s, ts_buf *arena, const char *line, size_t len, unsigned part)
{
    if (s->nrecs == s->caprecs) {
        s->caprecs = s->caprecs ? 2 * s->caprecs : 4096;
        s->recs = ts_realloc(s->recs, s->caprecs * sizeof(*s->recs));
    }
    struct rec *r = &s->recs[s->nrecs++];
    r->off = arena->len;
    r->len = (uint32_t)len + 1;
    r->keylen = (uint32_t)mr_key_len(line, len);
    r->part = part;
    ts_buf_append(arena, line, len);
    ts_buf_append(arena, "\n", 1);
}

/* Runs the combiner over recs[a, b) (one partition, sorted) and replaces
 * them, in a fresh arena, by its output lines sorted.  The new records are
 * appended to s->recs after index `keep`, which the caller arranges. */
static int combine_part(mr_sorter *s, const struct rec *src, size_t n, unsigned part,
                        ts_buf *newarena, struct rec **outv, size_t *outn, ts_error *err)
{
    mr_line *lines = ts_malloc((n ? n : 1) * sizeof(*lines));
    ts_buf out = {0};
    int rc;

    for (size_t i = 0; i < n; i++)
        lines[i] = (mr_line){.line = s->arena.data + src[i].off, .len = src[i].len,
                             .keylen = src[i].keylen};
    rc = s->combine(s->combine_ctx, part, lines, n, &out, err);
    free(lines);
    if (rc != 0)
        goto free_out;
    /* Parse the output into records of the new arena. */
    size_t pos = 0, cnt = 0, cap = 0;
    struct rec *v = NULL;
    while (pos < out.len) {
        const char *nl = memchr(out.data + pos, '\n', out.len - pos);
        size_t len = nl ? (size_t)(nl - (out.data + pos)) : out.len - pos;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 256;
            v = ts_realloc(v, cap * sizeof(*v));
        }
        v[cnt].off = newarena->len;
        v[cnt].len = (uint32_t)len + 1;
        v[cnt].keylen = (uint32_t)mr_key_len(out.data + pos, len);
        v[cnt].part = part;
        ts_buf_append(newarena, out.data + pos, len);
        ts_buf_append(newarena, "\n", 1);
        cnt++;
        pos += len + 1;
    }
    *outv = v;
    *outn = cnt;
free_out:
    ts_buf_free(&out);
    return rc;
}

/* Sorts what is in memory and writes it as one partitioned run to path. */
static int write_sorted(mr_sorter *s, const char *path, uint64_t *offsets, ts_error *err)
{
    mr_outfile o;
    ts_buf combined = {0};
    const char *base;
    int rc;

    if (s->nrecs > 0)
        qsort_r(s->recs, s->nrecs, sizeof(*s->recs), rec_cmp, s->arena.data);
    if (s->combine != NULL && s->nrecs > 0) {
        /* Combine partition by partition into a new record set. */
        struct rec *all = NULL;
        size_t nall = 0;
        for (size_t a = 0; a < s->nrecs;) {
            size_t b = a;
            while (b < s->nrecs && s->recs[b].part == s->recs[a].part)
                b++;
            struct rec *v = NULL;
            size_t n = 0;
            rc = combine_part(s, &s->recs[a], b - a, s->recs[a].part, &combined, &v, &n, err);
            if (rc != 0) {
                free(all);
                ts_buf_free(&combined);
                return rc;
            }
            all = ts_realloc(all, (nall + n + 1) * sizeof(*all));
            if (n > 0)
                memcpy(all + nall, v, n * sizeof(*v));
            nall += n;
            free(v);
            a = b;
        }
        free(s->recs);
        s->recs = all;
        s->nrecs = s->caprecs = nall;
        if (s->nrecs > 0)
            qsort_r(s->recs, s->nrecs, sizeof(*s->recs), rec_cmp, combined.data);
        base = combined.data;
    } else {
        base = s->arena.data;
    }
    if ((rc = mr_outfile_open(&o, path, err)) != 0)
        goto free_combined;
    size_t i = 0;
    for (unsigned p = 0; p < s->nparts; p++) {
        offsets[p] = o.written;
        for (; i < s->nrecs && s->recs[i].part == p; i++) {
            if ((rc = mr_outfile_write(&o, base + s->recs[i].off, s->recs[i].len, err)) != 0)
                goto close_out;
        }
    }
    offsets[s->nparts] = o.written;
    s->last_written = s->nrecs;
close_out:
    if (mr_outfile_close(&o, rc == 0 ? err : NULL) != 0 && rc == 0)
        rc = err ? err->code : TS_EIO;
free_combined:
    ts_buf_free(&combined);
    s->nrecs = 0;
    s->arena.len = 0;
    return rc;
}

static int spill(mr_sorter *s, ts_error *err)
{
    struct run r;

    r.path = ts_sprintf("%s/run-%04zu", s->dir, s->nruns);
    r.offsets = ts_calloc(s->nparts + 1, sizeof(*r.offsets));
    int rc = write_sorted(s, r.path, r.offsets, err);
    if (rc != 0) {
        unlink(r.path);
        free(r.path);
        free(r.offsets);
        return rc;
    }
    r.records = s->last_written;
    s->runs = ts_realloc(s->runs, (s->nruns + 1) * sizeof(*s->runs));
    s->runs[s->nruns++] = r;
    s->stats.spills++;
    return 0;
}

int mr_sorter_add(mr_sorter *s, const char *line, size_t len, ts_error *err)
{
    if (len >= UINT32_MAX - 1)
        return ts_fail(err, TS_EFBIG, "record of %zu bytes is too long", len);
    size_t keylen = mr_key_len(line, len);
    push_rec(s, &s->arena, line, len, mr_partition(line, keylen, s->nparts));
    s->stats.records_in++;
    if (s->arena.len + s->nrecs * REC_OVERHEAD >= s->mem_limit)
        return spill(s, err);
    return 0;
}

int mr_sorter_finish(mr_sorter *s, const char *out_path, uint64_t *offsets, ts_error *err)
{
    int rc = 0;
    mr_outfile o;
    int *fds = NULL;

    if (s->nruns == 0) {
        /* Everything fit in memory: one sorted write, no merge. */
        rc = write_sorted(s, out_path, offsets, err);
        s->stats.records_out = s->last_written;
        return rc;
    }
    if (s->nrecs > 0 && (rc = spill(s, err)) != 0)
        return rc;
    if (s->nruns == 1) {
        if (rename(s->runs[0].path, out_path) != 0)
            return ts_fail(err, TS_EIO, "rename %s: %s", s->runs[0].path, strerror(errno));
        memcpy(offsets, s->runs[0].offsets, (s->nparts + 1) * sizeof(*offsets));
        s->stats.records_out = s->runs[0].records;
        return 0;
    }
    fds = ts_malloc(s->nruns * sizeof(*fds));
    size_t opened = 0;
    for (; opened < s->nruns; opened++) {
        fds[opened] = open(s->runs[opened].path, O_RDONLY | O_CLOEXEC);
        if (fds[opened] < 0) {
            rc = ts_fail(err, TS_EIO, "open %s: %s", s->runs[opened].path, strerror(errno));
            goto close_runs;
        }
    }
    if ((rc = mr_outfile_open(&o, out_path, err)) != 0)
        goto close_runs;
    mr_merge_src *srcs = ts_malloc(s->nruns * sizeof(*srcs));
    for (unsigned p = 0; p < s->nparts && rc == 0; p++) {
        mr_merge *m = NULL;
        mr_line l;
        offsets[p] = o.written;
        for (size_t k = 0; k < s->nruns; k++)
            srcs[k] = (mr_merge_src){.fd = fds[k], .start = s->runs[k].offsets[p],
                                     .end = s->runs[k].offsets[p + 1]};
        if ((rc = mr_merge_open(srcs, s->nruns, &m, err)) != 0)
            break;
        while ((rc = mr_merge_next(m, &l, err)) == 1) {
            s->stats.records_out++;
            if ((rc = mr_outfile_write(&o, l.line, l.len, err)) != 0)
                break;
        }
        mr_merge_free(m);
    }
    offsets[s->nparts] = o.written;
    free(srcs);
    if (mr_outfile_close(&o, rc == 0 ? err : NULL) != 0 && rc == 0)
        rc = err ? err->code : TS_EIO;
close_runs:
    for (size_t k = 0; k < opened; k++)
        close(fds[k]);
    free(fds);
    return rc;
}

void mr_sorter_get_stats(const mr_sorter *s, mr_sorter_stats *st)
{
    *st = s->stats;
}

void mr_sorter_free(mr_sorter *s)
{
    if (s == NULL)
        return;
    for (size_t k = 0; k < s->nruns; k++) {
        unlink(s->runs[k].path);   /* already renamed away when there was one run */
        free(s->runs[k].path);
        free(s->runs[k].offsets);
    }
    free(s->runs);
    free(s->recs);
    ts_buf_free(&s->arena);
    free(s->dir);
    free(s);
}

/* -------------------------------------------------------------- merge */

struct msrc {
    int fd;
    uint64_t pos, end;          /* file bytes not yet read into buf */
    char *buf;
    size_t cap, lo, hi;         /* buf[lo, hi) is unread */
    mr_line cur;                /* current line (points into buf) */
    int has;
};

struct mr_merge {
    struct msrc *s;
    size_t n;
    size_t *heap;               /* source indexes; heap[0] has the smallest key */
    size_t nheap;
    int popped;                 /* heap[0]'s line was handed out: advance it next */
};

/* Loads the next line of src into cur.  1, 0 at end, < 0 on error. */
static int src_advance(struct msrc *s, ts_error *err)
{
    for (;;) {
        char *nl = s->hi > s->lo ? memchr(s->buf + s->lo, '\n', s->hi - s->lo) : NULL;
        if (nl != NULL) {
            size_t len = (size_t)(nl - (s->buf + s->lo)) + 1;
            s->cur.line = s->buf + s->lo;
            s->cur.len = len;
            s->cur.keylen = mr_key_len(s->cur.line, len - 1);
            s->lo += len;
            s->has = 1;
            return 1;
        }
        if (s->pos >= s->end) {
            if (s->hi > s->lo)
                return ts_fail(err, TS_ECORRUPT, "sorted stream ends inside a line");
            s->has = 0;
            return 0;
        }
        /* Compact, grow if one line does not fit, and read more. */
        memmove(s->buf, s->buf + s->lo, s->hi - s->lo);
        s->hi -= s->lo;
        s->lo = 0;
        if (s->hi == s->cap) {
            s->cap *= 2;
            s->buf = ts_realloc(s->buf, s->cap);
        }
        size_t want = (size_t)TS_MIN((uint64_t)(s->cap - s->hi), s->end - s->pos);
        ssize_t got = ts_pread_full(s->fd, s->buf + s->hi, want, (off_t)s->pos);
        if (got < 0)
            return ts_fail(err, TS_EIO, "read sorted stream: %s", strerror(errno));
        if (got == 0)
            return ts_fail(err, TS_ECORRUPT, "sorted stream shorter than announced");
        s->hi += (size_t)got;
        s->pos += (uint64_t)got;
    }
}

static int heap_less(const mr_merge *m, size_t a, size_t b)
{
    const mr_line *x = &m->s[m->heap[a]].cur, *y = &m->s[m->heap[b]].cur;
    int c = mr_key_cmp(x->line, x->keylen, y->line, y->keylen);
    /* Equal keys: lower source first, which keeps the merge stable. */
    return c < 0 || (c == 0 && m->heap[a] < m->heap[b]);
}

static void heap_down(mr_merge *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < m->nheap && heap_less(m, l, min))
            min = l;
        if (r < m->nheap && heap_less(m, r, min))
            min = r;
        if (min == i)
            return;
        size_t t = m->heap[i];
        m->heap[i] = m->heap[min];
        m->heap[min] = t;
        i = min;
    }
}

int mr_merge_open(const mr_merge_src *srcs, size_t n, mr_merge **out, ts_error *err)
{
    mr_merge *m = ts_calloc(1, sizeof(*m));
    int rc;

    m->s = ts_calloc(n ? n : 1, sizeof(*m->s));
    m->heap = ts_calloc(n ? n : 1, sizeof(*m->heap));
    m->n = n;
    for (size_t i = 0; i < n; i++) {
        struct msrc *s = &m->s[i];
        s->fd = srcs[i].fd;
        s->pos = srcs[i].start;
        s->end = srcs[i].end;
        s->cap = READ_BUF;
        s->buf = ts_malloc(s->cap);
        if ((rc = src_advance(s, err)) < 0) {
            mr_merge_free(m);
            return rc;
        }
        if (rc == 1)
            m->heap[m->nheap++] = i;
    }
    for (size_t i = m->nheap; i-- > 0;)
        heap_down(m, i);
    *out = m;
    return 0;
}

int mr_merge_next(mr_merge *m, mr_line *line, ts_error *err)
{
    if (m->popped && m->nheap > 0) {
        int rc = src_advance(&m->s[m->heap[0]], err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            m->heap[0] = m->heap[--m->nheap];
        heap_down(m, 0);
    }
    m->popped = 0;
    if (m->nheap == 0)
        return 0;
    *line = m->s[m->heap[0]].cur;
    m->popped = 1;
    return 1;
}

void mr_merge_free(mr_merge *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->s[i].buf);
    free(m->s);
    free(m->heap);
    free(m);
}
