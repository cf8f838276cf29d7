/*
 * Unit tests for chunkserver/chunk_store: write, seal and read back; block
 * CRC and footer corruption detected (never wrong bytes); aborted, short and
 * failed (ENOSPC by fault injection) writes leave nothing visible; duplicate
 * ids refused; the restart scan finds sealed chunks and cleans tmp; the
 * O_DIRECT path at awkward lengths; a digest given by the writer checked.
 * Each test works in its own temporary directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunkserver/chunk_store.h"
#include "common/checksum.h"
#include "common/log.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/ts-chunk-store.XXXXXX";
    char *d = mkdtemp(tmpl);
    if (d == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    return ts_strdup(d);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int tmp_entries(const char *data)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tmp", data);
    return count_entries(path);
}

static void fill_pattern(uint8_t *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

static void chunk_file(const char *data, const ts_chunk_id *id, char *out, size_t outlen)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_chunk_id_to_hex(id, hex);
    snprintf(out, outlen, "%s/chunks/%.2s/%s.chunk", data, hex, hex);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    if (fd < 0 || pread(fd, &b, 1, off) != 1) {
        perror(path);
        exit(1);
    }
    b ^= 0x40;
    if (pwrite(fd, &b, 1, off) != 1) {
        perror(path);
        exit(1);
    }
    close(fd);
}

/* Writes data as chunk id in pieces of varying size, with the writer's
 * digest d given first unless it is NULL; returns commit's rc. */
static int write_chunk_digest(ts_chunk_store *s, const ts_chunk_id *id, const uint8_t *data,
                              size_t len, const ts_chunk_digest *d, ts_chunk_info *info,
                              ts_error *err)
{
    ts_chunk_writer *w;
    int rc = ts_chunk_writer_begin(s, id, len, &w, err);
    if (rc != 0)
        return rc;
    if (d != NULL)
        ts_chunk_writer_given_digest(w, d);
    size_t off = 0, piece = 1;
    while (off < len) {
        size_t n = TS_MIN(piece, len - off);
        rc = ts_chunk_writer_append(w, data + off, n, err);
        if (rc != 0) {
            ts_chunk_writer_abort(w);
            return rc;
        }
        off += n;
        piece = piece * 3 + 7;   /* 1, 10, 37, …: crosses block edges oddly */
        if (piece > 300000)
            piece = 4093;
    }
    return ts_chunk_writer_commit(w, info, err);
}

static int write_chunk(ts_chunk_store *s, const ts_chunk_id *id, const uint8_t *data, size_t len,
                       ts_chunk_info *info, ts_error *err)
{
    return write_chunk_digest(s, id, data, len, NULL, info, err);
}

static ts_chunk_store *open_one(const char *dir)
{
    ts_chunk_store *s = NULL;
    ts_error err = { 0 };
    const char *dirs[] = { dir };
    if (ts_chunk_store_open(dirs, 1, &s, &err) != 0) {
        fprintf(stderr, "open store %s: %s\n", dir, err.msg);
        exit(1);
    }
    return s;
}

