/*
 * tessera-mount: the namespace operations.  Each is one metadata request
 * (inode-level, PROTOCOL.md /v1/ns/...); names are checked by the server
 * (ENAMETOOLONG past 255 bytes).  Directory listings are read whole at
 * opendir into the handle, so readdir offsets are stable indexes, seekdir
 * works, and readdirplus hands the kernel each entry's attributes (a
 * following `ls -l` or `stat` costs no further request while the entry
 * timeout runs).
 */
#include "fs/mount_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"

/* ------------------------------------------------------------- lookups */

/* Makes parent/name on the server if it is a create ahead of this mount
 * (mount_io.h), before an operation the server must see it for. */
static int settle_name(mnt_ctx *m, uint64_t parent, const char *name, ts_error *e)
{
    ts_attr a;
    if (mnt_io_ahead_lookup(&m->io, parent, name, &a) != 0)
        return 0;
    return mnt_io_settle(&m->io, a.ino, e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    mnt_ctx *m = mnt_of(req);
    ts_attr a;
    ts_error e;
    int rc = mnt_io_ahead_lookup(&m->io, parent, name, &a);

    if (rc != 0)
        rc = tess_lookup(m->c, parent, name, &a, &e);

    if (rc != 0) {
        /* Negative entries are not cached: a name another client creates
         * shows up at the next lookup. */
        mnt_reply_err(req, "lookup", rc, &e);
        return;
    }
    mnt_reply_entry(req, &a);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    mnt_ctx *m = mnt_of(req);
    char *target = NULL;
    ts_error e;
    int rc = tess_readlink(m->c, ino, &target, &e);

    if (rc != 0) {
        mnt_reply_err(req, "readlink", rc, &e);
        return;
    }
    fuse_reply_readlink(req, target);
    free(target);
}

/* ------------------------------------------------------------ creation */

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    mnt_ctx *m = mnt_of(req);
    uint32_t md = mode & 07777, uid, gid;
    ts_attr a;
    ts_error e;
    int rc;

    mnt_new_owner(req, parent, 1, &md, &uid, &gid);
    rc = tess_mkdir(m->c, parent, name, md, uid, gid, &a, &e);
    if (rc != 0) {
        mnt_reply_err(req, "mkdir", rc, &e);
        return;
    }
    mnt_reply_entry(req, &a);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev)
{
    mnt_ctx *m = mnt_of(req);
    uint32_t md = mode & 07777, uid, gid;
    ts_attr a;
    ts_error e;
    int created = 0, rc;

    (void)rdev;
    if (!S_ISREG(mode)) {
        /* Devices, FIFOs and sockets have no meaning in a cluster. */
        fuse_reply_err(req, EPERM);
        return;
    }
    mnt_new_owner(req, parent, 0, &md, &uid, &gid);
    rc = tess_create(m->c, parent, name, md, uid, gid, TESS_CREATE_EXCL, &a, &created, &e);
    if (rc != 0) {
        mnt_reply_err(req, "mknod", rc, &e);
        return;
    }
    mnt_reply_entry(req, &a);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    mnt_ctx *m = mnt_of(req);
    uint32_t md = 0, uid, gid;
    ts_attr a;
    ts_error e;
    int rc;

    mnt_new_owner(req, parent, 0, &md, &uid, &gid);
    rc = tess_symlink(m->c, parent, name, link, uid, gid, &a, &e);
    if (rc != 0) {
        mnt_reply_err(req, "symlink", rc, &e);
        return;
    }
    mnt_reply_entry(req, &a);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    mnt_ctx *m = mnt_of(req);
    ts_attr a;
    ts_error e;
    int rc = mnt_io_settle(&m->io, ino, &e);

    if (rc == 0)
        rc = tess_link(m->c, ino, newparent, newname, &a, &e);

    if (rc != 0) {
        mnt_reply_err(req, "link", rc, &e);
        return;
    }
    mnt_reply_entry(req, &a);
}

/* ------------------------------------------------------------- removal */

/* The sticky-directory rule (the kernel leaves it to FUSE filesystems for
 * rename targets and unlink alike): in a sticky directory only the owner of
 * the entry, the owner of the directory or root may remove or rename it.
 * 0 or TS_EPERM. */
