/*
 * Unit tests of metadata/command.h: encode/decode round trip for every
 * command type, one fixed byte vector (the on-disk format must not drift),
 * rejection of truncated, trailing, unknown-version/type and random input,
 * and dispatch into the namespace.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/checksum.h"
#include "common/codec.h"
#include "common/util.h"
#include "metadata/command.h"
#include "tests/unit/tcheck.h"

static ts_chunk_id cid(int n)
{
    ts_chunk_id id;
    memset(&id, n, sizeof(id));
    return id;
}

/* One command of every type, fields set to distinctive values. */
static void make(int type, cmd *c)
{
    memset(c, 0, sizeof(*c));
    c->type = (uint8_t)type;
    c->now_ns = 1700000000123456789LL + type;
    switch (type) {
    case CMD_MKDIR:
        c->u.mkdir.parent = 1;
        c->u.mkdir.name = ts_strdup("dir");
        c->u.mkdir.mode = 0755;
        c->u.mkdir.uid = 1000;
        c->u.mkdir.gid = 100;
        break;
    case CMD_CREATE:
        c->u.create.parent = 2;
        c->u.create.name = ts_strdup("file");
        c->u.create.mode = 0644;
        c->u.create.uid = 7;
        c->u.create.gid = 8;
        c->u.create.flags = NS_CREATE_EXCL;
        break;
    case CMD_UNLINK:
    case CMD_RMDIR:
        c->u.unlink.parent = 3;
        c->u.unlink.name = ts_strdup("gone");
        break;
    case CMD_RENAME:
        c->u.rename.parent = 4;
        c->u.rename.name = ts_strdup("old");
        c->u.rename.new_parent = 5;
        c->u.rename.new_name = ts_strdup("new");
        c->u.rename.flags = NS_RENAME_EXCHANGE;
        break;
    case CMD_SYMLINK:
        c->u.symlink.parent = 6;
        c->u.symlink.name = ts_strdup("ln");
        c->u.symlink.target = ts_strdup("../target");
        c->u.symlink.uid = 1;
        c->u.symlink.gid = 2;
        break;
    case CMD_LINK:
        c->u.link.ino = 9;
        c->u.link.new_parent = 1;
        c->u.link.new_name = ts_strdup("hard");
        break;
    case CMD_SETATTR:
        c->u.setattr.ino = 10;
        c->u.setattr.a.valid = NS_SETATTR_SIZE | NS_SETATTR_MTIME;
        c->u.setattr.a.size = 12345;
        c->u.setattr.a.mtime_ns = -5;
        break;
    case CMD_COMMIT:
        c->u.commit.ino = 11;
        c->u.commit.offset = 4096;
        c->u.commit.length = 8192;
        c->u.commit.n_extents = 2;
        c->u.commit.extents = ts_calloc(2, sizeof(ts_extent));
        c->u.commit.extents[0] = (ts_extent){ 4096, 4096, cid(1), 0 };
        c->u.commit.extents[1] = (ts_extent){ 8192, 4096, cid(2), 100 };
        c->u.commit.n_chunks = 1;
        c->u.commit.chunks = ts_calloc(1, sizeof(ns_chunk_info));
        c->u.commit.chunks[0].id = cid(2);
        c->u.commit.chunks[0].length = 1 << 20;
        memset(c->u.commit.chunks[0].sha256, 0xee, TS_SHA256_LEN);
        c->u.commit.has_size = 1;
        c->u.commit.size = 20000;
        break;
    case CMD_COMMIT_INLINE:
        /* One stored chunk and one inline chunk with its bytes. */
        c->u.commit.ino = 12;
        c->u.commit.offset = 0;
        c->u.commit.length = 300;
        c->u.commit.n_extents = 2;
        c->u.commit.extents = ts_calloc(2, sizeof(ts_extent));
        c->u.commit.extents[0] = (ts_extent){ 0, 100, cid(4), 0 };
        c->u.commit.extents[1] = (ts_extent){ 100, 200, cid(5), 0 };
        c->u.commit.n_chunks = 2;
        c->u.commit.chunks = ts_calloc(2, sizeof(ns_chunk_info));
        c->u.commit.chunks[0].id = cid(4);
        c->u.commit.chunks[0].length = 4096;
        c->u.commit.chunks[1].id = cid(5);
        c->u.commit.chunks[1].length = 200;
        c->u.commit.chunks[1].data = ts_malloc(200);
        for (int i = 0; i < 200; i++)
            c->u.commit.chunks[1].data[i] = (uint8_t)(i * 7);
        ts_sha256_once(c->u.commit.chunks[1].data, 200, c->u.commit.chunks[1].sha256);
        break;
    case CMD_RESERVE_INODES:
        break;
    case CMD_CREATE_AT:
        c->u.create_at.parent = 1;
        c->u.create_at.name = ts_strdup("new");
        c->u.create_at.ino = 77;
        c->u.create_at.mode = 0640;
        c->u.create_at.uid = 5;
        c->u.create_at.gid = 6;
        c->u.create_at.flags = NS_CREATE_REPLACE;
        c->u.create_at.has_commit = 1;
        c->u.create_at.commit.ino = 77;
        c->u.create_at.commit.length = 3;
        c->u.create_at.commit.n_extents = 1;
        c->u.create_at.commit.extents = ts_calloc(1, sizeof(ts_extent));
        c->u.create_at.commit.extents[0] = (ts_extent){ 0, 3, cid(6), 0 };
        c->u.create_at.commit.n_chunks = 1;
        c->u.create_at.commit.chunks = ts_calloc(1, sizeof(ns_chunk_info));
        c->u.create_at.commit.chunks[0].id = cid(6);
        c->u.create_at.commit.chunks[0].length = 3;
        c->u.create_at.commit.chunks[0].data = (uint8_t *)ts_strdup("abc");
        ts_sha256_once("abc", 3, c->u.create_at.commit.chunks[0].sha256);
        break;
    case CMD_REGISTER_SERVER:
        c->u.server.id = ts_strdup("cs-1");
        c->u.server.address = ts_strdup("127.0.0.1:7401");
        c->u.server.zone = ts_strdup("rack-a");
        c->u.server.weight = 2.5;
        break;
    case CMD_SETXATTR:
        c->u.xattr.ino = 3;
        c->u.xattr.name = ts_strdup("user.k");
        c->u.xattr.value = ts_malloc(3);
        memcpy(c->u.xattr.value, "\0v\xff", 3);
        c->u.xattr.len = 3;
        c->u.xattr.flags = 1;
        break;
    case CMD_REMOVEXATTR:
        c->u.xattr.ino = 3;
        c->u.xattr.name = ts_strdup("user.k");
        break;
    case CMD_SET_SERVER:
        c->u.set_server.id = ts_strdup("cs-4");
        c->u.set_server.address = ts_strdup("127.0.0.1:7404");
        c->u.set_server.zone = ts_strdup("rack-b");
        c->u.set_server.weight = 0.5;
        c->u.set_server.mask = CMD_SET_WEIGHT | CMD_SET_ZONE | CMD_SET_ADMIN;
        c->u.set_server.admin = NS_SERVER_DRAINING;
        break;
    case CMD_REBALANCE:
        c->u.rebalance.running = 1;
        c->u.rebalance.bandwidth = 10 << 20;
        c->u.rebalance.max_moves = 7;
        c->u.rebalance.bytes_planned = 1000;
        c->u.rebalance.bytes_target = 700;
        c->u.rebalance.moves_target = 7;
        c->u.rebalance.started_ns = 42;
        break;
    case CMD_REPLACE_EXTENTS:
        c->u.replace.n_files = 2;
        c->u.replace.files = ts_calloc(2, sizeof(*c->u.replace.files));
        c->u.replace.files[0] = (struct cmd_replace_file){ 12, 7, 0, 8192, NULL, 1 };
        c->u.replace.files[0].extents = ts_calloc(1, sizeof(ts_extent));
        c->u.replace.files[0].extents[0] = (ts_extent){ 0, 8192, cid(3), 0 };
        c->u.replace.files[1] = (struct cmd_replace_file){ 13, 2, 0, 100, NULL, 1 };
        c->u.replace.files[1].extents = ts_calloc(1, sizeof(ts_extent));
        c->u.replace.files[1].extents[0] = (ts_extent){ 0, 100, cid(3), 8192 };
        c->u.replace.n_chunks = 1;
        c->u.replace.chunks = ts_calloc(1, sizeof(ns_chunk_info));
        c->u.replace.chunks[0].id = cid(3);
        c->u.replace.chunks[0].length = 8292;
        memset(c->u.replace.chunks[0].sha256, 0xab, TS_SHA256_LEN);
        break;
    }
}

