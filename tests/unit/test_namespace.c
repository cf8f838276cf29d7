/*
 * Unit tests of the namespace state machine (metadata/namespace.h): every
 * operation with its errors, extent splicing and reference counts, rename
 * edge cases, readdir paging, snapshot encoding, and a randomized sequence
 * of 10,000 operations.  ns_check_invariants() runs after every step.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/checksum.h"
#include "common/util.h"
#include "metadata/namespace.h"
#include "metadata/ptab.h"
#include "tests/unit/tcheck.h"

#define INV(ns)                                                               \
    do {                                                                      \
        ts_error inv_e_ = {0};                                                \
        int inv_rc_ = ns_check_invariants(ns, &inv_e_);                       \
        if (inv_rc_ != 0)                                                     \
            fprintf(stderr, "  invariant: %s\n", inv_e_.msg);                 \
        TC_CHECK(inv_rc_ == 0);                                               \
    } while (0)

static int64_t T = 1000;

static ts_chunk_id cid(int n)
{
    ts_chunk_id id;
    memset(&id, 0, sizeof(id));
    id.b[0] = (uint8_t)n;
    id.b[15] = (uint8_t)(n >> 8);
    id.b[7] = 0xa5;
    return id;
}

static uint64_t mkdir_ok(ns_state *ns, uint64_t parent, const char *name)
{
    ts_attr a;
    ts_error e = {0};
    int rc = ns_mkdir(ns, parent, name, 0755, 1, 2, T++, &a, &e);
    if (rc)
        fprintf(stderr, "  mkdir %s: %s\n", name, e.msg);
    TC_CHECK(rc == 0);
    return rc ? 0 : a.ino;
}

static uint64_t create_ok(ns_state *ns, uint64_t parent, const char *name)
{
    ts_attr a;
    ts_error e = {0};
    int created = 0;
    int rc = ns_create(ns, parent, name, 0644, 1, 2, NS_CREATE_EXCL, T++, &a, &created, &e);
    if (rc)
        fprintf(stderr, "  create %s: %s\n", name, e.msg);
    TC_CHECK(rc == 0 && created);
    return rc ? 0 : a.ino;
}

static uint32_t nlink_of(ns_state *ns, uint64_t ino)
{
    ts_attr a;
    return ns_getattr(ns, ino, &a, NULL) == 0 ? a.nlink : 0;
}

static uint32_t refcount_of(ns_state *ns, int n)
{
    ts_chunk_id id = cid(n);
    uint32_t rc = 0;
    if (ns_chunk_lookup(ns, &id, NULL, NULL, &rc) != 0)
        return 0;
    return rc;
}

/* Commits one extent [off, off+len) of chunk n (registered with clen). */
/* ns encoded and decoded again: the copy (caller frees), after checking
 * that it encodes to the same bytes; NULL when it does not decode. */
static ns_state *image_copy(ns_state *ns)
{
    ts_buf b1 = {0}, b2 = {0};
    ns_state *copy = NULL;
    ts_error e = {0};
    ns_encode(ns, &b1);
    TC_CHECK(ns_decode(b1.data, b1.len, &copy, &e) == 0);
    if (copy) {
        ns_encode(copy, &b2);
        TC_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    }
    ts_buf_free(&b1);
    ts_buf_free(&b2);
    return copy;
}

static int commit1(ns_state *ns, uint64_t ino, uint64_t off, uint64_t len, int n, uint64_t coff,
                   uint64_t clen, ts_error *e)
{
    ts_extent x = { .file_offset = off, .length = len, .chunk = cid(n), .chunk_offset = coff };
    ns_chunk_info ci = { .id = cid(n), .length = clen };
    memset(ci.sha256, n, sizeof(ci.sha256));
    ns_commit_args a = { .ino = ino, .offset = off, .length = len, .extents = &x,
                         .n_extents = 1, .chunks = &ci, .n_chunks = 1 };
    ts_attr out;
    return ns_commit(ns, &a, T++, &out, e);
}

