/*
 * `tessera admin …`: operator views of the cluster.  `status` shows the
 * chunkservers and replication health from GET /v1/cluster/status; `chunks`
 * shows where a file's data lives from /v1/file/layout.  Each has a human
 * table and a --json form whose shape scripts and tests rely on:
 *
 *   status: {"servers":[{"id","address","zone","weight","state","capacity",
 *            "used","chunks",…}],"chunks":N,"under_replicated":N,…}
 *   chunks: {"path","size","chunks":[{"id","file_offset","length",
 *            "replicas":[server id…],"inline":bool}]} (inline: the data is
 *            kept by the metadata service, no replicas)
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "fs/cli.h"

static void print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (!s) {
        cli_error("cannot encode JSON output");
        return;
    }
    printf("%s\n", s);
    free(s);
}

/* ----------------------------------------------------------------- status */

static const char status_usage[] =
    "usage: tessera admin status [--json]\n"
    "\n"
    "Show every chunkserver (state, capacity, use, chunks, last heartbeat) and\n"
    "the cluster's chunk and replication counts.\n"
    "\n"
    "  --json       the metadata server's answer as JSON:\n"
    "               {\"servers\":[{\"id\",\"address\",\"zone\",\"weight\",\"state\",\n"
    "               \"capacity\",\"used\",\"chunks\"}],\"chunks\",\"under_replicated\",\n"
    "               \"repair\":{…},\"rebalance\":{…},\"gc\":{…},\"compaction\":{…}};\n"
    "               state is up, suspect, down, draining or removed\n"
    "  -h, --help   this help\n";

static long long jint_or(const json_t *o, const char *key, long long def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

/* The leader's re-replication figures ("repair" in the status answer). */
static void print_repair(const json_t *r)
{
    if (!json_is_object(r))
        return;
    printf("repair: %s, %lld copies running, %lld copied (%.1f MiB), %lld failed, "
           "%lld refused busy, %lld surplus deleted\n",
           !json_is_true(json_object_get(r, "reports_complete")) ? "waiting for reports"
           : json_is_true(json_object_get(r, "episode_active")) ? "restoring" : "idle",
           jint_or(r, "copies_running", 0), jint_or(r, "copies_total", 0),
           (double)jint_or(r, "copy_bytes_total", 0) / 1048576.0,
           jint_or(r, "copy_failures_total", 0), jint_or(r, "copy_busy_total", 0),
           jint_or(r, "deletes_total", 0));
    if (jint_or(r, "last_full_restore_ms", -1) < 0)
        return;
    long long single = jint_or(r, "last_single_replica_restore_ms", -1);
    char buf[64] = "none";
    if (single >= 0)
        snprintf(buf, sizeof(buf), "%.1f s", (double)single / 1000.0);
    printf("last restore: single-replica chunks %s, full replication %.1f s, %.1f MiB/s\n",
           buf, (double)jint_or(r, "last_full_restore_ms", 0) / 1000.0,
           json_number_value(json_object_get(r, "last_restore_mib_per_sec")));
}

/* The server table of `status` and `nodes`. */
static void print_servers(const tess_cluster_status *st)
{
    size_t up = 0, suspect = 0, down = 0, draining = 0, removed = 0;

    printf("%-10s %-21s %-8s %6s %-8s %10s %10s %8s %s\n", "ID", "ADDRESS", "ZONE", "WEIGHT",
           "STATE", "CAPACITY", "USED", "CHUNKS", "HEARTBEAT");
    for (size_t i = 0; i < st->servers.n; i++) {
        const tess_server *s = &st->servers.v[i];
        char cap[32], used[32], hb[32];

        if (s->last_heartbeat_ms_ago >= 0)
            snprintf(hb, sizeof(hb), "%.1fs ago", (double)s->last_heartbeat_ms_ago / 1000.0);
        else
            snprintf(hb, sizeof(hb), "-");
        printf("%-10s %-21s %-8s %6g %-8s %10s %10s %8llu %s\n", s->id, s->address,
               *s->zone ? s->zone : "-", s->weight, tess_server_state_name(s->state),
               ts_format_size(s->capacity, cap, sizeof(cap)),
               ts_format_size(s->used, used, sizeof(used)), (unsigned long long)s->chunks, hb);
        up += s->state == TESS_SERVER_UP;
        suspect += s->state == TESS_SERVER_SUSPECT;
        down += s->state == TESS_SERVER_DOWN;
        draining += s->state == TESS_SERVER_DRAINING;
        removed += s->state == TESS_SERVER_REMOVED;
    }
    printf("\n%zu chunkserver%s: %zu up, %zu suspect, %zu down, %zu draining, %zu removed\n",
           st->servers.n, st->servers.n == 1 ? "" : "s", up, suspect, down, draining, removed);
}

/* Shared by `status` and `nodes`: options, the call, --json.  Returns -1
 * when the caller prints the human form of *st (then frees it), else the
 * exit status. */
static int status_common(cli_ctx *ctx, const char *cmd, const char *usage, int argc,
                         char **argv, tess_cluster_status *st)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, ch;
    tess_client *c;
    ts_error e;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_bad_option(cmd, argv, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!(c = cli_client(ctx)))
        return 1;
    if (tess_cluster_status_get(c, st, &e) != 0) {
        cli_error("%s: %s", cmd, e.msg);
        return 1;
    }
    if (!json)
        return -1;
    if (strcmp(cmd, "admin nodes") == 0) {
        json_t *o = json_object();
        json_object_set(o, "servers", json_object_get(st->raw, "servers"));
        print_json(o);
        json_decref(o);
    } else {
        print_json(st->raw);
    }
    tess_cluster_status_free(st);
    return 0;
}

