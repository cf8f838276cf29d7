/*
 * Chunk identifiers: 128 random bits chosen by the writer, written on the wire
 * and in file names as 32 lowercase hex digits.  Parsing is strict (exactly 32
 * hex digits), which is also what keeps "../" and other path tricks out of the
 * chunkserver's file names.
 */
#ifndef TS_CHUNK_ID_H
#define TS_CHUNK_ID_H

#include <stdint.h>
#include "common/ts_error.h"

#define TS_CHUNK_ID_LEN 16
#define TS_CHUNK_ID_HEX_LEN 32

typedef struct ts_chunk_id {
    uint8_t b[TS_CHUNK_ID_LEN];
} ts_chunk_id;

void ts_chunk_id_random(ts_chunk_id *id);
/* out must hold TS_CHUNK_ID_HEX_LEN + 1 bytes. */
void ts_chunk_id_to_hex(const ts_chunk_id *id, char *out);
/* TS_EINVAL unless hex is exactly 32 hex digits (either case). */
int ts_chunk_id_from_hex(const char *hex, ts_chunk_id *id);
int ts_chunk_id_eq(const ts_chunk_id *a, const ts_chunk_id *b);
/* The two 64-bit halves (big-endian) for hashing. */
uint64_t ts_chunk_id_hi(const ts_chunk_id *id);
uint64_t ts_chunk_id_lo(const ts_chunk_id *id);

#endif
