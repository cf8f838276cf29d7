/*
 * The task executor of a chunkserver: runs MapReduce map and reduce
 * attempts next to the data, a bounded number at a time (task_slots), and
 * serves their map output to reducers.  The job coordinator
 * (mapreduce/coordinator.h) drives it over HTTP, routed here by the chunk
 * API (chunk_api.h, `task_handler`):
 *
 *   GET    /v1/task                     {"server","slots","running","tasks":[id…]}
 *   POST   /v1/task                     start an attempt (JSON spec below):
 *                                       201 {"id"}; 409 EBUSY when every slot
 *                                       is taken; 409 EEXIST for a known id
 *   GET    /v1/task/ID                  status: {"id","kind","state":"running|
 *                                       succeeded|failed|killed","error",
 *                                       "stderr_tail","input_bytes","local_bytes",
 *                                       "remote_bytes","records_in","records_out",
 *                                       "output_bytes","shuffle_bytes",
 *                                       "partitions":[bytes…],"elapsed_ms"}
 *   GET    /v1/task/ID/output/P?offset=A&length=N
 *                                       bytes of map output partition P (the
 *                                       shuffle fetch); 409 EBUSY unless succeeded
 *   GET    /v1/task/ID/log              the commands' stderr (text)
 *   DELETE /v1/task/ID                  kill if running, drop output and log
 *
 * Spec: {"id","kind":"map"|"reduce","cmd","combiner"(opt),
 *        "files":[{"name","path"}] (copied from the filesystem into the
 *        attempt's working directory, mode 0755),
 *        "chunk_size","replicas" (of output files),
 *        map:    "input":{"path","start","end"}, "partitions":R,
 *        reduce: "partition":P, "sources":[{"addr","server","task","length"}],
 *        "output":{"dir","name"} (reduces, and maps when R = 0)}
 *
 * A map reads its split from the local chunk files when this server holds
 * the chunk (verified reads through the chunk store), otherwise through
 * libtessera from a replica; local_bytes/remote_bytes say which happened.
 * Output files are written through libtessera with `output.name` in
 * `output.dir`; the coordinator renames them into place at job commit.
 *
 * Attempts live in WORK/ID/ (WORK = task_dir) until DELETE or, unclaimed,
 * task_retain_s after they end; WORK is emptied at start.  Each running
 * attempt has a thread; a task is reference-counted (the table, its thread,
 * and any request using it) and freed, with its directory, by the last one.
 */
#ifndef TS_TASK_EXEC_H
#define TS_TASK_EXEC_H

#include <stddef.h>
#include "chunkserver/chunk_store.h"
#include "common/http_server.h"
#include "common/ts_error.h"
#include "fs/tessera.h"

typedef struct ts_task_exec ts_task_exec;

typedef struct ts_task_exec_opts {
    ts_chunk_store *store;      /* borrowed: local split reads */
    tess_client *client;        /* borrowed: metadata, remote reads, output */
    const char *server_id;      /* copied */
    const char *work_dir;       /* copied; created */
    unsigned slots;             /* concurrent attempts, > 0 */
    size_t sort_mem;            /* sort buffer of a map, >= 64 KiB */
    long retain_s;              /* finished attempts kept without DELETE */
} ts_task_exec_opts;

/* Empties and creates work_dir.  TS_EINVAL / TS_EIO.  *out is freed by
 * ts_task_exec_stop. */
int ts_task_exec_start(const ts_task_exec_opts *opts, ts_task_exec **out, ts_error *err);
/* Kills running attempts, waits for their threads, removes their files. */
void ts_task_exec_stop(ts_task_exec *x);
/* The HTTP handler for /v1/task and /v1/task/… (app = the executor). */
void ts_task_exec_handle(void *app, const ts_http_request *req, ts_http_response *resp);

#endif