static void test_write_read_back(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    size_t len = 3 * TS_BLOCK_SIZE + 12345;
    uint8_t *data = ts_malloc(len), *back = ts_malloc(len);
    ts_chunk_id id;
    ts_chunk_info info;
    uint8_t sha[TS_SHA256_LEN];

    fill_pattern(data, len, 1);
    ts_chunk_id_random(&id);
    TC_CHECK(write_chunk(s, &id, data, len, &info, &err) == 0);
    TC_CHECK_EQ_U64(info.length, len);
    TC_CHECK_EQ_U64(info.nblocks, 4);
    ts_sha256_once(data, len, sha);
    TC_CHECK(memcmp(info.sha256, sha, sizeof sha) == 0);

    uint64_t l = 0;
    TC_CHECK(ts_chunk_store_contains(s, &id, &l) == 1);
    TC_CHECK_EQ_U64(l, len);
    TC_CHECK(ts_chunk_store_read(s, &id, 0, len, back, &err) == 0);
    TC_CHECK(memcmp(back, data, len) == 0);
    /* Unaligned ranges across block edges, and the tail. */
    const uint64_t ranges[][2] = { { 1, 10 }, { TS_BLOCK_SIZE - 3, 7 },
                                   { TS_BLOCK_SIZE, TS_BLOCK_SIZE },
                                   { 2 * TS_BLOCK_SIZE + 17, TS_BLOCK_SIZE + 100 },
                                   { len - 1, 1 }, { len, 0 } };
    for (size_t i = 0; i < TS_ARRAY_LEN(ranges); i++) {
        memset(back, 0, len);
        TC_CHECK(ts_chunk_store_read(s, &id, ranges[i][0], ranges[i][1], back, &err) == 0);
        TC_CHECK(memcmp(back, data + ranges[i][0], ranges[i][1]) == 0);
    }
    TC_CHECK(ts_chunk_store_read(s, &id, len - 5, 6, back, &err) == TS_ERANGE);

    ts_chunk_info info2;
    TC_CHECK(ts_chunk_store_info(s, &id, &info2, &err) == 0);
    TC_CHECK(ts_chunk_id_eq(&info.id, &info2.id));
    TC_CHECK_EQ_U64(info2.length, info.length);
    TC_CHECK_EQ_U64(info2.nblocks, info.nblocks);
    TC_CHECK(memcmp(info.sha256, info2.sha256, sizeof info.sha256) == 0);

    ts_chunk_id *ids;
    size_t n;
    ts_chunk_store_list(s, &ids, &n);
    TC_CHECK_EQ_U64(n, 1);
    TC_CHECK(n == 1 && ts_chunk_id_eq(&ids[0], &id));
    free(ids);
    ts_chunk_store_take_added(s, &ids, &n);
    TC_CHECK_EQ_U64(n, 1);
    free(ids);
    ts_chunk_store_take_added(s, &ids, &n);
    TC_CHECK_EQ_U64(n, 0);
    free(ids);

    ts_chunk_stats st;
    TC_CHECK(ts_chunk_store_stats(s, &st, &err) == 0);
    TC_CHECK_EQ_U64(st.chunks, 1);
    TC_CHECK_EQ_U64(st.chunk_bytes, len);
    TC_CHECK(st.capacity > 0 && st.available <= st.capacity);
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);

    /* Exactly block-sized and empty chunks. */
    ts_chunk_id id2, id3;
    ts_chunk_id_random(&id2);
    ts_chunk_id_random(&id3);
    TC_CHECK(write_chunk(s, &id2, data, TS_BLOCK_SIZE, &info, &err) == 0);
    TC_CHECK_EQ_U64(info.nblocks, 1);
    TC_CHECK(write_chunk(s, &id3, data, 0, &info, &err) == 0);
    TC_CHECK_EQ_U64(info.nblocks, 0);
    TC_CHECK(ts_chunk_store_read(s, &id3, 0, 0, back, &err) == 0);
    TC_CHECK(ts_chunk_store_read(s, &id2, 0, TS_BLOCK_SIZE, back, &err) == 0);
    TC_CHECK(memcmp(back, data, TS_BLOCK_SIZE) == 0);

    free(data);
    free(back);
    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

