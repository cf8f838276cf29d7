/*
 * Unit tests for chunkserver/chunk_api: three real chunk API servers in this
 * process (ports chosen by the kernel), each over its own store, chained as
 * A -> B -> C.  Covers the pipelined PUT through the chain (identical bytes on
 * all three), verified GETs with ranges, info/health/metrics, strict ids
 * ("../etc/passwd", "%2e%2e"), 404/405/411/413/416, a truncated upload, a
 * dead downstream (502 naming it, nothing sealed), small chunks through the
 * chain, and a corrupted block.
 * Requests whose exact bytes matter are sent over a raw socket.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

#include "chunkserver/chunk_api.h"
#include "chunkserver/chunk_store.h"
#include "common/checksum.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

#define NSERVERS 3
#define MAX_CHUNK (8u * 1024 * 1024)

static char *dirs[NSERVERS];
static ts_chunk_store *stores[NSERVERS];
static ts_chunk_api *apis[NSERVERS];
static int ports[NSERVERS];

/* ---- fixtures ---- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void start_servers(void)
{
    for (int i = 0; i < NSERVERS; i++) {
        char tmpl[] = "/tmp/ts-chunk-api.XXXXXX";
        ts_error err = { 0 };
        char id[16];
        if (mkdtemp(tmpl) == NULL) {
            perror("mkdtemp");
            exit(1);
        }
        dirs[i] = ts_strdup(tmpl);
        const char *d[] = { dirs[i] };
        if (ts_chunk_store_open(d, 1, &stores[i], &err) != 0) {
            fprintf(stderr, "store %s: %s\n", dirs[i], err.msg);
            exit(1);
        }
        snprintf(id, sizeof id, "cs-%d", i + 1);
        ts_chunk_api_opts o = {
            .store = stores[i],
            .server_id = id,
            .bind_addr = "127.0.0.1",
            .port = 0,
            .max_chunk_size = MAX_CHUNK,
            .forward_buffer = 256 * 1024,  /* small: the ring wraps and fills */
        };
        if (ts_chunk_api_start(&o, &apis[i], &err) != 0) {
            fprintf(stderr, "api %s: %s\n", id, err.msg);
            exit(1);
        }
        ports[i] = ts_chunk_api_port(apis[i]);
    }
}

