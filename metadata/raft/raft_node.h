/*
 * A running Raft server: the consensus core (raft.h) driven by one thread
 * with a clock, durable state (raft_storage.h) and a pluggable transport and
 * state machine.  This is the layer tessera-meta puts between its request
 * handlers and the core.
 *
 * The driver thread loops: take everything queued (incoming messages,
 * proposals, read requests), hand it to the core, tick when a tick is due,
 * then process the ready -- persist (one fsync for all entries), send,
 * apply, wake the waiters.  Proposals that arrive while a round is being
 * persisted are batched into the next round: many concurrent clients share
 * one fsync and one append per follower (group commit).
 *
 * Callers block in raft_node_propose (until their entry is applied, with
 * the state machine's result) or raft_node_read_barrier (until a ReadIndex
 * round confirmed leadership and the state machine caught up with it).  On
 * a follower both fail at once with TS_ENOTLEADER and the leader's address
 * (when known) for the redirect.
 *
 * Snapshots: a local snapshot is an image of the state machine as of an
 * applied index in DIR/raft-snap-<index, 20 digits>.img (temporary name,
 * fsync, rename).  Two ways to take one:
 *   - asynchronous (ops.snapshot NULL; the metadata store): the state
 *     machine writes the image itself, off the driver thread, from its own
 *     copy of the state (metadata/checkpoint.h), at raft_node_image_path,
 *     then calls raft_node_snapshot_taken; the driver then records the meta
 *     and drops the log the image covers.  Replication and applies never
 *     wait for an image to be encoded.
 *   - synchronous (ops.snapshot set; simple state machines and tests):
 *     every snapshot_every applied entries the driver serializes the state
 *     machine itself, pausing the driver meanwhile.
 * A follower too far behind receives the leader's image in pieces into
 * raft-snap-<index>.img.tmp, which is fsynced and renamed before the meta
 * names it, then restored (ops.restore).  At start the newest image the
 * meta names is restored before the log after it is replayed.
 */
#ifndef TS_META_RAFT_NODE_H
#define TS_META_RAFT_NODE_H

#include <stddef.h>
#include <stdint.h>
#include "common/ts_error.h"
#include "common/util.h"
#include "metadata/raft/raft.h"

typedef struct raft_node raft_node;

typedef struct raft_node_ops {
    /* Delivers an encoded message to server `to` at addr ("" when this
     * server does not know the address yet: it joined and has no
     * configuration; resolve `to` otherwise).  Must not block for long
     * (queue it).  Loss is fine. */
    void (*send)(void *arg, uint64_t to, const char *addr, const void *buf, size_t len);
    /* Applies a committed entry (NORMAL entries; CONF and NOOP entries are
     * passed too, for the index).  `result` is the waiter's result buffer
     * (result_size bytes given to raft_node_propose, copied out to the
     * caller; NULL when nobody on this server waits for the entry).
     * Returns the command's status, handed to the waiter. */
    int (*apply)(void *arg, const raft_entry *e, void *result);
    /* Optional (NULL = asynchronous snapshots, see above).  Serializes the
     * whole state machine as of the last applied entry into out (called on
     * the driver thread, between applies).  0 or an error (the snapshot is
     * then skipped). */
    int (*snapshot)(void *arg, ts_buf *out);
    /* Replaces the state machine with a serialized image, the state after
     * entry index.  0, or TS_ECORRUPT (the server stops: its state would be
     * unknown). */
    int (*restore)(void *arg, uint64_t index, const void *image, size_t len);
    void *arg;
} raft_node_ops;

typedef struct raft_node_opts {
    const char *dir;            /* data directory (raft-state, raft-snap, wal-*) */
    uint64_t id;
    const raft_conf *bootstrap; /* initial group, for a brand-new directory; NULL = join */
    int tick_ms;                /* default 50 */
    uint32_t election_ticks;    /* default 10 (randomized up to twice that) */
    uint32_t heartbeat_ticks;   /* default 2 */
    int fsync;                  /* 0 only for benchmarks: UNSAFE */
    uint64_t seed;              /* 0 = random */
    uint64_t snapshot_every;    /* synchronous mode: applied entries between snapshots
                                 * (default 10000) */
    uint32_t snapshot_chunk;    /* bytes per InstallSnapshot piece (default 1 MiB) */
    int lease_reads;            /* 1: leader lease reads (see raft_node_read_barrier) */
    raft_node_ops ops;
} raft_node_opts;

