/*
 * tessera-chunk: the chunkserver daemon.  Reads its configuration (file plus
 * command-line overrides), opens the chunk store, serves the chunk API and
 * heartbeats to the metadata service until SIGTERM or SIGINT.  Runs in the
 * foreground; `tessera local up` and systemd background it.
 *
 * Start order, and why:
 *   1. logging        so every later failure is reported where the operator looks
 *   2. config         all keys checked before anything touches the disk
 *   3. chunk store    creates the data dirs, which hold server.id
 *   4. server id      read or created in the first data dir
 *   4b. scrubber      needs only the store; started before the API, whose
 *                     /metrics reads its counters (and the copier, which
 *                     shares its background budget)
 *   5. task executor  (MapReduce) needs the store and a metadata client; it
 *                     must exist before the API routes /v1/task to it
 *   6. HTTP API       serves chunks; its port completes the advertised address
 *   7. heartbeat      announces the server only once it can serve
 * Shutdown runs the other way: heartbeat, API (waits for requests, so no
 * copy is running), task executor (kills running attempts), client,
 * copier, scrubber, store.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkserver/chunk_api.h"
#include "chunkserver/chunk_copy.h"
#include "chunkserver/chunk_store.h"
#include "chunkserver/heartbeat.h"
#include "chunkserver/scrubber.h"
#include "chunkserver/task_exec.h"
#include "common/config.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"

#define SERVER_ID_FILE "server.id"
#define SERVER_ID_MAX 64

static const char *const known_keys[] = {
    "listen", "id", "data_dirs", "meta", "zone", "weight", "heartbeat_interval_ms",
    "max_chunk_size", "log_file", "log_level",
    "task_slots", "task_sort_buffer", "task_dir", "task_retain_s",
    "scrub_bytes_per_sec", "scrub_interval_s", "dir_check_interval_ms",
    "background_bytes_per_sec", "max_copies_in", "max_copies_out", "direct_io", NULL,
};

static void usage(FILE *out)
{
    fprintf(out,
"Usage: tessera-chunk [--conf FILE] [--set key=value]... [options]\n"
"\n"
"The Tessera chunkserver: stores chunks on local disks, serves verified reads,\n"
"forwards writes down the replication chain and heartbeats to the metadata\n"
"service.  Runs in the foreground; stops cleanly on SIGTERM or SIGINT.\n"
"\n"
"Options:\n"
"  --conf FILE            read `key = value` lines from FILE (# comments)\n"
"  --set KEY=VALUE        set a config key (later settings win over earlier\n"
"                         ones and over the file)\n"
"  --listen HOST:PORT     same as --set listen=HOST:PORT\n"
"  --data-dir DIR[,DIR]   same as --set data_dirs=DIR[,DIR]\n"
"  --id ID                same as --set id=ID\n"
"  --meta HOST:PORT[,…]   same as --set meta=…\n"
"  --zone ZONE            same as --set zone=ZONE\n"
"  --weight W             same as --set weight=W\n"
"  --log-file FILE        same as --set log_file=FILE\n"
"  --log-level LEVEL      same as --set log_level=LEVEL\n"
"  -h, --help             this text\n"
"\n"
"Config keys (default in brackets):\n"
"  listen                 HOST:PORT to serve on; also the address advertised\n"
"                         to the metadata service [required]\n"
"  data_dirs              comma-separated data directories; a new chunk goes\n"
"                         to the one with the most free space [required]\n"
"  meta                   metadata server HOST:PORT, or several comma-separated\n"
"                         (tried in turn) [required]\n"
"  id                     server id [read from DATA/server.id in the first\n"
"                         data dir, created there as cs-<8 hex> if absent]\n"
"  zone                   failure domain for placement [\"\"]\n"
"  weight                 relative capacity for placement, > 0 [1.0]\n"
"  heartbeat_interval_ms  heartbeat period in milliseconds [1000]\n"
"  max_chunk_size         largest chunk accepted (e.g. 64M, 1G) [1G]\n"
"  log_file               append log lines to this file [stderr]\n"
"  log_level              debug, info, warn or error [info]\n"
"  task_slots             MapReduce tasks run at once on this server [2]\n"
"  task_sort_buffer       memory of a map task's sort before it spills to\n"
"                         disk (e.g. 64M) [64M]\n"
"  task_dir               working directory of MapReduce tasks (emptied at\n"
"                         start) [FIRST_WORKING_DATA_DIR/mr]\n"
"  task_retain_s          seconds a finished task's output is kept when its\n"
"                         job never claims it [3600]\n"
"  scrub_bytes_per_sec    rate at which the scrubber re-reads sealed chunks\n"
"                         to verify their checksums; 0 disables it [32M]\n"
"  scrub_interval_s       least time between the starts of two scrub passes\n"
"                         over all chunks [3600]\n"
"  dir_check_interval_ms  how often every data dir is probed; one that fails\n"
"                         is taken out of service [10000]\n"
"  background_bytes_per_sec  budget shared by scrubbing and copies between\n"
"                         servers (repair, rebalance); 0 = unlimited [64M]\n"
"  max_copies_in          copies this server receives at once; more are\n"
"                         refused as busy (503) [2]\n"
"  max_copies_out         copies this server sends at once [2]\n"
"  direct_io              write chunks of 1 MiB and more with O_DIRECT, past\n"
"                         the page cache (fsynced at the seal anyway) [true]\n");
}

/* Reads DATA/server.id or creates it with a fresh "cs-XXXXXXXX". */
static int load_server_id(const char *dir, char **out, ts_error *err)
{
    char *path = ts_sprintf("%s/%s", dir, SERVER_ID_FILE);
    char *text = NULL;
    size_t len = 0;
    int rc = ts_read_file(path, &text, &len, err);

    if (rc == TS_ENOENT) {
        uint8_t rnd[4];
        char hex[9];
        ts_random_bytes(rnd, sizeof rnd);
        ts_hex_encode(rnd, sizeof rnd, hex);
        char *id = ts_sprintf("cs-%s", hex);
        char *line = ts_sprintf("%s\n", id);
        rc = ts_write_file_atomic(path, line, strlen(line), err);
        free(line);
        if (rc != 0) {
            free(id);
            goto free_path;
        }
        TS_INFO("new server id %s written to %s", id, path);
        *out = id;
        goto free_path;
    }
    if (rc != 0)
        goto free_path;
    /* One token: trim surrounding whitespace, refuse anything odd. */
    size_t a = 0, b = len;
    while (a < b && (text[a] == ' ' || text[a] == '\n' || text[a] == '\t' || text[a] == '\r'))
        a++;
    while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n' || text[b - 1] == '\t' ||
                     text[b - 1] == '\r'))
        b--;
    int ok = b > a && b - a <= SERVER_ID_MAX;
    for (size_t i = a; ok && i < b; i++)
        ok = text[i] > ' ' && text[i] < 127;
    if (!ok) {
        rc = ts_fail(err, TS_EINVAL, "%s: not a valid server id (one word of up to %d printable characters)",
                     path, SERVER_ID_MAX);
        goto free_text;
    }
    *out = ts_strndup(text + a, b - a);
