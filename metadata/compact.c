/*
 * The metadata leader's compactor (see compact.h).
 *
 * A run: snapshot the files under a root (under the store's read lock:
 * inode, version, size, extents, chunk lengths) and the chunkservers ->
 * plan (compact_plan.h) -> per job: a random id and a placement chain for
 * each new chunk, POST /v1/chunk/ID/build to the chain's first server with
 * the pieces and where each source chunk lives, then one
 * CMD_REPLACE_EXTENTS for the job's files.  Nothing is held locked while a
 * chunkserver works.
 *
 * Lock order: run_mu -> store read lock -> cluster mutex; mu (stats) is a
 * leaf.
 */
#include "metadata/compact.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/http_client.h"
#include "common/log.h"
#include "common/placement.h"
#include "common/util.h"
#include "metadata/command.h"

#define ADDR_MAX 256
#define ZONE_MAX 64
#define MAX_FROM 16
#define BUILD_TIMEOUT_MS 600000
#define SLEEP_SLICE_MS 20

struct srv {
    char id[CLUSTER_ID_MAX + 1];
    char addr[ADDR_MAX];
    char zone[ZONE_MAX];
    double weight;
    int up;
};

/* What a run sees: files (owning their arrays) and servers. */
struct snap {
    cp_file *files;
    size_t n, cap;
    struct srv *srv;
    size_t nsrv;
};

struct compact {
    store *st;
    cluster *cl;
    compact_opts o;
    pthread_t loop;
    atomic_int stop;
    pthread_mutex_t run_mu;     /* one run at a time */
    pthread_mutex_t mu;         /* stats */
    compact_stats stats;
};

/* ------------------------------------------------------------ snapshot */

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((void *)s->files[i].ext);
        free((void *)s->files[i].chunk_len);
    }
    free(s->files);
    free(s->srv);
    memset(s, 0, sizeof(*s));
}

static void snap_add_file(struct snap *s, const ns_state *ns, const ts_attr *a)
{
    const ts_extent *x;
    size_t n;
    ts_error e = {0};
    if (ns_file_extents(ns, a->ino, &x, &n, &e) != 0)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->files = ts_realloc(s->files, s->cap * sizeof(*s->files));
    }
    ts_extent *ext = ts_malloc((n + 1) * sizeof(*ext));
    uint64_t *clen = ts_malloc((n + 1) * sizeof(*clen));
    int has_inline = 0;
    memcpy(ext, x, n * sizeof(*ext));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *data;
        clen[i] = 0;
        ns_chunk_lookup(ns, &x[i].chunk, &clen[i], NULL, NULL);   /* N6: known */
        has_inline |= ns_chunk_inline(ns, &x[i].chunk, &data, &clen[i]);
    }
    s->files[s->n++] = (cp_file){ a->ino, a->version, a->size, ext, n, clen, has_inline };
}

struct walk {
    struct snap *s;
    const ns_state *ns;
    int64_t newest_mtime_ns;    /* files modified later are skipped (hot) */
    int dir_hot;                /* the directory being listed changed later */
    uint64_t *dirs;
    size_t ndirs, cap;
};

static int walk_entry(void *arg, const char *name, const ts_attr *a)
{
    struct walk *w = arg;
    (void)name;
    if (S_ISDIR(a->mode)) {
        if (w->ndirs == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 64;
            w->dirs = ts_realloc(w->dirs, w->cap * sizeof(uint64_t));
        }
        w->dirs[w->ndirs++] = a->ino;
    } else if (S_ISREG(a->mode) && !w->dir_hot && a->mtime_ns <= w->newest_mtime_ns) {
        snap_add_file(w->s, w->ns, a);
    }
    return 0;
}

static int file_ino_cmp(const void *a, const void *b)
{
    uint64_t x = ((const cp_file *)a)->ino, y = ((const cp_file *)b)->ino;
    return x < y ? -1 : x > y;
}

/* Files under root in inode order (hard links once) not modified after
 * newest_mtime_ns, and the servers. */