static void test_basic_tree(void)
{
    ns_state *ns = ns_new(5);
    ts_attr a;
    ts_error e = {0};
    INV(ns);
    TC_CHECK(ns_getattr(ns, TS_ROOT_INO, &a, &e) == 0);
    TC_CHECK(S_ISDIR(a.mode) && a.nlink == 2 && a.ctime_ns == 5);
    uint64_t d = mkdir_ok(ns, 1, "dir");
    INV(ns);
    TC_CHECK_EQ_U64(nlink_of(ns, 1), 3);
    uint64_t f = create_ok(ns, d, "file");
    INV(ns);
    TC_CHECK(ns_lookup(ns, d, "file", &a, &e) == 0 && a.ino == f && S_ISREG(a.mode));
    TC_CHECK(ns_resolve(ns, "/dir/file", &a, &e) == 0 && a.ino == f);
    TC_CHECK(ns_resolve(ns, "//dir/./file", &a, &e) == 0 && a.ino == f);
    TC_CHECK(ns_resolve(ns, "/dir/../dir/file", &a, &e) == 0 && a.ino == f);
    TC_CHECK(ns_resolve(ns, "/", &a, &e) == 0 && a.ino == 1);
    TC_CHECK(ns_resolve(ns, "/dir/", &a, &e) == 0 && a.ino == d);
    TC_CHECK(ns_resolve(ns, "dir", &a, &e) == TS_EINVAL);
    TC_CHECK(ns_resolve(ns, "/nope", &a, &e) == TS_ENOENT);
    TC_CHECK(ns_resolve(ns, "/dir/file/x", &a, &e) == TS_ENOTDIR);
    TC_CHECK(ns_lookup(ns, d, "nope", &a, &e) == TS_ENOENT);
    TC_CHECK(strstr(e.msg, "nope") != NULL);
    TC_CHECK(ns_lookup(ns, f, "x", &a, &e) == TS_ENOTDIR);
    TC_CHECK(ns_lookup(ns, 999, "x", &a, &e) == TS_ENOENT);
    TC_CHECK(ns_getattr(ns, 999, &a, &e) == TS_ENOENT);

    /* create: exclusive, existing, truncate */
    int created = 1;
    TC_CHECK(ns_create(ns, d, "file", 0644, 0, 0, NS_CREATE_EXCL, T++, &a, &created, &e) ==
             TS_EEXIST);
    TC_CHECK(ns_create(ns, d, "file", 0644, 0, 0, 0, T++, &a, &created, &e) == 0);
    TC_CHECK(created == 0 && a.ino == f);
    TC_CHECK(ns_create(ns, 1, "dir", 0644, 0, 0, 0, T++, &a, &created, &e) == TS_EISDIR);
    TC_CHECK(ns_create(ns, 1, "x", S_IFDIR | 0644, 0, 0, 0, T++, &a, &created, &e) == TS_EINVAL);
    TC_CHECK(ns_create(ns, f, "x", 0644, 0, 0, 0, T++, &a, &created, &e) == TS_ENOTDIR);
    TC_CHECK(ns_mkdir(ns, 1, "dir", 0755, 0, 0, T++, &a, &e) == TS_EEXIST);
    TC_CHECK(ns_mkdir(ns, 77, "q", 0755, 0, 0, T++, &a, &e) == TS_ENOENT);
    INV(ns);

    /* names */
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    longname[256] = '\0';
    TC_CHECK(ns_mkdir(ns, 1, "", 0755, 0, 0, T++, &a, &e) == TS_EINVAL);
    TC_CHECK(ns_mkdir(ns, 1, ".", 0755, 0, 0, T++, &a, &e) == TS_EINVAL);
    TC_CHECK(ns_mkdir(ns, 1, "..", 0755, 0, 0, T++, &a, &e) == TS_EINVAL);
    TC_CHECK(ns_mkdir(ns, 1, "a/b", 0755, 0, 0, T++, &a, &e) == TS_EINVAL);
    TC_CHECK(ns_mkdir(ns, 1, longname, 0755, 0, 0, T++, &a, &e) == TS_ENAMETOOLONG);
    longname[255] = '\0';
    TC_CHECK(ns_mkdir(ns, 1, longname, 0755, 0, 0, T++, &a, &e) == 0);
    TC_CHECK(ns_rmdir(ns, 1, longname, T++, &e) == 0);
    INV(ns);

    /* symlink / readlink */
    const char *tgt = NULL;
    TC_CHECK(ns_symlink(ns, d, "ln", "../some/where", 3, 4, T++, &a, &e) == 0);
    TC_CHECK(S_ISLNK(a.mode) && a.size == strlen("../some/where"));
    uint64_t ln = a.ino;
    TC_CHECK(ns_readlink(ns, ln, &tgt, &e) == 0);
    TC_CHECK_STR(tgt, "../some/where");
    TC_CHECK(ns_readlink(ns, f, &tgt, &e) == TS_EINVAL);
    TC_CHECK(ns_symlink(ns, d, "ln", "x", 0, 0, T++, &a, &e) == TS_EEXIST);
    TC_CHECK(ns_symlink(ns, d, "ln2", "", 0, 0, T++, &a, &e) == TS_EINVAL);
    TC_CHECK(ns_resolve(ns, "/dir/ln/x", &a, &e) == TS_ENOTDIR);  /* not followed */
    INV(ns);

    /* link */
    TC_CHECK(ns_link(ns, f, 1, "hard", T++, &a, &e) == 0 && a.nlink == 2);
    TC_CHECK(ns_link(ns, d, 1, "dirlink", T++, &a, &e) == TS_EPERM);
    TC_CHECK(ns_link(ns, f, 1, "hard", T++, &a, &e) == TS_EEXIST);
    TC_CHECK(ns_link(ns, 4242, 1, "zz", T++, &a, &e) == TS_ENOENT);
    INV(ns);

    /* unlink / rmdir */
    TC_CHECK(ns_unlink(ns, 1, "dir", T++, &e) == TS_EISDIR);
    TC_CHECK(ns_rmdir(ns, 1, "dir", T++, &e) == TS_ENOTEMPTY);
    TC_CHECK(ns_rmdir(ns, 1, "hard", T++, &e) == TS_ENOTDIR);
    TC_CHECK(ns_unlink(ns, d, "file", T++, &e) == 0);
    INV(ns);
    TC_CHECK_EQ_U64(nlink_of(ns, f), 1);
    TC_CHECK(ns_unlink(ns, 1, "hard", T++, &e) == 0);
    TC_CHECK(ns_getattr(ns, f, &a, &e) == TS_ENOENT);   /* freed at nlink 0 */
    TC_CHECK(ns_unlink(ns, 1, "hard", T++, &e) == TS_ENOENT);
    TC_CHECK(ns_unlink(ns, d, "ln", T++, &e) == 0);
    TC_CHECK(ns_rmdir(ns, 1, "dir", T++, &e) == 0);
    TC_CHECK_EQ_U64(nlink_of(ns, 1), 2);
    INV(ns);
    ns_stats st;
    ns_get_stats(ns, &st);
    TC_CHECK(st.files == 0 && st.directories == 1 && st.symlinks == 0);
    /* inode numbers are never reused */
    uint64_t again = create_ok(ns, 1, "again");
    TC_CHECK(again > ln);
    INV(ns);
    ns_free(ns);
}

static void test_setattr(void)
{
    ns_state *ns = ns_new(0);
    ts_attr a;
    ts_error e = {0};
    uint64_t f = create_ok(ns, 1, "f");
    uint64_t d = mkdir_ok(ns, 1, "d");
    ns_setattr_args s = { .valid = NS_SETATTR_MODE | NS_SETATTR_UID | NS_SETATTR_GID |
                                   NS_SETATTR_ATIME | NS_SETATTR_MTIME,
                          .mode = S_IFDIR | 0600, .uid = 7, .gid = 8, .atime_ns = 11,
                          .mtime_ns = 12 };
    TC_CHECK(ns_setattr(ns, f, &s, 500, &a, &e) == 0);
    TC_CHECK(a.mode == (S_IFREG | 0600) && a.uid == 7 && a.gid == 8);  /* type kept */
    TC_CHECK(a.atime_ns == 11 && a.mtime_ns == 12 && a.ctime_ns == 500);
    uint64_t v = a.version;
    ns_setattr_args sz = { .valid = NS_SETATTR_SIZE, .size = 1 << 20 };
    TC_CHECK(ns_setattr(ns, f, &sz, 600, &a, &e) == 0 && a.size == 1 << 20 && a.version > v);
    TC_CHECK(a.mtime_ns == 600);
    TC_CHECK(ns_setattr(ns, d, &sz, 600, &a, &e) == TS_EISDIR);
    TC_CHECK(ns_setattr(ns, 999, &sz, 600, &a, &e) == TS_ENOENT);
    ns_setattr_args bad = { .valid = 1u << 20 };
    TC_CHECK(ns_setattr(ns, f, &bad, 600, &a, &e) == TS_EINVAL);
    INV(ns);
    ns_free(ns);
}

/* A file appended to in small pieces (a log): each commit past the last
 * extent goes in place into the grown list; a later overwrite across many
 * of them, and a truncate, work on that list like on any other; the
 * snapshot encoding of the result decodes to the same bytes. */
