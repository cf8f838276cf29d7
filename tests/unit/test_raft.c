/*
 * Unit tests of the Raft core (metadata/raft/raft.h) with exact states: a
 * small in-memory fixture routes messages (encoded with the real codec)
 * between cores, optionally one at a time or with links cut, and every test
 * asserts terms, roles, indexes and logs after each phase.  The randomized
 * search for schedule bugs is the simulator (tests/sim/raft_sim.c).
 */
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/ts_error.h"
#include "common/util.h"
#include "metadata/raft/raft.h"
#include "tests/unit/tcheck.h"

#define FX_MAX 6

typedef struct fx_msg { int from, to; ts_buf b; } fx_msg;

typedef struct fx {
    raft *r[FX_MAX + 1];          /* by id, 1-based */
    int n;
    int cut[FX_MAX + 1][FX_MAX + 1];
    fx_msg q[4096];
    int nq;
    uint64_t applied[FX_MAX + 1]; /* last applied index */
    uint64_t normal[FX_MAX + 1];  /* NORMAL entries applied */
    uint8_t *blob[FX_MAX + 1];    /* current snapshot image */
    size_t blob_len[FX_MAX + 1];
    ts_buf incoming[FX_MAX + 1];
    int installs[FX_MAX + 1], pieces[FX_MAX + 1];
    uint64_t read_ctx, read_index;
    int hs_writes[FX_MAX + 1];
} fx;

static raft_config fx_cfg(uint64_t id)
{
    raft_config c = {0};
    c.id = id;
    c.election_ticks = 10;
    c.heartbeat_ticks = 2;
    c.seed = 42;
    return c;
}

static raft_conf conf_of(int n)
{
    raft_conf c = {0};
    for (int i = 0; i < n; i++) {
        c.m[i].id = (uint64_t)i + 1;
        c.m[i].role = RAFT_VOTER;
        snprintf(c.m[i].addr, RAFT_ADDR_MAX, "10.0.0.%d:7000", i + 1);
    }
    c.n = (uint32_t)n;
    return c;
}

static void fx_ready(fx *f, int id)
{
    raft *r = f->r[id];
    while (raft_has_ready(r)) {
        raft_ready rd;
        raft_get_ready(r, &rd);
        if (rd.snapshot_chunk) {
            if (rd.snapshot_chunk->offset == 0)
                f->incoming[id].len = 0;
            ts_buf_append(&f->incoming[id], rd.snapshot_chunk->data, rd.snapshot_chunk->len);
            f->pieces[id]++;
        }
        if (rd.snapshot) {
            free(f->blob[id]);
            f->blob[id] = ts_malloc(f->incoming[id].len + 1);
            memcpy(f->blob[id], f->incoming[id].data, f->incoming[id].len);
            f->blob_len[id] = f->incoming[id].len;
            f->applied[id] = rd.snapshot->index;
            f->installs[id]++;
        }
        if (rd.hard_state_changed)
            f->hs_writes[id]++;
        for (size_t i = 0; i < rd.n_msgs; i++) {
            raft_msg *m = &rd.msgs[i];
            if (m->type == RAFT_MSG_SNAP)
                m->data = f->blob[id] + m->offset;
            fx_msg *q = &f->q[f->nq++];
            memset(q, 0, sizeof(*q));
            q->from = id;
            q->to = (int)m->to;
            raft_msg_encode(m, &q->b);
        }
        for (size_t i = 0; i < rd.n_committed; i++) {
            TC_CHECK(rd.committed[i].index == f->applied[id] + 1);
            f->applied[id] = rd.committed[i].index;
            f->normal[id] += rd.committed[i].type == RAFT_ENTRY_NORMAL;
        }
        for (size_t i = 0; i < rd.n_reads; i++) {
            f->read_ctx = rd.reads[i].ctx;
            f->read_index = rd.reads[i].index;
        }
        raft_advance(r, &rd);
        TC_CHECK(raft_check_invariants(r) == NULL);
    }
}

