/*
 * HTTP transport for Raft messages (see raft_transport.h).
 *
 * Locking: `mu` guards the peer table and every peer's queue; a sender
 * thread takes its whole queue under the lock and POSTs without it.  Each
 * peer has its own condition variable, so queuing a message wakes only the
 * sender that has work (one shared broadcast woke every sender for each
 * message, and on a small machine those idle wake-ups compete for the CPU
 * with the threads on the commit path).
 *
 * Answers on the response (see raft_transport.h): a handler asked for
 * answers becomes a `holder` of the sender's peer entry while the driver
 * handles the message; send() then queues for that peer without waking its
 * sender thread, and the holder takes the queue when the driver is done.
 * A holder that gives up (timeout) takes whatever is queued all the same,
 * so a message never waits for a sender nobody woke.
 */
#include "metadata/raft/raft_transport.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"

#define QUEUE_MAX 1024          /* messages per peer before the oldest is dropped */
#define POST_TIMEOUT_MS 2000
#define BACKOFF_MS 100
/* How long a handler waits for the driver before answering without the
 * answers (they then follow on this server's own sender).  Bounded so a
 * driver busy with something long (a synchronous snapshot) holds the
 * peer's sender only briefly. */
#define ANSWER_WAIT_MS 200

typedef struct qmsg {
    ts_buf b;
    struct qmsg *next;
} qmsg;

typedef struct peer {
    uint64_t id;
    char addr[RAFT_ADDR_MAX];
    qmsg *head, *tail;
    size_t n;
    pthread_t th;
    pthread_cond_t cv;          /* this sender: work arrived, or stopping */
    unsigned holders;           /* handlers that will carry the queue back */
    int running;
    struct raft_transport *t;
    struct peer *next;
} peer;

struct raft_transport {
    uint64_t self_id;
    char from_header[RAFT_ADDR_MAX + 32];  /* "id@host:port" */
    raft_node *node;
    pthread_mutex_t mu;
    int stopping;
    peer *peers;
    uint64_t dropped;
    int answers;                /* ask for and give answers on responses */
    raft_transport_stats stats;
    int faults_enabled;
    uint64_t isolated[RAFT_MAX_MEMBERS];    /* fault injection: cut off from these */
    size_t nisolated;
};

/* mu held. */
static int is_isolated(const raft_transport *t, uint64_t id)
{
    for (size_t i = 0; i < t->nisolated; i++)
        if (t->isolated[i] == id)
            return 1;
    return 0;
}

int raft_transport_new(uint64_t self_id, const char *self_addr, raft_transport **out,
                       ts_error *err)
{
    if (self_id == 0 || self_addr == NULL || strlen(self_addr) >= RAFT_ADDR_MAX)
        return ts_fail(err, TS_EINVAL, "raft transport: bad id or address");
    raft_transport *t = ts_calloc(1, sizeof(*t));
    t->self_id = self_id;
    snprintf(t->from_header, sizeof(t->from_header), "%" PRIu64 "@%s", self_id, self_addr);
    t->answers = 1;
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return 0;
}

void raft_transport_attach(raft_transport *t, raft_node *n)
{
    pthread_mutex_lock(&t->mu);
    t->node = n;
    pthread_mutex_unlock(&t->mu);
}

static void free_msgs(qmsg *m)
{
    while (m != NULL) {
        qmsg *next = m->next;
        ts_buf_free(&m->b);
        free(m);
        m = next;
    }
}

/* Hands the messages of an answer body (see raft_transport.h) from peer p
 * to the node.  The whole body is checked first: a malformed one is
 * dropped entirely (Raft resends what matters). */