static void stop_servers(void)
{
    for (int i = 0; i < NSERVERS; i++) {
        ts_chunk_api_stop(apis[i]);
        ts_chunk_store_close(stores[i]);
        nftw(dirs[i], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        free(dirs[i]);
    }
}

static void fill_pattern(uint8_t *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

static int tmp_entries(int server)
{
    char path[4096];
    int n = 0;
    snprintf(path, sizeof path, "%s/tmp", dirs[server]);
    DIR *d = opendir(path);
    struct dirent *de;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Waits (up to 5 s) until no server holds a temporary file: the servers
 * drop aborted uploads asynchronously to the client seeing its answer. */
static int wait_tmp_empty(void)
{
    for (int tries = 0; tries < 500; tries++) {
        int busy = 0;
        for (int i = 0; i < NSERVERS; i++)
            busy |= tmp_entries(i) != 0;
        if (!busy)
            return 1;
        ts_sleep_ms(10);
    }
    return 0;
}

/* ---- clients ---- */

struct mem_src {
    const uint8_t *data;
    size_t len, pos;
    size_t stop_at;   /* abort the transfer after this many bytes (SIZE_MAX: never) */
    unsigned piece;
};

static ssize_t mem_read(void *ctx, char *buf, size_t max)
{
    struct mem_src *m = ctx;
    if (m->pos >= m->stop_at)
        return -1;
    m->piece = m->piece * 1103515245u + 12345u;
    size_t n = TS_MIN(max, m->len - m->pos);
    n = TS_MIN(n, (size_t)(m->piece % 70000) + 1);   /* uneven pieces */
    n = TS_MIN(n, m->stop_at - m->pos);
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

static char *chunk_url(int server, const char *hex, const char *query)
{
    return ts_sprintf("http://127.0.0.1:%d/v1/chunk/%s%s%s", ports[server], hex,
                      query ? "?" : "", query ? query : "");
}

static char *chain_query(int from, int to)
{
    ts_buf b = { 0 };
    ts_buf_printf(&b, "chain=");
    for (int i = from; i <= to; i++)
        ts_buf_printf(&b, "%s127.0.0.1:%d", i == from ? "" : ",", ports[i]);
    return b.data;
}

static int put_chunk(int server, const char *hex, const char *query, const uint8_t *data,
                     size_t len, ts_http_result *res)
{
    ts_error err = { 0 };
    struct mem_src m = { data, len, 0, SIZE_MAX, 7 };
    char *url = chunk_url(server, hex, query);
    int rc = ts_http_put_stream(url, "application/octet-stream", mem_read, &m, len, 60000, res,
                                &err);
    if (rc != 0)
        fprintf(stderr, "PUT %s: %s\n", url, err.msg);
    free(url);
    return rc;
}

/* A request over a raw socket, answered until the server closes.  Returns
 * the status (0 on failure); *body points into resp. */
static int raw_http(int port, const char *req, size_t reqlen, char *resp, size_t cap,
                    const char **body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = 20 };
    size_t got = 0;
    int status = 0;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || ts_write_full(fd, req, reqlen) != 0) {
        close(fd);
        return 0;
    }
    for (;;) {
        if (got + 1 >= cap)
            break;
        ssize_t n = read(fd, resp + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    const char *sep = strstr(resp, "\r\n\r\n");
    *body = sep ? sep + 4 : resp + got;
    return status;
}

static int raw_get(int port, const char *path, const char *extra_headers, char *resp, size_t cap,
                   const char **body)
{
    char *req = ts_sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
                           path, extra_headers ? extra_headers : "");
    int st = raw_http(port, req, strlen(req), resp, cap, body);
    free(req);
    return st;
}

/* 1 when text is a JSON error {"error": name, "message": …}. */
static int is_json_error(const char *text, const char *name)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
    const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
    int ok = e != NULL && m != NULL && (name == NULL || strcmp(e, name) == 0);
    if (!ok)
        fprintf(stderr, "  not a JSON %s error: %.300s\n", name ? name : "", text);
    json_decref(j);
    return ok;
}

static const char *header_value(const char *resp, const char *name, char *out, size_t outlen)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nlen = strlen(name);
    for (const char *p = strstr(resp, "\r\n"); p != NULL && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nlen) == 0 && p[2 + nlen] == ':') {
            const char *v = p + 3 + nlen;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r");
            snprintf(out, outlen, "%.*s", (int)n, v);
            return out;
        }
    }
    return NULL;
}

/* ---- tests ---- */

static uint8_t *big;            /* 5 MiB payload */
static size_t big_len = 5u * 1024 * 1024;
static char big_hex[TS_CHUNK_ID_HEX_LEN + 1];

