/*
 * The Raft consensus core of the metadata service: a deterministic state
 * machine with no I/O, no clock and no threads (the etcd/raft shape).  It is
 * handed messages (raft_step), ticks (raft_tick), proposals (raft_propose*)
 * and read requests (raft_read_index), and hands back, in a raft_ready, what
 * the caller must persist, send and apply.  Everything around it -- the log
 * files, the network, the clock, the state machine -- lives in thin layers
 * outside (metadata/raft/raft_log.c, the HTTP transport, tests/sim/).
 *
 * What it implements: leader election with randomized timeouts drawn from a
 * PRNG seeded by the caller, pre-vote, check-quorum and leader stickiness;
 * log replication with batching (max entries/bytes per message) and
 * pipelining (a window of in-flight appends per follower); commit only by a
 * majority of voters and only of an entry of the current term; snapshots,
 * log compaction and InstallSnapshot streamed in pieces; single-server
 * membership changes where a new server first joins as a learner and is
 * promoted once it has caught up; leadership transfer; ReadIndex reads.
 *
 * The driving loop (one thread, or one lock around every call):
 *
 *     raft_step / raft_tick / raft_propose / raft_read_index ...
 *     if (raft_has_ready(r)) {
 *         raft_get_ready(r, &rd);
 *         1. if rd.snapshot_chunk: write the piece to the incoming snapshot
 *         2. if rd.snapshot: make the received snapshot current, drop the
 *            whole log, restore the state machine from it
 *         3. if rd.n_entries: delete log entries >= rd.entries[0].index,
 *            append rd.entries, fsync
 *         4. if rd.hard_state_changed: persist (term, vote) atomically
 *         5. send rd.msgs (only now: a vote or an ack must never leave
 *            before what it promises is durable -- a leader's APPEND and
 *            HEARTBEAT may go before steps 3-4 when rd.role is LEADER, no
 *            hard state changed and no snapshot is installed, since the
 *            core counts the leader's own entries toward a commit only
 *            once raft_advance says they are stable); MSG_SNAP messages carry no
 *            bytes -- attach rd.msgs[i].len bytes at offset rd.msgs[i].offset
 *            of the local snapshot rd.msgs[i].snap.index
 *         6. apply rd.committed in order; answer rd.reads once applied
 *            reaches their index
 *         raft_advance(r, &rd);
 *     }
 *
 * Between raft_get_ready and raft_advance no other function of this core may be
 * called: the pointers in the ready point into the core's memory.
 *
 * Configuration entries carry the whole new configuration (raft_conf); a
 * server uses the latest configuration in its log, committed or not.  A new
 * group is bootstrapped by giving every initial member the same conf
 * (raft_restore.bootstrap): the core writes it as entry 1 of term 1.  A
 * server joining an existing group starts empty and learns everything from
 * the leader.
 *
 * Out of memory: the core never aborts; an allocation failure while handling
 * a message drops that message (to Raft indistinguishable from loss) and a
 * failed proposal returns TS_ENOMEM.
 */
#ifndef TS_META_RAFT_H
#define TS_META_RAFT_H

#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_MEMBERS 16
#define RAFT_ADDR_MAX 64

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3
};

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1,   /* a state machine command */
    RAFT_ENTRY_CONF = 2,     /* data = raft_conf_encode() of the new configuration */
    RAFT_ENTRY_NOOP = 3      /* appended by every new leader */
};

enum raft_member_role {
    RAFT_VOTER = 1,
    RAFT_LEARNER = 2         /* receives the log, does not vote or count */
};

typedef struct raft_member {
    uint64_t id;             /* nonzero */
    uint8_t role;            /* enum raft_member_role */
    char addr[RAFT_ADDR_MAX];/* "host:port", opaque to the core */
} raft_member;

typedef struct raft_conf {
    uint32_t n;
    raft_member m[RAFT_MAX_MEMBERS];
} raft_conf;

typedef struct raft_entry {
    uint64_t term, index;
    uint8_t type;            /* enum raft_entry_type */
    size_t len;
    uint8_t *data;           /* owned by whoever owns the entry */
} raft_entry;

typedef struct raft_snapshot_meta {
    uint64_t index, term;    /* last entry the snapshot covers */
    uint64_t size;           /* bytes of the snapshot image */
    raft_conf conf;          /* configuration as of index */
} raft_snapshot_meta;

enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,       /* term = candidate's term + 1; index/log_term = last */
    RAFT_MSG_PREVOTE_RESP = 2,  /* reject; term = request's term if granted */
    RAFT_MSG_VOTE = 3,          /* flags: RAFT_FLAG_TRANSFER */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_APPEND = 5,        /* index/log_term = prev; entries; commit */
    RAFT_MSG_APPEND_RESP = 6,   /* index = match (or rejected prev); hint/hint_term */
    RAFT_MSG_HEARTBEAT = 7,     /* commit; ctx = read round */
    RAFT_MSG_HEARTBEAT_RESP = 8,/* ctx echoed */
    RAFT_MSG_SNAP = 9,          /* snap meta, offset, data[len], flags DONE */
    RAFT_MSG_SNAP_RESP = 10,    /* snap.index, offset = next expected, reject */
    RAFT_MSG_TIMEOUT_NOW = 11,  /* leadership transfer: campaign now */
    RAFT_MSG_TYPE_END_
};

#define RAFT_FLAG_TRANSFER 1u   /* vote requested by a leadership transfer */
#define RAFT_FLAG_DONE 2u       /* last piece of a snapshot */

typedef struct raft_msg {
    uint8_t type;
    uint8_t flags;
    uint8_t reject;
    uint64_t from, to, term;
    uint64_t index, log_term;   /* meaning per type (above) */
    uint64_t commit;
    uint64_t hint, hint_term;   /* APPEND_RESP rejection hint */
    uint64_t ctx;               /* HEARTBEAT(_RESP) read round */
    raft_entry *entries;        /* APPEND: owned by the message */
    size_t n_entries;
    raft_snapshot_meta snap;    /* SNAP, SNAP_RESP (index) */
    uint64_t offset;            /* SNAP: of data; SNAP_RESP: next expected */
    const uint8_t *data;        /* SNAP: the piece (not owned) */
    size_t len;
} raft_msg;

/* A ReadIndex request that completed: reads issued with ctx are linearizable
 * once the state machine has applied `index`.  index 0 = leadership was lost
 * before it could be confirmed (answer "not leader"). */
typedef struct raft_read {
    uint64_t ctx, index;
} raft_read;

/* A received piece of an incoming snapshot, to be written at offset of the
 * temporary file for snapshot `index` (offset 0 starts a new file). */
typedef struct raft_snap_chunk {
    uint64_t index, term, offset;
    const uint8_t *data;
    size_t len;
    int done;
} raft_snap_chunk;

typedef struct raft_ready {
    /* Soft state, always filled. */
    uint8_t role;
    uint64_t leader;            /* 0 = unknown */
    uint64_t term, vote;
    uint64_t commit;
    int hard_state_changed;     /* persist (term, vote) */

    const raft_snap_chunk *snapshot_chunk;   /* NULL or one piece */
    const raft_snapshot_meta *snapshot;      /* NULL or install this one */

    const raft_entry *entries;  /* persist: truncate at entries[0].index, append */
    size_t n_entries;

    raft_msg *msgs;             /* send after persisting */
    size_t n_msgs;

    const raft_entry *committed;/* apply, in order */
    size_t n_committed;

    const raft_read *reads;
    size_t n_reads;
} raft_ready;

typedef struct raft_config {
    uint64_t id;                /* this server, nonzero */
    uint32_t election_ticks;    /* base election timeout; randomized in [T, 2T) */
    uint32_t heartbeat_ticks;   /* < election_ticks */
    uint32_t max_inflight;      /* pipelined appends per follower (default 16) */
    uint32_t max_batch_entries; /* per append message (default 256) */
    uint64_t max_batch_bytes;   /* per append message (default 1 MiB) */
    uint32_t snapshot_chunk;    /* bytes per InstallSnapshot piece (default 1 MiB) */
    uint32_t max_uncommitted;   /* proposals beyond commit before TS_EBUSY (default 4096) */
    uint64_t seed;              /* for the election timeout PRNG */
} raft_config;

/* What survived on disk: the hard state, the newest snapshot (meta only) and
 * the log entries after it.  A brand-new member of a new group sets
 * bootstrap (and nothing else); a server joining an existing group passes
 * an empty restore. */
typedef struct raft_restore {
    uint64_t term, vote;
    const raft_snapshot_meta *snapshot;   /* NULL = none */
    const raft_entry *entries;            /* starting at snapshot index + 1 */
    size_t n_entries;
    const raft_conf *bootstrap;
} raft_restore;

typedef struct raft raft;

/* Creates a core.  Entries are copied.  0, TS_EINVAL (bad config or a log
 * that does not continue the snapshot), TS_ENOMEM. */
int raft_new(const raft_config *cfg, const raft_restore *rs, raft **out);
void raft_free(raft *r);