static int admin_status(cli_ctx *ctx, int argc, char **argv)
{
    tess_cluster_status st;
    int rc = status_common(ctx, "admin status", status_usage, argc, argv, &st);

    if (rc >= 0)
        return rc;
    print_servers(&st);
    printf("chunks: %llu, under-replicated: %llu\n", (unsigned long long)st.chunks,
           (unsigned long long)st.under_replicated);
    json_int_t ic = json_integer_value(json_object_get(st.raw, "inline_chunks"));
    if (ic > 0) {
        char sz[32];
        ts_format_size((uint64_t)json_integer_value(json_object_get(st.raw, "inline_bytes")), sz,
                       sizeof sz);
        printf("inline chunks: %lld (%s kept in the metadata; compaction moves them to "
               "chunkservers)\n", (long long)ic, sz);
    }
    printf("files: %llu, directories: %llu\n", (unsigned long long)st.files,
           (unsigned long long)st.directories);
    print_repair(json_object_get(st.raw, "repair"));
    const json_t *rb = json_object_get(st.raw, "rebalance");
    if (json_is_true(json_object_get(rb, "running")))
        printf("rebalance: running, %.1f of %.1f MiB moved (tessera admin rebalance --status)\n",
               (double)jint_or(rb, "bytes_done", 0) / 1048576.0,
               (double)jint_or(rb, "bytes_target", 0) / 1048576.0);
    cli_print_gc_status(st.raw);
    cli_print_compaction_status(st.raw);
    tess_cluster_status_free(&st);
    return 0;
}

/* ------------------------------------------------------------------ nodes */

static const char nodes_usage[] =
    "usage: tessera admin nodes [--json]\n"
    "\n"
    "List the chunkservers: id, address, zone, weight, state (up, suspect,\n"
    "down, draining, removed), capacity, used, chunk count and last heartbeat.\n"
    "\n"
    "  --json       {\"servers\":[{\"id\",\"address\",\"zone\",\"weight\",\"state\",\n"
    "               \"capacity\",\"used\",\"chunks\",\"last_heartbeat_ms_ago\",…}]}\n"
    "  -h, --help   this help\n";

static int admin_nodes(cli_ctx *ctx, int argc, char **argv)
{
    tess_cluster_status st;
    int rc = status_common(ctx, "admin nodes", nodes_usage, argc, argv, &st);

    if (rc >= 0)
        return rc;
    print_servers(&st);
    tess_cluster_status_free(&st);
    return 0;
}

/* ----------------------------------------------------------------- chunks */

static const char chunks_usage[] =
    "usage: tessera admin chunks PATH [--json]\n"
    "\n"
    "Show the chunks holding the file PATH: the file range each covers and\n"
    "the chunkservers known to hold a replica.\n"
    "\n"
    "  --json       {\"path\",\"size\",\"chunks\":[{\"id\",\"file_offset\",\"length\",\n"
    "               \"replicas\":[server id…],\"inline\":bool}]}\n"
    "  -h, --help   this help\n";

