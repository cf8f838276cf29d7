/*
 * Unit tests for the two wire encodings: common/codec (fixed byte vectors for
 * every type, round trips, sticky errors on truncated input, NULL and
 * NUL-containing strings) and the JSON forms of common/proto (ATTR and
 * EXTENT round trips, field validation, parse errors with positions).
 */
#include "common/codec.h"
#include "common/proto.h"
#include "common/ts_error.h"
#include "tests/unit/tcheck.h"

static int bytes_eq(const ts_buf *b, const uint8_t *want, size_t n)
{
    return b->len == n && memcmp(b->data, want, n) == 0;
}

static void test_fixed_vectors(void)
{
    ts_buf b = {0};
    static const uint8_t want[] = {
        0xab,                                           /* u8 */
        0x34, 0x12,                                     /* u16 0x1234 */
        0x78, 0x56, 0x34, 0x12,                         /* u32 0x12345678 */
        0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* u64 */
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* i64 -2 */
        0x03, 0x00, 0x00, 0x00, 'a', 'b', 'c',          /* bytes */
        0x02, 0x00, 0x00, 0x00, 'h', 'i',               /* str */
        0xff, 0xff, 0xff, 0xff,                         /* NULL str */
        0x00, 0x00, 0x00, 0x00,                         /* "" */
        'R', 'W',                                       /* raw */
    };

    ts_enc_u8(&b, 0xab);
    ts_enc_u16(&b, 0x1234);
    ts_enc_u32(&b, 0x12345678);
    ts_enc_u64(&b, 0x0123456789abcdefULL);
    ts_enc_i64(&b, -2);
    ts_enc_bytes(&b, "abc", 3);
    ts_enc_str(&b, "hi");
    ts_enc_str(&b, NULL);
    ts_enc_str(&b, "");
    ts_enc_raw(&b, "RW", 2);
    TC_CHECK(bytes_eq(&b, want, sizeof(want)));

    ts_dec d;
    size_t n;
    char raw[2];
    ts_dec_init(&d, want, sizeof(want));
    TC_CHECK_EQ_U64(ts_dec_u8(&d), 0xab);
    TC_CHECK_EQ_U64(ts_dec_u16(&d), 0x1234);
    TC_CHECK_EQ_U64(ts_dec_u32(&d), 0x12345678);
    TC_CHECK_EQ_U64(ts_dec_u64(&d), 0x0123456789abcdefULL);
    TC_CHECK(ts_dec_i64(&d) == -2);
    const void *p = ts_dec_bytes(&d, &n);
    TC_CHECK(p != NULL && n == 3 && memcmp(p, "abc", 3) == 0);
    char *s = ts_dec_str(&d);
    TC_CHECK_STR(s, "hi");
    free(s);
    TC_CHECK(ts_dec_str(&d) == NULL);
    TC_CHECK(ts_dec_ok(&d));
    s = ts_dec_str(&d);
    TC_CHECK_STR(s, "");
    free(s);
    TC_CHECK(!ts_dec_done(&d));
    ts_dec_raw(&d, raw, 2);
    TC_CHECK(memcmp(raw, "RW", 2) == 0);
    TC_CHECK(ts_dec_done(&d));
    ts_buf_free(&b);
}

static void test_round_trip_extremes(void)
{
    ts_buf b = {0};
    ts_dec d;

    ts_enc_u8(&b, 0);
    ts_enc_u8(&b, UINT8_MAX);
    ts_enc_u16(&b, UINT16_MAX);
    ts_enc_u32(&b, UINT32_MAX);
    ts_enc_u64(&b, UINT64_MAX);
    ts_enc_i64(&b, INT64_MIN);
    ts_enc_i64(&b, INT64_MAX);
    ts_enc_bytes(&b, NULL, 0);
    ts_dec_init(&d, b.data, b.len);
    TC_CHECK_EQ_U64(ts_dec_u8(&d), 0);
    TC_CHECK_EQ_U64(ts_dec_u8(&d), UINT8_MAX);
    TC_CHECK_EQ_U64(ts_dec_u16(&d), UINT16_MAX);
    TC_CHECK_EQ_U64(ts_dec_u32(&d), UINT32_MAX);
    TC_CHECK_EQ_U64(ts_dec_u64(&d), UINT64_MAX);
    TC_CHECK(ts_dec_i64(&d) == INT64_MIN);
    TC_CHECK(ts_dec_i64(&d) == INT64_MAX);
    size_t n = 99;
    TC_CHECK(ts_dec_bytes(&d, &n) != NULL && n == 0);
    TC_CHECK(ts_dec_done(&d));
    ts_buf_free(&b);
}

