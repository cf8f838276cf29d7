/*
 * The client object: options and config, the metadata-call core (which
 * server to ask, retries with backoff, 421 redirects), the membership cache
 * shared by writers and readers, and the small I/O thread pool that runs
 * chunk uploads and parallel chunk reads.
 */
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/client_int.h"

/* Keys a client config file may hold (ts_config_check rejects the rest, so a
 * typo is reported instead of silently ignored). */
static const char *const client_keys[] = {
    "meta", "chunk_size", "replicas", "timeout_ms", "in_flight", "inline_max", NULL,
};

void tess_client_opts_init(tess_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->chunk_size = TESS_DEFAULT_CHUNK_SIZE;
    o->replicas = TESS_DEFAULT_REPLICAS;
    o->timeout_ms = TESS_DEFAULT_TIMEOUT_MS;
    o->in_flight = TESS_DEFAULT_IN_FLIGHT;
    o->inline_max = TESS_INLINE_CHUNK_MAX;
}

int tess_client_opts_from_config(const ts_config *cfg, tess_client_opts *o, ts_error *err)
{
    int64_t v;
    int rc;

    tess_client_opts_init(o);
    if ((rc = ts_config_check(cfg, client_keys, err)) != 0)
        return rc;
    o->meta = ts_config_str(cfg, "meta", NULL);
    if ((rc = ts_config_size(cfg, "chunk_size", TESS_DEFAULT_CHUNK_SIZE, &o->chunk_size, err)) != 0)
        return rc;
    if ((rc = ts_config_int(cfg, "replicas", TESS_DEFAULT_REPLICAS, &v, err)) != 0)
        return rc;
    if (v < 1 || v > TESS_MAX_REPLICAS)
        return ts_fail(err, TS_EINVAL, "replicas = %lld: expected 1..%d", (long long)v,
                       TESS_MAX_REPLICAS);
    o->replicas = (unsigned)v;
    if ((rc = ts_config_int(cfg, "timeout_ms", TESS_DEFAULT_TIMEOUT_MS, &v, err)) != 0)
        return rc;
    if (v < 1)
        return ts_fail(err, TS_EINVAL, "timeout_ms = %lld: expected a positive number", (long long)v);
    o->timeout_ms = (long)v;
    if ((rc = ts_config_int(cfg, "in_flight", TESS_DEFAULT_IN_FLIGHT, &v, err)) != 0)
        return rc;
    if (v < 1 || v > TESS_MAX_IN_FLIGHT)
        return ts_fail(err, TS_EINVAL, "in_flight = %lld: expected 1..%d", (long long)v,
                       TESS_MAX_IN_FLIGHT);
    o->in_flight = (unsigned)v;
    if ((rc = ts_config_size(cfg, "inline_max", TESS_INLINE_CHUNK_MAX, &o->inline_max, err)) != 0)
        return rc;
    if (o->inline_max > TESS_INLINE_CHUNK_MAX)
        return ts_fail(err, TS_EINVAL, "inline_max = %llu: at most %u (64K); 0 turns inline "
                       "data off", (unsigned long long)o->inline_max, TESS_INLINE_CHUNK_MAX);
    return 0;
}

/* Splits "a:1, b:2" into c->meta, validating each address. */
static int parse_meta_list(tess_client *c, const char *list, ts_error *err)
{
    char *copy = ts_strdup(list), *save = NULL, *tok;
    int rc = 0;

    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *host = NULL;
        int port;

        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = '\0';
        if (len == 0)
            continue;
        if ((rc = ts_parse_hostport(tok, &host, &port, err)) != 0) {
            ts_error_prefix(err, "meta");
            goto free_copy;
        }
        free(host);
        if (c->nmeta == TESS_MAX_META) {
            rc = ts_fail(err, TS_EINVAL, "meta: more than %d addresses", TESS_MAX_META);
            goto free_copy;
        }
        c->meta[c->nmeta++] = ts_strdup(tok);
    }
    if (c->nmeta == 0)
        rc = ts_fail(err, TS_EINVAL, "meta: no metadata server address configured");