static void test_put_through_chain(void)
{
    ts_chunk_id id;
    ts_http_result res = { 0 };
    uint8_t sha[TS_SHA256_LEN];
    char sha_hex[2 * TS_SHA256_LEN + 1];

    big = ts_malloc(big_len);
    fill_pattern(big, big_len, 42);
    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, big_hex);
    ts_sha256_once(big, big_len, sha);
    ts_hex_encode(sha, sizeof sha, sha_hex);

    char *q = chain_query(1, 2);
    TC_CHECK(put_chunk(0, big_hex, q, big, big_len, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 201);
    json_error_t je;
    json_t *j = res.body ? json_loads(res.body, 0, &je) : NULL;
    TC_CHECK(j != NULL);
    if (j != NULL) {
        TC_CHECK_STR(json_string_value(json_object_get(j, "id")), big_hex);
        TC_CHECK_EQ_U64(json_integer_value(json_object_get(j, "length")), big_len);
        TC_CHECK_STR(json_string_value(json_object_get(j, "sha256")), sha_hex);
        json_t *r = json_object_get(j, "replicas");
        TC_CHECK_EQ_U64(json_array_size(r), 3);
        TC_CHECK_STR(json_string_value(json_array_get(r, 0)), "cs-1");
        TC_CHECK_STR(json_string_value(json_array_get(r, 1)), "cs-2");
        TC_CHECK_STR(json_string_value(json_array_get(r, 2)), "cs-3");
    }
    json_decref(j);
    ts_http_result_free(&res);

    /* Every store has exactly the bytes. */
    uint8_t *back = ts_malloc(big_len);
    for (int i = 0; i < NSERVERS; i++) {
        ts_error err = { 0 };
        uint64_t len = 0;
        TC_CHECK(ts_chunk_store_contains(stores[i], &id, &len) == 1);
        TC_CHECK_EQ_U64(len, big_len);
        memset(back, 0, big_len);
        TC_CHECK(ts_chunk_store_read(stores[i], &id, 0, big_len, back, &err) == 0);
        TC_CHECK(memcmp(back, big, big_len) == 0);
        TC_CHECK_EQ_U64(tmp_entries(i), 0);
    }
    free(back);

    /* Sealed already: 409 from the first server, nothing forwarded. */
    q = chain_query(1, 2);
    TC_CHECK(put_chunk(0, big_hex, q, big, 1000, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 409);
    TC_CHECK(res.body && is_json_error(res.body, "EEXIST"));
    ts_http_result_free(&res);
}

/* The writer's digest through the chain: sealed on all three with the
 * writer's SHA-256; a CRC that does not match the bytes is refused by every
 * server (nothing sealed, nothing left in tmp); malformed digests get 400. */
static void test_put_with_digest(void)
{
    size_t len = 2u * 1024 * 1024 + 777;
    uint8_t *data = ts_malloc(len);
    fill_pattern(data, len, 77);
    ts_chunk_digest d;
    ts_chunk_digest_of(data, len, &d);

    for (int bad = 0; bad <= 1; bad++) {
        ts_chunk_id id;
        char hex[TS_CHUNK_ID_HEX_LEN + 1];
        ts_http_result res = { 0 };
        ts_chunk_digest sent = d;
        if (bad)
            sent.crc32c ^= 1;
        ts_chunk_id_random(&id);
        ts_chunk_id_to_hex(&id, hex);
        ts_buf q = { 0 };
        char *chain = chain_query(1, 2), sha_sent[2 * TS_SHA256_LEN + 1];
        ts_hex_encode(sent.sha256, TS_SHA256_LEN, sha_sent);
        ts_buf_printf(&q, "%s&sha256=%s&crc32c=%08" PRIx32, chain, sha_sent, sent.crc32c);
        free(chain);
        TC_CHECK(put_chunk(0, hex, q.data, data, len, &res) == 0);
        ts_buf_free(&q);
        if (!bad) {
            TC_CHECK_EQ_U64(res.status, 201);
            char sha_hex[2 * TS_SHA256_LEN + 1];
            ts_hex_encode(d.sha256, TS_SHA256_LEN, sha_hex);
            TC_CHECK(res.body != NULL && strstr(res.body, sha_hex) != NULL);
        } else {
            TC_CHECK(res.status >= 400);
            TC_CHECK(res.body != NULL && strstr(res.body, "CRC32C") != NULL);
        }
        ts_http_result_free(&res);
        for (int i = 0; i < NSERVERS; i++) {
            ts_chunk_info info;
            ts_error err = { 0 };
            if (!bad) {
                TC_CHECK(ts_chunk_store_info(stores[i], &id, &info, &err) == 0);
                TC_CHECK(memcmp(info.sha256, d.sha256, TS_SHA256_LEN) == 0);
            } else {
                TC_CHECK(ts_chunk_store_contains(stores[i], &id, NULL) == 0);
            }
        }
        TC_CHECK(wait_tmp_empty());
    }

    static const char *const bad_queries[] = {
        "sha256=00&crc32c=00000000",
        "crc32c=00000000",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000&crc32c=xyz",
        "sha256=000000000000000000000000000000000000000000000000000000000000000g&crc32c=00000000",
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(bad_queries); i++) {
        ts_chunk_id id;
        char hex[TS_CHUNK_ID_HEX_LEN + 1];
        ts_http_result res = { 0 };
        ts_chunk_id_random(&id);
        ts_chunk_id_to_hex(&id, hex);
        TC_CHECK(put_chunk(0, hex, bad_queries[i], data, 100, &res) == 0);
        TC_CHECK_EQ_U64(res.status, 400);
        TC_CHECK(res.body && is_json_error(res.body, "EINVAL"));
        ts_http_result_free(&res);
        TC_CHECK(ts_chunk_store_contains(stores[0], &id, NULL) == 0);
    }
    TC_CHECK_EQ_U64(tmp_entries(0), 0);
    free(data);
}

static void test_empty_chunk(void)
{
    ts_http_result res = { 0 };
    ts_error err = { 0 };
    ts_chunk_id id;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    size_t cap = 4096;
    char *resp = ts_malloc(cap);
    const char *body;

    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, hex);
    char *q = chain_query(1, 2);
    TC_CHECK(put_chunk(0, hex, q, (const uint8_t *)"", 0, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 201);
    TC_CHECK(res.body && strstr(res.body, "\"length\":0") != NULL);
    ts_http_result_free(&res);
    char *url = chunk_url(2, hex, NULL);
    TC_CHECK(ts_http_call("GET", url, NULL, NULL, 0, 10000, &res, &err) == 0);
    TC_CHECK_EQ_U64(res.status, 200);
    TC_CHECK_EQ_U64(res.body_len, 0);
    ts_http_result_free(&res);
    free(url);
    char *path = ts_sprintf("/v1/chunk/%s", hex);
    TC_CHECK_EQ_U64(raw_get(ports[1], path, "Range: bytes=0-\r\n", resp, cap, &body), 416);
    free(path);
    path = ts_sprintf("/v1/chunk/%s/info", hex);
    TC_CHECK_EQ_U64(raw_get(ports[1], path, NULL, resp, cap, &body), 200);
    TC_CHECK(strstr(body, "\"blocks\":0") != NULL);
    free(path);
    free(resp);
}

static void test_get_ranges(void)
{
    ts_http_result res = { 0 };
    ts_error err = { 0 };
    char *url = chunk_url(1, big_hex, NULL);

    /* Whole chunk from the middle of the chain. */
    TC_CHECK(ts_http_call("GET", url, NULL, NULL, 0, 30000, &res, &err) == 0);
    TC_CHECK_EQ_U64(res.status, 200);
    TC_CHECK_EQ_U64(res.body_len, big_len);
    TC_CHECK(res.body_len == big_len && memcmp(res.body, big, big_len) == 0);
    ts_http_result_free(&res);

    /* Ranged reads straight into a buffer, across block edges. */
    const uint64_t ranges[][2] = { { 0, 1 }, { 1000, 70000 }, { 65535, 2 },
                                   { big_len - 100, 100 }, { 3 * 65536, 65536 } };
    uint8_t *buf = ts_malloc(100000);
    for (size_t i = 0; i < TS_ARRAY_LEN(ranges); i++) {
        size_t got = 0;
        TC_CHECK(ts_http_get_range(url, ranges[i][0], ranges[i][1], buf, &got, 30000, &res,
                                   &err) == 0);
        TC_CHECK_EQ_U64(res.status, 206);
        TC_CHECK_EQ_U64(got, ranges[i][1]);
        TC_CHECK(memcmp(buf, big + ranges[i][0], ranges[i][1]) == 0);
        ts_http_result_free(&res);
    }
    free(buf);
    free(url);

    /* Range forms over a raw socket, to control the header exactly. */
    size_t cap = 256 * 1024;
    char *resp = ts_malloc(cap), hv[128];
    const char *body;
    char *path = ts_sprintf("/v1/chunk/%s", big_hex);
    TC_CHECK_EQ_U64(raw_get(ports[2], path, "Range: bytes=-10\r\n", resp, cap, &body), 206);
    TC_CHECK(memcmp(body, big + big_len - 10, 10) == 0);
    TC_CHECK(header_value(resp, "Content-Range", hv, sizeof hv) != NULL);
    char *want = ts_sprintf("bytes %zu-%zu/%zu", big_len - 10, big_len - 1, big_len);
    TC_CHECK_STR(hv, want);
    free(want);
    TC_CHECK_EQ_U64(raw_get(ports[2], path, "Range: bytes=5242800-\r\n", resp, cap, &body), 206);
    TC_CHECK(memcmp(body, big + 5242800, big_len - 5242800) == 0);
    TC_CHECK_EQ_U64(raw_get(ports[2], path, "Range: bytes=0-1,5-6\r\n", resp, cap, &body), 416);
    TC_CHECK(is_json_error(body, "EINVAL"));
    char *beyond = ts_sprintf("Range: bytes=%zu-\r\n", big_len);
    TC_CHECK_EQ_U64(raw_get(ports[2], path, beyond, resp, cap, &body), 416);
    free(beyond);
    TC_CHECK(is_json_error(body, "ERANGE"));
    TC_CHECK(header_value(resp, "Content-Range", hv, sizeof hv) != NULL);
    TC_CHECK_EQ_U64(raw_get(ports[2], path, "Range: bytes=9-3\r\n", resp, cap, &body), 416);
    TC_CHECK_EQ_U64(raw_get(ports[2], path, "Range: items=1-2\r\n", resp, cap, &body), 416);
    free(path);

    /* Info, health, metrics. */
    path = ts_sprintf("/v1/chunk/%s/info", big_hex);
    TC_CHECK_EQ_U64(raw_get(ports[0], path, NULL, resp, cap, &body), 200);
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    TC_CHECK(j != NULL);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(j, "length")), big_len);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(j, "blocks")), 80);
    TC_CHECK_STR(json_string_value(json_object_get(j, "id")), big_hex);
    TC_CHECK(json_string_value(json_object_get(j, "sha256")) != NULL &&
             strlen(json_string_value(json_object_get(j, "sha256"))) == 64);
    json_decref(j);
    free(path);
    TC_CHECK_EQ_U64(raw_get(ports[1], "/health", NULL, resp, cap, &body), 200);
    j = json_loads(body, 0, &je);
    TC_CHECK(j != NULL && json_is_true(json_object_get(j, "ok")));
    TC_CHECK_STR(j ? json_string_value(json_object_get(j, "role")) : NULL, "chunk");
    TC_CHECK_STR(j ? json_string_value(json_object_get(j, "id")) : NULL, "cs-2");
    json_decref(j);
    TC_CHECK_EQ_U64(raw_get(ports[1], "/metrics", NULL, resp, cap, &body), 200);
    TC_CHECK(strstr(body, "\ntessera_chunk_chunks 1\n") != NULL);  /* before test_empty_chunk */
    TC_CHECK(strstr(body, "tessera_chunk_reads_total ") != NULL);
    TC_CHECK(strstr(body, "tessera_chunk_checksum_errors_total 0") != NULL);
    TC_CHECK(strstr(body, "tessera_chunk_disk_capacity_bytes ") != NULL);
    free(resp);
}

