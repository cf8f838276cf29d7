/*
 * libtessera's write and read paths against in-process fake servers (built
 * on common/http_server.h): a fake metadata server that serves membership,
 * getattr and records commits, and fake chunkservers that store chunks in
 * memory, forward down the chain like the real ones (502 naming the server
 * that failed) and serve Range reads.  Checks: a dead chunkserver in the
 * chain does not fail a write; one commit at close covering everything;
 * flush commits what is written so far; a truncating writer drops the old
 * tail; too few servers give ENOSPC with a helpful message; reads fall back
 * to the next replica and read holes as zeros.  Inline data: a small flush
 * sends its bytes with the commit (no chunk stored anywhere) and reads
 * back from the layout alone; too large or too far into the file, it is
 * uploaded; a metadata server that refuses inline data gets the bytes as
 * an uploaded chunk in a second commit, and no more inline attempts.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "fs/tessera.h"
#include "tests/unit/tcheck.h"

#define NCS 4
#define MAX_CHUNKS 256

enum cs_mode { CS_OK = 0, CS_DEAD, CS_CORRUPT };

typedef struct fake_chunk {
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    char *data;
    size_t len;
} fake_chunk;

typedef struct fake_cs {
    char id[16];
    char addr[32];
    int port;
    enum cs_mode mode;
    ts_http_server *srv;
    pthread_mutex_t mu;
    fake_chunk chunks[MAX_CHUNKS];
    size_t nchunks;
} fake_cs;

typedef struct fake_meta {
    ts_http_server *srv;
    char addr[32];
    pthread_mutex_t mu;
    json_t *commits;            /* array of every commit request */
    uint64_t size;              /* what getattr answers */
    int nservers_listed;        /* how many of the chunkservers membership lists */
    int refuse_inline;          /* answer commits with inline chunks as an old server */
    int inline_full;            /* ... as a server whose inline budget is full */
    int getattr_att;            /* getattr answers as TS_JSON_ATT_TYPE ... */
    int getattr_att_bytes;      /* ... with this many bytes attached */
} fake_meta;

static fake_cs cs[NCS];
static fake_meta meta;

/* ------------------------------------------------------ fake chunkserver */

/* PUTs body to url: 0 with the 201 answer's body in *answer, or -1 with the
 * downstream's error message (or the transport error) in *answer.  The
 * caller frees *answer. */
static int fwd_put(const char *url, const void *body, size_t len, char **answer)
{
    ts_http_result r = {0};
    ts_error e;
    int rc = -1;

    if (ts_http_call("PUT", url, "application/octet-stream", body, len, 5000, &r, &e) != 0) {
        *answer = ts_strdup(e.msg);
    } else if (r.status == 201) {
        *answer = ts_strdup(r.body ? r.body : "{}");
        rc = 0;
    } else {
        /* Like the real chunkserver: a downstream EUNAVAIL already names
         * the server that failed further down; pass its message on. */
        ts_http_result_error(&r, "downstream", &e);
        *answer = ts_strdup(e.code == TS_EUNAVAIL ? strchr(e.msg, ' ') + 1 : e.msg);
    }
    ts_http_result_free(&r);
    return rc;
}


