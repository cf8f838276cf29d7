/*
 * Command encoding, decoding and dispatch into the namespace.  The field
 * order here IS the on-disk format of the write-ahead log: change it only
 * together with CMD_VERSION (and keep decoding the old version).
 */
#include "metadata/command.h"

#include <stdlib.h>
#include <string.h>
#include "common/codec.h"
#include "common/log.h"

static const char *const type_names[CMD_TYPE_END_] = {
    [CMD_MKDIR] = "mkdir",       [CMD_CREATE] = "create",   [CMD_UNLINK] = "unlink",
    [CMD_RMDIR] = "rmdir",       [CMD_RENAME] = "rename",   [CMD_SYMLINK] = "symlink",
    [CMD_LINK] = "link",         [CMD_SETATTR] = "setattr", [CMD_COMMIT] = "commit",
    [CMD_REGISTER_SERVER] = "register_server", [CMD_SETXATTR] = "setxattr",
    [CMD_REMOVEXATTR] = "removexattr", [CMD_SET_SERVER] = "set_server",
    [CMD_REBALANCE] = "rebalance",     [CMD_REPLACE_EXTENTS] = "replace_extents",
    [CMD_COMMIT_INLINE] = "commit_inline", [CMD_RESERVE_INODES] = "reserve_inodes",
    [CMD_CREATE_AT] = "create_at",
};

static void free_chunk_infos(ns_chunk_info *c, uint32_t n)
{
    for (uint32_t i = 0; c && i < n; i++)
        free(c[i].data);
    free(c);
}

const char *cmd_type_name(int type)
{
    if (type <= 0 || type >= CMD_TYPE_END_ || !type_names[type])
        return "unknown";
    return type_names[type];
}

void cmd_free(cmd *c)
{
    switch (c->type) {
    case CMD_MKDIR: free(c->u.mkdir.name); break;
    case CMD_CREATE: free(c->u.create.name); break;
    case CMD_UNLINK:
    case CMD_RMDIR: free(c->u.unlink.name); break;
    case CMD_RENAME:
        free(c->u.rename.name);
        free(c->u.rename.new_name);
        break;
    case CMD_SYMLINK:
        free(c->u.symlink.name);
        free(c->u.symlink.target);
        break;
    case CMD_LINK: free(c->u.link.new_name); break;
    case CMD_COMMIT:
    case CMD_COMMIT_INLINE:
        free(c->u.commit.extents);
        free_chunk_infos(c->u.commit.chunks, c->u.commit.n_chunks);
        break;
    case CMD_CREATE_AT:
        free(c->u.create_at.name);
        free(c->u.create_at.commit.extents);
        free_chunk_infos(c->u.create_at.commit.chunks, c->u.create_at.commit.n_chunks);
        break;
    case CMD_REPLACE_EXTENTS:
        for (uint32_t i = 0; c->u.replace.files && i < c->u.replace.n_files; i++)
            free(c->u.replace.files[i].extents);
        free(c->u.replace.files);
        free(c->u.replace.chunks);
        break;
    case CMD_REGISTER_SERVER:
        free(c->u.server.id);
        free(c->u.server.address);
        free(c->u.server.zone);
        break;
    case CMD_SETXATTR:
    case CMD_REMOVEXATTR:
        free(c->u.xattr.name);
        free(c->u.xattr.value);
        break;
    case CMD_SET_SERVER:
        free(c->u.set_server.id);
        free(c->u.set_server.address);
        free(c->u.set_server.zone);
        break;
    default:
        break;
    }
    memset(c, 0, sizeof(*c));
}

/* ---- encoding ---- */

static void enc_extents(ts_buf *b, const ts_extent *x, uint32_t n)
{
    ts_enc_u32(b, n);
    for (uint32_t i = 0; i < n; i++) {
        ts_enc_u64(b, x[i].file_offset);
        ts_enc_u64(b, x[i].length);
        ts_enc_raw(b, x[i].chunk.b, TS_CHUNK_ID_LEN);
        ts_enc_u64(b, x[i].chunk_offset);
    }
}

/* with_data (CMD_COMMIT_INLINE): each record ends with u8 inline and, when
 * 1, the chunk's `length` bytes. */
