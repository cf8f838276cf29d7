/*
 * The chunkserver's HTTP handlers (see chunk_api.h): the streaming PUT that
 * stores a chunk and forwards it down the write chain, verified reads with
 * Range and sendfile, chunk info, health and metrics.  This file is the HTTP
 * boundary of the chunkserver: Tessera error codes become statuses here (via
 * ts_http_respond_error / ts_http_respond_ts_error) and nowhere else.
 *
 * Life of one PUT (one put_ctx):
 *
 *   begin ── parse id, Content-Length, chain; writer_begin; start forwarder
 *     │
 *   data* ── push piece to forwarder (blocks when downstream is slower),
 *     │      append it locally; any failure answers at once and aborts both
 *     │
 *   end ──── commit locally (downstream seals at the same time), finish
 *     │      forwarder (wait for downstream's 201), answer 201 with the
 *     │      replica list; downstream failure -> delete our copy, 502
 *     │
 *   release ─ always: abort whatever is still open (client went away midway,
 *             or an error was answered) so nothing partial is ever sealed.
 */
#include "chunkserver/chunk_api.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chunkserver/forwarder.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#define CHUNK_PREFIX "/v1/chunk/"
#define DEFAULT_MAX_CHUNK (1024ull * 1024 * 1024)
#define DEFAULT_FORWARD_BUFFER (4u * 1024 * 1024)
#define MAX_CHAIN 16
/* A downstream transfer is given up after 10 minutes plus 1 ms per 100 bytes
 * (an average floor of 100 KB/s over the whole upload).  Without any bound a
 * downstream that hangs after the body was sent would hold this request's
 * thread forever; the bound is generous because the transfer also waits for
 * the client, which may stream a chunk at the pace its application writes. */
#define FORWARD_BASE_TIMEOUT_MS 600000
#define FORWARD_BYTES_PER_MS 100

struct ts_chunk_api {
    ts_chunk_store *store;
    char *server_id;
    uint64_t max_chunk_size;
    size_t forward_buffer;
    ts_http_server *http;
    ts_http_handler_fn task_handler;
    void *task_app;
    ts_chunk_copier *copier;
    ts_chunk_builder *builder;
    ts_scrubber *scrubber;
    /* Counters for /metrics; updated with __atomic builtins. */
    uint64_t writes, write_failures, write_bytes;
    uint64_t reads, read_failures, read_bytes;
};

struct put_ctx {
    ts_chunk_api *api;
    ts_chunk_id id;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    uint64_t length;
    ts_chunk_writer *writer;   /* NULL once committed or aborted */
    ts_forwarder *fwd;         /* NULL when last in chain, or once finished */
    char *next;                /* "H:P" of the downstream server */
    int next_pos;              /* its chain position (this server is next_pos-1) */
    int64_t start_ms;
};

static void count(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static uint64_t counter(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Answers with a Tessera error but a status of our choosing (411, 405, 416)
 * for the few cases HTTP names more precisely than the error table does. */
static void respond_error_status(ts_http_response *resp, int status, int code, const char *msg)
{
    ts_http_respond_error(resp, code, "%s", msg);
    resp->status = status;
}

/* Parses "/v1/chunk/ID" (suffix NULL) or "/v1/chunk/ID/info" (suffix "info").
 * Returns 0, TS_ENOENT when the path is not of that shape, TS_EINVAL (with a
 * message) when the id is malformed. */
static int parse_chunk_path(const char *path, ts_chunk_id *id, const char **suffix,
                            ts_error *err)
{
    char idbuf[TS_CHUNK_ID_HEX_LEN + 2];
    if (strncmp(path, CHUNK_PREFIX, strlen(CHUNK_PREFIX)) != 0)
        return TS_ENOENT;
    const char *rest = path + strlen(CHUNK_PREFIX);
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    *suffix = slash ? slash + 1 : NULL;
    if (idlen != TS_CHUNK_ID_HEX_LEN)
        return ts_fail(err, TS_EINVAL, "bad chunk id '%.*s': expected %d hex digits",
                       (int)TS_MIN(idlen, (size_t)80), rest, TS_CHUNK_ID_HEX_LEN);
    memcpy(idbuf, rest, idlen);
    idbuf[idlen] = '\0';
    if (ts_chunk_id_from_hex(idbuf, id) != 0)
        return ts_fail(err, TS_EINVAL, "bad chunk id '%s': expected %d hex digits", idbuf,
                       TS_CHUNK_ID_HEX_LEN);
    return 0;
}

/* ---- PUT: the write chain ---- */

/* Splits "H:P,H:P" into hosts[] (each validated); returns the count or a
 * negative error. */
static int parse_chain(const char *chain, char **hosts, int max, ts_error *err)
{
    int n = 0;
    const char *p = chain;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            p = comma ? comma + 1 : p + len;
            continue;
        }
        if (n == max) {
            for (int i = 0; i < n; i++)
                free(hosts[i]);
            return ts_fail(err, TS_EINVAL, "chain: more than %d servers", max);
        }
        hosts[n] = ts_strndup(p, len);
        char *host = NULL;
        int port;
        ts_error perr = { 0 };
        if (ts_parse_hostport(hosts[n], &host, &port, &perr) != 0) {
            int rc = ts_fail(err, TS_EINVAL, "chain: bad server '%.80s': %s", hosts[n], perr.msg);
            for (int i = 0; i <= n; i++)
                free(hosts[i]);
            return rc;
        }
        free(host);
        n++;
        p += len;
        if (*p == ',')
            p++;
    }
    return n;
}

