/*
 * The store: recovery, command sequencing and snapshots (see store.h).
 *
 * Lock order: state lock (rwlock) -> WAL mutex.  wal_wait is always called
 * after releasing the state lock, so the next batch of commands applies
 * while the previous one is being fsynced.
 */
#include "metadata/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "common/log.h"
#include "common/util.h"
#include "metadata/snapshot.h"

#define STORE_DEFAULT_SNAPSHOT_EVERY 100000

struct store {
    char *dir;
    int lock_fd;                 /* flock'ed DATA/LOCK */
    pthread_rwlock_t lock;       /* the state lock */
    ns_state *ns;
    wal *log;
    uint64_t snapshot_every;
    uint64_t snapshot_index;
    uint64_t since_snapshot;     /* records applied after the last snapshot */
    int64_t last_now;            /* keeps command times monotonic */
    int64_t (*clock_ns)(void);
    uint64_t snapshots_written, commands_ok, commands_failed;
};

/* Checks the directory is usable and takes the per-directory lock. */
static int prepare_dir(store *s, ts_error *err)
{
    int rc = ts_mkdir_p(s->dir, err);
    if (rc) {
        ts_error_prefix(err, "data dir %s: cannot create", s->dir);
        return TS_EIO;
    }
    char *probe = ts_sprintf("%s/.write-test", s->dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ts_write_full(fd, "x", 1) != 0 || fsync(fd) != 0) {
        rc = ts_fail(err, TS_EIO, "data dir %s is not writable: %s", s->dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto free_probe;
    }
    close(fd);
    unlink(probe);
    char *lock_path = ts_sprintf("%s/LOCK", s->dir);
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        rc = ts_fail(err, TS_EIO, "data dir %s: open %s: %s", s->dir, lock_path, strerror(errno));
    else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
        rc = ts_fail(err, TS_EIO, "data dir %s is in use by another tessera-meta (%s is "
                     "locked)", s->dir, lock_path);
    free(lock_path);
free_probe:
    free(probe);
    return rc;
}

static int replay_record(void *arg, uint64_t index, const void *payload, size_t len,
                         ts_error *err)
{
    store *s = arg;
    cmd c;
    cmd_result res;
    int rc = cmd_decode(payload, len, &c, err);
    if (rc)
        return TS_ECORRUPT;
    if (c.now_ns > s->last_now)
        s->last_now = c.now_ns;
    rc = cmd_apply(s->ns, &c, &res, err);
    if (rc) {
        /* Only successful commands are logged: failing now means the log
         * and the snapshot disagree (corruption or a nondeterministic bug). */
        ts_error_prefix(err, "replaying %s failed", cmd_type_name(c.type));
        rc = TS_ECORRUPT;
    }
    cmd_free(&c);
    s->since_snapshot++;
    (void)index;
    return rc;
}

int store_open(const store_opts *opts, store **out, ts_error *err)
{
    store *s = ts_calloc(1, sizeof(*s));
    int rc;
    pthread_rwlockattr_t attr;
    s->dir = ts_strdup(opts->data_dir);
    s->lock_fd = -1;
    s->snapshot_every = opts->snapshot_every ? opts->snapshot_every
                                             : STORE_DEFAULT_SNAPSHOT_EVERY;
    s->clock_ns = opts->clock_ns ? opts->clock_ns : ts_now_ns;
    /* Writers first: a stream of readers must not starve commands. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    if ((rc = prepare_dir(s, err)) != 0)
        goto close_store;
    if ((rc = snapshot_load_latest(s->dir, &s->ns, &s->snapshot_index, err)) != 0)
        goto close_store;
    if (!s->ns) {
        /* First start: snapshot 0 holds the root, so the root's times are durable. */
        s->last_now = s->clock_ns();
        s->ns = ns_new(s->last_now);
        if ((rc = snapshot_write(s->dir, 0, s->ns, err)) != 0)
            goto close_store;
        TS_INFO("store %s: initialized a new namespace", s->dir);
    }
    if ((rc = wal_open(s->dir, s->snapshot_index, opts->wal_fsync, replay_record, s, &s->log,
                       err)) != 0)
        goto close_store;
    TS_INFO("store %s: recovered snapshot %llu + %llu log records (last index %llu)", s->dir,
            (unsigned long long)s->snapshot_index, (unsigned long long)s->since_snapshot,
            (unsigned long long)wal_last_index(s->log));
    *out = s;
    return 0;
close_store:
    store_close(s);
    return rc;
}

void store_close(store *s)
{
    if (!s)
        return;
    wal_close(s->log);
    ns_free(s->ns);
    if (s->lock_fd >= 0)
        close(s->lock_fd);   /* releases the flock */
    pthread_rwlock_destroy(&s->lock);
    free(s->dir);
    free(s);
}

/* Writes a snapshot at the last applied index.  Write lock held. */
static int snapshot_locked(store *s, ts_error *err)
{
    uint64_t index = wal_last_index(s->log);
    int64_t t0 = ts_mono_ms();
    int rc;
    wal_sync(s->log);   /* records up to index durable before the log is cut */
    if ((rc = snapshot_write(s->dir, index, s->ns, err)) != 0)
        return rc;
    s->snapshot_index = index;
    s->since_snapshot = 0;
    s->snapshots_written++;
    /* The snapshot is durable: older segments and snapshots are redundant. */
    if ((rc = wal_rotate(s->log, err)) != 0 || (rc = snapshot_prune(s->dir, index, err)) != 0)
        return rc;
    TS_INFO("store %s: snapshot at index %llu written in %lld ms", s->dir,
            (unsigned long long)index, (long long)(ts_mono_ms() - t0));
    return 0;
}

int store_submit(store *s, cmd *c, cmd_result *res, ts_error *err)
{
    ts_buf b = {0};
    uint64_t wait_for;
    pthread_rwlock_wrlock(&s->lock);
    int64_t now = s->clock_ns();
    if (now < s->last_now)
        now = s->last_now;   /* the wall clock stepped back: keep times monotonic */
    s->last_now = now;
    c->now_ns = now;
    int rc = cmd_apply(s->ns, c, res, err);
    if (rc == 0) {
        cmd_encode(c, &b);
        wait_for = wal_append(s->log, b.data, b.len);
        s->commands_ok++;
        if (++s->since_snapshot >= s->snapshot_every) {
            ts_error serr = {0};
            if (snapshot_locked(s, &serr) != 0) {
                TS_ERROR("store %s: snapshot failed (the log still holds everything; retrying "
                         "after another %llu records): %s", s->dir,
                         (unsigned long long)s->snapshot_every, serr.msg);
                s->since_snapshot = 0;
            }
        }
    } else {
        wait_for = wal_last_index(s->log);
        s->commands_failed++;
    }
    pthread_rwlock_unlock(&s->lock);
    ts_buf_free(&b);
    wal_wait(s->log, wait_for);
    return rc;
}

const ns_state *store_read_lock(store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    return s->ns;
}

void store_read_unlock(store *s)
{
    pthread_rwlock_unlock(&s->lock);
}

int store_snapshot(store *s, ts_error *err)
{
    pthread_rwlock_wrlock(&s->lock);
    int rc = snapshot_locked(s, err);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

void store_get_stats(store *s, store_stats *st)
{
    pthread_rwlock_rdlock(&s->lock);
    st->last_index = wal_last_index(s->log);
    st->snapshot_index = s->snapshot_index;
    st->snapshots_written = s->snapshots_written;
    st->commands_ok = s->commands_ok;
    st->commands_failed = s->commands_failed;
    pthread_rwlock_unlock(&s->lock);
    wal_get_stats(s->log, &st->wal);
}