static void enc_chunks(ts_buf *b, const ns_chunk_info *c, uint32_t n, int with_data)
{
    ts_enc_u32(b, n);
    for (uint32_t i = 0; i < n; i++) {
        ts_enc_raw(b, c[i].id.b, TS_CHUNK_ID_LEN);
        ts_enc_u64(b, c[i].length);
        ts_enc_raw(b, c[i].sha256, TS_SHA256_LEN);
        if (with_data) {
            ts_enc_u8(b, c[i].data != NULL);
            if (c[i].data)
                ts_enc_raw(b, c[i].data, (size_t)c[i].length);
        }
    }
}

static void enc_commit(ts_buf *b, const struct cmd_commit *cm, int with_data)
{
    ts_enc_u64(b, cm->ino);
    ts_enc_u64(b, cm->offset);
    ts_enc_u64(b, cm->length);
    enc_extents(b, cm->extents, cm->n_extents);
    enc_chunks(b, cm->chunks, cm->n_chunks, with_data);
    ts_enc_u8(b, cm->has_size);
    ts_enc_u64(b, cm->size);
    ts_enc_u8(b, cm->has_mtime);
    ts_enc_i64(b, cm->mtime_ns);
}

void cmd_encode(const cmd *c, ts_buf *b)
{
    ts_enc_u8(b, c->client ? CMD_VERSION : CMD_VERSION_NO_CLIENT);
    ts_enc_u8(b, c->type);
    ts_enc_i64(b, c->now_ns);
    if (c->client) {
        ts_enc_u64(b, c->client);
        ts_enc_u64(b, c->seq);
        ts_enc_u64(b, c->acked);
    }
    switch (c->type) {
    case CMD_MKDIR:
        ts_enc_u64(b, c->u.mkdir.parent);
        ts_enc_str(b, c->u.mkdir.name);
        ts_enc_u32(b, c->u.mkdir.mode);
        ts_enc_u32(b, c->u.mkdir.uid);
        ts_enc_u32(b, c->u.mkdir.gid);
        break;
    case CMD_CREATE:
        ts_enc_u64(b, c->u.create.parent);
        ts_enc_str(b, c->u.create.name);
        ts_enc_u32(b, c->u.create.mode);
        ts_enc_u32(b, c->u.create.uid);
        ts_enc_u32(b, c->u.create.gid);
        ts_enc_u32(b, c->u.create.flags);
        break;
    case CMD_UNLINK:
    case CMD_RMDIR:
        ts_enc_u64(b, c->u.unlink.parent);
        ts_enc_str(b, c->u.unlink.name);
        break;
    case CMD_RENAME:
        ts_enc_u64(b, c->u.rename.parent);
        ts_enc_str(b, c->u.rename.name);
        ts_enc_u64(b, c->u.rename.new_parent);
        ts_enc_str(b, c->u.rename.new_name);
        ts_enc_u32(b, c->u.rename.flags);
        break;
    case CMD_SYMLINK:
        ts_enc_u64(b, c->u.symlink.parent);
        ts_enc_str(b, c->u.symlink.name);
        ts_enc_str(b, c->u.symlink.target);
        ts_enc_u32(b, c->u.symlink.uid);
        ts_enc_u32(b, c->u.symlink.gid);
        break;
    case CMD_LINK:
        ts_enc_u64(b, c->u.link.ino);
        ts_enc_u64(b, c->u.link.new_parent);
        ts_enc_str(b, c->u.link.new_name);
        break;
    case CMD_SETATTR: {
        const ns_setattr_args *a = &c->u.setattr.a;
        ts_enc_u64(b, c->u.setattr.ino);
        ts_enc_u32(b, a->valid);
        ts_enc_u32(b, a->mode);
        ts_enc_u32(b, a->uid);
        ts_enc_u32(b, a->gid);
        ts_enc_u64(b, a->size);
        ts_enc_i64(b, a->atime_ns);
        ts_enc_i64(b, a->mtime_ns);
        break;
    }
    case CMD_COMMIT:
    case CMD_COMMIT_INLINE:
        enc_commit(b, &c->u.commit, c->type == CMD_COMMIT_INLINE);
        break;
    case CMD_RESERVE_INODES:
        break;
    case CMD_CREATE_AT:
        ts_enc_u64(b, c->u.create_at.parent);
        ts_enc_str(b, c->u.create_at.name);
        ts_enc_u64(b, c->u.create_at.ino);
        ts_enc_u32(b, c->u.create_at.mode);
        ts_enc_u32(b, c->u.create_at.uid);
        ts_enc_u32(b, c->u.create_at.gid);
        ts_enc_u32(b, c->u.create_at.flags);
        ts_enc_u8(b, c->u.create_at.has_commit);
        if (c->u.create_at.has_commit)
            enc_commit(b, &c->u.create_at.commit, 1);
        break;
    case CMD_REGISTER_SERVER: {
        uint64_t w;
        memcpy(&w, &c->u.server.weight, sizeof(w));  /* IEEE-754 bits, exact */
        ts_enc_str(b, c->u.server.id);
        ts_enc_str(b, c->u.server.address);
        ts_enc_str(b, c->u.server.zone);
        ts_enc_u64(b, w);
        break;
    }
    case CMD_SETXATTR:
        ts_enc_u64(b, c->u.xattr.ino);
        ts_enc_str(b, c->u.xattr.name);
        ts_enc_bytes(b, c->u.xattr.value, c->u.xattr.len);
        ts_enc_u32(b, c->u.xattr.flags);
        break;
    case CMD_REMOVEXATTR:
        ts_enc_u64(b, c->u.xattr.ino);
        ts_enc_str(b, c->u.xattr.name);
        break;
    case CMD_SET_SERVER: {
        uint64_t w;
        memcpy(&w, &c->u.set_server.weight, sizeof(w));
        ts_enc_str(b, c->u.set_server.id);
        ts_enc_str(b, c->u.set_server.address ? c->u.set_server.address : "");
        ts_enc_u8(b, c->u.set_server.mask);
        ts_enc_u64(b, w);
        ts_enc_str(b, c->u.set_server.zone ? c->u.set_server.zone : "");
        ts_enc_u8(b, c->u.set_server.admin);
        break;
    }
    case CMD_REBALANCE:
        ns_rebalance_encode(b, &c->u.rebalance);
        break;
    case CMD_REPLACE_EXTENTS:
        ts_enc_u32(b, c->u.replace.n_files);
        for (uint32_t i = 0; i < c->u.replace.n_files; i++) {
            const struct cmd_replace_file *f = &c->u.replace.files[i];
            ts_enc_u64(b, f->ino);
            ts_enc_u64(b, f->version);
            ts_enc_u64(b, f->offset);
            ts_enc_u64(b, f->length);
            enc_extents(b, f->extents, f->n_extents);
        }
        enc_chunks(b, c->u.replace.chunks, c->u.replace.n_chunks, 0);
        break;
    default:
        ts_die("cmd_encode: unknown command type %u", c->type);
    }
}

