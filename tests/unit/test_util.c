/*
 * Unit tests for common/util, common/chunk_id and common/ts_error: size and
 * host:port parsing, hex, strict chunk-id parsing (the guard that keeps
 * "../" out of chunk file names), files and directories, ts_buf, error
 * names and boundary mappings.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/chunk_id.h"
#include "common/log.h"
#include "common/ts_error.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

static void test_parse_size(void)
{
    static const struct { const char *s; uint64_t v; } ok[] = {
        { "0", 0 }, { "4096", 4096 }, { "10k", 10240 }, { "10K", 10240 },
        { "64M", 64ULL << 20 }, { "16MiB", 16ULL << 20 }, { "1G", 1ULL << 30 },
        { "2GB", 2ULL << 30 }, { "1T", 1ULL << 40 }, { "3 MiB", 3ULL << 20 },
        { " 7 ", 7 }, { "100B", 100 }, { "1kb", 1024 },
        { "18446744073709551615", UINT64_MAX },
    };
    static const char *const bad[] = {
        "", "M", "-1", "1.5G", "12X", "1 G B", "0x10", "1Gi B",
        "18446744073709551616", "16777216T", "1MiBs",
    };
    ts_error err;

    for (size_t i = 0; i < TS_ARRAY_LEN(ok); i++) {
        uint64_t v = 12345;
        int rc = ts_parse_size(ok[i].s, &v, &err);
        if (rc != 0 || v != ok[i].v)
            fprintf(stderr, "  parse_size('%s') rc=%d v=%llu\n", ok[i].s, rc,
                    (unsigned long long)v);
        TC_CHECK(rc == 0 && v == ok[i].v);
    }
    for (size_t i = 0; i < TS_ARRAY_LEN(bad); i++) {
        uint64_t v = 12345;
        ts_error_clear(&err);
        int rc = ts_parse_size(bad[i], &v, &err);
        if (rc != TS_EINVAL)
            fprintf(stderr, "  parse_size('%s') accepted as %llu\n", bad[i], (unsigned long long)v);
        TC_CHECK(rc == TS_EINVAL && err.code == TS_EINVAL);
        TC_CHECK(v == 12345);
        TC_CHECK(strstr(err.msg, bad[i]) != NULL);
    }
}

static void test_format_size(void)
{
    char buf[32];
    TC_CHECK_STR(ts_format_size(0, buf, sizeof(buf)), "0 B");
    TC_CHECK_STR(ts_format_size(1023, buf, sizeof(buf)), "1023 B");
    TC_CHECK_STR(ts_format_size(1024, buf, sizeof(buf)), "1.0 KiB");
    TC_CHECK_STR(ts_format_size(1536ULL << 20, buf, sizeof(buf)), "1.5 GiB");
}

static void test_parse_hostport(void)
{
    ts_error err;
    char *host = NULL;
    int port = -1;

    TC_CHECK(ts_parse_hostport("127.0.0.1:7401", &host, &port, &err) == 0);
    TC_CHECK_STR(host, "127.0.0.1");
    TC_CHECK(port == 7401);
    free(host);
    TC_CHECK(ts_parse_hostport("node-3.example:0", &host, &port, &err) == 0);
    TC_CHECK_STR(host, "node-3.example");
    TC_CHECK(port == 0);
    free(host);
    TC_CHECK(ts_parse_hostport("[::1]:65535", &host, &port, &err) == 0);
    TC_CHECK_STR(host, "::1");
    TC_CHECK(port == 65535);
    free(host);

    static const char *const bad[] = {
        "", "host", "host:", ":80", "host:65536", "host:8o", "::1:80", "[::1]80",
        "[::1", "host:-1", "[]:80",
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(bad); i++) {
        host = NULL;
        int rc = ts_parse_hostport(bad[i], &host, &port, &err);
        if (rc != TS_EINVAL)
            fprintf(stderr, "  parse_hostport('%s') accepted\n", bad[i]);
        TC_CHECK(rc == TS_EINVAL);
        TC_CHECK(host == NULL);
    }
}

static void test_hex(void)
{
    uint8_t in[4] = { 0x00, 0xab, 0x7f, 0xff }, out[4];
    char hex[9];

    ts_hex_encode(in, 4, hex);
    TC_CHECK_STR(hex, "00ab7fff");
    TC_CHECK(ts_hex_decode("00AB7fFf", out, 4) == 0);
    TC_CHECK(memcmp(in, out, 4) == 0);
    memset(out, 0x55, sizeof(out));
    TC_CHECK(ts_hex_decode("00ab7ff", out, 4) == TS_EINVAL);      /* short */
    TC_CHECK(ts_hex_decode("00ab7fff0", out, 4) == TS_EINVAL);    /* long */
    TC_CHECK(ts_hex_decode("00ab7fgf", out, 4) == TS_EINVAL);     /* not hex */
    TC_CHECK(out[0] == 0x55);                                      /* untouched */
    TC_CHECK(ts_hex_decode("", out, 0) == 0);
}

