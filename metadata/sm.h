/*
 * The metadata state machine as one value: the namespace, the client
 * session table and the time of the last applied command, with the ONE
 * deterministic function that applies a command to it and the image that
 * serializes it.  The live store (metadata/store.h) and the background
 * checkpointer (metadata/checkpoint.h) both go through sm_apply, so a
 * checkpoint rebuilt from the previous image plus the log is the live
 * state at the same index, byte for byte.
 *
 * Not thread-safe: the owner serializes (the store under its state lock,
 * the checkpointer on its own private copy).
 */
#ifndef TS_META_SM_H
#define TS_META_SM_H

#include <stdint.h>
#include "common/codec.h"
#include "common/ts_error.h"
#include "metadata/command.h"
#include "metadata/namespace.h"
#include "metadata/session.h"

typedef struct sm_state {
    ns_state *ns;                /* owned */
    session_table *sessions;     /* owned */
    int64_t last_now;            /* time of the last applied command */
} sm_state;

/* The state every member of a new Raft group starts from: the root with
 * times 0 (they must not depend on one server's clock), no sessions. */
void sm_init_empty(sm_state *st);
/* Frees what st owns and zeroes it.  Fine on a zeroed state. */
void sm_clear(sm_state *st);

enum sm_mode {
    /* Raft entries and live commands: a request seen before (same client
     * and seq) is answered from the session table instead of applied. */
    SM_DEDUP = 1,
    /* Single-server log records: the log only holds commands that were
     * applied (the dedup decision was taken live), so they are applied as
     * they are. */
    SM_REPLAY = 2
};

/* Applies c: first clamps c->now_ns to never go below the last applied
 * time (a new leader's clock may be behind) and advances st->last_now;
 * then (SM_DEDUP) consults the session table; then cmd_apply; then records
 * the answer of a command with a client id.  *applied = 1 when the command
 * was applied (successfully or not), 0 when answered from the table.
 * Returns the command's status; the state is unchanged when it fails. */
int sm_apply(sm_state *st, cmd *c, int mode, cmd_result *res, int *applied, ts_error *err);

/* Image of the replicated state machine: u32 magic "TSRI", u8 version 1,
 * i64 last command time, bytes namespace (ns_encode), the session table
 * (session_encode).  Appended to out. */
void sm_image_encode(const sm_state *st, ts_buf *out);
/* Decodes an image into a fresh *out (sm_clear it).  TS_ECORRUPT naming
 * the problem; *out is then zeroed. */
int sm_image_decode(const void *image, size_t len, sm_state *out, ts_error *err);

#endif
