/*
 * Checksums: CRC32C (Castagnoli) for 64 KiB blocks of chunk data and for log
 * records, SHA-256 (OpenSSL EVP) for whole chunks.  CRC32C uses the SSE4.2
 * instruction when the CPU has it and a slicing-by-8 table otherwise; both
 * give identical results (unit-tested against the RFC 3720 vectors).
 */
#ifndef TS_CHECKSUM_H
#define TS_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define TS_BLOCK_SIZE (64 * 1024)      /* bytes covered by one block CRC */
#define TS_SHA256_LEN 32

/* Extends crc (start with 0) over buf.  crc32c("123456789") == 0xE3069283. */
uint32_t ts_crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable table implementation, exposed so tests can compare the two. */
uint32_t ts_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Incremental SHA-256.  The context is opaque and heap-allocated:
 * ts_sha256_new aborts on OOM; ts_sha256_final writes 32 bytes and frees ctx. */
typedef struct ts_sha256 ts_sha256;
ts_sha256 *ts_sha256_new(void);
void ts_sha256_update(ts_sha256 *ctx, const void *buf, size_t len);
void ts_sha256_final(ts_sha256 *ctx, uint8_t out[TS_SHA256_LEN]);
/* Frees a context without producing a digest (error paths). */
void ts_sha256_free(ts_sha256 *ctx);
void ts_sha256_once(const void *buf, size_t len, uint8_t out[TS_SHA256_LEN]);

#endif
