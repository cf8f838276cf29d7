/*
 * Metadata calls of libtessera: one function per endpoint of the metadata
 * server (PROTOCOL.md), each building its JSON request, going through
 * tess_meta_call and decoding the answer with common/proto.h.  Also the
 * decoders of layouts and server lists, and the cluster calls.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fs/client_int.h"

/* Context for error messages: "mkdir 1/'name'". */
#define WHAT_LEN (TS_NAME_MAX + 64)

static void set_u64(json_t *o, const char *key, uint64_t v)
{
    json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, json_string(v));
}

/* Hands the changed directory's attributes of a mutating call's answer to
 * the client's listener.  A malformed or missing "parent" is ignored: it
 * only saves the listener a request. */
static void report_dir_change(tess_client *c, const json_t *resp)
{
    json_t *p = json_object_get(resp, "parent");
    ts_attr dir;
    ts_error ignored;

    if (c->dir_changed && p && ts_attr_from_json(p, &dir, &ignored) == 0)
        c->dir_changed(c->dir_changed_arg, &dir);
}

/* Issues a POST (with attachments att, may be NULL) and decodes the
 * "attr" of the answer into out (may be NULL). */
static int attr_call_att(tess_client *c, const char *path, json_t *req, const ts_buf *att,
                         const char *what, ts_attr *out, json_t **resp_out, ts_error *err)
{
    json_t *resp = NULL;
    int rc;

    if ((rc = tess_meta_call_att(c, path, req, att, &resp, NULL, what, err)) != 0)
        return rc;
    report_dir_change(c, resp);
    if (out) {
        json_t *a = json_object_get(resp, "attr");
        if (!a) {
            rc = ts_fail(err, TS_EPROTO, "%s: answer has no 'attr'", what);
            goto decref_resp;
        }
        if ((rc = ts_attr_from_json(a, out, err)) != 0) {
            ts_error_prefix(err, "%s", what);
            goto decref_resp;
        }
    }
    if (resp_out) {
        *resp_out = resp;
        return 0;
    }
decref_resp:
    json_decref(resp);
    return rc;
}

static int attr_call(tess_client *c, const char *path, json_t *req, const char *what,
                     ts_attr *out, json_t **resp_out, ts_error *err)
{
    return attr_call_att(c, path, req, NULL, what, out, resp_out, err);
}

/* A call whose answer is {} (unlink, rmdir, rename). */
static int void_call(tess_client *c, const char *path, json_t *req, const char *what, ts_error *err)
{
    json_t *resp = NULL;
    int rc = tess_meta_call(c, "POST", path, req, &resp, what, err);

    if (rc == 0)
        report_dir_change(c, resp);
    json_decref(resp);
    return rc;
}

static int check_name(const char *op, const char *name, ts_error *err)
{
    if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return ts_fail(err, TS_EINVAL, "%s: invalid name '%s'", op, name ? name : "(null)");
    if (strlen(name) > TS_NAME_MAX)
        return ts_fail(err, TS_ENAMETOOLONG, "%s: name longer than %d bytes", op, TS_NAME_MAX);
    return 0;
}

/* The start of every request naming a directory entry: validates the name,
 * fills `what` ("OP PARENT/'NAME'", the context of error messages) and returns
 * a new {"parent","name"} object in *req (the caller passes it on to a call
 * helper, which releases it). */
static int entry_request(const char *op, uint64_t parent, const char *name,
                         char what[WHAT_LEN], json_t **req, ts_error *err)
{
    int rc;

    if ((rc = check_name(op, name, err)) != 0)
        return rc;
    snprintf(what, WHAT_LEN, "%s %llu/'%s'", op, (unsigned long long)parent, name);
    *req = json_object();
    set_u64(*req, "parent", parent);
    set_str(*req, "name", name);
    return 0;
}

int tess_resolve(tess_client *c, const char *path, ts_attr *out, ts_error *err)
{
    char what[TS_PATH_MAX + 32];
    json_t *req;

    if (!path || path[0] != '/')
        return ts_fail(err, TS_EINVAL, "resolve '%s': not an absolute path", path ? path : "");
    if (strlen(path) > TS_PATH_MAX)
        return ts_fail(err, TS_ENAMETOOLONG, "resolve: path longer than %d bytes", TS_PATH_MAX);
    snprintf(what, sizeof(what), "resolve %s", path);
    req = json_object();
    set_str(req, "path", path);
    return attr_call(c, "/v1/ns/resolve", req, what, out, NULL, err);
}

