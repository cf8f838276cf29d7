/*
 * Unit tests of the write-ahead log, snapshots and the store
 * (metadata/wal.h, snapshot.h, store.h): append + replay, a torn tail is
 * dropped, a corrupted middle record refuses to open naming file and
 * offset, snapshot + log replay gives the same state as a straight replay,
 * group commit shares fsyncs between threads, and bad data dirs are refused.
 * Each test works in its own fresh directory under /tmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/log.h"
#include "common/util.h"
#include "metadata/command.h"
#include "metadata/snapshot.h"
#include "metadata/store.h"
#include "metadata/wal.h"
#include "tests/unit/cmd_fixture.h"
#include "tests/unit/tcheck.h"
#include "tests/unit/tdir.h"

static char *fresh_dir(const char *name)
{
    char *d = tdir_fresh("wal", name);
    if (mkdir(d, 0755) != 0)
        fprintf(stderr, "  mkdir %s: %s\n", d, strerror(errno));
    return d;
}

struct collected {
    int n;
    uint64_t first, last;
    char payload[1000][32];
};

static int collect(void *arg, uint64_t index, const void *p, size_t len, ts_error *err)
{
    struct collected *c = arg;
    (void)err;
    if (c->n == 0)
        c->first = index;
    c->last = index;
    if (c->n < 1000 && len < 32) {
        memcpy(c->payload[c->n], p, len);
        c->payload[c->n][len] = '\0';
    }
    c->n++;
    return 0;
}

static void write_records(const char *dir, int n)
{
    wal *w = NULL;
    ts_error e = {0};
    struct collected c = {0};
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    if (!w)
        return;
    for (int i = 0; i < n; i++) {
        char rec[32];
        int len = snprintf(rec, sizeof(rec), "record-%d", i + 1);
        uint64_t idx = wal_append(w, rec, (size_t)len);
        TC_CHECK(idx == (uint64_t)(c.n + i + 1));
    }
    wal_sync(w);
    wal_close(w);
}

static char *segment1(const char *dir)
{
    return ts_sprintf("%s/wal-%020d.log", dir, 1);
}

static void test_append_replay(void)
{
    char *dir = fresh_dir("replay");
    write_records(dir, 100);
    static struct collected c;
    memset(&c, 0, sizeof(c));
    wal *w = NULL;
    ts_error e = {0};
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    TC_CHECK(c.n == 100 && c.first == 1 && c.last == 100);
    TC_CHECK_STR(c.payload[41], "record-42");
    TC_CHECK(wal_last_index(w) == 100);
    TC_CHECK(wal_append(w, "more", 4) == 101);
    wal_close(w);
    /* replay after a snapshot index skips what it covers */
    memset(&c, 0, sizeof(c));
    TC_CHECK(wal_open(dir, 60, 1, collect, &c, &w, &e) == 0);
    TC_CHECK(c.n == 41 && c.first == 61 && c.last == 101);
    wal_close(w);
    tdir_remove(dir);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_torn_tail(void)
{
    char *dir = fresh_dir("torn");
    char *seg = segment1(dir);
    static struct collected c;
    wal *w = NULL;
    ts_error e = {0};
    write_records(dir, 10);
    off_t full = file_size(seg);

    /* 1. the last record cut short (length runs past end of file) */
    TC_CHECK(truncate(seg, full - 3) == 0);
    memset(&c, 0, sizeof(c));
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    TC_CHECK(c.n == 9);
    wal_stats st;
    wal_get_stats(w, &st);
    TC_CHECK(st.torn_dropped == 1);
    TC_CHECK(wal_append(w, "again-10", 8) == 10);   /* the log continues */
    wal_close(w);
    memset(&c, 0, sizeof(c));
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    TC_CHECK(c.n == 10);
    TC_CHECK_STR(c.payload[9], "again-10");
    wal_close(w);

    /* 2. checksum mismatch on the last record */
    full = file_size(seg);
    int fd = open(seg, O_RDWR);
    TC_CHECK(fd >= 0 && pwrite(fd, "X", 1, full - 1) == 1);
    close(fd);
    memset(&c, 0, sizeof(c));
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    TC_CHECK(c.n == 9);
    wal_close(w);

    /* 3. a partial header and zero fill at the end */
    fd = open(seg, O_WRONLY | O_APPEND);
    static const char zeros[100];
    TC_CHECK(fd >= 0 && write(fd, zeros, sizeof(zeros)) == (ssize_t)sizeof(zeros));
    close(fd);
    memset(&c, 0, sizeof(c));
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    TC_CHECK(c.n == 9);
    wal_close(w);
    free(seg);
    tdir_remove(dir);
}

/* Writes len bytes at off into the file at path. */
static void poke(const char *path, const void *buf, size_t len, off_t off)
{
    int fd = open(path, O_WRONLY);
    TC_CHECK(fd >= 0 && pwrite(fd, buf, len, off) == (ssize_t)len);
    if (fd >= 0)
        close(fd);
}

