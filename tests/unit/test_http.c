/*
 * Unit tests for common/http_server and common/http_client together: a real
 * server on a free loopback port with a buffered handler and a streaming
 * handler, driven by the client.  Covers JSON error bodies, headers and query
 * arguments, redirects not followed, range GETs into the caller's buffer
 * (served with sendfile), 10 MiB streamed uploads checked by CRC on the
 * server, early answers and mid-body failures of streaming handlers,
 * 413 for oversized buffered bodies, transport errors, timeouts, and
 * concurrent clients, in both threading modes.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <unistd.h>

#include "common/checksum.h"
#include "common/http_server.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

#define FILE_SIZE (1024 * 1024)
#define MAX_BODY (1024 * 1024)

static char data_path[64];
static uint8_t *file_data;
static atomic_int begins_accepted, releases;

/* ---- the server under test ----------------------------------------------- */

static void handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    (void)app;
    if (strcmp(req->path, "/hello") == 0) {
        ts_http_respond(resp, 200, "text/plain", ts_strdup("hello"), 5);
    } else if (strcmp(req->path, "/echo") == 0) {
        char *copy = ts_malloc(req->body_len + 1);
        memcpy(copy, req->body, req->body_len + 1);     /* includes the NUL */
        ts_http_respond(resp, 200, "application/octet-stream", copy, req->body_len);
        char len[32];
        snprintf(len, sizeof(len), "%zu", req->body_len);
        ts_http_add_header(resp, "X-Len", len);
        ts_http_add_header(resp, "X-Method", req->method);
    } else if (strcmp(req->path, "/err") == 0) {
        ts_http_respond_error(resp, TS_ENOENT, "lookup 12/'%s': no such \"entry\"\n", "x");
    } else if (strcmp(req->path, "/redirect") == 0) {
        ts_http_respond_json(resp, 307, "{}");
        ts_http_add_header(resp, "Location", "http://127.0.0.1:1/leader");
    } else if (strcmp(req->path, "/query") == 0) {
        const char *x = ts_http_query(req, "x");
        const char *h = ts_http_header(req, "x-test");
        char peer[64];
        ts_http_peer(req, peer, sizeof(peer));
        char *body = ts_sprintf("%s|%s|%s", x ? x : "-", h ? h : "-", peer);
        ts_http_respond(resp, 200, "text/plain", body, strlen(body));
    } else if (strcmp(req->path, "/slow") == 0) {
        ts_sleep_ms(600);
        ts_http_respond_json(resp, 200, "{}");
    } else if (strcmp(req->path, "/nothing") == 0) {
        /* Leaves resp unset: the server must answer 500 by itself. */
    } else if (strcmp(req->path, "/data") == 0) {
        unsigned long long a, b;
        const char *range = ts_http_header(req, "Range");
        int fd = open(data_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            ts_http_respond_error(resp, TS_EIO, "open %s", data_path);
            return;
        }
        if (range == NULL) {
            ts_http_respond_fd(resp, 200, "application/octet-stream", fd, 0, FILE_SIZE);
            return;
        }
        if (sscanf(range, "bytes=%llu-%llu", &a, &b) != 2 || a >= FILE_SIZE || b < a) {
            close(fd);
            ts_http_respond_error(resp, TS_ERANGE, "range '%s' outside %d bytes", range, FILE_SIZE);
            return;
        }
        if (b >= FILE_SIZE)
            b = FILE_SIZE - 1;
        char cr[96];
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%d", a, b, FILE_SIZE);
        ts_http_respond_fd(resp, 206, "application/octet-stream", fd, (off_t)a, b - a + 1);
        ts_http_add_header(resp, "Content-Range", cr);
    } else {
        ts_http_respond_error(resp, TS_ENOENT, "no route %s %s", req->method, req->path);
    }
}

typedef struct upload {
    uint32_t crc;
    uint64_t len;
    uint64_t fail_after;     /* 0: never */
} upload;

