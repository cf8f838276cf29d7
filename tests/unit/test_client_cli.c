/*
 * Unit tests of the `tessera` CLI helpers (fs/cli_util.c): which config file
 * is used, option value parsing, and the display formats scripts read.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/cli.h"
#include "tests/unit/tcheck.h"

static void test_find_conf_order(void)
{
    char buf[256], dir[] = "/tmp/tcli-XXXXXX", cwd[4096];
    const char *p;
    FILE *f;

    TC_CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    TC_CHECK(mkdtemp(dir) != NULL);
    TC_CHECK(chdir(dir) == 0);
    /* --conf beats the environment, which beats the local cluster. */
    TC_CHECK_STR(cli_find_conf("/x/explicit.conf", "/y/env.conf", buf, sizeof(buf)), "/x/explicit.conf");
    TC_CHECK_STR(cli_find_conf(NULL, "/y/env.conf", buf, sizeof(buf)), "/y/env.conf");
    TC_CHECK(cli_find_conf(NULL, NULL, buf, sizeof(buf)) == NULL);
    TC_CHECK(cli_find_conf("", "", buf, sizeof(buf)) == NULL);
    TC_CHECK(mkdir(CLI_DEFAULT_LOCAL_DIR, 0755) == 0);
    f = fopen(CLI_DEFAULT_LOCAL_DIR "/client.conf", "w");
    TC_CHECK(f != NULL);
    if (f)
        fclose(f);
    p = cli_find_conf(NULL, NULL, buf, sizeof(buf));
    TC_CHECK_STR(p, CLI_DEFAULT_LOCAL_DIR "/client.conf");
    TC_CHECK(unlink(CLI_DEFAULT_LOCAL_DIR "/client.conf") == 0);
    TC_CHECK(rmdir(CLI_DEFAULT_LOCAL_DIR) == 0);
    TC_CHECK(chdir(cwd) == 0);
    TC_CHECK(rmdir(dir) == 0);
}

static void test_parse_values(void)
{
    uint64_t sz = 0;
    unsigned u = 0;

    TC_CHECK(cli_parse_size("put", "--chunk-size", "16M", &sz) == 0);
    TC_CHECK_EQ_U64(sz, 16u << 20);
    TC_CHECK(cli_parse_size("put", "--chunk-size", "0", &sz) == -1);
    TC_CHECK(cli_parse_size("put", "--chunk-size", "lots", &sz) == -1);
    TC_CHECK(cli_parse_uint("put", "--replicas", "2", 1, 16, &u) == 0);
    TC_CHECK_EQ_U64(u, 2);
    TC_CHECK(cli_parse_uint("put", "--replicas", "0", 1, 16, &u) == -1);
    TC_CHECK(cli_parse_uint("put", "--replicas", "17", 1, 16, &u) == -1);
    TC_CHECK(cli_parse_uint("put", "--replicas", "-1", 1, 16, &u) == -1);
    TC_CHECK(cli_parse_uint("put", "--replicas", "2x", 1, 16, &u) == -1);
}

static void test_formats(void)
{
    char mode[11], when[48];

    cli_mode_string(S_IFDIR | 0755, mode);
    TC_CHECK_STR(mode, "drwxr-xr-x");
    cli_mode_string(S_IFREG | 0640, mode);
    TC_CHECK_STR(mode, "-rw-r-----");
    cli_mode_string(S_IFLNK | 0777, mode);
    TC_CHECK_STR(mode, "lrwxrwxrwx");
    cli_mode_string(S_IFDIR | 01777, mode);
    TC_CHECK_STR(mode, "drwxrwxrwt");
    cli_time_string(0, 0, when);
    TC_CHECK_STR(when, "1970-01-01 00:00:00");
    cli_time_string(1500000000123456789LL, 1, when);
    TC_CHECK_STR(when, "2017-07-14 02:40:00.123456789 UTC");
    TC_CHECK_STR(cli_type_name(S_IFREG | 0644), "regular file");
}

static void test_errmsg(void)
{
    ts_error e;
    char buf[600];

    ts_fail(&e, TS_ENOENT, "lookup 12/'x': no such entry");
    TC_CHECK_STR(cli_errmsg(&e, buf, sizeof(buf)), "no such file or directory");
    ts_fail(&e, TS_ENOENT, "no such directory /x");
    TC_CHECK_STR(cli_errmsg(&e, buf, sizeof(buf)), "no such directory /x");
    ts_fail(&e, TS_ENOSPC, "cannot place 3 replicas: only 2 chunkservers are up (cs-1, cs-2)");
    TC_CHECK(strstr(cli_errmsg(&e, buf, sizeof(buf)), "only 2 chunkservers") != NULL);
}

int main(void)
{
    TC_RUN(test_find_conf_order);
    TC_RUN(test_parse_values);
    TC_RUN(test_formats);
    TC_RUN(test_errmsg);
    TC_DONE("test_client_cli");
}
