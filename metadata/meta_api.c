/*
 * Metadata HTTP API: request dispatch and the namespace calls (/v1/ns/...).
 * Mutations become commands submitted to the store (durable before the
 * answer); reads run under the store's read lock.  See meta_api.h.
 */
#include "metadata/meta_api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"

#define READDIR_DEFAULT_LIMIT 1000
#define READDIR_MAX_LIMIT 10000

/* ---- helpers shared with meta_cluster_api.c ---- */

void api_set(json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) != 0)
        ts_die("out of memory building JSON field '%s'", key);
}

int api_reply(ts_http_response *resp, json_t *obj)
{
    char *text = ts_json_dump(obj);
    json_decref(obj);
    ts_http_respond(resp, 200, "application/json", text, strlen(text));
    return 0;
}

int api_fail(ts_http_response *resp, const ts_error *e)
{
    ts_http_respond_ts_error(resp, e);
    return e->code ? e->code : TS_EIO;
}

int api_u32(const json_t *o, const char *key, uint32_t *out, ts_error *err)
{
    uint64_t v;
    int rc = ts_json_u64(o, key, &v, err);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return ts_fail(err, TS_EINVAL, "field '%s': %llu is out of range", key,
                       (unsigned long long)v);
    *out = (uint32_t)v;
    return 0;
}

int api_bool_opt(const json_t *o, const char *key, int *out, ts_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return ts_fail(err, TS_EINVAL, "field '%s': expected a boolean", key);
    *out = json_is_true(v);
    return 0;
}

int api_str_opt(const json_t *o, const char *key, const char **out, ts_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return ts_fail(err, TS_EINVAL, "field '%s': expected a string", key);
    *out = json_string_value(v);
    return 0;
}

static json_t *attr_reply(const ts_attr *a)
{
    json_t *o = json_object();
    if (!o)
        ts_die("out of memory building a reply");
    api_set(o, "attr", ts_attr_to_json(a));
    return o;
}

static json_t *empty_reply(void)
{
    json_t *o = json_object();
    if (!o)
        ts_die("out of memory building a reply");
    return o;
}

/* Adds the changed directory's attributes to a reply (see cmd_result). */
static json_t *with_parent(json_t *o, const cmd_result *res)
{
    if (res->has_parent)
        api_set(o, "parent", ts_attr_to_json(&res->parent));
    return o;
}

int api_request_id(const json_t *b, cmd *c, ts_error *err)
{
    const json_t *jc = json_object_get(b, "client");
    int present;
    if (!jc || json_is_null(jc))
        return 0;
    const char *hex = json_string_value(jc);
    uint8_t raw[8];
    if (!hex || strlen(hex) != 16 || ts_hex_decode(hex, raw, sizeof(raw)) != 0)
        return ts_fail(err, TS_EINVAL, "field 'client': expected 16 hex digits");
    c->client = 0;
    for (int i = 0; i < 8; i++)
        c->client = c->client << 8 | raw[i];
    if (c->client == 0)
        return ts_fail(err, TS_EINVAL, "field 'client': must not be zero");
    if (ts_json_u64(b, "seq", &c->seq, err) != 0 ||
        ts_json_u64_opt(b, "acked", &c->acked, &present, err) != 0)
        return TS_EINVAL;
    if (c->seq == 0 || c->acked >= c->seq)
        return ts_fail(err, TS_EINVAL, "field 'seq': must be positive and above 'acked'");
    return 0;
}

int api_submit(meta_api *api, const json_t *b, cmd *c, cmd_result *res, ts_error *err)
{
    int rc = api_request_id(b, c, err);
    if (rc == 0)
        rc = store_submit(api->st, c, res, err);
    cmd_free(c);
    return rc;
}

/* Submits c (with the request id of b); answers attr (want_attr) or {} on
 * success, the error otherwise.  Frees c. */
