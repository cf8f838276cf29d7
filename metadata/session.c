/*
 * Client sessions (session.h): a sorted array of clients, each with its
 * results sorted by seq.  Both stay small (a client has few requests in
 * flight; the table is bounded), so binary search and memmove are enough.
 */
#include "metadata/session.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

typedef struct result {
    uint64_t seq;
    int rc;
    cmd_result res;
    char *msg;              /* the error message of a failed command, else NULL */
} result;

typedef struct session {
    uint64_t client, acked;
    int64_t last_ns;        /* command time of its last request: picks the eviction */
    result *r;
    uint32_t n, cap;
} session;

struct session_table {
    session *s;             /* sorted by client */
    size_t n, cap;
};

session_table *session_table_new(void)
{
    return ts_calloc(1, sizeof(session_table));
}

static void session_clear(session *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        free(s->r[i].msg);
    free(s->r);
}

void session_table_free(session_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        session_clear(&t->s[i]);
    free(t->s);
    free(t);
}

size_t session_count(const session_table *t)
{
    return t->n;
}

/* Index of client in t, or where it would go (*found = 0). */
static size_t find_client(const session_table *t, uint64_t client, int *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->s[mid].client < client)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->n && t->s[lo].client == client;
    return lo;
}

static uint32_t find_seq(const session *s, uint64_t seq, int *found)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n && s->r[lo].seq == seq;
    return lo;
}

int session_check(const session_table *t, const cmd *c, int *rc, cmd_result *res,
                  ts_error *err)
{
    int found;
    size_t i = find_client(t, c->client, &found);
    if (!found)
        return 0;
    const session *s = &t->s[i];
    uint32_t k = find_seq(s, c->seq, &found);
    if (found) {
        *rc = s->r[k].rc;
        *res = s->r[k].res;
        if (*rc != 0)
            ts_fail(err, *rc, "%s", s->r[k].msg ? s->r[k].msg : ts_err_name(*rc));
        return 1;
    }
    /* Results below the oldest kept one were dropped (acknowledged, or
     * pushed out by the per-client bound): a retry of one cannot be told
     * from a first try. */
    if (c->seq <= s->acked || (s->n == SESSION_MAX_RESULTS && c->seq < s->r[0].seq))
        return ts_fail(err, TS_EINVAL, "request %llu of client %016llx is older than the "
                       "results kept for it: refused, it may have been applied already",
                       (unsigned long long)c->seq, (unsigned long long)c->client);
    return 0;
}

/* Drops the client idle longest (ties: the lowest id) to make room. */
static void evict_one(session_table *t)
{
    size_t victim = 0;
    for (size_t i = 1; i < t->n; i++)
        if (t->s[i].last_ns < t->s[victim].last_ns)
            victim = i;
    session_clear(&t->s[victim]);
    memmove(&t->s[victim], &t->s[victim + 1], (t->n - victim - 1) * sizeof(*t->s));
    t->n--;
}

static session *get_session(session_table *t, uint64_t client)
{
    int found;
    size_t i = find_client(t, client, &found);
    if (found)
        return &t->s[i];
    if (t->n == SESSION_MAX_CLIENTS) {
        evict_one(t);
        i = find_client(t, client, &found);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->s = ts_realloc(t->s, t->cap * sizeof(*t->s));
    }
    memmove(&t->s[i + 1], &t->s[i], (t->n - i) * sizeof(*t->s));
    t->n++;
    memset(&t->s[i], 0, sizeof(t->s[i]));
    t->s[i].client = client;
    return &t->s[i];
}

/* Drops results with seq <= upto (the first `count` of them). */
static void drop_front(session *s, uint32_t count)
{
    if (count == 0)
        return;     /* s->r may be NULL still: memmove(NULL, ...) is undefined */
    for (uint32_t i = 0; i < count; i++)
        free(s->r[i].msg);
    memmove(s->r, s->r + count, (s->n - count) * sizeof(*s->r));
    s->n -= count;
}

