/*
 * Unit tests of orphan tracking in the cluster soft state (cluster.h,
 * orphans.h), with explicit times: unknown chunks in full and incremental
 * reports become orphans with their first sighting kept; only servers that
 * sent a full report to this leader and are up get deletes; a chunk that
 * becomes known (a late commit) is adopted back as a replica, never
 * deleted; a chunk that leaves the namespace becomes an orphan when pruned
 * and waits out the grace period from then; a new term forgets everything.
 */
#include <stdio.h>
#include <string.h>

#include "metadata/cluster.h"
#include "metadata/orphans.h"
#include "tests/unit/tcheck.h"

static ts_chunk_id chunk(unsigned char b)
{
    ts_chunk_id id;
    memset(id.b, b, sizeof(id.b));
    return id;
}

/* The namespace in these tests: a set of chunk bytes. */
struct known {
    int has[256];
};

static int knows(void *arg, const ts_chunk_id *id)
{
    return ((struct known *)arg)->has[id->b[0]];
}

static size_t due(cluster *c, int64_t now, int64_t grace, cluster_orphan *out)
{
    return cluster_orphans_due(c, now, grace, out, 16);
}

static void test_orphan_lifecycle(void)
{
    struct known k = {{0}};
    cluster_orphan out[16];
    uint64_t nc, nr;
    cluster *c = cluster_new(3000);
    cluster_set_down_after(c, 9000);
    cluster_leader_start(c, 1000);
    k.has[1] = 1;
    ts_chunk_id ids[3] = { chunk(1), chunk(2), chunk(3) };
    cluster_heartbeat hb = { .id = "cs-1", .has_full_report = 1, .full_report = ids,
                             .n_full_report = 3 };
    cluster_on_heartbeat(c, &hb, 1000, knows, &k);
    cluster_orphan_counts(c, &nc, &nr);
    TC_CHECK_EQ_U64(nc, 2);
    TC_CHECK_EQ_U64(nr, 2);
    TC_CHECK(cluster_holds(c, &ids[0], "cs-1"));
    TC_CHECK(!cluster_holds(c, &ids[1], "cs-1"));

    /* cs-2 sees chunk 2 later: one more replica, the first sighting kept. */
    cluster_heartbeat hb2 = { .id = "cs-2", .has_full_report = 1, .full_report = &ids[1],
                              .n_full_report = 1 };
    cluster_on_heartbeat(c, &hb2, 1800, knows, &k);
    cluster_orphan_counts(c, &nc, &nr);
    TC_CHECK_EQ_U64(nc, 2);
    TC_CHECK_EQ_U64(nr, 3);
    TC_CHECK_EQ_U64(due(c, 1500, 1000, out), 0);
    TC_CHECK_EQ_U64(due(c, 2000, 1000, out), 3);
    TC_CHECK(cluster_orphan_still(c, &ids[1], "cs-2", 2000, 1000));
    TC_CHECK(!cluster_orphan_still(c, &ids[1], "cs-2", 1999, 1000));
    TC_CHECK(!cluster_orphan_still(c, &ids[0], "cs-1", 5000, 1000));

    /* Chunk 3 gets committed late: adopted as a replica, not due. */
    k.has[3] = 1;
    cluster_orphans_refresh(c, knows, &k, 2100);
    TC_CHECK(cluster_holds(c, &ids[2], "cs-1"));
    TC_CHECK(!cluster_orphan_still(c, &ids[2], "cs-1", 2100, 1000));
    TC_CHECK_EQ_U64(due(c, 2100, 1000, out), 2);
    for (size_t i = 0; i < 2; i++)
        TC_CHECK(ts_chunk_id_eq(&out[i].id, &ids[1]));

    /* cs-2 deleted it (GC), cs-1 reports it removed: gone. */
    cluster_orphan_deleted(c, &ids[1], "cs-2");
    cluster_heartbeat rm = { .id = "cs-1", .removed = &ids[1], .n_removed = 1 };
    cluster_on_heartbeat(c, &rm, 2200, knows, &k);
    cluster_orphan_counts(c, &nc, &nr);
    TC_CHECK_EQ_U64(nc, 0);
    TC_CHECK_EQ_U64(nr, 0);

    /* Chunk 1 leaves the namespace: an orphan from the prune on. */
    k.has[1] = 0;
    cluster_heartbeat alive = { .id = "cs-1" };
    cluster_on_heartbeat(c, &alive, 5000, knows, &k);
    cluster_orphans_refresh(c, knows, &k, 5000);
    TC_CHECK(!cluster_holds(c, &ids[0], "cs-1"));
    TC_CHECK_EQ_U64(due(c, 5999, 1000, out), 0);
    TC_CHECK_EQ_U64(due(c, 6000, 1000, out), 1);
    TC_CHECK_STR(out[0].server, "cs-1");

    /* A new term: nothing is known until reports come again. */
    cluster_leader_start(c, 7000);
    cluster_orphan_counts(c, &nc, &nr);
    TC_CHECK_EQ_U64(nc, 0);
    cluster_free(c);
}

