/*
 * Three Raft servers in one process talking over real HTTP on loopback
 * (metadata/raft/raft_transport.h): they elect a leader, replicate
 * commands, and survive the leader's HTTP server and node going away; a
 * fourth server that starts empty joins (it answers the leader through the
 * address learned from the `from` argument) and catches up.  Answers
 * travel back on the responses between servers of this version, and a
 * group with a server that does not give or ask for them (the protocol
 * before them) still replicates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/util.h"
#include "metadata/raft/raft_node.h"
#include "metadata/raft/raft_transport.h"
#include "tests/unit/tcheck.h"
#include "tests/unit/tdir.h"

#define N 3
#define SLOTS (N + 1)

typedef struct server {
    int id;
    char *dir;
    char addr[RAFT_ADDR_MAX];
    ts_http_server *http;
    raft_transport *tr;
    raft_node *node;
    uint64_t commands;
} server;

static server sv[SLOTS + 1];

static void handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    server *s = app;
    if (strcmp(req->path, RAFT_TRANSPORT_PATH) == 0 && s->tr != NULL)
        raft_transport_handle(s->tr, req, resp);
    else
        ts_http_respond_error(resp, TS_ENOENT, "no such endpoint %s", req->path);
}

static int sm_apply(void *arg, const raft_entry *e, void *result)
{
    server *s = arg;
    s->commands += e->type == RAFT_ENTRY_NORMAL;
    return 0;
}

/* Starts the HTTP server on a free port, then the transport that
 * announces that address. */
static int listen_on(int id)
{
    ts_error err;
    ts_http_server_opts ho = {0};
    ho.bind_addr = "127.0.0.1";
    ho.port = 0;
    ho.handle = handle;
    ho.app = &sv[id];
    if (ts_http_server_start(&ho, &sv[id].http, &err) != 0) {
        fprintf(stderr, "  http: %s\n", err.msg);
        return -1;
    }
    snprintf(sv[id].addr, sizeof(sv[id].addr), "127.0.0.1:%d", ts_http_server_port(sv[id].http));
    return raft_transport_new((uint64_t)id, sv[id].addr, &sv[id].tr, &err);
}

/* The node's one callback argument is the server; sends go through its
 * transport. */
static void send_via(void *arg, uint64_t to, const char *addr, const void *buf, size_t len)
{
    server *s = arg;
    raft_transport_send(s->tr, to, addr, buf, len);
}

static int start_node(int id, const raft_conf *boot)
{
    raft_node_opts o = {0};
    o.dir = sv[id].dir;
    o.id = (uint64_t)id;
    o.bootstrap = boot;
    o.tick_ms = 20;
    o.fsync = 1;
    o.ops.send = send_via;
    o.ops.apply = sm_apply;
    o.ops.arg = &sv[id];
    ts_error err;
    sv[id].commands = 0;
    if (raft_node_start(&o, &sv[id].node, &err) != 0) {
        fprintf(stderr, "  node %d: %s\n", id, err.msg);
        return -1;
    }
    raft_transport_attach(sv[id].tr, sv[id].node);
    return 0;
}

static void stop_server(int id)
{
    ts_http_server_stop(sv[id].http);     /* no more deliveries into the node */
    sv[id].http = NULL;
    raft_transport_attach(sv[id].tr, NULL);   /* nor from answers on responses */
    raft_node_stop(sv[id].node);
    sv[id].node = NULL;
    raft_transport_free(sv[id].tr);
    sv[id].tr = NULL;
}

static int wait_leader(int skip)
{
    for (int t = 0; t < 500; t++) {
        for (int id = 1; id <= SLOTS; id++) {
            if (id == skip || sv[id].node == NULL)
                continue;
            raft_status st;
            raft_node_status(sv[id].node, &st);
            if (st.role == RAFT_LEADER)
                return id;
        }
        ts_sleep_ms(10);
    }
    return 0;
}

static int propose_n(int leader, int count)
{
    int ok = 0;
    for (int i = 0; i < count; i++) {
        char where[RAFT_ADDR_MAX];
        ts_error err;
        ok += raft_node_propose(sv[leader].node, "c", 1, NULL, 0, 5000, where, &err) == 0;
    }
    return ok;
}

static int wait_commands(int id, uint64_t want)
{
    for (int t = 0; t < 500; t++) {
        raft_status st;
        raft_node_status(sv[id].node, &st);   /* orders the read below after the applies */
        if (__atomic_load_n(&sv[id].commands, __ATOMIC_ACQUIRE) >= want)
            return 1;
        ts_sleep_ms(10);
    }
    return 0;
}

