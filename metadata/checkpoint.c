/*
 * The background checkpointer (checkpoint.h).
 *
 * Locking: `mu` guards the entry list, the indexes and the flags.  The
 * checkpoint thread holds it only to pick a job and to finish one; while
 * it loads, applies and saves it walks the first n entries of the list,
 * which nobody frees meanwhile: only the finishing job frees entries, and
 * checkpoint_reset moves the list to `orphans` (freed by the job) while a
 * job runs.  Entries are immutable once linked; the job reads the `next`
 * of its first n-1 entries only, all linked before it took the list.
 */
#include "metadata/checkpoint.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "common/log.h"
#include "common/util.h"

/* The checkpoint thread runs below the request threads' priority: on a
 * busy server its CPU time is what clients should not feel. */
#define CHECKPOINT_NICE 10
/* How often (in entries) a running checkpoint looks for a stop request. */
#define STOP_CHECK_EVERY 4096

typedef struct centry {
    struct centry *next;
    uint64_t index;
    size_t len;             /* 0: no state change (Raft conf/noop entry) */
    uint8_t data[];
} centry;

struct checkpoint {
    char *name;
    checkpoint_ops ops;
    uint64_t every;
    pthread_mutex_t mu;
    pthread_cond_t work;        /* the thread: a job is due, or stop */
    pthread_cond_t finished;    /* checkpoint_now: a job ended */
    pthread_t th;
    int started, stopping;
    centry *head, *tail;
    uint64_t n_entries;
    centry *orphans;            /* dropped by a reset while a job walked them */
    uint64_t base, latest, next_at, gen;
    int requested, running;
    uint64_t jobs_ended;
    uint64_t last_target;
    int last_rc;
    ts_error last_err;
    checkpoint_stats st;
};

static void free_chain(centry *e)
{
    while (e != NULL) {
        centry *next = e->next;
        free(e);
        e = next;
    }
}

checkpoint *checkpoint_new(const char *name, uint64_t base, uint64_t every,
                           const checkpoint_ops *ops)
{
    checkpoint *ck = ts_calloc(1, sizeof(*ck));
    ck->name = ts_strdup(name);
    ck->ops = *ops;
    ck->every = every ? every : 1;
    ck->base = ck->latest = base;
    ck->next_at = base + ck->every;
    pthread_mutex_init(&ck->mu, NULL);
    pthread_cond_init(&ck->work, NULL);
    pthread_cond_init(&ck->finished, NULL);
    return ck;
}

/* Rebuilds the state at target from the base image and the first n
 * entries; 0 with *out filled, or an error. */
static int rebuild(checkpoint *ck, uint64_t base, centry *first, uint64_t n, sm_state *out,
                   ts_error *err)
{
    int rc = ck->ops.load(ck->ops.arg, base, out, err);
    if (rc != 0) {
        ts_error_prefix(err, "loading the snapshot at %" PRIu64, base);
        return rc;
    }
    centry *e = first;
    for (uint64_t i = 0; i < n; i++, e = i < n ? e->next : NULL) {
        if (i % STOP_CHECK_EVERY == 0 && __atomic_load_n(&ck->stopping, __ATOMIC_RELAXED)) {
            rc = ts_fail(err, TS_EUNAVAIL, "stopping");
            goto clear_state;
        }
        if (e->len == 0)
            continue;
        cmd c;
        cmd_result res;
        ts_error cerr = {0};
        int applied;
        if ((rc = cmd_decode(e->data, e->len, &c, err)) != 0) {
            ts_error_prefix(err, "entry %" PRIu64, e->index);
            goto clear_state;
        }
        int crc = sm_apply(out, &c, ck->ops.mode, &res, &applied, &cerr);
        cmd_free(&c);
        if (crc != 0 && ck->ops.mode == SM_REPLAY) {
            /* The log holds only commands that applied: failing now means
             * the log and the base image disagree. */
            rc = ts_fail(err, TS_ECORRUPT, "entry %" PRIu64 " does not apply: %s", e->index,
                         cerr.msg);
            goto clear_state;
        }
    }
    return 0;
clear_state:
    sm_clear(out);
    return rc;
}

/* Runs one job; mu held on entry and on return. */
static void run_job(checkpoint *ck)
{
    uint64_t target = ck->latest, base = ck->base, gen = ck->gen, n = ck->n_entries;
    centry *first = ck->head, *last = ck->tail;
    ck->requested = 0;
    ck->running = 1;
    ck->st.running = 1;
    pthread_mutex_unlock(&ck->mu);
    TS_INFO("%s: snapshot at %" PRIu64 ": building it in the background from the one at %"
            PRIu64 " and %" PRIu64 " entries", ck->name, target, base, n);

    int64_t t0 = ts_mono_ms();
    sm_state st = {0};
    uint64_t bytes = 0;
    ts_error err = {0};
    int rc = rebuild(ck, base, first, n, &st, &err);
    if (rc == 0) {
        pthread_mutex_lock(&ck->mu);
        int stale = ck->gen != gen;
        pthread_mutex_unlock(&ck->mu);
        if (stale)
            rc = ts_fail(&err, TS_EINVAL, "the state was replaced meanwhile");
        else
            rc = ck->ops.save(ck->ops.arg, target, &st, &bytes, &err);
        sm_clear(&st);
    }
    malloc_trim(0);     /* give the private copy back to the system */
    int64_t ms = ts_mono_ms() - t0;

    /* The entries the snapshot covers are unlinked under the mutex in O(1)
     * and freed after it: the applier waits on this mutex for every entry. */
    centry *done = NULL, *orphans;
    pthread_mutex_lock(&ck->mu);
    ck->running = 0;
    ck->st.running = 0;
    if (rc == 0 && ck->gen == gen) {
        if (n > 0) {
            done = ck->head;
            ck->head = last->next;
            last->next = NULL;
            ck->n_entries -= n;
            if (ck->head == NULL)
                ck->tail = NULL;
        }
        ck->base = target;
        ck->next_at = target + ck->every;
        ck->st.written++;
        ck->st.last_ms = ms;
        ck->st.last_bytes = bytes;
        TS_INFO("%s: snapshot at %" PRIu64 " written in the background in %lld ms (%" PRIu64
                " entries after %" PRIu64 ", %" PRIu64 " bytes)", ck->name, target,
                (long long)ms, n, base, bytes);
    } else if (rc != TS_EUNAVAIL && ck->gen == gen) {
        ck->st.failed++;
        ck->next_at = ck->latest + ck->every;
        TS_ERROR("%s: snapshot at %" PRIu64 " failed (the log keeps everything; retrying "
                 "after another %" PRIu64 " entries): %s", ck->name, target, ck->every,
                 err.msg);
    }
    orphans = ck->orphans;
    ck->orphans = NULL;
    ck->last_target = target;
    ck->last_rc = rc;
    ck->last_err = err;
    ck->jobs_ended++;
    pthread_cond_broadcast(&ck->finished);
    pthread_mutex_unlock(&ck->mu);
    free_chain(done);
    free_chain(orphans);
    pthread_mutex_lock(&ck->mu);
}

