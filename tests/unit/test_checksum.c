/*
 * Unit tests for common/checksum: CRC32C against the RFC 3720 vectors, the
 * hardware and table implementations against each other on random buffers of
 * many lengths and alignments, incremental and combined CRCs, and SHA-256
 * vectors.
 */
#include "common/checksum.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

static void test_crc32c_vectors(void)
{
    uint8_t buf[32];

    TC_CHECK_EQ_U64(ts_crc32c(0, "123456789", 9), 0xE3069283u);
    TC_CHECK_EQ_U64(ts_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    memset(buf, 0, sizeof(buf));
    TC_CHECK_EQ_U64(ts_crc32c(0, buf, 32), 0x8A9136AAu);
    TC_CHECK_EQ_U64(ts_crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    TC_CHECK_EQ_U64(ts_crc32c(0, buf, 32), 0x62A8AB43u);
    TC_CHECK_EQ_U64(ts_crc32c_sw(0, buf, 32), 0x62A8AB43u);
    /* RFC 3720 B.4: 32 bytes ascending. */
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    TC_CHECK_EQ_U64(ts_crc32c(0, buf, 32), 0x46DD794Eu);
    TC_CHECK_EQ_U64(ts_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    TC_CHECK_EQ_U64(ts_crc32c(0, "", 0), 0);
    TC_CHECK_EQ_U64(ts_crc32c(0x12345678, "", 0), 0x12345678);
}

static void test_crc32c_hw_vs_sw(void)
{
    size_t cap = 70000;
    uint8_t *buf = ts_malloc(cap + 16);
    uint8_t seed[8];
    int mismatches = 0;

    ts_random_bytes(buf, cap + 16);
    ts_random_bytes(seed, sizeof(seed));
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len < 300; len++) {
            if (ts_crc32c(0, buf + align, len) != ts_crc32c_sw(0, buf + align, len))
                mismatches++;
        }
        static const size_t big[] = { 1023, 4096, 4097, 65535, 65536, 65537, 70000 };
        for (size_t i = 0; i < TS_ARRAY_LEN(big); i++) {
            uint32_t init = (uint32_t)seed[i] * 0x01010101u;
            if (ts_crc32c(init, buf + align, big[i]) != ts_crc32c_sw(init, buf + align, big[i]))
                mismatches++;
        }
    }
    TC_CHECK_EQ_U64(mismatches, 0);
    free(buf);
}

static void test_crc32c_incremental(void)
{
    uint8_t buf[1000];
    ts_random_bytes(buf, sizeof(buf));
    uint32_t whole = ts_crc32c(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
        uint32_t c = ts_crc32c(0, buf, cut);
        c = ts_crc32c(c, buf + cut, sizeof(buf) - cut);
        TC_CHECK_EQ_U64(c, whole);
        uint32_t s = ts_crc32c_sw(0, buf, cut);
        s = ts_crc32c_sw(s, buf + cut, sizeof(buf) - cut);
        TC_CHECK_EQ_U64(s, whole);
    }
}

static void test_crc32c_combine(void)
{
    size_t cap = 200000;
    uint8_t *buf = ts_malloc(cap);
    ts_random_bytes(buf, cap);
    static const size_t lens[] = { 0, 1, 7, 8, 63, 4096, 65536, 65537, 131072, 200000 };
    for (size_t i = 0; i < TS_ARRAY_LEN(lens); i++) {
        size_t len = lens[i];
        uint32_t whole = ts_crc32c(0, buf, len);
        for (size_t cut = 0; cut <= len; cut += len / 5 + 1) {
            uint32_t a = ts_crc32c(0, buf, cut), b = ts_crc32c(0, buf + cut, len - cut);
            TC_CHECK_EQ_U64(ts_crc32c_combine(a, b, len - cut), whole);
        }
    }
    /* Block by block, as the chunk store combines its block CRCs. */
    uint32_t all = 0;
    for (size_t off = 0; off < cap; off += TS_BLOCK_SIZE) {
        size_t n = TS_MIN((size_t)TS_BLOCK_SIZE, cap - off);
        uint32_t c = ts_crc32c(0, buf + off, n);
        all = off == 0 ? c : ts_crc32c_combine(all, c, n);
    }
    TC_CHECK_EQ_U64(all, ts_crc32c(0, buf, cap));

    ts_chunk_digest d;
    uint8_t sha[TS_SHA256_LEN];
    ts_chunk_digest_of(buf, 1000, &d);
    ts_sha256_once(buf, 1000, sha);
    TC_CHECK(memcmp(d.sha256, sha, sizeof sha) == 0);
    TC_CHECK_EQ_U64(d.crc32c, ts_crc32c(0, buf, 1000));
    free(buf);
}

static void sha_hex(const uint8_t d[TS_SHA256_LEN], char *out)
{
    ts_hex_encode(d, TS_SHA256_LEN, out);
}

static void test_sha256(void)
{
    uint8_t d[TS_SHA256_LEN];
    char hex[2 * TS_SHA256_LEN + 1];

    ts_sha256_once("abc", 3, d);
    sha_hex(d, hex);
    TC_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ts_sha256_once("", 0, d);
    sha_hex(d, hex);
    TC_CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* Incremental in odd pieces equals one shot. */
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ts_sha256 *ctx = ts_sha256_new();
    for (size_t i = 0; i < strlen(msg); i += 5)
        ts_sha256_update(ctx, msg + i, TS_MIN((size_t)5, strlen(msg) - i));
    ts_sha256_final(ctx, d);
    sha_hex(d, hex);
    TC_CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* A context freed without a digest (error paths) must not leak or crash. */
    ctx = ts_sha256_new();
    ts_sha256_update(ctx, "x", 1);
    ts_sha256_free(ctx);
    ts_sha256_free(NULL);
}

int main(void)
{
    TC_RUN(test_crc32c_vectors);
    TC_RUN(test_crc32c_hw_vs_sw);
    TC_RUN(test_crc32c_incremental);
    TC_RUN(test_crc32c_combine);
    TC_RUN(test_sha256);
    TC_DONE("test_checksum");
}