/* Builds the 502 answer for a downstream failure.  A downstream that is
 * itself reporting EUNAVAIL already names the server that failed further
 * down, so its message passes through unchanged. */
static void respond_downstream_failure(struct put_ctx *c, int rc, const ts_error *terr,
                                       const ts_forward_result *res, ts_http_response *resp)
{
    char msg[sizeof terr->msg + 256];

    if (rc != 0) {
        snprintf(msg, sizeof msg, "replica %s (chain position %d): %s", c->next, c->next_pos,
                 terr->msg);
    } else {
        json_t *j = NULL;
        ts_error perr = { 0 };
        const char *ename = NULL, *emsg = NULL;
        if (res->body != NULL && ts_json_parse_object(res->body, res->body_len, &j, &perr) == 0) {
            json_t *je = json_object_get(j, "error"), *jm = json_object_get(j, "message");
            ename = json_is_string(je) ? json_string_value(je) : NULL;
            emsg = json_is_string(jm) ? json_string_value(jm) : NULL;
        }
        if (ename != NULL && emsg != NULL && strcmp(ename, "EUNAVAIL") == 0)
            snprintf(msg, sizeof msg, "%s", emsg);
        else if (ename != NULL && emsg != NULL)
            snprintf(msg, sizeof msg, "replica %s (chain position %d): %s: %s", c->next,
                     c->next_pos, ename, emsg);
        else
            snprintf(msg, sizeof msg, "replica %s (chain position %d): answered HTTP %ld",
                     c->next, c->next_pos, res->status);
        json_decref(j);
    }
    TS_WARN("chunk %s: write chain failed: %s", c->hex, msg);
    ts_http_respond_error(resp, TS_EUNAVAIL, "%s", msg);
}

/* Drops whatever of the upload is still open: the forwarder (downstream then
 * sees a truncated upload and drops its copy) and the local temporary file.
 * Done as soon as a request fails, so nothing outlives the answer. */
static void put_drop(struct put_ctx *c)
{
    if (c->fwd != NULL) {
        ts_forward_result res = { 0 };
        if (ts_forwarder_finish(c->fwd, 0, &res, NULL) == 0)
            ts_forward_result_free(&res);
        c->fwd = NULL;
    }
    if (c->writer != NULL) {
        ts_chunk_writer_abort(c->writer);
        c->writer = NULL;
    }
    count(&c->api->write_failures, 1);
}