/* ---- decoding ---- */

/* A required string; NULL (encoded null or error) poisons the decoder. */
static char *dec_name(ts_dec *d)
{
    char *s = ts_dec_str(d);
    if (!s)
        d->err = TS_EINVAL;
    return s;
}

/* An extent array; NULL (and the decoder poisoned) when malformed.  The
 * count is bounded by the remaining input before allocating. */
static ts_extent *dec_extents(ts_dec *d, uint32_t *np)
{
    uint32_t n = ts_dec_u32(d);
    *np = 0;
    if (!ts_dec_ok(d) || n > (d->len - d->pos) / (3 * 8 + TS_CHUNK_ID_LEN)) {
        d->err = TS_EINVAL;
        return NULL;
    }
    ts_extent *x = n ? ts_calloc(n, sizeof(ts_extent)) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        x[i].file_offset = ts_dec_u64(d);
        x[i].length = ts_dec_u64(d);
        ts_dec_raw(d, x[i].chunk.b, TS_CHUNK_ID_LEN);
        x[i].chunk_offset = ts_dec_u64(d);
    }
    *np = n;
    return x;
}

static ns_chunk_info *dec_chunks(ts_dec *d, uint32_t *np, int with_data)
{
    uint32_t n = ts_dec_u32(d);
    *np = 0;
    if (!ts_dec_ok(d) ||
        n > (d->len - d->pos) / (TS_CHUNK_ID_LEN + 8 + TS_SHA256_LEN + (with_data != 0))) {
        d->err = TS_EINVAL;
        return NULL;
    }
    ns_chunk_info *c = n ? ts_calloc(n, sizeof(ns_chunk_info)) : NULL;
    for (uint32_t i = 0; i < n && ts_dec_ok(d); i++) {
        ts_dec_raw(d, c[i].id.b, TS_CHUNK_ID_LEN);
        c[i].length = ts_dec_u64(d);
        ts_dec_raw(d, c[i].sha256, TS_SHA256_LEN);
        uint8_t is_inline = with_data ? ts_dec_u8(d) : 0;
        if (is_inline > 1 || (is_inline && (c[i].length == 0 || c[i].length > NS_INLINE_CHUNK_MAX ||
                                            c[i].length > d->len - d->pos))) {
            d->err = TS_EINVAL;
            break;
        }
        if (is_inline) {
            c[i].data = ts_malloc((size_t)c[i].length);
            ts_dec_raw(d, c[i].data, (size_t)c[i].length);
        }
    }
    *np = n;    /* cmd_free frees what was decoded, also on error */
    return c;
}

