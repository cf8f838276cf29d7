/*
 * The write path of libtessera.
 *
 * A writer cuts the byte stream into chunks.  Each full chunk is handed to
 * the client's I/O pool, which stores it through a replication chain
 * (tess_upload_chunk) while the caller fills the next buffer, so reading the
 * source overlaps the network transfer.  Buffers live in a ring of
 * `in_flight` slots used in chunk order: chunk k uses slot k % in_flight,
 * which bounds memory to in_flight * chunk_size and makes results come back
 * in file order for free.  A flush with nothing else in flight (a small
 * file at close) uploads its last chunk on the calling thread instead.
 *
 * Slot states (under w->mu):
 *
 *     FREE --fill--> FILLING --submit--> UPLOADING --worker--> DONE
 *      ^                                                          |
 *      +------------------ harvest (in chunk order) --------------+
 *
 * Harvested results accumulate (extents + chunk records) until flush/close,
 * which issues ONE /v1/file/commit covering everything written since the
 * previous commit: the new data becomes visible atomically.
 *
 * Inline data: a flush whose only new data is one small buffer (at most the
 * client's inline_max, ending within the file's first TESS_INLINE_END_MAX
 * bytes) sends the bytes with the commit instead of uploading a chunk
 * (metadata/namespace.h "Inline chunks"): a small file or a small append
 * costs one metadata commit.  A metadata service that refuses them (an
 * older one: it does not know the chunk) gets them uploaded as ordinary
 * chunks instead, and this client stops trying.
 *
 * Chain choice: a fresh random chunk id per attempt, placement rank over the
 * up servers, the first `replicas` not yet excluded.  A failed attempt
 * excludes the server that failed (the first one when it is unreachable, the
 * downstream one a 502 names) and tries again, so one dead chunkserver does
 * not fail the write.  A fresh id per attempt means a half-written copy left
 * on a server by the failed attempt can never collide (409) with the retry;
 * such orphans are garbage collected.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/placement.h"
#include "common/util.h"
#include "fs/client_int.h"

#define UPLOAD_ATTEMPTS 4

/* ------------------------------------------------------ chain selection */

size_t tess_chain_select(const size_t *ranked, size_t nranked, const unsigned char *excluded,
                         size_t r, size_t *chain)
{
    size_t n = 0;

    for (size_t i = 0; i < nranked && n < r; i++)
        if (!excluded[ranked[i]])
            chain[n++] = ranked[i];
    return n;
}

/* Characters that continue a server id or address, so "cs-1" does not match
 * inside "cs-12" nor "127.0.0.1:740" inside "127.0.0.1:7402". */
static int word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
}

static int mentions(const char *msg, const char *word)
{
    size_t wl = strlen(word);

    if (wl == 0)
        return 0;
    for (const char *p = strstr(msg, word); p; p = strstr(p + 1, word)) {
        int before_ok = p == msg || !word_char(p[-1]);
        /* After an address a ':' may follow ("host:port: refused"), so only
         * digits continue it; after an id, any word character does. */
        int after_ok = !word_char(p[wl]);
        if (before_ok && after_ok)
            return 1;
    }
    return 0;
}

int tess_chain_blame(const tess_servers *servers, const size_t *chain, size_t n, const char *msg)
{
    if (!msg)
        return -1;
    /* Downstream members only: the first server is the one reporting. */
    for (size_t i = 1; i < n; i++)
        if (mentions(msg, servers->v[chain[i]].address))
            return (int)i;
    for (size_t i = 1; i < n; i++)
        if (mentions(msg, servers->v[chain[i]].id))
            return (int)i;
    return -1;
}

/* --------------------------------------------------------- chunk upload */

static int by_version(const void *a, const void *b)
{
    return strverscmp(*(const char *const *)a, *(const char *const *)b);
}