static void *ck_thread(void *arg)
{
    checkpoint *ck = arg;
    /* Linux: a nice value per thread (best effort). */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CHECKPOINT_NICE) != 0)
        TS_DEBUG("%s: cannot lower the checkpoint thread's priority", ck->name);
    pthread_mutex_lock(&ck->mu);
    while (!ck->stopping) {
        if (ck->requested && ck->latest > ck->base)
            run_job(ck);
        else if (ck->requested)
            ck->requested = 0;      /* nothing new since the base */
        else
            pthread_cond_wait(&ck->work, &ck->mu);
    }
    pthread_cond_broadcast(&ck->finished);
    pthread_mutex_unlock(&ck->mu);
    return NULL;
}

void checkpoint_run(checkpoint *ck)
{
    if (pthread_create(&ck->th, NULL, ck_thread, ck) != 0)
        ts_die("%s: cannot start the checkpoint thread", ck->name);
    ck->started = 1;
}

void checkpoint_stop(checkpoint *ck)
{
    pthread_mutex_lock(&ck->mu);
    __atomic_store_n(&ck->stopping, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&ck->work);
    pthread_cond_broadcast(&ck->finished);
    pthread_mutex_unlock(&ck->mu);
    if (ck->started)
        pthread_join(ck->th, NULL);
    ck->started = 0;
}

void checkpoint_free(checkpoint *ck)
{
    if (ck == NULL)
        return;
    checkpoint_stop(ck);
    free_chain(ck->head);
    free_chain(ck->orphans);
    pthread_cond_destroy(&ck->work);
    pthread_cond_destroy(&ck->finished);
    pthread_mutex_destroy(&ck->mu);
    free(ck->name);
    free(ck);
}

int checkpoint_applied(checkpoint *ck, uint64_t index, const void *data, size_t len)
{
    centry *e = ts_malloc(sizeof(*e) + len);
    e->next = NULL;
    e->index = index;
    e->len = data != NULL ? len : 0;
    if (e->len)
        memcpy(e->data, data, len);
    int due = 0;
    pthread_mutex_lock(&ck->mu);
    if (ck->tail != NULL)
        ck->tail->next = e;
    else
        ck->head = e;
    ck->tail = e;
    ck->n_entries++;
    ck->latest = index;
    if (!ck->requested && !ck->running && index >= ck->next_at) {
        ck->requested = 1;
        due = 1;
        pthread_cond_signal(&ck->work);
    }
    pthread_mutex_unlock(&ck->mu);
    return due;
}

void checkpoint_reset(checkpoint *ck, uint64_t base)
{
    pthread_mutex_lock(&ck->mu);
    if (ck->running) {
        if (ck->head != NULL) {
            ck->tail->next = ck->orphans;
            ck->orphans = ck->head;
        }
    } else {
        free_chain(ck->head);
    }
    ck->head = ck->tail = NULL;
    ck->n_entries = 0;
    ck->gen++;
    ck->base = ck->latest = base;
    ck->next_at = base + ck->every;
    ck->requested = 0;
    pthread_mutex_unlock(&ck->mu);
}

int checkpoint_now(checkpoint *ck, ts_error *err)
{
    pthread_mutex_lock(&ck->mu);
    uint64_t target = ck->latest;
    uint64_t ended = ck->jobs_ended;
    int rc = 0;
    if (target > ck->base) {
        ck->requested = 1;
        pthread_cond_signal(&ck->work);
    }
    while (ck->base < target) {
        if (ck->stopping || !ck->started) {
            rc = ts_fail(err, TS_EUNAVAIL, "%s: the checkpointer is stopped", ck->name);
            break;
        }
        if (ck->jobs_ended != ended && ck->last_target >= target && ck->last_rc != 0) {
            rc = ck->last_rc;
            if (err)
                *err = ck->last_err;
            break;
        }
        if (!ck->running && !ck->requested) {   /* an earlier job ended: ask again */
            ck->requested = 1;
            pthread_cond_signal(&ck->work);
        }
        pthread_cond_wait(&ck->finished, &ck->mu);
    }
    pthread_mutex_unlock(&ck->mu);
    return rc;
}

void checkpoint_get_stats(checkpoint *ck, checkpoint_stats *st)
{
    pthread_mutex_lock(&ck->mu);
    *st = ck->st;
    st->base = ck->base;
    st->pending = ck->n_entries;
    pthread_mutex_unlock(&ck->mu);
}
