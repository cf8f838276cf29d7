/*
 * A running Raft server (raft_node.h): the driver thread around the core.
 *
 * Locking: `mu` guards the inbox, the request queue, every waiter's
 * done/abandoned flags, the cached status and `driving`.  The core and the
 * storage are touched only by the thread that set `driving` (outside `mu`),
 * so request handlers never wait for an fsync to queue their work.  That
 * thread is the driver thread, or a handler that queued work while nobody
 * drove: it runs one round itself (drive_inline) instead of handing over
 * to the driver thread and back.
 *
 * Waiter lifetime: a waiter is allocated by the requesting thread and owned
 * jointly until one side lets go: the driver marks it done; the requester,
 * on wake-up, frees a done waiter; a requester that times out marks it
 * abandoned and the driver frees it when it would have completed it (or at
 * stop).  The result buffer lives in the waiter, so a late apply never
 * writes into a stack frame that is gone.  Each waiter has its own
 * condition variable: a completion wakes the one thread it concerns, not
 * every client thread waiting on the server (a broadcast per applied entry
 * woke them all, and each went back to sleep).
 */
#include "metadata/raft/raft_node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/raft/raft_storage.h"

enum req_kind { REQ_PROPOSE, REQ_READ, REQ_CONF, REQ_TRANSFER, REQ_SNAPSHOT };

typedef struct waiter {
    int kind;
    ts_buf data;
    int op;
    uint64_t id;
    char addr[RAFT_ADDR_MAX];
    uint8_t *res;
    size_t res_size;
    uint64_t index, term, ctx;
    uint64_t size;             /* REQ_SNAPSHOT: of the image */
    int64_t started_ms;         /* REQ_READ: when its round started */
    int proposed, done, abandoned, rc;
    pthread_cond_t cv;          /* the requester: done was set, or work came */
    struct waiter *next;
    struct waiter *sleep_next;  /* in n->sleepers, under mu */
} waiter;

typedef struct inmsg {
    ts_buf b;
    struct inmsg *next;
} inmsg;

struct raft_node {
    raft_node_opts o;
    raft *r;
    raft_storage *st;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t wake;       /* driver: work arrived */
    pthread_condattr_t cattr;  /* CLOCK_MONOTONIC, for the waiters' variables */
    int stopping;
    inmsg *inbox, **inbox_tail;
    /* raft_node_receive_wait(): messages are numbered as they are queued;
     * the driver records the newest it took once it has processed the
     * ready that followed, and wakes the waiters then. */
    uint64_t received_seq, handled_seq;
    unsigned handled_waiters;
    pthread_cond_t handled;
    waiter *queued, **queued_tail;
    waiter *pending;           /* driver-only list: handed to the core */
    uint64_t snap_index;       /* of the newest image on disk */
    raft_status status;        /* cached, under mu */
    int driving;               /* a thread runs driver rounds (the core and storage are its) */
    pthread_cond_t idle;       /* driving went back to 0 */
    int64_t next_tick;         /* under mu */
    uint64_t rounds_inline, rounds_driver;     /* under mu: who drove */
    waiter *sleepers;          /* requesters waiting in run_request, under mu */
    raft_storage_stats storage_stats;
    uint64_t next_ctx;
    /* Leader lease (raft_node_read_barrier), under mu. */
    int64_t lease_ms;          /* length of a lease; 0 = lease reads off */
    int64_t lease_until_ms;    /* reads need no round until then ... */
    uint64_t lease_term;       /* ... while leading in this term */
    int64_t lease_renew_ms;    /* when the last background round was queued */
    int64_t votes_after_ms;    /* (pre-)vote requests are dropped until then */
};


/* Callers signal after letting go of mu where they can: a driver woken
 * while the waker still holds mu would only block on it again (on two
 * cores that is one more sleep and wake-up on the commit path).  Those
 * that go on to wait for the driver signal under mu (see run_request). */
static void wake_driver(raft_node *n)
{
    pthread_cond_signal(&n->wake);
}

static void leader_addr_of(const raft_status *st, char *out)
{
    if (out == NULL)
        return;
    out[0] = '\0';
    const raft_member *m = st->leader ? raft_conf_find(&st->conf, st->leader) : NULL;
    if (m != NULL)
        memcpy(out, m->addr, RAFT_ADDR_MAX);
}

/* A zeroed waiter of the given kind, its condition variable on the clock
 * ts_deadline_mono() uses. */