static void deliver_answers(raft_transport *t, const peer *p, const char *body, size_t len)
{
    ts_dec d;
    size_t n = 0, mlen;
    ts_dec_init(&d, body, len);
    while (ts_dec_ok(&d) && !ts_dec_done(&d) && ts_dec_bytes(&d, &mlen) != NULL)
        n++;
    if (!ts_dec_done(&d)) {
        TS_DEBUG("raft transport: malformed answers from server %" PRIu64 " dropped", p->id);
        return;
    }
    /* Under mu: once raft_transport_attach(t, NULL) returns, no sender
     * delivers into the node any more, so it may be stopped.  (Lock
     * order: t->mu, then the node's; the driver never calls send() with
     * its own lock held.) */
    pthread_mutex_lock(&t->mu);
    raft_node *node = is_isolated(t, p->id) ? NULL : t->node;
    t->stats.answers_received += node != NULL ? n : 0;
    ts_dec_init(&d, body, len);
    for (size_t i = 0; i < n && node != NULL; i++) {
        const void *m = ts_dec_bytes(&d, &mlen);
        if (raft_node_receive(node, m, mlen) != 0)
            TS_DEBUG("raft transport: an answer from server %" PRIu64 " was refused", p->id);
    }
    pthread_mutex_unlock(&t->mu);
}

/* POSTs one message; 0, or -1 when the peer did not take it.  With ask,
 * the peer may put its answers in the response. */
static int post_one(raft_transport *t, const peer *p, const char *url, const qmsg *m, int ask)
{
    ts_http_result res = {0};
    ts_error err;
    int rc = 0;
    char *u = ask ? ts_sprintf("%s&" RAFT_TRANSPORT_ANSWERS_ARG "=%d", url,
                               RAFT_TRANSPORT_ANSWERS_VERSION) : NULL;
    if (ts_http_call("POST", u != NULL ? u : url, "application/octet-stream", m->b.data,
                     m->b.len, POST_TIMEOUT_MS, &res, &err) != 0 || res.status >= 300)
        rc = -1;
    else if (ask && res.status == 200)
        deliver_answers(t, p, res.body, res.body_len);
    ts_http_result_free(&res);
    free(u);
    return rc;
}

static void *sender(void *arg)
{
    peer *p = arg;
    raft_transport *t = p->t;
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        if (p->head == NULL) {
            pthread_cond_wait(&p->cv, &t->mu);
            continue;
        }
        qmsg *batch = p->head;
        p->head = p->tail = NULL;
        p->n = 0;
        char *url = ts_sprintf("http://%s" RAFT_TRANSPORT_PATH "?from=%s", p->addr,
                               t->from_header);
        int answers = t->answers;
        pthread_mutex_unlock(&t->mu);
        int failed = 0;
        for (qmsg *m = batch; m != NULL && !failed; m = m->next) {
            /* Only the last of a batch asks for answers: waiting for the
             * peer's driver (and fsync) on each would keep the others from
             * reaching it in time to share that fsync.  The answers to the
             * earlier ones come back with the last one's when the peer's
             * driver handles them together, else on the peer's sender. */
            if (post_one(t, p, url, m, answers && m->next == NULL) != 0) {
                /* Drop the rest of this batch: the peer is down or
                 * unreachable, and Raft resends what matters. */
                failed = 1;
            }
        }
        free_msgs(batch);
        free(url);
        if (failed)
            ts_sleep_ms(BACKOFF_MS);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    ts_http_client_thread_cleanup();
    return NULL;
}

/* The peer entry for id (created with its thread on first use); mu held. */
static peer *peer_of(raft_transport *t, uint64_t id, const char *addr)
{
    peer *p;
    for (p = t->peers; p != NULL; p = p->next)
        if (p->id == id)
            break;
    if (p == NULL) {
        if (addr == NULL || addr[0] == '\0')
            return NULL;
        p = ts_calloc(1, sizeof(*p));
        p->id = id;
        p->t = t;
        pthread_cond_init(&p->cv, NULL);
        p->next = t->peers;
        t->peers = p;
    }
    if (addr != NULL && addr[0] != '\0' && strcmp(addr, p->addr) != 0)
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
    if (!p->running && p->addr[0] != '\0' && !t->stopping) {
        if (pthread_create(&p->th, NULL, sender, p) != 0) {
            TS_WARN("raft transport: cannot start a sender for server %" PRIu64, id);
            return NULL;
        }
        p->running = 1;
    }
    return p;
}

