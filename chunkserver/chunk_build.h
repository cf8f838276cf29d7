/*
 * Building a new chunk out of byte ranges of existing chunks, for the
 * compactor of the metadata leader (append compaction, small-file packing):
 *
 *   POST /v1/chunk/NEWID/build
 *     {"chain":["H:P",…],                      the new chunk's replica chain
 *      "pieces":[{"chunk":"hex","offset":N,"length":N,"from":["H:P",…]},…]}
 *
 *   A piece may instead carry its bytes: {"data":"base64","length":N} --
 *   the data of an inline chunk, which lives in the metadata and on no
 *   chunkserver (at most 64 KiB per piece).
 *
 *   This server gathers the pieces in order -- from its own replica when it
 *   holds one (CRC-checked like any read), else with ranged GETs from the
 *   servers in `from`, which check theirs -- and stores the concatenation
 *   as chunk NEWID through the normal write chain: a PUT to chain[0] with
 *   the rest of the chain, exactly as a client writes (chunk_api.h).  The
 *   answer is that PUT's: 201 {"id","length","sha256","replicas"}.
 *
 * The data never passes through the metadata server.  Memory: one buffer
 * of the new chunk's length per build; at most max_builds builds at once
 * (503 EBUSY beyond, with Retry-After).  The bytes read are drawn from the
 * background budget (throttle.h) shared with scrubbing and copies.
 * Errors: 400 EINVAL (malformed body, more than max_chunk_size bytes),
 * 502 EUNAVAIL naming the piece no source could give, or the PUT's error.
 * Thread-safe.
 */
#ifndef TS_CHUNK_BUILD_H
#define TS_CHUNK_BUILD_H

#include <stdint.h>
#include "chunkserver/chunk_store.h"
#include "chunkserver/throttle.h"
#include "common/chunk_id.h"
#include "common/http_server.h"

typedef struct ts_chunk_builder ts_chunk_builder;

typedef struct ts_chunk_builder_opts {
    ts_chunk_store *store;      /* borrowed; must outlive the builder */
    ts_throttle *background;    /* borrowed; NULL = unthrottled */
    uint64_t max_chunk_size;    /* 0 = 1 GiB */
    unsigned max_builds;        /* concurrent builds; 0 = 2 */
} ts_chunk_builder_opts;

/* Never fails (aborts on OOM).  Freed by the caller once no request can
 * reach it. */
ts_chunk_builder *ts_chunk_builder_new(const ts_chunk_builder_opts *opts);
void ts_chunk_builder_free(ts_chunk_builder *b);

/* Answers POST /v1/chunk/ID/build (routed here by the chunk API). */
void ts_chunk_builder_handle(ts_chunk_builder *b, const ts_chunk_id *id,
                             const ts_http_request *req, ts_http_response *resp);

typedef struct ts_build_stats {
    uint64_t builds, build_bytes, build_failures, busy_refusals;
    uint64_t local_bytes, remote_bytes;     /* where the pieces came from */
} ts_build_stats;
void ts_chunk_builder_stats(ts_chunk_builder *b, ts_build_stats *out);

#endif