free_copy:
    free(copy);
    return rc;
}

int tess_client_open(const tess_client_opts *opts, tess_client **out, ts_error *err)
{
    tess_client *c;
    int rc;

    if (!opts->meta || !*opts->meta)
        return ts_fail(err, TS_EINVAL, "meta: no metadata server address configured");
    if (opts->chunk_size == 0 || opts->chunk_size > (1ull << 32))
        return ts_fail(err, TS_EINVAL, "chunk_size %llu: expected 1 byte .. 4 GiB",
                       (unsigned long long)opts->chunk_size);
    if (opts->replicas < 1 || opts->replicas > TESS_MAX_REPLICAS)
        return ts_fail(err, TS_EINVAL, "replicas %u: expected 1..%d", opts->replicas,
                       TESS_MAX_REPLICAS);
    c = ts_calloc(1, sizeof(*c));
    c->chunk_size = opts->chunk_size;
    c->replicas = opts->replicas;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : TESS_DEFAULT_TIMEOUT_MS;
    c->in_flight = opts->in_flight ? TS_MIN(opts->in_flight, TESS_MAX_IN_FLIGHT) : TESS_DEFAULT_IN_FLIGHT;
    c->inline_max = TS_MIN(opts->inline_max, (uint64_t)TESS_INLINE_CHUNK_MAX);
    pthread_mutex_init(&c->meta_mu, NULL);
    pthread_mutex_init(&c->members_mu, NULL);
    pthread_mutex_init(&c->pool_mu, NULL);
    pthread_mutex_init(&c->suspect_mu, NULL);
    pthread_cond_init(&c->pool_cv, NULL);
    pthread_cond_init(&c->seq_cv, NULL);
    /* Nonzero: 0 means "no request id" on the wire. */
    while (c->client_id == 0)
        ts_random_bytes(&c->client_id, sizeof(c->client_id));
    c->next_seq = 1;
    if ((rc = parse_meta_list(c, opts->meta, err)) != 0) {
        tess_client_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int tess_client_open_conf(const char *conf_path, tess_client **out, ts_error *err)
{
    ts_config *cfg = ts_config_new();
    tess_client_opts o;
    int rc;

    if ((rc = ts_config_load(cfg, conf_path, err)) != 0)
        goto free_cfg;
    if ((rc = tess_client_opts_from_config(cfg, &o, err)) != 0) {
        ts_error_prefix(err, "%s", conf_path);
        goto free_cfg;
    }
    if ((rc = tess_client_open(&o, out, err)) != 0)
        ts_error_prefix(err, "%s", conf_path);
free_cfg:
    ts_config_free(cfg);
    return rc;
}

void tess_client_close(tess_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->pool_mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->pool_cv);
    pthread_mutex_unlock(&c->pool_mu);
    for (size_t i = 0; i < c->nthreads; i++)
        pthread_join(c->threads[i], NULL);
    free(c->threads);
    for (size_t i = 0; i < c->nmeta; i++)
        free(c->meta[i]);
    free(c->pending_seqs);
    tess_servers_free(&c->members);
    pthread_cond_destroy(&c->pool_cv);
    pthread_cond_destroy(&c->seq_cv);
    pthread_mutex_destroy(&c->pool_mu);
    pthread_mutex_destroy(&c->suspect_mu);
    pthread_mutex_destroy(&c->members_mu);
    pthread_mutex_destroy(&c->meta_mu);
    free(c);
}

void tess_client_on_dir_change(tess_client *c, tess_dir_changed_fn fn, void *arg)
{
    c->dir_changed = fn;
    c->dir_changed_arg = arg;
}

uint64_t tess_client_meta_requests(const tess_client *c)
{
    return __atomic_load_n(&c->meta_requests, __ATOMIC_RELAXED);
}

uint64_t tess_client_chunk_size(const tess_client *c) { return c->chunk_size; }
unsigned tess_client_replicas(const tess_client *c) { return c->replicas; }

const char *tess_client_meta_addr(const tess_client *c)
{
    tess_client *mc = (tess_client *)c;   /* the lock is not part of the value */
    const char *a;

    pthread_mutex_lock(&mc->meta_mu);
    a = mc->meta[mc->meta_cur];
    pthread_mutex_unlock(&mc->meta_mu);
    return a;
}

size_t tess_client_meta_count(const tess_client *c)
{
    tess_client *mc = (tess_client *)c;   /* the lock is not part of the value */
    size_t n;

    pthread_mutex_lock(&mc->meta_mu);
    n = mc->nmeta;
    pthread_mutex_unlock(&mc->meta_mu);
    return n;
}

const char *tess_client_meta_at(const tess_client *c, size_t i)
{
    tess_client *mc = (tess_client *)c;
    const char *a = NULL;

    pthread_mutex_lock(&mc->meta_mu);
    if (i < mc->nmeta)
        a = mc->meta[i];
    pthread_mutex_unlock(&mc->meta_mu);
    return a;
}

int tess_meta_admin_call(tess_client *c, const char *method, const char *path, json_t *req,
                         json_t **resp, ts_error *err)
{
    return tess_meta_call(c, method, path, req, resp, path, err);
}

/* ----------------------------------------------------------- meta calls */

/* "http://host:port/anything" -> index of host:port in c->meta, adding it
 * when new.  -1 when the Location is unusable. */
static int meta_from_location(tess_client *c, const char *location)
{
    const char *p = location, *end;
    char addr[256];
    int idx = -1;

    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 || len >= sizeof(addr))
        return -1;
    memcpy(addr, p, len);
    addr[len] = '\0';
    pthread_mutex_lock(&c->meta_mu);
    for (size_t i = 0; i < c->nmeta; i++)
        if (strcmp(c->meta[i], addr) == 0)
            idx = (int)i;
    if (idx < 0 && c->nmeta < TESS_MAX_META) {
        c->meta[c->nmeta] = ts_strdup(addr);
        idx = (int)c->nmeta++;
    }
    pthread_mutex_unlock(&c->meta_mu);
    return idx;
}

