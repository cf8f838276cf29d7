/*
 * Unit tests of libtessera's pure parts: read planning over extents with
 * holes and EOF, replica ordering for reads, write-chain selection and the
 * blame of a failed chain member, remote path handling, and the decoders of
 * layouts and server lists.
 */
#include <stdlib.h>
#include <string.h>

#include "common/placement.h"
#include "fs/tessera.h"
#include "tests/unit/tcheck.h"

static tess_layout_extent ext(uint64_t off, uint64_t len, uint64_t chunk_off, uint8_t tag)
{
    tess_layout_extent x;

    memset(&x, 0, sizeof(x));
    x.ext.file_offset = off;
    x.ext.length = len;
    x.ext.chunk_offset = chunk_off;
    memset(x.ext.chunk.b, tag, sizeof(x.ext.chunk.b));
    x.chunk_length = chunk_off + len;
    return x;
}

/* [0,100) data, [100,200) hole, [200,300) data; size 350 (tail hole). */
static void test_plan_holes_and_eof(void)
{
    tess_layout_extent xs[2] = {ext(0, 100, 0, 1), ext(200, 100, 50, 2)};
    tess_read_piece *p;
    size_t n, got;

    got = tess_read_plan(xs, 2, 350, 50, 1000, 0, &p, &n);
    TC_CHECK_EQ_U64(got, 300);                    /* clamped at EOF */
    TC_CHECK_EQ_U64(n, 4);
    TC_CHECK_EQ_U64(p[0].buf_off, 0);
    TC_CHECK_EQ_U64(p[0].len, 50);
    TC_CHECK_EQ_U64(p[0].extent, 0);
    TC_CHECK_EQ_U64(p[0].chunk_off, 50);
    TC_CHECK_EQ_U64(p[1].buf_off, 50);            /* the hole */
    TC_CHECK_EQ_U64(p[1].len, 100);
    TC_CHECK(p[1].extent == SIZE_MAX);
    TC_CHECK_EQ_U64(p[2].buf_off, 150);
    TC_CHECK_EQ_U64(p[2].len, 100);
    TC_CHECK_EQ_U64(p[2].extent, 1);
    TC_CHECK_EQ_U64(p[2].chunk_off, 50);          /* extent's own chunk offset */
    TC_CHECK_EQ_U64(p[3].buf_off, 250);           /* tail hole to EOF */
    TC_CHECK_EQ_U64(p[3].len, 50);
    TC_CHECK(p[3].extent == SIZE_MAX);
    free(p);

    /* At or past EOF: nothing. */
    got = tess_read_plan(xs, 2, 350, 350, 10, 0, &p, &n);
    TC_CHECK_EQ_U64(got, 0);
    TC_CHECK_EQ_U64(n, 0);
    TC_CHECK(p == NULL);
}

static void test_plan_pieces_split(void)
{
    tess_layout_extent xs[1] = {ext(0, 1000, 0, 1)};
    tess_read_piece *p;
    size_t n, total = 0;

    TC_CHECK_EQ_U64(tess_read_plan(xs, 1, 1000, 10, 990, 300, &p, &n), 990);
    TC_CHECK_EQ_U64(n, 4);                        /* 300 + 300 + 300 + 90 */
    for (size_t i = 0; i < n; i++) {
        TC_CHECK(p[i].len <= 300);
        TC_CHECK_EQ_U64(p[i].buf_off, total);
        TC_CHECK_EQ_U64(p[i].chunk_off, 10 + total);
        total += p[i].len;
    }
    TC_CHECK_EQ_U64(total, 990);
    free(p);
}

/* A file that is only a hole (setattr size on an empty file). */
static void test_plan_sparse_file(void)
{
    tess_read_piece *p;
    size_t n;

    TC_CHECK_EQ_U64(tess_read_plan(NULL, 0, 4096, 0, 8192, 0, &p, &n), 4096);
    TC_CHECK_EQ_U64(n, 1);
    TC_CHECK(p[0].extent == SIZE_MAX);
    TC_CHECK_EQ_U64(p[0].len, 4096);
    free(p);
}

static tess_servers make_servers(size_t n, const enum tess_server_state *states)
{
    tess_servers s;

    s.n = n;
    s.v = calloc(n, sizeof(*s.v));
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "cs-%zu", i + 1);
        s.v[i].id = strdup(buf);
        snprintf(buf, sizeof(buf), "127.0.0.1:%zu", 7400 + i + 1);
        s.v[i].address = strdup(buf);
        s.v[i].zone = strdup("");
        s.v[i].weight = 1;
        s.v[i].state = states[i];
    }
    return s;
}