static void test_chunk_id(void)
{
    ts_chunk_id a, b;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];

    ts_chunk_id_random(&a);
    ts_chunk_id_to_hex(&a, hex);
    TC_CHECK_EQ_U64(strlen(hex), 32);
    TC_CHECK(ts_chunk_id_from_hex(hex, &b) == 0);
    TC_CHECK(ts_chunk_id_eq(&a, &b));
    ts_chunk_id_random(&b);
    TC_CHECK(!ts_chunk_id_eq(&a, &b));

    TC_CHECK(ts_chunk_id_from_hex("000102030405060708090A0B0C0D0E0F", &b) == 0);
    TC_CHECK_EQ_U64(ts_chunk_id_hi(&b), 0x0001020304050607ULL);
    TC_CHECK_EQ_U64(ts_chunk_id_lo(&b), 0x08090a0b0c0d0e0fULL);
    ts_chunk_id_to_hex(&b, hex);
    TC_CHECK_STR(hex, "000102030405060708090a0b0c0d0e0f");

    static const char *const bad[] = {
        "", "0001020304050607", "000102030405060708090a0b0c0d0e0",
        "000102030405060708090a0b0c0d0e0f0", "../../../../etc/passwd0000000000",
        "000102030405060708090a0b0c0d0e/f", "000102030405060708090a0b0c0d0e0g",
        " 00102030405060708090a0b0c0d0e0f", "000102030405060708090a0b0c0d0e0f\n",
        "..", "../0102030405060708090a0b0c0d0e0f",
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(bad); i++) {
        memset(&b, 0x5a, sizeof(b));
        TC_CHECK(ts_chunk_id_from_hex(bad[i], &b) == TS_EINVAL);
        TC_CHECK(b.b[0] == 0x5a);
    }
    TC_CHECK(ts_chunk_id_from_hex(NULL, &b) == TS_EINVAL);
}

static void test_errors(void)
{
    ts_error e;

    ts_error_clear(&e);
    TC_CHECK(e.code == 0 && e.msg[0] == '\0');
    TC_CHECK(ts_fail(&e, TS_ENOENT, "lookup %d/'%s'", 12, "x") == TS_ENOENT);
    TC_CHECK_STR(e.msg, "lookup 12/'x'");
    TC_CHECK(ts_error_prefix(&e, "mkdir %s", "/a") == TS_ENOENT);
    TC_CHECK_STR(e.msg, "mkdir /a: lookup 12/'x'");
    TC_CHECK(ts_fail(NULL, TS_EIO, "nobody listens") == TS_EIO);

    /* Messages longer than the buffer are truncated, still terminated. */
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ts_fail(&e, TS_EINVAL, "%s", big);
    TC_CHECK_EQ_U64(strlen(e.msg), sizeof(e.msg) - 1);
    ts_error_prefix(&e, "ctx");
    TC_CHECK_EQ_U64(strlen(e.msg), sizeof(e.msg) - 1);
    TC_CHECK(strncmp(e.msg, "ctx: xxx", 8) == 0);

    for (int code = 0; code > TS_ERR_MIN_; code--) {
        const char *name = ts_err_name(code);
        TC_CHECK(strcmp(name, "EUNKNOWN") != 0);
        TC_CHECK(ts_err_from_name(name) == code);
    }
    TC_CHECK_STR(ts_err_name(-100), "EUNKNOWN");
    TC_CHECK_STR(ts_err_name(TS_ECORRUPT), "ECORRUPT");
    TC_CHECK(ts_err_from_name("EBOGUS") == TS_EPROTO);
    TC_CHECK(ts_err_from_name(NULL) == TS_EPROTO);

    TC_CHECK(ts_err_to_errno(TS_ENOENT) == ENOENT);
    TC_CHECK(ts_err_to_errno(TS_ECORRUPT) == EIO);
    TC_CHECK(ts_err_to_errno(TS_EUNAVAIL) == EIO);
    TC_CHECK(ts_err_to_errno(TS_ENAMETOOLONG) == ENAMETOOLONG);
    TC_CHECK(ts_err_to_errno(-100) == EIO);
    TC_CHECK(ts_err_from_errno(ENOENT) == TS_ENOENT);
    TC_CHECK(ts_err_from_errno(ENOSPC) == TS_ENOSPC);
    TC_CHECK(ts_err_from_errno(EOPNOTSUPP) == TS_ENOTSUP);
    TC_CHECK(ts_err_from_errno(EMFILE) == TS_EIO);

    static const struct { int code, status; } http[] = {
        { TS_EINVAL, 400 }, { TS_EACCES, 403 }, { TS_EPERM, 403 }, { TS_ENOENT, 404 },
        { TS_EEXIST, 409 }, { TS_ENOTEMPTY, 409 }, { TS_ENOTDIR, 409 }, { TS_EISDIR, 409 },
        { TS_EBUSY, 409 }, { TS_EFBIG, 413 }, { TS_ENAMETOOLONG, 414 }, { TS_ERANGE, 416 },
        { TS_ENOTLEADER, 421 }, { TS_ECORRUPT, 500 }, { TS_EIO, 500 }, { TS_EUNAVAIL, 502 },
        { TS_ETIMEDOUT, 504 }, { TS_ENOSPC, 507 }, { TS_ENOTSUP, 501 }, { -100, 500 },
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(http); i++)
        TC_CHECK(ts_err_http_status(http[i].code) == http[i].status);
}

