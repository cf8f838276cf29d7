/*
 * The namespace: Tessera's deterministic metadata state machine.
 *
 * It holds every inode (directories with their entries, regular files with
 * their extent lists, symlinks with their targets), the chunk table (length,
 * SHA-256 and reference count of every chunk some extent points into) and
 * the durable cluster membership.  It does no I/O, reads no clock and draws
 * no random numbers: every time-dependent input (`now`, explicit times) is a
 * parameter, inode numbers come from a counter inside the state.  Applying
 * the same sequence of mutations to equal states gives equal states on every
 * replica -- that is what lets the WAL (and later Raft) rebuild it.
 *
 * Error contract: every mutation validates first and returns 0 or a negative
 * TS_E* code with a message; on error the state is unchanged.
 *
 * Memory: an empty file costs one inode allocation (72 bytes), one directory
 * entry allocation (13 bytes + name) and one pointer slot in each of two
 * ptab hash tables (see ptab.h); no per-element hash handles.
 *
 * Directory listings come in hash order (see ptab.h): stable, the same on
 * every replica, and resumable after a name even if that name was removed.
 *
 * Not thread-safe: the caller (store.c) serializes mutations and lets reads
 * share a read lock.
 */
#ifndef TS_META_NAMESPACE_H
#define TS_META_NAMESPACE_H

#include <stddef.h>
#include <stdint.h>
#include "common/proto.h"
#include "common/util.h"

typedef struct ns_state ns_state;

/* A fresh namespace holding only the root directory (inode 1, mode 0755,
 * owned by 0:0, times = now_ns).  Aborts on OOM. */
ns_state *ns_new(int64_t now_ns);
void ns_free(ns_state *ns);

/* ---- Validation shared with the API layer ---- */

/* 0, TS_EINVAL (empty, ".", "..", '/' inside) or TS_ENAMETOOLONG (> 255). */
int ns_check_name(const char *name, ts_error *err);

/* ---- Reads ---- */

/* Absolute path, symlinks not followed; "//" and a trailing "/" are allowed,
 * "." and ".." are interpreted.  TS_EINVAL (relative), TS_ENOENT, TS_ENOTDIR,
 * TS_ENAMETOOLONG. */
int ns_resolve(const ns_state *ns, const char *path, ts_attr *out, ts_error *err);
int ns_lookup(const ns_state *ns, uint64_t parent, const char *name, ts_attr *out, ts_error *err);
int ns_getattr(const ns_state *ns, uint64_t ino, ts_attr *out, ts_error *err);
/* *target is borrowed: valid until the next mutation. */
int ns_readlink(const ns_state *ns, uint64_t ino, const char **target, ts_error *err);

/* Called for each entry in order; return nonzero to stop early (that entry
 * is then not counted as listed). */
typedef int (*ns_readdir_fn)(void *arg, const char *name, const ts_attr *attr);
/* Lists up to limit entries of directory ino that sort after `after` (NULL:
 * from the start; need not exist any more).  *more is set when entries
 * remain.  TS_ENOENT, TS_ENOTDIR, TS_EINVAL (limit 0). */
int ns_readdir(const ns_state *ns, uint64_t ino, const char *after, uint32_t limit,
               ns_readdir_fn fn, void *arg, int *more, ts_error *err);

/* Extents of a regular file, borrowed until the next mutation.  TS_ENOENT,
 * TS_EISDIR / TS_EINVAL for other types. */
int ns_file_extents(const ns_state *ns, uint64_t ino, const ts_extent **ext, size_t *n,
                    ts_error *err);

/* ---- Mutations (each is what one command applies) ---- */