static void test_replica_order(void)
{
    enum tess_server_state st[5] = {TESS_SERVER_UP, TESS_SERVER_DOWN, TESS_SERVER_UP,
                                    TESS_SERVER_DRAINING, TESS_SERVER_UP};
    tess_servers s = make_servers(5, st);
    char *listed[] = {"cs-2", "cs-4", "cs-3", "cs-9"};   /* cs-9 unknown */
    size_t out[5], n;
    ts_chunk_id id;

    memset(id.b, 7, sizeof(id.b));
    n = tess_replica_order(&id, listed, 4, &s, out);
    TC_CHECK_EQ_U64(n, 5);
    TC_CHECK_EQ_U64(out[0], 2);                   /* listed and up: cs-3 */
    TC_CHECK_EQ_U64(out[1], 3);                   /* listed, draining: cs-4 */
    /* then the other up servers (cs-1, cs-5) in placement order */
    TC_CHECK((out[2] == 0 && out[3] == 4) || (out[2] == 4 && out[3] == 0));
    TC_CHECK_EQ_U64(out[4], 1);                   /* listed but down: last */

    /* Nothing listed (after a metadata failover): placement order only. */
    n = tess_replica_order(&id, NULL, 0, &s, out);
    TC_CHECK_EQ_U64(n, 3);
    tess_servers_free(&s);
}

static void test_chain_select(void)
{
    size_t ranked[5] = {3, 0, 4, 1, 2}, chain[5];
    unsigned char excluded[5] = {0};

    TC_CHECK_EQ_U64(tess_chain_select(ranked, 5, excluded, 3, chain), 3);
    TC_CHECK_EQ_U64(chain[0], 3);
    TC_CHECK_EQ_U64(chain[1], 0);
    TC_CHECK_EQ_U64(chain[2], 4);
    /* The second server of the chain failed: the next ranked one steps in. */
    excluded[0] = 1;
    TC_CHECK_EQ_U64(tess_chain_select(ranked, 5, excluded, 3, chain), 3);
    TC_CHECK_EQ_U64(chain[0], 3);
    TC_CHECK_EQ_U64(chain[1], 4);
    TC_CHECK_EQ_U64(chain[2], 1);
    /* Too many failures: fewer than asked. */
    excluded[3] = excluded[4] = 1;
    TC_CHECK_EQ_U64(tess_chain_select(ranked, 5, excluded, 3, chain), 2);
}

static void test_chain_blame(void)
{
    enum tess_server_state st[12];
    tess_servers s;
    size_t chain[3] = {0, 1, 11};   /* cs-1 -> cs-2 -> cs-12 */

    for (size_t i = 0; i < 12; i++)
        st[i] = TESS_SERVER_UP;
    s = make_servers(12, st);
    TC_CHECK(tess_chain_blame(&s, chain, 3, "forward to 127.0.0.1:7412: connection refused") == 2);
    TC_CHECK(tess_chain_blame(&s, chain, 3, "EUNAVAIL: downstream cs-2 failed") == 1);
    /* "cs-1" is the reporter and a prefix of cs-12: neither blames cs-1. */
    TC_CHECK(tess_chain_blame(&s, chain, 3, "cs-1: downstream cs-12 timed out") == 2);
    TC_CHECK(tess_chain_blame(&s, chain, 3, "cs-1: disk error") == -1);
    TC_CHECK(tess_chain_blame(&s, chain, 3, NULL) == -1);
    /* An address prefix must not match a longer port. */
    TC_CHECK(tess_chain_blame(&s, chain, 3, "127.0.0.1:74022 refused") == -1);
    tess_servers_free(&s);
}

static void test_path_normalize(void)
{
    static const struct { const char *in, *out; } cases[] = {
        {"/", "/"}, {"a", "/a"}, {"/a/b/", "/a/b"}, {"//a//b", "/a/b"}, {"/a/./b", "/a/b"},
        {"/a/../b", "/b"}, {"/..", "/"}, {"/a/b/../..", "/"}, {"a/b/c/../../d", "/a/d"},
        {".", "/"}, {"/a..b/c.", "/a..b/c."},
    };
    char out[TS_PATH_MAX + 1], lng[TS_PATH_MAX + 100];
    ts_error e;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TC_CHECK(tess_path_normalize(cases[i].in, out, &e) == 0);
        TC_CHECK_STR(out, cases[i].out);
    }
    TC_CHECK(tess_path_normalize("", out, &e) == TS_EINVAL);
    memset(lng, 'x', 300);
    lng[0] = '/';
    lng[300] = '\0';
    TC_CHECK(tess_path_normalize(lng, out, &e) == TS_ENAMETOOLONG);
    for (size_t i = 0; i < sizeof(lng) - 1; i++)
        lng[i] = i % 100 == 0 ? '/' : 'y';
    lng[sizeof(lng) - 1] = '\0';
    TC_CHECK(tess_path_normalize(lng, out, &e) == TS_ENAMETOOLONG);
}