static void test_appended_extents(void)
{
    ns_state *ns = ns_new(0);
    ts_error e = {0};
    const ts_extent *x;
    size_t n;
    ts_attr a;
    uint64_t f = create_ok(ns, 1, "log");

    for (int i = 0; i < 300; i++) {
        /* Chunk i+1 holds bytes [i*10, i*10+10); every 50th leaves a hole. */
        uint64_t off = (uint64_t)i * 10 + (i % 50 == 49 ? 5 : 0);
        TC_CHECK(commit1(ns, f, off, i % 50 == 49 ? 5 : 10, i + 1, 0, 10, &e) == 0);
    }
    INV(ns);
    TC_CHECK(ns_file_extents(ns, f, &x, &n, &e) == 0 && n == 300);
    for (size_t i = 0; i < n; i++)
        TC_CHECK(x[i].chunk.b[0] == (uint8_t)(i + 1) && x[i].file_offset >= i * 10);
    TC_CHECK(ns_getattr(ns, f, &a, &e) == 0 && a.size == 3000);
    for (int i = 1; i <= 300; i++)
        TC_CHECK_EQ_U64(refcount_of(ns, i), 1);

    /* Overwrite [1005, 2005) with chunk 400: cuts extent 100, drops 101..199,
     * trims extent 200 (the pieces of 100 and 200 keep their chunks). */
    TC_CHECK(commit1(ns, f, 1005, 1000, 400, 0, 1000, &e) == 0);
    INV(ns);
    TC_CHECK(ns_file_extents(ns, f, &x, &n, &e) == 0 && n == 100 + 3 + 99);
    TC_CHECK(x[100].file_offset == 1000 && x[100].length == 5 && x[100].chunk.b[0] == 101);
    TC_CHECK(x[101].file_offset == 1005 && x[101].chunk.b[0] == 144);     /* 400 & 0xff */
    TC_CHECK(x[102].file_offset == 2005 && x[102].chunk_offset == 5 && x[102].chunk.b[0] == 201);
    TC_CHECK_EQ_U64(refcount_of(ns, 150), 0);
    TC_CHECK_EQ_U64(refcount_of(ns, 101), 1);
    TC_CHECK_EQ_U64(refcount_of(ns, 201), 1);

    /* More appends after that cut, then a truncate into the middle. */
    TC_CHECK(commit1(ns, f, 3000, 10, 301, 0, 10, &e) == 0);
    TC_CHECK(commit1(ns, f, 3010, 10, 302, 0, 10, &e) == 0);
    INV(ns);
    ns_setattr_args s = { .valid = NS_SETATTR_SIZE, .size = 2500 };
    TC_CHECK(ns_setattr(ns, f, &s, T++, &a, &e) == 0);
    INV(ns);
    TC_CHECK_EQ_U64(refcount_of(ns, 301), 0);
    TC_CHECK(commit1(ns, f, 2500, 10, 303, 0, 10, &e) == 0);
    INV(ns);

    ns_state *back = image_copy(ns);
    if (back) {
        INV(back);
        ns_free(back);
    }
    ns_free(ns);
}

static void test_extents(void)
{
    ns_state *ns = ns_new(0);
    ts_error e = {0};
    ts_attr a;
    const ts_extent *x;
    size_t n;
    uint64_t f = create_ok(ns, 1, "f");

    /* [0, 1000) from chunk 1 */
    TC_CHECK(commit1(ns, f, 0, 1000, 1, 0, 1000, &e) == 0);
    INV(ns);
    TC_CHECK(ns_getattr(ns, f, &a, &e) == 0 && a.size == 1000);
    TC_CHECK_EQ_U64(refcount_of(ns, 1), 1);

    /* Overwrite the middle [400, 500) with chunk 2: splits chunk 1's extent. */
    TC_CHECK(commit1(ns, f, 400, 100, 2, 0, 100, &e) == 0);
    INV(ns);
    TC_CHECK(ns_file_extents(ns, f, &x, &n, &e) == 0 && n == 3);
    TC_CHECK(x[0].file_offset == 0 && x[0].length == 400 && x[0].chunk_offset == 0);
    TC_CHECK(x[1].file_offset == 400 && x[1].length == 100 && x[1].chunk.b[0] == 2);
    TC_CHECK(x[2].file_offset == 500 && x[2].length == 500 && x[2].chunk_offset == 500);
    TC_CHECK_EQ_U64(refcount_of(ns, 1), 2);
    TC_CHECK_EQ_U64(refcount_of(ns, 2), 1);
    TC_CHECK(ns_getattr(ns, f, &a, &e) == 0 && a.size == 1000);

    /* Overwrite [300, 700) with chunk 3: trims both pieces, drops chunk 2. */
    TC_CHECK(commit1(ns, f, 300, 400, 3, 0, 400, &e) == 0);
    INV(ns);
    TC_CHECK(ns_file_extents(ns, f, &x, &n, &e) == 0 && n == 3);
    TC_CHECK(x[0].length == 300 && x[1].file_offset == 300 && x[2].file_offset == 700 &&
             x[2].chunk_offset == 700 && x[2].length == 300);
    TC_CHECK_EQ_U64(refcount_of(ns, 2), 0);
    ns_stats st;
    ns_get_stats(ns, &st);
    TC_CHECK(st.garbage_chunks == 1 && st.chunks == 2);

    /* Append past the end with a hole: [2000, 2100). */
    TC_CHECK(commit1(ns, f, 2000, 100, 4, 0, 100, &e) == 0);
    TC_CHECK(ns_getattr(ns, f, &a, &e) == 0 && a.size == 2100);
    INV(ns);

    /* Truncate to 350: keeps [0,300) and [300,350) of chunk 3. */
    ns_setattr_args s = { .valid = NS_SETATTR_SIZE, .size = 350 };
    TC_CHECK(ns_setattr(ns, f, &s, T++, &a, &e) == 0);
    INV(ns);
    TC_CHECK(ns_file_extents(ns, f, &x, &n, &e) == 0 && n == 2 && x[1].length == 50);
    TC_CHECK_EQ_U64(refcount_of(ns, 1), 1);
    TC_CHECK_EQ_U64(refcount_of(ns, 4), 0);
    /* Grow: a hole, no extents added. */
    s.size = 5000;
    TC_CHECK(ns_setattr(ns, f, &s, T++, &a, &e) == 0 && a.size == 5000);
    TC_CHECK(ns_file_extents(ns, f, &x, &n, &e) == 0 && n == 2);
    INV(ns);

    /* Errors leave the state unchanged. */
    ts_buf before = {0}, after = {0};
    ns_encode(ns, &before);
    TC_CHECK(commit1(ns, f, 0, 10, 9, 5, 10, &e) == TS_EINVAL);       /* past chunk end */
    TC_CHECK(commit1(ns, f, 0, 0, 9, 0, 10, &e) == TS_EINVAL);        /* zero length */
    {
        ts_extent xo = { .file_offset = 50, .length = 100, .chunk = cid(1), .chunk_offset = 0 };
        ns_commit_args ca = { .ino = f, .offset = 100, .length = 100, .extents = &xo,
                              .n_extents = 1 };
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == TS_EINVAL);       /* outside the range */
        xo.file_offset = 100;
        xo.chunk = cid(77);
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == TS_EINVAL);       /* unknown chunk */
        ts_extent two[2] = { { 100, 60, cid(1), 0 }, { 150, 50, cid(1), 0 } };
        ca.extents = two;
        ca.n_extents = 2;
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == TS_EINVAL);       /* overlapping */
        ns_chunk_info other = { .id = cid(1), .length = 5 };
        ca.chunks = &other;
        ca.n_chunks = 1;
        ca.n_extents = 0;
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == TS_EINVAL);       /* conflicting info */
        ca.ino = 1;
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == TS_EISDIR);
        ca.ino = 555;
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == TS_ENOENT);
    }
    ns_encode(ns, &after);
    TC_CHECK(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);
    ts_buf_free(&before);
    ts_buf_free(&after);

    /* Commit with explicit size below the data end trims it. */
    {
        ts_extent xo = { .file_offset = 0, .length = 100, .chunk = cid(5), .chunk_offset = 0 };
        ns_chunk_info ci = { .id = cid(5), .length = 100 };
        ns_commit_args ca = { .ino = f, .offset = 0, .length = 100, .extents = &xo,
                              .n_extents = 1, .chunks = &ci, .n_chunks = 1, .has_size = 1,
                              .size = 60, .has_mtime = 1, .mtime_ns = 77 };
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == 0 && a.size == 60 && a.mtime_ns == 77);
        INV(ns);
        TC_CHECK(ns_file_extents(ns, f, &x, &n, &e) == 0 && n == 1 && x[0].length == 60);
        TC_CHECK_EQ_U64(refcount_of(ns, 1), 0);
        TC_CHECK_EQ_U64(refcount_of(ns, 3), 0);
    }
    /* A second file sharing chunk 5; unlink releases references. */
    uint64_t g = create_ok(ns, 1, "g");
    {
        ts_extent xo = { .file_offset = 0, .length = 10, .chunk = cid(5), .chunk_offset = 90 };
        ns_commit_args ca = { .ino = g, .offset = 0, .length = 10, .extents = &xo,
                              .n_extents = 1 };
        TC_CHECK(ns_commit(ns, &ca, T++, &a, &e) == 0);
        TC_CHECK_EQ_U64(refcount_of(ns, 5), 2);
    }
    INV(ns);
    TC_CHECK(ns_unlink(ns, 1, "f", T++, &e) == 0);
    TC_CHECK_EQ_U64(refcount_of(ns, 5), 1);
    INV(ns);
    /* create with truncate empties it */
    int created;
    TC_CHECK(ns_create(ns, 1, "g", 0644, 0, 0, NS_CREATE_TRUNC, T++, &a, &created, &e) == 0);
    TC_CHECK(a.size == 0 && created == 0);
    TC_CHECK_EQ_U64(refcount_of(ns, 5), 0);
    ns_get_stats(ns, &st);
    TC_CHECK(st.chunks == 0 && st.extents == 0);
    INV(ns);
    ns_free(ns);
}

