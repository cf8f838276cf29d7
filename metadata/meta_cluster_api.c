/*
 * Metadata HTTP API, second half: file layout and commit (/v1/file/...),
 * chunkserver heartbeats, cluster views (/v1/cluster/...) and /metrics.
 * These are the calls that join durable state (namespace, membership) with
 * soft state (liveness and replica locations in cluster.c).
 *
 * Lock order everywhere: store read lock, then the cluster's mutex (taken
 * inside cluster_* calls).  A command is never submitted while the read
 * lock is held.
 */
#include "metadata/meta_api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/log.h"
#include "common/util.h"

#define MAX_LIST 1000000        /* entries in one request's arrays */

static int ns_knows_chunk(void *arg, const ts_chunk_id *id)
{
    return ns_chunk_lookup(arg, id, NULL, NULL, NULL) == 0;
}

/* Parses an optional array of chunk ids (hex strings) at key. */
static int parse_id_array(const json_t *b, const char *key, ts_chunk_id **out, size_t *n,
                          int *present, ts_error *err)
{
    const json_t *a = json_object_get(b, key);
    *out = NULL;
    *n = 0;
    *present = 0;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return ts_fail(err, TS_EINVAL, "field '%s': expected an array of chunk ids", key);
    size_t len = json_array_size(a);
    if (len > MAX_LIST)
        return ts_fail(err, TS_EINVAL, "field '%s': more than %d entries", key, MAX_LIST);
    ts_chunk_id *ids = ts_malloc((len ? len : 1) * sizeof(ts_chunk_id));
    for (size_t i = 0; i < len; i++) {
        const json_t *s = json_array_get(a, i);
        if (!json_is_string(s) || ts_chunk_id_from_hex(json_string_value(s), &ids[i]) != 0) {
            free(ids);
            return ts_fail(err, TS_EINVAL, "field '%s[%zu]': expected a chunk id of 32 hex "
                           "digits", key, i);
        }
    }
    *out = ids;
    *n = len;
    *present = 1;
    return 0;
}

/* ---- layout ---- */

int api_layout(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    uint64_t ino;
    ts_attr a;
    const ts_extent *x;
    size_t n;
    if (ts_json_u64(b, "ino", &ino, &e) != 0)
        return api_fail(resp, &e);
    int64_t now = ts_mono_ms();
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_getattr(ns, ino, &a, &e);
    if (rc == 0)
        rc = ns_file_extents(ns, ino, &x, &n, &e);
    if (rc) {
        store_read_unlock(api->st);
        return api_fail(resp, &e);
    }
    /* Asked for: inline chunks' bytes as attachments, not base64. */
    int with_att = json_is_true(json_object_get(b, "attachments"));
    ts_buf att = {0};
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char ids[16][CLUSTER_ID_MAX + 1];
        json_t *ej = ts_extent_to_json(&x[i]);
        uint64_t clen = 0;
        const uint8_t *data;
        ns_chunk_lookup(ns, &x[i].chunk, &clen, NULL, NULL);    /* N6: always known */
        api_set(ej, "chunk_length", json_integer((json_int_t)clen));
        /* An inline chunk: the whole of it (at most NS_INLINE_CHUNK_MAX
         * bytes), no replicas. */
        int is_inline = ns_chunk_inline(ns, &x[i].chunk, &data, &clen);
        if (is_inline && with_att) {
            api_set(ej, "inline_at", json_integer((json_int_t)att.len));
            ts_buf_append(&att, data, (size_t)clen);
        } else if (is_inline) {
            char *b64 = ts_base64_encode(data, (size_t)clen);
            api_set(ej, "inline", json_string(b64));
            free(b64);
        }
        size_t nr = cluster_replicas(api->cl, &x[i].chunk, now, ids, TS_ARRAY_LEN(ids));
        json_t *rj = json_array();
        for (size_t k = 0; k < nr; k++)
            json_array_append_new(rj, json_string(ids[k]));
        api_set(ej, "replicas", rj);
        if (json_array_append_new(arr, ej) != 0)
            ts_die("out of memory building layout of %llu", (unsigned long long)ino);
    }
    store_read_unlock(api->st);
    json_t *o = json_object();
    api_set(o, "attr", ts_attr_to_json(&a));
    api_set(o, "extents", arr);
    if (!with_att)
        return api_reply(resp, o);
    size_t len;
    char *body = ts_json_att_dump(o, &att, &len);
    json_decref(o);
    ts_buf_free(&att);
    ts_http_respond(resp, 200, TS_JSON_ATT_TYPE, body, len);    /* owns body */
    return 0;
}

