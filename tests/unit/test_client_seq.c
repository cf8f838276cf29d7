/*
 * libtessera's request-id window against a fake metadata server: the real
 * server's session table keeps 256 answers per client above `acked`, so a
 * client must never let one slow request be overtaken by that many of its
 * own later ones (it would be refused as too old).  The fake holds the
 * client's first mutation while other threads keep issuing mutations and
 * records how far ahead of the held one the client went.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/http_server.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/tessera.h"
#include "tests/unit/tcheck.h"

#define SESSION_RESULTS 256     /* metadata/session.h SESSION_MAX_RESULTS */
#define WORKERS 8
#define PER_WORKER 60
#define HOLD_MS 1500

static struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t held_seq;          /* the seq being held; 0 before it arrived */
    int held_done;
    uint64_t max_seq_while_held;
    uint64_t max_ahead;         /* max over requests of seq - (acked + 1) */
    uint64_t requests;
} fake = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0 };

static void meta_handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    (void)app;
    json_t *body = req->body ? json_loads(req->body, 0, NULL) : NULL;
    json_t *s = json_object_get(body, "seq"), *a = json_object_get(body, "acked");
    if (!json_is_integer(s) || !json_is_integer(a)) {
        json_decref(body);
        ts_http_respond_error(resp, TS_EINVAL, "fake: no request id");
        return;
    }
    uint64_t seq = (uint64_t)json_integer_value(s), acked = (uint64_t)json_integer_value(a);
    json_decref(body);

    pthread_mutex_lock(&fake.mu);
    fake.requests++;
    if (seq - (acked + 1) > fake.max_ahead)
        fake.max_ahead = seq - (acked + 1);
    if (fake.held_seq == 0) {
        /* The first one: hold it until far more than a session table's
         * worth of later requests came, or HOLD_MS passed. */
        fake.held_seq = seq;
        pthread_cond_broadcast(&fake.cv);
        int64_t until = ts_mono_ms() + HOLD_MS;
        while (fake.max_seq_while_held < seq + SESSION_RESULTS + 20 && ts_mono_ms() < until) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&fake.cv, &fake.mu, &ts);
        }
        fake.held_done = 1;
    } else if (!fake.held_done && seq > fake.max_seq_while_held) {
        fake.max_seq_while_held = seq;
        pthread_cond_broadcast(&fake.cv);
    }
    pthread_mutex_unlock(&fake.mu);
    ts_http_respond_error(resp, TS_EEXIST, "fake: entry exists");
}

static void *mkdir_loop(void *arg)
{
    tess_client *c = arg;
    for (int i = 0; i < PER_WORKER; i++) {
        ts_error e;
        ts_attr attr;
        tess_mkdir(c, 1, "d", 0755, 0, 0, &attr, &e);
    }
    return NULL;
}

static void *first_mkdir(void *arg)
{
    tess_client *c = arg;
    ts_error e;
    ts_attr attr;
    tess_mkdir(c, 1, "first", 0755, 0, 0, &attr, &e);
    return NULL;
}

static void test_window_bounds_overtaking(void)
{
    ts_http_server_opts o = {.bind_addr = "127.0.0.1",
                             .threading = TS_HTTP_THREAD_PER_CONNECTION,
                             .handle = meta_handle};
    ts_http_server *srv = NULL;
    tess_client *c = NULL;
    tess_client_opts co;
    char addr[64];
    ts_error e;

    if (ts_http_server_start(&o, &srv, &e) != 0) {
        fprintf(stderr, "fake meta: %s\n", e.msg);
        TC_CHECK(0);
        return;
    }
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ts_http_server_port(srv));
    tess_client_opts_init(&co);
    co.meta = addr;
    co.timeout_ms = 10000;
    if (tess_client_open(&co, &c, &e) != 0) {
        fprintf(stderr, "open client: %s\n", e.msg);
        TC_CHECK(0);
        ts_http_server_stop(srv);
        return;
    }

    pthread_t first, w[WORKERS];
    if (pthread_create(&first, NULL, first_mkdir, c) != 0)
        ts_die("pthread_create failed");
    pthread_mutex_lock(&fake.mu);
    while (fake.held_seq == 0)
        pthread_cond_wait(&fake.cv, &fake.mu);
    pthread_mutex_unlock(&fake.mu);
    for (int i = 0; i < WORKERS; i++)
        if (pthread_create(&w[i], NULL, mkdir_loop, c) != 0)
            ts_die("pthread_create failed");
    pthread_join(first, NULL);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);

    /* Every request arrived, and none ran a session table's worth ahead of
     * the oldest one still waiting. */
    TC_CHECK(fake.requests == 1 + WORKERS * PER_WORKER);
    TC_CHECK(fake.max_seq_while_held > fake.held_seq);
    TC_CHECK(fake.max_seq_while_held - fake.held_seq < SESSION_RESULTS / 2);
    TC_CHECK(fake.max_ahead < SESSION_RESULTS / 2);
    tess_client_close(c);
    ts_http_server_stop(srv);
}

int main(void)
{
    TC_RUN(test_window_bounds_overtaking);
    TC_DONE("test_client_seq");
}
