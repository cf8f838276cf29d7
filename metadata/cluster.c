/*
 * Cluster soft state: liveness and replica locations (see cluster.h).
 * Servers are interned to small indexes so a location costs 2 bytes.
 */
#include "metadata/cluster.h"

#include <pthread.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"
#include "metadata/orphans.h"
#include "metadata/ptab.h"

struct cl_server {
    char id[CLUSTER_ID_MAX + 1];
    uint64_t capacity, used, chunk_count;
    ts_server_fsm fsm;       /* liveness; last heartbeat inside */
    int seen;
    int reported;            /* full report received since the leader start */
    uint64_t failed_dirs;
    uint64_t corrupt;        /* replicas it reported corrupt */
};

struct cl_loc {
    ts_chunk_id id;
    uint16_t n, cap;
    uint16_t *srv;           /* server indexes */
};

struct cluster {
    pthread_mutex_t mu;
    ts_server_timing timing;
    int64_t leader_since_ms; /* never-heard servers are silent since then */
    uint64_t term;           /* last recorded by cluster_lead_term */
    uint64_t corrupt_total;
    struct cl_server *servers;
    size_t n_servers;
    ptab locs;               /* of struct cl_loc */
    uint64_t n_pairs;
    orphans *orph;           /* reported replicas the namespace does not know */
};

/* cl_loc starts with its chunk id, as ptab_chunk_id_ops requires. */
_Static_assert(offsetof(struct cl_loc, id) == 0, "ptab_chunk_id_ops needs the id first");

cluster *cluster_new(int64_t heartbeat_timeout_ms)
{
    cluster *c = ts_calloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->timing.suspect_after_ms = heartbeat_timeout_ms > 0 ? heartbeat_timeout_ms
                                                          : CLUSTER_DEFAULT_TIMEOUT_MS;
    c->timing.down_after_ms = 2 * c->timing.suspect_after_ms;
    c->leader_since_ms = ts_mono_ms();
    c->orph = orphans_new();
    return c;
}

void cluster_set_down_after(cluster *c, int64_t down_after_ms)
{
    pthread_mutex_lock(&c->mu);
    c->timing.down_after_ms = down_after_ms > c->timing.suspect_after_ms
                                  ? down_after_ms : 2 * c->timing.suspect_after_ms;
    pthread_mutex_unlock(&c->mu);
}

/* Applies silence up to now_ms to server s, logging a change (mu held). */
static int server_refresh(cluster *c, struct cl_server *s, int64_t now_ms)
{
    ts_server_state before = s->fsm.state;
    if (!ts_server_fsm_tick(&s->fsm, &c->timing, now_ms))
        return 0;
    TS_WARN("chunkserver %s: %s -> %s (no heartbeat for %.1f s)", s->id,
            ts_server_state_name(before), ts_server_state_name(s->fsm.state),
            (double)(now_ms - s->fsm.last_heartbeat_ms) / 1000.0);
    return 1;
}

void cluster_leader_start(cluster *c, int64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    c->leader_since_ms = now_ms;
    /* Orphans count only as seen in this term's reports (gc.h). */
    orphans_clear(c->orph);
    for (size_t i = 0; i < c->n_servers; i++) {
        struct cl_server *s = &c->servers[i];
        /* What an earlier term heard may be stale: hear everyone again. */
        ts_server_fsm_init(&s->fsm, s->fsm.drain, now_ms);
        s->seen = 0;
        s->reported = 0;
    }
    size_t n = c->n_servers;
    pthread_mutex_unlock(&c->mu);
    TS_INFO("cluster: leader from now on: %zu known chunkserver%s suspect until %s report%s",
            n, n == 1 ? "" : "s", n == 1 ? "it" : "they", n == 1 ? "s" : "");
}

int cluster_lead_term(cluster *c, uint64_t term, int64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    int fresh = term != 0 && term != c->term;
    if (fresh)
        c->term = term;
    pthread_mutex_unlock(&c->mu);
    /* Two callers racing on the same new term: the first one wins, the
     * other sees the term recorded and does nothing. */
    if (fresh)
        cluster_leader_start(c, now_ms);
    return fresh;
}

