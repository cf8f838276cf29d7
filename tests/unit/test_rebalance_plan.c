/*
 * Unit tests of the rebalance planner and the drain checks: adding a 4th
 * equal-weight server to 3 holding 10,000 chunks moves about 1/4 of the
 * replica bytes and leaves every server near its weighted share (measured
 * vs ideal printed); the same with mixed weights; moves ordered
 * most-overfull source first; max_moves and resuming by re-planning; a
 * drain to empty through rounds of repair plans, never below the factor;
 * refusals when a drain cannot leave 3 servers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/rebalance_plan.h"
#include "metadata/repair_plan.h"
#include "tests/unit/plan_fixture.h"
#include "tests/unit/tcheck.h"

/* Runs the moves: copy, then delete. */
static void apply_moves(fx_cluster *fx, const ts_rebalance_plan *p)
{
    for (size_t i = 0; i < p->nmoves; i++) {
        fx_add_holder(fx, p->moves[i].chunk, p->moves[i].to);
        fx_remove_holder(fx, p->moves[i].chunk, p->moves[i].from);
    }
}

/* Adds a server of weight w to fx, rebalances, and checks moved bytes and
 * shares within tol of ideal. */
static void check_add_server(fx_cluster *fx, double w, double tol, const char *what)
{
    double total_w = 0;
    for (size_t i = 0; i < fx->nservers; i++)
        total_w += fx->servers[i].weight;
    fx_add_server(fx, w, TS_SERVER_UP);
    ts_rebalance_plan p;
    ts_error err = { 0 };
    TC_CHECK(ts_rebalance_plan_make(fx->servers, fx->nservers, fx->chunks, fx->nchunks, 0, &p,
                                    &err) == 0);
    double ideal = (double)p.total_bytes * w / (total_w + w);
    double measured = (double)p.bytes_to_move;
    fprintf(stderr, "  %s: moved %.1f GiB, ideal %.1f GiB (%+.1f%%); imbalance %.1f%% -> %.1f%%\n",
            what, measured / (1 << 30), ideal / (1 << 30), 100 * (measured - ideal) / ideal,
            100 * p.imbalance_before, 100 * p.imbalance_after);
    TC_CHECK(fabs(measured - ideal) <= tol * ideal);
    TC_CHECK(p.imbalance_after <= tol);
    TC_CHECK(p.imbalance_after < p.imbalance_before);
    /* Every move is a real one, into the new server here. */
    int bad = 0;
    for (size_t i = 0; i < p.nmoves; i++) {
        bad |= !fx_holds(fx, p.moves[i].chunk, p.moves[i].from);
        bad |= fx_holds(fx, p.moves[i].chunk, p.moves[i].to);
    }
    TC_CHECK(!bad);
    apply_moves(fx, &p);
    for (size_t s = 0; s < fx->nservers; s++) {
        double got = (double)fx_bytes_on(fx, (uint32_t)s);
        TC_CHECK_EQ_U64((uint64_t)got, p.servers[s].bytes_after);
        TC_CHECK(fabs(got - p.servers[s].share) <= tol * p.servers[s].share);
    }
    for (size_t c = 0; c < fx->nchunks; c++)
        TC_CHECK_EQ_U64(fx->chunks[c].nholders, fx->chunks[c].replication);
    ts_rebalance_plan_free(&p);
    /* Balanced now: nothing more to move. */
    TC_CHECK(ts_rebalance_plan_make(fx->servers, fx->nservers, fx->chunks, fx->nchunks, 0, &p,
                                    &err) == 0);
    TC_CHECK_EQ_U64(p.nmoves, 0);
    ts_rebalance_plan_free(&p);
}

static void test_add_fourth_server(void)
{
    fx_cluster fx = { .rng = 12345 };
    for (int i = 0; i < 3; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 10000, 3, 64u << 20);
    check_add_server(&fx, 1.0, 0.10, "3 -> 4 servers, equal weights, 10,000 chunks");
    fx_free(&fx);
}

static void test_add_weighted_server(void)
{
    fx_cluster fx = { .rng = 777 };
    for (int i = 0; i < 8; i++)
        fx_add_server(&fx, i % 2 ? 1.0 : 1.5, TS_SERVER_UP);
    fx_add_chunks(&fx, 10000, 3, 64u << 20);
    check_add_server(&fx, 2.0, 0.10, "8 -> 9 servers, weights 1/1.5 + new 2.0");
    fx_free(&fx);
}

static void test_order_and_resume(void)
{
    fx_cluster fx = { .rng = 5 };
    for (int i = 0; i < 5; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 3000, 3, 8u << 20);
    /* Make cs-1 heavier: its weight drops, so it should shed the most. */
    fx.servers[0].weight = 0.5;
    fx_add_server(&fx, 1.0, TS_SERVER_UP);
    ts_rebalance_plan p;
    ts_error err = { 0 };
    TC_CHECK(ts_rebalance_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 0, &p,
                                    &err) == 0);
    size_t total = p.nmoves_total;
    TC_CHECK(total > 100);
    int ordered = 1;
    for (size_t i = 1; i < p.nmoves; i++) {
        const ts_rebalance_server *a = &p.servers[p.moves[i - 1].from];
        const ts_rebalance_server *b = &p.servers[p.moves[i].from];
        ordered &= (double)a->bytes_before / a->share >= (double)b->bytes_before / b->share;
    }
    TC_CHECK(ordered);
    TC_CHECK(p.nmoves > 0 && p.moves[0].from == 0);
    ts_rebalance_plan_free(&p);

    /* Interrupted after 100 moves: re-planning gives exactly the rest. */
    TC_CHECK(ts_rebalance_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 100, &p,
                                    &err) == 0);
    TC_CHECK_EQ_U64(p.nmoves, 100);
    TC_CHECK_EQ_U64(p.nmoves_total, total);
    apply_moves(&fx, &p);
    ts_rebalance_plan_free(&p);
    TC_CHECK(ts_rebalance_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 0, &p,
                                    &err) == 0);
    TC_CHECK_EQ_U64(p.nmoves_total, total - 100);
    apply_moves(&fx, &p);
    ts_rebalance_plan_free(&p);
    TC_CHECK(ts_rebalance_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 0, &p,
                                    &err) == 0);
    TC_CHECK_EQ_U64(p.nmoves_total, 0);
    ts_rebalance_plan_free(&p);
    fx_free(&fx);
}

