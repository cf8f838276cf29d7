/*
 * Checksums (common/checksum.h).  CRC32C (Castagnoli, reflected polynomial
 * 0x82F63B78) with the SSE4.2 crc32 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; SHA-256 through OpenSSL's EVP interface.
 */
#include "common/checksum.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "common/log.h"
#include "common/util.h"

#define CRC32C_POLY 0x82F63B78u

/* ---- software CRC32C: slicing-by-8 --------------------------------------- */

/* crc_table[0] is the classic byte-at-a-time table; crc_table[k][b] is the
 * CRC of byte b followed by k zero bytes, which lets the loop fold eight
 * input bytes with eight independent lookups. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t prev = crc_table[k - 1][b];
            crc_table[k][b] = (prev >> 8) ^ crc_table[0][prev & 0xff];
        }
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint32_t ts_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;

    pthread_once(&crc_table_once, crc_table_init);
    while (len >= 8) {
        uint64_t v = load_le64(p) ^ c;
        c = crc_table[7][v & 0xff] ^
            crc_table[6][(v >> 8) & 0xff] ^
            crc_table[5][(v >> 16) & 0xff] ^
            crc_table[4][(v >> 24) & 0xff] ^
            crc_table[3][(v >> 32) & 0xff] ^
            crc_table[2][(v >> 40) & 0xff] ^
            crc_table[1][(v >> 48) & 0xff] ^
            crc_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return ~c;
}

/* ---- hardware CRC32C: SSE4.2 --------------------------------------------- */

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t c = (uint32_t)~crc;

    /* Align so the 8-byte loads do not straddle cache lines. */
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#endif

/* ---- combining ------------------------------------------------------------ */

/* In the reflected representation bit 31 holds the coefficient of x^0 and
 * bit 0 that of x^31; multiplying by x is a right shift, reduced by the
 * polynomial when a coefficient of x^32 falls out.  The product of two
 * residues mod P, one coefficient of a at a time. */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b)
{
    uint32_t prod = 0;
    for (int i = 0; i < 32 && a != 0; i++) {
        if (a & 0x80000000u)
            prod ^= b;
        a <<= 1;
        b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
    }
    return prod;
}

/* x^(8n) mod P by square-and-multiply. */
static uint32_t x_pow_8n(uint64_t n)
{
    uint32_t result = 0x80000000u;      /* x^0 */
    uint32_t base = 0x00800000u;        /* x^8 */
    while (n != 0) {
        if (n & 1)
            result = gf2_mulmod(result, base);
        base = gf2_mulmod(base, base);
        n >>= 1;
    }
    return result;
}

uint32_t ts_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    /* With the pre- and post-inversion of the standard CRC the inversions
     * cancel out: crc(A B) = crc(A) * x^(8 |B|) + crc(B) (mod P).  Callers
     * combine runs of equal lengths (64 KiB blocks), hence the memo. */
    static __thread uint64_t memo_len = UINT64_MAX;
    static __thread uint32_t memo_op;
    if (len_b != memo_len) {
        memo_op = x_pow_8n(len_b);
        memo_len = len_b;
    }
    return gf2_mulmod(crc_a, memo_op) ^ crc_b;
}

uint32_t ts_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
    /* __builtin_cpu_supports reads a flag libgcc fills at start-up: cheap
     * enough to test on every call. */
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw(crc, buf, len);
#endif
    return ts_crc32c_sw(crc, buf, len);
}

/* ---- SHA-256 ------------------------------------------------------------- */

struct ts_sha256 {
    EVP_MD_CTX *md;
};

ts_sha256 *ts_sha256_new(void)
{
    ts_sha256 *ctx = ts_calloc(1, sizeof(*ctx));
    ctx->md = EVP_MD_CTX_new();
    if (ctx->md == NULL)
        ts_die("out of memory allocating a SHA-256 context");
    if (EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1)
        ts_die("EVP_DigestInit_ex(sha256) failed");
    return ctx;
}

void ts_sha256_update(ts_sha256 *ctx, const void *buf, size_t len)
{
    /* EVP only fails here on programming errors (a finalized context). */
    if (len > 0 && EVP_DigestUpdate(ctx->md, buf, len) != 1)
        ts_die("EVP_DigestUpdate(sha256) failed");
}

void ts_sha256_final(ts_sha256 *ctx, uint8_t out[TS_SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx->md, out, &n) != 1 || n != TS_SHA256_LEN)
        ts_die("EVP_DigestFinal_ex(sha256) failed");
    ts_sha256_free(ctx);
}

void ts_sha256_free(ts_sha256 *ctx)
{
    if (ctx == NULL)
        return;
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
}

void ts_sha256_once(const void *buf, size_t len, uint8_t out[TS_SHA256_LEN])
{
    ts_sha256 *ctx = ts_sha256_new();
    ts_sha256_update(ctx, buf, len);
    ts_sha256_final(ctx, out);
}

void ts_chunk_digest_of(const void *data, size_t len, ts_chunk_digest *d)
{
    ts_sha256_once(data, len, d->sha256);
    d->crc32c = ts_crc32c(0, data, len);
}
