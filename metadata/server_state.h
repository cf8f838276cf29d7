/*
 * The life of a chunkserver as the metadata leader sees it: a pure state
 * machine driven by heartbeats, clock ticks and operator commands (no I/O,
 * no clock of its own; the caller passes monotonic milliseconds).
 *
 *                 heartbeat (from suspect or down; back to draining
 *        ┌──────────────── when the operator's drain still stands) ──┐
 *        ▼                                                            │
 *       up ──silent > suspect_after──► suspect ──silent > down_after──► down
 *      │  ▲                                                           │
 *  drain  undrain                                          remove (only when
 *      ▼  │                                                 no data would be
 *    draining ──(silent: suspect, down as above)            lost) ──► removed
 *      │
 *      └──remove (only when the drain is complete)──────────────────► removed
 *
 * Why suspect: a server that misses a few heartbeats (a GC pause, a
 * congested link) must not trigger a replication storm.  Its replicas
 * still count as live while it is suspect; only `down` makes the repair
 * planner copy them elsewhere.  A leader that just took over starts every
 * server as suspect (last heard: now), so it waits a full down_after
 * before deciding anything is missing.
 *
 * Invariants (ts_server_fsm_assert):
 *   1. removed is terminal.
 *   2. state == draining implies the drain flag; the flag survives suspect
 *      and down, so a draining server that comes back resumes draining.
 *   3. since_ms is a time (>= 0) no later than the latest event.
 */
#ifndef TS_SERVER_STATE_H
#define TS_SERVER_STATE_H

#include <stdint.h>
#include "common/ts_error.h"

typedef enum ts_server_state {
    TS_SERVER_UP = 0,
    TS_SERVER_SUSPECT,
    TS_SERVER_DOWN,
    TS_SERVER_DRAINING,
    TS_SERVER_REMOVED,
} ts_server_state;

typedef struct ts_server_timing {
    int64_t suspect_after_ms;   /* silence before suspect (e.g. 3 heartbeats) */
    int64_t down_after_ms;      /* silence before down (e.g. 30 s); > suspect_after */
} ts_server_timing;

typedef struct ts_server_fsm {
    ts_server_state state;
    int drain;                  /* the operator asked for a drain */
    int64_t last_heartbeat_ms;  /* or the takeover time for a new leader */
    int64_t since_ms;           /* when the current state was entered */
} ts_server_fsm;

/* A server known from membership but not heard from yet by this leader:
 * suspect since now (see above).  draining carries a persisted drain. */
void ts_server_fsm_init(ts_server_fsm *f, int draining, int64_t now_ms);
/* A heartbeat at now_ms.  Returns 1 when the state changed. */
int ts_server_fsm_heartbeat(ts_server_fsm *f, int64_t now_ms);
/* Time passes: up/draining -> suspect -> down by silence.  Returns 1 when
 * the state changed. */
int ts_server_fsm_tick(ts_server_fsm *f, const ts_server_timing *t, int64_t now_ms);
/* Operator commands.  TS_EINVAL for a removed server. */
int ts_server_fsm_drain(ts_server_fsm *f, int64_t now_ms, ts_error *err);
int ts_server_fsm_undrain(ts_server_fsm *f, int64_t now_ms, ts_error *err);
/* safe: the caller checked that no chunk would lose its last replicas
 * (rebalance_plan.h, ts_drain_status).  TS_EBUSY when not safe, TS_EINVAL
 * when the server is up and not draining (drain it first). */
int ts_server_fsm_remove(ts_server_fsm *f, int safe, int64_t now_ms, ts_error *err);

/* Checks the invariants above; aborts with a message when one fails. */
void ts_server_fsm_assert(const ts_server_fsm *f);

/* "up", "suspect", "down", "draining", "removed". */
const char *ts_server_state_name(ts_server_state s);
/* Replicas on a server in state s count toward a chunk's replication
 * (up, suspect: a suspect server is not written off yet). */
int ts_server_state_counts(ts_server_state s);
/* A server in state s can be a copy source (up, suspect, draining). */
int ts_server_state_readable(ts_server_state s);
/* New replicas may be placed on it (up only). */
int ts_server_state_eligible(ts_server_state s);
/* The state planners and clients see: the liveness state `live` combined
 * with the operator's durable admin state (namespace.h: 0 active, 1
 * draining, 2 removed).  Removed wins; an up server being drained is
 * draining; a silent one stays suspect or down (its drain resumes when it
 * comes back). */
ts_server_state ts_server_state_effective(ts_server_state live, unsigned admin);

#endif