/* Calls that change the namespace: they carry a request id, so that a
 * retry after a timeout or a failover is applied once. */
static int is_mutation(const char *path)
{
    static const char *const paths[] = {
        "/v1/ns/setattr", "/v1/ns/mkdir", "/v1/ns/create", "/v1/ns/unlink", "/v1/ns/rmdir",
        "/v1/ns/rename", "/v1/ns/symlink", "/v1/ns/link", "/v1/ns/setxattr",
        "/v1/ns/removexattr", "/v1/file/commit", "/v1/ns/reserve_inodes", "/v1/file/create_at",
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(paths); i++)
        if (strcmp(path, paths[i]) == 0)
            return 1;
    return 0;
}

/* Lowest seq still waiting for its answer, or next_seq when none.
 * meta_mu held. */
static uint64_t lowest_pending(const tess_client *c)
{
    uint64_t lowest = c->next_seq;
    for (size_t i = 0; i < c->npending; i++)
        lowest = TS_MIN(lowest, c->pending_seqs[i]);
    return lowest;
}

/* Numbers a mutating request and adds its id to req: "client" (16 hex
 * digits), "seq", and "acked" (every seq below the lowest one still
 * waiting has its answer).  Returns the seq, to pass to request_done.
 *
 * The server remembers at most SESSION_MAX_RESULTS (256) answers above
 * `acked` per client and refuses an older seq it no longer remembers (it
 * cannot tell whether that one was applied).  So one slow request -- a
 * retry across a failover, a thread descheduled -- must not be overtaken
 * by 256 later ones of the same client: a new seq waits until it is less
 * than TESS_SEQ_WINDOW ahead of the lowest pending one. */
