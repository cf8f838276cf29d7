/*
 * Wire form of Raft messages and the entry form of configurations, through
 * the one codec (common/codec.h).  Kept apart from raft.c so the core stays
 * free of anything but memory.
 *
 * Message: u8 version, u8 type, u8 flags, u8 reject, u64 from, to, term,
 * index, log_term, commit, hint, hint_term, ctx, u32 n_entries, entries
 * (u64 term, u64 index, u8 type, bytes data) and, for SNAP and SNAP_RESP,
 * the snapshot meta (u64 index, term, size, conf), u64 offset and (SNAP
 * only) bytes data.
 *
 * Configuration: u8 version, u32 n, then per member u64 id, u8 role,
 * str addr.
 */
#include "metadata/raft/raft.h"

#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/ts_error.h"
#include "common/util.h"

#define RAFT_CONF_VERSION 1
/* Bounds a decoder trusts before allocating. */
#define RAFT_MAX_WIRE_ENTRIES (1u << 20)

static void conf_enc(const raft_conf *c, ts_buf *b)
{
    ts_enc_u8(b, RAFT_CONF_VERSION);
    ts_enc_u32(b, c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        ts_enc_u64(b, c->m[i].id);
        ts_enc_u8(b, c->m[i].role);
        ts_enc_str(b, c->m[i].addr);
    }
}

static int conf_dec(ts_dec *d, raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    if (ts_dec_u8(d) != RAFT_CONF_VERSION)
        return TS_EPROTO;
    uint32_t n = ts_dec_u32(d);
    if (n > RAFT_MAX_MEMBERS)
        return TS_EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        c->m[i].id = ts_dec_u64(d);
        c->m[i].role = ts_dec_u8(d);
        size_t len = 0;
        const void *a = ts_dec_bytes(d, &len);
        if (!ts_dec_ok(d) || len >= RAFT_ADDR_MAX || c->m[i].id == 0 ||
            (c->m[i].role != RAFT_VOTER && c->m[i].role != RAFT_LEARNER))
            return TS_EPROTO;
        memcpy(c->m[i].addr, a, len);
        for (uint32_t j = 0; j < i; j++)
            if (c->m[j].id == c->m[i].id)
                return TS_EPROTO;
    }
    c->n = n;
    return ts_dec_ok(d) ? 0 : TS_EPROTO;
}

void raft_conf_encode(const raft_conf *c, ts_buf *b)
{
    conf_enc(c, b);
}

int raft_conf_decode(const void *p, size_t len, raft_conf *c)
{
    ts_dec d;
    ts_dec_init(&d, p, len);
    int rc = conf_dec(&d, c);
    if (rc == 0 && !ts_dec_done(&d))
        rc = TS_EPROTO;
    return rc;
}

void raft_msg_encode(const raft_msg *m, ts_buf *b)
{
    ts_enc_u8(b, RAFT_WIRE_VERSION);
    ts_enc_u8(b, m->type);
    ts_enc_u8(b, m->flags);
    ts_enc_u8(b, m->reject);
    ts_enc_u64(b, m->from);
    ts_enc_u64(b, m->to);
    ts_enc_u64(b, m->term);
    ts_enc_u64(b, m->index);
    ts_enc_u64(b, m->log_term);
    ts_enc_u64(b, m->commit);
    ts_enc_u64(b, m->hint);
    ts_enc_u64(b, m->hint_term);
    ts_enc_u64(b, m->ctx);
    ts_enc_u32(b, (uint32_t)m->n_entries);
    for (size_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        ts_enc_u64(b, e->term);
        ts_enc_u64(b, e->index);
        ts_enc_u8(b, e->type);
        ts_enc_bytes(b, e->data, e->len);
    }
    if (m->type == RAFT_MSG_SNAP || m->type == RAFT_MSG_SNAP_RESP) {
        ts_enc_u64(b, m->snap.index);
        ts_enc_u64(b, m->snap.term);
        ts_enc_u64(b, m->snap.size);
        conf_enc(&m->snap.conf, b);
        ts_enc_u64(b, m->offset);
        if (m->type == RAFT_MSG_SNAP)
            ts_enc_bytes(b, m->data, m->len);
    }
}

void raft_msg_release(raft_msg *m)
{
    for (size_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}

int raft_msg_decode(const void *p, size_t len, raft_msg *m)
{
    ts_dec d;
    memset(m, 0, sizeof(*m));
    ts_dec_init(&d, p, len);
    if (ts_dec_u8(&d) != RAFT_WIRE_VERSION)
        return TS_EPROTO;
    m->type = ts_dec_u8(&d);
    m->flags = ts_dec_u8(&d);
    m->reject = ts_dec_u8(&d);
    m->from = ts_dec_u64(&d);
    m->to = ts_dec_u64(&d);
    m->term = ts_dec_u64(&d);
    m->index = ts_dec_u64(&d);
    m->log_term = ts_dec_u64(&d);
    m->commit = ts_dec_u64(&d);
    m->hint = ts_dec_u64(&d);
    m->hint_term = ts_dec_u64(&d);
    m->ctx = ts_dec_u64(&d);
    uint32_t n = ts_dec_u32(&d);
    /* Each entry needs at least 21 bytes: bound n by what is left before
     * allocating, so a hostile count cannot make us allocate gigabytes. */
    if (!ts_dec_ok(&d) || m->type == 0 || m->type >= RAFT_MSG_TYPE_END_ ||
        n > RAFT_MAX_WIRE_ENTRIES || (size_t)n * 21 > len - d.pos)
        return TS_EPROTO;
    if (n > 0) {
        m->entries = ts_calloc(n, sizeof(raft_entry));
        for (uint32_t i = 0; i < n; i++) {
            raft_entry *e = &m->entries[i];
            e->term = ts_dec_u64(&d);
            e->index = ts_dec_u64(&d);
            e->type = ts_dec_u8(&d);
            size_t dl = 0;
            const void *dp = ts_dec_bytes(&d, &dl);
            if (!ts_dec_ok(&d))
                goto fail_release_entries;
            m->n_entries = i + 1;
            e->len = dl;
            if (dl > 0) {
                e->data = ts_malloc(dl);
                memcpy(e->data, dp, dl);
            }
        }
    }
    if (m->type == RAFT_MSG_SNAP || m->type == RAFT_MSG_SNAP_RESP) {
        m->snap.index = ts_dec_u64(&d);
        m->snap.term = ts_dec_u64(&d);
        m->snap.size = ts_dec_u64(&d);
        if (conf_dec(&d, &m->snap.conf) != 0)
            goto fail_release_entries;
        m->offset = ts_dec_u64(&d);
        if (m->type == RAFT_MSG_SNAP) {
            m->data = ts_dec_bytes(&d, &m->len);
            if (m->len == 0)
                m->data = NULL;
        }
    }
    if (!ts_dec_done(&d))
        goto fail_release_entries;
    return 0;

fail_release_entries:
    raft_msg_release(m);
    return TS_EPROTO;
}
