/*
 * File data of tessera-mount (see mount_io.h): the write-back writer per
 * open inode, copy-on-write for writes that do not continue the stream,
 * commit at flush/fsync/release, and per-handle read-ahead windows.
 *
 * Lifetime: a mnt_file is reference counted under the inode table lock
 * (each handle holds one reference; mnt_io_overlay and mnt_io_setattr take
 * one for the length of their call), so it is never freed under a thread
 * that is waiting for its rwlock.
 *
 * State of a mnt_file (the rwlock guards w and layout; st_mu guards the
 * small fields read by getattr while an upload holds the rwlock):
 *
 *     CLEAN --write--> STREAMING (w != NULL, dirty) --flush/read/seek--> CLEAN
 *       ^                                                    |
 *       +------ commit failed: error returned, data dropped -+
 *
 * layout == NULL means "fetch before the next read" (after a commit or a
 * truncate of this mount).
 */
#include "fs/mount_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "common/log.h"
#include "common/util.h"

/* Sequential reads start with this window and double up to readahead_max. */
#define RA_START (256u * 1024)

struct mnt_file {
    uint64_t ino;
    uint64_t refs;              /* under the table lock */
    pthread_rwlock_t lock;
    tess_writer *w;             /* streaming writer, NULL when none */
    tess_layout *layout;        /* committed layout; NULL = fetch before reading */

    pthread_mutex_t st_mu;
    ts_attr attr;               /* committed attributes */
    uint64_t size;              /* including uncommitted writes */
    int64_t write_mtime_ns;     /* time of the last uncommitted write */
    int dirty;                  /* w holds uncommitted data */
    int orphan;                 /* gone from the namespace while open */
    uint64_t gen;               /* bumped by every change of the content */

    /* A create ahead of the server not made there yet (changed under both
     * the rwlock and st_mu); areq.name is owned. */
    int ahead;
    tess_create_at_req areq;
};

/* The creates ahead of the server (mount_io.h), by directory and name. */
struct ahead_entry {
    uint64_t parent;
    char *name;
    uint64_t ino;
    int64_t since_ms;
};

struct mnt_ahead {
    pthread_mutex_t mu;         /* the fields below but refill_mu */
    struct ahead_entry *v;
    size_t n, cap;
    uint64_t next, end;         /* reserved inode numbers not handed out yet */
    pthread_mutex_t refill_mu;  /* one reservation request at a time */
    pthread_cond_t cv;
    int stop, running;
    pthread_t th;
};

struct mnt_handle {
    mnt_io *io;
    mnt_inode *in;
    mnt_file *f;
    int flags;                  /* open(2) flags */
    pthread_mutex_t mu;         /* the window */
    char *win;                  /* allocated on first read, win_cap bytes */
    size_t win_cap;
    uint64_t win_off;
    size_t win_len;
    uint64_t win_gen;           /* f->gen the window was read at */
    uint64_t next_off;          /* where a sequential read continues */
    size_t ra;                  /* current window size */
};

/* ------------------------------------------------------------ lifetime */

static mnt_file *file_new(const ts_attr *a)
{
    mnt_file *f = ts_calloc(1, sizeof(*f));

    f->ino = a->ino;
    f->attr = *a;
    f->size = a->size;
    pthread_rwlock_init(&f->lock, NULL);
    pthread_mutex_init(&f->st_mu, NULL);
    return f;
}

static void file_free(mnt_file *f)
{
    free((char *)f->areq.name);
    if (f->w)
        tess_writer_abort(f->w);
    tess_layout_free(f->layout);
    pthread_mutex_destroy(&f->st_mu);
    pthread_rwlock_destroy(&f->lock);
    free(f);
}

/* The open state of ino with a reference, or NULL when not open here. */
static mnt_file *file_get(mnt_io *io, uint64_t ino)
{
    mnt_file *f = NULL;

    pthread_mutex_lock(&io->t->mu);
    mnt_inode *in = NULL;
    HASH_FIND(hh, io->t->map, &ino, sizeof(ino), in);
    if (in && in->file) {
        f = in->file;
        f->refs++;
    }
    pthread_mutex_unlock(&io->t->mu);
    return f;
}

static void file_put(mnt_io *io, mnt_file *f)
{
    int last;

    pthread_mutex_lock(&io->t->mu);
    if (f->refs == 0)
        ts_die("mount: reference count of open file %llu below zero", (unsigned long long)f->ino);
    last = --f->refs == 0;
    pthread_mutex_unlock(&io->t->mu);
    if (last)
        file_free(f);
}