static int snap_take(compact *c, uint64_t root, int64_t newest_mtime_ns, struct snap *s,
                     ts_error *err)
{
    memset(s, 0, sizeof(*s));
    const ns_state *ns = store_read_lock(c->st);
    ts_attr ra;
    int rc = ns_getattr(ns, root, &ra, err);
    if (rc != 0)
        goto unlock;
    struct walk w = { s, ns, newest_mtime_ns, 0, NULL, 0, 0 };
    if (S_ISREG(ra.mode))
        snap_add_file(s, ns, &ra);
    else if (S_ISDIR(ra.mode))
        walk_entry(&w, "", &ra);
    while (w.ndirs > 0) {
        uint64_t dir = w.dirs[--w.ndirs];
        int more = 0;
        /* A directory whose entries changed after newest_mtime_ns is being
         * filled (cp -r, tar x, a job writing its output): its files wait
         * until it is quiet, so they are packed together instead of in
         * fragments that would soon need repacking. */
        ts_attr da;
        w.dir_hot = ns_getattr(ns, dir, &da, err) == 0 && da.mtime_ns > newest_mtime_ns;
        if (ns_readdir(ns, dir, NULL, UINT32_MAX, walk_entry, &w, &more, err) != 0)
            continue;   /* cannot happen under the lock; skip rather than stop */
    }
    free(w.dirs);
    int64_t now = ts_mono_ms();
    s->nsrv = ns_server_count(ns);
    s->srv = ts_calloc(s->nsrv + 1, sizeof(*s->srv));
    for (size_t i = 0; i < s->nsrv; i++) {
        const ns_server *ps = ns_server_at(ns, i);
        cluster_server_info info;
        cluster_server(c->cl, ps->id, now, &info);
        snprintf(s->srv[i].id, sizeof(s->srv[i].id), "%s", ps->id);
        snprintf(s->srv[i].addr, sizeof(s->srv[i].addr), "%s", ps->address);
        snprintf(s->srv[i].zone, sizeof(s->srv[i].zone), "%s", ps->zone);
        s->srv[i].weight = ps->weight > 0 ? ps->weight : 1.0;
        s->srv[i].up = info.up;
    }
unlock:
    store_read_unlock(c->st);
    if (rc == 0 && s->n > 1) {
        qsort(s->files, s->n, sizeof(cp_file), file_ino_cmp);
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (k > 0 && s->files[k - 1].ino == s->files[i].ino) {
                free((void *)s->files[i].ext);
                free((void *)s->files[i].chunk_len);
                continue;
            }
            s->files[k++] = s->files[i];
        }
        s->n = k;
    }
    return rc;
}

/* ------------------------------------------------------------ a job */

static const char *srv_addr(const struct snap *s, const char *id)
{
    for (size_t i = 0; i < s->nsrv; i++)
        if (strcmp(s->srv[i].id, id) == 0)
            return s->srv[i].addr;
    return NULL;
}

/* The replica chain of a new chunk: placement over the up servers. */
static size_t choose_chain(const struct snap *s, const ts_chunk_id *id, const char **chain)
{
    ts_place_server *ps = ts_calloc(s->nsrv + 1, sizeof(*ps));
    size_t *idx = ts_calloc(s->nsrv + 1, sizeof(size_t));
    for (size_t i = 0; i < s->nsrv; i++)
        ps[i] = (ts_place_server){ s->srv[i].id, s->srv[i].zone, s->srv[i].weight,
                                   s->srv[i].up, 0 };
    ts_place_prepare(ps, s->nsrv);
    size_t n = ts_place_choose(id, ps, s->nsrv, CLUSTER_REPLICATION, idx);
    for (size_t i = 0; i < n; i++)
        chain[i] = s->srv[idx[i]].addr;
    free(ps);
    free(idx);
    return n;
}

/* The build request of new chunk k: chain and pieces with their sources.
 * A piece of an inline chunk carries its bytes, read from the namespace
 * now: NULL (TS_ENOENT in err) when such a chunk is gone since the plan
 * (the file changed; the job would fail its CAS anyway). */