static void test_bad_requests(void)
{
    size_t cap = 64 * 1024;
    char *resp = ts_malloc(cap);
    const char *body;
    const char *bad_paths[] = {
        "/v1/chunk/../etc/passwd",
        "/v1/chunk/%2e%2e",
        "/v1/chunk/%2e%2e%2fetc%2fpasswd",
        "/v1/chunk/0123456789abcdef0123456789abcdeg",
        "/v1/chunk/0123456789abcdef0123456789abcdef0",
        "/v1/chunk/0123456789abcdef",
        "/v1/chunk/",
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(bad_paths); i++) {
        int st = raw_get(ports[0], bad_paths[i], NULL, resp, cap, &body);
        TC_CHECK(st >= 400 && st < 500);
        TC_CHECK(is_json_error(body, NULL));
        char *req = ts_sprintf("PUT %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "Content-Length: 5\r\n\r\nhello", bad_paths[i]);
        st = raw_http(ports[0], req, strlen(req), resp, cap, &body);
        free(req);
        TC_CHECK(st >= 400 && st < 500);
        TC_CHECK(is_json_error(body, NULL));
    }
    /* Nothing was created by any of them. */
    TC_CHECK_EQ_U64(tmp_entries(0), 0);

    /* Unknown chunk, unknown path, wrong method. */
    TC_CHECK_EQ_U64(raw_get(ports[0], "/v1/chunk/00000000000000000000000000000000", NULL, resp,
                            cap, &body), 404);
    TC_CHECK(is_json_error(body, "ENOENT"));
    TC_CHECK_EQ_U64(raw_get(ports[0], "/v1/chunk/00000000000000000000000000000000/info", NULL,
                            resp, cap, &body), 404);
    TC_CHECK(is_json_error(body, "ENOENT"));
    TC_CHECK_EQ_U64(raw_get(ports[0], "/nope", NULL, resp, cap, &body), 404);
    TC_CHECK(is_json_error(body, "ENOENT"));
    const char *del = "DELETE /v1/chunk/00000000000000000000000000000000 HTTP/1.1\r\n"
                      "Host: x\r\nConnection: close\r\n\r\n";
    TC_CHECK_EQ_U64(raw_http(ports[0], del, strlen(del), resp, cap, &body), 404);
    TC_CHECK(is_json_error(body, "ENOENT"));
    const char *patch = "PATCH /v1/chunk/00000000000000000000000000000000 HTTP/1.1\r\n"
                        "Host: x\r\nConnection: close\r\n\r\n";
    TC_CHECK_EQ_U64(raw_http(ports[0], patch, strlen(patch), resp, cap, &body), 405);
    TC_CHECK(is_json_error(body, NULL));
    const char *post = "POST /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Length: 0\r\n\r\n";
    TC_CHECK_EQ_U64(raw_http(ports[0], post, strlen(post), resp, cap, &body), 405);

    /* Content-Length is required (chunked upload -> 411). */
    ts_http_result res = { 0 };
    ts_error err = { 0 };
    uint8_t small[100] = { 0 };
    struct mem_src m = { small, sizeof small, 0, SIZE_MAX, 3 };
    char *url = chunk_url(0, "11111111111111111111111111111111", NULL);
    TC_CHECK(ts_http_put_stream(url, "application/octet-stream", mem_read, &m, UINT64_MAX, 10000,
                                &res, &err) == 0);
    TC_CHECK_EQ_U64(res.status, 411);
    TC_CHECK(res.body && is_json_error(res.body, "EINVAL"));
    ts_http_result_free(&res);
    free(url);

    /* Too large: refused from the headers alone (the client waits for
     * 100-continue, so the server can answer before any body is sent). */
    char *req = ts_sprintf("PUT /v1/chunk/22222222222222222222222222222222 HTTP/1.1\r\n"
                           "Host: x\r\nConnection: close\r\nExpect: 100-continue\r\n"
                           "Content-Length: %u\r\n\r\n", MAX_CHUNK + 1);
    TC_CHECK_EQ_U64(raw_http(ports[0], req, strlen(req), resp, cap, &body), 413);
    TC_CHECK(is_json_error(body, "EFBIG"));
    free(req);

    /* A malformed chain is refused before anything is written. */
    url = chunk_url(0, "33333333333333333333333333333333", "chain=nonsense");
    m.pos = 0;
    TC_CHECK(ts_http_put_stream(url, "application/octet-stream", mem_read, &m, sizeof small,
                                10000, &res, &err) == 0);
    TC_CHECK_EQ_U64(res.status, 400);
    ts_http_result_free(&res);
    free(url);
    TC_CHECK(wait_tmp_empty());
    free(resp);
}

static void test_truncated_upload(void)
{
    ts_chunk_id id;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, hex);

    /* Announce 1 MiB through the chain, send 300 KB, hang up. */
    char *q = chain_query(1, 2);
    char *hdr = ts_sprintf("PUT /v1/chunk/%s?%s HTTP/1.1\r\nHost: x\r\n"
                           "Content-Length: 1048576\r\n\r\n", hex, q);
    free(q);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ports[0]) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    TC_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    TC_CHECK(ts_write_full(fd, hdr, strlen(hdr)) == 0);
    TC_CHECK(ts_write_full(fd, big, 300000) == 0);
    free(hdr);
    ts_sleep_ms(200);   /* let the pieces reach B and C */
    close(fd);

    TC_CHECK(wait_tmp_empty());
    for (int i = 0; i < NSERVERS; i++)
        TC_CHECK(ts_chunk_store_contains(stores[i], &id, NULL) == 0);

    /* The same id can then be stored properly. */
    ts_http_result res = { 0 };
    q = chain_query(1, 2);
    TC_CHECK(put_chunk(0, hex, q, big, 1048576, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 201);
    ts_http_result_free(&res);
    for (int i = 0; i < NSERVERS; i++)
        TC_CHECK(ts_chunk_store_contains(stores[i], &id, NULL) == 1);

    /* A client that gives up midway through curl (read callback aborts). */
    ts_chunk_id id2;
    char hex2[TS_CHUNK_ID_HEX_LEN + 1];
    ts_error err = { 0 };
    ts_chunk_id_random(&id2);
    ts_chunk_id_to_hex(&id2, hex2);
    q = chain_query(1, 2);
    char *url = chunk_url(0, hex2, q);
    struct mem_src m = { big, 2000000, 0, 700000, 11 };
    int rc = ts_http_put_stream(url, "application/octet-stream", mem_read, &m, 2000000, 10000,
                                &res, &err);
    TC_CHECK(rc != 0 || res.status >= 400);
    ts_http_result_free(&res);
    free(url);
    free(q);
    TC_CHECK(wait_tmp_empty());
    for (int i = 0; i < NSERVERS; i++)
        TC_CHECK(ts_chunk_store_contains(stores[i], &id2, NULL) == 0);
}