/* Opens the log in dir and checks that it replays n records and dropped
 * `torn` torn ones; returns it open (NULL when it did not open). */
static wal *reopen_expect(const char *dir, int n, uint64_t torn, struct collected *c)
{
    wal *w = NULL;
    wal_stats st;
    ts_error e = {0};
    memset(c, 0, sizeof(*c));
    TC_CHECK(wal_open(dir, 0, 1, collect, c, &w, &e) == 0);
    TC_CHECK_EQ_U64(c->n, n);
    if (w) {
        wal_get_stats(w, &st);
        TC_CHECK_EQ_U64(st.torn_dropped, torn);
    }
    return w;
}

/* Copies segment 1 of dir into a fresh dir `name` as the disk holds it
 * now (what a machine crash would leave); returns the new dir. */
static char *crash_copy(const char *dir, const char *name)
{
    char *to = fresh_dir(name), *from = segment1(dir), *seg = segment1(to);
    char *data = NULL;
    size_t size = 0;
    ts_error e = {0};
    TC_CHECK(ts_read_file(from, &data, &size, &e) == 0);
    int fd = open(seg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    TC_CHECK(fd >= 0 && ts_write_full(fd, data, size) == 0);
    close(fd);
    free(data);
    free(from);
    free(seg);
    return to;
}

/* Records go into zero-filled space written ahead; the zero tail ends
 * recovery quietly, a torn record inside it is dropped, damage before it
 * is still corruption, and a clean close cuts the tail. */
static void test_preallocated_tail(void)
{
    enum { N = 50, LEN = 4000 };
    const off_t records = (off_t)N * (WAL_HEADER_LEN + LEN);
    char *dir = fresh_dir("prealloc"), *seg = segment1(dir);
    static struct collected c;
    static uint8_t rec[LEN];
    wal *w = NULL;
    ts_error e = {0};
    memset(&c, 0, sizeof(c));
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    if (!w)
        return;
    for (int i = 0; i < N; i++) {
        memset(rec, 'a' + i % 26, sizeof(rec));
        wal_append(w, rec, sizeof(rec));
        wal_sync(w);
    }
    TC_CHECK(file_size(seg) >= records + (1 << 20));   /* space written ahead */
    TC_CHECK(wal_segment_bytes(w) == (uint64_t)records);

    /* 1. crash with the zero tail: every record back, nothing "torn" */
    char *d1 = crash_copy(dir, "prealloc-crash");
    wal *w1 = reopen_expect(d1, N, 0, &c);
    if (w1) {
        TC_CHECK(wal_append(w1, "next", 4) == N + 1);
        wal_close(w1);
    }
    wal_close(reopen_expect(d1, N + 1, 0, &c));
    TC_CHECK_STR(c.payload[N], "next");

    /* 2. a record half written into the zero tail is torn, not corrupt */
    char *d2 = crash_copy(dir, "prealloc-torn");
    char *seg2 = segment1(d2);
    uint8_t head[WAL_HEADER_LEN + 100];
    memset(head, 'z', sizeof(head));
    head[0] = LEN & 0xff;           /* length LEN, little-endian */
    head[1] = LEN >> 8;
    head[2] = head[3] = 0;
    poke(seg2, head, sizeof(head), records);
    wal_close(reopen_expect(d2, N, 1, &c));

    /* 3. a damaged record before the zero tail is still corruption */
    char *d3 = crash_copy(dir, "prealloc-corrupt");
    char *seg3 = segment1(d3);
    poke(seg3, "Q", 1, 10 * (WAL_HEADER_LEN + LEN) + 100);
    TC_CHECK(wal_open(d3, 0, 1, collect, &c, &w1, &e) == TS_ECORRUPT);
    TC_CHECK(strstr(e.msg, "checksum mismatch") != NULL);

    /* 4. a clean close leaves just the records */
    wal_close(w);
    TC_CHECK(file_size(seg) == records);
    free(seg2);
    free(seg3);
    free(seg);
    tdir_remove(d1);
    tdir_remove(d2);
    tdir_remove(d3);
    tdir_remove(dir);
}

/* When the zero fill fails (here at the file-size limit, as on a full
 * disk), the log warns, stops preallocating in that segment and writes its
 * records past the zeros: nothing is lost. */
static void test_prealloc_fails(void)
{
    enum { N = 400, LEN = 4000 };
    const off_t limit = 1 << 20, records = (off_t)N * (WAL_HEADER_LEN + LEN);
    char *dir = fresh_dir("prealloc-fails"), *seg = segment1(dir);
    static struct collected c;
    static uint8_t rec[LEN];
    struct rlimit saved, lim;
    wal *w = NULL;
    ts_error e = {0};
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == 0);
    if (!w)
        return;
    /* The first flush may not grow the file past `limit`: its zero fill
     * fails there (EFBIG), its record fits below. */
    signal(SIGXFSZ, SIG_IGN);
    TC_CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    lim = saved;
    lim.rlim_cur = (rlim_t)limit;
    TC_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    memset(rec, 'p', sizeof(rec));
    wal_append(w, rec, sizeof(rec));
    wal_sync(w);
    TC_CHECK(setrlimit(RLIMIT_FSIZE, &saved) == 0);
    TC_CHECK(file_size(seg) == limit);
    /* No more zero fill in this segment: the records run past it. */
    for (int i = 1; i < N; i++) {
        wal_append(w, rec, sizeof(rec));
        wal_sync(w);
    }
    TC_CHECK(file_size(seg) == records);
    wal_close(w);
    wal_close(reopen_expect(dir, N, 0, &c));
    free(seg);
    tdir_remove(dir);
}

