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
 *   3. Raft transport     -- replicated mode: the store's Raft server sends
 *                            through it from its first step;
 *   3b. store             -- recovery must finish before serving a request
 *                            (replicated: starts the Raft server, which the
 *                            transport then delivers to);
 *   4. cluster soft state -- empty; heartbeats refill it;
 *   4b. repair loop       -- reads the store and the cluster; acts only
 *                            while leader, after the servers reported;
 *   4c. garbage collector -- the same inputs and rule (gc.h);
 *   4d. compactor         -- the same (compact.h);
 *   5. HTTP API           -- last: the port opens only when we can answer.
 *                            Stopped first, the repair loop next: both use
 *                            the cluster and the store.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/cluster.h"
#include "metadata/compact.h"
#include "metadata/gc.h"
#include "metadata/meta_api.h"
#include "metadata/raft/raft_node.h"
#include "metadata/raft/raft_transport.h"
#include "metadata/repair.h"
#include "metadata/store.h"

static const char *const known_keys[] = {
    "listen", "data_dir", "log_file", "log_level", "heartbeat_timeout_ms", "snapshot_every",
    "down_after_ms", "repair", "repair_bytes_per_sec", "repair_max_copies",
    "wal_fsync", "id", "peers", "join", "raft_tick_ms", "fault_injection",
    "gc", "gc_grace_ms", "gc_deletes_per_sec", "compact", "compact_background",
    "compact_interval_ms", "compact_min_age_ms", "compact_bytes_per_sec", "compact_chunk_size", "compact_min_extents",
    "compact_small_extent", "compact_small_file", "compact_min_pack_files",
    "compact_repack_live_percent", "lease_reads", NULL,
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
        "  heartbeat_timeout_ms  a chunkserver silent this long is suspect: its\n"
        "                        replicas still count, nothing is copied yet (15000)\n"
        "  down_after_ms         a chunkserver silent this long is down and its chunks\n"
        "                        are re-replicated; more than heartbeat_timeout_ms\n"
        "                        (twice heartbeat_timeout_ms).  A new leader counts\n"
        "                        silence from its election\n"
        "  repair                re-replicate chunks below their factor and delete\n"
        "                        surplus replicas while leader (true); false only\n"
        "                        detects failures (tests of chunkservers alone)\n"
        "  repair_bytes_per_sec  cluster-wide budget of re-replication copies, with\n"
        "                        K, M, G suffixes (64M)\n"
        "  repair_max_copies     concurrent re-replication copies into, and out of,\n"
        "                        one chunkserver (2); chunkservers also refuse copies\n"
        "                        beyond their own max_copies_in/out\n"
        "  gc                    delete orphan chunk replicas (uncommitted, or no\n"
        "                        longer referenced) while leader (true)\n"
        "  gc_grace_ms           a replica must be an orphan this long, as seen by\n"
        "                        this leader, before it is deleted (3600000 = 1 h):\n"
        "                        longer than any writer takes from sealing a chunk\n"
        "                        to committing it, and than readers keep an extent\n"
        "                        list of a deleted or compacted file\n"
        "  gc_deletes_per_sec    at most this many orphan deletes per second (1000)\n"
        "  compact               allow compaction (`tessera admin compact`) (true)\n"
        "  compact_background    also compact in background rounds while leader (true)\n"
        "  compact_interval_ms   between background rounds (10000)\n"
        "  compact_min_age_ms    background rounds leave files modified more recently,\n"
        "                        and the files of directories changed more recently,\n"
        "                        alone (60000)\n"
        "  compact_bytes_per_sec budget of bytes copied by background rounds (32M)\n"
        "  compact_chunk_size    size of the chunks compaction writes (64M; the\n"
        "                        clients' chunk_size)\n"
        "  compact_min_extents   a file's tail of at least this many small extents\n"
        "                        is rewritten (16)\n"
        "  compact_small_extent  extents shorter than this are small (1M)\n"
        "  compact_small_file    files up to this size are packed into shared pack\n"
        "                        chunks (1M; 0 = no packing)\n"
        "  compact_min_pack_files  files in one pack chunk at least (8)\n"
        "  compact_repack_live_percent  a pack chunk with less live data than this\n"
        "                        share of its length is repacked (50)\n"
        "  snapshot_every        write a snapshot every N log records (100000); it is\n"
        "                        built in the background from the previous one plus\n"
        "                        the log since (clients are not paused; memory peaks\n"
        "                        at about twice the namespace meanwhile)\n"
        "  wal_fsync             fsync the log before answering (true).  false is for\n"
        "                        benchmarks only and UNSAFE: a machine crash loses\n"
        "                        acknowledged updates\n"
        "\n"
        "Replication (Raft; common/PROTOCOL.md, README \"Metadata high availability\"):\n"
        "  id                    this server's name in the group, NAME-N with N a\n"
        "                        positive number unique in the group (the Raft member\n"
        "                        id), e.g. meta-1 (none: single server)\n"
        "  peers                 the group: id=HOST:PORT,... including this server, e.g.\n"
        "                        meta-1=h1:7001,meta-2=h2:7001,meta-3=h3:7001 (none:\n"
        "                        single server with its own log, as without Raft).\n"
        "                        Every member of a new group must be given the same\n"
        "                        list; it is used only for a new data directory, later\n"
        "                        changes go through `tessera admin raft add|remove`\n"
        "  join                  start empty and wait to be added to an existing group\n"
        "                        with `tessera admin raft add` (false); peers then only\n"
        "                        needs this server's own entry\n"
        "  raft_tick_ms          Raft clock tick; elections time out after 10-20 ticks,\n"
        "                        heartbeats every 2 (50)\n"
        "  lease_reads           the leader answers reads without a round to its peers\n"
        "                        for 8 ticks after a majority confirmed it (true);\n"
        "                        false confirms every read (ReadIndex)\n"
        "  snapshot_every and wal_fsync apply to the Raft log and snapshots too\n"
        "  fault_injection       accept POST /v1/raft/fault, which cuts this server off\n"
        "                        from chosen peers (false).  For partition tests only\n"
        "\nEnvironment:\n"
        "  TESSERA_MALLOC_TUNE=0 do not re-execute at start with one malloc arena on\n"
        "                        transparent huge pages (GLIBC_TUNABLES\n"
        "                        glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1, added\n"
        "                        to the tunables already set); the server's memory\n"
        "                        grows with its log and inline data, and without it\n"
        "                        each new 4 KiB page costs a page fault\n");
}

