/*
 * The repair planner (see repair_plan.h).  One round:
 *
 *   1. classify every chunk: counted replicas (up, suspect), readable ones
 *      (also draining), lost when none is readable;
 *   2. order the under-replicated ones most endangered first (fewest
 *      readable replicas, then fewest counted, then chunk order);
 *   3. for each, walk the placement ranking for destinations that lack the
 *      chunk and have a free incoming slot, and pick sources with a free
 *      outgoing slot; stop at the byte budget;
 *   4. plan deletes of surplus replicas for chunks with no copy this round.
 *
 * Destinations: the first `replication` servers of the ranking are where
 * placement wants the chunk.  When one of them is busy, a chunk with a
 * single replica left takes the next ranked server anyway (speed beats
 * ideal placement; the rebalancer fixes it later); any other chunk waits
 * for a later round rather than land where it would have to move again.
 */
#include "metadata/repair_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/placement.h"

#define DEFAULT_MAX_COPIES 2

int ts_plan_check_inputs(const ts_plan_server *servers, size_t nservers,
                         const ts_plan_chunk *chunks, size_t nchunks, ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];

    if (nservers > UINT32_MAX)
        return ts_fail(err, TS_EINVAL, "plan: too many servers (%zu)", nservers);
    for (size_t i = 0; i < nservers; i++) {
        if (servers[i].id == NULL || servers[i].id[0] == '\0')
            return ts_fail(err, TS_EINVAL, "plan: server %zu has no id", i);
        if (!(servers[i].weight > 0) || !isfinite(servers[i].weight))
            return ts_fail(err, TS_EINVAL, "plan: server %s: weight %g must be > 0",
                           servers[i].id, servers[i].weight);
        if ((unsigned)servers[i].state > TS_SERVER_REMOVED)
            return ts_fail(err, TS_EINVAL, "plan: server %s: unknown state %d", servers[i].id,
                           (int)servers[i].state);
    }
    for (size_t c = 0; c < nchunks; c++) {
        const ts_plan_chunk *ch = &chunks[c];
        if (ch->replication == 0) {
            ts_chunk_id_to_hex(&ch->id, hex);
            return ts_fail(err, TS_EINVAL, "plan: chunk %s: replication factor 0", hex);
        }
        for (size_t h = 0; h < ch->nholders; h++) {
            int bad = ch->holders[h] >= nservers;
            for (size_t k = 0; !bad && k < h; k++)
                bad = ch->holders[k] == ch->holders[h];
            if (bad) {
                ts_chunk_id_to_hex(&ch->id, hex);
                return ts_fail(err, TS_EINVAL, "plan: chunk %s: holder %u out of range or "
                               "listed twice", hex, ch->holders[h]);
            }
        }
    }
    return 0;
}

static int holds(const ts_plan_chunk *ch, uint32_t s)
{
    for (size_t h = 0; h < ch->nholders; h++)
        if (ch->holders[h] == s)
            return 1;
    return 0;
}

/* Source preference: up servers, then draining (they serve reads and are
 * leaving anyway), then suspect ones (they may not answer). */
static int source_class(ts_server_state s)
{
    return s == TS_SERVER_UP ? 0 : s == TS_SERVER_DRAINING ? 1 : 2;
}

struct candidate {
    size_t chunk;
    unsigned readable, counted;
};