static int put_begin(void *app, const ts_http_request *req, void **ctxp, ts_http_response *resp)
{
    ts_chunk_api *api = app;
    ts_error err = { 0 };
    const char *suffix;
    char *chain[MAX_CHAIN];
    int nchain = 0;
    int rc;

    struct put_ctx *c = ts_calloc(1, sizeof *c);
    c->api = api;
    c->start_ms = ts_mono_ms();
    rc = parse_chunk_path(req->path, &c->id, &suffix, &err);
    if (rc != 0 || suffix != NULL) {
        /* stream_match only sends "/v1/chunk/X" here, so this is a bad id. */
        if (rc == 0)
            ts_fail(&err, TS_EINVAL, "bad chunk path '%.100s'", req->path);
        ts_http_respond_ts_error(resp, &err);
        goto free_ctx;
    }
    ts_chunk_id_to_hex(&c->id, c->hex);
    if (req->content_length == UINT64_MAX) {
        respond_error_status(resp, 411, TS_EINVAL, "PUT chunk: Content-Length required");
        goto free_ctx;
    }
    c->length = req->content_length;
    if (c->length > api->max_chunk_size) {
        ts_http_respond_error(resp, TS_EFBIG, "chunk %s: %" PRIu64 " bytes exceeds the maximum chunk size %" PRIu64,
                              c->hex, c->length, api->max_chunk_size);
        goto free_ctx;
    }
    const char *chain_arg = ts_http_query(req, "chain");
    if (chain_arg != NULL) {
        nchain = parse_chain(chain_arg, chain, MAX_CHAIN, &err);
        if (nchain < 0) {
            ts_error_prefix(&err, "chunk %s", c->hex);
            ts_http_respond_ts_error(resp, &err);
            goto free_ctx;
        }
    }
    int my_pos = 1;
    const char *pos_arg = ts_http_query(req, "pos");
    if (pos_arg != NULL) {
        char *end;
        errno = 0;
        long v = strtol(pos_arg, &end, 10);
        if (errno != 0 || *end != '\0' || end == pos_arg || v < 1 || v > 1000) {
            ts_http_respond_error(resp, TS_EINVAL, "chunk %s: bad pos '%.20s'", c->hex, pos_arg);
            goto free_chain;
        }
        my_pos = (int)v;
    }

    ts_chunk_digest digest;
    int has_digest;
    if (ts_chunk_digest_parse(ts_http_query(req, "sha256"), ts_http_query(req, "crc32c"),
                              &digest, &has_digest, &err) != 0) {
        ts_error_prefix(&err, "chunk %s", c->hex);
        ts_http_respond_ts_error(resp, &err);
        goto free_chain;
    }

    rc = ts_chunk_writer_begin(api->store, &c->id, c->length, &c->writer, &err);
    if (rc != 0) {
        ts_http_respond_ts_error(resp, &err);
        goto free_chain;
    }
    if (has_digest)
        ts_chunk_writer_given_digest(c->writer, &digest);

    if (nchain > 0) {
        ts_buf url = { 0 };
        c->next = ts_strdup(chain[0]);
        c->next_pos = my_pos + 1;
        ts_chunk_put_url(&url, c->hex, (const char *const *)chain, (size_t)nchain, c->next_pos,
                         has_digest ? &digest : NULL);
        long timeout = FORWARD_BASE_TIMEOUT_MS + (long)(c->length / FORWARD_BYTES_PER_MS);
        rc = ts_forwarder_start(url.data, c->length, api->forward_buffer, timeout, &c->fwd, &err);
        ts_buf_free(&url);
        if (rc != 0) {
            ts_http_respond_ts_error(resp, &err);
            goto abort_writer;
        }
    }
    for (int i = 0; i < nchain; i++)
        free(chain[i]);
    *ctxp = c;
    return 0;

abort_writer:
    ts_chunk_writer_abort(c->writer);
free_chain:
    for (int i = 0; i < nchain; i++)
        free(chain[i]);
free_ctx:
    count(&api->write_failures, 1);
    free(c->next);
    free(c);
    return 1;
}

static int put_data(void *ctx, const char *buf, size_t len, ts_http_response *resp)
{
    struct put_ctx *c = ctx;
    ts_error err = { 0 };

    /* Hand the piece downstream first so B writes while we write. */
    if (c->fwd != NULL && ts_forwarder_push(c->fwd, buf, len) != 0) {
        ts_forward_result res = { 0 };
        int rc = ts_forwarder_finish(c->fwd, 0, &res, &err);
        c->fwd = NULL;
        respond_downstream_failure(c, rc, &err, &res, resp);
        ts_forward_result_free(&res);
        put_drop(c);
        return 1;
    }
    if (ts_chunk_writer_append(c->writer, buf, len, &err) != 0) {
        TS_WARN("chunk %s: %s", c->hex, err.msg);
        ts_http_respond_ts_error(resp, &err);
        put_drop(c);
        return 1;
    }
    return 0;
}

