/*
 * Unit tests for chunkserver/heartbeat against a fake metadata server in this
 * process: the first heartbeat carries the full report and the server's
 * identity and space; chunks sealed later arrive in "added"; report_needed
 * brings a new full report; a dead metadata address is skipped for the next
 * one; a metadata service that is down at start is reached once it comes
 * up, with nothing lost; stop is prompt even with a long interval.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chunkserver/chunk_store.h"
#include "chunkserver/heartbeat.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

/* ---- the fake metadata server ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *beats;            /* every heartbeat body received, in order */
static int report_needed = 1;    /* what the next answer says until a full report arrives */

static void meta_handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    (void)app;
    if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/v1/chunkserver/heartbeat") != 0) {
        ts_http_respond_error(resp, TS_ENOENT, "no such endpoint %s", req->path);
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, 0, &je);
    if (j == NULL) {
        ts_http_respond_error(resp, TS_EINVAL, "bad json: %s", je.text);
        return;
    }
    pthread_mutex_lock(&mu);
    if (json_object_get(j, "full_report") != NULL)
        report_needed = 0;
    json_array_append_new(beats, j);
    int rn = report_needed;
    pthread_mutex_unlock(&mu);
    ts_http_respond_json(resp, 200, rn ? "{\"report_needed\":true}" : "{\"report_needed\":false}");
}

static ts_http_server *start_meta(int port)
{
    ts_http_server *s = NULL;
    ts_error err = { 0 };
    ts_http_server_opts o = {
        .bind_addr = "127.0.0.1",
        .port = port,
        .threading = TS_HTTP_THREAD_POOL,
        .pool_threads = 2,
        .handle = meta_handle,
    };
    if (ts_http_server_start(&o, &s, &err) != 0) {
        fprintf(stderr, "fake meta: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static void reset_beats(void)
{
    pthread_mutex_lock(&mu);
    json_decref(beats);
    beats = json_array();
    report_needed = 1;
    pthread_mutex_unlock(&mu);
}

static size_t nbeats(void)
{
    pthread_mutex_lock(&mu);
    size_t n = json_array_size(beats);
    pthread_mutex_unlock(&mu);
    return n;
}

/* A new reference to heartbeat i (caller decrefs). */
static json_t *beat(size_t i)
{
    pthread_mutex_lock(&mu);
    json_t *j = json_incref(json_array_get(beats, i));
    pthread_mutex_unlock(&mu);
    return j;
}

static int wait_beats(size_t n)
{
    for (int i = 0; i < 500; i++) {
        if (nbeats() >= n)
            return 1;
        ts_sleep_ms(10);
    }
    return 0;
}

static int list_has(json_t *arr, const ts_chunk_id *id)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    size_t i;
    json_t *v;
    ts_chunk_id_to_hex(id, hex);
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), hex) == 0)
            return 1;
    }
    return 0;
}

/* ---- fixtures ---- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static ts_chunk_store *open_store(char **dir)
{
    char tmpl[] = "/tmp/ts-chunk-hb.XXXXXX";
    ts_chunk_store *s = NULL;
    ts_error err = { 0 };
    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    *dir = ts_strdup(tmpl);
    const char *d[] = { *dir };
    if (ts_chunk_store_open(d, 1, &s, &err) != 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static void close_store(ts_chunk_store *s, char *dir)
{
    ts_chunk_store_close(s);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static void seal(ts_chunk_store *s, ts_chunk_id *id)
{
    ts_chunk_writer *w;
    ts_error err = { 0 };
    ts_chunk_id_random(id);
    if (ts_chunk_writer_begin(s, id, 5, &w, &err) != 0 ||
        ts_chunk_writer_append(w, "hello", 5, &err) != 0 ||
        ts_chunk_writer_commit(w, NULL, &err) != 0) {
        fprintf(stderr, "seal: %s\n", err.msg);
        exit(1);
    }
}

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

/* ---- tests ---- */