/* A port with nothing listening on it. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("bind");
        exit(1);
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_dead_downstream(void)
{
    int dead = dead_port();
    ts_chunk_id id;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_http_result res = { 0 };
    char who[64];
    snprintf(who, sizeof who, "127.0.0.1:%d", dead);

    /* Position 2 is dead. */
    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, hex);
    char *q = ts_sprintf("chain=%s,127.0.0.1:%d", who, ports[2]);
    TC_CHECK(put_chunk(0, hex, q, big, 500000, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 502);
    TC_CHECK(res.body && is_json_error(res.body, "EUNAVAIL"));
    TC_CHECK(res.body && strstr(res.body, who) != NULL);
    TC_CHECK(res.body && strstr(res.body, "chain position 2") != NULL);
    ts_http_result_free(&res);
    TC_CHECK(wait_tmp_empty());
    for (int i = 0; i < NSERVERS; i++)
        TC_CHECK(ts_chunk_store_contains(stores[i], &id, NULL) == 0);

    /* Position 3 is dead: B reports it, A passes B's message through. */
    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, hex);
    q = ts_sprintf("chain=127.0.0.1:%d,%s", ports[1], who);
    TC_CHECK(put_chunk(0, hex, q, big, 500000, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 502);
    TC_CHECK(res.body && is_json_error(res.body, "EUNAVAIL"));
    TC_CHECK(res.body && strstr(res.body, who) != NULL);
    TC_CHECK(res.body && strstr(res.body, "chain position 3") != NULL);
    ts_http_result_free(&res);
    TC_CHECK(wait_tmp_empty());
    for (int i = 0; i < NSERVERS; i++)
        TC_CHECK(ts_chunk_store_contains(stores[i], &id, NULL) == 0);

    /* Downstream refuses (already has it): A answers 502 naming B, keeps nothing. */
    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, hex);
    TC_CHECK(put_chunk(1, hex, NULL, big, 1000, &res) == 0);
    TC_CHECK_EQ_U64(res.status, 201);
    ts_http_result_free(&res);
    q = ts_sprintf("chain=127.0.0.1:%d", ports[1]);
    TC_CHECK(put_chunk(0, hex, q, big, 1000, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 502);
    TC_CHECK(res.body && strstr(res.body, "EEXIST") != NULL);
    ts_http_result_free(&res);
    TC_CHECK(wait_tmp_empty());
    TC_CHECK(ts_chunk_store_contains(stores[0], &id, NULL) == 0);
}