static void test_round_trip(void)
{
    for (int t = CMD_MKDIR; t < CMD_TYPE_END_; t++) {
        cmd c, d;
        ts_buf b1 = {0}, b2 = {0};
        ts_error e = {0};
        if (strcmp(cmd_type_name(t), "unknown") == 0)
            continue;       /* a number reserved for another subsystem */
        make(t, &c);
        cmd_encode(&c, &b1);
        int rc = cmd_decode(b1.data, b1.len, &d, &e);
        if (rc)
            fprintf(stderr, "  %s: %s\n", cmd_type_name(t), e.msg);
        TC_CHECK(rc == 0);
        TC_CHECK(d.type == t && d.now_ns == c.now_ns);
        cmd_encode(&d, &b2);
        TC_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
        /* every strict prefix is rejected */
        for (size_t cut = 0; cut < b1.len; cut++) {
            cmd x;
            TC_CHECK(cmd_decode(b1.data, cut, &x, &e) == TS_ECORRUPT);
        }
        /* a trailing byte is rejected */
        ts_enc_u8(&b1, 0);
        {
            cmd x;
            TC_CHECK(cmd_decode(b1.data, b1.len, &x, &e) == TS_ECORRUPT);
            TC_CHECK(strstr(e.msg, "trailing") != NULL);
        }
        cmd_free(&c);
        cmd_free(&d);
        ts_buf_free(&b1);
        ts_buf_free(&b2);
    }
}

