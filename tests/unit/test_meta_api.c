/*
 * Unit tests of the metadata HTTP API (metadata/meta_api.h) without sockets:
 * requests go straight into meta_api_handle.  Covers the namespace calls,
 * commit + layout with replicas, heartbeats (registration, full reports,
 * report_needed), cluster status, metrics, and that malformed JSON, missing
 * fields and wrong types are answered 400 EINVAL naming the field -- for
 * every endpoint, never a crash.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/log.h"
#include "common/util.h"
#include "metadata/meta_api.h"
#include "tests/unit/tcheck.h"

static meta_api *api;

struct reply {
    int status;
    json_t *json;     /* NULL when the body is not JSON */
    char *text;
};

static struct reply call(const char *method, const char *path, const char *body)
{
    ts_http_request req = { .method = method, .path = path, .body = body,
                            .body_len = body ? strlen(body) : 0,
                            .content_length = body ? strlen(body) : 0 };
    ts_http_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.fd = -1;
    meta_api_handle(api, &req, &resp);
    struct reply r = { .status = resp.status ? resp.status : 500 };
    r.text = ts_strndup(resp.body ? resp.body : "", resp.body_len);
    r.json = json_loads(r.text, 0, NULL);
    free(resp.body);
    free(resp.extra_headers);
    return r;
}

static void reply_free(struct reply *r)
{
    json_decref(r->json);
    free(r->text);
}

static json_int_t jint(const json_t *o, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_integer_value(v);
}

static const char *err_name(const struct reply *r)
{
    return json_string_value(json_object_get(r->json, "error"));
}

static void test_namespace_calls(void)
{
    struct reply r = call("POST", "/v1/ns/mkdir",
                          "{\"parent\":1,\"name\":\"d\",\"mode\":493,\"uid\":5,\"gid\":6}");
    TC_CHECK(r.status == 200 && jint(r.json, "attr", "ino") == 2);
    TC_CHECK(jint(r.json, "attr", "mode") == (S_IFDIR | 0755));
    reply_free(&r);
    r = call("POST", "/v1/ns/create", "{\"parent\":2,\"name\":\"f\",\"mode\":420,\"uid\":5,"
                                      "\"gid\":6,\"exclusive\":true}");
    TC_CHECK(r.status == 200 && json_is_true(json_object_get(r.json, "created")));
    reply_free(&r);
    r = call("POST", "/v1/ns/create", "{\"parent\":2,\"name\":\"f\",\"mode\":420,\"uid\":5,"
                                      "\"gid\":6,\"exclusive\":true}");
    TC_CHECK(r.status == 409);
    TC_CHECK_STR(err_name(&r), "EEXIST");
    reply_free(&r);
    r = call("POST", "/v1/ns/resolve", "{\"path\":\"/d/f\"}");
    TC_CHECK(r.status == 200 && jint(r.json, "attr", "ino") == 3);
    reply_free(&r);
    r = call("POST", "/v1/ns/lookup", "{\"parent\":2,\"name\":\"nope\"}");
    TC_CHECK(r.status == 404);
    TC_CHECK_STR(err_name(&r), "ENOENT");
    reply_free(&r);
    r = call("POST", "/v1/ns/symlink", "{\"parent\":2,\"name\":\"l\",\"target\":\"f\",\"uid\":0,"
                                       "\"gid\":0}");
    TC_CHECK(r.status == 200);
    TC_CHECK(jint(r.json, "parent", "ino") == 2);
    json_int_t l = jint(r.json, "attr", "ino");
    reply_free(&r);
    char body[200];
    snprintf(body, sizeof(body), "{\"ino\":%lld}", (long long)l);
    r = call("POST", "/v1/ns/readlink", body);
    TC_CHECK(r.status == 200);
    TC_CHECK_STR(json_string_value(json_object_get(r.json, "target")), "f");
    reply_free(&r);
    r = call("POST", "/v1/ns/link", "{\"ino\":3,\"new_parent\":1,\"new_name\":\"h\"}");
    TC_CHECK(r.status == 200 && jint(r.json, "attr", "nlink") == 2);
    reply_free(&r);
    r = call("POST", "/v1/ns/setattr", "{\"ino\":3,\"mode\":384,\"size\":10}");
    TC_CHECK(r.status == 200 && jint(r.json, "attr", "size") == 10);
    TC_CHECK(jint(r.json, "attr", "mode") == (S_IFREG | 0600));
    reply_free(&r);
    r = call("POST", "/v1/ns/readdir", "{\"ino\":2,\"after\":null,\"limit\":1}");
    TC_CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "entries")) == 1);
    TC_CHECK(json_is_true(json_object_get(r.json, "more")));
    reply_free(&r);
    r = call("POST", "/v1/ns/rename", "{\"parent\":2,\"name\":\"f\",\"new_parent\":1,"
                                      "\"new_name\":\"h\",\"flags\":1}");
    TC_CHECK(r.status == 409);
    reply_free(&r);
    r = call("POST", "/v1/ns/rename", "{\"parent\":2,\"name\":\"l\",\"new_parent\":1,"
                                      "\"new_name\":\"l2\",\"flags\":0}");
    TC_CHECK(r.status == 200 && strcmp(r.text, "{}") == 0);
    reply_free(&r);
    r = call("POST", "/v1/ns/getattr", "{\"ino\":1}");
    json_int_t root_version = jint(r.json, "attr", "version");
    reply_free(&r);
    r = call("POST", "/v1/ns/unlink", "{\"parent\":1,\"name\":\"l2\"}");
    TC_CHECK(r.status == 200);
    /* The changed directory as the change left it. */
    TC_CHECK(jint(r.json, "parent", "ino") == 1);
    TC_CHECK(jint(r.json, "parent", "version") == root_version + 1);
    reply_free(&r);
    r = call("POST", "/v1/ns/rmdir", "{\"parent\":1,\"name\":\"d\"}");
    TC_CHECK(r.status == 409);
    TC_CHECK_STR(err_name(&r), "ENOTEMPTY");
    reply_free(&r);
    r = call("POST", "/v1/ns/getattr", "{\"ino\":1}");
    TC_CHECK(r.status == 200 && jint(r.json, "attr", "nlink") == 3);
    reply_free(&r);
}

