/*
 * Unit tests of the Raft driver (metadata/raft/raft_node.h) with real
 * threads, clocks and disks: three servers in one process whose transport
 * is a direct call (with a switch to cut a server off).  A leader is
 * elected; concurrent proposals are all applied everywhere, in one order,
 * sharing fsyncs (group commit); a follower answers "not leader" with the
 * leader's address; the leader is stopped and the other two carry on; the
 * stopped server restarts from its directory and catches up.  With lease
 * reads, a leader cut off from its followers still answers reads until its
 * lease runs out, and only then refuses them.  raft_node_receive_wait()
 * returns only once the message's answer has been handed to ops.send.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "metadata/raft/raft_node.h"
#include "metadata/raft/raft_storage.h"
#include "tests/unit/tcheck.h"
#include "tests/unit/tdir.h"

#define N 3          /* the initial group; server N + 1 joins later */
#define SLOTS (N + 1)

typedef struct server {
    int id;
    raft_node *node;
    char *dir;
    int cut;
    /* state machine: applied commands, a running hash (driver thread only) */
    uint64_t applied, commands, hash;
    int restores, gaps;
    uint64_t sent;              /* messages this server sent (under net_mu) */
} server;

static server sv[SLOTS + 1];
static int lease_reads;         /* given to the servers started next */
static int tick_ms = 10;
static pthread_mutex_t net_mu = PTHREAD_MUTEX_INITIALIZER;
/* test_receive_wait: messages to this server go through
 * raft_node_receive_wait(), and each wait is checked to end only after the
 * server answered (under net_mu). */
static int wait_for;
static uint64_t waits, waits_answered, waits_failed;

static uint64_t sent_by(int id)
{
    pthread_mutex_lock(&net_mu);
    uint64_t n = sv[id].sent;
    pthread_mutex_unlock(&net_mu);
    return n;
}

/* Delivers to `to` with raft_node_receive_wait(), outside net_mu: the
 * receiver's answers come through net_send while the sender waits. */
static void deliver_and_wait(raft_node *dst, int to, const void *buf, size_t len)
{
    uint64_t before = sent_by(to);
    int rc = raft_node_receive_wait(dst, buf, len, 2000);
    uint64_t after = sent_by(to);
    pthread_mutex_lock(&net_mu);
    waits++;
    waits_failed += rc != 0;
    /* Every message a leader sends a follower here (append, heartbeat)
     * is answered, so the answer must be out when the wait ends. */
    waits_answered += rc == 0 && after > before;
    pthread_mutex_unlock(&net_mu);
}

static void net_send(void *arg, uint64_t to, const char *addr, const void *buf, size_t len)
{
    server *from = arg;
    pthread_mutex_lock(&net_mu);
    raft_node *dst = (to >= 1 && to <= SLOTS && !sv[to].cut && !from->cut) ? sv[to].node : NULL;
    from->sent++;
    int wait = dst != NULL && (int)to == wait_for;
    if (dst != NULL && !wait)
        raft_node_receive(dst, buf, len);
    pthread_mutex_unlock(&net_mu);
    if (wait)
        deliver_and_wait(dst, (int)to, buf, len);
}

static int sm_apply(void *arg, const raft_entry *e, void *result)
{
    server *s = arg;
    if (e->index != s->applied + 1)
        s->gaps++;      /* entries must be applied in order, without holes */
    s->applied = e->index;
    if (e->type == RAFT_ENTRY_NORMAL) {
        s->commands++;
        for (size_t i = 0; i < e->len; i++)
            s->hash = s->hash * 131 + e->data[i];
        s->hash = s->hash * 31 + e->index;
    }
    if (result != NULL)
        memcpy(result, &e->index, sizeof(e->index));
    return 0;
}

/* Image: applied, commands, hash, then padding so that it takes several
 * InstallSnapshot pieces. */
static int sm_snapshot(void *arg, ts_buf *out)
{
    server *s = arg;
    ts_buf_append(out, &s->applied, 8);
    ts_buf_append(out, &s->commands, 8);
    ts_buf_append(out, &s->hash, 8);
    for (int i = 0; i < 100; i++)
        ts_buf_append(out, "p", 1);
    return 0;
}

static int sm_restore(void *arg, uint64_t index, const void *img, size_t len)
{
    (void)index;
    server *s = arg;
    if (len != 124)
        return TS_ECORRUPT;
    memcpy(&s->applied, img, 8);
    memcpy(&s->commands, (const char *)img + 8, 8);
    memcpy(&s->hash, (const char *)img + 16, 8);
    s->restores++;
    return 0;
}

