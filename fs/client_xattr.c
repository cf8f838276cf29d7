/*
 * Extended attributes in libtessera: one call per xattr endpoint of /v1/ns/
 * (PROTOCOL.md).  Values travel as lowercase hex in the JSON, since they
 * may hold any bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fs/client_int.h"

#define WHAT_LEN (TS_NAME_MAX + 64)

static int check_xattr_name(const char *op, const char *name, ts_error *err)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0)
        return ts_fail(err, TS_EINVAL, "%s: empty attribute name", op);
    if (n > TS_NAME_MAX)
        return ts_fail(err, TS_ERANGE, "%s: attribute name longer than %d bytes", op,
                       TS_NAME_MAX);
    return 0;
}

static json_t *xattr_req(uint64_t ino, const char *name)
{
    json_t *req = json_object();

    json_object_set_new(req, "ino", json_integer((json_int_t)ino));
    if (name)
        json_object_set_new(req, "name", json_string(name));
    return req;
}

int tess_getxattr(tess_client *c, uint64_t ino, const char *name, void **value, size_t *len,
                  ts_error *err)
{
    char what[WHAT_LEN];
    json_t *resp = NULL;
    const char *hex;
    int rc;

    if ((rc = check_xattr_name("getxattr", name, err)) != 0)
        return rc;
    snprintf(what, sizeof(what), "getxattr %llu '%s'", (unsigned long long)ino, name);
    if ((rc = tess_meta_call(c, "POST", "/v1/ns/getxattr", xattr_req(ino, name), &resp, what,
                             err)) != 0)
        return rc;
    if ((rc = ts_json_str(resp, "value", &hex, err)) != 0) {
        ts_error_prefix(err, "%s", what);
        rc = TS_EPROTO;
        goto decref;
    }
    size_t n = strlen(hex);
    uint8_t *v = ts_malloc(n / 2 + 1);
    if (n % 2 != 0 || ts_hex_decode(hex, v, n / 2) != 0) {
        free(v);
        rc = ts_fail(err, TS_EPROTO, "%s: the value is not hex", what);
        goto decref;
    }
    *value = v;
    *len = n / 2;
decref:
    json_decref(resp);
    return rc;
}

int tess_listxattr(tess_client *c, uint64_t ino, char **names, size_t *len, ts_error *err)
{
    char what[64];
    json_t *resp = NULL, *arr;
    ts_buf b = {0};
    size_t i;
    json_t *v;
    int rc;

    snprintf(what, sizeof(what), "listxattr %llu", (unsigned long long)ino);
    if ((rc = tess_meta_call(c, "POST", "/v1/ns/listxattr", xattr_req(ino, NULL), &resp, what,
                             err)) != 0)
        return rc;
    arr = json_object_get(resp, "names");
    if (!json_is_array(arr)) {
        rc = ts_fail(err, TS_EPROTO, "%s: answer has no 'names' array", what);
        goto decref;
    }
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v)) {
            rc = ts_fail(err, TS_EPROTO, "%s: names[%zu] is not a string", what, i);
            goto free_buf;
        }
        ts_buf_append(&b, json_string_value(v), json_string_length(v) + 1);
    }
    *len = b.len;
    *names = b.data ? b.data : ts_strdup("");
    b.data = NULL;
free_buf:
    ts_buf_free(&b);
decref:
    json_decref(resp);
    return rc;
}

int tess_setxattr(tess_client *c, uint64_t ino, const char *name, const void *value, size_t len,
                  unsigned flags, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req, *resp = NULL;
    char *hex;
    int rc;

    if ((rc = check_xattr_name("setxattr", name, err)) != 0)
        return rc;
    if (len > TESS_XATTR_VALUE_MAX)
        return ts_fail(err, TS_ERANGE, "setxattr '%s': value of %zu bytes exceeds %d", name, len,
                       TESS_XATTR_VALUE_MAX);
    if (flags & ~(unsigned)(TESS_XATTR_CREATE | TESS_XATTR_REPLACE) ||
        flags == (TESS_XATTR_CREATE | TESS_XATTR_REPLACE))
        return ts_fail(err, TS_EINVAL, "setxattr '%s': invalid flags %#x", name, flags);
    snprintf(what, sizeof(what), "setxattr %llu '%s'", (unsigned long long)ino, name);
    hex = ts_malloc(2 * len + 1);
    ts_hex_encode(value, len, hex);
    req = xattr_req(ino, name);
    json_object_set_new(req, "value", json_string(hex));
    json_object_set_new(req, "flags", json_integer((json_int_t)flags));
    free(hex);
    rc = tess_meta_call(c, "POST", "/v1/ns/setxattr", req, &resp, what, err);
    json_decref(resp);
    return rc;
}

int tess_removexattr(tess_client *c, uint64_t ino, const char *name, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *resp = NULL;
    int rc;

    if ((rc = check_xattr_name("removexattr", name, err)) != 0)
        return rc;
    snprintf(what, sizeof(what), "removexattr %llu '%s'", (unsigned long long)ino, name);
    rc = tess_meta_call(c, "POST", "/v1/ns/removexattr", xattr_req(ino, name), &resp, what, err);
    json_decref(resp);
    return rc;
}
