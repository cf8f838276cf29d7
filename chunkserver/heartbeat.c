/*
 * The heartbeat thread (see heartbeat.h): builds the heartbeat JSON from the
 * chunk store, sends it to the first metadata server that answers, and keeps
 * the chunk ids sealed, removed or quarantined since the last delivered
 * heartbeat until one gets through, so an outage of the metadata service
 * loses no report.  The three lists are reconciled with the index when a
 * body is built (an id removed and sealed again in between is reported as
 * what it is now), so their order does not matter to the receiver.
 */
#include "chunkserver/heartbeat.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#define DEFAULT_REQUEST_TIMEOUT_MS 5000
/* Beyond this many undelivered ids (a long outage, a whole data dir lost),
 * drop them and send a full report instead (it is no bigger, and simpler). */
#define MAX_PENDING_IDS 100000

enum link_state { LINK_UNKNOWN = 0, LINK_UP, LINK_DOWN };

struct pending {
    ts_chunk_id *ids;
    size_t n, cap;
};

struct ts_heartbeat {
    ts_chunk_store *store;
    char **metas;
    size_t nmeta;
    size_t cur;                 /* meta tried first next round */
    char *server_id, *address, *zone;
    double weight;
    int interval_ms;
    long timeout_ms;
    pthread_t thread;

    pthread_mutex_t mu;         /* guards stop and sent */
    pthread_cond_t cond;
    int stop;
    uint64_t sent;

    /* Thread-private from here on: ids not yet delivered. */
    struct pending added, removed, corrupt;
    int report_needed;
    enum link_state link;
};

typedef void (*take_fn)(ts_chunk_store *s, ts_chunk_id **ids, size_t *n);

static void pending_clear(struct pending *p)
{
    free(p->ids);
    memset(p, 0, sizeof *p);
}

/* Appends what the store queued since the last call.  Returns 0, or 1 when
 * too many are pending (the caller switches to a full report). */
static int pending_take(ts_heartbeat *hb, struct pending *p, take_fn take)
{
    ts_chunk_id *ids;
    size_t n;

    take(hb->store, &ids, &n);
    if (n == 0)
        return 0;
    if (p->n + n > MAX_PENDING_IDS) {
        free(ids);
        return 1;
    }
    if (p->n + n > p->cap) {
        p->cap = TS_MAX(p->n + n, 2 * p->cap);
        p->ids = ts_realloc(p->ids, p->cap * sizeof *p->ids);
    }
    memcpy(p->ids + p->n, ids, n * sizeof *ids);
    p->n += n;
    free(ids);
    return 0;
}

static void pending_take_new(ts_heartbeat *hb)
{
    int overflow = pending_take(hb, &hb->added, ts_chunk_store_take_added);
    overflow |= pending_take(hb, &hb->removed, ts_chunk_store_take_removed);
    overflow |= pending_take(hb, &hb->corrupt, ts_chunk_store_take_corrupt);
    if (overflow) {
        /* A full report carries the truth about all of them. */
        pending_clear(&hb->added);
        pending_clear(&hb->removed);
        pending_clear(&hb->corrupt);
        hb->report_needed = 1;
    }
}

/* The ids as hex strings; with want_held >= 0, only those the store holds
 * (1) or does not hold (0) now. */
static json_t *ids_to_json(ts_chunk_store *store, const ts_chunk_id *ids, size_t n, int want_held)
{
    json_t *a = json_array();
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    if (a == NULL)
        ts_die("out of memory building chunk report");
    for (size_t i = 0; i < n; i++) {
        if (want_held >= 0 && ts_chunk_store_contains(store, &ids[i], NULL) != want_held)
            continue;
        ts_chunk_id_to_hex(&ids[i], hex);
        if (json_array_append_new(a, json_string(hex)) != 0)
            ts_die("out of memory building chunk report");
    }
    return a;
}