free_text:
    free(text);
free_path:
    free(path);
    return rc;
}

/* Splits a comma-separated list into a NULL-terminated array (caller frees
 * each and the array). */
static char **split_list(const char *s, size_t *n)
{
    char **v = NULL;
    *n = 0;
    while (*s != '\0') {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len > 0) {
            v = ts_realloc(v, (*n + 2) * sizeof *v);
            v[(*n)++] = ts_strndup(s, len);
            v[*n] = NULL;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

enum { OPT_CONF = 1000, OPT_SET, OPT_LISTEN, OPT_DATA_DIR, OPT_ID, OPT_META, OPT_ZONE,
       OPT_WEIGHT, OPT_LOG_FILE, OPT_LOG_LEVEL };

static const struct option long_opts[] = {
    { "conf", required_argument, NULL, OPT_CONF },
    { "set", required_argument, NULL, OPT_SET },
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "data-dir", required_argument, NULL, OPT_DATA_DIR },
    { "id", required_argument, NULL, OPT_ID },
    { "meta", required_argument, NULL, OPT_META },
    { "zone", required_argument, NULL, OPT_ZONE },
    { "weight", required_argument, NULL, OPT_WEIGHT },
    { "log-file", required_argument, NULL, OPT_LOG_FILE },
    { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Loads --conf first, then applies every override in command-line order. */
static int parse_args(int argc, char **argv, ts_config *cfg, ts_error *err)
{
    const char *conf = NULL;
    char **sets = ts_calloc((size_t)argc + 1, sizeof *sets);
    size_t nsets = 0;
    int c, rc = 0;

    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'h':
            usage(stdout);
            exit(0);
        case OPT_CONF: conf = optarg; break;
        case OPT_SET: sets[nsets++] = ts_strdup(optarg); break;
        case OPT_LISTEN: key = "listen"; break;
        case OPT_DATA_DIR: key = "data_dirs"; break;
        case OPT_ID: key = "id"; break;
        case OPT_META: key = "meta"; break;
        case OPT_ZONE: key = "zone"; break;
        case OPT_WEIGHT: key = "weight"; break;
        case OPT_LOG_FILE: key = "log_file"; break;
        case OPT_LOG_LEVEL: key = "log_level"; break;
        default:
            usage(stderr);
            exit(2);
        }
        if (key != NULL)
            sets[nsets++] = ts_sprintf("%s=%s", key, optarg);
    }
    if (optind < argc) {
        rc = ts_fail(err, TS_EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
        goto free_sets;
    }
    if (conf != NULL) {
        rc = ts_config_load(cfg, conf, err);
        if (rc != 0)
            goto free_sets;
    }
    for (size_t i = 0; i < nsets; i++) {
        rc = ts_config_set_kv(cfg, sets[i], err);
        if (rc != 0)
            goto free_sets;
    }
    rc = ts_config_check(cfg, known_keys, err);
free_sets:
    for (size_t i = 0; i < nsets; i++)
        free(sets[i]);
    free(sets);
    return rc;
}

static const char *required(const ts_config *cfg, const char *key, ts_error *err)
{
    const char *v = ts_config_str(cfg, key, NULL);
    if (v == NULL || v[0] == '\0')
        ts_fail(err, TS_EINVAL, "config key '%s' is required (see --help)", key);
    return v && v[0] ? v : NULL;
}

int main(int argc, char **argv)
{
    ts_error err = { 0 };
    ts_config *cfg = ts_config_new();
    ts_chunk_store *store = NULL;
    ts_chunk_api *api = NULL;
    ts_heartbeat *hb = NULL;
    ts_task_exec *tasks = NULL;
    ts_scrubber *scrubber = NULL;
    ts_chunk_copier *copier = NULL;
    ts_chunk_builder *builder = NULL;
    ts_throttle *background = NULL;
    tess_client *client = NULL;
    char **dirs = NULL;
    size_t ndirs = 0;
    char *server_id = NULL, *host = NULL, *address = NULL, *task_dir = NULL;
    int port = 0, exit_code = 1, logging_to_file = 0;
    sigset_t sigs;

    ts_log_init("tessera-chunk", TS_LOG_INFO);
    if (parse_args(argc, argv, cfg, &err) != 0)
        goto fail;

    const char *level_name = ts_config_str(cfg, "log_level", "info");
    int level = ts_log_level_parse(level_name);
    if (level < 0) {
        ts_fail(&err, TS_EINVAL, "log_level '%s': expected debug, info, warn or error", level_name);
        goto fail;
    }
    ts_log_init("tessera-chunk", (enum ts_log_level)level);
    const char *log_file = ts_config_str(cfg, "log_file", NULL);
    if (log_file != NULL && log_file[0] != '\0') {
        if (ts_log_open(log_file) != 0) {
            ts_fail(&err, TS_EIO, "cannot open log file %s", log_file);
            goto fail;
        }
        logging_to_file = 1;
    }

    const char *listen_addr = required(cfg, "listen", &err);
    const char *data_dirs = listen_addr ? required(cfg, "data_dirs", &err) : NULL;
    const char *meta = data_dirs ? required(cfg, "meta", &err) : NULL;
    if (meta == NULL)
        goto fail;
    if (ts_parse_hostport(listen_addr, &host, &port, &err) != 0) {
        ts_error_prefix(&err, "listen");
        goto fail;
    }
    double weight;
    int64_t interval;
    uint64_t max_chunk, sort_mem;
    int64_t slots, retain_s;
    if (ts_config_double(cfg, "weight", 1.0, &weight, &err) != 0 ||
        ts_config_int(cfg, "heartbeat_interval_ms", 1000, &interval, &err) != 0 ||
        ts_config_size(cfg, "max_chunk_size", 1024ull * 1024 * 1024, &max_chunk, &err) != 0 ||
        ts_config_int(cfg, "task_slots", 2, &slots, &err) != 0 ||
        ts_config_size(cfg, "task_sort_buffer", 64ull << 20, &sort_mem, &err) != 0 ||
        ts_config_int(cfg, "task_retain_s", 3600, &retain_s, &err) != 0)
        goto fail;
    uint64_t scrub_rate, bg_rate;
    int64_t scrub_interval_s, dir_check_ms, copies_in, copies_out;
    int direct_io = 1;
    if (ts_config_size(cfg, "scrub_bytes_per_sec", 32ull << 20, &scrub_rate, &err) != 0 ||
        ts_config_int(cfg, "scrub_interval_s", 3600, &scrub_interval_s, &err) != 0 ||
        ts_config_int(cfg, "dir_check_interval_ms", 10000, &dir_check_ms, &err) != 0 ||
        ts_config_size(cfg, "background_bytes_per_sec", 64ull << 20, &bg_rate, &err) != 0 ||
        ts_config_int(cfg, "max_copies_in", 2, &copies_in, &err) != 0 ||
        ts_config_int(cfg, "max_copies_out", 2, &copies_out, &err) != 0 ||
        ts_config_bool(cfg, "direct_io", 1, &direct_io, &err) != 0)
        goto fail;
    if (scrub_interval_s < 1 || scrub_interval_s > 365 * 86400 || dir_check_ms < 10 ||
        dir_check_ms > 86400 * 1000 || copies_in < 1 || copies_in > 256 || copies_out < 1 ||
        copies_out > 256) {
        ts_fail(&err, TS_EINVAL, "scrub_interval_s must be 1..31536000, dir_check_interval_ms "
                "10..86400000, max_copies_in and max_copies_out 1..256 (got %" PRId64 ", %"
                PRId64 ", %" PRId64 ", %" PRId64 ")", scrub_interval_s, dir_check_ms,
                copies_in, copies_out);
        goto fail;
    }
    if (slots < 1 || slots > 1024 || sort_mem < 64 * 1024 || sort_mem > (16ull << 30) ||
        retain_s < 1) {
        ts_fail(&err, TS_EINVAL, "task_slots must be 1..1024, task_sort_buffer 64K..16G and "
                "task_retain_s > 0");
        goto fail;
    }
    if (!(weight > 0)) {
        ts_fail(&err, TS_EINVAL, "weight must be > 0 (got %g)", weight);
        goto fail;
    }
    if (interval <= 0 || interval > 3600 * 1000) {
        ts_fail(&err, TS_EINVAL, "heartbeat_interval_ms must be between 1 and 3600000 (got %" PRId64 ")",
                interval);
        goto fail;
    }
    if (max_chunk == 0) {
        ts_fail(&err, TS_EINVAL, "max_chunk_size must be > 0");
        goto fail;
    }
    dirs = split_list(data_dirs, &ndirs);
    if (ndirs == 0) {
        ts_fail(&err, TS_EINVAL, "data_dirs '%s' names no directory", data_dirs);
        goto fail;
    }

    /* Signals are taken synchronously by main (sigwait); every thread
     * started from here on inherits the mask. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
        ts_fail(&err, TS_EIO, "cannot block signals");
        goto fail;
    }
    ts_http_client_global_init();

    if (ts_chunk_store_open((const char *const *)dirs, ndirs, &store, &err) != 0)
        goto fail;
    ts_chunk_store_set_direct_io(store, direct_io);
    const char *cfg_id = ts_config_str(cfg, "id", NULL);
    if (cfg_id != NULL && cfg_id[0] != '\0')
        server_id = ts_strdup(cfg_id);
    else if (load_server_id(dirs[0], &server_id, &err) != 0)
        goto close_store;

    background = ts_throttle_new(bg_rate, 0);
    ts_scrubber_opts sopts = {
        .store = store,
        .background = background,
        .bytes_per_sec = scrub_rate,
        .pass_interval_ms = scrub_interval_s * 1000,
        .dir_check_interval_ms = dir_check_ms,
    };
    if (ts_scrubber_start(&sopts, &scrubber, &err) != 0)
        goto free_throttle;
    ts_chunk_copier_opts cpopts = {
        .store = store,
        .server_id = server_id,
        .background = background,
        .max_copies_in = (unsigned)copies_in,
        .max_copies_out = (unsigned)copies_out,
        .max_chunk_size = max_chunk,
    };
    copier = ts_chunk_copier_new(&cpopts);
    ts_chunk_builder_opts bopts = { .store = store, .background = background,
                                    .max_chunk_size = max_chunk };
    builder = ts_chunk_builder_new(&bopts);

    /* The task executor reads and writes files through the client library,
     * which follows the metadata leader like any client. */
    tess_client_opts copts;
    tess_client_opts_init(&copts);
    copts.meta = meta;
    if (tess_client_open(&copts, &client, &err) != 0)
        goto free_copier;
    task_dir = ts_strdup(ts_config_str(cfg, "task_dir", ""));
    if (task_dir[0] == '\0') {
        /* In the first data dir still in service (one may be dead). */
        size_t first = 0;
        while (first + 1 < ndirs && !ts_chunk_store_dir_in_service(store, first))
            first++;
        free(task_dir);
        task_dir = ts_sprintf("%s/mr", dirs[first]);
    }
    ts_task_exec_opts topts = {
        .store = store,
        .client = client,
        .server_id = server_id,
        .work_dir = task_dir,
        .slots = (unsigned)slots,
        .sort_mem = (size_t)sort_mem,
        .retain_s = (long)retain_s,
    };
    if (ts_task_exec_start(&topts, &tasks, &err) != 0)
        goto close_client;

    ts_chunk_api_opts aopts = {
        .store = store,
        .server_id = server_id,
        .bind_addr = host,
        .port = port,
        .max_chunk_size = max_chunk,
        .task_handler = ts_task_exec_handle,
        .task_app = tasks,
        .copier = copier,
        .scrubber = scrubber,
        .builder = builder,
    };
    if (ts_chunk_api_start(&aopts, &api, &err) != 0)
        goto stop_tasks;
    /* With port 0 the kernel picked one; advertise what we really serve. */
    address = port != 0 ? ts_strdup(listen_addr)
                        : ts_sprintf(strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
                                     ts_chunk_api_port(api));
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        TS_WARN("listen %s: the advertised address %s is not reachable from other hosts; "
                "listen on a concrete address", listen_addr, address);

    ts_heartbeat_opts hopts = {
        .store = store,
        .meta = meta,
        .server_id = server_id,
        .address = address,
        .zone = ts_config_str(cfg, "zone", ""),
        .weight = weight,
        .interval_ms = (int)interval,
    };
    if (ts_heartbeat_start(&hopts, &hb, &err) != 0)
        goto stop_api;

    ts_chunk_stats st;
    if (ts_chunk_store_stats(store, &st, &err) != 0)
        goto stop_heartbeat;
    char cap[32], avail[32];
    TS_INFO("chunkserver %s serving on %s: %" PRIu64 " chunk(s), %s free of %s in %zu data dir(s); "
            "metadata %s", server_id, address, st.chunks,
            ts_format_size(st.available, avail, sizeof avail),
            ts_format_size(st.capacity, cap, sizeof cap), ndirs, meta);

    int sig = 0;
    if (sigwait(&sigs, &sig) != 0)
        TS_ERROR("sigwait failed; shutting down");
    else
        TS_INFO("signal %d (%s): shutting down", sig, strsignal(sig));
    exit_code = 0;

stop_heartbeat:
    ts_heartbeat_stop(hb);
stop_api:
    ts_chunk_api_stop(api);
stop_tasks:
    ts_task_exec_stop(tasks);
close_client:
    tess_client_close(client);
free_copier:
    ts_chunk_builder_free(builder);
    ts_chunk_copier_free(copier);
    ts_scrubber_stop(scrubber);
free_throttle:
    ts_throttle_free(background);
close_store:
    ts_chunk_store_close(store);
fail:
    if (exit_code != 0) {
        TS_ERROR("%s", err.msg[0] ? err.msg : "startup failed");
        /* Whoever started us looks at the terminal first. */
        if (logging_to_file)
            fprintf(stderr, "tessera-chunk: %s\n", err.msg[0] ? err.msg : "startup failed");
    }
    free(task_dir);
    free(address);
    free(host);
    free(server_id);
    free_list(dirs, ndirs);
    ts_config_free(cfg);
    if (exit_code == 0)
        TS_INFO("stopped");
    return exit_code;
}
