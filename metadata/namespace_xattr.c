/*
 * Extended attributes of the namespace: a separate table keyed by inode, so
 * that the (vast majority of) inodes without any attribute pay nothing for
 * them -- not even a pointer in struct ns_inode.  Each inode's attributes
 * are kept sorted by name, which makes listings and the snapshot encoding
 * canonical.
 */
#include "metadata/namespace_int.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

static uint32_t xattrs_hash(const void *e)
{
    return ns_ino_hash(((const struct ns_xattrs *)e)->ino);
}

static int xattrs_cmp(const void *e, const void *key)
{
    uint64_t a = ((const struct ns_xattrs *)e)->ino, b = *(const uint64_t *)key;
    return a < b ? -1 : a > b;
}

static int xattrs_cmp_elem(const void *a, const void *b)
{
    return xattrs_cmp(a, &((const struct ns_xattrs *)b)->ino);
}

const ptab_ops ns_xattrs_ops = { xattrs_hash, xattrs_cmp, xattrs_cmp_elem };

struct ns_xattrs *ns_xattrs_get(const ns_state *ns, uint64_t ino)
{
    return ptab_find(&ns->xattrs, &ns_xattrs_ops, ns_ino_hash(ino), &ino);
}

static void xattrs_free(struct ns_xattrs *x)
{
    for (uint32_t i = 0; i < x->n; i++) {
        free(x->v[i].name);
        free(x->v[i].value);
    }
    free(x->v);
    free(x);
}

void ns_xattrs_drop(ns_state *ns, uint64_t ino)
{
    struct ns_xattrs *x = ptab_remove(&ns->xattrs, &ns_xattrs_ops, ns_ino_hash(ino), &ino);

    if (x)
        xattrs_free(x);
}

void ns_xattrs_free_all(ns_state *ns)
{
    size_t n = ptab_nslots(&ns->xattrs);

    for (size_t i = 0; i < n; i++)
        if (ns->xattrs.slot[i])
            xattrs_free(ns->xattrs.slot[i]);
    ptab_free(&ns->xattrs);
}

/* Index of name in x (sorted), or where it would go with *found = 0. */
static uint32_t xattr_pos(const struct ns_xattrs *x, const char *name, int *found)
{
    uint32_t lo = 0, hi = x ? x->n : 0;

    *found = 0;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(x->v[mid].name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ns_check_xattr_name(const char *name, ts_error *err)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0)
        return ts_fail(err, TS_EINVAL, "empty attribute name");
    if (n > NS_XATTR_NAME_MAX)
        return ts_fail(err, TS_ERANGE, "attribute name of %zu bytes exceeds %d", n,
                       NS_XATTR_NAME_MAX);
    return 0;
}

int ns_getxattr(const ns_state *ns, uint64_t ino, const char *name, const void **value,
                size_t *len, ts_error *err)
{
    int found, rc;

    if (!ns_inode_get(ns, ino))
        return ts_fail(err, TS_ENOENT, "getxattr: no inode %llu", (unsigned long long)ino);
    if ((rc = ns_check_xattr_name(name, err)) != 0)
        return rc;
    const struct ns_xattrs *x = ns_xattrs_get(ns, ino);
    uint32_t i = xattr_pos(x, name, &found);
    if (!found)
        return ts_fail(err, TS_ENODATA, "getxattr %llu: no attribute '%s'",
                       (unsigned long long)ino, name);
    *value = x->v[i].value;
    *len = x->v[i].len;
    return 0;
}

int ns_listxattr(const ns_state *ns, uint64_t ino, ns_xattr_fn fn, void *arg, ts_error *err)
{
    if (!ns_inode_get(ns, ino))
        return ts_fail(err, TS_ENOENT, "listxattr: no inode %llu", (unsigned long long)ino);
    const struct ns_xattrs *x = ns_xattrs_get(ns, ino);
    for (uint32_t i = 0; x && i < x->n; i++)
        if (fn(arg, x->v[i].name, x->v[i].value, x->v[i].len))
            break;
    return 0;
}

static void touch_inode(struct ns_inode *in, int64_t now)
{
    in->ctime = now;
    in->version++;
}