/* ---- commit ---- */

static int parse_extent(const json_t *j, size_t i, ts_extent *x, ts_error *err)
{
    if (!json_is_object(j))
        return ts_fail(err, TS_EINVAL, "field 'extents[%zu]': expected an object", i);
    if (ts_json_u64(j, "file_offset", &x->file_offset, err) != 0 ||
        ts_json_u64(j, "length", &x->length, err) != 0 ||
        ts_json_chunk_id(j, "chunk", &x->chunk, err) != 0 ||
        ts_json_u64(j, "chunk_offset", &x->chunk_offset, err) != 0) {
        ts_error_prefix(err, "extents[%zu]", i);
        return TS_EINVAL;
    }
    return 0;
}

/* An element of 'chunks' or (is_inline) of 'inline_chunks', which carry
 * their data in the attachments ('inline_at': the offset of its 'length'
 * bytes) or in base64 ('inline'). */
static int parse_chunk(const json_t *j, size_t i, int is_inline, const ts_att *att,
                       ns_chunk_info *ci, ts_error *err)
{
    const char *sha;
    if (!json_is_object(j))
        return ts_fail(err, TS_EINVAL, "field '%schunks[%zu]': expected an object",
                       is_inline ? "inline_" : "", i);
    if (ts_json_chunk_id(j, "id", &ci->id, err) != 0 ||
        ts_json_u64(j, "length", &ci->length, err) != 0 || ts_json_str(j, "sha256", &sha, err) != 0) {
        ts_error_prefix(err, "chunks[%zu]", i);
        return TS_EINVAL;
    }
    if (strlen(sha) != 2 * TS_SHA256_LEN || ts_hex_decode(sha, ci->sha256, TS_SHA256_LEN) != 0)
        return ts_fail(err, TS_EINVAL, "chunks[%zu]: field 'sha256': expected 64 hex digits", i);
    const json_t *d = json_object_get(j, "inline"), *at = json_object_get(j, "inline_at");
    int has_b64 = d != NULL && !json_is_null(d), has_at = at != NULL && !json_is_null(at);
    if (is_inline != (has_b64 || has_at) || (has_b64 && has_at))
        return ts_fail(err, TS_EINVAL, "%schunks[%zu]: field 'inline' or 'inline_at' %s",
                       is_inline ? "inline_" : "", i,
                       !is_inline ? "belongs in 'inline_chunks'" :
                       has_at ? "expected, not both" : "missing");
    if (has_at) {
        if (ci->length > NS_INLINE_CHUNK_MAX)
            return ts_fail(err, TS_EINVAL, "inline_chunks[%zu]: field 'length': an inline chunk "
                           "holds at most %u bytes", i, NS_INLINE_CHUNK_MAX);
        if (ts_att_copy(j, "inline_at", att, ci->length, &ci->data, err) != 0) {
            ts_error_prefix(err, "inline_chunks[%zu]", i);
            return TS_EINVAL;
        }
    } else if (is_inline) {
        size_t n;
        if (!json_is_string(d) || json_string_length(d) > (NS_INLINE_CHUNK_MAX + 2) / 3 * 4 ||
            ts_base64_decode(json_string_value(d), json_string_length(d), &ci->data, &n) != 0)
            return ts_fail(err, TS_EINVAL, "chunks[%zu]: field 'inline': expected base64 of at "
                           "most %u bytes", i, NS_INLINE_CHUNK_MAX);
        if (n != ci->length)
            return ts_fail(err, TS_EINVAL, "chunks[%zu]: inline data of %zu bytes, length says "
                           "%llu", i, n, (unsigned long long)ci->length);
    }
    const json_t *r = json_object_get(j, "replicas");
    if (r && !json_is_null(r)) {
        if (!json_is_array(r))
            return ts_fail(err, TS_EINVAL, "chunks[%zu]: field 'replicas': expected an array", i);
        for (size_t k = 0; k < json_array_size(r); k++)
            if (!json_is_string(json_array_get(r, k)) ||
                strlen(json_string_value(json_array_get(r, k))) > CLUSTER_ID_MAX)
                return ts_fail(err, TS_EINVAL, "chunks[%zu]: field 'replicas[%zu]': expected a "
                               "server id", i, k);
    }
    return 0;
}

