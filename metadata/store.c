/*
 * The store: recovery, command sequencing and snapshots (see store.h).
 *
 * Lock order: state lock (rwlock) -> WAL mutex.  wal_wait is always called
 * after releasing the state lock, so the next batch of commands applies
 * while the previous one is being fsynced.
 *
 * Replicated mode: the Raft driver thread is the only writer (sm_apply,
 * sm_restore); request threads propose and wait in raft_node, never holding
 * the state lock meanwhile.
 */
#include "metadata/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "common/codec.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/raft/raft_node.h"
#include "metadata/session.h"
#include "metadata/snapshot.h"

#define STORE_DEFAULT_SNAPSHOT_EVERY 100000
#define STORE_RAFT_TIMEOUT_MS 5000
/* The state machine image of replicated mode: "TSRI" v1. */
#define IMAGE_MAGIC 0x49525354u
#define IMAGE_VERSION 1

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
    ns_state *ns;
    wal *log;                    /* single-server mode only */
    session_table *sessions;
    raft_node *rn;               /* replicated mode only */
    void (*raft_send)(void *arg, uint64_t to, const char *addr, const void *buf, size_t len);
    void *raft_send_arg;
    int raft_timeout_ms;
    uint64_t applied_index;      /* replicated mode: last Raft entry applied */
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
    if (rc == 0 && c.client)
        session_record(s->sessions, &c, 0, &res, NULL);
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

/* Applies c through the session table: a retried request gets its first
 * answer (*applied = 0), anything else is applied (*applied = 1) and its
 * answer remembered.  Write lock held. */
static int apply_cmd(store *s, const cmd *c, cmd_result *res, int *applied, ts_error *err)
{
    int rc;
    *applied = 0;
    if (c->client) {
        int seen = session_check(s->sessions, c, &rc, res, err);
        if (seen < 0)
            return seen;
        if (seen == 1)
            return rc;
    }
    *applied = 1;
    rc = cmd_apply(s->ns, c, res, err);
    if (c->client)
        session_record(s->sessions, c, rc, res, err);
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
static int sm_apply(void *arg, const raft_entry *e, void *result)
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
        return 0;
    }
    /* Every replica must apply the same commands: one that does not decode
     * here would make this server diverge, so it stops instead. */
    if (cmd_decode(e->data, e->len, &c, &err) != 0)
        ts_die("store %s: Raft entry %llu does not decode as a command: %s", s->dir,
               (unsigned long long)e->index, err.msg);
    pthread_rwlock_wrlock(&s->lock);
    if (c.now_ns < s->last_now)
        c.now_ns = s->last_now;     /* a new leader's clock may be behind the old one's */
    s->last_now = c.now_ns;
    memset(&res, 0, sizeof(res));
    rc = apply_cmd(s, &c, &res, &applied, &err);
    if (rc == 0)
        s->commands_ok++;
    else
        s->commands_failed++;
    s->applied_index = e->index;
    pthread_rwlock_unlock(&s->lock);
    if (out != NULL) {
        out->rc = rc;
        out->res = res;
        out->err = err;
    }
    cmd_free(&c);
    return rc;
}

/* raft_node_ops.snapshot: u32 magic, u8 version, i64 last command time,
 * bytes namespace (ns_encode), the session table (session_encode).  Under
 * the read lock: client reads go on while the image is encoded. */
static int sm_snapshot(void *arg, ts_buf *out)
{
    store *s = arg;
    ts_buf nsb = {0};
    pthread_rwlock_rdlock(&s->lock);
    ts_enc_u32(out, IMAGE_MAGIC);
    ts_enc_u8(out, IMAGE_VERSION);
    ts_enc_i64(out, s->last_now);
    ns_encode(s->ns, &nsb);
    ts_enc_bytes(out, nsb.data, nsb.len);
    session_encode(s->sessions, out);
    s->snapshots_written++;
    pthread_rwlock_unlock(&s->lock);
    ts_buf_free(&nsb);
    return 0;
}

