/*
 * Unit tests of the job model (mapreduce/job.h) and the delay scheduler
 * (mapreduce/scheduler.h), including a seeded simulation of a job under
 * task failures and lost servers that checks the invariants after every
 * step and that the job ends with every task done exactly as expected.
 */
#include <stdlib.h>
#include <string.h>

#include "mapreduce/job.h"
#include "mapreduce/scheduler.h"
#include "tests/unit/tcheck.h"

static const char *ids[] = {"cs-1", "cs-2", "cs-3", "cs-4"};

static void hosts(mr_job *j, size_t m, int a, int b)
{
    mr_task *t = mr_job_task(j, m);
    t->hosts[0] = ids[a];
    t->hosts[1] = ids[b];
    t->nhosts = 2;
}

static void check(const mr_job *j)
{
    ts_error e;
    int rc = mr_job_check(j, &e);
    TC_CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", e.msg);
}

static void test_delay_scheduling(void)
{
    mr_job j;
    ts_error e;
    mr_sched_server sv[4] = {{ids[0], 1, 1}, {ids[1], 1, 1}, {ids[2], 0, 1}, {ids[3], 1, 1}};
    mr_sched_opts o = {.locality_wait_ms = 3000};
    mr_assignment a[8];

    TC_CHECK(mr_job_init(&j, 3, 1, 3, 1000, &e) == 0);
    hosts(&j, 0, 0, 1);   /* m0 on cs-1/cs-2 */
    hosts(&j, 1, 0, 1);   /* m1 on cs-1/cs-2 */
    hosts(&j, 2, 2, 2);   /* m2 only on cs-3, which has no free slot */
    size_t n = mr_schedule(&j, sv, 4, 1000, &o, a, 8);
    TC_CHECK_EQ_U64(n, 2);   /* m0 -> cs-1, m1 -> cs-2, m2 waits */
    TC_CHECK(a[0].task == 0 && a[0].server == 0 && a[0].local);
    TC_CHECK(a[1].task == 1 && a[1].server == 1 && a[1].local);
    TC_CHECK(mr_job_start_attempt(&j, 0, 0, 1, &e) == 1);
    TC_CHECK(mr_job_start_attempt(&j, 1, 1, 1, &e) == 1);
    sv[0].free_slots = sv[1].free_slots = 0;
    /* Before the wait is over m2 stays pending even though cs-4 is free. */
    n = mr_schedule(&j, sv, 4, 3999, &o, a, 8);
    TC_CHECK(n == 0);
    /* After it, m2 goes remote to a server with a free slot. */
    n = mr_schedule(&j, sv, 4, 4000, &o, a, 8);
    TC_CHECK_EQ_U64(n, 1);
    TC_CHECK_EQ_U64(a[0].task, 2);
    TC_CHECK_EQ_U64(a[0].server, 3);
    TC_CHECK(!a[0].local);
    /* A map whose hosts are all dead does not wait. */
    sv[2].alive = 0;
    n = mr_schedule(&j, sv, 4, 1001, &o, a, 8);
    TC_CHECK(n == 1 && a[0].task == 2 && a[0].server == 3);
    /* No reduce before the maps are done. */
    for (size_t i = 0; i < n; i++)
        TC_CHECK(a[i].task < 3);
    mr_job_free(&j);
}

static void test_reduces_spread_after_maps(void)
{
    mr_job j;
    ts_error e;
    mr_sched_server sv[3] = {{ids[0], 2, 1}, {ids[1], 2, 1}, {ids[2], 2, 0}};
    mr_sched_opts o = {.locality_wait_ms = 0};
    mr_assignment a[8];

    TC_CHECK(mr_job_init(&j, 1, 4, 2, 0, &e) == 0);
    int at = mr_job_start_attempt(&j, 0, 1, 0, &e);
    TC_CHECK(at == 1);
    TC_CHECK(mr_job_start_attempt(&j, 1, 0, 0, &e) == TS_EINVAL);   /* maps not done */
    TC_CHECK(mr_job_attempt_done(&j, 0, 1, &e) == 0);
    check(&j);
    TC_CHECK(mr_job_phase(&j) == MR_PHASE_REDUCE);
    size_t n = mr_schedule(&j, sv, 3, 0, &o, a, 8);
    TC_CHECK_EQ_U64(n, 4);
    unsigned per[3] = {0};
    for (size_t i = 0; i < n; i++)
        per[a[i].server]++;
    TC_CHECK(per[0] == 2 && per[1] == 2 && per[2] == 0);   /* spread; dead server unused */
    mr_job_free(&j);
}

static void test_failure_limit_fails_job_with_message(void)
{
    mr_job j;
    ts_error e;

    TC_CHECK(mr_job_init(&j, 2, 1, 2, 0, &e) == 0);
    for (unsigned k = 1; k <= 2; k++) {
        int at = mr_job_start_attempt(&j, 1, 0, 1, &e);
        TC_CHECK(at == (int)k);
        TC_CHECK(mr_job_attempt_failed(&j, 1, (unsigned)at, 1, "mapper exited with status 3: boom",
                                       10, &e) == 0);
        check(&j);
    }
    TC_CHECK(j.state == MR_JOB_FAILED);
    TC_CHECK(strstr(j.error, "m-00001") != NULL);
    TC_CHECK(strstr(j.error, "boom") != NULL);
    /* Late events are refused, nothing changes. */
    TC_CHECK(mr_job_start_attempt(&j, 0, 0, 1, &e) == TS_EINVAL);
    /* Uncounted failures (server died) never fail the job. */
    mr_job_free(&j);
    TC_CHECK(mr_job_init(&j, 1, 0, 1, 0, &e) == 0);
    for (int k = 0; k < 5; k++) {
        int at = mr_job_start_attempt(&j, 0, k % 2, 0, &e);
        TC_CHECK(mr_job_attempt_failed(&j, 0, (unsigned)at, 0, "server lost", 0, &e) == 0);
    }
    TC_CHECK(j.state == MR_JOB_RUNNING);
    check(&j);
    mr_job_free(&j);
}

