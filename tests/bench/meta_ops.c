/*
 * Load generator for tests/bench/raft_bench.sh: metadata operations per
 * second through libtessera from T threads, in three phases run one after
 * the other on the same files:
 *   create  N empty files (each thread in its own directory)
 *   stat    a lookup of each of them (a linearizable read: on a Raft group
 *           it costs a leadership confirmation by a majority)
 *   rename  each of them to a new name in the same directory
 * Prints one line per phase, "PHASE OPS_PER_S", so that the script can
 * compare a single server and a group in one run.
 *
 * --mix runs one phase only, in which each create is followed by a stat of
 * a file the thread created before (both kinds of latency during the same
 * events, e.g. a snapshot of the server).
 *
 * --latency FILE also records every operation: one line per operation,
 * "PHASE START_UNIX_MS LATENCY_US" (wall clock, so snapshot_latency.sh can
 * line operations up with the servers' log), written after the run.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/util.h"
#include "fs/tessera.h"

enum phase { PH_CREATE, PH_STAT, PH_RENAME, PH_COUNT };
static const char *const phase_names[PH_COUNT] = { "create", "stat", "rename" };

typedef struct worker {
    tess_client *client;
    enum phase phase;
    uint64_t dir_ino;           /* this thread's directory */
    uint64_t files;
    int failed;
    ts_error err;
    /* --latency: per operation of the current phase */
    int record, mix;
    int64_t *start_ns, *lat_ns;
    uint8_t *kind;              /* enum phase of each record */
    uint64_t n_rec, cap_rec;
} worker;

static int one_op(worker *w, uint64_t i)
{
    char name[64], renamed[64];
    ts_attr attr;
    snprintf(name, sizeof name, "f%08" PRIu64, i);
    switch (w->phase) {
    case PH_CREATE:
        return tess_create(w->client, w->dir_ino, name, 0644, 0, 0, TESS_CREATE_EXCL, &attr,
                           NULL, &w->err);
    case PH_STAT:
        return tess_lookup(w->client, w->dir_ino, name, &attr, &w->err);
    default:
        snprintf(renamed, sizeof renamed, "r%08" PRIu64, i);
        return tess_rename(w->client, w->dir_ino, name, w->dir_ino, renamed, 0, &w->err);
    }
}

static void record(worker *w, enum phase ph, int64_t t0)
{
    if (!w->record || w->n_rec == w->cap_rec)
        return;
    w->start_ns[w->n_rec] = t0;
    w->kind[w->n_rec] = (uint8_t)ph;
    w->lat_ns[w->n_rec++] = ts_now_ns() - t0;
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (uint64_t i = 0; i < w->files; i++) {
        int64_t t0 = w->record ? ts_now_ns() : 0;
        int rc = one_op(w, i);
        record(w, w->phase, t0);
        if (rc == 0 && w->mix) {
            /* a stat of a file made earlier, with the same client */
            ts_attr attr;
            char name[64];
            snprintf(name, sizeof name, "f%08" PRIu64, i / 2);
            t0 = w->record ? ts_now_ns() : 0;
            rc = tess_lookup(w->client, w->dir_ino, name, &attr, &w->err);
            record(w, PH_STAT, t0);
        }
        if (rc != 0) {
            ts_error_prefix(&w->err, "%s of file %" PRIu64, phase_names[w->phase], i);
            w->failed = 1;
            break;
        }
    }
    ts_http_client_thread_cleanup();
    return NULL;
}