/* ------------------------------------------------------- creates ahead */

static void ahead_add(mnt_io *io, uint64_t parent, const char *name, uint64_t ino)
{
    struct mnt_ahead *ah = io->ahead;
    pthread_mutex_lock(&ah->mu);
    if (ah->n == ah->cap) {
        ah->cap = ah->cap ? 2 * ah->cap : 16;
        ah->v = ts_realloc(ah->v, ah->cap * sizeof(*ah->v));
    }
    ah->v[ah->n++] = (struct ahead_entry){ parent, ts_strdup(name), ino, ts_mono_ms() };
    pthread_mutex_unlock(&ah->mu);
}

/* f is on the server now, or never will be (caller holds f's write lock). */
static void ahead_done(mnt_io *io, mnt_file *f)
{
    struct mnt_ahead *ah = io->ahead;
    pthread_mutex_lock(&ah->mu);
    for (size_t i = 0; i < ah->n; i++)
        if (ah->v[i].ino == f->ino) {
            free(ah->v[i].name);
            ah->v[i] = ah->v[--ah->n];
            break;
        }
    pthread_mutex_unlock(&ah->mu);
    pthread_mutex_lock(&f->st_mu);
    f->ahead = 0;
    pthread_mutex_unlock(&f->st_mu);
    free((char *)f->areq.name);
    f->areq.name = NULL;
}

/* Inode numbers of the creates ahead matching (parent, or every one made
 * before `older_than_ms` when parent is 0); *inos is malloc'd. */
static size_t ahead_select(mnt_io *io, uint64_t parent, int64_t older_than_ms, uint64_t **inos)
{
    struct mnt_ahead *ah = io->ahead;
    size_t n = 0;
    pthread_mutex_lock(&ah->mu);
    *inos = ts_malloc((ah->n + 1) * sizeof(uint64_t));
    for (size_t i = 0; i < ah->n; i++)
        if (parent ? ah->v[i].parent == parent : ah->v[i].since_ms < older_than_ms)
            (*inos)[n++] = ah->v[i].ino;
    pthread_mutex_unlock(&ah->mu);
    return n;
}

/* A fresh reserved inode number. */
static int take_ino(mnt_io *io, uint64_t *ino, ts_error *err)
{
    struct mnt_ahead *ah = io->ahead;
    for (;;) {
        pthread_mutex_lock(&ah->mu);
        if (ah->next < ah->end) {
            *ino = ah->next++;
            pthread_mutex_unlock(&ah->mu);
            return 0;
        }
        pthread_mutex_unlock(&ah->mu);
        pthread_mutex_lock(&ah->refill_mu);
        pthread_mutex_lock(&ah->mu);
        int empty = ah->next >= ah->end;
        pthread_mutex_unlock(&ah->mu);
        int rc = 0;
        if (empty) {
            uint64_t first;
            uint32_t count;
            if ((rc = tess_reserve_inodes(io->c, &first, &count, err)) == 0) {
                pthread_mutex_lock(&ah->mu);
                ah->next = first;
                ah->end = first + count;
                pthread_mutex_unlock(&ah->mu);
            }
        }
        pthread_mutex_unlock(&ah->refill_mu);
        if (rc != 0)
            return rc;
    }
}

static int close_writer(mnt_io *io, mnt_file *f, ts_error *err);

/* Makes f exist on the server if it is a create ahead (caller holds the
 * write lock), empty: its name is what the server must know.  A writer's
 * data stays with the writer for its own commit, whose errors reach the
 * program at its next write, flush or close -- never lost here, whatever
 * thread settles.  On failure nothing changed (retried later). */
static int settle_locked(mnt_io *io, mnt_file *f, ts_error *err)
{
    ts_attr a;
    int rc;
    if (!f->ahead)
        return 0;
    rc = tess_create_at(io->c, &f->areq, &a, err);
    if (rc != 0 && rc != TS_ENOENT)
        return rc;
    if (f->w)
        tess_writer_clear_create(f->w);
    ahead_done(io, f);
    pthread_mutex_lock(&f->st_mu);
    if (rc == TS_ENOENT) {
        /* Its directory went away on another client meanwhile. */
        TS_INFO("inode %llu: directory removed before the file was made (%s)",
                (unsigned long long)f->ino, err ? err->msg : "");
        f->orphan = 1;
    } else {
        f->attr = a;            /* size 0; f->size keeps the writes not committed yet */
        if (!f->dirty)
            f->size = a.size;
    }
    f->gen++;
    pthread_mutex_unlock(&f->st_mu);
    if (rc == 0 && f->layout && !f->w)
        f->layout->attr = a;    /* empty there and here */
    if (rc == 0)
        mnt_inode_note_attr(io->t, &a, 0);
    return 0;
}