static void test_corrupt_middle(void)
{
    char *dir = fresh_dir("corrupt");
    char *seg = segment1(dir);
    write_records(dir, 10);
    /* Records are 16 header bytes + "record-N" (8 bytes for N < 10): record 5
     * starts at 4 * 24 = 96; flip a byte of its payload. */
    off_t size = file_size(seg);
    int fd = open(seg, O_RDWR);
    TC_CHECK(fd >= 0 && pwrite(fd, "Z", 1, 96 + 16 + 2) == 1);
    close(fd);
    static struct collected c;
    memset(&c, 0, sizeof(c));
    wal *w = NULL;
    ts_error e = {0};
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == TS_ECORRUPT);
    TC_CHECK(w == NULL);
    char *want = ts_sprintf("wal %s: corrupt record at offset 96", seg);
    TC_CHECK(strstr(e.msg, want) != NULL);
    if (!strstr(e.msg, want))
        fprintf(stderr, "  message: %s\n", e.msg);
    free(want);
    TC_CHECK(file_size(seg) == size);   /* nothing truncated */

    /* a bad length in the middle is corruption too, not a torn tail */
    TC_CHECK(pwrite(fd = open(seg, O_RDWR), "\0\0\0\0", 4, 48) == 4);
    close(fd);
    TC_CHECK(wal_open(dir, 0, 1, collect, &c, &w, &e) == TS_ECORRUPT);
    TC_CHECK(strstr(e.msg, "offset 48") != NULL);
    free(seg);
    tdir_remove(dir);
}

/* ---- store: snapshot + replay vs straight replay ---- */

static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now += 1000;
}

static void encode_state(const ns_state *ns, ts_buf *b)
{
    b->len = 0;
    ns_encode(ns, b);
}

static void test_snapshot_equals_replay(void)
{
    char *dir = fresh_dir("snap");
    store *st = NULL;
    ts_error e = {0};
    fake_now = 1000000;
    store_opts o = { .data_dir = dir, .wal_fsync = 0, .snapshot_every = 37,
                     .clock_ns = fake_clock };
    TC_CHECK(store_open(&o, &st, &e) == 0);
    if (!st) {
        tdir_remove(dir);
        return;
    }
    /* The straight-replay reference: the same root time, then every logged
     * command applied in order. */
    ns_state *ref = ns_new(1000000 + 1000);
    int logged = 0;
    for (int i = 0; i < 2000; i++) {
        cmd c;
        cmd_result r;
        random_cmd(&c);
        if (store_submit(st, &c, &r, &e) == 0) {
            logged++;
            TC_CHECK(cmd_apply(ref, &c, &r, &e) == 0);
        }
        cmd_free(&c);
    }
    fprintf(stderr, "  %d of 2000 random commands applied\n", logged);
    TC_CHECK(logged > 300);
    store_stats ss;
    /* Snapshots are taken in the background: one is due every 37 records,
     * and a due one waits while another is being written.  Take a last one
     * now, then wait for nothing to be running. */
    TC_CHECK(store_snapshot(st, &e) == 0);
    store_get_stats(st, &ss);
    fprintf(stderr, "  %" PRIu64 " background snapshots for %d records\n",
            ss.snapshots_written, logged);
    TC_CHECK(ss.snapshots_written >= 2 && ss.snapshots_written <= (uint64_t)logged / 37 + 1);
    TC_CHECK(ss.last_index == (uint64_t)logged && ss.snapshot_index == (uint64_t)logged);
    ts_buf live = {0}, want = {0}, again = {0};
    encode_state(store_read_lock(st), &live);
    store_read_unlock(st);
    encode_state(ref, &want);
    TC_CHECK(live.len == want.len && memcmp(live.data, want.data, live.len) == 0);
    TC_CHECK(ns_check_invariants(ref, &e) == 0);
    store_close(st);
    st = NULL;

    /* Restart: newest snapshot + the log after it. */
    TC_CHECK(store_open(&o, &st, &e) == 0);
    if (st) {
        encode_state(store_read_lock(st), &again);
        store_read_unlock(st);
        TC_CHECK(again.len == want.len && memcmp(again.data, want.data, want.len) == 0);
        store_get_stats(st, &ss);
        TC_CHECK(ss.wal.replayed == (uint64_t)logged - ss.snapshot_index);
        TC_CHECK(ss.wal.replayed == 0);
        store_close(st);
    }
    /* Older segments and snapshots were deleted: the snapshot at the end
     * and the (empty) segment after it remain. */
    int snaps = 0, segs = 0;
    for (int i = 0; i <= logged + 1; i++) {
        char *p = ts_sprintf("%s/snap-%020d.snap", dir, i);
        snaps += access(p, F_OK) == 0;
        free(p);
        p = ts_sprintf("%s/wal-%020d.log", dir, i);
        segs += access(p, F_OK) == 0;
        free(p);
    }
    TC_CHECK(snaps == 1 && segs == 1);
    ts_buf_free(&live);
    ts_buf_free(&want);
    ts_buf_free(&again);
    ns_free(ref);
    tdir_remove(dir);
}

