/*
 * `tessera admin node|drain|rebalance`: steering the cluster's membership
 * and data placement.  Each command is one call to the metadata leader's
 * /v1/admin/... endpoints (metadata/meta_ops_api.c), which check and make
 * the change durable; the leader's repair loop carries drains and
 * rebalances out, so killing this command never stops them (`--status`
 * and `drain ID --wait` look at them again).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/util.h"
#include "fs/cli.h"

#define POLL_MS 500
#define LINE_EVERY_MS 5000          /* progress lines when stderr is not a terminal */
#define UNREACHABLE_GRACE_MS 60000  /* a leader change: keep polling this long */

static long long jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static double jnum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static void print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        printf("%s\n", s);
    else
        cli_error("cannot encode JSON output");
    free(s);
}

/* POSTs req (consumed) to the leader; prints "tessera: WHAT: error" and
 * returns 1 on failure. */
static int admin_post(cli_ctx *ctx, const char *path, json_t *req, json_t **resp,
                      const char *what)
{
    tess_client *c = cli_client(ctx);
    ts_error e = {0};
    if (!c) {
        json_decref(req);
        return 1;
    }
    if (tess_meta_admin_call(c, "POST", path, req, resp, &e) != 0) {
        cli_error("%s: %s", what, e.msg);
        return 1;
    }
    return 0;
}

/* admin_post, but a leader still waiting for chunkserver reports (EBUSY:
 * a new leader) is asked again for up to wait_ms. */
static int admin_post_patient(cli_ctx *ctx, const char *path, json_t *req, json_t **resp,
                              const char *what, int64_t wait_ms)
{
    tess_client *c = cli_client(ctx);
    int64_t until = ts_mono_ms() + wait_ms;
    ts_error e = {0};
    if (!c) {
        json_decref(req);
        return 1;
    }
    while (tess_meta_admin_call(c, "POST", path, json_incref(req), resp, &e) != 0) {
        if (e.code != TS_EBUSY || strstr(e.msg, "waiting for chunkserver reports") == NULL ||
            ts_mono_ms() > until) {
            cli_error("%s: %s", what, e.msg);
            json_decref(req);
            return 1;
        }
        ts_sleep_ms(POLL_MS);
    }
    json_decref(req);
    return 0;
}

