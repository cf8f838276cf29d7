/*
 * Private to the metadata HTTP API: the context shared by meta_api.c
 * (dispatch and namespace calls) and meta_cluster_api.c (file layout and
 * commit, cluster views, heartbeats, health, metrics), and the JSON helpers
 * both use.
 */
#ifndef TS_META_API_INT_H
#define TS_META_API_INT_H

#include <jansson.h>
#include <stdatomic.h>
#include "common/proto.h"
#include "metadata/meta_api.h"
#include "metadata/compact.h"
#include "metadata/gc.h"
#include "metadata/repair.h"
#include "metadata/raft/raft_transport.h"

struct meta_api {
    store *st;
    cluster *cl;
    ts_http_server *http;
    raft_transport *rt;         /* replicated mode, else NULL */
    struct repair *rp;          /* the re-replication loop, or NULL */
    struct gc *gc;              /* the garbage collector, or NULL */
    struct compact *cp;         /* the compactor, or NULL */
    raft_conf names_conf;       /* the configured peers: raft id -> address */
    char names[RAFT_MAX_MEMBERS][64];   /* ... and their names, same order */
    atomic_ulong requests;
    atomic_ulong request_errors;
};

/* Answers 200 with obj (takes the reference); returns 0. */
int api_reply(ts_http_response *resp, json_t *obj);
/* Answers the error in e; returns its code. */
int api_fail(ts_http_response *resp, const ts_error *e);
/* Request field helpers: TS_EINVAL "field 'x': ..." */
int api_u32(const json_t *o, const char *key, uint32_t *out, ts_error *err);
int api_bool_opt(const json_t *o, const char *key, int *out, ts_error *err);
/* An optional string field: *out unchanged when absent or null; borrowed
 * from o. */
int api_str_opt(const json_t *o, const char *key, const char **out, ts_error *err);
/* Sets obj[key] = v (aborts on OOM). */
void api_set(json_t *obj, const char *key, json_t *v);

/* Reads the optional request id ("client": 16 hex digits, "seq", "acked")
 * of a mutating request into c.  TS_EINVAL naming the field. */
int api_request_id(const json_t *b, cmd *c, ts_error *err);

/* Handlers in meta_cluster_api.c; body is the parsed request (NULL for GET). */
int api_layout(meta_api *api, const json_t *body, ts_http_response *resp);
/* Adds b's request id to c and submits it (store_submit); frees c. */
int api_submit(meta_api *api, const json_t *b, cmd *c, cmd_result *res, ts_error *err);
/* The two that take attachments (common/proto.h TS_JSON_ATT_TYPE): att
 * holds the bytes of the inline chunks named by "inline_at" (empty for a
 * plain JSON body). */
int api_commit(meta_api *api, const json_t *body, const ts_att *att, ts_http_response *resp);
int api_reserve_inodes(meta_api *api, const json_t *body, ts_http_response *resp);
int api_create_at(meta_api *api, const json_t *body, const ts_att *att, ts_http_response *resp);
int api_heartbeat(meta_api *api, const json_t *body, ts_http_response *resp);
void api_cluster_servers(meta_api *api, ts_http_response *resp);
void api_cluster_status(meta_api *api, ts_http_response *resp);
void api_metrics(meta_api *api, ts_http_response *resp);
/* In meta_compact_api.c: POST /v1/admin/compact {"path","dry_run"}, and the
 * status's "compaction" object (store read lock held by the caller). */
int api_compact(meta_api *api, const json_t *body, ts_http_response *resp);
json_t *api_compaction_json(meta_api *api, const ns_state *ns);

/* Cluster operations, in meta_ops_api.c: the POST handler of a
 * /v1/admin/... path, or NULL; *read: answered from local state (as in
 * meta_api.c's route table). */
typedef int (*api_post_fn)(meta_api *api, const json_t *body, ts_http_response *resp);
api_post_fn api_ops_find(const char *path, int *read);
/* The rebalance flag and the leader's progress figures (the answer of
 * /v1/admin/rebalance/status, also under "rebalance" in the cluster status). */
json_t *api_rebalance_json(meta_api *api);

/* Replicated mode, in meta_raft_api.c: GET /v1/raft/status (this server's
 * view), POST /v1/raft/add|remove|transfer, and the 421 answer. */
void api_raft_status(meta_api *api, ts_http_response *resp);
/* POST /v1/raft/fault {"isolate":[raft ids]}: fault injection (refused
 * unless the server runs with fault_injection = true). */
void api_raft_fault(meta_api *api, const ts_http_request *req, ts_http_response *resp);
int api_raft_change(meta_api *api, const char *path, const json_t *body,
                    ts_http_response *resp);
/* Answers 421 ENOTLEADER naming the leader (body field "leader" and a
 * Location header when it is known).  why: the message. */
void api_not_leader(meta_api *api, ts_http_response *resp, const char *why);

#endif