/* Small chunks travel down the chain in one piece (the forwarder sends a
 * body of up to 64 KiB whole once it is complete) on pooled workers that
 * keep their connections: many in a row, sizes on both sides of that limit,
 * every one stored identically on all three servers.  And a small chunk
 * whose downstream is dead is answered 502 naming it, the first server's
 * copy (sealed meanwhile, in parallel with the chain) deleted again. */
static void test_small_chunks_chain(void)
{
    static const size_t sizes[] = { 1, 4096, 65535, 65536, 65537, 200000 };
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    uint8_t *back = ts_malloc(200000);
    ts_chunk_id id;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_http_result res = { 0 };
    char *q = chain_query(1, 2);

    for (size_t round = 0; round < 4 * nsizes; round++) {
        size_t len = sizes[round % nsizes];
        const uint8_t *data = big + round;
        ts_chunk_id_random(&id);
        ts_chunk_id_to_hex(&id, hex);
        TC_CHECK(put_chunk(0, hex, q, data, len, &res) == 0);
        TC_CHECK_EQ_U64(res.status, 201);
        ts_http_result_free(&res);
        for (int i = 0; i < NSERVERS; i++) {
            ts_error err = { 0 };
            TC_CHECK(ts_chunk_store_read(stores[i], &id, 0, len, back, &err) == 0);
            TC_CHECK(memcmp(back, data, len) == 0);
        }
    }
    free(q);
    free(back);

    int dead = dead_port();
    char who[64];
    snprintf(who, sizeof who, "127.0.0.1:%d", dead);
    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, hex);
    q = ts_sprintf("chain=%s", who);
    TC_CHECK(put_chunk(0, hex, q, big, 4096, &res) == 0);
    free(q);
    TC_CHECK_EQ_U64(res.status, 502);
    TC_CHECK(res.body && is_json_error(res.body, "EUNAVAIL"));
    TC_CHECK(res.body && strstr(res.body, who) != NULL);
    ts_http_result_free(&res);
    TC_CHECK(wait_tmp_empty());
    TC_CHECK(ts_chunk_store_contains(stores[0], &id, NULL) == 0);
}

