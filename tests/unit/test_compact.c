/*
 * Unit tests of compaction's compare-and-swap extent replacement
 * (ns_replace_extents, CMD_REPLACE_EXTENTS): a file's small extents
 * replaced by one new chunk; a stale version or a different coverage
 * skips the file and changes nothing; several files packed into one chunk
 * in one command, each CAS'd on its own; malformed input rejected whole;
 * refcounts, garbage counts and every namespace invariant checked after
 * each step.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "metadata/command.h"
#include "metadata/compact_plan.h"
#include "metadata/namespace.h"
#include "tests/unit/tcheck.h"

static ts_chunk_id cid(int n)
{
    ts_chunk_id id;
    memset(&id, n, sizeof(id));
    return id;
}

static ns_chunk_info chunk_info(int n, uint64_t len)
{
    ns_chunk_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.id = cid(n);
    ci.length = len;
    memset(ci.sha256, n, TS_SHA256_LEN);
    return ci;
}

static void check_ok(const ns_state *ns)
{
    ts_error e = {0};
    int rc = ns_check_invariants(ns, &e);
    if (rc)
        fprintf(stderr, "  invariants: %s\n", e.msg);
    TC_CHECK(rc == 0);
}

/* A file `name` of n appends of len bytes each in its own chunk (ids
 * base, base+1, ...); returns its inode. */
static uint64_t appended_file(ns_state *ns, const char *name, int base, int n, uint64_t len)
{
    ts_attr a;
    ts_error e = {0};
    int created;
    TC_CHECK(ns_create(ns, 1, name, S_IFREG | 0644, 0, 0, 0, 1, &a, &created, &e) == 0);
    for (int i = 0; i < n; i++) {
        ts_extent x = { (uint64_t)i * len, len, cid(base + i), 0 };
        ns_chunk_info ci = chunk_info(base + i, len);
        ns_commit_args ca = { .ino = a.ino, .offset = (uint64_t)i * len, .length = len,
                              .extents = &x, .n_extents = 1, .chunks = &ci, .n_chunks = 1 };
        ts_attr out;
        TC_CHECK(ns_commit(ns, &ca, 2 + i, &out, &e) == 0);
    }
    return a.ino;
}