void session_record(session_table *t, const cmd *c, int rc, const cmd_result *res,
                    const ts_error *err)
{
    session *s = get_session(t, c->client);
    int found;
    if (c->now_ns > s->last_ns)
        s->last_ns = c->now_ns;
    if (c->acked > s->acked)
        s->acked = c->acked;
    uint32_t drop = find_seq(s, s->acked + 1, &found);
    drop_front(s, drop);
    if (c->seq <= s->acked)
        return;     /* answered already, says the client: nothing to keep */
    uint32_t k = find_seq(s, c->seq, &found);
    if (found)
        return;     /* session_check answered it; never recorded twice */
    if (s->n == SESSION_MAX_RESULTS) {
        if (k == 0)
            return;     /* older than everything kept: session_check refuses it */
        drop_front(s, 1);
        k--;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->r = ts_realloc(s->r, s->cap * sizeof(*s->r));
    }
    memmove(&s->r[k + 1], &s->r[k], (s->n - k) * sizeof(*s->r));
    s->n++;
    result *r = &s->r[k];
    memset(r, 0, sizeof(*r));
    r->seq = c->seq;
    r->rc = rc;
    if (res != NULL)
        r->res = *res;
    if (rc != 0 && err != NULL && err->msg[0])
        r->msg = ts_strdup(err->msg);
}

/* ---- image ---- */

static void enc_attr(ts_buf *b, const ts_attr *a)
{
    ts_enc_u64(b, a->ino);
    ts_enc_u32(b, a->mode);
    ts_enc_u32(b, a->nlink);
    ts_enc_u32(b, a->uid);
    ts_enc_u32(b, a->gid);
    ts_enc_u64(b, a->size);
    ts_enc_i64(b, a->atime_ns);
    ts_enc_i64(b, a->mtime_ns);
    ts_enc_i64(b, a->ctime_ns);
    ts_enc_u64(b, a->version);
}

static void dec_attr(ts_dec *d, ts_attr *a)
{
    a->ino = ts_dec_u64(d);
    a->mode = ts_dec_u32(d);
    a->nlink = ts_dec_u32(d);
    a->uid = ts_dec_u32(d);
    a->gid = ts_dec_u32(d);
    a->size = ts_dec_u64(d);
    a->atime_ns = ts_dec_i64(d);
    a->mtime_ns = ts_dec_i64(d);
    a->ctime_ns = ts_dec_i64(d);
    a->version = ts_dec_u64(d);
}

void session_encode(const session_table *t, ts_buf *b)
{
    ts_enc_u32(b, (uint32_t)t->n);
    for (size_t i = 0; i < t->n; i++) {
        const session *s = &t->s[i];
        ts_enc_u64(b, s->client);
        ts_enc_u64(b, s->acked);
        ts_enc_i64(b, s->last_ns);
        ts_enc_u32(b, s->n);
        for (uint32_t k = 0; k < s->n; k++) {
            ts_enc_u64(b, s->r[k].seq);
            ts_enc_u32(b, (uint32_t)s->r[k].rc);
            enc_attr(b, &s->r[k].res.attr);
            ts_enc_u8(b, (uint8_t)s->r[k].res.created);
            ts_enc_str(b, s->r[k].msg);
        }
    }
}

int session_decode(ts_dec *d, session_table **out, ts_error *err)
{
    session_table *t = session_table_new();
    uint32_t n = ts_dec_u32(d);
    if (!ts_dec_ok(d) || n > SESSION_MAX_CLIENTS)
        goto corrupt;
    t->cap = n ? n : 1;
    t->s = ts_calloc(t->cap, sizeof(*t->s));
    for (uint32_t i = 0; i < n; i++) {
        session *s = &t->s[t->n];
        s->client = ts_dec_u64(d);
        s->acked = ts_dec_u64(d);
        s->last_ns = ts_dec_i64(d);
        uint32_t nr = ts_dec_u32(d);
        if (!ts_dec_ok(d) || nr > SESSION_MAX_RESULTS ||
            (t->n > 0 && s->client <= t->s[t->n - 1].client))
            goto corrupt;
        t->n++;
        s->cap = nr;
        s->r = nr ? ts_calloc(nr, sizeof(*s->r)) : NULL;
        for (uint32_t k = 0; k < nr; k++) {
            result *r = &s->r[s->n];
            r->seq = ts_dec_u64(d);
            r->rc = (int)(int32_t)ts_dec_u32(d);
            dec_attr(d, &r->res.attr);
            r->res.created = ts_dec_u8(d);
            r->msg = ts_dec_str(d);
            if (!ts_dec_ok(d)) {
                free(r->msg);
                goto corrupt;
            }
            s->n++;
            if (s->n > 1 && r->seq <= s->r[s->n - 2].seq)
                goto corrupt;
        }
    }
    *out = t;
    return 0;
corrupt:
    session_table_free(t);
    return ts_fail(err, TS_ECORRUPT, "client session table: malformed image");
}