int ns_setxattr(ns_state *ns, uint64_t ino, const char *name, const void *value, size_t len,
                uint32_t flags, int64_t now, ts_error *err)
{
    struct ns_inode *in = ns_inode_get(ns, ino);
    int found, rc;

    if (!in)
        return ts_fail(err, TS_ENOENT, "setxattr: no inode %llu", (unsigned long long)ino);
    if ((rc = ns_check_xattr_name(name, err)) != 0) {
        ts_error_prefix(err, "setxattr %llu", (unsigned long long)ino);
        return rc;
    }
    if (flags & ~(uint32_t)(NS_XATTR_CREATE | NS_XATTR_REPLACE) ||
        flags == (NS_XATTR_CREATE | NS_XATTR_REPLACE))
        return ts_fail(err, TS_EINVAL, "setxattr %llu: invalid flags %#x",
                       (unsigned long long)ino, flags);
    if (len > NS_XATTR_VALUE_MAX)
        return ts_fail(err, TS_ERANGE, "setxattr %llu '%s': value of %zu bytes exceeds %d",
                       (unsigned long long)ino, name, len, NS_XATTR_VALUE_MAX);
    struct ns_xattrs *x = ns_xattrs_get(ns, ino);
    uint32_t i = xattr_pos(x, name, &found);
    if (found && (flags & NS_XATTR_CREATE))
        return ts_fail(err, TS_EEXIST, "setxattr %llu: attribute '%s' exists",
                       (unsigned long long)ino, name);
    if (!found && (flags & NS_XATTR_REPLACE))
        return ts_fail(err, TS_ENODATA, "setxattr %llu: no attribute '%s' to replace",
                       (unsigned long long)ino, name);
    uint64_t bytes = (x ? x->bytes : 0) + len + (found ? 0 : strlen(name));
    if (found)
        bytes -= x->v[i].len;
    if (bytes > NS_XATTR_TOTAL_MAX)
        return ts_fail(err, TS_ENOSPC, "setxattr %llu '%s': the inode's attributes would take "
                       "%llu bytes, more than %d", (unsigned long long)ino, name,
                       (unsigned long long)bytes, NS_XATTR_TOTAL_MAX);

    /* Validated; mutate. */
    if (!x) {
        x = ts_calloc(1, sizeof(*x));
        x->ino = ino;
        if (ptab_insert(&ns->xattrs, &ns_xattrs_ops, x, ns_ino_hash(ino), &ino) != 0)
            ts_die("namespace: xattr set of %llu inserted twice", (unsigned long long)ino);
    }
    uint8_t *copy = ts_malloc(len ? len : 1);
    if (len)
        memcpy(copy, value, len);
    if (found) {
        free(x->v[i].value);
    } else {
        x->v = ts_realloc(x->v, (x->n + 1) * sizeof(*x->v));
        memmove(&x->v[i + 1], &x->v[i], (x->n - i) * sizeof(*x->v));
        x->v[i].name = ts_strdup(name);
        x->n++;
    }
    x->v[i].value = copy;
    x->v[i].len = (uint32_t)len;
    x->bytes = (uint32_t)bytes;
    touch_inode(in, now);
    return 0;
}

int ns_removexattr(ns_state *ns, uint64_t ino, const char *name, int64_t now, ts_error *err)
{
    struct ns_inode *in = ns_inode_get(ns, ino);
    int found, rc;

    if (!in)
        return ts_fail(err, TS_ENOENT, "removexattr: no inode %llu", (unsigned long long)ino);
    if ((rc = ns_check_xattr_name(name, err)) != 0) {
        ts_error_prefix(err, "removexattr %llu", (unsigned long long)ino);
        return rc;
    }
    struct ns_xattrs *x = ns_xattrs_get(ns, ino);
    uint32_t i = xattr_pos(x, name, &found);
    if (!found)
        return ts_fail(err, TS_ENODATA, "removexattr %llu: no attribute '%s'",
                       (unsigned long long)ino, name);
    x->bytes -= (uint32_t)(strlen(name) + x->v[i].len);
    free(x->v[i].name);
    free(x->v[i].value);
    memmove(&x->v[i], &x->v[i + 1], (x->n - i - 1) * sizeof(*x->v));
    if (--x->n == 0)
        ns_xattrs_drop(ns, ino);
    touch_inode(in, now);
    return 0;
}

int ns_xattrs_check(const ns_state *ns, ts_error *err)
{
    size_t n = ptab_nslots(&ns->xattrs);

    if (ptab_check(&ns->xattrs, &ns_xattrs_ops, err) != 0) {
        ts_error_prefix(err, "N9 xattr table");
        return TS_ECORRUPT;
    }
    for (size_t s = 0; s < n; s++) {
        const struct ns_xattrs *x = ns->xattrs.slot[s];
        uint64_t bytes = 0;
        if (!x)
            continue;
        if (!ns_inode_get(ns, x->ino) || x->n == 0)
            return ts_fail(err, TS_ECORRUPT, "N9: xattr set of %s inode %llu",
                           x->n ? "missing" : "empty (but present)", (unsigned long long)x->ino);
        for (uint32_t i = 0; i < x->n; i++) {
            if (ns_check_xattr_name(x->v[i].name, NULL) != 0 || x->v[i].len > NS_XATTR_VALUE_MAX)
                return ts_fail(err, TS_ECORRUPT, "N9: inode %llu attribute %u is malformed",
                               (unsigned long long)x->ino, i);
            if (i > 0 && strcmp(x->v[i - 1].name, x->v[i].name) >= 0)
                return ts_fail(err, TS_ECORRUPT, "N9: inode %llu attributes not sorted at '%s'",
                               (unsigned long long)x->ino, x->v[i].name);
            bytes += strlen(x->v[i].name) + x->v[i].len;
        }
        if (bytes != x->bytes || bytes > NS_XATTR_TOTAL_MAX)
            return ts_fail(err, TS_ECORRUPT, "N9: inode %llu attributes take %llu bytes, "
                           "recorded %u", (unsigned long long)x->ino,
                           (unsigned long long)bytes, x->bytes);
    }
    return 0;
}
