/*
 * Serialization of the whole namespace (for snapshots, and for tests that
 * compare states).  The encoding is canonical: tables are walked in ptab
 * order, which depends only on their contents (ptab.h, P1), so two equal
 * states encode to equal bytes whatever their history.  Chunk reference
 * counts are not stored; the decoder recomputes them from the extents.
 *
 * Format (codec.h conventions, little-endian):
 *   u32 magic "TSNS", u8 version 1,
 *   u64 next_ino, u64 garbage_chunks, u64 membership_epoch,
 *   u32 n_servers, { str id, str address, str zone, u64 weight (IEEE bits) },
 *   u64 n_chunks,  { raw16 id, u64 length, raw32 sha256 },
 *   u64 n_inodes,  { u64 ino, u32 mode, nlink, uid, gid, u64 size, version,
 *                    i64 atime, mtime, ctime, then by type:
 *                    dir:  u64 parent, u32 n, { bytes name, u64 ino }
 *                    file: u32 n, { u64 file_offset, length, raw16 chunk, u64 chunk_offset }
 *                    link: str target },
 *   (version 2 on) u64 n_xattr_sets, { u64 ino, u32 n, { bytes name, bytes value } }
 *   (version 3 on) each server record ends with u8 admin, u8 pinned, and the
 *   image ends with the rebalance flag: u8 running, u64 bandwidth, max_moves,
 *   bytes_planned, bytes_target, moves_target, i64 started_ns
 *   (version 4 on) each chunk record ends with u8 inline and, when 1, the
 *   chunk's `length` bytes (an inline chunk, namespace.h), and the image
 *   ends with the reserved inode ranges: u32 n, { u64 first, u64 unused }
 *
 * Version 1 images (no attributes), version 2 images (servers all active,
 * nothing pinned, no rebalance) and version 3 images (no inline chunks)
 * still load.
 */
#include "metadata/namespace_int.h"

#include <stdlib.h>
#include <string.h>
#include "common/codec.h"
#include "common/util.h"

#define NS_MAGIC 0x534e5354u   /* "TSNS" */
#define NS_VERSION 4

void ns_encode(const ns_state *ns, ts_buf *b)
{
    ts_enc_u32(b, NS_MAGIC);
    ts_enc_u8(b, NS_VERSION);
    ts_enc_u64(b, ns->next_ino);
    ts_enc_u64(b, ns->garbage_chunks);
    ts_enc_u64(b, ns->membership_epoch);
    ts_enc_u32(b, (uint32_t)ns->n_servers);
    for (size_t i = 0; i < ns->n_servers; i++) {
        const ns_server *s = &ns->servers[i];
        uint64_t w;
        memcpy(&w, &s->weight, sizeof(w));
        ts_enc_str(b, s->id);
        ts_enc_str(b, s->address);
        ts_enc_str(b, s->zone);
        ts_enc_u64(b, w);
        ts_enc_u8(b, s->admin);
        ts_enc_u8(b, s->pinned);
    }
    ts_enc_u64(b, ns->chunks.count);
    size_t n = ptab_nslots(&ns->chunks);
    for (size_t i = 0; i < n; i++) {
        const struct ns_chunk *c = ns->chunks.slot[i];
        if (!c)
            continue;
        ts_enc_raw(b, c->id.b, TS_CHUNK_ID_LEN);
        ts_enc_u64(b, c->length);
        ts_enc_raw(b, c->sha256, TS_SHA256_LEN);
        ts_enc_u8(b, c->data != NULL);
        if (c->data)
            ts_enc_raw(b, c->data, (size_t)c->length);
    }
    ts_enc_u64(b, ns->inodes.count);
    n = ptab_nslots(&ns->inodes);
    for (size_t i = 0; i < n; i++) {
        const struct ns_inode *in = ns->inodes.slot[i];
        if (!in)
            continue;
        ts_enc_u64(b, in->ino);
        ts_enc_u32(b, in->mode);
        ts_enc_u32(b, in->nlink);
        ts_enc_u32(b, in->uid);
        ts_enc_u32(b, in->gid);
        ts_enc_u64(b, in->size);
        ts_enc_u64(b, in->version);
        ts_enc_i64(b, in->atime);
        ts_enc_i64(b, in->mtime);
        ts_enc_i64(b, in->ctime);
        if (S_ISDIR(in->mode)) {
            const ptab *c = &in->u.dir->children;
            ts_enc_u64(b, in->u.dir->parent);
            ts_enc_u32(b, c->count);
            size_t m = ptab_nslots(c);
            for (size_t j = 0; j < m; j++) {
                const struct ns_dentry *d = c->slot[j];
                if (!d)
                    continue;
                ts_enc_bytes(b, d->name, d->len);
                ts_enc_u64(b, d->ino);
            }
        } else if (S_ISLNK(in->mode)) {
            ts_enc_str(b, in->u.target);
        } else {
            const struct ns_extents *x = in->u.ext;
            uint32_t ne = x ? x->n : 0;
            ts_enc_u32(b, ne);
            for (uint32_t j = 0; j < ne; j++) {
                ts_enc_u64(b, x->e[j].file_offset);
                ts_enc_u64(b, x->e[j].length);
                ts_enc_raw(b, x->e[j].chunk.b, TS_CHUNK_ID_LEN);
                ts_enc_u64(b, x->e[j].chunk_offset);
            }
        }
    }
    ts_enc_u64(b, ns->xattrs.count);
    n = ptab_nslots(&ns->xattrs);
    for (size_t i = 0; i < n; i++) {
        const struct ns_xattrs *x = ns->xattrs.slot[i];
        if (!x)
            continue;
        ts_enc_u64(b, x->ino);
        ts_enc_u32(b, x->n);
        for (uint32_t j = 0; j < x->n; j++) {
            ts_enc_bytes(b, x->v[j].name, strlen(x->v[j].name));
            ts_enc_bytes(b, x->v[j].value, x->v[j].len);
        }
    }
    ns_rebalance_encode(b, &ns->rebalance);
    ns_reserved_encode(ns, b);
}