void raft_transport_send(void *arg, uint64_t to, const char *addr, const void *buf, size_t len)
{
    raft_transport *t = arg;
    qmsg *m = ts_calloc(1, sizeof(*m));
    ts_buf_append(&m->b, buf, len);
    pthread_mutex_lock(&t->mu);
    peer *p = peer_of(t, to, addr);
    if (p == NULL || t->stopping || is_isolated(t, to)) {
        pthread_mutex_unlock(&t->mu);
        ts_buf_free(&m->b);
        free(m);
        return;
    }
    if (p->n == QUEUE_MAX) {
        qmsg *old = p->head;
        p->head = old->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->n--;
        t->dropped++;
        ts_buf_free(&old->b);
        free(old);
    }
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    p->n++;
    int wake = p->holders == 0;         /* else a handler carries it back */
    pthread_mutex_unlock(&t->mu);
    /* Outside mu, so the sender does not wake only to wait for it; p
     * lives until raft_transport_free(). */
    if (wake)
        pthread_cond_signal(&p->cv);
}

/* The answers queued for peer p, taken from its queue and encoded as the
 * response body; mu held.  Ends p's holding. */
static void take_answers(raft_transport *t, peer *p, ts_buf *out)
{
    qmsg *q = p->head;
    size_t n = p->n;
    p->head = p->tail = NULL;
    p->n = 0;
    p->holders--;
    if (is_isolated(t, p->id)) {
        free_msgs(q);       /* isolated meanwhile: a partition loses them */
        return;
    }
    for (qmsg *m = q; m != NULL; m = m->next)
        ts_enc_bytes(out, m->b.data, m->b.len);
    t->stats.answers_sent += n;
    free_msgs(q);
}

/* Hands the message to the node, waits until the driver handled it, and
 * answers with what it produced for from_id (or 204 when nothing). */
static void receive_and_answer(raft_transport *t, raft_node *n, uint64_t from_id,
                               const ts_http_request *req, ts_http_response *resp)
{
    pthread_mutex_lock(&t->mu);
    peer *p = peer_of(t, from_id, NULL);
    if (p != NULL)
        p->holders++;
    pthread_mutex_unlock(&t->mu);
    if (p == NULL) {
        /* No peer entry (no address given or known): send() has no
         * queue to hold for it, so there is nothing to take; answer as
         * before answers existed. */
        if (raft_node_receive(n, req->body, req->body_len) != 0)
            ts_http_respond_error(resp, TS_EPROTO, "raft: message does not decode");
        else
            ts_http_respond(resp, 204, "text/plain", NULL, 0);
        return;
    }
    /* Timed out or stopping: whatever is queued goes back all the same,
     * and what comes later takes the sender thread. */
    int rc = raft_node_receive_wait(n, req->body, req->body_len, ANSWER_WAIT_MS);
    if (rc != 0)
        TS_DEBUG("raft transport: answering server %" PRIu64 " without waiting further: %s",
                 from_id, ts_err_name(rc));
    ts_buf b = {0};
    pthread_mutex_lock(&t->mu);
    take_answers(t, p, &b);
    pthread_mutex_unlock(&t->mu);
    if (b.len == 0) {
        ts_buf_free(&b);
        ts_http_respond(resp, 204, "text/plain", NULL, 0);
        return;
    }
    ts_http_respond(resp, 200, RAFT_TRANSPORT_ANSWERS_TYPE, b.data, b.len);    /* owns b */
}

/* 1 when the request asks for answers in a version this server gives. */
static int wants_answers(raft_transport *t, const ts_http_request *req)
{
    const char *v = ts_http_query(req, RAFT_TRANSPORT_ANSWERS_ARG);
    pthread_mutex_lock(&t->mu);
    int on = t->answers;
    pthread_mutex_unlock(&t->mu);
    return on && v != NULL && strtol(v, NULL, 10) == RAFT_TRANSPORT_ANSWERS_VERSION;
}

