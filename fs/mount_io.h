/*
 * File data of tessera-mount: the open-file state behind read, write,
 * flush, fsync, release and truncate.
 *
 * One mnt_file per inode open in this mount, shared by all its handles, so a
 * read through one descriptor sees a write made through another at once
 * (single-client POSIX), and one mnt_handle per open() (fi->fh) holding that
 * descriptor's flags and read-ahead window.
 *
 * Writes (DESIGN.md "Write path"): a write at the offset where the previous
 * one ended streams into a tess_writer -- the write-back buffer, which
 * uploads full chunks to their replica chains in the background.  A write
 * anywhere else (an overwrite in the middle, a write past the end leaving a
 * hole) first commits what the writer holds and starts a new writer at that
 * offset: its data becomes new chunks spliced over the old range by one
 * /v1/file/commit (copy-on-write; the metadata server drops the references
 * of the chunks no longer used).  O_APPEND writes go to the end of the file
 * as this mount knows it.  flush (every close), fsync and release commit:
 * close-to-open consistency.
 *
 * Reads serve committed data from the layout fetched at open (or after this
 * mount's own commits): a read of an inode with uncommitted writes commits
 * them first, so a process always reads what it wrote.  Sequential reads
 * grow a per-handle read-ahead window (256 KiB doubling up to readahead_max)
 * fetched in parallel pieces; the kernel's requests are answered from it
 * without copying again or allocating.
 *
 * A file removed from the namespace while open here (unlink, or a rename
 * over it) stays readable through its handles from the layout already held;
 * data written to it after that is discarded at commit, as it can never be
 * opened again.
 *
 * Creates ahead of the server: a file created with O_TRUNC (and not
 * O_EXCL) -- shell redirections, most programs writing output -- is
 * answered at once with a reserved inode number (tess_reserve_inodes) and
 * made on the server when it is first flushed, closed or fsynced, in ONE
 * request carrying its data (tess_writer_set_create): a small file costs a
 * single metadata commit.  Until then this mount answers for it (lookup,
 * getattr, reads through its handles), and every operation the server must
 * see it for first settles it: any change or listing of its directory
 * (mnt_io_settle_dir), any operation on the inode itself other than
 * getattr and I/O (mnt_io_settle), and a background thread after
 * CREATE_AHEAD_MAX_MS, so a file held open a long time still shows up on
 * other mounts.  Settling makes the file exist, empty; buffered data stays
 * with its writer, whose own commit reports its errors to the program.  A name another client created meanwhile is replaced, as
 * O_TRUNC would have emptied it.  O_EXCL creates go to the server at once:
 * their exclusivity is the server's to decide.
 *
 * Locking: a rwlock per mnt_file (writes, commits and layout changes are
 * exclusive; reads share it); a mutex per handle for its window.  The
 * mnt_inode's `file` pointer is set and cleared under the inode table lock.
 * The table of creates ahead has its own mutex, taken inside a file's
 * rwlock, never around it.
 */
#ifndef TESS_MOUNT_IO_H
#define TESS_MOUNT_IO_H

#include <stddef.h>
#include <stdint.h>
#include "fs/mount_inode.h"
#include "fs/tessera.h"

struct mnt_ahead;

typedef struct mnt_io {
    tess_client *c;
    mnt_itable *t;
    size_t readahead_max;       /* largest read-ahead window (bytes) */
    int create_ahead;           /* creates ahead of the server (see above) */
    struct mnt_ahead *ahead;    /* their state (mount_io.c) */
} mnt_io;

/* A file created ahead of the server is settled at the latest this long
 * after its create. */
#define CREATE_AHEAD_MAX_MS 1000

/* Sets up io (c, t, readahead_max, create_ahead filled in by the caller)
 * / frees its state.  mnt_io_start starts the background thread that
 * settles old creates (after daemonizing: a fork keeps no threads);
 * mnt_io_stop ends it. */
