/*
 * Private internals shared by the client_*.c files of libtessera: the client
 * struct, the metadata-call core (retries, failover between metadata
 * servers, 421 redirects), the membership cache and the I/O thread pool.
 * Nothing outside fs/client*.c includes this file; fs/tessera.h is the
 * contract.
 */
#ifndef TESS_CLIENT_INT_H
#define TESS_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include "fs/tessera.h"

#define TESS_MAX_META 16
/* How long a fetched membership map is reused by writers and readers. */
#define TESS_MEMBERSHIP_TTL_MS 2000
/* Metadata calls retry unreachable servers with backoff up to this long. */
#define TESS_META_RETRY_MS 5000
/* How long a server that failed a request is tried last. */
#define TESS_SUSPECT_MS 10000
#define TESS_MAX_SUSPECTS 16

/* A unit of work for the pool.  The storage belongs to the submitter and must
 * stay valid until fn has returned; fn must not wait for other tasks (the
 * pool is shared, so that could deadlock). */
typedef struct tess_task {
    void (*fn)(void *arg);
    void *arg;
    struct tess_task *next;
} tess_task;

struct tess_client {
    uint64_t chunk_size;
    unsigned replicas;
    long timeout_ms;
    unsigned in_flight;
    uint64_t inline_max;        /* 0: inline data off */
    atomic_int inline_refused;  /* the metadata service refused inline data once */

    /* Metadata servers: the configured ones first, then any a 421 named.
     * Entries are never removed or freed before close, so pointers handed
     * out by tess_client_meta_addr stay valid. */
    pthread_mutex_t meta_mu;
    char *meta[TESS_MAX_META];
    size_t nmeta;
    size_t meta_cur;            /* the one that answered last */

    /* Request ids of mutating calls (guarded by meta_mu): a random client
     * id, the next sequence number and the ones still waiting for an
     * answer, whose lowest bounds what the server must remember
     * (metadata/session.h). */
    uint64_t client_id;
    uint64_t next_seq;
    uint64_t *pending_seqs;
    size_t npending, pending_cap;
    /* Signalled when a request leaves pending_seqs: a new seq waits while
     * it would run TESS_SEQ_WINDOW or more ahead of the lowest pending one
     * (see request_begin). */
    pthread_cond_t seq_cv;

    /* Membership cache (GET /v1/cluster/servers). */
    pthread_mutex_t members_mu;
    tess_servers members;
    int64_t members_at_ms;      /* ts_mono_ms() of the fetch; 0 = never */

    /* Servers that failed a request recently ("suspects"): readers try
     * them last and writers leave them out of chains while enough others
     * remain, so a hung or dead server costs one failure, not one per
     * chunk, until the membership map catches up. */
    pthread_mutex_t suspect_mu;
    struct tess_suspect {
        char id[64];
        int64_t until_ms;
    } suspects[TESS_MAX_SUSPECTS];

    /* I/O pool: started on first use; `stopping` ends the workers. */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    tess_task *queue_head, *queue_tail;
    pthread_t *threads;
    size_t nthreads;
    int stopping;

    uint64_t meta_requests;             /* metadata calls made (atomic) */
    tess_dir_changed_fn dir_changed;    /* see tess_client_on_dir_change */
    void *dir_changed_arg;
};

/* One metadata request.  method "GET" or "POST"; req (may be NULL) is
 * consumed.  On success *resp (caller decrefs) is the answer object.  `what`
 * prefixes error messages ("mkdir 1/'a'").  Unreachable servers and
 * EUNAVAIL/ETIMEDOUT answers are retried on the next server with backoff up
 * to TESS_META_RETRY_MS; a 421 with a Location is followed. */
int tess_meta_call(tess_client *c, const char *method, const char *path, json_t *req,
                   json_t **resp, const char *what, ts_error *err);
/* The same POST with attachments (common/proto.h TS_JSON_ATT_TYPE): the
 * bytes req's fields name by offset (att borrowed; NULL: a plain JSON
 * body).  An answer with attachments has them appended to resp_att (NULL:
 * such an answer is TS_EPROTO). */
int tess_meta_call_att(tess_client *c, const char *path, json_t *req, const ts_buf *att,
                       json_t **resp, ts_buf *resp_att, const char *what, ts_error *err);

/* A deep copy of the membership map, fetched when older than the TTL (or
 * when force is set).  Free with tess_servers_free. */
int tess_membership(tess_client *c, int force, tess_servers *out, ts_error *err);

/* Marks server id as failed just now / tells whether it failed within
 * TESS_SUSPECT_MS. */
void tess_suspect_note(tess_client *c, const char *id);
int tess_suspect_is(tess_client *c, const char *id);

/* Queues t on the pool (starting it on first use). */
void tess_pool_submit(tess_client *c, tess_task *t);

/* Deep copies between server lists (aborts on OOM). */
void tess_servers_copy(const tess_servers *src, tess_servers *dst);

/* String vectors (malloc'd array of malloc'd strings): free v[0..n) and v;
 * deep copy (NULL when n is 0). */
void tess_strv_free(char **v, size_t n);
char **tess_strv_copy(char *const *v, size_t n);

/* The data fields of a commit (PROTOCOL.md /v1/file/commit: offset,
 * length, extents, chunks, inline_chunks, size, mtime) set on req; the
 * bytes of inline chunks are appended to att, which their "inline_at"
 * fields point into. */
void tess_commit_fields(json_t *req, ts_buf *att, uint64_t offset, uint64_t length,
                        const ts_extent *extents, size_t nextents, const tess_chunk_rec *chunks,
                        size_t nchunks, const uint64_t *size, const int64_t *mtime_ns);
/* /v1/file/create_at with the data fields (data NULL: none) and the
 * attachments they name (att may be NULL). */
int tess_create_at_with(tess_client *c, const tess_create_at_req *r, json_t *data,
                        const ts_buf *att, ts_attr *out, ts_error *err);

/* Parses a JSON array of strings into a malloc'd vector. */
int tess_json_strv(const json_t *arr, const char *field, char ***out, size_t *n, ts_error *err);

#endif