/* Everything of f the server does not have yet: the writer's data (its
 * commit makes a create ahead, with the data) and a create ahead without
 * writes (caller holds the write lock). */
static int commit_all(mnt_io *io, mnt_file *f, ts_error *err)
{
    int rc = close_writer(io, f, err);
    return rc != 0 ? rc : settle_locked(io, f, err);
}

int mnt_io_settle(mnt_io *io, uint64_t ino, ts_error *err)
{
    mnt_file *f = file_get(io, ino);
    int rc = 0;
    if (!f)
        return 0;
    pthread_mutex_lock(&f->st_mu);
    int ahead = f->ahead;
    pthread_mutex_unlock(&f->st_mu);
    if (ahead) {
        pthread_rwlock_wrlock(&f->lock);
        rc = settle_locked(io, f, err);
        pthread_rwlock_unlock(&f->lock);
    }
    file_put(io, f);
    return rc;
}

int mnt_io_settle_dir(mnt_io *io, uint64_t parent, ts_error *err)
{
    uint64_t *inos;
    int rc = 0;
    if (!io->ahead)
        return 0;
    size_t n = ahead_select(io, parent, 0, &inos);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mnt_io_settle(io, inos[i], err);
    free(inos);
    return rc;
}

int mnt_io_ahead_attr(mnt_io *io, uint64_t ino, ts_attr *a)
{
    mnt_file *f = file_get(io, ino);
    int ahead = 0;
    if (!f)
        return 0;
    pthread_mutex_lock(&f->st_mu);
    if ((ahead = f->ahead) != 0) {
        *a = f->attr;
        a->size = f->size;
        if (f->dirty)
            a->mtime_ns = TS_MAX(a->mtime_ns, f->write_mtime_ns);
    }
    pthread_mutex_unlock(&f->st_mu);
    file_put(io, f);
    return ahead;
}

size_t mnt_io_ahead_count(mnt_io *io)
{
    if (!io->ahead)
        return 0;
    pthread_mutex_lock(&io->ahead->mu);
    size_t n = io->ahead->n;
    pthread_mutex_unlock(&io->ahead->mu);
    return n;
}

int mnt_io_ahead_lookup(mnt_io *io, uint64_t parent, const char *name, ts_attr *a)
{
    struct mnt_ahead *ah = io->ahead;
    uint64_t ino = 0;
    if (!ah)
        return TS_ENOENT;
    pthread_mutex_lock(&ah->mu);
    for (size_t i = 0; i < ah->n && !ino; i++)
        if (ah->v[i].parent == parent && strcmp(ah->v[i].name, name) == 0)
            ino = ah->v[i].ino;
    pthread_mutex_unlock(&ah->mu);
    return ino && mnt_io_ahead_attr(io, ino, a) ? 0 : TS_ENOENT;
}

/* Settles creates ahead older than CREATE_AHEAD_MAX_MS: a file held open
 * a long time shows up on other mounts all the same. */
static void *settler_main(void *arg)
{
    mnt_io *io = arg;
    struct mnt_ahead *ah = io->ahead;
    pthread_mutex_lock(&ah->mu);
    while (!ah->stop) {
        struct timespec ts = ts_deadline_mono(200);
        pthread_cond_timedwait(&ah->cv, &ah->mu, &ts);
        if (ah->stop)
            break;
        pthread_mutex_unlock(&ah->mu);
        uint64_t *inos;
        size_t n = ahead_select(io, 0, ts_mono_ms() - CREATE_AHEAD_MAX_MS, &inos);
        for (size_t i = 0; i < n; i++) {
            ts_error e;
            if (mnt_io_settle(io, inos[i], &e) != 0)
                TS_WARN("inode %llu: making the file on the server failed (retried): %s",
                        (unsigned long long)inos[i], e.msg);
        }
        free(inos);
        pthread_mutex_lock(&ah->mu);
    }
    pthread_mutex_unlock(&ah->mu);
    return NULL;
}