static int up_begin(void *app, const ts_http_request *req, void **ctx, ts_http_response *resp)
{
    (void)app;
    if (strcmp(req->path, "/stream/reject") == 0) {
        ts_http_respond_error(resp, TS_EEXIST, "chunk %s: sealed already", req->path);
        return 1;
    }
    upload *u = ts_calloc(1, sizeof(*u));
    if (strcmp(req->path, "/stream/full") == 0)
        u->fail_after = 1024 * 1024;
    *ctx = u;
    atomic_fetch_add(&begins_accepted, 1);
    return 0;
}

static int up_data(void *ctx, const char *buf, size_t len, ts_http_response *resp)
{
    upload *u = ctx;
    u->crc = ts_crc32c(u->crc, buf, len);
    u->len += len;
    if (u->fail_after != 0 && u->len > u->fail_after) {
        ts_http_respond_error(resp, TS_ENOSPC, "disk full after %llu bytes",
                              (unsigned long long)u->len);
        return 1;
    }
    return 0;
}

static void up_end(void *ctx, const ts_http_request *req, ts_http_response *resp)
{
    upload *u = ctx;
    char *body = ts_sprintf("{\"crc\":%u,\"length\":%llu,\"declared\":%lld}", u->crc,
                            (unsigned long long)u->len,
                            req->content_length == UINT64_MAX ? -1LL : (long long)req->content_length);
    ts_http_respond(resp, 201, "application/json", body, strlen(body));
}

static void up_release(void *ctx)
{
    free(ctx);
    atomic_fetch_add(&releases, 1);
}

static const ts_http_stream_ops upload_ops = {
    .begin = up_begin, .data = up_data, .end = up_end, .release = up_release,
};

static const ts_http_stream_ops *match(void *app, const ts_http_request *req)
{
    (void)app;
    if (strcmp(req->method, "PUT") == 0 && strncmp(req->path, "/stream/", 8) == 0)
        return &upload_ops;
    return NULL;
}

static ts_http_server *start_server(enum ts_http_threading mode)
{
    ts_http_server_opts o = {
        .bind_addr = "127.0.0.1", .port = 0, .threading = mode, .pool_threads = 4,
        .max_body = MAX_BODY, .handle = handle, .stream_match = match,
    };
    ts_http_server *s = NULL;
    ts_error err;
    if (ts_http_server_start(&o, &s, &err) != 0) {
        fprintf(stderr, "  server start: %s\n", err.msg);
        return NULL;
    }
    return s;
}

static ts_http_server *srv;
static char base[64];

static char *url(const char *path)
{
    return ts_sprintf("%s%s", base, path);
}

/* ---- helpers ------------------------------------------------------------- */

typedef struct pattern_reader {
    uint64_t total, sent;
    uint32_t crc;
    uint64_t abort_at;        /* 0: never */
} pattern_reader;

static ssize_t pattern_read(void *ctx, char *buf, size_t max)
{
    pattern_reader *r = ctx;
    if (r->abort_at != 0 && r->sent >= r->abort_at)
        return -1;
    size_t n = (size_t)TS_MIN((uint64_t)max, r->total - r->sent);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)((r->sent + i) * 2654435761u >> 13);
    r->crc = ts_crc32c(r->crc, buf, n);
    r->sent += n;
    return (ssize_t)n;
}

static json_t *parse_body(const ts_http_result *r)
{
    json_t *j = NULL;
    ts_error err;
    if (r->body == NULL || ts_json_parse_object(r->body, r->body_len, &j, &err) != 0)
        return NULL;
    return j;
}

/* ---- tests --------------------------------------------------------------- */

