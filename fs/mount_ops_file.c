/*
 * tessera-mount: the file operations (create, open, read, write, flush,
 * fsync, release), thin FUSE wrappers around mount_io.c.
 *
 * Cache decisions made at open (close-to-open consistency): the kernel
 * keeps a file's cached pages only when the file's version is the one it
 * was last given; otherwise its pages are dropped (keep_cache = 0) and its
 * cached attributes are invalidated, so a size grown by another client is
 * seen by the very next read.
 */
#include "fs/mount_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"

/* Forgets "security.capability is absent" for ino (an open re-reads it). */
static void reset_caps(mnt_ctx *m, uint64_t ino)
{
    pthread_mutex_lock(&m->itable.mu);
    mnt_inode *in = NULL;
    HASH_FIND(hh, m->itable.map, &ino, sizeof(ino), in);
    if (in)
        in->nocaps_until_ms = 0;
    pthread_mutex_unlock(&m->itable.mu);
}

/* A file this mount just created has no xattrs at all: the kernel's
 * security.capability query before the first write needs no round trip. */
static void note_no_caps(mnt_ctx *m, uint64_t ino)
{
    pthread_mutex_lock(&m->itable.mu);
    mnt_inode *in = NULL;
    HASH_FIND(hh, m->itable.map, &ino, sizeof(ino), in);
    if (in)
        in->nocaps_until_ms = INT64_MAX;
    pthread_mutex_unlock(&m->itable.mu);
}

/* Opens the handle and fills fi; on error nothing is left open. */
static int open_handle(mnt_ctx *m, const ts_attr *a, struct fuse_file_info *fi, int known,
                       int *changed, ts_error *e)
{
    mnt_handle *h;
    ts_attr now;
    int rc = mnt_io_open(&m->io, a, fi->flags, known, &h, &now, changed, e);

    if (rc != 0)
        return rc;
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->keep_cache = !*changed;
    fi->direct_io = 0;
    return 0;
}

/* The kernel forgets a directory's attributes after a create in it; a
 * create ahead of the server changed them only here, so the next look at
 * the directory is answered with its cached attributes, mtime now. */
static void note_dir_touched(mnt_ctx *m, fuse_ino_t parent)
{
    ts_attr dir;
    if (mnt_inode_cached_attr(&m->itable, parent, &dir) != 0)
        return;
    dir.mtime_ns = dir.ctime_ns = ts_now_ns();
    mnt_inode_note_fresh(&m->itable, &dir, ts_mono_ms() + (int64_t)(m->o.attr_timeout * 1000));
}

/* O_TRUNC without O_EXCL: whatever the name held, the file starts empty,
 * so the server can be told at close (mount_io.h "Creates ahead"). */