/* ---- group commit ---- */

struct worker {
    store *st;
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 50; i++) {
        cmd c = { .type = CMD_CREATE };
        cmd_result r;
        ts_error e = {0};
        c.u.create.parent = 1;
        c.u.create.name = ts_sprintf("w%d-%d", w->id, i);
        c.u.create.mode = 0644;
        if (store_submit(w->st, &c, &r, &e) != 0)
            w->failures++;
        cmd_free(&c);
    }
    return NULL;
}

static void test_group_commit(void)
{
    char *dir = fresh_dir("group");
    store *st = NULL;
    ts_error e = {0};
    store_opts o = { .data_dir = dir, .wal_fsync = 1 };
    TC_CHECK(store_open(&o, &st, &e) == 0);
    if (!st) {
        tdir_remove(dir);
        return;
    }
    pthread_t th[16];
    struct worker w[16];
    for (int i = 0; i < 16; i++) {
        w[i] = (struct worker){ st, i, 0 };
        TC_CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    TC_CHECK(failures == 0);
    store_stats ss;
    store_get_stats(st, &ss);
    TC_CHECK(ss.wal.records == 800);
    fprintf(stderr, "  group commit: 800 records in %" PRIu64 " fsyncs\n", ss.wal.flushes);
    TC_CHECK(ss.wal.flushes < 800);
    store_close(st);
    /* everything acknowledged is there after a restart */
    TC_CHECK(store_open(&o, &st, &e) == 0);
    if (st) {
        ns_stats ns;
        ns_get_stats(store_read_lock(st), &ns);
        store_read_unlock(st);
        TC_CHECK(ns.files == 800);
        store_close(st);
    }
    tdir_remove(dir);
}

static void test_bad_dirs(void)
{
    char *dir = fresh_dir("bad");
    char *file = ts_sprintf("%s/plain-file", dir);
    char *under = ts_sprintf("%s/sub", file);
    int fd = open(file, O_WRONLY | O_CREAT, 0644);
    close(fd);
    store *st = NULL;
    ts_error e = {0};
    store_opts o = { .data_dir = under, .wal_fsync = 1 };
    TC_CHECK(store_open(&o, &st, &e) == TS_EIO && st == NULL);
    TC_CHECK(strstr(e.msg, under) != NULL);
    /* two servers on one directory */
    store *a = NULL, *b = NULL;
    o.data_dir = dir;
    TC_CHECK(store_open(&o, &a, &e) == 0);
    TC_CHECK(store_open(&o, &b, &e) == TS_EIO && strstr(e.msg, "in use"));
    store_close(a);
    a = NULL;
    /* a corrupt newest snapshot with no older one: refuse, do not start empty */
    char *snap = ts_sprintf("%s/snap-%020d.snap", dir, 0);
    fd = open(snap, O_RDWR);
    TC_CHECK(fd >= 0 && pwrite(fd, "\xff\xff", 2, 20) == 2);
    close(fd);
    TC_CHECK(store_open(&o, &a, &e) == TS_ECORRUPT && a == NULL);
    free(snap);
    free(file);
    free(under);
    tdir_remove(dir);
}

int main(void)
{
    ts_log_init("test_wal", TS_LOG_ERROR);
    TC_RUN(test_append_replay);
    TC_RUN(test_torn_tail);
    TC_RUN(test_corrupt_middle);
    TC_RUN(test_preallocated_tail);
    TC_RUN(test_prealloc_fails);
    TC_RUN(test_snapshot_equals_replay);
    TC_RUN(test_group_commit);
    TC_RUN(test_bad_dirs);
    TC_DONE("test_wal");
}