size_t cluster_tick(cluster *c, int64_t now_ms)
{
    size_t changed = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_servers; i++)
        changed += (size_t)server_refresh(c, &c->servers[i], now_ms);
    pthread_mutex_unlock(&c->mu);
    return changed;
}

static void loc_free_all(cluster *c)
{
    size_t n = ptab_nslots(&c->locs);
    for (size_t i = 0; i < n; i++) {
        struct cl_loc *l = c->locs.slot[i];
        if (!l)
            continue;
        free(l->srv);
        free(l);
    }
    ptab_free(&c->locs);
}

void cluster_free(cluster *c)
{
    if (!c)
        return;
    loc_free_all(c);
    orphans_free(c->orph);
    free(c->servers);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Index of server id, created when absent (mu held). */
static int server_index(cluster *c, const char *id)
{
    for (size_t i = 0; i < c->n_servers; i++)
        if (strcmp(c->servers[i].id, id) == 0)
            return (int)i;
    if (strlen(id) > CLUSTER_ID_MAX || c->n_servers >= UINT16_MAX)
        return -1;
    c->servers = ts_realloc(c->servers, (c->n_servers + 1) * sizeof(struct cl_server));
    struct cl_server *s = &c->servers[c->n_servers];
    memset(s, 0, sizeof(*s));
    strcpy(s->id, id);
    ts_server_fsm_init(&s->fsm, 0, c->leader_since_ms);
    return (int)c->n_servers++;
}

static struct cl_loc *loc_get(const cluster *c, const ts_chunk_id *id)
{
    return ptab_find(&c->locs, &ptab_chunk_id_ops, ptab_hash_chunk_id(id), id);
}

static void loc_add(cluster *c, const ts_chunk_id *id, uint16_t srv)
{
    struct cl_loc *l = loc_get(c, id);
    if (!l) {
        l = ts_calloc(1, sizeof(*l));
        l->id = *id;
        if (ptab_insert(&c->locs, &ptab_chunk_id_ops, l, ptab_hash_chunk_id(id), id) != 0)
            ts_die("cluster: location table inconsistent");
    }
    for (uint16_t i = 0; i < l->n; i++)
        if (l->srv[i] == srv)
            return;
    if (l->n == l->cap) {
        l->cap = l->cap ? (uint16_t)(l->cap * 2) : 3;
        l->srv = ts_realloc(l->srv, l->cap * sizeof(uint16_t));
    }
    l->srv[l->n++] = srv;
    c->n_pairs++;
}

static void loc_drop(cluster *c, struct cl_loc *l)
{
    ptab_remove(&c->locs, &ptab_chunk_id_ops, ptab_hash_chunk_id(&l->id), &l->id);
    c->n_pairs -= l->n;
    free(l->srv);
    free(l);
}

/* Forgets that server srv holds chunk id; 1 when it was known (mu held). */
static int loc_remove(cluster *c, const ts_chunk_id *id, uint16_t srv)
{
    struct cl_loc *l = loc_get(c, id);
    for (uint16_t k = 0; l && k < l->n; k++)
        if (l->srv[k] == srv) {
            l->srv[k] = l->srv[--l->n];
            c->n_pairs--;
            if (l->n == 0)
                loc_drop(c, l);
            return 1;
        }
    return 0;
}

/* Forgets every location on server srv (before applying a full report). */
static void forget_server(cluster *c, uint16_t srv)
{
    size_t n = ptab_nslots(&c->locs);
    for (size_t i = 0; i < n;) {
        struct cl_loc *l = c->locs.slot[i];
        if (!l) {
            i++;
            continue;
        }
        for (uint16_t k = 0; k < l->n; k++)
            if (l->srv[k] == srv) {
                l->srv[k] = l->srv[--l->n];
                c->n_pairs--;
                break;
            }
        if (l->n == 0) {
            /* Removal shifts later slots back by one: look at slot i again. */
            loc_drop(c, l);
            n = ptab_nslots(&c->locs);
            continue;
        }
        i++;
    }
}

int cluster_on_heartbeat(cluster *c, const cluster_heartbeat *hb, int64_t now_ms,
                         cluster_known_fn known, void *arg)
{
    pthread_mutex_lock(&c->mu);
    int idx = server_index(c, hb->id);
    if (idx < 0) {
        pthread_mutex_unlock(&c->mu);
        TS_WARN("cluster: heartbeat from server '%s' ignored (id too long or too many servers)",
                hb->id);
        return 1;
    }
    struct cl_server *s = &c->servers[idx];
    s->capacity = hb->capacity;
    s->used = hb->used;
    s->chunk_count = hb->chunk_count;
    s->seen = 1;
    ts_server_state before = s->fsm.state;
    if (ts_server_fsm_heartbeat(&s->fsm, now_ms))
        TS_INFO("chunkserver %s: %s -> %s (heartbeat)", s->id, ts_server_state_name(before),
                ts_server_state_name(s->fsm.state));
    if (hb->n_failed_dirs != s->failed_dirs)
        TS_WARN("chunkserver %s: %zu data director%s out of service (was %llu)%s", s->id,
                hb->n_failed_dirs, hb->n_failed_dirs == 1 ? "y" : "ies",
                (unsigned long long)s->failed_dirs,
                hb->n_failed_dirs > s->failed_dirs ? "; its chunks there are re-replicated" : "");
    s->failed_dirs = hb->n_failed_dirs;
    if (hb->has_full_report) {
        forget_server(c, (uint16_t)idx);
        orphans_forget_server(c->orph, (uint16_t)idx);
        for (size_t i = 0; i < hb->n_full_report; i++)
            if (!known || known(arg, &hb->full_report[i]))
                loc_add(c, &hb->full_report[i], (uint16_t)idx);
            else
                orphans_note(c->orph, &hb->full_report[i], (uint16_t)idx, now_ms);
        s = &c->servers[idx];
        if (!s->reported)
            TS_INFO("cluster: full report from %s: %zu chunks", s->id, hb->n_full_report);
        s->reported = 1;
    }
    for (size_t i = 0; i < hb->n_added; i++)
        if (!known || known(arg, &hb->added[i]))
            loc_add(c, &hb->added[i], (uint16_t)idx);
        else
            orphans_note(c->orph, &hb->added[i], (uint16_t)idx, now_ms);
    for (size_t i = 0; i < hb->n_removed; i++) {
        loc_remove(c, &hb->removed[i], (uint16_t)idx);
        orphans_drop(c->orph, &hb->removed[i], (uint16_t)idx);
    }
    /* A quarantined replica is gone: dropping it makes the chunk
     * under-replicated, and repair copies a good replica to replace it. */
    for (size_t i = 0; i < hb->n_corrupt; i++) {
        char hex[TS_CHUNK_ID_HEX_LEN + 1];
        ts_chunk_id_to_hex(&hb->corrupt[i], hex);
        TS_WARN("chunkserver %s: replica of chunk %s found corrupt and quarantined; it "
                "will be replaced from a good replica", c->servers[idx].id, hex);
        loc_remove(c, &hb->corrupt[i], (uint16_t)idx);
        orphans_drop(c->orph, &hb->corrupt[i], (uint16_t)idx);
        c->servers[idx].corrupt++;
        c->corrupt_total++;
    }
    int needed = !c->servers[idx].reported;
    pthread_mutex_unlock(&c->mu);
    return needed;
}

void cluster_add_replica(cluster *c, const ts_chunk_id *id, const char *server_id)
{
    pthread_mutex_lock(&c->mu);
    int idx = server_index(c, server_id);
    if (idx >= 0)
        loc_add(c, id, (uint16_t)idx);
    pthread_mutex_unlock(&c->mu);
}

void cluster_drop_replica(cluster *c, const ts_chunk_id *id, const char *server_id)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_servers; i++)
        if (strcmp(c->servers[i].id, server_id) == 0) {
            loc_remove(c, id, (uint16_t)i);
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

int cluster_holds(cluster *c, const ts_chunk_id *id, const char *server_id)
{
    int found = 0;
    pthread_mutex_lock(&c->mu);
    const struct cl_loc *l = loc_get(c, id);
    for (uint16_t i = 0; l && i < l->n && !found; i++)
        found = strcmp(c->servers[l->srv[i]].id, server_id) == 0;
    pthread_mutex_unlock(&c->mu);
    return found;
}

void cluster_track(cluster *c, const char *server_id)
{
    pthread_mutex_lock(&c->mu);
    if (server_index(c, server_id) < 0)
        TS_WARN("cluster: server '%s' not tracked (id too long or too many servers)",
                server_id);
    pthread_mutex_unlock(&c->mu);
}

/* The server's state at now_ms (mu held). */
static ts_server_state server_state_at(cluster *c, struct cl_server *s, int64_t now_ms)
{
    server_refresh(c, s, now_ms);
    return s->fsm.state;
}

size_t cluster_replicas(cluster *c, const ts_chunk_id *id, int64_t now_ms,
                        char out[][CLUSTER_ID_MAX + 1], size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    const struct cl_loc *l = loc_get(c, id);
    /* Two passes: up servers first, then the others. */
    for (int pass = 0; l && pass < 2; pass++)
        for (uint16_t i = 0; i < l->n && n < max; i++) {
            struct cl_server *s = &c->servers[l->srv[i]];
            if ((server_state_at(c, s, now_ms) == TS_SERVER_UP) == (pass == 0))
                strcpy(out[n++], s->id);
        }
    pthread_mutex_unlock(&c->mu);
    return n;
}

size_t cluster_live_replicas(cluster *c, const ts_chunk_id *id, int64_t now_ms)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    const struct cl_loc *l = loc_get(c, id);
    for (uint16_t i = 0; l && i < l->n; i++)
        n += (size_t)ts_server_state_counts(server_state_at(c, &c->servers[l->srv[i]], now_ms));
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* Drops the locations of chunks `known` rejects; they become orphans seen
 * at now_ms (mu held). */
static void prune_locked(cluster *c, cluster_known_fn known, void *arg, int64_t now_ms)
{
    size_t n = ptab_nslots(&c->locs);
    for (size_t i = 0; i < n;) {
        struct cl_loc *l = c->locs.slot[i];
        if (l && !known(arg, &l->id)) {
            for (uint16_t k = 0; k < l->n; k++)
                orphans_note(c->orph, &l->id, l->srv[k], now_ms);
            loc_drop(c, l);
            n = ptab_nslots(&c->locs);
            continue;
        }
        i++;
    }
}

void cluster_prune(cluster *c, cluster_known_fn known, void *arg)
{
    pthread_mutex_lock(&c->mu);
    prune_locked(c, known, arg, ts_mono_ms());
    pthread_mutex_unlock(&c->mu);
}

struct adopt {
    cluster_known_fn known;
    void *arg;
    ts_chunk_id *ids;
    size_t n, cap;
};

static int find_adopted(void *arg, const ts_chunk_id *id, const uint16_t *srv, size_t n,
                        int64_t since_ms)
{
    struct adopt *a = arg;
    (void)srv, (void)n, (void)since_ms;
    if (!a->known(a->arg, id))
        return 0;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->ids = ts_realloc(a->ids, a->cap * sizeof(*a->ids));
    }
    a->ids[a->n++] = *id;
    return 0;
}