static int submit(meta_api *api, const json_t *b, cmd *c, int want_attr, ts_http_response *resp)
{
    ts_error e = {0};
    cmd_result res;
    if (api_submit(api, b, c, &res, &e) != 0)
        return api_fail(resp, &e);
    return api_reply(resp, with_parent(want_attr ? attr_reply(&res.attr) : empty_reply(), &res));
}

/* ---- reads ---- */

static int h_resolve(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    const char *path;
    ts_attr a;
    if (ts_json_str(b, "path", &path, &e) != 0)
        return api_fail(resp, &e);
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_resolve(ns, path, &a, &e);
    store_read_unlock(api->st);
    if (rc)
        return api_fail(resp, &e);
    return api_reply(resp, attr_reply(&a));
}

static int h_lookup(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    uint64_t parent;
    const char *name;
    ts_attr a;
    if (ts_json_u64(b, "parent", &parent, &e) != 0 || ts_json_str(b, "name", &name, &e) != 0)
        return api_fail(resp, &e);
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_lookup(ns, parent, name, &a, &e);
    store_read_unlock(api->st);
    if (rc)
        return api_fail(resp, &e);
    return api_reply(resp, attr_reply(&a));
}

static int h_getattr(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    uint64_t ino;
    ts_attr a;
    if (ts_json_u64(b, "ino", &ino, &e) != 0)
        return api_fail(resp, &e);
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_getattr(ns, ino, &a, &e);
    store_read_unlock(api->st);
    if (rc)
        return api_fail(resp, &e);
    return api_reply(resp, attr_reply(&a));
}

static int h_readlink(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    uint64_t ino;
    const char *target;
    if (ts_json_u64(b, "ino", &ino, &e) != 0)
        return api_fail(resp, &e);
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_readlink(ns, ino, &target, &e);
    json_t *o = NULL;
    if (rc == 0) {
        o = empty_reply();
        api_set(o, "target", json_string(target));
    }
    store_read_unlock(api->st);
    if (rc)
        return api_fail(resp, &e);
    return api_reply(resp, o);
}

static int readdir_add(void *arg, const char *name, const ts_attr *attr)
{
    json_t *entry = json_object();
    if (!entry)
        ts_die("out of memory building readdir reply");
    json_t *s = json_string(name);
    if (!s) {
        /* Not valid UTF-8: JSON cannot carry it.  Skip rather than fail the
         * whole listing; such names cannot be created through this API. */
        json_decref(entry);
        return 0;
    }
    api_set(entry, "name", s);
    api_set(entry, "attr", ts_attr_to_json(attr));
    if (json_array_append_new(arg, entry) != 0)
        ts_die("out of memory building readdir reply");
    return 0;
}

static int h_readdir(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    uint64_t ino, limit = READDIR_DEFAULT_LIMIT;
    const char *after = NULL;
    int present;
    if (ts_json_u64(b, "ino", &ino, &e) != 0 ||
        ts_json_u64_opt(b, "limit", &limit, &present, &e) != 0)
        return api_fail(resp, &e);
    const json_t *ja = json_object_get(b, "after");
    if (ja && !json_is_null(ja)) {
        if (!json_is_string(ja)) {
            ts_fail(&e, TS_EINVAL, "field 'after': expected a string or null");
            return api_fail(resp, &e);
        }
        after = json_string_value(ja);
    }
    if (limit == 0) {
        ts_fail(&e, TS_EINVAL, "field 'limit': must be positive");
        return api_fail(resp, &e);
    }
    if (limit > READDIR_MAX_LIMIT)
        limit = READDIR_MAX_LIMIT;
    json_t *entries = json_array();
    int more = 0;
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_readdir(ns, ino, after, (uint32_t)limit, readdir_add, entries, &more, &e);
    store_read_unlock(api->st);
    if (rc) {
        json_decref(entries);
        return api_fail(resp, &e);
    }
    json_t *o = empty_reply();
    api_set(o, "entries", entries);
    api_set(o, "more", json_boolean(more));
    return api_reply(resp, o);
}

/* ---- mutations ---- */

