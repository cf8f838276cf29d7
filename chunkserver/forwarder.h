/*
 * The forwarder: streams a chunk upload on to the next server of the write
 * chain while this server is still receiving it, so data flows client -> A ->
 * B -> C as a pipeline instead of store-and-forward.
 *
 * The upstream side (the HTTP data callback) pushes pieces into a bounded
 * byte ring; a worker thread (from a process-wide pool whose workers keep
 * their connections to downstream servers open between chunks) runs
 * ts_http_put_stream whose read callback drains the ring.  When the ring is
 * full, push blocks: the slowest server of the chain paces the whole chain
 * (backpressure) and memory stays bounded.
 *
 *     start ──► streaming ──finish(complete=1)──► downstream answered (any status)
 *                  │  └─ downstream ended early ─► push returns nonzero
 *                  └─finish(complete=0)─► transfer aborted (downstream sees a
 *                                          truncated upload and drops it)
 *
 * One thread pushes; the worker reads; finish waits for the worker's end.
 * Once content_length bytes are pushed the body is complete downstream
 * even before finish, so the caller can seal its own copy while the
 * downstream servers seal theirs.
 */
#ifndef TS_FORWARDER_H
#define TS_FORWARDER_H

#include <stddef.h>
#include <stdint.h>
#include "common/ts_error.h"

/* Deliberately not common/http_client.h: its function ts_http_request
 * collides with the server's request type of the same name, and chunk_api.c
 * includes http_server.h. */

typedef struct ts_forwarder ts_forwarder;

/* Downstream's answer. */
typedef struct ts_forward_result {
    long status;      /* HTTP status */
    char *body;       /* malloc'd, NUL-terminated (may be NULL); ts_forward_result_free */
    size_t body_len;
} ts_forward_result;

void ts_forward_result_free(ts_forward_result *r);

/* Hands the transfer to a worker: PUT url with a body of exactly
 * content_length bytes, buffering at most min(ring_bytes, content_length)
 * between push and the transfer.  timeout_ms bounds the whole transfer
 * (0 = none).  *out is owned by the caller until ts_forwarder_finish.
 * TS_EIO if no worker is idle and none can be started. */
int ts_forwarder_start(const char *url, uint64_t content_length, size_t ring_bytes,
                       long timeout_ms, ts_forwarder **out, ts_error *err);

/* Copies len bytes into the ring, blocking while it is full.  Returns 0, or
 * TS_EUNAVAIL when the downstream transfer has already ended (refused,
 * failed, or answered early): call ts_forwarder_finish to learn why. */
int ts_forwarder_push(ts_forwarder *f, const void *buf, size_t len);

/* complete=1: the body is all pushed; waits for downstream's answer.
 * complete=0: aborts the transfer (what is still buffered is not sent).
 * Waits for the worker to be done with f, and frees f.
 * Returns 0 with *out filled when downstream answered (any HTTP status;
 * caller frees with ts_forward_result_free), else the transport error of
 * ts_http_put_stream (TS_EUNAVAIL, TS_ETIMEDOUT; an aborted transfer ends
 * this way too) with err filled.  out may be NULL. */
int ts_forwarder_finish(ts_forwarder *f, int complete, ts_forward_result *out, ts_error *err);

#endif