static void test_lost_map_output_is_recomputed(void)
{
    mr_job j;
    ts_error e;

    TC_CHECK(mr_job_init(&j, 2, 2, 3, 0, &e) == 0);
    TC_CHECK(mr_job_start_attempt(&j, 0, 0, 1, &e) == 1);
    TC_CHECK(mr_job_start_attempt(&j, 1, 1, 1, &e) == 1);
    TC_CHECK(mr_job_attempt_done(&j, 0, 1, &e) == 0);
    TC_CHECK(mr_job_attempt_done(&j, 1, 1, &e) == 0);
    TC_CHECK(mr_job_start_attempt(&j, 2, 0, 0, &e) == 1);
    TC_CHECK(mr_job_start_attempt(&j, 3, 1, 0, &e) == 1);
    TC_CHECK(mr_job_attempt_done(&j, 3, 1, &e) == 0);   /* r-1 done on server 1 */
    check(&j);
    /* Server 1 dies: m-1's output is lost (r-0 still needs it), r-0 is
     * restarted, r-1 stays done (its output is in the filesystem). */
    size_t reset = mr_job_server_lost(&j, 1, 50);
    TC_CHECK_EQ_U64(reset, 2);
    check(&j);
    TC_CHECK(mr_job_phase(&j) == MR_PHASE_MAP);
    TC_CHECK(mr_job_task(&j, 1)->state == MR_PENDING);
    TC_CHECK(mr_job_task(&j, 0)->state == MR_DONE);
    TC_CHECK(mr_job_task(&j, 2)->state == MR_PENDING);
    TC_CHECK(mr_job_task(&j, 3)->state == MR_DONE);
    TC_CHECK_EQ_U64(mr_job_task(&j, 1)->failures, 0);   /* not the task's fault */
    /* The late success report of r-0's first attempt is refused. */
    TC_CHECK(mr_job_attempt_done(&j, 2, 1, &e) == TS_EINVAL);
    mr_job_free(&j);
}

/* A seeded simulation: 4 servers, 2 slots each, 30 maps, 3 reduces; at each
 * step running attempts succeed, fail (counted) or their server dies and
 * comes back later.  The job must end SUCCEEDED with invariants intact. */
static void test_simulation(void)
{
    for (unsigned seed = 1; seed <= 20; seed++) {
        mr_job j;
        ts_error e;
        mr_sched_server sv[4];
        mr_sched_opts o = {.locality_wait_ms = 30};
        mr_assignment a[16];
        int64_t now = 0;
        unsigned used[4] = {0};
        int dead_until[4] = {0};

        srand(seed);
        TC_CHECK(mr_job_init(&j, 30, 3, 8, 0, &e) == 0);
        for (size_t m = 0; m < 30; m++)
            hosts(&j, m, rand() % 4, rand() % 4);
        int steps = 0;
        while (j.state == MR_JOB_RUNNING && steps++ < 5000) {
            now += 10;
            memset(used, 0, sizeof used);
            for (size_t t = 0; t < mr_job_ntasks(&j); t++)
                if (mr_job_task(&j, t)->state == MR_RUNNING)
                    used[mr_job_task(&j, t)->server]++;
            for (int s = 0; s < 4; s++) {
                int alive = now >= dead_until[s];
                sv[s] = (mr_sched_server){ids[s], alive && used[s] < 2 ? 2 - used[s] : 0, alive};
            }
            size_t n = mr_schedule(&j, sv, 4, now, &o, a, 16);
            for (size_t i = 0; i < n; i++) {
                TC_CHECK(mr_job_start_attempt(&j, a[i].task, a[i].server, a[i].local, &e) > 0);
            }
            check(&j);
            for (size_t t = 0; t < mr_job_ntasks(&j); t++) {
                mr_task *tk = mr_job_task(&j, t);
                if (tk->state != MR_RUNNING)
                    continue;
                int r = rand() % 10, s = tk->server;
                if (r < 5) {
                    TC_CHECK(mr_job_attempt_done(&j, t, tk->attempt, &e) == 0);
                } else if (r == 5) {
                    TC_CHECK(mr_job_attempt_failed(&j, t, tk->attempt, 1, "x", now, &e) == 0);
                } else if (r == 6 && rand() % 5 == 0) {
                    /* The server dies: everything on it is reset. */
                    dead_until[s] = (int)now + 200;
                    mr_job_server_lost(&j, s, now);
                }
                check(&j);
                if (j.state != MR_JOB_RUNNING)
                    break;
            }
        }
        TC_CHECK(j.state == MR_JOB_SUCCEEDED);
        check(&j);
        mr_job_free(&j);
    }
}

int main(void)
{
    TC_RUN(test_delay_scheduling);
    TC_RUN(test_reduces_spread_after_maps);
    TC_RUN(test_failure_limit_fails_job_with_message);
    TC_RUN(test_lost_map_output_is_recomputed);
    TC_RUN(test_simulation);
    TC_DONE("test_mr_sched");
}