static void put_end(void *ctx, const ts_http_request *req, ts_http_response *resp)
{
    struct put_ctx *c = ctx;
    ts_chunk_api *api = c->api;
    ts_error err = { 0 };
    ts_forward_result res = { 0 };
    json_t *down = NULL;
    json_t *replicas = json_array();
    ts_chunk_info info;
    char sha_hex[2 * TS_SHA256_LEN + 1];
    int ok = 0, sealed = 0;
    int rc;

    if (json_array_append_new(replicas, json_string(api->server_id)) != 0)
        ts_die("out of memory building replica list");

    /* Seal our copy first: the whole body is pushed downstream already, so
     * the servers of the chain fsync at the same time instead of one after
     * the other.  Should downstream then fail, our sealed copy is deleted
     * again below; it was never committed to metadata, so at worst (a crash
     * in between) it is an orphan for GC. */
    rc = ts_chunk_writer_commit(c->writer, &info, &err);
    c->writer = NULL;
    if (rc != 0) {
        TS_WARN("chunk %s: commit failed: %s%s", c->hex, err.msg,
                c->fwd ? " (downstream replicas may become orphans for GC)" : "");
        ts_http_respond_ts_error(resp, &err);
        goto free_result;
    }
    sealed = 1;
    ts_hex_encode(info.sha256, TS_SHA256_LEN, sha_hex);

    if (c->fwd != NULL) {
        rc = ts_forwarder_finish(c->fwd, 1, &res, &err);
        c->fwd = NULL;
        if (rc != 0 || res.status != 201) {
            respond_downstream_failure(c, rc, &err, &res, resp);
            goto free_result;
        }
        /* Downstream's answer must describe the same chunk. */
        const char *dsha = NULL;
        uint64_t dlen = 0;
        json_t *dreps = NULL;
        if (ts_json_parse_object(res.body, res.body_len, &down, &err) != 0 ||
            ts_json_u64(down, "length", &dlen, &err) != 0 ||
            ts_json_str(down, "sha256", &dsha, &err) != 0 ||
            !json_is_array(dreps = json_object_get(down, "replicas"))) {
            if (err.code == 0)
                ts_fail(&err, TS_EPROTO, "field 'replicas': expected an array");
            ts_http_respond_error(resp, TS_EUNAVAIL, "replica %s (chain position %d): bad answer: %s",
                                  c->next, c->next_pos, err.msg);
            goto free_result;
        }
        if (dlen != c->length) {
            ts_http_respond_error(resp, TS_EUNAVAIL,
                                  "replica %s (chain position %d): stored %" PRIu64 " bytes, expected %" PRIu64,
                                  c->next, c->next_pos, dlen, c->length);
            goto free_result;
        }
        size_t i;
        json_t *r;
        json_array_foreach(dreps, i, r) {
            if (!json_is_string(r)) {
                ts_http_respond_error(resp, TS_EUNAVAIL,
                                      "replica %s (chain position %d): bad answer: replicas[%zu] is not a string",
                                      c->next, c->next_pos, i);
                goto free_result;
            }
            if (json_array_append(replicas, r) != 0)
                ts_die("out of memory building replica list");
        }
    }

    if (down != NULL) {
        const char *dsha = json_string_value(json_object_get(down, "sha256"));
        if (dsha == NULL || strcmp(dsha, sha_hex) != 0) {
            /* Same bytes went both ways; a different digest means one side
             * stored something else.  Do not claim success. */
            ts_http_respond_error(resp, TS_EUNAVAIL,
                                  "replica %s (chain position %d): sha256 %s differs from ours %s",
                                  c->next, c->next_pos, dsha ? dsha : "(none)", sha_hex);
            goto free_result;
        }
    }

    json_t *ans = json_pack("{s:s, s:I, s:s, s:O}", "id", c->hex, "length",
                            (json_int_t)info.length, "sha256", sha_hex, "replicas", replicas);
    if (ans == NULL)
        ts_die("out of memory building PUT answer");
    char *text = ts_json_dump(ans);
    ts_http_respond_json(resp, 201, text);
    free(text);
    json_decref(ans);
    count(&api->writes, 1);
    count(&api->write_bytes, info.length);
    TS_DEBUG("chunk %s: stored %" PRIu64 " bytes (%zu replica(s)) in %lld ms", c->hex,
             info.length, json_array_size(replicas), (long long)(ts_mono_ms() - c->start_ms));
    ok = 1;

free_result:
    if (!ok && sealed) {
        ts_error derr = { 0 };
        if (ts_chunk_store_delete(api->store, &c->id, &derr) != 0)
            TS_ERROR("chunk %s: cannot drop the local copy after the chain failed: %s", c->hex,
                     derr.msg);
    }
    if (!ok)
        put_drop(c);
    json_decref(down);
    json_decref(replicas);
    ts_forward_result_free(&res);
}