static raft_conf group(void)
{
    raft_conf c = {0};
    for (int i = 0; i < N; i++) {
        c.m[i].id = (uint64_t)i + 1;
        c.m[i].role = RAFT_VOTER;
        snprintf(c.m[i].addr, RAFT_ADDR_MAX, "127.0.0.1:%d", 7000 + i + 1);
    }
    c.n = N;
    return c;
}

static int start(int id)
{
    raft_conf c = group();
    raft_node_opts o = {0};
    o.dir = sv[id].dir;
    o.id = (uint64_t)id;
    o.bootstrap = id <= N ? &c : NULL;     /* a later server joins empty */
    o.snapshot_every = 50;
    o.snapshot_chunk = 16;
    o.ops.snapshot = sm_snapshot;
    o.ops.restore = sm_restore;
    o.tick_ms = tick_ms;
    o.lease_reads = lease_reads;
    o.fsync = 1;
    o.seed = (uint64_t)id * 7919;
    o.ops.send = net_send;
    o.ops.apply = sm_apply;
    o.ops.arg = &sv[id];
    sv[id].applied = sv[id].commands = sv[id].hash = 0;   /* rebuilt by replay */
    ts_error err;
    raft_node *n = NULL;
    int rc = raft_node_start(&o, &n, &err);
    if (rc != 0)
        fprintf(stderr, "  start %d: %s\n", id, err.msg);
    pthread_mutex_lock(&net_mu);
    sv[id].node = n;
    pthread_mutex_unlock(&net_mu);
    return rc;
}

static void stop(int id)
{
    pthread_mutex_lock(&net_mu);
    raft_node *n = sv[id].node;
    sv[id].node = NULL;
    pthread_mutex_unlock(&net_mu);
    raft_node_stop(n);
}

/* The id of the leader every running server agrees on, waiting up to 5 s. */
static int wait_leader(void)
{
    for (int t = 0; t < 500; t++) {
        int leader = 0, agree = 1;
        for (int id = 1; id <= N; id++) {
            if (sv[id].node == NULL || sv[id].cut)
                continue;
            raft_status st;
            raft_node_status(sv[id].node, &st);
            if (st.role == RAFT_LEADER)
                leader = id;
            if (st.leader == 0)
                agree = 0;
        }
        if (leader != 0 && agree)
            return leader;
        ts_sleep_ms(10);
    }
    return 0;
}

struct worker { int leader, count, ok; };

static void *propose_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->count; i++) {
        char cmd[32], leader[RAFT_ADDR_MAX];
        snprintf(cmd, sizeof(cmd), "cmd-%d-%p", i, (void *)w);
        uint64_t index = 0;
        ts_error err;
        if (raft_node_propose(sv[w->leader].node, cmd, strlen(cmd), &index, sizeof(index), 5000,
                              leader, &err) == 0 && index > 0)
            w->ok++;
    }
    return NULL;
}

/* Waits until b has applied everything a has applied so far.  (The cached
 * status lags the state machine a little: a proposer is woken as soon as
 * its entry is applied, before the driver refreshes the status, so the
 * target is taken from a's state machine itself.) */
static int wait_caught_up(int a, int b)
{
    uint64_t target = __atomic_load_n(&sv[a].applied, __ATOMIC_ACQUIRE);
    for (int t = 0; t < 500; t++) {
        raft_status sb;
        raft_node_status(sv[b].node, &sb);
        if (sb.applied >= target)
            return 1;
        ts_sleep_ms(10);
    }
    return 0;
}