static void test_truncated_input(void)
{
    ts_buf b = {0};
    ts_dec d;

    ts_enc_u64(&b, 42);
    ts_enc_str(&b, "hello");
    /* Every strict prefix fails somewhere and then stays failed. */
    for (size_t cut = 0; cut < b.len; cut++) {
        ts_dec_init(&d, b.data, cut);
        uint64_t v = ts_dec_u64(&d);
        char *s = ts_dec_str(&d);
        TC_CHECK(!ts_dec_ok(&d));
        TC_CHECK(d.err == TS_EINVAL);
        TC_CHECK(s == NULL);
        if (cut < 8)
            TC_CHECK_EQ_U64(v, 0);
        free(s);
        /* Sticky: later reads give zeros even where bytes exist. */
        TC_CHECK_EQ_U64(ts_dec_u8(&d), 0);
    }

    /* A length prefix larger than the input. */
    static const uint8_t lie[] = { 0x10, 0x00, 0x00, 0x00, 'a', 'b' };
    size_t n = 7;
    ts_dec_init(&d, lie, sizeof(lie));
    TC_CHECK(ts_dec_bytes(&d, &n) == NULL);
    TC_CHECK_EQ_U64(n, 0);
    TC_CHECK(!ts_dec_ok(&d));

    /* Raw reads past the end zero the output. */
    uint8_t out[4] = { 1, 2, 3, 4 };
    ts_dec_init(&d, lie, 2);
    ts_dec_raw(&d, out, 4);
    TC_CHECK(!ts_dec_ok(&d));
    TC_CHECK(out[0] == 0 && out[3] == 0);

    /* A NULL marker where bytes are expected is malformed. */
    static const uint8_t nullstr[] = { 0xff, 0xff, 0xff, 0xff };
    ts_dec_init(&d, nullstr, sizeof(nullstr));
    TC_CHECK(ts_dec_bytes(&d, &n) == NULL);
    TC_CHECK(!ts_dec_ok(&d));
    ts_buf_free(&b);
}

static void test_string_with_nul_rejected(void)
{
    ts_buf b = {0};
    ts_dec d;

    ts_enc_bytes(&b, "a\0b", 3);
    ts_dec_init(&d, b.data, b.len);
    TC_CHECK(ts_dec_str(&d) == NULL);
    TC_CHECK(!ts_dec_ok(&d));

    /* The same bytes are fine as a byte string. */
    size_t n;
    ts_dec_init(&d, b.data, b.len);
    const char *p = ts_dec_bytes(&d, &n);
    TC_CHECK(p != NULL && n == 3 && p[1] == '\0');
    TC_CHECK(ts_dec_done(&d));
    ts_buf_free(&b);
}

static void test_empty_input(void)
{
    ts_dec d;
    ts_dec_init(&d, NULL, 0);
    TC_CHECK(ts_dec_done(&d));
    TC_CHECK_EQ_U64(ts_dec_u32(&d), 0);
    TC_CHECK(!ts_dec_ok(&d));
}

