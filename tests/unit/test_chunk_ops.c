/*
 * Unit tests of the chunkserver's operations side: the background token
 * bucket, quarantine of corrupt replicas (by a read and by the scrubber),
 * data dirs taken out of service after an I/O error (fault injection),
 * the writer's expected SHA-256, and copies between two in-process chunk
 * APIs (replicate, idempotence, busy limits, DELETE).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunkserver/chunk_api.h"
#include "chunkserver/chunk_copy.h"
#include "chunkserver/chunk_store.h"
#include "chunkserver/scrubber.h"
#include "chunkserver/throttle.h"
#include "common/checksum.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/ts-chunk-ops.XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    return ts_strdup(tmpl);
}

static void remove_tree(char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static void fill(uint8_t *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 7;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

static ts_chunk_id make_id(uint32_t seed)
{
    ts_chunk_id id;
    uint8_t raw[sizeof id];
    fill(raw, sizeof raw, seed + 1000);
    memcpy(&id, raw, sizeof id);
    return id;
}

/* Writes chunk `seed` of n bytes into s. */
static int put_chunk(ts_chunk_store *s, uint32_t seed, size_t n)
{
    ts_chunk_id id = make_id(seed);
    ts_chunk_writer *w;
    ts_error err = { 0 };
    uint8_t *buf = ts_malloc(n + 1);
    fill(buf, n, seed);
    int rc = ts_chunk_writer_begin(s, &id, n, &w, &err);
    if (rc == 0 && (rc = ts_chunk_writer_append(w, buf, n, &err)) != 0)
        ts_chunk_writer_abort(w);
    else if (rc == 0)
        rc = ts_chunk_writer_commit(w, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "  put_chunk %u: %s\n", seed, err.msg);
    free(buf);
    return rc;
}

/* Flips one byte at offset `at` of chunk `seed`'s file in data dir `dir`. */
static void flip_byte(const char *dir, uint32_t seed, off_t at)
{
    ts_chunk_id id = make_id(seed);
    char hex[TS_CHUNK_ID_HEX_LEN + 1], path[4096];
    uint8_t b;
    ts_chunk_id_to_hex(&id, hex);
    snprintf(path, sizeof path, "%s/chunks/%.2s/%s.chunk", dir, hex, hex);
    int fd = open(path, O_RDWR);
    TC_CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1);
    b ^= 0x40;
    TC_CHECK(fd >= 0 && pwrite(fd, &b, 1, at) == 1);
    if (fd >= 0)
        close(fd);
}

static int in_quarantine(const char *dir, uint32_t seed)
{
    ts_chunk_id id = make_id(seed);
    char hex[TS_CHUNK_ID_HEX_LEN + 1], path[4096];
    ts_chunk_id_to_hex(&id, hex);
    snprintf(path, sizeof path, "%s/quarantine/%s.chunk", dir, hex);
    return access(path, F_OK) == 0;
}

/* ---- throttle ---- */

static void test_throttle(void)
{
    ts_throttle *t = ts_throttle_new(1000000, 0);   /* 1 MB/s, 1 MB burst */
    TC_CHECK_EQ_U64(ts_throttle_reserve(t, 600000, 0), 0);
    TC_CHECK_EQ_U64(ts_throttle_reserve(t, 400000, 0), 0);
    /* Empty: 500 KB more is 500 ms of debt. */
    int64_t w = ts_throttle_reserve(t, 500000, 0);
    TC_CHECK(w >= 500 && w <= 501);
    /* 500 ms later the debt is paid; a second later the bucket is full
     * again but never beyond its burst. */
    TC_CHECK_EQ_U64(ts_throttle_reserve(t, 0, 500), 0);
    TC_CHECK_EQ_U64(ts_throttle_reserve(t, 1000000, 10000), 0);
    w = ts_throttle_reserve(t, 1, 10000);
    TC_CHECK(w >= 1 && w <= 2);
    TC_CHECK_EQ_U64(ts_throttle_rate(t), 1000000);
    ts_throttle_free(t);
    ts_throttle *unl = ts_throttle_new(0, 0);
    TC_CHECK_EQ_U64(ts_throttle_reserve(unl, UINT64_MAX / 2, 0), 0);
    TC_CHECK_EQ_U64(ts_throttle_reserve(NULL, 5, 0), 0);
    ts_throttle_free(unl);
}