static void test_http_group(void)
{
    raft_conf c = {0};
    for (int id = 1; id <= SLOTS; id++) {
        char name[8];
        snprintf(name, sizeof(name), "h%d", id);
        sv[id].id = id;
        sv[id].dir = tdir_fresh("rafttr", name);
        TC_CHECK(listen_on(id) == 0);
    }
    for (int id = 1; id <= N; id++) {
        c.m[id - 1].id = (uint64_t)id;
        c.m[id - 1].role = RAFT_VOTER;
        memcpy(c.m[id - 1].addr, sv[id].addr, RAFT_ADDR_MAX);
    }
    c.n = N;
    for (int id = 1; id <= N; id++)
        TC_CHECK(start_node(id, &c) == 0);
    int leader = wait_leader(0);
    TC_CHECK(leader != 0);
    if (leader == 0)
        goto stop_all;
    TC_CHECK_EQ_U64(propose_n(leader, 20), 20);
    for (int id = 1; id <= N; id++)
        TC_CHECK(wait_commands(id, 20));
    /* The followers' acknowledgements came back on the leader's posts. */
    raft_transport_stats ls;
    raft_transport_get_stats(sv[leader].tr, &ls);
    fprintf(stderr, "  leader took %" PRIu64 " answers from responses\n", ls.answers_received);
    TC_CHECK(ls.answers_received >= 20);

    /* The leader's process "dies": the other two elect and go on. */
    stop_server(leader);
    int next = wait_leader(leader);
    TC_CHECK(next != 0);
    if (next == 0)
        goto stop_all;
    TC_CHECK_EQ_U64(propose_n(next, 10), 10);

    /* An empty server joins through the leader and catches up; it learns
     * where to answer from the `from` argument of the leader's posts. */
    TC_CHECK(start_node(SLOTS, NULL) == 0);
    char where[RAFT_ADDR_MAX];
    ts_error err;
    TC_CHECK(raft_node_change(sv[next].node, RAFT_CONF_ADD, SLOTS, sv[SLOTS].addr, 5000, where,
                              &err) == 0);
    TC_CHECK_EQ_U64(propose_n(next, 5), 5);
    TC_CHECK(wait_commands(SLOTS, 35));
stop_all:
    for (int id = 1; id <= SLOTS; id++) {
        if (sv[id].http != NULL)
            stop_server(id);
        tdir_remove(sv[id].dir);
    }
}

/* Server 1 speaks the protocol from before answers on responses: it never
 * asks for them and ignores the request for them.  The group elects and
 * replicates whoever leads, and server 1 neither gives nor takes answers. */
static void test_mixed_versions(void)
{
    raft_conf c = {0};
    for (int id = 1; id <= N; id++) {
        char name[8];
        snprintf(name, sizeof(name), "m%d", id);
        sv[id].id = id;
        sv[id].dir = tdir_fresh("rafttr", name);
        TC_CHECK(listen_on(id) == 0);
        c.m[id - 1].id = (uint64_t)id;
        c.m[id - 1].role = RAFT_VOTER;
        memcpy(c.m[id - 1].addr, sv[id].addr, RAFT_ADDR_MAX);
    }
    c.n = N;
    raft_transport_set_answers(sv[1].tr, 0);
    for (int id = 1; id <= N; id++)
        TC_CHECK(start_node(id, &c) == 0);
    int leader = wait_leader(0);
    TC_CHECK(leader != 0);
    if (leader != 0) {
        TC_CHECK_EQ_U64(propose_n(leader, 20), 20);
        /* And once more with the old server leading, or not leading. */
        int other = leader == 1 ? 2 : 1;
        char where[RAFT_ADDR_MAX];
        ts_error err;
        if (raft_node_transfer(sv[leader].node, (uint64_t)other, where, &err) == 0) {
            /* Wait for the target itself: the old leader may still
             * believe it leads for a moment. */
            raft_status st = {0};
            for (int t = 0; t < 500 && st.role != RAFT_LEADER; t++) {
                ts_sleep_ms(10);
                raft_node_status(sv[other].node, &st);
            }
            TC_CHECK(st.role == RAFT_LEADER);
            if (st.role == RAFT_LEADER)
                TC_CHECK_EQ_U64(propose_n(other, 10), 10);
        }
        for (int id = 1; id <= N; id++)
            TC_CHECK(wait_commands(id, 30));
        raft_transport_stats old;
        raft_transport_get_stats(sv[1].tr, &old);
        TC_CHECK_EQ_U64(old.answers_sent, 0);
        TC_CHECK_EQ_U64(old.answers_received, 0);
    }
    for (int id = 1; id <= N; id++) {
        stop_server(id);
        tdir_remove(sv[id].dir);
    }
}

int main(void)
{
    ts_http_client_global_init();
    TC_RUN(test_http_group);
    TC_RUN(test_mixed_versions);
    TC_DONE("test_raft_transport");
}