static int h_setattr(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_SETATTR };
    ns_setattr_args *a = &c.u.setattr.a;
    uint64_t v;
    int present;
    if (ts_json_u64(b, "ino", &c.u.setattr.ino, &e) != 0)
        return api_fail(resp, &e);
    static const struct { const char *key; uint32_t bit; } u32s[] = {
        { "mode", NS_SETATTR_MODE }, { "uid", NS_SETATTR_UID }, { "gid", NS_SETATTR_GID },
    };
    for (size_t i = 0; i < TS_ARRAY_LEN(u32s); i++) {
        if (ts_json_u64_opt(b, u32s[i].key, &v, &present, &e) != 0)
            return api_fail(resp, &e);
        if (!present)
            continue;
        if (v > UINT32_MAX) {
            ts_fail(&e, TS_EINVAL, "field '%s': out of range", u32s[i].key);
            return api_fail(resp, &e);
        }
        a->valid |= u32s[i].bit;
        if (u32s[i].bit == NS_SETATTR_MODE)
            a->mode = (uint32_t)v;
        else if (u32s[i].bit == NS_SETATTR_UID)
            a->uid = (uint32_t)v;
        else
            a->gid = (uint32_t)v;
    }
    if (ts_json_u64_opt(b, "size", &a->size, &present, &e) != 0)
        return api_fail(resp, &e);
    a->valid |= present ? NS_SETATTR_SIZE : 0;
    if (ts_json_i64_opt(b, "atime", &a->atime_ns, &present, &e) != 0)
        return api_fail(resp, &e);
    a->valid |= present ? NS_SETATTR_ATIME : 0;
    if (ts_json_i64_opt(b, "mtime", &a->mtime_ns, &present, &e) != 0)
        return api_fail(resp, &e);
    a->valid |= present ? NS_SETATTR_MTIME : 0;
    return submit(api, b, &c, 1, resp);
}

static int h_mkdir(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_MKDIR };
    const char *name;
    if (ts_json_u64(b, "parent", &c.u.mkdir.parent, &e) != 0 ||
        ts_json_str(b, "name", &name, &e) != 0 || api_u32(b, "mode", &c.u.mkdir.mode, &e) != 0 ||
        api_u32(b, "uid", &c.u.mkdir.uid, &e) != 0 || api_u32(b, "gid", &c.u.mkdir.gid, &e) != 0)
        return api_fail(resp, &e);
    c.u.mkdir.name = ts_strdup(name);
    return submit(api, b, &c, 1, resp);
}

static int h_create(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_CREATE };
    const char *name;
    int excl = 0, trunc = 0;
    if (ts_json_u64(b, "parent", &c.u.create.parent, &e) != 0 ||
        ts_json_str(b, "name", &name, &e) != 0 ||
        api_u32(b, "mode", &c.u.create.mode, &e) != 0 ||
        api_u32(b, "uid", &c.u.create.uid, &e) != 0 ||
        api_u32(b, "gid", &c.u.create.gid, &e) != 0 ||
        api_bool_opt(b, "exclusive", &excl, &e) != 0 ||
        api_bool_opt(b, "truncate", &trunc, &e) != 0)
        return api_fail(resp, &e);
    c.u.create.name = ts_strdup(name);
    c.u.create.flags = (excl ? NS_CREATE_EXCL : 0) | (trunc ? NS_CREATE_TRUNC : 0);
    cmd_result res;
    if (api_submit(api, b, &c, &res, &e) != 0)
        return api_fail(resp, &e);
    json_t *o = attr_reply(&res.attr);
    api_set(o, "created", json_boolean(res.created));
    return api_reply(resp, with_parent(o, &res));
}

static int remove_entry(meta_api *api, const json_t *b, int type, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = (uint8_t)type };
    const char *name;
    if (ts_json_u64(b, "parent", &c.u.unlink.parent, &e) != 0 ||
        ts_json_str(b, "name", &name, &e) != 0)
        return api_fail(resp, &e);
    c.u.unlink.name = ts_strdup(name);
    return submit(api, b, &c, 0, resp);
}