/* ---- quarantine and scrubbing ---- */

static void test_scrub_chunk_quarantines(void)
{
    char *dir = make_tmpdir();
    const char *d[] = { dir };
    ts_chunk_store *s;
    ts_error err = { 0 };
    TC_CHECK(ts_chunk_store_open(d, 1, &s, &err) == 0);
    TC_CHECK(put_chunk(s, 1, 300000) == 0);
    TC_CHECK(put_chunk(s, 2, 70000) == 0);
    ts_chunk_id id1 = make_id(1), id2 = make_id(2), *ids;
    size_t n;
    uint64_t bytes;

    TC_CHECK(ts_scrub_chunk(s, &id1, &bytes, &err) == 0);
    TC_CHECK_EQ_U64(bytes, 300000);
    flip_byte(dir, 1, 200000);
    TC_CHECK(ts_scrub_chunk(s, &id1, &bytes, &err) == TS_ECORRUPT);
    TC_CHECK(strstr(err.msg, "block 3") != NULL);
    TC_CHECK(!ts_chunk_store_contains(s, &id1, NULL));
    TC_CHECK(in_quarantine(dir, 1));
    TC_CHECK(ts_scrub_chunk(s, &id1, NULL, &err) == TS_ENOENT);
    ts_chunk_store_take_corrupt(s, &ids, &n);
    TC_CHECK_EQ_U64(n, 1);
    TC_CHECK(n == 1 && ts_chunk_id_eq(&ids[0], &id1));
    free(ids);
    /* The full report no longer names it. */
    ts_chunk_store_list(s, &ids, &n);
    TC_CHECK_EQ_U64(n, 1);
    TC_CHECK(n == 1 && ts_chunk_id_eq(&ids[0], &id2));
    free(ids);
    ts_chunk_stats st;
    TC_CHECK(ts_chunk_store_stats(s, &st, &err) == 0);
    TC_CHECK_EQ_U64(st.quarantined, 1);
    TC_CHECK_EQ_U64(st.chunks, 1);
    ts_chunk_store_close(s);
    /* After a restart the quarantined file stays out of the index. */
    TC_CHECK(ts_chunk_store_open(d, 1, &s, &err) == 0);
    TC_CHECK(!ts_chunk_store_contains(s, &id1, NULL));
    TC_CHECK(ts_chunk_store_contains(s, &id2, NULL));
    ts_chunk_store_close(s);
    remove_tree(dir);
}

static void test_scrubber_thread(void)
{
    char *dir = make_tmpdir();
    const char *d[] = { dir };
    ts_chunk_store *s;
    ts_scrubber *sc;
    ts_error err = { 0 };
    TC_CHECK(ts_chunk_store_open(d, 1, &s, &err) == 0);
    for (uint32_t i = 10; i < 20; i++)
        TC_CHECK(put_chunk(s, i, 100000 + i * 1000) == 0);
    flip_byte(dir, 13, 5);
    ts_throttle *bg = ts_throttle_new(64u << 20, 0);
    ts_scrubber_opts o = { .store = s, .background = bg, .bytes_per_sec = 64u << 20,
                           .pass_interval_ms = 50, .dir_check_interval_ms = 50 };
    TC_CHECK(ts_scrubber_start(&o, &sc, &err) == 0);
    ts_scrub_stats st = { 0 };
    for (int i = 0; i < 200 && st.passes < 2; i++) {
        ts_sleep_ms(20);
        ts_scrubber_stats(sc, &st);
    }
    TC_CHECK(st.passes >= 2);
    TC_CHECK_EQ_U64(st.corrupt, 1);
    TC_CHECK(st.chunks >= 9 + 9);
    ts_chunk_id bad = make_id(13);
    TC_CHECK(!ts_chunk_store_contains(s, &bad, NULL));
    TC_CHECK(in_quarantine(dir, 13));
    /* Stops promptly even with a slow rate and a long interval. */
    ts_scrubber_stop(sc);
    ts_scrubber_opts slow = { .store = s, .bytes_per_sec = 1000, .pass_interval_ms = 3600000 };
    TC_CHECK(ts_scrubber_start(&slow, &sc, &err) == 0);
    ts_sleep_ms(50);
    int64_t t0 = ts_mono_ms();
    ts_scrubber_stop(sc);
    TC_CHECK(ts_mono_ms() - t0 < 1000);
    ts_throttle_free(bg);
    ts_chunk_store_close(s);
    remove_tree(dir);
}

