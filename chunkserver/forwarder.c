/*
 * The forwarder (see forwarder.h): a byte ring between the thread that
 * receives a chunk upload and a worker that sends it on downstream with
 * ts_http_put_stream.
 *
 * Workers are pooled for the whole process rather than started per upload:
 * a worker keeps its libcurl handle between transfers, so the connection to
 * a downstream server is reused (no connect, and no new connection thread
 * on the downstream server, for each chunk).  For small chunks that setup
 * cost more than the transfer itself.  The pool grows when every worker is
 * busy -- a forward never waits for another one to end, as that could
 * deadlock servers forwarding to each other -- and a worker retires after
 * WORKER_IDLE_MS without work or once it is WORKER_MAX_AGE_MS old (after
 * its current transfer).  The age bound keeps every cached connection
 * younger than the servers' idle-connection timeout (60 s by default), so a
 * streamed body, which cannot be rewound and resent, is never started on a
 * connection the server is about to close.
 *
 * Ring invariants, under f->mu:
 *   1. 0 <= count <= cap; bytes live at [head, head+count) mod cap.
 *   2. eof and aborted are set once and never cleared; nothing is pushed
 *      after eof.  eof is set by the push that completes content_length
 *      bytes, or by finish(complete=1).
 *   3. done is set by the worker after its transfer returned; from then on
 *      the worker no longer touches f, and nothing reads the ring.
 *   4. whole (small bodies): cap >= content_length, the ring is never
 *      drained piecewise, and is sent in one piece once eof is set.
 */
#include "chunkserver/forwarder.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"

#define WORKER_IDLE_MS 10000
#define WORKER_MAX_AGE_MS 30000
/* Bodies up to this size are sent whole, once all pushed (see forward_run). */
#define WHOLE_BODY_MAX (64u * 1024)

struct ts_forwarder {
    char *url;
    uint64_t content_length;
    long timeout_ms;
    ts_forwarder *next;        /* pool queue link, under pool_mu */

    pthread_mutex_t mu;
    pthread_cond_t can_read;   /* data, eof or abort arrived */
    pthread_cond_t can_write;  /* space freed, or the transfer ended */
    char *ring;
    size_t cap, head, count;
    uint64_t pushed;           /* bytes pushed so far */
    int whole;                 /* send the body in one piece once complete */
    int eof;
    int aborted;
    int done;

    /* Written by the worker before done is set; read after it. */
    int rc;
    ts_error err;
    ts_http_result result;
};

/* The worker pool, under pool_mu: forwards waiting for a worker, workers
 * waiting for a forward (idle) and workers started but not yet waiting
 * (starting).  Pool invariant: queued <= idle + starting, i.e. every
 * queued forward has a worker on its way, so none waits for a busy one. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static ts_forwarder *queue_head, *queue_tail;
static size_t queued, idle, starting;

static void assert_pool_state(void)
{
    assert(queued <= idle + starting);
    assert((queued == 0) == (queue_head == NULL));
    assert((queue_head == NULL) == (queue_tail == NULL));
}

static void pool_init(void)
{
    /* Idle timeouts are measured on the monotonic clock, immune to changes
     * of the wall clock. */
    ts_cond_init_mono(&pool_cv);
}

static void assert_ring_state(const ts_forwarder *f)
{
    (void)f;
    assert(f->count <= f->cap);
    assert(f->head < f->cap);
}

/* ts_http_put_stream's read callback, on the worker. */
static ssize_t ring_read(void *ctx, char *buf, size_t max)
{
    ts_forwarder *f = ctx;
    size_t n = 0;

    pthread_mutex_lock(&f->mu);
    while (f->count == 0 && !f->eof && !f->aborted)
        pthread_cond_wait(&f->can_read, &f->mu);
    assert_ring_state(f);
    if (f->aborted) {
        pthread_mutex_unlock(&f->mu);
        return -1;
    }
    /* Copy out up to two contiguous pieces (the ring may wrap). */
    while (n < max && f->count > 0) {
        size_t run = TS_MIN(f->count, f->cap - f->head);
        run = TS_MIN(run, max - n);
        memcpy(buf + n, f->ring + f->head, run);
        f->head = (f->head + run) % f->cap;
        f->count -= run;
        n += run;
    }
    pthread_cond_signal(&f->can_write);
    pthread_mutex_unlock(&f->mu);
    return (ssize_t)n;   /* 0 only at eof */
}