/* Parses the data fields of a commit (also the 'data' of a create_at):
 * offset, length, size, mtime, extents, chunks, inline_chunks.  cm->ino is
 * left alone; *has_inline says whether some chunk carries its bytes.  On
 * error cm may hold allocations (cmd_free releases them). */
static int parse_commit(const json_t *b, const ts_att *att, struct cmd_commit *cm, int *has_inline,
                        ts_error *err)
{
    int present = 0, rc;
    *has_inline = 0;
    if (ts_json_u64(b, "offset", &cm->offset, err) != 0 ||
        ts_json_u64(b, "length", &cm->length, err) != 0 ||
        ts_json_u64_opt(b, "size", &cm->size, &present, err) != 0)
        return TS_EINVAL;
    cm->has_size = (uint8_t)present;
    if (ts_json_i64_opt(b, "mtime", &cm->mtime_ns, &present, err) != 0)
        return TS_EINVAL;
    cm->has_mtime = (uint8_t)present;
    const json_t *xs = json_object_get(b, "extents");
    const json_t *cs = json_object_get(b, "chunks");
    const json_t *is = json_object_get(b, "inline_chunks");
    if (!json_is_array(xs) || json_array_size(xs) > MAX_LIST)
        return ts_fail(err, TS_EINVAL, "field 'extents': %s", xs ? "expected an array" : "missing");
    if (cs && !json_is_null(cs) && (!json_is_array(cs) || json_array_size(cs) > MAX_LIST))
        return ts_fail(err, TS_EINVAL, "field 'chunks': expected an array");
    if (is && !json_is_null(is) && (!json_is_array(is) || json_array_size(is) > MAX_LIST))
        return ts_fail(err, TS_EINVAL, "field 'inline_chunks': expected an array");
    size_t nx = json_array_size(xs), nstored = cs ? json_array_size(cs) : 0;
    size_t nc = nstored + (is ? json_array_size(is) : 0);
    cm->extents = nx ? ts_calloc(nx, sizeof(ts_extent)) : NULL;
    cm->chunks = nc ? ts_calloc(nc, sizeof(ns_chunk_info)) : NULL;
    cm->n_extents = (uint32_t)nx;
    cm->n_chunks = (uint32_t)nc;
    for (size_t i = 0; i < nx; i++)
        if ((rc = parse_extent(json_array_get(xs, i), i, &cm->extents[i], err)) != 0)
            return rc;
    for (size_t i = 0; i < nc; i++) {
        int is_inline = i >= nstored;
        const json_t *cj = is_inline ? json_array_get(is, i - nstored) : json_array_get(cs, i);
        if ((rc = parse_chunk(cj, is_inline ? i - nstored : i, is_inline, att, &cm->chunks[i],
                              err)) != 0)
            return rc;
        *has_inline |= is_inline;
    }
    return 0;
}

/* Durable now: records where the writer put the stored chunks (soft
 * state).  b holds the request's 'chunks' (the stored ones come first in
 * cm->chunks). */
static void note_replicas(meta_api *api, const json_t *b, const struct cmd_commit *cm)
{
    const json_t *cs = json_object_get(b, "chunks");
    for (size_t i = 0; i < json_array_size(cs) && i < cm->n_chunks; i++) {
        const json_t *r = json_object_get(json_array_get(cs, i), "replicas");
        for (size_t k = 0; r && k < json_array_size(r); k++)
            cluster_add_replica(api->cl, &cm->chunks[i].id,
                                json_string_value(json_array_get(r, k)));
    }
}

int api_commit(meta_api *api, const json_t *b, const ts_att *att, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_COMMIT };
    cmd_result res;
    int has_inline, rc;
    if ((rc = ts_json_u64(b, "ino", &c.u.commit.ino, &e)) != 0 ||
        (rc = parse_commit(b, att, &c.u.commit, &has_inline, &e)) != 0)
        goto free_cmd;
    if (has_inline)
        c.type = CMD_COMMIT_INLINE;    /* the log record carries the bytes */
    if ((rc = api_request_id(b, &c, &e)) != 0 || (rc = store_submit(api->st, &c, &res, &e)) != 0)
        goto free_cmd;
    note_replicas(api, b, &c.u.commit);
    cmd_free(&c);
    json_t *o = json_object();
    api_set(o, "attr", ts_attr_to_json(&res.attr));
    return api_reply(resp, o);