static void test_rename(void)
{
    ns_state *ns = ns_new(0);
    ts_error e = {0};
    ts_attr a;
    uint64_t A = mkdir_ok(ns, 1, "a");
    uint64_t B = mkdir_ok(ns, A, "b");
    uint64_t C = mkdir_ok(ns, 1, "c");
    uint64_t f = create_ok(ns, A, "f");
    uint64_t g = create_ok(ns, C, "g");
    INV(ns);

    /* a directory into its own subtree */
    TC_CHECK(ns_rename(ns, 1, "a", B, "x", 0, T++, &e) == TS_EINVAL);
    TC_CHECK(ns_rename(ns, 1, "a", A, "x", 0, T++, &e) == TS_EINVAL);
    /* bad flags, missing source */
    TC_CHECK(ns_rename(ns, 1, "a", 1, "z", 3, T++, &e) == TS_EINVAL);
    TC_CHECK(ns_rename(ns, 1, "a", 1, "z", 8, T++, &e) == TS_EINVAL);
    TC_CHECK(ns_rename(ns, 1, "nope", 1, "z", 0, T++, &e) == TS_ENOENT);
    /* incompatible types */
    TC_CHECK(ns_rename(ns, A, "f", 1, "c", 0, T++, &e) == TS_EISDIR);
    TC_CHECK(ns_rename(ns, 1, "c", A, "f", 0, T++, &e) == TS_ENOTDIR);
    /* non-empty target dir */
    TC_CHECK(ns_rename(ns, A, "b", 1, "c", 0, T++, &e) == TS_ENOTEMPTY);
    /* NOREPLACE */
    TC_CHECK(ns_rename(ns, A, "f", C, "g", NS_RENAME_NOREPLACE, T++, &e) == TS_EEXIST);
    INV(ns);

    /* file replaces file across directories */
    TC_CHECK(ns_rename(ns, A, "f", C, "g", 0, T++, &e) == 0);
    INV(ns);
    TC_CHECK(ns_lookup(ns, C, "g", &a, &e) == 0 && a.ino == f);
    TC_CHECK(ns_getattr(ns, g, &a, &e) == TS_ENOENT);
    TC_CHECK(ns_lookup(ns, A, "f", &a, &e) == TS_ENOENT);

    /* dir moves: parent link counts follow */
    TC_CHECK_EQ_U64(nlink_of(ns, A), 3);
    TC_CHECK(ns_rename(ns, A, "b", C, "b2", 0, T++, &e) == 0);
    INV(ns);
    TC_CHECK_EQ_U64(nlink_of(ns, A), 2);
    TC_CHECK_EQ_U64(nlink_of(ns, C), 3);
    TC_CHECK(ns_resolve(ns, "/c/b2/..", &a, &e) == 0 && a.ino == C);

    /* empty dir replaces empty dir */
    uint64_t D = mkdir_ok(ns, A, "d");
    TC_CHECK(ns_rename(ns, C, "b2", A, "d", 0, T++, &e) == 0);
    INV(ns);
    TC_CHECK(ns_getattr(ns, D, &a, &e) == TS_ENOENT);
    TC_CHECK(ns_lookup(ns, A, "d", &a, &e) == 0 && a.ino == B);
    TC_CHECK_EQ_U64(nlink_of(ns, A), 3);
    TC_CHECK_EQ_U64(nlink_of(ns, C), 2);

    /* same inode: hard links to one file -> no-op */
    TC_CHECK(ns_link(ns, f, A, "f2", T++, &a, &e) == 0);
    TC_CHECK(ns_rename(ns, A, "f2", C, "g", 0, T++, &e) == 0);
    TC_CHECK(ns_lookup(ns, A, "f2", &a, &e) == 0 && a.nlink == 2);
    /* onto itself */
    TC_CHECK(ns_rename(ns, A, "f2", A, "f2", 0, T++, &e) == 0);
    INV(ns);

    /* EXCHANGE: file <-> directory across parents */
    TC_CHECK(ns_rename(ns, A, "f2", 1, "missing", NS_RENAME_EXCHANGE, T++, &e) == TS_ENOENT);
    TC_CHECK(ns_rename(ns, A, "d", C, "g", NS_RENAME_EXCHANGE, T++, &e) == 0);
    INV(ns);
    TC_CHECK(ns_lookup(ns, C, "g", &a, &e) == 0 && a.ino == B);
    TC_CHECK(ns_lookup(ns, A, "d", &a, &e) == 0 && a.ino == f);
    TC_CHECK_EQ_U64(nlink_of(ns, A), 2);
    TC_CHECK_EQ_U64(nlink_of(ns, C), 3);
    /* EXCHANGE of an ancestor with a descendant */
    TC_CHECK(ns_rename(ns, 1, "c", C, "g", NS_RENAME_EXCHANGE, T++, &e) == TS_EINVAL);
    INV(ns);
    /* rename within the same directory */
    TC_CHECK(ns_rename(ns, 1, "a", 1, "a-renamed", 0, T++, &e) == 0);
    TC_CHECK(ns_resolve(ns, "/a-renamed/d", &a, &e) == 0 && a.ino == f);
    TC_CHECK_EQ_U64(nlink_of(ns, 1), 4);
    INV(ns);
    ns_free(ns);
}

struct rd_acc {
    char names[4096][16];
    int n;
};