static int can_create_ahead(const mnt_ctx *m, int flags)
{
    return m->io.create_ahead && (flags & O_TRUNC) && !(flags & O_EXCL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    mnt_ctx *m = mnt_of(req);
    struct fuse_entry_param ent;
    uint32_t md = mode & 07777, uid, gid;
    unsigned flags = 0;
    ts_attr a;
    ts_error e;
    int created = 0, changed = 0, rc;

    if (fi->flags & O_EXCL)
        flags |= TESS_CREATE_EXCL;
    if (fi->flags & O_TRUNC)
        flags |= TESS_CREATE_TRUNC;
    mnt_new_owner(req, parent, 0, &md, &uid, &gid);
    if (can_create_ahead(m, fi->flags) && strlen(name) <= TS_NAME_MAX) {
        mnt_handle *h = NULL;
        rc = mnt_io_create_ahead(&m->io, parent, name, md, uid, gid, fi->flags, &h, &a, &e);
        if (rc == 0) {
            fi->fh = (uint64_t)(uintptr_t)h;
            fi->keep_cache = 0;
            fi->direct_io = 0;
            created = 1;
            note_dir_touched(m, parent);
        }
    } else {
        rc = tess_create(m->c, parent, name, md, uid, gid, flags, &a, &created, &e);
        if (rc == 0)
            rc = open_handle(m, &a, fi, created, &changed, &e);
    }
    if (rc != 0) {
        mnt_reply_err(req, "create", rc, &e);
        return;
    }
    if (created)
        note_no_caps(m, a.ino);
    mnt_fill_entry(m, &a, &ent);
    mnt_inode_ref(&m->itable, &a);
    if (fuse_reply_create(req, &ent, fi) != 0) {
        /* Interrupted: the kernel got neither the entry nor the handle. */
        ts_error ignored;
        mnt_inode_forget(&m->itable, a.ino, 1);
        mnt_io_release(&m->io, (mnt_handle *)(uintptr_t)fi->fh, &ignored);
    }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_ctx *m = mnt_of(req);
    ts_attr a;
    ts_error e;
    int changed = 0, rc;

    if (mnt_inode_cached_attr(&m->itable, ino, &a) != 0) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (S_ISDIR(a.mode)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    reset_caps(m, ino);
    if ((rc = open_handle(m, &a, fi, 0, &changed, &e)) != 0) {
        mnt_reply_err(req, "open", rc, &e);
        return;
    }
    if (changed) {
        /* Attributes only (offset < 0): the kernel must ask again for the
         * size before reading; pages go with keep_cache = 0. */
        int r = fuse_lowlevel_notify_inval_inode(m->se, ino, -1, 0);
        if (r != 0 && r != -ENOENT)
            TS_WARN("open %llu: invalidating the kernel's attributes: %s",
                    (unsigned long long)ino, strerror(-r));
    }
    if (fuse_reply_open(req, fi) != 0) {
        ts_error ignored;
        mnt_io_release(&m->io, (mnt_handle *)(uintptr_t)fi->fh, &ignored);
    }
}

typedef struct read_reply {
    fuse_req_t req;
} read_reply;

static void reply_data(void *ctx, const void *data, size_t n)
{
    read_reply *r = ctx;

    fuse_reply_buf(r->req, data, n);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    mnt_handle *h = (mnt_handle *)(uintptr_t)fi->fh;
    read_reply r = {.req = req};
    ts_error e;
    int rc;

    (void)ino;
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    rc = mnt_io_read(h, (uint64_t)off, size, reply_data, &r, &e);
    if (rc != 0)
        mnt_reply_err(req, "read", rc, &e);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    mnt_handle *h = (mnt_handle *)(uintptr_t)fi->fh;
    ts_error e;
    int rc;

    (void)ino;
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    rc = mnt_io_write(h, (uint64_t)off, buf, size, &e);
    if (rc != 0) {
        mnt_reply_err(req, "write", rc, &e);
        return;
    }
    fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_handle *h = (mnt_handle *)(uintptr_t)fi->fh;
    ts_error e;
    int rc = mnt_io_flush(h, &e);

    (void)ino;
    if (rc != 0) {
        mnt_reply_err(req, "flush", rc, &e);
        return;
    }
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    mnt_handle *h = (mnt_handle *)(uintptr_t)fi->fh;
    ts_error e;
    int rc = mnt_io_flush(h, &e);

    (void)ino;
    (void)datasync;
    if (rc != 0) {
        mnt_reply_err(req, "fsync", rc, &e);
        return;
    }
    fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_ctx *m = mnt_of(req);
    ts_error e;
    int rc = mnt_io_release(&m->io, (mnt_handle *)(uintptr_t)fi->fh, &e);

    /* Nobody sees release's answer (close() has returned): log it. */
    if (rc != 0)
        TS_ERROR("release of inode %llu: last writes lost: %s", (unsigned long long)ino, e.msg);
    fuse_reply_err(req, 0);
}

void mnt_ops_fill_file(struct fuse_lowlevel_ops *ops)
{
    ops->create = op_create;
    ops->open = op_open;
    ops->read = op_read;
    ops->write = op_write;
    ops->flush = op_flush;
    ops->fsync = op_fsync;
    ops->release = op_release;
}