static void fx_init(fx *f, int n)
{
    memset(f, 0, sizeof(*f));
    f->n = n;
    raft_conf c = conf_of(n);
    for (int id = 1; id <= n; id++) {
        raft_config cfg = fx_cfg((uint64_t)id);
        raft_restore rs = {0};
        rs.bootstrap = &c;
        TC_CHECK(raft_new(&cfg, &rs, &f->r[id]) == 0);
        fx_ready(f, id);
    }
}

static void fx_deliver(fx *f);

/* A group of n with server 1 elected (term 2, commit 2). */
static void fx_elected(fx *f, int n)
{
    fx_init(f, n);
    raft_campaign(f->r[1]);
    fx_ready(f, 1);
    fx_deliver(f);
}

static void fx_free(fx *f)
{
    for (int id = 1; id <= FX_MAX; id++) {
        raft_free(f->r[id]);
        free(f->blob[id]);
        ts_buf_free(&f->incoming[id]);
    }
    for (int i = 0; i < f->nq; i++)
        ts_buf_free(&f->q[i].b);
}

/* Delivers queued message i (dropping it if the link is cut). */
static void fx_deliver_at(fx *f, int i)
{
    fx_msg m = f->q[i];
    memmove(&f->q[i], &f->q[i + 1], (size_t)(f->nq - i - 1) * sizeof(fx_msg));
    f->nq--;
    if (!f->cut[m.from][m.to] && f->r[m.to] != NULL) {
        raft_msg rm;
        TC_CHECK(raft_msg_decode(m.b.data, m.b.len, &rm) == 0);
        TC_CHECK(raft_step(f->r[m.to], &rm) == 0);
        raft_msg_release(&rm);
        fx_ready(f, m.to);
    }
    ts_buf_free(&m.b);
}

static void fx_deliver(fx *f)
{
    for (int guard = 0; f->nq > 0 && guard < 100000; guard++)
        fx_deliver_at(f, 0);
}

static void fx_tick(fx *f, int id, int times)
{
    for (int i = 0; i < times; i++) {
        raft_tick(f->r[id]);
        fx_ready(f, id);
    }
}

static raft_status st_of(fx *f, int id)
{
    raft_status st;
    raft_get_status(f->r[id], &st);
    return st;
}

static void fx_propose(fx *f, int id, const char *s)
{
    uint64_t idx, term;
    TC_CHECK(raft_propose(f->r[id], s, strlen(s), &idx, &term) == 0);
    fx_ready(f, id);
}

static void fx_isolate(fx *f, int id, int cut)
{
    for (int j = 1; j <= FX_MAX; j++)
        f->cut[id][j] = f->cut[j][id] = cut;
}

/* ---- tests --------------------------------------------------------------- */

static void test_election(void)
{
    fx f;
    fx_init(&f, 3);
    for (int id = 1; id <= 3; id++) {
        raft_status st = st_of(&f, id);
        TC_CHECK_EQ_U64(st.term, 1);
        TC_CHECK_EQ_U64(st.commit, 1);       /* the bootstrap configuration */
        TC_CHECK_EQ_U64(f.applied[id], 1);
        TC_CHECK_EQ_U64(st.conf.n, 3);
    }
    raft_campaign(f.r[1]);
    fx_ready(&f, 1);
    /* Pre-vote first: no term changed yet. */
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_PRECANDIDATE);
    TC_CHECK_EQ_U64(st_of(&f, 1).term, 1);
    fx_deliver(&f);
    /* The commit index reaches the follower that answered last with the
     * next heartbeat. */
    fx_tick(&f, 1, 2);
    fx_deliver(&f);
    for (int id = 1; id <= 3; id++) {
        raft_status st = st_of(&f, id);
        TC_CHECK_EQ_U64(st.term, 2);
        TC_CHECK_EQ_U64(st.leader, 1);
        TC_CHECK_EQ_U64(st.commit, 2);       /* the leader's no-op */
        TC_CHECK_EQ_U64(st.last_index, 2);
        TC_CHECK_EQ_U64(f.applied[id], 2);
    }
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_LEADER);
    TC_CHECK_EQ_U64(st_of(&f, 2).vote, 1);
    fx_free(&f);
}