/* Waits until the whole body is in the ring (the ring holds it all) and
 * sends it with one request, headers and body together.  Streamed, the
 * headers and each piece would travel separately, costing every server of
 * the chain extra wake-ups for a body that arrives within microseconds
 * anyway.  Nothing is sent when the upload is aborted first. */
static int forward_whole(ts_forwarder *f, ts_http_result *res, ts_error *err)
{
    pthread_mutex_lock(&f->mu);
    while (!f->eof && !f->aborted)
        pthread_cond_wait(&f->can_read, &f->mu);
    int aborted = f->aborted || f->count != f->content_length;
    pthread_mutex_unlock(&f->mu);
    if (aborted)
        return ts_fail(err, TS_EIO, "PUT %s: upload aborted before it was sent", f->url);
    /* No pusher touches the ring any more: it is complete. */
    return ts_http_call("PUT", f->url, "application/octet-stream", f->ring,
                        (size_t)f->content_length, f->timeout_ms, res, err);
}

/* One transfer, on a worker. */
static void forward_run(ts_forwarder *f)
{
    ts_error err = { 0 };
    ts_http_result res = { 0 };
    int rc;

    if (f->whole)
        rc = forward_whole(f, &res, &err);
    else
        rc = ts_http_put_stream(f->url, "application/octet-stream", ring_read, f,
                                f->content_length, f->timeout_ms, &res, &err);
    pthread_mutex_lock(&f->mu);
    f->rc = rc;
    f->err = err;
    f->result = res;
    f->done = 1;
    pthread_cond_broadcast(&f->can_write);
    pthread_mutex_unlock(&f->mu);
    /* f belongs to ts_forwarder_finish from here on. */
}

static void *worker_main(void *arg)
{
    int64_t retire_ms = ts_mono_ms() + WORKER_MAX_AGE_MS;

    (void)arg;
    pthread_mutex_lock(&pool_mu);
    starting--;
    for (;;) {
        struct timespec until = ts_deadline_mono(WORKER_IDLE_MS);
        int rc = 0;

        idle++;
        assert_pool_state();
        while (queue_head == NULL && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&pool_cv, &pool_mu, &until);
        idle--;
        if (queue_head == NULL)
            break;      /* idle too long */
        ts_forwarder *f = queue_head;
        queue_head = f->next;
        if (queue_head == NULL)
            queue_tail = NULL;
        queued--;
        assert_pool_state();
        pthread_mutex_unlock(&pool_mu);
        forward_run(f);
        pthread_mutex_lock(&pool_mu);
        if (ts_mono_ms() >= retire_ms)
            break;
    }
    pthread_mutex_unlock(&pool_mu);
    /* Closes this worker's connections now rather than at thread exit. */
    ts_http_client_thread_cleanup();
    return NULL;
}

/* Queues f for a worker, starting one when none is idle. */
static int pool_submit(ts_forwarder *f, ts_error *err)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc = 0;

    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool_mu);
    f->next = NULL;
    if (queue_tail != NULL)
        queue_tail->next = f;
    else
        queue_head = f;
    queue_tail = f;
    queued++;
    if (idle + starting >= queued) {
        pthread_cond_signal(&pool_cv);
        goto unlock;
    }
    if ((rc = pthread_attr_init(&attr)) == 0) {
        if ((rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED)) == 0)
            rc = pthread_create(&t, &attr, worker_main, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc == 0) {
        starting++;
    } else {
        /* Take f back out: it is still the last one queued, as nothing is
         * dequeued while we hold pool_mu. */
        ts_forwarder **pp = &queue_head, *prev = NULL;
        while (*pp != f) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = NULL;
        queue_tail = prev;
        queued--;
        rc = ts_fail(err, TS_EIO, "forward to %s: cannot start a worker thread: %s", f->url,
                     strerror(rc));
    }
