/*
 * Unit tests of the server state machine and the repair planner: every
 * transition with the invariant check after each step, most endangered
 * first, per-server copy limits and the byte budget, deletes that never go
 * below the replication factor (and none on incomplete reports), repair
 * that converges after losing a server, and bad input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/repair_plan.h"
#include "metadata/server_state.h"
#include "tests/unit/plan_fixture.h"
#include "tests/unit/tcheck.h"

static void test_server_fsm(void)
{
    ts_server_fsm f;
    ts_server_timing t = { .suspect_after_ms = 3000, .down_after_ms = 30000 };
    ts_error err = { 0 };

    /* A new leader: suspect, not down, until down_after passes. */
    ts_server_fsm_init(&f, 0, 1000);
    TC_CHECK(f.state == TS_SERVER_SUSPECT);
    TC_CHECK(ts_server_fsm_tick(&f, &t, 20000) == 0);
    TC_CHECK(f.state == TS_SERVER_SUSPECT);
    TC_CHECK(ts_server_fsm_heartbeat(&f, 20000) == 1);
    ts_server_fsm_assert(&f);
    TC_CHECK(f.state == TS_SERVER_UP);
    TC_CHECK(ts_server_fsm_tick(&f, &t, 22000) == 0);
    TC_CHECK(ts_server_fsm_tick(&f, &t, 23500) == 1);
    ts_server_fsm_assert(&f);
    TC_CHECK(f.state == TS_SERVER_SUSPECT);
    TC_CHECK(ts_server_fsm_tick(&f, &t, 50001) == 1);
    ts_server_fsm_assert(&f);
    TC_CHECK(f.state == TS_SERVER_DOWN);
    TC_CHECK_EQ_U64(f.since_ms, 50001);
    TC_CHECK(ts_server_fsm_tick(&f, &t, 90000) == 0);
    /* Up removal is refused; down removal needs safety. */
    TC_CHECK(ts_server_fsm_remove(&f, 0, 90000, &err) == TS_EBUSY);
    TC_CHECK(ts_server_fsm_heartbeat(&f, 91000) == 1);
    TC_CHECK(f.state == TS_SERVER_UP);
    TC_CHECK(ts_server_fsm_remove(&f, 1, 91000, &err) == TS_EINVAL);
    /* Drain survives a restart of the server (down and back). */
    TC_CHECK(ts_server_fsm_drain(&f, 92000, &err) == 0);
    ts_server_fsm_assert(&f);
    TC_CHECK(f.state == TS_SERVER_DRAINING);
    TC_CHECK(ts_server_fsm_tick(&f, &t, 200000) == 1);
    TC_CHECK(f.state == TS_SERVER_DOWN && f.drain);
    TC_CHECK(ts_server_fsm_heartbeat(&f, 201000) == 1);
    TC_CHECK(f.state == TS_SERVER_DRAINING);
    TC_CHECK(ts_server_fsm_undrain(&f, 202000, &err) == 0);
    TC_CHECK(f.state == TS_SERVER_UP && !f.drain);
    TC_CHECK(ts_server_fsm_drain(&f, 203000, &err) == 0);
    TC_CHECK(ts_server_fsm_remove(&f, 0, 204000, &err) == TS_EBUSY);
    TC_CHECK(strstr(err.msg, "lose data") != NULL);
    TC_CHECK(ts_server_fsm_remove(&f, 1, 205000, &err) == 0);
    ts_server_fsm_assert(&f);
    TC_CHECK(f.state == TS_SERVER_REMOVED);
    /* Removed is terminal. */
    TC_CHECK(ts_server_fsm_heartbeat(&f, 206000) == 0);
    TC_CHECK(ts_server_fsm_tick(&f, &t, 999999) == 0);
    TC_CHECK(ts_server_fsm_drain(&f, 207000, &err) == TS_EINVAL);
    TC_CHECK(f.state == TS_SERVER_REMOVED);
    TC_CHECK_STR(ts_server_state_name(TS_SERVER_SUSPECT), "suspect");
}