static waiter *new_waiter(raft_node *n, int kind)
{
    waiter *w = ts_calloc(1, sizeof(*w));
    w->kind = kind;
    int e = pthread_cond_init(&w->cv, &n->cattr);
    if (e != 0)
        ts_die("raft: pthread_cond_init: %s", strerror(e));
    return w;
}

static void free_waiter(waiter *w)
{
    pthread_cond_destroy(&w->cv);
    ts_buf_free(&w->data);
    free(w->res);
    free(w);
}

/* Completes w (called by the driver, mu not held). */
static void complete(raft_node *n, waiter *w, int rc)
{
    pthread_mutex_lock(&n->mu);
    if (w->abandoned) {
        free_waiter(w);
    } else {
        w->rc = rc;
        w->done = 1;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&n->mu);
}

/* ---- driver -------------------------------------------------------------- */

static int snapshot_taken(raft_node *n, uint64_t index, uint64_t size);
static void lease_revoke(raft_node *n)
{
    pthread_mutex_lock(&n->mu);
    n->lease_until_ms = 0;
    pthread_mutex_unlock(&n->mu);
}

/* A read round that started at started_ms was confirmed by a majority. */
static void lease_extend(raft_node *n, int64_t started_ms)
{
    if (n->lease_ms == 0 || raft_role(n->r) != RAFT_LEADER)
        return;
    pthread_mutex_lock(&n->mu);
    uint64_t term = raft_term(n->r);
    int64_t until = started_ms + n->lease_ms;
    if (n->lease_term != term) {
        n->lease_term = term;
        n->lease_until_ms = until;
    } else if (until > n->lease_until_ms) {
        n->lease_until_ms = until;
    }
    pthread_mutex_unlock(&n->mu);
}

static void start_request(raft_node *n, waiter *w)
{
    int rc;
    switch (w->kind) {
    case REQ_PROPOSE:
        rc = raft_propose(n->r, w->data.data, w->data.len, &w->index, &w->term);
        break;
    case REQ_READ:
        w->ctx = ++n->next_ctx;
        w->started_ms = ts_mono_ms();
        rc = raft_read_index(n->r, w->ctx);
        break;
    case REQ_CONF:
        /* Majorities change; a removed leader hands over (TIMEOUT_NOW). */
        lease_revoke(n);
        rc = raft_propose_conf(n->r, w->op, w->id, w->addr, &w->index);
        w->term = raft_term(n->r);
        break;
    case REQ_SNAPSHOT:
        complete(n, w, snapshot_taken(n, w->index, w->size));
        return;
    default:
        lease_revoke(n);    /* the target campaigns ignoring stickiness */
        complete(n, w, raft_transfer(n->r, w->id));
        return;
    }
    if (rc != 0) {
        complete(n, w, rc);
        return;
    }
    w->proposed = w->kind != REQ_READ;
    w->next = n->pending;
    n->pending = w;
}

static waiter *unlink_pending(raft_node *n, waiter **pp)
{
    waiter *w = *pp;
    *pp = w->next;
    w->next = NULL;
    return w;
}

static void apply_entry(raft_node *n, const raft_entry *e)
{
    waiter **pp = &n->pending, *w = NULL;
    for (; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->proposed && (*pp)->index == e->index) {
            w = unlink_pending(n, pp);
            break;
        }
    }
    int mine = w != NULL && w->term == e->term;
    int rc = n->o.ops.apply(n->o.ops.arg, e, mine ? w->res : NULL);
    if (w != NULL)
        complete(n, w, mine ? rc : TS_ENOTLEADER);   /* another entry won the index */
}

static void finish_reads(raft_node *n, const raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_reads; i++) {
        for (waiter **pp = &n->pending; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->kind == REQ_READ && (*pp)->ctx == rd->reads[i].ctx) {
                if (rd->reads[i].index == 0) {
                    complete(n, unlink_pending(n, pp), TS_ENOTLEADER);
                } else {
                    (*pp)->index = rd->reads[i].index;
                    (*pp)->ctx = 0;     /* confirmed: waits for applied >= index */
                    lease_extend(n, (*pp)->started_ms);
                }
                break;
            }
        }
    }
    uint64_t applied = raft_applied_index(n->r);
    for (waiter **pp = &n->pending; *pp != NULL;) {
        if ((*pp)->kind == REQ_READ && (*pp)->ctx == 0 && (*pp)->index <= applied)
            complete(n, unlink_pending(n, pp), 0);
        else
            pp = &(*pp)->next;
    }
}

/* ---- snapshot images ----------------------------------------------------- */

static char *image_path(const raft_node *n, uint64_t index, int tmp)
{
    return ts_sprintf("%s/raft-snap-%020" PRIu64 ".img%s", n->o.dir, index, tmp ? ".tmp" : "");
}

