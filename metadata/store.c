/*
 * The store: recovery, command sequencing and snapshots (see store.h).
 *
 * Lock order: state lock (rwlock) -> WAL mutex -> checkpointer mutex.
 * wal_wait is always called after releasing the state lock, so the next
 * batch of commands applies while the previous one is being fsynced.
 *
 * Replicated mode: the Raft driver thread is the only writer (store_raft_apply,
 * store_raft_restore); request threads propose and wait in raft_node, never
 * holding the state lock meanwhile.
 *
 * Snapshots in both modes come from the checkpointer (checkpoint.h): its
 * thread rebuilds the state from the previous snapshot and the entries
 * since, never taking the state lock; the live path only hands it a copy
 * of each applied entry.
 */
#include "metadata/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/codec.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/checkpoint.h"
#include "metadata/raft/raft_node.h"
#include "metadata/session.h"
#include "metadata/sm.h"
#include "metadata/snapshot.h"

#define STORE_DEFAULT_SNAPSHOT_EVERY 100000
#define STORE_RAFT_TIMEOUT_MS 5000

/* What applying a proposal gave, copied back to the proposer. */
typedef struct apply_out {
    int rc;
    cmd_result res;
    ts_error err;
} apply_out;

struct store {
    char *dir;
    int lock_fd;                 /* flock'ed DATA/LOCK */
    pthread_rwlock_t lock;       /* the state lock */
    sm_state sm;                 /* the live state (sm.h), under the lock */
    checkpoint *ck;              /* takes the snapshots (checkpoint.h) */
    wal *log;                    /* single-server mode only */
    raft_node *rn;               /* replicated mode only */
    void (*raft_send)(void *arg, uint64_t to, const char *addr, const void *buf, size_t len);
    void *raft_send_arg;
    int raft_timeout_ms;
    uint64_t applied_index;      /* replicated mode: last Raft entry applied */
    uint64_t snapshot_every;
    uint64_t replayed;           /* log records applied at open */
    int64_t (*clock_ns)(void);
    uint64_t commands_ok, commands_failed;
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

/* ---- single-server mode: WAL records and snapshot files ------------------ */

/* wal_open's replay callback: log records are applied as they are (the log
 * holds only commands that were applied) and handed to the checkpointer. */
static int replay_record(void *arg, uint64_t index, const void *payload, size_t len,
                         ts_error *err)
{
    store *s = arg;
    cmd c;
    cmd_result res;
    int applied;
    int rc = cmd_decode(payload, len, &c, err);
    if (rc)
        return TS_ECORRUPT;
    rc = sm_apply(&s->sm, &c, SM_REPLAY, &res, &applied, err);
    if (rc) {
        /* Failing now means the log and the snapshot disagree (corruption
         * or a nondeterministic bug). */
        ts_error_prefix(err, "replaying %s failed", cmd_type_name(c.type));
        rc = TS_ECORRUPT;
    } else {
        checkpoint_applied(s->ck, index, payload, len);
    }
    cmd_free(&c);
    s->replayed++;
    return rc;
}

/* checkpoint_ops.load: the snapshot file at index (it holds no sessions:
 * single-server log records are applied without the dedup check). */
static int single_load(void *arg, uint64_t index, sm_state *st, ts_error *err)
{
    store *s = arg;
    uint64_t got = 0;
    char *path = ts_sprintf("%s/snap-%020" PRIu64 ".snap", s->dir, index);
    memset(st, 0, sizeof(*st));
    int rc = snapshot_load_file(path, &st->ns, &got, err);
    free(path);
    if (rc == 0)
        st->sessions = session_table_new();
    return rc;
}

/* checkpoint_ops.save: the records up to index are made durable first (a
 * snapshot must never be ahead of the log it replaces), then the snapshot
 * file; only then older segments and snapshots go. */
static int single_save(void *arg, uint64_t index, const sm_state *st, uint64_t *bytes,
                       ts_error *err)
{
    store *s = arg;
    struct stat sb;
    wal_wait(s->log, index);
    int rc = snapshot_write(s->dir, index, st->ns, err);
    if (rc == 0 && (rc = wal_compact(s->log, index, err)) == 0)
        rc = snapshot_prune(s->dir, index, err);
    char *path = ts_sprintf("%s/snap-%020" PRIu64 ".snap", s->dir, index);
    *bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    free(path);
    return rc;
}

/* ---- replicated mode: the Raft state machine ---------------------------- */

/* raft_node_ops.send: the ops share the store as their arg, so the
 * transport's own arg is kept here. */
static void store_raft_send(void *arg, uint64_t to, const char *addr, const void *buf,
                            size_t len)
{
    store *s = arg;
    s->raft_send(s->raft_send_arg, to, addr, buf, len);
}

/* raft_node_ops.apply, on the driver thread. */
static int store_raft_apply(void *arg, const raft_entry *e, void *result)
{
    store *s = arg;
    apply_out *out = result;
    ts_error err = {0};
    cmd c;
    cmd_result res;
    int applied = 0, rc = 0;

    if (e->type != RAFT_ENTRY_NORMAL) {
        pthread_rwlock_wrlock(&s->lock);
        s->applied_index = e->index;
        pthread_rwlock_unlock(&s->lock);
        checkpoint_applied(s->ck, e->index, NULL, 0);
        return 0;
    }
    /* Every replica must apply the same commands: one that does not decode
     * here would make this server diverge, so it stops instead. */
    if (cmd_decode(e->data, e->len, &c, &err) != 0)
        ts_die("store %s: Raft entry %llu does not decode as a command: %s", s->dir,
               (unsigned long long)e->index, err.msg);
    pthread_rwlock_wrlock(&s->lock);
    rc = sm_apply(&s->sm, &c, SM_DEDUP, &res, &applied, &err);
    if (rc == 0)
        s->commands_ok++;
    else
        s->commands_failed++;
    s->applied_index = e->index;
    pthread_rwlock_unlock(&s->lock);
    checkpoint_applied(s->ck, e->index, e->data, e->len);
    if (out != NULL) {
        out->rc = rc;
        out->res = res;
        out->err = err;
    }
    cmd_free(&c);
    return rc;
}

/* raft_node_ops.restore: replaces the state with an image (at start, or
 * received from the leader). */
static int store_raft_restore(void *arg, uint64_t index, const void *image, size_t len)
{
    store *s = arg;
    ts_error err = {0};
    sm_state st;
    if (sm_image_decode(image, len, &st, &err) != 0) {
        TS_ERROR("store %s: snapshot image %" PRIu64 ": %s", s->dir, index, err.msg);
        return TS_ECORRUPT;
    }
    pthread_rwlock_wrlock(&s->lock);
    sm_clear(&s->sm);
    s->sm = st;
    s->applied_index = index;
    pthread_rwlock_unlock(&s->lock);
    checkpoint_reset(s->ck, index);
    return 0;
}

/* checkpoint_ops.load: the image at index, or the initial state (index 0:
 * no snapshot yet). */
static int store_raft_load(void *arg, uint64_t index, sm_state *st, ts_error *err)
{
    store *s = arg;
    if (index == 0) {
        sm_init_empty(st);
        return 0;
    }
    char *path = raft_node_image_path(s->rn, index);
    char *img = NULL;
    size_t len = 0;
    int rc = ts_read_file(path, &img, &len, err);
    if (rc == 0) {
        rc = sm_image_decode(img, len, st, err);
        free(img);
    }
    if (rc != 0)
        ts_error_prefix(err, "%s", path);
    free(path);
    return rc;
}

/* checkpoint_ops.save: the image goes where the Raft server serves it from
 * (tmp, fsync, rename); the server then compacts its log. */
static int store_raft_save(void *arg, uint64_t index, const sm_state *st, uint64_t *bytes,
                     ts_error *err)
{
    store *s = arg;
    ts_buf img = {0};
    sm_image_encode(st, &img);
    *bytes = img.len;
    char *path = raft_node_image_path(s->rn, index);
    int rc = ts_write_file_atomic(path, img.data, img.len, err);
    ts_buf_free(&img);
    free(path);
    if (rc == 0)
        rc = raft_node_snapshot_taken(s->rn, index, *bytes, err);
    return rc;
}

/* Starts the Raft server over DATA/raft.  The state starts as the empty
 * namespace every member of a new group starts from; a snapshot image, when
 * there is one, replaces it before the log after it is applied. */
static int open_replicated(store *s, const store_opts *opts, ts_error *err)
{
    char *dir = ts_sprintf("%s/raft", s->dir);
    int rc = ts_mkdir_p(dir, err);
    if (rc != 0) {
        ts_error_prefix(err, "data dir %s: cannot create", dir);
        goto free_dir;
    }
    sm_init_empty(&s->sm);
    checkpoint_ops cops = { .load = store_raft_load, .save = store_raft_save, .arg = s, .mode = SM_DEDUP };
    char *name = ts_sprintf("store %s", s->dir);
    s->ck = checkpoint_new(name, 0, s->snapshot_every, &cops);
    free(name);
    s->raft_timeout_ms = opts->raft_timeout_ms > 0 ? opts->raft_timeout_ms
                                                    : STORE_RAFT_TIMEOUT_MS;
    raft_node_opts ro = {
        .dir = dir,
        .id = opts->raft_id,
        .bootstrap = opts->raft_peers,
        .tick_ms = opts->raft_tick_ms,
        .lease_reads = opts->raft_lease_reads,
        .fsync = opts->wal_fsync,
        .ops = { .send = store_raft_send, .apply = store_raft_apply, .restore = store_raft_restore,
                 .arg = s },
    };
    s->raft_send = opts->raft_send;
    s->raft_send_arg = opts->raft_send_arg;
    if ((rc = raft_node_start(&ro, &s->rn, err)) != 0)
        goto free_dir;
    checkpoint_run(s->ck);      /* its saves need s->rn */
    TS_INFO("store %s: replicated mode, Raft member %llu, log and snapshots in %s", s->dir,
            (unsigned long long)opts->raft_id, dir);
free_dir:
    free(dir);
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
    if (opts->raft_id != 0) {
        if (opts->raft_send == NULL) {
            rc = ts_fail(err, TS_EINVAL, "store %s: replicated mode needs a transport", s->dir);
            goto close_store;
        }
        if ((rc = open_replicated(s, opts, err)) != 0)
            goto close_store;
        *out = s;
        return 0;
    }
    uint64_t snapshot_index = 0;
    if ((rc = snapshot_load_latest(s->dir, &s->sm.ns, &snapshot_index, err)) != 0)
        goto close_store;
    if (!s->sm.ns) {
        /* First start: snapshot 0 holds the root, so the root's times are durable. */
        s->sm.last_now = s->clock_ns();
        s->sm.ns = ns_new(s->sm.last_now);
        if ((rc = snapshot_write(s->dir, 0, s->sm.ns, err)) != 0)
            goto close_store;
        TS_INFO("store %s: initialized a new namespace", s->dir);
    }
    s->sm.sessions = session_table_new();
    checkpoint_ops cops = { .load = single_load, .save = single_save, .arg = s,
                            .mode = SM_REPLAY };
    char *name = ts_sprintf("store %s", s->dir);
    s->ck = checkpoint_new(name, snapshot_index, s->snapshot_every, &cops);
    free(name);
    if ((rc = wal_open(s->dir, snapshot_index, opts->wal_fsync, replay_record, s, &s->log,
                       err)) != 0)
        goto close_store;
    checkpoint_run(s->ck);      /* its saves need s->log */
    TS_INFO("store %s: recovered snapshot %llu + %llu log records (last index %llu)", s->dir,
            (unsigned long long)snapshot_index, (unsigned long long)s->replayed,
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
    /* The checkpoint thread first (it saves through the log and the Raft
     * server), then the Raft driver (it applies into the state and hands
     * entries to the checkpointer), then the rest. */
    if (s->ck)
        checkpoint_stop(s->ck);
    raft_node_stop(s->rn);
    wal_close(s->log);
    checkpoint_free(s->ck);
    sm_clear(&s->sm);
    if (s->lock_fd >= 0)
        close(s->lock_fd);   /* releases the flock */
    pthread_rwlock_destroy(&s->lock);
    free(s->dir);
    free(s);
}

/* The leader's time for a new command (monotonic across its commands). */
static int64_t stamp(store *s)
{
    int64_t now = s->clock_ns();
    if (now < s->sm.last_now)
        now = s->sm.last_now;   /* the wall clock stepped back: keep times monotonic */
    return now;
}

static int submit_replicated(store *s, cmd *c, cmd_result *res, ts_error *err)
{
    ts_buf b = {0};
    apply_out out;
    pthread_rwlock_rdlock(&s->lock);
    c->now_ns = stamp(s);
    pthread_rwlock_unlock(&s->lock);
    cmd_encode(c, &b);
    memset(&out, 0, sizeof(out));
    int rc = raft_node_propose(s->rn, b.data, b.len, &out, sizeof(out), s->raft_timeout_ms,
                               NULL, err);
    ts_buf_free(&b);
    if (rc == 0) {
        *res = out.res;
    } else if (out.rc != 0 && out.rc == rc) {
        if (err)
            *err = out.err;     /* the command's own error, with its message */
    }
    return rc;
}

int store_submit(store *s, cmd *c, cmd_result *res, ts_error *err)
{
    ts_buf b = {0};
    uint64_t wait_for;
    int applied;
    if (s->rn != NULL)
        return submit_replicated(s, c, res, err);
    pthread_rwlock_wrlock(&s->lock);
    c->now_ns = stamp(s);
    int rc = sm_apply(&s->sm, c, SM_DEDUP, res, &applied, err);
    if (rc == 0 && applied) {
        cmd_encode(c, &b);
        wait_for = wal_append(s->log, b.data, b.len);
        s->commands_ok++;
        /* A due checkpoint starts a new segment here, so once it is written
         * every older segment can go whole. */
        ts_error rerr = {0};
        if (checkpoint_applied(s->ck, wait_for, b.data, b.len) && wal_roll(s->log, &rerr) != 0)
            TS_WARN("store %s: starting a new log segment: %s", s->dir, rerr.msg);
    } else {
        /* Failed, or answered from the session table: nothing new to log,
         * but what it observed must be durable before the answer. */
        wait_for = wal_last_index(s->log);
        if (rc != 0)
            s->commands_failed++;
    }
    pthread_rwlock_unlock(&s->lock);
    ts_buf_free(&b);
    wal_wait(s->log, wait_for);
    return rc;
}

int store_read_barrier(store *s, ts_error *err)
{
    if (s->rn == NULL)
        return 0;
    return raft_node_read_barrier(s->rn, s->raft_timeout_ms, NULL, err);
}

int store_is_leader(store *s, char addr[RAFT_ADDR_MAX])
{
    raft_status st;
    addr[0] = '\0';
    if (s->rn == NULL)
        return 1;
    raft_node_status(s->rn, &st);
    if (st.role == RAFT_LEADER)
        return 1;
    const raft_member *m = st.leader ? raft_conf_find(&st.conf, st.leader) : NULL;
    if (m != NULL)
        snprintf(addr, RAFT_ADDR_MAX, "%s", m->addr);
    return 0;
}

uint64_t store_leader_term(store *s)
{
    raft_status st;
    if (s->rn == NULL)
        return 1;
    raft_node_status(s->rn, &st);
    return st.role == RAFT_LEADER ? st.term : 0;
}

raft_node *store_raft(store *s)
{
    return s->rn;
}

const ns_state *store_read_lock(store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    return s->sm.ns;
}

void store_read_unlock(store *s)
{
    pthread_rwlock_unlock(&s->lock);
}

int store_snapshot(store *s, ts_error *err)
{
    if (s->log != NULL) {
        pthread_rwlock_wrlock(&s->lock);
        int rc = wal_roll(s->log, err);
        pthread_rwlock_unlock(&s->lock);
        if (rc != 0)
            return rc;
    }
    return checkpoint_now(s->ck, err);
}

void store_get_stats(store *s, store_stats *st)
{
    checkpoint_stats cs;
    memset(st, 0, sizeof(*st));
    pthread_rwlock_rdlock(&s->lock);
    st->last_index = s->rn ? s->applied_index : wal_last_index(s->log);
    st->commands_ok = s->commands_ok;
    st->commands_failed = s->commands_failed;
    st->sessions = session_count(s->sm.sessions);
    pthread_rwlock_unlock(&s->lock);
    checkpoint_get_stats(s->ck, &cs);
    st->snapshot_index = cs.base;
    st->snapshots_written = cs.written;
    st->snapshot_running = cs.running;
    st->snapshot_last_ms = cs.last_ms;
    if (s->log)
        wal_get_stats(s->log, &st->wal);
}
