/*
 * Metadata HTTP API, replicated mode: this server's Raft status, the
 * membership and leadership calls, and the 421 answer that sends clients to
 * the leader (common/PROTOCOL.md, "Metadata high availability").
 */
#include "metadata/meta_api_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"
#include "metadata/raft/raft_node.h"
#include "metadata/raft/raft_storage.h"

#define CHANGE_TIMEOUT_MS 10000

void api_not_leader(meta_api *api, ts_http_response *resp, const char *why)
{
    char leader[RAFT_ADDR_MAX];
    store_is_leader(api->st, leader);
    json_t *o = json_object();
    if (!o)
        ts_die("out of memory building a reply");
    api_set(o, "error", json_string("ENOTLEADER"));
    api_set(o, "message", json_string(leader[0] ? why : "no leader is known (an election is "
                                      "running): retry shortly"));
    api_set(o, "leader", leader[0] ? json_string(leader) : json_null());
    char *text = ts_json_dump(o);
    json_decref(o);
    free(resp->extra_headers);
    resp->extra_headers = NULL;
    ts_http_respond(resp, 421, "application/json", text, strlen(text));
    if (leader[0]) {
        char *loc = ts_sprintf("http://%s/", leader);
        ts_http_add_header(resp, "Location", loc);
        free(loc);
    }
}

/* The configured name of member id, else "meta-<id>" (the naming rule of
 * tessera-meta's `id` key). */
static void member_name(const meta_api *api, uint64_t id, char *out, size_t len)
{
    for (uint32_t i = 0; i < api->names_conf.n; i++) {
        if (api->names_conf.m[i].id == id) {
            snprintf(out, len, "%s", api->names[i]);
            return;
        }
    }
    snprintf(out, len, "meta-%" PRIu64, id);
}

static const char *role_text(const raft_status *st)
{
    if (st->is_learner)
        return "learner";
    switch (st->role) {
    case RAFT_LEADER: return "leader";
    case RAFT_CANDIDATE:
    case RAFT_PRECANDIDATE: return "candidate";
    default: return "follower";
    }
}

void api_raft_status(meta_api *api, ts_http_response *resp)
{
    raft_node *rn = store_raft(api->st);
    raft_status st;
    raft_storage_stats ss;
    char name[64];
    raft_node_status(rn, &st);
    raft_node_storage_stats(rn, &ss);
    json_t *o = json_object(), *members = json_array();
    if (!o || !members)
        ts_die("out of memory building the Raft status");
    member_name(api, st.id, name, sizeof(name));
    const raft_member *self = raft_conf_find(&st.conf, st.id);
    const raft_member *leader = st.leader ? raft_conf_find(&st.conf, st.leader) : NULL;
    api_set(o, "id", json_string(name));
    api_set(o, "raft_id", json_integer((json_int_t)st.id));
    if (self != NULL)
        api_set(o, "address", json_string(self->addr));
    else
        api_set(o, "address", json_null());
    api_set(o, "role", json_string(st.is_member || st.role == RAFT_LEADER ? role_text(&st)
                                                                          : "learner"));
    api_set(o, "term", json_integer((json_int_t)st.term));
    api_set(o, "commit", json_integer((json_int_t)st.commit));
    api_set(o, "applied", json_integer((json_int_t)st.applied));
    api_set(o, "leader", leader ? json_string(leader->addr) : json_null());
    api_set(o, "log_first", json_integer((json_int_t)ss.first_index));
    api_set(o, "log_last", json_integer((json_int_t)ss.last_index));
    api_set(o, "log_entries", json_integer((json_int_t)(ss.last_index >= ss.first_index &&
                                                        ss.last_index ? ss.last_index -
                                                        ss.first_index + 1 : 0)));
    uint64_t by_handlers, by_driver;
    raft_node_round_stats(rn, &by_handlers, &by_driver);
    api_set(o, "rounds_in_handlers", json_integer((json_int_t)by_handlers));
    api_set(o, "rounds_in_driver", json_integer((json_int_t)by_driver));
    api_set(o, "snapshot_index", json_integer((json_int_t)st.snap_index));
    api_set(o, "snapshot_term", json_integer((json_int_t)st.snap_term));
    for (uint32_t i = 0; i < st.conf.n; i++) {
        json_t *m = json_object();
        if (!m)
            ts_die("out of memory building the Raft status");
        member_name(api, st.conf.m[i].id, name, sizeof(name));
        api_set(m, "id", json_string(name));
        api_set(m, "raft_id", json_integer((json_int_t)st.conf.m[i].id));
        api_set(m, "address", json_string(st.conf.m[i].addr));
        api_set(m, "voter", json_boolean(st.conf.m[i].role == RAFT_VOTER));
        if (st.role == RAFT_LEADER) {
            api_set(m, "match", json_integer((json_int_t)st.pr[i].match));
            api_set(m, "next", json_integer((json_int_t)st.pr[i].next));
        }
        if (json_array_append_new(members, m) != 0)
            ts_die("out of memory building the Raft status");
    }
    api_set(o, "members", members);
    api_reply(resp, o);
}