int tess_lookup(tess_client *c, uint64_t parent, const char *name, ts_attr *out, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req;
    int rc;

    if ((rc = entry_request("lookup", parent, name, what, &req, err)) != 0)
        return rc;
    return attr_call(c, "/v1/ns/lookup", req, what, out, NULL, err);
}

int tess_getattr(tess_client *c, uint64_t ino, ts_attr *out, ts_error *err)
{
    char what[64];
    json_t *req = json_object();

    snprintf(what, sizeof(what), "getattr %llu", (unsigned long long)ino);
    set_u64(req, "ino", ino);
    return attr_call(c, "/v1/ns/getattr", req, what, out, NULL, err);
}

int tess_setattr(tess_client *c, uint64_t ino, const tess_setattr_req *sa, ts_attr *out,
                 ts_error *err)
{
    char what[64];
    json_t *req = json_object();

    snprintf(what, sizeof(what), "setattr %llu", (unsigned long long)ino);
    set_u64(req, "ino", ino);
    if (sa->mask & TESS_SET_MODE)
        set_u64(req, "mode", sa->mode);
    if (sa->mask & TESS_SET_UID)
        set_u64(req, "uid", sa->uid);
    if (sa->mask & TESS_SET_GID)
        set_u64(req, "gid", sa->gid);
    if (sa->mask & TESS_SET_SIZE)
        set_u64(req, "size", sa->size);
    if (sa->mask & TESS_SET_ATIME)
        json_object_set_new(req, "atime", json_integer(sa->atime_ns));
    if (sa->mask & TESS_SET_MTIME)
        json_object_set_new(req, "mtime", json_integer(sa->mtime_ns));
    return attr_call(c, "/v1/ns/setattr", req, what, out, NULL, err);
}

int tess_mkdir(tess_client *c, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
               uint32_t gid, ts_attr *out, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req;
    int rc;

    if ((rc = entry_request("mkdir", parent, name, what, &req, err)) != 0)
        return rc;
    set_u64(req, "mode", mode);
    set_u64(req, "uid", uid);
    set_u64(req, "gid", gid);
    return attr_call(c, "/v1/ns/mkdir", req, what, out, NULL, err);
}

int tess_create(tess_client *c, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
                uint32_t gid, unsigned flags, ts_attr *out, int *created, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req, *resp = NULL;
    int rc;

    if ((rc = entry_request("create", parent, name, what, &req, err)) != 0)
        return rc;
    set_u64(req, "mode", mode);
    set_u64(req, "uid", uid);
    set_u64(req, "gid", gid);
    json_object_set_new(req, "exclusive", json_boolean(flags & TESS_CREATE_EXCL));
    json_object_set_new(req, "truncate", json_boolean(flags & TESS_CREATE_TRUNC));
    if ((rc = attr_call(c, "/v1/ns/create", req, what, out, &resp, err)) != 0)
        return rc;
    if (created)
        *created = json_is_true(json_object_get(resp, "created"));
    json_decref(resp);
    return 0;
}

static int entry_call(tess_client *c, const char *op, const char *path, uint64_t parent,
                      const char *name, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req;
    int rc;

    if ((rc = entry_request(op, parent, name, what, &req, err)) != 0)
        return rc;
    return void_call(c, path, req, what, err);
}

int tess_unlink(tess_client *c, uint64_t parent, const char *name, ts_error *err)
{
    return entry_call(c, "unlink", "/v1/ns/unlink", parent, name, err);
}

int tess_rmdir(tess_client *c, uint64_t parent, const char *name, ts_error *err)
{
    return entry_call(c, "rmdir", "/v1/ns/rmdir", parent, name, err);
}

