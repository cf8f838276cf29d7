/*
 * Building a chunk from pieces of others (see chunk_build.h):
 *
 *   parse ─► take a build slot (EBUSY) ─► gather every piece into one
 *   buffer (local replica, else each source in turn) ─► PUT through the
 *   chain ─► answer with the PUT's answer ─► release the slot
 */
#include "chunkserver/chunk_build.h"

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

#define DEFAULT_MAX_CHUNK (1024ull * 1024 * 1024)
#define DEFAULT_MAX_BUILDS 2
#define MAX_SOURCES 16
#define MAX_PIECES 1000000
#define MAX_CHAIN 16
#define READ_TIMEOUT_MS 120000
#define PUT_TIMEOUT_MS 600000

struct ts_chunk_builder {
    ts_chunk_store *store;
    ts_throttle *background;
    uint64_t max_chunk;
    unsigned max_builds;
    pthread_mutex_t mu;         /* guards running and stats */
    unsigned running;
    ts_build_stats stats;
};

struct piece {
    ts_chunk_id chunk;
    uint64_t offset, length;
    const char *from[MAX_SOURCES];  /* borrowed from the request body */
    size_t nfrom;
    uint8_t *data;                  /* a piece sent with the request (owned), or NULL */
};

#define MAX_DATA_PIECE (64u * 1024)

static void free_pieces_array(struct piece *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].data);
    free(v);
}

/* {"data":"base64","length":N}: decodes the bytes into p.  TS_EINVAL. */
static int parse_data_piece(const json_t *jp, const json_t *d, struct piece *p, ts_error *err)
{
    size_t n = 0;
    if (ts_json_u64(jp, "length", &p->length, err) != 0)
        return TS_EINVAL;
    if (!json_is_string(d) || json_string_length(d) > (MAX_DATA_PIECE + 2) / 3 * 4 ||
        ts_base64_decode(json_string_value(d), json_string_length(d), &p->data, &n) != 0)
        return ts_fail(err, TS_EINVAL, "'data' must be base64 of at most %u bytes",
                       MAX_DATA_PIECE);
    if (n != p->length)
        return ts_fail(err, TS_EINVAL, "'data' holds %zu bytes, 'length' says %" PRIu64, n,
                       p->length);
    return 0;
}

ts_chunk_builder *ts_chunk_builder_new(const ts_chunk_builder_opts *opts)
{
    ts_chunk_builder *b = ts_calloc(1, sizeof *b);
    b->store = opts->store;
    b->background = opts->background;
    b->max_chunk = opts->max_chunk_size ? opts->max_chunk_size : DEFAULT_MAX_CHUNK;
    b->max_builds = opts->max_builds ? opts->max_builds : DEFAULT_MAX_BUILDS;
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        ts_die("chunk builder: pthread_mutex_init failed");
    return b;
}

void ts_chunk_builder_free(ts_chunk_builder *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void ts_chunk_builder_stats(ts_chunk_builder *b, ts_build_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    pthread_mutex_unlock(&b->mu);
}

/* Checks that v is an array of 1..MAX_SOURCES "host:port" strings and
 * points out[] at them.  TS_EINVAL naming `what`. */
static int parse_addrs(const json_t *v, const char *what, const char **out, size_t max,
                       size_t *n, ts_error *err)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > max)
        return ts_fail(err, TS_EINVAL, "'%s' must list 1 to %zu servers as \"host:port\"",
                       what, max);
    json_array_foreach(v, i, s) {
        char *host = NULL;
        int port;
        if (!json_is_string(s) ||
            ts_parse_hostport(json_string_value(s), &host, &port, err) != 0)
            return ts_fail(err, TS_EINVAL, "%s[%zu] is not \"host:port\"", what, i);
        free(host);
        out[i] = json_string_value(s);
    }
    *n = json_array_size(v);
    return 0;
}