free_cmd:
    cmd_free(&c);
    return api_fail(resp, &e);
}

/* ---- create at a reserved number ---- */

int api_reserve_inodes(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_RESERVE_INODES };
    cmd_result res;
    if (api_submit(api, b, &c, &res, &e) != 0)
        return api_fail(resp, &e);
    json_t *o = json_object();
    api_set(o, "first", json_integer((json_int_t)res.attr.ino));
    api_set(o, "count", json_integer(NS_RESERVE_BATCH));
    return api_reply(resp, o);
}

int api_create_at(meta_api *api, const json_t *b, const ts_att *att, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_CREATE_AT };
    cmd_result res;
    const char *name;
    int replace = 0, has_inline, rc;
    if ((rc = ts_json_u64(b, "parent", &c.u.create_at.parent, &e)) != 0 ||
        (rc = ts_json_str(b, "name", &name, &e)) != 0 ||
        (rc = ts_json_u64(b, "ino", &c.u.create_at.ino, &e)) != 0 ||
        (rc = api_u32(b, "mode", &c.u.create_at.mode, &e)) != 0 ||
        (rc = api_u32(b, "uid", &c.u.create_at.uid, &e)) != 0 ||
        (rc = api_u32(b, "gid", &c.u.create_at.gid, &e)) != 0 ||
        (rc = api_bool_opt(b, "replace", &replace, &e)) != 0)
        goto free_cmd;
    c.u.create_at.name = ts_strdup(name);
    c.u.create_at.flags = replace ? NS_CREATE_REPLACE : 0;
    const json_t *data = json_object_get(b, "data");
    if (data && !json_is_null(data)) {
        if (!json_is_object(data)) {
            rc = ts_fail(&e, TS_EINVAL, "field 'data': expected an object");
            goto free_cmd;
        }
        c.u.create_at.has_commit = 1;
        c.u.create_at.commit.ino = c.u.create_at.ino;
        if ((rc = parse_commit(data, att, &c.u.create_at.commit, &has_inline, &e)) != 0) {
            ts_error_prefix(&e, "data");
            goto free_cmd;
        }
    }
    if ((rc = api_request_id(b, &c, &e)) != 0 || (rc = store_submit(api->st, &c, &res, &e)) != 0)
        goto free_cmd;
    if (c.u.create_at.has_commit)
        note_replicas(api, data, &c.u.create_at.commit);
    cmd_free(&c);
    json_t *o = json_object();
    api_set(o, "attr", ts_attr_to_json(&res.attr));
    if (res.has_parent)
        api_set(o, "parent", ts_attr_to_json(&res.parent));
    return api_reply(resp, o);
free_cmd:
    cmd_free(&c);
    return api_fail(resp, &e);
}

/* ---- heartbeat ---- */