static void test_election_by_timeout(void)
{
    fx f;
    fx_init(&f, 3);
    /* Randomized timeouts lie in [10, 20): after 20 ticks someone ran. */
    for (int t = 0; t < 20 && st_of(&f, 1).role != RAFT_LEADER &&
                    st_of(&f, 2).role != RAFT_LEADER && st_of(&f, 3).role != RAFT_LEADER; t++) {
        for (int id = 1; id <= 3; id++)
            fx_tick(&f, id, 1);
        fx_deliver(&f);
    }
    int leaders = 0;
    for (int id = 1; id <= 3; id++)
        leaders += st_of(&f, id).role == RAFT_LEADER;
    TC_CHECK_EQ_U64(leaders, 1);
    TC_CHECK_EQ_U64(st_of(&f, 1).term, 2);
    fx_free(&f);
}

static void test_prevote_keeps_terms(void)
{
    fx f;
    fx_elected(&f, 3);
    fx_isolate(&f, 3, 1);
    /* An isolated follower keeps trying: pre-votes never raise its term. */
    for (int t = 0; t < 100; t++) {
        fx_tick(&f, 3, 1);
        fx_deliver(&f);
    }
    TC_CHECK_EQ_U64(st_of(&f, 3).term, 2);
    TC_CHECK(st_of(&f, 3).role == RAFT_PRECANDIDATE);
    /* Back in the group it does not disrupt the leader. */
    fx_isolate(&f, 3, 0);
    for (int t = 0; t < 4; t++) {
        fx_tick(&f, 1, 1);
        fx_deliver(&f);
    }
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_LEADER);
    TC_CHECK_EQ_U64(st_of(&f, 1).term, 2);
    TC_CHECK_EQ_U64(st_of(&f, 3).leader, 1);
    TC_CHECK_EQ_U64(st_of(&f, 3).role, RAFT_FOLLOWER);
    fx_free(&f);
}

static void test_replication_and_batching(void)
{
    fx f;
    fx_elected(&f, 3);
    /* Ten proposals before anything is delivered: they share one ready
     * (one persist) and one append per follower. */
    uint64_t idx, term;
    for (int i = 0; i < 10; i++)
        TC_CHECK(raft_propose(f.r[1], "x", 1, &idx, &term) == 0);
    TC_CHECK_EQ_U64(idx, 12);
    TC_CHECK_EQ_U64(term, 2);
    int hs_before = f.hs_writes[1];
    fx_ready(&f, 1);
    TC_CHECK_EQ_U64(f.hs_writes[1], hs_before);
    int appends = 0;
    for (int i = 0; i < f.nq; i++) {
        raft_msg m;
        TC_CHECK(raft_msg_decode(f.q[i].b.data, f.q[i].b.len, &m) == 0);
        if (m.type == RAFT_MSG_APPEND && m.n_entries > 0) {
            appends++;
            TC_CHECK_EQ_U64(m.n_entries, 10);
        }
        raft_msg_release(&m);
    }
    TC_CHECK_EQ_U64(appends, 2);
    fx_deliver(&f);
    /* The leader commits and applies once a follower acknowledged; no
     * empty append follows just to carry the new commit index... */
    TC_CHECK_EQ_U64(st_of(&f, 1).commit, 12);
    TC_CHECK_EQ_U64(f.normal[1], 10);
    for (int id = 2; id <= 3; id++) {
        TC_CHECK_EQ_U64(st_of(&f, id).last_index, 12);
        TC_CHECK_EQ_U64(st_of(&f, id).commit, 2);
    }
    /* ...the next heartbeat brings it. */
    fx_tick(&f, 1, 2);
    fx_deliver(&f);
    for (int id = 1; id <= 3; id++) {
        TC_CHECK_EQ_U64(st_of(&f, id).commit, 12);
        TC_CHECK_EQ_U64(f.normal[id], 10);
    }
    /* Under load the next round carries it: a proposal commits the
     * previous ones on the followers with its own append. */
    fx_propose(&f, 1, "y");
    fx_deliver(&f);
    for (int id = 2; id <= 3; id++)
        TC_CHECK_EQ_U64(st_of(&f, id).commit, 12);
    fx_propose(&f, 1, "z");
    fx_deliver(&f);
    for (int id = 2; id <= 3; id++)
        TC_CHECK_EQ_U64(st_of(&f, id).commit, 13);
    fx_free(&f);
}