void raft_transport_handle(raft_transport *t, const ts_http_request *req,
                           ts_http_response *resp)
{
    if (strcmp(req->method, "POST") != 0) {
        ts_http_respond_error(resp, TS_EINVAL, "%s: POST only", RAFT_TRANSPORT_PATH);
        return;
    }
    /* Learn the sender's address ("id@host:port") for answers. */
    const char *from = ts_http_query(req, "from");
    uint64_t from_id = from != NULL ? strtoull(from, NULL, 10) : 0;
    if (from != NULL) {
        char *at = strchr(from, '@');
        if (at != NULL && from_id != 0 && strlen(at + 1) < RAFT_ADDR_MAX) {
            pthread_mutex_lock(&t->mu);
            (void)peer_of(t, from_id, at + 1);
            pthread_mutex_unlock(&t->mu);
        }
    }
    pthread_mutex_lock(&t->mu);
    raft_node *n = t->node;
    int cut_off = from_id != 0 && is_isolated(t, from_id);
    pthread_mutex_unlock(&t->mu);
    if (cut_off) {
        /* A partitioned link loses messages silently: the sender must not
         * learn anything it would not learn on a real partition. */
        ts_http_respond(resp, 204, "text/plain", NULL, 0);
        return;
    }
    if (n == NULL) {
        ts_http_respond_error(resp, TS_EUNAVAIL, "raft: not started");
        return;
    }
    if (from_id != 0 && from_id != t->self_id && wants_answers(t, req)) {
        receive_and_answer(t, n, from_id, req, resp);
        return;
    }
    if (raft_node_receive(n, req->body, req->body_len) != 0) {
        ts_http_respond_error(resp, TS_EPROTO, "raft: message does not decode");
        return;
    }
    ts_http_respond(resp, 204, "text/plain", NULL, 0);
}

void raft_transport_set_answers(raft_transport *t, int on)
{
    pthread_mutex_lock(&t->mu);
    t->answers = on != 0;
    pthread_mutex_unlock(&t->mu);
}

void raft_transport_get_stats(raft_transport *t, raft_transport_stats *st)
{
    pthread_mutex_lock(&t->mu);
    *st = t->stats;
    st->dropped = t->dropped;
    pthread_mutex_unlock(&t->mu);
}

void raft_transport_enable_faults(raft_transport *t)
{
    pthread_mutex_lock(&t->mu);
    t->faults_enabled = 1;
    pthread_mutex_unlock(&t->mu);
}

int raft_transport_isolate(raft_transport *t, const uint64_t *ids, size_t n, ts_error *err)
{
    if (n > RAFT_MAX_MEMBERS)
        return ts_fail(err, TS_EINVAL, "raft fault injection: at most %d servers to isolate",
                       RAFT_MAX_MEMBERS);
    pthread_mutex_lock(&t->mu);
    if (!t->faults_enabled) {
        pthread_mutex_unlock(&t->mu);
        return ts_fail(err, TS_EPERM, "raft fault injection is off (fault_injection = true "
                       "enables it, for tests only)");
    }
    for (size_t i = 0; i < n; i++)
        t->isolated[i] = ids[i];
    t->nisolated = n;
    pthread_mutex_unlock(&t->mu);
    if (n > 0)
        TS_WARN("raft fault injection: dropping messages to and from %zu server(s)", n);
    else
        TS_WARN("raft fault injection: healed, no server isolated");
    return 0;
}

void raft_transport_free(raft_transport *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    for (peer *p = t->peers; p != NULL; p = p->next)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&t->mu);
    while (t->peers != NULL) {
        peer *p = t->peers;
        t->peers = p->next;
        if (p->running)
            pthread_join(p->th, NULL);
        free_msgs(p->head);
        pthread_cond_destroy(&p->cv);
        free(p);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}
