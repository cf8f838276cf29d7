/*
 * `tessera admin …` parts of compaction and garbage collection: the GC and
 * compaction lines of `admin status` and the "orphans" part of `admin
 * fsck`, both read from the leader's status answer ("gc", "compaction"
 * objects; README "Compaction and garbage collection").
 */
#include <stdio.h>
#include <string.h>

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