/* A count read from the input cannot exceed what the remaining bytes could
 * hold; this keeps garbage from causing huge allocations. */
static int count_ok(const ts_dec *d, uint64_t count, size_t min_item)
{
    return ts_dec_ok(d) && count <= (d->len - d->pos) / min_item;
}

static int decode_servers(ts_dec *d, ns_state *ns, unsigned version, ts_error *err)
{
    uint32_t n = ts_dec_u32(d);
    if (!count_ok(d, n, 12 + 8))
        return ts_fail(err, TS_ECORRUPT, "bad server count");
    for (uint32_t i = 0; i < n; i++) {
        char *id = ts_dec_str(d), *addr = ts_dec_str(d), *zone = ts_dec_str(d);
        uint64_t w = ts_dec_u64(d);
        uint8_t admin = version >= 3 ? ts_dec_u8(d) : NS_SERVER_ACTIVE;
        uint8_t pinned = version >= 3 ? ts_dec_u8(d) : 0;
        double weight;
        memcpy(&weight, &w, sizeof(weight));
        int rc = ts_dec_ok(d) ? ns_register_server(ns, id, addr, zone, weight, err)
                              : ts_fail(err, TS_ECORRUPT, "truncated server %u", i);
        if (rc == 0 && (admin > NS_SERVER_REMOVED || (pinned & ~(NS_PIN_WEIGHT | NS_PIN_ZONE))))
            rc = ts_fail(err, TS_ECORRUPT, "admin state %u or pinned bits %#x out of range",
                         admin, pinned);
        if (rc == 0) {
            ns_server *s = (ns_server *)ns_server_find(ns, id);
            s->admin = admin;
            s->pinned = pinned;
        }
        free(id);
        free(addr);
        free(zone);
        if (rc) {
            ts_error_prefix(err, "server %u", i);
            return TS_ECORRUPT;
        }
    }
    return 0;
}

static int decode_chunks(ts_dec *d, ns_state *ns, unsigned version, ts_error *err)
{
    uint64_t n = ts_dec_u64(d);
    if (!count_ok(d, n, TS_CHUNK_ID_LEN + 8 + TS_SHA256_LEN + (version >= 4)))
        return ts_fail(err, TS_ECORRUPT, "bad chunk count");
    ptab_reserve(&ns->chunks, &ns_chunk_ops, (size_t)n);   /* records come in hash order */
    for (uint64_t i = 0; i < n; i++) {
        struct ns_chunk *c = ts_calloc(1, sizeof(*c));
        ts_dec_raw(d, c->id.b, TS_CHUNK_ID_LEN);
        c->length = ts_dec_u64(d);
        ts_dec_raw(d, c->sha256, TS_SHA256_LEN);
        uint8_t is_inline = version >= 4 ? ts_dec_u8(d) : 0;
        if (is_inline > 1 || (is_inline && (c->length == 0 || c->length > NS_INLINE_CHUNK_MAX))) {
            free(c);
            return ts_fail(err, TS_ECORRUPT, "chunk %llu: bad inline record",
                           (unsigned long long)i);
        }
        if (is_inline && ts_dec_ok(d)) {
            c->data = ts_malloc((size_t)c->length);
            ts_dec_raw(d, c->data, (size_t)c->length);
        }
        if (!ts_dec_ok(d) ||
            ptab_insert(&ns->chunks, &ns_chunk_ops, c, ns_chunk_hash(&c->id), &c->id) != 0) {
            free(c->data);
            free(c);
            return ts_fail(err, TS_ECORRUPT, "chunk %llu truncated or duplicated",
                           (unsigned long long)i);
        }
        if (c->data) {
            ns->inline_chunks++;
            ns->inline_bytes += c->length;
        }
    }
    return 0;
}