static void cs_put(fake_cs *s, const ts_http_request *req, const char *hex, ts_http_response *resp)
{
    const char *chain = ts_http_query(req, "chain");
    json_t *replicas = json_array(), *o;
    uint8_t sha[TS_SHA256_LEN];
    char shahex[2 * TS_SHA256_LEN + 1];
    char *text;

    /* Forward first, like a chain: the rest of the chain rides along. */
    if (chain && *chain) {
        char *first = ts_strdup(chain), *rest = strchr(first, ',');
        char *url, *answer = NULL;

        if (rest)
            *rest++ = '\0';
        url = rest ? ts_sprintf("http://%s/v1/chunk/%s?chain=%s", first, hex, rest)
                   : ts_sprintf("http://%s/v1/chunk/%s", first, hex);
        if (fwd_put(url, req->body, req->body_len, &answer) != 0) {
            if (strncmp(answer, "replica ", 8) == 0)
                ts_http_respond_error(resp, TS_EUNAVAIL, "%s", answer);
            else
                ts_http_respond_error(resp, TS_EUNAVAIL, "replica %s: %s", first, answer);
            free(answer);
            free(url);
            free(first);
            json_decref(replicas);
            return;
        }
        json_t *down = json_loads(answer, 0, NULL);
        json_array_extend(replicas, json_object_get(down, "replicas"));
        json_decref(down);
        free(answer);
        free(url);
        free(first);
    }
    pthread_mutex_lock(&s->mu);
    if (s->nchunks < MAX_CHUNKS) {
        fake_chunk *c = &s->chunks[s->nchunks++];
        snprintf(c->hex, sizeof(c->hex), "%s", hex);
        c->data = ts_malloc(req->body_len + 1);
        memcpy(c->data, req->body, req->body_len);
        c->len = req->body_len;
    }
    pthread_mutex_unlock(&s->mu);
    json_array_insert_new(replicas, 0, json_string(s->id));
    ts_sha256_once(req->body, req->body_len, sha);
    ts_hex_encode(sha, TS_SHA256_LEN, shahex);
    o = json_pack("{s:s, s:I, s:s, s:o}", "id", hex, "length", (json_int_t)req->body_len,
                  "sha256", shahex, "replicas", replicas);
    text = json_dumps(o, JSON_COMPACT);
    ts_http_respond_json(resp, 201, text);
    free(text);
    json_decref(o);
}

static void cs_get(fake_cs *s, const ts_http_request *req, const char *hex, ts_http_response *resp)
{
    const char *range = ts_http_header(req, "Range");
    unsigned long long a = 0, b = 0;

    if (s->mode == CS_CORRUPT) {
        ts_http_respond_error(resp, TS_ECORRUPT, "chunk %s: block 0: checksum mismatch", hex);
        return;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nchunks; i++) {
        fake_chunk *c = &s->chunks[i];
        if (strcmp(c->hex, hex) != 0)
            continue;
        if (!range || sscanf(range, "bytes=%llu-%llu", &a, &b) != 2 || b >= c->len)
            b = c->len - 1;
        char *body = ts_malloc(b - a + 1);
        memcpy(body, c->data + a, b - a + 1);
        pthread_mutex_unlock(&s->mu);
        ts_http_respond(resp, range ? 206 : 200, "application/octet-stream", body, b - a + 1);
        return;
    }
    pthread_mutex_unlock(&s->mu);
    ts_http_respond_error(resp, TS_ENOENT, "chunk %s: not here", hex);
}

static void cs_handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    fake_cs *s = app;
    const char *hex = strncmp(req->path, "/v1/chunk/", 10) == 0 ? req->path + 10 : NULL;

    if (hex && strcmp(req->method, "PUT") == 0)
        cs_put(s, req, hex, resp);
    else if (hex && strcmp(req->method, "GET") == 0)
        cs_get(s, req, hex, resp);
    else
        ts_http_respond_error(resp, TS_ENOENT, "no route %s %s", req->method, req->path);
}

/* -------------------------------------------------------- fake metadata */

static json_t *attr_json(uint64_t ino, uint64_t size)
{
    return json_pack("{s:I,s:i,s:i,s:i,s:i,s:I,s:i,s:i,s:i,s:i}", "ino", (json_int_t)ino,
                     "mode", S_IFREG | 0644, "nlink", 1, "uid", 0, "gid", 0, "size",
                     (json_int_t)size, "atime", 0, "mtime", 0, "ctime", 0, "version", 1);
}

static void meta_respond(ts_http_response *resp, json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    ts_http_respond_json(resp, 200, text);
    free(text);
    json_decref(o);
}

/* A commit's body as the client sends it: JSON with its inline chunks'
 * bytes attached ("inline_at").  Returned with each of them turned into
 * base64 ("inline"), what the checks below and layout_from_commits read;
 * NULL when the body is not that (a plain JSON body, a chunk that names
 * bytes not attached, or one that carries base64 itself). */
