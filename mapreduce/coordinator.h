/*
 * The job coordinator of the MapReduce runner.  It runs inside the process
 * that submits the job (`tessera mr run`), so a job needs no extra daemon
 * and its lifetime is the command's: it computes splits from the input
 * files' layouts, drives the job model (job.h) with the scheduler
 * (scheduler.h), starts attempts on the chunkservers' task executors over
 * HTTP (chunkserver/task_exec.h), watches them, re-runs failed ones and the
 * maps whose output died with their server, and commits the output.
 *
 * State kept in the filesystem, so other `tessera mr` commands (and other
 * machines) see it after `run` exits:
 *
 *   /.mr/JOB/status.json     the job's status, rewritten every 2 s and at
 *                            each change of phase (mr_status_* below)
 *   /.mr/JOB/files/NAME      the --files shipped to every attempt
 *   /.mr/JOB/logs/TASK       stderr of every attempt of TASK (m-00003, r-00000),
 *                            written when an attempt ends
 *   /.mr/JOB/kill            created by `tessera mr kill`; the coordinator
 *                            polls for it every second
 *
 * Output commit: attempts write OUT/_temporary/TASK.aN; when every task is
 * done they are renamed to OUT/part-NNNNN, _temporary is removed and
 * OUT/_SUCCESS created last.  A failed or killed job removes _temporary, so
 * it leaves no part file and no _SUCCESS.
 */
#ifndef MR_COORDINATOR_H
#define MR_COORDINATOR_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "common/ts_error.h"
#include "fs/tessera.h"

#define MR_STATE_DIR "/.mr"
#define MR_JOB_ID_MAX 64

/* What `run` reports as it goes (for the progress line). */
typedef struct mr_progress {
    const char *job_id;
    const char *phase;          /* "map", "reduce", "commit", "done" */
    size_t maps, maps_done, maps_running;
    size_t reduces, reduces_done, reduces_running;
    size_t local_maps;
    int64_t elapsed_ms;
} mr_progress;
typedef void (*mr_progress_fn)(void *ctx, const mr_progress *p);

typedef struct mr_job_conf {
    const char *const *inputs;  /* files or directories (their files) */
    size_t ninputs;
    const char *output;         /* must not exist; its parent must */
    const char *mapper, *reducer, *combiner; /* reducer unused with 0 reducers; combiner may be NULL */
    unsigned reducers;          /* 0 = map output is the job output */
    const char *const *files;   /* local files shipped to every attempt */
    size_t nfiles;
    const char *name;           /* NULL = "job" */
    uint64_t split_size;        /* 0 = the client's chunk size */
    unsigned max_attempts;      /* counted failures per task before the job fails; 0 = 4 */
    int64_t locality_wait_ms;   /* delay scheduling; < 0 = 3000 */
    unsigned replicas;          /* of output files; 0 = client default */
    mr_progress_fn progress;    /* may be NULL */
    void *progress_ctx;
    /* Called once the job id exists (before any task runs); may be NULL. */
    void (*started)(void *ctx, const char *job_id);
} mr_job_conf;

/* Runs a job to its end.  Returns 0 when it succeeded; otherwise the job's
 * error (which names the failed task, its server and its stderr tail) or a
 * setup error (TS_EEXIST for an existing output directory, TS_ENOENT for a
 * missing input, …).  job_id (MR_JOB_ID_MAX bytes) receives the id as soon
 * as it exists ("" when setup failed before). */
int mr_job_run(tess_client *c, const mr_job_conf *conf, char *job_id, ts_error *err);

/* ---- job state in the filesystem (for status, kill, logs) ---- */

/* Reads a whole small file of the filesystem; *data malloc'd, NUL-terminated. */
int mr_fs_read(tess_client *c, const char *path, char **data, size_t *len, ts_error *err);
/* Every job's status (newest first): a JSON array (caller decrefs). */
int mr_status_list(tess_client *c, json_t **out, ts_error *err);
/* One job's status by id, or the newest job with that --name. */
int mr_status_get(tess_client *c, const char *job, json_t **out, ts_error *err);
/* Asks the job's coordinator to stop and waits for it (up to 10 s); when no
 * coordinator answers (it died), stops the job's attempts itself and marks
 * the job killed.  TS_EINVAL when the job is not running. */
int mr_job_kill_request(tess_client *c, const char *job, ts_error *err);

#endif
