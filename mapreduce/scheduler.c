/*
 * Delay scheduling of maps and spreading of reduces (see scheduler.h).
 */
#include "mapreduce/scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int mr_task_prefers(const mr_task *t, const char *server_id)
{
    for (size_t i = 0; i < t->nhosts; i++)
        if (t->hosts[i] && strcmp(t->hosts[i], server_id) == 0)
            return 1;
    return 0;
}

static int any_host_alive(const mr_task *t, const mr_sched_server *servers, size_t nservers)
{
    for (size_t s = 0; s < nservers; s++)
        if (servers[s].alive && mr_task_prefers(t, servers[s].id))
            return 1;
    return 0;
}

/* Better candidate: pending longer, then lower index. */
static int earlier(const mr_task *a, const mr_task *b)
{
    if (b == NULL)
        return 1;
    if (a->pending_since_ms != b->pending_since_ms)
        return a->pending_since_ms < b->pending_since_ms;
    return a->index < b->index;
}

size_t mr_schedule(const mr_job *job, const mr_sched_server *servers, size_t nservers,
                   int64_t now_ms, const mr_sched_opts *opts, mr_assignment *out, size_t max)
{
    size_t n = 0;
    unsigned *free_slots;
    unsigned char *taken;
    size_t ntasks = job->nmaps + job->nreduces;

    if (job->state != MR_JOB_RUNNING || nservers == 0 || max == 0)
        return 0;
    free_slots = ts_calloc(nservers, sizeof(*free_slots));
    taken = ts_calloc(ntasks ? ntasks : 1, 1);
    for (size_t s = 0; s < nservers; s++)
        free_slots[s] = servers[s].alive ? servers[s].free_slots : 0;

    if (mr_job_phase(job) == MR_PHASE_MAP) {
        /* Pass 1: data-local placements, server by server, one slot at a
         * time round-robin so local work spreads over the servers. */
        int progress = 1;
        while (progress && n < max) {
            progress = 0;
            for (size_t s = 0; s < nservers && n < max; s++) {
                if (free_slots[s] == 0)
                    continue;
                const mr_task *best = NULL;
                size_t best_i = 0;
                for (size_t i = 0; i < job->nmaps; i++) {
                    const mr_task *t = &job->tasks[i];
                    if (t->state != MR_PENDING || taken[i] || !mr_task_prefers(t, servers[s].id))
                        continue;
                    if (earlier(t, best)) {
                        best = t;
                        best_i = i;
                    }
                }
                if (best == NULL)
                    continue;
                taken[best_i] = 1;
                free_slots[s]--;
                out[n++] = (mr_assignment){.task = best_i, .server = (int)s, .local = 1};
                progress = 1;
            }
        }
        /* Pass 2: maps that waited long enough (or cannot ever be local)
         * go to whichever server has the most free slots. */
        for (size_t i = 0; i < job->nmaps && n < max; i++) {
            const mr_task *t = &job->tasks[i];
            if (t->state != MR_PENDING || taken[i])
                continue;
            int may_go_remote = now_ms - t->pending_since_ms >= opts->locality_wait_ms ||
                                !any_host_alive(t, servers, nservers);
            if (!may_go_remote)
                continue;
            int pick = -1;
            for (size_t s = 0; s < nservers; s++)
                if (free_slots[s] > 0 && (pick < 0 || free_slots[s] > free_slots[pick]))
                    pick = (int)s;
            if (pick < 0)
                break;
            taken[i] = 1;
            free_slots[pick]--;
            out[n++] = (mr_assignment){.task = i, .server = pick, .local = 0};
        }
    } else if (mr_job_phase(job) == MR_PHASE_REDUCE) {
        unsigned *placed = ts_calloc(nservers, sizeof(*placed));
        for (size_t i = job->nmaps; i < ntasks && n < max; i++) {
            if (job->tasks[i].state != MR_PENDING)
                continue;
            int pick = -1;
            for (size_t s = 0; s < nservers; s++) {
                if (free_slots[s] == 0)
                    continue;
                if (pick < 0 || free_slots[s] > free_slots[pick] ||
                    (free_slots[s] == free_slots[pick] && placed[s] < placed[pick]))
                    pick = (int)s;
            }
            if (pick < 0)
                break;
            free_slots[pick]--;
            placed[pick]++;
            out[n++] = (mr_assignment){.task = i, .server = pick, .local = 0};
        }
        free(placed);
    }
    free(taken);
    free(free_slots);
    return n;
}
