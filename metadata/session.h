/*
 * Client sessions: the dedup table of the metadata state machine, which
 * makes a retried request idempotent.  A client (one libtessera instance)
 * picks a random 64-bit id and numbers its mutating requests 1, 2, ...;
 * each request also says `acked`, the highest seq below which it has every
 * answer.  When a request times out or its server dies, the client sends
 * the same (client, seq) again, possibly to a new leader; if the first try
 * was applied, the table answers with the remembered result instead of
 * applying the command a second time.
 *
 * Per client the table keeps the results of seq > acked (what may still be
 * retried), at most SESSION_MAX_RESULTS of them; at most SESSION_MAX_CLIENTS
 * clients are kept, the one idle longest (by command time, then by id) is
 * dropped first.  Everything is driven by the command alone (its time is
 * the leader's stamp), so every replica holds the same table: it is part
 * of the state machine and of its snapshot image.
 *
 * A seq that is <= acked, or older than the results still kept, cannot be
 * told apart from a request already applied: it is refused (TS_EINVAL)
 * rather than risk applying twice.
 *
 * Not thread-safe: the store calls it under its state write lock.
 */
#ifndef TS_META_SESSION_H
#define TS_META_SESSION_H

#include <stdint.h>
#include "common/codec.h"
#include "common/ts_error.h"
#include "metadata/command.h"

#define SESSION_MAX_CLIENTS 4096
#define SESSION_MAX_RESULTS 256

typedef struct session_table session_table;

session_table *session_table_new(void);
/* NULL is fine. */
void session_table_free(session_table *t);

/* Before applying c (which has a client id): 0 when c must be applied; 1
 * when it was applied before -- *rc, *res and err (for a failed one) then
 * hold the first answer; or TS_EINVAL (too old to tell, see above). */
int session_check(const session_table *t, const cmd *c, int *rc, cmd_result *res,
                  ts_error *err);
/* Records the answer to c (rc, res, and err's message when rc != 0) and
 * drops what c->acked says the client no longer needs. */
void session_record(session_table *t, const cmd *c, int rc, const cmd_result *res,
                    const ts_error *err);

/* Image (common/codec.h): u32 clients, then per client u64 id, u64 acked,
 * i64 last_ns, u32 results, per result u64 seq, i32 rc (as u32), the
 * ts_attr fields, u8 created, str message. */
void session_encode(const session_table *t, ts_buf *b);
/* Reads an image written by session_encode.  TS_ECORRUPT. */
int session_decode(ts_dec *d, session_table **out, ts_error *err);

size_t session_count(const session_table *t);

#endif