static json_t *build_body(compact *c, const struct snap *s, const cp_chunk *ch,
                          const char *const *chain, size_t nchain, ts_error *err)
{
    json_t *o = json_object(), *ca = json_array(), *pa = json_array();
    int64_t now = ts_mono_ms();
    for (size_t i = 0; i < nchain; i++)
        json_array_append_new(ca, json_string(chain[i]));
    const ns_state *ns = store_read_lock(c->st);
    for (size_t i = 0; i < ch->npieces; i++) {
        const cp_piece *p = &ch->pieces[i];
        char hex[TS_CHUNK_ID_HEX_LEN + 1], ids[MAX_FROM][CLUSTER_ID_MAX + 1];
        const uint8_t *data;
        uint64_t dlen;
        ts_chunk_id_to_hex(&p->chunk, hex);
        if (ns_chunk_inline(ns, &p->chunk, &data, &dlen)) {
            if (p->offset > dlen || p->length > dlen - p->offset) {
                ts_fail(err, TS_EINVAL, "piece %zu: [%llu, +%llu) outside inline chunk %s", i,
                        (unsigned long long)p->offset, (unsigned long long)p->length, hex);
                goto fail;
            }
            json_t *pj = json_object();
            char *b64 = ts_base64_encode(data + p->offset, (size_t)p->length);
            json_object_set_new(pj, "data", json_string(b64));
            json_object_set_new(pj, "length", json_integer((json_int_t)p->length));
            free(b64);
            json_array_append_new(pa, pj);
            continue;
        }
        if (ns_chunk_lookup(ns, &p->chunk, NULL, NULL, NULL) != 0) {
            ts_fail(err, TS_ENOENT, "piece %zu: chunk %s is no longer referenced", i, hex);
            goto fail;
        }
        json_t *pj = json_object(), *from = json_array();
        size_t nr = cluster_replicas(c->cl, &p->chunk, now, ids, MAX_FROM);
        for (size_t k = 0; k < nr; k++) {
            const char *a = srv_addr(s, ids[k]);
            if (a)
                json_array_append_new(from, json_string(a));
        }
        /* No location known (reports not in yet): try every up server. */
        for (size_t k = 0; json_array_size(from) == 0 && k < s->nsrv && k < MAX_FROM; k++)
            if (s->srv[k].up)
                json_array_append_new(from, json_string(s->srv[k].addr));
        json_object_set_new(pj, "chunk", json_string(hex));
        json_object_set_new(pj, "offset", json_integer((json_int_t)p->offset));
        json_object_set_new(pj, "length", json_integer((json_int_t)p->length));
        json_object_set_new(pj, "from", from);
        json_array_append_new(pa, pj);
    }
    store_read_unlock(c->st);
    json_object_set_new(o, "chain", ca);
    json_object_set_new(o, "pieces", pa);
    return o;
fail:
    store_read_unlock(c->st);
    json_decref(ca);
    json_decref(pa);
    json_decref(o);
    return NULL;
}

/* Has new chunk ch built under a fresh id; fills *info. */
static int build_chunk(compact *c, const struct snap *s, const cp_chunk *ch,
                       ns_chunk_info *info, ts_error *err)
{
    const char *chain[CLUSTER_REPLICATION];
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_http_result res = {0};
    json_t *ans = NULL;
    const char *sha;
    int rc;

    ts_chunk_id_random(&info->id);
    ts_chunk_id_to_hex(&info->id, hex);
    size_t nchain = choose_chain(s, &info->id, chain);
    if (nchain == 0)
        return ts_fail(err, TS_EUNAVAIL, "build of chunk %s: no chunkserver is up", hex);
    json_t *body = build_body(c, s, ch, chain, nchain, err);
    if (body == NULL) {
        ts_error_prefix(err, "build of chunk %s", hex);
        return err->code;
    }
    char *text = ts_json_dump(body);
    json_decref(body);
    char *url = ts_sprintf("http://%s/v1/chunk/%s/build", chain[0], hex);
    rc = ts_http_call("POST", url, "application/json", text, strlen(text), BUILD_TIMEOUT_MS,
                      &res, err);
    free(url);
    free(text);
    if (rc != 0)
        goto done;
    if (res.status != 201) {
        rc = ts_http_result_error(&res, "build", err);
        goto done;
    }
    uint64_t len;
    if ((rc = ts_json_parse_object(res.body, res.body_len, &ans, err)) != 0 ||
        (rc = ts_json_u64(ans, "length", &len, err)) != 0 ||
        (rc = ts_json_str(ans, "sha256", &sha, err)) != 0)
        goto done;
    if (len != ch->length || strlen(sha) != 2 * TS_SHA256_LEN ||
        ts_hex_decode(sha, info->sha256, TS_SHA256_LEN) != 0) {
        rc = ts_fail(err, TS_EPROTO, "stored %llu bytes (want %llu) or a bad sha256",
                     (unsigned long long)len, (unsigned long long)ch->length);
        goto done;
    }
    info->length = len;
    const json_t *reps = json_object_get(ans, "replicas");
    for (size_t i = 0; i < json_array_size(reps); i++) {
        const json_t *r = json_array_get(reps, i);
        if (json_is_string(r))
            cluster_add_replica(c->cl, &info->id, json_string_value(r));
    }
done:
    if (rc != 0)
        ts_error_prefix(err, "build of chunk %s on %s", hex, chain[0]);
    json_decref(ans);
    ts_http_result_free(&res);
    return rc;
}