enum {
    NS_SETATTR_MODE = 1 << 0,
    NS_SETATTR_UID = 1 << 1,
    NS_SETATTR_GID = 1 << 2,
    NS_SETATTR_SIZE = 1 << 3,
    NS_SETATTR_ATIME = 1 << 4,
    NS_SETATTR_MTIME = 1 << 5,
};
typedef struct ns_setattr_args {
    uint32_t valid;     /* NS_SETATTR_* bits */
    uint32_t mode;      /* permission bits; the type bits are kept */
    uint32_t uid, gid;
    uint64_t size;      /* shrink trims extents; grow leaves a hole */
    int64_t atime_ns, mtime_ns;
} ns_setattr_args;

int ns_setattr(ns_state *ns, uint64_t ino, const ns_setattr_args *a, int64_t now,
               ts_attr *out, ts_error *err);
int ns_mkdir(ns_state *ns, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, int64_t now, ts_attr *out, ts_error *err);

enum { NS_CREATE_EXCL = 1, NS_CREATE_TRUNC = 2 };
/* An existing regular file is returned (*created = 0): TS_EEXIST with
 * NS_CREATE_EXCL; emptied with NS_CREATE_TRUNC.  An existing non-file:
 * TS_EEXIST (exclusive) or TS_EISDIR / TS_EEXIST. */
int ns_create(ns_state *ns, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
              uint32_t gid, uint32_t flags, int64_t now, ts_attr *out, int *created,
              ts_error *err);
/* ---- Reserved inode numbers ----
 * A client that answers a create before telling the server (the mount,
 * for files opened with O_TRUNC, which it creates at close) needs an inode
 * number nobody else gets: it reserves NS_RESERVE_BATCH of them at a time
 * and names one in ns_create_at.  Each is used at most once. */
#define NS_RESERVE_BATCH 64
/* *first .. *first + NS_RESERVE_BATCH - 1 are now reserved. */
void ns_reserve_inodes(ns_state *ns, uint64_t *first);
/* Reserved numbers not used yet. */
uint64_t ns_reserved_count(const ns_state *ns);

enum { NS_CREATE_REPLACE = 4 };
/* Creates regular file `name` in parent as inode ino, which must be
 * reserved and unused (TS_EINVAL otherwise).  An existing entry gives
 * TS_EEXIST, unless flags has NS_CREATE_REPLACE and it is a regular file:
 * that one is unlinked first (as a rename over it would).  TS_EISDIR for a
 * directory there.  commit (may be NULL; its ino must be ino) is then
 * applied to the new file -- its first data in the same mutation; it is
 * validated before anything changes, so a refused commit creates nothing.
 * *out: the file as it ends up. */
struct ns_commit_args;
int ns_create_at(ns_state *ns, uint64_t parent, const char *name, uint64_t ino, uint32_t mode,
                 uint32_t uid, uint32_t gid, uint32_t flags, const struct ns_commit_args *commit,
                 int64_t now, ts_attr *out, ts_error *err);

/* Not for directories (TS_EISDIR).  nlink--; the inode is freed at 0. */
int ns_unlink(ns_state *ns, uint64_t parent, const char *name, int64_t now, ts_error *err);
/* TS_ENOTDIR, TS_ENOTEMPTY. */
int ns_rmdir(ns_state *ns, uint64_t parent, const char *name, int64_t now, ts_error *err);

enum { NS_RENAME_NOREPLACE = 1, NS_RENAME_EXCHANGE = 2 };
/* POSIX rename plus the two Linux flags.  TS_EINVAL for a directory moved
 * into its own subtree or bad flags; TS_EEXIST with NOREPLACE; TS_ENOENT for
 * a missing target with EXCHANGE; TS_ENOTDIR / TS_EISDIR for incompatible
 * types; TS_ENOTEMPTY for a non-empty target directory. */
int ns_rename(ns_state *ns, uint64_t parent, const char *name, uint64_t new_parent,
              const char *new_name, uint32_t flags, int64_t now, ts_error *err);
int ns_symlink(ns_state *ns, uint64_t parent, const char *name, const char *target,
               uint32_t uid, uint32_t gid, int64_t now, ts_attr *out, ts_error *err);
