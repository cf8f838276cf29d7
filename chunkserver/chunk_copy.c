/*
 * Chunk copies between chunkservers (see chunk_copy.h): the destination's
 * pull, with its admission (max_copies_in), its source loop and its
 * verification, and the source's outgoing slots (max_copies_out).
 *
 * Life of one copy at the destination:
 *
 *   here already? ──yes──► 200 copied:false
 *        │ no
 *   take an in-slot ──none free──► EBUSY
 *        │
 *   for each source: info ─► writer_begin ─► streamed GET (throttled) ─►
 *        │           commit (SHA-256 must equal the source's)
 *        │           any failure: writer aborted, note why, next source
 *        │           (ENOSPC and local I/O errors end the loop: no source
 *        │            can fix our disk)
 *   release the slot ─► 201 copied:true, or the collected failures
 */
#include "chunkserver/chunk_copy.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#define DEFAULT_MAX_COPIES 2
#define DEFAULT_MAX_CHUNK (1024ull * 1024 * 1024)
#define MAX_SOURCES 16
#define INFO_TIMEOUT_MS 10000
/* A copy is given up after 10 minutes plus the time its bytes need at the
 * slower of the background budget and 100 KB/s. */
#define COPY_BASE_TIMEOUT_MS 600000
#define COPY_FLOOR_BYTES_PER_SEC 100000

struct ts_chunk_copier {
    ts_chunk_store *store;
    char *server_id;
    ts_throttle *background;
    unsigned max_in, max_out;
    uint64_t max_chunk_size;
    pthread_mutex_t mu;          /* guards stats */
    ts_copy_stats stats;
};

ts_chunk_copier *ts_chunk_copier_new(const ts_chunk_copier_opts *opts)
{
    ts_chunk_copier *c = ts_calloc(1, sizeof *c);
    c->store = opts->store;
    c->server_id = ts_strdup(opts->server_id != NULL ? opts->server_id : "");
    c->background = opts->background;
    c->max_in = opts->max_copies_in ? opts->max_copies_in : DEFAULT_MAX_COPIES;
    c->max_out = opts->max_copies_out ? opts->max_copies_out : DEFAULT_MAX_COPIES;
    c->max_chunk_size = opts->max_chunk_size ? opts->max_chunk_size : DEFAULT_MAX_CHUNK;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        ts_die("chunk copier: pthread_mutex_init failed");
    return c;
}

void ts_chunk_copier_free(ts_chunk_copier *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->server_id);
    free(c);
}

void ts_chunk_copier_stats(ts_chunk_copier *c, ts_copy_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}

/* ---- source side ---- */