/* 6 servers; chunk 0 has 1 live replica, chunk 1 has 2, chunk 2 has 3. */
/* Liveness combined with the operator's admin state (0 active, 1
 * draining, 2 removed). */
static void test_effective_state(void)
{
    TC_CHECK(ts_server_state_effective(TS_SERVER_UP, 0) == TS_SERVER_UP);
    TC_CHECK(ts_server_state_effective(TS_SERVER_UP, 1) == TS_SERVER_DRAINING);
    TC_CHECK(ts_server_state_effective(TS_SERVER_SUSPECT, 1) == TS_SERVER_SUSPECT);
    TC_CHECK(ts_server_state_effective(TS_SERVER_DOWN, 1) == TS_SERVER_DOWN);
    TC_CHECK(ts_server_state_effective(TS_SERVER_UP, 2) == TS_SERVER_REMOVED);
    TC_CHECK(ts_server_state_effective(TS_SERVER_DOWN, 2) == TS_SERVER_REMOVED);
    /* draining: readable, not a destination, not counted; removed: none */
    ts_server_state d = ts_server_state_effective(TS_SERVER_UP, 1);
    TC_CHECK(ts_server_state_readable(d) && !ts_server_state_eligible(d) &&
             !ts_server_state_counts(d));
    ts_server_state r = ts_server_state_effective(TS_SERVER_UP, 2);
    TC_CHECK(!ts_server_state_readable(r) && !ts_server_state_eligible(r) &&
             !ts_server_state_counts(r));
}

static void test_most_endangered_first(void)
{
    fx_cluster fx = { .rng = 42 };
    for (int i = 0; i < 6; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 3, 3, 1000);
    /* Put every chunk on cs-1..cs-3, then take servers down. */
    for (size_t c = 0; c < 3; c++) {
        fx.chunks[c].nholders = 0;
        for (uint32_t s = 0; s < 3; s++)
            fx_add_holder(&fx, c, s);
    }
    fx_add_holder(&fx, 1, 3);   /* chunk 1: cs-1..cs-4 */
    fx_add_holder(&fx, 2, 3);
    fx_add_holder(&fx, 2, 4);   /* chunk 2: cs-1..cs-5 */
    fx.servers[1].state = TS_SERVER_DOWN;
    fx.servers[2].state = TS_SERVER_DOWN;
    fx.servers[3].state = TS_SERVER_DOWN;
    /* Now: chunk 0 on cs-1 only (1 live), chunk 1 on cs-1 (1 live)... make
     * chunk 1 two live by giving it cs-6. */
    fx_add_holder(&fx, 1, 5);
    ts_repair_limits lim = { .max_copies_in = 10, .max_copies_out = 10 };
    ts_repair_plan p;
    ts_error err = { 0 };
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == 0);
    TC_CHECK_EQ_U64(p.under_replicated, 3);
    /* chunk 0 needs 2 copies, chunk 1 needs 1, chunk 2 (cs-1, cs-5) needs 1. */
    TC_CHECK_EQ_U64(p.ncopies, 4);
    TC_CHECK(p.ncopies == 4 && p.copies[0].chunk == 0 && p.copies[1].chunk == 0);
    TC_CHECK(p.ncopies == 4 && p.copies[0].live == 1 && p.copies[2].live == 2 &&
             p.copies[3].live == 2);
    for (size_t i = 0; i < p.ncopies; i++) {
        TC_CHECK(!fx_holds(&fx, p.copies[i].chunk, p.copies[i].dest));
        TC_CHECK(ts_server_state_eligible(fx.servers[p.copies[i].dest].state));
        TC_CHECK(p.copies[i].nsources >= 1 && fx_holds(&fx, p.copies[i].chunk, p.copies[i].sources[0]));
    }
    TC_CHECK(p.copies[0].dest != p.copies[1].dest);
    ts_repair_plan_free(&p);

    /* A budget of one chunk: only the most endangered gets copies. */
    lim.byte_budget = 1;
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == 0);
    TC_CHECK(p.ncopies >= 1 && p.copies[0].chunk == 0);
    TC_CHECK(p.ncopies + p.deferred == 4);
    ts_repair_plan_free(&p);

    /* Nothing readable: lost, not planned. */
    fx.servers[0].state = TS_SERVER_DOWN;
    fx.servers[4].state = TS_SERVER_DOWN;
    fx.servers[5].state = TS_SERVER_DOWN;
    lim.byte_budget = 0;
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == 0);
    TC_CHECK_EQ_U64(p.lost, 3);
    TC_CHECK_EQ_U64(p.ncopies, 0);
    ts_repair_plan_free(&p);
    fx_free(&fx);
}

