/*
 * Chunk identifiers (common/chunk_id.h): random generation, strict hex
 * round trip, and the two 64-bit halves placement hashes.
 */
#include "common/chunk_id.h"

#include <string.h>

#include "common/util.h"

void ts_chunk_id_random(ts_chunk_id *id)
{
    ts_random_bytes(id->b, sizeof(id->b));
}

void ts_chunk_id_to_hex(const ts_chunk_id *id, char *out)
{
    ts_hex_encode(id->b, sizeof(id->b), out);
}

int ts_chunk_id_from_hex(const char *hex, ts_chunk_id *id)
{
    ts_chunk_id tmp;

    /* ts_hex_decode insists on exactly 32 digits and nothing after them, so
     * "../etc/passwd…" or a 33rd character never reach a file name. */
    if (hex == NULL || ts_hex_decode(hex, tmp.b, sizeof(tmp.b)) != 0)
        return TS_EINVAL;
    *id = tmp;
    return 0;
}

int ts_chunk_id_eq(const ts_chunk_id *a, const ts_chunk_id *b)
{
    return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint64_t ts_chunk_id_hi(const ts_chunk_id *id)
{
    return load_be64(id->b);
}

uint64_t ts_chunk_id_lo(const ts_chunk_id *id)
{
    return load_be64(id->b + 8);
}