void cluster_orphans_refresh(cluster *c, cluster_known_fn known, void *arg, int64_t now_ms)
{
    struct adopt a = { known, arg, NULL, 0, 0 };
    pthread_mutex_lock(&c->mu);
    prune_locked(c, known, arg, now_ms);
    /* A late commit made these known: their holders are replicas again. */
    orphans_foreach(c->orph, find_adopted, &a);
    for (size_t i = 0; i < a.n; i++) {
        uint16_t srv[64];
        size_t ns = orphans_take(c->orph, &a.ids[i], srv, TS_ARRAY_LEN(srv));
        for (size_t k = 0; k < ns; k++)
            loc_add(c, &a.ids[i], srv[k]);
    }
    pthread_mutex_unlock(&c->mu);
    free(a.ids);
}

struct due {
    cluster *c;
    int64_t now_ms, grace_ms;
    cluster_orphan *out;
    size_t n, max;
};

static int collect_due(void *arg, const ts_chunk_id *id, const uint16_t *srv, size_t n,
                       int64_t since_ms)
{
    struct due *d = arg;
    if (d->now_ms - since_ms < d->grace_ms)
        return 0;
    for (size_t k = 0; k < n && d->n < d->max; k++) {
        struct cl_server *s = &d->c->servers[srv[k]];
        /* Only a server that told this leader everything it holds, and
         * that is up to answer the delete. */
        if (!s->reported || server_state_at(d->c, s, d->now_ms) != TS_SERVER_UP)
            continue;
        cluster_orphan *o = &d->out[d->n++];
        o->id = *id;
        strcpy(o->server, s->id);
        o->since_ms = since_ms;
    }
    return d->n >= d->max;
}