struct settings {
    const char *listen, *data_dir, *log_file, *id, *peers;
    int log_level;
    int64_t heartbeat_timeout_ms, snapshot_every, raft_tick_ms;
    int64_t down_after_ms, repair_max_copies;
    int64_t gc_grace_ms, gc_deletes_per_sec;
    int repair, gc, compact, compact_background;
    int64_t compact_interval_ms, compact_min_age_ms, compact_min_extents, compact_min_pack_files, compact_live_pct;
    uint64_t compact_bytes_per_sec, compact_chunk_size, compact_small_extent, compact_small_file;
    uint64_t repair_bytes_per_sec;
    int wal_fsync, join, fault_injection, lease_reads;
};

/* Replicated mode: the group as configured. */
struct group {
    uint64_t self;              /* Raft id of this server; 0 = single server */
    char self_addr[RAFT_ADDR_MAX];
    raft_conf conf;
    char names[RAFT_MAX_MEMBERS][64];
};

/* "meta-3" -> 3: the number after the last '-' (or the whole name). */
static int raft_id_of(const char *name, uint64_t *id, ts_error *err)
{
    const char *dash = strrchr(name, '-'), *num = dash ? dash + 1 : name;
    char *end;
    unsigned long long v = strtoull(num, &end, 10);
    if (*num == '\0' || *end != '\0' || v == 0 || v > UINT32_MAX)
        return ts_fail(err, TS_EINVAL, "id '%s': expected NAME-N with N a positive number "
                       "(e.g. meta-1)", name);
    *id = v;
    return 0;
}