/* Drain cs-2 of 5 through rounds of repair plans (copy; once confirmed,
 * delete), checking the factor after every step, until it is empty. */
static void test_drain_to_empty(void)
{
    fx_cluster fx = { .rng = 31337 };
    for (int i = 0; i < 5; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 2000, 3, 16u << 20);
    ts_error err = { 0 };
    TC_CHECK(ts_drain_check(fx.servers, fx.nservers, 1, 3, &err) == 0);
    fx.servers[1].state = TS_SERVER_DRAINING;
    ts_drain_status ds;
    TC_CHECK(ts_drain_status_of(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 1, &ds, &err) == 0);
    TC_CHECK(!ds.complete && !ds.stuck && ds.chunks_held > 0);
    TC_CHECK_EQ_U64(ds.chunks_short, ds.chunks_held);
    ts_repair_limits lim = { .max_copies_in = 4, .max_copies_out = 4, .reports_complete = 1 };
    int rounds = 0, below = 0;
    for (; rounds < 2000; rounds++) {
        ts_repair_plan p;
        TC_CHECK(ts_repair_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, &lim, &p,
                                     &err) == 0);
        if (p.ncopies == 0 && p.ndeletes == 0) {
            ts_repair_plan_free(&p);
            break;
        }
        for (size_t i = 0; i < p.ncopies; i++) {
            TC_CHECK(p.copies[i].dest != 1);
            fx_add_holder(&fx, p.copies[i].chunk, p.copies[i].dest);
        }
        for (size_t i = 0; i < p.ndeletes; i++)
            fx_remove_holder(&fx, p.deletes[i].chunk, p.deletes[i].server);
        for (size_t c = 0; c < fx.nchunks; c++) {
            size_t readable = 0;
            for (size_t h = 0; h < fx.chunks[c].nholders; h++)
                readable += ts_server_state_readable(fx.servers[fx.holders[c][h]].state);
            below |= readable < 3;
        }
        ts_repair_plan_free(&p);
    }
    TC_CHECK(!below);
    TC_CHECK(ts_drain_status_of(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 1, &ds, &err) == 0);
    TC_CHECK(ds.complete);
    TC_CHECK_EQ_U64(ds.chunks_held, 0);
    TC_CHECK_EQ_U64(fx_bytes_on(&fx, 1), 0);
    fprintf(stderr, "  drain of 1 of 5 servers: %d rounds; %s\n", rounds, ds.reason);
    fx_free(&fx);
}

static void test_drain_refusals(void)
{
    fx_cluster fx = { .rng = 3 };
    for (int i = 0; i < 3; i++)
        fx_add_server(&fx, 1.0, TS_SERVER_UP);
    fx_add_chunks(&fx, 100, 3, 1000);
    ts_error err = { 0 };
    TC_CHECK(ts_drain_check(fx.servers, fx.nservers, 0, 3, &err) == TS_ENOSPC);
    TC_CHECK(strstr(err.msg, "cs-1") != NULL && strstr(err.msg, "2 server(s)") != NULL);
    TC_CHECK(ts_drain_check(fx.servers, fx.nservers, 9, 3, &err) == TS_EINVAL);
    fx_add_server(&fx, 1.0, TS_SERVER_UP);
    TC_CHECK(ts_drain_check(fx.servers, fx.nservers, 0, 3, &err) == 0);
    fx.servers[0].state = TS_SERVER_DRAINING;
    /* A second drain would leave 2. */
    TC_CHECK(ts_drain_check(fx.servers, fx.nservers, 2, 3, &err) == TS_ENOSPC);
    /* A drain that cannot finish says why. */
    fx.servers[3].state = TS_SERVER_DOWN;
    ts_drain_status ds;
    TC_CHECK(ts_drain_status_of(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 0, &ds, &err) == 0);
    TC_CHECK(ds.stuck && !ds.complete);
    TC_CHECK(strstr(ds.reason, "cannot finish") != NULL);
    fprintf(stderr, "  stuck drain: %s\n", ds.reason);
    /* Rebalance with nothing up is refused. */
    for (size_t i = 0; i < fx.nservers; i++)
        fx.servers[i].state = TS_SERVER_DOWN;
    ts_rebalance_plan p;
    TC_CHECK(ts_rebalance_plan_make(fx.servers, fx.nservers, fx.chunks, fx.nchunks, 0, &p,
                                    &err) == TS_ENOSPC);
    fx_free(&fx);
}

int main(void)
{
    TC_RUN(test_add_fourth_server);
    TC_RUN(test_add_weighted_server);
    TC_RUN(test_order_and_resume);
    TC_RUN(test_drain_to_empty);
    TC_RUN(test_drain_refusals);
    TC_DONE("test_rebalance_plan");
}