static int h_unlink(meta_api *api, const json_t *b, ts_http_response *resp)
{
    return remove_entry(api, b, CMD_UNLINK, resp);
}

static int h_rmdir(meta_api *api, const json_t *b, ts_http_response *resp)
{
    return remove_entry(api, b, CMD_RMDIR, resp);
}

static int h_rename(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_RENAME };
    const char *name, *new_name;
    uint64_t flags = 0;
    int present;
    if (ts_json_u64(b, "parent", &c.u.rename.parent, &e) != 0 ||
        ts_json_str(b, "name", &name, &e) != 0 ||
        ts_json_u64(b, "new_parent", &c.u.rename.new_parent, &e) != 0 ||
        ts_json_str(b, "new_name", &new_name, &e) != 0 ||
        ts_json_u64_opt(b, "flags", &flags, &present, &e) != 0)
        return api_fail(resp, &e);
    if (flags > 3) {
        ts_fail(&e, TS_EINVAL, "field 'flags': %llu is not 0, 1 or 2", (unsigned long long)flags);
        return api_fail(resp, &e);
    }
    c.u.rename.flags = (uint32_t)flags;
    c.u.rename.name = ts_strdup(name);
    c.u.rename.new_name = ts_strdup(new_name);
    return submit(api, b, &c, 0, resp);
}

static int h_symlink(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_SYMLINK };
    const char *name, *target;
    if (ts_json_u64(b, "parent", &c.u.symlink.parent, &e) != 0 ||
        ts_json_str(b, "name", &name, &e) != 0 || ts_json_str(b, "target", &target, &e) != 0 ||
        api_u32(b, "uid", &c.u.symlink.uid, &e) != 0 ||
        api_u32(b, "gid", &c.u.symlink.gid, &e) != 0)
        return api_fail(resp, &e);
    c.u.symlink.name = ts_strdup(name);
    c.u.symlink.target = ts_strdup(target);
    return submit(api, b, &c, 1, resp);
}

static int h_link(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_LINK };
    const char *name;
    if (ts_json_u64(b, "ino", &c.u.link.ino, &e) != 0 ||
        ts_json_u64(b, "new_parent", &c.u.link.new_parent, &e) != 0 ||
        ts_json_str(b, "new_name", &name, &e) != 0)
        return api_fail(resp, &e);
    c.u.link.new_name = ts_strdup(name);
    return submit(api, b, &c, 1, resp);
}

/* ---- extended attributes (values travel as lowercase hex) ---- */

static int h_getxattr(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    uint64_t ino;
    const char *name;
    const void *value;
    size_t len;
    if (ts_json_u64(b, "ino", &ino, &e) != 0 || ts_json_str(b, "name", &name, &e) != 0)
        return api_fail(resp, &e);
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_getxattr(ns, ino, name, &value, &len, &e);
    char *hex = NULL;
    if (rc == 0) {
        hex = ts_malloc(2 * len + 1);
        ts_hex_encode(value, len, hex);
    }
    store_read_unlock(api->st);
    if (rc)
        return api_fail(resp, &e);
    json_t *o = empty_reply();
    api_set(o, "value", json_string(hex));
    free(hex);
    return api_reply(resp, o);
}

static int xattr_name_add(void *arg, const char *name, const void *value, size_t len)
{
    (void)value;
    (void)len;
    json_t *s = json_string(name);
    /* A name that is not UTF-8 cannot travel in JSON; such names cannot be
     * set through this API either. */
    if (s && json_array_append_new(arg, s) != 0)
        ts_die("out of memory building listxattr reply");
    return 0;
}

static int h_listxattr(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    uint64_t ino;
    if (ts_json_u64(b, "ino", &ino, &e) != 0)
        return api_fail(resp, &e);
    json_t *names = json_array();
    if (!names)
        ts_die("out of memory building listxattr reply");
    const ns_state *ns = store_read_lock(api->st);
    int rc = ns_listxattr(ns, ino, xattr_name_add, names, &e);
    store_read_unlock(api->st);
    if (rc) {
        json_decref(names);
        return api_fail(resp, &e);
    }
    json_t *o = empty_reply();
    api_set(o, "names", names);
    return api_reply(resp, o);
}