static void decode_replace(ts_dec *d, cmd *c)
{
    uint32_t n = ts_dec_u32(d);
    if (!ts_dec_ok(d) || n > (d->len - d->pos) / (4 * 8 + 4)) {
        d->err = TS_EINVAL;
        return;
    }
    c->u.replace.files = n ? ts_calloc(n, sizeof(*c->u.replace.files)) : NULL;
    c->u.replace.n_files = n;
    for (uint32_t i = 0; i < n && ts_dec_ok(d); i++) {
        struct cmd_replace_file *f = &c->u.replace.files[i];
        f->ino = ts_dec_u64(d);
        f->version = ts_dec_u64(d);
        f->offset = ts_dec_u64(d);
        f->length = ts_dec_u64(d);
        f->extents = dec_extents(d, &f->n_extents);
    }
    if (ts_dec_ok(d))
        c->u.replace.chunks = dec_chunks(d, &c->u.replace.n_chunks, 0);
}

static void decode_commit(ts_dec *d, struct cmd_commit *cm, int with_data)
{
    cm->ino = ts_dec_u64(d);
    cm->offset = ts_dec_u64(d);
    cm->length = ts_dec_u64(d);
    cm->extents = dec_extents(d, &cm->n_extents);
    if (!ts_dec_ok(d))
        return;
    cm->chunks = dec_chunks(d, &cm->n_chunks, with_data);
    if (!ts_dec_ok(d))
        return;
    cm->has_size = ts_dec_u8(d);
    cm->size = ts_dec_u64(d);
    cm->has_mtime = ts_dec_u8(d);
    cm->mtime_ns = ts_dec_i64(d);
    if (cm->has_size > 1 || cm->has_mtime > 1)
        d->err = TS_EINVAL;
}

static void decode_create_at(ts_dec *d, cmd *c)
{
    c->u.create_at.parent = ts_dec_u64(d);
    c->u.create_at.name = dec_name(d);
    c->u.create_at.ino = ts_dec_u64(d);
    c->u.create_at.mode = ts_dec_u32(d);
    c->u.create_at.uid = ts_dec_u32(d);
    c->u.create_at.gid = ts_dec_u32(d);
    c->u.create_at.flags = ts_dec_u32(d);
    c->u.create_at.has_commit = ts_dec_u8(d);
    if (c->u.create_at.has_commit > 1)
        d->err = TS_EINVAL;
    else if (c->u.create_at.has_commit && ts_dec_ok(d))
        decode_commit(d, &c->u.create_at.commit, 1);
}