/* Recovers the state in dir and starts the driver thread.  TS_EIO,
 * TS_ECORRUPT (storage), TS_EINVAL (options). */
int raft_node_start(const raft_node_opts *o, raft_node **out, ts_error *err);
/* Stops the thread; waiters get TS_EUNAVAIL.  NULL is fine. */
void raft_node_stop(raft_node *n);

/* Queues a message received from the network (copied).  TS_EPROTO if it
 * does not decode. */
int raft_node_receive(raft_node *n, const void *buf, size_t len);
/* Queues a message like raft_node_receive() and waits (at most timeout_ms)
 * until the driver has handled it: stepped it into the core and processed
 * the ready that followed -- persisted it, and handed every message it
 * caused to ops.send.  A transport uses this to carry those answers back
 * on the request that brought the message.  0; TS_ETIMEDOUT (the message
 * stays queued and is handled later); TS_EUNAVAIL (stopping).  Like
 * raft_node_receive(), not to be called once raft_node_stop() has begun. */
int raft_node_receive_wait(raft_node *n, const void *buf, size_t len, int timeout_ms);

/* Proposes data and waits until it is applied here.  0 or the apply
 * callback's status (the result buffer is copied out in both cases); TS_ENOTLEADER (leader_addr filled when known, size
 * RAFT_ADDR_MAX), TS_ETIMEDOUT, TS_EBUSY, TS_EUNAVAIL (stopping).  A
 * proposal that timed out may still be applied later: callers that retry
 * need idempotent commands (client request ids). */
int raft_node_propose(raft_node *n, const void *data, size_t len, void *result,
                      size_t result_size, int timeout_ms, char *leader_addr, ts_error *err);
/* Waits until reads here are linearizable (ReadIndex).  0, TS_ENOTLEADER,
 * TS_ETIMEDOUT, TS_EUNAVAIL.
 *
 * With lease_reads, a leader whose ReadIndex round started at time T was
 * confirmed by a majority answers at once, without a round, until
 * T + (election_ticks - 2) * tick_ms: every server that acknowledged the
 * round heard from this leader after T and ignores (pre-)votes for an
 * election timeout after that (leader stickiness, raft.c), so no other
 * leader can be elected, let alone commit, before the lease ends.  The
 * lease needs what stickiness does not cover: a server ignores vote
 * requests for an election timeout after it starts (it may have
 * acknowledged a round just before a restart), and a leader gives its
 * lease up before any leadership transfer or membership change and when
 * it stops leading.  Reads in the second half of a lease start a round
 * in the background that extends it.  Clocks: the monotonic clocks of the
 * servers must not drift apart by more than the two ticks of margin over
 * one lease -- a far smaller demand than the tick itself. */
int raft_node_read_barrier(raft_node *n, int timeout_ms, char *leader_addr, ts_error *err);
/* Membership and leadership changes (raft_propose_conf / raft_transfer),
 * waiting for the change to be applied (conf) or started (transfer). */
int raft_node_change(raft_node *n, int op, uint64_t id, const char *addr, int timeout_ms,
                     char *leader_addr, ts_error *err);
int raft_node_transfer(raft_node *n, uint64_t id, char *leader_addr, ts_error *err);

/* Asynchronous snapshots: where the image at index goes (caller frees), and
 * "the image at index is durable there, size bytes" -- waits until the
 * driver recorded it and compacted the log.  0; TS_EINVAL (the core refused:
 * a newer snapshot was installed meanwhile, or index is unknown; the file
 * is removed); TS_ETIMEDOUT, TS_EUNAVAIL.  Any thread. */
char *raft_node_image_path(raft_node *n, uint64_t index);
int raft_node_snapshot_taken(raft_node *n, uint64_t index, uint64_t size, ts_error *err);

/* A consistent copy of the core's status (taken by the driver thread). */
void raft_node_status(raft_node *n, raft_status *st);
/* Counters of the durable state (fsync rounds, entries written). */
struct raft_storage_stats;
void raft_node_storage_stats(raft_node *n, struct raft_storage_stats *st);
/* Driver rounds run so far by request handlers themselves (a message or
 * request queued while nobody drove) and by the driver thread. */
void raft_node_round_stats(raft_node *n, uint64_t *by_handlers, uint64_t *by_driver);

#endif