/* "only 2 chunkservers are up (cs-1, cs-2)" */
static int not_enough_servers(const tess_servers *s, const ts_place_server *ps, size_t up,
                              unsigned replicas, ts_error *err)
{
    ts_buf b = {0};
    int rc;

    ts_buf_printf(&b, "cannot place %u replica%s: ", replicas, replicas == 1 ? "" : "s");
    if (up == 0) {
        ts_buf_printf(&b, "no chunkserver is up");
        if (s->n > 0)
            ts_buf_printf(&b, " (%zu known, all down or draining)", s->n);
    } else {
        const char **ids = ts_calloc(up, sizeof(*ids));
        size_t k = 0;

        for (size_t i = 0; i < s->n; i++)
            if (ps[i].eligible)
                ids[k++] = s->v[i].id;
        qsort(ids, k, sizeof(*ids), by_version);   /* cs-2 before cs-10 */
        ts_buf_printf(&b, "only %zu chunkserver%s %s up (", up, up == 1 ? "" : "s",
                      up == 1 ? "is" : "are");
        for (size_t i = 0; i < k; i++)
            ts_buf_printf(&b, "%s%s", i ? ", " : "", ids[i]);
        ts_buf_printf(&b, "); use --replicas %zu to store fewer copies", up);
        free(ids);
    }
    rc = ts_fail(err, TS_ENOSPC, "%s", b.data);
    ts_buf_free(&b);
    return rc;
}

/* Decodes the chunkserver's 201 answer into rec, checking it against what
 * was sent. */
static int parse_upload_answer(const ts_http_result *r, const ts_chunk_id *id, size_t len,
                               const uint8_t sha[TS_SHA256_LEN], const tess_servers *s,
                               const size_t *chain, size_t nchain, tess_chunk_rec *rec,
                               ts_error *err)
{
    json_t *j = NULL;
    const char *hex;
    uint64_t got_len;
    uint8_t got_sha[TS_SHA256_LEN];
    int rc;

    if ((rc = ts_json_parse_object(r->body ? r->body : "", r->body_len, &j, err)) != 0)
        return TS_EPROTO;
    if ((rc = ts_json_u64(j, "length", &got_len, err)) != 0 ||
        (rc = ts_json_str(j, "sha256", &hex, err)) != 0)
        goto decref;
    if (got_len != len) {
        rc = ts_fail(err, TS_ECORRUPT, "stored %llu bytes, sent %zu", (unsigned long long)got_len, len);
        goto decref;
    }
    if (ts_hex_decode(hex, got_sha, TS_SHA256_LEN) != 0 || memcmp(got_sha, sha, TS_SHA256_LEN) != 0) {
        rc = ts_fail(err, TS_ECORRUPT, "stored SHA-256 %s differs from the data sent", hex);
        goto decref;
    }
    memset(rec, 0, sizeof(*rec));
    rec->id = *id;
    rec->length = len;
    memcpy(rec->sha256, sha, TS_SHA256_LEN);
    if ((rc = tess_json_strv(json_object_get(j, "replicas"), "replicas", &rec->replicas,
                             &rec->nreplicas, err)) != 0)
        goto decref;
    if (rec->nreplicas == 0) {
        /* An older chunkserver that does not list them: the chain we used. */
        rec->replicas = ts_calloc(nchain, sizeof(char *));
        for (size_t i = 0; i < nchain; i++)
            rec->replicas[i] = ts_strdup(s->v[chain[i]].id);
        rec->nreplicas = nchain;
    }
decref:
    json_decref(j);
    return rc;
}