static json_t *commit_body(const ts_http_request *req)
{
    json_t *body = NULL;
    ts_att att;
    ts_error e;
    if (!ts_json_att_type(ts_http_header(req, "Content-Type")) ||
        ts_json_att_parse(req->body, req->body_len, &body, &att, &e) != 0)
        return NULL;
    json_t *inl = json_object_get(body, "inline_chunks");
    for (size_t i = 0; i < json_array_size(inl); i++) {
        json_t *ch = json_array_get(inl, i);
        uint64_t off, len;
        const uint8_t *bytes;
        if (json_object_get(ch, "inline") || ts_json_u64(ch, "inline_at", &off, &e) != 0 ||
            ts_json_u64(ch, "length", &len, &e) != 0 ||
            ts_att_get(&att, off, len, "inline_at", &bytes, &e) != 0) {
            json_decref(body);
            return NULL;
        }
        char *b64 = ts_base64_encode(bytes, (size_t)len);
        json_object_set_new(ch, "inline", json_string(b64));
        json_object_del(ch, "inline_at");
        free(b64);
    }
    return body;
}

static void meta_handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    fake_meta *m = app;

    if (strcmp(req->path, "/v1/cluster/servers") == 0) {
        json_t *arr = json_array();
        for (int i = 0; i < m->nservers_listed; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:i,s:s}", "id", cs[i].id,
                                                 "address", cs[i].addr, "zone", "", "weight", 1,
                                                 "state", "up"));
        meta_respond(resp, json_pack("{s:o}", "servers", arr));
    } else if (strcmp(req->path, "/v1/ns/getattr") == 0) {
        pthread_mutex_lock(&m->mu);
        uint64_t size = m->size;
        int as_att = m->getattr_att, attached = m->getattr_att_bytes;
        pthread_mutex_unlock(&m->mu);
        json_t *o = json_pack("{s:o}", "attr", attr_json(7, size));
        if (!as_att) {
            meta_respond(resp, o);
            return;
        }
        /* The body type that carries attachments (test_answer_attachments). */
        ts_buf att = {0};
        for (int i = 0; i < attached; i++)
            ts_buf_append(&att, "x", 1);
        size_t len;
        char *body = ts_json_att_dump(o, &att, &len);
        ts_http_respond(resp, 200, TS_JSON_ATT_TYPE, body, len);   /* owns body */
        ts_buf_free(&att);
        json_decref(o);
    } else if (strcmp(req->path, "/v1/file/commit") == 0) {
        json_t *body = commit_body(req);
        if (body == NULL) {
            ts_http_respond_error(resp, TS_EINVAL, "fake meta: bad commit body");
            return;
        }
        json_int_t off = json_integer_value(json_object_get(body, "offset"));
        json_int_t len = json_integer_value(json_object_get(body, "length"));
        json_t *size = json_object_get(body, "size");
        pthread_mutex_lock(&m->mu);
        if (m->refuse_inline && json_object_get(body, "inline_chunks")) {
            /* What a server without inline data says: the extent's chunk
             * is in no list it knows. */
            pthread_mutex_unlock(&m->mu);
            json_decref(body);
            ts_http_respond_error(resp, TS_EINVAL, "commit 7: extent 0 names unknown chunk");
            return;
        }
        if (m->inline_full && json_object_get(body, "inline_chunks")) {
            pthread_mutex_unlock(&m->mu);
            json_decref(body);
            ts_http_respond_error(resp, TS_ENOSPC, "commit 7: inline data is full");
            return;
        }
        json_array_append_new(m->commits, body);
        m->size = size ? (uint64_t)json_integer_value(size) : TS_MAX(m->size, (uint64_t)(off + len));
        uint64_t now = m->size;
        pthread_mutex_unlock(&m->mu);
        meta_respond(resp, json_pack("{s:o}", "attr", attr_json(7, now)));
    } else {
        ts_http_respond_error(resp, TS_ENOENT, "no route %s", req->path);
    }
}

/* ------------------------------------------------------------- fixture */

static int start_servers(void)
{
    ts_error e;

    for (int i = 0; i < NCS; i++) {
        ts_http_server_opts o = {.bind_addr = "127.0.0.1", .threading = TS_HTTP_THREAD_PER_CONNECTION,
                                 .max_body = 64 << 20, .app = &cs[i], .handle = cs_handle};
        snprintf(cs[i].id, sizeof(cs[i].id), "cs-%d", i + 1);
        pthread_mutex_init(&cs[i].mu, NULL);
        if (ts_http_server_start(&o, &cs[i].srv, &e) != 0) {
            fprintf(stderr, "start fake chunkserver: %s\n", e.msg);
            return -1;
        }
        cs[i].port = ts_http_server_port(cs[i].srv);
        snprintf(cs[i].addr, sizeof(cs[i].addr), "127.0.0.1:%d", cs[i].port);
    }
    ts_http_server_opts mo = {.bind_addr = "127.0.0.1", .app = &meta, .handle = meta_handle};
    pthread_mutex_init(&meta.mu, NULL);
    meta.commits = json_array();
    meta.nservers_listed = NCS;
    if (ts_http_server_start(&mo, &meta.srv, &e) != 0) {
        fprintf(stderr, "start fake meta: %s\n", e.msg);
        return -1;
    }
    snprintf(meta.addr, sizeof(meta.addr), "127.0.0.1:%d", ts_http_server_port(meta.srv));
    return 0;
}

