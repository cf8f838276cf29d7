/*
 * `tessera admin raft status|add|remove|transfer`: the Raft group of the
 * metadata service.  `status` asks every server itself (GET /v1/raft/status)
 * so that it also shows the ones that are down; the changes go to the
 * leader (POST /v1/raft/add|remove|transfer, common/PROTOCOL.md).
 *
 *   status --json: {"servers":[{"id","address","role","term","commit",
 *                  "applied","log_entries","snapshot_index"}]}, one entry per
 *                  member of the group (as the leader, else any answering
 *                  server, knows it; else the configured addresses), role
 *                  "unreachable" for a server that does not answer.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/cli.h"

#define STATUS_TIMEOUT_MS 2000

/* GET http://addr/v1/raft/status; NULL when it does not answer 200. */
static json_t *server_status(const char *addr)
{
    char url[256];
    ts_http_result r = {0};
    json_t *j = NULL;
    ts_error e;

    snprintf(url, sizeof(url), "http://%s/v1/raft/status", addr);
    if (ts_http_call("GET", url, NULL, NULL, 0, STATUS_TIMEOUT_MS, &r, &e) != 0 ||
        r.status != 200 || ts_json_parse_object(r.body, r.body_len, &j, &e) != 0)
        j = NULL;
    ts_http_result_free(&r);
    return j;
}

static void set_or_die(json_t *o, const char *key, json_t *v)
{
    if (!v || json_object_set_new(o, key, v) != 0)
        ts_die("out of memory building the Raft status");
}

/* One row of the answer for member (id, address), from its own status j
 * (NULL: unreachable). */
static json_t *status_row(const char *id, const char *addr, const json_t *j)
{
    static const char *const copied[] = {
        "role", "term", "commit", "applied", "log_entries", "snapshot_index", "leader",
    };
    json_t *o = json_object();

    if (!o)
        ts_die("out of memory building the Raft status");
    set_or_die(o, "id", json_string(id));
    set_or_die(o, "address", json_string(addr));
    if (j == NULL) {
        set_or_die(o, "role", json_string("unreachable"));
        return o;
    }
    for (size_t i = 0; i < TS_ARRAY_LEN(copied); i++) {
        json_t *v = json_object_get(j, copied[i]);
        if (v)
            set_or_die(o, copied[i], json_deep_copy(v));
    }
    return o;
}

static const char raft_status_usage[] =
    "usage: tessera admin raft status [--json]\n"
    "\n"
    "Show each server of the metadata Raft group: its role (leader, follower,\n"
    "candidate, learner, or unreachable), term, commit and applied index, log\n"
    "entries kept and last snapshot.  Every configured metadata server is asked.\n"
    "\n"
    "  --json       {\"servers\":[{\"id\",\"address\",\"role\",\"term\",\"commit\",\n"
    "               \"applied\",\"log_entries\",\"snapshot_index\"}]}\n"
    "  -h, --help   this help\n";