static int rd_cb(void *arg, const char *name, const ts_attr *attr)
{
    struct rd_acc *acc = arg;
    (void)attr;
    snprintf(acc->names[acc->n++], 16, "%s", name);
    return 0;
}

static void test_readdir(void)
{
    ns_state *ns = ns_new(0);
    ts_error e = {0};
    char name[32];
    static struct rd_acc acc;
    uint64_t d = mkdir_ok(ns, 1, "d");
    int more = 0;
    acc.n = 0;
    TC_CHECK(ns_readdir(ns, d, NULL, 10, rd_cb, &acc, &more, &e) == 0 && acc.n == 0 && !more);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        create_ok(ns, d, name);
    }
    INV(ns);
    /* page through 7 at a time, deleting what was listed (rm -rf pattern):
     * "after" names an entry that no longer exists. */
    char after[32] = "";
    int total = 0, pages = 0;
    do {
        acc.n = 0;
        TC_CHECK(ns_readdir(ns, d, total ? after : NULL, 7, rd_cb, &acc, &more, &e) == 0);
        TC_CHECK(acc.n == 7 || !more);
        for (int i = 0; i < acc.n; i++)
            TC_CHECK(ns_unlink(ns, d, acc.names[i], T++, &e) == 0);
        if (acc.n)
            snprintf(after, sizeof(after), "%s", acc.names[acc.n - 1]);
        total += acc.n;
        pages++;
    } while (more && pages < 1000);
    TC_CHECK_EQ_U64(total, 1000);
    INV(ns);
    /* stable order: two full listings agree */
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        create_ok(ns, d, name);
    }
    static struct rd_acc acc2;
    acc.n = acc2.n = 0;
    TC_CHECK(ns_readdir(ns, d, NULL, 1000, rd_cb, &acc, &more, &e) == 0 && acc.n == 300);
    TC_CHECK(ns_readdir(ns, d, NULL, 150, rd_cb, &acc2, &more, &e) == 0 && more);
    TC_CHECK(ns_readdir(ns, d, acc2.names[149], 150, rd_cb, &acc2, &more, &e) == 0 && !more);
    TC_CHECK(acc2.n == 300);
    int same = 1;
    for (int i = 0; i < 300 && i < acc2.n; i++)
        same &= strcmp(acc.names[i], acc2.names[i]) == 0;
    TC_CHECK(same);
    TC_CHECK(ns_readdir(ns, d, NULL, 0, rd_cb, &acc, &more, &e) == TS_EINVAL);
    TC_CHECK(ns_readdir(ns, 999, NULL, 1, rd_cb, &acc, &more, &e) == TS_ENOENT);
    ns_free(ns);
}

static void test_membership(void)
{
    ns_state *ns = ns_new(0);
    ts_error e = {0};
    TC_CHECK(ns_register_server(ns, "cs-1", "127.0.0.1:7401", "z1", 1.0, &e) == 0);
    TC_CHECK(ns_register_server(ns, "cs-2", "127.0.0.1:7402", NULL, 2.5, &e) == 0);
    ns_stats st;
    ns_get_stats(ns, &st);
    uint64_t epoch = st.membership_epoch;
    TC_CHECK(ns_register_server(ns, "cs-1", "127.0.0.1:7401", "z1", 1.0, &e) == 0);
    ns_get_stats(ns, &st);
    TC_CHECK(st.membership_epoch == epoch);     /* unchanged: no bump */
    TC_CHECK(ns_register_server(ns, "cs-1", "127.0.0.1:9999", "z1", 1.0, &e) == 0);
    ns_get_stats(ns, &st);
    TC_CHECK(st.membership_epoch == epoch + 1);
    TC_CHECK(ns_server_count(ns) == 2);
    TC_CHECK_STR(ns_server_find(ns, "cs-1")->address, "127.0.0.1:9999");
    TC_CHECK_STR(ns_server_at(ns, 1)->zone, "");
    TC_CHECK(ns_register_server(ns, "", "a:1", NULL, 1, &e) == TS_EINVAL);
    TC_CHECK(ns_register_server(ns, "x", "a:1", NULL, 0, &e) == TS_EINVAL);
    ns_free(ns);
}

/* The operator's changes (CMD_SET_SERVER): pinned fields survive the
 * server's own registrations; admin states; the image keeps them, and an
 * image of version 2 (before admin states) still loads. */
