/*
 * The namespace state machine: inodes, directory entries and the operations
 * on the tree (lookup, create, unlink, rename, ...).  File data (extents and
 * chunks) lives in namespace_extents.c, the invariant checker in
 * namespace_check.c, serialization in namespace_codec.c.
 *
 * Every mutation has two phases: validate (may fail, changes nothing), then
 * mutate (cannot fail; allocation failures abort the daemon).  That is how a
 * failed command leaves the state unchanged, which the WAL relies on.
 */
#include "metadata/namespace_int.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

/* ---- table ops ---- */

static uint32_t inode_hash(const void *e)
{
    return ns_ino_hash(((const struct ns_inode *)e)->ino);
}

static int inode_cmp(const void *e, const void *key)
{
    uint64_t a = ((const struct ns_inode *)e)->ino, b = *(const uint64_t *)key;
    return a < b ? -1 : a > b;
}

static int inode_cmp_elem(const void *a, const void *b)
{
    return inode_cmp(a, &((const struct ns_inode *)b)->ino);
}

const ptab_ops ns_inode_ops = { inode_hash, inode_cmp, inode_cmp_elem };

static uint32_t dentry_hash(const void *e)
{
    return ((const struct ns_dentry *)e)->hash;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, TS_MIN(alen, blen));
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int dentry_cmp(const void *e, const void *key)
{
    const struct ns_dentry *d = e;
    const struct ns_name_key *k = key;
    return name_cmp(d->name, d->len, k->name, k->len);
}

static int dentry_cmp_elem(const void *a, const void *b)
{
    const struct ns_dentry *x = a, *y = b;
    return name_cmp(x->name, x->len, y->name, y->len);
}

const ptab_ops ns_dentry_ops = { dentry_hash, dentry_cmp, dentry_cmp_elem };

/* ---- helpers ---- */

struct ns_inode *ns_inode_get(const ns_state *ns, uint64_t ino)
{
    return ptab_find(&ns->inodes, &ns_inode_ops, ns_ino_hash(ino), &ino);
}

void ns_fill_attr(const struct ns_inode *in, ts_attr *out)
{
    if (!out)
        return;
    out->ino = in->ino;
    out->mode = in->mode;
    out->nlink = in->nlink;
    out->uid = in->uid;
    out->gid = in->gid;
    out->size = in->size;
    out->atime_ns = in->atime;
    out->mtime_ns = in->mtime;
    out->ctime_ns = in->ctime;
    out->version = in->version;
}

static int is_dir(const struct ns_inode *in)
{
    return S_ISDIR(in->mode);
}

int ns_check_name(const char *name, ts_error *err)
{
    if (!name || !*name)
        return ts_fail(err, TS_EINVAL, "empty name");
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return ts_fail(err, TS_EINVAL, "name '%s' is reserved", name);
    size_t n = strlen(name);
    if (n > TS_NAME_MAX)
        return ts_fail(err, TS_ENAMETOOLONG, "name of %zu bytes exceeds %d", n, TS_NAME_MAX);
    if (memchr(name, '/', n))
        return ts_fail(err, TS_EINVAL, "name '%s' contains '/'", name);
    return 0;
}

/* The directory inode `ino`, or ENOENT / ENOTDIR naming the operation. */
static int get_dir(const ns_state *ns, uint64_t ino, const char *op, struct ns_inode **out,
                   ts_error *err)
{
    struct ns_inode *in = ns_inode_get(ns, ino);
    if (!in)
        return ts_fail(err, TS_ENOENT, "%s: no inode %llu", op, (unsigned long long)ino);
    if (!is_dir(in))
        return ts_fail(err, TS_ENOTDIR, "%s: inode %llu is not a directory", op,
                       (unsigned long long)ino);
    *out = in;
    return 0;
}

static struct ns_dentry *dentry_find(const struct ns_inode *dir, const char *name)
{
    struct ns_name_key k = { name, strlen(name) };
    return ptab_find(&dir->u.dir->children, &ns_dentry_ops, ptab_hash_bytes(name, k.len), &k);
}