/* Builds the job's chunks and commits it.  Adds to rep; 0 or the error. */
static int run_job(compact *c, const struct snap *s, const cp_job *j, compact_report *rep,
                   ts_error *err)
{
    ns_chunk_info *infos = ts_calloc(j->nchunks + 1, sizeof(*infos));
    cmd cm = { .type = CMD_REPLACE_EXTENTS };
    cmd_result res;
    int rc = 0;
    TS_INFO("compact: %s job: %zu file%s (inode %llu first), %zu new chunk%s, %llu bytes",
            j->kind == CP_APPEND ? "append" : "pack", j->nfiles, j->nfiles == 1 ? "" : "s",
            (unsigned long long)j->files[0].ino, j->nchunks, j->nchunks == 1 ? "" : "s",
            (unsigned long long)j->bytes);
    for (size_t k = 0; k < j->nchunks; k++)
        if ((rc = build_chunk(c, s, &j->chunks[k], &infos[k], err)) != 0)
            goto free_infos;   /* chunks built so far are orphans: GC */
    cm.u.replace.n_files = (uint32_t)j->nfiles;
    cm.u.replace.files = ts_calloc(j->nfiles + 1, sizeof(*cm.u.replace.files));
    for (size_t i = 0; i < j->nfiles; i++) {
        const cp_file_job *fj = &j->files[i];
        struct cmd_replace_file *f = &cm.u.replace.files[i];
        *f = (struct cmd_replace_file){ fj->ino, fj->version, fj->offset, fj->length,
                                        ts_calloc(fj->n + 1, sizeof(ts_extent)),
                                        (uint32_t)fj->n };
        for (size_t x = 0; x < fj->n; x++) {
            f->extents[x] = fj->ext[x];
            f->extents[x].chunk = infos[fj->ext_chunk[x]].id;
        }
    }
    cm.u.replace.n_chunks = (uint32_t)j->nchunks;
    cm.u.replace.chunks = infos;
    infos = NULL;
    rc = store_submit(c->st, &cm, &res, err);
    if (rc == 0) {
        rep->files_replaced += res.replaced;
        rep->cas_failures += j->nfiles - res.replaced;
        pthread_mutex_lock(&c->mu);
        if (j->kind == CP_APPEND)
            c->stats.files_compacted_total += res.replaced;
        else
            c->stats.files_packed_total += res.replaced;
        c->stats.cas_failures_total += j->nfiles - res.replaced;
        c->stats.chunks_built_total += j->nchunks;
        c->stats.bytes_copied_total += j->bytes;
        pthread_mutex_unlock(&c->mu);
        if (res.replaced < j->nfiles)
            TS_INFO("compact: %zu of %zu file%s changed since planned (inode %llu first); "
                    "retried in a later round", j->nfiles - res.replaced, j->nfiles,
                    j->nfiles == 1 ? "" : "s", (unsigned long long)j->files[0].ino);
    } else {
        ts_error_prefix(err, "commit of compaction");
    }
    cmd_free(&cm);
free_infos:
    free(infos);
    if (rc != 0) {
        rep->jobs_failed++;
        pthread_mutex_lock(&c->mu);
        c->stats.jobs_failed_total++;
        pthread_mutex_unlock(&c->mu);
        TS_WARN("compact: %s job for inode %llu failed (retried later): %s",
                j->kind == CP_APPEND ? "append" : "pack", (unsigned long long)j->files[0].ino,
                err->msg);
    }
    return rc;
}