/* Input. */
int raft_step(raft *r, const raft_msg *m);     /* 0, or TS_EINVAL for a malformed message */
void raft_tick(raft *r);
/* Appends a command.  0 with *index and *term (the app waits until the entry at
 * index is applied and checks its term: a different term means the proposal
 * was lost, retry).  TS_ENOTLEADER, TS_EBUSY (leadership transfer running,
 * or max_uncommitted entries already wait for a majority: back-pressure),
 * TS_ENOMEM. */
int raft_propose(raft *r, const void *data, size_t len, uint64_t *index, uint64_t *term);

enum raft_conf_op { RAFT_CONF_ADD = 1, RAFT_CONF_REMOVE = 2 };
/* Single-server change.  ADD adds id as a learner; the leader promotes it
 * to voter by itself once it has caught up.  REMOVE removes a voter or a
 * learner.  TS_ENOTLEADER, TS_EBUSY (another change is not yet committed),
 * TS_EEXIST / TS_ENOENT, TS_EINVAL (group full, or removing the last voter). */
int raft_propose_conf(raft *r, int op, uint64_t id, const char *addr, uint64_t *index);
/* Hands leadership to voter id.  TS_ENOTLEADER, TS_ENOENT, TS_EINVAL (self). */
int raft_transfer(raft *r, uint64_t id);
/* Starts a ReadIndex round; the result comes back in a ready (raft_read).
 * TS_ENOTLEADER, TS_ENOMEM. */
int raft_read_index(raft *r, uint64_t ctx);
/* Forces an election now (tests, and a single-server group at start). */
void raft_campaign(raft *r);

/* The caller has an image of the state machine at `index` (<= applied) of
 * size bytes.  Fills *meta (term, configuration as of index), which the
 * caller stores with the image before it calls the core again: from now on
 * the core may stream that snapshot to followers.  Log entries up to
 * index - keep are dropped from memory (the caller drops entries <= index
 * from disk once the snapshot is durable).  0, TS_EINVAL (index beyond
 * applied, below the current snapshot, or unknown). */
int raft_compact(raft *r, uint64_t index, uint64_t size, uint64_t keep,
                 raft_snapshot_meta *meta);

/* Output. */
int raft_has_ready(const raft *r);
void raft_get_ready(raft *r, raft_ready *rd);
void raft_advance(raft *r, const raft_ready *rd);

/* Inspection. */
typedef struct raft_progress_info {
    uint64_t id, match, next;
    uint8_t state;              /* 0 probe, 1 replicate, 2 snapshot */
} raft_progress_info;

typedef struct raft_status {
    uint64_t id, term, vote, leader;
    uint8_t role;
    int is_learner, is_member;
    uint64_t commit, applied, last_index, first_index;
    uint64_t snap_index, snap_term;
    raft_conf conf;
    uint64_t transfer_target;
    raft_progress_info pr[RAFT_MAX_MEMBERS];  /* leader only, conf order */
} raft_status;
void raft_get_status(const raft *r, raft_status *st);
/* Cheap accessors for hot paths (raft_get_status copies the configuration). */
uint8_t raft_role(const raft *r);
uint64_t raft_term(const raft *r);
uint64_t raft_leader(const raft *r);
uint64_t raft_commit_index(const raft *r);
uint64_t raft_applied_index(const raft *r);
uint64_t raft_last_index(const raft *r);
uint64_t raft_term_at(const raft *r, uint64_t index);  /* 0 if unknown */

/* Checks the invariants listed in raft.c; returns NULL or a description of
 * the first one violated (a static string).  Tests call it after every step. */
const char *raft_check_invariants(const raft *r);

/* Names for logs and status output. */
const char *raft_role_name(int role);
const char *raft_msg_type_name(int type);

/* Configuration helpers. */
const raft_member *raft_conf_find(const raft_conf *c, uint64_t id);
uint32_t raft_conf_voters(const raft_conf *c);

/* Codec (metadata/raft/raft_codec.c, common/codec.h): the wire form of
 * messages and the entry form of configurations.  Decoded messages own their
 * entries (raft_msg_release); a SNAP's data points into the input. */
#define RAFT_WIRE_VERSION 1
struct ts_buf;
void raft_msg_encode(const raft_msg *m, struct ts_buf *b);
int raft_msg_decode(const void *p, size_t len, raft_msg *m);   /* 0, TS_EPROTO */
void raft_msg_release(raft_msg *m);
void raft_conf_encode(const raft_conf *c, struct ts_buf *b);
int raft_conf_decode(const void *p, size_t len, raft_conf *c); /* 0, TS_EPROTO */

#endif
