/*
 * Shared message types of the metadata API and their JSON forms (jansson), so
 * the metadata server and the client library encode and decode them through
 * one piece of code.  See common/PROTOCOL.md for every endpoint.
 */
#ifndef TS_PROTO_H
#define TS_PROTO_H

#include <stdint.h>
#include <jansson.h>
#include "common/chunk_id.h"
#include "common/checksum.h"
#include "common/ts_error.h"
#include "common/util.h"

#define TS_ROOT_INO 1
#define TS_NAME_MAX 255
#define TS_PATH_MAX 4095
/* Inline data (bytes kept in the metadata) one chunk build request may
 * carry: the compactor plans packs of inline files no larger, and the
 * chunkservers accept build bodies that large (base64). */
#define TS_BUILD_INLINE_MAX (16u << 20)

typedef struct ts_attr {
    uint64_t ino;
    uint32_t mode;        /* type bits (S_IFREG, S_IFDIR, S_IFLNK) | permissions */
    uint32_t nlink;
    uint32_t uid, gid;
    uint64_t size;
    int64_t atime_ns, mtime_ns, ctime_ns;
    uint64_t version;     /* bumped by every change to the file's content or attributes */
} ts_attr;

/* One piece of a file: [file_offset, file_offset+length) is stored in chunk
 * `chunk` starting at chunk_offset. */
typedef struct ts_extent {
    uint64_t file_offset;
    uint64_t length;
    ts_chunk_id chunk;
    uint64_t chunk_offset;
} ts_extent;

/* Returns a new JSON object (caller owns the reference). */
json_t *ts_attr_to_json(const ts_attr *a);
/* TS_EPROTO naming the missing/mistyped field. */
int ts_attr_from_json(const json_t *j, ts_attr *a, ts_error *err);

json_t *ts_extent_to_json(const ts_extent *e);
int ts_extent_from_json(const json_t *j, ts_extent *e, ts_error *err);

/* Field getters with validation; TS_EINVAL "field 'name': expected …". */
int ts_json_u64(const json_t *obj, const char *key, uint64_t *out, ts_error *err);
int ts_json_i64(const json_t *obj, const char *key, int64_t *out, ts_error *err);
/* Optional variants: return 0 and leave *out untouched (and *present=0) when absent. */
int ts_json_u64_opt(const json_t *obj, const char *key, uint64_t *out, int *present, ts_error *err);
int ts_json_i64_opt(const json_t *obj, const char *key, int64_t *out, int *present, ts_error *err);
/* Borrowed string (valid while obj lives). */
int ts_json_str(const json_t *obj, const char *key, const char **out, ts_error *err);
int ts_json_chunk_id(const json_t *obj, const char *key, ts_chunk_id *out, ts_error *err);

/* Parses a request body into an object; TS_EINVAL with jansson's position. */
int ts_json_parse_object(const char *text, size_t len, json_t **out, ts_error *err);
/* Compact dump; caller frees. Aborts on OOM. */
char *ts_json_dump(const json_t *j);

/* JSON with attachments (PROTOCOL.md "Bodies"): the JSON text, one NUL
 * byte, then the attachments' bytes back to back; a field of the JSON
 * names its bytes by offset into them (an inline chunk's "inline_at").
 * Bulk bytes then cost neither base64 nor the JSON parser's work per
 * character (about 90 us for 4 KiB on this hardware, both ends). */
#define TS_JSON_ATT_TYPE "application/x-tessera-json-att"

/* Attachments of a body: borrowed from it. */
typedef struct ts_att {
    const uint8_t *data;
    size_t len;
} ts_att;

/* Whether a Content-Type value (may be NULL, may carry parameters) is
 * TS_JSON_ATT_TYPE. */
int ts_json_att_type(const char *content_type);
/* Parses a body of TS_JSON_ATT_TYPE: the object into *out, the bytes after
 * the NUL into *att.  TS_EINVAL when the NUL is missing or the JSON is
 * bad. */
int ts_json_att_parse(const char *body, size_t len, json_t **out, ts_att *att, ts_error *err);
/* The body for j with attachments att (NULL or empty: a NUL and nothing
 * after it); caller frees, *len gets its length. */
char *ts_json_att_dump(const json_t *j, const ts_buf *att, size_t *len);
/* The bytes [off, off + n) of att: 0 with *out pointing into att, or
 * TS_EINVAL naming field when they are not all there. */
int ts_att_get(const ts_att *att, uint64_t off, uint64_t n, const char *field,
               const uint8_t **out, ts_error *err);
/* The n bytes of att that j's integer field names (an inline chunk's
 * "inline_at"), copied: 0 with *out malloc'd (at least 1 byte even when n
 * is 0; the caller frees), else TS_EINVAL naming the field. */
int ts_att_copy(const json_t *j, const char *field, const ts_att *att, uint64_t n,
                uint8_t **out, ts_error *err);

/* The upload of chunk hex to chain[0], which forwards it along
 * chain[1..n-1] (PROTOCOL.md "Chunkserver"), appended to url:
 *     http://CHAIN0/v1/chunk/HEX?pos=P&chain=CHAIN1,CHAIN2&sha256=HEX64&crc32c=HEX8
 * pos 0 leaves out pos= (the receiver is then first of its chain); d is
 * the writer's digest (ts_chunk_digest, common/checksum.h), NULL for none. */
void ts_chunk_put_url(ts_buf *url, const char *hex, const char *const *chain, size_t n, int pos,
                      const ts_chunk_digest *d);
/* Reads the digest's query parameters' values (NULL when absent): 0 with *present = 0 when
 * both are absent, 0 with *present = 1 and *d filled when both are well
 * formed, TS_EINVAL naming the bad one otherwise. */
int ts_chunk_digest_parse(const char *sha_hex, const char *crc_hex, ts_chunk_digest *d,
                          int *present, ts_error *err);

#endif
