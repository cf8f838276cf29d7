/*
 * The namespace invariants, written down and checked.  Unit tests call
 * ns_check_invariants() after every step; ns_decode() calls it on every
 * loaded snapshot.  O(size of the namespace): not for the request path.
 *
 *  N1  every hash table (inodes, chunks, each directory) is in ptab order;
 *  N2  the root (inode 1) exists, is a directory and is its own parent;
 *  N3  every entry has a valid name, the hash of that name, and names an
 *      existing inode below next_ino;
 *  N4  a directory's nlink is 2 + its subdirectories; every directory except
 *      the root is named by exactly one entry, in the directory its parent
 *      field names; no directory is its own ancestor (reachability);
 *  N5  a non-directory's nlink equals the number of entries naming it (>= 1);
 *  N6  a file's extents are non-empty when present, of positive length,
 *      sorted, non-overlapping, end at or before the size, and lie inside a
 *      chunk of the chunk table;
 *  N7  each chunk's refcount equals the number of extents pointing into it
 *      and is positive;
 *  N8  the per-type inode counters and the extent counter match;
 *  N9  extended attributes (namespace_xattr.c): each set names a live
 *      inode, is non-empty and sorted, within the limits, bytes counted;
 * N10  an inline chunk holds 1..NS_INLINE_CHUNK_MAX bytes, every extent
 *      into one ends at or below NS_INLINE_END_MAX, and the inline
 *      counters match the table;
 * N11  reserved inode ranges are sorted, disjoint, below the counter,
 *      not empty, and no live inode is still marked unused in one.
 */
#include "metadata/namespace_int.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int chunk_id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, TS_CHUNK_ID_LEN);
}

/* Number of occurrences of v in sorted array a[0..n). */
static size_t count_sorted(const uint64_t *a, size_t n, uint64_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t c = 0;
    while (lo + c < n && a[lo + c] == v)
        c++;
    return c;
}

static int check_dir(const ns_state *ns, const struct ns_inode *in, uint64_t *refs,
                     size_t *nrefs, ts_error *err)
{
    unsigned long long ino = (unsigned long long)in->ino;
    const ptab *c = &in->u.dir->children;
    if (ptab_check(c, &ns_dentry_ops, err) != 0) {
        ts_error_prefix(err, "N1 directory %llu", ino);
        return TS_ECORRUPT;
    }
    uint32_t subdirs = 0;
    size_t n = ptab_nslots(c);
    for (size_t i = 0; i < n; i++) {
        const struct ns_dentry *d = c->slot[i];
        if (!d)
            continue;
        if (d->len != strlen(d->name) || ns_check_name(d->name, NULL) != 0 ||
            d->hash != ptab_hash_bytes(d->name, d->len))
            return ts_fail(err, TS_ECORRUPT, "N3: bad entry '%s' in %llu", d->name, ino);
        const struct ns_inode *child = ns_inode_get(ns, d->ino);
        if (!child || d->ino >= ns->next_ino)
            return ts_fail(err, TS_ECORRUPT, "N3: entry %llu/'%s' names missing inode %llu",
                           ino, d->name, (unsigned long long)d->ino);
        if (S_ISDIR(child->mode)) {
            subdirs++;
            if (child->u.dir->parent != in->ino)
                return ts_fail(err, TS_ECORRUPT, "N4: directory %llu named in %llu has parent "
                               "%llu", (unsigned long long)d->ino, ino,
                               (unsigned long long)child->u.dir->parent);
        }
        refs[(*nrefs)++] = d->ino;
    }
    if (in->nlink != 2 + subdirs)
        return ts_fail(err, TS_ECORRUPT, "N4: directory %llu has nlink %u, expected %u", ino,
                       in->nlink, 2 + subdirs);
    return 0;
}

