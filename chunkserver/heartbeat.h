/*
 * Heartbeats and chunk reports: a thread that POSTs
 * /v1/chunkserver/heartbeat to the metadata service every interval with this
 * server's identity, space and chunk count, plus
 *   - "added": the chunks sealed since the last heartbeat that got through;
 *   - "full_report": every chunk id, on the first heartbeat and whenever the
 *     answer says report_needed (a metadata server that restarted or newly
 *     became leader).
 *   - "removed": chunks deleted or lost with a failed data dir, and
 *     "corrupt": chunks quarantined (chunk_store.h, "Damage"), both since
 *     the last heartbeat that got through;
 *   - "failed_dirs": the data dirs out of service, every time.
 * Several metadata addresses may be given; on failure the next one is tried
 * (and the one that answered is tried first next time).  The loop survives
 * the metadata service being down: it logs once per change of state and
 * keeps trying.
 *
 *       ┌──────── ok ────────┐
 *       ▼                    │
 *   connected ──fail all──► unreachable ──(logged once, retried each interval)
 */
#ifndef TS_HEARTBEAT_H
#define TS_HEARTBEAT_H

#include <stdint.h>
#include "chunkserver/chunk_store.h"
#include "common/ts_error.h"

typedef struct ts_heartbeat ts_heartbeat;

typedef struct ts_heartbeat_opts {
    ts_chunk_store *store;     /* borrowed; must outlive the heartbeat */
    const char *meta;          /* "H:P" or "H:P,H:P,…"; copied */
    const char *server_id;     /* copied */
    const char *address;       /* advertised "H:P"; copied */
    const char *zone;          /* NULL or "" = none; copied */
    double weight;             /* > 0 */
    int interval_ms;           /* > 0 */
    long request_timeout_ms;   /* per heartbeat request; 0 = 5000 */
} ts_heartbeat_opts;

/* Validates opts (TS_EINVAL naming the bad one) and starts the thread, which
 * sends its first heartbeat at once.  *out is owned by the caller. */
int ts_heartbeat_start(const ts_heartbeat_opts *opts, ts_heartbeat **out, ts_error *err);
/* Stops the thread (promptly: it waits on a condition, not a sleep; an
 * in-flight request finishes or times out first) and frees hb. */
void ts_heartbeat_stop(ts_heartbeat *hb);
/* Heartbeats that got an answer so far (tests, status). */
uint64_t ts_heartbeat_sent(ts_heartbeat *hb);

#endif