int api_heartbeat(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *id, *address, *zone = "";
    double weight = 1.0;
    cluster_heartbeat hb = {0};
    ts_chunk_id *full = NULL, *added = NULL, *removed = NULL, *corrupt = NULL;
    int rc;
    if (ts_json_str(b, "id", &id, &e) != 0 || ts_json_str(b, "address", &address, &e) != 0 ||
        ts_json_u64(b, "capacity", &hb.capacity, &e) != 0 ||
        ts_json_u64(b, "used", &hb.used, &e) != 0 ||
        ts_json_u64(b, "chunk_count", &hb.chunk_count, &e) != 0)
        return api_fail(resp, &e);
    if (api_str_opt(b, "zone", &zone, &e) != 0)
        return api_fail(resp, &e);
    const json_t *w = json_object_get(b, "weight");
    if (w && !json_is_null(w)) {
        if (!json_is_number(w) || !(json_number_value(w) > 0)) {
            ts_fail(&e, TS_EINVAL, "field 'weight': expected a positive number");
            return api_fail(resp, &e);
        }
        weight = json_number_value(w);
    }
    if (!*id || strlen(id) > CLUSTER_ID_MAX) {
        ts_fail(&e, TS_EINVAL, "field 'id': expected 1..%d bytes", CLUSTER_ID_MAX);
        return api_fail(resp, &e);
    }
    if ((rc = parse_id_array(b, "full_report", &full, &hb.n_full_report, &hb.has_full_report,
                             &e)) != 0)
        return api_fail(resp, &e);
    int dummy;
    if ((rc = parse_id_array(b, "added", &added, &hb.n_added, &dummy, &e)) != 0)
        goto free_full;
    if ((rc = parse_id_array(b, "removed", &removed, &hb.n_removed, &dummy, &e)) != 0)
        goto free_added;
    if ((rc = parse_id_array(b, "corrupt", &corrupt, &hb.n_corrupt, &dummy, &e)) != 0)
        goto free_added;
    const json_t *fd = json_object_get(b, "failed_dirs");
    if (fd && !json_is_null(fd)) {
        if (!json_is_array(fd)) {
            rc = ts_fail(&e, TS_EINVAL, "field 'failed_dirs': expected an array of paths");
            goto free_added;
        }
        hb.n_failed_dirs = json_array_size(fd);
    }
    hb.id = id;
    hb.full_report = full;
    hb.added = added;
    hb.removed = removed;
    hb.corrupt = corrupt;

    /* Membership is durable: a new server, or a changed address/zone/weight,
     * goes through a REGISTER_SERVER command. */
    const ns_state *ns = store_read_lock(api->st);
    /* Fields the operator set (admin node set-weight/set-zone) are not
     * the heartbeat's to change. */
    int need_register = !ns_server_matches(ns, id, address, zone, weight);
    store_read_unlock(api->st);
    if (need_register) {
        cmd c = { .type = CMD_REGISTER_SERVER };
        cmd_result res;
        c.u.server.id = ts_strdup(id);
        c.u.server.address = ts_strdup(address);
        c.u.server.zone = ts_strdup(zone);
        c.u.server.weight = weight;
        rc = store_submit(api->st, &c, &res, &e);
        cmd_free(&c);
        if (rc)
            goto free_added;
        TS_INFO("registered chunkserver %s at %s (zone '%s', weight %g)", id, address, zone,
                weight);
    }
    /* A new term starts the soft state afresh before this heartbeat counts. */
    cluster_lead_term(api->cl, store_leader_term(api->st), ts_mono_ms());
    ns = store_read_lock(api->st);
    int needed = cluster_on_heartbeat(api->cl, &hb, ts_mono_ms(), ns_knows_chunk, (void *)ns);
    store_read_unlock(api->st);
    free(full);
    free(added);
    free(removed);
    free(corrupt);
    json_t *o = json_object();
    api_set(o, "report_needed", json_boolean(needed));
    return api_reply(resp, o);
free_added:
    free(corrupt);
    free(removed);
    free(added);
free_full:
    free(full);
    return api_fail(resp, &e);
}

/* ---- cluster views ---- */

static json_t *server_json(const ns_server *s, const cluster_server_info *info, int detailed)
{
    json_t *o = json_object();
    api_set(o, "id", json_string(s->id));
    api_set(o, "address", json_string(s->address));
    api_set(o, "zone", json_string(s->zone));
    if (s->weight == (double)(json_int_t)s->weight)
        api_set(o, "weight", json_integer((json_int_t)s->weight));
    else
        api_set(o, "weight", json_real(s->weight));
    api_set(o, "state", json_string(ts_server_state_name(
                            ts_server_state_effective(info->state, s->admin))));
    api_set(o, "admin", json_string(ns_server_admin_name(s->admin)));
    if (detailed) {
        api_set(o, "liveness", json_string(ts_server_state_name(info->state)));
        api_set(o, "state_since_ms_ago", json_integer(info->state_since_ms_ago));
        api_set(o, "failed_dirs", json_integer((json_int_t)info->failed_dirs));
        api_set(o, "corrupt_reported", json_integer((json_int_t)info->corrupt_reported));
        api_set(o, "capacity", json_integer((json_int_t)info->capacity));
        api_set(o, "used", json_integer((json_int_t)info->used));
        api_set(o, "chunks", json_integer((json_int_t)info->chunk_count));
        api_set(o, "last_heartbeat_ms_ago", json_integer(info->last_heartbeat_ms_ago));
    }
    return o;
}