static void test_crc_corruption(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    size_t len = 20 * TS_BLOCK_SIZE;
    uint8_t *data = ts_malloc(len), *back = ts_malloc(len);
    ts_chunk_id id;
    char path[4096];

    fill_pattern(data, len, 2);
    ts_chunk_id_random(&id);
    TC_CHECK(write_chunk(s, &id, data, len, NULL, &err) == 0);
    chunk_file(dir, &id, path, sizeof path);
    flip_byte(path, 17 * TS_BLOCK_SIZE + 5);

    memset(back, 0, len);
    int rc = ts_chunk_store_read(s, &id, 17 * TS_BLOCK_SIZE + 100, 10, back, &err);
    TC_CHECK(rc == TS_ECORRUPT);
    TC_CHECK(strstr(err.msg, "checksum mismatch at block 17") != NULL);
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_chunk_id_to_hex(&id, hex);
    TC_CHECK(strstr(err.msg, hex) != NULL);
    /* Never wrong bytes: nothing was copied out. */
    uint8_t zeros[10] = { 0 };
    TC_CHECK(memcmp(back, zeros, sizeof zeros) == 0);
    /* A range touching the bad block anywhere fails; others still work. */
    TC_CHECK(ts_chunk_store_read(s, &id, 0, len, back, &err) == TS_ECORRUPT);
    TC_CHECK(ts_chunk_store_read(s, &id, 3 * TS_BLOCK_SIZE, 2 * TS_BLOCK_SIZE, back, &err) == 0);
    TC_CHECK(memcmp(back, data + 3 * TS_BLOCK_SIZE, 2 * TS_BLOCK_SIZE) == 0);
    TC_CHECK(ts_chunk_store_read(s, &id, 18 * TS_BLOCK_SIZE - 1, 1, back, &err) == TS_ECORRUPT);
    TC_CHECK(ts_chunk_store_read(s, &id, 18 * TS_BLOCK_SIZE, 1, back, &err) == 0);

    ts_chunk_stats st;
    TC_CHECK(ts_chunk_store_stats(s, &st, &err) == 0);
    TC_CHECK(st.checksum_errors >= 3);

    free(data);
    free(back);
    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

static void test_footer_corruption(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    size_t len = 100000;
    uint8_t *data = ts_malloc(len);
    ts_chunk_id id, id2;
    char path[4096];
    ts_chunk_reader *r = NULL;

    fill_pattern(data, len, 3);
    ts_chunk_id_random(&id);
    TC_CHECK(write_chunk(s, &id, data, len, NULL, &err) == 0);
    chunk_file(dir, &id, path, sizeof path);
    /* A bit of the SHA-256 in the footer: only the footer CRC can see it. */
    flip_byte(path, (off_t)len + 4 + 4 + 8 + 3);
    TC_CHECK(ts_chunk_reader_open(s, &id, &r, &err) == TS_ECORRUPT);
    TC_CHECK(strstr(err.msg, "footer") != NULL);

    /* A truncated file (lost its trailer). */
    ts_chunk_id_random(&id2);
    TC_CHECK(write_chunk(s, &id2, data, len, NULL, &err) == 0);
    chunk_file(dir, &id2, path, sizeof path);
    TC_CHECK(truncate(path, (off_t)len + 20) == 0);
    TC_CHECK(ts_chunk_reader_open(s, &id2, &r, &err) == TS_ECORRUPT);

    /* After a restart, neither is served. */
    ts_chunk_store_close(s);
    s = open_one(dir);
    TC_CHECK(ts_chunk_store_contains(s, &id, NULL) == 0);
    TC_CHECK(ts_chunk_store_contains(s, &id2, NULL) == 0);
    TC_CHECK(ts_chunk_store_read(s, &id, 0, 1, data, &err) == TS_ENOENT);

    free(data);
    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

static void test_partial_write_invisible(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    uint8_t data[5000];
    ts_chunk_id id;
    ts_chunk_writer *w;

    fill_pattern(data, sizeof data, 4);
    ts_chunk_id_random(&id);
    /* Aborted midway. */
    TC_CHECK(ts_chunk_writer_begin(s, &id, sizeof data, &w, &err) == 0);
    TC_CHECK(ts_chunk_writer_append(w, data, 1000, &err) == 0);
    TC_CHECK_EQ_U64(tmp_entries(dir), 1);
    TC_CHECK(ts_chunk_store_contains(s, &id, NULL) == 0);
    ts_chunk_writer_abort(w);
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);
    TC_CHECK(ts_chunk_store_read(s, &id, 0, 1, data, &err) == TS_ENOENT);

    /* Committed short of the announced length. */
    TC_CHECK(ts_chunk_writer_begin(s, &id, sizeof data, &w, &err) == 0);
    TC_CHECK(ts_chunk_writer_append(w, data, 1000, &err) == 0);
    TC_CHECK(ts_chunk_writer_commit(w, NULL, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "received 1000 of 5000 bytes") != NULL);
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);
    TC_CHECK(ts_chunk_store_contains(s, &id, NULL) == 0);

    /* More than announced. */
    TC_CHECK(ts_chunk_writer_begin(s, &id, 10, &w, &err) == 0);
    TC_CHECK(ts_chunk_writer_append(w, data, 11, &err) == TS_EINVAL);
    ts_chunk_writer_abort(w);
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);

    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

