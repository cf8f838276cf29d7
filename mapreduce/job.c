/*
 * The job model: task states and the events that move them (see job.h for
 * the state diagram and invariants).
 */
#include "mapreduce/job.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int mr_job_init(mr_job *job, size_t nmaps, size_t nreduces, unsigned max_attempts,
                int64_t now_ms, ts_error *err)
{
    memset(job, 0, sizeof(*job));
    if (nmaps == 0)
        return ts_fail(err, TS_EINVAL, "a job needs at least one map task (is the input empty?)");
    if (max_attempts == 0)
        return ts_fail(err, TS_EINVAL, "max attempts must be > 0");
    job->tasks = ts_calloc(nmaps + nreduces, sizeof(*job->tasks));
    job->nmaps = nmaps;
    job->nreduces = nreduces;
    job->max_attempts = max_attempts;
    for (size_t i = 0; i < nmaps + nreduces; i++) {
        mr_task *t = &job->tasks[i];
        t->kind = i < nmaps ? MR_MAP : MR_REDUCE;
        t->index = (unsigned)(i < nmaps ? i : i - nmaps);
        t->server = -1;
        t->pending_since_ms = now_ms;
    }
    return 0;
}

void mr_job_free(mr_job *job)
{
    free(job->tasks);
    job->tasks = NULL;
}

mr_task *mr_job_task(mr_job *job, size_t i)
{
    return i < job->nmaps + job->nreduces ? &job->tasks[i] : NULL;
}

size_t mr_job_ntasks(const mr_job *job)
{
    return job->nmaps + job->nreduces;
}

void mr_task_name(const mr_task *t, char out[16])
{
    snprintf(out, 16, "%c-%05u", t->kind == MR_MAP ? 'm' : 'r', t->index);
}

void mr_job_counts(const mr_job *job, enum mr_task_kind kind, size_t *pending, size_t *running,
                   size_t *done)
{
    size_t p = 0, r = 0, d = 0;

    for (size_t i = 0; i < job->nmaps + job->nreduces; i++) {
        const mr_task *t = &job->tasks[i];
        if (t->kind != kind)
            continue;
        p += t->state == MR_PENDING;
        r += t->state == MR_RUNNING;
        d += t->state == MR_DONE;
    }
    if (pending)
        *pending = p;
    if (running)
        *running = r;
    if (done)
        *done = d;
}

enum mr_phase mr_job_phase(const mr_job *job)
{
    size_t mdone, rdone;

    mr_job_counts(job, MR_MAP, NULL, NULL, &mdone);
    if (mdone < job->nmaps)
        return MR_PHASE_MAP;
    mr_job_counts(job, MR_REDUCE, NULL, NULL, &rdone);
    return rdone < job->nreduces ? MR_PHASE_REDUCE : MR_PHASE_DONE;
}

size_t mr_job_local_maps(const mr_job *job)
{
    size_t n = 0;

    for (size_t i = 0; i < job->nmaps; i++)
        n += job->tasks[i].state == MR_DONE && job->tasks[i].local;
    return n;
}

static int check_attempt(mr_job *job, size_t task, unsigned attempt, ts_error *err)
{
    char name[16];

    if (task >= mr_job_ntasks(job))
        return ts_fail(err, TS_EINVAL, "no task %zu", task);
    mr_task *t = &job->tasks[task];
    mr_task_name(t, name);
    if (job->state != MR_JOB_RUNNING)
        return ts_fail(err, TS_EINVAL, "%s: the job is over", name);
    if (t->state != MR_RUNNING || t->attempt != attempt)
        return ts_fail(err, TS_EINVAL, "%s: attempt %u is not running", name, attempt);
    return 0;
}

int mr_job_start_attempt(mr_job *job, size_t task, int server, int local, ts_error *err)
{
    char name[16];

    if (task >= mr_job_ntasks(job))
        return ts_fail(err, TS_EINVAL, "no task %zu", task);
    mr_task *t = &job->tasks[task];
    mr_task_name(t, name);
    if (job->state != MR_JOB_RUNNING)
        return ts_fail(err, TS_EINVAL, "%s: the job is over", name);
    if (t->state != MR_PENDING)
        return ts_fail(err, TS_EINVAL, "%s: not pending", name);
    if (server < 0)
        return ts_fail(err, TS_EINVAL, "%s: no server", name);
    if (t->kind == MR_REDUCE && mr_job_phase(job) != MR_PHASE_REDUCE)
        return ts_fail(err, TS_EINVAL, "%s: maps are not all done", name);
    t->state = MR_RUNNING;
    t->server = server;
    t->local = local;
    t->attempt++;
    return (int)t->attempt;
}

