/*
 * Metadata HTTP API, cluster operations (/v1/admin/...): what `tessera
 * admin node|drain|rebalance` call.  Every decision is checked here against
 * one plan_view (durable membership + the leader's soft state) and then
 * made durable through a command (CMD_SET_SERVER, CMD_REBALANCE); the
 * repair loop (repair.h) carries drains and rebalances out.
 *
 *   node/add      {id, address, zone?, weight?}    register ahead of the first
 *                 heartbeat, or bring back a removed server (active again)
 *   node/set      {id, weight?, zone?}             pinned: heartbeats keep them
 *   node/remove   {id}                             refused while data would be lost
 *   drain         {id, cancel?}                    refused when fewer than the
 *                 replication factor of servers would stay up and not draining
 *   drain/status  {id}
 *   rebalance     {dry_run?, bandwidth?, max_moves?, cancel?}   the plan, and
 *                 unless dry_run the durable flag that starts it
 *   rebalance/status {}
 *
 * Lock order as elsewhere: store read lock, then the cluster; no command
 * is submitted while the read lock is held.
 */
#include "metadata/meta_api_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"
#include "metadata/plan_view.h"
#include "metadata/rebalance_plan.h"

#define ZONE_MAX 64

/* ------------------------------------------------------------- helpers */

static int submit_cmd(meta_api *api, cmd *c, ts_error *e)
{
    cmd_result res;
    int rc = store_submit(api->st, c, &res, e);
    cmd_free(c);
    return rc;
}

/* The server's id from the request, which must be known: TS_ENOENT with a
 * clear message otherwise.  *admin gets its admin state. */
static int known_server(meta_api *api, const json_t *b, const char **id, uint8_t *admin,
                        ts_error *e)
{
    if (ts_json_str(b, "id", id, e) != 0)
        return TS_EINVAL;
    const ns_state *ns = store_read_lock(api->st);
    const ns_server *s = ns_server_find(ns, *id);
    if (s && admin)
        *admin = s->admin;
    store_read_unlock(api->st);
    if (!s)
        return ts_fail(e, TS_ENOENT, "no chunkserver with id '%s' (see tessera admin nodes)",
                       *id);
    return 0;
}

/* Optional "weight": > 0 and finite.  *present says whether it was given. */
static int parse_weight(const json_t *b, double *out, int *present, ts_error *e)
{
    const json_t *w = json_object_get(b, "weight");
    *present = 0;
    if (!w || json_is_null(w))
        return 0;
    if (!json_is_number(w))
        return ts_fail(e, TS_EINVAL, "field 'weight': expected a number");
    double v = json_number_value(w);
    if (!(v > 0) || !isfinite(v) || v > 1e15)
        return ts_fail(e, TS_EINVAL, "weight %g refused: a weight must be a number above 0 "
                       "(it is the server's share of the data relative to the others)", v);
    *out = v;
    *present = 1;
    return 0;
}

static int parse_zone(const json_t *b, const char **out, int *present, ts_error *e)
{
    const json_t *z = json_object_get(b, "zone");
    *present = 0;
    if (!z || json_is_null(z))
        return 0;
    if (!json_is_string(z) || strlen(json_string_value(z)) > ZONE_MAX)
        return ts_fail(e, TS_EINVAL, "field 'zone': expected a string of at most %d bytes",
                       ZONE_MAX);
    *out = json_string_value(z);
    *present = 1;
    return 0;
}

static json_t *server_state_json(const plan_view *v, size_t i)
{
    json_t *o = json_object();
    api_set(o, "id", json_string(v->ids[i]));
    api_set(o, "state", json_string(ts_server_state_name(v->servers[i].state)));
    api_set(o, "admin", json_string(ns_server_admin_name(v->admin[i])));
    api_set(o, "weight", json_real(v->servers[i].weight));
    return o;
}

/* ---------------------------------------------------------------- nodes */