static void test_operator_membership(void)
{
    ns_state *ns = ns_new(0), *copy = NULL;
    ts_error e = {0};
    ts_buf b1 = {0}, b2 = {0};
    TC_CHECK(ns_register_server(ns, "cs-1", "127.0.0.1:7401", "", 1.0, &e) == 0);
    ns_server_change w = { .set_weight = 1, .weight = 3.0, .set_zone = 1, .zone = "rack-b" };
    TC_CHECK(ns_set_server(ns, "cs-1", &w, &e) == 0);
    /* its heartbeat says weight 1, no zone: the operator's values stay */
    TC_CHECK(ns_server_matches(ns, "cs-1", "127.0.0.1:7401", "", 1.0));
    TC_CHECK(ns_register_server(ns, "cs-1", "127.0.0.1:7402", "", 1.0, &e) == 0);
    const ns_server *s = ns_server_find(ns, "cs-1");
    TC_CHECK(s->weight == 3.0 && strcmp(s->zone, "rack-b") == 0);
    TC_CHECK_STR(s->address, "127.0.0.1:7402");
    TC_CHECK(s->pinned == (NS_PIN_WEIGHT | NS_PIN_ZONE) && s->admin == NS_SERVER_ACTIVE);
    ns_server_change d = { .set_admin = 1, .admin = NS_SERVER_DRAINING };
    TC_CHECK(ns_set_server(ns, "cs-1", &d, &e) == 0);
    TC_CHECK(ns_server_find(ns, "cs-1")->admin == NS_SERVER_DRAINING);
    /* a heartbeat does not end a drain */
    TC_CHECK(ns_register_server(ns, "cs-1", "127.0.0.1:7403", "", 1.0, &e) == 0);
    TC_CHECK(ns_server_find(ns, "cs-1")->admin == NS_SERVER_DRAINING);
    /* unknown ids, bad values */
    TC_CHECK(ns_set_server(ns, "cs-9", &d, &e) == TS_ENOENT);
    TC_CHECK(strstr(e.msg, "cs-9") != NULL);
    ns_server_change bad = { .set_weight = 1, .weight = -1 };
    TC_CHECK(ns_set_server(ns, "cs-1", &bad, &e) == TS_EINVAL);
    bad.weight = 0;
    TC_CHECK(ns_set_server(ns, "cs-1", &bad, &e) == TS_EINVAL);
    ns_server_change badst = { .set_admin = 1, .admin = 7 };
    TC_CHECK(ns_set_server(ns, "cs-1", &badst, &e) == TS_EINVAL);
    /* added ahead of its first heartbeat */
    ns_server_change add = { .address = "127.0.0.1:7409", .set_admin = 1,
                             .admin = NS_SERVER_ACTIVE };
    TC_CHECK(ns_set_server(ns, "cs-9", &add, &e) == 0);
    TC_CHECK(ns_server_find(ns, "cs-9")->weight == 1.0 && ns_server_count(ns) == 2);
    ns_rebalance rb = { .running = 1, .bandwidth = 5, .bytes_planned = 100, .bytes_target = 60,
                        .moves_target = 6, .started_ns = 9 };
    ns_set_rebalance(ns, &rb);
    /* the image keeps all of it */
    copy = image_copy(ns);
    if (copy) {
        ns_rebalance got;
        ns_get_rebalance(copy, &got);
        TC_CHECK(got.running == 1 && got.bytes_target == 60 && got.started_ns == 9);
        TC_CHECK(ns_server_find(copy, "cs-1")->admin == NS_SERVER_DRAINING);
        TC_CHECK(ns_server_find(copy, "cs-1")->pinned == (NS_PIN_WEIGHT | NS_PIN_ZONE));
        ns_free(copy);
        copy = NULL;
    }
    ns_free(ns);
    b1.len = b2.len = 0;

    /* version 2: no admin/pinned bytes after a server, no rebalance record */
    ns = ns_new(0);
    TC_CHECK(ns_register_server(ns, "cs-1", "a:1", "z", 2.0, &e) == 0);
    ns_encode(ns, &b1);
    size_t server_end = 4 + 1 + 3 * 8 + 4 + (4 + 4) + (4 + 3) + (4 + 1) + 8;
    size_t trailer = 1 + 5 * 8 + 8 + 4;    /* rebalance, reserved inodes (v4) */
    TC_CHECK(b1.len > server_end + 2 + trailer);
    {
        /* version 3: the same without the reserved inode ranges (and no
         * inline flag per chunk: this image has no chunks) */
        ts_buf v3 = {0};
        ns_state *c3 = NULL;
        ts_buf_append(&v3, b1.data, b1.len - 4);
        ((uint8_t *)v3.data)[4] = 3;
        TC_CHECK(ns_decode(v3.data, v3.len, &c3, &e) == 0);
        TC_CHECK(c3 && ns_reserved_count(c3) == 0);
        ns_free(c3);
        ts_buf_free(&v3);
    }
    ts_buf v2 = {0};
    ts_buf_append(&v2, b1.data, server_end);
    ts_buf_append(&v2, b1.data + server_end + 2, b1.len - server_end - 2 - trailer);
    ((uint8_t *)v2.data)[4] = 2;
    TC_CHECK(ns_decode(v2.data, v2.len, &copy, &e) == 0);
    if (copy) {
        const ns_server *c1 = ns_server_find(copy, "cs-1");
        TC_CHECK(c1 && c1->admin == NS_SERVER_ACTIVE && c1->pinned == 0 && c1->weight == 2.0);
        ns_rebalance got;
        ns_get_rebalance(copy, &got);
        TC_CHECK(got.running == 0);
        ns_free(copy);
    }
    /* a version-3 image with an unknown admin state is rejected */
    ((uint8_t *)b1.data)[server_end] = 9;
    copy = NULL;
    TC_CHECK(ns_decode(b1.data, b1.len, &copy, &e) == TS_ECORRUPT && copy == NULL);
    ts_buf_free(&v2);
    ts_buf_free(&b1);
    ts_buf_free(&b2);
    ns_free(ns);
}

/* ---- randomized ---- */

static uint64_t rng_state = 0x12345678;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void test_random_ops(void)
{
    ns_state *ns = ns_new(0);
    uint64_t dirs[64] = { 1 };
    int ndirs = 1;
    uint64_t files[256];
    int nfiles = 0;
    int ok = 0, fail = 0, inv_fail = 0;
    char name[16], name2[16];
    for (int step = 0; step < 10000; step++) {
        ts_error e = {0};
        ts_attr a;
        int created, rc = 0;
        uint64_t d = dirs[rnd(ndirs)], d2 = dirs[rnd(ndirs)];
        snprintf(name, sizeof(name), "n%u", rnd(12));
        snprintf(name2, sizeof(name2), "n%u", rnd(12));
        switch (rnd(11)) {
        case 0:
            rc = ns_mkdir(ns, d, name, 0755, 0, 0, T++, &a, &e);
            if (rc == 0 && ndirs < 64)
                dirs[ndirs++] = a.ino;
            break;
        case 1:
            rc = ns_create(ns, d, name, 0644, 0, 0, rnd(4), T++, &a, &created, &e);
            if (rc == 0 && nfiles < 256)
                files[nfiles++] = a.ino;
            break;
        case 2: rc = ns_unlink(ns, d, name, T++, &e); break;
        case 3: rc = ns_rmdir(ns, d, name, T++, &e); break;
        case 4: rc = ns_rename(ns, d, name, d2, name2, rnd(3), T++, &e); break;
        case 5: rc = ns_symlink(ns, d, name, "t", 0, 0, T++, &a, &e); break;
        case 6:
            rc = nfiles ? ns_link(ns, files[rnd(nfiles)], d, name, T++, &a, &e) : 0;
            break;
        case 7: {
            ns_setattr_args s = { .valid = NS_SETATTR_SIZE, .size = rnd(5000) };
            rc = nfiles ? ns_setattr(ns, files[rnd(nfiles)], &s, T++, &a, &e) : 0;
            break;
        }
        case 8:
        case 9: {
            if (!nfiles)
                break;
            uint64_t off = rnd(4000), len = 1 + rnd(2000);
            int c = 1 + (int)rnd(40);
            ts_extent x[2] = { { off, len / 2 + 1, cid(c), rnd(100) },
                               { off + len / 2 + 1, len - len / 2 - 1, cid(c + 1), 0 } };
            ns_chunk_info ci[2] = { { .id = cid(c), .length = 4096 },
                                    { .id = cid(c + 1), .length = 4096 } };
            memset(ci[0].sha256, c, TS_SHA256_LEN);
            memset(ci[1].sha256, c + 1, TS_SHA256_LEN);
            ns_commit_args ca = { .ino = files[rnd(nfiles)], .offset = off, .length = len,
                                  .extents = x, .n_extents = x[1].length ? 2 : 1,
                                  .chunks = ci, .n_chunks = 2 };
            rc = ns_commit(ns, &ca, T++, &a, &e);
            break;
        }
        case 10: {
            static struct rd_acc acc;
            int more;
            acc.n = 0;
            rc = ns_readdir(ns, d, rnd(2) ? name : NULL, 5, rd_cb, &acc, &more, &e);
            break;
        }
        }
        if (rc == 0)
            ok++;
        else
            fail++;
        ts_error ie = {0};
        if (ns_check_invariants(ns, &ie) != 0) {
            if (inv_fail++ < 3)
                fprintf(stderr, "  step %d: %s\n", step, ie.msg);
        }
    }
    TC_CHECK(inv_fail == 0);
    TC_CHECK(ok > 2000 && fail > 500);   /* both paths exercised */
    /* the encoding round-trips to an equal state */
    ts_buf b1 = {0}, b2 = {0};
    ns_encode(ns, &b1);
    ns_state *copy = NULL;
    ts_error e = {0};
    TC_CHECK(ns_decode(b1.data, b1.len, &copy, &e) == 0);
    if (copy) {
        ns_encode(copy, &b2);
        TC_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
        ns_free(copy);
    }
    /* truncated images are rejected */
    for (size_t cut = 0; cut < b1.len; cut += 1 + b1.len / 50) {
        copy = NULL;
        TC_CHECK(ns_decode(b1.data, cut, &copy, &e) != 0 && copy == NULL);
    }
    ts_buf_free(&b1);
    ts_buf_free(&b2);
    fprintf(stderr, "  random: %d ok, %d failed as expected\n", ok, fail);
    ns_free(ns);
}