static void dentry_add(struct ns_inode *dir, const char *name, uint64_t ino)
{
    size_t len = strlen(name);
    struct ns_dentry *d = ts_malloc(offsetof(struct ns_dentry, name) + len + 1);
    d->ino = ino;
    d->len = (uint8_t)len;
    d->hash = ptab_hash_bytes(name, len);
    memcpy(d->name, name, len + 1);
    struct ns_name_key k = { d->name, len };
    if (ptab_insert(&dir->u.dir->children, &ns_dentry_ops, d, d->hash, &k) != 0)
        ts_die("namespace: duplicate entry '%s' in %llu after validation", name,
               (unsigned long long)dir->ino);
}

static void dentry_del(struct ns_inode *dir, const char *name)
{
    struct ns_name_key k = { name, strlen(name) };
    struct ns_dentry *d = ptab_remove(&dir->u.dir->children, &ns_dentry_ops,
                                      ptab_hash_bytes(name, k.len), &k);
    if (!d)
        ts_die("namespace: entry '%s' of %llu vanished", name, (unsigned long long)dir->ino);
    free(d);
}

static void touch_dir(struct ns_inode *dir, int64_t now)
{
    dir->mtime = dir->ctime = now;
    dir->version++;
}

/* A new inode with the next number; not yet in the table. */
static struct ns_inode *inode_alloc(ns_state *ns, uint32_t mode, uint32_t uid, uint32_t gid,
                                    int64_t now)
{
    struct ns_inode *in = ts_calloc(1, sizeof(*in));
    in->ino = ns->next_ino++;
    in->mode = mode;
    in->uid = uid;
    in->gid = gid;
    in->nlink = 1;
    in->atime = in->mtime = in->ctime = now;
    in->version = 1;
    return in;
}

void ns_inode_insert(ns_state *ns, struct ns_inode *in)
{
    if (ptab_insert(&ns->inodes, &ns_inode_ops, in, ns_ino_hash(in->ino), &in->ino) != 0)
        ts_die("namespace: inode %llu inserted twice", (unsigned long long)in->ino);
    if (is_dir(in))
        ns->ndirs++;
    else if (S_ISLNK(in->mode))
        ns->nsymlinks++;
    else
        ns->nfiles++;
}

void ns_inode_destroy(ns_state *ns, struct ns_inode *in)
{
    if (!ptab_remove(&ns->inodes, &ns_inode_ops, ns_ino_hash(in->ino), &in->ino))
        ts_die("namespace: destroying unknown inode %llu", (unsigned long long)in->ino);
    ns_xattrs_drop(ns, in->ino);
    if (is_dir(in)) {
        ptab_free(&in->u.dir->children);
        free(in->u.dir);
        ns->ndirs--;
    } else if (S_ISLNK(in->mode)) {
        free(in->u.target);
        ns->nsymlinks--;
    } else {
        ns_extents_truncate(ns, in, 0);
        ns->nfiles--;
    }
    free(in);
}

ns_state *ns_new(int64_t now_ns)
{
    ns_state *ns = ts_calloc(1, sizeof(*ns));
    ns->next_ino = TS_ROOT_INO;
    struct ns_inode *root = inode_alloc(ns, S_IFDIR | 0755, 0, 0, now_ns);
    root->nlink = 2;
    root->u.dir = ts_calloc(1, sizeof(struct ns_dir));
    root->u.dir->parent = TS_ROOT_INO;
    ns_inode_insert(ns, root);
    return ns;
}

void ns_free(ns_state *ns)
{
    if (!ns)
        return;
    size_t n = ptab_nslots(&ns->inodes);
    for (size_t i = 0; i < n; i++) {
        struct ns_inode *in = ns->inodes.slot[i];
        if (!in)
            continue;
        if (is_dir(in)) {
            ptab *c = &in->u.dir->children;
            size_t m = ptab_nslots(c);
            for (size_t j = 0; j < m; j++)
                free(c->slot[j]);
            ptab_free(c);
            free(in->u.dir);
        } else if (S_ISLNK(in->mode)) {
            free(in->u.target);
        } else {
            free(in->u.ext);
        }
        free(in);
    }
    ptab_free(&ns->inodes);
    ns_xattrs_free_all(ns);
    ns_reserved_free(ns);
    n = ptab_nslots(&ns->chunks);
    for (size_t i = 0; i < n; i++) {
        struct ns_chunk *c = ns->chunks.slot[i];
        if (c)
            free(c->data);
        free(c);
    }
    ptab_free(&ns->chunks);
    for (size_t i = 0; i < ns->n_servers; i++) {
        free(ns->servers[i].id);
        free(ns->servers[i].address);
        free(ns->servers[i].zone);
    }
    free(ns->servers);
    free(ns);
}