static void put_release(void *ctx)
{
    struct put_ctx *c = ctx;

    /* Still open here only when the client went away midway. */
    if (c->writer != NULL) {
        TS_INFO("chunk %s: upload ended after %" PRIu64 " of %" PRIu64 " bytes; dropped", c->hex,
                ts_chunk_writer_written(c->writer), c->length);
        put_drop(c);
    } else if (c->fwd != NULL) {
        put_drop(c);
    }
    free(c->next);
    free(c);
}

static const ts_http_stream_ops put_ops = {
    .begin = put_begin,
    .data = put_data,
    .end = put_end,
    .release = put_release,
};

static const ts_http_stream_ops *stream_match(void *app, const ts_http_request *req)
{
    (void)app;
    if (strcmp(req->method, "PUT") != 0)
        return NULL;
    if (strncmp(req->path, CHUNK_PREFIX, strlen(CHUNK_PREFIX)) != 0)
        return NULL;
    if (strchr(req->path + strlen(CHUNK_PREFIX), '/') != NULL)
        return NULL;   /* "/v1/chunk/ID/info": the buffered handler answers 405 */
    return &put_ops;
}

/* ---- GET: verified reads ---- */

static int parse_u64_strict(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return TS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return TS_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parses a Range header against a chunk of `length` bytes into [*off,
 * *off+*len).  TS_EINVAL when malformed or multi-range, TS_ERANGE when not
 * satisfiable. */
static int parse_range(const char *h, uint64_t length, uint64_t *off, uint64_t *len,
                       ts_error *err)
{
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "bytes=", 6) != 0)
        return ts_fail(err, TS_EINVAL, "Range '%.60s': only bytes=A-B, A- or -N", h);
    const char *spec = h + 6;
    if (strchr(spec, ',') != NULL)
        return ts_fail(err, TS_EINVAL, "Range '%.60s': multiple ranges are not supported", h);
    const char *dash = strchr(spec, '-');
    if (dash == NULL)
        return ts_fail(err, TS_EINVAL, "Range '%.60s': malformed", h);
    size_t alen = (size_t)(dash - spec), blen = strlen(dash + 1);
    while (blen > 0 && dash[blen] == ' ')
        blen--;
    uint64_t a = 0, b = 0;
    if (alen == 0) {
        /* Suffix range: the last b bytes. */
        if (parse_u64_strict(dash + 1, blen, &b) != 0)
            return ts_fail(err, TS_EINVAL, "Range '%.60s': malformed", h);
        if (b == 0 || length == 0)
            return ts_fail(err, TS_ERANGE, "Range '%.60s' not satisfiable for %" PRIu64 " bytes",
                           h, length);
        *len = TS_MIN(b, length);
        *off = length - *len;
        return 0;
    }
    if (parse_u64_strict(spec, alen, &a) != 0 ||
        (blen > 0 && parse_u64_strict(dash + 1, blen, &b) != 0) || (blen > 0 && b < a))
        return ts_fail(err, TS_EINVAL, "Range '%.60s': malformed", h);
    if (a >= length)
        return ts_fail(err, TS_ERANGE, "Range '%.60s' not satisfiable for %" PRIu64 " bytes", h,
                       length);
    uint64_t last = blen > 0 ? TS_MIN(b, length - 1) : length - 1;
    *off = a;
    *len = last - a + 1;
    return 0;
}