int tess_upload_chunk(tess_client *c, const void *data, size_t len, unsigned replicas,
                      tess_chunk_rec *rec, ts_error *err)
{
    tess_servers s = {0};
    ts_place_server *ps = NULL;
    size_t *ranked = NULL, *chain = NULL, up = 0;
    unsigned char *excluded = NULL, *suspected = NULL, *skip = NULL;
    ts_chunk_digest digest;     /* sent along: the chain checks the CRC, keeps the SHA */
    ts_buf failures = {0};
    long timeout;
    int rc;

    if (replicas < 1 || replicas > TESS_MAX_REPLICAS)
        return ts_fail(err, TS_EINVAL, "replicas %u: expected 1..%d", replicas, TESS_MAX_REPLICAS);
    ts_chunk_digest_of(data, len, &digest);
    if ((rc = tess_membership(c, 0, &s, err)) != 0)
        return rc;
    ps = ts_calloc(s.n + 1, sizeof(*ps));
    ranked = ts_calloc(s.n + 1, sizeof(*ranked));
    chain = ts_calloc(s.n + 1, sizeof(*chain));
    excluded = ts_calloc(s.n + 1, 1);      /* failed during this call */
    suspected = ts_calloc(s.n + 1, 1);     /* failed recently elsewhere */
    skip = ts_calloc(s.n + 1, 1);
    for (size_t i = 0; i < s.n; i++) {
        ps[i].id = s.v[i].id;
        ps[i].zone = s.v[i].zone;
        ps[i].weight = s.v[i].weight;
        ps[i].eligible = s.v[i].state == TESS_SERVER_UP;
        up += ps[i].eligible != 0;
    }
    if (up < replicas) {
        rc = not_enough_servers(&s, ps, up, replicas, err);
        goto free_all;
    }
    ts_place_prepare(ps, s.n);
    /* Leave out servers that failed recently (here or in another call),
     * while enough others remain; they get their chance again below when
     * this call's own failures leave too few. */
    size_t suspects = 0;
    for (size_t i = 0; i < s.n; i++)
        if (ps[i].eligible && tess_suspect_is(c, s.v[i].id))
            suspected[i] = 1, suspects++;
    if (up - suspects < replicas)
        memset(suspected, 0, s.n);
    /* A generous timeout for the body: the configured one plus a second per
     * MiB, so a big chunk on a slow link is not cut off midway. */
    timeout = c->timeout_ms + (long)(len >> 20) * 1000;

    for (int attempt = 0; attempt < UPLOAD_ATTEMPTS; attempt++) {
        char hex[TS_CHUNK_ID_HEX_LEN + 1];
        ts_http_result r = {0};
        ts_chunk_id id;
        ts_error e;
        ts_buf url = {0};
        size_t nranked, nchain;
        int blame = 0;

        ts_chunk_id_random(&id);
        ts_chunk_id_to_hex(&id, hex);
        nranked = ts_place_rank(&id, ps, s.n, ranked);
        for (size_t i = 0; i < s.n; i++)
            skip[i] = excluded[i] | suspected[i];
        nchain = tess_chain_select(ranked, nranked, skip, replicas, chain);
        if (nchain < replicas) {
            /* A suspect may have come back (a restarted server). */
            memset(suspected, 0, s.n);
            nchain = tess_chain_select(ranked, nranked, excluded, replicas, chain);
        }
        if (nchain < replicas) {
            size_t working = 0;
            for (size_t i = 0; i < s.n; i++)
                working += ps[i].eligible && !excluded[i];
            if (working > 0)
                ts_buf_printf(&failures, "); use --replicas %zu to store fewer copies", working);
            else
                ts_buf_printf(&failures, ")");
            rc = ts_fail(err, TS_EUNAVAIL,
                         "cannot place %u replicas: only %zu of %zu up chunkservers work (%s",
                         replicas, working, up, failures.data);
            goto free_all;
        }
        const char *addrs[TESS_MAX_REPLICAS];
        for (size_t i = 0; i < nchain; i++)
            addrs[i] = s.v[chain[i]].address;
        ts_chunk_put_url(&url, hex, addrs, nchain, 0, &digest);

        rc = ts_http_call("PUT", url.data, "application/octet-stream", data, len, timeout, &r, &e);
        ts_buf_free(&url);
        if (rc == 0 && r.status >= 200 && r.status < 300) {
            rc = parse_upload_answer(&r, &id, len, digest.sha256, &s, chain, nchain, rec, &e);
            ts_http_result_free(&r);
            if (rc == 0)
                goto free_all;
            ts_error_prefix(&e, "chunk %s", hex);   /* blame the first: it answered */
        } else if (rc == 0) {
            rc = ts_http_result_error(&r, s.v[chain[0]].id, &e);
            if (rc == TS_EUNAVAIL || rc == TS_ETIMEDOUT) {
                /* A downstream server failed; the message names it. */
                int who = tess_chain_blame(&s, chain, nchain, e.msg);
                blame = who >= 0 ? who : 0;
            } else if (rc == TS_EEXIST) {
                blame = -1;     /* an id collision: just take another id */
            } else if (r.status < 500 && rc != TS_ENOSPC) {
                /* The request itself is wrong: retrying cannot help. */
                ts_fail(err, rc, "chunk %s: %s (%s): %s", hex, s.v[chain[0]].id,
                        s.v[chain[0]].address, e.msg);
                ts_http_result_free(&r);
                goto free_all;
            }
            ts_http_result_free(&r);
        }
        if (blame >= 0) {
            size_t bad = chain[blame];
            excluded[bad] = 1;
            tess_suspect_note(c, s.v[bad].id);
            ts_buf_printf(&failures, "%s%s (%s): %s", failures.len ? "; " : "", s.v[bad].id,
                          s.v[bad].address, e.msg);
            TS_WARN("chunk %s: %s (%s) failed: %s; retrying without it", hex, s.v[bad].id,
                    s.v[bad].address, e.msg);
        }
    }
    rc = ts_fail(err, TS_EUNAVAIL, "chunk upload failed after %d attempts: %s", UPLOAD_ATTEMPTS,
                 failures.data ? failures.data : "no server accepted it");
free_all:
    ts_buf_free(&failures);
    free(skip);
    free(suspected);
    free(excluded);
    free(chain);
    free(ranked);
    free(ps);
    tess_servers_free(&s);
    return rc;
}