static int h_setxattr(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_SETXATTR };
    const char *name, *hex;
    uint32_t flags = 0;
    if (ts_json_u64(b, "ino", &c.u.xattr.ino, &e) != 0 ||
        ts_json_str(b, "name", &name, &e) != 0 || ts_json_str(b, "value", &hex, &e) != 0)
        return api_fail(resp, &e);
    if (json_object_get(b, "flags") && api_u32(b, "flags", &flags, &e) != 0)
        return api_fail(resp, &e);
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > NS_XATTR_VALUE_MAX) {
        ts_fail(&e, n % 2 ? TS_EINVAL : TS_ERANGE, "field 'value': %s",
                n % 2 ? "odd number of hex digits" : "longer than 65536 bytes");
        return api_fail(resp, &e);
    }
    c.u.xattr.value = ts_malloc(n / 2 + 1);
    if (ts_hex_decode(hex, c.u.xattr.value, n / 2) != 0) {
        free(c.u.xattr.value);
        ts_fail(&e, TS_EINVAL, "field 'value': not hex");
        return api_fail(resp, &e);
    }
    c.u.xattr.len = (uint32_t)(n / 2);
    c.u.xattr.flags = flags;
    c.u.xattr.name = ts_strdup(name);
    return submit(api, b, &c, 0, resp);
}

static int h_removexattr(meta_api *api, const json_t *b, ts_http_response *resp)
{
    ts_error e = {0};
    cmd c = { .type = CMD_REMOVEXATTR };
    const char *name;
    if (ts_json_u64(b, "ino", &c.u.xattr.ino, &e) != 0 || ts_json_str(b, "name", &name, &e) != 0)
        return api_fail(resp, &e);
    c.u.xattr.name = ts_strdup(name);
    return submit(api, b, &c, 0, resp);
}

/* ---- dispatch ---- */

typedef api_post_fn post_handler;

/* read: answered from the local state, so a replicated server first makes
 * sure it is (still) the leader and up to date (ReadIndex). */
typedef int (*att_handler)(meta_api *api, const json_t *body, const ts_att *att,
                           ts_http_response *resp);
static const struct {
    const char *path;
    att_handler fn;
} att_routes[] = {
    { "/v1/file/commit", api_commit }, { "/v1/file/create_at", api_create_at },
};

static const struct {
    const char *path;
    post_handler fn;
    int read;
} post_routes[] = {
    { "/v1/ns/resolve", h_resolve, 1 },   { "/v1/ns/lookup", h_lookup, 1 },
    { "/v1/ns/getattr", h_getattr, 1 },   { "/v1/ns/setattr", h_setattr, 0 },
    { "/v1/ns/mkdir", h_mkdir, 0 },       { "/v1/ns/create", h_create, 0 },
    { "/v1/ns/unlink", h_unlink, 0 },     { "/v1/ns/rmdir", h_rmdir, 0 },
    { "/v1/ns/rename", h_rename, 0 },     { "/v1/ns/readdir", h_readdir, 1 },
    { "/v1/ns/symlink", h_symlink, 0 },   { "/v1/ns/readlink", h_readlink, 1 },
    { "/v1/ns/link", h_link, 0 },         { "/v1/file/layout", api_layout, 1 },
    { "/v1/chunkserver/heartbeat", api_heartbeat, 0 },
    { "/v1/ns/getxattr", h_getxattr, 1 }, { "/v1/ns/listxattr", h_listxattr, 1 },
    { "/v1/ns/setxattr", h_setxattr, 0 }, { "/v1/ns/removexattr", h_removexattr, 0 },
    { "/v1/admin/compact", api_compact, 1 },
    { "/v1/ns/reserve_inodes", api_reserve_inodes, 0 },
};