static int h_node_add(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *id, *address, *zone = NULL;
    double weight = 1.0;
    int has_weight, has_zone;
    if (ts_json_str(b, "id", &id, &e) != 0 || ts_json_str(b, "address", &address, &e) != 0 ||
        parse_weight(b, &weight, &has_weight, &e) != 0 ||
        parse_zone(b, &zone, &has_zone, &e) != 0)
        return api_fail(resp, &e);
    if (!*id || strlen(id) > CLUSTER_ID_MAX || !*address || strchr(address, ':') == NULL) {
        ts_fail(&e, TS_EINVAL, "node add: need an id of 1..%d bytes and an address host:port "
                "(got '%s' at '%s')", CLUSTER_ID_MAX, id, address);
        return api_fail(resp, &e);
    }
    const ns_state *ns = store_read_lock(api->st);
    const ns_server *s = ns_server_find(ns, id);
    int existed = s != NULL;
    unsigned was = s ? s->admin : NS_SERVER_ACTIVE;
    store_read_unlock(api->st);
    cmd c = { .type = CMD_SET_SERVER };
    c.u.set_server.id = ts_strdup(id);
    c.u.set_server.address = ts_strdup(address);
    c.u.set_server.zone = ts_strdup(has_zone ? zone : "");
    c.u.set_server.weight = weight;
    c.u.set_server.admin = NS_SERVER_ACTIVE;
    c.u.set_server.mask = (uint8_t)(CMD_SET_ADMIN | (has_weight ? CMD_SET_WEIGHT : 0) |
                                    (has_zone ? CMD_SET_ZONE : 0));
    if (submit_cmd(api, &c, &e) != 0)
        return api_fail(resp, &e);
    TS_INFO("admin: chunkserver %s at %s %s%s", id, address,
            !existed ? "added" : was == NS_SERVER_REMOVED ? "added back (was removed)"
                                                          : "updated",
            was == NS_SERVER_DRAINING ? " (its drain is cancelled)" : "");
    json_t *o = json_object();
    api_set(o, "id", json_string(id));
    api_set(o, "added", json_boolean(!existed));
    api_set(o, "was", json_string(existed ? ns_server_admin_name(was) : "unknown"));
    return api_reply(resp, o);
}

static int h_node_set(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *id, *zone = NULL;
    double weight = 0;
    int has_weight, has_zone;
    if (known_server(api, b, &id, NULL, &e) != 0 ||
        parse_weight(b, &weight, &has_weight, &e) != 0 ||
        parse_zone(b, &zone, &has_zone, &e) != 0)
        return api_fail(resp, &e);
    if (!has_weight && !has_zone) {
        ts_fail(&e, TS_EINVAL, "node set %s: nothing to change (give weight or zone)", id);
        return api_fail(resp, &e);
    }
    cmd c = { .type = CMD_SET_SERVER };
    c.u.set_server.id = ts_strdup(id);
    c.u.set_server.address = ts_strdup("");
    c.u.set_server.zone = ts_strdup(has_zone ? zone : "");
    c.u.set_server.weight = weight;
    c.u.set_server.mask = (uint8_t)((has_weight ? CMD_SET_WEIGHT : 0) |
                                    (has_zone ? CMD_SET_ZONE : 0));
    if (submit_cmd(api, &c, &e) != 0)
        return api_fail(resp, &e);
    if (has_weight)
        TS_INFO("admin: chunkserver %s weight set to %g", id, weight);
    if (has_zone)
        TS_INFO("admin: chunkserver %s zone set to '%s'", id, zone);
    json_t *o = json_object();
    api_set(o, "id", json_string(id));
    return api_reply(resp, o);
}

/* Drain status of server `which` in v, as JSON. */
static json_t *drain_json(const plan_view *v, uint32_t which, const ts_drain_status *ds)
{
    json_t *o = server_state_json(v, which);
    uint64_t reported = v->reported_chunks[which];
    uint64_t uncommitted = reported > ds->chunks_held ? reported - ds->chunks_held : 0;
    api_set(o, "chunks_held", json_integer((json_int_t)ds->chunks_held));
    api_set(o, "chunks_short", json_integer((json_int_t)ds->chunks_short));
    api_set(o, "bytes_held", json_integer((json_int_t)ds->bytes_held));
    api_set(o, "chunks_on_disk", json_integer((json_int_t)reported));
    api_set(o, "chunks_uncommitted", json_integer((json_int_t)uncommitted));
    api_set(o, "complete", json_boolean(ds->complete));
    api_set(o, "stuck", json_boolean(ds->stuck));
    api_set(o, "empty", json_boolean(ds->chunks_held == 0));
    api_set(o, "reports_complete", json_boolean(v->reports_complete));
    api_set(o, "reason", json_string(ds->reason));
    return o;
}