static json_t *servers_array(meta_api *api, const ns_state *ns, int64_t now, int detailed)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < ns_server_count(ns); i++) {
        const ns_server *s = ns_server_at(ns, i);
        cluster_server_info info;
        cluster_server(api->cl, s->id, now, &info);
        if (json_array_append_new(arr, server_json(s, &info, detailed)) != 0)
            ts_die("out of memory building the server list");
    }
    return arr;
}

void api_cluster_servers(meta_api *api, ts_http_response *resp)
{
    int64_t now = ts_mono_ms();
    const ns_state *ns = store_read_lock(api->st);
    json_t *arr = servers_array(api, ns, now, 0);
    store_read_unlock(api->st);
    json_t *o = json_object();
    api_set(o, "servers", arr);
    api_reply(resp, o);
}

struct under_rep {
    cluster *cl;
    int64_t now;
    uint64_t count;
};

static int count_under(void *arg, const ts_chunk_id *id)
{
    struct under_rep *u = arg;
    if (cluster_live_replicas(u->cl, id, u->now) < CLUSTER_REPLICATION)
        u->count++;
    return 0;
}

/* The re-replication loop's figures (repair.h) for the status answer. */
static json_t *repair_json(repair *rp)
{
    repair_stats rs;
    repair_get_stats(rp, &rs);
    json_t *o = json_object();
    api_set(o, "active", json_boolean(rs.leader && rs.reports_complete));
    api_set(o, "reports_complete", json_boolean(rs.reports_complete));
    api_set(o, "under_replicated", json_integer((json_int_t)rs.under_replicated));
    api_set(o, "single_replica", json_integer((json_int_t)rs.single_replica));
    api_set(o, "lost", json_integer((json_int_t)rs.lost));
    api_set(o, "copies_running", json_integer((json_int_t)rs.copies_running));
    api_set(o, "copies_awaiting_report", json_integer((json_int_t)rs.copies_awaiting));
    api_set(o, "copies_total", json_integer((json_int_t)rs.copies_total));
    api_set(o, "copy_bytes_total", json_integer((json_int_t)rs.copy_bytes_total));
    api_set(o, "copy_failures_total", json_integer((json_int_t)rs.copy_failures_total));
    api_set(o, "copy_busy_total", json_integer((json_int_t)rs.copy_busy_total));
    api_set(o, "deletes_total", json_integer((json_int_t)rs.deletes_total));
    api_set(o, "bytes_per_sec", json_integer((json_int_t)rs.bytes_per_sec));
    api_set(o, "episode_active", json_boolean(rs.episode_active));
    api_set(o, "episode_ms", json_integer(rs.episode_active ? rs.episode_ms : 0));
    api_set(o, "last_single_replica_restore_ms", json_integer(rs.last_single_restore_ms));
    api_set(o, "last_full_restore_ms", json_integer(rs.last_full_restore_ms));
    api_set(o, "last_restore_bytes", json_integer((json_int_t)rs.last_bytes));
    api_set(o, "last_restore_mib_per_sec", json_real(rs.last_mb_per_sec));
    return o;
}

/* The orphan table and the garbage collector (gc.h) for the status. */
static json_t *gc_json(meta_api *api)
{
    uint64_t chunks, replicas;
    json_t *o = json_object();
    cluster_orphan_counts(api->cl, &chunks, &replicas);
    api_set(o, "orphan_chunks", json_integer((json_int_t)chunks));
    api_set(o, "orphan_replicas", json_integer((json_int_t)replicas));
    api_set(o, "enabled", json_boolean(api->gc != NULL));
    if (api->gc == NULL)
        return o;
    gc_stats gs;
    gc_get_stats(api->gc, &gs);
    api_set(o, "grace_ms", json_integer(gs.grace_ms));
    api_set(o, "due", json_integer((json_int_t)gs.due));
    api_set(o, "deletes_total", json_integer((json_int_t)gs.deletes_total));
    api_set(o, "delete_failures_total", json_integer((json_int_t)gs.delete_failures_total));
    api_set(o, "spared_by_recheck_total", json_integer((json_int_t)gs.rechecks_saved));
    return o;
}