int tess_rename(tess_client *c, uint64_t parent, const char *name, uint64_t new_parent,
                const char *new_name, unsigned flags, ts_error *err)
{
    char what[2 * WHAT_LEN];
    json_t *req;
    int rc;

    if ((rc = check_name("rename", name, err)) != 0 ||
        (rc = check_name("rename", new_name, err)) != 0)
        return rc;
    snprintf(what, sizeof(what), "rename %llu/'%s' to %llu/'%s'", (unsigned long long)parent,
             name, (unsigned long long)new_parent, new_name);
    req = json_object();
    set_u64(req, "parent", parent);
    set_str(req, "name", name);
    set_u64(req, "new_parent", new_parent);
    set_str(req, "new_name", new_name);
    set_u64(req, "flags", flags);
    return void_call(c, "/v1/ns/rename", req, what, err);
}

int tess_symlink(tess_client *c, uint64_t parent, const char *name, const char *target,
                 uint32_t uid, uint32_t gid, ts_attr *out, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req;
    int rc;

    if (!target || !*target || strlen(target) > TS_PATH_MAX)
        return ts_fail(err, TS_EINVAL, "symlink '%s': target empty or longer than %d bytes",
                       name ? name : "", TS_PATH_MAX);
    if ((rc = entry_request("symlink", parent, name, what, &req, err)) != 0)
        return rc;
    set_str(req, "target", target);
    set_u64(req, "uid", uid);
    set_u64(req, "gid", gid);
    return attr_call(c, "/v1/ns/symlink", req, what, out, NULL, err);
}

int tess_readlink(tess_client *c, uint64_t ino, char **target, ts_error *err)
{
    char what[64];
    json_t *req = json_object(), *resp = NULL;
    const char *t;
    int rc;

    snprintf(what, sizeof(what), "readlink %llu", (unsigned long long)ino);
    set_u64(req, "ino", ino);
    if ((rc = tess_meta_call(c, "POST", "/v1/ns/readlink", req, &resp, what, err)) != 0)
        return rc;
    if ((rc = ts_json_str(resp, "target", &t, err)) != 0)
        ts_error_prefix(err, "%s", what);
    else
        *target = ts_strdup(t);
    json_decref(resp);
    return rc;
}

int tess_link(tess_client *c, uint64_t ino, uint64_t new_parent, const char *new_name,
              ts_attr *out, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req;
    int rc;

    if ((rc = check_name("link", new_name, err)) != 0)
        return rc;
    snprintf(what, sizeof(what), "link %llu to %llu/'%s'", (unsigned long long)ino,
             (unsigned long long)new_parent, new_name);
    req = json_object();
    set_u64(req, "ino", ino);
    set_u64(req, "new_parent", new_parent);
    set_str(req, "new_name", new_name);
    return attr_call(c, "/v1/ns/link", req, what, out, NULL, err);
}

/* ---------------------------------------------------------------- readdir */

void tess_dirents_free(tess_dirent *entries, size_t n)
{
    if (!entries)
        return;
    for (size_t i = 0; i < n; i++)
        free(entries[i].name);
    free(entries);
}

int tess_readdir_page(tess_client *c, uint64_t ino, const char *after, unsigned limit,
                      tess_dirent **entries, size_t *n, int *more, ts_error *err)
{
    char what[64];
    json_t *req = json_object(), *resp = NULL, *arr;
    tess_dirent *v = NULL;
    size_t count = 0;
    int rc;

    snprintf(what, sizeof(what), "readdir %llu", (unsigned long long)ino);
    set_u64(req, "ino", ino);
    json_object_set_new(req, "after", after ? json_string(after) : json_null());
    set_u64(req, "limit", limit ? limit : 1000);
    if ((rc = tess_meta_call(c, "POST", "/v1/ns/readdir", req, &resp, what, err)) != 0)
        return rc;
    arr = json_object_get(resp, "entries");
    if (!json_is_array(arr)) {
        rc = ts_fail(err, TS_EPROTO, "%s: answer has no 'entries' array", what);
        goto decref_resp;
    }
    v = ts_calloc(json_array_size(arr) + 1, sizeof(*v));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        const char *name;

        if ((rc = ts_json_str(e, "name", &name, err)) != 0 ||
            (rc = ts_attr_from_json(json_object_get(e, "attr"), &v[count].attr, err)) != 0) {
            ts_error_prefix(err, "%s: entry %zu", what, i);
            goto free_entries;
        }
        v[count++].name = ts_strdup(name);
    }
    *entries = v;
    *n = count;
    *more = json_is_true(json_object_get(resp, "more"));
    json_decref(resp);
    return 0;