/* Builds the view and finds id in it; TS_ENOENT when not a member. */
static int view_for(meta_api *api, const char *id, plan_view *v, uint32_t *which, ts_error *e)
{
    plan_view_build(api->st, api->cl, ts_mono_ms(), v);
    int idx = plan_view_server(v, id);
    if (idx < 0) {
        plan_view_free(v);
        return ts_fail(e, TS_ENOENT, "no chunkserver with id '%s'", id);
    }
    *which = (uint32_t)idx;
    return 0;
}

static int h_node_remove(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *id;
    uint8_t admin = 0;
    plan_view v;
    uint32_t which;
    ts_drain_status ds;
    size_t last = 0, lost = 0;

    if (known_server(api, b, &id, &admin, &e) != 0)
        return api_fail(resp, &e);
    if (admin == NS_SERVER_REMOVED) {
        json_t *o = json_object();
        api_set(o, "id", json_string(id));
        api_set(o, "removed", json_true());
        api_set(o, "note", json_string("already removed"));
        return api_reply(resp, o);
    }
    if (view_for(api, id, &v, &which, &e) != 0)
        return api_fail(resp, &e);
    if (!v.reports_complete) {
        plan_view_free(&v);
        ts_fail(&e, TS_EBUSY, "node remove %s: the metadata leader is still waiting for "
                "chunkserver reports and cannot tell yet what only %s holds; try again in a "
                "few seconds", id, id);
        return api_fail(resp, &e);
    }
    if (ts_drain_status_of(v.servers, v.nservers, v.chunks, v.nchunks, which, &ds, &e) != 0) {
        plan_view_free(&v);
        return api_fail(resp, &e);
    }
    for (size_t c = 0; c < v.nchunks; c++) {
        unsigned readable = 0, here = 0;
        for (size_t k = 0; k < v.nreal[c]; k++) {
            uint32_t h = v.chunks[c].holders[k];
            here |= h == which;
            readable += h != which && ts_server_state_readable(v.servers[h].state);
        }
        last += here && readable == 0;
        lost += v.nreal[c] == 0;
    }
    ts_server_state st = v.servers[which].state;
    int heard = st == TS_SERVER_UP || st == TS_SERVER_DRAINING || st == TS_SERVER_SUSPECT;
    plan_view_free(&v);
    if (!ds.complete) {
        ts_fail(&e, TS_EBUSY, "refusing to remove %s: it would lose data: %zu chunk(s) on it "
                "do not have their full count on other up servers%s; drain it first "
                "(tessera admin drain %s --wait)", id, ds.chunks_short,
                last ? " and some hold their last replica there" : "", id);
        if (last)
            ts_error_prefix(&e, "%zu last replica(s)", last);
        return api_fail(resp, &e);
    }
    if (!heard && lost > 0) {
        ts_fail(&e, TS_EBUSY, "refusing to remove %s: %zu chunk(s) have no replica known "
                "anywhere and %s, which has not reported to this leader, may hold the last "
                "replica; bring it back up first", id, lost, id);
        return api_fail(resp, &e);
    }
    cmd c = { .type = CMD_SET_SERVER };
    c.u.set_server.id = ts_strdup(id);
    c.u.set_server.address = ts_strdup("");
    c.u.set_server.zone = ts_strdup("");
    c.u.set_server.mask = CMD_SET_ADMIN;
    c.u.set_server.admin = NS_SERVER_REMOVED;
    if (submit_cmd(api, &c, &e) != 0)
        return api_fail(resp, &e);
    TS_INFO("admin: chunkserver %s removed (held %zu chunk(s), all with a full count "
            "elsewhere)", id, ds.chunks_held);
    json_t *o = json_object();
    api_set(o, "id", json_string(id));
    api_set(o, "removed", json_true());
    api_set(o, "chunks_held", json_integer((json_int_t)ds.chunks_held));
    return api_reply(resp, o);
}

/* ---------------------------------------------------------------- drain */