int cmd_decode(const void *p, size_t len, cmd *c, ts_error *err)
{
    ts_dec d;
    memset(c, 0, sizeof(*c));
    ts_dec_init(&d, p, len);
    uint8_t version = ts_dec_u8(&d);
    uint8_t type = ts_dec_u8(&d);
    if (!ts_dec_ok(&d))
        return ts_fail(err, TS_ECORRUPT, "command: truncated header (%zu bytes)", len);
    if (version != CMD_VERSION && version != CMD_VERSION_NO_CLIENT)
        return ts_fail(err, TS_ECORRUPT, "command: unknown version %u", version);
    if (type == 0 || type >= CMD_TYPE_END_ || !type_names[type])
        return ts_fail(err, TS_ECORRUPT, "command: unknown type %u", type);
    c->type = type;
    c->now_ns = ts_dec_i64(&d);
    if (version == CMD_VERSION) {
        c->client = ts_dec_u64(&d);
        c->seq = ts_dec_u64(&d);
        c->acked = ts_dec_u64(&d);
        if (ts_dec_ok(&d) && c->client == 0) {
            memset(c, 0, sizeof(*c));
            return ts_fail(err, TS_ECORRUPT, "command: version %u with client id 0", version);
        }
    }
    switch (type) {
    case CMD_MKDIR:
        c->u.mkdir.parent = ts_dec_u64(&d);
        c->u.mkdir.name = dec_name(&d);
        c->u.mkdir.mode = ts_dec_u32(&d);
        c->u.mkdir.uid = ts_dec_u32(&d);
        c->u.mkdir.gid = ts_dec_u32(&d);
        break;
    case CMD_CREATE:
        c->u.create.parent = ts_dec_u64(&d);
        c->u.create.name = dec_name(&d);
        c->u.create.mode = ts_dec_u32(&d);
        c->u.create.uid = ts_dec_u32(&d);
        c->u.create.gid = ts_dec_u32(&d);
        c->u.create.flags = ts_dec_u32(&d);
        break;
    case CMD_UNLINK:
    case CMD_RMDIR:
        c->u.unlink.parent = ts_dec_u64(&d);
        c->u.unlink.name = dec_name(&d);
        break;
    case CMD_RENAME:
        c->u.rename.parent = ts_dec_u64(&d);
        c->u.rename.name = dec_name(&d);
        c->u.rename.new_parent = ts_dec_u64(&d);
        c->u.rename.new_name = dec_name(&d);
        c->u.rename.flags = ts_dec_u32(&d);
        break;
    case CMD_SYMLINK:
        c->u.symlink.parent = ts_dec_u64(&d);
        c->u.symlink.name = dec_name(&d);
        c->u.symlink.target = dec_name(&d);
        c->u.symlink.uid = ts_dec_u32(&d);
        c->u.symlink.gid = ts_dec_u32(&d);
        break;
    case CMD_LINK:
        c->u.link.ino = ts_dec_u64(&d);
        c->u.link.new_parent = ts_dec_u64(&d);
        c->u.link.new_name = dec_name(&d);
        break;
    case CMD_SETATTR: {
        ns_setattr_args *a = &c->u.setattr.a;
        c->u.setattr.ino = ts_dec_u64(&d);
        a->valid = ts_dec_u32(&d);
        a->mode = ts_dec_u32(&d);
        a->uid = ts_dec_u32(&d);
        a->gid = ts_dec_u32(&d);
        a->size = ts_dec_u64(&d);
        a->atime_ns = ts_dec_i64(&d);
        a->mtime_ns = ts_dec_i64(&d);
        break;
    }
    case CMD_COMMIT:
    case CMD_COMMIT_INLINE:
        decode_commit(&d, &c->u.commit, c->type == CMD_COMMIT_INLINE);
        break;
    case CMD_RESERVE_INODES:
        break;
    case CMD_CREATE_AT:
        decode_create_at(&d, c);
        break;
    case CMD_REPLACE_EXTENTS:
        decode_replace(&d, c);
        break;
    case CMD_REGISTER_SERVER: {
        c->u.server.id = dec_name(&d);
        c->u.server.address = dec_name(&d);
        c->u.server.zone = dec_name(&d);
        uint64_t w = ts_dec_u64(&d);
        memcpy(&c->u.server.weight, &w, sizeof(w));
        break;
    }
    case CMD_SETXATTR:
    case CMD_REMOVEXATTR:
        c->u.xattr.ino = ts_dec_u64(&d);
        c->u.xattr.name = dec_name(&d);
        if (type == CMD_SETXATTR) {
            size_t n = 0;
            const void *v = ts_dec_bytes(&d, &n);
            if (ts_dec_ok(&d) && n > UINT32_MAX)
                d.err = TS_EINVAL;
            if (ts_dec_ok(&d)) {
                c->u.xattr.value = ts_malloc(n ? n : 1);
                if (n)
                    memcpy(c->u.xattr.value, v, n);
                c->u.xattr.len = (uint32_t)n;
            }
            c->u.xattr.flags = ts_dec_u32(&d);
        }
        break;
    case CMD_SET_SERVER: {
        c->u.set_server.id = dec_name(&d);
        c->u.set_server.address = dec_name(&d);
        c->u.set_server.mask = ts_dec_u8(&d);
        uint64_t w = ts_dec_u64(&d);
        memcpy(&c->u.set_server.weight, &w, sizeof(w));
        c->u.set_server.zone = dec_name(&d);
        c->u.set_server.admin = ts_dec_u8(&d);
        if (ts_dec_ok(&d) && (c->u.set_server.mask & ~(CMD_SET_WEIGHT | CMD_SET_ZONE |
                                                         CMD_SET_ADMIN)))
            d.err = TS_EINVAL;
        break;
    }
    case CMD_REBALANCE:
        ns_rebalance_decode(&d, &c->u.rebalance);
        break;
    }
    if (!ts_dec_ok(&d)) {
        cmd_free(c);
        return ts_fail(err, TS_ECORRUPT, "command %s: truncated or malformed body",
                       cmd_type_name(type));
    }
    if (!ts_dec_done(&d)) {
        size_t extra = d.len - d.pos;
        cmd_free(c);
        return ts_fail(err, TS_ECORRUPT, "command %s: %zu trailing bytes", cmd_type_name(type),
                       extra);
    }
    return 0;
}