#define TESS_SEQ_WINDOW 128
static uint64_t request_begin(tess_client *c, json_t *req)
{
    char hex[17];
    uint64_t seq, lowest;

    pthread_mutex_lock(&c->meta_mu);
    while (c->next_seq - lowest_pending(c) >= TESS_SEQ_WINDOW)
        pthread_cond_wait(&c->seq_cv, &c->meta_mu);
    seq = c->next_seq++;
    if (c->npending == c->pending_cap) {
        c->pending_cap = c->pending_cap ? 2 * c->pending_cap : 16;
        c->pending_seqs = ts_realloc(c->pending_seqs, c->pending_cap * sizeof(uint64_t));
    }
    c->pending_seqs[c->npending++] = seq;
    lowest = lowest_pending(c);
    pthread_mutex_unlock(&c->meta_mu);
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)c->client_id);
    if (json_object_set_new(req, "client", json_string(hex)) != 0 ||
        json_object_set_new(req, "seq", json_integer((json_int_t)seq)) != 0 ||
        json_object_set_new(req, "acked", json_integer((json_int_t)(lowest - 1))) != 0)
        ts_die("libtessera: out of memory building a request");
    return seq;
}

/* The request numbered seq has its final answer (or was given up). */
static void request_done(tess_client *c, uint64_t seq)
{
    pthread_mutex_lock(&c->meta_mu);
    for (size_t i = 0; i < c->npending; i++) {
        if (c->pending_seqs[i] == seq) {
            c->pending_seqs[i] = c->pending_seqs[--c->npending];
            break;
        }
    }
    pthread_cond_broadcast(&c->seq_cv);
    pthread_mutex_unlock(&c->meta_mu);
}

/* Errors worth another try on another server (or the same one later). */
static int retryable(int code)
{
    return code == TS_EUNAVAIL || code == TS_ETIMEDOUT;
}

static int call_with_retries(tess_client *c, const char *method, const char *path,
                             const char *body, size_t body_len, const char *content_type,
                             json_t **resp, ts_buf *resp_att, const char *what, ts_error *err);

static int meta_call(tess_client *c, const char *method, const char *path, json_t *req,
                     const ts_buf *att, json_t **resp, ts_buf *resp_att, const char *what,
                     ts_error *err)
{
    /* The same id on every try: a server that applied an earlier try
     * answers with that result. */
    uint64_t seq = req && strcmp(method, "POST") == 0 && is_mutation(path) ?
                   request_begin(c, req) : 0;
    size_t len = 0;
    char *body = NULL;
    const char *type = NULL;
    if (req && att) {
        body = ts_json_att_dump(req, att, &len);
        type = TS_JSON_ATT_TYPE;
    } else if (req) {
        body = ts_json_dump(req);
        len = strlen(body);
        type = "application/json";
    }
    __atomic_add_fetch(&c->meta_requests, 1, __ATOMIC_RELAXED);
    int rc = call_with_retries(c, method, path, body, len, type, resp, resp_att, what, err);

    json_decref(req);
    free(body);
    if (seq)
        request_done(c, seq);
    return rc;
}

int tess_meta_call(tess_client *c, const char *method, const char *path, json_t *req,
                   json_t **resp, const char *what, ts_error *err)
{
    return meta_call(c, method, path, req, NULL, resp, NULL, what, err);
}

int tess_meta_call_att(tess_client *c, const char *path, json_t *req, const ts_buf *att,
                       json_t **resp, ts_buf *resp_att, const char *what, ts_error *err)
{
    return meta_call(c, "POST", path, req, att, resp, resp_att, what, err);
}