static int h_drain(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *id;
    uint8_t admin = 0;
    int cancel = 0;
    plan_view v;
    uint32_t which;

    if (known_server(api, b, &id, &admin, &e) != 0 || api_bool_opt(b, "cancel", &cancel, &e) != 0)
        return api_fail(resp, &e);
    if (admin == NS_SERVER_REMOVED) {
        ts_fail(&e, TS_EINVAL, "%s is removed: nothing to drain (tessera admin node add "
                "brings it back)", id);
        return api_fail(resp, &e);
    }
    if (cancel && admin != NS_SERVER_DRAINING) {
        ts_fail(&e, TS_EINVAL, "%s is not draining: nothing to cancel", id);
        return api_fail(resp, &e);
    }
    if (!cancel && admin != NS_SERVER_DRAINING) {
        if (view_for(api, id, &v, &which, &e) != 0)
            return api_fail(resp, &e);
        /* Other draining servers are not eligible in the view already. */
        int rc = ts_drain_check(v.servers, v.nservers, which, CLUSTER_REPLICATION, &e);
        plan_view_free(&v);
        if (rc != 0) {
            ts_error_prefix(&e, "refused");
            return api_fail(resp, &e);
        }
    }
    if (admin != (cancel ? NS_SERVER_ACTIVE : NS_SERVER_DRAINING)) {
        cmd c = { .type = CMD_SET_SERVER };
        c.u.set_server.id = ts_strdup(id);
        c.u.set_server.address = ts_strdup("");
        c.u.set_server.zone = ts_strdup("");
        c.u.set_server.mask = CMD_SET_ADMIN;
        c.u.set_server.admin = cancel ? NS_SERVER_ACTIVE : NS_SERVER_DRAINING;
        if (submit_cmd(api, &c, &e) != 0)
            return api_fail(resp, &e);
        TS_INFO("admin: chunkserver %s: %s", id, cancel ? "drain cancelled: active again"
                                                        : "draining (no new replicas; its "
                                                          "chunks are copied away)");
    }
    json_t *o = json_object();
    api_set(o, "id", json_string(id));
    api_set(o, "admin", json_string(cancel ? "active" : "draining"));
    api_set(o, "changed", json_boolean(admin != (cancel ? NS_SERVER_ACTIVE
                                                        : NS_SERVER_DRAINING)));
    return api_reply(resp, o);
}

static int h_drain_status(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *id;
    plan_view v;
    uint32_t which;
    ts_drain_status ds;

    if (ts_json_str(b, "id", &id, &e) != 0 || view_for(api, id, &v, &which, &e) != 0)
        return api_fail(resp, &e);
    if (ts_drain_status_of(v.servers, v.nservers, v.chunks, v.nchunks, which, &ds, &e) != 0) {
        plan_view_free(&v);
        return api_fail(resp, &e);
    }
    json_t *o = drain_json(&v, which, &ds);
    /* How fresh chunks_on_disk is: a client waiting for a drain must not
     * trust a count from before chunks it knows of were written. */
    cluster_server_info info;
    cluster_server(api->cl, id, ts_mono_ms(), &info);
    api_set(o, "last_heartbeat_ms_ago", json_integer((json_int_t)info.last_heartbeat_ms_ago));
    plan_view_free(&v);
    return api_reply(resp, o);
}

/* ------------------------------------------------------------ rebalance */

static json_t *plan_json(const plan_view *v, const ts_rebalance_plan *p)
{
    json_t *o = json_object(), *servers = json_array();
    for (size_t i = 0; i < v->nservers; i++) {
        const ts_rebalance_server *rs = &p->servers[i];
        json_t *s = server_state_json(v, i);
        api_set(s, "bytes_before", json_integer((json_int_t)rs->bytes_before));
        api_set(s, "bytes_after", json_integer((json_int_t)rs->bytes_after));
        api_set(s, "bytes_in", json_integer((json_int_t)rs->bytes_in));
        api_set(s, "bytes_out", json_integer((json_int_t)rs->bytes_out));
        api_set(s, "share", json_integer((json_int_t)llround(rs->share)));
        if (json_array_append_new(servers, s) != 0)
            ts_die("out of memory building the rebalance plan");
    }
    api_set(o, "servers", servers);
    api_set(o, "total_bytes", json_integer((json_int_t)p->total_bytes));
    api_set(o, "moves", json_integer((json_int_t)p->nmoves));
    api_set(o, "moves_total", json_integer((json_int_t)p->nmoves_total));
    api_set(o, "bytes_to_move", json_integer((json_int_t)p->bytes_to_move));
    api_set(o, "imbalance_before", json_real(p->imbalance_before));
    api_set(o, "imbalance_after", json_real(p->imbalance_after));
    api_set(o, "skipped_under_replicated",
            json_integer((json_int_t)p->skipped_under_replicated));
    return o;
}

