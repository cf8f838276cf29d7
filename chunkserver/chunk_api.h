/*
 * The chunkserver's HTTP API (common/PROTOCOL.md, "Chunkserver"):
 *
 *   PUT  /v1/chunk/ID?chain=H:P,H:P   store a chunk, forwarding the stream to
 *                                     the rest of the chain while writing it
 *   GET  /v1/chunk/ID                 read (Range: bytes=A-B | A- | -N), every
 *                                     block served CRC-checked first
 *   GET  /v1/chunk/ID/info            {"id","length","sha256","blocks"}
 *   DELETE /v1/chunk/ID               remove a sealed chunk (rebalance, GC)
 *   POST /v1/chunk/ID/replicate       pull the chunk from another server
 *                                     (chunk_copy.h); a GET with ?copy=DEST
 *                                     is such a pull, counted as outgoing
 *   POST /v1/chunk/ID/build           make chunk ID from ranges of others
 *                                     and store it through a chain
 *                                     (chunk_build.h; compaction)
 *   A read that meets a corrupt block or footer quarantines the replica,
 *   and one that meets an I/O error has its data dir probed
 *   (ts_chunk_store_read_failed): it is never served again.
 *   GET  /health                      {"ok":true,"role":"chunk","id":…}
 *   GET  /metrics                     Prometheus text
 *   …    /v1/task…                    the MapReduce task executor, when one
 *                                     is attached (task_exec.h)
 *
 * Runs on its own HTTP server with a thread per connection, because a PUT
 * handler blocks on the downstream servers of the chain (a bounded pool could
 * deadlock when servers forward to each other).
 *
 * The write chain: a PUT carries the servers after this one in `chain`.
 * This server writes each piece locally and pushes it to a forwarder (see
 * forwarder.h) that PUTs the stream to chain[0] with chain[1..] — pipelined,
 * with backpressure.  At the end it waits for downstream, seals its own copy
 * and answers 201 with replicas = [this server, then downstream's replicas].
 * If downstream fails, the local copy is dropped and the answer is 502
 * EUNAVAIL naming the failed server and its chain position (position 1 is
 * the server the client talks to; a forwarded request carries `pos`).
 */
#ifndef TS_CHUNK_API_H
#define TS_CHUNK_API_H

#include <stdint.h>
#include "chunkserver/chunk_build.h"
#include "chunkserver/chunk_copy.h"
#include "chunkserver/chunk_store.h"
#include "chunkserver/scrubber.h"
#include "common/http_server.h"
#include "common/ts_error.h"

typedef struct ts_chunk_api ts_chunk_api;

typedef struct ts_chunk_api_opts {
    ts_chunk_store *store;         /* borrowed; must outlive the API */
    const char *server_id;         /* "cs-1"; copied */
    const char *bind_addr;         /* NULL = 0.0.0.0 */
    int port;                      /* 0 = any free port */
    uint64_t max_chunk_size;       /* larger uploads get 413 EFBIG; 0 = 1 GiB */
    size_t forward_buffer;         /* bytes buffered toward downstream; 0 = 4 MiB */
    unsigned connection_timeout_s; /* idle client connections; 0 = 60 */
    /* Requests to /v1/task and /v1/task/... go to this handler (the task
     * executor, task_exec.h); NULL answers them 404.  task_app is its app. */
    ts_http_handler_fn task_handler;
    void *task_app;
    /* Replication (chunk_copy.h); NULL answers replicate with 404 and
     * serves ?copy= reads unlimited.  Borrowed; must outlive the API. */
    ts_chunk_copier *copier;
    /* Its counters appear in /metrics when given.  Borrowed. */
    ts_scrubber *scrubber;
    /* Chunk building for compaction (chunk_build.h): POST /v1/chunk/ID/build;
     * NULL answers it 404.  Borrowed; must outlive the API. */
    ts_chunk_builder *builder;
} ts_chunk_api_opts;

/* Starts serving.  TS_EIO (port in use, …) or TS_EINVAL.  *out is owned by
 * the caller (ts_chunk_api_stop). */
int ts_chunk_api_start(const ts_chunk_api_opts *opts, ts_chunk_api **out, ts_error *err);
/* The port actually bound (useful with port 0). */
int ts_chunk_api_port(const ts_chunk_api *api);
/* Stops accepting, waits for running requests, frees api. */
void ts_chunk_api_stop(ts_chunk_api *api);

#endif