/* A follower holding entries of a deposed leader gets them replaced. */
static void test_conflicting_suffix_truncated(void)
{
    fx f;
    fx_elected(&f, 3);
    /* Leader 1 appends two entries nobody else sees. */
    fx_isolate(&f, 1, 1);
    fx_propose(&f, 1, "lost-a");
    fx_propose(&f, 1, "lost-b");
    fx_deliver(&f);
    TC_CHECK_EQ_U64(st_of(&f, 1).last_index, 4);
    TC_CHECK_EQ_U64(st_of(&f, 1).commit, 2);
    /* 2 takes over once 2 and 3 stopped hearing from 1 for an election
     * timeout (before that they ignore votes: leader stickiness), and
     * commits its own entry at index 3. */
    for (int t = 0; t < 10; t++) {
        raft_tick(f.r[2]);
        raft_tick(f.r[3]);
    }
    f.nq = 0;
    raft_campaign(f.r[2]);
    fx_ready(&f, 2);
    fx_deliver(&f);
    TC_CHECK_EQ_U64(st_of(&f, 2).role, RAFT_LEADER);
    TC_CHECK_EQ_U64(st_of(&f, 2).term, 3);
    fx_propose(&f, 2, "kept");
    fx_deliver(&f);
    TC_CHECK_EQ_U64(st_of(&f, 2).commit, 4);
    /* 1 returns: its term-2 entries 3..4 are replaced by 2's. */
    fx_isolate(&f, 1, 0);
    for (int t = 0; t < 3; t++) {
        fx_tick(&f, 2, 2);
        fx_deliver(&f);
    }
    raft_status s1 = st_of(&f, 1);
    TC_CHECK_EQ_U64(s1.role, RAFT_FOLLOWER);
    TC_CHECK_EQ_U64(s1.term, 3);
    TC_CHECK_EQ_U64(s1.last_index, 4);
    TC_CHECK_EQ_U64(raft_term_at(f.r[1], 3), 3);
    TC_CHECK_EQ_U64(raft_term_at(f.r[1], 4), 3);
    TC_CHECK_EQ_U64(s1.commit, 4);
    TC_CHECK_EQ_U64(f.normal[1], 1);
    fx_free(&f);
}

/* Figure 8 of the Raft paper: an entry of an earlier term is not committed
 * by counting replicas, only together with an entry of the current term. */
static void test_no_commit_of_old_term_by_count(void)
{
    fx f;
    memset(&f, 0, sizeof(f));
    f.n = 3;
    raft_conf c = conf_of(3);
    ts_buf cb = {0};
    raft_conf_encode(&c, &cb);
    raft_entry l1[3] = {
        {.term = 1, .index = 1, .type = RAFT_ENTRY_CONF, .len = cb.len, .data = (uint8_t *)cb.data},
        {.term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL, .len = 3, .data = (uint8_t *)"old"},
        {.term = 2, .index = 3, .type = RAFT_ENTRY_NORMAL, .len = 3, .data = (uint8_t *)"old"}};
    for (int id = 1; id <= 3; id++) {
        raft_config cfg = fx_cfg((uint64_t)id);
        cfg.max_batch_entries = 1;
        raft_restore rs = {0};
        rs.term = 3;
        rs.entries = l1;
        rs.n_entries = id == 1 ? 3 : 1;
        TC_CHECK(raft_new(&cfg, &rs, &f.r[id]) == 0);
    }
    raft_campaign(f.r[1]);
    fx_ready(&f, 1);
    /* Deliver one message at a time (the election, then one entry per
     * append); until a follower stores the term-4 no-op (index 4), commit
     * must stay at 0 although index 3 (term 2) is on a majority. */
    int saw_old_majority = 0;
    for (int guard = 0; guard < 1000 && f.nq > 0; guard++) {
        fx_deliver_at(&f, 0);
        raft_status s = st_of(&f, 1);
        int has3 = (st_of(&f, 2).last_index >= 3) + (st_of(&f, 3).last_index >= 3);
        int has4 = (st_of(&f, 2).last_index >= 4) + (st_of(&f, 3).last_index >= 4);
        if (has3 > 0 && has4 == 0) {
            saw_old_majority = 1;
            TC_CHECK_EQ_U64(s.commit, 0);
        }
    }
    TC_CHECK(saw_old_majority);
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_LEADER);
    TC_CHECK_EQ_U64(st_of(&f, 1).term, 4);
    TC_CHECK_EQ_U64(st_of(&f, 1).commit, 4);
    ts_buf_free(&cb);
    fx_free(&f);
}

