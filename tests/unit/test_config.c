/*
 * Unit tests for common/config: file syntax (comments, blanks, trimming),
 * overrides winning, unknown-key detection, typed getters and their errors,
 * and "path:line:" in load errors.
 */
#include <unistd.h>

#include "common/config.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

static char *write_tmp(const char *text)
{
    char tmpl[] = "/tmp/ts-config-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return NULL;
    if (ts_write_full(fd, text, strlen(text)) != 0) {
        close(fd);
        return NULL;
    }
    close(fd);
    return ts_strdup(tmpl);
}

static void test_load_and_get(void)
{
    ts_error err;
    ts_config *c = ts_config_new();
    char *path = write_tmp(
        "# Tessera chunkserver\n"
        "\n"
        "   listen   =   127.0.0.1:7401   \n"
        "data_dir=/var/lib/tessera\n"
        "  # indented comment\n"
        "chunk_size = 64MiB\n"
        "weight = 2.5\n"
        "verify = yes\n"
        "replicas = 3\n"
        "secret = a#b=c\n"
        "empty =\n"
        "replicas = 5");    /* a later line wins; no final newline */
    TC_CHECK(path != NULL);
    if (path == NULL)
        return;
    TC_CHECK(ts_config_load(c, path, &err) == 0);
    TC_CHECK_STR(ts_config_str(c, "listen", NULL), "127.0.0.1:7401");
    TC_CHECK_STR(ts_config_str(c, "data_dir", NULL), "/var/lib/tessera");
    TC_CHECK_STR(ts_config_str(c, "secret", NULL), "a#b=c");
    TC_CHECK_STR(ts_config_str(c, "empty", "def"), "");
    TC_CHECK_STR(ts_config_str(c, "absent", "def"), "def");
    TC_CHECK(ts_config_str(c, "absent", NULL) == NULL);

    uint64_t sz = 0;
    TC_CHECK(ts_config_size(c, "chunk_size", 1, &sz, &err) == 0);
    TC_CHECK_EQ_U64(sz, 64ULL << 20);
    TC_CHECK(ts_config_size(c, "block", 4096, &sz, &err) == 0);
    TC_CHECK_EQ_U64(sz, 4096);
    double w = 0;
    TC_CHECK(ts_config_double(c, "weight", 1.0, &w, &err) == 0);
    TC_CHECK(w == 2.5);
    int b = 0;
    TC_CHECK(ts_config_bool(c, "verify", 0, &b, &err) == 0);
    TC_CHECK(b == 1);
    TC_CHECK(ts_config_bool(c, "absent", 1, &b, &err) == 0);
    TC_CHECK(b == 1);
    int64_t n = 0;
    TC_CHECK(ts_config_int(c, "replicas", 1, &n, &err) == 0);
    TC_CHECK(n == 5);

    /* Overrides replace file values. */
    TC_CHECK(ts_config_set_kv(c, "replicas=7", &err) == 0);
    TC_CHECK(ts_config_set_kv(c, " weight = 0.5 ", &err) == 0);
    TC_CHECK(ts_config_int(c, "replicas", 1, &n, &err) == 0);
    TC_CHECK(n == 7);
    TC_CHECK(ts_config_double(c, "weight", 1.0, &w, &err) == 0);
    TC_CHECK(w == 0.5);
    ts_config_set(c, "new_key", "v");
    TC_CHECK_STR(ts_config_str(c, "new_key", NULL), "v");

    static const char *const known[] = {
        "listen", "data_dir", "chunk_size", "weight", "verify", "replicas", "secret",
        "empty", "new_key", NULL,
    };
    TC_CHECK(ts_config_check(c, known, &err) == 0);
    ts_config_set(c, "chunk_szie", "1M");
    TC_CHECK(ts_config_check(c, known, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "chunk_szie") != NULL);

    unlink(path);
    free(path);
    ts_config_free(c);
}

static void test_typed_errors(void)
{
    ts_error err;
    ts_config *c = ts_config_new();
    int64_t n = 42;
    uint64_t sz = 42;
    double d = 42;
    int b = 42;

    ts_config_set(c, "i", "12abc");
    ts_config_set(c, "big", "99999999999999999999");
    ts_config_set(c, "sz", "12Q");
    ts_config_set(c, "d", "fast");
    ts_config_set(c, "inf", "inf");
    ts_config_set(c, "b", "maybe");
    ts_config_set(c, "neg", "-17");
    ts_config_set(c, "off", "OFF");

    TC_CHECK(ts_config_int(c, "i", 0, &n, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "'i'") != NULL);
    TC_CHECK(ts_config_int(c, "big", 0, &n, &err) == TS_EINVAL);
    TC_CHECK(n == 42);
    TC_CHECK(ts_config_size(c, "sz", 0, &sz, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "'sz'") != NULL);
    TC_CHECK(sz == 42);
    TC_CHECK(ts_config_double(c, "d", 0, &d, &err) == TS_EINVAL);
    TC_CHECK(ts_config_double(c, "inf", 0, &d, &err) == TS_EINVAL);
    TC_CHECK(d == 42);
    TC_CHECK(ts_config_bool(c, "b", 0, &b, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "maybe") != NULL);
    TC_CHECK(b == 42);
    TC_CHECK(ts_config_int(c, "neg", 0, &n, &err) == 0);
    TC_CHECK(n == -17);
    TC_CHECK(ts_config_bool(c, "off", 1, &b, &err) == 0);
    TC_CHECK(b == 0);
    ts_config_free(c);
}

static void test_load_errors(void)
{
    ts_error err;
    ts_config *c = ts_config_new();

    TC_CHECK(ts_config_load(c, "/nonexistent/tessera.conf", &err) == TS_ENOENT);
    TC_CHECK(strstr(err.msg, "/nonexistent/tessera.conf") != NULL);

    char *path = write_tmp("a = 1\n# fine\nthis line is wrong\n");
    TC_CHECK(path != NULL);
    if (path != NULL) {
        TC_CHECK(ts_config_load(c, path, &err) == TS_EINVAL);
        char *want = ts_sprintf("%s:3:", path);
        TC_CHECK(strncmp(err.msg, want, strlen(want)) == 0);
        free(want);
        unlink(path);
        free(path);
    }
    path = write_tmp("= value\n");
    if (path != NULL) {
        TC_CHECK(ts_config_load(c, path, &err) == TS_EINVAL);
        TC_CHECK(strstr(err.msg, ":1:") != NULL);
        unlink(path);
        free(path);
    }
    path = write_tmp("two words = x\n");
    if (path != NULL) {
        TC_CHECK(ts_config_load(c, path, &err) == TS_EINVAL);
        unlink(path);
        free(path);
    }
    TC_CHECK(ts_config_set_kv(c, "novalue", &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "novalue") != NULL);
    TC_CHECK(ts_config_set_kv(c, "=x", &err) == TS_EINVAL);
    ts_config_free(c);
}

int main(void)
{
    TC_RUN(test_load_and_get);
    TC_RUN(test_typed_errors);
    TC_RUN(test_load_errors);
    TC_DONE("test_config");
}