void mnt_io_init(mnt_io *io);
void mnt_io_destroy(mnt_io *io);
void mnt_io_start(mnt_io *io);
void mnt_io_stop(mnt_io *io);



typedef struct mnt_file mnt_file;
typedef struct mnt_handle mnt_handle;

/* Creates regular file `name` in parent ahead of the server and opens it
 * with the open(2) flags: *attr gets its attributes (a reserved inode
 * number, the caller's owner and mode, size 0), *out is fi->fh.  Fails
 * only when no inode number can be reserved. */
int mnt_io_create_ahead(mnt_io *io, uint64_t parent, const char *name, uint32_t mode,
                        uint32_t uid, uint32_t gid, int flags, mnt_handle **out, ts_attr *attr,
                        ts_error *err);
/* Makes every create ahead in directory parent real on the server. */
int mnt_io_settle_dir(mnt_io *io, uint64_t parent, ts_error *err);
/* The same for inode ino (nothing to do when it is not one). */
int mnt_io_settle(mnt_io *io, uint64_t ino, ts_error *err);
/* Creates ahead not on the server yet. */
size_t mnt_io_ahead_count(mnt_io *io);
/* A create ahead named `name` in parent: 0 with its attributes, or
 * TS_ENOENT. */
int mnt_io_ahead_lookup(mnt_io *io, uint64_t parent, const char *name, ts_attr *a);
/* 1 with its attributes (uncommitted writes included) when ino is a
 * create ahead not on the server yet; 0 otherwise. */
int mnt_io_ahead_attr(mnt_io *io, uint64_t ino, ts_attr *a);

/* Opens inode a->ino (its entry pinned by this call) with the open(2)
 * flags.  known: a is fresh from a create just now (no layout fetch).
 * Otherwise the layout is fetched unless uncommitted writes of this mount
 * make ours newer (close-to-open); a write-only open fetches just the
 * attributes, and the layout waits for the first read that needs it.  *attr gets the attributes to use;
 * *changed is set when they differ from what the kernel was last given
 * (its cached attributes and pages are stale).  *out is fi->fh. */
int mnt_io_open(mnt_io *io, const ts_attr *a, int flags, int known, mnt_handle **out,
                ts_attr *attr, int *changed, ts_error *err);

/* Writes len bytes at off (the end of file for O_APPEND handles).  Errors
 * of background uploads surface here or at the next flush. */
int mnt_io_write(mnt_handle *h, uint64_t off, const void *buf, size_t len, ts_error *err);

/* Reads up to len bytes at off and calls reply(ctx, data, n) exactly once
 * on success (n short only at end of file), with data valid during the call. */
typedef void (*mnt_reply_fn)(void *ctx, const void *data, size_t n);
int mnt_io_read(mnt_handle *h, uint64_t off, size_t len, mnt_reply_fn reply, void *ctx,
                ts_error *err);

/* Commits every uncommitted write of the inode (flush, fsync). */
int mnt_io_flush(mnt_handle *h, ts_error *err);

/* Ends a handle: commits what is left (its error is returned, the handle is
 * freed anyway) and unpins the inode. */
int mnt_io_release(mnt_io *io, mnt_handle *h, ts_error *err);

/* setattr of inode ino: when it is open here, uncommitted writes are
 * committed first and the open state follows the new size; then the server
 * call.  *out gets the new attributes. */
int mnt_io_setattr(mnt_io *io, uint64_t ino, const tess_setattr_req *req, ts_attr *out,
                   ts_error *err);

/* Overlays what this mount knows better than the server onto a (size and
 * mtime of uncommitted writes).  Returns 1 when ino is open here. */
int mnt_io_overlay(mnt_io *io, uint64_t ino, ts_attr *a);

/* The last attributes of an open inode the server no longer knows (removed
 * while open): 0 with *a (nlink 0), or TS_ENOENT. */
int mnt_io_orphan_attr(mnt_io *io, uint64_t ino, ts_attr *a);

/* Commits every open file's writes (at unmount); returns how many failed. */
int mnt_io_flush_all(mnt_io *io);

#endif