static void test_snapshot_in_pieces(void)
{
    fx f;
    fx_elected(&f, 3);
    fx_isolate(&f, 3, 1);
    for (int i = 0; i < 20; i++)
        fx_propose(&f, 1, "entry");
    fx_deliver(&f);
    TC_CHECK_EQ_U64(st_of(&f, 1).commit, 22);
    /* The leader snapshots at 22 and forgets its log. */
    f.blob_len[1] = 1000;
    f.blob[1] = ts_malloc(1000);
    for (int i = 0; i < 1000; i++)
        f.blob[1][i] = (uint8_t)(i * 7);
    raft_snapshot_meta meta;
    TC_CHECK(raft_compact(f.r[1], 22, 1000, 0, &meta) == 0);
    TC_CHECK_EQ_U64(meta.index, 22);
    TC_CHECK_EQ_U64(meta.term, 2);
    TC_CHECK_EQ_U64(meta.conf.n, 3);
    TC_CHECK_EQ_U64(st_of(&f, 1).first_index, 23);
    /* 3 comes back having lost its disk: only the snapshot can help it. */
    raft_free(f.r[3]);
    raft_config cfg = fx_cfg(3);
    raft_restore rs = {0};
    raft_conf c = conf_of(3);
    rs.bootstrap = &c;
    TC_CHECK(raft_new(&cfg, &rs, &f.r[3]) == 0);
    f.applied[3] = 0;
    fx_ready(&f, 3);
    fx_isolate(&f, 3, 0);
    for (int t = 0; t < 10; t++) {
        fx_tick(&f, 1, 1);
        fx_deliver(&f);
    }
    TC_CHECK_EQ_U64(f.installs[3], 1);
    TC_CHECK_EQ_U64(f.pieces[3], 1);     /* 1000 bytes fit one 1 MiB piece */
    TC_CHECK_EQ_U64(f.blob_len[3], 1000);
    TC_CHECK(memcmp(f.blob[3], f.blob[1], 1000) == 0);
    TC_CHECK_EQ_U64(st_of(&f, 3).snap_index, 22);
    fx_propose(&f, 1, "after");
    fx_deliver(&f);
    fx_tick(&f, 1, 2);      /* the heartbeat carries the commit */
    fx_deliver(&f);
    TC_CHECK_EQ_U64(st_of(&f, 3).commit, 23);
    TC_CHECK_EQ_U64(f.applied[3], 23);
    fx_free(&f);
}