/* ---- reads ---- */

int ns_getattr(const ns_state *ns, uint64_t ino, ts_attr *out, ts_error *err)
{
    struct ns_inode *in = ns_inode_get(ns, ino);
    if (!in)
        return ts_fail(err, TS_ENOENT, "getattr: no inode %llu", (unsigned long long)ino);
    ns_fill_attr(in, out);
    return 0;
}

int ns_lookup(const ns_state *ns, uint64_t parent, const char *name, ts_attr *out, ts_error *err)
{
    struct ns_inode *dir;
    int rc = get_dir(ns, parent, "lookup", &dir, err);
    if (rc)
        return rc;
    if ((rc = ns_check_name(name, err)) != 0) {
        ts_error_prefix(err, "lookup %llu", (unsigned long long)parent);
        return rc;
    }
    struct ns_dentry *d = dentry_find(dir, name);
    if (!d)
        return ts_fail(err, TS_ENOENT, "lookup %llu/'%s': no such entry",
                       (unsigned long long)parent, name);
    struct ns_inode *in = ns_inode_get(ns, d->ino);
    if (!in)
        ts_die("namespace: entry %llu/'%s' names missing inode %llu",
               (unsigned long long)parent, name, (unsigned long long)d->ino);
    ns_fill_attr(in, out);
    return 0;
}

int ns_resolve(const ns_state *ns, const char *path, ts_attr *out, ts_error *err)
{
    if (!path || path[0] != '/')
        return ts_fail(err, TS_EINVAL, "resolve: path '%s' is not absolute", path ? path : "");
    if (strlen(path) > TS_PATH_MAX)
        return ts_fail(err, TS_ENAMETOOLONG, "resolve: path longer than %d bytes", TS_PATH_MAX);
    struct ns_inode *cur = ns_inode_get(ns, TS_ROOT_INO);
    const char *p = path;
    char comp[TS_NAME_MAX + 1];
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        if (len > TS_NAME_MAX)
            return ts_fail(err, TS_ENAMETOOLONG, "resolve '%s': component of %zu bytes", path, len);
        memcpy(comp, p, len);
        comp[len] = '\0';
        p = end;
        if (!is_dir(cur))
            return ts_fail(err, TS_ENOTDIR, "resolve '%s': '%s' follows a non-directory", path,
                           comp);
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            cur = ns_inode_get(ns, cur->u.dir->parent);
            continue;
        }
        struct ns_dentry *d = dentry_find(cur, comp);
        if (!d)
            return ts_fail(err, TS_ENOENT, "resolve '%s': no entry '%s' in %llu", path, comp,
                           (unsigned long long)cur->ino);
        cur = ns_inode_get(ns, d->ino);
    }
    ns_fill_attr(cur, out);
    return 0;
}

int ns_readlink(const ns_state *ns, uint64_t ino, const char **target, ts_error *err)
{
    struct ns_inode *in = ns_inode_get(ns, ino);
    if (!in)
        return ts_fail(err, TS_ENOENT, "readlink: no inode %llu", (unsigned long long)ino);
    if (!S_ISLNK(in->mode))
        return ts_fail(err, TS_EINVAL, "readlink: inode %llu is not a symlink",
                       (unsigned long long)ino);
    *target = in->u.target;
    return 0;
}