static void test_enospc(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    size_t len = 300000;
    uint8_t *data = ts_malloc(len);
    ts_chunk_id id;
    ts_chunk_writer *w;
    int rc = 0;

    fill_pattern(data, len, 5);
    ts_chunk_id_random(&id);
    ts_chunk_store_inject_write_error(s, 100000, ENOSPC);
    TC_CHECK(ts_chunk_writer_begin(s, &id, len, &w, &err) == 0);
    for (size_t off = 0; off < len && rc == 0; off += 16384)
        rc = ts_chunk_writer_append(w, data + off, TS_MIN((size_t)16384, len - off), &err);
    TC_CHECK(rc == TS_ENOSPC);
    TC_CHECK(strstr(err.msg, "disk full writing chunk") != NULL);
    TC_CHECK(strstr(err.msg, dir) != NULL);
    /* The partial file is gone before the caller even aborts. */
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);
    TC_CHECK(ts_chunk_writer_append(w, data, 1, &err) == TS_ENOSPC);
    TC_CHECK(ts_chunk_writer_commit(w, NULL, &err) == TS_ENOSPC);
    TC_CHECK(ts_chunk_store_contains(s, &id, NULL) == 0);
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);

    /* One shot: the next writer is fine. */
    TC_CHECK(write_chunk(s, &id, data, len, NULL, &err) == 0);

    /* A failure while writing the footer is handled the same way. */
    ts_chunk_id id2;
    ts_chunk_id_random(&id2);
    ts_chunk_store_inject_write_error(s, 1000, EDQUOT);
    TC_CHECK(write_chunk(s, &id2, data, 1000, NULL, &err) == TS_ENOSPC);
    TC_CHECK(ts_chunk_store_contains(s, &id2, NULL) == 0);
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);

    free(data);
    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

static void test_duplicate_id(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    uint8_t data[3000];
    ts_chunk_id id;
    ts_chunk_writer *w1, *w2, *w3;

    fill_pattern(data, sizeof data, 6);
    ts_chunk_id_random(&id);
    /* Two writers race; the first to commit wins, the second gets EEXIST. */
    TC_CHECK(ts_chunk_writer_begin(s, &id, sizeof data, &w1, &err) == 0);
    TC_CHECK(ts_chunk_writer_begin(s, &id, sizeof data, &w2, &err) == 0);
    TC_CHECK(ts_chunk_writer_append(w1, data, sizeof data, &err) == 0);
    TC_CHECK(ts_chunk_writer_append(w2, data, sizeof data, &err) == 0);
    TC_CHECK(ts_chunk_writer_commit(w1, NULL, &err) == 0);
    TC_CHECK(ts_chunk_writer_commit(w2, NULL, &err) == TS_EEXIST);
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);
    /* Sealed: refused at begin. */
    TC_CHECK(ts_chunk_writer_begin(s, &id, sizeof data, &w3, &err) == TS_EEXIST);
    TC_CHECK(strstr(err.msg, "already sealed") != NULL);

    /* Delete, then it can be written again. */
    TC_CHECK(ts_chunk_store_delete(s, &id, &err) == 0);
    TC_CHECK(ts_chunk_store_contains(s, &id, NULL) == 0);
    TC_CHECK(ts_chunk_store_delete(s, &id, &err) == TS_ENOENT);
    TC_CHECK(write_chunk(s, &id, data, sizeof data, NULL, &err) == 0);

    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