static int count_names(void *arg, const char *name, const void *value, size_t len)
{
    (void)name;
    (void)value;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

/* Decoding inserts elements in hash order (they were encoded in slot
 * order); into a table that had to grow as it went they would all crowd
 * into its first part, one run that every insert scans (a 500,000-file
 * image took minutes).  ptab_reserve sizes the table first. */
static uint32_t u64_hash(const void *e)
{
    return ptab_hash_u64(*(const uint64_t *)e);
}

static int u64_cmp(const void *e, const void *key)
{
    uint64_t a = *(const uint64_t *)e, b = *(const uint64_t *)key;
    return a < b ? -1 : a > b;
}

static int u64_cmp_elem(const void *a, const void *b)
{
    return u64_cmp(a, b);
}

static void test_decode_big(void)
{
    static const ptab_ops ops = { u64_hash, u64_cmp, u64_cmp_elem };
    enum { N = 20000 };
    uint64_t *keys = ts_calloc(N, sizeof(uint64_t));
    ptab src = {0}, dst = {0};
    ts_error e = {0};
    for (uint64_t i = 0; i < N; i++) {
        keys[i] = i * 7919 + 1;
        TC_CHECK(ptab_insert(&src, &ops, &keys[i], ptab_hash_u64(keys[i]), &keys[i]) == 0);
    }
    /* in slot (hash) order into a reserved table: no growth, no long runs */
    ptab_reserve(&dst, &ops, N);
    uint8_t bits = dst.bits;
    size_t longest = 0, run = 0;
    for (size_t i = 0; i < ptab_nslots(&src); i++) {
        void *k = src.slot[i];
        if (k)
            TC_CHECK(ptab_insert(&dst, &ops, k, ptab_hash_u64(*(uint64_t *)k), k) == 0);
    }
    for (size_t i = 0; i < ptab_nslots(&dst); i++) {
        run = dst.slot[i] ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    TC_CHECK(dst.bits == bits && dst.count == N);
    TC_CHECK(longest < 100);
    TC_CHECK(ptab_check(&dst, &ops, &e) == 0);
    ptab_free(&src);
    ptab_free(&dst);
    free(keys);

    /* a namespace image of 100,000 files round-trips (in well under a
     * second; quadratic, it took about a minute) */
    ns_state *ns = ns_new(0);
    char name[32];
    uint64_t d = mkdir_ok(ns, 1, "big");
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "f%06d", i);
        create_ok(ns, d, name);
    }
    ts_buf a = {0}, b = {0};
    ns_encode(ns, &a);
    int64_t t0 = ts_mono_ms();
    ns_state *back = NULL;
    TC_CHECK(ns_decode(a.data, a.len, &back, &e) == 0);
    fprintf(stderr, "  decoded 100,000 files in %lld ms\n", (long long)(ts_mono_ms() - t0));
    if (back) {
        ns_encode(back, &b);
        TC_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    }
    ns_free(back);
    ns_free(ns);
    ts_buf_free(&a);
    ts_buf_free(&b);
}

static void test_xattrs(void)
{
    ns_state *ns = ns_new(1);
    ts_error e = {0};
    const void *v;
    size_t len;
    int n = 0;
    uint64_t f = create_ok(ns, 1, "f");
    ts_attr before, after;
    TC_CHECK(ns_getattr(ns, f, &before, &e) == 0);
    TC_CHECK(ns_setxattr(ns, f, "user.b", "2", 1, 0, 50, &e) == 0);
    TC_CHECK(ns_setxattr(ns, f, "user.a", "", 0, NS_XATTR_CREATE, 51, &e) == 0);
    INV(ns);
    TC_CHECK(ns_getattr(ns, f, &after, &e) == 0);
    TC_CHECK(after.ctime_ns == 51 && after.version == before.version + 2);
    TC_CHECK(ns_getxattr(ns, f, "user.a", &v, &len, &e) == 0 && len == 0);
    TC_CHECK(ns_getxattr(ns, f, "user.b", &v, &len, &e) == 0 && len == 1 &&
             memcmp(v, "2", 1) == 0);
    TC_CHECK(ns_getxattr(ns, f, "user.c", &v, &len, &e) == TS_ENODATA);
    TC_CHECK(ns_getxattr(ns, 999, "user.c", &v, &len, &e) == TS_ENOENT);
    TC_CHECK(ns_setxattr(ns, f, "user.a", "x", 1, NS_XATTR_CREATE, 52, &e) == TS_EEXIST);
    TC_CHECK(ns_setxattr(ns, f, "user.z", "x", 1, NS_XATTR_REPLACE, 52, &e) == TS_ENODATA);
    TC_CHECK(ns_setxattr(ns, f, "user.z", "x", 1, 3, 52, &e) == TS_EINVAL);
    TC_CHECK(ns_setxattr(ns, f, "", "x", 1, 0, 52, &e) == TS_EINVAL);
    char big[NS_XATTR_VALUE_MAX + 1];
    memset(big, 'v', sizeof(big));
    TC_CHECK(ns_setxattr(ns, f, "user.big", big, sizeof(big), 0, 52, &e) == TS_ERANGE);
    /* the total per inode is bounded */
    char name[32];
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++) {
        snprintf(name, sizeof(name), "user.v%d", i);
        rc = ns_setxattr(ns, f, name, big, NS_XATTR_VALUE_MAX, 0, 53, &e);
    }
    TC_CHECK(rc == TS_ENOSPC);
    INV(ns);
    TC_CHECK(ns_listxattr(ns, f, count_names, &n, &e) == 0 && n == 2 + 3);
    TC_CHECK(ns_removexattr(ns, f, "user.a", 54, &e) == 0);
    TC_CHECK(ns_removexattr(ns, f, "user.a", 54, &e) == TS_ENODATA);
    INV(ns);
    /* the snapshot encoding carries them, canonically */
    ts_buf b1 = {0}, b2 = {0};
    ns_state *copy = NULL;
    ns_encode(ns, &b1);
    TC_CHECK(ns_decode(b1.data, b1.len, &copy, &e) == 0);
    ns_encode(copy, &b2);
    TC_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    TC_CHECK(ns_getxattr(copy, f, "user.b", &v, &len, &e) == 0 && len == 1);
    ns_free(copy);
    ts_buf_free(&b1);
    ts_buf_free(&b2);
    /* they go with the inode */
    TC_CHECK(ns_unlink(ns, 1, "f", 60, &e) == 0);
    INV(ns);
    TC_CHECK(ns_getxattr(ns, f, "user.b", &v, &len, &e) == TS_ENOENT);
    ns_free(ns);
}

