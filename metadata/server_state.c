/*
 * The chunkserver state machine (see server_state.h for the diagram and the
 * invariants).  Every transition goes through enter(), which is where the
 * `since` time is kept and the invariants are checked.
 */
#include "metadata/server_state.h"

#include <stddef.h>

#include "common/log.h"

static const char *const state_names[] = {
    [TS_SERVER_UP] = "up",
    [TS_SERVER_SUSPECT] = "suspect",
    [TS_SERVER_DOWN] = "down",
    [TS_SERVER_DRAINING] = "draining",
    [TS_SERVER_REMOVED] = "removed",
};

const char *ts_server_state_name(ts_server_state s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

int ts_server_state_counts(ts_server_state s)
{
    return s == TS_SERVER_UP || s == TS_SERVER_SUSPECT;
}

int ts_server_state_readable(ts_server_state s)
{
    return s == TS_SERVER_UP || s == TS_SERVER_SUSPECT || s == TS_SERVER_DRAINING;
}

int ts_server_state_eligible(ts_server_state s)
{
    return s == TS_SERVER_UP;
}

ts_server_state ts_server_state_effective(ts_server_state live, unsigned admin)
{
    if (admin == 2)
        return TS_SERVER_REMOVED;
    if (admin == 1 && live == TS_SERVER_UP)
        return TS_SERVER_DRAINING;
    return live;
}

void ts_server_fsm_assert(const ts_server_fsm *f)
{
    if ((unsigned)f->state > TS_SERVER_REMOVED)
        ts_die("server state machine: unknown state %d", (int)f->state);
    if (f->state == TS_SERVER_DRAINING && !f->drain)
        ts_die("server state machine: draining without a drain request (invariant 2)");
    if (f->since_ms < 0)
        ts_die("server state machine: negative since %lld", (long long)f->since_ms);
}

/* The state a live (just heard from) server is in. */
static ts_server_state live_state(const ts_server_fsm *f)
{
    return f->drain ? TS_SERVER_DRAINING : TS_SERVER_UP;
}

static int enter(ts_server_fsm *f, ts_server_state s, int64_t now_ms)
{
    if (f->state == s)
        return 0;
    f->state = s;
    f->since_ms = now_ms;
    ts_server_fsm_assert(f);
    return 1;
}

void ts_server_fsm_init(ts_server_fsm *f, int draining, int64_t now_ms)
{
    f->state = TS_SERVER_SUSPECT;
    f->drain = draining != 0;
    f->last_heartbeat_ms = now_ms;
    f->since_ms = now_ms;
    ts_server_fsm_assert(f);
}

int ts_server_fsm_heartbeat(ts_server_fsm *f, int64_t now_ms)
{
    if (f->state == TS_SERVER_REMOVED)
        return 0;   /* a removed server is ignored until registered anew */
    if (now_ms > f->last_heartbeat_ms)
        f->last_heartbeat_ms = now_ms;
    return enter(f, live_state(f), now_ms);
}

int ts_server_fsm_tick(ts_server_fsm *f, const ts_server_timing *t, int64_t now_ms)
{
    if (f->state == TS_SERVER_REMOVED || f->state == TS_SERVER_DOWN)
        return 0;
    int64_t silent = now_ms - f->last_heartbeat_ms;
    if (silent > t->down_after_ms)
        return enter(f, TS_SERVER_DOWN, now_ms);
    if (silent > t->suspect_after_ms)
        return enter(f, TS_SERVER_SUSPECT, now_ms);
    return 0;
}

int ts_server_fsm_drain(ts_server_fsm *f, int64_t now_ms, ts_error *err)
{
    if (f->state == TS_SERVER_REMOVED)
        return ts_fail(err, TS_EINVAL, "server is removed");
    f->drain = 1;
    if (f->state == TS_SERVER_UP)
        enter(f, TS_SERVER_DRAINING, now_ms);
    ts_server_fsm_assert(f);
    return 0;
}

int ts_server_fsm_undrain(ts_server_fsm *f, int64_t now_ms, ts_error *err)
{
    if (f->state == TS_SERVER_REMOVED)
        return ts_fail(err, TS_EINVAL, "server is removed");
    f->drain = 0;
    if (f->state == TS_SERVER_DRAINING)
        enter(f, TS_SERVER_UP, now_ms);
    ts_server_fsm_assert(f);
    return 0;
}

int ts_server_fsm_remove(ts_server_fsm *f, int safe, int64_t now_ms, ts_error *err)
{
    if (f->state == TS_SERVER_REMOVED)
        return 0;
    if (f->state == TS_SERVER_UP)
        return ts_fail(err, TS_EINVAL, "server is up and not draining: drain it first");
    if (!safe)
        return ts_fail(err, TS_EBUSY, "server %s still holds replicas that exist nowhere "
                       "else in full; removing it would lose data",
                       ts_server_state_name(f->state));
    enter(f, TS_SERVER_REMOVED, now_ms);
    return 0;
}
