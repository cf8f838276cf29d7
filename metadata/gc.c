/*
 * The metadata leader's garbage collector (see gc.h): a loop thread that
 * refreshes the orphan table from the namespace, then deletes the orphan
 * replicas that are due, re-checking each one right before its DELETE.
 *
 * Lock order: store read lock -> cluster mutex (cluster.h); g->mu guards
 * only the stats and is never held during a request.
 */
#include "metadata/gc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"

#define ADDR_MAX 256
#define REQUEST_TIMEOUT_MS 30000
#define SLEEP_SLICE_MS 20
#define MAX_PER_ROUND 1024
#define GC_WORKERS 4

struct gc {
    store *st;
    cluster *cl;
    gc_opts o;
    pthread_t loop;
    atomic_int stop;
    pthread_mutex_t mu;
    gc_stats stats;
};

static int ns_knows(void *arg, const ts_chunk_id *id)
{
    return ns_chunk_lookup(arg, id, NULL, NULL, NULL) == 0;
}

/* The address of server id now, or "" (store read lock taken here). */
static void server_address(gc *g, const char *id, char *addr, size_t len)
{
    const ns_state *ns = store_read_lock(g->st);
    const ns_server *s = ns_server_find(ns, id);
    snprintf(addr, len, "%s", s ? s->address : "");
    store_read_unlock(g->st);
}

/* The re-check: still unknown to the namespace and still an orphan on that
 * server for the whole grace period. */
static int still_garbage(gc *g, const cluster_orphan *o, int64_t now)
{
    const ns_state *ns = store_read_lock(g->st);
    int garbage = !ns_knows((void *)ns, &o->id) &&
                  cluster_orphan_still(g->cl, &o->id, o->server, now, g->o.grace_ms);
    store_read_unlock(g->st);
    return garbage;
}

/* Deletes one orphan replica; 0 or an error (logged). */
static int delete_orphan(gc *g, const cluster_orphan *o)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1], addr[ADDR_MAX];
    ts_http_result res = {0};
    ts_error e = {0};

    ts_chunk_id_to_hex(&o->id, hex);
    server_address(g, o->server, addr, sizeof(addr));
    if (!addr[0]) {
        TS_WARN("gc: orphan chunk %s on %s: server not in the membership; skipped", hex,
                o->server);
        return TS_ENOENT;
    }
    char *url = ts_sprintf("http://%s/v1/chunk/%s", addr, hex);
    int rc = ts_http_call("DELETE", url, NULL, NULL, 0, REQUEST_TIMEOUT_MS, &res, &e);
    free(url);
    if (rc == 0 && (res.status == 200 || res.status == 404)) {
        /* Gone either way; its next report lists it as removed too. */
        cluster_orphan_deleted(g->cl, &o->id, o->server);
        TS_INFO("gc: deleted orphan chunk %s on %s (orphan for %.1f s)", hex, o->server,
                (double)(ts_mono_ms() - o->since_ms) / 1000.0);
        ts_http_result_free(&res);
        return 0;
    }
    if (rc == 0)
        rc = ts_http_result_error(&res, "delete", &e);
    TS_WARN("gc: delete of orphan chunk %s on %s (%s) failed; retried next round: %s", hex,
            o->server, addr, e.msg);
    ts_http_result_free(&res);
    return rc ? rc : TS_EIO;
}

/* A slice of one round's due orphans, deleted by one thread. */
struct slice {
    gc *g;
    const cluster_orphan *due;
    size_t n;
    uint64_t deleted, failed, spared;
};

static void run_slice(struct slice *sl)
{
    for (size_t i = 0; i < sl->n && !atomic_load(&sl->g->stop); i++) {
        if (!still_garbage(sl->g, &sl->due[i], ts_mono_ms()))
            sl->spared++;
        else if (delete_orphan(sl->g, &sl->due[i]) == 0)
            sl->deleted++;
        else
            sl->failed++;
    }
}

static void *delete_slice(void *arg)
{
    run_slice(arg);
    ts_http_client_thread_cleanup();
    return NULL;
}

/* One round; returns 1 when more orphans are due than it could look at
 * (the loop goes on without sleeping while the budget lasts).  The deletes
 * run on up to GC_WORKERS threads: each costs the chunkserver an fsync of
 * a directory, so a mass delete goes at disk speed only in parallel. */
