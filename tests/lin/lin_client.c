/*
 * History recorder for the linearizability check (tests/bats/lincheck.py):
 * T threads, each with its own libtessera client (its own client id and
 * request numbering, as separate processes would have), run random
 * operations on K registers until a stop file appears.  Register k is the
 * extended attribute "user.v" of the file /DIR/kK: a write is setxattr of a
 * value unique in the run ("T.N"), a read is getxattr (a linearizable read
 * on a Raft group).  Every operation is recorded with its invocation and
 * response times (CLOCK_MONOTONIC, one clock for all threads) and outcome:
 *
 *     THREAD KEY w|r VALUE INVOKE_NS RETURN_NS ok|fail
 *
 * VALUE is "-" for a read that found no value.  A failed write may or may
 * not have taken effect (a timeout, a failover); the checker treats it so.
 * Before the threads start, every register is set to "init".
 *
 *   lin_client --conf FILE --dir NAME --out FILE --stop FILE
 *              [--threads T] [--keys K] [--timeout-ms MS]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/http_client.h"
#include "common/util.h"
#include "fs/tessera.h"

#define XATTR "user.v"
#define MAX_KEYS 16

/* Set when not every thread could start: the others stop at once. */
static atomic_int aborted;

typedef struct rec {
    unsigned key;
    char op;
    char value[32];
    int64_t inv, ret;
    int ok;
} rec;

typedef struct worker {
    unsigned index;
    tess_client *client;
    const uint64_t *inos;
    unsigned nkeys;
    const char *stop;
    rec *recs;
    size_t n, cap;
    unsigned seed;
} worker;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void one_op(worker *w, uint64_t seq)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1024;
        w->recs = ts_realloc(w->recs, w->cap * sizeof *w->recs);
    }
    rec *r = &w->recs[w->n++];
    ts_error err;
    memset(r, 0, sizeof *r);
    r->key = (unsigned)rand_r(&w->seed) % w->nkeys;
    r->op = rand_r(&w->seed) % 2 ? 'w' : 'r';
    if (r->op == 'w') {
        snprintf(r->value, sizeof r->value, "%u.%" PRIu64, w->index, seq);
        r->inv = mono_ns();
        r->ok = tess_setxattr(w->client, w->inos[r->key], XATTR, r->value, strlen(r->value), 0,
                              &err) == 0;
        r->ret = mono_ns();
        return;
    }
    void *value = NULL;
    size_t len = 0;
    r->inv = mono_ns();
    int rc = tess_getxattr(w->client, w->inos[r->key], XATTR, &value, &len, &err);
    r->ret = mono_ns();
    if (rc == 0) {
        r->ok = len < sizeof r->value;
        snprintf(r->value, sizeof r->value, "%.*s", (int)len, (const char *)value);
        if (len == 0)
            snprintf(r->value, sizeof r->value, "-");  /* an empty value is no value here */
    } else if (rc == TS_ENODATA) {
        r->ok = 1;
        snprintf(r->value, sizeof r->value, "-");
    } else {
        r->ok = 0;
        snprintf(r->value, sizeof r->value, "-");
    }
    free(value);
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (uint64_t seq = 1; !atomic_load(&aborted) && access(w->stop, F_OK) != 0; seq++)
        one_op(w, seq);
    ts_http_client_thread_cleanup();
    return NULL;
}

