/*
 * tessera-meta: the metadata server.  Parses options and the config file,
 * opens the store (recovering snapshot + log), serves the HTTP API and runs
 * in the foreground until SIGTERM or SIGINT, then stops cleanly: no new
 * requests, running ones finish, the log is synced.
 *
 * Start-up order and why:
 *   1. config and logging -- everything after may need to report errors;
 *   2. signals blocked    -- before any thread exists, so every thread
 *                            inherits the mask and only sigwait sees them;
 *   3. store              -- recovery must finish before serving a request;
 *   4. cluster soft state -- empty; heartbeats refill it;
 *   5. HTTP API           -- last: the port opens only when we can answer.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/cluster.h"
#include "metadata/meta_api.h"
#include "metadata/store.h"

static const char *const known_keys[] = {
    "listen", "data_dir", "log_file", "log_level", "heartbeat_timeout_ms", "snapshot_every",
    "wal_fsync", NULL,
};

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: tessera-meta [--conf FILE] [--set key=value]... [--listen HOST:PORT]\n"
        "                    [--data-dir DIR] [--log-file FILE] [--help]\n"
        "\n"
        "The Tessera metadata server: namespace, chunk table and cluster membership,\n"
        "made durable by a write-ahead log with group commit plus snapshots.  Runs in\n"
        "the foreground; SIGTERM or SIGINT stops it cleanly.\n"
        "\n"
        "Options:\n"
        "  --conf FILE         read `key = value` lines from FILE\n"
        "  --set key=value     override one key (repeatable; later ones win)\n"
        "  --listen HOST:PORT  same as --set listen=HOST:PORT\n"
        "  --data-dir DIR      same as --set data_dir=DIR\n"
        "  --log-file FILE     same as --set log_file=FILE\n"
        "  --help              show this help\n"
        "\n"
        "Configuration keys (default):\n"
        "  listen                HOST:PORT to serve HTTP on (required)\n"
        "  data_dir              directory for the log and snapshots (required; created\n"
        "                        if missing; must be writable; one server per directory)\n"
        "  log_file              log to this file (stderr)\n"
        "  log_level             debug, info, warn or error (info)\n"
        "  heartbeat_timeout_ms  a chunkserver is down after this long without a\n"
        "                        heartbeat (30000)\n"
        "  snapshot_every        write a snapshot every N log records (100000)\n"
        "  wal_fsync             fsync the log before answering (true).  false is for\n"
        "                        benchmarks only and UNSAFE: a machine crash loses\n"
        "                        acknowledged updates\n");
}

struct settings {
    const char *listen, *data_dir, *log_file;
    int log_level;
    int64_t heartbeat_timeout_ms, snapshot_every;
    int wal_fsync;
};

static int read_settings(const ts_config *cfg, struct settings *s, ts_error *err)
{
    int rc;
    if ((rc = ts_config_check(cfg, known_keys, err)) != 0)
        return rc;
    s->listen = ts_config_str(cfg, "listen", NULL);
    s->data_dir = ts_config_str(cfg, "data_dir", NULL);
    s->log_file = ts_config_str(cfg, "log_file", NULL);
    if (!s->listen)
        return ts_fail(err, TS_EINVAL, "listen is required (--listen HOST:PORT)");
    if (!s->data_dir)
        return ts_fail(err, TS_EINVAL, "data_dir is required (--data-dir DIR)");
    const char *level = ts_config_str(cfg, "log_level", "info");
    if ((s->log_level = ts_log_level_parse(level)) < 0)
        return ts_fail(err, TS_EINVAL, "log_level '%s': expected debug, info, warn or error",
                       level);
    if ((rc = ts_config_int(cfg, "heartbeat_timeout_ms", 30000, &s->heartbeat_timeout_ms,
                            err)) != 0 ||
        (rc = ts_config_int(cfg, "snapshot_every", 100000, &s->snapshot_every, err)) != 0 ||
        (rc = ts_config_bool(cfg, "wal_fsync", 1, &s->wal_fsync, err)) != 0)
        return rc;
    if (s->heartbeat_timeout_ms <= 0)
        return ts_fail(err, TS_EINVAL, "heartbeat_timeout_ms must be positive");
    if (s->snapshot_every <= 0)
        return ts_fail(err, TS_EINVAL, "snapshot_every must be positive");
    return 0;
}

/* Parses the command line into cfg; 1 = exit 0 (help), -1 = usage error. */
static int parse_args(int argc, char **argv, ts_config *cfg, ts_error *err)
{
    static const struct option opts[] = {
        { "conf", required_argument, NULL, 'c' },   { "set", required_argument, NULL, 's' },
        { "listen", required_argument, NULL, 'l' }, { "data-dir", required_argument, NULL, 'd' },
        { "log-file", required_argument, NULL, 'L' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    /* The file first, then overrides in order, whatever the argument order. */
    const char *conf = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c')
            conf = optarg;
        else if (c == 'h')
            return 1;
        else if (c == '?')
            return -1;
    }
    if (optind < argc) {
        ts_fail(err, TS_EINVAL, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (conf && ts_config_load(cfg, conf, err) != 0)
        return -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 's': rc = ts_config_set_kv(cfg, optarg, err); break;
        case 'l': ts_config_set(cfg, "listen", optarg); break;
        case 'd': ts_config_set(cfg, "data_dir", optarg); break;
        case 'L': ts_config_set(cfg, "log_file", optarg); break;
        default: break;
        }
        if (rc)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ts_error err = {0};
    struct settings s;
    int status = 1;
    char *host = NULL;
    int port = 0;
    store *st = NULL;
    cluster *cl = NULL;
    meta_api *api = NULL;
    ts_config *cfg = ts_config_new();

    ts_log_init("tessera-meta", TS_LOG_INFO);
    int pr = parse_args(argc, argv, cfg, &err);
    if (pr == 1) {
        usage(stdout);
        status = 0;
        goto free_config;
    }
    if (pr < 0) {
        if (err.msg[0])
            fprintf(stderr, "tessera-meta: %s\n", err.msg);
        fprintf(stderr, "Try 'tessera-meta --help'.\n");
        status = 2;
        goto free_config;
    }
    if (read_settings(cfg, &s, &err) != 0 ||
        ts_parse_hostport(s.listen, &host, &port, &err) != 0) {
        fprintf(stderr, "tessera-meta: %s\n", err.msg);
        status = 2;
        goto free_config;
    }
    ts_log_init("tessera-meta", (enum ts_log_level)s.log_level);
    if (s.log_file && ts_log_open(s.log_file) != 0) {
        fprintf(stderr, "tessera-meta: cannot open log file %s\n", s.log_file);
        goto free_host;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    store_opts so = { .data_dir = s.data_dir, .wal_fsync = s.wal_fsync,
                      .snapshot_every = (uint64_t)s.snapshot_every };
    if (!s.wal_fsync)
        TS_WARN("wal_fsync=false: the log is not fsynced; a machine crash loses acknowledged "
                "updates (benchmarks only)");
    if (store_open(&so, &st, &err) != 0) {
        TS_ERROR("cannot start: %s", err.msg);
        fprintf(stderr, "tessera-meta: cannot start: %s\n", err.msg);
        goto free_host;
    }
    cl = cluster_new(s.heartbeat_timeout_ms);
    api = meta_api_new(st, cl);
    if (meta_api_listen(api, host, port, 0, &err) != 0) {
        TS_ERROR("cannot listen on %s: %s", s.listen, err.msg);
        fprintf(stderr, "tessera-meta: cannot listen on %s: %s\n", s.listen, err.msg);
        goto stop_all;
    }
    TS_INFO("serving on %s:%d, data in %s", host, meta_api_port(api), s.data_dir);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    TS_INFO("signal %d: stopping", sig);
    status = 0;
stop_all:
    meta_api_free(api);     /* waits for running handlers */
    cluster_free(cl);
    store_close(st);        /* syncs the log */
    if (status == 0)
        TS_INFO("stopped");
free_host:
    free(host);
free_config:
    ts_config_free(cfg);
    return status;
}