static void test_get_and_headers(void)
{
    ts_http_result r;
    ts_error err;
    char *u = url("/hello");

    TC_CHECK(ts_http_call("GET", u, NULL, NULL, 0, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 200);
    TC_CHECK_STR(r.body, "hello");
    TC_CHECK(r.body_len == 5);
    TC_CHECK(r.location == NULL);
    ts_http_result_free(&r);
    free(u);

    /* Query arguments are decoded; headers are case-insensitive. */
    u = url("/query?x=a%20b&y=2");
    TC_CHECK(ts_http_call("GET", u, NULL, NULL, 0, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 200);
    TC_CHECK(r.body != NULL && strncmp(r.body, "a b|-|127.0.0.1:", 16) == 0);
    ts_http_result_free(&r);
    free(u);

    u = url("/redirect");
    TC_CHECK(ts_http_call("POST", u, "application/json", "{}", 2, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 307);
    TC_CHECK_STR(r.location, "http://127.0.0.1:1/leader");
    ts_http_result_free(&r);
    free(u);

    u = url("/nothing");
    TC_CHECK(ts_http_call("GET", u, NULL, NULL, 0, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 500);
    TC_CHECK(ts_http_result_error(&r, "nothing", &err) == TS_EIO);
    ts_http_result_free(&r);
    free(u);
}

static void test_json_error_body(void)
{
    ts_http_result r;
    ts_error err;
    char *u = url("/err");

    TC_CHECK(ts_http_call("GET", u, NULL, NULL, 0, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 404);
    json_t *j = parse_body(&r);
    TC_CHECK(j != NULL);
    if (j != NULL) {
        TC_CHECK_STR(json_string_value(json_object_get(j, "error")), "ENOENT");
        TC_CHECK_STR(json_string_value(json_object_get(j, "message")),
                     "lookup 12/'x': no such \"entry\"\n");
        json_decref(j);
    }
    TC_CHECK(ts_http_result_error(&r, "lookup x", &err) == TS_ENOENT);
    TC_CHECK(err.code == TS_ENOENT);
    TC_CHECK(strncmp(err.msg, "lookup x: lookup 12/'x'", 23) == 0);
    ts_http_result_free(&r);
    free(u);

    /* A body that is not our JSON error gives EPROTO with the raw text. */
    ts_http_result fake = { .status = 502, .body = ts_strdup("<html>bad gateway</html>"),
                            .body_len = 24 };
    TC_CHECK(ts_http_result_error(&fake, "get", &err) == TS_EPROTO);
    TC_CHECK(strstr(err.msg, "502") != NULL && strstr(err.msg, "bad gateway") != NULL);
    ts_http_result_free(&fake);

    u = url("/no/such/route");
    TC_CHECK(ts_http_call("DELETE", u, NULL, NULL, 0, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 404);
    TC_CHECK(ts_http_result_error(&r, NULL, &err) == TS_ENOENT);
    TC_CHECK(strstr(err.msg, "DELETE /no/such/route") != NULL);
    ts_http_result_free(&r);
    free(u);
}

static void test_range_get(void)
{
    ts_http_result r;
    ts_error err;
    size_t got = 0;
    char *u = url("/data");
    uint8_t *buf = ts_malloc(FILE_SIZE);

    TC_CHECK(ts_http_get_range(u, 1000, 5000, buf, &got, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 206);
    TC_CHECK_EQ_U64(got, 5000);
    TC_CHECK(memcmp(buf, file_data + 1000, 5000) == 0);
    TC_CHECK(r.body_len == 0);       /* the data went to buf, not the result */
    ts_http_result_free(&r);

    /* A range past the end is clipped by the server. */
    TC_CHECK(ts_http_get_range(u, FILE_SIZE - 100, 4096, buf, &got, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 206);
    TC_CHECK_EQ_U64(got, 100);
    TC_CHECK(memcmp(buf, file_data + FILE_SIZE - 100, 100) == 0);
    ts_http_result_free(&r);

    /* The whole file, in one request, with sendfile on the server. */
    TC_CHECK(ts_http_get_range(u, 0, FILE_SIZE, buf, &got, 5000, &r, &err) == 0);
    TC_CHECK_EQ_U64(got, FILE_SIZE);
    TC_CHECK(memcmp(buf, file_data, FILE_SIZE) == 0);
    ts_http_result_free(&r);

    /* 416 arrives as a result with the error body; nothing lands in buf. */
    TC_CHECK(ts_http_get_range(u, FILE_SIZE + 10, 10, buf, &got, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 416);
    TC_CHECK_EQ_U64(got, 0);
    TC_CHECK(ts_http_result_error(&r, "read", &err) == TS_ERANGE);
    ts_http_result_free(&r);

    TC_CHECK(ts_http_get_range(u, 0, 0, buf, &got, 5000, &r, &err) == TS_EINVAL);
    ts_http_result_free(&r);
    free(u);

    /* A server that ignores Range and answers 200 with everything: the
     * client skips to the offset and stops at the length. */
    u = url("/hello");
    memset(buf, 0, 8);
    TC_CHECK(ts_http_get_range(u, 1, 3, buf, &got, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 200);
    TC_CHECK_EQ_U64(got, 3);
    TC_CHECK(memcmp(buf, "ell", 3) == 0);
    ts_http_result_free(&r);
    TC_CHECK(ts_http_get_range(u, 0, 10, buf, &got, 5000, &r, &err) == 0);
    TC_CHECK_EQ_U64(got, 5);
    TC_CHECK(memcmp(buf, "hello", 5) == 0);
    ts_http_result_free(&r);
    free(buf);
    free(u);
}

static void check_upload(const char *path, uint64_t size, int chunked)
{
    ts_http_result r;
    ts_error err;
    pattern_reader pr = { .total = size };
    char *u = url(path);
    int64_t t0 = ts_mono_ms();

    int rc = ts_http_put_stream(u, "application/octet-stream", pattern_read, &pr,
                                chunked ? UINT64_MAX : size, 30000, &r, &err);
    TC_CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  upload: %s\n", err.msg);
    TC_CHECK(r.status == 201);
    json_t *j = parse_body(&r);
    TC_CHECK(j != NULL);
    if (j != NULL) {
        TC_CHECK_EQ_U64(json_integer_value(json_object_get(j, "length")), size);
        TC_CHECK_EQ_U64(json_integer_value(json_object_get(j, "crc")), pr.crc);
        TC_CHECK(json_integer_value(json_object_get(j, "declared")) ==
                 (chunked ? -1 : (json_int_t)size));
        json_decref(j);
    }
    fprintf(stderr, "  PUT %llu bytes%s in %lld ms\n", (unsigned long long)size,
            chunked ? " (chunked)" : "", (long long)(ts_mono_ms() - t0));
    ts_http_result_free(&r);
    free(u);
}

static void test_stream_upload(void)
{
    check_upload("/stream/a", 10 * 1024 * 1024, 0);
    check_upload("/stream/b", 10 * 1024 * 1024 + 3, 1);
    check_upload("/stream/empty", 0, 0);
}

static void test_stream_early_answer(void)
{
    ts_http_result r;
    ts_error err;
    pattern_reader pr = { .total = 10 * 1024 * 1024 };
    char *u = url("/stream/reject");

    int rc = ts_http_put_stream(u, NULL, pattern_read, &pr, pr.total, 10000, &r, &err);
    if (rc != 0)
        fprintf(stderr, "  early answer lost: %s\n", err.msg);
    TC_CHECK(rc == 0);
    TC_CHECK(r.status == 409);
    TC_CHECK(ts_http_result_error(&r, "put", &err) == TS_EEXIST);
    TC_CHECK(strstr(err.msg, "sealed already") != NULL);
    ts_http_result_free(&r);
    free(u);

    /* The handle keeps working after the server closed that connection. */
    u = url("/hello");
    TC_CHECK(ts_http_call("GET", u, NULL, NULL, 0, 5000, &r, &err) == 0);
    TC_CHECK(r.status == 200);
    ts_http_result_free(&r);
    free(u);
}

static void test_stream_data_failure(void)
{
    ts_http_result r;
    ts_error err;
    pattern_reader pr = { .total = 4 * 1024 * 1024 };
    char *u = url("/stream/full");

    TC_CHECK(ts_http_put_stream(u, NULL, pattern_read, &pr, pr.total, 10000, &r, &err) == 0);
    TC_CHECK(r.status == 507);
    TC_CHECK(ts_http_result_error(&r, "put", &err) == TS_ENOSPC);
    TC_CHECK(strstr(err.msg, "disk full") != NULL);
    ts_http_result_free(&r);
    free(u);
}

static void test_reader_abort(void)
{
    ts_http_result r;
    ts_error err;
    pattern_reader pr = { .total = 4 * 1024 * 1024, .abort_at = 1024 * 1024 };
    char *u = url("/stream/aborted");

    TC_CHECK(ts_http_put_stream(u, NULL, pattern_read, &pr, pr.total, 10000, &r, &err) == TS_EIO);
    TC_CHECK(strstr(err.msg, u) != NULL);
    TC_CHECK(r.status == 0 && r.body == NULL);
    ts_http_result_free(&r);
    free(u);
}

static void test_body_limits(void)
{
    ts_http_result r;
    ts_error err;
    size_t n = MAX_BODY + 1;
    char *big = ts_malloc(n);
    memset(big, 'z', n);
    char *u = url("/echo");

    /* Exactly at the limit is fine and arrives intact. */
    TC_CHECK(ts_http_call("POST", u, "application/octet-stream", big, MAX_BODY, 10000, &r,
                             &err) == 0);
    TC_CHECK(r.status == 200);
    TC_CHECK_EQ_U64(r.body_len, MAX_BODY);
    TC_CHECK(r.body != NULL && memcmp(r.body, big, MAX_BODY) == 0);
    ts_http_result_free(&r);

    /* One more byte with a Content-Length: refused before the body. */
    TC_CHECK(ts_http_call("POST", u, "application/octet-stream", big, n, 10000, &r, &err) == 0);
    TC_CHECK(r.status == 413);
    TC_CHECK(ts_http_result_error(&r, "post", &err) == TS_EFBIG);
    ts_http_result_free(&r);

    /* Chunked, so the server only finds out while reading. */
    pattern_reader pr = { .total = 3 * MAX_BODY };
    TC_CHECK(ts_http_put_stream(u, NULL, pattern_read, &pr, UINT64_MAX, 10000, &r, &err) == 0);
    TC_CHECK(r.status == 413);
    TC_CHECK(ts_http_result_error(&r, "put", &err) == TS_EFBIG);
    ts_http_result_free(&r);

    /* An empty body reaches the handler as "" with length 0. */
    TC_CHECK(ts_http_call("PUT", u, NULL, NULL, 0, 10000, &r, &err) == 0);
    TC_CHECK(r.status == 200);
    TC_CHECK(r.body_len == 0 && r.body != NULL && r.body[0] == '\0');
    ts_http_result_free(&r);
    free(u);
    free(big);
}

static void test_transport_errors(void)
{
    ts_http_result r;
    ts_error err;

    /* A port that was just free: nothing listens there any more. */
    ts_http_server *tmp = start_server(TS_HTTP_THREAD_POOL);
    TC_CHECK(tmp != NULL);
    if (tmp == NULL)
        return;
    int port = ts_http_server_port(tmp);
    ts_http_server_stop(tmp);
    char *u = ts_sprintf("http://127.0.0.1:%d/v1/chunk/ab", port);
    TC_CHECK(ts_http_call("GET", u, NULL, NULL, 0, 5000, &r, &err) == TS_EUNAVAIL);
    TC_CHECK(r.status == 0 && r.body == NULL);
    fprintf(stderr, "  refused: %s\n", err.msg);
    TC_CHECK(strstr(err.msg, u) != NULL);
    TC_CHECK(strstr(err.msg, "onnection refused") != NULL);
    ts_http_result_free(&r);
    free(u);

    u = url("/slow");
    TC_CHECK(ts_http_call("GET", u, NULL, NULL, 0, 100, &r, &err) == TS_ETIMEDOUT);
    TC_CHECK(strstr(err.msg, u) != NULL);
    ts_http_result_free(&r);
    free(u);

    /* Binding a port that is in use fails with a message. */
    ts_http_server_opts o = { .bind_addr = "127.0.0.1", .port = ts_http_server_port(srv),
                              .handle = handle };
    ts_http_server *dup = NULL;
    TC_CHECK(ts_http_server_start(&o, &dup, &err) == TS_EIO);
    TC_CHECK(dup == NULL);
    TC_CHECK(strstr(err.msg, "127.0.0.1") != NULL);
    o.bind_addr = "not an address";
    TC_CHECK(ts_http_server_start(&o, &dup, &err) != 0);
}

/* Sends GET /hello with one header of `big` bytes on a raw socket to
 * port and reads the start of the reply into reply (size 64).  0 or -1. */
static int get_with_big_header(int port, size_t big, char *reply)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    char *req = ts_malloc(big + 128);
    int rc = -1;

    memset(reply, 0, 64);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto free_req;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto close_fd;
    int n = snprintf(req, 128, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    /* The server may answer and close before taking it all. */
    (void)ts_write_full(fd, req, (size_t)n + big + 4);
    rc = ts_read_full(fd, reply, 63) >= 12 ? 0 : -1;
close_fd:
    close(fd);
free_req:
    free(req);
    return rc;
}

/* Headers beyond the per-connection memory limit are refused by MHD with a
 * 4xx instead of being buffered without bound. */
static void test_oversized_headers(void)
{
    char reply[64];
    TC_CHECK(get_with_big_header(ts_http_server_port(srv), 256 * 1024, reply) == 0);
    fprintf(stderr, "  oversized headers: %.12s\n", reply);
    TC_CHECK(strncmp(reply, "HTTP/1.1 4", 10) == 0);
}

/* A server given less per-connection memory (conn_memory) still takes
 * bodies far larger than it (they arrive in pieces) and ordinary headers,
 * and refuses headers that the default would hold but it cannot. */
static void test_small_conn_memory(void)
{
    ts_http_server_opts o = {
        .bind_addr = "127.0.0.1", .port = 0, .threading = TS_HTTP_THREAD_PER_CONNECTION,
        .max_body = MAX_BODY, .conn_memory = 32 * 1024, .handle = handle,
    };
    ts_http_server *small = NULL;
    ts_error err;
    TC_CHECK(ts_http_server_start(&o, &small, &err) == 0);
    if (small == NULL)
        return;
    int port = ts_http_server_port(small);
    char *u = ts_sprintf("http://127.0.0.1:%d/echo", port);
    size_t n = 1024 * 1024;
    char *body = ts_malloc(n);
    ts_random_bytes(body, n);
    ts_http_result r;
    TC_CHECK(ts_http_call("POST", u, "application/octet-stream", body, n, 10000, &r, &err) == 0);
    TC_CHECK_EQ_U64(r.status, 200);
    TC_CHECK_EQ_U64(r.body_len, n);
    TC_CHECK(r.body != NULL && r.body_len == n && memcmp(r.body, body, n) == 0);
    ts_http_result_free(&r);
    char reply[64];
    TC_CHECK(get_with_big_header(port, 1024, reply) == 0);
    TC_CHECK(strncmp(reply, "HTTP/1.1 200", 12) == 0);
    TC_CHECK(get_with_big_header(port, 48 * 1024, reply) == 0);
    fprintf(stderr, "  48 KiB header, 32 KiB of connection memory: %.12s\n", reply);
    TC_CHECK(strncmp(reply, "HTTP/1.1 4", 10) == 0);
    free(body);
    free(u);
    ts_http_server_stop(small);
}

/* A client that waits for "100 Continue" gets a rejection before sending
 * its body. */
static void test_expect_continue_early(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ts_http_server_port(srv)) };
    char reply[512] = {0};
    static const char req[] =
        "PUT /stream/reject HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n"
        "Expect: 100-continue\r\n\r\n";

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TC_CHECK(fd >= 0);
    if (fd < 0)
        return;
    TC_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    TC_CHECK(ts_write_full(fd, req, sizeof(req) - 1) == 0);
    ssize_t got = ts_read_full(fd, reply, sizeof(reply) - 1);   /* the server closes */
    TC_CHECK(got > 0);
    TC_CHECK(strncmp(reply, "HTTP/1.1 409", 12) == 0);
    TC_CHECK(strstr(reply, "\"EEXIST\"") != NULL);
    close(fd);
}

typedef struct worker {
    int id;
    int failures;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    char *hello = url("/hello"), *echo = url("/echo"), *data = url("/data");
    uint8_t buf[4096];

    for (int i = 0; i < 150; i++) {
        ts_http_result r;
        ts_error err;
        size_t got;
        switch (i % 3) {
        case 0:
            if (ts_http_call("GET", hello, NULL, NULL, 0, 10000, &r, &err) != 0 ||
                r.status != 200 || strcmp(r.body, "hello") != 0)
                w->failures++;
            break;
        case 1: {
            char msg[64];
            int n = snprintf(msg, sizeof(msg), "worker %d request %d", w->id, i);
            if (ts_http_call("POST", echo, "text/plain", msg, (size_t)n, 10000, &r, &err) != 0 ||
                r.status != 200 || r.body_len != (size_t)n || memcmp(r.body, msg, (size_t)n) != 0)
                w->failures++;
            break;
        }
        default: {
            uint64_t off = (uint64_t)(i * 997 + w->id * 31) % (FILE_SIZE - sizeof(buf));
            if (ts_http_get_range(data, off, sizeof(buf), buf, &got, 10000, &r, &err) != 0 ||
                r.status != 206 || got != sizeof(buf) || memcmp(buf, file_data + off, got) != 0)
                w->failures++;
            break;
        }
        }
        ts_http_result_free(&r);
    }
    free(hello);
    free(echo);
    free(data);
    ts_http_client_thread_cleanup();
    return NULL;
}

static void test_concurrent_clients(void)
{
    pthread_t th[4];
    worker w[4];

    for (int i = 0; i < 4; i++) {
        w[i].id = i;
        w[i].failures = 0;
        TC_CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        TC_CHECK_EQ_U64(w[i].failures, 0);
    }
}

static void run_suite(enum ts_http_threading mode)
{
    srv = start_server(mode);
    TC_CHECK(srv != NULL);
    if (srv == NULL)
        return;
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", ts_http_server_port(srv));
    fprintf(stderr, "  -- %s server on %s\n",
            mode == TS_HTTP_THREAD_POOL ? "thread-pool" : "thread-per-connection", base);
}

static void test_suite_per_connection(void)
{
    run_suite(TS_HTTP_THREAD_PER_CONNECTION);
}

static void test_suite_pool(void)
{
    run_suite(TS_HTTP_THREAD_POOL);
}

static void test_stop_releases_everything(void)
{
    /* Stop waits for handlers; every accepted upload was released once. */
    ts_http_server_stop(srv);
    srv = NULL;
    TC_CHECK_EQ_U64(atomic_load(&releases), atomic_load(&begins_accepted));
    fprintf(stderr, "  %d uploads accepted, %d released\n", atomic_load(&begins_accepted),
            atomic_load(&releases));
}

static int make_data_file(void)
{
    snprintf(data_path, sizeof(data_path), "/tmp/ts-http-XXXXXX");
    int fd = mkstemp(data_path);
    if (fd < 0)
        return -1;
    file_data = ts_malloc(FILE_SIZE);
    ts_random_bytes(file_data, FILE_SIZE);
    int rc = ts_write_full(fd, file_data, FILE_SIZE);
    close(fd);
    return rc;
}

int main(void)
{
    ts_log_init("test_http", TS_LOG_WARN);
    ts_http_client_global_init();
    if (make_data_file() != 0) {
        fprintf(stderr, "cannot create a data file in /tmp\n");
        return 1;
    }
    enum ts_http_threading modes[2] = { TS_HTTP_THREAD_PER_CONNECTION, TS_HTTP_THREAD_POOL };
    for (int m = 0; m < 2; m++) {
        if (modes[m] == TS_HTTP_THREAD_PER_CONNECTION)
            TC_RUN(test_suite_per_connection);
        else
            TC_RUN(test_suite_pool);
        if (srv == NULL)
            break;
        TC_RUN(test_get_and_headers);
        TC_RUN(test_json_error_body);
        TC_RUN(test_range_get);
        TC_RUN(test_stream_upload);
        TC_RUN(test_stream_early_answer);
        TC_RUN(test_stream_data_failure);
        TC_RUN(test_reader_abort);
        TC_RUN(test_body_limits);
        TC_RUN(test_transport_errors);
        TC_RUN(test_oversized_headers);
        if (modes[m] == TS_HTTP_THREAD_PER_CONNECTION)
            TC_RUN(test_small_conn_memory);
        TC_RUN(test_expect_continue_early);
        TC_RUN(test_concurrent_clients);
        TC_RUN(test_stop_releases_everything);
    }
    ts_http_client_thread_cleanup();
    unlink(data_path);
    free(file_data);
    TC_DONE("test_http");
}
