/*
 * One consistent picture of the cluster for the planners (repair_plan.h,
 * rebalance_plan.h): every server of the durable membership with the state
 * planners must use (liveness from cluster.h combined with the operator's
 * admin state, server_state.h ts_server_state_effective), and every chunk
 * the namespace references with its length and the servers known to hold
 * it.  Built under the store's read lock (then the cluster's mutex), then
 * used without locks.  Shared by the repair loop, drain status, node
 * removal checks and the rebalance plan, so they judge by the same facts.
 *
 * Ownership: everything in a view is owned by it; plan_view_free releases
 * it.  servers[i].id / .zone point into the view.
 */
#ifndef TS_META_PLAN_VIEW_H
#define TS_META_PLAN_VIEW_H

#include <stdint.h>
#include "metadata/cluster.h"
#include "metadata/namespace.h"
#include "metadata/repair_plan.h"
#include "metadata/store.h"

#define PLAN_ADDR_MAX 256
#define PLAN_MAX_HOLDERS 16     /* holder slots per chunk (real ones, then pending copies) */

typedef struct plan_view {
    ts_plan_server *servers;
    char (*ids)[CLUSTER_ID_MAX + 1];
    char **zones;
    char (*addrs)[PLAN_ADDR_MAX];
    uint8_t *admin;             /* ns_server_admin of each server */
    uint64_t *reported_chunks;  /* chunk count from each server's last heartbeat */
    size_t nservers;
    int reports_complete;       /* every server that counts has sent a full report */

    ts_plan_chunk *chunks;
    uint32_t *holders;          /* PLAN_MAX_HOLDERS per chunk */
    unsigned char *nreal;       /* real holders of each chunk (reports, commits) */
    size_t nchunks, cap;

    uint64_t membership_epoch;
    ns_rebalance rebalance;     /* the durable rebalance flag */
} plan_view;

/* Fills v at now_ms (monotonic).  Every chunk's replication factor is
 * CLUSTER_REPLICATION. */
void plan_view_build(store *st, cluster *cl, int64_t now_ms, plan_view *v);
void plan_view_free(plan_view *v);
/* Index of server id in v, or -1. */
int plan_view_server(const plan_view *v, const char *id);

#endif