static int check_file(const ns_state *ns, const struct ns_inode *in, ts_chunk_id *cref,
                      size_t *ncref, uint64_t *nextents, ts_error *err)
{
    unsigned long long ino = (unsigned long long)in->ino;
    const struct ns_extents *x = in->u.ext;
    if (!x)
        return 0;
    if (x->n == 0 || x->n > x->cap)
        return ts_fail(err, TS_ECORRUPT, "N6: file %llu has an empty or overfull extent list",
                       ino);
    for (uint32_t i = 0; i < x->n; i++) {
        const ts_extent *e = &x->e[i];
        if (e->length == 0)
            return ts_fail(err, TS_ECORRUPT, "N6: file %llu extent %u has length 0", ino, i);
        if (i > 0 && x->e[i - 1].file_offset + x->e[i - 1].length > e->file_offset)
            return ts_fail(err, TS_ECORRUPT, "N6: file %llu extents %u and %u overlap or are "
                           "unsorted", ino, i - 1, i);
        if (e->file_offset + e->length > in->size)
            return ts_fail(err, TS_ECORRUPT, "N6: file %llu extent %u ends at %llu past size "
                           "%llu", ino, i, (unsigned long long)(e->file_offset + e->length),
                           (unsigned long long)in->size);
        const struct ns_chunk *c = ns_chunk_get(ns, &e->chunk);
        if (!c)
            return ts_fail(err, TS_ECORRUPT, "N6: file %llu extent %u names an unknown chunk",
                           ino, i);
        if (e->chunk_offset + e->length > c->length)
            return ts_fail(err, TS_ECORRUPT, "N6: file %llu extent %u runs past its chunk",
                           ino, i);
        if (c->data && e->file_offset + e->length > NS_INLINE_END_MAX)
            return ts_fail(err, TS_ECORRUPT, "N10: file %llu extent %u of an inline chunk ends "
                           "past %u", ino, i, NS_INLINE_END_MAX);
        cref[(*ncref)++] = e->chunk;
    }
    *nextents += x->n;
    return 0;
}