static void test_snapshot_pieces_count(void)
{
    /* A 1000-byte snapshot in 256-byte pieces to a server added after the
     * leader compacted its log: it joins as a learner, catches up by the
     * snapshot, and is promoted. */
    fx f;
    memset(&f, 0, sizeof(f));
    raft_conf c = conf_of(1);
    raft_config cfg = fx_cfg(1);
    cfg.snapshot_chunk = 256;
    raft_restore rs = {0};
    rs.bootstrap = &c;
    TC_CHECK(raft_new(&cfg, &rs, &f.r[1]) == 0);
    raft_campaign(f.r[1]);
    fx_ready(&f, 1);
    fx_propose(&f, 1, "a");
    TC_CHECK_EQ_U64(st_of(&f, 1).commit, 3);
    f.blob_len[1] = 1000;
    f.blob[1] = ts_malloc(1000);
    for (int i = 0; i < 1000; i++)
        f.blob[1][i] = (uint8_t)(i * 13);
    raft_snapshot_meta meta;
    TC_CHECK(raft_compact(f.r[1], 3, 1000, 0, &meta) == 0);
    raft_config cfg2 = fx_cfg(2);
    raft_restore empty = {0};
    TC_CHECK(raft_new(&cfg2, &empty, &f.r[2]) == 0);
    uint64_t idx;
    TC_CHECK(raft_propose_conf(f.r[1], RAFT_CONF_ADD, 2, "10.0.0.2:7000", &idx) == 0);
    TC_CHECK_EQ_U64(idx, 4);
    fx_ready(&f, 1);
    for (int t = 0; t < 10; t++) {
        fx_tick(&f, 1, 1);
        fx_deliver(&f);
    }
    TC_CHECK_EQ_U64(f.pieces[2], 4);
    TC_CHECK_EQ_U64(f.installs[2], 1);
    TC_CHECK(f.blob_len[2] == 1000 && memcmp(f.blob[2], f.blob[1], 1000) == 0);
    /* Entries 4 (learner added) and 5 (promotion) follow by appends. */
    TC_CHECK_EQ_U64(st_of(&f, 2).commit, 5);
    TC_CHECK_EQ_U64(st_of(&f, 2).conf.n, 2);
    TC_CHECK_EQ_U64(st_of(&f, 1).conf.m[1].role, RAFT_VOTER);
    fx_free(&f);
}

static void test_membership_learner_promotion_and_removal(void)
{
    fx f;
    fx_elected(&f, 3);
    raft_config cfg = fx_cfg(4);
    raft_restore rs = {0};
    TC_CHECK(raft_new(&cfg, &rs, &f.r[4]) == 0);
    uint64_t idx;
    TC_CHECK(raft_propose_conf(f.r[1], RAFT_CONF_ADD, 4, "10.0.0.4:7000", &idx) == 0);
    TC_CHECK_EQ_U64(idx, 3);
    /* A second change waits for the first to commit. */
    TC_CHECK(raft_propose_conf(f.r[1], RAFT_CONF_REMOVE, 3, NULL, &idx) == TS_EBUSY);
    raft_status s = st_of(&f, 1);
    TC_CHECK_EQ_U64(s.conf.n, 4);
    TC_CHECK_EQ_U64(s.conf.m[3].role, RAFT_LEARNER);
    fx_ready(&f, 1);
    fx_deliver(&f);
    for (int t = 0; t < 4; t++) {
        fx_tick(&f, 1, 2);
        fx_deliver(&f);
    }
    /* Caught up: promoted to voter by the leader itself (entry 4). */
    s = st_of(&f, 1);
    TC_CHECK_EQ_U64(s.conf.m[3].role, RAFT_VOTER);
    TC_CHECK_EQ_U64(s.commit, 4);
    TC_CHECK_EQ_U64(st_of(&f, 4).conf.n, 4);
    TC_CHECK_EQ_U64(st_of(&f, 4).commit, 4);
    TC_CHECK(!st_of(&f, 4).is_learner);
    TC_CHECK(raft_propose_conf(f.r[1], RAFT_CONF_ADD, 4, "x:1", &idx) == TS_EEXIST);
    TC_CHECK(raft_propose_conf(f.r[1], RAFT_CONF_REMOVE, 2, NULL, &idx) == 0);
    fx_ready(&f, 1);
    fx_deliver(&f);
    s = st_of(&f, 1);
    TC_CHECK_EQ_U64(s.conf.n, 3);
    TC_CHECK(raft_conf_find(&s.conf, 2) == NULL);
    TC_CHECK_EQ_U64(s.commit, 5);
    /* The removed server never learns it was removed (the leader stopped
     * sending to it), so it keeps asking for pre-votes -- which neither
     * raise its term nor disturb the leader. */
    for (int t = 0; t < 60; t++) {
        fx_tick(&f, 1, 1);
        fx_tick(&f, 2, 1);
        fx_deliver(&f);
    }
    TC_CHECK_EQ_U64(st_of(&f, 2).term, 2);
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_LEADER);
    TC_CHECK_EQ_U64(st_of(&f, 1).term, 2);
    fx_free(&f);
}