void api_raft_fault(meta_api *api, const ts_http_request *req, ts_http_response *resp)
{
    ts_error e = {0};
    json_t *body = NULL, *list, *v;
    uint64_t ids[RAFT_MAX_MEMBERS];
    size_t n = 0, i;
    if (ts_json_parse_object(req->body, req->body_len, &body, &e) != 0) {
        ts_error_prefix(&e, "%s", req->path);
        api_fail(resp, &e);
        return;
    }
    list = json_object_get(body, "isolate");
    if (!json_is_array(list)) {
        ts_fail(&e, TS_EINVAL, "%s: field 'isolate': expected an array of Raft ids",
                req->path);
        goto fail;
    }
    json_array_foreach(list, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0 || n == RAFT_MAX_MEMBERS) {
            ts_fail(&e, TS_EINVAL, "%s: field 'isolate': at most %d positive Raft ids",
                    req->path, RAFT_MAX_MEMBERS);
            goto fail;
        }
        ids[n++] = (uint64_t)json_integer_value(v);
    }
    if (raft_transport_isolate(api->rt, ids, n, &e) != 0)
        goto fail;
    json_decref(body);
    api_reply(resp, json_object());
    return;
fail:
    json_decref(body);
    api_fail(resp, &e);
}

/* POST /v1/raft/add {"id":N,"address":"host:port"}, /v1/raft/remove
 * {"id":N}, /v1/raft/transfer {"id":N}; answered when the change is
 * committed (add, remove) or started (transfer). */
int api_raft_change(meta_api *api, const char *path, const json_t *body,
                    ts_http_response *resp)
{
    raft_node *rn = store_raft(api->st);
    ts_error e = {0};
    uint64_t id;
    const char *addr = NULL;
    char leader[RAFT_ADDR_MAX] = "";
    int rc;
    if (ts_json_u64(body, "id", &id, &e) != 0)
        return api_fail(resp, &e);
    if (id == 0) {
        ts_fail(&e, TS_EINVAL, "field 'id': must be positive");
        return api_fail(resp, &e);
    }
    if (strcmp(path, "/v1/raft/add") == 0) {
        if (ts_json_str(body, "address", &addr, &e) != 0)
            return api_fail(resp, &e);
        rc = raft_node_change(rn, RAFT_CONF_ADD, id, addr, CHANGE_TIMEOUT_MS, leader, &e);
    } else if (strcmp(path, "/v1/raft/remove") == 0) {
        rc = raft_node_change(rn, RAFT_CONF_REMOVE, id, NULL, CHANGE_TIMEOUT_MS, leader, &e);
    } else if (strcmp(path, "/v1/raft/transfer") == 0) {
        rc = raft_node_transfer(rn, id, leader, &e);
    } else {
        ts_http_respond_error(resp, TS_ENOENT, "no such endpoint: POST %s", path);
        return TS_ENOENT;
    }
    if (rc == TS_ENOTLEADER) {
        api_not_leader(api, resp, e.msg);
        return rc;
    }
    if (rc != 0) {
        ts_error_prefix(&e, "%s member %" PRIu64, path + 9, id);
        return api_fail(resp, &e);
    }
    TS_INFO("raft: %s of member %" PRIu64 "%s%s done", path + 9, id, addr ? " at " : "",
            addr ? addr : "");
    json_t *o = json_object();
    if (!o)
        ts_die("out of memory building a reply");
    return api_reply(resp, o);
}