int ns_check_invariants(const ns_state *ns, ts_error *err)
{
    int rc = 0;
    if (ptab_check(&ns->inodes, &ns_inode_ops, err) != 0) {
        ts_error_prefix(err, "N1 inode table");
        return TS_ECORRUPT;
    }
    if (ptab_check(&ns->chunks, &ns_chunk_ops, err) != 0) {
        ts_error_prefix(err, "N1 chunk table");
        return TS_ECORRUPT;
    }
    const struct ns_inode *root = ns_inode_get(ns, TS_ROOT_INO);
    if (!root || !S_ISDIR(root->mode) || root->u.dir->parent != TS_ROOT_INO)
        return ts_fail(err, TS_ECORRUPT, "N2: root missing or malformed");

    /* Every entry's target, and every extent's chunk, collected for counting. */
    size_t nrefs_cap = 0, ncref_cap = 0;
    size_t n = ptab_nslots(&ns->inodes);
    for (size_t i = 0; i < n; i++) {
        const struct ns_inode *in = ns->inodes.slot[i];
        if (!in)
            continue;
        if (S_ISDIR(in->mode))
            nrefs_cap += in->u.dir->children.count;
        else if (S_ISREG(in->mode) && in->u.ext)
            ncref_cap += in->u.ext->n;
    }
    uint64_t *refs = ts_malloc((nrefs_cap + 1) * sizeof(uint64_t));
    ts_chunk_id *cref = ts_malloc((ncref_cap + 1) * sizeof(ts_chunk_id));
    size_t nrefs = 0, ncref = 0;
    uint64_t files = 0, dirs = 0, links = 0, nextents = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ns_inode *in = ns->inodes.slot[i];
        if (!in)
            continue;
        if (in->ino >= ns->next_ino || in->ino == 0) {
            rc = ts_fail(err, TS_ECORRUPT, "N3: inode %llu outside [1, next_ino %llu)",
                         (unsigned long long)in->ino, (unsigned long long)ns->next_ino);
            goto free_refs;
        }
        if (S_ISDIR(in->mode)) {
            dirs++;
            if ((rc = check_dir(ns, in, refs, &nrefs, err)) != 0)
                goto free_refs;
        } else if (S_ISLNK(in->mode)) {
            links++;
            if (!in->u.target) {
                rc = ts_fail(err, TS_ECORRUPT, "symlink %llu without target",
                             (unsigned long long)in->ino);
                goto free_refs;
            }
        } else if (S_ISREG(in->mode)) {
            files++;
            if ((rc = check_file(ns, in, cref, &ncref, &nextents, err)) != 0)
                goto free_refs;
        } else {
            rc = ts_fail(err, TS_ECORRUPT, "inode %llu has unknown type %o",
                         (unsigned long long)in->ino, in->mode);
            goto free_refs;
        }
    }
    if (files != ns->nfiles || dirs != ns->ndirs || links != ns->nsymlinks ||
        nextents != ns->nextents) {
        rc = ts_fail(err, TS_ECORRUPT, "N8: counters files %llu/%llu dirs %llu/%llu symlinks "
                     "%llu/%llu extents %llu/%llu (counted/recorded)",
                     (unsigned long long)files, (unsigned long long)ns->nfiles,
                     (unsigned long long)dirs, (unsigned long long)ns->ndirs,
                     (unsigned long long)links, (unsigned long long)ns->nsymlinks,
                     (unsigned long long)nextents, (unsigned long long)ns->nextents);
        goto free_refs;
    }

    /* N4/N5: link counts against entries. */
    qsort(refs, nrefs, sizeof(uint64_t), u64_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct ns_inode *in = ns->inodes.slot[i];
        if (!in)
            continue;
        size_t named = count_sorted(refs, nrefs, in->ino);
        if (S_ISDIR(in->mode)) {
            size_t want = in->ino == TS_ROOT_INO ? 0 : 1;
            if (named != want) {
                rc = ts_fail(err, TS_ECORRUPT, "N4: directory %llu named by %zu entries",
                             (unsigned long long)in->ino, named);
                goto free_refs;
            }
            /* Walk up: must reach the root within ndirs steps (no cycles). */
            uint64_t p = in->ino;
            for (uint64_t steps = 0; p != TS_ROOT_INO; steps++) {
                const struct ns_inode *pi = ns_inode_get(ns, p);
                if (!pi || !S_ISDIR(pi->mode) || steps > ns->ndirs) {
                    rc = ts_fail(err, TS_ECORRUPT, "N4: directory %llu not reachable from root",
                                 (unsigned long long)in->ino);
                    goto free_refs;
                }
                p = pi->u.dir->parent;
            }
        } else if (named != in->nlink || named == 0) {
            rc = ts_fail(err, TS_ECORRUPT, "N5: inode %llu has nlink %u but %zu entries",
                         (unsigned long long)in->ino, in->nlink, named);
            goto free_refs;
        }
    }

    /* N7: chunk refcounts. */
    qsort(cref, ncref, sizeof(ts_chunk_id), chunk_id_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < ncref;) {
        size_t j = i;
        while (j < ncref && memcmp(&cref[j], &cref[i], TS_CHUNK_ID_LEN) == 0)
            j++;
        const struct ns_chunk *c = ns_chunk_get(ns, &cref[i]);
        if (!c || c->refcount != j - i) {
            char hex[TS_CHUNK_ID_HEX_LEN + 1];
            ts_chunk_id_to_hex(&cref[i], hex);
            rc = ts_fail(err, TS_ECORRUPT, "N7: chunk %s has refcount %u but %zu references",
                         hex, c ? c->refcount : 0, j - i);
            goto free_refs;
        }
        distinct++;
        i = j;
    }
    if (distinct != ns->chunks.count) {
        rc = ts_fail(err, TS_ECORRUPT, "N7: %u chunks in the table but %zu referenced",
                     ns->chunks.count, distinct);
        goto free_refs;
    }
    uint64_t inline_chunks = 0, inline_bytes = 0;
    for (size_t i = 0; i < ptab_nslots(&ns->chunks); i++) {
        const struct ns_chunk *c = ns->chunks.slot[i];
        if (!c || !c->data)
            continue;
        if (c->length == 0 || c->length > NS_INLINE_CHUNK_MAX) {
            rc = ts_fail(err, TS_ECORRUPT, "N10: an inline chunk of %llu bytes",
                         (unsigned long long)c->length);
            goto free_refs;
        }
        inline_chunks++;
        inline_bytes += c->length;
    }
    if (inline_chunks != ns->inline_chunks || inline_bytes != ns->inline_bytes) {
        rc = ts_fail(err, TS_ECORRUPT, "N10: %llu inline chunks of %llu bytes, counted %llu of "
                     "%llu", (unsigned long long)inline_chunks, (unsigned long long)inline_bytes,
                     (unsigned long long)ns->inline_chunks, (unsigned long long)ns->inline_bytes);
        goto free_refs;
    }
    if ((rc = ns_reserved_check(ns, err)) != 0)
        goto free_refs;
    rc = ns_xattrs_check(ns, err);
free_refs:
    free(refs);
    free(cref);
    return rc;
}