static void test_proto_attr(void)
{
    ts_attr a = { .ino = 12, .mode = 0100644, .nlink = 1, .uid = 1000, .gid = 100,
                  .size = 5ULL << 32, .atime_ns = 1, .mtime_ns = -2,
                  .ctime_ns = 1763773323456789012LL, .version = 7 }, b;
    ts_error err;

    json_t *j = ts_attr_to_json(&a);
    char *text = ts_json_dump(j);
    TC_CHECK_STR(text, "{\"ino\":12,\"mode\":33188,\"nlink\":1,\"uid\":1000,\"gid\":100,"
                       "\"size\":21474836480,\"atime\":1,\"mtime\":-2,"
                       "\"ctime\":1763773323456789012,\"version\":7}");
    memset(&b, 0xee, sizeof(b));
    TC_CHECK(ts_attr_from_json(j, &b, &err) == 0);
    TC_CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    free(text);

    /* Missing, mistyped, negative and out-of-range fields name the field. */
    json_object_del(j, "gid");
    TC_CHECK(ts_attr_from_json(j, &b, &err) == TS_EPROTO);
    TC_CHECK(strstr(err.msg, "'gid'") != NULL);
    json_object_set_new(j, "gid", json_string("100"));
    TC_CHECK(ts_attr_from_json(j, &b, &err) == TS_EPROTO);
    json_object_set_new(j, "gid", json_integer(100));
    json_object_set_new(j, "size", json_integer(-1));
    TC_CHECK(ts_attr_from_json(j, &b, &err) == TS_EPROTO);
    TC_CHECK(strstr(err.msg, "'size'") != NULL);
    json_object_set_new(j, "size", json_integer(0));
    json_object_set_new(j, "uid", json_integer(1LL << 32));
    TC_CHECK(ts_attr_from_json(j, &b, &err) == TS_EPROTO);
    json_object_set_new(j, "uid", json_integer(0));
    TC_CHECK(ts_attr_from_json(j, &b, &err) == 0);
    json_decref(j);
    TC_CHECK(ts_attr_from_json(NULL, &b, &err) == TS_EPROTO);
}

static void test_proto_extent(void)
{
    ts_extent e = { .file_offset = 4096, .length = 100, .chunk_offset = 8 }, f;
    ts_error err;

    TC_CHECK(ts_chunk_id_from_hex("3fa2000000000000000000000000beef", &e.chunk) == 0);
    json_t *j = ts_extent_to_json(&e);
    char *text = ts_json_dump(j);
    TC_CHECK_STR(text, "{\"file_offset\":4096,\"length\":100,"
                       "\"chunk\":\"3fa2000000000000000000000000beef\",\"chunk_offset\":8}");
    free(text);
    TC_CHECK(ts_extent_from_json(j, &f, &err) == 0);
    TC_CHECK(memcmp(&e, &f, sizeof(e)) == 0);
    json_object_set_new(j, "chunk", json_string("../../etc/passwd"));
    TC_CHECK(ts_extent_from_json(j, &f, &err) == TS_EPROTO);
    TC_CHECK(strstr(err.msg, "'chunk'") != NULL);
    json_decref(j);
}