/* The heartbeat body; *full tells whether it carries a full report. */
static char *build_body(ts_heartbeat *hb, int *full)
{
    ts_chunk_stats st;
    ts_error err = { 0 };

    if (ts_chunk_store_stats(hb->store, &st, &err) != 0) {
        /* Still heartbeat (liveness matters more than the numbers). */
        TS_WARN("heartbeat: %s", err.msg);
        memset(&st, 0, sizeof st);
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:I}", "id", hb->server_id, "address",
                          hb->address, "zone", hb->zone, "weight", hb->weight, "capacity",
                          (json_int_t)st.capacity, "used", (json_int_t)st.used, "chunk_count",
                          (json_int_t)st.chunks);
    if (j == NULL)
        ts_die("out of memory building heartbeat");
    *full = hb->report_needed;
    if (*full) {
        ts_chunk_id *ids;
        size_t n;
        ts_chunk_store_list(hb->store, &ids, &n);
        if (json_object_set_new(j, "full_report", ids_to_json(hb->store, ids, n, -1)) != 0)
            ts_die("out of memory building heartbeat");
        free(ids);
    } else {
        if ((hb->added.n > 0 &&
             json_object_set_new(j, "added", ids_to_json(hb->store, hb->added.ids, hb->added.n, 1)) != 0) ||
            (hb->removed.n > 0 &&
             json_object_set_new(j, "removed",
                                 ids_to_json(hb->store, hb->removed.ids, hb->removed.n, 0)) != 0))
            ts_die("out of memory building heartbeat");
    }
    /* Corrupt ids go out even with a full report: it says where a replica
     * is missing, not why, and the reason tells fsck and the repair loop
     * that a good copy must come from elsewhere. */
    if (hb->corrupt.n > 0 &&
        json_object_set_new(j, "corrupt", ids_to_json(hb->store, hb->corrupt.ids, hb->corrupt.n, 0)) != 0)
        ts_die("out of memory building heartbeat");
    json_t *failed = json_array();
    for (size_t i = 0; failed != NULL && i < ts_chunk_store_ndirs(hb->store); i++)
        if (!ts_chunk_store_dir_in_service(hb->store, i) &&
            json_array_append_new(failed, json_string(ts_chunk_store_dir(hb->store, i))) != 0)
            ts_die("out of memory building heartbeat");
    if (failed == NULL || json_object_set_new(j, "failed_dirs", failed) != 0)
        ts_die("out of memory building heartbeat");
    char *text = ts_json_dump(j);
    json_decref(j);
    return text;
}

/* Index in hb->metas of the server a 421's Location names, or -1. */
static int leader_hint(const ts_heartbeat *hb, const char *location)
{
    const char *p = location;
    if (p == NULL)
        return -1;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    size_t len = strcspn(p, "/");
    for (size_t i = 0; i < hb->nmeta; i++)
        if (strlen(hb->metas[i]) == len && strncmp(hb->metas[i], p, len) == 0)
            return (int)i;
    return -1;
}

/* Sends one heartbeat to meta `m`.  0 and *report_needed, or an error;
 * TS_ENOTLEADER with *hint = the index of the leader it named (or -1):
 * heartbeats go to the leader, which keeps the soft state. */
static int send_to(ts_heartbeat *hb, const char *m, const char *body, int *report_needed,
                   int *hint, ts_error *err)
{
    ts_http_result res = { 0 };
    json_t *j = NULL;
    char *url = ts_sprintf("http://%s/v1/chunkserver/heartbeat", m);
    int rc = ts_http_call("POST", url, "application/json", body, strlen(body), hb->timeout_ms,
                             &res, err);
    if (rc != 0)
        goto free_url;
    *hint = -1;
    if (res.status == 421)
        *hint = leader_hint(hb, res.location);
    if (res.status != 200) {
        rc = ts_http_result_error(&res, "heartbeat", err);
        if (rc == 0)
            rc = ts_fail(err, TS_EPROTO, "heartbeat: metadata server %s answered HTTP %ld", m,
                         res.status);
        ts_error_prefix(err, "metadata server %s", m);
        goto free_result;
    }
    rc = ts_json_parse_object(res.body, res.body_len, &j, err);
    if (rc != 0) {
        ts_error_prefix(err, "metadata server %s: heartbeat answer", m);
        goto free_result;
    }
    json_t *rn = json_object_get(j, "report_needed");
    *report_needed = json_is_true(rn);
    if (rn != NULL && !json_is_boolean(rn))
        TS_WARN("metadata server %s: report_needed is not a boolean; taken as false", m);
    json_decref(j);
free_result:
    ts_http_result_free(&res);
free_url:
    free(url);
    return rc;
}

static void heartbeat_round(ts_heartbeat *hb)
{
    ts_error err = { 0 };
    int full = 0, report_needed = 0;
    int rc = TS_EUNAVAIL;
    size_t k, idx = hb->cur;

    pending_take_new(hb);
    char *body = build_body(hb, &full);
    int hint = -1, followed = 0;
    for (k = 0; k < hb->nmeta; k++) {
        idx = (hb->cur + k) % hb->nmeta;
        rc = send_to(hb, hb->metas[idx], body, &report_needed, &hint, &err);
        if (rc == TS_ENOTLEADER && hint >= 0 && !followed) {
            /* Once per round, so two servers naming each other cannot loop. */
            followed = 1;
            idx = (size_t)hint;
            rc = send_to(hb, hb->metas[idx], body, &report_needed, &hint, &err);
        }
        if (rc == 0)
            break;
        TS_DEBUG("heartbeat: %s", err.msg);
    }
    free(body);

    if (rc != 0) {
        if (hb->link != LINK_DOWN)
            TS_WARN("heartbeat: no metadata server reachable (last error: %s); retrying every %d ms",
                    err.msg, hb->interval_ms);
        hb->link = LINK_DOWN;
        return;
    }
    if (hb->link != LINK_UP || idx != hb->cur)
        TS_INFO("heartbeat: metadata server %s reachable%s", hb->metas[idx],
                full ? " (sent full chunk report)" : "");
    hb->link = LINK_UP;
    hb->cur = idx;
    /* Whatever was sent got through: a full report covers the pending ids. */
    hb->added.n = 0;
    hb->removed.n = 0;
    hb->corrupt.n = 0;
    hb->report_needed = report_needed;
    pthread_mutex_lock(&hb->mu);
    hb->sent++;
    pthread_mutex_unlock(&hb->mu);
}