int ns_readdir(const ns_state *ns, uint64_t ino, const char *after, uint32_t limit,
               ns_readdir_fn fn, void *arg, int *more, ts_error *err)
{
    struct ns_inode *dir;
    int rc = get_dir(ns, ino, "readdir", &dir, err);
    if (rc)
        return rc;
    if (limit == 0)
        return ts_fail(err, TS_EINVAL, "readdir %llu: limit must be positive",
                       (unsigned long long)ino);
    const ptab *t = &dir->u.dir->children;
    size_t pos = 0;
    if (after) {
        struct ns_name_key k = { after, strlen(after) };
        pos = ptab_seek(t, &ns_dentry_ops, ptab_hash_bytes(after, k.len), &k);
    }
    size_t n = ptab_nslots(t);
    uint32_t listed = 0;
    *more = 0;
    for (; pos < n; pos++) {
        const struct ns_dentry *d = t->slot[pos];
        if (!d)
            continue;
        if (listed == limit) {
            *more = 1;
            break;
        }
        ts_attr a;
        ns_fill_attr(ns_inode_get(ns, d->ino), &a);
        if (fn(arg, d->name, &a)) {
            *more = 1;
            break;
        }
        listed++;
    }
    return 0;
}

/* ---- creation ---- */

/* Common validation of "create `name` in `parent`". */
static int prepare_new_entry(ns_state *ns, uint64_t parent, const char *name, const char *op,
                             struct ns_inode **dir, ts_error *err)
{
    int rc = get_dir(ns, parent, op, dir, err);
    if (rc)
        return rc;
    if ((rc = ns_check_name(name, err)) != 0) {
        ts_error_prefix(err, "%s %llu", op, (unsigned long long)parent);
        return rc;
    }
    if (dentry_find(*dir, name))
        return ts_fail(err, TS_EEXIST, "%s %llu/'%s': entry exists", op,
                       (unsigned long long)parent, name);
    return 0;
}

int ns_mkdir(ns_state *ns, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, int64_t now, ts_attr *out, ts_error *err)
{
    struct ns_inode *dir;
    if ((mode & S_IFMT) && (mode & S_IFMT) != S_IFDIR)
        return ts_fail(err, TS_EINVAL, "mkdir: mode %o is not a directory mode", mode);
    int rc = prepare_new_entry(ns, parent, name, "mkdir", &dir, err);
    if (rc)
        return rc;
    struct ns_inode *in = inode_alloc(ns, S_IFDIR | (mode & 07777), uid, gid, now);
    in->nlink = 2;
    in->u.dir = ts_calloc(1, sizeof(struct ns_dir));
    in->u.dir->parent = parent;
    ns_inode_insert(ns, in);
    dentry_add(dir, name, in->ino);
    dir->nlink++;
    touch_dir(dir, now);
    ns_fill_attr(in, out);
    return 0;
}

int ns_create(ns_state *ns, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
              uint32_t gid, uint32_t flags, int64_t now, ts_attr *out, int *created,
              ts_error *err)
{
    struct ns_inode *dir;
    *created = 0;
    if ((mode & S_IFMT) && (mode & S_IFMT) != S_IFREG)
        return ts_fail(err, TS_EINVAL, "create: mode %o is not a regular file mode", mode);
    if (flags & ~(uint32_t)(NS_CREATE_EXCL | NS_CREATE_TRUNC))
        return ts_fail(err, TS_EINVAL, "create: unknown flags %#x", flags);
    int rc = get_dir(ns, parent, "create", &dir, err);
    if (rc)
        return rc;
    if ((rc = ns_check_name(name, err)) != 0) {
        ts_error_prefix(err, "create %llu", (unsigned long long)parent);
        return rc;
    }
    struct ns_dentry *d = dentry_find(dir, name);
    if (d) {
        struct ns_inode *old = ns_inode_get(ns, d->ino);
        if (flags & NS_CREATE_EXCL)
            return ts_fail(err, TS_EEXIST, "create %llu/'%s': entry exists",
                           (unsigned long long)parent, name);
        if (is_dir(old))
            return ts_fail(err, TS_EISDIR, "create %llu/'%s': is a directory",
                           (unsigned long long)parent, name);
        if (!S_ISREG(old->mode))
            return ts_fail(err, TS_EEXIST, "create %llu/'%s': exists and is not a regular file",
                           (unsigned long long)parent, name);
        if ((flags & NS_CREATE_TRUNC) && (old->size > 0 || old->u.ext)) {
            ns_extents_truncate(ns, old, 0);
            old->size = 0;
            old->mtime = old->ctime = now;
            old->version++;
        }
        ns_fill_attr(old, out);
        return 0;
    }
    struct ns_inode *in = inode_alloc(ns, S_IFREG | (mode & 07777), uid, gid, now);
    ns_inode_insert(ns, in);
    dentry_add(dir, name, in->ino);
    touch_dir(dir, now);
    ns_fill_attr(in, out);
    *created = 1;
    return 0;
}

