/*
 * The store: the namespace state machine made durable.  It owns the state,
 * the write-ahead log and the snapshot policy, and sequences commands:
 *
 *   submit(cmd):  take the state write lock; stamp cmd->now_ns from the
 *                 clock (monotonic: never below the previous stamp); apply
 *                 (sm_apply, metadata/sm.h); on success encode, append to
 *                 the WAL pending buffer and hand a copy to the
 *                 checkpointer; release the lock; wait until the record is
 *                 durable (group commit, see wal.h); answer.
 *
 * A failed command changes nothing and is not logged, but its answer still
 * waits for the records it observed to be durable, so a client never sees
 * an error that only made sense in a state lost by a crash.
 *
 * Reads take the state read lock.  They may see applied records whose fsync
 * is still in flight (read-your-writes holds, a crash can lose what a read
 * saw but no acknowledged write); the Raft issue brings ReadIndex reads.
 *
 * Recovery (store_open): lock DATA/LOCK (one server per directory), load
 * the newest valid snapshot, replay the log after it.  The very first start
 * writes snapshot 0 holding the root directory, so every later start has a
 * snapshot to begin from.
 *
 * Snapshots never stop the service: in both modes the checkpointer
 * (metadata/checkpoint.h) rebuilds the state at some index X on its own
 * thread from the previous snapshot plus the entries since, writes it, and
 * only then lets the log drop what X covers; the live state is not locked
 * for it.  Every snapshot_every records one is due.
 *
 * Replicated mode (opts.raft_id != 0): the store is the state machine of a
 * Raft group (metadata/raft/raft_node.h) and owns no WAL of its own; the
 * Raft log and snapshot images live in DATA/raft/.
 *
 *   submit(cmd):  stamp cmd->now_ns from this server's clock; encode;
 *                 propose; wait until the entry is committed and applied
 *                 here; answer with what applying it gave.  Commands are
 *                 validated at apply (deterministically, on every replica):
 *                 a failing one is in the log too and changes nothing.
 *                 On a follower it fails at once with TS_ENOTLEADER
 *                 (store_leader names the leader).
 *   apply:        on the Raft driver thread, under the state write lock,
 *                 with sm_apply (command times are clamped to never go
 *                 below the last applied one: a new leader's clock may be
 *                 behind); then a copy of the entry goes to the
 *                 checkpointer.
 *   reads:        store_read_barrier (ReadIndex) first, then the read lock.
 *   snapshots:    the image (namespace + client sessions, sm_image_encode)
 *                 is built by the checkpointer, written where the Raft
 *                 server serves InstallSnapshot from, and handed to it
 *                 (raft_node_snapshot_taken), which compacts the log.
 *
 * In both modes a command with a client request id goes through the client
 * session table (metadata/session.h): a retried request is answered with
 * its first result.  In single-server mode the table is rebuilt from the
 * log records after the snapshot (the snapshot file does not hold it).
 */
#ifndef TS_META_STORE_H
#define TS_META_STORE_H

#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/command.h"
#include "metadata/namespace.h"
#include "metadata/raft/raft.h"
#include "metadata/wal.h"

typedef struct store store;

typedef struct store_opts {
    const char *data_dir;        /* created if missing */
    int wal_fsync;               /* 0 only for benchmarks: UNSAFE */
    uint64_t snapshot_every;     /* records between snapshots; 0 = 100000 */
    int64_t (*clock_ns)(void);   /* NULL = ts_now_ns; tests inject a fake */

    /* Replicated mode (see above); raft_id 0 = single server. */
    uint64_t raft_id;
    const raft_conf *raft_peers; /* the initial group, used for a new directory */
    void (*raft_send)(void *arg, uint64_t to, const char *addr, const void *buf, size_t len);
    void *raft_send_arg;
    int raft_tick_ms;            /* 0 = 50 */
    int raft_lease_reads;        /* leader lease reads (raft_node.h) */
    int raft_timeout_ms;         /* a proposal or read barrier gives up after (0 = 5000) */
} store_opts;

/* Opens or creates the data directory and recovers.  TS_EIO (unwritable or
 * locked directory), TS_ECORRUPT (damaged log or snapshots). */
int store_open(const store_opts *opts, store **out, ts_error *err);
/* Syncs the log and releases everything.  NULL is fine. */
void store_close(store *s);

/* Applies c durably (see above); c->now_ns is overwritten.  c stays owned
 * by the caller.  0 with *res, or the command's error; replicated mode adds
 * TS_ENOTLEADER, TS_ETIMEDOUT (the command may still be applied later: a
 * retry with the same request id is safe), TS_EBUSY, TS_EUNAVAIL. */
int store_submit(store *s, cmd *c, cmd_result *res, ts_error *err);

/* Replicated mode: waits until a read here is linearizable (ReadIndex).
 * 0 at once in single-server mode; TS_ENOTLEADER, TS_ETIMEDOUT,
 * TS_EUNAVAIL. */
int store_read_barrier(store *s, ts_error *err);
/* 1 when this server may serve clients (single-server mode, or the Raft
 * leader); else 0 with the leader's "host:port" in addr ("" = unknown). */
int store_is_leader(store *s, char addr[RAFT_ADDR_MAX]);
/* The Raft term in which this server leads (1 in single-server mode), or 0
 * when it does not lead: soft state kept for the leader (cluster.h) is
 * started afresh when this changes. */
uint64_t store_leader_term(store *s);
/* The Raft server of a replicated store (status, membership changes, the
 * transport's delivery), NULL in single-server mode. */
struct raft_node *store_raft(store *s);

/* Read access: the namespace is valid between lock and unlock. */
const ns_state *store_read_lock(store *s);
void store_read_unlock(store *s);

/* Takes a snapshot of everything applied so far now (in the background
 * checkpointer) and waits for it.  TS_EIO; replicated mode also
 * TS_EINVAL (a snapshot from the leader replaced the state meanwhile). */
int store_snapshot(store *s, ts_error *err);

typedef struct store_stats {
    uint64_t last_index;         /* last log index applied */
    uint64_t sessions;           /* clients in the session table */
    uint64_t snapshot_index;     /* of the newest snapshot */
    uint64_t snapshots_written;
    int snapshot_running;        /* a checkpoint is being built now */
    int64_t snapshot_last_ms;    /* how long the last one took */
    uint64_t commands_ok, commands_failed;
    wal_stats wal;
} store_stats;
void store_get_stats(store *s, store_stats *st);

#endif