/* Hard link; TS_EPERM for directories. */
int ns_link(ns_state *ns, uint64_t ino, uint64_t new_parent, const char *new_name,
            int64_t now, ts_attr *out, ts_error *err);

/* A chunk as registered by a commit.  data non-NULL: an inline chunk, its
 * `length` bytes kept in the namespace (copied by ns_commit; the owner of
 * the info frees its own copy). */
typedef struct ns_chunk_info {
    ts_chunk_id id;
    uint64_t length;
    uint8_t sha256[TS_SHA256_LEN];
    uint8_t *data;
} ns_chunk_info;

/* Inline chunks: small data stored in the metadata instead of on three
 * chunkservers, so a small file or a small append costs one metadata
 * commit and no chunk upload.  A chunk holds at most NS_INLINE_CHUNK_MAX
 * bytes, and an extent pointing into one must end at or below
 * NS_INLINE_END_MAX (so a file holds at most that much inline data);
 * compaction later moves the bytes into chunks on chunkservers.  All
 * inline chunks together hold at most NS_INLINE_TOTAL_MAX bytes: past it a
 * commit with new inline data is refused with TS_ENOSPC (the client then
 * uploads the bytes), so a burst of small files faster than compaction
 * cannot fill the metadata servers' memory. */
#define NS_INLINE_CHUNK_MAX (64u * 1024)
#define NS_INLINE_END_MAX (1024u * 1024)
#define NS_INLINE_TOTAL_MAX (1024ull * 1024 * 1024)
/* Tests only: another total (every replica of a state must use the same). */
void ns_set_inline_total_max(ns_state *ns, uint64_t max);

typedef struct ns_commit_args {
    uint64_t ino;
    uint64_t offset, length;       /* the range replaced */
    const ts_extent *extents;      /* inside the range, non-overlapping */
    size_t n_extents;
    const ns_chunk_info *chunks;   /* new chunks (known ones may be repeated) */
    size_t n_chunks;
    int has_size;
    uint64_t size;                 /* else max(size, offset + length) */
    int has_mtime;
    int64_t mtime_ns;              /* else now */
} ns_commit_args;
/* Splices extents over [offset, offset+length).  TS_EINVAL for extents out
 * of the range, overlapping, of zero length, past their chunk's length, or
 * naming an unknown chunk; for a listed chunk that is known with another
 * length or hash (or inline-ness); for an inline chunk over the limits
 * above or whose data does not match its length and SHA-256.  A size below
 * the end of the new data trims it. */
int ns_commit(ns_state *ns, const ns_commit_args *a, int64_t now, ts_attr *out, ts_error *err);

/* ---- Compaction: compare-and-swap extent replacement ---- */

typedef struct ns_replace_file {
    uint64_t ino;
    uint64_t version;              /* the inode's version the compactor read */
    uint64_t offset, length;       /* the range rewritten */
    const ts_extent *extents;      /* its new extents (at least one) */
    size_t n_extents;
} ns_replace_file;
typedef struct ns_replace_args {
    const ns_replace_file *files;
    size_t n_files;
    const ns_chunk_info *chunks;   /* new chunks the files' extents use */
    size_t n_chunks;
} ns_replace_args;
/* Redirects each file's range to its new extents when that file still has
 * `version` and the new extents cover exactly the bytes the old ones cover
 * in the range (namespace_compact.c); other files are skipped (a writer won
 * the race).  Size and times stay; the version is bumped.  *replaced counts
 * the files changed.  TS_EINVAL (nothing changed) for malformed input:
 * extents as ns_commit checks them, no files, a chunk listed twice, a file
 * with no extents. */
int ns_replace_extents(ns_state *ns, const ns_replace_args *a, int64_t now, uint32_t *replaced,
                       ts_error *err);

/* ---- Extended attributes ---- */

