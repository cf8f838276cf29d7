/*
 * The background I/O token bucket (see throttle.h).  Tokens are kept as a
 * signed byte count so that debt (a reservation larger than what the bucket
 * holds) is explicit: the wait is the time the refill needs to bring the
 * count back to zero.
 */
#include "chunkserver/throttle.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"

struct ts_throttle {
    pthread_mutex_t mu;
    uint64_t rate;        /* bytes per second; 0 = unlimited */
    double burst;         /* most tokens the bucket holds */
    double tokens;        /* may be negative: debt */
    int64_t last_ms;      /* time of the last refill; -1 before the first */
};

ts_throttle *ts_throttle_new(uint64_t bytes_per_sec, uint64_t burst)
{
    ts_throttle *t = ts_calloc(1, sizeof *t);
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        ts_die("throttle: pthread_mutex_init failed");
    t->rate = bytes_per_sec;
    t->burst = (double)(burst ? burst : bytes_per_sec);
    t->tokens = t->burst;
    t->last_ms = -1;
    return t;
}

void ts_throttle_free(ts_throttle *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int64_t ts_throttle_reserve(ts_throttle *t, uint64_t n, int64_t now_ms)
{
    if (t == NULL || t->rate == 0)
        return 0;
    pthread_mutex_lock(&t->mu);
    if (t->last_ms >= 0 && now_ms > t->last_ms) {
        t->tokens += (double)(now_ms - t->last_ms) * (double)t->rate / 1000.0;
        if (t->tokens > t->burst)
            t->tokens = t->burst;
    }
    if (t->last_ms < 0 || now_ms > t->last_ms)
        t->last_ms = now_ms;
    t->tokens -= (double)n;
    int64_t wait = 0;
    if (t->tokens < 0)
        /* Round up: waking early would only find the bucket still empty. */
        wait = (int64_t)(-t->tokens * 1000.0 / (double)t->rate) + 1;
    pthread_mutex_unlock(&t->mu);
    return wait;
}

uint64_t ts_throttle_rate(const ts_throttle *t)
{
    return t != NULL ? t->rate : 0;
}