struct put_job {
    int seed;
    int ok;
};

static void *put_thread(void *arg)
{
    struct put_job *job = arg;
    size_t len = 1500000 + (size_t)job->seed * 1000;
    uint8_t *data = ts_malloc(len);
    ts_chunk_id id;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_http_result res = { 0 };
    fill_pattern(data, len, 100 + (uint32_t)job->seed);
    ts_chunk_id_random(&id);
    ts_chunk_id_to_hex(&id, hex);
    /* Chains in different orders, so servers forward to each other at once. */
    int first = job->seed % NSERVERS;
    char *q = ts_sprintf("chain=127.0.0.1:%d,127.0.0.1:%d", ports[(first + 1) % NSERVERS],
                         ports[(first + 2) % NSERVERS]);
    job->ok = put_chunk(first, hex, q, data, len, &res) == 0 && res.status == 201;
    free(q);
    ts_http_result_free(&res);
    uint8_t *back = ts_malloc(len);
    for (int i = 0; i < NSERVERS && job->ok; i++) {
        ts_error err = { 0 };
        job->ok = ts_chunk_store_read(stores[i], &id, 0, len, back, &err) == 0 &&
                  memcmp(back, data, len) == 0;
    }
    free(back);
    free(data);
    ts_http_client_thread_cleanup();
    return NULL;
}