int ts_chunk_copier_begin_out(ts_chunk_copier *c, const char *dest, ts_error *err)
{
    pthread_mutex_lock(&c->mu);
    if (c->stats.in_flight_out >= c->max_out) {
        c->stats.busy_refusals++;
        pthread_mutex_unlock(&c->mu);
        return ts_fail(err, TS_EBUSY, "server %s already sends %u copies (max_copies_out); "
                       "copy to %.64s refused, retry later", c->server_id, c->max_out, dest);
    }
    c->stats.in_flight_out++;
    c->stats.copies_out++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void ts_chunk_copier_end_out(void *copier)
{
    ts_chunk_copier *c = copier;
    pthread_mutex_lock(&c->mu);
    if (c->stats.in_flight_out == 0)
        ts_die("chunk copier: outgoing copy slot released twice");
    c->stats.in_flight_out--;
    pthread_mutex_unlock(&c->mu);
}

/* ---- destination side ---- */

/* The streamed body of one copy: throttled, then appended. */
struct pull {
    ts_chunk_copier *c;
    ts_chunk_writer *w;
    ts_error werr;               /* the writer's failure, when it stopped us */
};

static int pull_piece(void *ctx, const char *buf, size_t len)
{
    struct pull *p = ctx;
    int64_t wait = ts_throttle_reserve(p->c->background, len, ts_mono_ms());
    if (wait > 0)
        ts_sleep_ms((int)TS_MIN(wait, (int64_t)60000));
    return ts_chunk_writer_append(p->w, buf, len, &p->werr) != 0;
}

/* Asks source `src` for the length and SHA-256 of chunk hex. */
static int source_info(const char *src, const char *hex, uint64_t max_len, uint64_t *length,
                       uint8_t sha[TS_SHA256_LEN], ts_error *err)
{
    ts_http_result res = { 0 };
    json_t *j = NULL;
    const char *sha_hex;
    char *url = ts_sprintf("http://%s/v1/chunk/%s/info", src, hex);
    int rc = ts_http_call("GET", url, NULL, NULL, 0, INFO_TIMEOUT_MS, &res, err);
    if (rc != 0)
        goto free_url;
    if (res.status != 200) {
        rc = ts_http_result_error(&res, "info", err);
        goto free_result;
    }
    if ((rc = ts_json_parse_object(res.body, res.body_len, &j, err)) != 0 ||
        (rc = ts_json_u64(j, "length", length, err)) != 0 ||
        (rc = ts_json_str(j, "sha256", &sha_hex, err)) != 0)
        goto free_json;
    if (strlen(sha_hex) != 2 * TS_SHA256_LEN || ts_hex_decode(sha_hex, sha, TS_SHA256_LEN) != 0) {
        rc = ts_fail(err, TS_EPROTO, "info: bad sha256 '%.80s'", sha_hex);
        goto free_json;
    }
    if (*length > max_len)
        rc = ts_fail(err, TS_EFBIG, "info: %" PRIu64 " bytes exceeds the maximum chunk size %" PRIu64,
                     *length, max_len);
free_json:
    json_decref(j);
free_result:
    ts_http_result_free(&res);
free_url:
    free(url);
    return rc;
}

/* One attempt from source `src`.  0 with *info (and *copied), or an error
 * that says whether another source may help (*fatal = 0) or not. */
static int pull_from(ts_chunk_copier *c, const ts_chunk_id *id, const char *hex, const char *src,
                     ts_chunk_info *info, int *copied, int *fatal, ts_error *err)
{
    ts_http_result res = { 0 };
    struct pull p = { .c = c };
    uint8_t sha[TS_SHA256_LEN];
    uint64_t length;
    int rc;

    *fatal = 0;
    rc = source_info(src, hex, c->max_chunk_size, &length, sha, err);
    if (rc != 0)
        return rc;
    rc = ts_chunk_writer_begin(c->store, id, length, &p.w, err);
    if (rc == TS_EEXIST) {
        /* Sealed meanwhile by a concurrent copy or write: that is success. */
        *copied = 0;
        return ts_chunk_store_info(c->store, id, info, err);
    }
    if (rc != 0) {
        *fatal = 1;
        return rc;
    }
    ts_chunk_writer_expect_sha256(p.w, sha);

    uint64_t rate = ts_throttle_rate(c->background);
    if (rate == 0 || rate > COPY_FLOOR_BYTES_PER_SEC)
        rate = COPY_FLOOR_BYTES_PER_SEC;
    long timeout = COPY_BASE_TIMEOUT_MS + (long)(length / rate * 1000);
    char *url = ts_sprintf("http://%s/v1/chunk/%s?copy=%s", src, hex, c->server_id);
    rc = ts_http_get_stream(url, pull_piece, &p, timeout, &res, err);
    free(url);
    if (rc != 0 && p.werr.code != 0) {
        /* Our disk failed, not the source. */
        *err = p.werr;
        rc = p.werr.code;
        *fatal = rc == TS_ENOSPC || rc == TS_EIO;
        goto abort_writer;
    }
    if (rc != 0)
        goto abort_writer;
    if (res.status != 200) {
        rc = ts_http_result_error(&res, "GET", err);
        goto abort_writer;
    }
    if (ts_chunk_writer_written(p.w) != length) {
        rc = ts_fail(err, TS_EPROTO, "sent %" PRIu64 " of %" PRIu64 " bytes",
                     ts_chunk_writer_written(p.w), length);
        goto abort_writer;
    }
    rc = ts_chunk_writer_commit(p.w, info, err);
    p.w = NULL;
    if (rc == TS_EEXIST) {
        *copied = 0;
        rc = ts_chunk_store_info(c->store, id, info, err);
    } else if (rc == 0) {
        *copied = 1;
    } else if (rc != TS_ECORRUPT) {
        *fatal = 1;      /* ENOSPC, EIO: local */
    }
abort_writer:
    ts_chunk_writer_abort(p.w);
    ts_http_result_free(&res);
    return rc;
}

/* Takes an incoming copy slot: 0 or TS_EBUSY. */
static int begin_in(ts_chunk_copier *c, const char *hex, ts_error *err)
{
    pthread_mutex_lock(&c->mu);
    if (c->stats.in_flight_in >= c->max_in) {
        c->stats.busy_refusals++;
        pthread_mutex_unlock(&c->mu);
        return ts_fail(err, TS_EBUSY, "chunk %s: server %s already receives %u copies "
                       "(max_copies_in); retry later", hex, c->server_id, c->max_in);
    }
    c->stats.in_flight_in++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static void end_in(ts_chunk_copier *c, int ok, uint64_t bytes)
{
    pthread_mutex_lock(&c->mu);
    c->stats.in_flight_in--;
    if (ok) {
        c->stats.copies_in++;
        c->stats.bytes_in += bytes;
    } else {
        c->stats.copies_in_failed++;
    }
    pthread_mutex_unlock(&c->mu);
}

int ts_chunk_copier_copy(ts_chunk_copier *c, const ts_chunk_id *id, const char *const *sources,
                         size_t n, ts_chunk_info *info, int *copied, ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_buf why = { 0 };
    int64_t start = ts_mono_ms();
    size_t busy = 0;
    int rc;

    ts_chunk_id_to_hex(id, hex);
    *copied = 0;
    if (n == 0)
        return ts_fail(err, TS_EINVAL, "chunk %s: replicate: no source given", hex);
    if (ts_chunk_store_contains(c->store, id, NULL)) {
        rc = ts_chunk_store_info(c->store, id, info, err);
        if (rc == 0)
            return 0;
        /* Our copy is unreadable: let the store act on it, then copy. */
        ts_chunk_store_read_failed(c->store, id, err);
    }
    rc = begin_in(c, hex, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        ts_error serr = { 0 };
        int fatal = 0;
        rc = pull_from(c, id, hex, sources[i], info, copied, &fatal, &serr);
        if (rc == 0)
            break;
        busy += rc == TS_EBUSY;
        ts_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", sources[i], serr.msg);
        if (fatal) {
            rc = ts_fail(err, serr.code, "chunk %s: replicate: %s", hex, serr.msg);
            goto end_slot;
        }
    }
    if (rc == 0) {
        if (*copied)
            TS_INFO("chunk %s: copied %" PRIu64 " bytes from another server in %lld ms", hex,
                    info->length, (long long)(ts_mono_ms() - start));
    } else if (busy == n) {
        rc = ts_fail(err, TS_EBUSY, "chunk %s: every source is busy (%s); retry later", hex,
                     why.data);
    } else {
        rc = ts_fail(err, TS_EUNAVAIL, "chunk %s: no source could give it: %s", hex, why.data);
    }
end_slot:
    end_in(c, rc == 0, rc == 0 && *copied ? info->length : 0);
    if (rc != 0 && rc != TS_EBUSY)
        TS_WARN("%s", err != NULL ? err->msg : "replicate failed");
    ts_buf_free(&why);
    return rc;
}

/* ---- HTTP ---- */

void ts_chunk_copier_handle(ts_chunk_copier *c, const ts_chunk_id *id,
                            const ts_http_request *req, ts_http_response *resp)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    char sha_hex[2 * TS_SHA256_LEN + 1];
    const char *sources[MAX_SOURCES];
    ts_error err = { 0 };
    json_t *body = NULL;
    ts_chunk_info info;
    size_t n = 0, i;
    int copied = 0;
    json_t *v;

    ts_chunk_id_to_hex(id, hex);
    if (ts_json_parse_object(req->body, req->body_len, &body, &err) != 0) {
        ts_error_prefix(&err, "chunk %s: replicate", hex);
        ts_http_respond_ts_error(resp, &err);
        return;
    }
    json_t *from = json_object_get(body, "from");
    if (!json_is_array(from) || json_array_size(from) == 0 ||
        json_array_size(from) > MAX_SOURCES) {
        ts_http_respond_error(resp, TS_EINVAL, "chunk %s: replicate: 'from' must list 1 to %d "
                              "source servers as \"host:port\"", hex, MAX_SOURCES);
        goto free_body;
    }
    json_array_foreach(from, i, v) {
        char *host = NULL;
        int port;
        if (!json_is_string(v) ||
            ts_parse_hostport(json_string_value(v), &host, &port, &err) != 0) {
            ts_http_respond_error(resp, TS_EINVAL, "chunk %s: replicate: from[%zu] is not "
                                  "\"host:port\"%s%s", hex, i, err.msg[0] ? ": " : "", err.msg);
            goto free_body;
        }
        free(host);
        sources[n++] = json_string_value(v);
    }
    int rc = ts_chunk_copier_copy(c, id, sources, n, &info, &copied, &err);
    if (rc == TS_EBUSY) {
        /* Busy is a status the planner acts on, not a conflict: 503. */
        ts_http_respond_error(resp, TS_EBUSY, "%s", err.msg);
        resp->status = 503;
        ts_http_add_header(resp, "Retry-After", "1");
        goto free_body;
    }
    if (rc != 0) {
        ts_http_respond_ts_error(resp, &err);
        goto free_body;
    }
    ts_hex_encode(info.sha256, TS_SHA256_LEN, sha_hex);
    json_t *ans = json_pack("{s:s, s:I, s:s, s:b}", "id", hex, "length", (json_int_t)info.length,
                            "sha256", sha_hex, "copied", copied);
    if (ans == NULL)
        ts_die("out of memory building replicate answer");
    char *text = ts_json_dump(ans);
    ts_http_respond_json(resp, copied ? 201 : 200, text);
    free(text);
    json_decref(ans);
free_body:
    json_decref(body);
}