void api_cluster_status(meta_api *api, ts_http_response *resp)
{
    int64_t now = ts_mono_ms();
    ns_stats st;
    struct under_rep u = { api->cl, now, 0 };
    const ns_state *ns = store_read_lock(api->st);
    json_t *arr = servers_array(api, ns, now, 1);
    ns_get_stats(ns, &st);
    /* Walks every chunk: O(chunks) per status call, fine for an admin view. */
    ns_chunk_foreach(ns, count_under, &u);
    cluster_prune(api->cl, ns_knows_chunk, (void *)ns);
    json_t *cj = api_compaction_json(api, ns);
    store_read_unlock(api->st);
    json_t *o = json_object();
    api_set(o, "servers", arr);
    api_set(o, "chunks", json_integer((json_int_t)(st.chunks - st.inline_chunks)));
    api_set(o, "inline_chunks", json_integer((json_int_t)st.inline_chunks));
    api_set(o, "inline_bytes", json_integer((json_int_t)st.inline_bytes));
    api_set(o, "under_replicated", json_integer((json_int_t)u.count));
    api_set(o, "files", json_integer((json_int_t)st.files));
    api_set(o, "directories", json_integer((json_int_t)st.directories));
    if (api->rp != NULL)
        api_set(o, "repair", repair_json(api->rp));
    api_set(o, "rebalance", api_rebalance_json(api));
    api_set(o, "gc", gc_json(api));
    api_set(o, "compaction", cj);
    api_reply(resp, o);
}

/* ---- metrics ---- */