free_entries:
    tess_dirents_free(v, count);
decref_resp:
    json_decref(resp);
    return rc;
}

int tess_readdir(tess_client *c, uint64_t ino, tess_readdir_fn fn, void *ctx, ts_error *err)
{
    char *after = NULL;
    int more = 1, rc = 0;

    while (more && rc == 0) {
        tess_dirent *v = NULL;
        size_t n = 0;

        if ((rc = tess_readdir_page(c, ino, after, 1000, &v, &n, &more, err)) != 0)
            break;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = fn(ctx, &v[i]);
        if (rc == 0 && n > 0) {
            free(after);
            after = ts_strdup(v[n - 1].name);
        } else if (n == 0) {
            more = 0;           /* an empty page with more=true would loop forever */
        }
        tess_dirents_free(v, n);
    }
    free(after);
    return rc;
}

/* ----------------------------------------------------------------- layout */

int tess_json_strv(const json_t *arr, const char *field, char ***out, size_t *n, ts_error *err)
{
    char **v;
    size_t count;

    *out = NULL;
    *n = 0;
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return ts_fail(err, TS_EPROTO, "field '%s': expected an array of strings", field);
    count = json_array_size(arr);
    if (count == 0)
        return 0;
    v = ts_calloc(count, sizeof(*v));
    for (size_t i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s) {
            tess_strv_free(v, i);
            return ts_fail(err, TS_EPROTO, "field '%s'[%zu]: expected a string", field, i);
        }
        v[i] = ts_strdup(s);
    }
    *out = v;
    *n = count;
    return 0;
}

void tess_layout_free(tess_layout *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nextents; i++) {
        tess_strv_free(l->extents[i].replicas, l->extents[i].nreplicas);
        free(l->extents[i].inline_data);
    }
    free(l->extents);
    free(l);
}

/* The bytes of an inline extent's chunk: attached ("inline_at"), or in
 * base64 ("inline"); 0 with x->inline_data NULL when it has neither. */
static int inline_bytes(const json_t *e, const ts_att *att, tess_layout_extent *x,
                        ts_error *err)
{
    const json_t *d = json_object_get(e, "inline"), *at = json_object_get(e, "inline_at");
    size_t n = 0;

    if (at && !json_is_null(at)) {
        if (ts_att_copy(e, "inline_at", att, x->chunk_length, &x->inline_data, err) != 0)
            return TS_EPROTO;
        n = (size_t)x->chunk_length;
    } else if (d && !json_is_null(d)) {
        if (!json_is_string(d) ||
            ts_base64_decode(json_string_value(d), json_string_length(d), &x->inline_data,
                             &n) != 0)
            return ts_fail(err, TS_EPROTO, "field 'inline': expected base64");
    } else {
        return 0;
    }
    if (n != x->chunk_length || x->ext.chunk_offset + x->ext.length > n) {
        free(x->inline_data);
        x->inline_data = NULL;
        return ts_fail(err, TS_EPROTO, "inline data of %zu bytes for a chunk of %llu", n,
                       (unsigned long long)x->chunk_length);
    }
    return 0;
}