static void test_copy_limits(void)
{
    fx_cluster fx = { .rng = 7 };
    for (int i = 0; i < 8; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 2000, 3, 64u << 20);
    fx.servers[2].state = TS_SERVER_DOWN;
    fx.servers[5].copies_in = 1;      /* one copy already running to cs-6 */
    ts_repair_limits lim = { .max_copies_in = 2, .max_copies_out = 3 };
    ts_repair_plan p;
    ts_error err = { 0 };
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == 0);
    unsigned in[FX_MAX_SERVERS] = { 0 }, out[FX_MAX_SERVERS] = { 0 };
    in[5] = 1;
    for (size_t i = 0; i < p.ncopies; i++) {
        in[p.copies[i].dest]++;
        out[p.copies[i].sources[0]]++;
    }
    for (size_t s = 0; s < fx.nservers; s++) {
        TC_CHECK(in[s] <= 2);
        TC_CHECK(out[s] <= 3);
    }
    TC_CHECK(in[2] == 0 && out[2] == 0);
    TC_CHECK(p.ncopies > 0 && p.ncopies <= 7 * 2 - 1);
    TC_CHECK(p.ncopies + p.deferred + p.unplaceable == p.under_replicated);
    ts_repair_plan_free(&p);
    fx_free(&fx);
}

/* Surplus replicas (servers came back) are deleted only down to the factor
 * on up servers, never for a chunk being copied, never on partial reports. */
static void test_deletes_never_below_factor(void)
{
    fx_cluster fx = { .rng = 99 };
    for (int i = 0; i < 7; i++)
        fx_add_server(&fx, 1.0 + (i % 3) * 0.5, TS_SERVER_UP);
    fx_add_chunks(&fx, 3000, 3, 1 << 20);
    for (size_t c = 0; c < fx.nchunks; c++) {
        size_t extra = fx_rand(&fx) % 4;
        for (size_t k = 0; k < extra; k++)
            fx_add_holder(&fx, c, (uint32_t)(fx_rand(&fx) % fx.nservers));
    }
    fx.servers[1].state = TS_SERVER_SUSPECT;
    fx.servers[4].state = TS_SERVER_DOWN;
    fx.servers[6].state = TS_SERVER_DRAINING;
    ts_repair_limits lim = { .max_copies_in = 1000, .max_copies_out = 1000 };
    ts_repair_plan p;
    ts_error err = { 0 };
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == 0);
    TC_CHECK_EQ_U64(p.ndeletes, 0);      /* reports incomplete */
    ts_repair_plan_free(&p);
    lim.reports_complete = 1;
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == 0);
    TC_CHECK(p.ndeletes > 0);
    size_t *deleted = calloc(fx.nchunks, sizeof *deleted);
    uint8_t *copied = calloc(fx.nchunks, 1), *touched = calloc(fx.nchunks, 1);
    for (size_t i = 0; i < p.ncopies; i++)
        copied[p.copies[i].chunk] = 1;
    int bad = 0;
    for (size_t i = 0; i < p.ndeletes; i++) {
        const ts_delete_task *d = &p.deletes[i];
        bad |= copied[d->chunk];
        bad |= !fx_holds(&fx, d->chunk, d->server);
        touched[d->chunk] = 1;
        if (fx.servers[d->server].state == TS_SERVER_UP)
            deleted[d->chunk]++;
        bad |= fx.servers[d->server].state != TS_SERVER_UP &&
               fx.servers[d->server].state != TS_SERVER_DRAINING;
    }
    TC_CHECK(!bad);
    for (size_t c = 0; c < fx.nchunks; c++) {
        size_t up = 0;
        for (size_t h = 0; h < fx.chunks[c].nholders; h++)
            up += fx.servers[fx.holders[c][h]].state == TS_SERVER_UP;
        /* Any delete for a chunk leaves it at least its factor on up servers. */
        if (touched[c])
            TC_CHECK(up >= deleted[c] + 3);
    }
    free(deleted);
    free(copied);
    free(touched);
    ts_repair_plan_free(&p);
    fx_free(&fx);
}