/* meta_call after the body is built: the tries. */
static int call_with_retries(tess_client *c, const char *method, const char *path,
                             const char *body, size_t body_len, const char *content_type,
                             json_t **resp, ts_buf *resp_att, const char *what, ts_error *err)
{
    int64_t deadline = ts_mono_ms() + TESS_META_RETRY_MS;
    int backoff_ms = 50, redirects = 0, rc;
    size_t idx, tried_in_round = 0;
    ts_error last;

    ts_error_clear(&last);
    pthread_mutex_lock(&c->meta_mu);
    idx = c->meta_cur;
    pthread_mutex_unlock(&c->meta_mu);

    for (;;) {
        ts_http_result r = {0};
        char url[512];
        const char *addr;
        size_t nmeta;

        pthread_mutex_lock(&c->meta_mu);
        addr = c->meta[idx];
        nmeta = c->nmeta;
        pthread_mutex_unlock(&c->meta_mu);
        snprintf(url, sizeof(url), "http://%s%s", addr, path);

        rc = ts_http_call(method, url, content_type, body, body_len, c->timeout_ms, &r, &last);
        if (rc == 0 && r.status == 421 && r.location && redirects < 5) {
            int next = meta_from_location(c, r.location);
            ts_http_result_free(&r);
            if (next >= 0) {
                TS_DEBUG("%s: %s is not the leader; following to %s", what, addr,
                         c->meta[next]);
                idx = (size_t)next;
                redirects++;
                continue;
            }
            rc = ts_fail(&last, TS_ENOTLEADER, "%s is not the leader", addr);
        } else if (rc == 0 && r.status >= 400) {
            rc = ts_http_result_error(&r, what, &last);
            if (rc == TS_ENOTLEADER)
                rc = TS_EUNAVAIL;       /* no Location: a leader is being elected */
        } else if (rc == 0) {
            /* A success: remember who answered, decode the object. */
            pthread_mutex_lock(&c->meta_mu);
            c->meta_cur = idx;
            pthread_mutex_unlock(&c->meta_mu);
            ts_att got;
            if (r.body_len == 0) {
                *resp = json_object();
            } else if (ts_json_att_type(r.content_type)) {
                /* An answer with attachments (asked for with "attachments"). */
                if ((rc = ts_json_att_parse(r.body, r.body_len, resp, &got, err)) == 0 &&
                    resp_att != NULL)
                    ts_buf_append(resp_att, got.data, got.len);
                else if (rc == 0 && got.len > 0)
                    rc = ts_fail(err, TS_EPROTO, "attachments nobody asked for");
                if (rc != 0) {
                    json_decref(*resp);
                    *resp = NULL;
                    ts_error_prefix(err, "%s: answer of %s", what, addr);
                    rc = TS_EPROTO;
                    if (err)
                        err->code = rc;
                }
            } else if ((rc = ts_json_parse_object(r.body, r.body_len, resp, err)) != 0) {
                ts_error_prefix(err, "%s: answer of %s", what, addr);
                rc = TS_EPROTO;
                if (err)
                    err->code = rc;
            }
            ts_http_result_free(&r);
            return rc;
        }
        ts_http_result_free(&r);
        if (!retryable(rc) && rc != TS_ENOTLEADER) {
            if (err)
                *err = last;
            return rc;
        }
        /* Unreachable or not serving: try the next server; after a full
         * round, back off before starting over, until the deadline. */
        TS_DEBUG("%s: %s: %s", what, addr, last.msg);
        idx = (idx + 1) % nmeta;
        if (++tried_in_round >= nmeta) {
            tried_in_round = 0;
            if (ts_mono_ms() + backoff_ms > deadline)
                break;
            ts_sleep_ms(backoff_ms);
            backoff_ms = TS_MIN(backoff_ms * 2, 1000);
        }
    }
    if (last.code == TS_ENOTLEADER || last.code == 0)
        last.code = TS_EUNAVAIL;
    return ts_fail(err, last.code, "%s: no metadata server answered (last: %s)", what, last.msg);
}

/* ------------------------------------------------------ membership cache */

void tess_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

char **tess_strv_copy(char *const *v, size_t n)
{
    char **out;

    if (n == 0)
        return NULL;
    out = ts_calloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = ts_strdup(v[i]);
    return out;
}

void tess_servers_copy(const tess_servers *src, tess_servers *dst)
{
    dst->n = src->n;
    dst->v = src->n ? ts_calloc(src->n, sizeof(*dst->v)) : NULL;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i] = src->v[i];
        dst->v[i].id = ts_strdup(src->v[i].id);
        dst->v[i].address = ts_strdup(src->v[i].address);
        dst->v[i].zone = ts_strdup(src->v[i].zone);
    }
}