/* ---- apply ---- */

/* The directory a command adds an entry to or removes one from; 0 for the
 * others (rename touches two and reports neither). */
static uint64_t changed_dir(const cmd *c)
{
    switch (c->type) {
    case CMD_MKDIR: return c->u.mkdir.parent;
    case CMD_CREATE: return c->u.create.parent;
    case CMD_CREATE_AT: return c->u.create_at.parent;
    case CMD_UNLINK:
    case CMD_RMDIR: return c->u.unlink.parent;
    case CMD_SYMLINK: return c->u.symlink.parent;
    case CMD_LINK: return c->u.link.new_parent;
    default: return 0;
    }
}

static int apply_one(ns_state *ns, const cmd *c, cmd_result *res, ts_error *err);

static void commit_args(const struct cmd_commit *cm, ns_commit_args *a)
{
    *a = (ns_commit_args){
        .ino = cm->ino, .offset = cm->offset, .length = cm->length,
        .extents = cm->extents, .n_extents = cm->n_extents,
        .chunks = cm->chunks, .n_chunks = cm->n_chunks,
        .has_size = cm->has_size, .size = cm->size,
        .has_mtime = cm->has_mtime, .mtime_ns = cm->mtime_ns,
    };
}

static int apply_create_at(ns_state *ns, const cmd *c, cmd_result *res, ts_error *err)
{
    ns_commit_args a;
    if (c->u.create_at.has_commit)
        commit_args(&c->u.create_at.commit, &a);
    int rc = ns_create_at(ns, c->u.create_at.parent, c->u.create_at.name, c->u.create_at.ino,
                          c->u.create_at.mode, c->u.create_at.uid, c->u.create_at.gid,
                          c->u.create_at.flags, c->u.create_at.has_commit ? &a : NULL,
                          c->now_ns, &res->attr, err);
    res->created = rc == 0;
    return rc;
}

int cmd_apply(ns_state *ns, const cmd *c, cmd_result *res, ts_error *err)
{
    memset(res, 0, sizeof(*res));
    int rc = apply_one(ns, c, res, err);
    uint64_t dir = changed_dir(c);
    if (rc == 0 && dir != 0) {
        ts_error ignored;
        res->has_parent = ns_getattr(ns, dir, &res->parent, &ignored) == 0;
    }
    return rc;
}

