/*
 * The forwarder (see forwarder.h): a byte ring between the thread that
 * receives a chunk upload and a thread that sends it on downstream with
 * ts_http_put_stream.
 *
 * Ring invariants, under mu:
 *   1. 0 <= count <= cap; bytes live at [head, head+count) mod cap.
 *   2. eof and aborted are set once and never cleared; nothing is pushed
 *      after eof.
 *   3. done is set by the forwarder thread after ts_http_put_stream
 *      returned; from then on nothing reads the ring.
 */
#include "chunkserver/forwarder.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"

struct ts_forwarder {
    char *url;
    uint64_t content_length;
    long timeout_ms;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t can_read;   /* data, eof or abort arrived */
    pthread_cond_t can_write;  /* space freed, or the transfer ended */
    char *ring;
    size_t cap, head, count;
    int eof;
    int aborted;
    int done;

    /* Written by the thread before done is set; read after the join. */
    int rc;
    ts_error err;
    ts_http_result result;
};

static void assert_ring_state(const ts_forwarder *f)
{
    (void)f;
    assert(f->count <= f->cap);
    assert(f->head < f->cap);
}

/* ts_http_put_stream's read callback, on the forwarder thread. */
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

static void *forward_main(void *arg)
{
    ts_forwarder *f = arg;
    ts_error err = { 0 };
    ts_http_result res = { 0 };

    int rc = ts_http_put_stream(f->url, "application/octet-stream", ring_read, f,
                                f->content_length, f->timeout_ms, &res, &err);
    pthread_mutex_lock(&f->mu);
    f->rc = rc;
    f->err = err;
    f->result = res;
    f->done = 1;
    pthread_cond_broadcast(&f->can_write);
    pthread_mutex_unlock(&f->mu);
    /* This thread's curl handle would otherwise live until thread exit; drop
     * it explicitly, since forwarder threads are short-lived. */
    ts_http_client_thread_cleanup();
    return NULL;
}

int ts_forwarder_start(const char *url, uint64_t content_length, size_t ring_bytes,
                       long timeout_ms, ts_forwarder **out, ts_error *err)
{
    ts_forwarder *f = ts_calloc(1, sizeof *f);
    int rc;

    f->url = ts_strdup(url);
    f->content_length = content_length;
    f->timeout_ms = timeout_ms;
    f->cap = ring_bytes > 0 ? ring_bytes : 1;
    f->ring = ts_malloc(f->cap);
    if (pthread_mutex_init(&f->mu, NULL) != 0 || pthread_cond_init(&f->can_read, NULL) != 0 ||
        pthread_cond_init(&f->can_write, NULL) != 0)
        ts_die("forwarder: cannot initialize mutex/condvar");
    rc = pthread_create(&f->thread, NULL, forward_main, f);
    if (rc != 0) {
        rc = ts_fail(err, TS_EIO, "forward to %s: cannot start thread: %s", url, strerror(rc));
        goto free_forwarder;
    }
    *out = f;
    return 0;

free_forwarder:
    pthread_cond_destroy(&f->can_write);
    pthread_cond_destroy(&f->can_read);
    pthread_mutex_destroy(&f->mu);
    free(f->ring);
    free(f->url);
    free(f);
    return rc;
}

int ts_forwarder_push(ts_forwarder *f, const void *buf, size_t len)
{
    const char *p = buf;

    pthread_mutex_lock(&f->mu);
    assert(!f->eof);
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
        p += run;
        len -= run;
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
        f->aborted = 1;
    pthread_cond_broadcast(&f->can_read);
    pthread_mutex_unlock(&f->mu);

    rc = pthread_join(f->thread, NULL);
    if (rc != 0)
        ts_die("forwarder: pthread_join: %s", strerror(rc));

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
    pthread_cond_destroy(&f->can_write);
    pthread_cond_destroy(&f->can_read);
    pthread_mutex_destroy(&f->mu);
    free(f->ring);
    free(f->url);
    free(f);
    return rc;
}
