/*
 * File data in the namespace: extent lists of regular files, the chunk table
 * with its reference counts, and the two operations that change them --
 * commit (splice new extents over a byte range) and truncate.
 *
 * Reference counting: a chunk's refcount is the number of extents, across
 * all files, pointing into it.  Splitting an extent in two adds a reference;
 * trimming keeps it; dropping removes one.  At zero the chunk leaves the
 * table and counts as garbage (its replicas are deleted by a later GC);
 * an inline chunk's bytes are simply freed.
 * Splices take all new references before dropping old ones, so a chunk that
 * stays referenced never leaves the table transiently.
 */
#include "metadata/namespace_int.h"

#include <stdlib.h>
#include <string.h>
#include "common/checksum.h"
#include "common/util.h"

static uint32_t chunk_hash_elem(const void *e)
{
    return ns_chunk_hash(&((const struct ns_chunk *)e)->id);
}

static int chunk_cmp(const void *e, const void *key)
{
    return memcmp(((const struct ns_chunk *)e)->id.b, ((const ts_chunk_id *)key)->b,
                  TS_CHUNK_ID_LEN);
}

static int chunk_cmp_elem(const void *a, const void *b)
{
    return chunk_cmp(a, &((const struct ns_chunk *)b)->id);
}

const ptab_ops ns_chunk_ops = { chunk_hash_elem, chunk_cmp, chunk_cmp_elem };

uint32_t ns_chunk_hash(const ts_chunk_id *id)
{
    /* Ids are random; fold both halves anyway so crafted ids sharing one
     * half do not collide.  Explicit byte order: the same on every host. */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | id->b[i];
        lo = lo << 8 | id->b[8 + i];
    }
    return ptab_hash_u64(hi ^ (lo * 0x9e3779b97f4a7c15ULL));
}

struct ns_chunk *ns_chunk_get(const ns_state *ns, const ts_chunk_id *id)
{
    return ptab_find(&ns->chunks, &ns_chunk_ops, ns_chunk_hash(id), id);
}

void ns_chunk_ref(ns_state *ns, const ts_chunk_id *id)
{
    struct ns_chunk *c = ns_chunk_get(ns, id);
    if (!c)
        ts_die("namespace: reference to unknown chunk");
    c->refcount++;
}

static void chunk_drop(ns_state *ns, struct ns_chunk *c)
{
    if (ptab_remove(&ns->chunks, &ns_chunk_ops, ns_chunk_hash(&c->id), &c->id) != c)
        ts_die("namespace: chunk table lost an entry");
    if (c->data) {
        ns->inline_chunks--;
        ns->inline_bytes -= c->length;
        free(c->data);
    } else {
        ns->garbage_chunks++;
    }
    free(c);
}

void ns_chunk_unref(ns_state *ns, const ts_chunk_id *id)
{
    struct ns_chunk *c = ns_chunk_get(ns, id);
    if (!c || c->refcount == 0)
        ts_die("namespace: chunk refcount underflow");
    if (--c->refcount == 0)
        chunk_drop(ns, c);
}

int ns_chunk_lookup(const ns_state *ns, const ts_chunk_id *id, uint64_t *length,
                    uint8_t *sha256, uint32_t *refcount)
{
    const struct ns_chunk *c = ns_chunk_get(ns, id);
    if (!c)
        return TS_ENOENT;
    if (length)
        *length = c->length;
    if (sha256)
        memcpy(sha256, c->sha256, TS_SHA256_LEN);
    if (refcount)
        *refcount = c->refcount;
    return 0;
}

void ns_chunk_foreach(const ns_state *ns, int (*fn)(void *arg, const ts_chunk_id *id), void *arg)
{
    size_t n = ptab_nslots(&ns->chunks);
    for (size_t i = 0; i < n; i++) {
        const struct ns_chunk *c = ns->chunks.slot[i];
        if (c && !c->data && fn(arg, &c->id))
            return;
    }
}

void ns_set_inline_total_max(ns_state *ns, uint64_t max)
{
    ns->inline_total_max = max;
}

int ns_chunk_inline(const ns_state *ns, const ts_chunk_id *id, const uint8_t **data,
                    uint64_t *len)
{
    const struct ns_chunk *c = ns_chunk_get(ns, id);
    if (!c || !c->data)
        return 0;
    *data = c->data;
    *len = c->length;
    return 1;
}

int ns_file_extents(const ns_state *ns, uint64_t ino, const ts_extent **ext, size_t *n,
                    ts_error *err)
{
    const struct ns_inode *in = ns_inode_get(ns, ino);
    if (!in)
        return ts_fail(err, TS_ENOENT, "layout: no inode %llu", (unsigned long long)ino);
    if (S_ISDIR(in->mode))
        return ts_fail(err, TS_EISDIR, "layout: inode %llu is a directory",
                       (unsigned long long)ino);
    if (!S_ISREG(in->mode))
        return ts_fail(err, TS_EINVAL, "layout: inode %llu is not a regular file",
                       (unsigned long long)ino);
    *ext = in->u.ext ? in->u.ext->e : NULL;
    *n = in->u.ext ? in->u.ext->n : 0;
    return 0;
}