static void test_restart_scan(void)
{
    char *d1 = make_tmpdir(), *d2 = make_tmpdir();
    const char *dirs[] = { d1, d2 };
    ts_chunk_store *s = NULL;
    ts_error err = { 0 };
    uint8_t *data = ts_malloc(200000), *back = ts_malloc(200000);
    ts_chunk_id ids[6];
    char path[4096];

    TC_CHECK(ts_chunk_store_open(dirs, 2, &s, &err) == 0);
    for (int i = 0; i < 6; i++) {
        fill_pattern(data, 200000, 10 + (uint32_t)i);
        ts_chunk_id_random(&ids[i]);
        TC_CHECK(write_chunk(s, &ids[i], data, 1000 + 30000 * (size_t)i, NULL, &err) == 0);
    }
    /* What a crash mid-upload leaves: part files in tmp. */
    ts_chunk_id orphan;
    char ohex[TS_CHUNK_ID_HEX_LEN + 1];
    ts_chunk_id_random(&orphan);
    ts_chunk_id_to_hex(&orphan, ohex);
    snprintf(path, sizeof path, "%s/tmp/%s.0123456789abcdef.part", d2, ohex);
    TC_CHECK(ts_write_file_atomic(path, "junk", 4, &err) == 0);
    snprintf(path, sizeof path, "%s/tmp/%s.fedcba9876543210.part", d1, ohex);
    TC_CHECK(ts_write_file_atomic(path, "junk", 4, &err) == 0);
    ts_chunk_store_close(s);

    TC_CHECK(tmp_entries(d1) + tmp_entries(d2) >= 2);
    s = NULL;
    TC_CHECK(ts_chunk_store_open(dirs, 2, &s, &err) == 0);
    if (s == NULL)
        return;
    TC_CHECK_EQ_U64(tmp_entries(d1), 0);
    TC_CHECK_EQ_U64(tmp_entries(d2), 0);
    ts_chunk_id *list;
    size_t n;
    ts_chunk_store_list(s, &list, &n);
    TC_CHECK_EQ_U64(n, 6);
    free(list);
    for (int i = 0; i < 6; i++) {
        uint64_t len = 0;
        size_t want = 1000 + 30000 * (size_t)i;
        TC_CHECK(ts_chunk_store_contains(s, &ids[i], &len) == 1);
        TC_CHECK_EQ_U64(len, want);
        fill_pattern(data, 200000, 10 + (uint32_t)i);
        TC_CHECK(ts_chunk_store_read(s, &ids[i], 0, want, back, &err) == 0);
        TC_CHECK(memcmp(back, data, want) == 0);
    }
    TC_CHECK(ts_chunk_store_contains(s, &orphan, NULL) == 0);
    /* The restart scan does not report old chunks as newly added. */
    ts_chunk_store_take_added(s, &list, &n);
    TC_CHECK_EQ_U64(n, 0);
    free(list);
    ts_chunk_stats st;
    TC_CHECK(ts_chunk_store_stats(s, &st, &err) == 0);
    TC_CHECK_EQ_U64(st.chunks, 6);

    free(data);
    free(back);
    ts_chunk_store_close(s);
    rm_rf(d1);
    rm_rf(d2);
    free(d1);
    free(d2);
}

static void test_unusable_dir(void)
{
    char *dir = make_tmpdir();
    char path[4096];
    ts_chunk_store *s = NULL;
    ts_error err = { 0 };

    /* A data dir that is a file cannot be used: clear refusal. */
    snprintf(path, sizeof path, "%s/not-a-dir", dir);
    TC_CHECK(ts_write_file_atomic(path, "x", 1, &err) == 0);
    const char *dirs[] = { path };
    TC_CHECK(ts_chunk_store_open(dirs, 1, &s, &err) != 0);
    TC_CHECK(strstr(err.msg, path) != NULL);
    /* The same directory twice, and no directory at all. */
    const char *twice[] = { dir, dir };
    TC_CHECK(ts_chunk_store_open(twice, 2, &s, &err) == TS_EINVAL);
    TC_CHECK(ts_chunk_store_open(twice, 0, &s, &err) == TS_EINVAL);
    rm_rf(dir);
    free(dir);
}

/* A dead data dir at start (here: a file where the directory should be)
 * is taken out of service and the server opens with the others; only
 * when every dir is dead does opening fail. */
static void test_dead_dir_at_start(void)
{
    char *dir = make_tmpdir();
    char good[4096], dead[4096], dead2[4096];
    ts_chunk_store *s = NULL;
    ts_chunk_stats st;
    ts_error err = { 0 };

    snprintf(good, sizeof good, "%s/good", dir);
    snprintf(dead, sizeof dead, "%s/dead", dir);
    snprintf(dead2, sizeof dead2, "%s/dead2", dir);
    TC_CHECK(ts_write_file_atomic(dead, "x", 1, &err) == 0);
    TC_CHECK(ts_write_file_atomic(dead2, "x", 1, &err) == 0);
    const char *dirs[] = { dead, good };
    TC_CHECK(ts_chunk_store_open(dirs, 2, &s, &err) == 0);
    TC_CHECK(s != NULL && ts_chunk_store_stats(s, &st, &err) == 0);
    TC_CHECK(st.failed_dirs == 1);
    ts_chunk_store_close(s);
    const char *all_dead[] = { dead, dead2 };
    s = NULL;
    TC_CHECK(ts_chunk_store_open(all_dead, 2, &s, &err) != 0);
    TC_CHECK(s == NULL && strstr(err.msg, "all 2 data directories failed") != NULL);
    rm_rf(dir);
    free(dir);
}