/* Parses peers = "id=host:port,..." into g (and checks id is in it). */
static int parse_group(const struct settings *s, struct group *g, ts_error *err)
{
    char *copy = ts_strdup(s->peers), *save = NULL;
    int rc = raft_id_of(s->id, &g->self, err);
    for (char *tok = strtok_r(copy, ",", &save); rc == 0 && tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *eq = strchr(tok, '='), *host = NULL;
        int port;
        if (eq == NULL) {
            rc = ts_fail(err, TS_EINVAL, "peers: '%s' is not id=host:port", tok);
            break;
        }
        *eq = '\0';
        uint64_t id;
        if ((rc = raft_id_of(tok, &id, err)) != 0 ||
            (rc = ts_parse_hostport(eq + 1, &host, &port, err)) != 0) {
            ts_error_prefix(err, "peers");
            break;
        }
        free(host);
        if (g->conf.n == RAFT_MAX_MEMBERS || strlen(eq + 1) >= RAFT_ADDR_MAX ||
            strlen(tok) >= sizeof(g->names[0]) || raft_conf_find(&g->conf, id) != NULL) {
            rc = ts_fail(err, TS_EINVAL, "peers: '%s': duplicate id, address too long or more "
                         "than %d members", tok, RAFT_MAX_MEMBERS);
            break;
        }
        raft_member *m = &g->conf.m[g->conf.n];
        m->id = id;
        m->role = RAFT_VOTER;
        snprintf(m->addr, sizeof(m->addr), "%s", eq + 1);
        snprintf(g->names[g->conf.n], sizeof(g->names[0]), "%s", tok);
        g->conf.n++;
    }
    free(copy);
    if (rc != 0)
        return rc;
    const raft_member *me = raft_conf_find(&g->conf, g->self);
    if (me == NULL)
        return ts_fail(err, TS_EINVAL, "peers does not list this server (id %s)", s->id);
    snprintf(g->self_addr, sizeof(g->self_addr), "%s", me->addr);
    return 0;
}

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
    if ((rc = ts_config_int(cfg, "heartbeat_timeout_ms", 15000, &s->heartbeat_timeout_ms,
                            err)) != 0 ||
        (rc = ts_config_int(cfg, "down_after_ms", 0, &s->down_after_ms, err)) != 0 ||
        (rc = ts_config_bool(cfg, "repair", 1, &s->repair, err)) != 0 ||
        (rc = ts_config_size(cfg, "repair_bytes_per_sec", 64ull << 20, &s->repair_bytes_per_sec,
                             err)) != 0 ||
        (rc = ts_config_int(cfg, "repair_max_copies", 2, &s->repair_max_copies, err)) != 0 ||
        (rc = ts_config_int(cfg, "snapshot_every", 100000, &s->snapshot_every, err)) != 0 ||
        (rc = ts_config_bool(cfg, "wal_fsync", 1, &s->wal_fsync, err)) != 0 ||
        (rc = ts_config_bool(cfg, "join", 0, &s->join, err)) != 0 ||
        (rc = ts_config_bool(cfg, "fault_injection", 0, &s->fault_injection, err)) != 0 ||
        (rc = ts_config_int(cfg, "raft_tick_ms", 50, &s->raft_tick_ms, err)) != 0 ||
        (rc = ts_config_bool(cfg, "gc", 1, &s->gc, err)) != 0 ||
        (rc = ts_config_int(cfg, "gc_grace_ms", GC_DEFAULT_GRACE_MS, &s->gc_grace_ms,
                            err)) != 0 ||
        (rc = ts_config_int(cfg, "gc_deletes_per_sec", 1000, &s->gc_deletes_per_sec, err)) != 0 ||
        (rc = ts_config_bool(cfg, "compact", 1, &s->compact, err)) != 0 ||
        (rc = ts_config_bool(cfg, "compact_background", 1, &s->compact_background, err)) != 0 ||
        (rc = ts_config_int(cfg, "compact_interval_ms", 10000, &s->compact_interval_ms,
                            err)) != 0 ||
        (rc = ts_config_int(cfg, "compact_min_age_ms", 60000, &s->compact_min_age_ms,
                            err)) != 0 ||
        (rc = ts_config_size(cfg, "compact_bytes_per_sec", 32ull << 20,
                             &s->compact_bytes_per_sec, err)) != 0 ||
        (rc = ts_config_size(cfg, "compact_chunk_size", 64ull << 20, &s->compact_chunk_size,
                             err)) != 0 ||
        (rc = ts_config_int(cfg, "compact_min_extents", 16, &s->compact_min_extents, err)) != 0 ||
        (rc = ts_config_size(cfg, "compact_small_extent", 1ull << 20, &s->compact_small_extent,
                             err)) != 0 ||
        (rc = ts_config_size(cfg, "compact_small_file", 1ull << 20, &s->compact_small_file,
                             err)) != 0 ||
        (rc = ts_config_int(cfg, "compact_min_pack_files", 8, &s->compact_min_pack_files,
                            err)) != 0 ||
        (rc = ts_config_int(cfg, "compact_repack_live_percent", 50, &s->compact_live_pct,
                            err)) != 0 ||
        (rc = ts_config_bool(cfg, "lease_reads", 1, &s->lease_reads, err)) != 0)
        return rc;
    if (s->compact_min_age_ms < 0)
        return ts_fail(err, TS_EINVAL, "compact_min_age_ms must not be negative");
    if (s->compact_interval_ms < 100)
        return ts_fail(err, TS_EINVAL, "compact_interval_ms must be at least 100");
    if (s->compact_chunk_size == 0 || s->compact_bytes_per_sec == 0)
        return ts_fail(err, TS_EINVAL, "compact_chunk_size and compact_bytes_per_sec must be "
                       "positive");
    if (s->compact_min_extents < 2 || s->compact_min_extents > 1000000)
        return ts_fail(err, TS_EINVAL, "compact_min_extents must be 2..1000000");
    if (s->compact_small_file > s->compact_chunk_size)
        return ts_fail(err, TS_EINVAL, "compact_small_file must not exceed compact_chunk_size");
    if (s->compact_min_pack_files < 2 || s->compact_min_pack_files > 1000000)
        return ts_fail(err, TS_EINVAL, "compact_min_pack_files must be 2..1000000");
    if (s->compact_live_pct < 0 || s->compact_live_pct > 100)
        return ts_fail(err, TS_EINVAL, "compact_repack_live_percent must be 0..100");
    if (s->gc_grace_ms < 1)
        return ts_fail(err, TS_EINVAL, "gc_grace_ms must be positive");
    if (s->gc_deletes_per_sec < 1 || s->gc_deletes_per_sec > 100000)
        return ts_fail(err, TS_EINVAL, "gc_deletes_per_sec must be 1..100000");
    s->id = ts_config_str(cfg, "id", NULL);
    s->peers = ts_config_str(cfg, "peers", NULL);
    if ((s->id == NULL) != (s->peers == NULL))
        return ts_fail(err, TS_EINVAL, "id and peers go together (both for a Raft group, "
                       "neither for a single server)");
    if (s->raft_tick_ms < 5 || s->raft_tick_ms > 10000)
        return ts_fail(err, TS_EINVAL, "raft_tick_ms must be 5..10000");
    if (s->heartbeat_timeout_ms <= 0)
        return ts_fail(err, TS_EINVAL, "heartbeat_timeout_ms must be positive");
    if (s->down_after_ms == 0)
        s->down_after_ms = 2 * s->heartbeat_timeout_ms;
    if (s->down_after_ms <= s->heartbeat_timeout_ms)
        return ts_fail(err, TS_EINVAL, "down_after_ms (%lld) must be more than "
                       "heartbeat_timeout_ms (%lld): a server is suspect before it is down",
                       (long long)s->down_after_ms, (long long)s->heartbeat_timeout_ms);
    if (s->repair_bytes_per_sec == 0)
        return ts_fail(err, TS_EINVAL, "repair_bytes_per_sec must be positive");
    if (s->repair_max_copies < 1 || s->repair_max_copies > 64)
        return ts_fail(err, TS_EINVAL, "repair_max_copies must be 1..64");
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
    repair *rp = NULL;
    gc *gcl = NULL;
    compact *cpt = NULL;
    raft_transport *rt = NULL;
    struct group g;
    meta_api *api = NULL;
    ts_config *cfg = NULL;

    ts_malloc_tune_exec(argv);
    cfg = ts_config_new();
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
    memset(&g, 0, sizeof(g));
    if (read_settings(cfg, &s, &err) != 0 ||
        ts_parse_hostport(s.listen, &host, &port, &err) != 0 ||
        (s.peers != NULL && parse_group(&s, &g, &err) != 0)) {
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
    ts_http_client_global_init();   /* before any thread makes a request */

    store_opts so = { .data_dir = s.data_dir, .wal_fsync = s.wal_fsync,
                      .snapshot_every = (uint64_t)s.snapshot_every };
    if (!s.wal_fsync)
        TS_WARN("wal_fsync=false: the log is not fsynced; a machine crash loses acknowledged "
                "updates (benchmarks only)");
    if (g.self != 0) {
        if (raft_transport_new(g.self, g.self_addr, &rt, &err) != 0) {
            fprintf(stderr, "tessera-meta: cannot start: %s\n", err.msg);
            goto free_host;
        }
        if (s.fault_injection) {
            raft_transport_enable_faults(rt);
            TS_WARN("fault_injection=true: POST /v1/raft/fault can partition this server "
                    "(tests only)");
        }
        so.raft_id = g.self;
        so.raft_peers = s.join ? NULL : &g.conf;
        so.raft_send = raft_transport_send;
        so.raft_send_arg = rt;
        so.raft_tick_ms = (int)s.raft_tick_ms;
        so.raft_lease_reads = s.lease_reads;
    }
    if (store_open(&so, &st, &err) != 0) {
        TS_ERROR("cannot start: %s", err.msg);
        fprintf(stderr, "tessera-meta: cannot start: %s\n", err.msg);
        goto free_transport;
    }
    cl = cluster_new(s.heartbeat_timeout_ms);
    cluster_set_down_after(cl, s.down_after_ms);
    repair_opts ro = { .bytes_per_sec = s.repair_bytes_per_sec,
                       .max_copies_per_server = (unsigned)s.repair_max_copies };
    api = meta_api_new(st, cl);
    if (!s.repair)
        TS_WARN("repair=false: chunks below their replication factor are not copied");
    else if (repair_start(st, cl, &ro, &rp, &err) != 0) {
        TS_ERROR("cannot start: %s", err.msg);
        fprintf(stderr, "tessera-meta: cannot start: %s\n", err.msg);
        goto stop_all;
    }
    meta_api_set_repair(api, rp);
    gc_opts go = { .grace_ms = s.gc_grace_ms, .deletes_per_sec = (unsigned)s.gc_deletes_per_sec };
    if (!s.gc)
        TS_WARN("gc=false: orphan chunk replicas are never deleted");
    else if (gc_start(st, cl, &go, &gcl, &err) != 0) {
        TS_ERROR("cannot start: %s", err.msg);
        fprintf(stderr, "tessera-meta: cannot start: %s\n", err.msg);
        goto stop_all;
    }
    meta_api_set_gc(api, gcl);
    compact_opts co = { .background = s.compact_background,
                        .interval_ms = s.compact_interval_ms,
                        .min_age_ms = s.compact_min_age_ms,
                        .bytes_per_sec = s.compact_bytes_per_sec };
    cp_opts_default(&co.plan);
    co.plan.chunk_size = s.compact_chunk_size;
    co.plan.min_extents = (uint32_t)s.compact_min_extents;
    co.plan.small_extent = s.compact_small_extent;
    co.plan.small_file = s.compact_small_file;
    co.plan.min_pack_files = (uint32_t)s.compact_min_pack_files;
    co.plan.repack_live = (double)s.compact_live_pct / 100.0;
    if (!s.compact)
        TS_WARN("compact=false: small extents and small files are never compacted");
    else if (compact_start(st, cl, &co, &cpt, &err) != 0) {
        TS_ERROR("cannot start: %s", err.msg);
        fprintf(stderr, "tessera-meta: cannot start: %s\n", err.msg);
        goto stop_all;
    }
    meta_api_set_compact(api, cpt);
    if (rt != NULL) {
        raft_transport_attach(rt, store_raft(st));
        meta_api_set_raft(api, rt, &g.conf, g.names);
        TS_INFO("Raft member %s (%llu) at %s, %u configured peers%s", s.id,
                (unsigned long long)g.self, g.self_addr, g.conf.n,
                s.join ? "; joining: waiting to be added" : "");
    }
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
    repair_stop(rp);        /* waits for running copies */
    gc_stop(gcl);           /* waits for a running delete */
    compact_stop(cpt);      /* waits for a running job */
    cluster_free(cl);
    if (rt != NULL)
        raft_transport_attach(rt, NULL);   /* senders deliver answers into the node */
    store_close(st);        /* syncs the log, stops the Raft server */
free_transport:
    raft_transport_free(rt);    /* after the Raft server: nothing sends any more */
    if (status == 0)
        TS_INFO("stopped");
free_host:
    free(host);
free_config:
    ts_config_free(cfg);
    return status;
}
