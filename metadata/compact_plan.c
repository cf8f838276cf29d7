/*
 * The compaction planner (see compact_plan.h).  Jobs are built by laying
 * a file's old extents, in file order, into new chunks: each old extent
 * becomes a piece of a new chunk (split at a chunk boundary) and a new
 * extent pointing at where the piece landed; neighbours that stay
 * contiguous in both the file and the new chunk merge into one extent.
 */
#include "metadata/compact_plan.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

void cp_opts_default(cp_opts *o)
{
    o->chunk_size = 64ull << 20;
    o->min_extents = 16;
    o->small_extent = 1ull << 20;
    o->small_file = 1ull << 20;
    o->min_pack_files = 8;
    o->max_pack_files = 4096;
    o->repack_live = 0.5;
}

void cp_job_free(cp_job *j)
{
    for (size_t i = 0; i < j->nchunks; i++)
        free(j->chunks[i].pieces);
    for (size_t i = 0; i < j->nfiles; i++) {
        free(j->files[i].ext);
        free(j->files[i].ext_chunk);
    }
    free(j->chunks);
    free(j->files);
    memset(j, 0, sizeof(*j));
}

static cp_file_job *job_add_file(cp_job *j, const cp_file *f, uint64_t offset, uint64_t length)
{
    j->files = ts_realloc(j->files, (j->nfiles + 1) * sizeof(*j->files));
    cp_file_job *fj = &j->files[j->nfiles++];
    memset(fj, 0, sizeof(*fj));
    fj->ino = f->ino;
    fj->version = f->version;
    fj->offset = offset;
    fj->length = length;
    return fj;
}

/* Lays extent e of file job fj into the job's chunks (see the top). */
static void job_add_extent(cp_job *j, cp_file_job *fj, const ts_extent *e, uint64_t chunk_size)
{
    uint64_t done = 0;
    fj->old_extents++;
    while (done < e->length) {
        if (j->nchunks == 0 || j->chunks[j->nchunks - 1].length >= chunk_size) {
            j->chunks = ts_realloc(j->chunks, (j->nchunks + 1) * sizeof(*j->chunks));
            memset(&j->chunks[j->nchunks++], 0, sizeof(cp_chunk));
        }
        uint32_t ci = (uint32_t)(j->nchunks - 1);
        cp_chunk *c = &j->chunks[ci];
        uint64_t take = TS_MIN(e->length - done, chunk_size - c->length);
        uint64_t src = e->chunk_offset + done;
        cp_piece *last = c->npieces ? &c->pieces[c->npieces - 1] : NULL;
        if (last && ts_chunk_id_eq(&last->chunk, &e->chunk) && last->offset + last->length == src) {
            last->length += take;
        } else {
            c->pieces = ts_realloc(c->pieces, (c->npieces + 1) * sizeof(cp_piece));
            c->pieces[c->npieces++] = (cp_piece){ e->chunk, src, take };
        }
        uint64_t fo = e->file_offset + done;
        ts_extent *px = fj->n ? &fj->ext[fj->n - 1] : NULL;
        if (px && fj->ext_chunk[fj->n - 1] == ci && px->file_offset + px->length == fo &&
            px->chunk_offset + px->length == c->length) {
            px->length += take;
        } else {
            fj->ext = ts_realloc(fj->ext, (fj->n + 1) * sizeof(ts_extent));
            fj->ext_chunk = ts_realloc(fj->ext_chunk, (fj->n + 1) * sizeof(uint32_t));
            memset(&fj->ext[fj->n], 0, sizeof(ts_extent));
            fj->ext[fj->n].file_offset = fo;
            fj->ext[fj->n].length = take;
            fj->ext[fj->n].chunk_offset = c->length;
            fj->ext_chunk[fj->n] = ci;
            fj->n++;
        }
        c->length += take;
        j->bytes += take;
        done += take;
    }
}

/* ------------------------------------------------------------ appends */

int cp_plan_append(const cp_file *f, const cp_opts *o, cp_job *out)
{
    memset(out, 0, sizeof(*out));
    if (f->n == 0 || o->min_extents == 0)
        return 0;
    size_t t = f->n;
    uint64_t tail_bytes = 0;
    while (t > 0 && f->ext[t - 1].length < o->small_extent) {
        t--;
        tail_bytes += f->ext[t].length;
    }
    if (f->n - t < o->min_extents || f->n - t < 2)
        return 0;
    /* Absorb a partial chunk before the tail when the tail pays for it. */
    if (t > 0 && f->ext[t - 1].length < o->chunk_size && f->ext[t - 1].length <= tail_bytes)
        t--;
    uint64_t lo = f->ext[t].file_offset;
    uint64_t hi = f->ext[f->n - 1].file_offset + f->ext[f->n - 1].length;
    out->kind = CP_APPEND;
    cp_file_job *fj = job_add_file(out, f, lo, hi - lo);
    for (size_t i = t; i < f->n; i++)
        job_add_extent(out, fj, &f->ext[i], o->chunk_size);
    return 1;
}