/* ------------------------------------------------------------------ writer */

enum slot_state { SLOT_FREE = 0, SLOT_FILLING, SLOT_UPLOADING, SLOT_DONE };

typedef struct slot {
    tess_task task;
    struct tess_writer *w;
    enum slot_state state;
    char *buf;                  /* cap bytes, grown up to chunk_size as filled */
    size_t cap;
    size_t len;
    uint64_t file_offset;
    int rc;                     /* result of the upload (DONE) */
    ts_error err;
    tess_chunk_rec rec;
} slot;

struct tess_writer {
    tess_client *c;
    uint64_t ino;
    unsigned replicas;
    size_t chunk_size;
    size_t nslots;
    int truncate;
    uint64_t old_size;          /* truncate: the size before this writer */
    int committed;              /* a commit has been made */

    uint64_t commit_start;      /* first byte not committed yet */
    uint64_t pos;               /* offset of the next byte written */
    uint64_t submitted;         /* chunks handed to the pool */
    uint64_t harvested;         /* chunks whose result was collected */

    pthread_mutex_t mu;         /* guards slot states */
    pthread_cond_t cv;
    slot *slots;

    ts_extent *ext;             /* harvested, not committed */
    tess_chunk_rec *recs;
    size_t ndone, cap;

    int failed;                 /* first error, repeated by every later call */
    ts_error fail_err;

    int create_pending;         /* the next commit creates the file (tess_writer_set_create) */
    tess_create_at_req create;  /* its name is owned here */
};