static int open_client(const char *conf, long timeout_ms, tess_client **out, ts_error *err)
{
    ts_config *cfg = ts_config_new();
    tess_client_opts o;
    tess_client_opts_init(&o);
    int rc = ts_config_load(cfg, conf, err);
    if (rc == 0)
        rc = tess_client_opts_from_config(cfg, &o, err);
    if (rc == 0) {
        /* short enough that an operation stuck on a minority gives up and
         * the history shows it as failed, not just slow */
        o.timeout_ms = timeout_ms;
        rc = tess_client_open(&o, out, err);
    }
    ts_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *dir = NULL, *out = NULL, *stop = NULL;
    unsigned threads = 4, nkeys = 3;
    long timeout_ms = 5000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--conf") && i + 1 < argc)
            conf = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--stop") && i + 1 < argc)
            stop = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--keys") && i + 1 < argc)
            nkeys = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout_ms = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: lin_client --conf FILE --dir NAME --out FILE --stop FILE "
                            "[--threads T] [--keys K] [--timeout-ms MS]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!conf || !dir || !out || !stop || threads == 0 || threads > 64 || nkeys == 0 ||
        nkeys > MAX_KEYS || timeout_ms <= 0) {
        fprintf(stderr, "lin_client: --conf, --dir, --out and --stop are required; "
                        "1 <= threads <= 64, 1 <= keys <= %d, timeout > 0\n", MAX_KEYS);
        return 2;
    }
    ts_http_client_global_init();
    ts_error err;
    tess_client *setup;
    if (open_client(conf, 30000, &setup, &err) != 0) {
        fprintf(stderr, "lin_client: %s: %s\n", conf, err.msg);
        return 1;
    }
    int status = 1;
    uint64_t inos[MAX_KEYS];
    worker *ws = ts_calloc(threads, sizeof *ws);
    pthread_t *tids = ts_calloc(threads, sizeof *tids);
    unsigned started = 0;
    ts_attr top, file;
    if (tess_mkdir(setup, TS_ROOT_INO, dir, 0755, 0, 0, &top, &err) != 0) {
        fprintf(stderr, "lin_client: mkdir /%s: %s\n", dir, err.msg);
        goto out;
    }
    for (unsigned k = 0; k < nkeys; k++) {
        char name[16];
        snprintf(name, sizeof name, "k%u", k);
        if (tess_create(setup, top.ino, name, 0644, 0, 0, TESS_CREATE_EXCL, &file, NULL,
                        &err) != 0 ||
            tess_setxattr(setup, file.ino, XATTR, "init", 4, 0, &err) != 0) {
            fprintf(stderr, "lin_client: register /%s/%s: %s\n", dir, name, err.msg);
            goto out;
        }
        inos[k] = file.ino;
    }
    for (; started < threads; started++) {
        worker *w = &ws[started];
        w->index = started;
        w->inos = inos;
        w->nkeys = nkeys;
        w->stop = stop;
        w->seed = (unsigned)mono_ns() ^ (started * 2654435761u);
        if (open_client(conf, timeout_ms, &w->client, &err) != 0) {
            fprintf(stderr, "lin_client: thread %u: %s\n", started, err.msg);
            break;
        }
        if (pthread_create(&tids[started], NULL, run_worker, w) != 0) {
            fprintf(stderr, "lin_client: cannot start thread %u\n", started);
            tess_client_close(w->client);
            break;
        }
    }
    if (started < threads)
        atomic_store(&aborted, 1);
    else {
        /* Ready: the test starts its faults once this line is there. */
        printf("ready\n");
        fflush(stdout);
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        tess_client_close(ws[i].client);
    }
    if (started < threads)
        goto out;
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        fprintf(stderr, "lin_client: cannot create %s: %s\n", out, strerror(errno));
        goto out;
    }
    size_t total = 0;
    for (unsigned i = 0; i < threads; i++) {
        for (size_t j = 0; j < ws[i].n; j++) {
            const rec *r = &ws[i].recs[j];
            fprintf(f, "%u %u %c %s %" PRId64 " %" PRId64 " %s\n", i, r->key, r->op, r->value,
                    r->inv, r->ret, r->ok ? "ok" : "fail");
        }
        total += ws[i].n;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "lin_client: writing %s: %s\n", out, strerror(errno));
        goto out;
    }
    fprintf(stderr, "lin_client: %zu operations recorded in %s\n", total, out);
    status = 0;
out:
    for (unsigned i = 0; i < threads; i++)
        free(ws[i].recs);
    free(ws);
    free(tids);
    tess_client_close(setup);
    return status;
}