/* Lose one of 4 servers holding 4,000 chunks: rounds of plan + "run the
 * copies" restore every chunk to 3 counted replicas. */
static void test_repair_converges(void)
{
    fx_cluster fx = { .rng = 2024 };
    for (int i = 0; i < 4; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 4000, 3, 64u << 20);
    fx.servers[3].state = TS_SERVER_DOWN;
    ts_repair_limits lim = { .max_copies_in = 8, .max_copies_out = 8, .byte_budget = 4ull << 30,
                             .reports_complete = 1 };
    int rounds = 0;
    uint64_t bytes = 0;
    for (; rounds < 1000; rounds++) {
        ts_repair_plan p;
        ts_error err = { 0 };
        TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                     &err) == 0);
        if (p.ncopies == 0) {
            TC_CHECK_EQ_U64(p.under_replicated, 0);
            ts_repair_plan_free(&p);
            break;
        }
        for (size_t i = 0; i < p.ncopies; i++) {
            fx_add_holder(&fx, p.copies[i].chunk, p.copies[i].dest);
            bytes += fx.chunks[p.copies[i].chunk].length;
        }
        ts_repair_plan_free(&p);
    }
    size_t under = 0;
    for (size_t c = 0; c < fx.nchunks; c++)
        under += fx_counted(&fx, c) < 3;
    /* With 3 servers left every chunk needs all 3. */
    TC_CHECK_EQ_U64(under, 0);
    fprintf(stderr, "  repair after losing 1 of 4 servers: %d rounds, %.1f GiB copied\n",
            rounds, (double)bytes / (1ull << 30));
    fx_free(&fx);
}

static void test_bad_input(void)
{
    fx_cluster fx = { .rng = 1 };
    for (int i = 0; i < 3; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 10, 3, 100);
    ts_repair_limits lim = { 0 };
    ts_repair_plan p;
    ts_error err = { 0 };
    uint32_t saved = fx.holders[4][0];
    fx.holders[4][0] = 17;
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "out of range") != NULL);
    fx.holders[4][0] = fx.holders[4][1];
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == TS_EINVAL);
    fx.holders[4][0] = saved;
    fx.chunks[3].replication = 0;
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == TS_EINVAL);
    fx.chunks[3].replication = 3;
    fx.servers[1].weight = 0;
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "cs-2") != NULL);
    fx.servers[1].weight = 1;
    TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                 &err) == 0);
    TC_CHECK_EQ_U64(p.ncopies, 0);
    ts_repair_plan_free(&p);
    fx_free(&fx);
}

int main(void)
{
    TC_RUN(test_server_fsm);
    TC_RUN(test_effective_state);
    TC_RUN(test_most_endangered_first);
    TC_RUN(test_copy_limits);
    TC_RUN(test_deletes_never_below_factor);
    TC_RUN(test_repair_converges);
    TC_RUN(test_bad_input);
    TC_DONE("test_repair_plan");
}
