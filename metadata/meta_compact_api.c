/*
 * Metadata HTTP API, compaction: POST /v1/admin/compact (run or preview
 * compaction of a subtree, compact.h) and the "compaction" figures of the
 * cluster status.
 */
#include "metadata/meta_api_int.h"

#include <string.h>
#include "common/log.h"
#include "common/util.h"

static json_t *report_json(const compact_report *r, int dry_run)
{
    json_t *o = json_object();
    api_set(o, "dry_run", json_boolean(dry_run));
    api_set(o, "files", json_integer((json_int_t)r->files));
    api_set(o, "append_files", json_integer((json_int_t)r->append_files));
    api_set(o, "pack_files", json_integer((json_int_t)r->pack_files));
    api_set(o, "packs", json_integer((json_int_t)r->packs));
    api_set(o, "extents_before", json_integer((json_int_t)r->extents_before));
    api_set(o, "extents_after", json_integer((json_int_t)r->extents_after));
    api_set(o, "new_chunks", json_integer((json_int_t)r->new_chunks));
    api_set(o, "bytes", json_integer((json_int_t)r->bytes));
    api_set(o, "reclaimable_bytes", json_integer((json_int_t)r->reclaimable));
    api_set(o, "files_replaced", json_integer((json_int_t)r->files_replaced));
    api_set(o, "cas_failures", json_integer((json_int_t)r->cas_failures));
    api_set(o, "jobs_failed", json_integer((json_int_t)r->jobs_failed));
    api_set(o, "deferred_files", json_integer((json_int_t)r->deferred_files));
    return o;
}

int api_compact(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *path = "/";
    int dry_run = 0, present = 0;
    uint64_t max_bytes = 0;
    ts_attr a;
    compact_report rep;
    if (api_str_opt(b, "path", &path, &e) != 0 || api_bool_opt(b, "dry_run", &dry_run, &e) != 0 ||
        ts_json_u64_opt(b, "max_bytes", &max_bytes, &present, &e) != 0)
        return api_fail(resp, &e);
    if (api->cp == NULL) {
        ts_fail(&e, TS_EINVAL, "compaction is disabled on this metadata server (compact = false)");
        return api_fail(resp, &e);
    }
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_resolve(ns, path, &a, &e);
    store_read_unlock(api->st);
    if (rc != 0)
        return api_fail(resp, &e);
    if (compact_run(api->cp, a.ino, dry_run, max_bytes, &rep, &e) != 0)
        return api_fail(resp, &e);
    json_t *o = report_json(&rep, dry_run);
    api_set(o, "path", json_string(path));
    return api_reply(resp, o);
}

struct small {
    const ns_state *ns;
    uint64_t limit, small, bytes;
};

static int count_small(void *arg, const ts_chunk_id *id)
{
    struct small *s = arg;
    uint64_t len = 0;
    ns_chunk_lookup(s->ns, id, &len, NULL, NULL);
    s->small += len < s->limit;
    s->bytes += len;
    return 0;
}

json_t *api_compaction_json(meta_api *api, const ns_state *ns)
{
    json_t *o = json_object();
    api_set(o, "enabled", json_boolean(api->cp != NULL));
    if (api->cp == NULL)
        return o;
    compact_stats cs;
    compact_get_stats(api->cp, &cs);
    struct small s = { ns, cs.small_extent, 0, 0 };
    ns_chunk_foreach(ns, count_small, &s);
    api_set(o, "background", json_boolean(cs.background));
    api_set(o, "small_chunks", json_integer((json_int_t)s.small));
    api_set(o, "chunk_bytes", json_integer((json_int_t)s.bytes));
    api_set(o, "reclaimable_bytes", json_integer((json_int_t)cs.reclaimable));
    api_set(o, "rounds", json_integer((json_int_t)cs.rounds));
    api_set(o, "files_compacted_total", json_integer((json_int_t)cs.files_compacted_total));
    api_set(o, "files_packed_total", json_integer((json_int_t)cs.files_packed_total));
    api_set(o, "cas_failures_total", json_integer((json_int_t)cs.cas_failures_total));
    api_set(o, "jobs_failed_total", json_integer((json_int_t)cs.jobs_failed_total));
    api_set(o, "chunks_built_total", json_integer((json_int_t)cs.chunks_built_total));
    api_set(o, "bytes_copied_total", json_integer((json_int_t)cs.bytes_copied_total));
    return o;
}