/* A chunkserver that died: its port refuses connections, but the
 * membership map still says "up" (heartbeats have not timed out yet). */
static void kill_cs(int i)
{
    ts_http_server_stop(cs[i].srv);
    cs[i].srv = NULL;
    cs[i].mode = CS_DEAD;
}

static void reset_meta(uint64_t size)
{
    pthread_mutex_lock(&meta.mu);
    json_array_clear(meta.commits);
    meta.size = size;
    pthread_mutex_unlock(&meta.mu);
}

/* The upload-path tests run with inline data off; the inline tests set it. */
static uint64_t client_inline_max;

static tess_client *open_client(uint64_t chunk_size)
{
    tess_client_opts o;
    tess_client *c = NULL;
    ts_error e;

    tess_client_opts_init(&o);
    o.meta = meta.addr;
    o.chunk_size = chunk_size;
    o.inline_max = client_inline_max;
    o.timeout_ms = 5000;
    if (tess_client_open(&o, &c, &e) != 0)
        fprintf(stderr, "open client: %s\n", e.msg);
    return c;
}

/* Builds a layout from the recorded commits (what the real metadata
 * server would answer), with the replicas each chunk was stored on. */
static tess_layout *layout_from_commits(uint64_t size)
{
    json_t *extents = json_array(), *doc;
    tess_layout *l = NULL;
    ts_error e;

    for (size_t k = 0; k < json_array_size(meta.commits); k++) {
        json_t *cm = json_array_get(meta.commits, k);
        json_t *exts = json_object_get(cm, "extents"), *chunks = json_object_get(cm, "chunks");
        json_t *inl = json_object_get(cm, "inline_chunks");
        for (size_t i = 0; i < json_array_size(exts); i++) {
            json_t *x = json_deep_copy(json_array_get(exts, i));
            const char *id = json_string_value(json_object_get(x, "chunk"));
            for (size_t j = 0; j < json_array_size(chunks); j++) {
                json_t *ch = json_array_get(chunks, j);
                if (strcmp(json_string_value(json_object_get(ch, "id")), id) == 0)
                    json_object_set(x, "replicas", json_object_get(ch, "replicas"));
            }
            for (size_t j = 0; j < json_array_size(inl); j++) {
                json_t *ch = json_array_get(inl, j);
                if (strcmp(json_string_value(json_object_get(ch, "id")), id) == 0) {
                    json_object_set(x, "inline", json_object_get(ch, "inline"));
                    json_object_set(x, "chunk_length", json_object_get(ch, "length"));
                    json_object_set_new(x, "replicas", json_array());
                }
            }
            json_array_append_new(extents, x);
        }
    }
    doc = json_pack("{s:o,s:o}", "attr", attr_json(7, size), "extents", extents);
    if (tess_layout_from_json(doc, NULL, &l, &e) != 0)
        fprintf(stderr, "layout: %s\n", e.msg);
    json_decref(doc);
    return l;
}

/* --------------------------------------------------------------- tests */

#define CHUNK (100 * 1000)

static char *random_data(size_t n)
{
    char *p = ts_malloc(n);
    ts_random_bytes(p, n);
    return p;
}

/* Ten chunks with 3 replicas over 4 servers, one of them dead: every chunk
 * whose chain included it must be retried elsewhere. */