static void test_compact_one_file(void)
{
    ns_state *ns = ns_new(1);
    ts_error e = {0};
    ts_attr before, after;
    uint32_t replaced;
    uint64_t ino = appended_file(ns, "log", 10, 4, 100);
    TC_CHECK(ns_getattr(ns, ino, &before, &e) == 0);

    ts_extent nx = { 0, 400, cid(50), 0 };
    ns_chunk_info ci = chunk_info(50, 400);
    ns_replace_file f = { ino, before.version, 0, 400, &nx, 1 };
    ns_replace_args ra = { &f, 1, &ci, 1 };

    /* A stale version: skipped, nothing changes (the new chunk is not kept). */
    f.version = before.version - 1;
    TC_CHECK(ns_replace_extents(ns, &ra, 100, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 0);
    TC_CHECK(ns_chunk_lookup(ns, &nx.chunk, NULL, NULL, NULL) == TS_ENOENT);
    check_ok(ns);

    f.version = before.version;
    ns_stats st0, st1;
    ns_get_stats(ns, &st0);
    TC_CHECK(ns_replace_extents(ns, &ra, 100, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 1);
    check_ok(ns);
    const ts_extent *x;
    size_t n;
    TC_CHECK(ns_file_extents(ns, ino, &x, &n, &e) == 0);
    TC_CHECK_EQ_U64(n, 1);
    TC_CHECK(ts_chunk_id_eq(&x[0].chunk, &nx.chunk));
    TC_CHECK(ns_getattr(ns, ino, &after, &e) == 0);
    /* Same size and times: compaction is not a change of content. */
    TC_CHECK_EQ_U64(after.size, 400);
    TC_CHECK(after.mtime_ns == before.mtime_ns && after.ctime_ns == before.ctime_ns);
    TC_CHECK_EQ_U64(after.version, before.version + 1);
    ns_get_stats(ns, &st1);
    TC_CHECK_EQ_U64(st1.garbage_chunks - st0.garbage_chunks, 4);
    TC_CHECK_EQ_U64(st1.chunks, 1);

    /* The same replacement again: the version moved on, skipped. */
    TC_CHECK(ns_replace_extents(ns, &ra, 101, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 0);
    check_ok(ns);
    ns_free(ns);
}

static void test_coverage_must_match(void)
{
    ns_state *ns = ns_new(1);
    ts_error e = {0};
    ts_attr a;
    uint32_t replaced;
    uint64_t ino = appended_file(ns, "f", 10, 2, 100);
    /* A hole: extend to 300 with nothing in [200, 300). */
    ns_setattr_args sa = { .valid = NS_SETATTR_SIZE, .size = 300 };
    TC_CHECK(ns_setattr(ns, ino, &sa, 5, &a, &e) == 0);

    ns_chunk_info ci = chunk_info(60, 300);
    /* Covering the hole would add bytes: refused by the CAS. */
    ts_extent whole = { 0, 300, cid(60), 0 };
    ns_replace_file f = { ino, a.version, 0, 300, &whole, 1 };
    ns_replace_args ra = { &f, 1, &ci, 1 };
    TC_CHECK(ns_replace_extents(ns, &ra, 6, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 0);
    /* Dropping bytes too. */
    ts_extent part = { 0, 150, cid(60), 0 };
    f.extents = &part;
    f.length = 200;
    TC_CHECK(ns_replace_extents(ns, &ra, 6, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 0);
    /* Exactly the data, the hole kept: applies. */
    ts_extent data = { 0, 200, cid(60), 0 };
    f.extents = &data;
    f.length = 300;
    TC_CHECK(ns_replace_extents(ns, &ra, 6, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 1);
    check_ok(ns);
    /* Past the size: refused. */
    TC_CHECK(ns_getattr(ns, ino, &a, &e) == 0);
    ts_extent beyond = { 0, 200, cid(60), 0 };
    ns_replace_file g = { ino, a.version, 0, 400, &beyond, 1 };
    ns_replace_args rb = { &g, 1, NULL, 0 };
    TC_CHECK(ns_replace_extents(ns, &rb, 7, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 0);
    check_ok(ns);
    ns_free(ns);
}

static void test_pack_many_files(void)
{
    ns_state *ns = ns_new(1);
    ts_error e = {0};
    ts_attr a[3];
    uint32_t replaced;
    uint64_t ino[3];
    ts_extent x[3];
    ns_replace_file f[3];
    char name[8];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        ino[i] = appended_file(ns, name, 10 + i, 1, 50);
        TC_CHECK(ns_getattr(ns, ino[i], &a[i], &e) == 0);
        x[i] = (ts_extent){ 0, 50, cid(70), (uint64_t)i * 50 };
        f[i] = (ns_replace_file){ ino[i], a[i].version, 0, 50, &x[i], 1 };
    }
    /* The second file is written meanwhile: its CAS fails, the others pack. */
    f[1].version--;
    ns_chunk_info pack = chunk_info(70, 150);
    ns_replace_args ra = { f, 3, &pack, 1 };
    TC_CHECK(ns_replace_extents(ns, &ra, 9, &replaced, &e) == 0);
    TC_CHECK_EQ_U64(replaced, 2);
    check_ok(ns);
    uint32_t refs = 0;
    TC_CHECK(ns_chunk_lookup(ns, &pack.id, NULL, NULL, &refs) == 0);
    TC_CHECK_EQ_U64(refs, 2);
    /* Deleting a packed file releases its slice only. */
    TC_CHECK(ns_unlink(ns, 1, "s0", 10, &e) == 0);
    TC_CHECK(ns_chunk_lookup(ns, &pack.id, NULL, NULL, &refs) == 0);
    TC_CHECK_EQ_U64(refs, 1);
    TC_CHECK(ns_unlink(ns, 1, "s2", 11, &e) == 0);
    TC_CHECK(ns_chunk_lookup(ns, &pack.id, NULL, NULL, &refs) == TS_ENOENT);
    check_ok(ns);
    ns_free(ns);
}

static void test_malformed_rejected_whole(void)
{
    ns_state *ns = ns_new(1);
    ts_error e = {0};
    ts_attr a;
    uint32_t replaced = 9;
    uint64_t ino = appended_file(ns, "f", 10, 2, 100);
    TC_CHECK(ns_getattr(ns, ino, &a, &e) == 0);
    ts_buf before = {0}, after = {0};
    ns_encode(ns, &before);
    ns_chunk_info ci = chunk_info(80, 200);
    ts_extent good = { 0, 200, cid(80), 0 };
    ts_extent past_chunk = { 0, 200, cid(80), 100 };
    ts_extent unknown = { 0, 200, cid(81), 0 };
    ns_replace_file f[2] = { { ino, a.version, 0, 200, &good, 1 },
                             { ino, a.version, 0, 200, &past_chunk, 1 } };
    ns_replace_args ra = { f, 2, &ci, 1 };
    TC_CHECK(ns_replace_extents(ns, &ra, 3, &replaced, &e) == TS_EINVAL);
    TC_CHECK(strstr(e.msg, "past the end of chunk") != NULL);
    f[1].extents = &unknown;
    TC_CHECK(ns_replace_extents(ns, &ra, 3, &replaced, &e) == TS_EINVAL);
    ns_replace_args none = { f, 0, NULL, 0 };
    TC_CHECK(ns_replace_extents(ns, &none, 3, &replaced, &e) == TS_EINVAL);
    ns_chunk_info twice[2] = { ci, ci };
    ns_replace_args dup = { f, 1, twice, 2 };
    TC_CHECK(ns_replace_extents(ns, &dup, 3, &replaced, &e) == TS_EINVAL);
    ns_encode(ns, &after);
    TC_CHECK(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);
    ts_buf_free(&before);
    ts_buf_free(&after);

    /* Through the command: encoded, decoded, applied. */
    cmd c = { .type = CMD_REPLACE_EXTENTS, .now_ns = 4 };
    c.u.replace.n_files = 1;
    c.u.replace.files = ts_calloc(1, sizeof(*c.u.replace.files));
    c.u.replace.files[0] = (struct cmd_replace_file){ ino, a.version, 0, 200, NULL, 1 };
    c.u.replace.files[0].extents = ts_calloc(1, sizeof(ts_extent));
    c.u.replace.files[0].extents[0] = good;
    c.u.replace.n_chunks = 1;
    c.u.replace.chunks = ts_calloc(1, sizeof(ns_chunk_info));
    c.u.replace.chunks[0] = ci;
    ts_buf b = {0};
    cmd d;
    cmd_result res;
    cmd_encode(&c, &b);
    TC_CHECK(cmd_decode(b.data, b.len, &d, &e) == 0);
    TC_CHECK(cmd_apply(ns, &d, &res, &e) == 0);
    TC_CHECK_EQ_U64(res.replaced, 1);
    check_ok(ns);
    cmd_free(&c);
    cmd_free(&d);
    ts_buf_free(&b);
    ns_free(ns);
}

/* ---- planners ---- */

/* A planner file of n extents of len bytes at stride apart (stride > len:
 * holes), each in its own chunk of chunk_len (0: = len) from id base. */
struct pfile {
    ts_extent ext[6000];
    uint64_t clen[6000];
    cp_file f;
};

static void pfile_make(struct pfile *p, uint64_t ino, size_t n, uint64_t len, uint64_t stride,
                       int base)
{
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        p->ext[i] = (ts_extent){ i * stride, len, cid(0), 0 };
        memset(p->ext[i].chunk.b, 0, TS_CHUNK_ID_LEN);
        memcpy(p->ext[i].chunk.b, &base, sizeof(base));
        memcpy(p->ext[i].chunk.b + 8, &i, sizeof(i));
        p->clen[i] = len;
    }
    p->f = (cp_file){ ino, 3, n ? (n - 1) * stride + len : 0, p->ext, n, p->clen, 0 };
}

static void check_job(const cp_job *j, const cp_file *const *files)
{
    ts_error e = {0};
    int rc = cp_job_check(j, files, &e);
    if (rc)
        fprintf(stderr, "  job check: %s\n", e.msg);
    TC_CHECK(rc == 0);
}

static struct pfile pf[4];

static void test_plan_append(void)
{
    cp_opts o;
    cp_job j;
    cp_opts_default(&o);
    const cp_file *fs[1] = { &pf[0].f };

    /* 5,000 appends of 128 bytes: one chunk, one extent. */
    pfile_make(&pf[0], 2, 5000, 128, 128, 1);
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 1);
    TC_CHECK_EQ_U64(j.nchunks, 1);
    TC_CHECK_EQ_U64(j.chunks[0].length, 640000);
    TC_CHECK_EQ_U64(j.nfiles, 1);
    TC_CHECK_EQ_U64(j.files[0].n, 1);
    TC_CHECK_EQ_U64(j.files[0].old_extents, 5000);
    TC_CHECK_EQ_U64(j.files[0].offset, 0);
    TC_CHECK_EQ_U64(j.files[0].length, 640000);
    check_job(&j, fs);
    cp_job_free(&j);

    /* Too few small extents: nothing. */
    pfile_make(&pf[0], 2, 15, 128, 128, 1);
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 0);

    /* Chunk boundaries: 30 x 100 bytes into chunks of 1000. */
    o.chunk_size = 1000;
    o.small_extent = 500;
    pfile_make(&pf[0], 2, 30, 100, 100, 1);
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 1);
    TC_CHECK_EQ_U64(j.nchunks, 3);
    TC_CHECK_EQ_U64(j.files[0].n, 3);
    check_job(&j, fs);
    cp_job_free(&j);
    /* ... and 30 x 70: an extent split across two chunks. */
    pfile_make(&pf[0], 2, 30, 70, 70, 1);
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 1);
    TC_CHECK_EQ_U64(j.nchunks, 3);
    TC_CHECK_EQ_U64(j.chunks[2].length, 100);
    check_job(&j, fs);
    cp_job_free(&j);

    /* Holes stay holes: 20 extents of 50 bytes every 80. */
    pfile_make(&pf[0], 2, 20, 50, 80, 1);
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 1);
    TC_CHECK_EQ_U64(j.files[0].n, 20);
    TC_CHECK_EQ_U64(j.nchunks, 1);
    TC_CHECK_EQ_U64(j.bytes, 1000);
    check_job(&j, fs);
    cp_job_free(&j);
}