int mr_job_attempt_done(mr_job *job, size_t task, unsigned attempt, ts_error *err)
{
    int rc = check_attempt(job, task, attempt, err);
    if (rc != 0)
        return rc;
    mr_task *t = &job->tasks[task];
    t->state = MR_DONE;
    /* A reduce's output is in the filesystem, not on its server. */
    if (t->kind == MR_REDUCE)
        t->server = -1;
    if (mr_job_phase(job) == MR_PHASE_DONE)
        job->state = MR_JOB_SUCCEEDED;
    return 0;
}

int mr_job_attempt_failed(mr_job *job, size_t task, unsigned attempt, int counted,
                          const char *msg, int64_t now_ms, ts_error *err)
{
    char name[16];
    int rc = check_attempt(job, task, attempt, err);

    if (rc != 0)
        return rc;
    mr_task *t = &job->tasks[task];
    mr_task_name(t, name);
    snprintf(t->last_error, sizeof(t->last_error), "%s", msg ? msg : "failed");
    t->state = MR_PENDING;
    t->server = -1;
    t->local = 0;
    t->pending_since_ms = now_ms;
    if (counted)
        t->failures++;
    if (t->failures >= job->max_attempts) {
        job->state = MR_JOB_FAILED;
        snprintf(job->error, sizeof(job->error), "%s failed %u time%s; last attempt: %s", name,
                 t->failures, t->failures == 1 ? "" : "s", t->last_error);
    }
    return 0;
}

size_t mr_job_server_lost(mr_job *job, int server, int64_t now_ms)
{
    size_t reset = 0, rdone;

    if (job->state != MR_JOB_RUNNING)
        return 0;
    mr_job_counts(job, MR_REDUCE, NULL, NULL, &rdone);
    int outputs_needed = rdone < job->nreduces;
    for (size_t i = 0; i < mr_job_ntasks(job); i++) {
        mr_task *t = &job->tasks[i];
        if (t->server != server)
            continue;
        if (t->state == MR_RUNNING ||
            (t->state == MR_DONE && t->kind == MR_MAP && outputs_needed)) {
            t->state = MR_PENDING;
            t->server = -1;
            t->local = 0;
            t->pending_since_ms = now_ms;
            reset++;
        }
    }
    /* A map reset during the reduce phase sends the job back to the map
     * phase; running reduces keep going if they already hold their input,
     * which invariant 4 forbids, so they are reset too (they may have been
     * fetching from the lost server). */
    if (mr_job_phase(job) == MR_PHASE_MAP) {
        for (size_t i = job->nmaps; i < mr_job_ntasks(job); i++) {
            mr_task *t = &job->tasks[i];
            if (t->state == MR_RUNNING) {
                t->state = MR_PENDING;
                t->server = -1;
                t->pending_since_ms = now_ms;
                reset++;
            }
        }
    }
    return reset;
}

void mr_job_kill(mr_job *job)
{
    if (job->state != MR_JOB_RUNNING)
        return;
    job->state = MR_JOB_KILLED;
    snprintf(job->error, sizeof(job->error), "killed");
}

int mr_job_check(const mr_job *job, ts_error *err)
{
    size_t mdone = 0, all_done = 0;
    char name[16];

    for (size_t i = 0; i < mr_job_ntasks(job); i++) {
        const mr_task *t = &job->tasks[i];
        mr_task_name(t, name);
        if (t->state == MR_RUNNING && (t->server < 0 || t->attempt == 0))
            return ts_fail(err, TS_EINVAL, "invariant 1: %s running without server/attempt", name);
        if (t->state == MR_PENDING && t->server >= 0)
            return ts_fail(err, TS_EINVAL, "invariant 1: %s pending on server %d", name, t->server);
        if (t->state == MR_DONE && t->kind == MR_MAP && t->server < 0)
            return ts_fail(err, TS_EINVAL, "invariant 2: %s done without output server", name);
        if (t->failures >= job->max_attempts && job->state != MR_JOB_FAILED)
            return ts_fail(err, TS_EINVAL, "invariant 3: %s failed %u times, job not failed",
                           name, t->failures);
        mdone += t->kind == MR_MAP && t->state == MR_DONE;
        all_done += t->state == MR_DONE;
    }
    for (size_t i = job->nmaps; i < mr_job_ntasks(job) && mdone < job->nmaps; i++)
        if (job->tasks[i].state == MR_RUNNING)
            return ts_fail(err, TS_EINVAL, "invariant 4: r-%05zu running before every map is done",
                           i - job->nmaps);
    if ((job->state == MR_JOB_SUCCEEDED) != (all_done == mr_job_ntasks(job)))
        return ts_fail(err, TS_EINVAL, "invariant 5: state %d with %zu of %zu tasks done",
                       (int)job->state, all_done, mr_job_ntasks(job));
    return 0;
}
