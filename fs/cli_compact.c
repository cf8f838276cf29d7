/*
 * `tessera admin …` parts of compaction and garbage collection: `admin
 * compact [PATH] [--dry-run]` (POST /v1/admin/compact), the GC and
 * compaction lines of `admin status` and the "orphans" part of `admin
 * fsck`, both read from the leader's status answer ("gc", "compaction"
 * objects; README "Compaction and garbage collection").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/cli.h"

static long long jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

void cli_print_gc_status(const json_t *status)
{
    const json_t *g = json_object_get(status, "gc");
    if (!json_is_object(g))
        return;
    if (!json_is_true(json_object_get(g, "enabled"))) {
        printf("gc: disabled; %lld orphan chunks (%lld replicas) kept\n",
               jint(g, "orphan_chunks"), jint(g, "orphan_replicas"));
        return;
    }
    printf("gc: %lld orphan chunks (%lld replicas), %lld past the %.0f s grace period; "
           "%lld deleted, %lld failed\n",
           jint(g, "orphan_chunks"), jint(g, "orphan_replicas"), jint(g, "due"),
           (double)jint(g, "grace_ms") / 1000.0, jint(g, "deletes_total"),
           jint(g, "delete_failures_total"));
}

json_t *cli_orphans_json(const json_t *status)
{
    const json_t *g = json_object_get(status, "gc");
    json_t *o = json_object();
    json_object_set_new(o, "chunks", json_integer(jint(g, "orphan_chunks")));
    json_object_set_new(o, "replicas", json_integer(jint(g, "orphan_replicas")));
    json_object_set_new(o, "gc_enabled",
                        json_boolean(json_is_true(json_object_get(g, "enabled"))));
    return o;
}

void cli_print_orphans(const json_t *o)
{
    long long chunks = jint(o, "chunks"), replicas = jint(o, "replicas");
    printf("orphans: %lld chunk%s (%lld replica%s) on chunkservers not referenced by any "
           "file; %s\n", chunks, chunks == 1 ? "" : "s", replicas, replicas == 1 ? "" : "s",
           json_is_true(json_object_get(o, "gc_enabled"))
               ? "the garbage collector deletes them after its grace period"
               : "gc is disabled: they are kept");
}

/* ---------------------------------------------------- admin compact */

#define COMPACT_STEP (256ll << 20)  /* bytes copied per call at most */

static const char compact_usage[] =
    "usage: tessera admin compact [PATH] [--dry-run] [--json]\n"
    "\n"
    "Compact the files under PATH (default /) now, on the metadata leader, in\n"
    "steps of at most 256 MiB copied (progress is shown between steps):\n"
    "files whose tail is many small extents (appends) are rewritten into\n"
    "full chunks, and small files are packed into shared pack chunks (sparse\n"
    "pack chunks are repacked).  The chunkservers copy the data; each file is\n"
    "switched to its new chunks only if it did not change meanwhile (a file\n"
    "being written is left for a later round).  Replaced chunks are deleted by\n"
    "the garbage collector after its grace period.  Thresholds: the\n"
    "compact_* keys of tessera-meta (tessera-meta --help).\n"
    "\n"
    "  --dry-run    only show what would be done\n"
    "  --json       {\"path\",\"dry_run\",\"files\",\"append_files\",\"pack_files\",\n"
    "               \"packs\",\"extents_before\",\"extents_after\",\"new_chunks\",\n"
    "               \"bytes\" (the plan), \"reclaimable_bytes\" (after), \"files_replaced\",\n"
    "               \"cas_failures\",\"jobs_failed\",\"calls\" (the run)}\n"
    "  -h, --help   this help\n"
    "\n"
    "Exit status: 0 done (files a writer changed meanwhile included), 1 error\n"
    "or a job failed.\n";

