/*
 * Private structures of the namespace state machine, shared only by
 * namespace.c (tree operations), namespace_extents.c (file data and chunks),
 * namespace_check.c (invariants) and namespace_codec.c (serialization).
 * Nothing outside those files includes this header.
 */
#ifndef TS_META_NAMESPACE_INT_H
#define TS_META_NAMESPACE_INT_H

#include <sys/stat.h>
#include "metadata/namespace.h"
#include "metadata/ptab.h"
#include "common/log.h"

/* A directory entry: one allocation with the name inline.  The hash is kept
 * so table scans never rehash names.  13 bytes + name + NUL. */
struct ns_dentry {
    uint64_t ino;
    uint32_t hash;
    uint8_t len;
    char name[];
};

/* Extra state of a directory.  A directory has exactly one parent (no hard
 * links to directories), kept here for ".." and the subtree check of rename. */
struct ns_dir {
    uint64_t parent;
    ptab children;            /* of struct ns_dentry */
};

/* Extent list of a regular file: sorted by file_offset, non-overlapping,
 * every extent of positive length and inside the file size.  NULL for a file
 * without extents (an empty file costs nothing here). */
struct ns_extents {
    uint32_t n, cap;
    ts_extent e[];
};

/* One inode: 72 bytes, one allocation (plus the per-type data). */
struct ns_inode {
    uint64_t ino;
    uint64_t size;
    uint64_t version;
    int64_t atime, mtime, ctime;
    uint32_t mode, nlink, uid, gid;
    union {
        struct ns_dir *dir;         /* S_IFDIR, never NULL */
        struct ns_extents *ext;     /* S_IFREG, NULL when no extents */
        char *target;               /* S_IFLNK, never NULL */
    } u;
};

/* A chunk some extent points into.  refcount = number of extents (of all
 * files) referencing it; the entry is removed when it drops to 0.  An
 * inline chunk (data != NULL: `length` bytes, owned here) lives in the
 * namespace itself and on no chunkserver. */
struct ns_chunk {
    ts_chunk_id id;
    uint64_t length;
    uint32_t refcount;
    uint8_t sha256[TS_SHA256_LEN];
    uint8_t *data;
};

/* The extended attributes of one inode (namespace_xattr.c), sorted by
 * name; bytes = sum of name lengths and value lengths.  Present only while
 * the inode has at least one attribute. */
struct ns_xattr {
    char *name;
    uint8_t *value;
    uint32_t len;
};
struct ns_xattrs {
    uint64_t ino;
    uint32_t n, bytes;
    struct ns_xattr *v;
};

/* A range of inode numbers reserved by a client (namespace_reserve.c). */
struct ns_reserved {
    uint64_t first;           /* first .. first + NS_RESERVE_BATCH - 1 */
    uint64_t unused;          /* bit i: first + i not used yet */
};

struct ns_state {
    ptab inodes;              /* of struct ns_inode, keyed by ino */
    ptab xattrs;              /* of struct ns_xattrs, keyed by ino */
    ptab chunks;              /* of struct ns_chunk, keyed by id */
    uint64_t next_ino;        /* never reused */
    uint64_t nfiles, ndirs, nsymlinks, nextents;
    uint64_t garbage_chunks;
    uint64_t inline_chunks, inline_bytes;   /* chunks with data in the table */
    uint64_t inline_total_max;              /* 0 = NS_INLINE_TOTAL_MAX */
    uint64_t membership_epoch;
    struct ns_reserved *reserved;   /* sorted by first */
    size_t n_reserved, cap_reserved;
    ns_server *servers;       /* registration order */
    size_t n_servers;
    ns_rebalance rebalance;
};

/* Key of a directory entry lookup. */
struct ns_name_key {
    const char *name;
    size_t len;
};

extern const ptab_ops ns_inode_ops;
extern const ptab_ops ns_dentry_ops;
extern const ptab_ops ns_chunk_ops;
extern const ptab_ops ns_xattrs_ops;

static inline uint32_t ns_ino_hash(uint64_t ino)
{
    return ptab_hash_u64(ino);
}
uint32_t ns_chunk_hash(const ts_chunk_id *id);

struct ns_inode *ns_inode_get(const ns_state *ns, uint64_t ino);
void ns_fill_attr(const struct ns_inode *in, ts_attr *out);
/* Frees an inode that is no longer referenced (releases its chunk refs). */
void ns_inode_destroy(ns_state *ns, struct ns_inode *in);
/* Inserts a fresh inode into the table and the type counters. */
void ns_inode_insert(ns_state *ns, struct ns_inode *in);

/* namespace_extents.c */
/* Drops all data at or past new_size (trimming a straddling extent) and
 * releases chunk references.  Does not change in->size. */
void ns_extents_truncate(ns_state *ns, struct ns_inode *in, uint64_t new_size);
void ns_chunk_ref(ns_state *ns, const ts_chunk_id *id);
void ns_chunk_unref(ns_state *ns, const ts_chunk_id *id);
struct ns_chunk *ns_chunk_get(const ns_state *ns, const ts_chunk_id *id);
/* The checks of ns_commit that do not depend on the inode: range, chunks
 * listed, extents (in range, known chunk, inside it, no overlap).  sorted
 * (n_extents slots) receives the extents by file offset.  0 or TS_EINVAL /
 * TS_EFBIG with a message. */
int ns_commit_validate(const ns_state *ns, const ns_commit_args *a, ts_extent *sorted,
                       ts_error *err);

/* namespace_reserve.c */
/* 1 when ino is reserved and not used yet. */
int ns_reserved_has(const ns_state *ns, uint64_t ino);
/* Marks a reserved, unused ino used (aborts otherwise: check first). */
void ns_reserved_take(ns_state *ns, uint64_t ino);
void ns_reserved_free(ns_state *ns);
struct ts_dec;
void ns_reserved_encode(const ns_state *ns, ts_buf *b);
int ns_reserved_decode(struct ts_dec *d, ns_state *ns, ts_error *err);
/* N11 (namespace_check.c). */
int ns_reserved_check(const ns_state *ns, ts_error *err);

/* namespace_xattr.c */
struct ns_xattrs *ns_xattrs_get(const ns_state *ns, uint64_t ino);
/* Drops the attributes of ino (when it is destroyed). */
void ns_xattrs_drop(ns_state *ns, uint64_t ino);
void ns_xattrs_free_all(ns_state *ns);
/* N9: every attribute set names a live inode, is non-empty, sorted, and
 * within the limits; its byte count is right. */
int ns_xattrs_check(const ns_state *ns, ts_error *err);

#endif