size_t cluster_orphans_due(cluster *c, int64_t now_ms, int64_t grace_ms, cluster_orphan *out,
                           size_t max)
{
    struct due d = { c, now_ms, grace_ms, out, 0, max };
    pthread_mutex_lock(&c->mu);
    orphans_foreach(c->orph, collect_due, &d);
    pthread_mutex_unlock(&c->mu);
    return d.n;
}

int cluster_orphan_still(cluster *c, const ts_chunk_id *id, const char *server_id,
                         int64_t now_ms, int64_t grace_ms)
{
    int found = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_servers; i++)
        if (strcmp(c->servers[i].id, server_id) == 0) {
            found = orphans_holds(c->orph, id, (uint16_t)i, now_ms - grace_ms);
            break;
        }
    pthread_mutex_unlock(&c->mu);
    return found;
}

void cluster_orphan_deleted(cluster *c, const ts_chunk_id *id, const char *server_id)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_servers; i++)
        if (strcmp(c->servers[i].id, server_id) == 0) {
            orphans_drop(c->orph, id, (uint16_t)i);
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

void cluster_orphan_counts(cluster *c, uint64_t *chunks, uint64_t *replicas)
{
    pthread_mutex_lock(&c->mu);
    *chunks = orphans_chunks(c->orph);
    *replicas = orphans_replicas(c->orph);
    pthread_mutex_unlock(&c->mu);
}

void cluster_server(cluster *c, const char *id, int64_t now_ms, cluster_server_info *info)
{
    memset(info, 0, sizeof(*info));
    info->last_heartbeat_ms_ago = -1;
    info->report_needed = 1;
    pthread_mutex_lock(&c->mu);
    /* Never heard from: as a tracked server would be (see cluster.h). */
    info->state = now_ms - c->leader_since_ms > c->timing.down_after_ms ? TS_SERVER_DOWN
                                                                        : TS_SERVER_SUSPECT;
    info->state_since_ms_ago = now_ms - c->leader_since_ms;
    for (size_t i = 0; i < c->n_servers; i++) {
        struct cl_server *s = &c->servers[i];
        if (strcmp(s->id, id) != 0)
            continue;
        info->seen = s->seen;
        info->state = server_state_at(c, s, now_ms);
        info->up = info->state == TS_SERVER_UP;
        info->state_since_ms_ago = now_ms - s->fsm.since_ms;
        info->failed_dirs = s->failed_dirs;
        info->corrupt_reported = s->corrupt;
        info->capacity = s->capacity;
        info->used = s->used;
        info->chunk_count = s->chunk_count;
        info->last_heartbeat_ms_ago = s->seen ? now_ms - s->fsm.last_heartbeat_ms : -1;
        info->report_needed = !s->reported;
        break;
    }
    pthread_mutex_unlock(&c->mu);
}

uint64_t cluster_location_count(cluster *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->n_pairs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

uint64_t cluster_corrupt_count(cluster *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->corrupt_total;
    pthread_mutex_unlock(&c->mu);
    return n;
}