static int raft_status(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, ch;
    tess_client *c;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'h': fputs(raft_status_usage, stdout); return 0;
        default: return cli_bad_option("admin raft status", argv, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error("admin raft status", "unexpected argument '%s'", argv[optind]);
    if (!(c = cli_client(ctx)))
        return 1;

    /* Every known address's own view; the group is the leader's list of
     * members, else that of any server that answered. */
    size_t n = tess_client_meta_count(c);
    json_t **views = ts_calloc(n ? n : 1, sizeof(*views));
    const json_t *members = NULL;
    for (size_t i = 0; i < n; i++) {
        views[i] = server_status(tess_client_meta_at(c, i));
        const char *role = views[i] ? json_string_value(json_object_get(views[i], "role")) : NULL;
        json_t *m = views[i] ? json_object_get(views[i], "members") : NULL;
        if (m && (!members || (role && strcmp(role, "leader") == 0)))
            members = m;
    }
    json_t *servers = json_array(), *out = json_object();
    if (!servers || !out)
        ts_die("out of memory building the Raft status");
    if (members) {
        for (size_t k = 0; k < json_array_size(members); k++) {
            const json_t *m = json_array_get(members, k);
            const char *id = json_string_value(json_object_get(m, "id"));
            const char *addr = json_string_value(json_object_get(m, "address"));
            const json_t *view = NULL;
            if (!id || !addr)
                continue;
            for (size_t i = 0; i < n && !view; i++) {
                const char *vid = views[i] ? json_string_value(json_object_get(views[i], "id"))
                                           : NULL;
                if (vid && strcmp(vid, id) == 0)
                    view = views[i];
            }
            /* A member not among the configured addresses: ask it too. */
            json_t *extra = view ? NULL : server_status(addr);
            if (json_array_append_new(servers, status_row(id, addr, view ? view : extra)) != 0)
                ts_die("out of memory building the Raft status");
            json_decref(extra);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            if (json_array_append_new(servers, status_row("?", tess_client_meta_at(c, i), NULL)) != 0)
                ts_die("out of memory building the Raft status");
    }
    set_or_die(out, "servers", servers);
    if (json) {
        char *s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s)
            ts_die("out of memory encoding the Raft status");
        printf("%s\n", s);
        free(s);
    } else {
        printf("%-10s %-22s %-11s %8s %10s %10s %8s %10s\n", "ID", "ADDRESS", "ROLE", "TERM",
               "COMMIT", "APPLIED", "LOG", "SNAPSHOT");
        for (size_t k = 0; k < json_array_size(servers); k++) {
            const json_t *s = json_array_get(servers, k);
            printf("%-10s %-22s %-11s %8lld %10lld %10lld %8lld %10lld\n",
                   json_string_value(json_object_get(s, "id")),
                   json_string_value(json_object_get(s, "address")),
                   json_string_value(json_object_get(s, "role")),
                   (long long)json_integer_value(json_object_get(s, "term")),
                   (long long)json_integer_value(json_object_get(s, "commit")),
                   (long long)json_integer_value(json_object_get(s, "applied")),
                   (long long)json_integer_value(json_object_get(s, "log_entries")),
                   (long long)json_integer_value(json_object_get(s, "snapshot_index")));
        }
    }
    json_decref(out);
    for (size_t i = 0; i < n; i++)
        json_decref(views[i]);
    free(views);
    return 0;
}

/* "meta-3" or "3" -> 3 (the Raft id is the number after the last '-'). */
static int parse_member(const char *cmd, const char *text, uint64_t *id)
{
    const char *dash = strrchr(text, '-'), *num = dash ? dash + 1 : text;
    char *end;
    unsigned long long v = strtoull(num, &end, 10);

    if (*num == '\0' || *end != '\0' || v == 0) {
        cli_usage_error(cmd, "'%s': expected a server id such as meta-3", text);
        return -1;
    }
    *id = v;
    return 0;
}

static const char raft_change_usage[] =
    "usage: tessera admin raft add HOST:PORT\n"
    "       tessera admin raft remove ID\n"
    "       tessera admin raft transfer ID\n"
    "\n"
    "Change the metadata Raft group, through its leader:\n"
    "  add       adds the tessera-meta at HOST:PORT (started with `join = true`;\n"
    "            its id is asked from it) as a learner; the leader makes it a\n"
    "            voter once it has caught up (by snapshot when far behind)\n"
    "  remove    removes server ID (e.g. meta-3) from the group\n"
    "  transfer  hands leadership to server ID\n"
    "Answers once the change is committed (add, remove) or started (transfer).\n";

static int raft_change(cli_ctx *ctx, const char *op, int argc, char **argv)
{
    char cmd[64], path[64];
    uint64_t id;
    const char *addr = NULL;
    json_t *req, *resp = NULL;
    tess_client *c;
    ts_error e;

    snprintf(cmd, sizeof(cmd), "admin raft %s", op);
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(raft_change_usage, stdout);
        return 0;
    }
    if (argc != 2)
        return cli_usage_error(cmd, "expected one argument (see `tessera admin raft --help`)");
    if (strcmp(op, "add") == 0) {
        /* The new server knows its own id. */
        json_t *st = server_status(argv[1]);
        json_t *rid = st ? json_object_get(st, "raft_id") : NULL;
        if (!json_is_integer(rid) || json_integer_value(rid) <= 0) {
            cli_error("%s: %s does not answer GET /v1/raft/status (is it a tessera-meta with "
                      "id, peers and join = true?)", cmd, argv[1]);
            json_decref(st);
            return 1;
        }
        id = (uint64_t)json_integer_value(rid);
        json_decref(st);
        addr = argv[1];
    } else if (parse_member(cmd, argv[1], &id) != 0) {
        return 1;
    }
    if (!(c = cli_client(ctx)))
        return 1;
    if (!(req = json_object()))
        ts_die("out of memory building a request");
    set_or_die(req, "id", json_integer((json_int_t)id));
    if (addr)
        set_or_die(req, "address", json_string(addr));
    snprintf(path, sizeof(path), "/v1/raft/%s", op);
    if (tess_meta_admin_call(c, "POST", path, req, &resp, &e) != 0) {
        cli_error("%s %s: %s", cmd, argv[1], e.msg);
        return 1;
    }
    json_decref(resp);
    printf("%s %s: done\n", op, argv[1]);
    return 0;
}

static const char raft_usage[] =
    "usage: tessera admin raft COMMAND\n"
    "\n"
    "Commands:\n"
    "  status [--json]      role, term, commit/applied index, log and snapshot of\n"
    "                       every metadata server\n"
    "  add HOST:PORT        add a metadata server to the group\n"
    "  remove ID            remove one (e.g. meta-3)\n"
    "  transfer ID          make another server the leader\n";

int cli_cmd_admin_raft(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        fputs(raft_usage, stderr);
        return 1;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(raft_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "status") == 0)
        return raft_status(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "remove") == 0 ||
        strcmp(argv[1], "transfer") == 0)
        return raft_change(ctx, argv[1], argc - 1, argv + 1);
    return cli_usage_error("admin raft", "unknown command '%s'", argv[1]);
}
