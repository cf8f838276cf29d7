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
/* The CRC32C of A followed by B from the CRC32Cs of A and B and B's length:
 * lets a whole chunk's CRC come from its block CRCs without another pass. */
uint32_t ts_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
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

/* The digest a writer sends with a chunk it uploads: every server of the
 * write chain checks the CRC32C of the bytes it received against crc32c and
 * records sha256 as the chunk's SHA-256 instead of computing it again, so a
 * chunk is hashed once (by its writer) rather than once per replica; the
 * scrubber still checks the SHA-256 against the bytes on disk. */
typedef struct ts_chunk_digest {
    uint8_t sha256[TS_SHA256_LEN];
    uint32_t crc32c;
} ts_chunk_digest;

/* Digest of len bytes at data. */
void ts_chunk_digest_of(const void *data, size_t len, ts_chunk_digest *d);

#endif
