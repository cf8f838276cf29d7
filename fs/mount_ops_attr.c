/*
 * tessera-mount: the operations on attributes (getattr, setattr), the
 * inode table's FORGET, statfs, extended attributes, and the helpers every
 * ops file shares (errno conversion, stat conversion, entry replies).
 */
#include "fs/mount_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include "common/log.h"
#include "common/util.h"

/* Kernel requests larger than this are clamped (libfuse's own limit). */
#define STATFS_CACHE_MS 2000
#define XATTR_CAPS "security.capability"

/* ---------------------------------------------------------------- helpers */

void mnt_reply_err(fuse_req_t req, const char *op, int code, const ts_error *e)
{
    int errnum = ts_err_to_errno(code);

    if (errnum == EIO)
        TS_ERROR("%s: EIO: %s", op, e && e->msg[0] ? e->msg : ts_err_name(code));
    else if (code != TS_ENOENT && code != TS_ENODATA)
        TS_DEBUG("%s: %s: %s", op, ts_err_name(code), e ? e->msg : "");
    fuse_reply_err(req, errnum);
}

void mnt_attr_to_stat(const ts_attr *a, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_size = (off_t)a->size;
    st->st_blksize = 1 << 20;
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    st->st_atim.tv_sec = a->atime_ns / 1000000000;
    st->st_atim.tv_nsec = a->atime_ns % 1000000000;
    st->st_mtim.tv_sec = a->mtime_ns / 1000000000;
    st->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
    st->st_ctim.tv_sec = a->ctime_ns / 1000000000;
    st->st_ctim.tv_nsec = a->ctime_ns % 1000000000;
}

void mnt_fill_entry(mnt_ctx *m, const ts_attr *a, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = a->ino;
    e->generation = 0;          /* inode numbers are never reused */
    e->attr_timeout = m->o.attr_timeout;
    e->entry_timeout = m->o.entry_timeout;
    mnt_attr_to_stat(a, &e->attr);
}

void mnt_reply_entry(fuse_req_t req, const ts_attr *a)
{
    mnt_ctx *m = mnt_of(req);
    struct fuse_entry_param e;
    ts_attr shown = *a;

    mnt_io_overlay(&m->io, a->ino, &shown);
    mnt_fill_entry(m, &shown, &e);
    mnt_inode_ref(&m->itable, a);
    /* A failed reply (the request was interrupted) gives the kernel nothing
     * to forget later: undo the lookup. */
    if (fuse_reply_entry(req, &e) != 0)
        mnt_inode_forget(&m->itable, a->ino, 1);
}

void mnt_new_owner(fuse_req_t req, fuse_ino_t parent, int is_dir, uint32_t *mode, uint32_t *uid,
                   uint32_t *gid)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    ts_attr p;

    *uid = ctx->uid;
    *gid = ctx->gid;
    if (mnt_inode_cached_attr(&mnt_of(req)->itable, parent, &p) == 0 && (p.mode & S_ISGID)) {
        *gid = p.gid;
        if (is_dir)
            *mode |= S_ISGID;
    }
}

/* ---------------------------------------------------------- lifecycle */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    mnt_ctx *m = userdata;

    /* 1 MiB requests where the kernel allows (libfuse derives max_pages
     * from max_write). */
    conn->max_write = 1u << 20;
    if (conn->max_readahead > (1u << 20) || conn->max_readahead == 0)
        conn->max_readahead = 1u << 20;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
        conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
    if (conn->capable & FUSE_CAP_ASYNC_READ)
        conn->want |= FUSE_CAP_ASYNC_READ;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    /* The kernel's write-back cache would own sizes, O_APPEND and mtime;
     * the write-back buffer here keeps those exact instead.  No posix
     * locks: the kernel keeps them locally. */
    conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_POSIX_LOCKS |
                              FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_ATOMIC_O_TRUNC);
    TS_INFO("mounted: max_write %u, max_readahead %u, readdirplus %s", conn->max_write,
            conn->max_readahead, (conn->want & FUSE_CAP_READDIRPLUS) ? "yes" : "no");
    /* Here, not before: the daemon has forked by now. */
    mnt_io_start(&m->io);
}

