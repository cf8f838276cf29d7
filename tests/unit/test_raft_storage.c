/*
 * Unit tests of the Raft server's durable state
 * (metadata/raft/raft_storage.h, and the wal.c additions it uses): hard
 * state and entries survive a reopen; a conflicting suffix is truncated; a
 * torn tail is dropped while corruption elsewhere refuses to open naming
 * file and offset; an installed snapshot replaces the log, also when a
 * crash interrupted the install; compaction after a local snapshot; and a
 * single-server core driven through the storage recovers its state after a
 * "crash" (close without anything else).  Each test uses a fresh directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/checksum.h"
#include "common/codec.h"
#include "common/util.h"
#include "metadata/raft/raft.h"
#include "metadata/raft/raft_storage.h"
#include "metadata/wal.h"
#include "tests/unit/tcheck.h"
#include "tests/unit/tdir.h"

static raft_entry ent(uint64_t index, uint64_t term, const char *data)
{
    raft_entry e = {.term = term, .index = index, .type = RAFT_ENTRY_NORMAL,
                    .len = strlen(data), .data = (uint8_t *)data};
    return e;
}

static int save_entries(raft_storage *s, const raft_entry *e, size_t n, uint64_t term,
                        uint64_t vote)
{
    raft_ready rd = {0};
    rd.entries = e;
    rd.n_entries = n;
    rd.hard_state_changed = 1;
    rd.term = term;
    rd.vote = vote;
    ts_error err;
    int rc = raft_storage_save(s, &rd, &err);
    if (rc)
        fprintf(stderr, "  save: %s\n", err.msg);
    return rc;
}

static void test_roundtrip_and_truncate(void)
{
    char *dir = tdir_fresh("raftst", "rt");
    raft_storage *s = NULL;
    raft_restore rs;
    ts_error err;
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    TC_CHECK_EQ_U64(rs.n_entries, 0);
    TC_CHECK_EQ_U64(rs.term, 0);
    TC_CHECK(rs.snapshot == NULL);
    raft_entry e[5] = {ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 2, "c"), ent(4, 2, "d"),
                       ent(5, 2, "e")};
    TC_CHECK(save_entries(s, e, 5, 2, 7) == 0);
    /* A new leader replaces 4..5. */
    raft_entry f[2] = {ent(4, 3, "D"), ent(5, 3, "E")};
    TC_CHECK(save_entries(s, f, 2, 3, 0) == 0);
    raft_storage_stats st;
    raft_storage_get_stats(s, &st);
    TC_CHECK_EQ_U64(st.entry_syncs, 2);
    TC_CHECK_EQ_U64(st.hard_state_writes, 2);
    raft_storage_close(s);

    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    TC_CHECK_EQ_U64(rs.term, 3);
    TC_CHECK_EQ_U64(rs.vote, 0);
    TC_CHECK_EQ_U64(rs.n_entries, 5);
    if (rs.n_entries == 5) {
        TC_CHECK_EQ_U64(rs.entries[2].term, 2);
        TC_CHECK_EQ_U64(rs.entries[3].term, 3);
        TC_CHECK(rs.entries[4].len == 1 && rs.entries[4].data[0] == 'E');
    }
    raft_storage_close(s);
    tdir_remove(dir);
}

static char *segment_of(const char *dir)
{
    return ts_sprintf("%s/wal-%020d.log", dir, 1);
}

static void test_torn_tail_and_corruption(void)
{
    char *dir = tdir_fresh("raftst", "torn");
    raft_storage *s = NULL;
    raft_restore rs;
    ts_error err;
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    raft_entry e[3] = {ent(1, 1, "one"), ent(2, 1, "two"), ent(3, 1, "three")};
    TC_CHECK(save_entries(s, e, 3, 1, 1) == 0);
    raft_storage_close(s);
    char *seg = segment_of(dir);
    /* A half-written record at the end: dropped. */
    int fd = open(seg, O_WRONLY | O_APPEND);
    TC_CHECK(fd >= 0);
    TC_CHECK(write(fd, "\x20\0\0\0\x01\x02", 6) == 6);
    close(fd);
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    TC_CHECK_EQ_U64(rs.n_entries, 3);
    raft_storage_close(s);
    /* A flipped byte in the first record: refuse, naming file and offset. */
    fd = open(seg, O_RDWR);
    TC_CHECK(fd >= 0);
    char c;
    TC_CHECK(pread(fd, &c, 1, WAL_HEADER_LEN + 2) == 1);
    c ^= 0x40;
    TC_CHECK(pwrite(fd, &c, 1, WAL_HEADER_LEN + 2) == 1);
    close(fd);
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == TS_ECORRUPT);
    TC_CHECK(strstr(err.msg, seg) != NULL);
    TC_CHECK(strstr(err.msg, "offset 0") != NULL);
    /* A damaged hard state is reported too. */
    char *hs = ts_sprintf("%s/raft-state", dir);
    TC_CHECK(ts_write_file_atomic(hs, "garbage-garbage-garbage", 23, &err) == 0);
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == TS_ECORRUPT);
    TC_CHECK(strstr(err.msg, "raft-state") != NULL);
    free(hs);
    free(seg);
    tdir_remove(dir);
}