static void handle_get_chunk(ts_chunk_api *api, const ts_chunk_id *id,
                             const ts_http_request *req, ts_http_response *resp)
{
    ts_chunk_reader *r = NULL;
    ts_error err = { 0 };
    uint64_t off = 0, len;
    int partial = 0;
    char hdr[96];

    int copy_slot = 0;
    const char *copy_to = ts_http_query(req, "copy");
    int rc = ts_chunk_reader_open(api->store, id, &r, &err);
    if (rc != 0)
        goto respond_failure;
    if (copy_to != NULL && api->copier != NULL) {
        rc = ts_chunk_copier_begin_out(api->copier, copy_to, &err);
        if (rc != 0) {
            /* Busy: the destination tries another source or later. */
            ts_http_respond_ts_error(resp, &err);
            resp->status = 503;
            ts_http_add_header(resp, "Retry-After", "1");
            goto close_reader;
        }
        copy_slot = 1;
    }
    const ts_chunk_info *info = ts_chunk_reader_info(r);
    len = info->length;
    const char *range = ts_http_header(req, "Range");
    if (range != NULL) {
        rc = parse_range(range, info->length, &off, &len, &err);
        if (rc != 0) {
            respond_error_status(resp, 416, rc, err.msg);
            snprintf(hdr, sizeof hdr, "bytes */%" PRIu64, info->length);
            ts_http_add_header(resp, "Content-Range", hdr);
            count(&api->read_failures, 1);
            goto close_reader;
        }
        partial = 1;
    }
    rc = ts_chunk_reader_verify(r, off, len, &err);
    if (rc != 0)
        goto respond_failure;
    int fd = ts_chunk_reader_take_fd(r);
    ts_http_respond_fd(resp, partial ? 206 : 200, "application/octet-stream", fd, (off_t)off, len);
    if (copy_slot) {
        /* The slot is held while the server sends the range. */
        resp->on_complete = ts_chunk_copier_end_out;
        resp->on_complete_arg = api->copier;
        copy_slot = 0;
    }
    ts_http_add_header(resp, "Accept-Ranges", "bytes");
    if (partial) {
        snprintf(hdr, sizeof hdr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off,
                 len ? off + len - 1 : off, info->length);
        ts_http_add_header(resp, "Content-Range", hdr);
    }
    count(&api->reads, 1);
    count(&api->read_bytes, len);
    goto close_reader;

respond_failure:
    count(&api->read_failures, 1);
    ts_http_respond_ts_error(resp, &err);
    /* The client tries another replica; this one must not be served again. */
    ts_chunk_store_read_failed(api->store, id, &err);
close_reader:
    if (copy_slot)
        ts_chunk_copier_end_out(api->copier);
    ts_chunk_reader_close(r);
}

static void handle_delete_chunk(ts_chunk_api *api, const ts_chunk_id *id, ts_http_response *resp)
{
    ts_error err = { 0 };

    if (ts_chunk_store_delete(api->store, id, &err) != 0) {
        ts_http_respond_ts_error(resp, &err);
        return;
    }
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_chunk_id_to_hex(id, hex);
    TS_INFO("chunk %s: deleted on request", hex);
    ts_http_respond_json(resp, 200, "{}");
}

static void handle_chunk_info(ts_chunk_api *api, const ts_chunk_id *id, ts_http_response *resp)
{
    ts_chunk_info info;
    ts_error err = { 0 };
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    char sha_hex[2 * TS_SHA256_LEN + 1];

    if (ts_chunk_store_info(api->store, id, &info, &err) != 0) {
        ts_http_respond_ts_error(resp, &err);
        return;
    }
    ts_chunk_id_to_hex(id, hex);
    ts_hex_encode(info.sha256, TS_SHA256_LEN, sha_hex);
    json_t *j = json_pack("{s:s, s:I, s:s, s:I}", "id", hex, "length", (json_int_t)info.length,
                          "sha256", sha_hex, "blocks", (json_int_t)info.nblocks);
    if (j == NULL)
        ts_die("out of memory building chunk info");
    char *text = ts_json_dump(j);
    ts_http_respond_json(resp, 200, text);
    free(text);
    json_decref(j);
}

/* ---- health and metrics ---- */

static void handle_health(ts_chunk_api *api, ts_http_response *resp)
{
    json_t *j = json_pack("{s:b, s:s, s:s}", "ok", 1, "role", "chunk", "id", api->server_id);
    if (j == NULL)
        ts_die("out of memory building health answer");
    char *text = ts_json_dump(j);
    ts_http_respond_json(resp, 200, text);
    free(text);
    json_decref(j);
}

static void metric(ts_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    ts_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                  name, v);
}