static void test_fields_survive(void)
{
    cmd c, d;
    ts_buf b = {0};
    ts_error e = {0};
    make(CMD_COMMIT, &c);
    cmd_encode(&c, &b);
    TC_CHECK(cmd_decode(b.data, b.len, &d, &e) == 0);
    TC_CHECK(d.u.commit.n_extents == 2 && d.u.commit.extents[1].chunk_offset == 100);
    TC_CHECK(ts_chunk_id_eq(&d.u.commit.extents[1].chunk, &c.u.commit.extents[1].chunk));
    TC_CHECK(d.u.commit.chunks[0].sha256[31] == 0xee && d.u.commit.size == 20000);
    TC_CHECK(d.u.commit.has_size == 1 && d.u.commit.has_mtime == 0);
    cmd_free(&c);
    cmd_free(&d);
    ts_buf_free(&b);
    make(CMD_COMMIT_INLINE, &c);
    b.len = 0;
    cmd_encode(&c, &b);
    TC_CHECK(cmd_decode(b.data, b.len, &d, &e) == 0);
    TC_CHECK(d.type == CMD_COMMIT_INLINE && d.u.commit.n_chunks == 2);
    TC_CHECK(d.u.commit.chunks[0].data == NULL && d.u.commit.chunks[1].data != NULL);
    TC_CHECK(d.u.commit.chunks[1].length == 200 &&
             memcmp(d.u.commit.chunks[1].data, c.u.commit.chunks[1].data, 200) == 0);
    cmd_free(&c);
    cmd_free(&d);
    make(CMD_REGISTER_SERVER, &c);
    b.len = 0;
    cmd_encode(&c, &b);
    TC_CHECK(cmd_decode(b.data, b.len, &d, &e) == 0);
    TC_CHECK(d.u.server.weight == 2.5);
    TC_CHECK_STR(d.u.server.zone, "rack-a");
    cmd_free(&c);
    cmd_free(&d);
    ts_buf_free(&b);
}

/* The log format is durable: this vector must keep decoding forever. */
static void test_fixed_vector(void)
{
    static const uint8_t vec[] = {
        0x01,                                           /* version */
        0x03,                                           /* CMD_UNLINK */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* now_ns */
        0x2a, 0, 0, 0, 0, 0, 0, 0,                      /* parent 42 */
        0x03, 0, 0, 0, 'a', 'b', 'c',                   /* name "abc" */
    };
    cmd c = { .type = CMD_UNLINK, .now_ns = 0x0102030405060708LL };
    c.u.unlink.parent = 42;
    c.u.unlink.name = ts_strdup("abc");
    ts_buf b = {0};
    cmd_encode(&c, &b);
    TC_CHECK(b.len == sizeof(vec) && memcmp(b.data, vec, sizeof(vec)) == 0);
    cmd d;
    ts_error e = {0};
    TC_CHECK(cmd_decode(vec, sizeof(vec), &d, &e) == 0);
    TC_CHECK(d.type == CMD_UNLINK && d.u.unlink.parent == 42 && d.now_ns == c.now_ns);
    TC_CHECK_STR(d.u.unlink.name, "abc");
    cmd_free(&d);
    cmd_free(&c);
    ts_buf_free(&b);

    uint8_t bad[sizeof(vec)];
    memcpy(bad, vec, sizeof(vec));
    bad[0] = 3;   /* unknown version */
    TC_CHECK(cmd_decode(bad, sizeof(bad), &d, &e) == TS_ECORRUPT && strstr(e.msg, "version"));
    bad[0] = 1;
    bad[1] = 0;   /* unknown types */
    TC_CHECK(cmd_decode(bad, sizeof(bad), &d, &e) == TS_ECORRUPT && strstr(e.msg, "type"));
    bad[1] = CMD_TYPE_END_;
    TC_CHECK(cmd_decode(bad, sizeof(bad), &d, &e) == TS_ECORRUPT);
    bad[1] = 3;
    bad[18] = 0xff;   /* name length 255 > remaining */
    TC_CHECK(cmd_decode(bad, sizeof(bad), &d, &e) == TS_ECORRUPT);
    memset(bad + 18, 0xff, 4);   /* encoded NULL where a name is required */
    TC_CHECK(cmd_decode(bad, 22, &d, &e) == TS_ECORRUPT);
}

