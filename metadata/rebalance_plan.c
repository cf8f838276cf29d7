/*
 * The rebalance planner and drain checks (see rebalance_plan.h).
 *
 * Pairing: for one chunk, `extra` are readable holders outside the wanted
 * set (draining holders first: they must go in any case), `missing` the
 * wanted servers lacking it; the i-th extra moves to the i-th missing.
 * More missing than extra means the chunk is under-replicated (repair's
 * job); more extra than missing means surplus (repair's deletes).
 */
#include "metadata/rebalance_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/placement.h"

#define MAX_REPLICATION 64

static int in_list(const size_t *v, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

static double fullness(const ts_rebalance_server *s)
{
    if (s->share <= 0)
        return s->bytes_before > 0 ? INFINITY : 0;
    return (double)s->bytes_before / s->share;
}

/* A move with its sort key: the fullness (bytes over share) of its source. */
struct keyed_move {
    double key;
    ts_rebalance_move m;
};

static int keyed_move_cmp(const void *pa, const void *pb)
{
    const struct keyed_move *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    if (a->m.from != b->m.from)
        return a->m.from < b->m.from ? -1 : 1;
    return a->m.chunk < b->m.chunk ? -1 : a->m.chunk > b->m.chunk;
}

/* The largest |bytes - share| / share over up servers. */
static double imbalance(const ts_plan_server *servers, const ts_rebalance_server *rs, size_t n,
                        int after)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ts_server_state_eligible(servers[i].state) || rs[i].share <= 0)
            continue;
        double b = (double)(after ? rs[i].bytes_after : rs[i].bytes_before);
        double d = fabs(b - rs[i].share) / rs[i].share;
        if (d > worst)
            worst = d;
    }
    return worst;
}

int ts_rebalance_plan_make(const ts_plan_server *servers, size_t nservers,
                           const ts_plan_chunk *chunks, size_t nchunks, size_t max_moves,
                           ts_rebalance_plan *out, ts_error *err)
{
    struct keyed_move *km = NULL;
    size_t nkm = 0, kmcap = 0;
    size_t wanted[MAX_REPLICATION];
    double up_weight = 0;
    int rc;

    memset(out, 0, sizeof *out);
    rc = ts_plan_check_inputs(servers, nservers, chunks, nchunks, err);
    if (rc != 0)
        return rc;
    ts_place_server *place = calloc(nservers + 1, sizeof *place);
    out->servers = calloc(nservers + 1, sizeof *out->servers);
    if (place == NULL || out->servers == NULL) {
        rc = ts_fail(err, TS_ENOMEM, "rebalance plan: out of memory");
        goto free_place;
    }
    for (size_t i = 0; i < nservers; i++) {
        place[i].id = servers[i].id;
        place[i].zone = servers[i].zone;
        place[i].weight = servers[i].weight;
        place[i].eligible = ts_server_state_eligible(servers[i].state);
        if (place[i].eligible)
            up_weight += servers[i].weight;
    }
    if (up_weight <= 0) {
        rc = ts_fail(err, TS_ENOSPC, "rebalance plan: no server is up");
        goto free_place;
    }
    ts_place_prepare(place, nservers);

    for (size_t c = 0; c < nchunks; c++) {
        const ts_plan_chunk *ch = &chunks[c];
        size_t extra[MAX_REPLICATION * 2], nextra = 0, missing[MAX_REPLICATION], nmissing = 0;
        size_t counted = 0;

        for (size_t h = 0; h < ch->nholders; h++) {
            uint32_t s = ch->holders[h];
            if (ts_server_state_readable(servers[s].state)) {
                out->servers[s].bytes_before += ch->length;
                out->total_bytes += ch->length;
            }
            counted += (size_t)ts_server_state_counts(servers[s].state);
        }
        if (counted < ch->replication) {
            out->skipped_under_replicated++;
            continue;
        }
        size_t r = ch->replication < MAX_REPLICATION ? ch->replication : MAX_REPLICATION;
        size_t nw = ts_place_choose(&ch->id, place, nservers, r, wanted);
        for (size_t k = 0; k < nw; k++) {
            int has = 0;
            for (size_t h = 0; h < ch->nholders && !has; h++)
                has = ch->holders[h] == wanted[k];
            if (!has)
                missing[nmissing++] = wanted[k];
        }
        /* Draining holders first, then other readable holders not wanted. */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t h = 0; h < ch->nholders && nextra < sizeof extra / sizeof extra[0]; h++) {
                uint32_t s = ch->holders[h];
                int draining = servers[s].state == TS_SERVER_DRAINING;
                if (!ts_server_state_readable(servers[s].state) || in_list(wanted, nw, s) ||
                    draining != (pass == 0))
                    continue;
                extra[nextra++] = s;
            }
        }
        size_t k = nextra < nmissing ? nextra : nmissing;
        for (size_t i = 0; i < k; i++) {
            if (nkm == kmcap) {
                size_t cap = kmcap ? 2 * kmcap : 256;
                struct keyed_move *v = realloc(km, cap * sizeof *v);
                if (v == NULL) {
                    rc = ts_fail(err, TS_ENOMEM, "rebalance plan: out of memory for moves");
                    goto free_moves;
                }
                km = v;
                kmcap = cap;
            }
            km[nkm].m.chunk = c;
            km[nkm].m.from = (uint32_t)extra[i];
            km[nkm].m.to = (uint32_t)missing[i];
            km[nkm].m.bytes = ch->length;
            nkm++;
        }
    }

    /* Shares and the after picture use every move, whatever max_moves
     * keeps: the plan describes where the whole rebalance leads. */
    for (size_t i = 0; i < nservers; i++) {
        out->servers[i].bytes_after = out->servers[i].bytes_before;
        if (ts_server_state_eligible(servers[i].state))
            out->servers[i].share = (double)out->total_bytes * servers[i].weight / up_weight;
    }
    for (size_t i = 0; i < nkm; i++) {
        ts_rebalance_move *m = &km[i].m;
        out->servers[m->from].bytes_out += m->bytes;
        out->servers[m->from].bytes_after -= m->bytes;
        out->servers[m->to].bytes_in += m->bytes;
        out->servers[m->to].bytes_after += m->bytes;
    }
    for (size_t i = 0; i < nkm; i++)
        km[i].key = fullness(&out->servers[km[i].m.from]);
    if (nkm > 0)   /* km is NULL when nothing moves */
        qsort(km, nkm, sizeof *km, keyed_move_cmp);
    out->nmoves_total = nkm;
    out->nmoves = max_moves > 0 && max_moves < nkm ? max_moves : nkm;
    out->moves = calloc(out->nmoves + 1, sizeof *out->moves);
    if (out->moves == NULL) {
        rc = ts_fail(err, TS_ENOMEM, "rebalance plan: out of memory for moves");
        goto free_moves;
    }
    for (size_t i = 0; i < out->nmoves; i++) {
        out->moves[i] = km[i].m;
        out->bytes_to_move += km[i].m.bytes;
    }
    out->imbalance_before = imbalance(servers, out->servers, nservers, 0);
    out->imbalance_after = imbalance(servers, out->servers, nservers, 1);
    rc = 0;