static void op_destroy(void *userdata)
{
    mnt_ctx *m = userdata;
    mnt_io_stop(&m->io);
    int failed = mnt_io_flush_all(&m->io);

    TS_INFO("unmounting: %llu inodes in the table, %d files with lost writes",
            (unsigned long long)mnt_itable_count(&m->itable), failed);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    mnt_inode_forget(&mnt_of(req)->itable, ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    mnt_ctx *m = mnt_of(req);

    for (size_t i = 0; i < count; i++)
        mnt_inode_forget(&m->itable, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

/* ---------------------------------------------------------- attributes */

/* Attributes of ino from the server, with this mount's open state over
 * them; an open inode the server no longer knows answers from memory. */
static int fresh_attr(mnt_ctx *m, uint64_t ino, ts_attr *a, ts_error *e)
{
    int rc = tess_getattr(m->c, ino, a, e);

    if (rc == TS_ENOENT && mnt_io_orphan_attr(&m->io, ino, a) == 0)
        return 0;
    if (rc != 0)
        return rc;
    mnt_io_overlay(&m->io, ino, a);
    mnt_inode_note_attr(&m->itable, a, 1);
    return 0;
}

void mnt_dir_changed(void *arg, const ts_attr *dir)
{
    mnt_ctx *m = arg;

    mnt_inode_note_fresh(&m->itable, dir, ts_mono_ms() + (int64_t)(m->o.attr_timeout * 1000));
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_ctx *m = mnt_of(req);
    struct stat st;
    ts_attr a;
    ts_error e;
    int rc = 0;

    if (mnt_io_ahead_attr(&m->io, ino, &a)) {
        /* Created ahead of the server: this mount is the only one to ask. */
        mnt_inode_note_attr(&m->itable, &a, 1);
    } else if (mnt_inode_fresh_attr(&m->itable, ino, &a) == 0) {
        /* Known from our own change just now (a directory after a create
         * in it): what the server would answer. */
        mnt_io_overlay(&m->io, ino, &a);
        mnt_inode_note_attr(&m->itable, &a, 1);
    } else {
        rc = fresh_attr(m, ino, &a, &e);
    }

    (void)fi;
    if (rc != 0) {
        mnt_reply_err(req, "getattr", rc, &e);
        return;
    }
    mnt_attr_to_stat(&a, &st);
    fuse_reply_attr(req, &st, m->o.attr_timeout);
}

static int64_t ts_of(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    mnt_ctx *m = mnt_of(req);
    tess_setattr_req r = {0};
    struct stat st;
    ts_attr a;
    ts_error e;
    int64_t now = ts_now_ns();
    int rc;

    (void)fi;
    if (to_set & FUSE_SET_ATTR_MODE) {
        r.mask |= TESS_SET_MODE;
        r.mode = attr->st_mode & 07777;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        r.mask |= TESS_SET_UID;
        r.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        r.mask |= TESS_SET_GID;
        r.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (attr->st_size < 0) {
            fuse_reply_err(req, EINVAL);
            return;
        }
        r.mask |= TESS_SET_SIZE;
        r.size = (uint64_t)attr->st_size;
    }
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
        r.mask |= TESS_SET_ATIME;
        r.atime_ns = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? now : ts_of(&attr->st_atim);
    }
    if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
        r.mask |= TESS_SET_MTIME;
        r.mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now : ts_of(&attr->st_mtim);
    }
    if (r.mask == 0) {
        /* Only ctime (or nothing we keep): answer the current attributes. */
        rc = fresh_attr(m, ino, &a, &e);
    } else {
        rc = mnt_io_setattr(&m->io, ino, &r, &a, &e);
        mnt_inode_stale_all(&m->itable);
        if (rc == 0) {
            mnt_io_overlay(&m->io, ino, &a);
            mnt_inode_note_attr(&m->itable, &a, 1);
        }
    }
    if (rc != 0) {
        mnt_reply_err(req, "setattr", rc, &e);
        return;
    }
    mnt_attr_to_stat(&a, &st);
    fuse_reply_attr(req, &st, m->o.attr_timeout);
}

/* -------------------------------------------------------------- statfs */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    mnt_ctx *m = mnt_of(req);
    struct statvfs sv;
    int64_t now = ts_mono_ms();

    (void)ino;
    pthread_mutex_lock(&m->statfs_mu);
    if (m->statfs_at_ms == 0 || now - m->statfs_at_ms > STATFS_CACHE_MS) {
        tess_cluster_status st;
        ts_error e;
        int rc = tess_cluster_status_get(m->c, &st, &e);
        if (rc != 0) {
            pthread_mutex_unlock(&m->statfs_mu);
            mnt_reply_err(req, "statfs", rc, &e);
            return;
        }
        /* Capacity as files see it: every byte is stored `replicas` times. */
        uint64_t cap = 0, used = 0, r = tess_client_replicas(m->c);
        for (size_t i = 0; i < st.servers.n; i++) {
            if (st.servers.v[i].state != TESS_SERVER_UP)
                continue;
            cap += st.servers.v[i].capacity;
            used += st.servers.v[i].used;
        }
        const uint64_t bsize = 4096;
        memset(&m->statfs_cache, 0, sizeof(m->statfs_cache));
        m->statfs_cache.f_bsize = bsize;
        m->statfs_cache.f_frsize = bsize;
        m->statfs_cache.f_blocks = cap / r / bsize;
        m->statfs_cache.f_bfree = (cap > used ? cap - used : 0) / r / bsize;
        m->statfs_cache.f_bavail = m->statfs_cache.f_bfree;
        m->statfs_cache.f_files = st.files + st.directories + (1u << 30);
        m->statfs_cache.f_ffree = 1u << 30;
        m->statfs_cache.f_favail = 1u << 30;
        m->statfs_cache.f_namemax = TS_NAME_MAX;
        m->statfs_at_ms = now;
        tess_cluster_status_free(&st);
    }
    sv = m->statfs_cache;
    pthread_mutex_unlock(&m->statfs_mu);
    fuse_reply_statfs(req, &sv);
}