/* raft_node_ops.restore: replaces the state with an image. */
static int sm_restore(void *arg, const void *image, size_t len)
{
    store *s = arg;
    ts_error err = {0};
    ts_dec d;
    ns_state *ns = NULL;
    session_table *sessions = NULL;
    size_t nslen = 0;
    int rc = TS_ECORRUPT;

    ts_dec_init(&d, image, len);
    uint32_t magic = ts_dec_u32(&d);
    uint8_t version = ts_dec_u8(&d);
    int64_t last_now = ts_dec_i64(&d);
    const void *nsp = ts_dec_bytes(&d, &nslen);
    if (!ts_dec_ok(&d) || magic != IMAGE_MAGIC || version != IMAGE_VERSION) {
        TS_ERROR("store %s: snapshot image: bad header", s->dir);
        return TS_ECORRUPT;
    }
    if (ns_decode(nsp, nslen, &ns, &err) != 0 || session_decode(&d, &sessions, &err) != 0 ||
        !ts_dec_done(&d)) {
        TS_ERROR("store %s: snapshot image: %s", s->dir, err.msg[0] ? err.msg : "trailing bytes");
        goto free_partial;
    }
    pthread_rwlock_wrlock(&s->lock);
    ns_free(s->ns);
    session_table_free(s->sessions);
    s->ns = ns;
    s->sessions = sessions;
    s->last_now = last_now;
    pthread_rwlock_unlock(&s->lock);
    return 0;
free_partial:
    ns_free(ns);
    session_table_free(sessions);
    return rc;
}

/* Starts the Raft server over DATA/raft.  The state starts as the empty
 * namespace every member of a new group starts from (root times 0: they
 * must not depend on one server's clock); a snapshot image, when there is
 * one, replaces it before the log after it is applied. */
static int open_replicated(store *s, const store_opts *opts, ts_error *err)
{
    char *dir = ts_sprintf("%s/raft", s->dir);
    int rc = ts_mkdir_p(dir, err);
    if (rc != 0) {
        ts_error_prefix(err, "data dir %s: cannot create", dir);
        goto free_dir;
    }
    s->ns = ns_new(0);
    s->raft_timeout_ms = opts->raft_timeout_ms > 0 ? opts->raft_timeout_ms
                                                    : STORE_RAFT_TIMEOUT_MS;
    raft_node_opts ro = {
        .dir = dir,
        .id = opts->raft_id,
        .bootstrap = opts->raft_peers,
        .tick_ms = opts->raft_tick_ms,
        .lease_reads = opts->raft_lease_reads,
        .fsync = opts->wal_fsync,
        .snapshot_every = s->snapshot_every,
        .ops = { .send = store_raft_send, .apply = sm_apply, .snapshot = sm_snapshot,
                 .restore = sm_restore, .arg = s },
    };
    s->raft_send = opts->raft_send;
    s->raft_send_arg = opts->raft_send_arg;
    if ((rc = raft_node_start(&ro, &s->rn, err)) != 0)
        goto free_dir;
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
    s->sessions = session_table_new();
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
    raft_node_stop(s->rn);      /* first: its driver applies into the state */
    wal_close(s->log);
    ns_free(s->ns);
    session_table_free(s->sessions);
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

/* The leader's time for a new command (monotonic across its commands). */
static int64_t stamp(store *s)
{
    int64_t now = s->clock_ns();
    if (now < s->last_now)
        now = s->last_now;   /* the wall clock stepped back: keep times monotonic */
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
    s->last_now = c->now_ns;
    int rc = apply_cmd(s, c, res, &applied, err);
    if (rc == 0 && applied) {
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
    return s->ns;
}

void store_read_unlock(store *s)
{
    pthread_rwlock_unlock(&s->lock);
}

int store_snapshot(store *s, ts_error *err)
{
    if (s->rn != NULL)
        return ts_fail(err, TS_ENOTSUP, "store %s: replicated: the Raft server takes snapshots",
                       s->dir);
    pthread_rwlock_wrlock(&s->lock);
    int rc = snapshot_locked(s, err);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

void store_get_stats(store *s, store_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_rwlock_rdlock(&s->lock);
    st->last_index = s->rn ? s->applied_index : wal_last_index(s->log);
    st->snapshot_index = s->snapshot_index;
    st->snapshots_written = s->snapshots_written;
    st->commands_ok = s->commands_ok;
    st->commands_failed = s->commands_failed;
    st->sessions = session_count(s->sessions);
    pthread_rwlock_unlock(&s->lock);
    if (s->log)
        wal_get_stats(s->log, &st->wal);
}