static void test_orphans_need_report_and_up(void)
{
    struct known k = {{0}};
    cluster_orphan out[16];
    cluster *c = cluster_new(3000);
    cluster_set_down_after(c, 9000);
    cluster_leader_start(c, 0);
    ts_chunk_id id = chunk(9);
    /* Only an incremental report: the server has not told us everything. */
    cluster_heartbeat hb = { .id = "cs-1", .added = &id, .n_added = 1 };
    TC_CHECK(cluster_on_heartbeat(c, &hb, 100, knows, &k) == 1);
    TC_CHECK_EQ_U64(due(c, 5000, 1000, out), 0);
    cluster_heartbeat full = { .id = "cs-1", .has_full_report = 1, .full_report = &id,
                               .n_full_report = 1 };
    TC_CHECK(cluster_on_heartbeat(c, &full, 5000, knows, &k) == 0);
    /* The full report replaced what was known: the grace restarts. */
    TC_CHECK_EQ_U64(due(c, 5500, 1000, out), 0);
    TC_CHECK_EQ_U64(due(c, 6000, 1000, out), 1);
    /* Silent: suspect, so no delete is sent to it. */
    TC_CHECK_EQ_U64(due(c, 8500, 1000, out), 0);
    cluster_free(c);
}

static void test_orphans_table(void)
{
    orphans *o = orphans_new();
    ts_chunk_id a = chunk(1), b = chunk(2);
    uint16_t srv[4];
    orphans_note(o, &a, 1, 10);
    orphans_note(o, &a, 1, 20);    /* twice: one replica */
    orphans_note(o, &a, 2, 30);
    orphans_note(o, &b, 2, 40);
    TC_CHECK_EQ_U64(orphans_chunks(o), 2);
    TC_CHECK_EQ_U64(orphans_replicas(o), 3);
    TC_CHECK(orphans_holds(o, &a, 2, 10));   /* first sighting: 10 */
    TC_CHECK(!orphans_holds(o, &a, 2, 9));
    orphans_forget_server(o, 2);
    TC_CHECK_EQ_U64(orphans_chunks(o), 1);
    TC_CHECK_EQ_U64(orphans_replicas(o), 1);
    TC_CHECK_EQ_U64(orphans_take(o, &a, srv, 4), 1);
    TC_CHECK_EQ_U64(srv[0], 1);
    TC_CHECK_EQ_U64(orphans_chunks(o), 0);
    TC_CHECK_EQ_U64(orphans_take(o, &b, srv, 4), 0);
    orphans_free(o);
}

int main(void)
{
    TC_RUN(test_orphans_table);
    TC_RUN(test_orphan_lifecycle);
    TC_RUN(test_orphans_need_report_and_up);
    TC_DONE("test_gc");
}