/* ------------------------------------------------------------ packing */

struct ref {
    ts_chunk_id chunk;
    uint32_t file;
    uint64_t length;       /* of the extent */
    uint64_t chunk_len;
};

struct chunk_use {
    ts_chunk_id chunk;
    uint32_t files;        /* distinct files pointing into it */
    uint64_t live, length;
};

static int ref_cmp(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int c = memcmp(x->chunk.b, y->chunk.b, TS_CHUNK_ID_LEN);
    if (c)
        return c;
    return x->file < y->file ? -1 : x->file > y->file;
}

static int use_cmp(const void *key, const void *elem)
{
    return memcmp(key, ((const struct chunk_use *)elem)->chunk.b, TS_CHUNK_ID_LEN);
}

/* 1 when file f should move into a new pack, given every chunk's use. */
static int pack_candidate(const cp_file *f, const cp_opts *o, const struct chunk_use *use,
                          size_t nuse)
{
    int exclusive = 1, sparse = 0;
    if (f->n == 0 || f->size == 0 || f->size > o->small_file)
        return 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct chunk_use *u = bsearch(f->ext[i].chunk.b, use, nuse, sizeof(*use), use_cmp);
        if (!u)
            return 0;
        if (u->files > 1) {
            exclusive = 0;
            sparse |= (double)u->live < o->repack_live * (double)u->length;
        }
    }
    return exclusive || sparse;
}

int cp_plan_pack(const cp_file *files, size_t n, const cp_opts *o, cp_job **jobs,
                 size_t *njobs, uint64_t *reclaimable, ts_error *err)
{
    *jobs = NULL;
    *njobs = 0;
    *reclaimable = 0;
    if (o->chunk_size == 0 || o->small_file > o->chunk_size || o->min_pack_files < 2 ||
        o->max_pack_files < o->min_pack_files || !(o->repack_live >= 0 && o->repack_live <= 1))
        return ts_fail(err, TS_EINVAL, "pack plan: need chunk_size >= small_file, "
                       "2 <= min_pack_files <= max_pack_files and repack_live in [0, 1]");
    size_t nref = 0;
    for (size_t i = 0; i < n; i++)
        nref += files[i].n;
    struct ref *refs = ts_malloc((nref + 1) * sizeof(*refs));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t x = 0; x < files[i].n; x++)
            refs[k++] = (struct ref){ files[i].ext[x].chunk, (uint32_t)i, files[i].ext[x].length,
                                      files[i].chunk_len[x] };
    qsort(refs, nref, sizeof(*refs), ref_cmp);
    struct chunk_use *use = ts_malloc((nref + 1) * sizeof(*use));
    size_t nuse = 0;
    for (size_t i = 0; i < nref; i++) {
        if (nuse == 0 || !ts_chunk_id_eq(&use[nuse - 1].chunk, &refs[i].chunk)) {
            use[nuse++] = (struct chunk_use){ refs[i].chunk, 1, refs[i].length,
                                              refs[i].chunk_len };
            continue;
        }
        use[nuse - 1].files += refs[i].file != refs[i - 1].file;
        use[nuse - 1].live += refs[i].length;
    }
    for (size_t i = 0; i < nuse; i++)
        *reclaimable += use[i].length > use[i].live ? use[i].length - use[i].live : 0;
    free(refs);

    if (o->small_file == 0)
        goto free_use;
    cp_job cur = {0};
    for (size_t i = 0; i <= n; i++) {
        const cp_file *f = i < n ? &files[i] : NULL;
        if (f && !pack_candidate(f, o, use, nuse))
            continue;
        uint64_t bytes = 0;
        for (size_t x = 0; f && x < f->n; x++)
            bytes += f->ext[x].length;
        /* Close the pack at the end or when this file would not fit. */
        if (!f || cur.bytes + bytes > o->chunk_size || cur.nfiles >= o->max_pack_files) {
            if (cur.nfiles >= o->min_pack_files) {
                *jobs = ts_realloc(*jobs, (*njobs + 1) * sizeof(cp_job));
                (*jobs)[(*njobs)++] = cur;
            } else {
                cp_job_free(&cur);
            }
            memset(&cur, 0, sizeof(cur));
            if (!f)
                break;
        }
        cur.kind = CP_PACK;
        cp_file_job *fj = job_add_file(&cur, f, 0, f->size);
        for (size_t x = 0; x < f->n; x++)
            job_add_extent(&cur, fj, &f->ext[x], o->chunk_size);
    }