static void test_buf(void)
{
    ts_buf b = {0};
    ts_buf_printf(&b, "%s-%d", "a", 1);
    TC_CHECK_EQ_U64(b.len, 3);
    TC_CHECK_STR(b.data, "a-1");
    char big[1000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ts_buf_printf(&b, "%s", big);
    TC_CHECK_EQ_U64(b.len, 3 + 999);
    TC_CHECK(b.data[b.len] == '\0');
    ts_buf_append(&b, "\0z", 2);
    TC_CHECK_EQ_U64(b.len, 1004);
    TC_CHECK(b.data[1003] == 'z');
    ts_buf_free(&b);
    TC_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
}

static void test_files(void)
{
    char tmpl[] = "/tmp/ts-util-XXXXXX";
    ts_error err;
    char *dir = mkdtemp(tmpl);
    TC_CHECK(dir != NULL);
    if (dir == NULL)
        return;

    char *deep = ts_sprintf("%s/a/b/c", dir);
    TC_CHECK(ts_mkdir_p(deep, &err) == 0);
    TC_CHECK(ts_mkdir_p(deep, &err) == 0);              /* idempotent */
    struct stat st;
    TC_CHECK(stat(deep, &st) == 0 && S_ISDIR(st.st_mode));
    TC_CHECK(ts_fsync_dir(deep, &err) == 0);

    char *file = ts_sprintf("%s/f.txt", deep);
    TC_CHECK(ts_write_file_atomic(file, "hello\n", 6, &err) == 0);
    TC_CHECK(ts_write_file_atomic(file, "bye\n", 4, &err) == 0);
    char *text = NULL;
    size_t len = 0;
    TC_CHECK(ts_read_file(file, &text, &len, &err) == 0);
    TC_CHECK(len == 4 && text != NULL && strcmp(text, "bye\n") == 0);
    free(text);
    TC_CHECK(ts_fsync_dir(file, &err) == 0);            /* a file: its directory */

    /* A path through a regular file cannot be created. */
    char *through = ts_sprintf("%s/sub", file);
    TC_CHECK(ts_mkdir_p(through, &err) == TS_EIO);
    TC_CHECK(strstr(err.msg, "sub") != NULL);

    char *missing = ts_sprintf("%s/nope", dir);
    TC_CHECK(ts_read_file(missing, &text, &len, &err) == TS_ENOENT);
    TC_CHECK(strstr(err.msg, "nope") != NULL);

    /* Full reads and writes through a pipe. */
    int fds[2];
    TC_CHECK(pipe(fds) == 0);
    TC_CHECK(ts_write_full(fds[1], "abcdef", 6) == 0);
    close(fds[1]);
    char rb[16];
    TC_CHECK(ts_read_full(fds[0], rb, sizeof(rb)) == 6);
    close(fds[0]);

    unlink(file);
    char *cmd = ts_sprintf("rm -rf '%s'", dir);
    TC_CHECK(system(cmd) == 0);
    free(cmd);
    free(missing);
    free(through);
    free(file);
    free(deep);
}

static void test_clocks(void)
{
    int64_t m0 = ts_mono_ms();
    ts_sleep_ms(20);
    int64_t m1 = ts_mono_ms();
    TC_CHECK(m1 - m0 >= 19);
    TC_CHECK(ts_now_ns() > 1600000000LL * 1000000000LL);
    char *s = ts_sprintf("%d-%s", 7, "x");
    TC_CHECK_STR(s, "7-x");
    free(s);
    s = ts_strndup("abcdef", 3);
    TC_CHECK_STR(s, "abc");
    free(s);
    TC_CHECK(ts_log_level_parse("warn") == TS_LOG_WARN);
    TC_CHECK(ts_log_level_parse("DEBUG") == TS_LOG_DEBUG);
    TC_CHECK(ts_log_level_parse("loud") == -1);
}

static void test_log_file(void)
{
    char tmpl[] = "/tmp/ts-log-XXXXXX";
    int fd = mkstemp(tmpl);
    TC_CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);

    ts_log_init("tessera-test", TS_LOG_INFO);
    TC_CHECK(ts_log_open(tmpl) == 0);
    TS_DEBUG("hidden %d", 1);
    TS_INFO("hello %s", "world");
    TS_ERROR("bad %d", 2);
    TC_CHECK(ts_log_open(NULL) == 0);
    TC_CHECK(ts_log_open("/nonexistent/dir/log") == TS_EIO);

    char *text = NULL;
    size_t len = 0;
    ts_error err;
    TC_CHECK(ts_read_file(tmpl, &text, &len, &err) == 0);
    if (text != NULL) {
        /* 2026-11-22T01:02:03.456Z tessera-test INFO hello world */
        TC_CHECK(len > 24 && text[4] == '-' && text[10] == 'T' && text[19] == '.' && text[23] == 'Z');
        TC_CHECK(strncmp(text + 24, " tessera-test INFO hello world\n", 31) == 0);
        TC_CHECK(strstr(text, "tessera-test ERROR bad 2\n") != NULL);
        TC_CHECK(strstr(text, "hidden") == NULL);
    }
    free(text);
    unlink(tmpl);
}

