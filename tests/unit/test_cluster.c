/*
 * Unit tests of the cluster soft state (metadata/cluster.h) with explicit
 * times: up -> suspect -> down by silence and back by a heartbeat, servers
 * never heard from counted from the leader start, replicas on suspect
 * servers still counting, "removed" and "corrupt" reports taking replicas
 * away, failed data directories, and a new leader asking everyone for a
 * full report again.
 */
#include <stdio.h>
#include <string.h>

#include "metadata/cluster.h"
#include "tests/unit/tcheck.h"

static ts_chunk_id chunk(unsigned char b)
{
    ts_chunk_id id;
    memset(id.b, b, sizeof(id.b));
    return id;
}

static void test_liveness(void)
{
    cluster *c = cluster_new(3000);
    cluster_set_down_after(c, 9000);
    cluster_leader_start(c, 1000);
    ts_chunk_id ids[2] = { chunk(1), chunk(2) };
    cluster_heartbeat hb = { .id = "cs-1", .has_full_report = 1, .full_report = ids,
                             .n_full_report = 2 };
    TC_CHECK(cluster_on_heartbeat(c, &hb, 1000, NULL, NULL) == 0);
    hb.id = "cs-2";
    hb.n_full_report = 1;
    TC_CHECK(cluster_on_heartbeat(c, &hb, 1000, NULL, NULL) == 0);

    cluster_server_info info;
    cluster_server(c, "cs-1", 2000, &info);
    TC_CHECK(info.up && info.state == TS_SERVER_UP && !info.report_needed);
    /* Never heard from: suspect until down_after past the leader start. */
    cluster_server(c, "cs-9", 5000, &info);
    TC_CHECK(!info.seen && info.state == TS_SERVER_SUSPECT && info.report_needed);
    cluster_server(c, "cs-9", 10001, &info);
    TC_CHECK(info.state == TS_SERVER_DOWN);

    TC_CHECK_EQ_U64(cluster_live_replicas(c, &ids[0], 2000), 2);
    /* Silent 3.5 s: suspect, and the replicas still count. */
    TC_CHECK_EQ_U64(cluster_tick(c, 4500), 2);
    cluster_server(c, "cs-1", 4500, &info);
    TC_CHECK(info.state == TS_SERVER_SUSPECT && !info.up);
    TC_CHECK_EQ_U64(cluster_live_replicas(c, &ids[0], 4500), 2);
    TC_CHECK_EQ_U64(cluster_tick(c, 4600), 0);
    /* Silent past down_after: down, replicas no longer count. */
    TC_CHECK_EQ_U64(cluster_tick(c, 10500), 2);
    TC_CHECK_EQ_U64(cluster_live_replicas(c, &ids[0], 10500), 0);
    /* Still listed (down ones last) for readers that try anyway. */
    char out[4][CLUSTER_ID_MAX + 1];
    TC_CHECK_EQ_U64(cluster_replicas(c, &ids[0], 10500, out, 4), 2);

    /* Back with one replica removed and one found corrupt. */
    cluster_heartbeat back = { .id = "cs-1", .removed = &ids[1], .n_removed = 1,
                               .corrupt = &ids[0], .n_corrupt = 1, .n_failed_dirs = 1 };
    TC_CHECK(cluster_on_heartbeat(c, &back, 11000, NULL, NULL) == 0);
    cluster_server(c, "cs-1", 11000, &info);
    TC_CHECK(info.state == TS_SERVER_UP && info.failed_dirs == 1 && info.corrupt_reported == 1);
    TC_CHECK(!cluster_holds(c, &ids[0], "cs-1") && !cluster_holds(c, &ids[1], "cs-1"));
    TC_CHECK(cluster_holds(c, &ids[0], "cs-2"));
    TC_CHECK_EQ_U64(cluster_corrupt_count(c), 1);
    TC_CHECK_EQ_U64(cluster_location_count(c), 1);
    cluster_drop_replica(c, &ids[0], "cs-2");
    TC_CHECK_EQ_U64(cluster_location_count(c), 0);
    cluster_add_replica(c, &ids[1], "cs-2");
    TC_CHECK(cluster_holds(c, &ids[1], "cs-2"));

    /* A new term: everyone suspect, and a full report is needed again. */
    cluster_leader_start(c, 20000);
    cluster_server(c, "cs-1", 20000, &info);
    TC_CHECK(info.state == TS_SERVER_SUSPECT && info.report_needed);
    cluster_heartbeat plain = { .id = "cs-1" };
    TC_CHECK(cluster_on_heartbeat(c, &plain, 20100, NULL, NULL) == 1);
    cluster_server(c, "cs-1", 20100, &info);
    TC_CHECK(info.state == TS_SERVER_UP);
    cluster_free(c);
}

static void test_down_after_floor(void)
{
    /* down_after not above the suspect timeout is raised: suspect first. */
    cluster *c = cluster_new(3000);
    cluster_set_down_after(c, 1000);
    cluster_leader_start(c, 0);
    cluster_server_info info;
    cluster_server(c, "cs-1", 5999, &info);
    TC_CHECK(info.state == TS_SERVER_SUSPECT);
    cluster_server(c, "cs-1", 6001, &info);
    TC_CHECK(info.state == TS_SERVER_DOWN);
    cluster_free(c);
}

int main(void)
{
    TC_RUN(test_liveness);
    TC_RUN(test_down_after_floor);
    TC_DONE("test_cluster");
}