static void test_leader_removes_itself(void)
{
    fx f;
    fx_elected(&f, 3);
    uint64_t idx;
    TC_CHECK(raft_propose_conf(f.r[1], RAFT_CONF_REMOVE, 1, NULL, &idx) == 0);
    fx_ready(&f, 1);
    fx_deliver(&f);
    /* Once committed, 1 steps down and hands over with TIMEOUT_NOW. */
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_FOLLOWER);
    int leaders = (st_of(&f, 2).role == RAFT_LEADER) + (st_of(&f, 3).role == RAFT_LEADER);
    TC_CHECK_EQ_U64(leaders, 1);
    fx_free(&f);
}

static void test_transfer(void)
{
    fx f;
    fx_elected(&f, 3);
    TC_CHECK(raft_transfer(f.r[1], 1) == TS_EINVAL);
    TC_CHECK(raft_transfer(f.r[1], 9) == TS_ENOENT);
    TC_CHECK(raft_transfer(f.r[2], 3) == TS_ENOTLEADER);
    TC_CHECK(raft_transfer(f.r[1], 3) == 0);
    uint64_t idx, term;
    TC_CHECK(raft_propose(f.r[1], "x", 1, &idx, &term) == TS_EBUSY);
    fx_ready(&f, 1);
    fx_deliver(&f);
    TC_CHECK_EQ_U64(st_of(&f, 3).role, RAFT_LEADER);
    TC_CHECK_EQ_U64(st_of(&f, 3).term, 3);
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_FOLLOWER);
    TC_CHECK_EQ_U64(st_of(&f, 1).leader, 3);
    fx_free(&f);
}

static void test_read_index(void)
{
    fx f;
    fx_init(&f, 3);
    TC_CHECK(raft_read_index(f.r[1], 7) == TS_ENOTLEADER);
    raft_campaign(f.r[1]);
    fx_ready(&f, 1);
    fx_deliver(&f);
    fx_propose(&f, 1, "w");
    fx_deliver(&f);
    TC_CHECK(raft_read_index(f.r[1], 7) == 0);
    fx_ready(&f, 1);
    TC_CHECK_EQ_U64(f.read_ctx, 0);      /* needs a majority's heartbeat answer */
    fx_deliver(&f);
    TC_CHECK_EQ_U64(f.read_ctx, 7);
    TC_CHECK_EQ_U64(f.read_index, 3);
    /* A leader cut off cannot confirm reads; when it steps down (check
     * quorum) the read fails with index 0. */
    f.read_ctx = 0;
    fx_isolate(&f, 1, 1);
    TC_CHECK(raft_read_index(f.r[1], 8) == 0);
    fx_ready(&f, 1);
    fx_deliver(&f);
    TC_CHECK_EQ_U64(f.read_ctx, 0);
    fx_tick(&f, 1, 25);
    TC_CHECK_EQ_U64(st_of(&f, 1).role, RAFT_FOLLOWER);
    TC_CHECK_EQ_U64(f.read_ctx, 8);
    TC_CHECK_EQ_U64(f.read_index, 0);
    fx_free(&f);
}