/* RFC 4648 test vectors, every byte value, and malformed input. */
static void test_base64(void)
{
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                         "Zm9vYmFy" };
    for (size_t i = 0; i < 7; i++) {
        char *e = ts_base64_encode(plain[i], strlen(plain[i]));
        TC_CHECK_STR(e, coded[i]);
        uint8_t *d = NULL;
        size_t n = 99;
        TC_CHECK(ts_base64_decode(e, strlen(e), &d, &n) == 0);
        TC_CHECK(n == strlen(plain[i]) && memcmp(d, plain[i], n) == 0);
        free(d);
        free(e);
    }
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t len = 250; len <= 256; len++) {
        char *e = ts_base64_encode(all, len);
        uint8_t *d = NULL;
        size_t n = 0;
        TC_CHECK(ts_base64_decode(e, strlen(e), &d, &n) == 0);
        TC_CHECK(n == len && memcmp(d, all, len) == 0);
        free(d);
        free(e);
    }
    static const char *const bad[] = { "Zg=", "Z===", "Zg=a", "Zm9v!A==", "=Zg=", "Zm 9",
                                       "Z!9vYmFy", "Zm9vYm\xc3\xa9", "Zm9=Ym9v" };
    for (size_t i = 0; i < 9; i++) {
        uint8_t *d = NULL;
        size_t n = 0;
        TC_CHECK(ts_base64_decode(bad[i], strlen(bad[i]), &d, &n) == TS_EINVAL);
        TC_CHECK(d == NULL);
    }
}

int main(void)
{
    TC_RUN(test_parse_size);
    TC_RUN(test_format_size);
    TC_RUN(test_parse_hostport);
    TC_RUN(test_hex);
    TC_RUN(test_base64);
    TC_RUN(test_chunk_id);
    TC_RUN(test_errors);
    TC_RUN(test_buf);
    TC_RUN(test_files);
    TC_RUN(test_clocks);
    TC_RUN(test_log_file);
    TC_DONE("test_util");
}