/* A weight operand: a number above 0. */
static int parse_weight(const char *cmd, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || !isfinite(v)) {
        cli_usage_error(cmd, "weight '%s' refused: a weight must be a number above 0 (the "
                        "server's share of the data relative to the others)", s);
        return -1;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ node */

static const char node_usage[] =
    "usage: tessera admin node COMMAND ...\n"
    "\n"
    "  add ADDR [--id ID] [--zone Z] [--weight W]\n"
    "                      register the chunkserver at ADDR (host:port), ahead of\n"
    "                      its first heartbeat or to bring a removed server back;\n"
    "                      its id is asked from ADDR unless --id is given (needed\n"
    "                      when it is not running yet)\n"
    "  set-weight ID W     its share of the data relative to the others (W > 0)\n"
    "  set-zone ID Z       its failure domain (replicas go to distinct zones first)\n"
    "  remove ID           take it out of the cluster; refused while it holds a\n"
    "                      replica whose full count does not exist elsewhere (drain\n"
    "                      it first: tessera admin drain ID --wait)\n"
    "\n"
    "Weights and zones set here are durable and win over the server's own\n"
    "configuration.  Rebalance afterwards to move data accordingly.\n";

/* The id a chunkserver reports on GET /health. */
static int ask_id(const char *addr, char *out, size_t outlen, ts_error *e)
{
    ts_http_result res = {0};
    char *url = ts_sprintf("http://%s/health", addr);
    json_t *j = NULL;
    int rc = ts_http_call("GET", url, NULL, NULL, 0, 5000, &res, e);
    free(url);
    if (rc == 0 && res.status != 200)
        rc = ts_fail(e, TS_EPROTO, "%s/health answered HTTP %ld", addr, (long)res.status);
    if (rc == 0 && ts_json_parse_object(res.body, res.body_len, &j, e) != 0)
        rc = TS_EPROTO;
    if (rc == 0) {
        const json_t *id = json_object_get(j, "id");
        const json_t *role = json_object_get(j, "role");
        if (!json_is_string(role) || strcmp(json_string_value(role), "chunk") != 0 ||
            !json_is_string(id))
            rc = ts_fail(e, TS_EPROTO, "%s is not a Tessera chunkserver (its /health names "
                         "no chunkserver id)", addr);
        else
            snprintf(out, outlen, "%s", json_string_value(id));
    }
    json_decref(j);
    ts_http_result_free(&res);
    return rc;
}

static int node_add(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'}, {"zone", required_argument, NULL, 'z'},
        {"weight", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *id = NULL, *zone = NULL;
    double weight = 0;
    int has_weight = 0, ch;
    char learned[128];
    ts_error e = {0};

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': id = optarg; break;
        case 'z': zone = optarg; break;
        case 'w':
            if (parse_weight("admin node add", optarg, &weight) != 0)
                return 1;
            has_weight = 1;
            break;
        case 'h': fputs(node_usage, stdout); return 0;
        default: return cli_bad_option("admin node add", argv, ch);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("admin node add", "expected one ADDR (host:port)");
    const char *addr = argv[optind];
    if (!strchr(addr, ':'))
        return cli_usage_error("admin node add", "'%s' is not an address host:port", addr);
    if (!id) {
        if (ask_id(addr, learned, sizeof(learned), &e) != 0) {
            cli_error("admin node add %s: cannot learn its id: %s; give --id ID to register "
                      "it before it runs", addr, e.msg);
            return 1;
        }
        id = learned;
    }
    json_t *req = json_pack("{s:s, s:s}", "id", id, "address", addr), *resp = NULL;
    if (zone)
        json_object_set_new(req, "zone", json_string(zone));
    if (has_weight)
        json_object_set_new(req, "weight", json_real(weight));
    if (admin_post(ctx, "/v1/admin/node/add", req, &resp, "admin node add") != 0)
        return 1;
    printf("%s at %s: %s\n", id, addr,
           json_is_true(json_object_get(resp, "added")) ? "added (active)"
           : strcmp(jstr(resp, "was"), "removed") == 0 ? "added back (active)"
                                                       : "updated (active)");
    json_decref(resp);
    return 0;
}

static int node_set(cli_ctx *ctx, const char *what, int argc, char **argv)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "admin node %s", what);
    /* No getopt: a negative weight ("-2") must reach the check below as
     * a value, not be taken for an option. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(node_usage, stdout);
            return 0;
        }
    if (argc != 3)
        return cli_usage_error(cmd, "expected ID and %s", strcmp(what, "set-weight") == 0
                                                              ? "WEIGHT" : "ZONE");
    const char *id = argv[1], *val = argv[2];
    json_t *req = json_pack("{s:s}", "id", id), *resp = NULL;
    if (strcmp(what, "set-weight") == 0) {
        double w;
        if (parse_weight(cmd, val, &w) != 0) {
            json_decref(req);
            return 1;
        }
        json_object_set_new(req, "weight", json_real(w));
    } else {
        json_object_set_new(req, "zone", json_string(val));
    }
    if (admin_post(ctx, "/v1/admin/node/set", req, &resp, cmd) != 0)
        return 1;
    printf("%s: %s set to %s (durable; `tessera admin rebalance` moves data accordingly)\n",
           id, strcmp(what, "set-weight") == 0 ? "weight" : "zone", val);
    json_decref(resp);
    return 0;
}

static int node_remove(cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_parse_help_only("admin node remove", node_usage, argc, argv);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1)
        return cli_usage_error("admin node remove", "expected one server ID");
    json_t *resp = NULL;
    if (admin_post_patient(ctx, "/v1/admin/node/remove", json_pack("{s:s}", "id", argv[optind]),
                           &resp, "admin node remove", 30000) != 0)
        return 1;
    printf("%s: removed%s\n", argv[optind],
           *jstr(resp, "note") ? " already" : " (no data lost: every chunk it held has its "
                                              "full count elsewhere)");
    json_decref(resp);
    return 0;
}

static int admin_node(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(node_usage, argc < 2 ? stderr : stdout);
        return argc < 2;
    }
    if (strcmp(argv[1], "add") == 0)
        return node_add(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "set-weight") == 0 || strcmp(argv[1], "set-zone") == 0)
        return node_set(ctx, argv[1], argc - 1, argv + 1);
    if (strcmp(argv[1], "remove") == 0)
        return node_remove(ctx, argc - 1, argv + 1);
    return cli_usage_error("admin node", "unknown command '%s'", argv[1]);
}

/* ------------------------------------------------------------ progress */

/* "[#########...........]  45%  345 MiB / 768 MiB  40 MiB/s  ETA 12 s" on
 * a terminal (redrawn), else a line every few seconds. */
typedef struct bar {
    int tty;
    int items;                  /* counts of items, not bytes */
    int64_t start_ms, last_ms;
    uint64_t start_done;        /* progress already made when watching began */
    int shown;
} bar;

static void bar_init(bar *b, uint64_t done, int items)
{
    memset(b, 0, sizeof(*b));
    b->items = items;
    b->tty = isatty(STDERR_FILENO);
    b->start_ms = ts_mono_ms();
    b->start_done = done;
}

static void bar_update(bar *b, const char *what, uint64_t done, uint64_t total, const char *note)
{
    int64_t now = ts_mono_ms();
    if (now - b->last_ms < (b->tty ? 200 : LINE_EVERY_MS))
        return;
    b->last_ms = now;
    char d[32], t[32], r[32], eta[32] = "ETA -";
    double secs = (double)(now - b->start_ms) / 1000.0;
    double rate = secs > 0.5 && done > b->start_done ? (double)(done - b->start_done) / secs : 0;
    double frac = total ? (double)done / (double)total : 1;
    if (frac > 1)
        frac = 1;
    if (rate > 0 && total > done)
        snprintf(eta, sizeof(eta), "ETA %.0f s", (double)(total - done) / rate);
    char hashes[21];
    int n = (int)(frac * 20);
    for (int i = 0; i < 20; i++)
        hashes[i] = i < n ? '#' : '.';
    hashes[20] = '\0';
    if (b->items) {
        snprintf(d, sizeof(d), "%llu", (unsigned long long)done);
        snprintf(t, sizeof(t), "%llu", (unsigned long long)total);
        snprintf(r, sizeof(r), "%.1f", rate);
    } else {
        ts_format_size(done, d, sizeof(d));
        ts_format_size(total, t, sizeof(t));
        ts_format_size((uint64_t)rate, r, sizeof(r));
    }
    fprintf(stderr, "%s%s [%s] %3.0f%%  %s / %s  %s/s  %s%s%s%s", b->tty ? "\r\033[K" : "",
            what, hashes, frac * 100, d, t, r, eta, note && *note ? "  (" : "",
            note ? note : "", note && *note ? ")" : "");
    if (!b->tty)
        fputc('\n', stderr);
    b->shown = 1;
}

static void bar_end(bar *b)
{
    if (b->tty && b->shown)
        fputs("\r\033[K", stderr);
}

/* Polls path with req_fields until done(resp) says so; leader changes and
 * short outages are waited out.  Returns the last answer or NULL. */
typedef int (*poll_done_fn)(const json_t *resp, bar *b, void *arg);
static json_t *poll_until(cli_ctx *ctx, const char *path, const json_t *req_fields,
                          poll_done_fn done, void *arg, bar *b, const char *what)
{
    tess_client *c = cli_client(ctx);
    int64_t failing_since = 0;
    if (!c)
        return NULL;
    for (;;) {
        json_t *resp = NULL;
        ts_error e = {0};
        if (tess_meta_admin_call(c, "POST", path, json_deep_copy(req_fields), &resp, &e) != 0) {
            int64_t now = ts_mono_ms();
            if (e.code != TS_EUNAVAIL && e.code != TS_ETIMEDOUT && e.code != TS_ENOTLEADER) {
                cli_error("%s: %s", what, e.msg);
                return NULL;
            }
            if (!failing_since)
                failing_since = now;
            if (now - failing_since > UNREACHABLE_GRACE_MS) {
                cli_error("%s: %s (gave up after %d s; the operation goes on in the "
                          "cluster)", what, e.msg, UNREACHABLE_GRACE_MS / 1000);
                return NULL;
            }
            ts_sleep_ms(POLL_MS);
            continue;
        }
        failing_since = 0;
        if (done(resp, b, arg))
            return resp;
        json_decref(resp);
        ts_sleep_ms(POLL_MS);
    }
}

/* ----------------------------------------------------------------- drain */

static const char drain_usage[] =
    "usage: tessera admin drain ID [--wait] [--status] [--json]\n"
    "       tessera admin drain --cancel ID\n"
    "\n"
    "Drain the chunkserver ID: it takes no new replicas but keeps serving\n"
    "reads while the metadata leader copies every chunk it holds to the\n"
    "servers placement chooses (copy, confirm, then delete its replica, within\n"
    "the repair budget).  Refused when fewer than 3 servers would be left up\n"
    "and not draining.  The drain is complete -- safe to remove the server --\n"
    "when every chunk it held (files still being written included, once\n"
    "committed) has its full count on other servers.\n"
    "\n"
    "  --wait       follow the drain until it is complete (progress on stderr),\n"
    "               then up to 30 s more for chunks on it that no file references\n"
    "               yet (writes not committed); exit 1 and say why when it cannot\n"
    "               finish\n"
    "  --status     show where the drain stands and exit\n"
    "  --cancel     stop draining: the server takes new replicas again\n"
    "  --json       the drain status as JSON\n"
    "  -h, --help   this help\n";

/* After its committed chunks are safe, --wait gives chunks the server
 * still holds that no file references yet (a writer that has not
 * committed: they are moved once committed) this long to go. */
#define UNCOMMITTED_GRACE_MS 30000

struct drain_watch {
    long long first_held;
    int stuck;
    int64_t complete_since;     /* 0: not complete yet */
    int64_t started_ms;         /* when this CLI began to wait */
};

static int drain_done(const json_t *s, bar *b, void *arg)
{
    struct drain_watch *w = arg;
    long long held = jint(s, "chunks_held"), shortn = jint(s, "chunks_short");
    if (w->first_held < 0)
        w->first_held = shortn;
    char what[96];
    snprintf(what, sizeof(what), "drain %s: %lld of %lld chunk(s) still short elsewhere; chunks "
             "safe", jstr(s, "id"), shortn, held);
    long long uncommitted = jint(s, "chunks_uncommitted");
    char note[96] = "";
    int complete = json_is_true(json_object_get(s, "complete")) &&
                   json_is_true(json_object_get(s, "reports_complete"));
    if (complete && uncommitted > 0)
        snprintf(note, sizeof(note), "waiting for %lld chunk(s) not committed to a file yet",
                 uncommitted);
    bar_update(b, what, (uint64_t)(w->first_held - shortn), (uint64_t)w->first_held, note);
    if (json_is_true(json_object_get(s, "stuck"))) {
        w->stuck = 1;
        return 1;
    }
    if (!complete) {
        w->complete_since = 0;
        return 0;
    }
    int64_t now = ts_mono_ms();
    if (!w->complete_since)
        w->complete_since = now;
    /* The count of chunks on its disk comes with heartbeats: "nothing
     * uncommitted" means something only from a heartbeat sent after we
     * started waiting (chunks written just before would be missed). */
    long long ago = jint(s, "last_heartbeat_ms_ago");
    int fresh = ago >= 0 && now - ago > w->started_ms;
    return (uncommitted == 0 && fresh) || now - w->complete_since > UNCOMMITTED_GRACE_MS;
}

static void print_drain(const json_t *s)
{
    char held[32];
    printf("%s: %s (admin %s): %lld chunk(s), %s on it; %lld short of their full count "
           "elsewhere\n", jstr(s, "id"), jstr(s, "state"), jstr(s, "admin"),
           jint(s, "chunks_held"), ts_format_size((uint64_t)jint(s, "bytes_held"), held,
                                                  sizeof(held)), jint(s, "chunks_short"));
    printf("%s\n", jstr(s, "reason"));
    if (json_is_true(json_object_get(s, "complete")) && jint(s, "chunks_uncommitted") > 0)
        printf("note: its last heartbeat counted %lld chunk(s) on disk that no file references: "
               "writes not committed yet (once committed they are moved like the rest), or "
               "orphans for the garbage collector\n", jint(s, "chunks_uncommitted"));
}

static int admin_drain(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"wait", no_argument, NULL, 'w'}, {"status", no_argument, NULL, 's'},
        {"cancel", no_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int wait = 0, status = 0, cancel = 0, json = 0, ch, rc = 1;
    json_t *resp = NULL;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'w': wait = 1; break;
        case 's': status = 1; break;
        case 'c': cancel = 1; break;
        case 'j': json = 1; break;
        case 'h': fputs(drain_usage, stdout); return 0;
        default: return cli_bad_option("admin drain", argv, ch);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("admin drain", "expected one server ID");
    if (cancel && (wait || status))
        return cli_usage_error("admin drain", "--cancel goes alone");
    const char *id = argv[optind];
    if (!status) {
        json_t *req = json_pack("{s:s, s:b}", "id", id, "cancel", cancel);
        if (admin_post(ctx, "/v1/admin/drain", req, &resp, "admin drain") != 0)
            return 1;
        if (cancel) {
            printf("%s: drain cancelled; it takes new replicas again\n", id);
            json_decref(resp);
            return 0;
        }
        printf("%s: %s\n", id, json_is_true(json_object_get(resp, "changed"))
                                   ? "draining: no new replicas; its chunks are being copied "
                                     "to other servers"
                                   : "already draining");
        json_decref(resp);
        resp = NULL;
    }
    json_t *req = json_pack("{s:s}", "id", id);
    if (wait) {
        struct drain_watch w = { -1, 0, 0, ts_mono_ms() };
        bar b;
        bar_init(&b, 0, 1);
        resp = poll_until(ctx, "/v1/admin/drain/status", req, drain_done, &w, &b,
                          "admin drain");
        bar_end(&b);
        if (!resp)
            goto out;
    } else if (admin_post(ctx, "/v1/admin/drain/status", json_incref(req), &resp,
                          "admin drain") != 0) {
        goto out;
    }
    if (json)
        print_json(resp);
    else
        print_drain(resp);
    rc = 0;
    if (json_is_true(json_object_get(resp, "stuck"))) {
        if (!json)
            cli_error("admin drain %s: %s", id, jstr(resp, "reason"));
        rc = 1;
    } else if (wait && !json) {
        printf("%s: drain complete: safe to remove (tessera admin node remove %s)\n", id, id);
    }
out:
    json_decref(req);
    json_decref(resp);
    return rc;
}

/* ------------------------------------------------------------- rebalance */

static const char rebalance_usage[] =
    "usage: tessera admin rebalance [--dry-run] [--bandwidth RATE] [--max-moves N]\n"
    "                               [--no-wait] [--json]\n"
    "       tessera admin rebalance --status | --cancel\n"
    "\n"
    "Move replicas to where weighted rendezvous placement wants them under the\n"
    "current membership (after adding servers, changing weights or zones).\n"
    "Prints the plan (bytes each server sends and receives, imbalance before\n"
    "and after), then the metadata leader executes it, most overfull server\n"
    "first: copy, confirm, then delete, throttled by the cluster-wide repair\n"
    "budget (re-replication goes first).  This command follows it with a\n"
    "progress bar and ETA; interrupting it does not stop the rebalance, which\n"
    "is durable: a new leader carries on with the moves that remain.\n"
    "\n"
    "  --dry-run          print the plan only\n"
    "  --bandwidth RATE   at most RATE bytes/s of rebalance copies (e.g. 50M)\n"
    "  --max-moves N      make at most N moves (most overfull first)\n"
    "  --no-wait          start it and return\n"
    "  --status           progress of the running (or last) rebalance\n"
    "  --cancel           stop it (copies under way finish)\n"
    "  --json             the plan/status as JSON\n"
    "  -h, --help         this help\n";

static void print_plan(const json_t *p)
{
    char a[32], b[32], in[32], out[32], sh[32];
    const json_t *servers = json_object_get(p, "servers");
    printf("%-10s %-9s %6s %10s %10s %10s %10s %10s\n", "ID", "STATE", "WEIGHT", "BEFORE",
           "AFTER", "IN", "OUT", "SHARE");
    for (size_t i = 0; i < json_array_size(servers); i++) {
        const json_t *s = json_array_get(servers, i);
        printf("%-10s %-9s %6g %10s %10s %10s %10s %10s\n", jstr(s, "id"), jstr(s, "state"),
               jnum(s, "weight"), ts_format_size((uint64_t)jint(s, "bytes_before"), a, sizeof(a)),
               ts_format_size((uint64_t)jint(s, "bytes_after"), b, sizeof(b)),
               ts_format_size((uint64_t)jint(s, "bytes_in"), in, sizeof(in)),
               ts_format_size((uint64_t)jint(s, "bytes_out"), out, sizeof(out)),
               ts_format_size((uint64_t)jint(s, "share"), sh, sizeof(sh)));
    }
    printf("plan: %lld move(s)%s, %s to move of %s of replicas; imbalance %.1f%% -> %.1f%%\n",
           jint(p, "moves"), jint(p, "moves") < jint(p, "moves_total") ? " (cut by --max-moves)"
                                                                       : "",
           ts_format_size((uint64_t)jint(p, "bytes_to_move"), a, sizeof(a)),
           ts_format_size((uint64_t)jint(p, "total_bytes"), b, sizeof(b)),
           jnum(p, "imbalance_before") * 100, jnum(p, "imbalance_after") * 100);
    if (jint(p, "skipped_under_replicated") > 0)
        printf("note: %lld under-replicated chunk(s) are left to re-replication first\n",
               jint(p, "skipped_under_replicated"));
}

static void print_status(const json_t *s)
{
    char d[32], t[32], c[32];
    if (!json_is_true(json_object_get(s, "running"))) {
        if (jint(s, "bytes_planned") == 0)
            printf("no rebalance has run\n");
        else
            printf("no rebalance running; the last one planned %s (%lld move(s))\n",
                   ts_format_size((uint64_t)jint(s, "bytes_target"), t, sizeof(t)),
                   jint(s, "moves_target"));
        return;
    }
    printf("rebalance running: %s of %s done, %lld move(s) left, %lld cop%s running, %lld "
           "surplus replica(s) to delete; %s copied by this leader; imbalance now %.1f%%%s%s\n",
           ts_format_size((uint64_t)jint(s, "bytes_done"), d, sizeof(d)),
           ts_format_size((uint64_t)jint(s, "bytes_target"), t, sizeof(t)),
           jint(s, "moves_remaining"), jint(s, "copies_running"),
           jint(s, "copies_running") == 1 ? "y" : "ies", jint(s, "surplus_chunks"),
           ts_format_size((uint64_t)jint(s, "bytes_copied"), c, sizeof(c)),
           jnum(s, "imbalance") * 100, *jstr(s, "note") ? "; " : "", jstr(s, "note"));
}

static int rebalance_done(const json_t *s, bar *b, void *arg)
{
    (void)arg;
    if (!json_is_true(json_object_get(s, "running")))
        return 1;
    bar_update(b, "rebalance", (uint64_t)jint(s, "bytes_done"), (uint64_t)jint(s, "bytes_target"),
               jstr(s, "note"));
    return 0;
}

static int admin_rebalance(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"dry-run", no_argument, NULL, 'd'}, {"bandwidth", required_argument, NULL, 'b'},
        {"max-moves", required_argument, NULL, 'm'}, {"status", no_argument, NULL, 's'},
        {"cancel", no_argument, NULL, 'c'}, {"no-wait", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int dry = 0, status = 0, cancel = 0, nowait = 0, json = 0, ch, rc = 1;
    uint64_t bandwidth = 0;
    unsigned max_moves = 0;
    json_t *resp = NULL;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': dry = 1; break;
        case 'b':
            if (optarg[0] == '-')
                return cli_usage_error("admin rebalance", "--bandwidth '%s' refused: the "
                                       "bandwidth must be a positive rate in bytes/s such as "
                                       "50M", optarg);
            if (cli_parse_size("admin rebalance", "--bandwidth", optarg, &bandwidth) != 0)
                return 1;
            break;
        case 'm':
            if (cli_parse_uint("admin rebalance", "--max-moves", optarg, 1, 1u << 30,
                               &max_moves) != 0)
                return 1;
            break;
        case 's': status = 1; break;
        case 'c': cancel = 1; break;
        case 'n': nowait = 1; break;
        case 'j': json = 1; break;
        case 'h': fputs(rebalance_usage, stdout); return 0;
        default: return cli_bad_option("admin rebalance", argv, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error("admin rebalance", "unexpected argument '%s'", argv[optind]);
    if ((status || cancel) && (dry || bandwidth || max_moves || status + cancel > 1))
        return cli_usage_error("admin rebalance", "--status and --cancel go alone");
    if (status) {
        if (admin_post(ctx, "/v1/admin/rebalance/status", json_object(), &resp,
                       "admin rebalance --status") != 0)
            return 1;
        json ? print_json(resp) : print_status(resp);
        json_decref(resp);
        return 0;
    }
    json_t *req = json_pack("{s:b, s:b}", "dry_run", dry, "cancel", cancel);
    if (bandwidth)
        json_object_set_new(req, "bandwidth", json_integer((json_int_t)bandwidth));
    if (max_moves)
        json_object_set_new(req, "max_moves", json_integer((json_int_t)max_moves));
    if (admin_post_patient(ctx, "/v1/admin/rebalance", req, &resp, "admin rebalance",
                           30000) != 0)
        return 1;
    if (cancel) {
        printf("rebalance cancelled (copies under way finish)\n");
        json_decref(resp);
        return 0;
    }
    const json_t *st = json_object_get(resp, "status");
    int running = json_is_true(json_object_get(st, "running"));
    if (!json)
        print_plan(resp);
    if (dry || nowait || !running) {
        if (json)
            print_json(resp);
        else if (dry)
            printf("dry run: nothing moved\n");
        else if (!running)
            printf("nothing to move: data is where placement wants it\n");
        else
            printf("rebalance running (tessera admin rebalance --status)\n");
        json_decref(resp);
        return 0;
    }
    if (!json && *jstr(resp, "note"))
        printf("%s\n", jstr(resp, "note"));
    bar b;
    bar_init(&b, (uint64_t)jint(st, "bytes_done"), 0);
    int64_t t0 = ts_mono_ms();
    json_t *empty = json_object();
    json_t *last = poll_until(ctx, "/v1/admin/rebalance/status", empty, rebalance_done, NULL, &b,
                              "admin rebalance");
    json_decref(empty);
    bar_end(&b);
    if (last) {
        double secs = (double)(ts_mono_ms() - t0) / 1000.0;
        char moved[32];
        if (json) {
            json_object_set(resp, "status", last);
            json_object_set_new(resp, "seconds", json_real(secs));
            print_json(resp);
        } else {
            printf("rebalance finished in %.1f s: %s copied by the leader (%.1f MiB/s)\n", secs,
                   ts_format_size((uint64_t)jint(last, "bytes_copied"), moved, sizeof(moved)),
                   secs > 0 ? (double)jint(last, "bytes_copied") / 1048576.0 / secs : 0);
        }
        rc = 0;
    }
    json_decref(last);
    json_decref(resp);
    return rc;
}

/* ---------------------------------------------------------------- entry */

int cli_cmd_admin_ops(cli_ctx *ctx, int argc, char **argv)
{
    if (strcmp(argv[0], "node") == 0)
        return admin_node(ctx, argc, argv);
    if (strcmp(argv[0], "drain") == 0)
        return admin_drain(ctx, argc, argv);
    return admin_rebalance(ctx, argc, argv);
}