/* Kept per inode, sorted by name, in a table of their own (an inode without
 * attributes costs nothing).  Names are 1..NS_XATTR_NAME_MAX bytes
 * (TS_EINVAL empty, TS_ERANGE longer), values up to NS_XATTR_VALUE_MAX bytes
 * of anything (TS_ERANGE), all of one inode's names and values up to
 * NS_XATTR_TOTAL_MAX bytes (TS_ENOSPC).  Setting or removing one changes
 * the inode's ctime and version. */
#define NS_XATTR_NAME_MAX 255
#define NS_XATTR_VALUE_MAX 65536
#define NS_XATTR_TOTAL_MAX (256 * 1024)
enum { NS_XATTR_CREATE = 1, NS_XATTR_REPLACE = 2 };

int ns_check_xattr_name(const char *name, ts_error *err);
/* *value is borrowed until the next mutation.  TS_ENOENT (inode),
 * TS_ENODATA (attribute). */
int ns_getxattr(const ns_state *ns, uint64_t ino, const char *name, const void **value,
                size_t *len, ts_error *err);
/* Calls fn for each attribute in name order; nonzero stops.  TS_ENOENT. */
typedef int (*ns_xattr_fn)(void *arg, const char *name, const void *value, size_t len);
int ns_listxattr(const ns_state *ns, uint64_t ino, ns_xattr_fn fn, void *arg, ts_error *err);
/* NS_XATTR_CREATE: TS_EEXIST when present; NS_XATTR_REPLACE: TS_ENODATA
 * when absent. */
int ns_setxattr(ns_state *ns, uint64_t ino, const char *name, const void *value, size_t len,
                uint32_t flags, int64_t now, ts_error *err);
/* TS_ENOENT, TS_ENODATA. */
int ns_removexattr(ns_state *ns, uint64_t ino, const char *name, int64_t now, ts_error *err);

/* ---- Chunks ---- */

/* 0 with length (and sha256 if non-NULL) of a known chunk, or TS_ENOENT. */
int ns_chunk_lookup(const ns_state *ns, const ts_chunk_id *id, uint64_t *length,
                    uint8_t *sha256, uint32_t *refcount);
/* Calls fn for every chunk stored on chunkservers (inline chunks are
 * left out: nothing to place, repair or report), in canonical order;
 * stops on nonzero. */
void ns_chunk_foreach(const ns_state *ns, int (*fn)(void *arg, const ts_chunk_id *id), void *arg);
/* 1 with *data (borrowed until the next mutation) and *len when id is a
 * known inline chunk; 0 otherwise. */
int ns_chunk_inline(const ns_state *ns, const ts_chunk_id *id, const uint8_t **data,
                    uint64_t *len);

/* ---- Membership (durable; namespace_members.c) ---- */

/* The operator's decision about a server, apart from its liveness (which
 * is soft state, cluster.h): draining servers get no new replicas but keep
 * serving reads while repair copies their chunks away; removed servers are
 * out of the cluster (neither placed on nor read from). */
typedef enum ns_server_admin {
    NS_SERVER_ACTIVE = 0,
    NS_SERVER_DRAINING = 1,
    NS_SERVER_REMOVED = 2,
} ns_server_admin;

/* ns_server.pinned bits: set by the operator (ns_set_server); a server's
 * own heartbeat no longer changes them. */
#define NS_PIN_WEIGHT 1u
#define NS_PIN_ZONE 2u

typedef struct ns_server {
    char *id;          /* "cs-1" */
    char *address;     /* "host:port" */
    char *zone;        /* "" when none */
    double weight;
    uint8_t admin;     /* ns_server_admin */
    uint8_t pinned;    /* NS_PIN_* */
} ns_server;

/* Adds or updates a chunkserver from its own heartbeat; bumps the
 * membership epoch when anything changed.  Pinned fields keep the
 * operator's value; the admin state is kept.  TS_EINVAL for an empty
 * id/address or a weight <= 0. */
int ns_register_server(ns_state *ns, const char *id, const char *address, const char *zone,
                       double weight, ts_error *err);
/* 1 when a heartbeat with these values would change nothing (pinned
 * fields ignored); 0 for an unknown id. */
