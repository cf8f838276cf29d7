/*
 * The MapReduce scheduler (pure): given the job model, the servers with
 * their free slots and the time, decides which pending tasks start where.
 *
 * Maps use delay scheduling (Zaharia et al., EuroSys 2010): a free slot on
 * server S first takes a pending map whose split S holds (data-local); a map
 * with no local slot free waits up to locality_wait_ms from when it became
 * pending before it may run on any server (remote read).  A map none of
 * whose hosts is alive does not wait.  Among candidates, the map pending
 * longest goes first (then the lowest index), so decisions are
 * deterministic.
 *
 * Reduces start once every map is done (job.h invariant 4), each on the
 * alive server with the most free slots (ties: fewest reduces placed there
 * by this call, then lowest index), which spreads them out.
 */
#ifndef MR_SCHEDULER_H
#define MR_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include "mapreduce/job.h"

typedef struct mr_sched_server {
    const char *id;             /* compared with the maps' hosts */
    unsigned free_slots;
    int alive;
} mr_sched_server;

typedef struct mr_assignment {
    size_t task;                /* global task index */
    int server;                 /* index into the servers given */
    int local;                  /* data-local map */
} mr_assignment;

typedef struct mr_sched_opts {
    int64_t locality_wait_ms;
} mr_sched_opts;

/* Fills out[0..max) with assignments and returns how many.  Does not change
 * job: the caller starts each attempt (mr_job_start_attempt) as it
 * launches it.  servers[].free_slots is not changed either. */
size_t mr_schedule(const mr_job *job, const mr_sched_server *servers, size_t nservers,
                   int64_t now_ms, const mr_sched_opts *opts, mr_assignment *out, size_t max);

/* 1 when server id holds the map's split. */
int mr_task_prefers(const mr_task *t, const char *server_id);

#endif