static int decode_dir(ts_dec *d, struct ns_inode *in, ts_error *err)
{
    in->u.dir = ts_calloc(1, sizeof(struct ns_dir));
    in->u.dir->parent = ts_dec_u64(d);
    uint32_t n = ts_dec_u32(d);
    if (!count_ok(d, n, 4 + 1 + 8))
        return ts_fail(err, TS_ECORRUPT, "directory %llu: bad entry count",
                       (unsigned long long)in->ino);
    ptab_reserve(&in->u.dir->children, &ns_dentry_ops, n);
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *name = ts_dec_bytes(d, &len);
        uint64_t ino = ts_dec_u64(d);
        if (!ts_dec_ok(d) || len == 0 || len > TS_NAME_MAX || memchr(name, '\0', len))
            return ts_fail(err, TS_ECORRUPT, "directory %llu: bad entry %u",
                           (unsigned long long)in->ino, i);
        struct ns_dentry *de = ts_malloc(offsetof(struct ns_dentry, name) + len + 1);
        de->ino = ino;
        de->len = (uint8_t)len;
        memcpy(de->name, name, len);
        de->name[len] = '\0';
        de->hash = ptab_hash_bytes(name, len);
        struct ns_name_key k = { de->name, len };
        if (ns_check_name(de->name, NULL) != 0 ||
            ptab_insert(&in->u.dir->children, &ns_dentry_ops, de, de->hash, &k) != 0) {
            free(de);
            return ts_fail(err, TS_ECORRUPT, "directory %llu: invalid or duplicate entry %u",
                           (unsigned long long)in->ino, i);
        }
    }
    return 0;
}

static int decode_file(ts_dec *d, ns_state *ns, struct ns_inode *in, ts_error *err)
{
    uint32_t n = ts_dec_u32(d);
    if (!count_ok(d, n, 8 + 8 + TS_CHUNK_ID_LEN + 8))
        return ts_fail(err, TS_ECORRUPT, "file %llu: bad extent count",
                       (unsigned long long)in->ino);
    if (n == 0)
        return 0;
    struct ns_extents *x = ts_malloc(sizeof(*x) + n * sizeof(ts_extent));
    x->n = x->cap = n;
    in->u.ext = x;
    for (uint32_t i = 0; i < n; i++) {
        ts_extent *e = &x->e[i];
        e->file_offset = ts_dec_u64(d);
        e->length = ts_dec_u64(d);
        ts_dec_raw(d, e->chunk.b, TS_CHUNK_ID_LEN);
        e->chunk_offset = ts_dec_u64(d);
        if (!ts_dec_ok(d) || !ns_chunk_get(ns, &e->chunk)) {
            x->n = i;   /* only the references taken so far are released */
            return ts_fail(err, TS_ECORRUPT, "file %llu: extent %u truncated or names an "
                           "unknown chunk", (unsigned long long)in->ino, i);
        }
        ns_chunk_ref(ns, &e->chunk);
        ns->nextents++;
    }
    return 0;
}

static int decode_inodes(ts_dec *d, ns_state *ns, ts_error *err)
{
    uint64_t n = ts_dec_u64(d);
    if (!count_ok(d, n, 8 * 7 + 4 * 4))
        return ts_fail(err, TS_ECORRUPT, "bad inode count");
    ptab_reserve(&ns->inodes, &ns_inode_ops, (size_t)n);
    for (uint64_t i = 0; i < n; i++) {
        struct ns_inode *in = ts_calloc(1, sizeof(*in));
        int rc = 0;
        in->ino = ts_dec_u64(d);
        in->mode = ts_dec_u32(d);
        in->nlink = ts_dec_u32(d);
        in->uid = ts_dec_u32(d);
        in->gid = ts_dec_u32(d);
        in->size = ts_dec_u64(d);
        in->version = ts_dec_u64(d);
        in->atime = ts_dec_i64(d);
        in->mtime = ts_dec_i64(d);
        in->ctime = ts_dec_i64(d);
        if (!ts_dec_ok(d) || ns_inode_get(ns, in->ino)) {
            free(in);
            return ts_fail(err, TS_ECORRUPT, "inode record %llu truncated or duplicated",
                           (unsigned long long)i);
        }
        if (S_ISDIR(in->mode)) {
            rc = decode_dir(d, in, err);
        } else if (S_ISLNK(in->mode)) {
            in->u.target = ts_dec_str(d);
            if (!in->u.target) {
                in->u.target = ts_strdup("");   /* keeps ns_free's view consistent */
                rc = ts_fail(err, TS_ECORRUPT, "symlink %llu: bad target",
                             (unsigned long long)in->ino);
            }
        } else if (S_ISREG(in->mode)) {
            rc = decode_file(d, ns, in, err);
        } else {
            unsigned long long ino = (unsigned long long)in->ino;
            uint32_t mode = in->mode;
            free(in);
            return ts_fail(err, TS_ECORRUPT, "inode %llu: unknown type %o", ino, mode);
        }
        /* Inserted even when partially decoded, so ns_free releases it. */
        ns_inode_insert(ns, in);
        if (rc)
            return rc;
    }
    return 0;
}

