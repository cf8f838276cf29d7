/*
 * Streaming processes: runs a user command (mapper, combiner, reducer) as
 * `/bin/sh -c CMD` in a working directory, in its own process group (so a
 * kill reaches the whole pipeline the shell starts), with stdin and stdout
 * on pipes and stderr into a log file.  mr_proc_pump moves data both ways
 * with poll(), in one thread, so a command that writes before it has read
 * all its input never deadlocks against us.
 */
#ifndef MR_PROC_H
#define MR_PROC_H

#include <stddef.h>
#include <sys/types.h>
#include "common/ts_error.h"

typedef struct mr_proc {
    pid_t pid;
    int in_fd;                  /* its stdin (we write); -1 once closed */
    int out_fd;                 /* its stdout (we read); -1 once closed */
} mr_proc;

/* Starts cmd.  env: NULL-terminated "K=V" strings added to our environment
 * (may be NULL).  stderr_fd (>= 0) becomes the command's stderr. */
int mr_proc_spawn(const char *cmd, const char *cwd, char *const *env, int stderr_fd,
                  mr_proc *p, ts_error *err);

/* The input: sets *data and *len to the next bytes to write (valid until the
 * next call); *len 0 at the end.  Returns 0 or a negative code. */
typedef int (*mr_produce_fn)(void *ctx, const char **data, size_t *len, ts_error *err);
/* The output, as it arrives. */
typedef int (*mr_consume_fn)(void *ctx, const char *buf, size_t len, ts_error *err);

/* Feeds the command everything produce gives (then closes its stdin) while
 * handing its stdout to consume, until its stdout ends.  A command that
 * closes its stdin early (head, grep -q) simply gets no more input.  When
 * *cancel becomes nonzero (checked at least every 200 ms) the process group
 * is killed and TS_EBUSY returned.  Callback errors are returned as is. */
int mr_proc_pump(mr_proc *p, mr_produce_fn produce, void *pctx, mr_consume_fn consume,
                 void *cctx, const volatile int *cancel, ts_error *err);

/* Waits for the command to exit: 0 for exit status 0, else TS_EIO
 * "exited with status N" / "killed by signal N".  Closes the pipes. */
int mr_proc_wait(mr_proc *p, ts_error *err);
/* Kills the process group and reaps it (no-op when already reaped). */
void mr_proc_kill(mr_proc *p);

#endif