static int sticky_check(fuse_req_t req, fuse_ino_t parent, const char *name, ts_error *e)
{
    mnt_ctx *m = mnt_of(req);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    ts_attr dir, child;
    int rc;

    if (ctx->uid == 0)
        return 0;
    if (mnt_inode_cached_attr(&m->itable, parent, &dir) != 0 &&
        (rc = tess_getattr(m->c, parent, &dir, e)) != 0)
        return rc;
    if (!(dir.mode & S_ISVTX) || dir.uid == ctx->uid)
        return 0;
    if ((rc = tess_lookup(m->c, parent, name, &child, e)) != 0)
        return rc == TS_ENOENT ? 0 : rc;    /* the operation reports ENOENT itself */
    if (child.uid == ctx->uid)
        return 0;
    return ts_fail(e, TS_EPERM, "'%s' in sticky directory %llu belongs to uid %u, not %u", name,
                   (unsigned long long)parent, child.uid, ctx->uid);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    mnt_ctx *m = mnt_of(req);
    ts_error e;
    int rc = settle_name(m, parent, name, &e);

    if (rc == 0)
        rc = sticky_check(req, parent, name, &e);
    if (rc == 0)
        rc = tess_unlink(m->c, parent, name, &e);
    if (rc != 0) {
        mnt_reply_err(req, "unlink", rc, &e);
        return;
    }
    fuse_reply_err(req, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    mnt_ctx *m = mnt_of(req);
    ts_error e;
    ts_attr child;
    int rc = 0;

    /* Files created ahead in it would make it non-empty on the server. */
    if (mnt_io_ahead_count(&m->io) > 0 && tess_lookup(m->c, parent, name, &child, &e) == 0)
        rc = mnt_io_settle_dir(&m->io, child.ino, &e);
    if (rc == 0)
        rc = sticky_check(req, parent, name, &e);
    if (rc == 0)
        rc = tess_rmdir(m->c, parent, name, &e);
    if (rc != 0) {
        mnt_reply_err(req, "rmdir", rc, &e);
        return;
    }
    fuse_reply_err(req, 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    mnt_ctx *m = mnt_of(req);
    unsigned f = 0;
    ts_error e;
    int rc;

    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        /* RENAME_WHITEOUT is for overlay filesystems. */
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (flags & RENAME_NOREPLACE)
        f |= TESS_RENAME_NOREPLACE;
    if (flags & RENAME_EXCHANGE)
        f |= TESS_RENAME_EXCHANGE;
    rc = settle_name(m, parent, name, &e);
    if (rc == 0)
        rc = settle_name(m, newparent, newname, &e);
    if (rc == 0)
        rc = sticky_check(req, parent, name, &e);
    if (rc == 0)
        rc = sticky_check(req, newparent, newname, &e);
    if (rc == 0) {
        rc = tess_rename(m->c, parent, name, newparent, newname, f, &e);
        mnt_inode_stale_all(&m->itable);    /* also when failed: it may have been applied */
    }
    if (rc != 0) {
        mnt_reply_err(req, "rename", rc, &e);
        return;
    }
    fuse_reply_err(req, 0);
}

/* ------------------------------------------------------------ listings */

typedef struct dir_handle {
    mnt_inode *in;              /* pinned */
    tess_dirent *ents;
    size_t n, cap;
    int loaded;
    pthread_mutex_t mu;
} dir_handle;

static int collect(void *ctx, const tess_dirent *ent)
{
    dir_handle *d = ctx;

    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->ents = ts_realloc(d->ents, d->cap * sizeof(*d->ents));
    }
    d->ents[d->n].name = ts_strdup(ent->name);
    d->ents[d->n].attr = ent->attr;
    d->n++;
    return 0;
}

static void dir_clear(dir_handle *d)
{
    tess_dirents_free(d->ents, d->n);
    d->ents = NULL;
    d->n = d->cap = 0;
    d->loaded = 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_ctx *m = mnt_of(req);
    dir_handle *d;
    ts_attr a;
    ts_error e;
    int rc = tess_getattr(m->c, ino, &a, &e);

    if (rc == 0 && !S_ISDIR(a.mode))
        rc = ts_fail(&e, TS_ENOTDIR, "opendir %llu: not a directory", (unsigned long long)ino);
    if (rc != 0) {
        mnt_reply_err(req, "opendir", rc, &e);
        return;
    }
    d = ts_calloc(1, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->in = mnt_inode_pin(&m->itable, &a);
    fi->fh = (uint64_t)(uintptr_t)d;
    fi->cache_readdir = 0;
    if (fuse_reply_open(req, fi) != 0) {
        mnt_inode_unpin(&m->itable, d->in);
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, int plus)
{
    mnt_ctx *m = mnt_of(req);
    dir_handle *d = (dir_handle *)(uintptr_t)fi->fh;
    char *buf, *p;
    size_t rem = size;
    ts_error e;
    int rc = 0;

    pthread_mutex_lock(&d->mu);
    /* Offset 0 is a fresh listing (opendir or rewinddir). */
    if (off == 0 || !d->loaded) {
        dir_clear(d);
        rc = mnt_io_settle_dir(&m->io, ino, &e);
        if (rc == 0)
            rc = tess_readdir(m->c, ino, collect, d, &e);
        if (rc != 0) {
            dir_clear(d);
            pthread_mutex_unlock(&d->mu);
            mnt_reply_err(req, plus ? "readdirplus" : "readdir", rc, &e);
            return;
        }
        d->loaded = 1;
    }
    buf = ts_malloc(size);
    p = buf;
    /* Offsets: 1 after ".", 2 after "..", 3 + i after entry i. */
    for (size_t k = (size_t)off; k < d->n + 2; k++) {
        const char *name;
        struct fuse_entry_param ent;
        struct stat st;
        size_t used;
        ts_attr a;
        int real = k >= 2;

        memset(&st, 0, sizeof(st));
        if (k == 0) {
            name = ".";
            st.st_ino = ino;
            st.st_mode = S_IFDIR;
        } else if (k == 1) {
            name = "..";
            /* Readers skip entries numbered 0; the kernel resolves ".."
             * itself, so the number shown needs no extra request. */
            st.st_ino = ino;
            st.st_mode = S_IFDIR;
        } else {
            name = d->ents[k - 2].name;
            a = d->ents[k - 2].attr;
            mnt_io_overlay(&m->io, a.ino, &a);
            mnt_attr_to_stat(&a, &st);
        }
        if (plus) {
            if (real) {
                mnt_fill_entry(m, &a, &ent);
            } else {
                /* ino 0: no entry for the kernel, hence no lookup counted. */
                memset(&ent, 0, sizeof(ent));
                ent.attr = st;
            }
            used = fuse_add_direntry_plus(req, p, rem, name, &ent, (off_t)k + 1);
        } else {
            used = fuse_add_direntry(req, p, rem, name, &st, (off_t)k + 1);
        }
        if (used > rem)
            break;
        if (plus && real)
            mnt_inode_ref(&m->itable, &d->ents[k - 2].attr);
        p += used;
        rem -= used;
    }
    pthread_mutex_unlock(&d->mu);
    fuse_reply_buf(req, buf, size - rem);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_ctx *m = mnt_of(req);
    dir_handle *d = (dir_handle *)(uintptr_t)fi->fh;

    (void)ino;
    dir_clear(d);
    mnt_inode_unpin(&m->itable, d->in);
    pthread_mutex_destroy(&d->mu);
    free(d);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    /* Every namespace change is durable when its request returns. */
    (void)ino;
    (void)datasync;
    (void)fi;
    fuse_reply_err(req, 0);
}

void mnt_ops_fill_dir(struct fuse_lowlevel_ops *ops)
{
    ops->lookup = op_lookup;
    ops->readlink = op_readlink;
    ops->mkdir = op_mkdir;
    ops->mknod = op_mknod;
    ops->symlink = op_symlink;
    ops->link = op_link;
    ops->unlink = op_unlink;
    ops->rmdir = op_rmdir;
    ops->rename = op_rename;
    ops->opendir = op_opendir;
    ops->readdir = op_readdir;
    ops->readdirplus = op_readdirplus;
    ops->releasedir = op_releasedir;
    ops->fsyncdir = op_fsyncdir;
}
