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

struct meta_api {
    store *st;
    cluster *cl;
    ts_http_server *http;
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
/* Sets obj[key] = v (aborts on OOM). */
void api_set(json_t *obj, const char *key, json_t *v);

/* Handlers in meta_cluster_api.c; body is the parsed request (NULL for GET). */
int api_layout(meta_api *api, const json_t *body, ts_http_response *resp);
int api_commit(meta_api *api, const json_t *body, ts_http_response *resp);
int api_heartbeat(meta_api *api, const json_t *body, ts_http_response *resp);
void api_cluster_servers(meta_api *api, ts_http_response *resp);
void api_cluster_status(meta_api *api, ts_http_response *resp);
void api_metrics(meta_api *api, ts_http_response *resp);

#endif