/* Parses the pieces; *total is their summed length.  TS_EINVAL. */
static int parse_pieces(ts_chunk_builder *b, const json_t *arr, struct piece **out, size_t *n,
                        uint64_t *total, ts_error *err)
{
    size_t i;
    json_t *p;
    *total = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_PIECES)
        return ts_fail(err, TS_EINVAL, "'pieces' must be a non-empty array");
    struct piece *v = ts_calloc(json_array_size(arr), sizeof *v);
    json_array_foreach(arr, i, p) {
        char what[48];
        snprintf(what, sizeof what, "pieces[%zu].from", i);
        const json_t *d = json_is_object(p) ? json_object_get(p, "data") : NULL;
        if (!json_is_object(p) ||
            (d ? parse_data_piece(p, d, &v[i], err) != 0
               : (ts_json_chunk_id(p, "chunk", &v[i].chunk, err) != 0 ||
                  ts_json_u64(p, "offset", &v[i].offset, err) != 0 ||
                  ts_json_u64(p, "length", &v[i].length, err) != 0 ||
                  parse_addrs(json_object_get(p, "from"), what, v[i].from, MAX_SOURCES,
                              &v[i].nfrom, err) != 0))) {
            if (!json_is_object(p))
                ts_fail(err, TS_EINVAL, "expected an object");
            ts_error_prefix(err, "pieces[%zu]", i);
            free_pieces_array(v, i + 1);
            return TS_EINVAL;
        }
        if (v[i].length == 0 || v[i].length > b->max_chunk - *total) {
            free_pieces_array(v, i + 1);
            return ts_fail(err, TS_EINVAL, "pieces[%zu]: length %" PRIu64 " is 0 or makes the "
                           "chunk longer than %" PRIu64 " bytes", i, v[i].length, b->max_chunk);
        }
        *total += v[i].length;
    }
    *out = v;
    *n = json_array_size(arr);
    return 0;
}

/* Reads piece p into buf: the local replica first, then each source. */
static int gather(ts_chunk_builder *b, const struct piece *p, char *buf, ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_buf why = { 0 };
    if (p->data) {
        memcpy(buf, p->data, p->length);
        return 0;
    }
    int64_t wait = ts_throttle_reserve(b->background, p->length, ts_mono_ms());
    if (wait > 0)
        ts_sleep_ms((int)TS_MIN(wait, (int64_t)60000));
    ts_chunk_id_to_hex(&p->chunk, hex);
    if (ts_chunk_store_contains(b->store, &p->chunk, NULL)) {
        ts_error lerr = { 0 };
        if (ts_chunk_store_read(b->store, &p->chunk, p->offset, p->length, buf, &lerr) == 0) {
            pthread_mutex_lock(&b->mu);
            b->stats.local_bytes += p->length;
            pthread_mutex_unlock(&b->mu);
            return 0;
        }
        ts_chunk_store_read_failed(b->store, &p->chunk, &lerr);
        ts_buf_printf(&why, "local replica: %s", lerr.msg);
    }
    for (size_t i = 0; i < p->nfrom; i++) {
        ts_http_result res = { 0 };
        ts_error serr = { 0 };
        size_t got = 0;
        char *url = ts_sprintf("http://%s/v1/chunk/%s", p->from[i], hex);
        int rc = ts_http_get_range(url, p->offset, p->length, buf, &got, READ_TIMEOUT_MS, &res,
                                   &serr);
        free(url);
        if (rc == 0 && res.status / 100 != 2)
            rc = ts_http_result_error(&res, "read", &serr);
        else if (rc == 0 && got != p->length)
            rc = ts_fail(&serr, TS_EPROTO, "got %zu of %" PRIu64 " bytes", got, p->length);
        ts_http_result_free(&res);
        if (rc == 0) {
            pthread_mutex_lock(&b->mu);
            b->stats.remote_bytes += p->length;
            pthread_mutex_unlock(&b->mu);
            ts_buf_free(&why);
            return 0;
        }
        ts_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", p->from[i], serr.msg);
    }
    int rc = ts_fail(err, TS_EUNAVAIL, "chunk %s [%" PRIu64 ", +%" PRIu64 "): no source could "
                     "give it: %s", hex, p->offset, p->length, why.len ? why.data : "none");
    ts_buf_free(&why);
    return rc;
}