int tess_layout_from_json(const json_t *j, const ts_att *att, tess_layout **out, ts_error *err)
{
    tess_layout *l = ts_calloc(1, sizeof(*l));
    const json_t *arr = json_object_get(j, "extents");
    int rc;

    if ((rc = ts_attr_from_json(json_object_get(j, "attr"), &l->attr, err)) != 0)
        goto free_layout;
    if (arr && !json_is_array(arr)) {
        rc = ts_fail(err, TS_EPROTO, "field 'extents': expected an array");
        goto free_layout;
    }
    l->extents = ts_calloc(json_array_size(arr) + 1, sizeof(*l->extents));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        tess_layout_extent *x = &l->extents[l->nextents];
        int present = 0;

        if ((rc = ts_extent_from_json(e, &x->ext, err)) != 0 ||
            (rc = ts_json_u64_opt(e, "chunk_length", &x->chunk_length, &present, err)) != 0 ||
            (rc = tess_json_strv(json_object_get(e, "replicas"), "replicas", &x->replicas,
                                 &x->nreplicas, err)) != 0) {
            ts_error_prefix(err, "extent %zu", i);
            goto free_layout;
        }
        if (!present)
            x->chunk_length = x->ext.chunk_offset + x->ext.length;
        if ((rc = inline_bytes(e, att, x, err)) != 0) {
            tess_strv_free(x->replicas, x->nreplicas);
            ts_error_prefix(err, "extent %zu", i);
            goto free_layout;
        }
        if (x->ext.length == 0) {
            tess_strv_free(x->replicas, x->nreplicas);
            free(x->inline_data);
            memset(x, 0, sizeof(*x));
            continue;           /* an empty extent holds nothing to read */
        }
        if (l->nextents > 0) {
            const ts_extent *prev = &l->extents[l->nextents - 1].ext;
            if (x->ext.file_offset < prev->file_offset + prev->length) {
                tess_strv_free(x->replicas, x->nreplicas);
                free(x->inline_data);
                rc = ts_fail(err, TS_EPROTO, "extent %zu at %llu overlaps or precedes the one before",
                             i, (unsigned long long)x->ext.file_offset);
                goto free_layout;
            }
        }
        l->nextents++;
    }
    *out = l;
    return 0;
free_layout:
    tess_layout_free(l);
    return rc;
}

int tess_get_layout(tess_client *c, uint64_t ino, tess_layout **out, ts_error *err)
{
    char what[64];
    json_t *req = json_object(), *resp = NULL;
    int rc;

    snprintf(what, sizeof(what), "layout %llu", (unsigned long long)ino);
    ts_buf att = {0};
    set_u64(req, "ino", ino);
    /* Inline chunks' bytes after the JSON rather than in base64 inside it
     * (PROTOCOL.md "Bodies with attachments"). */
    json_object_set_new(req, "attachments", json_true());
    if ((rc = tess_meta_call_att(c, "/v1/file/layout", req, NULL, &resp, &att, what, err)) != 0)
        return rc;
    ts_att got = { (const uint8_t *)att.data, att.len };
    if ((rc = tess_layout_from_json(resp, &got, out, err)) != 0)
        ts_error_prefix(err, "%s", what);
    json_decref(resp);
    ts_buf_free(&att);
    return rc;
}

/* ----------------------------------------------------------------- commit */

void tess_chunk_rec_clear(tess_chunk_rec *r)
{
    tess_strv_free(r->replicas, r->nreplicas);
    r->replicas = NULL;
    r->nreplicas = 0;
    free(r->inline_data);
    r->inline_data = NULL;
}

void tess_commit_fields(json_t *req, ts_buf *att, uint64_t offset, uint64_t length,
                        const ts_extent *extents, size_t nextents, const tess_chunk_rec *chunks,
                        size_t nchunks, const uint64_t *size, const int64_t *mtime_ns)
{
    json_t *ext = json_array(), *chk = json_array(), *inl = NULL;

    set_u64(req, "offset", offset);
    set_u64(req, "length", length);
    for (size_t i = 0; i < nextents; i++)
        json_array_append_new(ext, ts_extent_to_json(&extents[i]));
    for (size_t i = 0; i < nchunks; i++) {
        char hex[TS_CHUNK_ID_HEX_LEN + 1], sha[2 * TS_SHA256_LEN + 1];
        json_t *o = json_object(), *reps = json_array();

        ts_chunk_id_to_hex(&chunks[i].id, hex);
        ts_hex_encode(chunks[i].sha256, TS_SHA256_LEN, sha);
        set_str(o, "id", hex);
        set_u64(o, "length", chunks[i].length);
        set_str(o, "sha256", sha);
        for (size_t k = 0; k < chunks[i].nreplicas; k++)
            json_array_append_new(reps, json_string(chunks[i].replicas[k]));
        json_object_set_new(o, "replicas", reps);
        if (chunks[i].inline_data) {
            /* A list of their own: a server that does not know inline data
             * refuses the commit (an extent names an unknown chunk) rather
             * than registering a chunk no chunkserver holds. */
            set_u64(o, "inline_at", att->len);
            ts_buf_append(att, chunks[i].inline_data, (size_t)chunks[i].length);
            if (!inl)
                inl = json_array();
            json_array_append_new(inl, o);
            continue;
        }
        json_array_append_new(chk, o);
    }
    json_object_set_new(req, "extents", ext);
    json_object_set_new(req, "chunks", chk);
    if (inl)
        json_object_set_new(req, "inline_chunks", inl);
    if (size)
        set_u64(req, "size", *size);
    if (mtime_ns)
        json_object_set_new(req, "mtime", json_integer(*mtime_ns));
}