static int admin_chunks(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char norm[TS_PATH_MAX + 1], buf[600];
    tess_layout *l = NULL;
    int json = 0, ch, rc = 1;
    tess_client *c;
    ts_attr a;
    ts_error e;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'h': fputs(chunks_usage, stdout); return 0;
        default: return cli_bad_option("admin chunks", argv, ch);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("admin chunks", "expected one PATH");
    if (!(c = cli_client(ctx)))
        return 1;
    if (tess_path_normalize(argv[optind], norm, &e) != 0 || tess_resolve(c, norm, &a, &e) != 0) {
        cli_error("admin chunks %s: %s", argv[optind], cli_errmsg(&e, buf, sizeof(buf)));
        return 1;
    }
    if ((a.mode & S_IFMT) != S_IFREG) {
        cli_error("admin chunks %s: not a regular file", argv[optind]);
        return 1;
    }
    if (tess_get_layout(c, a.ino, &l, &e) != 0) {
        cli_error("admin chunks %s: %s", argv[optind], e.msg);
        return 1;
    }
    if (json) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "path", json_string(norm));
        json_object_set_new(o, "size", json_integer((json_int_t)l->attr.size));
        for (size_t i = 0; i < l->nextents; i++) {
            const tess_layout_extent *x = &l->extents[i];
            char hex[TS_CHUNK_ID_HEX_LEN + 1];
            json_t *ch_o = json_object(), *reps = json_array();

            ts_chunk_id_to_hex(&x->ext.chunk, hex);
            json_object_set_new(ch_o, "id", json_string(hex));
            json_object_set_new(ch_o, "file_offset", json_integer((json_int_t)x->ext.file_offset));
            json_object_set_new(ch_o, "length", json_integer((json_int_t)x->ext.length));
            json_object_set_new(ch_o, "chunk_offset", json_integer((json_int_t)x->ext.chunk_offset));
            json_object_set_new(ch_o, "chunk_length", json_integer((json_int_t)x->chunk_length));
            for (size_t k = 0; k < x->nreplicas; k++)
                json_array_append_new(reps, json_string(x->replicas[k]));
            json_object_set_new(ch_o, "replicas", reps);
            json_object_set_new(ch_o, "inline", json_boolean(x->inline_data != NULL));
            json_array_append_new(arr, ch_o);
        }
        json_object_set_new(o, "chunks", arr);
        print_json(o);
        json_decref(o);
        rc = 0;
        goto free_layout;
    }
    printf("%s: %llu bytes (%s), %zu chunk%s\n", norm, (unsigned long long)l->attr.size,
           ts_format_size(l->attr.size, buf, sizeof(buf)), l->nextents,
           l->nextents == 1 ? "" : "s");
    if (l->nextents > 0)
        printf("%-32s %14s %12s  %s\n", "CHUNK", "FILE OFFSET", "LENGTH", "REPLICAS");
    for (size_t i = 0; i < l->nextents; i++) {
        const tess_layout_extent *x = &l->extents[i];
        char hex[TS_CHUNK_ID_HEX_LEN + 1];

        ts_chunk_id_to_hex(&x->ext.chunk, hex);
        printf("%-32s %14llu %12llu  ", hex, (unsigned long long)x->ext.file_offset,
               (unsigned long long)x->ext.length);
        for (size_t k = 0; k < x->nreplicas; k++)
            printf("%s%s", k ? "," : "", x->replicas[k]);
        printf("%s\n", x->inline_data ? "(inline: kept in the metadata)"
                        : x->nreplicas ? "" : "(none known)");
    }
    rc = 0;
free_layout:
    tess_layout_free(l);
    return rc;
}

/* ------------------------------------------------------------------ admin */

static const char admin_usage[] =
    "usage: tessera admin COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  status [--json]        chunkservers and replication health\n"
    "  nodes [--json]         the chunkservers and their states\n"
    "  chunks PATH [--json]   where the chunks of a file are stored\n"
    "  fsck [PATH] [--json]   missing and under-replicated chunks (exit 2: data lost)\n"
    "  compact [PATH] [--dry-run]  compact small extents and pack small files now\n"
    "  raft COMMAND           the metadata Raft group: status, add, remove, transfer\n"
    "\n"
    "`tessera admin COMMAND --help` for details.\n";

int cli_cmd_admin(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        fputs(admin_usage, stderr);
        return 1;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(admin_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "status") == 0)
        return admin_status(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "chunks") == 0)
        return admin_chunks(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "nodes") == 0)
        return admin_nodes(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "fsck") == 0)
        return cli_cmd_admin_fsck(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "raft") == 0)
        return cli_cmd_admin_raft(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "node") == 0 || strcmp(argv[1], "drain") == 0 ||
        strcmp(argv[1], "rebalance") == 0)
        return cli_cmd_admin_ops(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "compact") == 0)
        return cli_cmd_admin_compact(ctx, argc - 1, argv + 1);
    return cli_usage_error("admin", "unknown command '%s'", argv[1]);
}
