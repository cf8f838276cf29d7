/*
 * The binary codec: one small cursor API through which every durable record
 * (write-ahead log entries, snapshots, chunk footers) is encoded and decoded.
 * Little-endian fixed-width integers, length-prefixed byte strings.  Decoding
 * is bounds-checked: the first failure sets dec->err and every later get
 * returns zero values, so a decoder checks once at the end (ts_dec_ok).
 * Never memcpy a struct onto the wire.
 */
#ifndef TS_CODEC_H
#define TS_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "common/util.h"

/* Encoder over a growable ts_buf (appends; aborts on OOM). */
void ts_enc_u8(ts_buf *b, uint8_t v);
void ts_enc_u16(ts_buf *b, uint16_t v);
void ts_enc_u32(ts_buf *b, uint32_t v);
void ts_enc_u64(ts_buf *b, uint64_t v);
void ts_enc_i64(ts_buf *b, int64_t v);
/* u32 length, then the bytes. */
void ts_enc_bytes(ts_buf *b, const void *p, size_t n);
/* Like bytes; NULL is encoded as length 0xFFFFFFFF. */
void ts_enc_str(ts_buf *b, const char *s);
void ts_enc_raw(ts_buf *b, const void *p, size_t n);

typedef struct ts_dec {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err;        /* 0, or TS_EINVAL after the first out-of-bounds read */
} ts_dec;

void ts_dec_init(ts_dec *d, const void *p, size_t len);
uint8_t ts_dec_u8(ts_dec *d);
uint16_t ts_dec_u16(ts_dec *d);
uint32_t ts_dec_u32(ts_dec *d);
uint64_t ts_dec_u64(ts_dec *d);
int64_t ts_dec_i64(ts_dec *d);
/* Returns a pointer into the input (not a copy) and sets *n; NULL on error. */
const void *ts_dec_bytes(ts_dec *d, size_t *n);
/* Returns a malloc'd NUL-terminated copy (caller frees), NULL for an encoded
 * NULL or on error.  Strings containing NUL bytes are rejected. */
char *ts_dec_str(ts_dec *d);
/* Copies exactly n raw bytes into out. */
void ts_dec_raw(ts_dec *d, void *out, size_t n);
/* 1 when no error occurred. */
int ts_dec_ok(const ts_dec *d);
/* 1 when no error occurred and every byte was consumed. */
int ts_dec_done(const ts_dec *d);

#endif