static int round_once(gc *g, double *tokens, int64_t now)
{
    const ns_state *ns = store_read_lock(g->st);
    cluster_orphans_refresh(g->cl, ns_knows, (void *)ns, now);
    store_read_unlock(g->st);

    uint64_t chunks, replicas;
    cluster_orphan_counts(g->cl, &chunks, &replicas);
    size_t max = *tokens >= 1 ? (size_t)*tokens : 0;
    if (max > MAX_PER_ROUND)
        max = MAX_PER_ROUND;
    cluster_orphan *due = ts_calloc(MAX_PER_ROUND, sizeof(*due));
    /* Counted in full for the stats, acted on up to the budget. */
    size_t ndue = cluster_orphans_due(g->cl, now, g->o.grace_ms, due, MAX_PER_ROUND);
    size_t todo = TS_MIN(ndue, max);
    struct slice sl[GC_WORKERS];
    pthread_t th[GC_WORKERS];
    int started[GC_WORKERS] = {0};
    size_t nw = todo < 8 ? 1 : GC_WORKERS, per = (todo + nw - 1) / (nw ? nw : 1);
    *tokens -= (double)todo;
    for (size_t w = 0; w < nw; w++) {
        size_t lo = TS_MIN(w * per, todo), hi = TS_MIN(lo + per, todo);
        sl[w] = (struct slice){ g, due + lo, hi - lo, 0, 0, 0 };
        /* The first slice runs here; a thread that cannot start: here too. */
        if (w > 0 && hi > lo)
            started[w] = pthread_create(&th[w], NULL, delete_slice, &sl[w]) == 0;
    }
    for (size_t w = 0; w < nw; w++)
        if (!started[w])
            run_slice(&sl[w]);
    uint64_t deleted = 0, failed = 0, spared = 0;
    for (size_t w = 0; w < nw; w++) {
        if (started[w])
            pthread_join(th[w], NULL);
        deleted += sl[w].deleted;
        failed += sl[w].failed;
        spared += sl[w].spared;
    }
    free(due);
    pthread_mutex_lock(&g->mu);
    g->stats.orphan_chunks = chunks;
    g->stats.orphan_replicas = replicas;
    g->stats.due = ndue;
    g->stats.deletes_total += deleted;
    g->stats.delete_failures_total += failed;
    g->stats.rechecks_saved += spared;
    pthread_mutex_unlock(&g->mu);
    return ndue == MAX_PER_ROUND && *tokens >= 1;
}

static void *loop_main(void *arg)
{
    gc *g = arg;
    double tokens = 0;
    int64_t last = ts_mono_ms();
    uint64_t term = 0;

    while (!atomic_load(&g->stop)) {
        int64_t now = ts_mono_ms();
        double rate = (double)g->o.deletes_per_sec;
        tokens += rate * (double)(now - last) / 1000.0;
        if (tokens > rate)
            tokens = rate;      /* at most one second of burst */
        last = now;
        uint64_t t = store_leader_term(g->st);
        /* The heartbeat handler or the repair loop may have started it. */
        cluster_lead_term(g->cl, t, now);
        if (t != 0 && t != term)
            TS_INFO("gc: leader in term %llu: orphans count from this term's reports, "
                    "deleted after %.1f s", (unsigned long long)t,
                    (double)g->o.grace_ms / 1000.0);
        term = t;
        pthread_mutex_lock(&g->mu);
        g->stats.leader = t != 0;
        pthread_mutex_unlock(&g->mu);
        if (t != 0 && round_once(g, &tokens, now))
            continue;
        for (int64_t slept = 0; slept < g->o.interval_ms && !atomic_load(&g->stop);
             slept += SLEEP_SLICE_MS)
            ts_sleep_ms(SLEEP_SLICE_MS);
    }
    ts_http_client_thread_cleanup();
    return NULL;
}

int gc_start(store *st, cluster *cl, const gc_opts *o, gc **out, ts_error *err)
{
    gc *g = ts_calloc(1, sizeof(*g));
    g->st = st;
    g->cl = cl;
    g->o = *o;
    if (g->o.grace_ms <= 0)
        g->o.grace_ms = GC_DEFAULT_GRACE_MS;
    if (g->o.interval_ms <= 0)
        g->o.interval_ms = 1000;
    if (g->o.deletes_per_sec == 0)
        g->o.deletes_per_sec = 1000;
    g->stats.grace_ms = g->o.grace_ms;
    pthread_mutex_init(&g->mu, NULL);
    int rc = pthread_create(&g->loop, NULL, loop_main, g);
    if (rc != 0) {
        pthread_mutex_destroy(&g->mu);
        free(g);
        return ts_fail(err, TS_EIO, "gc: cannot start its thread: %s", strerror(rc));
    }
    TS_INFO("gc: started (grace period %.1f s, at most %u deletes/s)",
            (double)g->o.grace_ms / 1000.0, g->o.deletes_per_sec);
    *out = g;
    return 0;
}

void gc_stop(gc *g)
{
    if (!g)
        return;
    atomic_store(&g->stop, 1);
    pthread_join(g->loop, NULL);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void gc_get_stats(gc *g, gc_stats *out)
{
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    pthread_mutex_unlock(&g->mu);
}