json_t *api_rebalance_json(meta_api *api)
{
    ns_rebalance nr;
    const ns_state *ns = store_read_lock(api->st);
    ns_get_rebalance(ns, &nr);
    store_read_unlock(api->st);
    json_t *o = json_object();
    api_set(o, "running", json_boolean(nr.running));
    api_set(o, "bandwidth", json_integer((json_int_t)nr.bandwidth));
    api_set(o, "max_moves", json_integer((json_int_t)nr.max_moves));
    api_set(o, "bytes_planned", json_integer((json_int_t)nr.bytes_planned));
    api_set(o, "bytes_target", json_integer((json_int_t)nr.bytes_target));
    api_set(o, "moves_target", json_integer((json_int_t)nr.moves_target));
    api_set(o, "started_ns", json_integer((json_int_t)nr.started_ns));
    if (api->rp != NULL) {
        repair_rebalance_stats rb;
        repair_get_rebalance(api->rp, &rb);
        uint64_t done = nr.bytes_planned > rb.bytes_remaining
                            ? nr.bytes_planned - rb.bytes_remaining : 0;
        if (nr.running && rb.last_round_ms_ago < 0 && rb.bytes_remaining == 0)
            done = 0;       /* a new leader that has not planned yet: unknown */
        if (!nr.running && nr.bytes_planned > 0)
            done = nr.bytes_target;        /* finished (or cancelled: see the log) */
        if (done > nr.bytes_target)
            done = nr.bytes_target;
        api_set(o, "acting", json_boolean(rb.acting));
        api_set(o, "bytes_done", json_integer((json_int_t)done));
        api_set(o, "bytes_remaining", json_integer((json_int_t)rb.bytes_remaining));
        api_set(o, "moves_remaining", json_integer((json_int_t)rb.moves_remaining));
        api_set(o, "copies_running", json_integer((json_int_t)rb.copies_running));
        api_set(o, "copies_total", json_integer((json_int_t)rb.copies_total));
        api_set(o, "bytes_copied", json_integer((json_int_t)rb.bytes_copied));
        api_set(o, "copy_failures", json_integer((json_int_t)rb.copy_failures));
        api_set(o, "surplus_chunks", json_integer((json_int_t)rb.surplus_chunks));
        api_set(o, "imbalance", json_real(rb.imbalance));
        api_set(o, "last_round_ms_ago", json_integer(rb.last_round_ms_ago));
        api_set(o, "note", json_string(rb.note));
    }
    return o;
}

static int h_rebalance_status(meta_api *api, const json_t *b, ts_http_response *resp)
{
    (void)b;
    return api_reply(resp, api_rebalance_json(api));
}

static int start_rebalance(meta_api *api, const ns_rebalance *nr, ts_error *e)
{
    cmd c = { .type = CMD_REBALANCE };
    c.u.rebalance = *nr;
    return submit_cmd(api, &c, e);
}