/* Deletes images (and leftover .tmp files) older than the one at keep.
 * Newer ones are being written right now: an image the state machine
 * builds in the background, or one arriving from the leader in pieces. */
static void prune_images(raft_node *n, uint64_t keep)
{
    DIR *d = opendir(n->o.dir);
    if (d == NULL)
        return;
    struct dirent *de;
    char *keep_name = ts_sprintf("raft-snap-%020" PRIu64 ".img", keep);
    while ((de = readdir(d)) != NULL) {
        unsigned long long idx;
        if (strncmp(de->d_name, "raft-snap-", 10) != 0 || strcmp(de->d_name, keep_name) == 0)
            continue;
        if (sscanf(de->d_name + 10, "%20llu", &idx) == 1 && idx > keep)
            continue;
        char *p = ts_sprintf("%s/%s", n->o.dir, de->d_name);
        if (unlink(p) != 0)
            TS_WARN("raft %s: cannot remove %s: %s", n->o.dir, p, strerror(errno));
        free(p);
    }
    free(keep_name);
    closedir(d);
}

static void restore_image(raft_node *n, uint64_t index)
{
    char *path = image_path(n, index, 0);
    char *img = NULL;
    size_t len = 0;
    ts_error err;
    if (ts_read_file(path, &img, &len, &err) != 0)
        ts_die("raft %s: snapshot %" PRIu64 ": %s", n->o.dir, index, err.msg);
    if (n->o.ops.restore(n->o.ops.arg, index, img, len) != 0)
        ts_die("raft %s: snapshot image %s does not restore", n->o.dir, path);
    free(img);
    free(path);
    n->snap_index = index;
}

/* The image at index (durable at image_path) becomes the local snapshot:
 * the core compacts its log, the meta is recorded, older log segments and
 * images go.  0, or TS_EINVAL when the core refuses it (a newer snapshot
 * arrived meanwhile, or index is unknown): the file is then removed. */
static int snapshot_taken(raft_node *n, uint64_t index, uint64_t size)
{
    raft_snapshot_meta meta;
    ts_error err;
    int64_t t0 = ts_mono_ms();
    /* Keep some entries so a follower slightly behind needs no image. */
    int rc = index > n->snap_index ? raft_compact(n->r, index, size, 64, &meta) : TS_EINVAL;
    if (rc != 0) {
        TS_WARN("raft %s: snapshot at %" PRIu64 " not used: the log is compacted to %" PRIu64
                " already or the index is unknown", n->o.dir, index, n->snap_index);
        char *path = image_path(n, index, 0);
        if (index != n->snap_index)
            unlink(path);
        free(path);
        return TS_EINVAL;
    }
    int64_t t1 = ts_mono_ms();
    if (raft_storage_snapshot_taken(n->st, &meta, &err) != 0)
        ts_die("raft %s: recording snapshot %" PRIu64 ": %s", n->o.dir, index, err.msg);
    n->snap_index = index;
    int64_t t2 = ts_mono_ms();
    prune_images(n, index);
    /* The driver's share of a snapshot: the core's log compaction, the meta
     * file (fsynced) and old log segments, old images. */
    TS_INFO("raft %s: snapshot at %" PRIu64 " (%" PRIu64 " bytes), log compacted in %lld ms "
            "(core %lld, storage %lld, images %lld)", n->o.dir, index, size,
            (long long)(ts_mono_ms() - t0), (long long)(t1 - t0), (long long)(t2 - t1),
            (long long)(ts_mono_ms() - t2));
    return 0;
}

/* Synchronous snapshots (ops.snapshot set): taken on the driver thread
 * when snapshot_every entries were applied since the last one. */
static void maybe_snapshot(raft_node *n)
{
    uint64_t applied = raft_applied_index(n->r);
    if (n->o.ops.snapshot == NULL || applied < n->snap_index + n->o.snapshot_every)
        return;
    ts_buf img = {0};
    ts_error err;
    if (n->o.ops.snapshot(n->o.ops.arg, &img) != 0) {
        ts_buf_free(&img);
        return;
    }
    char *path = image_path(n, applied, 0);
    if (ts_write_file_atomic(path, img.data, img.len, &err) == 0)
        snapshot_taken(n, applied, img.len);
    else
        TS_WARN("raft %s: snapshot at %" PRIu64 " failed: %s", n->o.dir, applied, err.msg);
    free(path);
    ts_buf_free(&img);
}

