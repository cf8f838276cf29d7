/*
 * Private to the Raft core (raft.c, raft_inspect.c): the core's state.
 * Nothing outside metadata/raft/raft*.c includes this; the contract is
 * raft.h.  The invariants over these fields are listed in raft.c and
 * checked by raft_check_invariants (raft_inspect.c).
 */
#ifndef TS_META_RAFT_INT_H
#define TS_META_RAFT_INT_H

#include "metadata/raft/raft.h"

#define RAFT_MAX_INFLIGHT 64

enum pr_state { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

/* What the leader knows of one member's log (slot i of prs matches conf.m[i]). */
typedef struct progress {
    uint64_t id;
    uint64_t match, next;
    uint8_t state;
    int probe_sent;             /* PROBE: one append out, wait for its answer */
    uint64_t inflight[RAFT_MAX_INFLIGHT];  /* REPLICATE: last index of each append out */
    uint32_t in_start, in_count;
    int active;                 /* heard from during this check-quorum period */
    uint64_t acked_seq;         /* highest read round it acknowledged */
    uint64_t snap_index, snap_offset;      /* SNAPSHOT: transfer position */
    int snap_waiting;           /* a piece is out, waiting for its answer */
    int vote;                   /* election: 0 none, 1 granted, -1 rejected */
} progress;

typedef struct pending_read {
    uint64_t ctx, index, seq;   /* seq 0: waits for the first commit of the term */
} pending_read;

struct raft {
    raft_config cfg;
    uint64_t id;
    uint64_t term, vote, leader;
    uint8_t role;
    int hs_dirty;

    raft_entry *ents;
    size_t n, cap;
    uint64_t first, prev_term;
    uint64_t stable, unstable;
    uint64_t commit, applied;

    raft_snapshot_meta snap;          /* our newest snapshot (index 0: none) */
    raft_snapshot_meta install;       /* received, to install in the next ready */
    int install_pending;
    raft_snap_chunk chunk;
    uint8_t *chunk_buf;
    int chunk_pending;
    int recv_active;
    uint64_t recv_index, recv_offset;

    raft_conf conf;
    uint64_t conf_index;
    uint64_t pending_conf_index;
    progress prs[RAFT_MAX_MEMBERS];

    uint32_t election_elapsed, heartbeat_elapsed, rand_timeout;
    uint64_t rng;
    uint64_t transfer_target;
    uint32_t transfer_elapsed;

    pending_read *rp;
    size_t n_rp, cap_rp;
    uint64_t read_seq;
    raft_read *ro;
    size_t n_ro, cap_ro;

    raft_msg *msgs;
    size_t n_msgs, cap_msgs;

    uint64_t rd_last, rd_applied;     /* what the current ready handed out */
    int bcast_pending;                /* proposals not yet sent to followers */
};

static inline uint64_t last_index(const raft *r) { return r->first + r->n - 1; }

/* The configuration in force at index (the latest CONF entry <= index, else
 * the snapshot's) and the index that set it. */
void raft_conf_at(const raft *r, uint64_t index, raft_conf *out, uint64_t *at);

#endif