static void test_restart_from_disk_state(void)
{
    /* A restart with entries of a newer term than the stored term (crash
     * between the two writes) adopts that term without a vote. */
    raft_conf c = conf_of(1);
    ts_buf cb = {0};
    raft_conf_encode(&c, &cb);
    raft_entry e[2] = {
        {.term = 1, .index = 1, .type = RAFT_ENTRY_CONF, .len = cb.len, .data = (uint8_t *)cb.data},
        {.term = 5, .index = 2, .type = RAFT_ENTRY_NOOP}};
    raft_config cfg = fx_cfg(1);
    raft_restore rs = {0};
    rs.term = 3;
    rs.vote = 1;
    rs.entries = e;
    rs.n_entries = 2;
    raft *r = NULL;
    TC_CHECK(raft_new(&cfg, &rs, &r) == 0);
    raft_status st;
    raft_get_status(r, &st);
    TC_CHECK_EQ_U64(st.term, 5);
    TC_CHECK_EQ_U64(st.vote, 0);
    TC_CHECK_EQ_U64(st.last_index, 2);
    TC_CHECK_EQ_U64(st.commit, 0);
    /* A single voter elects itself and commits everything. */
    raft_campaign(r);
    raft_get_status(r, &st);
    TC_CHECK_EQ_U64(st.role, RAFT_LEADER);
    raft_ready rd;
    raft_get_ready(r, &rd);
    TC_CHECK(rd.hard_state_changed);
    TC_CHECK_EQ_U64(rd.n_entries, 1);
    raft_advance(r, &rd);
    raft_get_status(r, &st);
    TC_CHECK_EQ_U64(st.commit, 3);
    raft_free(r);
    /* A log with a gap is refused. */
    e[1].index = 3;
    TC_CHECK(raft_new(&cfg, &rs, &r) == TS_EINVAL);
    ts_buf_free(&cb);
}

static void test_codec_vectors(void)
{
    raft_msg m = {0};
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = 3;
    m.index = 4;
    m.log_term = 2;
    m.commit = 4;
    raft_entry e = {.term = 3, .index = 5, .type = RAFT_ENTRY_NORMAL, .len = 2, .data = (uint8_t *)"hi"};
    m.entries = &e;
    m.n_entries = 1;
    ts_buf b = {0};
    raft_msg_encode(&m, &b);
    static const uint8_t want[] = {
        1, 5, 0, 0,                         /* version, type, flags, reject */
        1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
        4, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0,                         /* one entry */
        3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 'h', 'i'};
    TC_CHECK_EQ_U64(b.len, sizeof(want));
    TC_CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    raft_msg d;
    TC_CHECK(raft_msg_decode(b.data, b.len, &d) == 0);
    TC_CHECK_EQ_U64(d.n_entries, 1);
    TC_CHECK(d.entries[0].len == 2 && memcmp(d.entries[0].data, "hi", 2) == 0);
    raft_msg_release(&d);
    /* Every truncation and a trailing byte are refused. */
    for (size_t n = 0; n < b.len; n++)
        TC_CHECK(raft_msg_decode(b.data, n, &d) == TS_EPROTO);
    ts_buf_append(&b, "", 1);
    TC_CHECK(raft_msg_decode(b.data, b.len, &d) == TS_EPROTO);
    /* A huge entry count does not allocate. */
    uint8_t evil[sizeof(want)];
    memcpy(evil, want, sizeof(want));
    evil[76] = 0xff;
    evil[77] = 0xff;
    evil[78] = 0x0f;
    TC_CHECK(raft_msg_decode(evil, sizeof(evil), &d) == TS_EPROTO);
    ts_buf_free(&b);
    /* Configurations. */
    raft_conf c = conf_of(3), c2;
    c.m[2].role = RAFT_LEARNER;
    ts_buf cb = {0};
    raft_conf_encode(&c, &cb);
    TC_CHECK(raft_conf_decode(cb.data, cb.len, &c2) == 0);
    TC_CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
    cb.data[1 + 4 + 8] = 9;     /* bad role */
    TC_CHECK(raft_conf_decode(cb.data, cb.len, &c2) == TS_EPROTO);
    ts_buf_free(&cb);
}

int main(void)
{
    TC_RUN(test_election);
    TC_RUN(test_election_by_timeout);
    TC_RUN(test_prevote_keeps_terms);
    TC_RUN(test_replication_and_batching);
    TC_RUN(test_conflicting_suffix_truncated);
    TC_RUN(test_no_commit_of_old_term_by_count);
    TC_RUN(test_snapshot_in_pieces);
    TC_RUN(test_snapshot_pieces_count);
    TC_RUN(test_membership_learner_promotion_and_removal);
    TC_RUN(test_leader_removes_itself);
    TC_RUN(test_transfer);
    TC_RUN(test_read_index);
    TC_RUN(test_restart_from_disk_state);
    TC_RUN(test_codec_vectors);
    TC_DONE("test_raft");
}