/* Commits [off, off+len) as inline chunk n holding data. */
static int commit_inline(ns_state *ns, uint64_t ino, uint64_t off, const void *data, size_t len,
                         int n, ts_error *e)
{
    ts_extent x = { .file_offset = off, .length = len, .chunk = cid(n), .chunk_offset = 0 };
    ns_chunk_info ci = { .id = cid(n), .length = len, .data = (uint8_t *)data };
    ts_sha256_once(data, len, ci.sha256);
    ns_commit_args a = { .ino = ino, .offset = off, .length = len, .extents = &x,
                         .n_extents = 1, .chunks = &ci, .n_chunks = 1 };
    ts_attr out;
    return ns_commit(ns, &a, T++, &out, e);
}

static int count_chunk(void *arg, const ts_chunk_id *id)
{
    (void)id;
    (*(size_t *)arg)++;
    return 0;
}

/* Inline chunks: stored with their bytes, checked, counted, spliced like
 * any chunk, freed at refcount 0 (not garbage: nothing on chunkservers),
 * left out of the chunk walk, and kept by the image. */
static void test_inline_chunks(void)
{
    ns_state *ns = ns_new(0);
    ts_error e = {0};
    ns_stats st;
    const uint8_t *data;
    uint64_t len;
    char buf[5000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)('a' + i % 26);
    uint64_t f = create_ok(ns, 1, "small"), g = create_ok(ns, 1, "other");

    TC_CHECK(commit_inline(ns, f, 0, buf, 4096, 1, &e) == 0);
    INV(ns);
    TC_CHECK(ns_chunk_inline(ns, &(ts_chunk_id){0}, &data, &len) == 0);
    ts_chunk_id id1 = cid(1);
    TC_CHECK(ns_chunk_inline(ns, &id1, &data, &len) == 1 && len == 4096 &&
             memcmp(data, buf, 4096) == 0);
    ns_get_stats(ns, &st);
    TC_CHECK(st.inline_chunks == 1 && st.inline_bytes == 4096 && st.chunks == 1);
    size_t walked = 0;
    ns_chunk_foreach(ns, count_chunk, &walked);
    TC_CHECK_EQ_U64(walked, 0);
    /* A stored chunk next to it is walked. */
    TC_CHECK(commit1(ns, g, 0, 100, 2, 0, 100, &e) == 0);
    ns_chunk_foreach(ns, count_chunk, &walked);
    TC_CHECK_EQ_U64(walked, 1);

    /* An inline append, then an overwrite in the middle by a stored chunk:
     * the first inline chunk is split (two references). */
    TC_CHECK(commit_inline(ns, f, 4096, buf + 4096, 904, 3, &e) == 0);
    TC_CHECK(commit1(ns, f, 1000, 10, 4, 0, 10, &e) == 0);
    INV(ns);
    TC_CHECK_EQ_U64(refcount_of(ns, 1), 2);

    /* Refusals: bad hash, empty, too large, past the inline end, a known
     * stored chunk listed again as inline. */
    ns_get_stats(ns, &st);
    uint64_t before = st.inline_bytes;
    ts_extent x = { .file_offset = 0, .length = 10, .chunk = cid(9), .chunk_offset = 0 };
    ns_chunk_info ci = { .id = cid(9), .length = 10, .data = (uint8_t *)buf };
    memset(ci.sha256, 0, sizeof ci.sha256);
    ns_commit_args a = { .ino = f, .offset = 0, .length = 10, .extents = &x, .n_extents = 1,
                         .chunks = &ci, .n_chunks = 1 };
    ts_attr out;
    TC_CHECK(ns_commit(ns, &a, T++, &out, &e) == TS_ECORRUPT && strstr(e.msg, "SHA-256"));
    ci.length = 0;
    x.length = 0;
    TC_CHECK(ns_commit(ns, &a, T++, &out, &e) == TS_EINVAL);
    char *big = ts_calloc(1, NS_INLINE_CHUNK_MAX + 1);
    TC_CHECK(commit_inline(ns, f, 0, big, NS_INLINE_CHUNK_MAX + 1, 10, &e) == TS_EINVAL &&
             strstr(e.msg, "inline chunk"));
    TC_CHECK(commit_inline(ns, f, NS_INLINE_END_MAX - 5, buf, 6, 11, &e) == TS_EINVAL &&
             strstr(e.msg, "inline limit"));
    TC_CHECK(commit_inline(ns, f, NS_INLINE_END_MAX - 6, buf, 6, 11, &e) == 0);
    x = (ts_extent){ .file_offset = 0, .length = 10, .chunk = cid(2), .chunk_offset = 0 };
    ci = (ns_chunk_info){ .id = cid(2), .length = 100, .data = (uint8_t *)buf };
    ts_sha256_once(buf, 100, ci.sha256);
    a.length = 10;
    TC_CHECK(ns_commit(ns, &a, T++, &out, &e) == TS_EINVAL);   /* known as a stored chunk */
    free(big);
    ns_get_stats(ns, &st);
    TC_CHECK_EQ_U64(st.inline_bytes, before + 6);
    INV(ns);

    /* The image keeps the bytes; the decoded state is equal. */
    ns_state *copy = image_copy(ns);
    if (copy) {
        TC_CHECK(ns_chunk_inline(copy, &id1, &data, &len) == 1 && memcmp(data, buf, 4096) == 0);
        ns_free(copy);
    }

    /* The total budget: a commit past it is refused whole (ENOSPC). */
    ns_get_stats(ns, &st);
    ns_set_inline_total_max(ns, st.inline_bytes + 100);
    TC_CHECK(commit_inline(ns, g, 200, buf, 101, 20, &e) == TS_ENOSPC &&
             strstr(e.msg, "inline data is full"));
    TC_CHECK(commit_inline(ns, g, 200, buf, 100, 20, &e) == 0);
    TC_CHECK(commit_inline(ns, g, 300, buf, 1, 21, &e) == TS_ENOSPC);
    TC_CHECK(commit1(ns, g, 300, 1, 22, 0, 1, &e) == 0);           /* stored chunks still go */
    INV(ns);

    /* Truncate to 0: every inline chunk is freed, none counts as garbage. */
    ns_get_stats(ns, &st);
    uint64_t garbage = st.garbage_chunks;
    ns_setattr_args sa = { .valid = NS_SETATTR_SIZE, .size = 0 };
    TC_CHECK(ns_setattr(ns, f, &sa, T++, &out, &e) == 0);
    TC_CHECK(ns_setattr(ns, g, &sa, T++, &out, &e) == 0);
    INV(ns);
    ns_get_stats(ns, &st);
    TC_CHECK(st.inline_chunks == 0 && st.inline_bytes == 0);
    TC_CHECK_EQ_U64(st.garbage_chunks, garbage + 3);   /* the stored chunks 4, 2 and 22 only */
    ns_free(ns);
}

int main(void)
{
    TC_RUN(test_basic_tree);
    TC_RUN(test_setattr);
    TC_RUN(test_extents);
    TC_RUN(test_appended_extents);
    TC_RUN(test_inline_chunks);
    TC_RUN(test_rename);
    TC_RUN(test_readdir);
    TC_RUN(test_membership);
    TC_RUN(test_operator_membership);
    TC_RUN(test_random_ops);
    TC_RUN(test_xattrs);
    TC_RUN(test_decode_big);
    TC_DONE("test_namespace");
}