static void test_proto_getters_and_parse(void)
{
    ts_error err;
    json_t *j = NULL;
    const char *body = "{\"ino\":5,\"neg\":-3,\"name\":\"a\",\"f\":1.5}";

    TC_CHECK(ts_json_parse_object(body, strlen(body), &j, &err) == 0);
    uint64_t u = 99;
    int64_t i = 99;
    int present = -1;
    const char *s = NULL;
    TC_CHECK(ts_json_u64(j, "ino", &u, &err) == 0 && u == 5);
    TC_CHECK(ts_json_u64(j, "neg", &u, &err) == TS_EINVAL);
    TC_CHECK(ts_json_i64(j, "neg", &i, &err) == 0 && i == -3);
    TC_CHECK(ts_json_u64(j, "f", &u, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "'f'") != NULL);
    TC_CHECK(ts_json_u64(j, "absent", &u, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "'absent'") != NULL);
    u = 99;
    TC_CHECK(ts_json_u64_opt(j, "absent", &u, &present, &err) == 0);
    TC_CHECK(present == 0 && u == 99);
    TC_CHECK(ts_json_u64_opt(j, "ino", &u, &present, &err) == 0);
    TC_CHECK(present == 1 && u == 5);
    TC_CHECK(ts_json_u64_opt(j, "neg", &u, &present, &err) == TS_EINVAL);
    TC_CHECK(ts_json_i64_opt(j, "absent", &i, &present, &err) == 0 && present == 0);
    TC_CHECK(ts_json_i64_opt(j, "neg", &i, &present, &err) == 0 && present == 1 && i == -3);
    TC_CHECK(ts_json_str(j, "name", &s, &err) == 0);
    TC_CHECK_STR(s, "a");
    TC_CHECK(ts_json_str(j, "ino", &s, &err) == TS_EINVAL);
    ts_chunk_id id;
    TC_CHECK(ts_json_chunk_id(j, "name", &id, &err) == TS_EINVAL);
    json_decref(j);

    /* Malformed text: the position is in the message. */
    const char *bad = "{\n  \"a\": 1,\n  \"b\": }";
    TC_CHECK(ts_json_parse_object(bad, strlen(bad), &j, &err) == TS_EINVAL);
    TC_CHECK(j == NULL);
    TC_CHECK(strstr(err.msg, "line 3") != NULL);
    TC_CHECK(ts_json_parse_object("[1,2]", 5, &j, &err) == TS_EINVAL);
    TC_CHECK(strstr(err.msg, "object") != NULL);
    TC_CHECK(ts_json_parse_object("{}garbage", 9, &j, &err) == TS_EINVAL);
    TC_CHECK(ts_json_parse_object("{\"a\":1,\"a\":2}", 13, &j, &err) == TS_EINVAL);
    TC_CHECK(ts_json_parse_object("", 0, &j, &err) == TS_EINVAL);
    /* Only len bytes are read: the body need not be NUL-terminated. */
    TC_CHECK(ts_json_parse_object("{}xyz", 2, &j, &err) == 0);
    json_decref(j);
}

/* The chunk upload URL: every combination of pos, forwarding chain and
 * digest, and the digest parsed back from what was written. */
static void test_proto_chunk_put_url(void)
{
    const char *chain[] = { "a:1", "b:2", "c:3" };
    ts_chunk_digest d, back;
    memset(d.sha256, 0xab, TS_SHA256_LEN);
    d.crc32c = 0x0012ef34;
    char sha[2 * TS_SHA256_LEN + 1];
    memset(sha, 'a', sizeof(sha) - 1);
    for (size_t i = 1; i < sizeof(sha) - 1; i += 2)
        sha[i] = 'b';
    sha[sizeof(sha) - 1] = '\0';
    struct { size_t n; int pos; int digest; const char *want; } cases[] = {
        { 1, 0, 0, "http://a:1/v1/chunk/HEX" },
        { 3, 0, 0, "http://a:1/v1/chunk/HEX?chain=b:2,c:3" },
        { 2, 2, 0, "http://a:1/v1/chunk/HEX?pos=2&chain=b:2" },
        { 1, 3, 0, "http://a:1/v1/chunk/HEX?pos=3" },
        { 1, 0, 1, "http://a:1/v1/chunk/HEX?sha256=SHA&crc32c=0012ef34" },
        { 3, 0, 1, "http://a:1/v1/chunk/HEX?chain=b:2,c:3&sha256=SHA&crc32c=0012ef34" },
        { 2, 2, 1, "http://a:1/v1/chunk/HEX?pos=2&chain=b:2&sha256=SHA&crc32c=0012ef34" },
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(cases); i++) {
        ts_buf url = { 0 }, want = { 0 };
        ts_chunk_put_url(&url, "HEX", chain, cases[i].n, cases[i].pos,
                         cases[i].digest ? &d : NULL);
        const char *w = cases[i].want, *at = strstr(w, "SHA");
        if (at)
            ts_buf_printf(&want, "%.*s%s%s", (int)(at - w), w, sha, at + 3);
        else
            ts_buf_printf(&want, "%s", w);
        TC_CHECK_STR(url.data, want.data);
        ts_buf_free(&url);
        ts_buf_free(&want);
    }
    int present = 0;
    ts_error e = { 0 };
    TC_CHECK(ts_chunk_digest_parse(sha, "0012ef34", &back, &present, &e) == 0);
    TC_CHECK(present == 1 && back.crc32c == d.crc32c &&
             memcmp(back.sha256, d.sha256, TS_SHA256_LEN) == 0);
}