static void test_plan_append_bounds(void)
{
    cp_opts o;
    cp_job j;
    cp_opts_default(&o);
    const cp_file *fs[1] = { &pf[0].f };
    o.chunk_size = 10000;
    o.small_extent = 1000;
    o.min_extents = 4;
    /* A large leading extent (3000 bytes) and a small tail of 5 x 100:
     * the big one is not re-copied (500 < 3000). */
    pfile_make(&pf[0], 2, 6, 100, 3000, 1);
    pf[0].ext[0].length = 3000;
    pf[0].clen[0] = 3000;
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 1);
    TC_CHECK_EQ_U64(j.files[0].offset, 3000);
    TC_CHECK_EQ_U64(j.bytes, 500);
    check_job(&j, fs);
    cp_job_free(&j);
    /* The tail pays for it (5 x 700 = 3500 >= 3000): absorbed, and the
     * bytes copied are at most twice the tail's. */
    for (int i = 1; i < 6; i++) {
        pf[0].ext[i].length = 700;
        pf[0].clen[i] = 700;
    }
    pf[0].f.size = 5 * 3000 + 700;
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 1);
    TC_CHECK_EQ_U64(j.files[0].offset, 0);
    TC_CHECK_EQ_U64(j.bytes, 6500);
    TC_CHECK(j.bytes <= 2 * 3500);
    check_job(&j, fs);
    cp_job_free(&j);
    /* A full chunk (10000) before a tail with holes is not absorbed. */
    pf[0].ext[0].length = 10000;
    pf[0].clen[0] = 10000;
    for (int i = 1; i < 6; i++)
        pf[0].ext[i].file_offset = 10000 + (uint64_t)(i - 1) * 20000;
    for (int i = 1; i < 6; i++)
        pf[0].ext[i].length = 900, pf[0].clen[i] = 900;
    pf[0].f.size = 10000 + 4 * 20000 + 900;
    TC_CHECK(cp_plan_append(&pf[0].f, &o, &j) == 1);
    TC_CHECK_EQ_U64(j.files[0].offset, 10000);
    check_job(&j, fs);
    cp_job_free(&j);
}