static void test_path_split_basename(void)
{
    char buf[64], base[64];
    const char *parent, *name;
    ts_error e;

    strcpy(buf, "/a/b/c");
    TC_CHECK(tess_path_split(buf, &parent, &name, &e) == 0);
    TC_CHECK_STR(parent, "/a/b");
    TC_CHECK_STR(name, "c");
    strcpy(buf, "/top");
    TC_CHECK(tess_path_split(buf, &parent, &name, &e) == 0);
    TC_CHECK_STR(parent, "/");
    TC_CHECK_STR(name, "top");
    strcpy(buf, "/");
    TC_CHECK(tess_path_split(buf, &parent, &name, &e) == TS_EINVAL);

    tess_path_basename("dir/file.txt", base, sizeof(base));
    TC_CHECK_STR(base, "file.txt");
    tess_path_basename("/x/y/", base, sizeof(base));
    TC_CHECK_STR(base, "y");
    tess_path_basename("plain", base, sizeof(base));
    TC_CHECK_STR(base, "plain");
}

static void test_layout_json(void)
{
    const char *text =
        "{\"attr\":{\"ino\":5,\"mode\":33188,\"nlink\":1,\"uid\":0,\"gid\":0,\"size\":300,"
        "\"atime\":1,\"mtime\":2,\"ctime\":3,\"version\":4},"
        "\"extents\":[{\"file_offset\":0,\"length\":100,\"chunk\":\"000102030405060708090a0b0c0d0e0f\","
        "\"chunk_offset\":0,\"chunk_length\":100,\"replicas\":[\"cs-1\",\"cs-2\"]},"
        "{\"file_offset\":200,\"length\":50,\"chunk\":\"ffffffffffffffffffffffffffffffff\","
        "\"chunk_offset\":10,\"chunk_length\":64,\"replicas\":[]}]}";
    const char *overlap =
        "{\"attr\":{\"ino\":5,\"mode\":33188,\"nlink\":1,\"uid\":0,\"gid\":0,\"size\":300,"
        "\"atime\":1,\"mtime\":2,\"ctime\":3,\"version\":4},"
        "\"extents\":[{\"file_offset\":0,\"length\":100,\"chunk\":\"000102030405060708090a0b0c0d0e0f\","
        "\"chunk_offset\":0},{\"file_offset\":50,\"length\":100,"
        "\"chunk\":\"000102030405060708090a0b0c0d0e0f\",\"chunk_offset\":0}]}";
    json_t *j = json_loads(text, 0, NULL);
    tess_layout *l = NULL;
    ts_error e;

    TC_CHECK(j != NULL);
    TC_CHECK(tess_layout_from_json(j, NULL, &l, &e) == 0);
    if (l) {
        TC_CHECK_EQ_U64(l->attr.ino, 5);
        TC_CHECK_EQ_U64(l->nextents, 2);
        TC_CHECK_EQ_U64(l->extents[0].nreplicas, 2);
        TC_CHECK_STR(l->extents[0].replicas[1], "cs-2");
        TC_CHECK_EQ_U64(l->extents[1].ext.chunk_offset, 10);
        TC_CHECK_EQ_U64(l->extents[1].chunk_length, 64);
        TC_CHECK_EQ_U64(l->extents[1].nreplicas, 0);
        TC_CHECK_EQ_U64(l->extents[0].ext.chunk.b[15], 0x0f);
    }
    tess_layout_free(l);
    json_decref(j);

    j = json_loads(overlap, 0, NULL);
    l = NULL;
    TC_CHECK(tess_layout_from_json(j, NULL, &l, &e) == TS_EPROTO);
    TC_CHECK(l == NULL);
    json_decref(j);

    /* An inline chunk's bytes attached: read from where "inline_at" says;
     * bytes missing from the attachments (or none given) are refused. */
    const char *attached =
        "{\"attr\":{\"ino\":5,\"mode\":33188,\"nlink\":1,\"uid\":0,\"gid\":0,\"size\":3,"
        "\"atime\":1,\"mtime\":2,\"ctime\":3,\"version\":4},"
        "\"extents\":[{\"file_offset\":0,\"length\":3,\"chunk\":\"000102030405060708090a0b0c0d0e0f\","
        "\"chunk_offset\":0,\"chunk_length\":3,\"replicas\":[],\"inline_at\":2}]}";
    ts_att att = { (const uint8_t *)"xyabc", 5 }, short_att = { (const uint8_t *)"xyab", 4 };
    j = json_loads(attached, 0, NULL);
    TC_CHECK(tess_layout_from_json(j, &att, &l, &e) == 0);
    if (l) {
        TC_CHECK_EQ_U64(l->nextents, 1);
        TC_CHECK(l->extents[0].inline_data && memcmp(l->extents[0].inline_data, "abc", 3) == 0);
    }
    tess_layout_free(l);
    l = NULL;
    TC_CHECK(tess_layout_from_json(j, &short_att, &l, &e) == TS_EPROTO && l == NULL);
    TC_CHECK(strstr(e.msg, "inline_at") != NULL);
    TC_CHECK(tess_layout_from_json(j, NULL, &l, &e) == TS_EPROTO && l == NULL);
    json_decref(j);
}

