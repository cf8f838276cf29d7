/*
 * Durable state of one Raft server (see raft_storage.h for the files and the
 * crash-safety argument).  The log is metadata/wal.c reused as is: its
 * segments, CRCs, torn-tail repair and group commit; this file only adds
 * the entry encoding, the hard state and the snapshot meta.
 */
#include "metadata/raft/raft_storage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/checksum.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/wal.h"

#define HS_MAGIC 0x48525354u     /* "TSRH" little-endian */
#define SM_MAGIC 0x4D525354u     /* "TSRM" */
#define FORMAT_VERSION 1
#define SEGMENT_BYTES (64u << 20)

struct raft_storage {
    char *dir;
    char *hs_path, *snap_path;
    wal *log;
    uint64_t term, vote;
    raft_snapshot_meta snap;
    raft_entry *loaded;
    size_t n_loaded, cap_loaded;
    raft_storage_stats st;
};

/* ---- small atomic files -------------------------------------------------- */

/* Reads path and checks magic, version and the trailing CRC; *d is left
 * positioned after the version.  TS_ENOENT, TS_EIO, TS_ECORRUPT. */
static int read_checked(const char *path, uint32_t magic, char **buf, ts_dec *d, ts_error *err)
{
    size_t len = 0;
    int rc = ts_read_file(path, buf, &len, err);
    if (rc)
        return rc;
    if (len < 9) {
        rc = ts_fail(err, TS_ECORRUPT, "%s: corrupt at offset 0: %zu bytes is too short",
                     path, len);
        goto fail_free_buf;
    }
    ts_dec_init(d, *buf, len - 4);
    ts_dec tail;
    ts_dec_init(&tail, *buf + len - 4, 4);
    if (ts_crc32c(0, *buf, len - 4) != ts_dec_u32(&tail)) {
        rc = ts_fail(err, TS_ECORRUPT, "%s: corrupt at offset %zu: checksum mismatch", path,
                     len - 4);
        goto fail_free_buf;
    }
    if (ts_dec_u32(d) != magic || ts_dec_u8(d) != FORMAT_VERSION) {
        rc = ts_fail(err, TS_ECORRUPT, "%s: corrupt at offset 0: bad magic or version", path);
        goto fail_free_buf;
    }
    return 0;
fail_free_buf:
    free(*buf);
    *buf = NULL;
    return rc;
}

static int write_checked(const char *path, ts_buf *b, ts_error *err)
{
    ts_enc_u32(b, ts_crc32c(0, b->data, b->len));
    int rc = ts_write_file_atomic(path, b->data, b->len, err);
    ts_buf_free(b);
    return rc;
}

static int save_hard_state(raft_storage *s, uint64_t term, uint64_t vote, ts_error *err)
{
    ts_buf b = {0};
    ts_enc_u32(&b, HS_MAGIC);
    ts_enc_u8(&b, FORMAT_VERSION);
    ts_enc_u64(&b, term);
    ts_enc_u64(&b, vote);
    int rc = write_checked(s->hs_path, &b, err);
    if (rc == 0) {
        s->term = term;
        s->vote = vote;
        s->st.hard_state_writes++;
    }
    return rc;
}

static int save_snap_meta(raft_storage *s, const raft_snapshot_meta *m, int reset_pending,
                          ts_error *err)
{
    ts_buf b = {0};
    ts_enc_u32(&b, SM_MAGIC);
    ts_enc_u8(&b, FORMAT_VERSION);
    ts_enc_u8(&b, (uint8_t)reset_pending);
    ts_enc_u64(&b, m->index);
    ts_enc_u64(&b, m->term);
    ts_enc_u64(&b, m->size);
    ts_buf cb = {0};
    raft_conf_encode(&m->conf, &cb);
    ts_enc_bytes(&b, cb.data, cb.len);
    ts_buf_free(&cb);
    int rc = write_checked(s->snap_path, &b, err);
    if (rc == 0)
        s->snap = *m;
    return rc;
}

static int load_state(raft_storage *s, int *reset_pending, ts_error *err)
{
    char *buf = NULL;
    ts_dec d;
    int rc = read_checked(s->hs_path, HS_MAGIC, &buf, &d, err);
    if (rc == 0) {
        s->term = ts_dec_u64(&d);
        s->vote = ts_dec_u64(&d);
        if (!ts_dec_done(&d))
            rc = ts_fail(err, TS_ECORRUPT, "%s: corrupt at offset %zu: bad length", s->hs_path,
                         d.pos);
        free(buf);
    } else if (rc == TS_ENOENT) {
        rc = 0;     /* never voted */
    }
    if (rc)
        return rc;
    rc = read_checked(s->snap_path, SM_MAGIC, &buf, &d, err);
    if (rc == TS_ENOENT)
        return 0;   /* no snapshot yet */
    if (rc)
        return rc;
    *reset_pending = ts_dec_u8(&d);
    s->snap.index = ts_dec_u64(&d);
    s->snap.term = ts_dec_u64(&d);
    s->snap.size = ts_dec_u64(&d);
    size_t cl = 0;
    const void *cp = ts_dec_bytes(&d, &cl);
    if (!ts_dec_done(&d) || raft_conf_decode(cp, cl, &s->snap.conf) != 0)
        rc = ts_fail(err, TS_ECORRUPT, "%s: corrupt at offset %zu: bad snapshot meta",
                     s->snap_path, d.pos);
    free(buf);
    return rc;
}

/* ---- the log ------------------------------------------------------------- */

