/*
 * The background checkpointer: snapshots of the metadata state machine that
 * never touch the live state (the HDFS checkpoint-node idea, in-process).
 *
 * The applier (the store, under its state lock, or the Raft driver) hands
 * every entry it applies to checkpoint_applied: a copy of the encoded
 * command goes on a list, O(1) and no encoding of the namespace.  When
 * `every` entries were applied since the base image, the checkpoint thread
 * takes the list up to the newest entry X, loads the base image into a
 * PRIVATE sm_state (ops.load), applies the entries with sm_apply -- the
 * same function the live state uses -- and hands the state at X to
 * ops.save, which makes it durable (tmp, fsync, rename) and lets the log
 * drop what it covers.  Only then does X become the base and the entries
 * up to X are freed.  Clients keep being served the whole time: the live
 * state lock is never taken by the checkpoint thread.
 *
 * Cost: the live path copies each entry once; memory peaks at about twice
 * the namespace while a checkpoint runs (the private copy is freed and
 * malloc_trim'ed after); the list holds the entries since the base, as the
 * log does.  A failed checkpoint keeps the entries and is retried after
 * another `every` entries.
 *
 * Crash safety is ops.save's: a crash at any point leaves the old image or
 * the new one complete, and the log still holds everything after the old.
 *
 *   applier thread                      checkpoint thread
 *   checkpoint_applied(X-1)
 *   checkpoint_applied(X)  -- due -->   load base; apply entries <= X;
 *   checkpoint_applied(X+1)             ops.save(X)
 *   ...                    <-- done --  base = X; free entries <= X
 *
 * checkpoint_reset (the live state was replaced by an image, e.g. a Raft
 * InstallSnapshot) drops the list; a checkpoint running meanwhile is
 * discarded when it finishes (a generation number tells).
 */
#ifndef TS_META_CHECKPOINT_H
#define TS_META_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "common/ts_error.h"
#include "metadata/sm.h"

typedef struct checkpoint checkpoint;

typedef struct checkpoint_ops {
    /* Fills *st (fresh) with the image at index, the current base.  0 or
     * an error (the checkpoint is then retried later). */
    int (*load)(void *arg, uint64_t index, sm_state *st, ts_error *err);
    /* Makes st, the state after entry index, the durable snapshot at index
     * and compacts the log up to it.  *bytes = the image size.  0 or an
     * error (nothing changes). */
    int (*save)(void *arg, uint64_t index, const sm_state *st, uint64_t *bytes, ts_error *err);
    void *arg;
    /* How the entries are applied: SM_DEDUP or SM_REPLAY (sm.h). */
    int mode;
} checkpoint_ops;

/* A checkpointer whose base image is at `base`, taking one every `every`
 * (>= 1) entries.  name is for log messages.  The thread starts with
 * checkpoint_run (the caller may first need to finish its own start). */
checkpoint *checkpoint_new(const char *name, uint64_t base, uint64_t every,
                           const checkpoint_ops *ops);
void checkpoint_run(checkpoint *ck);
/* Stops the thread (a running checkpoint is abandoned between entries, or
 * finishes its save); entries may still be added afterwards.  Idempotent. */
void checkpoint_stop(checkpoint *ck);
/* checkpoint_stop, then frees everything.  NULL is fine. */
void checkpoint_free(checkpoint *ck);

/* The applier applied entry `index` (indexes strictly increase, gaps are
 * allowed: a Raft configuration entry changes no state and has data NULL).
 * data (an encoded command, len bytes) is copied.  Returns 1 when this
 * entry made a checkpoint due (the single-server store then starts a new
 * log segment, so whole segments can be dropped), else 0. */
int checkpoint_applied(checkpoint *ck, uint64_t index, const void *data, size_t len);

/* The state was replaced by the image at base: forget the entries. */
void checkpoint_reset(checkpoint *ck, uint64_t base);

/* Takes a checkpoint of everything applied so far and waits for it.  0
 * (also when there is nothing new), the save's error, or TS_EUNAVAIL
 * (stopped). */
int checkpoint_now(checkpoint *ck, ts_error *err);

typedef struct checkpoint_stats {
    uint64_t base;               /* index of the newest durable snapshot */
    uint64_t pending;            /* entries held since it */
    uint64_t written, failed;    /* checkpoints by this process */
    int running;
    int64_t last_ms;             /* duration of the last one written */
    uint64_t last_bytes;         /* its image size */
} checkpoint_stats;
void checkpoint_get_stats(checkpoint *ck, checkpoint_stats *st);

#endif