static int apply_one(ns_state *ns, const cmd *c, cmd_result *res, ts_error *err)
{
    switch (c->type) {
    case CMD_MKDIR:
        return ns_mkdir(ns, c->u.mkdir.parent, c->u.mkdir.name, c->u.mkdir.mode, c->u.mkdir.uid,
                        c->u.mkdir.gid, c->now_ns, &res->attr, err);
    case CMD_CREATE:
        return ns_create(ns, c->u.create.parent, c->u.create.name, c->u.create.mode,
                         c->u.create.uid, c->u.create.gid, c->u.create.flags, c->now_ns,
                         &res->attr, &res->created, err);
    case CMD_UNLINK:
        return ns_unlink(ns, c->u.unlink.parent, c->u.unlink.name, c->now_ns, err);
    case CMD_RMDIR:
        return ns_rmdir(ns, c->u.unlink.parent, c->u.unlink.name, c->now_ns, err);
    case CMD_RENAME:
        return ns_rename(ns, c->u.rename.parent, c->u.rename.name, c->u.rename.new_parent,
                         c->u.rename.new_name, c->u.rename.flags, c->now_ns, err);
    case CMD_SYMLINK:
        return ns_symlink(ns, c->u.symlink.parent, c->u.symlink.name, c->u.symlink.target,
                          c->u.symlink.uid, c->u.symlink.gid, c->now_ns, &res->attr, err);
    case CMD_LINK:
        return ns_link(ns, c->u.link.ino, c->u.link.new_parent, c->u.link.new_name, c->now_ns,
                       &res->attr, err);
    case CMD_SETATTR:
        return ns_setattr(ns, c->u.setattr.ino, &c->u.setattr.a, c->now_ns, &res->attr, err);
    case CMD_COMMIT:
    case CMD_COMMIT_INLINE: {
        ns_commit_args a;
        commit_args(&c->u.commit, &a);
        return ns_commit(ns, &a, c->now_ns, &res->attr, err);
    }
    case CMD_RESERVE_INODES:
        ns_reserve_inodes(ns, &res->attr.ino);
        return 0;
    case CMD_CREATE_AT:
        return apply_create_at(ns, c, res, err);
    case CMD_REGISTER_SERVER:
        return ns_register_server(ns, c->u.server.id, c->u.server.address, c->u.server.zone,
                                  c->u.server.weight, err);
    case CMD_SETXATTR:
        return ns_setxattr(ns, c->u.xattr.ino, c->u.xattr.name, c->u.xattr.value, c->u.xattr.len,
                           c->u.xattr.flags, c->now_ns, err);
    case CMD_REMOVEXATTR:
        return ns_removexattr(ns, c->u.xattr.ino, c->u.xattr.name, c->now_ns, err);
    case CMD_SET_SERVER: {
        ns_server_change ch = {
            .address = c->u.set_server.address,
            .set_weight = (c->u.set_server.mask & CMD_SET_WEIGHT) != 0,
            .weight = c->u.set_server.weight,
            .set_zone = (c->u.set_server.mask & CMD_SET_ZONE) != 0,
            .zone = c->u.set_server.zone,
            .set_admin = (c->u.set_server.mask & CMD_SET_ADMIN) != 0,
            .admin = c->u.set_server.admin,
        };
        return ns_set_server(ns, c->u.set_server.id, &ch, err);
    }
    case CMD_REBALANCE: {
        ns_rebalance rb = c->u.rebalance;
        if (rb.running && rb.started_ns == 0)
            rb.started_ns = c->now_ns;      /* in the command: replays agree */
        ns_set_rebalance(ns, &rb);
        return 0;
    }
    case CMD_REPLACE_EXTENTS: {
        uint32_t n = c->u.replace.n_files;
        ns_replace_file *files = ts_calloc(n + 1, sizeof(*files));
        for (uint32_t i = 0; i < n; i++) {
            const struct cmd_replace_file *f = &c->u.replace.files[i];
            files[i] = (ns_replace_file){ f->ino, f->version, f->offset, f->length,
                                          f->extents, f->n_extents };
        }
        ns_replace_args a = { files, n, c->u.replace.chunks, c->u.replace.n_chunks };
        int rc = ns_replace_extents(ns, &a, c->now_ns, &res->replaced, err);
        free(files);
        return rc;
    }
    default:
        return ts_fail(err, TS_EINVAL, "apply: unknown command type %u", c->type);
    }
}