static void *heartbeat_main(void *arg)
{
    ts_heartbeat *hb = arg;

    pthread_mutex_lock(&hb->mu);
    while (!hb->stop) {
        pthread_mutex_unlock(&hb->mu);
        int64_t next = ts_mono_ms() + hb->interval_ms;
        heartbeat_round(hb);
        pthread_mutex_lock(&hb->mu);
        while (!hb->stop) {
            int64_t now = ts_mono_ms();
            if (now >= next)
                break;
            struct timespec ts = ts_deadline_mono(next - now);
            int rc = pthread_cond_timedwait(&hb->cond, &hb->mu, &ts);
            if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
                ts_die("heartbeat: pthread_cond_timedwait: %s", strerror(rc));
        }
    }
    pthread_mutex_unlock(&hb->mu);
    ts_http_client_thread_cleanup();
    return NULL;
}

static void heartbeat_free(ts_heartbeat *hb)
{
    for (size_t i = 0; i < hb->nmeta; i++)
        free(hb->metas[i]);
    free(hb->metas);
    free(hb->server_id);
    free(hb->address);
    free(hb->zone);
    pending_clear(&hb->added);
    pending_clear(&hb->removed);
    pending_clear(&hb->corrupt);
    free(hb);
}

int ts_heartbeat_start(const ts_heartbeat_opts *opts, ts_heartbeat **out, ts_error *err)
{
    int rc;

    if (opts->store == NULL || opts->server_id == NULL || opts->address == NULL)
        return ts_fail(err, TS_EINVAL, "heartbeat: store, server id and address are required");
    if (opts->meta == NULL || opts->meta[0] == '\0')
        return ts_fail(err, TS_EINVAL, "heartbeat: no metadata server address given");
    if (!(opts->weight > 0))
        return ts_fail(err, TS_EINVAL, "heartbeat: weight must be > 0 (got %g)", opts->weight);
    if (opts->interval_ms <= 0)
        return ts_fail(err, TS_EINVAL, "heartbeat: interval must be > 0 ms (got %d)",
                       opts->interval_ms);

    ts_heartbeat *hb = ts_calloc(1, sizeof *hb);
    hb->store = opts->store;
    hb->server_id = ts_strdup(opts->server_id);
    hb->address = ts_strdup(opts->address);
    hb->zone = ts_strdup(opts->zone ? opts->zone : "");
    hb->weight = opts->weight;
    hb->interval_ms = opts->interval_ms;
    hb->timeout_ms = opts->request_timeout_ms ? opts->request_timeout_ms
                                              : DEFAULT_REQUEST_TIMEOUT_MS;
    hb->report_needed = 1;   /* the first heartbeat carries the full report */

    const char *p = opts->meta;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0) {
            char *m = ts_strndup(p, len);
            char *host = NULL;
            int port;
            ts_error perr = { 0 };
            if (ts_parse_hostport(m, &host, &port, &perr) != 0) {
                rc = ts_fail(err, TS_EINVAL, "meta: bad address '%s': %s", m, perr.msg);
                free(m);
                goto free_hb;
            }
            free(host);
            hb->metas = ts_realloc(hb->metas, (hb->nmeta + 1) * sizeof *hb->metas);
            hb->metas[hb->nmeta++] = m;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (hb->nmeta == 0) {
        rc = ts_fail(err, TS_EINVAL, "meta: no metadata server address in '%s'", opts->meta);
        goto free_hb;
    }

    ts_cond_init_mono(&hb->cond);
    if (pthread_mutex_init(&hb->mu, NULL) != 0)
        ts_die("heartbeat: cannot initialize its mutex");
    rc = pthread_create(&hb->thread, NULL, heartbeat_main, hb);
    if (rc != 0) {
        rc = ts_fail(err, TS_EIO, "heartbeat: cannot start thread: %s", strerror(rc));
        goto destroy_sync;
    }
    *out = hb;
    return 0;

destroy_sync:
    pthread_cond_destroy(&hb->cond);
    pthread_mutex_destroy(&hb->mu);
free_hb:
    heartbeat_free(hb);
    return rc;
}

void ts_heartbeat_stop(ts_heartbeat *hb)
{
    if (hb == NULL)
        return;
    pthread_mutex_lock(&hb->mu);
    hb->stop = 1;
    pthread_cond_broadcast(&hb->cond);
    pthread_mutex_unlock(&hb->mu);
    int rc = pthread_join(hb->thread, NULL);
    if (rc != 0)
        ts_die("heartbeat: pthread_join: %s", strerror(rc));
    pthread_cond_destroy(&hb->cond);
    pthread_mutex_destroy(&hb->mu);
    heartbeat_free(hb);
}

uint64_t ts_heartbeat_sent(ts_heartbeat *hb)
{
    pthread_mutex_lock(&hb->mu);
    uint64_t n = hb->sent;
    pthread_mutex_unlock(&hb->mu);
    return n;
}