static void drop_link(ns_state *ns, struct ns_inode *in, int64_t now);

int ns_create_at(ns_state *ns, uint64_t parent, const char *name, uint64_t ino, uint32_t mode,
                 uint32_t uid, uint32_t gid, uint32_t flags, const ns_commit_args *commit,
                 int64_t now, ts_attr *out, ts_error *err)
{
    struct ns_inode *dir;
    unsigned long long p = (unsigned long long)parent;
    if (commit) {
        if (commit->ino != ino)
            return ts_fail(err, TS_EINVAL, "create %llu/'%s': the data is for inode %llu, not "
                           "%llu", p, name, (unsigned long long)commit->ino,
                           (unsigned long long)ino);
        /* Only chunks the commit lists: a file replaced below may hold the
         * last reference to a known one. */
        for (size_t i = 0; i < commit->n_extents; i++) {
            size_t k = 0;
            while (k < commit->n_chunks &&
                   !ts_chunk_id_eq(&commit->chunks[k].id, &commit->extents[i].chunk))
                k++;
            if (k == commit->n_chunks)
                return ts_fail(err, TS_EINVAL, "create %llu/'%s': extent %zu names a chunk the "
                               "request does not list", p, name, i);
        }
        ts_extent *sorted = ts_malloc((commit->n_extents + 1) * sizeof(ts_extent));
        int vrc = ns_commit_validate(ns, commit, sorted, err);
        free(sorted);
        if (vrc != 0)
            return vrc;
    }
    if ((mode & S_IFMT) && (mode & S_IFMT) != S_IFREG)
        return ts_fail(err, TS_EINVAL, "create: mode %o is not a regular file mode", mode);
    if (flags & ~(uint32_t)NS_CREATE_REPLACE)
        return ts_fail(err, TS_EINVAL, "create: unknown flags %#x", flags);
    if (!ns_reserved_has(ns, ino))
        return ts_fail(err, TS_EINVAL, "create %llu/'%s': inode %llu is not a reserved, unused "
                       "number", p, name, (unsigned long long)ino);
    int rc = get_dir(ns, parent, "create", &dir, err);
    if (rc)
        return rc;
    if ((rc = ns_check_name(name, err)) != 0) {
        ts_error_prefix(err, "create %llu", p);
        return rc;
    }
    struct ns_dentry *d = dentry_find(dir, name);
    if (d) {
        struct ns_inode *old = ns_inode_get(ns, d->ino);
        if (is_dir(old))
            return ts_fail(err, TS_EISDIR, "create %llu/'%s': is a directory", p, name);
        if (!(flags & NS_CREATE_REPLACE) || !S_ISREG(old->mode))
            return ts_fail(err, TS_EEXIST, "create %llu/'%s': entry exists", p, name);
        dentry_del(dir, name);
        drop_link(ns, old, now);
    }
    ns_reserved_take(ns, ino);
    struct ns_inode *in = ts_calloc(1, sizeof(*in));
    in->ino = ino;
    in->mode = S_IFREG | (mode & 07777);
    in->uid = uid;
    in->gid = gid;
    in->nlink = 1;
    in->atime = in->mtime = in->ctime = now;
    in->version = 1;
    ns_inode_insert(ns, in);
    dentry_add(dir, name, in->ino);
    touch_dir(dir, now);
    ns_fill_attr(in, out);
    if (commit) {
        ts_error e2 = {0};
        if (ns_commit(ns, commit, now, out, &e2) != 0)
            ts_die("create_at: validated commit of new inode %llu failed: %s",
                   (unsigned long long)ino, e2.msg);
    }
    return 0;
}