int ns_server_matches(const ns_state *ns, const char *id, const char *address, const char *zone,
                      double weight);

/* An operator's change (CMD_SET_SERVER).  Fields not `set_` are kept; an
 * unknown id is created when address is given (weight 1 and no zone unless
 * set), else TS_ENOENT.  A weight or zone set here is pinned.  TS_EINVAL
 * for weight <= 0 (or not finite), an admin state out of range, a zone
 * longer than 64 bytes. */
typedef struct ns_server_change {
    const char *address;        /* NULL or "": keep */
    int set_weight;
    double weight;
    int set_zone;
    const char *zone;
    int set_admin;
    uint8_t admin;              /* ns_server_admin */
} ns_server_change;
int ns_set_server(ns_state *ns, const char *id, const ns_server_change *ch, ts_error *err);

/* Borrowed; NULL when unknown. */
const ns_server *ns_server_find(const ns_state *ns, const char *id);
size_t ns_server_count(const ns_state *ns);
/* i < ns_server_count(); in registration order. */
const ns_server *ns_server_at(const ns_state *ns, size_t i);
/* "active", "draining", "removed". */
const char *ns_server_admin_name(unsigned admin);

/* The cluster-wide rebalance the operator started (CMD_REBALANCE): durable
 * so that a new leader carries on with it.  Progress is measured against
 * the bytes planned at the start; a new leader re-plans and finds the
 * moves that remain. */
typedef struct ns_rebalance {
    uint8_t running;
    uint64_t bandwidth;         /* bytes/s for its copies; 0 = the repair budget */
    uint64_t max_moves;         /* 0 = every move */
    uint64_t bytes_planned;     /* of every move planned at the start */
    uint64_t bytes_target;      /* of the moves it makes (max_moves) */
    uint64_t moves_target;
    int64_t started_ns;         /* the leader's clock at the start */
} ns_rebalance;
void ns_get_rebalance(const ns_state *ns, ns_rebalance *out);
void ns_set_rebalance(ns_state *ns, const ns_rebalance *r);
/* Its wire form, shared by the CMD_REBALANCE command and the namespace
 * image: u8 running, u64 bandwidth, max_moves, bytes_planned, bytes_target,
 * moves_target, i64 started_ns.  The decoder poisons d (ts_dec_ok) on a
 * truncated record or a running byte other than 0/1. */
struct ts_buf;
struct ts_dec;
void ns_rebalance_encode(struct ts_buf *b, const ns_rebalance *r);
void ns_rebalance_decode(struct ts_dec *d, ns_rebalance *r);

/* ---- Accounting, checking, serialization ---- */

typedef struct ns_stats {
    uint64_t files, directories, symlinks;  /* live inodes by type */
    uint64_t chunks;                        /* in the chunk table */
    uint64_t garbage_chunks;                /* dropped to refcount 0 (ever; stored chunks) */
    uint64_t inline_chunks, inline_bytes;   /* inline chunks in the table, their bytes */
    uint64_t next_ino;
    uint64_t membership_epoch;
    uint64_t extents;
} ns_stats;
void ns_get_stats(const ns_state *ns, ns_stats *st);

/* Checks every invariant (numbered in namespace_check.c): nlink counts,
 * directory parent links, extents sorted / non-overlapping / inside the size
 * and their chunk, chunk refcounts equal to extent references, counters,
 * hash-table order.  0 or TS_ECORRUPT naming the first violation. */
int ns_check_invariants(const ns_state *ns, ts_error *err);

/* Appends a canonical encoding of the whole state (equal states give equal
 * bytes) to b.  Used by snapshots and by tests to compare states. */
void ns_encode(const ns_state *ns, ts_buf *b);
/* Rebuilds a state from ns_encode's bytes.  TS_ECORRUPT (with the reason)
 * for malformed input; then checks the invariants. */
int ns_decode(const void *p, size_t len, ns_state **out, ts_error *err);

#endif
