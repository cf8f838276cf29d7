/*
 * The state machine value and its one apply function (sm.h).
 */
#include "metadata/sm.h"

#include <string.h>

#define IMAGE_MAGIC 0x49525354u    /* "TSRI" */
#define IMAGE_VERSION 1

void sm_init_empty(sm_state *st)
{
    st->ns = ns_new(0);
    st->sessions = session_table_new();
    st->last_now = 0;
}

void sm_clear(sm_state *st)
{
    ns_free(st->ns);
    session_table_free(st->sessions);
    memset(st, 0, sizeof(*st));
}

int sm_apply(sm_state *st, cmd *c, int mode, cmd_result *res, int *applied, ts_error *err)
{
    int rc;
    if (c->now_ns < st->last_now)
        c->now_ns = st->last_now;
    st->last_now = c->now_ns;
    memset(res, 0, sizeof(*res));
    *applied = 0;
    if (c->client && mode == SM_DEDUP) {
        int seen = session_check(st->sessions, c, &rc, res, err);
        if (seen < 0)
            return seen;
        if (seen == 1)
            return rc;
    }
    *applied = 1;
    rc = cmd_apply(st->ns, c, res, err);
    if (c->client)
        session_record(st->sessions, c, rc, res, err);
    return rc;
}

void sm_image_encode(const sm_state *st, ts_buf *out)
{
    ts_buf nsb = {0};
    ts_enc_u32(out, IMAGE_MAGIC);
    ts_enc_u8(out, IMAGE_VERSION);
    ts_enc_i64(out, st->last_now);
    ns_encode(st->ns, &nsb);
    ts_enc_bytes(out, nsb.data, nsb.len);
    ts_buf_free(&nsb);
    session_encode(st->sessions, out);
}

int sm_image_decode(const void *image, size_t len, sm_state *out, ts_error *err)
{
    ts_dec d;
    size_t nslen = 0;
    memset(out, 0, sizeof(*out));
    ts_dec_init(&d, image, len);
    uint32_t magic = ts_dec_u32(&d);
    uint8_t version = ts_dec_u8(&d);
    int64_t last_now = ts_dec_i64(&d);
    const void *nsp = ts_dec_bytes(&d, &nslen);
    if (!ts_dec_ok(&d) || magic != IMAGE_MAGIC)
        return ts_fail(err, TS_ECORRUPT, "state image: bad header");
    if (version != IMAGE_VERSION)
        return ts_fail(err, TS_ECORRUPT, "state image: unknown version %u", version);
    if (ns_decode(nsp, nslen, &out->ns, err) != 0 ||
        session_decode(&d, &out->sessions, err) != 0) {
        sm_clear(out);
        return TS_ECORRUPT;
    }
    if (!ts_dec_done(&d)) {
        sm_clear(out);
        return ts_fail(err, TS_ECORRUPT, "state image: %zu trailing bytes", len - d.pos);
    }
    out->last_now = last_now;
    return 0;
}
