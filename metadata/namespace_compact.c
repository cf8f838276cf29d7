/*
 * Compare-and-swap extent replacement (ns_replace_extents, namespace.h):
 * how compaction and small-file packing redirect a file's data to new
 * chunks without ever changing what the file reads as.
 *
 * Per file, the replacement applies only when
 *   - the inode still has the version the compactor read (any write,
 *     truncate or setattr since bumped it), and
 *   - the new extents cover exactly the bytes the old ones covered inside
 *     the range (same data positions, same holes), so the compactor can
 *     neither add nor drop data even if it planned from a stale view.
 * Otherwise that file is skipped and the others still apply: a concurrent
 * writer simply wins.  Malformed input (an extent outside its range or its
 * chunk, an unknown chunk) rejects the whole command with the state
 * unchanged, as every mutation does.
 *
 * The splice itself is ns_commit's, with the size and mtime kept and the
 * ctime restored: compaction is not a change of the file's content; the
 * version is bumped so caches keyed on it refetch the layout.
 */
#include "metadata/namespace_int.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

/* Coverage of a byte range: sorted, merged [lo, hi) intervals. */
struct cover {
    uint64_t (*iv)[2];
    size_t n;
};

static void cover_add(struct cover *c, uint64_t lo, uint64_t hi)
{
    if (c->n > 0 && c->iv[c->n - 1][1] == lo) {
        c->iv[c->n - 1][1] = hi;
        return;
    }
    c->iv[c->n][0] = lo;
    c->iv[c->n][1] = hi;
    c->n++;
}

/* 1 when the old extents of in inside [lo, hi) cover exactly what the
 * sorted new extents cover. */
static int same_coverage(const struct ns_inode *in, uint64_t lo, uint64_t hi,
                         const ts_extent *sorted, size_t n)
{
    const struct ns_extents *x = in->u.ext;
    size_t nold = x ? x->n : 0;
    struct cover a = { ts_malloc((nold + 1) * sizeof(*a.iv)), 0 };
    struct cover b = { ts_malloc((n + 1) * sizeof(*b.iv)), 0 };
    for (size_t i = 0; i < nold; i++) {
        uint64_t s = x->e[i].file_offset, e = s + x->e[i].length;
        if (e <= lo || s >= hi)
            continue;
        cover_add(&a, TS_MAX(s, lo), TS_MIN(e, hi));
    }
    for (size_t i = 0; i < n; i++)
        cover_add(&b, sorted[i].file_offset, sorted[i].file_offset + sorted[i].length);
    int same = a.n == b.n && memcmp(a.iv, b.iv, a.n * sizeof(*a.iv)) == 0;
    free(a.iv);
    free(b.iv);
    return same;
}

/* The commit arguments of file f: only the listed chunks its extents use,
 * so ns_commit never drops a chunk another file of the command needs. */
static void file_commit_args(const ns_replace_args *a, const ns_replace_file *f,
                             ns_chunk_info *chunks, ns_commit_args *ca)
{
    size_t nc = 0;
    for (size_t i = 0; i < a->n_chunks; i++)
        for (size_t k = 0; k < f->n_extents; k++)
            if (ts_chunk_id_eq(&a->chunks[i].id, &f->extents[k].chunk)) {
                chunks[nc++] = a->chunks[i];
                break;
            }
    memset(ca, 0, sizeof(*ca));
    ca->ino = f->ino;
    ca->offset = f->offset;
    ca->length = f->length;
    ca->extents = f->extents;
    ca->n_extents = f->n_extents;
    ca->chunks = chunks;
    ca->n_chunks = nc;
}

/* Validates file f (TS_EINVAL etc. for malformed input); *apply = 0 when
 * its CAS fails (gone, another type, other version, other coverage). */
static int check_file(const ns_state *ns, const ns_replace_args *a, size_t fi,
                      ns_chunk_info *chunks, int *apply, ts_error *err)
{
    const ns_replace_file *f = &a->files[fi];
    ns_commit_args ca;
    file_commit_args(a, f, chunks, &ca);
    ts_extent *sorted = ts_malloc((f->n_extents + 1) * sizeof(ts_extent));
    int rc = ns_commit_validate(ns, &ca, sorted, err);
    if (rc != 0) {
        ts_error_prefix(err, "replace_extents: file %zu", fi);
        goto free_sorted;
    }
    if (f->n_extents == 0) {
        rc = ts_fail(err, TS_EINVAL, "replace_extents: file %zu (inode %llu): no extents", fi,
                     (unsigned long long)f->ino);
        goto free_sorted;
    }
    const struct ns_inode *in = ns_inode_get(ns, f->ino);
    *apply = in && S_ISREG(in->mode) && in->version == f->version &&
             f->offset + f->length <= in->size &&
             same_coverage(in, f->offset, f->offset + f->length, sorted, f->n_extents);
free_sorted:
    free(sorted);
    return rc;
}

int ns_replace_extents(ns_state *ns, const ns_replace_args *a, int64_t now, uint32_t *replaced,
                       ts_error *err)
{
    int rc = 0;
    *replaced = 0;
    if (a->n_files == 0)
        return ts_fail(err, TS_EINVAL, "replace_extents: no files");
    for (size_t i = 0; i < a->n_chunks; i++)
        for (size_t j = 0; j < i; j++)
            if (ts_chunk_id_eq(&a->chunks[j].id, &a->chunks[i].id)) {
                char hex[TS_CHUNK_ID_HEX_LEN + 1];
                ts_chunk_id_to_hex(&a->chunks[i].id, hex);
                return ts_fail(err, TS_EINVAL, "replace_extents: chunk %s listed twice", hex);
            }
    ns_chunk_info *chunks = ts_malloc((a->n_chunks + 1) * sizeof(*chunks));
    unsigned char *apply = ts_calloc(a->n_files, 1);
    /* 1. validate everything first: the command applies whole or not at all. */
    for (size_t i = 0; i < a->n_files; i++) {
        int ok = 0;
        if ((rc = check_file(ns, a, i, chunks, &ok, err)) != 0)
            goto free_all;
        apply[i] = (unsigned char)ok;
    }
    /* 2. splice.  A file listed twice: its second entry sees the bumped
     * version and is skipped, as any concurrent change. */
    for (size_t i = 0; i < a->n_files; i++) {
        const ns_replace_file *f = &a->files[i];
        struct ns_inode *in = ns_inode_get(ns, f->ino);
        if (!apply[i] || !in || in->version != f->version)
            continue;
        ns_commit_args ca;
        ts_attr attr;
        ts_error e2 = {0};
        file_commit_args(a, f, chunks, &ca);
        ca.has_size = 1;
        ca.size = in->size;
        ca.has_mtime = 1;
        ca.mtime_ns = in->mtime;
        int64_t ctime = in->ctime;
        if (ns_commit(ns, &ca, now, &attr, &e2) != 0)
            ts_die("replace_extents: validated splice of inode %llu failed: %s",
                   (unsigned long long)f->ino, e2.msg);
        in->ctime = ctime;
        (*replaced)++;
    }
free_all:
    free(apply);
    free(chunks);
    return rc;
}
