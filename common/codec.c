/*
 * The binary codec (common/codec.h): little-endian fixed-width integers and
 * u32-length-prefixed byte strings, written byte by byte so the encoding does
 * not depend on the host's endianness or struct layout.  Decoding is sticky on
 * error: after the first short read every getter returns zero values.
 */
#include "common/codec.h"

#include <string.h>

#include "common/log.h"
#include "common/ts_error.h"

#define STR_NULL_LEN 0xFFFFFFFFu

/* ---- encoder ------------------------------------------------------------- */

static void enc_le(ts_buf *b, uint64_t v, int width)
{
    uint8_t tmp[8];
    for (int i = 0; i < width; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    ts_buf_append(b, tmp, (size_t)width);
}

void ts_enc_u8(ts_buf *b, uint8_t v) { enc_le(b, v, 1); }
void ts_enc_u16(ts_buf *b, uint16_t v) { enc_le(b, v, 2); }
void ts_enc_u32(ts_buf *b, uint32_t v) { enc_le(b, v, 4); }
void ts_enc_u64(ts_buf *b, uint64_t v) { enc_le(b, v, 8); }
void ts_enc_i64(ts_buf *b, int64_t v) { enc_le(b, (uint64_t)v, 8); }

void ts_enc_bytes(ts_buf *b, const void *p, size_t n)
{
    /* 0xFFFFFFFF is reserved for a NULL string, so byte strings stop one short. */
    if (n >= STR_NULL_LEN)
        ts_die("ts_enc_bytes: %zu bytes do not fit a u32 length", n);
    ts_enc_u32(b, (uint32_t)n);
    ts_buf_append(b, p, n);
}

void ts_enc_str(ts_buf *b, const char *s)
{
    if (s == NULL) {
        ts_enc_u32(b, STR_NULL_LEN);
        return;
    }
    ts_enc_bytes(b, s, strlen(s));
}

void ts_enc_raw(ts_buf *b, const void *p, size_t n)
{
    ts_buf_append(b, p, n);
}

/* ---- decoder ------------------------------------------------------------- */

void ts_dec_init(ts_dec *d, const void *p, size_t len)
{
    d->p = p;
    d->len = len;
    d->pos = 0;
    d->err = 0;
}

/* Returns a pointer to the next n bytes and advances, or NULL (setting err). */
static const uint8_t *dec_take(ts_dec *d, size_t n)
{
    if (d->err != 0)
        return NULL;
    if (n > d->len - d->pos) {
        d->err = TS_EINVAL;
        return NULL;
    }
    if (d->p == NULL)
        return (const uint8_t *)"";    /* n == 0 on an empty input */
    const uint8_t *q = d->p + d->pos;
    d->pos += n;
    return q;
}

static uint64_t dec_le(ts_dec *d, int width)
{
    const uint8_t *q = dec_take(d, (size_t)width);
    uint64_t v = 0;
    if (q == NULL)
        return 0;
    for (int i = width - 1; i >= 0; i--)
        v = (v << 8) | q[i];
    return v;
}

uint8_t ts_dec_u8(ts_dec *d) { return (uint8_t)dec_le(d, 1); }
uint16_t ts_dec_u16(ts_dec *d) { return (uint16_t)dec_le(d, 2); }
uint32_t ts_dec_u32(ts_dec *d) { return (uint32_t)dec_le(d, 4); }
uint64_t ts_dec_u64(ts_dec *d) { return dec_le(d, 8); }
int64_t ts_dec_i64(ts_dec *d) { return (int64_t)dec_le(d, 8); }

const void *ts_dec_bytes(ts_dec *d, size_t *n)
{
    uint32_t len = ts_dec_u32(d);
    const uint8_t *q;

    *n = 0;
    if (d->err != 0)
        return NULL;
    if (len == STR_NULL_LEN) {
        /* A NULL string where bytes were expected is malformed input. */
        d->err = TS_EINVAL;
        return NULL;
    }
    q = dec_take(d, len);
    if (q == NULL)
        return NULL;
    *n = len;
    return q;
}

char *ts_dec_str(ts_dec *d)
{
    uint32_t len = ts_dec_u32(d);
    const uint8_t *q;

    if (d->err != 0 || len == STR_NULL_LEN)
        return NULL;
    q = dec_take(d, len);
    if (q == NULL)
        return NULL;
    if (memchr(q, '\0', len) != NULL) {
        d->err = TS_EINVAL;
        return NULL;
    }
    return ts_strndup((const char *)q, len);
}

void ts_dec_raw(ts_dec *d, void *out, size_t n)
{
    const uint8_t *q = dec_take(d, n);
    if (q == NULL) {
        memset(out, 0, n);
        return;
    }
    memcpy(out, q, n);
}

int ts_dec_ok(const ts_dec *d)
{
    return d->err == 0;
}

int ts_dec_done(const ts_dec *d)
{
    return d->err == 0 && d->pos == d->len;
}