/* ---- failed data dirs ---- */

static void test_failed_dir(void)
{
    char *a = make_tmpdir(), *b = make_tmpdir();
    const char *d[] = { a, b };
    ts_chunk_store *s;
    ts_error err = { 0 };
    /* Three chunks in b (written while it was the only dir), five in a. */
    TC_CHECK(ts_chunk_store_open(d + 1, 1, &s, &err) == 0);
    for (uint32_t i = 0; i < 3; i++)
        TC_CHECK(put_chunk(s, 100 + i, 50000) == 0);
    ts_chunk_store_close(s);
    TC_CHECK(ts_chunk_store_open(d, 2, &s, &err) == 0);
    for (uint32_t i = 3; i < 8; i++)
        TC_CHECK(put_chunk(s, 100 + i, 50000) == 0);
    ts_chunk_id *ids;
    size_t n, in_b = 3;
    ts_chunk_store_take_removed(s, &ids, &n);
    free(ids);

    /* The disk under b dies: a read fails, the probe fails too. */
    ts_chunk_store_inject_dir_error(s, 1, EIO);
    ts_chunk_store_list(s, &ids, &n);
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        ts_chunk_info info;
        ts_error rerr = { 0 };
        if (ts_chunk_store_info(s, &ids[i], &info, &rerr) != 0) {
            TC_CHECK(rerr.code == TS_EIO || rerr.code == TS_ENOENT);
            if (rerr.code == TS_EIO)
                ts_chunk_store_read_failed(s, &ids[i], &rerr);
            failures++;
        }
    }
    free(ids);
    TC_CHECK(failures >= 1);
    TC_CHECK(ts_chunk_store_dir_in_service(s, 0));
    TC_CHECK(!ts_chunk_store_dir_in_service(s, 1));
    ts_chunk_store_list(s, &ids, &n);
    TC_CHECK_EQ_U64(n, 8 - in_b);
    free(ids);
    ts_chunk_store_take_removed(s, &ids, &n);
    TC_CHECK_EQ_U64(n, in_b);
    free(ids);
    ts_chunk_stats st;
    TC_CHECK(ts_chunk_store_stats(s, &st, &err) == 0);
    TC_CHECK_EQ_U64(st.failed_dirs, 1);
    /* New chunks go to a, and b stays out even once it answers again. */
    ts_chunk_store_inject_dir_error(s, 1, 0);
    TC_CHECK(put_chunk(s, 200, 1000) == 0);
    TC_CHECK(!ts_chunk_store_dir_in_service(s, 1));
    /* The periodic check takes a out when it dies too; then no dir is left. */
    ts_chunk_store_inject_dir_error(s, 0, EIO);
    TC_CHECK_EQ_U64(ts_chunk_store_check_dirs(s), 1);
    TC_CHECK_EQ_U64(ts_chunk_store_check_dirs(s), 0);
    ts_chunk_id id = make_id(201);
    ts_chunk_writer *w;
    TC_CHECK(ts_chunk_writer_begin(s, &id, 10, &w, &err) == TS_EIO);
    ts_chunk_store_close(s);
    remove_tree(a);
    remove_tree(b);
}

static void test_expected_sha(void)
{
    char *dir = make_tmpdir();
    const char *d[] = { dir };
    ts_chunk_store *s;
    ts_chunk_writer *w;
    ts_error err = { 0 };
    uint8_t data[1000], sha[TS_SHA256_LEN];
    fill(data, sizeof data, 5);
    ts_sha256_once(data, sizeof data, sha);
    TC_CHECK(ts_chunk_store_open(d, 1, &s, &err) == 0);
    ts_chunk_id id = make_id(5);
    sha[0] ^= 1;
    TC_CHECK(ts_chunk_writer_begin(s, &id, sizeof data, &w, &err) == 0);
    ts_chunk_writer_expect_sha256(w, sha);
    TC_CHECK(ts_chunk_writer_append(w, data, sizeof data, &err) == 0);
    TC_CHECK(ts_chunk_writer_commit(w, NULL, &err) == TS_ECORRUPT);
    TC_CHECK(!ts_chunk_store_contains(s, &id, NULL));
    sha[0] ^= 1;
    TC_CHECK(ts_chunk_writer_begin(s, &id, sizeof data, &w, &err) == 0);
    ts_chunk_writer_expect_sha256(w, sha);
    TC_CHECK(ts_chunk_writer_append(w, data, sizeof data, &err) == 0);
    TC_CHECK(ts_chunk_writer_commit(w, NULL, &err) == 0);
    ts_chunk_store_close(s);
    remove_tree(dir);
}