/* JSON with attachments: what the dump writes the parse reads back, with
 * the bytes (NULs included) where the fields say; bodies without the NUL,
 * with bad JSON before it or naming bytes not attached are refused. */
static void test_proto_json_att(void)
{
    json_t *j = json_pack("{s:s,s:I}", "name", "f", "inline_at", (json_int_t)2);
    ts_buf att = { 0 };
    ts_buf_append(&att, "xy\0bc", 5);
    size_t len = 0;
    char *body = ts_json_att_dump(j, &att, &len);
    size_t text = strlen(body);
    TC_CHECK_EQ_U64(len, text + 1 + 5);
    json_t *back = NULL;
    ts_att got;
    ts_error e = { 0 };
    TC_CHECK(ts_json_att_parse(body, len, &back, &got, &e) == 0);
    TC_CHECK(json_equal(j, back));
    TC_CHECK_EQ_U64(got.len, 5);
    const uint8_t *p = NULL;
    TC_CHECK(ts_att_get(&got, 2, 3, "inline_at", &p, &e) == 0);
    TC_CHECK(p != NULL && memcmp(p, "\0bc", 3) == 0);
    TC_CHECK(ts_att_get(&got, 5, 0, "inline_at", &p, &e) == 0);     /* empty, at the end */
    TC_CHECK(ts_att_get(&got, 3, 3, "inline_at", &p, &e) == TS_EINVAL);
    TC_CHECK(strstr(e.msg, "inline_at") != NULL);
    TC_CHECK(ts_att_get(&got, UINT64_MAX, 2, "inline_at", &p, &e) == TS_EINVAL);
    TC_CHECK(ts_att_get(&got, 1, UINT64_MAX, "inline_at", &p, &e) == TS_EINVAL);
    json_decref(back);
    /* no attachments: the NUL alone */
    free(body);
    body = ts_json_att_dump(j, NULL, &len);
    TC_CHECK(ts_json_att_parse(body, len, &back, &got, &e) == 0 && got.len == 0);
    json_decref(back);
    /* refused: no NUL, JSON that is bad or not an object before it */
    TC_CHECK(ts_json_att_parse(body, len - 1, &back, &got, &e) == TS_EINVAL && back == NULL);
    TC_CHECK(strstr(e.msg, "NUL") != NULL);
    TC_CHECK(ts_json_att_parse("{\"a\":\0x", 8, &back, &got, &e) == TS_EINVAL);
    TC_CHECK(ts_json_att_parse("[1]\0x", 5, &back, &got, &e) == TS_EINVAL);
    TC_CHECK(ts_json_att_parse(NULL, 0, &back, &got, &e) == TS_EINVAL);
    /* the type, with or without parameters, and nothing like it */
    TC_CHECK(ts_json_att_type("application/x-tessera-json-att"));
    TC_CHECK(ts_json_att_type("Application/X-Tessera-JSON-Att; charset=binary"));
    TC_CHECK(!ts_json_att_type("application/x-tessera-json-attx"));
    TC_CHECK(!ts_json_att_type("application/json"));
    TC_CHECK(!ts_json_att_type(NULL));
    free(body);
    ts_buf_free(&att);
    json_decref(j);
}

int main(void)
{
    TC_RUN(test_fixed_vectors);
    TC_RUN(test_round_trip_extremes);
    TC_RUN(test_truncated_input);
    TC_RUN(test_string_with_nul_rejected);
    TC_RUN(test_empty_input);
    TC_RUN(test_proto_attr);
    TC_RUN(test_proto_extent);
    TC_RUN(test_proto_getters_and_parse);
    TC_RUN(test_proto_chunk_put_url);
    TC_RUN(test_proto_json_att);
    TC_DONE("test_codec");
}