static uint64_t resident_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void api_metrics(meta_api *api, ts_http_response *resp)
{
    ns_stats st;
    store_stats ss;
    int64_t now = ts_mono_ms();
    uint64_t up = 0, suspect = 0, down = 0, servers;
    const ns_state *ns = store_read_lock(api->st);
    ns_get_stats(ns, &st);
    servers = ns_server_count(ns);
    for (size_t i = 0; i < servers; i++) {
        cluster_server_info info;
        cluster_server(api->cl, ns_server_at(ns, i)->id, now, &info);
        up += info.up;
        suspect += info.state == TS_SERVER_SUSPECT;
        down += info.state == TS_SERVER_DOWN;
    }
    store_read_unlock(api->st);
    store_get_stats(api->st, &ss);
    ts_buf b = {0};
#define GAUGE(name, help, v)                                                      \
    ts_buf_printf(&b, "# HELP tessera_meta_" name " " help "\n# TYPE tessera_meta_" name \
                  " gauge\ntessera_meta_" name " %llu\n", (unsigned long long)(v))
#define COUNTER(name, help, v)                                                    \
    ts_buf_printf(&b, "# HELP tessera_meta_" name " " help "\n# TYPE tessera_meta_" name \
                  " counter\ntessera_meta_" name " %llu\n", (unsigned long long)(v))
    GAUGE("files", "Regular files in the namespace.", st.files);
    GAUGE("directories", "Directories in the namespace.", st.directories);
    GAUGE("symlinks", "Symbolic links in the namespace.", st.symlinks);
    GAUGE("chunks", "Chunks on chunkservers referenced by files.", st.chunks - st.inline_chunks);
    GAUGE("inline_chunks", "Inline chunks (data kept in the metadata) referenced by files.",
          st.inline_chunks);
    GAUGE("inline_bytes", "Bytes of the inline chunks.", st.inline_bytes);
    GAUGE("extents", "Extents of all files.", st.extents);
    COUNTER("garbage_chunks_total", "Chunks whose reference count dropped to zero.",
            st.garbage_chunks);
    GAUGE("servers", "Registered chunkservers.", servers);
    GAUGE("servers_up", "Chunkservers with a recent heartbeat.", up);
    GAUGE("servers_suspect", "Chunkservers silent past heartbeat_timeout_ms, not yet down.",
          suspect);
    GAUGE("servers_down", "Chunkservers silent past down_after_ms.", down);
    COUNTER("corrupt_replicas_total", "Replicas chunkservers reported corrupt (quarantined).",
            cluster_corrupt_count(api->cl));
    if (api->rp != NULL) {
        repair_stats rs;
        repair_get_stats(api->rp, &rs);
        GAUGE("repair_under_replicated", "Chunks below their replication factor (last round).",
              rs.under_replicated);
        GAUGE("repair_single_replica", "Chunks with a single live replica (last round).",
              rs.single_replica);
        GAUGE("repair_lost", "Chunks with no readable replica (last round).", rs.lost);
        GAUGE("repair_copies_running", "Re-replication copies in flight.", rs.copies_running);
        COUNTER("repair_copies_total", "Re-replication copies confirmed by a report.",
                rs.copies_total);
        COUNTER("repair_copy_bytes_total", "Bytes of confirmed re-replication copies.",
                rs.copy_bytes_total);
        COUNTER("repair_copy_failures_total", "Re-replication copies that failed.",
                rs.copy_failures_total);
        COUNTER("repair_copy_busy_total", "Copies refused by a busy chunkserver (503).",
                rs.copy_busy_total);
        COUNTER("repair_deletes_total", "Surplus replicas deleted.", rs.deletes_total);
        repair_rebalance_stats rb;
        repair_get_rebalance(api->rp, &rb);
        GAUGE("rebalance_running", "1 while a rebalance runs (the durable flag).",
              (uint64_t)rb.running);
        GAUGE("rebalance_bytes_remaining", "Bytes of rebalance moves not started yet.",
              rb.bytes_remaining);
        GAUGE("rebalance_copies_running", "Rebalance copies in flight or awaiting a report.",
              rb.copies_running);
        COUNTER("rebalance_copy_bytes_total", "Bytes of confirmed rebalance copies.",
                rb.bytes_copied);
        /* -1 (none yet) is shown as 0 by the unsigned gauge: both mean "no figure". */
        GAUGE("repair_last_single_replica_restore_ms",
              "Time until no chunk had a single replica, in the last repair episode.",
              rs.last_single_restore_ms > 0 ? rs.last_single_restore_ms : 0);
        GAUGE("repair_last_full_restore_ms",
              "Time until every chunk had its full count, in the last repair episode.",
              rs.last_full_restore_ms > 0 ? rs.last_full_restore_ms : 0);
    }
    {
        uint64_t oc, orp;
        cluster_orphan_counts(api->cl, &oc, &orp);
        GAUGE("orphan_chunks", "Reported chunks the namespace does not reference.", oc);
        GAUGE("orphan_replicas", "Replicas of orphan chunks.", orp);
    }
    if (api->gc != NULL) {
        gc_stats gs;
        gc_get_stats(api->gc, &gs);
        COUNTER("gc_deletes_total", "Orphan replicas deleted by the garbage collector.",
                gs.deletes_total);
        COUNTER("gc_delete_failures_total", "Orphan deletes that failed.",
                gs.delete_failures_total);
    }
    GAUGE("replica_locations", "Known (chunk, server) replica locations.",
          cluster_location_count(api->cl));
    GAUGE("log_index", "Last write-ahead log index applied.", ss.last_index);
    GAUGE("snapshot_index", "Log index of the newest snapshot.", ss.snapshot_index);
    COUNTER("snapshots_total", "Snapshots written by this process.", ss.snapshots_written);
    GAUGE("snapshot_running", "1 while the background checkpointer builds a snapshot.",
          ss.snapshot_running);
    GAUGE("snapshot_last_ms", "How long the last snapshot took to build and write.",
          ss.snapshot_last_ms);
    COUNTER("wal_records_total", "Log records appended by this process.", ss.wal.records);
    COUNTER("wal_replayed_total", "Log records replayed at start.", ss.wal.replayed);
    COUNTER("wal_flushes_total", "Group-commit write+fsync rounds.", ss.wal.flushes);
    COUNTER("wal_bytes_total", "Bytes written to the log.", ss.wal.bytes);
    COUNTER("commands_ok_total", "Commands applied.", ss.commands_ok);
    COUNTER("commands_failed_total", "Commands rejected by validation.", ss.commands_failed);
    COUNTER("requests_total", "HTTP requests handled.", atomic_load(&api->requests));
    COUNTER("request_errors_total", "HTTP requests answered with an error.",
            atomic_load(&api->request_errors));
    ts_buf_printf(&b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                  "# TYPE process_resident_memory_bytes gauge\n"
                  "process_resident_memory_bytes %llu\n",
                  (unsigned long long)resident_bytes());
#undef GAUGE
#undef COUNTER
    ts_http_respond(resp, 200, "text/plain; version=0.0.4", b.data, b.len);
}
