/*
 * Helpers shared by the `tessera` commands: finding the configuration and
 * opening the client, uniform error messages, option value parsing, display
 * formats (modes, times) and the transfer progress line.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "fs/cli.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;

    fputs("tessera: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tessera%s%s: ", *cmd ? " " : "", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see `tessera%s%s --help`)\n", *cmd ? " " : "", cmd);
    return 1;
}

int cli_bad_option(const char *cmd, char **argv, int ch)
{
    extern int optind, optopt;
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (ch == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt && optopt != '?')
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

const char *cli_find_conf(const char *explicit_conf, const char *env, char *buf, size_t buflen)
{
    struct stat st;

    if (explicit_conf && *explicit_conf)
        return explicit_conf;
    if (env && *env)
        return env;
    snprintf(buf, buflen, "%s/client.conf", CLI_DEFAULT_LOCAL_DIR);
    if (stat(buf, &st) == 0 && S_ISREG(st.st_mode))
        return buf;
    return NULL;
}

tess_client *cli_client(cli_ctx *ctx)
{
    char buf[4096];
    const char *path;
    ts_error err;

    if (ctx->client)
        return ctx->client;
    path = cli_find_conf(ctx->conf, getenv("TESSERA_CONF"), buf, sizeof(buf));
    if (!path) {
        cli_error("no cluster configured: run `tessera local up` or pass --conf");
        return NULL;
    }
    snprintf(ctx->conf_used, sizeof(ctx->conf_used), "%s", path);
    if (tess_client_open_conf(path, &ctx->client, &err) != 0) {
        cli_error("%s", err.msg);
        return NULL;
    }
    return ctx->client;
}

int cli_parse_size(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    ts_error err;

    if (ts_parse_size(s, out, &err) != 0 || *out == 0) {
        cli_usage_error(cmd, "%s '%s': expected a size in bytes such as 4096, 16M or 1G", opt, s);
        return -1;
    }
    return 0;
}

int cli_parse_uint(const char *cmd, const char *opt, const char *s, unsigned min, unsigned max,
                   unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        cli_usage_error(cmd, "%s '%s': expected a number from %u to %u", opt, s, min, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

const char *cli_errmsg(const ts_error *e, char *buf, size_t buflen)
{
    const char *plain = NULL;

    /* Server messages name inodes ("lookup 12/'x': …"); on a path the user
     * typed, a plain phrase reads better.  Other codes keep the message,
     * which carries the detail (replicas tried, servers down, …). */
    switch (e->code) {
    case TS_ENOENT: plain = "no such file or directory"; break;
    case TS_EEXIST: plain = "already exists"; break;
    case TS_ENOTDIR: plain = "not a directory"; break;
    case TS_EISDIR: plain = "is a directory"; break;
    case TS_ENOTEMPTY: plain = "directory not empty"; break;
    case TS_EACCES: plain = "permission denied"; break;
    case TS_EPERM: plain = "operation not permitted"; break;
    case TS_ENAMETOOLONG: plain = "name too long"; break;
    default: break;
    }
    if (plain && !strstr(e->msg, "no such directory"))
        snprintf(buf, buflen, "%s", plain);
    else
        snprintf(buf, buflen, "%s", e->msg);
    return buf;
}

void cli_mode_string(uint32_t mode, char out[11])
{
    static const char rwx[] = "rwxrwxrwx";

    switch (mode & S_IFMT) {
    case S_IFDIR: out[0] = 'd'; break;
    case S_IFLNK: out[0] = 'l'; break;
    case S_IFREG: out[0] = '-'; break;
    default: out[0] = '?'; break;
    }
    for (int i = 0; i < 9; i++)
        out[1 + i] = (mode & (1u << (8 - i))) ? rwx[i] : '-';
    if (mode & S_ISUID)
        out[3] = (mode & S_IXUSR) ? 's' : 'S';
    if (mode & S_ISGID)
        out[6] = (mode & S_IXGRP) ? 's' : 'S';
    if (mode & S_ISVTX)
        out[9] = (mode & S_IXOTH) ? 't' : 'T';
    out[10] = '\0';
}

void cli_time_string(int64_t ns, int with_ns, char out[48])
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    size_t n;

    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 48, "?");
        return;
    }
    n = strftime(out, 48, "%Y-%m-%d %H:%M:%S", &tm);
    if (with_ns)
        snprintf(out + n, 48 - n, ".%09lld UTC", (long long)(ns % 1000000000));
}

const char *cli_type_name(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symbolic link";
    case S_IFREG: return "regular file";
    default: return "unknown";
    }
}

void cli_progress_init(cli_progress *p)
{
    memset(p, 0, sizeof(*p));
    p->enabled = isatty(STDERR_FILENO);
    p->start_ms = ts_mono_ms();
}

void cli_progress_update(void *arg, uint64_t done, uint64_t total)
{
    cli_progress *p = arg;
    int64_t now = ts_mono_ms();
    char d[32], t[32], r[32];
    double secs;

    /* Quiet for short transfers; then at most 5 redraws a second. */
    if (!p->enabled || now - p->start_ms < 500 || now - p->last_ms < 200)
        return;
    p->last_ms = now;
    secs = (double)(now - p->start_ms) / 1000.0;
    ts_format_size(done, d, sizeof(d));
    ts_format_size((uint64_t)((double)done / secs), r, sizeof(r));
    if (total)
        fprintf(stderr, "\r\033[K%s / %s  %s/s", d, ts_format_size(total, t, sizeof(t)), r);
    else
        fprintf(stderr, "\r\033[K%s  %s/s", d, r);
    p->shown = 1;
}

void cli_progress_end(cli_progress *p)
{
    if (p->shown)
        fputs("\r\033[K", stderr);
    p->shown = 0;
}

char *cli_find_binary(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    const char *pathenv = getenv("PATH");

    if (n > 0) {
        self[n] = '\0';
        char *cand = ts_sprintf("%s/%s", dirname(self), name);
        if (access(cand, X_OK) == 0)
            return cand;
        free(cand);
    }
    if (!pathenv)
        return NULL;
    char *copy = ts_strdup(pathenv), *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *cand = ts_sprintf("%s/%s", *dir ? dir : ".", name);
        if (access(cand, X_OK) == 0) {
            free(copy);
            return cand;
        }
        free(cand);
    }
    free(copy);
    return NULL;
}

int cli_parse_help_only(const char *cmd, const char *usage, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        return cli_bad_option(cmd, argv, ch);
    }
    return -1;
}
