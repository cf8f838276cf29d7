/*
 * JSON forms of the shared metadata types (common/proto.h, PROTOCOL.md) over
 * jansson.  jansson integers are signed 64-bit, so unsigned fields are stored
 * as json_integer and decoding rejects negative numbers: a u64 above
 * INT64_MAX cannot cross the wire (none of ours get near it).
 */
#include "common/proto.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"

/* ---- field getters ------------------------------------------------------- */

/* Shared by the required and optional getters: code is the error to give
 * (TS_EINVAL for request fields, TS_EPROTO when decoding a peer's answer). */
static int get_i64(const json_t *obj, const char *key, int64_t *out, int *present,
                   int code, ts_error *err)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (v == NULL) {
        if (present != NULL) {
            *present = 0;
            return 0;
        }
        return ts_fail(err, code, "field '%s': missing", key);
    }
    if (!json_is_integer(v))
        return ts_fail(err, code, "field '%s': expected an integer", key);
    *out = (int64_t)json_integer_value(v);
    if (present != NULL)
        *present = 1;
    return 0;
}

static int get_u64(const json_t *obj, const char *key, uint64_t *out, int *present,
                   int code, ts_error *err)
{
    int64_t v = 0;
    int here = 1;
    int rc = get_i64(obj, key, &v, present != NULL ? &here : NULL, code, err);
    if (rc != 0)
        return rc;
    if (present != NULL)
        *present = here;
    if (!here)
        return 0;
    if (v < 0)
        return ts_fail(err, code, "field '%s': expected a non-negative integer", key);
    *out = (uint64_t)v;
    return 0;
}

static int get_u32(const json_t *obj, const char *key, uint32_t *out, int code, ts_error *err)
{
    uint64_t v = 0;
    int rc = get_u64(obj, key, &v, NULL, code, err);
    if (rc != 0)
        return rc;
    if (v > UINT32_MAX)
        return ts_fail(err, code, "field '%s': %llu is out of range", key, (unsigned long long)v);
    *out = (uint32_t)v;
    return 0;
}

static int get_str(const json_t *obj, const char *key, const char **out, int code, ts_error *err)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (v == NULL)
        return ts_fail(err, code, "field '%s': missing", key);
    if (!json_is_string(v))
        return ts_fail(err, code, "field '%s': expected a string", key);
    *out = json_string_value(v);
    return 0;
}

static int get_chunk_id(const json_t *obj, const char *key, ts_chunk_id *out, int code,
                        ts_error *err)
{
    const char *s = NULL;
    int rc = get_str(obj, key, &s, code, err);
    if (rc != 0)
        return rc;
    if (ts_chunk_id_from_hex(s, out) != 0)
        return ts_fail(err, code, "field '%s': expected a chunk id of 32 hex digits", key);
    return 0;
}

int ts_json_u64(const json_t *obj, const char *key, uint64_t *out, ts_error *err)
{
    return get_u64(obj, key, out, NULL, TS_EINVAL, err);
}

int ts_json_i64(const json_t *obj, const char *key, int64_t *out, ts_error *err)
{
    return get_i64(obj, key, out, NULL, TS_EINVAL, err);
}

int ts_json_u64_opt(const json_t *obj, const char *key, uint64_t *out, int *present, ts_error *err)
{
    int here;
    int rc = get_u64(obj, key, out, &here, TS_EINVAL, err);
    if (present != NULL)
        *present = rc == 0 && here;
    return rc;
}

int ts_json_i64_opt(const json_t *obj, const char *key, int64_t *out, int *present, ts_error *err)
{
    int here;
    int rc = get_i64(obj, key, out, &here, TS_EINVAL, err);
    if (present != NULL)
        *present = rc == 0 && here;
    return rc;
}

int ts_json_str(const json_t *obj, const char *key, const char **out, ts_error *err)
{
    return get_str(obj, key, out, TS_EINVAL, err);
}

int ts_json_chunk_id(const json_t *obj, const char *key, ts_chunk_id *out, ts_error *err)
{
    return get_chunk_id(obj, key, out, TS_EINVAL, err);
}

/* ---- ATTR and EXTENT ----------------------------------------------------- */

/* Sets obj[key] = integer, aborting on OOM like the rest of the daemons. */
static void put_int(json_t *obj, const char *key, json_int_t v)
{
    json_t *j = json_integer(v);
    if (j == NULL || json_object_set_new(obj, key, j) != 0)
        ts_die("out of memory building JSON field '%s'", key);
}

