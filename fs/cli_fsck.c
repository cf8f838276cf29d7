/*
 * `tessera admin fsck [PATH] [--json]`: walks the tree under PATH (every
 * regular file, directories recursively; symlinks are not followed) and
 * judges each chunk from the layout the metadata leader gives (replicas
 * known from reports and commits) and the servers' states:
 *
 *   missing           no replica on a readable server (up, suspect,
 *                     draining): the data is lost until a server returns;
 *   under-replicated  fewer than 3 replicas on servers that count (up or
 *                     suspect): the leader's repair loop is expected to
 *                     restore it;
 *   misplaced         full count, but not on the servers weighted rendezvous
 *                     placement wants under the current membership (after a
 *                     server was added, drained, or re-weighted):
 *                     `tessera admin rebalance` moves it.  Not an error.
 *
 * Corrupt replicas are quarantined by their chunkservers and leave the
 * replica lists, so they show as under-replicated; the count of replicas
 * reported corrupt comes from the cluster status.  Exit status: 0 when no
 * data is lost (under-replicated chunks included: they are being healed),
 * 2 when some chunk is missing, 1 when the check itself failed.
 *
 * Inline chunks (small data kept by the metadata service itself, as
 * durable as the namespace) have no replicas to judge: they are counted
 * apart ("inline") and are never a problem.
 *
 *   --json: {"path","files":N,"chunks":N,"inline":N,"healthy":N,"under_replicated":N,
 *            "missing":N,"misplaced":N,"corrupt_reported":N,"problems":[{"path",
 *            "chunk","file_offset","state":"missing"|"under_replicated"|
 *            "misplaced","live":N,"replicas":[id…]}],
 *            "orphans":{"chunks","replicas","gc_enabled"}}
 *   (healthy counts misplaced chunks too: their data is safe)
 *
 * Orphans (cli_compact.c): chunks the chunkservers hold that no file
 * references (uncommitted writes, deleted or compacted data); they are not
 * a problem, the leader's garbage collector deletes them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/placement.h"
#include "common/util.h"
#include "fs/cli.h"

#define FSCK_REPLICATION 3      /* the cluster's factor (no per-file factor yet) */

struct fsck {
    tess_client *c;
    tess_servers servers;
    ts_place_server *place;     /* the servers as placement sees them (up: eligible) */
    size_t *wanted;
    uint64_t files, chunks, inline_chunks, healthy, under, missing, misplaced;
    json_t *problems;
    int json;
    ts_error err;               /* the first walk error */
};

static int state_counts(enum tess_server_state s)
{
    return s == TESS_SERVER_UP || s == TESS_SERVER_SUSPECT;
}

static int state_readable(enum tess_server_state s)
{
    return state_counts(s) || s == TESS_SERVER_DRAINING;
}

/* 1 when the chunk's replicas on readable servers are not exactly the
 * servers placement wants. */
static int misplaced(struct fsck *f, const tess_layout_extent *x)
{
    size_t nw = ts_place_choose(&x->ext.chunk, f->place, f->servers.n, FSCK_REPLICATION,
                                f->wanted);
    unsigned matched = 0, readable = 0;
    for (size_t r = 0; r < x->nreplicas; r++) {
        const tess_server *s = tess_servers_find(&f->servers, x->replicas[r]);
        if (!s || !state_readable(s->state))
            continue;
        readable++;
        for (size_t k = 0; k < nw; k++)
            matched += strcmp(f->servers.v[f->wanted[k]].id, x->replicas[r]) == 0;
    }
    return matched != nw || readable != nw;
}