void mnt_io_init(mnt_io *io)
{
    struct mnt_ahead *ah = ts_calloc(1, sizeof(*ah));
    pthread_mutex_init(&ah->mu, NULL);
    pthread_mutex_init(&ah->refill_mu, NULL);
    ts_cond_init_mono(&ah->cv);
    io->ahead = ah;
}

void mnt_io_start(mnt_io *io)
{
    struct mnt_ahead *ah = io->ahead;
    if (pthread_create(&ah->th, NULL, settler_main, io) != 0)
        ts_die("mount: cannot start the thread that settles creates");
    ah->running = 1;
}

void mnt_io_stop(mnt_io *io)
{
    struct mnt_ahead *ah = io->ahead;
    if (!ah || !ah->running)
        return;
    pthread_mutex_lock(&ah->mu);
    ah->stop = 1;
    pthread_cond_broadcast(&ah->cv);
    pthread_mutex_unlock(&ah->mu);
    pthread_join(ah->th, NULL);
    ah->running = 0;
}

void mnt_io_destroy(mnt_io *io)
{
    struct mnt_ahead *ah = io->ahead;
    if (!ah)
        return;
    mnt_io_stop(io);
    for (size_t i = 0; i < ah->n; i++)
        free(ah->v[i].name);
    free(ah->v);
    pthread_cond_destroy(&ah->cv);
    pthread_mutex_destroy(&ah->refill_mu);
    pthread_mutex_destroy(&ah->mu);
    free(ah);
    io->ahead = NULL;
}

/* ------------------------------------------------------------ commits */

/* Commits and ends the writer (caller holds the write lock).  A file that
 * vanished from the namespace becomes an orphan and the error is dropped:
 * its data could never be read again after the last close anyway. */
static int close_writer(mnt_io *io, mnt_file *f, ts_error *err)
{
    ts_attr a;
    ts_error e;
    int rc;

    if (!f->w)
        return 0;
    rc = tess_writer_close(f->w, &a, &e);
    f->w = NULL;
    if (f->ahead && (rc == 0 || rc == TS_ENOENT))
        ahead_done(io, f);      /* made on the server with this data (or never can be) */
    pthread_mutex_lock(&f->st_mu);
    f->dirty = 0;
    if (rc == 0) {
        f->attr = a;
        f->size = a.size;
        f->gen++;
    } else if (rc == TS_ENOENT) {
        TS_INFO("inode %llu was removed while open: dropping its last writes (%s)",
                (unsigned long long)f->ino, e.msg);
        f->orphan = 1;
        f->size = f->attr.size;
        f->gen++;
        rc = 0;
    } else {
        /* The data is lost; what is committed is what the file holds. */
        f->size = f->attr.size;
        f->gen++;
        if (err)
            *err = e;
    }
    pthread_mutex_unlock(&f->st_mu);
    if (!f->orphan) {
        /* Even a failed commit may have been applied (an answer lost in
         * transit): read the layout again rather than trust ours. */
        tess_layout_free(f->layout);
        f->layout = NULL;
    }
    if (rc == 0 && !f->orphan)
        mnt_inode_note_attr(io->t, &a, 0);
    return rc;
}

/* Fetches the layout (caller holds the write lock).  An orphan keeps the
 * one it has. */
static int fetch_layout(mnt_io *io, mnt_file *f, ts_error *err)
{
    tess_layout *l = NULL;
    int rc = tess_get_layout(io->c, f->ino, &l, err);

    if (rc == TS_ENOENT && f->layout) {
        pthread_mutex_lock(&f->st_mu);
        f->orphan = 1;
        pthread_mutex_unlock(&f->st_mu);
        return 0;
    }
    if (rc != 0)
        return rc;
    tess_layout_free(f->layout);
    f->layout = l;
    pthread_mutex_lock(&f->st_mu);
    if (l->attr.version != f->attr.version)
        f->gen++;
    f->attr = l->attr;
    if (!f->dirty)
        f->size = l->attr.size;
    pthread_mutex_unlock(&f->st_mu);
    mnt_inode_note_attr(io->t, &l->attr, 0);
    return 0;
}

/* Refreshes only the attributes (caller holds the write lock): what an
 * open that cannot read needs (the size for O_APPEND, the version for the
 * kernel's cache), without the extent list, which grows with every commit
 * (an append-only log opened for each record would fetch it all each time).
 * A layout we hold stays when the version shows nothing changed; otherwise
 * it is dropped and fetched at the next read. */