static int h_rebalance(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    int dry_run = 0, cancel = 0, present = 0;
    int64_t bandwidth = 0, max_moves = 0;
    plan_view v;
    ts_rebalance_plan p;

    if (api_bool_opt(b, "dry_run", &dry_run, &e) != 0 ||
        api_bool_opt(b, "cancel", &cancel, &e) != 0 ||
        ts_json_i64_opt(b, "bandwidth", &bandwidth, &present, &e) != 0 ||
        ts_json_i64_opt(b, "max_moves", &max_moves, &present, &e) != 0)
        return api_fail(resp, &e);
    if (bandwidth < 0) {
        ts_fail(&e, TS_EINVAL, "bandwidth %lld refused: it must be a positive rate in bytes "
                "per second (0 or none: the repair budget)", (long long)bandwidth);
        return api_fail(resp, &e);
    }
    if (max_moves < 0) {
        ts_fail(&e, TS_EINVAL, "max_moves %lld refused: it must be a positive count",
                (long long)max_moves);
        return api_fail(resp, &e);
    }
    ns_rebalance cur;
    const ns_state *ns = store_read_lock(api->st);
    ns_get_rebalance(ns, &cur);
    store_read_unlock(api->st);
    if (cancel) {
        if (!cur.running) {
            ts_fail(&e, TS_EINVAL, "no rebalance is running: nothing to cancel");
            return api_fail(resp, &e);
        }
        cur.running = 0;
        if (start_rebalance(api, &cur, &e) != 0)
            return api_fail(resp, &e);
        TS_INFO("admin: rebalance cancelled (copies under way finish)");
        return api_reply(resp, api_rebalance_json(api));
    }
    if (!dry_run && api->rp == NULL) {
        ts_fail(&e, TS_EINVAL, "this metadata server runs with repair=false: nothing would "
                "carry out a rebalance (use --dry-run to see the plan)");
        return api_fail(resp, &e);
    }
    plan_view_build(api->st, api->cl, ts_mono_ms(), &v);
    if (!v.reports_complete) {
        plan_view_free(&v);
        ts_fail(&e, TS_EBUSY, "the metadata leader is still waiting for chunkserver reports "
                "and does not know where every replica is; try again in a few seconds");
        return api_fail(resp, &e);
    }
    if (ts_rebalance_plan_make(v.servers, v.nservers, v.chunks, v.nchunks, 0, &p, &e) != 0) {
        plan_view_free(&v);
        ts_error_prefix(&e, "rebalance");
        return api_fail(resp, &e);
    }
    uint64_t all_bytes = p.bytes_to_move, target = 0;
    size_t keep = max_moves > 0 && (size_t)max_moves < p.nmoves ? (size_t)max_moves : p.nmoves;
    for (size_t i = 0; i < keep; i++)
        target += p.moves[i].bytes;
    p.nmoves = keep;            /* what this run does, for the answer */
    p.bytes_to_move = target;
    json_t *o = plan_json(&v, &p);
    ts_rebalance_plan_free(&p);
    plan_view_free(&v);
    int started = 0;
    if (!dry_run && cur.running) {
        api_set(o, "note", json_string("a rebalance is already running: showing its progress "
                                       "(cancel it first to start another)"));
    } else if (!dry_run && keep > 0) {
        ns_rebalance nr = { .running = 1, .bandwidth = (uint64_t)bandwidth,
                            .max_moves = (uint64_t)max_moves, .bytes_planned = all_bytes,
                            .bytes_target = target, .moves_target = keep };
        if (start_rebalance(api, &nr, &e) != 0) {
            json_decref(o);
            return api_fail(resp, &e);
        }
        started = 1;
        repair_rebalance_started(api->rp, all_bytes, keep);
        TS_INFO("admin: rebalance started: %zu move(s), %.1f MiB%s", keep,
                (double)target / 1048576.0, bandwidth ? " (bandwidth limited)" : "");
    }
    api_set(o, "started", json_boolean(started));
    api_set(o, "status", api_rebalance_json(api));
    return api_reply(resp, o);
}

/* ------------------------------------------------------------- dispatch */

api_post_fn api_ops_find(const char *path, int *read)
{
    static const struct {
        const char *path;
        api_post_fn fn;
        int read;
    } routes[] = {
        { "/v1/admin/node/add", h_node_add, 0 },       { "/v1/admin/node/set", h_node_set, 0 },
        { "/v1/admin/node/remove", h_node_remove, 0 }, { "/v1/admin/drain", h_drain, 0 },
        { "/v1/admin/drain/status", h_drain_status, 1 },
        { "/v1/admin/rebalance", h_rebalance, 0 },
        { "/v1/admin/rebalance/status", h_rebalance_status, 1 },
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(routes); i++)
        if (strcmp(path, routes[i].path) == 0) {
            *read = routes[i].read;
            return routes[i].fn;
        }
    return NULL;
}