/* Judges every distinct chunk of one file. */
static int check_file(struct fsck *f, const char *path, uint64_t ino)
{
    tess_layout *l = NULL;
    int rc = tess_get_layout(f->c, ino, &l, &f->err);
    if (rc != 0) {
        ts_error_prefix(&f->err, "%s", path);
        return rc;
    }
    f->files++;
    for (size_t i = 0; i < l->nextents; i++) {
        const tess_layout_extent *x = &l->extents[i];
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = ts_chunk_id_eq(&l->extents[k].ext.chunk, &x->ext.chunk);
        if (seen)
            continue;
        if (x->inline_data) {
            f->inline_chunks++;
            continue;
        }
        unsigned live = 0, readable = 0;
        for (size_t r = 0; r < x->nreplicas; r++) {
            const tess_server *s = tess_servers_find(&f->servers, x->replicas[r]);
            live += s && state_counts(s->state);
            readable += s && state_readable(s->state);
        }
        f->chunks++;
        const char *state = readable == 0 ? "missing"
                            : live < FSCK_REPLICATION ? "under_replicated" : NULL;
        if (!state) {
            f->healthy++;
            if (!misplaced(f, x))
                continue;
            f->misplaced++;
            state = "misplaced";
            if (!f->json)
                continue;       /* counted; one line for all of them below */
        }
        if (readable == 0)
            f->missing++;
        else if (strcmp(state, "under_replicated") == 0)
            f->under++;
        char hex[TS_CHUNK_ID_HEX_LEN + 1];
        ts_chunk_id_to_hex(&x->ext.chunk, hex);
        if (!f->json) {
            printf("%s: chunk %s at offset %llu: %s (%u of %d live:", path, hex,
                   (unsigned long long)x->ext.file_offset,
                   readable == 0 ? "MISSING" : "under-replicated", live, FSCK_REPLICATION);
            for (size_t r = 0; r < x->nreplicas; r++)
                printf(" %s", x->replicas[r]);
            printf("%s)\n", x->nreplicas ? "" : " none known");
            continue;
        }
        json_t *p = json_object(), *reps = json_array();
        for (size_t r = 0; r < x->nreplicas; r++)
            json_array_append_new(reps, json_string(x->replicas[r]));
        json_object_set_new(p, "path", json_string(path));
        json_object_set_new(p, "chunk", json_string(hex));
        json_object_set_new(p, "file_offset", json_integer((json_int_t)x->ext.file_offset));
        json_object_set_new(p, "state", json_string(state));
        json_object_set_new(p, "live", json_integer(live));
        json_object_set_new(p, "replicas", reps);
        if (json_array_append_new(f->problems, p) != 0)
            ts_die("out of memory building the fsck report");
    }
    tess_layout_free(l);
    return 0;
}

static int check_tree(struct fsck *f, const char *path, const ts_attr *a);

struct walk {
    struct fsck *f;
    const char *dir;
};

static int walk_entry(void *ctx, const tess_dirent *d)
{
    struct walk *w = ctx;
    char *child = ts_sprintf("%s%s%s", w->dir, strcmp(w->dir, "/") == 0 ? "" : "/", d->name);
    int rc = check_tree(w->f, child, &d->attr);
    free(child);
    return rc;
}

static int check_tree(struct fsck *f, const char *path, const ts_attr *a)
{
    if ((a->mode & S_IFMT) == S_IFREG)
        return check_file(f, path, a->ino);
    if ((a->mode & S_IFMT) != S_IFDIR)
        return 0;
    struct walk w = { f, path };
    int rc = tess_readdir(f->c, a->ino, walk_entry, &w, &f->err);
    if (rc != 0 && f->err.msg[0] == '\0')
        ts_fail(&f->err, rc, "%s: listing failed", path);
    return rc;
}

static const char fsck_usage[] =
    "usage: tessera admin fsck [PATH] [--json]\n"
    "\n"
    "Check every file under PATH (default /): chunks with no replica on a\n"
    "readable server are MISSING (data lost until a server returns), chunks\n"
    "with fewer than 3 live replicas are under-replicated (the metadata leader\n"
    "is re-replicating them), chunks whose replicas are not where placement\n"
    "wants them under the current membership are misplaced (`tessera admin\n"
    "rebalance` moves them; no risk to data).  Corrupt replicas are quarantined\n"
    "by their chunkservers and count as absent; their number is reported.\n"
    "Orphans (chunks no file references: uncommitted, deleted or compacted\n"
    "data) are counted; the garbage collector deletes them after its grace\n"
    "period.  Inline chunks (small data kept in the metadata) are counted\n"
    "apart and need no replicas.\n"
    "\n"
    "Exit status: 0 no data lost, 2 some chunk is missing, 1 the check failed.\n"
    "\n"
    "  --json       {\"path\",\"files\",\"chunks\",\"inline\",\"healthy\",\"under_replicated\",\n"
    "               \"missing\",\"misplaced\",\"corrupt_reported\",\"problems\":[{\"path\",\n"
    "               \"chunk\",\n"
    "               \"file_offset\",\"state\",\"live\",\"replicas\"}],\n"
    "               \"orphans\":{\"chunks\",\"replicas\",\"gc_enabled\"}}\n"
    "  -h, --help   this help\n";

