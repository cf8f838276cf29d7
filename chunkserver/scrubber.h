/*
 * The scrubber: a background thread that re-reads every sealed chunk at a
 * configured rate, checks the CRC32C of every block and the SHA-256 of the
 * whole chunk against its footer, and quarantines a replica that fails
 * (ts_chunk_store_quarantine: it is never served again and the next
 * heartbeat reports it as "corrupt", so the metadata service copies a good
 * replica back).  Bit rot on a disk nobody reads is found before the other
 * replicas rot too, as in GFS and HDFS.
 *
 * It also probes every data directory in service every dir_check_interval
 * (ts_chunk_store_check_dirs), so a dead disk is taken out of service even
 * when no request touches it.
 *
 * Throttling: each piece read takes tokens from the scrubber's own rate
 * (bytes_per_sec) and from the shared background budget (throttle.h), and
 * the thread waits for whichever is slower.  A pass over all chunks starts
 * at most once per pass_interval, so a small store is not re-read in a
 * tight loop.
 *
 *   idle ──(pass_interval elapsed, bytes_per_sec > 0)──► scrubbing (chunk by
 *    ▲                                                  chunk, a snapshot of
 *    └──────────────────── pass done ◄───────────────── the index at its start)
 *   (dir checks run in either state)
 */
#ifndef TS_SCRUBBER_H
#define TS_SCRUBBER_H

#include <stdint.h>
#include "chunkserver/chunk_store.h"
#include "chunkserver/throttle.h"
#include "common/ts_error.h"

typedef struct ts_scrubber ts_scrubber;

typedef struct ts_scrubber_opts {
    ts_chunk_store *store;         /* borrowed; must outlive the scrubber */
    ts_throttle *background;       /* shared budget, borrowed; NULL = none */
    uint64_t bytes_per_sec;        /* scrub rate; 0 disables chunk scrubbing */
    int64_t pass_interval_ms;      /* least time between pass starts; 0 = 1 h */
    int64_t dir_check_interval_ms; /* 0 = 10 s */
} ts_scrubber_opts;

/* Starts the thread (its first pass and dir check begin at once).  TS_EINVAL
 * on a NULL store or negative interval, TS_EIO when the thread cannot start.
 * *out is owned by the caller (ts_scrubber_stop). */
int ts_scrubber_start(const ts_scrubber_opts *opts, ts_scrubber **out, ts_error *err);
/* Stops the thread promptly (it waits on a condition, never a bare sleep)
 * and frees sc.  NULL is a no-op. */
void ts_scrubber_stop(ts_scrubber *sc);

typedef struct ts_scrub_stats {
    uint64_t passes;          /* complete passes */
    uint64_t chunks;          /* chunks verified (all passes) */
    uint64_t bytes;           /* bytes verified */
    uint64_t corrupt;         /* replicas this scrubber quarantined */
    uint64_t dirs_failed;     /* data dirs its checks took out of service */
} ts_scrub_stats;
void ts_scrubber_stats(ts_scrubber *sc, ts_scrub_stats *out);

/* Verifies one chunk now, unthrottled: every block CRC and the SHA-256.  On
 * damage it acts as the scrubber does (ts_chunk_store_read_failed, or a
 * quarantine for a SHA-256 mismatch) and returns TS_ECORRUPT or TS_EIO with
 * the chunk and block in err; TS_ENOENT when the chunk is not here.  Fills
 * *bytes with the bytes read (may be NULL). */
int ts_scrub_chunk(ts_chunk_store *store, const ts_chunk_id *id, uint64_t *bytes, ts_error *err);

#endif