/* ------------------------------------------------------------ a run */

static void count_job(const cp_job *j, compact_report *rep)
{
    for (size_t i = 0; i < j->nfiles; i++) {
        rep->extents_before += j->files[i].old_extents;
        rep->extents_after += j->files[i].n;
    }
    rep->new_chunks += j->nchunks;
    rep->bytes += j->bytes;
    if (j->kind == CP_APPEND) {
        rep->append_files += j->nfiles;
    } else {
        rep->pack_files += j->nfiles;
        rep->packs++;
    }
}

/* Plans files under root not modified after newest_mtime_ns, and runs
 * the jobs unless dry_run, while *tokens > 0 when tokens (each job takes
 * its bytes; the others are counted as deferred).  run_mu held. */
static int run_locked(compact *c, uint64_t root, int dry_run, double *tokens,
                      int64_t newest_mtime_ns, compact_report *rep, ts_error *err)
{
    struct snap s;
    cp_job *packs = NULL;
    size_t npacks = 0;
    memset(rep, 0, sizeof(*rep));
    if (store_leader_term(c->st) == 0)
        return ts_fail(err, TS_ENOTLEADER, "compact: this metadata server does not lead");
    int rc = snap_take(c, root, newest_mtime_ns, &s, err);
    if (rc != 0)
        return rc;
    rep->files = s.n;
    /* Append compaction first; those files are not packed in this run. */
    cp_file *rest = ts_malloc((s.n + 1) * sizeof(*rest));
    size_t nrest = 0;
    for (size_t i = 0; i < s.n && !atomic_load(&c->stop); i++) {
        cp_job j;
        if (!cp_plan_append(&s.files[i], &c->o.plan, &j)) {
            rest[nrest++] = s.files[i];
            continue;
        }
        count_job(&j, rep);
        if (!dry_run && (!tokens || *tokens > 0)) {
            ts_error e = {0};
            run_job(c, &s, &j, rep, &e);
            if (tokens)
                *tokens -= (double)j.bytes;
        } else if (!dry_run) {
            rep->deferred_files += j.nfiles;
        }
        cp_job_free(&j);
    }
    /* Files holding inline data are packed apart, into packs whose build
     * requests (which carry that data) stay within TS_BUILD_INLINE_MAX. */
    size_t nstored = 0, ninline = 0;
    for (size_t i = 0; i < nrest; i++)
        nstored += !rest[i].has_inline;
    cp_file *sorted = ts_malloc((nrest + 1) * sizeof(*sorted));
    for (size_t i = 0; i < nrest; i++)
        sorted[rest[i].has_inline ? nstored + ninline++ : i - ninline] = rest[i];
    cp_opts inline_plan = c->o.plan;
    inline_plan.chunk_size = TS_MIN(inline_plan.chunk_size, (uint64_t)TS_BUILD_INLINE_MAX);
    inline_plan.small_file = TS_MIN(inline_plan.small_file, inline_plan.chunk_size);
    uint64_t reclaim_inline = 0;
    cp_job *ipacks = NULL;
    size_t nipacks = 0;
    rc = cp_plan_pack(sorted, nstored, &c->o.plan, &packs, &npacks, &rep->reclaimable, err);
    if (rc == 0)
        rc = cp_plan_pack(sorted + nstored, ninline, &inline_plan, &ipacks, &nipacks,
                          &reclaim_inline, err);
    rep->reclaimable += reclaim_inline;
    free(sorted);
    if (nipacks > 0) {
        packs = ts_realloc(packs, (npacks + nipacks) * sizeof(*packs));
        memcpy(packs + npacks, ipacks, nipacks * sizeof(*packs));
        npacks += nipacks;
    }
    free(ipacks);
    for (size_t k = 0; rc == 0 && k < npacks; k++) {
        count_job(&packs[k], rep);
        if (!dry_run && (!tokens || *tokens > 0) && !atomic_load(&c->stop)) {
            ts_error e = {0};
            run_job(c, &s, &packs[k], rep, &e);
            if (tokens)
                *tokens -= (double)packs[k].bytes;
        } else if (!dry_run) {
            rep->deferred_files += packs[k].nfiles;
        }
    }
    for (size_t k = 0; k < npacks; k++)
        cp_job_free(&packs[k]);
    free(packs);
    free(rest);
    snap_free(&s);
    pthread_mutex_lock(&c->mu);
    if (root == TS_ROOT_INO)
        c->stats.reclaimable = rep->reclaimable;
    pthread_mutex_unlock(&c->mu);
    if (!dry_run && (rep->append_files || rep->pack_files))
        TS_INFO("compact: %llu file%s compacted or packed (%llu extents -> %llu, %llu new "
                "chunks, %.1f MiB copied), %llu changed meanwhile, %llu job%s failed",
                (unsigned long long)rep->files_replaced, rep->files_replaced == 1 ? "" : "s",
                (unsigned long long)rep->extents_before, (unsigned long long)rep->extents_after,
                (unsigned long long)rep->new_chunks, (double)rep->bytes / 1048576.0,
                (unsigned long long)rep->cas_failures, (unsigned long long)rep->jobs_failed,
                rep->jobs_failed == 1 ? "" : "s");
    return rc;
}