static void upload_task(void *arg)
{
    slot *s = arg;
    tess_writer *w = s->w;
    int rc;

    ts_error_clear(&s->err);
    rc = tess_upload_chunk(w->c, s->buf, s->len, w->replicas, &s->rec, &s->err);
    /* Placement errors read best alone ("cannot place 3 replicas: …"). */
    if (rc != 0 && rc != TS_ENOSPC)
        ts_error_prefix(&s->err, "write at offset %llu", (unsigned long long)s->file_offset);
    pthread_mutex_lock(&w->mu);
    s->rc = rc;
    s->state = SLOT_DONE;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void fail_writer(tess_writer *w, const ts_error *e)
{
    if (!w->failed) {
        w->failed = e->code ? e->code : TS_EIO;
        w->fail_err = *e;
        w->fail_err.code = w->failed;
    }
}

static int failed_result(tess_writer *w, ts_error *err)
{
    if (err)
        *err = w->fail_err;
    return w->failed;
}

/* Waits for the oldest outstanding chunk and collects its result. */
static void harvest_oldest(tess_writer *w)
{
    slot *s = &w->slots[w->harvested % w->nslots];

    pthread_mutex_lock(&w->mu);
    while (s->state != SLOT_DONE)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (s->rc != 0) {
        fail_writer(w, &s->err);
    } else {
        if (w->ndone == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 16;
            w->ext = ts_realloc(w->ext, w->cap * sizeof(*w->ext));
            w->recs = ts_realloc(w->recs, w->cap * sizeof(*w->recs));
        }
        w->ext[w->ndone] = (ts_extent){.file_offset = s->file_offset, .length = s->len,
                                       .chunk = s->rec.id, .chunk_offset = 0};
        w->recs[w->ndone++] = s->rec;   /* ownership of the replica list moves */
        memset(&s->rec, 0, sizeof(s->rec));
    }
    s->state = SLOT_FREE;
    w->harvested++;
}

static void harvest_all(tess_writer *w)
{
    while (w->harvested < w->submitted)
        harvest_oldest(w);
}

static void submit_slot(tess_writer *w, slot *s)
{
    s->state = SLOT_UPLOADING;
    s->task.fn = upload_task;
    s->task.arg = s;
    w->submitted++;
    tess_pool_submit(w->c, &s->task);
}

/* Uploads s on the calling thread; the caller then harvests it as usual.
 * Used when the caller would only wait for the pool anyway: no hand-off
 * between threads, and concurrent writers of small files are not queued
 * behind the few pool workers but upload in parallel on their own threads
 * (each with its own kept-alive connections). */
static void upload_here(tess_writer *w, slot *s)
{
    s->state = SLOT_UPLOADING;
    w->submitted++;
    upload_task(s);
}

/* Makes s an inline chunk: its buffer becomes the record's data (no
 * upload); harvested as usual. */
static void make_inline(tess_writer *w, slot *s)
{
    s->state = SLOT_UPLOADING;
    w->submitted++;
    memset(&s->rec, 0, sizeof(s->rec));
    ts_chunk_id_random(&s->rec.id);
    s->rec.length = s->len;
    ts_sha256_once(s->buf, s->len, s->rec.sha256);
    s->rec.inline_data = (uint8_t *)s->buf;     /* the record owns it now */
    s->buf = NULL;
    s->cap = 0;
    s->rc = 0;
    s->state = SLOT_DONE;
}

static int inline_fits(const tess_writer *w, const slot *s)
{
    return w->c->inline_max > 0 && !atomic_load(&w->c->inline_refused) &&
           w->submitted == w->harvested && s->len <= w->c->inline_max &&
           s->file_offset + s->len <= TESS_INLINE_END_MAX;
}

/* The commit refused inline data: uploads each inline record as an
 * ordinary chunk (a new id) and points the extents at it. */
static int upload_inline_records(tess_writer *w, ts_error *err)
{
    for (size_t i = 0; i < w->ndone; i++) {
        tess_chunk_rec *r = &w->recs[i], up;
        if (!r->inline_data)
            continue;
        int rc = tess_upload_chunk(w->c, r->inline_data, (size_t)r->length, w->replicas, &up, err);
        if (rc != 0)
            return rc;
        for (size_t k = 0; k < w->ndone; k++)
            if (ts_chunk_id_eq(&w->ext[k].chunk, &r->id))
                w->ext[k].chunk = up.id;
        tess_chunk_rec_clear(r);
        *r = up;
    }
    return 0;
}

/* The commit of [commit_start, end): /v1/file/commit, or the create of a
 * file the server does not know yet with the same data (one request). */
static int writer_commit(tess_writer *w, uint64_t end, const uint64_t *size, ts_attr *attr,
                         ts_error *err)
{
    const uint64_t *sz = w->truncate ? size : NULL;
    if (!w->create_pending)
        return tess_commit(w->c, w->ino, w->commit_start, end - w->commit_start, w->ext,
                           w->ndone, w->recs, w->ndone, sz, NULL, attr, err);
    json_t *data = NULL;
    ts_buf att = {0};
    if (end > w->commit_start || w->ndone > 0) {
        data = json_object();
        tess_commit_fields(data, &att, w->commit_start, end - w->commit_start, w->ext, w->ndone,
                           w->recs, w->ndone, sz, NULL);
    }
    int rc = tess_create_at_with(w->c, &w->create, data, &att, attr, err);
    ts_buf_free(&att);
    if (rc == 0)
        tess_writer_clear_create(w);
    return rc;
}

static int has_inline_records(const tess_writer *w)
{
    for (size_t i = 0; i < w->ndone; i++)
        if (w->recs[i].inline_data)
            return 1;
    return 0;
}

/* Makes room for n more bytes in s.  The buffer starts small and doubles,
 * so that a small file costs a small allocation rather than chunk_size
 * (64 MiB by default); past SLOT_JUMP it becomes chunk_size at once, which
 * bounds what reallocation copies (an allocation that large is mapped
 * lazily, so its untouched pages cost nothing). */
#define SLOT_START (64u * 1024)
#define SLOT_JUMP (1u << 20)
static void slot_reserve(tess_writer *w, slot *s, size_t n)
{
    size_t need = s->len + n, cap = s->cap;

    if (need <= cap)
        return;
    if (cap == 0)
        cap = TS_MIN(w->chunk_size, (size_t)SLOT_START);
    while (cap < need)
        cap = cap >= SLOT_JUMP || cap > w->chunk_size / 2 ? w->chunk_size : 2 * cap;
    s->buf = ts_realloc(s->buf, cap);
    s->cap = cap;
}

int tess_writer_open(tess_client *c, uint64_t ino, uint64_t start_offset,
                     const tess_writer_opts *opts, tess_writer **out, ts_error *err)
{
    tess_writer_opts o = {0};
    tess_writer *w;

    if (opts)
        o = *opts;
    if (o.replicas == 0)
        o.replicas = c->replicas;
    if (o.chunk_size == 0)
        o.chunk_size = c->chunk_size;
    if (o.in_flight == 0)
        o.in_flight = c->in_flight;
    if (o.replicas > TESS_MAX_REPLICAS)
        return ts_fail(err, TS_EINVAL, "replicas %u: expected 1..%d", o.replicas, TESS_MAX_REPLICAS);
    if (o.chunk_size > (1ull << 32))
        return ts_fail(err, TS_EINVAL, "chunk size %llu: at most 4 GiB",
                       (unsigned long long)o.chunk_size);
    w = ts_calloc(1, sizeof(*w));
    w->c = c;
    w->ino = ino;
    w->replicas = o.replicas;
    w->chunk_size = (size_t)o.chunk_size;
    w->nslots = TS_MIN(o.in_flight, TESS_MAX_IN_FLIGHT);
    w->truncate = o.truncate;
    w->commit_start = w->pos = start_offset;
    if (w->truncate) {
        ts_attr a;
        int rc = tess_getattr(c, ino, &a, err);
        if (rc != 0) {
            free(w);
            return rc;
        }
        w->old_size = a.size;
    }
    w->slots = ts_calloc(w->nslots, sizeof(*w->slots));
    for (size_t i = 0; i < w->nslots; i++)
        w->slots[i].w = w;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    *out = w;
    return 0;
}

uint64_t tess_writer_offset(const tess_writer *w) { return w->pos; }

int tess_writer_write(tess_writer *w, const void *buf, size_t len, ts_error *err)
{
    const char *p = buf;

    while (len > 0) {
        slot *s = &w->slots[w->submitted % w->nslots];

        if (w->failed)
            return failed_result(w, err);
        if (s->state != SLOT_FILLING) {
            /* Every slot busy: the oldest upload must finish first. */
            while (w->submitted - w->harvested >= w->nslots)
                harvest_oldest(w);
            if (w->failed)
                return failed_result(w, err);
            s->state = SLOT_FILLING;
            s->len = 0;
            s->file_offset = w->pos;
        }
        size_t n = TS_MIN(len, w->chunk_size - s->len);
        slot_reserve(w, s, n);
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        w->pos += n;
        p += n;
        len -= n;
        if (s->len == w->chunk_size)
            submit_slot(w, s);
    }
    return 0;
}

int tess_writer_flush(tess_writer *w, ts_attr *attr, ts_error *err)
{
    slot *s = &w->slots[w->submitted % w->nslots];
    uint64_t end, size;
    int rc;

    if (w->failed)
        return failed_result(w, err);
    if (s->state == SLOT_FILLING) {
        if (s->len == 0)
            s->state = SLOT_FREE;
        else if (inline_fits(w, s))
            make_inline(w, s);
        else if (w->submitted == w->harvested)
            upload_here(w, s);      /* nothing else in flight: a small file */
        else
            submit_slot(w, s);
    }
    harvest_all(w);
    if (w->failed)
        return failed_result(w, err);

    /* The range this commit replaces: what was written since the last one,
     * and for a truncating writer's first commit also the old tail. */
    end = w->pos;
    if (w->truncate && !w->committed)
        end = TS_MAX(end, w->old_size);
    if (end == w->commit_start && w->ndone == 0 && !w->create_pending) {
        if (attr && (rc = tess_getattr(w->c, w->ino, attr, err)) != 0)
            return rc;
        return 0;               /* nothing written, nothing to drop */
    }
    size = w->pos;
    rc = writer_commit(w, end, &size, attr, err);
    if ((rc == TS_EINVAL || rc == TS_ENOSPC) && has_inline_records(w)) {
        /* Nothing was applied (a refused command changes nothing): try
         * again with the data in chunks.  ENOSPC: the service's inline
         * budget is full for now.  EINVAL: when the retry works, the
         * service does not take inline data (an older one): stop offering. */
        ts_error first = err ? *err : (ts_error){.code = rc};
        int refused = rc == TS_EINVAL;
        rc = upload_inline_records(w, err);
        if (rc == 0)
            rc = writer_commit(w, end, &size, attr, err);
        if (rc == 0 && refused && !atomic_exchange(&w->c->inline_refused, 1))
            TS_WARN("the metadata service refused inline data (%s); small writes are "
                    "uploaded as chunks from now on", first.msg);
    }
    if (rc != 0) {
        ts_error e = err ? *err : (ts_error){.code = rc};
        fail_writer(w, &e);
        return rc;
    }
    for (size_t i = 0; i < w->ndone; i++)
        tess_chunk_rec_clear(&w->recs[i]);
    w->ndone = 0;
    w->commit_start = w->pos;
    w->committed = 1;
    return 0;
}

void tess_writer_set_create(tess_writer *w, const tess_create_at_req *r)
{
    free((char *)w->create.name);
    w->create = *r;
    w->create.name = ts_strdup(r->name);
    w->create.ino = w->ino;
    w->create_pending = 1;
}

void tess_writer_clear_create(tess_writer *w)
{
    w->create_pending = 0;
    free((char *)w->create.name);
    w->create.name = NULL;
}

void tess_writer_abort(tess_writer *w)
{
    if (!w)
        return;
    /* Workers still use the buffers: wait for them before freeing. */
    harvest_all(w);
    for (size_t i = 0; i < w->ndone; i++)
        tess_chunk_rec_clear(&w->recs[i]);
    for (size_t i = 0; i < w->nslots; i++) {
        tess_chunk_rec_clear(&w->slots[i].rec);
        free(w->slots[i].buf);
    }
    free(w->slots);
    free(w->ext);
    free(w->recs);
    free((char *)w->create.name);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int tess_writer_close(tess_writer *w, ts_attr *attr, ts_error *err)
{
    int rc = tess_writer_flush(w, attr, err);

    tess_writer_abort(w);
    return rc;
}

/* ------------------------------------------------------------ convenience */

int tess_put_fd(tess_client *c, int fd, const char *remote_path, const tess_put_opts *opts,
                ts_attr *out, ts_error *err)
{
    tess_put_opts o = {0};
    char norm[TS_PATH_MAX + 1];
    const char *parent_path, *name;
    ts_attr parent, file;
    tess_writer *w = NULL;
    tess_writer_opts wo = {0};
    size_t bufsize = 1 << 20;
    char *buf = NULL;
    uint64_t done = 0;
    int created = 0, rc;

    if (opts)
        o = *opts;
    if ((rc = tess_path_normalize(remote_path, norm, err)) != 0)
        return rc;
    if ((rc = tess_path_split(norm, &parent_path, &name, err)) != 0)
        return rc;
    if ((rc = tess_resolve(c, parent_path, &parent, err)) != 0) {
        if (rc == TS_ENOENT)
            ts_fail(err, rc, "no such directory %s", parent_path);
        return rc;
    }
    if ((parent.mode & S_IFMT) != S_IFDIR)
        return ts_fail(err, TS_ENOTDIR, "%s is not a directory", parent_path);
    /* Not truncated here: the writer replaces the old content in its one
     * commit, so readers see the old file or the new one, never a mix. */
    if ((rc = tess_create(c, parent.ino, name, o.mode ? o.mode : 0644, (uint32_t)getuid(),
                          (uint32_t)getgid(), 0, &file, &created, err)) != 0)
        return rc;
    wo.replicas = o.replicas;
    wo.chunk_size = o.chunk_size;
    wo.truncate = 1;
    if ((rc = tess_writer_open(c, file.ino, 0, &wo, &w, err)) != 0)
        goto remove_new;
    buf = ts_malloc(bufsize);
    for (;;) {
        ssize_t n = read(fd, buf, bufsize);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ts_fail(err, TS_EIO, "read: %s", strerror(errno));
            goto abort_writer;
        }
        if (n == 0)
            break;
        if ((rc = tess_writer_write(w, buf, (size_t)n, err)) != 0)
            goto abort_writer;
        done += (uint64_t)n;
        if (o.progress)
            o.progress(o.progress_ctx, done, o.size_hint);
    }
    free(buf);
    rc = tess_writer_close(w, out, err);
    if (rc != 0)
        goto remove_new;
    return 0;

abort_writer:
    free(buf);
    tess_writer_abort(w);
remove_new:
    /* A file this call created and could not fill is removed again, so a
     * failed put leaves the namespace as it was. */
    if (created) {
        ts_error ignored;
        if (tess_unlink(c, parent.ino, name, &ignored) != 0)
            TS_WARN("put %s: could not remove the incomplete file: %s", remote_path, ignored.msg);
    }
    return rc;
}

int tess_put_file(tess_client *c, const char *local_path, const char *remote_path,
                  const tess_put_opts *opts, ts_attr *out, ts_error *err)
{
    tess_put_opts o = {0};
    struct stat st;
    int fd, rc;

    if (opts)
        o = *opts;
    if (strcmp(local_path, "-") == 0)
        return tess_put_fd(c, STDIN_FILENO, remote_path, &o, out, err);
    fd = open(local_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ts_fail(err, ts_err_from_errno(errno), "%s: %s", local_path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = ts_fail(err, TS_EIO, "%s: %s", local_path, strerror(errno));
        goto close_fd;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ts_fail(err, TS_EISDIR, "%s is a directory", local_path);
        goto close_fd;
    }
    if (S_ISREG(st.st_mode)) {
        if (!o.size_hint)
            o.size_hint = (uint64_t)st.st_size;
        if (!o.mode)
            o.mode = st.st_mode & 07777;
    }
    rc = tess_put_fd(c, fd, remote_path, &o, out, err);
close_fd:
    close(fd);
    return rc;
}