/* ---- copies between two servers ---- */

struct server {
    char *dir;
    ts_chunk_store *store;
    ts_chunk_copier *copier;
    ts_chunk_api *api;
    char addr[64];
};

static void server_start(struct server *sv, const char *id, unsigned max_in, unsigned max_out)
{
    ts_error err = { 0 };
    sv->dir = make_tmpdir();
    const char *d[] = { sv->dir };
    if (ts_chunk_store_open(d, 1, &sv->store, &err) != 0)
        ts_die("store: %s", err.msg);
    ts_chunk_copier_opts co = { .store = sv->store, .server_id = id, .max_copies_in = max_in,
                                .max_copies_out = max_out };
    sv->copier = ts_chunk_copier_new(&co);
    ts_chunk_api_opts o = { .store = sv->store, .server_id = id, .bind_addr = "127.0.0.1",
                            .copier = sv->copier };
    if (ts_chunk_api_start(&o, &sv->api, &err) != 0)
        ts_die("api: %s", err.msg);
    snprintf(sv->addr, sizeof sv->addr, "127.0.0.1:%d", ts_chunk_api_port(sv->api));
}

static void server_stop(struct server *sv)
{
    ts_chunk_api_stop(sv->api);
    ts_chunk_copier_free(sv->copier);
    ts_chunk_store_close(sv->store);
    remove_tree(sv->dir);
}

/* POSTs replicate of chunk `seed` to sv with body `from`; returns the
 * status and fills *j with the answer (caller decrefs). */
static long replicate(struct server *sv, uint32_t seed, const char *from, json_t **j)
{
    ts_chunk_id id = make_id(seed);
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_http_result res = { 0 };
    ts_error err = { 0 };
    ts_chunk_id_to_hex(&id, hex);
    char *url = ts_sprintf("http://%s/v1/chunk/%s/replicate", sv->addr, hex);
    long status = 0;
    if (ts_http_call("POST", url, "application/json", from, strlen(from), 30000, &res, &err) == 0)
        status = res.status;
    *j = res.body != NULL ? json_loads(res.body, 0, NULL) : NULL;
    ts_http_result_free(&res);
    free(url);
    return status;
}