#define CHUNK_A "0123456789abcdef0123456789abcdef"
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void test_commit_layout_cluster(void)
{
    struct reply r = call("POST", "/v1/chunkserver/heartbeat",
                          "{\"id\":\"cs-1\",\"address\":\"127.0.0.1:7401\",\"zone\":\"z\","
                          "\"weight\":1,\"capacity\":100,\"used\":1,\"chunk_count\":0}");
    TC_CHECK(r.status == 200 && json_is_true(json_object_get(r.json, "report_needed")));
    reply_free(&r);
    r = call("POST", "/v1/file/commit",
             "{\"ino\":3,\"offset\":0,\"length\":50,\"extents\":[{\"file_offset\":0,"
             "\"length\":50,\"chunk\":\"" CHUNK_A "\",\"chunk_offset\":0}],\"chunks\":[{\"id\":\""
             CHUNK_A "\",\"length\":64,\"sha256\":\"" SHA_A "\",\"replicas\":[\"cs-2\",\"cs-1\"]}]}");
    TC_CHECK(r.status == 200 && jint(r.json, "attr", "size") == 50);
    reply_free(&r);
    r = call("POST", "/v1/file/layout", "{\"ino\":3}");
    TC_CHECK(r.status == 200);
    const json_t *x = json_array_get(json_object_get(r.json, "extents"), 0);
    TC_CHECK(json_integer_value(json_object_get(x, "chunk_length")) == 64);
    const json_t *reps = json_object_get(x, "replicas");
    TC_CHECK(json_array_size(reps) == 2);
    /* cs-1 heartbeated (up), cs-2 never did: up servers first */
    TC_CHECK_STR(json_string_value(json_array_get(reps, 0)), "cs-1");
    reply_free(&r);
    r = call("POST", "/v1/chunkserver/heartbeat",
             "{\"id\":\"cs-1\",\"address\":\"127.0.0.1:7401\",\"zone\":\"z\",\"weight\":1,"
             "\"capacity\":100,\"used\":1,\"chunk_count\":1,\"full_report\":[]}");
    TC_CHECK(r.status == 200 && json_is_false(json_object_get(r.json, "report_needed")));
    reply_free(&r);
    r = call("GET", "/v1/cluster/status", NULL);
    TC_CHECK(r.status == 200 && jint(r.json, "chunks", NULL) == 1);
    TC_CHECK(jint(r.json, "under_replicated", NULL) == 1);
    TC_CHECK(jint(r.json, "files", NULL) == 1 && jint(r.json, "directories", NULL) == 2);
    const json_t *s0 = json_array_get(json_object_get(r.json, "servers"), 0);
    TC_CHECK_STR(json_string_value(json_object_get(s0, "state")), "up");
    TC_CHECK(json_integer_value(json_object_get(s0, "capacity")) == 100);
    reply_free(&r);
    /* a changed address re-registers */
    r = call("POST", "/v1/chunkserver/heartbeat",
             "{\"id\":\"cs-1\",\"address\":\"127.0.0.1:9999\",\"weight\":2.5,"
             "\"capacity\":100,\"used\":1,\"chunk_count\":1}");
    TC_CHECK(r.status == 200);
    reply_free(&r);
    r = call("GET", "/v1/cluster/servers", NULL);
    s0 = json_array_get(json_object_get(r.json, "servers"), 0);
    TC_CHECK_STR(json_string_value(json_object_get(s0, "address")), "127.0.0.1:9999");
    TC_CHECK(json_real_value(json_object_get(s0, "weight")) == 2.5);
    reply_free(&r);
    r = call("GET", "/metrics", NULL);
    TC_CHECK(r.status == 200 && strstr(r.text, "tessera_meta_files 1\n") &&
             strstr(r.text, "tessera_meta_wal_records_total") &&
             strstr(r.text, "process_resident_memory_bytes"));
    reply_free(&r);
    r = call("GET", "/health", NULL);
    TC_CHECK(r.status == 200 && json_is_true(json_object_get(r.json, "ok")));
    reply_free(&r);
}