static void test_reports(void)
{
    char *dir;
    ts_chunk_store *s = open_store(&dir);
    ts_chunk_id a, b, c;
    ts_error err = { 0 };
    ts_heartbeat *hb = NULL;

    reset_beats();
    seal(s, &a);
    seal(s, &b);
    ts_http_server *meta = start_meta(0);
    /* The first address is dead: the heartbeat moves on to the second. */
    char *metas = ts_sprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), ts_http_server_port(meta));
    ts_heartbeat_opts o = {
        .store = s, .meta = metas, .server_id = "cs-7", .address = "127.0.0.1:7407",
        .zone = "z1", .weight = 2.5, .interval_ms = 30,
    };
    TC_CHECK(ts_heartbeat_start(&o, &hb, &err) == 0);
    TC_CHECK(wait_beats(1));
    json_t *j = beat(0);
    TC_CHECK(j != NULL);
    if (j != NULL) {
        TC_CHECK_STR(json_string_value(json_object_get(j, "id")), "cs-7");
        TC_CHECK_STR(json_string_value(json_object_get(j, "address")), "127.0.0.1:7407");
        TC_CHECK_STR(json_string_value(json_object_get(j, "zone")), "z1");
        TC_CHECK(json_real_value(json_object_get(j, "weight")) == 2.5);
        TC_CHECK(json_integer_value(json_object_get(j, "capacity")) > 0);
        TC_CHECK(json_object_get(j, "used") != NULL);
        TC_CHECK_EQ_U64(json_integer_value(json_object_get(j, "chunk_count")), 2);
        json_t *full = json_object_get(j, "full_report");
        TC_CHECK_EQ_U64(json_array_size(full), 2);
        TC_CHECK(list_has(full, &a) && list_has(full, &b));
    }
    json_decref(j);

    /* A chunk sealed now arrives in "added", exactly once. */
    size_t before = nbeats();
    seal(s, &c);
    TC_CHECK(wait_beats(before + 3));
    int seen = 0;
    for (size_t i = before; i < nbeats(); i++) {
        j = beat(i);
        json_t *added = json_object_get(j, "added");
        if (added != NULL && list_has(added, &c))
            seen++;
        TC_CHECK(json_object_get(j, "full_report") == NULL);
        json_decref(j);
    }
    TC_CHECK_EQ_U64(seen, 1);

    /* The metadata server asks for a report again (it restarted). */
    pthread_mutex_lock(&mu);
    report_needed = 1;
    before = json_array_size(beats);
    pthread_mutex_unlock(&mu);
    TC_CHECK(wait_beats(before + 2));
    int full_seen = 0;
    for (size_t i = before; i < nbeats(); i++) {
        j = beat(i);
        json_t *full = json_object_get(j, "full_report");
        if (full != NULL && json_array_size(full) == 3 && list_has(full, &c))
            full_seen = 1;
        json_decref(j);
    }
    TC_CHECK(full_seen);
    TC_CHECK(ts_heartbeat_sent(hb) >= 3);

    ts_heartbeat_stop(hb);
    ts_http_server_stop(meta);
    free(metas);
    close_store(s, dir);
}

static void test_meta_down_then_up(void)
{
    char *dir;
    ts_chunk_store *s = open_store(&dir);
    ts_chunk_id a, b;
    ts_error err = { 0 };
    ts_heartbeat *hb = NULL;

    reset_beats();
    int port = dead_port();
    char *metas = ts_sprintf("127.0.0.1:%d", port);
    ts_heartbeat_opts o = {
        .store = s, .meta = metas, .server_id = "cs-8", .address = "127.0.0.1:7408",
        .weight = 1, .interval_ms = 20,
    };
    seal(s, &a);
    TC_CHECK(ts_heartbeat_start(&o, &hb, &err) == 0);
    ts_sleep_ms(150);           /* several failed rounds */
    seal(s, &b);                /* sealed while the service is down */
    ts_sleep_ms(60);
    TC_CHECK_EQ_U64(ts_heartbeat_sent(hb), 0);
    ts_http_server *meta = start_meta(port);
    TC_CHECK(wait_beats(3));
    json_t *j = beat(0);
    json_t *full = j ? json_object_get(j, "full_report") : NULL;
    TC_CHECK(full != NULL && list_has(full, &a) && list_has(full, &b));
    TC_CHECK_STR(j ? json_string_value(json_object_get(j, "zone")) : NULL, "");
    json_decref(j);

    /* The service goes away again and comes back without a restart of its
     * own (report_needed stays false): what was sealed meanwhile is sent in
     * "added" once it is back. */
    ts_http_server_stop(meta);
    ts_chunk_id c;
    ts_sleep_ms(100);
    seal(s, &c);
    ts_sleep_ms(100);
    size_t before = nbeats();
    pthread_mutex_lock(&mu);
    report_needed = 0;
    pthread_mutex_unlock(&mu);
    meta = start_meta(port);
    TC_CHECK(wait_beats(before + 1));
    j = beat(before);
    json_t *added = j ? json_object_get(j, "added") : NULL;
    TC_CHECK(added != NULL && list_has(added, &c));
    json_decref(j);

    ts_heartbeat_stop(hb);
    ts_http_server_stop(meta);
    free(metas);
    close_store(s, dir);
}

static void test_bad_opts_and_prompt_stop(void)
{
    char *dir;
    ts_chunk_store *s = open_store(&dir);
    ts_error err = { 0 };
    ts_heartbeat *hb = NULL;
    ts_heartbeat_opts o = {
        .store = s, .meta = "nonsense", .server_id = "cs-9", .address = "127.0.0.1:1",
        .weight = 1, .interval_ms = 1000,
    };
    TC_CHECK(ts_heartbeat_start(&o, &hb, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "nonsense") != NULL);
    o.meta = "127.0.0.1:1";
    o.weight = 0;
    TC_CHECK(ts_heartbeat_start(&o, &hb, &err) == TS_EINVAL);
    o.weight = 1;
    o.interval_ms = 0;
    TC_CHECK(ts_heartbeat_start(&o, &hb, &err) == TS_EINVAL);

    /* A long interval does not delay stop. */
    o.interval_ms = 60000;
    o.meta = ts_sprintf("127.0.0.1:%d", dead_port());
    TC_CHECK(ts_heartbeat_start(&o, &hb, &err) == 0);
    ts_sleep_ms(100);
    int64_t t0 = ts_mono_ms();
    ts_heartbeat_stop(hb);
    TC_CHECK(ts_mono_ms() - t0 < 2000);
    free((char *)o.meta);
    close_store(s, dir);
}

int main(void)
{
    ts_log_init("test_chunk_heartbeat", TS_LOG_ERROR);
    beats = json_array();
    TC_RUN(test_reports);
    TC_RUN(test_meta_down_then_up);
    TC_RUN(test_bad_opts_and_prompt_stop);
    json_decref(beats);
    TC_DONE("test_chunk_heartbeat");
}