/* Version 2 carries the request id between now_ns and the fields. */
static void test_fixed_vector_v2(void)
{
    static const uint8_t vec[] = {
        0x02,                                           /* version */
        0x03,                                           /* CMD_UNLINK */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* now_ns */
        0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0,             /* client 0xdeadbeef */
        0x07, 0, 0, 0, 0, 0, 0, 0,                      /* seq 7 */
        0x05, 0, 0, 0, 0, 0, 0, 0,                      /* acked 5 */
        0x2a, 0, 0, 0, 0, 0, 0, 0,                      /* parent 42 */
        0x03, 0, 0, 0, 'a', 'b', 'c',                   /* name "abc" */
    };
    cmd c = { .type = CMD_UNLINK, .now_ns = 0x0102030405060708LL, .client = 0xdeadbeef,
              .seq = 7, .acked = 5 };
    c.u.unlink.parent = 42;
    c.u.unlink.name = ts_strdup("abc");
    ts_buf b = {0};
    cmd_encode(&c, &b);
    TC_CHECK(b.len == sizeof(vec) && memcmp(b.data, vec, sizeof(vec)) == 0);
    cmd d;
    ts_error e = {0};
    TC_CHECK(cmd_decode(vec, sizeof(vec), &d, &e) == 0);
    TC_CHECK(d.client == 0xdeadbeef && d.seq == 7 && d.acked == 5 && d.u.unlink.parent == 42);
    cmd_free(&d);
    uint8_t bad[sizeof(vec)];
    memcpy(bad, vec, sizeof(vec));
    memset(bad + 10, 0, 8);   /* version 2 needs a client id */
    TC_CHECK(cmd_decode(bad, sizeof(bad), &d, &e) == TS_ECORRUPT && d.type == 0);
    cmd_free(&c);
    ts_buf_free(&b);
}

static void test_garbage(void)
{
    uint64_t s = 42;
    uint8_t buf[200];
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(s % sizeof(buf));
        for (size_t k = 0; k < n; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            buf[k] = (uint8_t)s;
        }
        if (n > 0)
            buf[0] = 1;               /* valid version so the bodies get exercised */
        if (n > 1)
            buf[1] = (uint8_t)(1 + i % (CMD_TYPE_END_ - 1));
        cmd c;
        ts_error e = {0};
        if (cmd_decode(buf, n, &c, &e) == 0) {
            accepted++;
            cmd_free(&c);
        }
        s += 0x9e3779b97f4a7c15ULL;
    }
    /* no crash (ASan/UBSan builds check memory); random bytes rarely parse */
    TC_CHECK(accepted < 20000);
}

