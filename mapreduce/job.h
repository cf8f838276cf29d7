/*
 * The job model of the MapReduce runner (pure: no I/O, no clock; times are
 * given by the caller).  A job is M map tasks then R reduce tasks; each task
 * runs as numbered attempts on servers.  The coordinator feeds events in
 * (attempt started / succeeded / failed, server lost) and reads decisions
 * out (see scheduler.h); everything here is deterministic and unit-tested.
 *
 * Life of a task:
 *
 *              start_attempt              attempt_done
 *   PENDING ─────────────────► RUNNING ─────────────────► DONE
 *      ▲                          │                         │
 *      │  attempt_failed          │                         │ server_lost (a map
 *      ├──(counted, < limit)──────┤                         │ whose output lived
 *      │  server_lost / killed    │                         │ there, reducers
 *      └──(not counted)───────────┘                         │ still needing it)
 *      ▲                                                    │
 *      └────────────────────────────────────────────────────┘
 *   attempt_failed with failures == max_attempts: the task and the job FAIL.
 *
 * Invariants (mr_job_check):
 *   1. a RUNNING task has a server and attempt > 0; a PENDING one has none;
 *   2. a DONE map has the server holding its output; a DONE task's attempt
 *      is the one that succeeded;
 *   3. failures < max_attempts unless the job has failed;
 *   4. no reduce runs while a map is not DONE (reduces start only when
 *      every map output exists; a lost one is recomputed first, and the
 *      reduces running meanwhile are restarted; finished ones stay DONE);
 *   5. the job is SUCCEEDED iff every task is DONE.
 */
#ifndef MR_JOB_H
#define MR_JOB_H

#include <stddef.h>
#include <stdint.h>
#include "common/ts_error.h"

enum mr_task_kind { MR_MAP = 0, MR_REDUCE = 1 };
enum mr_task_state { MR_PENDING = 0, MR_RUNNING, MR_DONE };
enum mr_job_state { MR_JOB_RUNNING = 0, MR_JOB_SUCCEEDED, MR_JOB_FAILED, MR_JOB_KILLED };
enum mr_phase { MR_PHASE_MAP = 0, MR_PHASE_REDUCE, MR_PHASE_DONE };

#define MR_TASK_HOSTS 8

typedef struct mr_task {
    enum mr_task_kind kind;
    unsigned index;             /* m-INDEX / r-INDEX */
    enum mr_task_state state;
    unsigned attempt;           /* number of the current or last attempt (1-based) */
    unsigned failures;          /* counted failures so far */
    int server;                 /* where running, or (DONE map) where its output is; -1 */
    int64_t pending_since_ms;   /* when it last became PENDING (delay scheduling) */
    int local;                  /* the running/done attempt reads its input locally */
    const char *hosts[MR_TASK_HOSTS]; /* maps: servers holding the split (borrowed) */
    size_t nhosts;
    char last_error[400];       /* message of the last failed attempt */
} mr_task;

typedef struct mr_job {
    mr_task *tasks;             /* maps [0, nmaps) then reduces */
    size_t nmaps, nreduces;
    unsigned max_attempts;
    enum mr_job_state state;
    char error[512];            /* why the job failed */
} mr_job;

/* Sets up nmaps + nreduces PENDING tasks (pending since now_ms).
 * TS_EINVAL when there is no map or max_attempts is 0. */
int mr_job_init(mr_job *job, size_t nmaps, size_t nreduces, unsigned max_attempts,
                int64_t now_ms, ts_error *err);
void mr_job_free(mr_job *job);

/* Task by global index (maps first). */
mr_task *mr_job_task(mr_job *job, size_t i);
size_t mr_job_ntasks(const mr_job *job);
/* "m-00003" / "r-00000" into out (16 bytes). */
void mr_task_name(const mr_task *t, char out[16]);

enum mr_phase mr_job_phase(const mr_job *job);
/* Counts of tasks of one kind by state. */
void mr_job_counts(const mr_job *job, enum mr_task_kind kind, size_t *pending, size_t *running,
                   size_t *done);
/* Done maps whose (last) attempt ran data-local. */
size_t mr_job_local_maps(const mr_job *job);

/* Events.  Each checks that the event fits the task's state and attempt
 * (TS_EINVAL otherwise, nothing changed), so a late report of an attempt
 * that was already written off is ignored safely by the caller. */
/* PENDING -> RUNNING on server; returns the new attempt number (> 0). */
int mr_job_start_attempt(mr_job *job, size_t task, int server, int local, ts_error *err);
int mr_job_attempt_done(mr_job *job, size_t task, unsigned attempt, ts_error *err);
/* A failed attempt.  counted = 0 for failures that are not the task's fault
 * (its server died, a shuffle source vanished).  When the counted failures
 * reach max_attempts the job fails with msg in its error. */
int mr_job_attempt_failed(mr_job *job, size_t task, unsigned attempt, int counted,
                          const char *msg, int64_t now_ms, ts_error *err);
/* Server lost: its running attempts go back to PENDING (not counted), and
 * so do DONE maps whose output was there while a reduce still needs it.
 * Returns how many tasks were reset. */
size_t mr_job_server_lost(mr_job *job, int server, int64_t now_ms);
/* Killed by the user. */
void mr_job_kill(mr_job *job);

/* Checks the invariants above; 0, or TS_EINVAL describing the first broken
 * one (tests call it after every step). */
int mr_job_check(const mr_job *job, ts_error *err);

#endif