/* Replicated mode: 0 when this server may answer a client call (the
 * leader, caught up for reads when `read`); else the request is answered
 * (421, or the barrier's error) and the error code returned. */
static int leader_gate(meta_api *api, int read, ts_http_response *resp)
{
    char leader[RAFT_ADDR_MAX];
    ts_error e = {0};
    if (api->rt == NULL)
        return 0;
    if (!store_is_leader(api->st, leader)) {
        api_not_leader(api, resp, "this metadata server is a follower");
        return TS_ENOTLEADER;
    }
    int rc = read ? store_read_barrier(api->st, &e) : 0;
    if (rc == TS_ENOTLEADER)
        api_not_leader(api, resp, e.msg);
    else if (rc != 0)
        api_fail(resp, &e);
    return rc;
}

/* The endpoints every server answers itself, leader or not. */
static int handle_local(meta_api *api, const ts_http_request *req, ts_http_response *resp)
{
    int get = strcmp(req->method, "GET") == 0;
    if (get && strcmp(req->path, "/health") == 0)
        ts_http_respond_json(resp, 200, "{\"ok\":true,\"role\":\"meta\"}");
    else if (get && strcmp(req->path, "/metrics") == 0)
        api_metrics(api, resp);
    else if (api->rt == NULL || strncmp(req->path, "/v1/raft/", 9) != 0)
        return 0;
    else if (strcmp(req->path, RAFT_TRANSPORT_PATH) == 0 && strcmp(req->method, "POST") == 0)
        raft_transport_handle(api->rt, req, resp);
    else if (get && strcmp(req->path, "/v1/raft/status") == 0)
        api_raft_status(api, resp);
    else if (strcmp(req->path, "/v1/raft/fault") == 0 && strcmp(req->method, "POST") == 0)
        api_raft_fault(api, req, resp);     /* each side of a partition is cut by itself */
    else
        return 0;
    return 1;
}

static void handle_raft_change(meta_api *api, const ts_http_request *req,
                               ts_http_response *resp)
{
    ts_error e = {0};
    json_t *body = NULL;
    if (strcmp(req->method, "POST") != 0) {
        ts_http_respond_error(resp, TS_EINVAL, "%s needs POST, not %s", req->path, req->method);
        return;
    }
    if (ts_json_parse_object(req->body, req->body_len, &body, &e) != 0) {
        ts_error_prefix(&e, "%s", req->path);
        api_fail(resp, &e);
        return;
    }
    if (leader_gate(api, 0, resp) == 0)
        api_raft_change(api, req->path, body, resp);
    json_decref(body);
}

void meta_api_handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    meta_api *api = app;
    ts_error e = {0};
    atomic_fetch_add(&api->requests, 1);
    if (handle_local(api, req, resp))
        goto count_errors;
    if (api->rt != NULL && strncmp(req->path, "/v1/raft/", 9) == 0) {
        handle_raft_change(api, req, resp);
        goto count_errors;
    }
    if (strcmp(req->method, "GET") == 0) {
        int servers = strcmp(req->path, "/v1/cluster/servers") == 0;
        if (!servers && strcmp(req->path, "/v1/cluster/status") != 0)
            goto post_routes;   /* a POST endpoint asked with GET: say so below */
        if (leader_gate(api, 1, resp) != 0)
            goto count_errors;
        if (servers)
            api_cluster_servers(api, resp);
        else
            api_cluster_status(api, resp);
        goto count_errors;
    }
