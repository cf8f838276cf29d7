/*
 * The inode table of tessera-mount: what the kernel holds a reference to.
 *
 * FUSE node ids ARE Tessera inode numbers (the root is 1 = FUSE_ROOT_ID, and
 * the metadata server never reuses a number, so the generation is always
 * 0).  An entry exists while the kernel's lookup count for that inode is
 * positive or a file handle of this mount has it open:
 *
 *   every reply that hands the kernel an entry (lookup, create, mkdir,
 *   mknod, symlink, link, each readdirplus entry but "." and "..") calls
 *   mnt_inode_ref, which adds one lookup; FORGET / BATCH_FORGET subtract
 *   exactly what the kernel says; open/opendir pin the entry and
 *   release/releasedir unpin it.  The entry is freed when both counts reach
 *   zero.  The root is pinned forever (the kernel never forgets it).
 *
 * Invariants (checked by mnt_itable_check, used by the tests through the
 * forget path): nlookup and opens never go below zero -- a FORGET for more
 * lookups than were given is a bug and aborts with a message; an entry in
 * the table has nlookup > 0 or opens > 0.
 *
 * Each entry caches the attributes last seen from the metadata server and
 * the version the kernel was last given (so an open can tell whether the
 * kernel's cached size and pages may be stale), plus the open-file state of
 * mount_io.c while the inode is open.
 *
 * Thread-safety: one mutex guards the table.  A pointer returned by
 * mnt_inode_get stays valid while the caller's request keeps the kernel's
 * reference (the kernel does not forget an inode a request is using) or
 * while the caller holds an open pin.
 */
#ifndef TESS_MOUNT_INODE_H
#define TESS_MOUNT_INODE_H

#include <pthread.h>
#include <stdint.h>
#include <uthash.h>
#include "common/proto.h"

struct mnt_file;

typedef struct mnt_inode {
    uint64_t ino;
    uint64_t nlookup;           /* the kernel's lookup count */
    uint64_t opens;             /* open handles of this mount (files and dirs) */
    ts_attr attr;               /* last attributes seen (guarded by the table lock) */
    uint64_t kernel_version;    /* attr.version the kernel was last given */
    int64_t nocaps_until_ms;    /* "security.capability" known absent until then */
    int64_t fresh_until_ms;     /* attr came with this mount's own change: answers
                                 * getattr without the server until then */
    uint64_t fresh_epoch;       /* ... while it equals the table's */
    struct mnt_file *file;      /* open-file state (mount_io.c), NULL when not open */
    uint64_t file_handles;      /* open file handles sharing `file` */
    UT_hash_handle hh;
} mnt_inode;

typedef struct mnt_itable {
    pthread_mutex_t mu;
    mnt_inode *map;
    uint64_t count;
    uint64_t fresh_epoch;       /* bumped by mnt_inode_stale_all */
} mnt_itable;

/* An empty table holding the root (inode 1, pinned). */
void mnt_itable_init(mnt_itable *t);
/* Frees every entry (at unmount; open-file state must be gone). */
void mnt_itable_destroy(mnt_itable *t);

/* The kernel received an entry for a->ino: one more lookup; the cached
 * attributes become *a and the kernel's version a->version. */
void mnt_inode_ref(mnt_itable *t, const ts_attr *a);
/* FORGET: n fewer lookups; frees the entry when nothing holds it. */
void mnt_inode_forget(mnt_itable *t, uint64_t ino, uint64_t n);

/* The entry of ino, or NULL when the kernel holds no reference (a stale
 * node id: the caller answers ESTALE / ENOENT). */
mnt_inode *mnt_inode_get(mnt_itable *t, uint64_t ino);

/* Pins ino for an open handle (creating the entry if the kernel just got
 * it in the same request); unpin at release may free it.  Unpin returns 1
 * when this was the last open handle. */
mnt_inode *mnt_inode_pin(mnt_itable *t, const ts_attr *a);
int mnt_inode_unpin(mnt_itable *t, mnt_inode *in);

/* Attributes seen from the server: cached, and (kernel != 0) recorded as
 * what the kernel now has. */
void mnt_inode_note_attr(mnt_itable *t, const ts_attr *a, int kernel);
/* Copy of the cached attributes of ino; 0 or TS_ENOENT when not cached. */
int mnt_inode_cached_attr(mnt_itable *t, uint64_t ino, ts_attr *out);

/* The server's answer to a change this mount made reported the new
 * attributes of an inode (a directory whose entries it changed): cache
 * them, unless a newer version is cached already, as good enough to answer
 * a getattr until until_ms (ts_mono_ms clock).  The kernel drops its
 * cached attributes of a directory after every create or unlink in it; its
 * next permission check then costs no round trip. */
void mnt_inode_note_fresh(mnt_itable *t, const ts_attr *a, int64_t until_ms);
/* Copy of ino's attributes when they are still fresh (above): 0, or
 * TS_ENOENT (ask the server). */
int mnt_inode_fresh_attr(mnt_itable *t, uint64_t ino, ts_attr *out);
/* Something changed in a way whose result is not known here (a rename
 * moves an inode this mount cannot name; xattrs and setattr change ctime):
 * every getattr asks the server until the next fresh note. */
void mnt_inode_stale_all(mnt_itable *t);

/* Number of entries (for the log and the tests). */
uint64_t mnt_itable_count(mnt_itable *t);

/* Checks the invariants above; 0 or TS_ECORRUPT naming the entry. */
int mnt_itable_check(mnt_itable *t, ts_error *err);

#endif
