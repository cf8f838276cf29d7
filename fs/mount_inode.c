/*
 * The inode table of tessera-mount (see mount_inode.h): a uthash map from
 * inode number to entry, following the kernel's lookup counts exactly, the
 * way libfuse's passthrough_ll does, plus pins for open handles.
 */
#include "fs/mount_inode.h"

#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"

static mnt_inode *find_locked(mnt_itable *t, uint64_t ino)
{
    mnt_inode *in = NULL;

    HASH_FIND(hh, t->map, &ino, sizeof(ino), in);
    return in;
}

static mnt_inode *find_or_add_locked(mnt_itable *t, const ts_attr *a)
{
    mnt_inode *in = find_locked(t, a->ino);

    if (!in) {
        in = ts_calloc(1, sizeof(*in));
        in->ino = a->ino;
        HASH_ADD(hh, t->map, ino, sizeof(in->ino), in);
        t->count++;
    }
    in->attr = *a;
    return in;
}

/* Frees in when neither the kernel nor a handle holds it. */
static void maybe_free_locked(mnt_itable *t, mnt_inode *in)
{
    if (in->nlookup > 0 || in->opens > 0 || in->ino == TS_ROOT_INO)
        return;
    if (in->file)
        ts_die("mount: inode %llu freed with open-file state", (unsigned long long)in->ino);
    HASH_DEL(t->map, in);
    t->count--;
    free(in);
}

void mnt_itable_init(mnt_itable *t)
{
    ts_attr root = {.ino = TS_ROOT_INO, .mode = 040755, .nlink = 2};

    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_lock(&t->mu);
    find_or_add_locked(t, &root)->nlookup = 1;   /* the kernel's own reference */
    pthread_mutex_unlock(&t->mu);
}

void mnt_itable_destroy(mnt_itable *t)
{
    mnt_inode *in, *tmp;

    HASH_ITER(hh, t->map, in, tmp) {
        HASH_DEL(t->map, in);
        free(in);
    }
    t->count = 0;
    pthread_mutex_destroy(&t->mu);
}

void mnt_inode_ref(mnt_itable *t, const ts_attr *a)
{
    pthread_mutex_lock(&t->mu);
    mnt_inode *in = find_or_add_locked(t, a);
    in->nlookup++;
    in->kernel_version = a->version;
    pthread_mutex_unlock(&t->mu);
}

void mnt_inode_forget(mnt_itable *t, uint64_t ino, uint64_t n)
{
    pthread_mutex_lock(&t->mu);
    mnt_inode *in = find_locked(t, ino);
    if (!in || in->nlookup < n)
        ts_die("mount: FORGET of %llu lookups of inode %llu, which has %llu",
               (unsigned long long)n, (unsigned long long)ino,
               (unsigned long long)(in ? in->nlookup : 0));
    in->nlookup -= n;
    maybe_free_locked(t, in);
    pthread_mutex_unlock(&t->mu);
}

mnt_inode *mnt_inode_get(mnt_itable *t, uint64_t ino)
{
    pthread_mutex_lock(&t->mu);
    mnt_inode *in = find_locked(t, ino);
    pthread_mutex_unlock(&t->mu);
    return in;
}

mnt_inode *mnt_inode_pin(mnt_itable *t, const ts_attr *a)
{
    pthread_mutex_lock(&t->mu);
    mnt_inode *in = find_or_add_locked(t, a);
    in->opens++;
    pthread_mutex_unlock(&t->mu);
    return in;
}

int mnt_inode_unpin(mnt_itable *t, mnt_inode *in)
{
    int last;

    pthread_mutex_lock(&t->mu);
    if (in->opens == 0)
        ts_die("mount: release of inode %llu, which has no open handle",
               (unsigned long long)in->ino);
    last = --in->opens == 0;
    maybe_free_locked(t, in);
    pthread_mutex_unlock(&t->mu);
    return last;
}

void mnt_inode_note_attr(mnt_itable *t, const ts_attr *a, int kernel)
{
    pthread_mutex_lock(&t->mu);
    mnt_inode *in = find_locked(t, a->ino);
    if (in) {
        /* An answer that crossed a change of ours may be older than what a
         * fresh note holds: the next getattr asks the server. */
        if (a->version != in->attr.version)
            in->fresh_until_ms = 0;
        in->attr = *a;
        if (kernel)
            in->kernel_version = a->version;
    }
    pthread_mutex_unlock(&t->mu);
}

/* Copies ino's cached attributes (only while fresh, when fresh_only). */
static int copy_attr(mnt_itable *t, uint64_t ino, int fresh_only, ts_attr *out)
{
    int rc = TS_ENOENT;

    pthread_mutex_lock(&t->mu);
    mnt_inode *in = find_locked(t, ino);
    if (in && (!fresh_only || (in->fresh_epoch == t->fresh_epoch &&
                               in->fresh_until_ms > ts_mono_ms()))) {
        *out = in->attr;
        rc = 0;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int mnt_inode_cached_attr(mnt_itable *t, uint64_t ino, ts_attr *out)
{
    return copy_attr(t, ino, 0, out);
}

void mnt_inode_note_fresh(mnt_itable *t, const ts_attr *a, int64_t until_ms)
{
    pthread_mutex_lock(&t->mu);
    mnt_inode *in = find_locked(t, a->ino);
    /* Concurrent changes of one directory answer in any order: the highest
     * version is the latest state. */
    if (in && a->version >= in->attr.version) {
        in->attr = *a;
        in->fresh_until_ms = until_ms;
        in->fresh_epoch = t->fresh_epoch;
    }
    pthread_mutex_unlock(&t->mu);
}

int mnt_inode_fresh_attr(mnt_itable *t, uint64_t ino, ts_attr *out)
{
    return copy_attr(t, ino, 1, out);
}

void mnt_inode_stale_all(mnt_itable *t)
{
    pthread_mutex_lock(&t->mu);
    t->fresh_epoch++;
    pthread_mutex_unlock(&t->mu);
}

uint64_t mnt_itable_count(mnt_itable *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

int mnt_itable_check(mnt_itable *t, ts_error *err)
{
    mnt_inode *in, *tmp;
    uint64_t n = 0;
    int rc = 0;

    pthread_mutex_lock(&t->mu);
    HASH_ITER(hh, t->map, in, tmp) {
        n++;
        if (in->nlookup == 0 && in->opens == 0 && in->ino != TS_ROOT_INO) {
            rc = ts_fail(err, TS_ECORRUPT, "inode %llu is in the table with no lookup and no "
                         "open handle", (unsigned long long)in->ino);
            break;
        }
        if (in->file && in->opens == 0) {
            rc = ts_fail(err, TS_ECORRUPT, "inode %llu has open-file state but no handle",
                         (unsigned long long)in->ino);
            break;
        }
    }
    if (rc == 0 && n != t->count)
        rc = ts_fail(err, TS_ECORRUPT, "table holds %llu entries but counts %llu",
                     (unsigned long long)n, (unsigned long long)t->count);
    pthread_mutex_unlock(&t->mu);
    return rc;
}