free_use:
    free(use);
    return 0;
}

/* ------------------------------------------------------------- checks */

/* Where file byte `fo` of f lives: its chunk and offset, and how many
 * bytes on the same extent follow; 0 when fo is in a hole. */
static int old_at(const cp_file *f, uint64_t fo, ts_chunk_id *chunk, uint64_t *off,
                  uint64_t *run)
{
    for (size_t i = 0; i < f->n; i++) {
        const ts_extent *e = &f->ext[i];
        if (fo >= e->file_offset && fo < e->file_offset + e->length) {
            *chunk = e->chunk;
            *off = e->chunk_offset + (fo - e->file_offset);
            *run = e->file_offset + e->length - fo;
            return 1;
        }
    }
    return 0;
}

/* The source of byte `co` of new chunk c. */
static int new_at(const cp_chunk *c, uint64_t co, ts_chunk_id *chunk, uint64_t *off,
                  uint64_t *run)
{
    uint64_t pos = 0;
    for (size_t i = 0; i < c->npieces; i++) {
        const cp_piece *p = &c->pieces[i];
        if (co >= pos && co < pos + p->length) {
            *chunk = p->chunk;
            *off = p->offset + (co - pos);
            *run = pos + p->length - co;
            return 1;
        }
        pos += p->length;
    }
    return 0;
}

int cp_job_check(const cp_job *j, const cp_file *const *files, ts_error *err)
{
    uint64_t bytes = 0;
    for (size_t c = 0; c < j->nchunks; c++) {
        uint64_t len = 0;
        for (size_t p = 0; p < j->chunks[c].npieces; p++)
            len += j->chunks[c].pieces[p].length;
        if (len != j->chunks[c].length)
            return ts_fail(err, TS_ECORRUPT, "chunk %zu: pieces add up to %llu, not %llu", c,
                           (unsigned long long)len, (unsigned long long)j->chunks[c].length);
        bytes += len;
    }
    if (bytes != j->bytes)
        return ts_fail(err, TS_ECORRUPT, "job bytes %llu, chunks hold %llu",
                       (unsigned long long)j->bytes, (unsigned long long)bytes);
    for (size_t fi = 0; fi < j->nfiles; fi++) {
        const cp_file_job *fj = &j->files[fi];
        const cp_file *f = files[fi];
        uint64_t lo = fj->offset, hi = fj->offset + fj->length, covered_new = 0, covered_old = 0;
        /* Every new byte reads what the old layout had at that offset. */
        for (size_t x = 0; x < fj->n; x++) {
            const ts_extent *e = &fj->ext[x];
            if (fj->ext_chunk[x] >= j->nchunks)
                return ts_fail(err, TS_ECORRUPT, "file %zu extent %zu: no chunk %u", fi, x,
                               fj->ext_chunk[x]);
            const cp_chunk *c = &j->chunks[fj->ext_chunk[x]];
            if (e->file_offset < lo || e->file_offset + e->length > hi ||
                e->chunk_offset + e->length > c->length)
                return ts_fail(err, TS_ECORRUPT, "file %zu extent %zu outside its range or "
                               "chunk", fi, x);
            if (x > 0 && fj->ext[x - 1].file_offset + fj->ext[x - 1].length > e->file_offset)
                return ts_fail(err, TS_ECORRUPT, "file %zu extents %zu and %zu overlap", fi,
                               x - 1, x);
            for (uint64_t d = 0; d < e->length;) {
                ts_chunk_id a, b;
                uint64_t ao, bo, ar, br;
                if (!old_at(f, e->file_offset + d, &a, &ao, &ar) ||
                    !new_at(c, e->chunk_offset + d, &b, &bo, &br) || !ts_chunk_id_eq(&a, &b) ||
                    ao != bo)
                    return ts_fail(err, TS_ECORRUPT, "file %zu: byte %llu would read other "
                                   "data", fi, (unsigned long long)(e->file_offset + d));
                d += TS_MIN(TS_MIN(ar, br), e->length - d);
            }
            covered_new += e->length;
        }
        for (size_t x = 0; x < f->n; x++) {
            uint64_t s = TS_MAX(f->ext[x].file_offset, lo);
            uint64_t t = TS_MIN(f->ext[x].file_offset + f->ext[x].length, hi);
            covered_old += t > s ? t - s : 0;
        }
        /* Same bytes mapped one-to-one: equal counts mean equal coverage. */
        if (covered_new != covered_old)
            return ts_fail(err, TS_ECORRUPT, "file %zu: new extents cover %llu bytes, old %llu",
                           fi, (unsigned long long)covered_new,
                           (unsigned long long)covered_old);
    }
    return 0;
}