int cli_cmd_admin_fsck(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char norm[TS_PATH_MAX + 1], buf[600];
    struct fsck f;
    tess_cluster_status st;
    json_t *orphans = NULL;     /* fsck's "orphans" part (cli_compact.c) */
    uint64_t corrupt = 0;
    int ch, rc = 1;
    ts_attr a;

    memset(&f, 0, sizeof(f));
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': f.json = 1; break;
        case 'h': fputs(fsck_usage, stdout); return 0;
        default: return cli_bad_option("admin fsck", argv, ch);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("admin fsck", "expected at most one PATH");
    const char *path = optind < argc ? argv[optind] : "/";
    if (!(f.c = cli_client(ctx)))
        return 1;
    if (tess_path_normalize(path, norm, &f.err) != 0 || tess_resolve(f.c, norm, &a, &f.err) != 0) {
        cli_error("admin fsck %s: %s", path, cli_errmsg(&f.err, buf, sizeof(buf)));
        return 1;
    }
    /* The states as of the start: a server changing state during a long
     * walk is judged as it was. */
    if (tess_cluster_status_get(f.c, &st, &f.err) != 0) {
        cli_error("admin fsck: %s", f.err.msg);
        return 1;
    }
    f.servers = st.servers;
    memset(&st.servers, 0, sizeof(st.servers));
    const json_t *sv = json_object_get(st.raw, "servers");
    for (size_t i = 0; i < json_array_size(sv); i++) {
        const json_t *n = json_object_get(json_array_get(sv, i), "corrupt_reported");
        corrupt += json_is_integer(n) ? (uint64_t)json_integer_value(n) : 0;
    }
    orphans = cli_orphans_json(st.raw);
    tess_cluster_status_free(&st);
    f.place = ts_calloc(f.servers.n + 1, sizeof(*f.place));
    f.wanted = ts_calloc(f.servers.n + 1, sizeof(*f.wanted));
    for (size_t i = 0; i < f.servers.n; i++) {
        f.place[i].id = f.servers.v[i].id;
        f.place[i].zone = f.servers.v[i].zone;
        f.place[i].weight = f.servers.v[i].weight > 0 ? f.servers.v[i].weight : 1.0;
        f.place[i].eligible = f.servers.v[i].state == TESS_SERVER_UP;
    }
    ts_place_prepare(f.place, f.servers.n);
    f.problems = json_array();
    if (check_tree(&f, norm, &a) != 0) {
        cli_error("admin fsck %s: %s", norm, f.err.msg);
        goto free_all;
    }
    rc = f.missing > 0 ? 2 : 0;
    if (f.json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(norm));
        json_object_set_new(o, "files", json_integer((json_int_t)f.files));
        json_object_set_new(o, "chunks", json_integer((json_int_t)f.chunks));
        json_object_set_new(o, "inline", json_integer((json_int_t)f.inline_chunks));
        json_object_set_new(o, "healthy", json_integer((json_int_t)f.healthy));
        json_object_set_new(o, "under_replicated", json_integer((json_int_t)f.under));
        json_object_set_new(o, "missing", json_integer((json_int_t)f.missing));
        json_object_set_new(o, "misplaced", json_integer((json_int_t)f.misplaced));
        json_object_set_new(o, "corrupt_reported", json_integer((json_int_t)corrupt));
        json_object_set_new(o, "problems", json_incref(f.problems));
        json_object_set(o, "orphans", orphans);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s) {
            cli_error("admin fsck: cannot encode JSON output");
            rc = 1;
            goto free_all;
        }
        printf("%s\n", s);
        free(s);
        goto free_all;
    }
    printf("%s: %llu file%s, %llu chunk%s: %llu healthy, %llu under-replicated, %llu missing; "
           "%llu replica%s reported corrupt\n", norm, (unsigned long long)f.files,
           f.files == 1 ? "" : "s", (unsigned long long)f.chunks, f.chunks == 1 ? "" : "s",
           (unsigned long long)f.healthy, (unsigned long long)f.under,
           (unsigned long long)f.missing, (unsigned long long)corrupt, corrupt == 1 ? "" : "s");
    if (f.inline_chunks)
        printf("%llu inline chunk%s (small data kept in the metadata, not on chunkservers)\n",
               (unsigned long long)f.inline_chunks, f.inline_chunks == 1 ? "" : "s");
    if (f.misplaced)
        printf("%llu chunk%s misplaced (not where placement wants %s under the current "
               "membership; tessera admin rebalance moves %s)\n",
               (unsigned long long)f.misplaced, f.misplaced == 1 ? "" : "s",
               f.misplaced == 1 ? "it" : "them", f.misplaced == 1 ? "it" : "them");
    cli_print_orphans(orphans);
    printf("%s\n", f.missing ? "DATA LOST: some chunks have no readable replica"
                   : f.under ? "no data lost; under-replicated chunks are being re-replicated"
                             : "healthy");
free_all:
    free(f.place);
    free(f.wanted);
    json_decref(orphans);
    json_decref(f.problems);
    tess_servers_free(&f.servers);
    return rc;
}