/* -------------------------------------------------------------- xattrs */

/* The kernel asks for security.capability before every write() to decide
 * whether to drop privileges: one metadata request per write otherwise.
 * Its absence is remembered until this mount sets an xattr on the inode
 * or opens it again (close-to-open for xattrs too). */
static int caps_known_absent(mnt_ctx *m, uint64_t ino)
{
    int absent = 0;

    pthread_mutex_lock(&m->itable.mu);
    mnt_inode *in = NULL;
    HASH_FIND(hh, m->itable.map, &ino, sizeof(ino), in);
    if (in)
        absent = in->nocaps_until_ms > ts_mono_ms();
    pthread_mutex_unlock(&m->itable.mu);
    return absent;
}

static void caps_note(mnt_ctx *m, uint64_t ino, int absent)
{
    pthread_mutex_lock(&m->itable.mu);
    mnt_inode *in = NULL;
    HASH_FIND(hh, m->itable.map, &ino, sizeof(ino), in);
    if (in)
        in->nocaps_until_ms = absent ? INT64_MAX : 0;
    pthread_mutex_unlock(&m->itable.mu);
}

/* The "system." namespace belongs to the kernel (POSIX ACLs and the
 * like), which this filesystem does not implement: answering ENOTSUP makes
 * cp -a and friends fall back to chmod instead of storing an ACL blob that
 * would never be enforced. */
static int reserved_name(const char *name)
{
    return strncmp(name, "system.", 7) == 0;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    mnt_ctx *m = mnt_of(req);
    int is_caps = strcmp(name, XATTR_CAPS) == 0;
    void *value = NULL;
    size_t len = 0;
    ts_error e;
    int rc;

    if (reserved_name(name)) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    if (is_caps && caps_known_absent(m, ino)) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    rc = mnt_io_settle(&m->io, ino, &e);
    if (rc == 0)
        rc = tess_getxattr(m->c, ino, name, &value, &len, &e);
    if (is_caps && (rc == 0 || rc == TS_ENODATA))
        caps_note(m, ino, rc == TS_ENODATA);
    if (rc != 0) {
        mnt_reply_err(req, "getxattr", rc, &e);
        return;
    }
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, value, len);
    free(value);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    mnt_ctx *m = mnt_of(req);
    char *names = NULL;
    size_t len = 0;
    ts_error e;
    int rc = mnt_io_settle(&m->io, ino, &e);

    if (rc == 0)
        rc = tess_listxattr(m->c, ino, &names, &len, &e);

    if (rc != 0) {
        mnt_reply_err(req, "listxattr", rc, &e);
        return;
    }
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, names, len);
    free(names);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    mnt_ctx *m = mnt_of(req);
    unsigned f = 0;
    ts_error e;
    int rc;

    if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (reserved_name(name)) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    if (flags & XATTR_CREATE)
        f |= TESS_XATTR_CREATE;
    if (flags & XATTR_REPLACE)
        f |= TESS_XATTR_REPLACE;
    caps_note(m, ino, 0);
    rc = mnt_io_settle(&m->io, ino, &e);
    if (rc == 0)
        rc = tess_setxattr(m->c, ino, name, value, size, f, &e);
    mnt_inode_stale_all(&m->itable);
    if (rc != 0) {
        mnt_reply_err(req, "setxattr", rc, &e);
        return;
    }
    fuse_reply_err(req, 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    mnt_ctx *m = mnt_of(req);
    ts_error e;
    int rc;

    if (reserved_name(name)) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    caps_note(m, ino, 0);
    rc = mnt_io_settle(&m->io, ino, &e);
    if (rc == 0)
        rc = tess_removexattr(m->c, ino, name, &e);
    mnt_inode_stale_all(&m->itable);
    if (rc != 0) {
        mnt_reply_err(req, "removexattr", rc, &e);
        return;
    }
    fuse_reply_err(req, 0);
}

void mnt_ops_fill(struct fuse_lowlevel_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->init = op_init;
    ops->destroy = op_destroy;
    ops->forget = op_forget;
    ops->forget_multi = op_forget_multi;
    ops->getattr = op_getattr;
    ops->setattr = op_setattr;
    ops->statfs = op_statfs;
    ops->getxattr = op_getxattr;
    ops->listxattr = op_listxattr;
    ops->setxattr = op_setxattr;
    ops->removexattr = op_removexattr;
    mnt_ops_fill_dir(ops);
    mnt_ops_fill_file(ops);
}