static void test_concurrent_chains(void)
{
    pthread_t th[6];
    struct put_job jobs[6];
    for (int i = 0; i < 6; i++) {
        jobs[i].seed = i;
        jobs[i].ok = 0;
        TC_CHECK(pthread_create(&th[i], NULL, put_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        TC_CHECK(jobs[i].ok);
    }
}

static void test_corrupt_block_served_never(void)
{
    char path[4096];
    size_t cap = 64 * 1024;
    char *resp = ts_malloc(cap);
    const char *body;

    snprintf(path, sizeof path, "%s/chunks/%.2s/%s.chunk", dirs[0], big_hex, big_hex);
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    TC_CHECK(fd >= 0 && pread(fd, &b, 1, 17 * 65536 + 9) == 1);
    b ^= 1;
    TC_CHECK(fd >= 0 && pwrite(fd, &b, 1, 17 * 65536 + 9) == 1);
    close(fd);

    char *p = ts_sprintf("/v1/chunk/%s", big_hex);
    TC_CHECK_EQ_U64(raw_get(ports[0], p, "Range: bytes=1114112-1114200\r\n", resp, cap, &body),
                    500);
    TC_CHECK(is_json_error(body, "ECORRUPT"));
    TC_CHECK(strstr(body, "block 17") != NULL);
    TC_CHECK(strstr(body, big_hex) != NULL);
    /* The bad replica is quarantined at once: not even its good blocks are
     * served again (the client reads another replica). */
    TC_CHECK_EQ_U64(raw_get(ports[0], p, "Range: bytes=0-99\r\n", resp, cap, &body), 404);
    TC_CHECK(is_json_error(body, "ENOENT"));
    TC_CHECK_EQ_U64(raw_get(ports[0], "/metrics", NULL, resp, cap, &body), 200);
    TC_CHECK(strstr(body, "tessera_chunk_checksum_errors_total 0") == NULL);
    TC_CHECK(strstr(body, "tessera_chunk_quarantined_total 1\n") != NULL);
    snprintf(path, sizeof path, "%s/quarantine/%s.chunk", dirs[0], big_hex);
    TC_CHECK(access(path, F_OK) == 0);
    free(p);
    free(resp);
}

int main(void)
{
    ts_log_init("test_chunk_api", TS_LOG_WARN);
    ts_http_client_global_init();
    start_servers();
    TC_RUN(test_put_through_chain);
    TC_RUN(test_get_ranges);
    TC_RUN(test_put_with_digest);
    TC_RUN(test_empty_chunk);
    TC_RUN(test_bad_requests);
    TC_RUN(test_truncated_upload);
    TC_RUN(test_dead_downstream);
    TC_RUN(test_small_chunks_chain);
    TC_RUN(test_concurrent_chains);
    TC_RUN(test_corrupt_block_served_never);
    stop_servers();
    free(big);
    ts_http_client_thread_cleanup();
    TC_DONE("test_chunk_api");
}
