/*
 * The FUSE low-level operations of tessera-mount and the context they share.
 *
 * mount_ops_attr.c  init/destroy, forget, getattr, setattr, statfs, xattrs
 * mount_ops_dir.c   lookup, mkdir, mknod, symlink, readlink, link, unlink,
 *                   rmdir, rename, opendir/readdir(plus)/releasedir
 * mount_ops_file.c  create, open, read, write, flush, fsync, release
 *
 * Conventions of every operation (the libfuse contract, fuse_lowlevel.h):
 *  - exactly one reply per request; errors are converted from Tessera codes
 *    to errno here and nowhere else (mnt_reply_err), and an EIO always comes
 *    with a log line saying why;
 *  - every reply that gives the kernel an entry goes through
 *    mnt_reply_entry / mnt_reply_create, which count the lookup in the inode
 *    table (mount_inode.h);
 *  - new files and directories belong to the caller's uid and gid, or the
 *    parent's gid under a setgid directory (and a new directory inherits
 *    the setgid bit); the kernel checks permissions (default_permissions),
 *    this layer adds the sticky-directory rule for unlink, rmdir and rename.
 */
#ifndef TESS_MOUNT_OPS_H
#define TESS_MOUNT_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/statvfs.h>
#include "fs/mount_inode.h"
#include "fs/mount_io.h"
#include "fs/tessera.h"

typedef struct mnt_opts {
    double attr_timeout;        /* seconds the kernel may cache attributes */
    double entry_timeout;       /* seconds the kernel may cache names */
    size_t readahead_max;       /* bytes */
    unsigned max_threads;       /* FUSE worker threads */
    int create_ahead;           /* mount_io.h "Creates ahead of the server" */
} mnt_opts;

typedef struct mnt_ctx {
    tess_client *c;
    struct fuse_session *se;
    mnt_opts o;
    mnt_itable itable;
    mnt_io io;
    /* statfs answers are reused briefly: df, and tools that call statfs
     * before every copy, must not each cost a cluster status request. */
    pthread_mutex_t statfs_mu;
    struct statvfs statfs_cache;
    int64_t statfs_at_ms;
} mnt_ctx;

/* Fills the operation table. */
void mnt_ops_fill(struct fuse_lowlevel_ops *ops);
void mnt_ops_fill_dir(struct fuse_lowlevel_ops *ops);
void mnt_ops_fill_file(struct fuse_lowlevel_ops *ops);

/* ---- shared by the ops files ---- */

static inline mnt_ctx *mnt_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* Replies the errno of code; logs e's message (always for EIO). */
void mnt_reply_err(fuse_req_t req, const char *op, int code, const ts_error *e);
void mnt_attr_to_stat(const ts_attr *a, struct stat *st);
/* Replies an entry for a (counting the lookup). */
void mnt_reply_entry(fuse_req_t req, const ts_attr *a);
void mnt_fill_entry(mnt_ctx *m, const ts_attr *a, struct fuse_entry_param *e);

/* tess_client_on_dir_change listener (arg: the mnt_ctx): the directory's
 * new attributes answer the kernel's next getattr of it for attr_timeout. */
void mnt_dir_changed(void *arg, const ts_attr *dir);

/* Owner of a new inode under parent: the caller's uid and gid (the
 * parent's gid when it is setgid); *mode gains S_ISGID for a directory
 * there. */
void mnt_new_owner(fuse_req_t req, fuse_ino_t parent, int is_dir, uint32_t *mode, uint32_t *uid,
                   uint32_t *gid);

#endif