static void test_write_survives_dead_server(void)
{
    const size_t len = 10 * CHUNK - 1234;
    char *data = random_data(len), *back = ts_malloc(len);
    tess_client *c = open_client(CHUNK);
    tess_writer *w = NULL;
    tess_layout *l;
    ts_error e;
    json_t *cm;

    reset_meta(0);
    TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
    /* Odd-sized writes cross chunk boundaries. */
    for (size_t off = 0; off < len; off += 7777) {
        if (tess_writer_write(w, data + off, TS_MIN(7777, len - off), &e) != 0) {
            fprintf(stderr, "  write: %s\n", e.msg);
            TC_CHECK(!"write failed");
            break;
        }
    }
    TC_CHECK_EQ_U64(tess_writer_offset(w), len);
    if (tess_writer_close(w, NULL, &e) != 0)
        fprintf(stderr, "  close: %s\n", e.msg);

    TC_CHECK_EQ_U64(json_array_size(meta.commits), 1);     /* ONE commit at close */
    cm = json_array_get(meta.commits, 0);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(cm, "offset")), 0);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(cm, "length")), len);
    TC_CHECK_EQ_U64(json_array_size(json_object_get(cm, "extents")), 10);
    TC_CHECK_EQ_U64(json_array_size(json_object_get(cm, "chunks")), 10);
    for (size_t i = 0; i < json_array_size(json_object_get(cm, "chunks")); i++) {
        json_t *ch = json_array_get(json_object_get(cm, "chunks"), i);
        json_t *reps = json_object_get(ch, "replicas");
        TC_CHECK_EQ_U64(json_array_size(reps), 3);
        for (size_t k = 0; k < json_array_size(reps); k++)
            TC_CHECK(strcmp(json_string_value(json_array_get(reps, k)), "cs-4") != 0);
        TC_CHECK_EQ_U64(strlen(json_string_value(json_object_get(ch, "sha256"))), 64);
    }
    for (size_t i = 0; i < json_array_size(json_object_get(cm, "extents")); i++) {
        json_t *x = json_array_get(json_object_get(cm, "extents"), i);
        TC_CHECK_EQ_U64(json_integer_value(json_object_get(x, "file_offset")), i * CHUNK);
    }

    /* Read it back, with one replica of everything answering ECORRUPT. */
    cs[0].mode = CS_CORRUPT;
    l = layout_from_commits(len);
    TC_CHECK(l != NULL);
    if (l) {
        memset(back, 0, len);
        TC_CHECK(tess_read(c, l, 0, len, back, &e) == (ssize_t)len);
        TC_CHECK(memcmp(back, data, len) == 0);
        /* A small read in the middle and one past EOF. */
        TC_CHECK(tess_read(c, l, 3 * CHUNK - 10, 20, back, &e) == 20);
        TC_CHECK(memcmp(back, data + 3 * CHUNK - 10, 20) == 0);
        TC_CHECK(tess_read(c, l, len, 10, back, &e) == 0);
        TC_CHECK(tess_read(c, l, len - 5, 10, back, &e) == 5);
    }
    cs[0].mode = CS_OK;
    tess_layout_free(l);
    tess_client_close(c);
    free(back);
    free(data);
}

/* Every replica failing: the error names the chunk and each replica. */
static void test_read_all_replicas_fail(void)
{
    const size_t len = 5000;
    char *data = random_data(len), back[100];
    tess_client *c = open_client(CHUNK);
    tess_layout *l;
    ts_error e;
    ts_attr a;

    reset_meta(0);
    meta.nservers_listed = 3;           /* only the live ones */
    {
        tess_writer *w = NULL;
        TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
        TC_CHECK(tess_writer_write(w, data, len, &e) == 0);
        TC_CHECK(tess_writer_close(w, &a, &e) == 0);
        TC_CHECK_EQ_U64(a.size, len);
    }
    l = layout_from_commits(len);
    for (int i = 0; i < 3; i++)
        cs[i].mode = CS_CORRUPT;
    TC_CHECK(tess_read(c, l, 0, 100, back, &e) < 0);
    TC_CHECK(strstr(e.msg, "cs-1") && strstr(e.msg, "cs-2") && strstr(e.msg, "cs-3"));
    TC_CHECK(strstr(e.msg, "chunk ") != NULL);
    for (int i = 0; i < 3; i++)
        cs[i].mode = CS_OK;
    meta.nservers_listed = NCS;
    tess_layout_free(l);
    tess_client_close(c);
    free(data);
}