static raft_snapshot_meta meta_at(uint64_t index, uint64_t term)
{
    raft_snapshot_meta m;
    memset(&m, 0, sizeof(m));
    m.index = index;
    m.term = term;
    m.size = 1234;
    m.conf.n = 1;
    m.conf.m[0].id = 1;
    m.conf.m[0].role = RAFT_VOTER;
    strcpy(m.conf.m[0].addr, "127.0.0.1:7001");
    return m;
}

static void test_snapshot_install_and_compaction(void)
{
    char *dir = tdir_fresh("raftst", "snap");
    raft_storage *s = NULL;
    raft_restore rs;
    ts_error err;
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    raft_entry e[3] = {ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")};
    TC_CHECK(save_entries(s, e, 3, 1, 1) == 0);
    /* Compaction after a local snapshot at 2. */
    raft_snapshot_meta m2 = meta_at(2, 1);
    TC_CHECK(raft_storage_snapshot_taken(s, &m2, &err) == 0);
    raft_storage_close(s);
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    TC_CHECK(rs.snapshot != NULL && rs.snapshot->index == 2);
    TC_CHECK_EQ_U64(rs.n_entries, 1);
    TC_CHECK(rs.n_entries == 1 && rs.entries[0].index == 3);
    /* A snapshot from the leader at 10 (term 4) replaces the log. */
    raft_snapshot_meta m10 = meta_at(10, 4);
    raft_ready rd = {0};
    rd.snapshot = &m10;
    raft_entry after[1] = {ent(11, 4, "x")};
    rd.entries = after;
    rd.n_entries = 1;
    rd.hard_state_changed = 1;
    rd.term = 4;
    TC_CHECK(raft_storage_save(s, &rd, &err) == 0);
    raft_storage_close(s);
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    TC_CHECK(rs.snapshot != NULL && rs.snapshot->index == 10 && rs.snapshot->term == 4);
    TC_CHECK(rs.snapshot != NULL && strcmp(rs.snapshot->conf.m[0].addr, "127.0.0.1:7001") == 0);
    TC_CHECK_EQ_U64(rs.n_entries, 1);
    TC_CHECK(rs.n_entries == 1 && rs.entries[0].index == 11);
    TC_CHECK_EQ_U64(rs.term, 4);
    raft_storage_close(s);
    tdir_remove(dir);
}

/* A crash between "meta written with reset pending" and the log reset. */
static void test_interrupted_install_is_finished(void)
{
    char *dir = tdir_fresh("raftst", "reset");
    raft_storage *s = NULL;
    raft_restore rs;
    ts_error err;
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    raft_entry e[3] = {ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")};
    TC_CHECK(save_entries(s, e, 3, 1, 1) == 0);
    raft_storage_close(s);
    /* Write the meta by hand as the first step of an install would. */
    raft_snapshot_meta m = meta_at(2, 5);
    ts_buf b = {0};
    ts_enc_u32(&b, 0x4D525354u);
    ts_enc_u8(&b, 1);
    ts_enc_u8(&b, 1);       /* reset pending */
    ts_enc_u64(&b, m.index);
    ts_enc_u64(&b, m.term);
    ts_enc_u64(&b, m.size);
    ts_buf cb = {0};
    raft_conf_encode(&m.conf, &cb);
    ts_enc_bytes(&b, cb.data, cb.len);
    ts_enc_u32(&b, ts_crc32c(0, b.data, b.len));
    char *path = ts_sprintf("%s/raft-snap", dir);
    TC_CHECK(ts_write_file_atomic(path, b.data, b.len, &err) == 0);
    /* Entry 3 (term 1) belongs to a history the snapshot (term 5 at 2)
     * does not continue: it must not come back. */
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    TC_CHECK_EQ_U64(rs.n_entries, 0);
    TC_CHECK(rs.snapshot != NULL && rs.snapshot->index == 2);
    raft_storage_close(s);
    TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
    TC_CHECK_EQ_U64(rs.n_entries, 0);
    raft_storage_close(s);
    free(path);
    ts_buf_free(&b);
    ts_buf_free(&cb);
    tdir_remove(dir);
}

struct seen { uint64_t first, last; int n; };

static int note(void *arg, uint64_t index, const void *p, size_t len, ts_error *err)
{
    struct seen *sn = arg;
    if (sn->n++ == 0)
        sn->first = index;
    sn->last = index;
    return 0;
}

/* Segments: rolled by size, compacted below a snapshot, truncated across
 * segment boundaries (wal.c). */
static void test_segments_compact_truncate(void)
{
    char *dir = tdir_fresh("raftst", "seg");
    ts_error err;
    wal *w = NULL;
    struct seen sn = {0};
    TC_CHECK(ts_mkdir_p(dir, &err) == 0);
    TC_CHECK(wal_open(dir, 0, 1, note, &sn, &w, &err) == 0);
    for (int i = 1; i <= 8; i++) {
        wal_append(w, "record", 6);
        if (i == 3 || i == 6)
            TC_CHECK(wal_roll(w, &err) == 0);
    }
    wal_sync(w);
    char *s1 = ts_sprintf("%s/wal-%020d.log", dir, 1);
    char *s4 = ts_sprintf("%s/wal-%020d.log", dir, 4);
    char *s7 = ts_sprintf("%s/wal-%020d.log", dir, 7);
    TC_CHECK(access(s1, F_OK) == 0 && access(s4, F_OK) == 0 && access(s7, F_OK) == 0);
    TC_CHECK(wal_compact(w, 4, &err) == 0);        /* [1,4) goes, [4,7) holds 5 */
    TC_CHECK(access(s1, F_OK) != 0 && access(s4, F_OK) == 0);
    TC_CHECK(wal_truncate(w, 5, &err) == 0);       /* cuts [4,7) at 5, drops [7,..) */
    TC_CHECK(access(s7, F_OK) != 0);
    TC_CHECK_EQ_U64(wal_last_index(w), 4);
    wal_append(w, "again", 5);
    wal_close(w);
    TC_CHECK(wal_open(dir, 3, 1, note, &sn, &w, &err) == 0);
    TC_CHECK_EQ_U64(sn.first, 4);
    TC_CHECK_EQ_U64(sn.last, 5);
    wal_close(w);
    free(s1);
    free(s4);
    free(s7);
    tdir_remove(dir);
}

/* A one-server group through the storage: what was committed before a
 * crash is there after it. */
static void test_core_recovers_through_storage(void)
{
    char *dir = tdir_fresh("raftst", "core");
    raft_conf c = {0};
    c.n = 1;
    c.m[0].id = 1;
    c.m[0].role = RAFT_VOTER;
    strcpy(c.m[0].addr, "127.0.0.1:7001");
    raft_config cfg = {.id = 1, .election_ticks = 10, .heartbeat_ticks = 2, .seed = 1};
    uint64_t applied = 0, term_before = 0;
    for (int round = 0; round < 2; round++) {
        raft_storage *s = NULL;
        raft_restore rs;
        ts_error err;
        TC_CHECK(raft_storage_open(dir, 1, &s, &rs, &err) == 0);
        if (rs.n_entries == 0 && rs.snapshot == NULL)
            rs.bootstrap = &c;
        raft *r = NULL;
        TC_CHECK(raft_new(&cfg, &rs, &r) == 0);
        raft_storage_loaded_free(s);
        if (r == NULL) {
            raft_storage_close(s);
            break;
        }
        if (round == 1)
            TC_CHECK_EQ_U64(raft_last_index(r), 12);
        raft_campaign(r);
        uint64_t idx, term;
        for (int i = 0; i < 10 && round == 0; i++)
            TC_CHECK(raft_propose(r, "cmd", 3, &idx, &term) == 0);
        while (raft_has_ready(r)) {
            raft_ready rd;
            raft_get_ready(r, &rd);
            TC_CHECK(raft_storage_save(s, &rd, &err) == 0);
            for (size_t i = 0; i < rd.n_committed; i++)
                applied = rd.committed[i].index;
            raft_advance(r, &rd);
        }
        if (round == 0) {
            TC_CHECK_EQ_U64(applied, 12);   /* conf, no-op, 10 commands */
            term_before = raft_term(r);
        } else {
            TC_CHECK(raft_term(r) > term_before);
            TC_CHECK_EQ_U64(applied, 13);   /* all again, plus the new no-op */
        }
        applied = 0;
        raft_free(r);
        raft_storage_close(s);
    }
    tdir_remove(dir);
}

int main(void)
{
    TC_RUN(test_roundtrip_and_truncate);
    TC_RUN(test_torn_tail_and_corruption);
    TC_RUN(test_snapshot_install_and_compaction);
    TC_RUN(test_interrupted_install_is_finished);
    TC_RUN(test_segments_compact_truncate);
    TC_RUN(test_core_recovers_through_storage);
    TC_DONE("test_raft_storage");
}