static void handle_metrics(ts_chunk_api *api, ts_http_response *resp)
{
    ts_chunk_stats st;
    ts_error err = { 0 };
    ts_buf b = { 0 };

    if (ts_chunk_store_stats(api->store, &st, &err) != 0) {
        ts_http_respond_ts_error(resp, &err);
        return;
    }
    metric(&b, "tessera_chunk_chunks", "gauge", "Sealed chunks stored.", st.chunks);
    metric(&b, "tessera_chunk_chunk_bytes", "gauge", "Bytes of chunk data stored.", st.chunk_bytes);
    metric(&b, "tessera_chunk_disk_capacity_bytes", "gauge", "Capacity of the data disks.",
           st.capacity);
    metric(&b, "tessera_chunk_disk_used_bytes", "gauge", "Used bytes on the data disks.", st.used);
    metric(&b, "tessera_chunk_disk_available_bytes", "gauge", "Bytes available for new chunks.",
           st.available);
    metric(&b, "tessera_chunk_reads_total", "counter", "Chunk reads served.", counter(&api->reads));
    metric(&b, "tessera_chunk_read_bytes_total", "counter", "Chunk bytes served.",
           counter(&api->read_bytes));
    metric(&b, "tessera_chunk_read_failures_total", "counter", "Chunk reads that failed.",
           counter(&api->read_failures));
    metric(&b, "tessera_chunk_writes_total", "counter", "Chunks stored.", counter(&api->writes));
    metric(&b, "tessera_chunk_write_bytes_total", "counter", "Chunk bytes stored.",
           counter(&api->write_bytes));
    metric(&b, "tessera_chunk_write_failures_total", "counter", "Chunk uploads that failed.",
           counter(&api->write_failures));
    metric(&b, "tessera_chunk_checksum_errors_total", "counter",
           "Blocks or footers found corrupt.", st.checksum_errors);
    metric(&b, "tessera_chunk_quarantined_total", "counter",
           "Replicas found corrupt and quarantined.", st.quarantined);
    metric(&b, "tessera_chunk_failed_dirs", "gauge", "Data directories out of service.",
           st.failed_dirs);
    if (api->scrubber != NULL) {
        ts_scrub_stats sc;
        ts_scrubber_stats(api->scrubber, &sc);
        metric(&b, "tessera_chunk_scrub_passes_total", "counter", "Complete scrub passes.",
               sc.passes);
        metric(&b, "tessera_chunk_scrub_chunks_total", "counter", "Chunks verified by the scrubber.",
               sc.chunks);
        metric(&b, "tessera_chunk_scrub_bytes_total", "counter", "Bytes verified by the scrubber.",
               sc.bytes);
        metric(&b, "tessera_chunk_scrub_corrupt_total", "counter",
               "Corrupt replicas the scrubber found.", sc.corrupt);
    }
    if (api->copier != NULL) {
        ts_copy_stats cp;
        ts_chunk_copier_stats(api->copier, &cp);
        metric(&b, "tessera_chunk_copies_in_total", "counter", "Chunks copied to this server.",
               cp.copies_in);
        metric(&b, "tessera_chunk_copy_in_bytes_total", "counter",
               "Bytes copied to this server.", cp.bytes_in);
        metric(&b, "tessera_chunk_copies_in_failed_total", "counter",
               "Copies to this server that failed.", cp.copies_in_failed);
        metric(&b, "tessera_chunk_copies_out_total", "counter",
               "Copies served to other servers.", cp.copies_out);
        metric(&b, "tessera_chunk_copies_busy_total", "counter",
               "Copies refused as busy (max_copies_in/out).", cp.busy_refusals);
        metric(&b, "tessera_chunk_copies_in_flight", "gauge", "Copies arriving now.",
               cp.in_flight_in);
        metric(&b, "tessera_chunk_copies_out_flight", "gauge", "Copies leaving now.",
               cp.in_flight_out);
    }
    if (api->builder != NULL) {
        ts_build_stats bs;
        ts_chunk_builder_stats(api->builder, &bs);
        metric(&b, "tessera_chunk_builds_total", "counter",
               "Chunks built from pieces of others (compaction).", bs.builds);
        metric(&b, "tessera_chunk_build_bytes_total", "counter", "Bytes of chunks built.",
               bs.build_bytes);
        metric(&b, "tessera_chunk_build_failures_total", "counter", "Builds that failed.",
               bs.build_failures);
        metric(&b, "tessera_chunk_build_local_bytes_total", "counter",
               "Build pieces read from this server's replicas.", bs.local_bytes);
        metric(&b, "tessera_chunk_build_remote_bytes_total", "counter",
               "Build pieces fetched from other servers.", bs.remote_bytes);
    }
    ts_http_respond(resp, 200, "text/plain; version=0.0.4", b.data, b.len);
}

/* ---- dispatch ---- */

static void respond_method_not_allowed(const ts_http_request *req, ts_http_response *resp,
                                       const char *allow)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s %.100s: method not allowed (allowed: %s)", req->method,
             req->path, allow);
    respond_error_status(resp, 405, TS_EINVAL, msg);
    ts_http_add_header(resp, "Allow", allow);
}