static void test_replicate_and_delete(void)
{
    struct server a, b;
    json_t *j;
    server_start(&a, "cs-a", 2, 1);
    server_start(&b, "cs-b", 1, 2);
    TC_CHECK(put_chunk(a.store, 50, 3 * 1024 * 1024 + 17) == 0);

    /* A dead source first, then the real one. */
    char *from = ts_sprintf("{\"from\":[\"127.0.0.1:1\",\"%s\"]}", a.addr);
    TC_CHECK_EQ_U64(replicate(&b, 50, from, &j), 201);
    TC_CHECK(json_is_true(json_object_get(j, "copied")));
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(j, "length")), 3 * 1024 * 1024 + 17);
    json_decref(j);
    ts_chunk_id id = make_id(50);
    uint8_t *x = ts_malloc(3 * 1024 * 1024 + 17), *y = ts_malloc(3 * 1024 * 1024 + 17);
    ts_error err = { 0 };
    TC_CHECK(ts_chunk_store_read(a.store, &id, 0, 3 * 1024 * 1024 + 17, x, &err) == 0);
    TC_CHECK(ts_chunk_store_read(b.store, &id, 0, 3 * 1024 * 1024 + 17, y, &err) == 0);
    TC_CHECK(memcmp(x, y, 3 * 1024 * 1024 + 17) == 0);
    free(x);
    free(y);
    /* Again: already there. */
    TC_CHECK_EQ_U64(replicate(&b, 50, from, &j), 200);
    TC_CHECK(json_is_false(json_object_get(j, "copied")));
    json_decref(j);
    free(from);

    /* A chunk no source has: 502 naming the source. */
    from = ts_sprintf("{\"from\":[\"%s\"]}", a.addr);
    TC_CHECK_EQ_U64(replicate(&b, 51, from, &j), 502);
    TC_CHECK(j != NULL && strstr(json_string_value(json_object_get(j, "message")), a.addr) != NULL);
    json_decref(j);
    /* Bad requests. */
    TC_CHECK_EQ_U64(replicate(&b, 50, "{\"from\":[]}", &j), 400);
    json_decref(j);
    TC_CHECK_EQ_U64(replicate(&b, 50, "{\"from\":[\"nohostport\"]}", &j), 400);
    json_decref(j);
    TC_CHECK_EQ_U64(replicate(&b, 50, "not json", &j), 400);
    json_decref(j);

    /* Busy: a's one outgoing slot is taken, so b's pull is refused. */
    TC_CHECK(put_chunk(a.store, 52, 1000) == 0);
    TC_CHECK(ts_chunk_copier_begin_out(a.copier, "test", &err) == 0);
    TC_CHECK_EQ_U64(replicate(&b, 52, from, &j), 503);
    TC_CHECK(j != NULL && strcmp(json_string_value(json_object_get(j, "error")), "EBUSY") == 0);
    json_decref(j);
    ts_chunk_copier_end_out(a.copier);
    TC_CHECK_EQ_U64(replicate(&b, 52, from, &j), 201);
    json_decref(j);
    ts_copy_stats cs;
    ts_chunk_copier_stats(a.copier, &cs);
    TC_CHECK_EQ_U64(cs.in_flight_out, 0);
    TC_CHECK(cs.busy_refusals >= 1);
    ts_chunk_copier_stats(b.copier, &cs);
    TC_CHECK_EQ_U64(cs.copies_in, 2);
    TC_CHECK_EQ_U64(cs.in_flight_in, 0);
    free(from);

    /* DELETE, then 404, and the removal is reported. */
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_chunk_id_to_hex(&id, hex);
    char *url = ts_sprintf("http://%s/v1/chunk/%s", b.addr, hex);
    ts_http_result res = { 0 };
    ts_chunk_id *ids;
    size_t n;
    ts_chunk_store_take_removed(b.store, &ids, &n);
    free(ids);
    TC_CHECK(ts_http_call("DELETE", url, NULL, NULL, 0, 5000, &res, &err) == 0 && res.status == 200);
    ts_http_result_free(&res);
    TC_CHECK(ts_http_call("DELETE", url, NULL, NULL, 0, 5000, &res, &err) == 0 && res.status == 404);
    ts_http_result_free(&res);
    free(url);
    TC_CHECK(!ts_chunk_store_contains(b.store, &id, NULL));
    ts_chunk_store_take_removed(b.store, &ids, &n);
    TC_CHECK(n == 1 && ts_chunk_id_eq(&ids[0], &id));
    free(ids);

    /* A corrupt source: the copy is refused, the source quarantines it. */
    flip_byte(a.dir, 50, 1000);
    from = ts_sprintf("{\"from\":[\"%s\"]}", a.addr);
    TC_CHECK_EQ_U64(replicate(&b, 50, from, &j), 502);
    json_decref(j);
    free(from);
    TC_CHECK(!ts_chunk_store_contains(b.store, &id, NULL));
    TC_CHECK(!ts_chunk_store_contains(a.store, &id, NULL));
    TC_CHECK(in_quarantine(a.dir, 50));
    server_stop(&a);
    server_stop(&b);
}

int main(void)
{
    ts_log_init("test_chunk_ops", TS_LOG_WARN);
    ts_http_client_global_init();
    TC_RUN(test_throttle);
    TC_RUN(test_scrub_chunk_quarantines);
    TC_RUN(test_scrubber_thread);
    TC_RUN(test_failed_dir);
    TC_RUN(test_expected_sha);
    TC_RUN(test_replicate_and_delete);
    TC_DONE("test_chunk_ops");
}