void ns_extents_truncate(ns_state *ns, struct ns_inode *in, uint64_t new_size)
{
    struct ns_extents *x = in->u.ext;
    if (!x)
        return;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < x->n; i++) {
        ts_extent *e = &x->e[i];
        if (e->file_offset >= new_size) {
            ns_chunk_unref(ns, &e->chunk);
            continue;
        }
        if (e->file_offset + e->length > new_size)
            e->length = new_size - e->file_offset;  /* trim: same reference */
        x->e[keep++] = *e;
    }
    ns->nextents -= x->n - keep;
    x->n = keep;
    if (keep == 0) {
        free(x);
        in->u.ext = NULL;
    }
}

/* ---- commit ---- */

static int extent_cmp(const void *a, const void *b)
{
    const ts_extent *x = a, *y = b;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

/* The length of chunk id as the commit will see it (listed or known), and
 * whether it is inline. */
static int commit_chunk_length(const ns_state *ns, const ns_commit_args *a,
                               const ts_chunk_id *id, uint64_t *len, int *is_inline)
{
    for (size_t i = 0; i < a->n_chunks; i++)
        if (ts_chunk_id_eq(&a->chunks[i].id, id)) {
            *len = a->chunks[i].length;
            *is_inline = a->chunks[i].data != NULL;
            return 0;
        }
    const struct ns_chunk *c = ns_chunk_get(ns, id);
    if (!c)
        return TS_ENOENT;
    *len = c->length;
    *is_inline = c->data != NULL;
    return 0;
}

/* An inline chunk's own checks: size limit, and data matching the length
 * and hash the client sent (what it read back later is what it wrote). */
static int check_inline_chunk(const ns_chunk_info *ci, const char *hex, unsigned long long ino,
                              ts_error *err)
{
    uint8_t sha[TS_SHA256_LEN];
    if (ci->length == 0 || ci->length > NS_INLINE_CHUNK_MAX)
        return ts_fail(err, TS_EINVAL, "commit %llu: inline chunk %s of %llu bytes (1..%u "
                       "allowed)", ino, hex, (unsigned long long)ci->length, NS_INLINE_CHUNK_MAX);
    ts_sha256_once(ci->data, (size_t)ci->length, sha);
    if (memcmp(sha, ci->sha256, TS_SHA256_LEN) != 0)
        return ts_fail(err, TS_ECORRUPT, "commit %llu: inline chunk %s: data does not match "
                       "its SHA-256", ino, hex);
    return 0;
}

int ns_commit_validate(const ns_state *ns, const ns_commit_args *a, ts_extent *sorted,
                       ts_error *err)
{
    unsigned long long ino = (unsigned long long)a->ino;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    if (a->offset > (uint64_t)INT64_MAX || a->length > (uint64_t)INT64_MAX - a->offset)
        return ts_fail(err, TS_EFBIG, "commit %llu: range past the maximum file size", ino);
    if (a->has_size && a->size > (uint64_t)INT64_MAX)
        return ts_fail(err, TS_EFBIG, "commit %llu: size too large", ino);
    uint64_t end = a->offset + a->length, new_inline = 0;
    for (size_t i = 0; i < a->n_chunks; i++) {
        const ns_chunk_info *ci = &a->chunks[i];
        ts_chunk_id_to_hex(&ci->id, hex);
        for (size_t j = 0; j < i; j++)
            if (ts_chunk_id_eq(&a->chunks[j].id, &ci->id))
                return ts_fail(err, TS_EINVAL, "commit %llu: chunk %s listed twice", ino, hex);
        const struct ns_chunk *known = ns_chunk_get(ns, &ci->id);
        if (known && (known->length != ci->length ||
                      memcmp(known->sha256, ci->sha256, TS_SHA256_LEN) != 0 ||
                      (known->data != NULL) != (ci->data != NULL)))
            return ts_fail(err, TS_EINVAL, "commit %llu: chunk %s already known with another "
                           "length or sha256", ino, hex);
        int rc;
        if (ci->data && (rc = check_inline_chunk(ci, hex, ino, err)) != 0)
            return rc;
        if (ci->data && !known)
            new_inline += ci->length;
    }
    uint64_t total_max = ns->inline_total_max ? ns->inline_total_max : NS_INLINE_TOTAL_MAX;
    if (new_inline > 0 && ns->inline_bytes + new_inline > total_max)
        return ts_fail(err, TS_ENOSPC, "commit %llu: inline data is full (%llu bytes kept, at "
                       "most %llu): upload the data instead", ino,
                       (unsigned long long)ns->inline_bytes, (unsigned long long)total_max);
    for (size_t i = 0; i < a->n_extents; i++) {
        const ts_extent *e = &a->extents[i];
        uint64_t clen;
        int is_inline;
        ts_chunk_id_to_hex(&e->chunk, hex);
        if (e->length == 0)
            return ts_fail(err, TS_EINVAL, "commit %llu: extent %zu has length 0", ino, i);
        if (e->file_offset < a->offset || e->length > end - a->offset ||
            e->file_offset - a->offset > a->length - e->length)
            return ts_fail(err, TS_EINVAL, "commit %llu: extent %zu [%llu, +%llu) outside the "
                           "committed range [%llu, %llu)", ino, i,
                           (unsigned long long)e->file_offset, (unsigned long long)e->length,
                           (unsigned long long)a->offset, (unsigned long long)end);
        if (commit_chunk_length(ns, a, &e->chunk, &clen, &is_inline) != 0)
            return ts_fail(err, TS_EINVAL, "commit %llu: extent %zu names unknown chunk %s",
                           ino, i, hex);
        if (e->chunk_offset > clen || e->length > clen - e->chunk_offset)
            return ts_fail(err, TS_EINVAL, "commit %llu: extent %zu runs past the end of chunk "
                           "%s (length %llu)", ino, i, hex, (unsigned long long)clen);
        if (is_inline && e->file_offset + e->length > NS_INLINE_END_MAX)
            return ts_fail(err, TS_EINVAL, "commit %llu: extent %zu of inline chunk %s ends at "
                           "%llu, past the inline limit %u", ino, i, hex,
                           (unsigned long long)(e->file_offset + e->length), NS_INLINE_END_MAX);
        sorted[i] = *e;
    }
    if (a->n_extents > 1)
        qsort(sorted, a->n_extents, sizeof(ts_extent), extent_cmp);
    for (size_t i = 1; i < a->n_extents; i++)
        if (sorted[i - 1].file_offset + sorted[i - 1].length > sorted[i].file_offset)
            return ts_fail(err, TS_EINVAL, "commit %llu: extents overlap at offset %llu", ino,
                           (unsigned long long)sorted[i].file_offset);
    return 0;
}

/* A commit whose range starts at or past the end of the file's last
 * extent cuts nothing: its extents go after the others, in place, the
 * room doubling when it runs out, so appending to a file of n extents
 * costs O(1), not a copy of all n (a log file appended to 128 bytes at a
 * time has thousands until compaction merges them).  1 when it applied. */
static int append_in_place(ns_state *ns, struct ns_inode *in, const ns_commit_args *a,
                           const ts_extent *sorted)
{
    struct ns_extents *x = in->u.ext;
    if (x == NULL || x->n == 0 || a->length == 0 ||
        a->offset < x->e[x->n - 1].file_offset + x->e[x->n - 1].length)
        return 0;
    size_t need = (size_t)x->n + a->n_extents;
    if (need > UINT32_MAX)
        return 0;
    if (need > x->cap) {
        size_t cap = TS_MAX(need, TS_MIN((size_t)x->cap * 2, (size_t)UINT32_MAX));
        x = ts_realloc(x, sizeof(*x) + cap * sizeof(ts_extent));
        x->cap = (uint32_t)cap;
        in->u.ext = x;
    }
    for (size_t i = 0; i < a->n_extents; i++) {
        x->e[x->n++] = sorted[i];
        ns_chunk_ref(ns, &sorted[i].chunk);
    }
    ns->nextents += a->n_extents;
    return 1;
}

int ns_commit(ns_state *ns, const ns_commit_args *a, int64_t now, ts_attr *out, ts_error *err)
{
    struct ns_inode *in = ns_inode_get(ns, a->ino);
    int rc = 0;
    if (!in)
        return ts_fail(err, TS_ENOENT, "commit: no inode %llu", (unsigned long long)a->ino);
    if (S_ISDIR(in->mode))
        return ts_fail(err, TS_EISDIR, "commit: inode %llu is a directory",
                       (unsigned long long)a->ino);
    if (!S_ISREG(in->mode))
        return ts_fail(err, TS_EINVAL, "commit: inode %llu is not a regular file",
                       (unsigned long long)a->ino);
    ts_extent *sorted = a->n_extents ? ts_malloc(a->n_extents * sizeof(ts_extent)) : NULL;
    if ((rc = ns_commit_validate(ns, a, sorted, err)) != 0)
        goto free_sorted;

    /* Validated; mutate.  1. register new chunks (refcount 0 for now). */
    for (size_t i = 0; i < a->n_chunks; i++) {
        const ns_chunk_info *ci = &a->chunks[i];
        if (ns_chunk_get(ns, &ci->id))
            continue;
        struct ns_chunk *c = ts_calloc(1, sizeof(*c));
        c->id = ci->id;
        c->length = ci->length;
        memcpy(c->sha256, ci->sha256, TS_SHA256_LEN);
        if (ci->data) {
            c->data = ts_malloc((size_t)ci->length);
            memcpy(c->data, ci->data, (size_t)ci->length);
            ns->inline_chunks++;
            ns->inline_bytes += ci->length;
        }
        if (ptab_insert(&ns->chunks, &ns_chunk_ops, c, ns_chunk_hash(&c->id), &c->id) != 0)
            ts_die("namespace: chunk inserted twice");
    }

    /* 2. build the new extent list: old before the range, new, old after. */
    uint64_t lo = a->offset, hi = a->offset + a->length;
    if (append_in_place(ns, in, a, sorted))
        goto drop_unused;
    struct ns_extents *old = in->u.ext;
    uint32_t old_n = old ? old->n : 0;
    size_t cap = (size_t)old_n + 1 + a->n_extents;
    struct ns_extents *nx = ts_malloc(sizeof(*nx) + cap * sizeof(ts_extent));
    uint32_t n = 0;
    /* References change only where the range cuts: an extent wholly before
     * lo or wholly from hi on is carried over as it was, one reference in
     * either list.  So only the pieces of old extents that overlap the
     * range and the new extents take one -- nx->e[ref_from, ref_to) -- and
     * only the overlapping old extents drop theirs -- old->e[old_lo,
     * old_hi) -- rather than a hash lookup for every extent of the file on
     * every commit (a log file appended to has thousands).  The extents
     * carried over untouched are nx->e[0, ref_from) and nx->e[ref_to, n),
     * the same ones as old->e[0, old_lo) and old->e[old_hi, old_n). */
    uint32_t ref_from = 0, ref_to = 0, old_lo = 0, old_hi = 0;
    if (a->length == 0) {                           /* nothing replaced */
        for (uint32_t i = 0; i < old_n; i++)
            nx->e[n++] = old->e[i];
    } else {
        int trimmed = 0;
        for (uint32_t i = 0; i < old_n; i++) {      /* parts before lo */
            ts_extent e = old->e[i];
            if (e.file_offset >= lo)
                break;
            if (e.file_offset + e.length > lo) {
                e.length = lo - e.file_offset;
                trimmed = 1;
            }
            nx->e[n++] = e;
        }
        ref_from = n - (trimmed ? 1 : 0);
        for (size_t i = 0; i < a->n_extents; i++)
            nx->e[n++] = sorted[i];
        ref_to = n;
        for (uint32_t i = 0; i < old_n; i++) {      /* parts after hi */
            ts_extent e = old->e[i];
            uint64_t eend = e.file_offset + e.length;
            if (eend <= hi)
                continue;
            if (e.file_offset < hi) {
                uint64_t cut = hi - e.file_offset;
                e.file_offset = hi;
                e.chunk_offset += cut;
                e.length -= cut;
                ref_to = n + 1;
            }
            nx->e[n++] = e;
        }
        old_lo = ref_from;
        old_hi = old_n - (n - ref_to);
    }
    nx->n = n;
    nx->cap = (uint32_t)cap;

    /* 3. references: take the new ones, then drop the old ones. */
    for (uint32_t i = ref_from; i < ref_to; i++)
        ns_chunk_ref(ns, &nx->e[i].chunk);
    for (uint32_t i = old_lo; i < old_hi; i++)
        ns_chunk_unref(ns, &old->e[i].chunk);
    ns->nextents += n;
    ns->nextents -= old_n;
    free(old);
    if (n == 0) {
        free(nx);
        nx = NULL;
    } else if (n < cap) {
        nx = ts_realloc(nx, sizeof(*nx) + n * sizeof(ts_extent));
        nx->cap = n;
    }
    in->u.ext = nx;

    /* 4. listed chunks nothing points into are garbage already. */
drop_unused:
    for (size_t i = 0; i < a->n_chunks; i++) {
        struct ns_chunk *c = ns_chunk_get(ns, &a->chunks[i].id);
        if (c && c->refcount == 0)
            chunk_drop(ns, c);
    }

    /* 5. size and times. */
    uint64_t size = a->has_size ? a->size : TS_MAX(in->size, hi);
    ns_extents_truncate(ns, in, size);      /* no-op unless data lies past size */
    in->size = size;
    in->mtime = a->has_mtime ? a->mtime_ns : now;
    in->ctime = now;
    in->version++;
    ns_fill_attr(in, out);
free_sorted:
    free(sorted);
    return rc;
}