int cli_cmd_admin_compact(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"dry-run", no_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch, json = 0, dry = 0;
    char norm[TS_PATH_MAX + 1], buf[600];
    ts_error e = {0};
    tess_client *c;
    json_t *resp = NULL;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': dry = 1; break;
        case 'j': json = 1; break;
        case 'h': fputs(compact_usage, stdout); return 0;
        default: return cli_bad_option("admin compact", argv, ch);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("admin compact", "expected at most one PATH");
    const char *path = optind < argc ? argv[optind] : "/";
    if (tess_path_normalize(path, norm, &e) != 0) {
        cli_error("admin compact %s: %s", path, cli_errmsg(&e, buf, sizeof(buf)));
        return 1;
    }
    if (!(c = cli_client(ctx)))
        return 1;
    /* Runs go in steps of at most COMPACT_STEP bytes (each one call that
     * finishes well inside the client's timeout), with progress between. */
    long long replaced = 0, cas = 0, failed = 0, calls = 0;
    json_t *first = NULL;
    for (;;) {
        json_t *req = dry ? json_pack("{s:s, s:b}", "path", norm, "dry_run", 1)
                          : json_pack("{s:s, s:b, s:I}", "path", norm, "dry_run", 0,
                                      "max_bytes", (json_int_t)COMPACT_STEP);
        if (!req)
            ts_die("out of memory");
        if (tess_meta_admin_call(c, "POST", "/v1/admin/compact", req, &resp, &e) != 0) {
            cli_error("admin compact %s: %s", norm, cli_errmsg(&e, buf, sizeof(buf)));
            json_decref(first);
            return 1;
        }
        calls++;
        replaced += jint(resp, "files_replaced");
        cas += jint(resp, "cas_failures");
        failed += jint(resp, "jobs_failed");
        int more = !dry && jint(resp, "deferred_files") > 0 && jint(resp, "files_replaced") > 0;
        if (!first) {
            first = resp;
        } else {
            json_object_set(first, "reclaimable_bytes", json_object_get(resp, "reclaimable_bytes"));
            json_decref(resp);
        }
        if (!more)
            break;
        if (!json)
            fprintf(stderr, "  %lld files switched so far, %lld more planned ...\n", replaced,
                    jint(first, "append_files") + jint(first, "pack_files") - replaced);
    }
    resp = first;
    json_object_set_new(resp, "files_replaced", json_integer(replaced));
    json_object_set_new(resp, "cas_failures", json_integer(cas));
    json_object_set_new(resp, "jobs_failed", json_integer(failed));
    json_object_set_new(resp, "calls", json_integer(calls));
    json_object_del(resp, "deferred_files");
    int rc = failed > 0;
    if (json) {
        char *s = json_dumps(resp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(resp);
        return rc;
    }
    printf("%s: %lld files; %s %lld append-compacted file%s and %lld small file%s in %lld "
           "pack%s: %lld extents -> %lld in %lld new chunks, %.1f MiB to copy\n",
           norm, jint(resp, "files"), dry ? "would rewrite" : "rewrote",
           jint(resp, "append_files"), jint(resp, "append_files") == 1 ? "" : "s",
           jint(resp, "pack_files"), jint(resp, "pack_files") == 1 ? "" : "s",
           jint(resp, "packs"), jint(resp, "packs") == 1 ? "" : "s",
           jint(resp, "extents_before"), jint(resp, "extents_after"), jint(resp, "new_chunks"),
           (double)jint(resp, "bytes") / 1048576.0);
    if (!dry)
        printf("%lld file%s switched to new chunks, %lld changed meanwhile (retried later), "
               "%lld job%s failed\n", replaced, replaced == 1 ? "" : "s", cas, failed,
               failed == 1 ? "" : "s");
    printf("reclaimable now: %.1f MiB of dead data in shared chunks\n",
           (double)jint(resp, "reclaimable_bytes") / 1048576.0);
    json_decref(resp);
    return rc;
}

void cli_print_compaction_status(const json_t *status)
{
    const json_t *c = json_object_get(status, "compaction");
    if (!json_is_object(c) || !json_is_true(json_object_get(c, "enabled")))
        return;
    printf("compaction: %lld small chunks, %.1f MiB reclaimable; %lld files compacted, %lld "
           "packed, %lld changed meanwhile, %lld jobs failed, %.1f MiB copied\n",
           jint(c, "small_chunks"), (double)jint(c, "reclaimable_bytes") / 1048576.0,
           jint(c, "files_compacted_total"), jint(c, "files_packed_total"),
           jint(c, "cas_failures_total"), jint(c, "jobs_failed_total"),
           (double)jint(c, "bytes_copied_total") / 1048576.0);
}
