/*
 * The streaming task runner: what one map or reduce attempt does, with the
 * storage around it given as callbacks, so the same code runs in the task
 * executor (chunkserver/task_exec.c) and in unit tests over local files.
 *
 * Map: reads the split's records (split.h line rule) through `read`, pipes
 * them into the mapper, and either partitions + sorts + spills its output
 * into one partitioned file (kvsort.h; combiner applied at each spill), or,
 * with no reducers, hands the output straight to `sink`.
 *
 * Reduce: merges its sorted input segments (one per map, local files) by
 * key, pipes them into the reducer, and hands the reducer's output to
 * `sink`.
 *
 * Both fail with TS_EIO "mapper exited with status 3" style messages when
 * the command fails; the command's stderr goes to stderr_fd (the task log).
 */
#ifndef MR_TASK_H
#define MR_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/ts_error.h"

/* Reads up to len bytes of the input file at off: bytes read, 0 at end of
 * file, or a negative code. */
typedef ssize_t (*mr_read_fn)(void *ctx, uint64_t off, void *buf, size_t len, ts_error *err);
/* Takes output bytes (to the filesystem, in the executor). */
typedef int (*mr_sink_fn)(void *ctx, const char *buf, size_t len, ts_error *err);

typedef struct mr_cmd_env {
    const char *workdir;        /* the command's working directory (shipped files) */
    char *const *env;           /* extra "K=V" (NULL-terminated) or NULL */
    int stderr_fd;              /* the task log */
    const volatile int *cancel; /* nonzero: kill and stop (TS_EBUSY) */
} mr_cmd_env;

typedef struct mr_map_spec {
    const char *mapper, *combiner; /* combiner may be NULL */
    mr_cmd_env env;
    uint64_t start, end;        /* the split */
    unsigned nparts;            /* reducers; 0 = output to sink */
    size_t sort_mem;            /* sort buffer bytes */
    const char *spill_dir;      /* run files */
    const char *out_path;       /* the partitioned output (nparts > 0) */
    mr_read_fn read;
    void *read_ctx;
    mr_sink_fn sink;            /* nparts == 0 */
    void *sink_ctx;
} mr_map_spec;

typedef struct mr_task_stats {
    uint64_t input_bytes;       /* bytes read from the input (map) or segments (reduce) */
    uint64_t records_in;        /* lines given to the command */
    uint64_t records_out;       /* lines written to the output after combining */
    uint64_t output_bytes;
    unsigned spills;
} mr_task_stats;

/* Runs a map.  offsets (nparts + 1 entries, when nparts > 0) receive the
 * partition boundaries of out_path. */
int mr_run_map(const mr_map_spec *spec, uint64_t *offsets, mr_task_stats *st, ts_error *err);

typedef struct mr_reduce_spec {
    const char *reducer;
    mr_cmd_env env;
    const char *const *inputs;  /* sorted segment files */
    size_t ninputs;
    mr_sink_fn sink;
    void *sink_ctx;
} mr_reduce_spec;

int mr_run_reduce(const mr_reduce_spec *spec, mr_task_stats *st, ts_error *err);

#endif
