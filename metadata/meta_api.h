/*
 * The metadata server's HTTP API (common/PROTOCOL.md, "Metadata server"):
 * namespace calls under /v1/ns/, file layout and commit under /v1/file/,
 * cluster views under /v1/cluster/, chunkserver heartbeats, /health and
 * /metrics.  This is the HTTP boundary of the metadata server: JSON in,
 * commands to the store or reads under its read lock, JSON out; errors as
 * {"error","message"} with the status from ts_err_http_status.  Malformed
 * JSON, missing fields and wrong types are answered 400 EINVAL naming the
 * field.
 *
 * meta_api_handle is the whole dispatcher and needs no socket, so tests call
 * it directly with a hand-made request.
 */
#ifndef TS_META_API_H
#define TS_META_API_H

#include "common/http_server.h"
#include "metadata/cluster.h"
#include "metadata/store.h"

typedef struct meta_api meta_api;

/* The API over a store and a cluster (both borrowed; they must outlive it). */
meta_api *meta_api_new(store *st, cluster *cl);
/* Replicated mode (before meta_api_listen): serve the Raft transport on
 * this server (POST /v1/raft/msg), the Raft status and membership calls,
 * and answer client calls on a follower with 421 (common/PROTOCOL.md).
 * peers: the configured group and names[i] the name of peers->m[i], used
 * to show names in the status.  Connections then get a thread each, so
 * requests waiting for a commit never hold up the Raft messages that
 * would commit them. */
struct raft_transport;
void meta_api_set_raft(meta_api *api, struct raft_transport *rt, const raft_conf *peers,
                       char names[][64]);
/* The leader's re-replication loop (repair.h; borrowed, outlives the API),
 * whose figures the status and /metrics show.  Without it they are left
 * out. */
struct repair;
void meta_api_set_repair(meta_api *api, struct repair *rp);
/* The leader's garbage collector (gc.h; borrowed, outlives the API): its
 * figures in the status ("gc") and /metrics.  Without it they are left out. */
struct gc;
void meta_api_set_gc(meta_api *api, struct gc *g);
/* The leader's compactor (compact.h; borrowed, outlives the API): POST
 * /v1/admin/compact and the status's "compaction".  Without it the
 * endpoint answers EINVAL. */
struct compact;
void meta_api_set_compact(meta_api *api, struct compact *cp);
/* Stops listening if needed and frees. */
void meta_api_free(meta_api *api);

/* Serves on bind_addr:port (port 0 = any) with a thread pool.  TS_EIO. */
int meta_api_listen(meta_api *api, const char *bind_addr, int port, unsigned threads,
                    ts_error *err);
/* The bound port (after meta_api_listen). */
int meta_api_port(const meta_api *api);
/* Stops the HTTP server, waiting for running handlers. */
void meta_api_stop(meta_api *api);

/* Handles one buffered request (app is the meta_api). */
void meta_api_handle(void *app, const ts_http_request *req, ts_http_response *resp);

#endif