/* Attributes are set through ns_setxattr (at time 0, then the inode's
 * ctime and version are restored), so the decoder applies the same limits
 * as the live state. */
static int decode_xattrs(ts_dec *d, ns_state *ns, ts_error *err)
{
    uint64_t n = ts_dec_u64(d);
    if (!count_ok(d, n, 8 + 4))
        return ts_fail(err, TS_ECORRUPT, "bad xattr set count");
    ptab_reserve(&ns->xattrs, &ns_xattrs_ops, (size_t)n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ino = ts_dec_u64(d);
        uint32_t k = ts_dec_u32(d);
        struct ns_inode *in = ns_inode_get(ns, ino);
        if (!ts_dec_ok(d) || !in || k == 0 || !count_ok(d, k, 8) || ns_xattrs_get(ns, ino))
            return ts_fail(err, TS_ECORRUPT, "xattr set %llu: truncated, empty, duplicated or "
                           "of a missing inode", (unsigned long long)i);
        int64_t ctime = in->ctime;
        uint64_t version = in->version;
        for (uint32_t j = 0; j < k; j++) {
            size_t nlen = 0, vlen = 0;
            const char *name = ts_dec_bytes(d, &nlen);
            const void *value = ts_dec_bytes(d, &vlen);
            char buf[NS_XATTR_NAME_MAX + 1];
            if (!ts_dec_ok(d) || nlen == 0 || nlen > NS_XATTR_NAME_MAX || memchr(name, '\0', nlen))
                return ts_fail(err, TS_ECORRUPT, "inode %llu: bad attribute %u",
                               (unsigned long long)ino, j);
            memcpy(buf, name, nlen);
            buf[nlen] = '\0';
            if (ns_setxattr(ns, ino, buf, value, vlen, NS_XATTR_CREATE, 0, err) != 0) {
                ts_error_prefix(err, "inode %llu attribute %u", (unsigned long long)ino, j);
                return TS_ECORRUPT;
            }
        }
        in->ctime = ctime;
        in->version = version;
    }
    return 0;
}

static int decode_rebalance(ts_dec *d, ns_state *ns, ts_error *err)
{
    ns_rebalance_decode(d, &ns->rebalance);
    if (!ts_dec_ok(d))
        return ts_fail(err, TS_ECORRUPT, "rebalance record truncated or malformed");
    return 0;
}

int ns_decode(const void *p, size_t len, ns_state **out, ts_error *err)
{
    ts_dec d;
    int rc;
    ts_dec_init(&d, p, len);
    uint32_t magic = ts_dec_u32(&d);
    uint8_t version = ts_dec_u8(&d);
    if (!ts_dec_ok(&d) || magic != NS_MAGIC)
        return ts_fail(err, TS_ECORRUPT, "namespace image: bad magic");
    if (version < 1 || version > NS_VERSION)
        return ts_fail(err, TS_ECORRUPT, "namespace image: unknown version %u", version);
    ns_state *ns = ts_calloc(1, sizeof(*ns));
    ns->next_ino = ts_dec_u64(&d);
    ns->garbage_chunks = ts_dec_u64(&d);
    uint64_t epoch = ts_dec_u64(&d);
    if ((rc = decode_servers(&d, ns, version, err)) != 0 ||
        (rc = decode_chunks(&d, ns, version, err)) != 0 || (rc = decode_inodes(&d, ns, err)) != 0 ||
        (version >= 2 && (rc = decode_xattrs(&d, ns, err)) != 0) ||
        (version >= 3 && (rc = decode_rebalance(&d, ns, err)) != 0) ||
        (version >= 4 && (rc = ns_reserved_decode(&d, ns, err)) != 0))
        goto free_ns;
    ns->membership_epoch = epoch;   /* registering above bumped it */
    if (!ts_dec_done(&d)) {
        rc = ts_fail(err, TS_ECORRUPT, "namespace image: %zu trailing bytes", d.len - d.pos);
        goto free_ns;
    }
    if ((rc = ns_check_invariants(ns, err)) != 0) {
        rc = TS_ECORRUPT;
        goto free_ns;
    }
    *out = ns;
    return 0;
free_ns:
    ns_free(ns);
    return rc ? rc : TS_ECORRUPT;
}
