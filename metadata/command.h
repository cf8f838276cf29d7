/*
 * Commands: the durable unit of change of the metadata state machine.
 *
 * A mutating request becomes one command carrying everything its effect
 * depends on -- including the leader's clock (`now_ns`) -- so that applying
 * it is deterministic: the write-ahead log (and later Raft) stores the
 * encoded command and every replay gives the same state.  Inode numbers are
 * not in the command: the state machine allocates them from its counter.
 *
 * Wire form (common/codec.h): u8 version, u8 type, i64 now_ns, then (version
 * 2 only) the client request id -- u64 client, u64 seq, u64 acked -- then
 * the fields of that type in the order of the structs below.  A command
 * without a client id (client == 0) is encoded as version 1, the form that
 * predates request ids, so logs written before them decode unchanged and
 * the encoder's output for them is the same bytes as before.  The decoder
 * rejects an unknown version or type, a truncated body and trailing bytes.
 *
 * The request id makes a retried request idempotent: the state machine
 * remembers each client's recent results (metadata/session.h) and answers a
 * repeated (client, seq) with the first result instead of applying again.
 *
 * Ownership: a cmd owns its strings and arrays (malloc'd); cmd_free releases
 * them.  A cmd filled by hand must use malloc'd memory too (ts_strdup).
 */
#ifndef TS_META_COMMAND_H
#define TS_META_COMMAND_H

#include <stdint.h>
#include "common/util.h"
#include "metadata/namespace.h"

#define CMD_VERSION_NO_CLIENT 1   /* no request id (older logs, internal commands) */
#define CMD_VERSION 2             /* with the request id */

enum cmd_type {
    CMD_MKDIR = 1,
    CMD_CREATE = 2,
    CMD_UNLINK = 3,
    CMD_RMDIR = 4,
    CMD_RENAME = 5,
    CMD_SYMLINK = 6,
    CMD_LINK = 7,
    CMD_SETATTR = 8,
    CMD_COMMIT = 9,
    CMD_REGISTER_SERVER = 10,
    CMD_SETXATTR = 11,
    CMD_REMOVEXATTR = 12,
    CMD_SET_SERVER = 13,        /* the operator's change to a server (ns_set_server) */
    CMD_REBALANCE = 14,         /* starts, finishes or cancels the rebalance */
    /* 15: unused */
    CMD_REPLACE_EXTENTS = 16,   /* compaction / packing: per-file CAS (ns_replace_extents) */
    CMD_COMMIT_INLINE = 17,     /* a commit whose chunk list may carry inline data (u.commit) */
    CMD_RESERVE_INODES = 18,    /* NS_RESERVE_BATCH inode numbers for a client (no fields) */
    CMD_CREATE_AT = 19,         /* create with a reserved number, optionally with its data */
    CMD_TYPE_END_
};

typedef struct cmd {
    uint8_t type;           /* enum cmd_type */
    int64_t now_ns;         /* the leader's clock when the request arrived */
    uint64_t client;        /* request id: the client's random id, 0 = none */
    uint64_t seq;           /* the client's sequence number of this request */
    uint64_t acked;         /* every seq <= acked of this client was answered */
    union {
        struct { uint64_t parent; char *name; uint32_t mode, uid, gid; } mkdir;
        struct { uint64_t parent; char *name; uint32_t mode, uid, gid, flags; } create;
        struct { uint64_t parent; char *name; } unlink;     /* also CMD_RMDIR */
        struct {
            uint64_t parent; char *name;
            uint64_t new_parent; char *new_name;
            uint32_t flags;
        } rename;
        struct { uint64_t parent; char *name; char *target; uint32_t uid, gid; } symlink;
        struct { uint64_t ino; uint64_t new_parent; char *new_name; } link;
        struct { uint64_t ino; ns_setattr_args a; } setattr;
        struct cmd_commit {
            uint64_t ino, offset, length;
            ts_extent *extents; uint32_t n_extents;
            ns_chunk_info *chunks; uint32_t n_chunks;   /* may carry inline data */
            uint8_t has_size; uint64_t size;
            uint8_t has_mtime; int64_t mtime_ns;
        } commit;
        /* ns_create_at, then (has_commit) the commit on the new inode --
         * one entry for a small file written and closed; commit.ino is
         * the new inode's. */
        struct {
            uint64_t parent; char *name; uint64_t ino;
            uint32_t mode, uid, gid, flags;
            uint8_t has_commit;
            struct cmd_commit commit;
        } create_at;
        struct { char *id, *address, *zone; double weight; } server;
        /* mask: CMD_SET_WEIGHT | CMD_SET_ZONE | CMD_SET_ADMIN; address "" = keep */
        struct {
            char *id, *address, *zone;
            uint8_t mask, admin;
            double weight;
        } set_server;
        ns_rebalance rebalance;
        struct {
            struct cmd_replace_file {
                uint64_t ino, version, offset, length;
                ts_extent *extents; uint32_t n_extents;
            } *files;
            uint32_t n_files;
            ns_chunk_info *chunks; uint32_t n_chunks;
        } replace;
        /* value/len/flags only for CMD_SETXATTR */
        struct { uint64_t ino; char *name; uint8_t *value; uint32_t len, flags; } xattr;
    } u;
} cmd;

#define CMD_SET_WEIGHT 1u
#define CMD_SET_ZONE 2u
#define CMD_SET_ADMIN 4u

/* What applying a command produced (for the reply). */
typedef struct cmd_result {
    ts_attr attr;           /* the affected inode (mkdir/create/symlink/link/setattr/commit);
                             * CMD_RESERVE_INODES: attr.ino is the first number reserved
                             * (so the session table keeps it for a retry) */
    int created;            /* CMD_CREATE: 1 when a new file was made */
    uint32_t replaced;      /* CMD_REPLACE_EXTENTS: files whose CAS succeeded */
    /* The directory whose entries changed, as it is after the command
     * (mkdir/create/symlink/link/unlink/rmdir), so a client can refresh its
     * cached attributes without asking again.  Not kept in the session
     * table: a retried request's answer simply lacks it (has_parent 0). */
    ts_attr parent;
    int has_parent;
} cmd_result;

/* "mkdir", "commit", ...; "unknown" otherwise. */
const char *cmd_type_name(int type);

/* Releases what c owns and zeroes it. */
void cmd_free(cmd *c);

/* Appends the encoding of c to b. */
void cmd_encode(const cmd *c, ts_buf *b);
/* Decodes exactly len bytes into *c (owned by the caller afterwards; free
 * with cmd_free).  TS_ECORRUPT naming what was wrong; *c is then empty. */
int cmd_decode(const void *p, size_t len, cmd *c, ts_error *err);

/* Applies c to the namespace.  0 with *res filled, or the namespace's error
 * (TS_ENOENT, TS_EEXIST, ...) with the state unchanged. */
int cmd_apply(ns_state *ns, const cmd *c, cmd_result *res, ts_error *err);

#endif