post_routes:;
    post_handler fn = NULL;
    att_handler afn = NULL;
    int read = 0;
    for (size_t i = 0; i < TS_ARRAY_LEN(att_routes) && !afn; i++)
        if (strcmp(req->path, att_routes[i].path) == 0)
            afn = att_routes[i].fn;
    for (size_t i = 0; i < TS_ARRAY_LEN(post_routes) && !fn && !afn; i++)
        if (strcmp(req->path, post_routes[i].path) == 0) {
            fn = post_routes[i].fn;
            read = post_routes[i].read;
        }
    if (!fn && !afn)
        fn = api_ops_find(req->path, &read);
    if (fn || afn) {
        if (strcmp(req->method, "POST") != 0) {
            ts_http_respond_error(resp, TS_EINVAL, "%s needs POST, not %s", req->path,
                                  req->method);
            goto count_errors;
        }
        json_t *body = NULL;
        ts_att att = {0};
        int rc, with_att = ts_json_att_type(ts_http_header(req, "Content-Type"));
        if (with_att && !afn)
            rc = ts_fail(&e, TS_EINVAL, "takes a JSON body, not %s", TS_JSON_ATT_TYPE);
        else if (with_att)
            rc = ts_json_att_parse(req->body, req->body_len, &body, &att, &e);
        else
            rc = ts_json_parse_object(req->body, req->body_len, &body, &e);
        if (rc != 0) {
            ts_error_prefix(&e, "%s", req->path);
            api_fail(resp, &e);
            goto count_errors;
        }
        if (leader_gate(api, read, resp) == 0) {
            if (afn)
                afn(api, body, &att, resp);
            else
                fn(api, body, resp);
            /* Leadership lost while the command waited: redirect too. */
            if (resp->status == 421 && api->rt != NULL)
                api_not_leader(api, resp, "leadership changed during the request");
        }
        json_decref(body);
        goto count_errors;
    }
    ts_http_respond_error(resp, TS_ENOENT, "no such endpoint: %s %s", req->method, req->path);
count_errors:
    if (resp->status >= 400)
        atomic_fetch_add(&api->request_errors, 1);
}

/* ---- lifecycle ---- */

meta_api *meta_api_new(store *st, cluster *cl)
{
    meta_api *api = ts_calloc(1, sizeof(*api));
    api->st = st;
    api->cl = cl;
    atomic_init(&api->requests, 0);
    atomic_init(&api->request_errors, 0);
    return api;
}

void meta_api_set_repair(meta_api *api, struct repair *rp)
{
    api->rp = rp;
}

void meta_api_set_gc(meta_api *api, struct gc *g)
{
    api->gc = g;
}

void meta_api_set_compact(meta_api *api, struct compact *cp)
{
    api->cp = cp;
}

void meta_api_set_raft(meta_api *api, raft_transport *rt, const raft_conf *peers,
                       char names[][64])
{
    api->rt = rt;
    api->names_conf = *peers;
    for (uint32_t i = 0; i < peers->n && i < RAFT_MAX_MEMBERS; i++)
        snprintf(api->names[i], sizeof(api->names[i]), "%s", names[i]);
}

int meta_api_listen(meta_api *api, const char *bind_addr, int port, unsigned threads,
                    ts_error *err)
{
    ts_http_server_opts o = {
        .bind_addr = bind_addr,
        .port = port,
        /* Handlers block until their command is durable (a group-commit
         * fsync, or a Raft round): with a thread pool, connections that
         * landed on the same pool thread wait for each other's fsyncs and
         * no two of them ever share one (a single server ran one fsync per
         * command, at a rate that depended on how connections spread). */
        .threading = TS_HTTP_THREAD_PER_CONNECTION,
        .pool_threads = threads,
        .max_body = 16u << 20,
        /* Requests here are small and many (a Raft round is several), and
         * libmicrohttpd zeroes a connection's whole memory before each one:
         * at the default 128 KiB that memset was the metadata server's top
         * user-space cost.  32 KiB (libmicrohttpd's own default) still
         * holds any header we send; bodies arrive in pieces either way. */
        .conn_memory = 32u << 10,
        .app = api,
        .handle = meta_api_handle,
    };
    return ts_http_server_start(&o, &api->http, err);
}

int meta_api_port(const meta_api *api)
{
    return api->http ? ts_http_server_port(api->http) : 0;
}

void meta_api_stop(meta_api *api)
{
    if (api->http) {
        ts_http_server_stop(api->http);
        api->http = NULL;
    }
}

void meta_api_free(meta_api *api)
{
    if (!api)
        return;
    meta_api_stop(api);
    free(api);
}