static void test_group(void)
{
    for (int id = 1; id <= N; id++) {
        char name[8];
        snprintf(name, sizeof(name), "s%d", id);
        sv[id].id = id;
        sv[id].dir = tdir_fresh("raftnode", name);
        TC_CHECK(start(id) == 0);
    }
    int leader = wait_leader();
    TC_CHECK(leader != 0);
    if (leader == 0)
        return;

    /* 8 clients x 40 commands at once. */
    pthread_t th[8];
    struct worker wk[8];
    for (int i = 0; i < 8; i++) {
        wk[i] = (struct worker){leader, 40, 0};
        TC_CHECK(pthread_create(&th[i], NULL, propose_many, &wk[i]) == 0);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += wk[i].ok;
    }
    TC_CHECK_EQ_U64(ok, 320);
    raft_storage_stats ss;
    raft_node_storage_stats(sv[leader].node, &ss);
    fprintf(stderr, "  group commit: %" PRIu64 " entries in %" PRIu64 " fsyncs\n",
            ss.entries_written, ss.entry_syncs);
    TC_CHECK(ss.entry_syncs < ss.entries_written);
    for (int id = 1; id <= N; id++)
        if (id != leader)
            TC_CHECK(wait_caught_up(leader, id));
    for (int id = 1; id <= N; id++) {
        TC_CHECK_EQ_U64(sv[id].commands, 320);
        TC_CHECK_EQ_U64(sv[id].hash, sv[leader].hash);
        TC_CHECK_EQ_U64(sv[id].gaps, 0);
    }

    /* A follower redirects. */
    int follower = leader % N + 1;
    char where[RAFT_ADDR_MAX] = "";
    ts_error err;
    TC_CHECK(raft_node_propose(sv[follower].node, "x", 1, NULL, 0, 1000, where, &err) ==
             TS_ENOTLEADER);
    char want[RAFT_ADDR_MAX];
    snprintf(want, sizeof(want), "127.0.0.1:%d", 7000 + leader);
    TC_CHECK_STR(where, want);
    TC_CHECK(raft_node_read_barrier(sv[leader].node, 2000, where, &err) == 0);
    TC_CHECK(raft_node_read_barrier(sv[follower].node, 2000, where, &err) == TS_ENOTLEADER);

    /* The leader goes away; the two others elect a new one and go on. */
    stop(leader);
    int next = wait_leader();
    TC_CHECK(next != 0 && next != leader);
    if (next != 0) {
        struct worker w = {next, 10, 0};
        propose_many(&w);
        TC_CHECK_EQ_U64(w.ok, 10);
    }
    /* It comes back from its directory and catches up. */
    TC_CHECK(start(leader) == 0);
    if (next != 0) {
        TC_CHECK(wait_caught_up(next, leader));
        TC_CHECK_EQ_U64(sv[leader].commands, 330);
        TC_CHECK_EQ_U64(sv[leader].hash, sv[next].hash);
    }
    /* Cut off, the old leader cannot win writes; the majority can. */
    if (next != 0) {
        sv[next].cut = 1;
        int third = wait_leader();
        TC_CHECK(third != 0 && third != next);
        TC_CHECK(raft_node_propose(sv[next].node, "minority", 8, NULL, 0, 1000, where, &err) != 0);
        sv[next].cut = 0;
    }
    /* A fourth server with an empty directory joins as a learner, gets the
     * state by an InstallSnapshot in pieces, and is promoted. */
    sv[N + 1].id = N + 1;
    sv[N + 1].dir = tdir_fresh("raftnode", "s4");
    TC_CHECK(start(N + 1) == 0);
    int lead = wait_leader();
    TC_CHECK(lead != 0);
    if (lead != 0) {
        TC_CHECK(raft_node_change(sv[lead].node, RAFT_CONF_ADD, N + 1, "127.0.0.1:7004", 5000,
                                  where, &err) == 0);
        int promoted = 0;
        for (int t = 0; t < 500 && !promoted; t++) {
            raft_status st;
            raft_node_status(sv[lead].node, &st);
            const raft_member *m = raft_conf_find(&st.conf, N + 1);
            promoted = m != NULL && m->role == RAFT_VOTER;
            ts_sleep_ms(10);
        }
        TC_CHECK(promoted);
        struct worker w = {lead, 5, 0};
        propose_many(&w);
        TC_CHECK_EQ_U64(w.ok, 5);
        TC_CHECK(wait_caught_up(lead, N + 1));
        TC_CHECK_EQ_U64(sv[N + 1].restores, 1);
        TC_CHECK_EQ_U64(sv[N + 1].gaps, 0);
        TC_CHECK_EQ_U64(sv[lead].gaps, 0);
        TC_CHECK_EQ_U64(sv[N + 1].commands, sv[lead].commands);
        TC_CHECK_EQ_U64(sv[N + 1].hash, sv[lead].hash);
        /* Snapshots were taken and the log compacted. */
        raft_status st;
        raft_node_status(sv[lead].node, &st);
        TC_CHECK(st.snap_index > 0);
    }
    for (int id = 1; id <= SLOTS; id++) {
        stop(id);
        tdir_remove(sv[id].dir);
    }
}