static void test_flush_then_close(void)
{
    char *data = random_data(3 * CHUNK);
    tess_client *c = open_client(CHUNK);
    tess_writer *w = NULL;
    tess_layout *l;
    ts_error e;
    json_t *c1, *c2;
    char *back = ts_malloc(3 * CHUNK);

    reset_meta(0);
    TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, data, CHUNK + 500, &e) == 0);
    TC_CHECK(tess_writer_flush(w, NULL, &e) == 0);
    TC_CHECK_EQ_U64(json_array_size(meta.commits), 1);
    TC_CHECK(tess_writer_write(w, data + CHUNK + 500, CHUNK, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK_EQ_U64(json_array_size(meta.commits), 2);
    c1 = json_array_get(meta.commits, 0);
    c2 = json_array_get(meta.commits, 1);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(c1, "length")), CHUNK + 500);
    TC_CHECK_EQ_U64(json_array_size(json_object_get(c1, "extents")), 2);   /* full + short */
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(c2, "offset")), CHUNK + 500);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(c2, "length")), CHUNK);
    TC_CHECK(json_object_get(c2, "size") == NULL);   /* not truncating */
    l = layout_from_commits(2 * CHUNK + 500);
    TC_CHECK(tess_read(c, l, 0, 2 * CHUNK + 500, back, &e) == 2 * CHUNK + 500);
    TC_CHECK(memcmp(back, data, 2 * CHUNK + 500) == 0);
    tess_layout_free(l);
    tess_client_close(c);
    free(back);
    free(data);
}

/* put over a bigger file: one commit covers the old tail and sets the size. */
static void test_truncating_writer(void)
{
    tess_client *c = open_client(CHUNK);
    tess_writer_opts wo = {.truncate = 1, .replicas = 2};
    tess_writer *w = NULL;
    ts_error e;
    ts_attr a;
    json_t *cm;

    reset_meta(5 * CHUNK);
    TC_CHECK(tess_writer_open(c, 7, 0, &wo, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "hello", 5, &e) == 0);
    TC_CHECK(tess_writer_close(w, &a, &e) == 0);
    TC_CHECK_EQ_U64(a.size, 5);
    cm = json_array_get(meta.commits, 0);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(cm, "length")), 5 * CHUNK);
    TC_CHECK_EQ_U64(json_integer_value(json_object_get(cm, "size")), 5);
    TC_CHECK_EQ_U64(json_array_size(json_object_get(json_array_get(json_object_get(cm, "chunks"), 0),
                                                    "replicas")), 2);

    /* Emptying: no data at all still drops the old content. */
    reset_meta(1000);
    w = NULL;
    TC_CHECK(tess_writer_open(c, 7, 0, &wo, &w, &e) == 0);
    TC_CHECK(tess_writer_close(w, &a, &e) == 0);
    TC_CHECK_EQ_U64(json_array_size(meta.commits), 1);
    TC_CHECK_EQ_U64(a.size, 0);
    tess_client_close(c);
}

static void test_not_enough_servers(void)
{
    tess_client *c = open_client(CHUNK);
    tess_writer *w = NULL;
    ts_error e;

    reset_meta(0);
    meta.nservers_listed = 2;
    TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "x", 1, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == TS_ENOSPC);
    TC_CHECK(strstr(e.msg, "cannot place 3 replicas: only 2 chunkservers are up (cs-1, cs-2)") != NULL);
    TC_CHECK(strstr(e.msg, "--replicas 2") != NULL);
    TC_CHECK_EQ_U64(json_array_size(meta.commits), 0);     /* nothing became visible */
    meta.nservers_listed = NCS;
    tess_client_close(c);
}