static json_t *new_object(void)
{
    json_t *o = json_object();
    if (o == NULL)
        ts_die("out of memory building a JSON object");
    return o;
}

json_t *ts_attr_to_json(const ts_attr *a)
{
    json_t *o = new_object();
    put_int(o, "ino", (json_int_t)a->ino);
    put_int(o, "mode", a->mode);
    put_int(o, "nlink", a->nlink);
    put_int(o, "uid", a->uid);
    put_int(o, "gid", a->gid);
    put_int(o, "size", (json_int_t)a->size);
    put_int(o, "atime", a->atime_ns);
    put_int(o, "mtime", a->mtime_ns);
    put_int(o, "ctime", a->ctime_ns);
    put_int(o, "version", (json_int_t)a->version);
    return o;
}

int ts_attr_from_json(const json_t *j, ts_attr *a, ts_error *err)
{
    ts_attr t;
    int rc;

    memset(&t, 0, sizeof(t));
    if (!json_is_object(j))
        return ts_fail(err, TS_EPROTO, "attr: expected a JSON object");
    if ((rc = get_u64(j, "ino", &t.ino, NULL, TS_EPROTO, err)) != 0 ||
        (rc = get_u32(j, "mode", &t.mode, TS_EPROTO, err)) != 0 ||
        (rc = get_u32(j, "nlink", &t.nlink, TS_EPROTO, err)) != 0 ||
        (rc = get_u32(j, "uid", &t.uid, TS_EPROTO, err)) != 0 ||
        (rc = get_u32(j, "gid", &t.gid, TS_EPROTO, err)) != 0 ||
        (rc = get_u64(j, "size", &t.size, NULL, TS_EPROTO, err)) != 0 ||
        (rc = get_i64(j, "atime", &t.atime_ns, NULL, TS_EPROTO, err)) != 0 ||
        (rc = get_i64(j, "mtime", &t.mtime_ns, NULL, TS_EPROTO, err)) != 0 ||
        (rc = get_i64(j, "ctime", &t.ctime_ns, NULL, TS_EPROTO, err)) != 0 ||
        (rc = get_u64(j, "version", &t.version, NULL, TS_EPROTO, err)) != 0)
        return ts_error_prefix(err, "attr");
    *a = t;
    return 0;
}

json_t *ts_extent_to_json(const ts_extent *e)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    json_t *o = new_object();

    ts_chunk_id_to_hex(&e->chunk, hex);
    put_int(o, "file_offset", (json_int_t)e->file_offset);
    put_int(o, "length", (json_int_t)e->length);
    json_t *s = json_string(hex);
    if (s == NULL || json_object_set_new(o, "chunk", s) != 0)
        ts_die("out of memory building JSON field 'chunk'");
    put_int(o, "chunk_offset", (json_int_t)e->chunk_offset);
    return o;
}

int ts_extent_from_json(const json_t *j, ts_extent *e, ts_error *err)
{
    ts_extent t;
    int rc;

    memset(&t, 0, sizeof(t));
    if (!json_is_object(j))
        return ts_fail(err, TS_EPROTO, "extent: expected a JSON object");
    if ((rc = get_u64(j, "file_offset", &t.file_offset, NULL, TS_EPROTO, err)) != 0 ||
        (rc = get_u64(j, "length", &t.length, NULL, TS_EPROTO, err)) != 0 ||
        (rc = get_chunk_id(j, "chunk", &t.chunk, TS_EPROTO, err)) != 0 ||
        (rc = get_u64(j, "chunk_offset", &t.chunk_offset, NULL, TS_EPROTO, err)) != 0)
        return ts_error_prefix(err, "extent");
    *e = t;
    return 0;
}

/* ---- parse and dump ------------------------------------------------------ */

int ts_json_parse_object(const char *text, size_t len, json_t **out, ts_error *err)
{
    json_error_t jerr;
    json_t *j;

    *out = NULL;
    if (text == NULL)
        return ts_fail(err, TS_EINVAL, "invalid JSON: empty body");
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        return ts_fail(err, TS_EINVAL, "invalid JSON at line %d column %d: %s",
                       jerr.line, jerr.column, jerr.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return ts_fail(err, TS_EINVAL, "invalid JSON: expected an object");
    }
    *out = j;
    return 0;
}