static void test_plan_pack(void)
{
    static struct pfile files[100];
    static cp_file cf[100];
    const cp_file *fs[100];
    cp_opts o;
    cp_job *jobs;
    size_t njobs;
    uint64_t reclaim;
    ts_error e = {0};
    cp_opts_default(&o);
    o.chunk_size = 16 * 4096;
    o.small_file = 8192;
    for (int i = 0; i < 100; i++) {
        pfile_make(&files[i], 10 + (uint64_t)i, 1, 4096, 4096, 100 + i);
        cf[i] = files[i].f;
    }
    TC_CHECK(cp_plan_pack(cf, 100, &o, &jobs, &njobs, &reclaim, &e) == 0);
    /* 6 packs of 16; the last 4 files are too few for a pack. */
    TC_CHECK_EQ_U64(njobs, 6);
    TC_CHECK_EQ_U64(reclaim, 0);
    for (size_t k = 0; k < njobs; k++) {
        TC_CHECK_EQ_U64(jobs[k].nfiles, 16);
        TC_CHECK_EQ_U64(jobs[k].nchunks, 1);
        TC_CHECK_EQ_U64(jobs[k].chunks[0].length, 16 * 4096);
        for (size_t i = 0; i < 16; i++)
            fs[i] = &cf[k * 16 + i];
        check_job(&jobs[k], fs);
        cp_job_free(&jobs[k]);
    }
    free(jobs);

    /* Packed: 16 files share one 64 KiB chunk; a file's size over
     * small_file is left alone. */
    ts_chunk_id pack = cid(200);
    for (int i = 0; i < 16; i++) {
        files[i].ext[0].chunk = pack;
        files[i].ext[0].chunk_offset = (uint64_t)i * 4096;
        files[i].clen[0] = 16 * 4096;
    }
    TC_CHECK(cp_plan_pack(cf, 16, &o, &jobs, &njobs, &reclaim, &e) == 0);
    TC_CHECK_EQ_U64(njobs, 0);
    free(jobs);
    /* 12 of them deleted: the 4 left are repacked (with 4 fresh files). */
    for (int i = 0; i < 4; i++)
        cf[i] = files[12 + i].f;
    for (int i = 4; i < 8; i++)
        cf[i] = files[50 + i].f;
    TC_CHECK(cp_plan_pack(cf, 8, &o, &jobs, &njobs, &reclaim, &e) == 0);
    TC_CHECK_EQ_U64(reclaim, 12 * 4096);
    TC_CHECK_EQ_U64(njobs, 1);
    TC_CHECK_EQ_U64(jobs[0].nfiles, 8);
    for (size_t i = 0; i < 8; i++)
        fs[i] = &cf[i];
    check_job(&jobs[0], fs);
    cp_job_free(&jobs[0]);
    free(jobs);
    /* At most max_pack_files per pack. */
    o.max_pack_files = 5;
    TC_CHECK(cp_plan_pack(cf, 8, &o, &jobs, &njobs, &reclaim, &e) == TS_EINVAL);  /* < min */
    o.min_pack_files = 3;
    int rc = cp_plan_pack(cf, 8, &o, &jobs, &njobs, &reclaim, &e);
    if (rc)
        fprintf(stderr, "  %s\n", e.msg);
    TC_CHECK(rc == 0);
    TC_CHECK_EQ_U64(njobs, 2);      /* 5 + 3 */
    TC_CHECK_EQ_U64(jobs[0].nfiles, 5);
    TC_CHECK_EQ_U64(jobs[1].nfiles, 3);
    for (size_t k = 0; k < njobs; k++)
        cp_job_free(&jobs[k]);
    free(jobs);
    o.min_pack_files = 1;
    TC_CHECK(cp_plan_pack(cf, 8, &o, &jobs, &njobs, &reclaim, &e) == TS_EINVAL);
}

int main(void)
{
    TC_RUN(test_plan_append);
    TC_RUN(test_plan_append_bounds);
    TC_RUN(test_plan_pack);
    TC_RUN(test_compact_one_file);
    TC_RUN(test_coverage_must_match);
    TC_RUN(test_pack_many_files);
    TC_RUN(test_malformed_rejected_whole);
    TC_DONE("test_compact");
}