static void handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    ts_chunk_api *api = app;
    int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    ts_chunk_id id;
    const char *suffix = NULL;
    ts_error err = { 0 };

    if (strcmp(req->path, "/health") == 0) {
        if (is_get)
            handle_health(api, resp);
        else
            respond_method_not_allowed(req, resp, "GET, HEAD");
        return;
    }
    if (strcmp(req->path, "/metrics") == 0) {
        if (is_get)
            handle_metrics(api, resp);
        else
            respond_method_not_allowed(req, resp, "GET, HEAD");
        return;
    }
    if (api->task_handler != NULL && strncmp(req->path, "/v1/task", 8) == 0 &&
        (req->path[8] == '\0' || req->path[8] == '/')) {
        api->task_handler(api->task_app, req, resp);
        return;
    }
    int rc = parse_chunk_path(req->path, &id, &suffix, &err);
    if (rc == TS_EINVAL) {
        ts_http_respond_ts_error(resp, &err);
    } else if (rc == 0 && suffix == NULL) {
        if (is_get)
            handle_get_chunk(api, &id, req, resp);
        else if (strcmp(req->method, "DELETE") == 0)
            handle_delete_chunk(api, &id, resp);
        else
            respond_method_not_allowed(req, resp, "GET, HEAD, PUT, DELETE");
    } else if (rc == 0 && strcmp(suffix, "replicate") == 0 && api->copier != NULL) {
        if (strcmp(req->method, "POST") == 0)
            ts_chunk_copier_handle(api->copier, &id, req, resp);
        else
            respond_method_not_allowed(req, resp, "POST");
    } else if (rc == 0 && strcmp(suffix, "build") == 0 && api->builder != NULL) {
        if (strcmp(req->method, "POST") == 0)
            ts_chunk_builder_handle(api->builder, &id, req, resp);
        else
            respond_method_not_allowed(req, resp, "POST");
    } else if (rc == 0 && strcmp(suffix, "info") == 0) {
        if (is_get)
            handle_chunk_info(api, &id, resp);
        else
            respond_method_not_allowed(req, resp, "GET, HEAD");
    } else {
        ts_http_respond_error(resp, TS_ENOENT, "no such endpoint: %s %.200s", req->method,
                              req->path);
    }
}

/* ---- lifetime ---- */

int ts_chunk_api_start(const ts_chunk_api_opts *opts, ts_chunk_api **out, ts_error *err)
{
    if (opts->store == NULL || opts->server_id == NULL || opts->server_id[0] == '\0')
        return ts_fail(err, TS_EINVAL, "chunk API: store and server id are required");
    ts_chunk_api *api = ts_calloc(1, sizeof *api);
    api->store = opts->store;
    api->server_id = ts_strdup(opts->server_id);
    api->max_chunk_size = opts->max_chunk_size ? opts->max_chunk_size : DEFAULT_MAX_CHUNK;
    api->forward_buffer = opts->forward_buffer ? opts->forward_buffer : DEFAULT_FORWARD_BUFFER;
    api->task_handler = opts->task_handler;
    api->task_app = opts->task_app;
    api->copier = opts->copier;
    api->builder = opts->builder;
    api->scrubber = opts->scrubber;

    ts_http_server_opts hopts = {
        .bind_addr = opts->bind_addr,
        .port = opts->port,
        .threading = TS_HTTP_THREAD_PER_CONNECTION,
        /* Buffered bodies: a task spec (a reduce lists every map), and a
         * build request, whose pieces may carry a whole chunk of inline
         * data in base64 (chunk_build.h). */
        .max_body = 4 * 1024 * 1024 + (TS_BUILD_INLINE_MAX / 3 + 1) * 4,
        .connection_timeout_s = opts->connection_timeout_s,
        .app = api,
        .handle = handle,
        .stream_match = stream_match,
    };
    int rc = ts_http_server_start(&hopts, &api->http, err);
    if (rc != 0) {
        ts_error_prefix(err, "chunk API on %s:%d", opts->bind_addr ? opts->bind_addr : "0.0.0.0",
                        opts->port);
        free(api->server_id);
        free(api);
        return rc;
    }
    *out = api;
    return 0;
}

int ts_chunk_api_port(const ts_chunk_api *api)
{
    return ts_http_server_port(api->http);
}

void ts_chunk_api_stop(ts_chunk_api *api)
{
    if (api == NULL)
        return;
    ts_http_server_stop(api->http);
    free(api->server_id);
    free(api);
}