static void test_malformed(void)
{
    static const char *const posts[] = {
        "/v1/ns/resolve", "/v1/ns/lookup", "/v1/ns/getattr", "/v1/ns/setattr", "/v1/ns/mkdir",
        "/v1/ns/create", "/v1/ns/unlink", "/v1/ns/rmdir", "/v1/ns/rename", "/v1/ns/readdir",
        "/v1/ns/symlink", "/v1/ns/readlink", "/v1/ns/link", "/v1/file/layout",
        "/v1/file/commit", "/v1/chunkserver/heartbeat",
    };
    static const char *const bodies[] = {
        NULL, "", "{", "[]", "42", "{}", "{\"parent\":\"x\"}", "{\"ino\":-1}",
        "{\"ino\":1.5}", "{\"ino\":null}", "{\"ino\":1,\"after\":7,\"limit\":\"z\"}",
        "{\"ino\":3,\"offset\":0,\"length\":1,\"extents\":{}}",
        "{\"ino\":3,\"offset\":0,\"length\":1,\"extents\":[{\"file_offset\":0}]}",
        "{\"ino\":3,\"offset\":0,\"length\":1,\"extents\":[],\"chunks\":[{\"id\":\"zz\"}]}",
        "{\"id\":\"cs-9\",\"address\":\"a:1\",\"capacity\":1,\"used\":1,\"chunk_count\":1,"
        "\"full_report\":[\"nothex\"]}",
        "{\"id\":\"cs-9\",\"address\":\"a:1\",\"capacity\":1,\"used\":1,\"chunk_count\":1,"
        "\"weight\":-1}",
        "{\"parent\":1,\"name\":\"x\",\"mode\":493,\"uid\":5,\"gid\":99999999999}",
        "{\"parent\":1,\"name\":\"x\",\"mode\":493,\"uid\":5,\"gid\":1,\"exclusive\":1}",
        "{\"parent\":1,\"name\":\"x\",\"new_parent\":1,\"new_name\":\"y\",\"flags\":9}",
    };
    int not_400 = 0;
    for (size_t p = 0; p < TS_ARRAY_LEN(posts); p++)
        for (size_t b = 0; b < TS_ARRAY_LEN(bodies); b++) {
            struct reply r = call("POST", posts[p], bodies[b]);
            /* Some bodies are valid for some endpoints (e.g. {"ino":1} is a
             * fine getattr); everything else must be a clean 4xx. */
            if (r.status >= 500 || r.status < 200 || !r.json)
                not_400++;
            if (r.status == 400) {
                TC_CHECK_STR(err_name(&r), "EINVAL");
                const char *m = json_string_value(json_object_get(r.json, "message"));
                TC_CHECK(m && *m);
            }
            reply_free(&r);
        }
    TC_CHECK(not_400 == 0);
    struct reply r = call("POST", "/v1/ns/mkdir", "{\"parent\":1,\"name\":\"x\",\"uid\":0,"
                                                  "\"gid\":0}");
    TC_CHECK(r.status == 400 && strstr(r.text, "mode"));    /* names the field */
    reply_free(&r);
    r = call("POST", "/v1/file/commit", "{\"ino\":3,\"offset\":0,\"length\":1,\"extents\":"
                                        "[{\"file_offset\":0,\"length\":1,\"chunk_offset\":0}]}");
    TC_CHECK(r.status == 400 && strstr(r.text, "extents[0]") && strstr(r.text, "chunk"));
    reply_free(&r);
    r = call("GET", "/v1/ns/getattr", NULL);
    TC_CHECK(r.status == 400);
    reply_free(&r);
    r = call("GET", "/v1/nothing", NULL);
    TC_CHECK(r.status == 404);
    reply_free(&r);
}