static void encode_entry(const raft_entry *e, ts_buf *b)
{
    ts_enc_u64(b, e->term);
    ts_enc_u8(b, e->type);
    ts_enc_bytes(b, e->data, e->len);
}

static int replay_entry(void *arg, uint64_t index, const void *payload, size_t len,
                        ts_error *err)
{
    raft_storage *s = arg;
    ts_dec d;
    ts_dec_init(&d, payload, len);
    raft_entry e = {0};
    e.index = index;
    e.term = ts_dec_u64(&d);
    e.type = ts_dec_u8(&d);
    const void *data = ts_dec_bytes(&d, &e.len);
    if (!ts_dec_done(&d) || e.type < RAFT_ENTRY_NORMAL || e.type > RAFT_ENTRY_NOOP)
        return ts_fail(err, TS_ECORRUPT, "raft entry %" PRIu64 " does not decode", index);
    if (e.len > 0) {
        e.data = ts_malloc(e.len);
        memcpy(e.data, data, e.len);
    }
    if (s->n_loaded == s->cap_loaded) {
        s->cap_loaded = s->cap_loaded ? s->cap_loaded * 2 : 256;
        s->loaded = ts_realloc(s->loaded, s->cap_loaded * sizeof(raft_entry));
    }
    s->loaded[s->n_loaded++] = e;
    return 0;
}

void raft_storage_loaded_free(raft_storage *s)
{
    for (size_t i = 0; i < s->n_loaded; i++)
        free(s->loaded[i].data);
    free(s->loaded);
    s->loaded = NULL;
    s->n_loaded = s->cap_loaded = 0;
}

int raft_storage_open(const char *dir, int fsync_enabled, raft_storage **out, raft_restore *rs,
                      ts_error *err)
{
    raft_storage *s = ts_calloc(1, sizeof(*s));
    int reset_pending = 0;
    s->dir = ts_strdup(dir);
    s->hs_path = ts_sprintf("%s/raft-state", dir);
    s->snap_path = ts_sprintf("%s/raft-snap", dir);
    int rc = ts_mkdir_p(dir, err);
    if (rc == 0)
        rc = load_state(s, &reset_pending, err);
    if (rc == 0)
        rc = wal_open(dir, s->snap.index, fsync_enabled, replay_entry, s, &s->log, err);
    if (rc != 0)
        goto fail_close;
    if (reset_pending) {
        /* A crash interrupted installing a received snapshot: finish it. */
        TS_WARN("raft %s: finishing the log reset of snapshot %" PRIu64, dir, s->snap.index);
        raft_storage_loaded_free(s);
        if ((rc = wal_reset(s->log, s->snap.index, err)) != 0 ||
            (rc = save_snap_meta(s, &s->snap, 0, err)) != 0)
            goto fail_close;
    }
    memset(rs, 0, sizeof(*rs));
    rs->term = s->term;
    rs->vote = s->vote;
    rs->snapshot = s->snap.index > 0 ? &s->snap : NULL;
    rs->entries = s->loaded;
    rs->n_entries = s->n_loaded;
    *out = s;
    return 0;
fail_close:
    raft_storage_close(s);
    return rc;
}

int raft_storage_save(raft_storage *s, const raft_ready *rd, ts_error *err)
{
    int rc;
    if (rd->snapshot != NULL) {
        if ((rc = save_snap_meta(s, rd->snapshot, 1, err)) != 0 ||
            (rc = wal_reset(s->log, rd->snapshot->index, err)) != 0 ||
            (rc = save_snap_meta(s, rd->snapshot, 0, err)) != 0)
            return rc;
    }
    if (rd->n_entries > 0) {
        uint64_t from = rd->entries[0].index;
        if (from <= wal_last_index(s->log) && (rc = wal_truncate(s->log, from, err)) != 0)
            return rc;
        if (from != wal_last_index(s->log) + 1)
            return ts_fail(err, TS_EIO, "raft %s: entries from %" PRIu64 " do not continue the "
                           "log ending at %" PRIu64, s->dir, from, wal_last_index(s->log));
        if (wal_segment_bytes(s->log) > SEGMENT_BYTES && (rc = wal_roll(s->log, err)) != 0)
            return rc;
        ts_buf b = {0};
        for (size_t i = 0; i < rd->n_entries; i++) {
            b.len = 0;
            encode_entry(&rd->entries[i], &b);
            wal_append(s->log, b.data, b.len);
        }
        ts_buf_free(&b);
        wal_sync(s->log);   /* one fsync for the whole batch */
        s->st.entry_syncs++;
        s->st.entries_written += rd->n_entries;
    }
    if (rd->hard_state_changed && (rd->term != s->term || rd->vote != s->vote))
        return save_hard_state(s, rd->term, rd->vote, err);
    return 0;
}

int raft_storage_snapshot_taken(raft_storage *s, const raft_snapshot_meta *meta, ts_error *err)
{
    int rc = save_snap_meta(s, meta, 0, err);
    if (rc == 0)
        rc = wal_compact(s->log, meta->index, err);
    return rc;
}

void raft_storage_get_stats(raft_storage *s, raft_storage_stats *st)
{
    *st = s->st;
    st->last_index = wal_last_index(s->log);
    st->first_index = s->snap.index + 1;
    st->snapshot_index = s->snap.index;
}

void raft_storage_close(raft_storage *s)
{
    if (s == NULL)
        return;
    wal_close(s->log);
    raft_storage_loaded_free(s);
    free(s->dir);
    free(s->hs_path);
    free(s->snap_path);
    free(s);
}