int ns_symlink(ns_state *ns, uint64_t parent, const char *name, const char *target,
               uint32_t uid, uint32_t gid, int64_t now, ts_attr *out, ts_error *err)
{
    struct ns_inode *dir;
    if (!target || !*target)
        return ts_fail(err, TS_EINVAL, "symlink: empty target");
    size_t tlen = strlen(target);
    if (tlen > TS_PATH_MAX)
        return ts_fail(err, TS_ENAMETOOLONG, "symlink: target of %zu bytes exceeds %d", tlen,
                       TS_PATH_MAX);
    int rc = prepare_new_entry(ns, parent, name, "symlink", &dir, err);
    if (rc)
        return rc;
    struct ns_inode *in = inode_alloc(ns, S_IFLNK | 0777, uid, gid, now);
    in->u.target = ts_strdup(target);
    in->size = tlen;
    ns_inode_insert(ns, in);
    dentry_add(dir, name, in->ino);
    touch_dir(dir, now);
    ns_fill_attr(in, out);
    return 0;
}

int ns_link(ns_state *ns, uint64_t ino, uint64_t new_parent, const char *new_name,
            int64_t now, ts_attr *out, ts_error *err)
{
    struct ns_inode *dir;
    struct ns_inode *in = ns_inode_get(ns, ino);
    if (!in)
        return ts_fail(err, TS_ENOENT, "link: no inode %llu", (unsigned long long)ino);
    if (is_dir(in))
        return ts_fail(err, TS_EPERM, "link: inode %llu is a directory", (unsigned long long)ino);
    if (in->nlink == UINT32_MAX)
        return ts_fail(err, TS_EINVAL, "link: inode %llu has too many links",
                       (unsigned long long)ino);
    int rc = prepare_new_entry(ns, new_parent, new_name, "link", &dir, err);
    if (rc)
        return rc;
    dentry_add(dir, new_name, ino);
    in->nlink++;
    in->ctime = now;
    in->version++;
    touch_dir(dir, now);
    ns_fill_attr(in, out);
    return 0;
}

/* ---- removal ---- */

/* Drops one link of a non-directory; frees it at zero. */
static void drop_link(ns_state *ns, struct ns_inode *in, int64_t now)
{
    if (--in->nlink == 0) {
        ns_inode_destroy(ns, in);
        return;
    }
    in->ctime = now;
    in->version++;
}

int ns_unlink(ns_state *ns, uint64_t parent, const char *name, int64_t now, ts_error *err)
{
    struct ns_inode *dir;
    int rc = get_dir(ns, parent, "unlink", &dir, err);
    if (rc)
        return rc;
    if ((rc = ns_check_name(name, err)) != 0) {
        ts_error_prefix(err, "unlink %llu", (unsigned long long)parent);
        return rc;
    }
    struct ns_dentry *d = dentry_find(dir, name);
    if (!d)
        return ts_fail(err, TS_ENOENT, "unlink %llu/'%s': no such entry",
                       (unsigned long long)parent, name);
    struct ns_inode *in = ns_inode_get(ns, d->ino);
    if (is_dir(in))
        return ts_fail(err, TS_EISDIR, "unlink %llu/'%s': is a directory",
                       (unsigned long long)parent, name);
    dentry_del(dir, name);
    touch_dir(dir, now);
    drop_link(ns, in, now);
    return 0;
}

int ns_rmdir(ns_state *ns, uint64_t parent, const char *name, int64_t now, ts_error *err)
{
    struct ns_inode *dir;
    int rc = get_dir(ns, parent, "rmdir", &dir, err);
    if (rc)
        return rc;
    if ((rc = ns_check_name(name, err)) != 0) {
        ts_error_prefix(err, "rmdir %llu", (unsigned long long)parent);
        return rc;
    }
    struct ns_dentry *d = dentry_find(dir, name);
    if (!d)
        return ts_fail(err, TS_ENOENT, "rmdir %llu/'%s': no such entry",
                       (unsigned long long)parent, name);
    struct ns_inode *in = ns_inode_get(ns, d->ino);
    if (!is_dir(in))
        return ts_fail(err, TS_ENOTDIR, "rmdir %llu/'%s': not a directory",
                       (unsigned long long)parent, name);
    if (in->u.dir->children.count)
        return ts_fail(err, TS_ENOTEMPTY, "rmdir %llu/'%s': directory not empty",
                       (unsigned long long)parent, name);
    dentry_del(dir, name);
    dir->nlink--;
    touch_dir(dir, now);
    ns_inode_destroy(ns, in);
    return 0;
}

