/*
 * Load generator for the metadata memory benchmark: creates N empty files
 * through libtessera from T threads (each thread in its own directory, 1,000
 * files per subdirectory) and prints the create rate.  meta_memory.sh runs it
 * against a real tessera-meta and reads the server's resident memory.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/util.h"
#include "fs/tessera.h"

/* --prefix: names the top directories PREFIXt0, PREFIXt1...: several
 * processes can fill one namespace (one client each, so that no client
 * has requests of many threads in flight at once). */
static const char *prefix = "";

typedef struct worker {
    tess_client *client;
    unsigned index;
    uint64_t files;
    int failed;
    ts_error err;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    ts_attr top, sub, file;
    char name[64];
    snprintf(name, sizeof name, "%st%u", prefix, w->index);
    if (tess_mkdir(w->client, TS_ROOT_INO, name, 0755, 0, 0, &top, &w->err) != 0)
        goto failed;
    for (uint64_t i = 0; i < w->files; i++) {
        if (i % 1000 == 0) {
            snprintf(name, sizeof name, "d%" PRIu64, i / 1000);
            if (tess_mkdir(w->client, top.ino, name, 0755, 0, 0, &sub, &w->err) != 0)
                goto failed;
        }
        snprintf(name, sizeof name, "file-%08" PRIu64, i);
        if (tess_create(w->client, sub.ino, name, 0644, 0, 0, TESS_CREATE_EXCL, &file, NULL,
                        &w->err) != 0)
            goto failed;
    }
    ts_http_client_thread_cleanup();
    return NULL;
failed:
    w->failed = 1;
    ts_http_client_thread_cleanup();
    return NULL;
}

int main(int argc, char **argv)
{
    const char *meta = NULL;
    uint64_t files = 1000000;
    unsigned threads = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--meta") && i + 1 < argc)
            meta = argv[++i];
        else if (!strcmp(argv[i], "--files") && i + 1 < argc)
            files = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--prefix") && i + 1 < argc && strlen(argv[i + 1]) < 32)
            prefix = argv[++i];
        else {
            fprintf(stderr, "usage: meta_create --meta HOST:PORT [--files N] [--threads T] "
                            "[--prefix P]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!meta || threads == 0 || threads > 256) {
        fprintf(stderr, "meta_create: --meta is required and 1 <= threads <= 256\n");
        return 2;
    }
    ts_http_client_global_init();
    tess_client_opts opts;
    tess_client_opts_init(&opts);
    opts.meta = meta;
    tess_client *client;
    ts_error err;
    if (tess_client_open(&opts, &client, &err) != 0) {
        fprintf(stderr, "meta_create: %s\n", err.msg);
        return 1;
    }
    worker *ws = ts_calloc(threads, sizeof *ws);
    pthread_t *tids = ts_calloc(threads, sizeof *tids);
    int64_t t0 = ts_mono_ms();
    for (unsigned i = 0; i < threads; i++) {
        ws[i].client = client;
        ws[i].index = i;
        ws[i].files = files / threads + (i < files % threads ? 1 : 0);
        if (pthread_create(&tids[i], NULL, run_worker, &ws[i]) != 0) {
            fprintf(stderr, "meta_create: pthread_create failed\n");
            return 1;
        }
    }
    int failed = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        if (ws[i].failed) {
            fprintf(stderr, "meta_create: thread %u: %s\n", i, ws[i].err.msg);
            failed = 1;
        }
    }
    int64_t ms = ts_mono_ms() - t0;
    if (!failed)
            printf("created %" PRIu64 " files in %.1f s (%.0f creates/s, %u threads)\n", files,
               ms / 1000.0, ms ? files * 1000.0 / ms : 0.0, threads);
    free(ws);
    free(tids);
    tess_client_close(client);
    return failed;
}