int tess_commit(tess_client *c, uint64_t ino, uint64_t offset, uint64_t length,
                const ts_extent *extents, size_t nextents, const tess_chunk_rec *chunks,
                size_t nchunks, const uint64_t *size, const int64_t *mtime_ns, ts_attr *out,
                ts_error *err)
{
    char what[128];
    json_t *req = json_object();

    snprintf(what, sizeof(what), "commit %llu [%llu, %llu)", (unsigned long long)ino,
             (unsigned long long)offset, (unsigned long long)(offset + length));
    ts_buf att = {0};
    set_u64(req, "ino", ino);
    tess_commit_fields(req, &att, offset, length, extents, nextents, chunks, nchunks, size,
                       mtime_ns);
    int rc = attr_call_att(c, "/v1/file/commit", req, &att, what, out, NULL, err);
    ts_buf_free(&att);
    return rc;
}

/* ------------------------------------------------- creates ahead of the server */

int tess_reserve_inodes(tess_client *c, uint64_t *first, uint32_t *count, ts_error *err)
{
    json_t *resp = NULL;
    uint64_t n = 0;
    int rc = tess_meta_call(c, "POST", "/v1/ns/reserve_inodes", json_object(), &resp,
                            "reserve inode numbers", err);

    if (rc != 0)
        return rc;
    if ((rc = ts_json_u64(resp, "first", first, err)) != 0 ||
        (rc = ts_json_u64(resp, "count", &n, err)) != 0)
        rc = TS_EPROTO;
    else if (n == 0 || n > 1u << 20 || *first <= TS_ROOT_INO)
        rc = ts_fail(err, TS_EPROTO, "reserve inode numbers: a range of %llu at %llu",
                     (unsigned long long)n, (unsigned long long)*first);
    json_decref(resp);
    if (rc == 0)
        *count = (uint32_t)n;
    return rc;
}

int tess_create_at_with(tess_client *c, const tess_create_at_req *r, json_t *data,
                        const ts_buf *att, ts_attr *out, ts_error *err)
{
    char what[WHAT_LEN];
    json_t *req;
    int rc;

    if ((rc = entry_request("create", r->parent, r->name, what, &req, err)) != 0) {
        json_decref(data);
        return rc;
    }
    set_u64(req, "ino", r->ino);
    set_u64(req, "mode", r->mode);
    set_u64(req, "uid", r->uid);
    set_u64(req, "gid", r->gid);
    json_object_set_new(req, "replace", json_boolean(r->replace));
    if (data)
        json_object_set_new(req, "data", data);
    return attr_call_att(c, "/v1/file/create_at", req, att, what, out, NULL, err);
}

int tess_create_at(tess_client *c, const tess_create_at_req *r, ts_attr *out, ts_error *err)
{
    return tess_create_at_with(c, r, NULL, NULL, out, err);
}

/* ---------------------------------------------------------------- cluster */

enum tess_server_state tess_server_state_parse(const char *s)
{
    if (!s)
        return TESS_SERVER_UNKNOWN;
    if (strcmp(s, "up") == 0)
        return TESS_SERVER_UP;
    if (strcmp(s, "down") == 0)
        return TESS_SERVER_DOWN;
    if (strcmp(s, "draining") == 0)
        return TESS_SERVER_DRAINING;
    if (strcmp(s, "suspect") == 0)
        return TESS_SERVER_SUSPECT;
    if (strcmp(s, "removed") == 0)
        return TESS_SERVER_REMOVED;
    return TESS_SERVER_UNKNOWN;
}