/* ---- rename ---- */

/* 1 when directory `anc` is `ino` or one of its ancestors. */
static int is_ancestor_or_self(const ns_state *ns, uint64_t anc, uint64_t ino)
{
    for (;;) {
        if (ino == anc)
            return 1;
        if (ino == TS_ROOT_INO)
            return 0;
        struct ns_inode *in = ns_inode_get(ns, ino);
        ino = in->u.dir->parent;
    }
}

/* Moves directory `in` from parent sp to dp (link counts and parent). */
static void move_dir_parent(struct ns_inode *in, struct ns_inode *sp, struct ns_inode *dp)
{
    if (!is_dir(in) || sp == dp)
        return;
    sp->nlink--;
    dp->nlink++;
    in->u.dir->parent = dp->ino;
}

static int rename_exchange(ns_state *ns, struct ns_inode *sp, struct ns_dentry *sd,
                           struct ns_inode *dp, struct ns_dentry *dd, int64_t now,
                           ts_error *err)
{
    struct ns_inode *src = ns_inode_get(ns, sd->ino);
    struct ns_inode *dst = ns_inode_get(ns, dd->ino);
    if (sd == dd)
        return 0;
    if (is_dir(src) && is_ancestor_or_self(ns, src->ino, dp->ino))
        return ts_fail(err, TS_EINVAL, "rename: cannot move directory %llu into its own subtree",
                       (unsigned long long)src->ino);
    if (is_dir(dst) && is_ancestor_or_self(ns, dst->ino, sp->ino))
        return ts_fail(err, TS_EINVAL, "rename: cannot move directory %llu into its own subtree",
                       (unsigned long long)dst->ino);
    uint64_t t = sd->ino;
    sd->ino = dd->ino;
    dd->ino = t;
    move_dir_parent(src, sp, dp);
    move_dir_parent(dst, dp, sp);
    src->ctime = dst->ctime = now;
    src->version++;
    dst->version++;
    touch_dir(sp, now);
    if (dp != sp)
        touch_dir(dp, now);
    return 0;
}

int ns_rename(ns_state *ns, uint64_t parent, const char *name, uint64_t new_parent,
              const char *new_name, uint32_t flags, int64_t now, ts_error *err)
{
    struct ns_inode *sp, *dp;
    int rc;
    if (flags & ~(uint32_t)(NS_RENAME_NOREPLACE | NS_RENAME_EXCHANGE) ||
        flags == (NS_RENAME_NOREPLACE | NS_RENAME_EXCHANGE))
        return ts_fail(err, TS_EINVAL, "rename: invalid flags %#x", flags);
    if ((rc = get_dir(ns, parent, "rename", &sp, err)) != 0 ||
        (rc = get_dir(ns, new_parent, "rename", &dp, err)) != 0)
        return rc;
    if ((rc = ns_check_name(name, err)) != 0 || (rc = ns_check_name(new_name, err)) != 0) {
        ts_error_prefix(err, "rename");
        return rc;
    }
    struct ns_dentry *sd = dentry_find(sp, name);
    if (!sd)
        return ts_fail(err, TS_ENOENT, "rename %llu/'%s': no such entry",
                       (unsigned long long)parent, name);
    struct ns_dentry *dd = dentry_find(dp, new_name);
    if (flags & NS_RENAME_EXCHANGE) {
        if (!dd)
            return ts_fail(err, TS_ENOENT, "rename exchange %llu/'%s': no such entry",
                           (unsigned long long)new_parent, new_name);
        return rename_exchange(ns, sp, sd, dp, dd, now, err);
    }
    struct ns_inode *src = ns_inode_get(ns, sd->ino);
    struct ns_inode *dst = NULL;
    if (dd) {
        if (flags & NS_RENAME_NOREPLACE)
            return ts_fail(err, TS_EEXIST, "rename %llu/'%s': target exists",
                           (unsigned long long)new_parent, new_name);
        if (dd->ino == sd->ino)
            return 0;   /* same inode (or same entry): POSIX says do nothing */
        dst = ns_inode_get(ns, dd->ino);
        if (is_dir(src) && !is_dir(dst))
            return ts_fail(err, TS_ENOTDIR, "rename %llu/'%s': target is not a directory",
                           (unsigned long long)new_parent, new_name);
        if (!is_dir(src) && is_dir(dst))
            return ts_fail(err, TS_EISDIR, "rename %llu/'%s': target is a directory",
                           (unsigned long long)new_parent, new_name);
        if (is_dir(dst) && dst->u.dir->children.count)
            return ts_fail(err, TS_ENOTEMPTY, "rename %llu/'%s': target directory not empty",
                           (unsigned long long)new_parent, new_name);
    }
    if (is_dir(src) && is_ancestor_or_self(ns, src->ino, dp->ino))
        return ts_fail(err, TS_EINVAL, "rename %llu/'%s': cannot move a directory into its "
                       "own subtree", (unsigned long long)parent, name);

    /* Validated; mutate. */
    uint64_t src_ino = src->ino;
    if (dd) {
        /* Reuse the target entry for the source inode, then drop the old target. */
        dd->ino = src_ino;
        if (is_dir(dst)) {
            dp->nlink--;
            ns_inode_destroy(ns, dst);
        } else {
            drop_link(ns, dst, now);
        }
    } else {
        dentry_add(dp, new_name, src_ino);
    }
    dentry_del(sp, name);
    move_dir_parent(src, sp, dp);
    src->ctime = now;
    src->version++;
    touch_dir(sp, now);
    if (dp != sp)
        touch_dir(dp, now);
    return 0;
}