static void test_lease(void)
{
    lease_reads = 1;
    tick_ms = 20;   /* lease: (10 - 2) ticks = 160 ms */
    for (int id = 1; id <= N; id++) {
        char name[8];
        snprintf(name, sizeof(name), "l%d", id);
        sv[id].id = id;
        sv[id].cut = 0;
        sv[id].dir = tdir_fresh("raftlease", name);
        TC_CHECK(start(id) == 0);
    }
    int leader = wait_leader();
    TC_CHECK(leader != 0);
    if (leader != 0) {
        ts_error err;
        char where[RAFT_ADDR_MAX];
        struct worker w = {leader, 3, 0};
        propose_many(&w);
        TC_CHECK_EQ_U64(w.ok, 3);
        int64_t before = ts_mono_ms();
        TC_CHECK(raft_node_read_barrier(sv[leader].node, 2000, where, &err) == 0);
        /* No round can succeed from here on: the followers hear nothing. */
        for (int id = 1; id <= N; id++)
            if (id != leader)
                sv[id].cut = 1;
        int rc = raft_node_read_barrier(sv[leader].node, 20, where, &err);
        if (ts_mono_ms() - before < 80)
            TC_CHECK(rc == 0);      /* within the lease: answered without a round */
        else
            fprintf(stderr, "  (machine too slow to check the lease's first half)\n");
        int64_t deadline = ts_mono_ms() + 3000;
        while (rc == 0 && ts_mono_ms() < deadline)
            rc = raft_node_read_barrier(sv[leader].node, 20, where, &err);
        int64_t refused_after = ts_mono_ms() - before;
        TC_CHECK(rc != 0);          /* the lease ran out: no more reads */
        TC_CHECK(refused_after >= 100);
        fprintf(stderr, "  lease: reads refused %lld ms after the last confirmed round\n",
                (long long)refused_after);
    }
    for (int id = 1; id <= N; id++) {
        sv[id].cut = 0;
        stop(id);
        tdir_remove(sv[id].dir);
    }
    lease_reads = 0;
    tick_ms = 10;
}

/* Messages from the leader to one follower are delivered with
 * raft_node_receive_wait(): each wait ends with the follower's answer
 * already sent, and the group commits as usual. */
static void test_receive_wait(void)
{
    for (int id = 1; id <= N; id++) {
        char name[8];
        snprintf(name, sizeof(name), "w%d", id);
        sv[id].id = id;
        sv[id].cut = 0;
        sv[id].dir = tdir_fresh("raftwait", name);
        TC_CHECK(start(id) == 0);
    }
    int leader = wait_leader();
    TC_CHECK(leader != 0);
    if (leader != 0) {
        pthread_mutex_lock(&net_mu);
        wait_for = leader % N + 1;
        waits = waits_answered = waits_failed = 0;
        pthread_mutex_unlock(&net_mu);
        struct worker w = {leader, 30, 0};
        propose_many(&w);
        TC_CHECK_EQ_U64(w.ok, 30);
        pthread_mutex_lock(&net_mu);
        wait_for = 0;
        fprintf(stderr, "  receive_wait: %" PRIu64 " waits, %" PRIu64 " answered, %" PRIu64
                " failed\n", waits, waits_answered, waits_failed);
        TC_CHECK(waits >= 30);
        TC_CHECK_EQ_U64(waits_failed, 0);
        TC_CHECK_EQ_U64(waits_answered, waits);
        pthread_mutex_unlock(&net_mu);
        /* The follower's handler threads answered by driving the round
         * themselves (the driver thread was idle at least sometimes). */
        uint64_t by_handlers = 0, by_driver = 0;
        raft_node_round_stats(sv[leader % N + 1].node, &by_handlers, &by_driver);
        fprintf(stderr, "  follower rounds: %" PRIu64 " in handlers, %" PRIu64 " in the driver\n",
                by_handlers, by_driver);
        TC_CHECK(by_handlers > 0);
        TC_CHECK(wait_caught_up(leader, leader % N + 1));
    }
    for (int id = 1; id <= N; id++) {
        stop(id);
        tdir_remove(sv[id].dir);
    }
}

int main(void)
{
    TC_RUN(test_group);
    TC_RUN(test_receive_wait);
    TC_RUN(test_lease);
    TC_DONE("test_raft_node");
}
