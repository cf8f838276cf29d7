/*
 * HTTP transport for Raft messages (see raft_transport.h).
 *
 * Locking: `mu` guards the peer table and every peer's queue; a sender
 * thread takes its whole queue under the lock and POSTs without it.
 */
#include "metadata/raft/raft_transport.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"

#define QUEUE_MAX 1024          /* messages per peer before the oldest is dropped */
#define POST_TIMEOUT_MS 2000
#define BACKOFF_MS 100

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
    int running;
    struct raft_transport *t;
    struct peer *next;
} peer;

struct raft_transport {
    uint64_t self_id;
    char from_header[RAFT_ADDR_MAX + 32];  /* "id@host:port" */
    raft_node *node;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    peer *peers;
    uint64_t dropped;
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
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    *out = t;
    return 0;
}

void raft_transport_attach(raft_transport *t, raft_node *n)
{
    pthread_mutex_lock(&t->mu);
    t->node = n;
    pthread_mutex_unlock(&t->mu);
}

static void *sender(void *arg)
{
    peer *p = arg;
    raft_transport *t = p->t;
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        if (p->head == NULL) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        qmsg *batch = p->head;
        p->head = p->tail = NULL;
        p->n = 0;
        char *url = ts_sprintf("http://%s" RAFT_TRANSPORT_PATH "?from=%s", p->addr,
                               t->from_header);
        pthread_mutex_unlock(&t->mu);
        int failed = 0;
        while (batch != NULL) {
            qmsg *m = batch;
            batch = m->next;
            if (!failed) {
                ts_http_result res = {0};
                ts_error err;
                if (ts_http_call("POST", url, "application/octet-stream", m->b.data, m->b.len,
                                 POST_TIMEOUT_MS, &res, &err) != 0 ||
                    res.status >= 300) {
                    /* Drop the rest of this batch: the peer is down or
                     * unreachable, and Raft resends what matters. */
                    failed = 1;
                }
                ts_http_result_free(&res);
            }
            ts_buf_free(&m->b);
            free(m);
        }
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
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
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
    if (raft_node_receive(n, req->body, req->body_len) != 0) {
        ts_http_respond_error(resp, TS_EPROTO, "raft: message does not decode");
        return;
    }
    ts_http_respond(resp, 204, "text/plain", NULL, 0);
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
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    while (t->peers != NULL) {
        peer *p = t->peers;
        t->peers = p->next;
        if (p->running)
            pthread_join(p->th, NULL);
        while (p->head != NULL) {
            qmsg *m = p->head;
            p->head = m->next;
            ts_buf_free(&m->b);
            free(m);
        }
        free(p);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
