/*
 * A token bucket for background I/O: scrubbing and chunk copies between
 * servers draw from one shared budget (key background_bytes_per_sec), so
 * that together they never take more than the operator granted and
 * foreground reads and writes keep the rest of the disk and network.
 *
 * Reservation style: a caller reserves the bytes it is about to move and is
 * told how long to wait first.  The bucket may go into debt, so a large
 * piece is never starved by small ones; the debt is what the next callers
 * wait for.  The clock is passed in (monotonic milliseconds), which keeps
 * the arithmetic testable without sleeping; callers sleep themselves (in a
 * way that lets them stop promptly).
 *
 * Thread-safe (one internal mutex).
 */
#ifndef TS_THROTTLE_H
#define TS_THROTTLE_H

#include <stdint.h>

typedef struct ts_throttle ts_throttle;

/* A bucket refilled at bytes_per_sec, holding at most burst bytes (0 = one
 * second's worth), starting full.  bytes_per_sec 0 means unlimited: every
 * reservation waits 0.  Owned by the caller (ts_throttle_free). */
ts_throttle *ts_throttle_new(uint64_t bytes_per_sec, uint64_t burst);
void ts_throttle_free(ts_throttle *t);

/* Takes n bytes from the bucket at time now_ms and returns how many
 * milliseconds the caller must wait before moving them (0 when the bucket
 * had them).  NULL t is unlimited. */
int64_t ts_throttle_reserve(ts_throttle *t, uint64_t n, int64_t now_ms);

/* The configured rate (0 = unlimited). */
uint64_t ts_throttle_rate(const ts_throttle *t);

#endif
