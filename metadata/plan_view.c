/*
 * The planners' picture of the cluster (see plan_view.h).
 */
#include "metadata/plan_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/util.h"

void plan_view_free(plan_view *v)
{
    for (size_t i = 0; i < v->nservers; i++)
        free(v->zones[i]);
    free(v->servers);
    free(v->ids);
    free(v->zones);
    free(v->addrs);
    free(v->admin);
    free(v->reported_chunks);
    free(v->chunks);
    free(v->holders);
    free(v->nreal);
    memset(v, 0, sizeof(*v));
}

static int collect_chunk(void *arg, const ts_chunk_id *id)
{
    plan_view *v = arg;
    if (v->nchunks == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 256;
        v->chunks = ts_realloc(v->chunks, v->cap * sizeof(*v->chunks));
    }
    memset(&v->chunks[v->nchunks], 0, sizeof(v->chunks[0]));
    v->chunks[v->nchunks++].id = *id;
    return 0;
}

int plan_view_server(const plan_view *v, const char *id)
{
    for (size_t i = 0; i < v->nservers; i++)
        if (strcmp(v->ids[i], id) == 0)
            return (int)i;
    return -1;
}

void plan_view_build(store *st, cluster *cl, int64_t now, plan_view *v)
{
    ns_stats nst;
    memset(v, 0, sizeof(*v));
    /* A leader that just took over judges nothing from an older term's
     * view (cluster.h): every server suspect until it reports again. */
    cluster_lead_term(cl, store_leader_term(st), now);
    const ns_state *ns = store_read_lock(st);
    ns_get_stats(ns, &nst);
    v->membership_epoch = nst.membership_epoch;
    ns_get_rebalance(ns, &v->rebalance);
    v->nservers = ns_server_count(ns);
    v->servers = ts_calloc(v->nservers + 1, sizeof(*v->servers));
    v->ids = ts_calloc(v->nservers + 1, sizeof(*v->ids));
    v->zones = ts_calloc(v->nservers + 1, sizeof(*v->zones));
    v->addrs = ts_calloc(v->nservers + 1, sizeof(*v->addrs));
    v->admin = ts_calloc(v->nservers + 1, sizeof(*v->admin));
    v->reported_chunks = ts_calloc(v->nservers + 1, sizeof(*v->reported_chunks));
    v->reports_complete = 1;
    for (size_t i = 0; i < v->nservers; i++) {
        const ns_server *s = ns_server_at(ns, i);
        cluster_server_info info;
        cluster_track(cl, s->id);
        cluster_server(cl, s->id, now, &info);
        snprintf(v->ids[i], sizeof(v->ids[i]), "%s", s->id);
        snprintf(v->addrs[i], sizeof(v->addrs[i]), "%s", s->address);
        v->zones[i] = ts_strdup(s->zone);
        v->admin[i] = s->admin;
        v->reported_chunks[i] = info.chunk_count;
        v->servers[i].id = v->ids[i];
        v->servers[i].zone = v->zones[i];
        v->servers[i].weight = s->weight > 0 ? s->weight : 1.0;
        v->servers[i].state = ts_server_state_effective(info.state, s->admin);
        if (ts_server_state_counts(v->servers[i].state) && info.report_needed)
            v->reports_complete = 0;
    }
    ns_chunk_foreach(ns, collect_chunk, v);
    v->holders = ts_calloc(v->nchunks * PLAN_MAX_HOLDERS + 1, sizeof(uint32_t));
    v->nreal = ts_calloc(v->nchunks + 1, 1);
    for (size_t c = 0; c < v->nchunks; c++) {
        ts_plan_chunk *pc = &v->chunks[c];
        char ids[PLAN_MAX_HOLDERS][CLUSTER_ID_MAX + 1];
        ns_chunk_lookup(ns, &pc->id, &pc->length, NULL, NULL);  /* listed: known */
        pc->replication = CLUSTER_REPLICATION;
        pc->holders = &v->holders[c * PLAN_MAX_HOLDERS];
        size_t n = cluster_replicas(cl, &pc->id, now, ids, PLAN_MAX_HOLDERS);
        for (size_t k = 0; k < n; k++) {
            int idx = plan_view_server(v, ids[k]);
            if (idx >= 0)
                v->holders[c * PLAN_MAX_HOLDERS + pc->nholders++] = (uint32_t)idx;
        }
        v->nreal[c] = (unsigned char)pc->nholders;
    }
    store_read_unlock(st);
}