/* Chunks of 1 MiB and more go through the O_DIRECT path: lengths that are
 * and are not multiples of the buffer and of the page, in odd pieces, read
 * back exactly; with direct I/O off too. */
static void test_direct_io_lengths(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    size_t cap = 5 * 1024 * 1024 + 4097;
    uint8_t *data = ts_malloc(cap), *back = ts_malloc(cap);
    fill_pattern(data, cap, 7);
    static const size_t lens[] = { 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1,
                                   3 * 1024 * 1024 + 4096, 5 * 1024 * 1024 + 4097 };
    for (int direct = 1; direct >= 0; direct--) {
        ts_chunk_store_set_direct_io(s, direct);
        for (size_t i = 0; i < TS_ARRAY_LEN(lens); i++) {
            ts_chunk_id id;
            ts_chunk_info info;
            uint8_t sha[TS_SHA256_LEN];
            ts_chunk_id_random(&id);
            TC_CHECK(write_chunk(s, &id, data, lens[i], &info, &err) == 0);
            ts_sha256_once(data, lens[i], sha);
            TC_CHECK(memcmp(info.sha256, sha, sizeof sha) == 0);
            memset(back, 0, cap);
            TC_CHECK(ts_chunk_store_read(s, &id, 0, lens[i], back, &err) == 0);
            TC_CHECK(memcmp(back, data, lens[i]) == 0);
        }
    }
    /* Reopened: the footers written after direct data are found by the scan. */
    ts_chunk_store_close(s);
    s = open_one(dir);
    ts_chunk_stats st;
    TC_CHECK(ts_chunk_store_stats(s, &st, &err) == 0);
    TC_CHECK_EQ_U64(st.chunks, 2 * TS_ARRAY_LEN(lens));
    TC_CHECK_EQ_U64(tmp_entries(dir), 0);
    free(data);
    free(back);
    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

/* A digest given by the writer: the chunk is sealed with the writer's
 * SHA-256 when the CRC32C of the bytes matches, refused (nothing left
 * behind) when it does not. */
static void test_given_digest(void)
{
    char *dir = make_tmpdir();
    ts_chunk_store *s = open_one(dir);
    ts_error err = { 0 };
    static const size_t lens[] = { 0, 1000, 3 * TS_BLOCK_SIZE + 5, 2 * 1024 * 1024 + 3 };
    size_t cap = 2 * 1024 * 1024 + 3;
    uint8_t *data = ts_malloc(cap);
    fill_pattern(data, cap, 9);
    for (size_t i = 0; i < TS_ARRAY_LEN(lens); i++) {
        ts_chunk_id id;
        ts_chunk_info info;
        ts_chunk_digest d;
        ts_chunk_digest_of(data, lens[i], &d);
        ts_chunk_id_random(&id);
        TC_CHECK(write_chunk_digest(s, &id, data, lens[i], &d, &info, &err) == 0);
        TC_CHECK(memcmp(info.sha256, d.sha256, sizeof d.sha256) == 0);
        TC_CHECK(ts_chunk_store_contains(s, &id, NULL) == 1);

        /* One bit off in transit: the CRC the writer sent no longer matches. */
        if (lens[i] > 0) {
            ts_chunk_id bad;
            ts_chunk_id_random(&bad);
            data[lens[i] / 2] ^= 0x10;
            TC_CHECK(write_chunk_digest(s, &bad, data, lens[i], &d, &info, &err) == TS_ECORRUPT);
            data[lens[i] / 2] ^= 0x10;
            TC_CHECK(strstr(err.msg, "CRC32C of the bytes received") != NULL);
            TC_CHECK(ts_chunk_store_contains(s, &bad, NULL) == 0);
            TC_CHECK_EQ_U64(tmp_entries(dir), 0);
        }
    }
    free(data);
    ts_chunk_store_close(s);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    ts_log_init("test_chunk_store", TS_LOG_WARN);
    TC_RUN(test_write_read_back);
    TC_RUN(test_crc_corruption);
    TC_RUN(test_footer_corruption);
    TC_RUN(test_partial_write_invisible);
    TC_RUN(test_enospc);
    TC_RUN(test_duplicate_id);
    TC_RUN(test_restart_scan);
    TC_RUN(test_unusable_dir);
    TC_RUN(test_dead_dir_at_start);
    TC_RUN(test_direct_io_lengths);
    TC_RUN(test_given_digest);
    TC_DONE("test_chunk_store");
}