static int candidate_cmp(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    if (x->readable != y->readable)
        return x->readable < y->readable ? -1 : 1;
    if (x->counted != y->counted)
        return x->counted < y->counted ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

struct plan_state {
    const ts_plan_server *servers;
    size_t n;
    const ts_plan_chunk *chunks;
    ts_place_server *place;
    size_t *rank;
    unsigned *in_used, *out_used;
    unsigned max_in, max_out;
    ts_repair_plan *out;
    size_t copies_cap, deletes_cap;
    int oom;                    /* an allocation failed: the plan is void */
};

static void push_copy(struct plan_state *st, const ts_copy_task *t)
{
    ts_repair_plan *p = st->out;
    if (p->ncopies == st->copies_cap) {
        size_t cap = st->copies_cap ? 2 * st->copies_cap : 64;
        ts_copy_task *v = realloc(p->copies, cap * sizeof *v);
        if (v == NULL) {
            st->oom = 1;
            return;
        }
        p->copies = v;
        st->copies_cap = cap;
    }
    p->copies[p->ncopies++] = *t;
}

static void push_delete(struct plan_state *st, size_t chunk, uint32_t server)
{
    ts_repair_plan *p = st->out;
    if (p->ndeletes == st->deletes_cap) {
        size_t cap = st->deletes_cap ? 2 * st->deletes_cap : 64;
        ts_delete_task *v = realloc(p->deletes, cap * sizeof *v);
        if (v == NULL) {
            st->oom = 1;
            return;
        }
        p->deletes = v;
        st->deletes_cap = cap;
    }
    p->deletes[p->ndeletes].chunk = chunk;
    p->deletes[p->ndeletes].server = server;
    p->ndeletes++;
}

/* Fills t->sources with up to TS_PLAN_MAX_SOURCES readable holders that have
 * a free outgoing slot, best first.  Returns the count. */
static size_t pick_sources(struct plan_state *st, const ts_plan_chunk *ch, ts_copy_task *t)
{
    t->nsources = 0;
    for (int cls = 0; cls < 3; cls++) {
        for (size_t h = 0; h < ch->nholders && t->nsources < TS_PLAN_MAX_SOURCES; h++) {
            uint32_t s = ch->holders[h];
            ts_server_state state = st->servers[s].state;
            if (!ts_server_state_readable(state) || source_class(state) != cls ||
                st->out_used[s] >= st->max_out)
                continue;
            t->sources[t->nsources++] = s;
        }
    }
    return t->nsources;
}

/* Plans the copies of one under-replicated chunk.  Returns the bytes
 * planned. */
static uint64_t plan_chunk_copies(struct plan_state *st, const struct candidate *cd)
{
    const ts_plan_chunk *ch = &st->chunks[cd->chunk];
    ts_repair_plan *p = st->out;
    unsigned need = ch->replication - cd->counted;
    uint32_t chosen[64];
    size_t nchosen = 0, nrank;
    int wanted_busy = 0;
    uint64_t bytes = 0;

    nrank = ts_place_rank(&ch->id, st->place, st->n, st->rank);
    for (size_t pos = 0; pos < nrank && need > 0; pos++) {
        uint32_t s = (uint32_t)st->rank[pos];
        int taken = holds(ch, s);
        for (size_t k = 0; !taken && k < nchosen; k++)
            taken = chosen[k] == s;
        if (taken)
            continue;
        if (st->in_used[s] >= st->max_in) {
            wanted_busy |= pos < ch->replication;
            continue;
        }
        if (pos >= ch->replication && wanted_busy && cd->readable > 1)
            break;   /* wait for the server placement wants */
        ts_copy_task t = { .chunk = cd->chunk, .dest = s, .live = cd->readable };
        if (pick_sources(st, ch, &t) == 0) {
            p->deferred += need;
            return bytes;
        }
        st->in_used[s]++;
        st->out_used[t.sources[0]]++;
        push_copy(st, &t);
        if (nchosen < sizeof chosen / sizeof chosen[0])
            chosen[nchosen++] = s;
        bytes += ch->length;
        need--;
    }
    if (need > 0) {
        if (wanted_busy)
            p->deferred += need;
        else
            p->unplaceable += need;
    }
    return bytes;
}

/* Deletes for one chunk that got no copy: every draining holder and the
 * up holders beyond the factor, worst ranked first, keeping `replication`
 * replicas on up servers. */
static void plan_chunk_deletes(struct plan_state *st, size_t c)
{
    const ts_plan_chunk *ch = &st->chunks[c];
    size_t up = 0;

    for (size_t h = 0; h < ch->nholders; h++)
        up += st->servers[ch->holders[h]].state == TS_SERVER_UP;
    if (up < ch->replication)
        return;
    for (size_t h = 0; h < ch->nholders; h++)
        if (st->servers[ch->holders[h]].state == TS_SERVER_DRAINING)
            push_delete(st, c, ch->holders[h]);
    size_t surplus = up - ch->replication;
    if (surplus == 0)
        return;
    size_t nrank = ts_place_rank(&ch->id, st->place, st->n, st->rank);
    for (size_t pos = nrank; pos > 0 && surplus > 0; pos--) {
        uint32_t s = (uint32_t)st->rank[pos - 1];
        if (holds(ch, s) && st->servers[s].state == TS_SERVER_UP) {
            push_delete(st, c, s);
            surplus--;
        }
    }
}

int ts_repair_plan_make(const ts_plan_server *servers, size_t nservers,
                        const ts_plan_chunk *chunks, size_t nchunks,
                        const ts_repair_limits *limits, ts_repair_plan *out, ts_error *err)
{
    struct plan_state st = { .servers = servers, .n = nservers, .chunks = chunks, .out = out };
    struct candidate *cands = NULL;
    size_t ncands = 0;
    int rc;

    memset(out, 0, sizeof *out);
    rc = ts_plan_check_inputs(servers, nservers, chunks, nchunks, err);
    if (rc != 0)
        return rc;
    st.max_in = limits->max_copies_in ? limits->max_copies_in : DEFAULT_MAX_COPIES;
    st.max_out = limits->max_copies_out ? limits->max_copies_out : DEFAULT_MAX_COPIES;
    st.place = calloc(nservers + 1, sizeof *st.place);
    st.rank = calloc(nservers + 1, sizeof *st.rank);
    st.in_used = calloc(nservers + 1, sizeof *st.in_used);
    st.out_used = calloc(nservers + 1, sizeof *st.out_used);
    uint8_t *copied = calloc(nchunks + 1, 1);
    cands = calloc(nchunks + 1, sizeof *cands);
    if (st.place == NULL || st.rank == NULL || st.in_used == NULL || st.out_used == NULL ||
        copied == NULL || cands == NULL) {
        rc = ts_fail(err, TS_ENOMEM, "repair plan: out of memory for %zu chunks", nchunks);
        goto free_arrays;
    }
    for (size_t i = 0; i < nservers; i++) {
        st.place[i].id = servers[i].id;
        st.place[i].zone = servers[i].zone;
        st.place[i].weight = servers[i].weight;
        st.place[i].eligible = ts_server_state_eligible(servers[i].state);
        st.in_used[i] = servers[i].copies_in;
        st.out_used[i] = servers[i].copies_out;
    }
    ts_place_prepare(st.place, nservers);

    for (size_t c = 0; c < nchunks; c++) {
        struct candidate cd = { .chunk = c };
        for (size_t h = 0; h < chunks[c].nholders; h++) {
            ts_server_state s = servers[chunks[c].holders[h]].state;
            cd.counted += (unsigned)ts_server_state_counts(s);
            cd.readable += (unsigned)ts_server_state_readable(s);
        }
        if (cd.readable == 0) {
            out->lost++;
            continue;
        }
        if (cd.counted < chunks[c].replication) {
            out->under_replicated++;
            cands[ncands++] = cd;
        }
    }
    qsort(cands, ncands, sizeof *cands, candidate_cmp);
    for (size_t i = 0; i < ncands; i++) {
        const ts_plan_chunk *ch = &chunks[cands[i].chunk];
        if (limits->byte_budget > 0 && out->ncopies > 0 &&
            out->copy_bytes + ch->length > limits->byte_budget) {
            /* Strict priority: nothing less endangered jumps the queue. */
            for (size_t k = i; k < ncands; k++)
                out->deferred += chunks[cands[k].chunk].replication - cands[k].counted;
            break;
        }
        size_t before = out->ncopies;
        out->copy_bytes += plan_chunk_copies(&st, &cands[i]);
        if (out->ncopies > before)
            copied[cands[i].chunk] = 1;
    }
    if (limits->reports_complete) {
        for (size_t c = 0; c < nchunks; c++)
            if (!copied[c])
                plan_chunk_deletes(&st, c);
    }
    rc = st.oom ? ts_fail(err, TS_ENOMEM, "repair plan: out of memory for the task lists") : 0;

free_arrays:
    free(cands);
    free(copied);
    free(st.out_used);
    free(st.in_used);
    free(st.rank);
    free(st.place);
    if (rc != 0)
        ts_repair_plan_free(out);
    return rc;
}

void ts_repair_plan_free(ts_repair_plan *p)
{
    free(p->copies);
    free(p->deletes);
    memset(p, 0, sizeof *p);
}