static int begin_build(ts_chunk_builder *b, const char *hex, ts_error *err)
{
    pthread_mutex_lock(&b->mu);
    if (b->running >= b->max_builds) {
        b->stats.busy_refusals++;
        pthread_mutex_unlock(&b->mu);
        return ts_fail(err, TS_EBUSY, "chunk %s: build refused: %u builds running; retry later",
                       hex, b->max_builds);
    }
    b->running++;
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static void end_build(ts_chunk_builder *b, int ok, uint64_t bytes)
{
    pthread_mutex_lock(&b->mu);
    b->running--;
    if (ok) {
        b->stats.builds++;
        b->stats.build_bytes += bytes;
    } else {
        b->stats.build_failures++;
    }
    pthread_mutex_unlock(&b->mu);
}

/* Builds chunk id; 0 with the PUT's 201 answer in *res, else an error. */
static int build(ts_chunk_builder *b, const ts_chunk_id *id, const json_t *body,
                 ts_http_result *res, ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    const char *chain[MAX_CHAIN];
    struct piece *pieces = NULL;
    size_t nchain, npieces = 0;
    uint64_t total;
    char *buf = NULL;
    int rc;

    ts_chunk_id_to_hex(id, hex);
    if ((rc = parse_addrs(json_object_get(body, "chain"), "chain", chain, MAX_CHAIN, &nchain,
                          err)) != 0 ||
        (rc = parse_pieces(b, json_object_get(body, "pieces"), &pieces, &npieces, &total,
                           err)) != 0)
        return rc;
    if ((rc = begin_build(b, hex, err)) != 0)
        goto free_pieces;
    int64_t start = ts_mono_ms();
    buf = ts_malloc(total);
    uint64_t pos = 0;
    for (size_t i = 0; i < npieces; i++) {
        if ((rc = gather(b, &pieces[i], buf + pos, err)) != 0) {
            ts_error_prefix(err, "build %s: pieces[%zu]", hex, i);
            goto end;
        }
        pos += pieces[i].length;
    }
    /* Through the write chain exactly as a client writes. */
    ts_buf url = { 0 };
    ts_chunk_digest digest;
    ts_chunk_digest_of(buf, total, &digest);
    ts_chunk_put_url(&url, hex, chain, nchain, 0, &digest);
    rc = ts_http_call("PUT", url.data, "application/octet-stream", buf, total, PUT_TIMEOUT_MS,
                      res, err);
    ts_buf_free(&url);
    if (rc == 0 && res->status != 201) {
        rc = ts_http_result_error(res, "store", err);
        ts_error_prefix(err, "build %s", hex);
    }
    if (rc == 0)
        TS_INFO("chunk %s: built from %zu pieces (%" PRIu64 " bytes) in %lld ms", hex, npieces,
                total, (long long)(ts_mono_ms() - start));
end:
    end_build(b, rc == 0, total);
    free(buf);
free_pieces:
    free_pieces_array(pieces, npieces);
    return rc;
}

void ts_chunk_builder_handle(ts_chunk_builder *b, const ts_chunk_id *id,
                             const ts_http_request *req, ts_http_response *resp)
{
    ts_error err = { 0 };
    ts_http_result res = { 0 };
    json_t *body = NULL;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];

    ts_chunk_id_to_hex(id, hex);
    if (ts_json_parse_object(req->body, req->body_len, &body, &err) != 0) {
        ts_error_prefix(&err, "chunk %s: build", hex);
        ts_http_respond_ts_error(resp, &err);
        return;
    }
    int rc = build(b, id, body, &res, &err);
    if (rc == TS_EBUSY) {
        ts_http_respond_error(resp, TS_EBUSY, "%s", err.msg);
        resp->status = 503;
        ts_http_add_header(resp, "Retry-After", "1");
    } else if (rc != 0) {
        if (err.code == TS_EINVAL)
            ts_error_prefix(&err, "chunk %s: build", hex);
        TS_WARN("%s", err.msg);
        ts_http_respond_ts_error(resp, &err);
    } else {
        ts_http_respond_json(resp, 201, res.body ? res.body : "{}");
    }
    ts_http_result_free(&res);
    json_decref(body);
}