int ts_json_att_type(const char *content_type)
{
    size_t n = strlen(TS_JSON_ATT_TYPE);
    return content_type != NULL && strncasecmp(content_type, TS_JSON_ATT_TYPE, n) == 0 &&
           (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

int ts_json_att_parse(const char *body, size_t len, json_t **out, ts_att *att, ts_error *err)
{
    const char *nul = body != NULL ? memchr(body, '\0', len) : NULL;
    *out = NULL;
    att->data = NULL;
    att->len = 0;
    if (nul == NULL)
        return ts_fail(err, TS_EINVAL, "body of %s: no NUL byte after the JSON",
                       TS_JSON_ATT_TYPE);
    int rc = ts_json_parse_object(body, (size_t)(nul - body), out, err);
    if (rc != 0)
        return rc;
    att->data = (const uint8_t *)nul + 1;
    att->len = len - (size_t)(nul - body) - 1;
    return 0;
}

char *ts_json_att_dump(const json_t *j, const ts_buf *att, size_t *len)
{
    char *text = ts_json_dump(j);
    size_t n = strlen(text), extra = att != NULL ? att->len : 0;
    char *body = ts_realloc(text, n + 1 + extra + 1);
    body[n] = '\0';
    if (extra > 0)
        memcpy(body + n + 1, att->data, extra);
    body[n + 1 + extra] = '\0';     /* not part of the body: for printing */
    *len = n + 1 + extra;
    return body;
}

int ts_att_get(const ts_att *att, uint64_t off, uint64_t n, const char *field,
               const uint8_t **out, ts_error *err)
{
    size_t have = att != NULL ? att->len : 0;
    if (off > have || n > have - off)
        return ts_fail(err, TS_EINVAL, "field '%s': bytes [%llu, %llu) of attachments of %zu "
                       "bytes", field, (unsigned long long)off, (unsigned long long)(off + n),
                       have);
    *out = att->data + off;
    return 0;
}

int ts_att_copy(const json_t *j, const char *field, const ts_att *att, uint64_t n,
                uint8_t **out, ts_error *err)
{
    uint64_t off;
    const uint8_t *bytes;
    if (ts_json_u64(j, field, &off, err) != 0 || ts_att_get(att, off, n, field, &bytes, err) != 0)
        return TS_EINVAL;
    *out = ts_malloc(n > 0 ? (size_t)n : 1);
    memcpy(*out, bytes, (size_t)n);
    return 0;
}

char *ts_json_dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        ts_die("out of memory serializing JSON");
    /* jansson allocates with malloc (no program here installs other
     * allocators), so the caller releases it with free(). */
    return s;
}

void ts_chunk_put_url(ts_buf *url, const char *hex, const char *const *chain, size_t n, int pos,
                      const ts_chunk_digest *d)
{
    char sep = '?';
    ts_buf_printf(url, "http://%s/v1/chunk/%s", chain[0], hex);
    if (pos > 0) {
        ts_buf_printf(url, "%cpos=%d", sep, pos);
        sep = '&';
    }
    for (size_t i = 1; i < n; i++)
        ts_buf_printf(url, i == 1 ? "%cchain=%s" : "%c%s", i == 1 ? sep : ',', chain[i]);
    if (n > 1)
        sep = '&';
    if (d != NULL) {
        char sha[2 * TS_SHA256_LEN + 1];
        ts_hex_encode(d->sha256, TS_SHA256_LEN, sha);
        ts_buf_printf(url, "%csha256=%s&crc32c=%08" PRIx32, sep, sha, d->crc32c);
    }
}

int ts_chunk_digest_parse(const char *sha_hex, const char *crc_hex, ts_chunk_digest *d,
                          int *present, ts_error *err)
{
    *present = 0;
    if (sha_hex == NULL && crc_hex == NULL)
        return 0;
    /* ts_hex_decode takes exactly 2n hex digits, nothing shorter or longer. */
    if (sha_hex == NULL || ts_hex_decode(sha_hex, d->sha256, TS_SHA256_LEN) != 0)
        return ts_fail(err, TS_EINVAL, "query parameter sha256=%.80s: expected 64 hex digits "
                       "(sent together with crc32c)", sha_hex ? sha_hex : "(missing)");
    uint8_t c[4];
    if (crc_hex == NULL || ts_hex_decode(crc_hex, c, 4) != 0)
        return ts_fail(err, TS_EINVAL, "query parameter crc32c=%.80s: expected 8 hex digits "
                       "(sent together with sha256)", crc_hex ? crc_hex : "(missing)");
    d->crc32c = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
    *present = 1;
    return 0;
}