unlock:
    assert_pool_state();
    pthread_mutex_unlock(&pool_mu);
    return rc;
}

static void forwarder_free(ts_forwarder *f)
{
    pthread_cond_destroy(&f->can_write);
    pthread_cond_destroy(&f->can_read);
    pthread_mutex_destroy(&f->mu);
    free(f->ring);
    free(f->url);
    free(f);
}

int ts_forwarder_start(const char *url, uint64_t content_length, size_t ring_bytes,
                       long timeout_ms, ts_forwarder **out, ts_error *err)
{
    ts_forwarder *f = ts_calloc(1, sizeof *f);
    int rc;

    f->url = ts_strdup(url);
    f->content_length = content_length;
    f->timeout_ms = timeout_ms;
    /* A ring larger than the whole body is never used: small chunks get a
     * small buffer instead of ring_bytes (megabytes) per upload. */
    f->cap = ring_bytes > 0 ? ring_bytes : 1;
    if (content_length < f->cap)
        f->cap = content_length > 0 ? (size_t)content_length : 1;
    f->ring = ts_malloc(f->cap);
    f->whole = content_length <= WHOLE_BODY_MAX && content_length <= f->cap;
    f->eof = content_length == 0;
    if (pthread_mutex_init(&f->mu, NULL) != 0 || pthread_cond_init(&f->can_read, NULL) != 0 ||
        pthread_cond_init(&f->can_write, NULL) != 0)
        ts_die("forwarder: cannot initialize mutex/condvar");
    rc = pool_submit(f, err);
    if (rc != 0) {
        forwarder_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int ts_forwarder_push(ts_forwarder *f, const void *buf, size_t len)
{
    const char *p = buf;

    pthread_mutex_lock(&f->mu);
    assert(!f->eof || len == 0);
    while (len > 0) {
        while (f->count == f->cap && !f->done)
            pthread_cond_wait(&f->can_write, &f->mu);
        if (f->done) {
            pthread_mutex_unlock(&f->mu);
            return TS_EUNAVAIL;
        }
        size_t tail = (f->head + f->count) % f->cap;
        size_t run = TS_MIN(len, f->cap - f->count);
        run = TS_MIN(run, f->cap - tail);
        memcpy(f->ring + tail, p, run);
        f->count += run;
        f->pushed += run;
        p += run;
        len -= run;
        pthread_cond_signal(&f->can_read);
    }
    /* The whole body is in: downstream can finish (and seal) without
     * waiting for finish, which the caller may call only after sealing
     * its own copy. */
    if (f->pushed >= f->content_length && !f->eof) {
        f->eof = 1;
        pthread_cond_signal(&f->can_read);
    }
    int rc = f->done ? TS_EUNAVAIL : 0;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void ts_forward_result_free(ts_forward_result *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

int ts_forwarder_finish(ts_forwarder *f, int complete, ts_forward_result *out, ts_error *err)
{
    int rc;

    pthread_mutex_lock(&f->mu);
    if (complete)
        f->eof = 1;
    else
        f->aborted = 1;     /* bytes still in the ring never leave */
    pthread_cond_broadcast(&f->can_read);
    while (!f->done)
        pthread_cond_wait(&f->can_write, &f->mu);
    pthread_mutex_unlock(&f->mu);

    /* Whatever the transfer ended with, also after an abort (downstream may
     * have answered on its own before the abort was noticed). */
    rc = f->rc;
    if (rc != 0) {
        if (err != NULL)
            *err = f->err;
        ts_http_result_free(&f->result);
    } else {
        if (out != NULL) {
            out->status = f->result.status;
            out->body = f->result.body;   /* ownership moves to out */
            out->body_len = f->result.body_len;
            f->result.body = NULL;
        }
        ts_http_result_free(&f->result);
    }
    forwarder_free(f);
    return rc;
}