/* Holes between extents read as zeros (data written at an offset). */
static void test_hole_reads_zero(void)
{
    tess_client *c = open_client(CHUNK);
    tess_writer *w = NULL;
    tess_layout *l;
    char back[64];
    ts_error e;

    reset_meta(0);
    TC_CHECK(tess_writer_open(c, 7, 1000, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "abc", 3, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    l = layout_from_commits(1003);
    memset(back, 'z', sizeof(back));
    TC_CHECK(tess_read(c, l, 990, 64, back, &e) == 13);
    TC_CHECK(memcmp(back, "\0\0\0\0\0\0\0\0\0\0abc", 13) == 0);
    tess_layout_free(l);
    tess_client_close(c);
}

static size_t chunks_stored(void)
{
    size_t n = 0;
    for (int i = 0; i < NCS; i++) {
        pthread_mutex_lock(&cs[i].mu);
        n += cs[i].nchunks;
        pthread_mutex_unlock(&cs[i].mu);
    }
    return n;
}

/* A small file: one commit carrying the bytes, nothing uploaded; the layout
 * alone reads it back (every chunkserver could be gone). */
static void test_inline_small_file(void)
{
    char data[3000], back[4000];
    client_inline_max = TESS_INLINE_CHUNK_MAX;
    tess_client *c = open_client(CHUNK);
    tess_writer *w = NULL;
    tess_layout *l;
    ts_error e;

    reset_meta(0);
    size_t before = chunks_stored();
    ts_random_bytes(data, sizeof data);
    TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, data, 1000, &e) == 0);
    TC_CHECK(tess_writer_write(w, data + 1000, 2000, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK_EQ_U64(chunks_stored(), before);
    TC_CHECK_EQ_U64(json_array_size(meta.commits), 1);
    json_t *cm = json_array_get(meta.commits, 0);
    json_t *inl = json_object_get(cm, "inline_chunks");
    TC_CHECK_EQ_U64(json_array_size(json_object_get(cm, "chunks")), 0);
    TC_CHECK_EQ_U64(json_array_size(inl), 1);
    json_t *ch = json_array_get(inl, 0);
    uint8_t *raw = NULL, sha[TS_SHA256_LEN];
    size_t n = 0;
    char shahex[2 * TS_SHA256_LEN + 1];
    const char *b64 = json_string_value(json_object_get(ch, "inline"));
    TC_CHECK(b64 && ts_base64_decode(b64, strlen(b64), &raw, &n) == 0);
    TC_CHECK(n == sizeof data && memcmp(raw, data, n) == 0);
    ts_sha256_once(data, sizeof data, sha);
    ts_hex_encode(sha, TS_SHA256_LEN, shahex);
    TC_CHECK_STR(json_string_value(json_object_get(ch, "sha256")), shahex);
    free(raw);

    l = layout_from_commits(3000);
    TC_CHECK(l && l->nextents == 1 && l->extents[0].inline_data != NULL);
    memset(back, 'z', sizeof back);
    TC_CHECK(tess_read(c, l, 500, sizeof back, back, &e) == 2500);
    TC_CHECK(memcmp(back, data + 500, 2500) == 0);
    tess_layout_free(l);

    /* An append after it is a second inline chunk at offset 3000. */
    w = NULL;
    TC_CHECK(tess_writer_open(c, 7, 3000, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "tail", 4, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK_EQ_U64(chunks_stored(), before);
    l = layout_from_commits(3004);
    TC_CHECK(l && l->nextents == 2);
    TC_CHECK(tess_read(c, l, 2998, 16, back, &e) == 6);
    TC_CHECK(memcmp(back, data + 2998, 2) == 0 && memcmp(back + 2, "tail", 4) == 0);
    tess_layout_free(l);
    tess_client_close(c);
    client_inline_max = 0;
}

/* Over inline_max, or ending past TESS_INLINE_END_MAX: uploaded as usual. */
static void test_inline_limits(void)
{
    client_inline_max = 1000;
    tess_client *c = open_client(CHUNK);
    tess_writer *w = NULL;
    char *data = random_data(1001);
    ts_error e;

    reset_meta(0);
    size_t before = chunks_stored();
    TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, data, 1001, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK(chunks_stored() > before);
    TC_CHECK(json_object_get(json_array_get(meta.commits, 0), "inline_chunks") == NULL);

    reset_meta(0);
    before = chunks_stored();
    w = NULL;
    TC_CHECK(tess_writer_open(c, 7, TESS_INLINE_END_MAX - 10, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, data, 11, &e) == 0);   /* ends one byte past the limit */
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK(chunks_stored() > before);
    TC_CHECK(json_object_get(json_array_get(meta.commits, 0), "inline_chunks") == NULL);

    reset_meta(0);
    before = chunks_stored();
    w = NULL;
    TC_CHECK(tess_writer_open(c, 7, TESS_INLINE_END_MAX - 10, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, data, 10, &e) == 0);   /* ends exactly at it */
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK_EQ_U64(chunks_stored(), before);
    TC_CHECK(json_object_get(json_array_get(meta.commits, 0), "inline_chunks") != NULL);
    free(data);
    tess_client_close(c);
    client_inline_max = 0;
}

/* An older metadata server: the refused commit is retried with the bytes
 * uploaded, and the client stops offering inline data. */
static void test_inline_refused(void)
{
    client_inline_max = TESS_INLINE_CHUNK_MAX;
    tess_client *c = open_client(CHUNK);
    tess_writer *w = NULL;
    tess_layout *l;
    char back[8];
    ts_error e;

    reset_meta(0);
    meta.refuse_inline = 1;
    size_t before = chunks_stored();
    TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "abcdef", 6, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK(chunks_stored() > before);
    TC_CHECK_EQ_U64(json_array_size(meta.commits), 1);   /* the refused one is not recorded */
    l = layout_from_commits(6);
    TC_CHECK(l && l->nextents == 1 && l->extents[0].inline_data == NULL);
    TC_CHECK(tess_read(c, l, 0, sizeof back, back, &e) == 6);
    TC_CHECK(memcmp(back, "abcdef", 6) == 0);
    tess_layout_free(l);
    /* From now on no inline attempt even with the server accepting them. */
    meta.refuse_inline = 0;
    w = NULL;
    TC_CHECK(tess_writer_open(c, 7, 6, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "gh", 2, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK(json_object_get(json_array_get(meta.commits, 1), "inline_chunks") == NULL);
    tess_client_close(c);

    /* A full inline budget: this commit uploads, the next one tries again. */
    c = open_client(CHUNK);
    reset_meta(0);
    meta.inline_full = 1;
    before = chunks_stored();
    w = NULL;
    TC_CHECK(tess_writer_open(c, 7, 0, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "full", 4, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK(chunks_stored() > before);
    meta.inline_full = 0;
    w = NULL;
    TC_CHECK(tess_writer_open(c, 7, 4, NULL, &w, &e) == 0);
    TC_CHECK(tess_writer_write(w, "room", 4, &e) == 0);
    TC_CHECK(tess_writer_close(w, NULL, &e) == 0);
    TC_CHECK_EQ_U64(json_array_size(meta.commits), 2);
    TC_CHECK(json_object_get(json_array_get(meta.commits, 1), "inline_chunks") != NULL);
    tess_client_close(c);
    client_inline_max = 0;
}

/* An answer with attachments to a request that did not ask for them: the
 * JSON alone is fine (nothing is lost), attached bytes are a protocol
 * error that names the request, not bytes silently dropped. */
static void test_answer_attachments(void)
{
    tess_client *c = open_client(CHUNK);
    ts_attr a;
    ts_error e;

    reset_meta(42);
    meta.getattr_att = 1;
    meta.getattr_att_bytes = 0;
    TC_CHECK(tess_getattr(c, 7, &a, &e) == 0);
    TC_CHECK_EQ_U64(a.size, 42);
    meta.getattr_att_bytes = 5;
    TC_CHECK(tess_getattr(c, 7, &a, &e) == TS_EPROTO);
    TC_CHECK(strstr(e.msg, "attachments nobody asked for") != NULL);
    TC_CHECK(strstr(e.msg, "getattr") != NULL);
    meta.getattr_att = 0;
    TC_CHECK(tess_getattr(c, 7, &a, &e) == 0);
    tess_client_close(c);
}

int main(void)
{
    ts_log_init("test_client_io", TS_LOG_ERROR);
    ts_http_client_global_init();
    if (start_servers() != 0)
        return 1;
    kill_cs(3);
    TC_RUN(test_write_survives_dead_server);
    TC_RUN(test_read_all_replicas_fail);
    TC_RUN(test_flush_then_close);
    TC_RUN(test_truncating_writer);
    TC_RUN(test_not_enough_servers);
    TC_RUN(test_hole_reads_zero);
    TC_RUN(test_inline_small_file);
    TC_RUN(test_inline_limits);
    TC_RUN(test_inline_refused);
    TC_RUN(test_answer_attachments);
    for (int i = 0; i < NCS; i++)
        if (cs[i].srv)
            ts_http_server_stop(cs[i].srv);
    ts_http_server_stop(meta.srv);
    for (int i = 0; i < NCS; i++)
        for (size_t k = 0; k < cs[i].nchunks; k++)
            free(cs[i].chunks[k].data);
    json_decref(meta.commits);
    ts_http_client_thread_cleanup();
    TC_DONE("test_client_io");
}