/* Writes a received piece; the final one is fsynced and renamed. */
static void write_piece(raft_node *n, const raft_snap_chunk *c)
{
    char *tmp = image_path(n, c->index, 1);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC | (c->offset == 0 ? O_TRUNC : 0), 0644);
    if (fd < 0 || ts_pwrite_full(fd, c->data, c->len, (off_t)c->offset) != 0 ||
        (c->done && fsync(fd) != 0))
        ts_die("raft %s: writing snapshot piece to %s: %s", n->o.dir, tmp, strerror(errno));
    close(fd);
    if (c->done) {
        char *path = image_path(n, c->index, 0);
        ts_error err;
        if (rename(tmp, path) != 0 || ts_fsync_dir(n->o.dir, &err) != 0)
            ts_die("raft %s: installing %s: %s", n->o.dir, path, strerror(errno));
        free(path);
    }
    free(tmp);
}

/* Attaches the bytes of an outgoing snapshot piece; 0 or -1 (skip it). */
static int read_piece(raft_node *n, raft_msg *m, uint8_t **buf)
{
    char *path = image_path(n, m->snap.index, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -1;
    *buf = ts_realloc(*buf, m->len + 1);
    ssize_t got = ts_pread_full(fd, *buf, m->len, (off_t)m->offset);
    close(fd);
    if (got != (ssize_t)m->len)
        return -1;
    m->data = *buf;
    return 0;
}

/* Messages a leader may send before its own fsync: appends and heartbeats
 * promise nothing about the leader's disk (Raft thesis 10.2.1), and the
 * core counts the leader's own entries toward a commit only once persisted
 * (its `stable` index), so the leader's fsync overlaps the followers'
 * network hop and fsync instead of preceding them.  Everything else --
 * votes, acknowledgements, anything sent with a new term or vote to
 * persist -- still leaves only after persisting. */
static int send_early(const raft_ready *rd, const raft_msg *m)
{
    return rd->role == RAFT_LEADER && !rd->hard_state_changed && rd->snapshot == NULL &&
           (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT);
}

/* Sends the messages of rd with send_early() == early. */
static void send_msgs(raft_node *n, const raft_ready *rd, int early, ts_buf *b, uint8_t **piece)
{
    raft_status st;
    raft_get_status(n->r, &st);
    for (size_t i = 0; i < rd->n_msgs; i++) {
        if (send_early(rd, &rd->msgs[i]) != early)
            continue;
        if (rd->msgs[i].type == RAFT_MSG_TIMEOUT_NOW)
            lease_revoke(n);    /* also a transfer the core starts itself */
        /* A server that joins starts without a configuration: it answers
         * the leader before it knows its address ("" = the transport
         * resolves the id, e.g. from where the last message came). */
        const raft_member *m = raft_conf_find(&st.conf, rd->msgs[i].to);
        if (rd->msgs[i].type == RAFT_MSG_SNAP && read_piece(n, &rd->msgs[i], piece) != 0)
            continue;   /* image replaced meanwhile: the leader starts over */
        b->len = 0;
        raft_msg_encode(&rd->msgs[i], b);
        n->o.ops.send(n->o.ops.arg, rd->msgs[i].to, m ? m->addr : "", b->data, b->len);
    }
}

static void process_ready(raft_node *n)
{
    ts_error err;
    ts_buf b = {0};
    uint8_t *piece = NULL;
    while (raft_has_ready(n->r)) {
        raft_ready rd;
        raft_get_ready(n->r, &rd);
        send_msgs(n, &rd, 1, &b, &piece);
        if (rd.snapshot_chunk != NULL)
            write_piece(n, rd.snapshot_chunk);
        /* The memory state is ahead of the disk if this fails: stop. */
        if (raft_storage_save(n->st, &rd, &err) != 0)
            ts_die("raft %s: persisting failed: %s", n->o.dir, err.msg);
        if (rd.snapshot != NULL) {
            restore_image(n, rd.snapshot->index);
            prune_images(n, rd.snapshot->index);
        }
        send_msgs(n, &rd, 0, &b, &piece);
        for (size_t i = 0; i < rd.n_committed; i++)
            apply_entry(n, &rd.committed[i]);
        raft_advance(n->r, &rd);
        finish_reads(n, &rd);
        maybe_snapshot(n);
    }
    ts_buf_free(&b);
    free(piece);
}

/* Everything queued up to seq has been stepped and its ready processed
 * (persisted, answers handed to ops.send); mu held.  1 when waiters are
 * to be woken (after mu is released). */
static int mark_handled(raft_node *n, uint64_t seq)
{
    if (seq <= n->handled_seq)
        return 0;
    n->handled_seq = seq;
    return n->handled_waiters > 0;
}

/* Work for a driver round: messages, requests, or a tick due; mu held. */
static int has_work(const raft_node *n, int64_t now)
{
    return n->inbox != NULL || n->queued != NULL || now >= n->next_tick;
}

/* Driver rounds, up to max_rounds (0: until no work is left); mu held on
 * entry and exit, and the caller has set n->driving.  Each round takes
 * the whole inbox and request queue, steps the core, persists and sends
 * what it produced, applies what is committed and wakes the threads it
 * concerns. */
static void drive(raft_node *n, int max_rounds)
{
    for (int round = 0; !n->stopping && (max_rounds == 0 || round < max_rounds) &&
                        has_work(n, ts_mono_ms()); round++) {
        inmsg *msgs = n->inbox;
        uint64_t taken_seq = n->received_seq;
        waiter *reqs = n->queued;
        n->inbox = NULL;
        n->inbox_tail = &n->inbox;
        n->queued = NULL;
        n->queued_tail = &n->queued;
        int tick = ts_mono_ms() >= n->next_tick;
        if (tick) {
            n->next_tick += n->o.tick_ms;
            if (n->next_tick < ts_mono_ms())
                n->next_tick = ts_mono_ms() + n->o.tick_ms;   /* fell behind: do not burst */
        }
        pthread_mutex_unlock(&n->mu);

        while (msgs != NULL) {
            inmsg *m = msgs;
            msgs = m->next;
            raft_msg rm;
            if (raft_msg_decode(m->b.data, m->b.len, &rm) == 0) {
                int vote_req = rm.type == RAFT_MSG_PREVOTE || rm.type == RAFT_MSG_VOTE;
                if (vote_req && !(rm.flags & RAFT_FLAG_TRANSFER) &&
                    ts_mono_ms() < n->votes_after_ms)
                    TS_DEBUG("raft %s: ignoring a vote request right after start (lease "
                             "of a leader this server may have acknowledged)", n->o.dir);
                else if (raft_step(n->r, &rm) != 0)
                    TS_DEBUG("raft %s: dropped a malformed %s", n->o.dir,
                             raft_msg_type_name(rm.type));
                raft_msg_release(&rm);
            }
            ts_buf_free(&m->b);
            free(m);
        }
        while (reqs != NULL) {
            waiter *w = reqs;
            reqs = w->next;
            w->next = NULL;
            start_request(n, w);
        }
        if (tick)
            raft_tick(n->r);
        process_ready(n);

        pthread_mutex_lock(&n->mu);
        int wake_handled = mark_handled(n, taken_seq);
        raft_get_status(n->r, &n->status);
        raft_storage_get_stats(n->st, &n->storage_stats);
        if (n->status.role != RAFT_LEADER || n->status.term != n->lease_term ||
            n->status.transfer_target != 0)
            n->lease_until_ms = 0;
        if (wake_handled) {
            pthread_mutex_unlock(&n->mu);
            pthread_cond_broadcast(&n->handled);    /* n outlives its waiters */
            pthread_mutex_lock(&n->mu);
        }
    }
}

/* Runs drive(n, max_rounds) as the one thread driving, counted in
 * *rounds; mu held, nobody driving. */
static void take_wheel(raft_node *n, int max_rounds, uint64_t *rounds)
{
    n->driving = 1;
    (*rounds)++;
    drive(n, max_rounds);
    n->driving = 0;
    pthread_cond_broadcast(&n->idle);
}

/* Called by a thread that just queued work (mu held): when no thread is
 * driving, it runs one round itself rather than waking the driver thread
 * and sleeping until that one is done -- two thread hand-offs fewer per
 * message on every server, each tens of microseconds on a busy small
 * machine (a follower answers an append in the handler thread that
 * received it).  One round only, so a request's thread is not kept
 * driving for others: work left over goes to the driver thread. */
static void drive_inline(raft_node *n)
{
    if (n->stopping) {
        wake_driver(n);
        return;
    }
    /* Someone drives: it takes this work too (the driver thread loops
     * until none is left; a handler's round wakes it for what is left). */
    if (n->driving)
        return;
    take_wheel(n, 1, &n->rounds_inline);
    if (n->stopping || has_work(n, ts_mono_ms()))
        wake_driver(n);
}

/* The driver thread: runs rounds whenever work is there and no other
 * thread drives, and the ticks. */
static void *driver(void *arg)
{
    raft_node *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stopping) {
        int64_t now = ts_mono_ms();
        if (n->driving || !has_work(n, now)) {
            /* Another thread drives: it wakes this one if it leaves work. */
            int64_t wait = n->driving ? n->o.tick_ms : n->next_tick - now;
            struct timespec ts = ts_deadline_mono(wait);
            pthread_cond_timedwait(&n->wake, &n->mu, &ts);
            continue;
        }
        take_wheel(n, 0, &n->rounds_driver);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* ---- public -------------------------------------------------------------- */

int raft_node_start(const raft_node_opts *o, raft_node **out, ts_error *err)
{
    if (o->id == 0 || o->ops.send == NULL || o->ops.apply == NULL)
        return ts_fail(err, TS_EINVAL, "raft node: id, send and apply are required");
    raft_node *n = ts_calloc(1, sizeof(*n));
    n->o = *o;
    n->o.dir = ts_strdup(o->dir);
    if (n->o.tick_ms <= 0)
        n->o.tick_ms = 50;
    if (n->o.election_ticks == 0)
        n->o.election_ticks = 10;
    if (n->o.heartbeat_ticks == 0)
        n->o.heartbeat_ticks = 2;
    if (n->o.snapshot_every == 0)
        n->o.snapshot_every = 10000;
    n->o.bootstrap = NULL;
    n->inbox_tail = &n->inbox;
    n->queued_tail = &n->queued;
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_init(&n->cattr);
    pthread_condattr_setclock(&n->cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&n->wake, &n->cattr);
    pthread_cond_init(&n->handled, &n->cattr);
    pthread_cond_init(&n->idle, &n->cattr);
    n->next_tick = ts_mono_ms() + n->o.tick_ms;

    raft_restore rs;
    int rc = raft_storage_open(o->dir, o->fsync, &n->st, &rs, err);
    if (rc != 0)
        goto fail_stop;
    if (rs.n_entries == 0 && rs.snapshot == NULL && rs.term == 0)
        rs.bootstrap = o->bootstrap;
    if (o->lease_reads && n->o.election_ticks > 2)
        n->lease_ms = (int64_t)(n->o.election_ticks - 2) * n->o.tick_ms;
    n->votes_after_ms = ts_mono_ms() + (int64_t)n->o.election_ticks * n->o.tick_ms;
    raft_config cfg = {0};
    cfg.id = o->id;
    cfg.election_ticks = n->o.election_ticks;
    cfg.heartbeat_ticks = n->o.heartbeat_ticks;
    cfg.snapshot_chunk = o->snapshot_chunk;
    if (rs.snapshot != NULL) {
        if (o->ops.restore == NULL) {
            rc = ts_fail(err, TS_EINVAL, "raft %s: has a snapshot but no restore callback",
                         o->dir);
            goto fail_stop;
        }
        restore_image(n, rs.snapshot->index);
    }
    if (o->seed != 0)
        cfg.seed = o->seed;
    else
        ts_random_bytes(&cfg.seed, sizeof(cfg.seed));
    rc = raft_new(&cfg, &rs, &n->r);
    raft_storage_loaded_free(n->st);
    if (rc != 0) {
        rc = ts_fail(err, rc, "raft %s: the stored state is inconsistent (%s)", o->dir,
                     ts_err_name(rc));
        goto fail_stop;
    }
    raft_get_status(n->r, &n->status);
    /* A single-server group need not wait for an election timeout. */
    if (n->status.conf.n == 1 && n->status.conf.m[0].id == o->id)
        raft_campaign(n->r);
    process_ready(n);
    raft_get_status(n->r, &n->status);
    if (pthread_create(&n->th, NULL, driver, n) != 0) {
        rc = ts_fail(err, TS_EIO, "raft %s: cannot start the driver thread", o->dir);
        goto fail_stop;
    }
    n->started = 1;
    *out = n;
    return 0;
fail_stop:
    raft_node_stop(n);
    return rc;
}

void raft_node_stop(raft_node *n)
{
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    wake_driver(n);
    pthread_cond_broadcast(&n->handled);
    pthread_mutex_unlock(&n->mu);
    if (n->started)
        pthread_join(n->th, NULL);
    /* A handler thread may still be in a round of its own. */
    pthread_mutex_lock(&n->mu);
    while (n->driving)
        pthread_cond_wait(&n->idle, &n->mu);
    pthread_mutex_unlock(&n->mu);
    /* Everyone still waiting learns the server is going away. */
    while (n->pending != NULL)
        complete(n, unlink_pending(n, &n->pending), TS_EUNAVAIL);
    while (n->queued != NULL) {
        waiter *w = n->queued;
        n->queued = w->next;
        complete(n, w, TS_EUNAVAIL);
    }
    while (n->inbox != NULL) {
        inmsg *m = n->inbox;
        n->inbox = m->next;
        ts_buf_free(&m->b);
        free(m);
    }
    /* Waiters wake, see done, and free their waiters; wait for them to let
     * go of the mutex before it is destroyed. */
    pthread_mutex_lock(&n->mu);
    pthread_mutex_unlock(&n->mu);
    raft_free(n->r);
    raft_storage_close(n->st);
    pthread_cond_destroy(&n->wake);
    pthread_cond_destroy(&n->handled);
    pthread_cond_destroy(&n->idle);
    pthread_condattr_destroy(&n->cattr);
    pthread_mutex_destroy(&n->mu);
    free((char *)n->o.dir);
    free(n);
}

/* Appends a copy of buf to the inbox (the caller wakes the driver); mu
 * held.  Returns its number. */
static uint64_t inbox_push(raft_node *n, inmsg *m)
{
    *n->inbox_tail = m;
    n->inbox_tail = &m->next;
    return ++n->received_seq;
}

static inmsg *inmsg_copy(const void *buf, size_t len)
{
    inmsg *m = ts_calloc(1, sizeof(*m));
    ts_buf_append(&m->b, buf, len);
    return m;
}

/* Never drives inline: the transport delivers answers with its own lock
 * held, which a round's sends take.  A requester waiting for its commit is
 * woken to drive the round instead of the driver thread: the answer that
 * commits its entry is then applied in its own thread, which returns at
 * once rather than being woken by the driver afterwards. */
int raft_node_receive(raft_node *n, const void *buf, size_t len)
{
    inmsg *m = inmsg_copy(buf, len);
    pthread_mutex_lock(&n->mu);
    (void)inbox_push(n, m);
    /* A thread driving takes it (see drive_inline). */
    if (!n->driving && n->sleepers != NULL)
        pthread_cond_signal(&n->sleepers->cv);
    else if (!n->driving)
        wake_driver(n);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

int raft_node_receive_wait(raft_node *n, const void *buf, size_t len, int timeout_ms)
{
    struct timespec dl = ts_deadline_mono(timeout_ms);
    int rc = 0;
    inmsg *m = inmsg_copy(buf, len);
    pthread_mutex_lock(&n->mu);
    uint64_t seq = inbox_push(n, m);
    n->handled_waiters++;
    drive_inline(n);
    while (n->handled_seq < seq && !n->stopping && rc == 0)
        if (pthread_cond_timedwait(&n->handled, &n->mu, &dl) == ETIMEDOUT)
            rc = TS_ETIMEDOUT;
    n->handled_waiters--;
    if (n->handled_seq >= seq)
        rc = 0;             /* handled just as the wait timed out */
    else if (n->stopping)
        rc = TS_EUNAVAIL;
    pthread_mutex_unlock(&n->mu);
    return rc;
}

/* Queues w and waits for it.  Returns its status. */
static int run_request(raft_node *n, waiter *w, void *result, int timeout_ms, char *leader_addr,
                       ts_error *err)
{
    struct timespec dl = ts_deadline_mono(timeout_ms);
    pthread_mutex_lock(&n->mu);
    if (n->stopping) {
        pthread_mutex_unlock(&n->mu);
        free_waiter(w);
        return ts_fail(err, TS_EUNAVAIL, "raft: server is stopping");
    }
    *n->queued_tail = w;
    n->queued_tail = &w->next;
    /* Under mu: raft_node_stop() relies on a requester holding mu from
     * here until it waits (or drives: stop waits for that round). */
    drive_inline(n);
    int timed_out = 0;
    while (!w->done && !timed_out) {
        w->sleep_next = n->sleepers;
        n->sleepers = w;
        timed_out = pthread_cond_timedwait(&w->cv, &n->mu, &dl) == ETIMEDOUT;
        for (waiter **pp = &n->sleepers; *pp != NULL; pp = &(*pp)->sleep_next)
            if (*pp == w) {
                *pp = w->sleep_next;
                break;
            }
        /* Woken for work (raft_node_receive): drive the round here. */
        if (!w->done && !timed_out && !n->driving && has_work(n, ts_mono_ms()))
            drive_inline(n);
    }
    int rc;
    if (!w->done) {
        w->abandoned = 1;   /* the driver frees it */
        rc = ts_fail(err, TS_ETIMEDOUT, "raft: no answer within %d ms", timeout_ms);
    } else {
        rc = w->rc;
        /* Copied whatever the status: a failed command's result says why. */
        if (result != NULL && w->res != NULL)
            memcpy(result, w->res, w->res_size);
        if (rc == TS_ENOTLEADER) {
            leader_addr_of(&n->status, leader_addr);
            ts_fail(err, rc, "raft: not the leader%s%s", leader_addr && leader_addr[0] ?
                    "; the leader is " : "", leader_addr ? leader_addr : "");
        } else if (rc != 0) {
            ts_fail(err, rc, "raft: request failed: %s", ts_err_name(rc));
        }
        free_waiter(w);
    }
    pthread_mutex_unlock(&n->mu);
    return rc;
}

int raft_node_propose(raft_node *n, const void *data, size_t len, void *result,
                      size_t result_size, int timeout_ms, char *leader_addr, ts_error *err)
{
    waiter *w = new_waiter(n, REQ_PROPOSE);
    ts_buf_append(&w->data, data, len);
    w->res_size = result_size;
    w->res = result_size ? ts_calloc(1, result_size) : NULL;
    return run_request(n, w, result, timeout_ms, leader_addr, err);
}

/* Under mu: 1 when a read may be answered now under the lease.  The
 * cached status must show everything committed applied (a new leader may
 * still be applying what earlier terms committed). */
static int lease_read_ok(raft_node *n, int64_t now)
{
    const raft_status *st = &n->status;

    return n->lease_ms > 0 && now < n->lease_until_ms && st->role == RAFT_LEADER &&
           st->term == n->lease_term && st->transfer_target == 0 && st->applied >= st->commit;
}

int raft_node_read_barrier(raft_node *n, int timeout_ms, char *leader_addr, ts_error *err)
{
    int64_t now = ts_mono_ms();

    pthread_mutex_lock(&n->mu);
    if (!n->stopping && lease_read_ok(n, now)) {
        if (n->lease_until_ms - now < n->lease_ms / 2 &&
            now - n->lease_renew_ms >= n->lease_ms / 4) {
            /* Extend the lease in the background: nobody waits for this
             * round (abandoned: the driver frees it when it completes). */
            waiter *bg = new_waiter(n, REQ_READ);
            bg->abandoned = 1;
            *n->queued_tail = bg;
            n->queued_tail = &bg->next;
            n->lease_renew_ms = now;
            wake_driver(n);
        }
        pthread_mutex_unlock(&n->mu);
        return 0;
    }
    pthread_mutex_unlock(&n->mu);
    waiter *w = new_waiter(n, REQ_READ);
    return run_request(n, w, NULL, timeout_ms, leader_addr, err);
}

int raft_node_change(raft_node *n, int op, uint64_t id, const char *addr, int timeout_ms,
                     char *leader_addr, ts_error *err)
{
    if (addr != NULL && strlen(addr) >= RAFT_ADDR_MAX)
        return ts_fail(err, TS_EINVAL, "raft: address %s too long", addr);
    waiter *w = new_waiter(n, REQ_CONF);
    w->op = op;
    w->id = id;
    if (addr != NULL)
        strcpy(w->addr, addr);
    return run_request(n, w, NULL, timeout_ms, leader_addr, err);
}

int raft_node_transfer(raft_node *n, uint64_t id, char *leader_addr, ts_error *err)
{
    waiter *w = new_waiter(n, REQ_TRANSFER);
    w->id = id;
    return run_request(n, w, NULL, 5000, leader_addr, err);
}

char *raft_node_image_path(raft_node *n, uint64_t index)
{
    return image_path(n, index, 0);
}

int raft_node_snapshot_taken(raft_node *n, uint64_t index, uint64_t size, ts_error *err)
{
    waiter *w = new_waiter(n, REQ_SNAPSHOT);
    w->index = index;
    w->size = size;
    return run_request(n, w, NULL, 30000, NULL, err);
}

void raft_node_status(raft_node *n, raft_status *st)
{
    pthread_mutex_lock(&n->mu);
    *st = n->status;
    pthread_mutex_unlock(&n->mu);
}

void raft_node_storage_stats(raft_node *n, raft_storage_stats *st)
{
    pthread_mutex_lock(&n->mu);
    *st = n->storage_stats;
    pthread_mutex_unlock(&n->mu);
}

void raft_node_round_stats(raft_node *n, uint64_t *by_handlers, uint64_t *by_driver)
{
    pthread_mutex_lock(&n->mu);
    *by_handlers = n->rounds_inline;
    *by_driver = n->rounds_driver;
    pthread_mutex_unlock(&n->mu);
}
