/*
 * A small in-memory cluster for the planner tests: servers, chunks with
 * holder lists that the tests change as if copies and deletes had run, and
 * helpers to apply a plan and check replica counts.  Deterministic (seeded
 * xorshift), no I/O.
 */
#ifndef TS_PLAN_FIXTURE_H
#define TS_PLAN_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/placement.h"
#include "metadata/rebalance_plan.h"
#include "metadata/repair_plan.h"

#define FX_MAX_SERVERS 32
#define FX_MAX_HOLDERS 16

typedef struct fx_cluster {
    ts_plan_server servers[FX_MAX_SERVERS];
    char ids[FX_MAX_SERVERS][16];
    size_t nservers;
    ts_plan_chunk *chunks;
    uint32_t (*holders)[FX_MAX_HOLDERS];
    size_t nchunks;
    uint64_t rng;
} fx_cluster;

static inline uint64_t fx_rand(fx_cluster *fx)
{
    fx->rng ^= fx->rng << 13;
    fx->rng ^= fx->rng >> 7;
    fx->rng ^= fx->rng << 17;
    return fx->rng;
}

static inline void fx_add_server(fx_cluster *fx, double weight, ts_server_state state)
{
    size_t i = fx->nservers++;
    snprintf(fx->ids[i], sizeof fx->ids[i], "cs-%zu", i + 1);
    fx->servers[i] = (ts_plan_server){ .id = fx->ids[i], .weight = weight, .state = state };
}

/* n chunks of 1..max_len bytes with factor rf, each placed where placement
 * wants it among the servers up now. */
static inline void fx_add_chunks(fx_cluster *fx, size_t n, unsigned rf, uint64_t max_len)
{
    ts_place_server place[FX_MAX_SERVERS];
    size_t out[FX_MAX_HOLDERS];
    for (size_t i = 0; i < fx->nservers; i++)
        place[i] = (ts_place_server){ .id = fx->servers[i].id, .zone = fx->servers[i].zone,
                                      .weight = fx->servers[i].weight,
                                      .eligible = ts_server_state_eligible(fx->servers[i].state) };
    ts_place_prepare(place, fx->nservers);
    fx->chunks = realloc(fx->chunks, (fx->nchunks + n) * sizeof *fx->chunks);
    fx->holders = realloc(fx->holders, (fx->nchunks + n) * sizeof *fx->holders);
    for (size_t k = 0; k < n; k++) {
        size_t c = fx->nchunks++;
        ts_plan_chunk *ch = &fx->chunks[c];
        memset(ch, 0, sizeof *ch);
        uint64_t hi = fx_rand(fx), lo = fx_rand(fx);
        memcpy((char *)&ch->id, &hi, 8);
        memcpy((char *)&ch->id + 8, &lo, 8);
        ch->length = 1 + fx_rand(fx) % max_len;
        ch->replication = rf;
        size_t m = ts_place_choose(&ch->id, place, fx->nservers, rf, out);
        for (size_t j = 0; j < m; j++)
            fx->holders[c][j] = (uint32_t)out[j];
        ch->nholders = m;
    }
    for (size_t c = 0; c < fx->nchunks; c++)
        fx->chunks[c].holders = fx->holders[c];
}

static inline int fx_holds(const fx_cluster *fx, size_t c, uint32_t s)
{
    for (size_t h = 0; h < fx->chunks[c].nholders; h++)
        if (fx->holders[c][h] == s)
            return 1;
    return 0;
}

static inline void fx_add_holder(fx_cluster *fx, size_t c, uint32_t s)
{
    if (!fx_holds(fx, c, s) && fx->chunks[c].nholders < FX_MAX_HOLDERS)
        fx->holders[c][fx->chunks[c].nholders++] = s;
}

static inline void fx_remove_holder(fx_cluster *fx, size_t c, uint32_t s)
{
    ts_plan_chunk *ch = &fx->chunks[c];
    for (size_t h = 0; h < ch->nholders; h++) {
        if (fx->holders[c][h] == s) {
            fx->holders[c][h] = fx->holders[c][--ch->nholders];
            return;
        }
    }
}

/* Replicas of chunk c on servers whose state counts. */
static inline size_t fx_counted(const fx_cluster *fx, size_t c)
{
    size_t k = 0;
    for (size_t h = 0; h < fx->chunks[c].nholders; h++)
        k += (size_t)ts_server_state_counts(fx->servers[fx->holders[c][h]].state);
    return k;
}

/* Replica bytes held by server s. */
static inline uint64_t fx_bytes_on(const fx_cluster *fx, uint32_t s)
{
    uint64_t b = 0;
    for (size_t c = 0; c < fx->nchunks; c++)
        if (fx_holds(fx, c, s))
            b += fx->chunks[c].length;
    return b;
}

static inline void fx_free(fx_cluster *fx)
{
    free(fx->chunks);
    free(fx->holders);
}

#endif