static void test_xattr_calls(void)
{
    struct reply r = call("POST", "/v1/ns/create", "{\"parent\":1,\"name\":\"xf\",\"mode\":420,"
                                                   "\"uid\":0,\"gid\":0}");
    TC_CHECK(r.status == 200);
    char body[256];
    json_int_t ino = jint(r.json, "attr", "ino");
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"ino\":%lld,\"name\":\"user.k\",\"value\":\"00ff41\"}",
             (long long)ino);
    r = call("POST", "/v1/ns/setxattr", body);
    TC_CHECK(r.status == 200);
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"ino\":%lld,\"name\":\"user.k\",\"value\":\"00\",\"flags\":1}",
             (long long)ino);
    r = call("POST", "/v1/ns/setxattr", body);
    TC_CHECK(r.status == 409);
    TC_CHECK_STR(err_name(&r), "EEXIST");
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"ino\":%lld,\"name\":\"user.k\",\"value\":\"0\"}",
             (long long)ino);
    r = call("POST", "/v1/ns/setxattr", body);
    TC_CHECK(r.status == 400);
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"ino\":%lld,\"name\":\"user.k\"}", (long long)ino);
    r = call("POST", "/v1/ns/getxattr", body);
    TC_CHECK(r.status == 200);
    TC_CHECK_STR(json_string_value(json_object_get(r.json, "value")), "00ff41");
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"ino\":%lld}", (long long)ino);
    r = call("POST", "/v1/ns/listxattr", body);
    TC_CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "names")) == 1);
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"ino\":%lld,\"name\":\"user.k\"}", (long long)ino);
    r = call("POST", "/v1/ns/removexattr", body);
    TC_CHECK(r.status == 200);
    reply_free(&r);
    r = call("POST", "/v1/ns/getxattr", body);
    TC_CHECK_STR(err_name(&r), "ENODATA");
    reply_free(&r);
    r = call("POST", "/v1/ns/getxattr", "{\"ino\":99999,\"name\":\"user.k\"}");
    TC_CHECK(r.status == 404);
    reply_free(&r);
    r = call("POST", "/v1/ns/listxattr", "{}");
    TC_CHECK(r.status == 400);
    reply_free(&r);
    r = call("POST", "/v1/ns/unlink", "{\"parent\":1,\"name\":\"xf\"}");
    TC_CHECK(r.status == 200);
    reply_free(&r);
}

int main(void)
{
    ts_log_init("test_meta_api", TS_LOG_ERROR);
    char *dir = ts_sprintf("/tmp/tessera-test-api-%d", (int)getpid());
    store_opts o = { .data_dir = dir, .wal_fsync = 0 };
    store *st = NULL;
    ts_error e = {0};
    if (store_open(&o, &st, &e) != 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return 1;
    }
    cluster *cl = cluster_new(30000);
    api = meta_api_new(st, cl);
    TC_RUN(test_namespace_calls);
    TC_RUN(test_commit_layout_cluster);
    TC_RUN(test_malformed);
    TC_RUN(test_xattr_calls);
    meta_api_free(api);
    cluster_free(cl);
    store_close(st);
    char *rm = ts_sprintf("rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "cleanup of %s failed\n", dir);
    free(rm);
    free(dir);
    TC_DONE("test_meta_api");
}
