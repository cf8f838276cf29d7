/*
 * Chunk copies between chunkservers, the way repair and rebalance move
 * replicas (never through the metadata server):
 *
 *   POST /v1/chunk/ID/replicate  {"from":["H:P",…]}
 *     this server (the destination) pulls chunk ID from the first source
 *     that works: GET H:P/v1/chunk/ID/info for its length and SHA-256, then
 *     GET H:P/v1/chunk/ID?copy=THIS_ID streamed straight into a chunk
 *     writer, sealed only when the SHA-256 of what arrived matches the
 *     source's.  Answers 201 {"id","length","sha256","copied":true}, or 200
 *     with "copied":false when the chunk was here already (idempotent, so
 *     a planner may simply retry).  503 EBUSY (with Retry-After) when this
 *     server already receives max_copies_in copies, or every source refused
 *     as busy: the planner tries again later.  502 EUNAVAIL naming each
 *     source's failure when none could give the chunk; 507 ENOSPC.
 *
 *   GET /v1/chunk/ID?copy=DEST on a source: the chunk API counts it as an
 *     outgoing copy for as long as the bytes are being sent and refuses it
 *     with 503 EBUSY beyond max_copies_out (ts_chunk_copier_begin_out).
 *
 * Bandwidth: the bytes a destination receives are drawn from the shared
 * background budget (throttle.h); a slowed receiver slows the sender through
 * TCP flow control, so one budget per server bounds both ends.
 *
 * Like task_exec.h, this module answers its own HTTP requests (the chunk
 * API routes /v1/chunk/ID/replicate here), so its status mapping lives in
 * chunk_copy.c.  Thread-safe.
 */
#ifndef TS_CHUNK_COPY_H
#define TS_CHUNK_COPY_H

#include <stdint.h>
#include "chunkserver/chunk_store.h"
#include "chunkserver/throttle.h"
#include "common/chunk_id.h"
#include "common/http_server.h"
#include "common/ts_error.h"

typedef struct ts_chunk_copier ts_chunk_copier;

typedef struct ts_chunk_copier_opts {
    ts_chunk_store *store;     /* borrowed; must outlive the copier */
    const char *server_id;     /* this server, sent to sources; copied */
    ts_throttle *background;   /* shared budget, borrowed; NULL = unthrottled */
    unsigned max_copies_in;    /* copies arriving at once; 0 = 2 */
    unsigned max_copies_out;   /* copies leaving at once; 0 = 2 */
    uint64_t max_chunk_size;   /* a source announcing more is refused; 0 = 1 GiB */
} ts_chunk_copier_opts;

/* Never fails (aborts on OOM).  Owned by the caller (ts_chunk_copier_free),
 * which frees it only once no request can reach it. */
ts_chunk_copier *ts_chunk_copier_new(const ts_chunk_copier_opts *opts);
void ts_chunk_copier_free(ts_chunk_copier *c);

/* Copies chunk id from the first of sources[0..n) (each "H:P") that gives
 * it; see the top of this file.  Sets *copied (0 when it was here
 * already) and fills *info.  Errors: TS_EBUSY, TS_EUNAVAIL, TS_ENOSPC,
 * TS_EIO, TS_EINVAL (no source). */
int ts_chunk_copier_copy(ts_chunk_copier *c, const ts_chunk_id *id, const char *const *sources,
                         size_t n, ts_chunk_info *info, int *copied, ts_error *err);

/* Answers POST /v1/chunk/ID/replicate for chunk id (parsed by the chunk
 * API's router): decodes the body, copies, fills resp. */
void ts_chunk_copier_handle(ts_chunk_copier *c, const ts_chunk_id *id,
                            const ts_http_request *req, ts_http_response *resp);

/* Source side: takes an outgoing copy slot for a transfer to `dest` (for
 * the log).  0, or TS_EBUSY when max_copies_out are running.  Every slot
 * taken is given back with ts_chunk_copier_end_out (its signature fits
 * ts_http_response.on_complete). */
int ts_chunk_copier_begin_out(ts_chunk_copier *c, const char *dest, ts_error *err);
void ts_chunk_copier_end_out(void *copier);

typedef struct ts_copy_stats {
    uint64_t in_flight_in, in_flight_out;
    uint64_t copies_in, bytes_in;    /* completed copies to this server */
    uint64_t copies_in_failed;
    uint64_t copies_out;             /* transfers started from this server */
    uint64_t busy_refusals;          /* 503s answered (either direction) */
} ts_copy_stats;
void ts_chunk_copier_stats(ts_chunk_copier *c, ts_copy_stats *out);

#endif