free_moves:
    free(km);
free_place:
    free(place);
    if (rc != 0)
        ts_rebalance_plan_free(out);
    return rc;
}

void ts_rebalance_plan_free(ts_rebalance_plan *p)
{
    free(p->moves);
    free(p->servers);
    memset(p, 0, sizeof *p);
}

/* ---- drain ---- */

/* Servers up and not draining, leaving out `skip` (or none). */
static size_t count_eligible(const ts_plan_server *servers, size_t n, size_t skip)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += i != skip && ts_server_state_eligible(servers[i].state);
    return k;
}

int ts_drain_check(const ts_plan_server *servers, size_t nservers, uint32_t which,
                   unsigned max_replication, ts_error *err)
{
    if (which >= nservers)
        return ts_fail(err, TS_EINVAL, "drain: no server number %u", which);
    if (servers[which].state == TS_SERVER_REMOVED)
        return ts_fail(err, TS_EINVAL, "drain: server %s is removed", servers[which].id);
    size_t left = count_eligible(servers, nservers, which);
    if (left < max_replication)
        return ts_fail(err, TS_ENOSPC, "draining %s would leave %zu server(s) up and not "
                       "draining, fewer than the %u replicas chunks need; add servers first",
                       servers[which].id, left, max_replication);
    return 0;
}

int ts_drain_status_of(const ts_plan_server *servers, size_t nservers,
                       const ts_plan_chunk *chunks, size_t nchunks, uint32_t which,
                       ts_drain_status *out, ts_error *err)
{
    unsigned worst_rf = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (which >= nservers)
        return ts_fail(err, TS_EINVAL, "drain: no server number %u", which);
    rc = ts_plan_check_inputs(servers, nservers, chunks, nchunks, err);
    if (rc != 0)
        return rc;
    for (size_t c = 0; c < nchunks; c++) {
        const ts_plan_chunk *ch = &chunks[c];
        int here = 0;
        size_t elsewhere = 0;
        for (size_t h = 0; h < ch->nholders; h++) {
            uint32_t s = ch->holders[h];
            if (s == which)
                here = 1;
            else
                elsewhere += servers[s].state == TS_SERVER_UP;
        }
        if (!here)
            continue;
        out->chunks_held++;
        out->bytes_held += ch->length;
        if (elsewhere < ch->replication) {
            out->chunks_short++;
            if (ch->replication > worst_rf)
                worst_rf = ch->replication;
        }
    }
    out->complete = out->chunks_short == 0;
    size_t left = count_eligible(servers, nservers, which);
    if (out->complete) {
        snprintf(out->reason, sizeof out->reason, "every chunk on %s has its full count on "
                 "other up servers: safe to remove", servers[which].id);
    } else if (left < worst_rf) {
        out->stuck = 1;
        snprintf(out->reason, sizeof out->reason, "cannot finish: %zu chunk(s) need %u "
                 "replicas elsewhere but only %zu other server(s) are up and not draining",
                 out->chunks_short, worst_rf, left);
    } else {
        snprintf(out->reason, sizeof out->reason, "in progress: %zu of %zu chunk(s) still "
                 "short of their full count elsewhere", out->chunks_short, out->chunks_held);
    }
    return 0;
}