int main(int argc, char **argv)
{
    const char *meta = NULL, *top = "bench", *latency = NULL;
    FILE *lat_out = NULL;
    int mix = 0;
    uint64_t files = 20000;
    unsigned threads = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--meta") && i + 1 < argc)
            meta = argv[++i];
        else if (!strcmp(argv[i], "--files") && i + 1 < argc)
            files = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            top = argv[++i];
        else if (!strcmp(argv[i], "--latency") && i + 1 < argc)
            latency = argv[++i];
        else if (!strcmp(argv[i], "--mix"))
            mix = 1;
        else {
            fprintf(stderr, "usage: meta_ops --meta HOST:PORT[,...] [--files N] [--threads T] "
                            "[--dir NAME] [--mix] [--latency FILE]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!meta || threads == 0 || threads > 256 || files < threads) {
        fprintf(stderr, "meta_ops: --meta is required, 1 <= threads <= 256, files >= threads\n");
        return 2;
    }
    if (latency != NULL && (lat_out = fopen(latency, "w")) == NULL) {
        perror(latency);
        return 2;
    }
    ts_http_client_global_init();
    tess_client_opts opts;
    tess_client_opts_init(&opts);
    opts.meta = meta;
    tess_client *client;
    ts_error err;
    if (tess_client_open(&opts, &client, &err) != 0) {
        fprintf(stderr, "meta_ops: %s\n", err.msg);
        return 1;
    }
    int status = 1;
    worker *ws = ts_calloc(threads, sizeof *ws);
    pthread_t *tids = ts_calloc(threads, sizeof *tids);
    ts_attr topattr, sub;
    if (tess_mkdir(client, TS_ROOT_INO, top, 0755, 0, 0, &topattr, &err) != 0) {
        fprintf(stderr, "meta_ops: mkdir /%s: %s\n", top, err.msg);
        goto out;
    }
    for (unsigned i = 0; i < threads; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%u", i);
        if (tess_mkdir(client, topattr.ino, name, 0755, 0, 0, &sub, &err) != 0) {
            fprintf(stderr, "meta_ops: mkdir /%s/%s: %s\n", top, name, err.msg);
            goto out;
        }
        ws[i].client = client;
        ws[i].dir_ino = sub.ino;
        ws[i].files = files / threads + (i < files % threads ? 1 : 0);
        ws[i].mix = mix;
        if (lat_out != NULL) {
            ws[i].record = 1;
            ws[i].cap_rec = ws[i].files * (mix ? 2 : 1);
            ws[i].start_ns = ts_calloc(ws[i].cap_rec, sizeof(int64_t));
            ws[i].lat_ns = ts_calloc(ws[i].cap_rec, sizeof(int64_t));
            ws[i].kind = ts_calloc(ws[i].cap_rec, 1);
        }
    }
    for (int ph = 0; ph < (mix ? 1 : PH_COUNT); ph++) {
        int64_t t0 = ts_mono_ms();
        for (unsigned i = 0; i < threads; i++) {
            ws[i].phase = (enum phase)ph;
            ws[i].n_rec = 0;
            if (pthread_create(&tids[i], NULL, run_worker, &ws[i]) != 0) {
                fprintf(stderr, "meta_ops: cannot start thread %u\n", i);
                for (unsigned j = 0; j < i; j++)
                    pthread_join(tids[j], NULL);
                goto out;
            }
        }
        int failed = 0;
        for (unsigned i = 0; i < threads; i++) {
            pthread_join(tids[i], NULL);
            if (ws[i].failed) {
                fprintf(stderr, "meta_ops: thread %u: %s\n", i, ws[i].err.msg);
                failed = 1;
            }
        }
        if (failed)
            goto out;
        int64_t ms = ts_mono_ms() - t0;
        printf("%s %.0f\n", mix ? "create+stat" : phase_names[ph],
               files * 1000.0 / (ms > 0 ? ms : 1));
        fflush(stdout);
        for (unsigned i = 0; lat_out != NULL && i < threads; i++)
            for (uint64_t k = 0; k < ws[i].n_rec; k++)
                fprintf(lat_out, "%s %.3f %.0f\n", phase_names[ws[i].kind[k]],
                        ws[i].start_ns[k] / 1e6, ws[i].lat_ns[k] / 1e3);
    }
    status = 0;
out:
    for (unsigned i = 0; i < threads; i++) {
        free(ws[i].start_ns);
        free(ws[i].lat_ns);
        free(ws[i].kind);
    }
    if (lat_out != NULL && fclose(lat_out) != 0) {
        perror(latency);
        status = 1;
    }
    free(ws);
    free(tids);
    tess_client_close(client);
    return status;
}