int compact_run(compact *c, uint64_t root, int dry_run, uint64_t max_bytes,
                compact_report *rep, ts_error *err)
{
    double tokens = (double)max_bytes;
    pthread_mutex_lock(&c->run_mu);
    int rc = run_locked(c, root, dry_run, max_bytes ? &tokens : NULL, INT64_MAX, rep, err);
    pthread_mutex_unlock(&c->run_mu);
    return rc;
}

static void *loop_main(void *arg)
{
    compact *c = arg;
    double tokens = 0;
    int64_t last = ts_mono_ms(), last_round = 0;
    while (!atomic_load(&c->stop)) {
        int64_t now = ts_mono_ms();
        double rate = (double)c->o.bytes_per_sec;
        tokens += rate * (double)(now - last) / 1000.0;
        if (tokens > rate)
            tokens = rate;
        last = now;
        if (c->o.background && now - last_round >= c->o.interval_ms && tokens > 0 &&
            store_leader_term(c->st) != 0) {
            compact_report rep;
            ts_error e = {0};
            last_round = now;
            pthread_mutex_lock(&c->run_mu);
            /* Files written recently are left alone: an appender still
             * at work would only make the CAS fail. */
            int64_t newest = ts_now_ns() - c->o.min_age_ms * 1000000;
            if (run_locked(c, TS_ROOT_INO, 0, &tokens, newest, &rep, &e) != 0 &&
                e.code != TS_ENOTLEADER)
                TS_WARN("compact: round failed: %s", e.msg);
            pthread_mutex_unlock(&c->run_mu);
            pthread_mutex_lock(&c->mu);
            c->stats.rounds++;
            pthread_mutex_unlock(&c->mu);
        }
        ts_sleep_ms(SLEEP_SLICE_MS * 10);
    }
    ts_http_client_thread_cleanup();
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int compact_start(store *st, cluster *cl, const compact_opts *o, compact **out, ts_error *err)
{
    compact *c = ts_calloc(1, sizeof(*c));
    c->st = st;
    c->cl = cl;
    c->o = *o;
    if (c->o.interval_ms <= 0)
        c->o.interval_ms = 10000;
    if (c->o.bytes_per_sec == 0)
        c->o.bytes_per_sec = 32ull << 20;
    if (c->o.min_age_ms < 0)
        c->o.min_age_ms = 0;
    c->stats.background = c->o.background;
    c->stats.small_extent = c->o.plan.small_extent;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->run_mu, NULL);
    int rc = pthread_create(&c->loop, NULL, loop_main, c);
    if (rc != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_mutex_destroy(&c->run_mu);
        free(c);
        return ts_fail(err, TS_EIO, "compact: cannot start its thread: %s", strerror(rc));
    }
    TS_INFO("compact: %s (tails of >= %u extents under %llu bytes, files up to %llu bytes "
            "packed, %.1f MiB/s)", c->o.background ? "background rounds on" : "on demand only",
            c->o.plan.min_extents, (unsigned long long)c->o.plan.small_extent,
            (unsigned long long)c->o.plan.small_file, (double)c->o.bytes_per_sec / 1048576.0);
    *out = c;
    return 0;
}

void compact_stop(compact *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, 1);
    pthread_join(c->loop, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->run_mu);
    free(c);
}

void compact_get_stats(compact *c, compact_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