static void test_apply(void)
{
    ns_state *ns = ns_new(1);
    cmd c;
    cmd_result r;
    ts_error e = {0};
    make(CMD_MKDIR, &c);
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0 && S_ISDIR(r.attr.mode) && r.attr.ino == 2);
    TC_CHECK(r.attr.ctime_ns == c.now_ns);     /* time comes from the command */
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_EEXIST);
    cmd_free(&c);
    make(CMD_CREATE, &c);
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0 && r.created && r.attr.ino == 3);
    cmd_free(&c);
    make(CMD_REGISTER_SERVER, &c);
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0 && ns_server_count(ns) == 1);
    cmd_free(&c);
    /* xattrs on the file made above (inode 3): create, again (EEXIST), remove */
    make(CMD_SETXATTR, &c);
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0);
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_EEXIST);
    {
        const void *v;
        size_t len;
        TC_CHECK(ns_getxattr(ns, 3, "user.k", &v, &len, &e) == 0 && len == 3 &&
                 memcmp(v, "\0v\xff", 3) == 0);
    }
    cmd_free(&c);
    make(CMD_REMOVEXATTR, &c);
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0);
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_ENODATA);
    cmd_free(&c);
    cmd bogus = { .type = 99 };
    TC_CHECK(cmd_apply(ns, &bogus, &r, &e) == TS_EINVAL);
    TC_CHECK(ns_check_invariants(ns, &e) == 0);
    ns_free(ns);

    /* Creates at reserved numbers: a number is good once, only when
     * reserved; the data lands with the file; REPLACE takes the place of
     * a file of that name; a refused commit leaves nothing behind. */
    ns = ns_new(1);
    cmd rsv = { .type = CMD_RESERVE_INODES, .now_ns = 5 };
    TC_CHECK(cmd_apply(ns, &rsv, &r, &e) == 0 && r.attr.ino == 2);
    uint64_t first = r.attr.ino;
    TC_CHECK(ns_reserved_count(ns) == NS_RESERVE_BATCH);
    make(CMD_CREATE, &c);       /* an ordinary create gets a number past the range */
    c.u.create.parent = 1;
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0 && r.attr.ino == first + NS_RESERVE_BATCH);
    cmd_free(&c);
    make(CMD_CREATE_AT, &c);
    c.u.create_at.ino = c.u.create_at.commit.ino = first + 5;
    free(c.u.create_at.name);
    c.u.create_at.name = ts_strdup("file");   /* the name the CREATE above made */
    c.u.create_at.flags = 0;
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_EEXIST);
    c.u.create_at.flags = NS_CREATE_REPLACE;
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0 && r.created && r.attr.ino == first + 5);
    TC_CHECK(r.attr.size == 3 && r.has_parent && r.parent.ino == 1);
    TC_CHECK(ns_reserved_count(ns) == NS_RESERVE_BATCH - 1);
    TC_CHECK(ns_check_invariants(ns, &e) == 0);
    {
        ts_attr a;
        const uint8_t *d;
        uint64_t n;
        TC_CHECK(ns_lookup(ns, 1, "file", &a, &e) == 0 && a.ino == first + 5);
        TC_CHECK(ns_getattr(ns, first + NS_RESERVE_BATCH, &a, &e) == TS_ENOENT);   /* replaced */
        ts_chunk_id id6 = cid(6);
        TC_CHECK(ns_chunk_inline(ns, &id6, &d, &n) == 1 && n == 3 && memcmp(d, "abc", 3) == 0);
    }
    free(c.u.create_at.name);
    c.u.create_at.name = ts_strdup("again");
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_EINVAL);          /* used already */
    c.u.create_at.ino = c.u.create_at.commit.ino = first + NS_RESERVE_BATCH + 1;
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_EINVAL);          /* never reserved */
    c.u.create_at.ino = c.u.create_at.commit.ino = first + 6;
    c.u.create_at.commit.chunks[0].id = c.u.create_at.commit.extents[0].chunk = cid(7);
    c.u.create_at.commit.chunks[0].sha256[0] ^= 1;             /* data does not match */
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_ECORRUPT);
    TC_CHECK(ns_lookup(ns, 1, "again", &(ts_attr){0}, &e) == TS_ENOENT);
    TC_CHECK(ns_reserved_count(ns) == NS_RESERVE_BATCH - 1);
    c.u.create_at.commit.chunks[0].sha256[0] ^= 1;
    c.u.create_at.commit.ino = first + 7;                      /* data for another inode */
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == TS_EINVAL);
    c.u.create_at.commit.ino = first + 6;
    c.u.create_at.has_commit = 0;                              /* an empty file */
    TC_CHECK(cmd_apply(ns, &c, &r, &e) == 0 && r.attr.size == 0 && r.attr.ino == first + 6);
    cmd_free(&c);
    /* The last numbers of a range: the range leaves the table. */
    for (uint64_t k = 0; k < NS_RESERVE_BATCH; k++) {
        if (k == 5 || k == 6)
            continue;
        char name[16];
        snprintf(name, sizeof name, "f%llu", (unsigned long long)k);
        TC_CHECK(ns_create_at(ns, 1, name, first + k, 0644, 0, 0, 0, NULL, 9, &r.attr, &e) == 0);
    }
    TC_CHECK(ns_reserved_count(ns) == 0);
    TC_CHECK(ns_check_invariants(ns, &e) == 0);
    ns_free(ns);
}

int main(void)
{
    TC_RUN(test_round_trip);
    TC_RUN(test_fields_survive);
    TC_RUN(test_fixed_vector);
    TC_RUN(test_fixed_vector_v2);
    TC_RUN(test_garbage);
    TC_RUN(test_apply);
    TC_DONE("test_command");
}