/* ---- setattr ---- */

int ns_setattr(ns_state *ns, uint64_t ino, const ns_setattr_args *a, int64_t now,
               ts_attr *out, ts_error *err)
{
    struct ns_inode *in = ns_inode_get(ns, ino);
    if (!in)
        return ts_fail(err, TS_ENOENT, "setattr: no inode %llu", (unsigned long long)ino);
    if (a->valid & ~(uint32_t)0x3f)
        return ts_fail(err, TS_EINVAL, "setattr %llu: unknown fields %#x",
                       (unsigned long long)ino, a->valid);
    if (a->valid & NS_SETATTR_SIZE) {
        if (is_dir(in))
            return ts_fail(err, TS_EISDIR, "setattr %llu: cannot set the size of a directory",
                           (unsigned long long)ino);
        if (!S_ISREG(in->mode))
            return ts_fail(err, TS_EINVAL, "setattr %llu: size only applies to regular files",
                           (unsigned long long)ino);
        if (a->size > (uint64_t)INT64_MAX)
            return ts_fail(err, TS_EFBIG, "setattr %llu: size %llu too large",
                           (unsigned long long)ino, (unsigned long long)a->size);
    }
    if (a->valid & NS_SETATTR_MODE)
        in->mode = (in->mode & S_IFMT) | (a->mode & 07777);
    if (a->valid & NS_SETATTR_UID)
        in->uid = a->uid;
    if (a->valid & NS_SETATTR_GID)
        in->gid = a->gid;
    if ((a->valid & NS_SETATTR_SIZE) && a->size != in->size) {
        if (a->size < in->size)
            ns_extents_truncate(ns, in, a->size);
        in->size = a->size;
        in->mtime = now;
    }
    if (a->valid & NS_SETATTR_ATIME)
        in->atime = a->atime_ns;
    if (a->valid & NS_SETATTR_MTIME)
        in->mtime = a->mtime_ns;
    in->ctime = now;
    in->version++;
    ns_fill_attr(in, out);
    return 0;
}

void ns_get_stats(const ns_state *ns, ns_stats *st)
{
    st->files = ns->nfiles;
    st->directories = ns->ndirs;
    st->symlinks = ns->nsymlinks;
    st->chunks = ns->chunks.count;
    st->garbage_chunks = ns->garbage_chunks;
    st->inline_chunks = ns->inline_chunks;
    st->inline_bytes = ns->inline_bytes;
    st->next_ino = ns->next_ino;
    st->membership_epoch = ns->membership_epoch;
    st->extents = ns->nextents;
}