int tess_membership(tess_client *c, int force, tess_servers *out, ts_error *err)
{
    int64_t now = ts_mono_ms();
    int rc = 0;

    pthread_mutex_lock(&c->members_mu);
    if (force || c->members_at_ms == 0 || now - c->members_at_ms > TESS_MEMBERSHIP_TTL_MS) {
        tess_servers fresh = {0};
        /* Fetched under the lock on purpose: concurrent writers then share
         * one request instead of each asking the metadata server. */
        if ((rc = tess_cluster_servers(c, &fresh, err)) == 0) {
            tess_servers_free(&c->members);
            c->members = fresh;
            c->members_at_ms = ts_mono_ms();
        }
    }
    if (rc == 0)
        tess_servers_copy(&c->members, out);
    pthread_mutex_unlock(&c->members_mu);
    return rc;
}

/* ------------------------------------------------------------ suspects */

void tess_suspect_note(tess_client *c, const char *id)
{
    int64_t now = ts_mono_ms();
    size_t slot = 0;

    pthread_mutex_lock(&c->suspect_mu);
    /* The same id again, else a free or expired slot, else the oldest. */
    for (size_t i = 0; i < TESS_MAX_SUSPECTS; i++) {
        if (strcmp(c->suspects[i].id, id) == 0) {
            slot = i;
            break;
        }
        if (c->suspects[i].until_ms < c->suspects[slot].until_ms)
            slot = i;
    }
    snprintf(c->suspects[slot].id, sizeof(c->suspects[slot].id), "%s", id);
    c->suspects[slot].until_ms = now + TESS_SUSPECT_MS;
    pthread_mutex_unlock(&c->suspect_mu);
}

int tess_suspect_is(tess_client *c, const char *id)
{
    int64_t now = ts_mono_ms();
    int found = 0;

    pthread_mutex_lock(&c->suspect_mu);
    for (size_t i = 0; i < TESS_MAX_SUSPECTS && !found; i++)
        found = c->suspects[i].until_ms > now && strcmp(c->suspects[i].id, id) == 0;
    pthread_mutex_unlock(&c->suspect_mu);
    return found;
}

/* ---------------------------------------------------------------- pool */

static void *pool_worker(void *arg)
{
    tess_client *c = arg;

    pthread_mutex_lock(&c->pool_mu);
    for (;;) {
        while (!c->queue_head && !c->stopping)
            pthread_cond_wait(&c->pool_cv, &c->pool_mu);
        if (!c->queue_head)
            break;              /* stopping and nothing left to run */
        tess_task *t = c->queue_head;
        c->queue_head = t->next;
        if (!c->queue_head)
            c->queue_tail = NULL;
        pthread_mutex_unlock(&c->pool_mu);
        t->fn(t->arg);          /* t may be freed by its owner from here on */
        pthread_mutex_lock(&c->pool_mu);
    }
    pthread_mutex_unlock(&c->pool_mu);
    ts_http_client_thread_cleanup();
    return NULL;
}

void tess_pool_submit(tess_client *c, tess_task *t)
{
    pthread_mutex_lock(&c->pool_mu);
    if (!c->threads) {
        /* Enough workers for one writer's uploads or one read's pieces. */
        size_t n = TS_MAX(c->in_flight, 4u);
        c->threads = ts_calloc(n, sizeof(*c->threads));
        for (size_t i = 0; i < n; i++) {
            int e = pthread_create(&c->threads[i], NULL, pool_worker, c);
            if (e != 0)
                ts_die("libtessera: cannot start I/O thread: %s", strerror(e));
            c->nthreads++;
        }
    }
    t->next = NULL;
    if (c->queue_tail)
        c->queue_tail->next = t;
    else
        c->queue_head = t;
    c->queue_tail = t;
    pthread_cond_signal(&c->pool_cv);
    pthread_mutex_unlock(&c->pool_mu);
}