const char *tess_server_state_name(enum tess_server_state s)
{
    switch (s) {
    case TESS_SERVER_UP: return "up";
    case TESS_SERVER_DOWN: return "down";
    case TESS_SERVER_DRAINING: return "draining";
    case TESS_SERVER_SUSPECT: return "suspect";
    case TESS_SERVER_REMOVED: return "removed";
    default: return "unknown";
    }
}

void tess_servers_free(tess_servers *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].id);
        free(s->v[i].address);
        free(s->v[i].zone);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

const tess_server *tess_servers_find(const tess_servers *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].id, id) == 0)
            return &s->v[i];
    return NULL;
}

int tess_servers_from_json(const json_t *j, tess_servers *out, ts_error *err)
{
    const json_t *arr = json_object_get(j, "servers");
    tess_servers s = {0};
    int rc = 0;

    if (!json_is_array(arr))
        return ts_fail(err, TS_EPROTO, "answer has no 'servers' array");
    s.v = ts_calloc(json_array_size(arr) + 1, sizeof(*s.v));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *o = json_array_get(arr, i);
        tess_server *v = &s.v[s.n];
        const char *id, *addr, *zone, *state;
        const json_t *w = json_object_get(o, "weight");
        int present;

        if ((rc = ts_json_str(o, "id", &id, err)) != 0 ||
            (rc = ts_json_str(o, "address", &addr, err)) != 0) {
            ts_error_prefix(err, "servers[%zu]", i);
            goto free_servers;
        }
        zone = json_string_value(json_object_get(o, "zone"));
        state = json_string_value(json_object_get(o, "state"));
        v->id = ts_strdup(id);
        v->address = ts_strdup(addr);
        v->zone = ts_strdup(zone ? zone : "");
        s.n++;
        v->weight = json_is_number(w) ? json_number_value(w) : 1.0;
        if (v->weight <= 0)
            v->weight = 1.0;
        v->state = tess_server_state_parse(state);
        v->last_heartbeat_ms_ago = -1;
        if ((rc = ts_json_u64_opt(o, "capacity", &v->capacity, &present, err)) != 0 ||
            (rc = ts_json_u64_opt(o, "used", &v->used, &present, err)) != 0 ||
            (rc = ts_json_u64_opt(o, "chunks", &v->chunks, &present, err)) != 0 ||
            (rc = ts_json_i64_opt(o, "last_heartbeat_ms_ago", &v->last_heartbeat_ms_ago,
                                  &present, err)) != 0) {
            ts_error_prefix(err, "server %s", id);
            goto free_servers;
        }
    }
    *out = s;
    return 0;
free_servers:
    tess_servers_free(&s);
    return rc;
}

int tess_cluster_servers(tess_client *c, tess_servers *out, ts_error *err)
{
    json_t *resp = NULL;
    int rc;

    if ((rc = tess_meta_call(c, "GET", "/v1/cluster/servers", NULL, &resp, "cluster servers",
                             err)) != 0)
        return rc;
    if ((rc = tess_servers_from_json(resp, out, err)) != 0)
        ts_error_prefix(err, "cluster servers");
    json_decref(resp);
    return rc;
}

void tess_cluster_status_free(tess_cluster_status *s)
{
    tess_servers_free(&s->servers);
    json_decref(s->raw);
    s->raw = NULL;
}

int tess_cluster_status_get(tess_client *c, tess_cluster_status *out, ts_error *err)
{
    json_t *resp = NULL;
    int present, rc;

    memset(out, 0, sizeof(*out));
    if ((rc = tess_meta_call(c, "GET", "/v1/cluster/status", NULL, &resp, "cluster status",
                             err)) != 0)
        return rc;
    if ((rc = tess_servers_from_json(resp, &out->servers, err)) != 0 ||
        (rc = ts_json_u64_opt(resp, "chunks", &out->chunks, &present, err)) != 0 ||
        (rc = ts_json_u64_opt(resp, "under_replicated", &out->under_replicated, &present, err)) != 0 ||
        (rc = ts_json_u64_opt(resp, "files", &out->files, &present, err)) != 0 ||
        (rc = ts_json_u64_opt(resp, "directories", &out->directories, &present, err)) != 0) {
        ts_error_prefix(err, "cluster status");
        tess_servers_free(&out->servers);
        json_decref(resp);
        return rc;
    }
    out->raw = resp;
    return 0;
}