static int fetch_attr(mnt_io *io, mnt_file *f, ts_error *err)
{
    ts_attr a;
    int rc = tess_getattr(io->c, f->ino, &a, err);

    if (rc == TS_ENOENT && f->layout) {
        pthread_mutex_lock(&f->st_mu);
        f->orphan = 1;
        pthread_mutex_unlock(&f->st_mu);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (f->layout && f->layout->attr.version != a.version) {
        tess_layout_free(f->layout);
        f->layout = NULL;
    }
    pthread_mutex_lock(&f->st_mu);
    if (a.version != f->attr.version)
        f->gen++;
    f->attr = a;
    if (!f->dirty)
        f->size = a.size;
    pthread_mutex_unlock(&f->st_mu);
    mnt_inode_note_attr(io->t, &a, 0);
    return 0;
}

/* ---------------------------------------------------------------- open */

int mnt_io_open(mnt_io *io, const ts_attr *a, int flags, int known, mnt_handle **out,
                ts_attr *attr, int *changed, ts_error *err)
{
    mnt_handle *h = ts_calloc(1, sizeof(*h));
    mnt_file *f, *fresh = NULL;
    int rc = 0;

    h->io = io;
    h->flags = flags;
    pthread_mutex_init(&h->mu, NULL);
    h->in = mnt_inode_pin(io->t, a);
    pthread_mutex_lock(&io->t->mu);
    if (!h->in->file) {
        fresh = file_new(a);
        h->in->file = fresh;
    }
    f = h->f = h->in->file;
    f->refs++;
    h->in->file_handles++;
    pthread_mutex_unlock(&io->t->mu);

    pthread_rwlock_wrlock(&f->lock);
    if (known && fresh) {
        /* Just created: the server's answer is the whole truth. */
        f->layout = ts_calloc(1, sizeof(*f->layout));
        f->layout->attr = *a;
    } else if (!f->dirty && !f->ahead) {
        /* Close-to-open: what another client committed before this open
         * must be visible now.  (A create ahead: nobody else has it.) */
        if ((flags & O_ACCMODE) == O_WRONLY)
            rc = fetch_attr(io, f, err);
        else
            rc = fetch_layout(io, f, err);
    }
    pthread_mutex_lock(&f->st_mu);
    *attr = f->attr;
    attr->size = f->size;
    if (f->orphan)
        attr->nlink = 0;
    pthread_mutex_unlock(&f->st_mu);
    pthread_rwlock_unlock(&f->lock);
    if (rc != 0) {
        ts_error ignored;
        mnt_io_release(io, h, &ignored);
        return rc;
    }
    pthread_mutex_lock(&io->t->mu);
    *changed = h->in->kernel_version != attr->version;
    pthread_mutex_unlock(&io->t->mu);
    *out = h;
    return 0;
}

int mnt_io_create_ahead(mnt_io *io, uint64_t parent, const char *name, uint32_t mode,
                        uint32_t uid, uint32_t gid, int flags, mnt_handle **out, ts_attr *attr,
                        ts_error *err)
{
    uint64_t ino;
    int changed, rc;
    if ((rc = take_ino(io, &ino, err)) != 0)
        return rc;
    int64_t now = ts_now_ns();
    ts_attr a = { .ino = ino, .mode = S_IFREG | (mode & 07777), .nlink = 1, .uid = uid,
                  .gid = gid, .atime_ns = now, .mtime_ns = now, .ctime_ns = now };
    if ((rc = mnt_io_open(io, &a, flags, 1, out, attr, &changed, err)) != 0)
        return rc;
    mnt_file *f = (*out)->f;
    pthread_rwlock_wrlock(&f->lock);
    f->areq = (tess_create_at_req){ .parent = parent, .name = ts_strdup(name), .ino = ino,
                                    .mode = mode & 07777, .uid = uid, .gid = gid, .replace = 1 };
    pthread_mutex_lock(&f->st_mu);
    f->ahead = 1;
    pthread_mutex_unlock(&f->st_mu);
    ahead_add(io, parent, name, ino);
    pthread_rwlock_unlock(&f->lock);
    return 0;
}

/* --------------------------------------------------------------- write */

int mnt_io_write(mnt_handle *h, uint64_t off, const void *buf, size_t len, ts_error *err)
{
    mnt_file *f = h->f;
    int rc = 0;

    pthread_rwlock_wrlock(&f->lock);
    if (h->flags & O_APPEND) {
        pthread_mutex_lock(&f->st_mu);
        off = f->size;
        pthread_mutex_unlock(&f->st_mu);
    }
    if (f->w && tess_writer_offset(f->w) != off) {
        /* Not a continuation: commit the stream, start a new one here. */
        if ((rc = close_writer(h->io, f, err)) != 0)
            goto unlock;
    }
    if (!f->w) {
        if ((rc = tess_writer_open(h->io->c, f->ino, off, NULL, &f->w, err)) != 0)
            goto unlock;
        if (f->ahead)
            tess_writer_set_create(f->w, &f->areq);     /* its commit makes the file */
    }
    if ((rc = tess_writer_write(f->w, buf, len, err)) != 0) {
        /* Every later call would repeat the error: drop the writer, so the
         * next write starts afresh and the flush reports this once. */
        tess_writer_abort(f->w);
        f->w = NULL;
        pthread_mutex_lock(&f->st_mu);
        f->dirty = 0;
        f->size = f->attr.size;
        f->gen++;
        pthread_mutex_unlock(&f->st_mu);
        goto unlock;
    }
    pthread_mutex_lock(&f->st_mu);
    f->dirty = 1;
    f->size = TS_MAX(f->size, off + len);
    f->write_mtime_ns = ts_now_ns();
    f->gen++;
    pthread_mutex_unlock(&f->st_mu);
unlock:
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

/* ---------------------------------------------------------------- read */

/* Takes f's lock shared with no uncommitted writes and a layout in place. */
static int lock_for_read(mnt_io *io, mnt_file *f, ts_error *err)
{
    for (;;) {
        int rc = 0;

        pthread_rwlock_rdlock(&f->lock);
        if (!f->w && f->layout)
            return 0;
        pthread_rwlock_unlock(&f->lock);
        pthread_rwlock_wrlock(&f->lock);
        if (f->w)
            rc = close_writer(io, f, err);
        if (rc == 0 && !f->layout)
            rc = fetch_layout(io, f, err);
        pthread_rwlock_unlock(&f->lock);
        if (rc != 0)
            return rc;
    }
}

static uint64_t file_gen(mnt_file *f)
{
    pthread_mutex_lock(&f->st_mu);
    uint64_t g = f->gen;
    pthread_mutex_unlock(&f->st_mu);
    return g;
}

int mnt_io_read(mnt_handle *h, uint64_t off, size_t len, mnt_reply_fn reply, void *ctx,
                ts_error *err)
{
    mnt_file *f = h->f;
    mnt_io *io = h->io;
    ssize_t got;
    int rc;

    if ((rc = lock_for_read(io, f, err)) != 0)
        return rc;
    pthread_mutex_lock(&h->mu);
    uint64_t gen = file_gen(f);
    uint64_t size = f->layout->attr.size;
    if (h->win && h->win_gen == gen && off >= h->win_off &&
        (off + len <= h->win_off + h->win_len || h->win_off + h->win_len >= size)) {
        /* Inside the window (or the window reaches the end of file). */
        size_t from = (size_t)(off - h->win_off);
        size_t n = from < h->win_len ? TS_MIN(len, h->win_len - from) : 0;
        reply(ctx, h->win + from, n);
        h->next_off = off + n;
        goto unlock;
    }
    if (off >= size) {
        reply(ctx, NULL, 0);
        goto unlock;
    }
    /* A miss: sequential reads grow the window, others read what is asked. */
    if (off == h->next_off)
        h->ra = h->ra ? TS_MIN(h->ra * 2, io->readahead_max) : RA_START;
    else
        h->ra = 0;
    size_t want = TS_MAX(len, h->ra);
    if (want > h->win_cap) {
        /* Grows to readahead_max at most once per handle. */
        free(h->win);
        h->win_cap = TS_MAX(want, TS_MIN(io->readahead_max, (size_t)RA_START * 4));
        h->win = ts_malloc(h->win_cap);
    }
    h->win_len = 0;
    got = tess_read(io->c, f->layout, off, want, h->win, err);
    if (got < 0) {
        rc = (int)got;
        goto unlock;
    }
    h->win_off = off;
    h->win_len = (size_t)got;
    h->win_gen = gen;
    size_t n = TS_MIN(len, h->win_len);
    reply(ctx, h->win, n);
    h->next_off = off + n;
unlock:
    pthread_mutex_unlock(&h->mu);
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

/* --------------------------------------------------------------- flush */

int mnt_io_flush(mnt_handle *h, ts_error *err)
{
    mnt_file *f = h->f;
    int rc;

    pthread_rwlock_wrlock(&f->lock);
    rc = commit_all(h->io, f, err);
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

int mnt_io_release(mnt_io *io, mnt_handle *h, ts_error *err)
{
    mnt_file *f = h->f;
    int rc = mnt_io_flush(h, err);

    pthread_mutex_lock(&io->t->mu);
    int last = --h->in->file_handles == 0;
    if (last)
        h->in->file = NULL;
    pthread_mutex_unlock(&io->t->mu);
    if (last) {
        /* A create ahead the server refused until the end: nobody can
         * reach the file any more; forget it rather than retry forever. */
        pthread_rwlock_wrlock(&f->lock);
        if (f->ahead) {
            TS_ERROR("inode %llu ('%s' in directory %llu) was never made on the server; its "
                     "data is lost", (unsigned long long)f->ino, f->areq.name,
                     (unsigned long long)f->areq.parent);
            ahead_done(io, f);
        }
        pthread_rwlock_unlock(&f->lock);
    }
    file_put(io, f);
    mnt_inode_unpin(io->t, h->in);
    free(h->win);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return rc;
}

/* ------------------------------------------------------------- setattr */

int mnt_io_setattr(mnt_io *io, uint64_t ino, const tess_setattr_req *req, ts_attr *out,
                   ts_error *err)
{
    mnt_file *f = file_get(io, ino);
    int rc;

    if (!f)
        return tess_setattr(io->c, ino, req, out, err);
    pthread_rwlock_wrlock(&f->lock);
    if ((rc = commit_all(io, f, err)) != 0)
        goto unlock;
    if ((rc = tess_setattr(io->c, ino, req, out, err)) != 0)
        goto unlock;
    pthread_mutex_lock(&f->st_mu);
    f->attr = *out;
    f->size = out->size;
    if (req->mask & TESS_SET_SIZE)
        f->gen++;
    pthread_mutex_unlock(&f->st_mu);
    if (req->mask & TESS_SET_SIZE) {
        tess_layout_free(f->layout);
        f->layout = NULL;
    }
unlock:
    pthread_rwlock_unlock(&f->lock);
    file_put(io, f);
    return rc;
}

/* ------------------------------------------------------------ attributes */

int mnt_io_overlay(mnt_io *io, uint64_t ino, ts_attr *a)
{
    mnt_file *f = file_get(io, ino);

    if (!f)
        return 0;
    pthread_mutex_lock(&f->st_mu);
    if (f->dirty) {
        a->size = TS_MAX(a->size, f->size);
        a->mtime_ns = TS_MAX(a->mtime_ns, f->write_mtime_ns);
    }
    pthread_mutex_unlock(&f->st_mu);
    file_put(io, f);
    return 1;
}

int mnt_io_orphan_attr(mnt_io *io, uint64_t ino, ts_attr *a)
{
    mnt_file *f = file_get(io, ino);

    if (!f)
        return TS_ENOENT;
    pthread_mutex_lock(&f->st_mu);
    f->orphan = 1;
    *a = f->attr;
    a->size = f->size;
    a->nlink = 0;
    pthread_mutex_unlock(&f->st_mu);
    file_put(io, f);
    return 0;
}

int mnt_io_flush_all(mnt_io *io)
{
    mnt_inode *in, *tmp;
    uint64_t *inos = NULL;
    size_t n = 0, cap = 0;
    int failed = 0;

    pthread_mutex_lock(&io->t->mu);
    HASH_ITER(hh, io->t->map, in, tmp) {
        if (!in->file)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            inos = ts_realloc(inos, cap * sizeof(*inos));
        }
        inos[n++] = in->ino;
    }
    pthread_mutex_unlock(&io->t->mu);
    for (size_t i = 0; i < n; i++) {
        mnt_file *f = file_get(io, inos[i]);
        ts_error e;
        if (!f)
            continue;
        pthread_rwlock_wrlock(&f->lock);
        if (commit_all(io, f, &e) != 0) {
            TS_ERROR("unmount: inode %llu: last writes lost: %s", (unsigned long long)inos[i],
                     e.msg);
            failed++;
        }
        pthread_rwlock_unlock(&f->lock);
        file_put(io, f);
    }
    free(inos);
    return failed;
}