static void test_servers_json(void)
{
    const char *text =
        "{\"servers\":[{\"id\":\"cs-1\",\"address\":\"127.0.0.1:1\",\"zone\":\"a\",\"weight\":2,"
        "\"state\":\"up\",\"capacity\":100,\"used\":10,\"chunks\":3,\"last_heartbeat_ms_ago\":40},"
        "{\"id\":\"cs-2\",\"address\":\"127.0.0.1:2\",\"state\":\"draining\"}],"
        "\"chunks\":3,\"under_replicated\":1}";
    json_t *j = json_loads(text, 0, NULL);
    tess_servers s = {0};
    ts_error e;

    TC_CHECK(tess_servers_from_json(j, &s, &e) == 0);
    TC_CHECK_EQ_U64(s.n, 2);
    if (s.n == 2) {
        TC_CHECK_STR(s.v[0].zone, "a");
        TC_CHECK(s.v[0].weight == 2.0);
        TC_CHECK(s.v[0].state == TESS_SERVER_UP);
        TC_CHECK_EQ_U64(s.v[0].capacity, 100);
        TC_CHECK_EQ_U64(s.v[0].chunks, 3);
        TC_CHECK(s.v[0].last_heartbeat_ms_ago == 40);
        TC_CHECK_STR(s.v[1].zone, "");
        TC_CHECK(s.v[1].weight == 1.0);          /* default */
        TC_CHECK(s.v[1].state == TESS_SERVER_DRAINING);
        TC_CHECK(tess_servers_find(&s, "cs-2") == &s.v[1]);
        TC_CHECK(tess_servers_find(&s, "cs-3") == NULL);
    }
    tess_servers_free(&s);
    json_decref(j);
}

static void test_client_opts(void)
{
    ts_config *cfg = ts_config_new();
    tess_client_opts o;
    tess_client *c = NULL;
    ts_error e;

    ts_config_set(cfg, "meta", "127.0.0.1:1, 127.0.0.1:2");
    ts_config_set(cfg, "chunk_size", "16M");
    ts_config_set(cfg, "replicas", "2");
    TC_CHECK(tess_client_opts_from_config(cfg, &o, &e) == 0);
    TC_CHECK_EQ_U64(o.chunk_size, 16u << 20);
    TC_CHECK_EQ_U64(o.replicas, 2);
    TC_CHECK(tess_client_open(&o, &c, &e) == 0);
    if (c) {
        TC_CHECK_STR(tess_client_meta_addr(c), "127.0.0.1:1");
        TC_CHECK_EQ_U64(tess_client_chunk_size(c), 16u << 20);
        tess_client_close(c);
    }
    ts_config_set(cfg, "bogus", "1");
    TC_CHECK(tess_client_opts_from_config(cfg, &o, &e) == TS_EINVAL);
    ts_config_free(cfg);

    tess_client_opts_init(&o);
    o.meta = " , ";
    TC_CHECK(tess_client_open(&o, &c, &e) == TS_EINVAL);
    o.meta = "nohostport";
    TC_CHECK(tess_client_open(&o, &c, &e) == TS_EINVAL);
}

int main(void)
{
    TC_RUN(test_plan_holes_and_eof);
    TC_RUN(test_plan_pieces_split);
    TC_RUN(test_plan_sparse_file);
    TC_RUN(test_replica_order);
    TC_RUN(test_chain_select);
    TC_RUN(test_chain_blame);
    TC_RUN(test_path_normalize);
    TC_RUN(test_path_split_basename);
    TC_RUN(test_layout_json);
    TC_RUN(test_servers_json);
    TC_RUN(test_client_opts);
    TC_DONE("test_client");
}
