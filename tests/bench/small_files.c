/*
 * Small-file load for the compaction tests and benchmark: creates N files
 * of SIZE bytes in DIR (which must exist) through libtessera from T
 * threads, verifies them, or removes some.  File i is DIR/f-<i> and holds
 * bytes derived from (seed, i), so `verify` needs nothing but the same
 * arguments.  With EVERY > 1, verify checks only the files whose index is
 * a multiple of EVERY and remove deletes all the others (remove 90%: 10).
 *
 *   small_files CONF create|create1|verify|remove DIR N SIZE [THREADS] [SEED] [EVERY]
 *
 * create makes each file and then commits its data (two metadata entries);
 * create1 does what the mount does for a file created ahead: the create
 * rides on the data's commit (one entry).
 *
 * Prints "created N files in S s (R files/s)" (verified, removed); exits 1
 * naming the first file that failed or differs.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/tessera.h"

enum { MODE_CREATE, MODE_VERIFY, MODE_REMOVE, MODE_CREATE1 };
static const char *const mode_done[] = { "created", "verified", "removed", "created" };

struct job {
    tess_client *client;
    uint64_t dir, n, size, seed, every;
    int mode;                   /* MODE_* */
    atomic_ulong next;
    atomic_int failed;
    pthread_mutex_t mu;
    ts_error err;               /* the first failure */
};

static void fill(uint8_t *buf, uint64_t size, uint64_t seed, uint64_t i)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + i + 1;
    for (uint64_t k = 0; k < size; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[k] = (uint8_t)x;
    }
}

static int one_file(struct job *j, uint64_t i, uint8_t *want, uint8_t *got, ts_error *err)
{
    char name[32];
    ts_attr a;
    snprintf(name, sizeof name, "f-%06" PRIu64, i);
    if (j->mode == MODE_REMOVE)
        return i % j->every == 0 ? 0 : tess_unlink(j->client, j->dir, name, err);
    if (j->mode == MODE_VERIFY && i % j->every != 0)
        return 0;
    fill(want, j->size, j->seed, i);
    if (j->mode == MODE_CREATE1) {
        /* As the mount makes a file created ahead: a reserved inode, and
         * the create carried by the data's commit (one metadata entry). */
        static __thread uint64_t next_ino;
        static __thread uint32_t left;
        tess_writer *w;
        if (left == 0 && tess_reserve_inodes(j->client, &next_ino, &left, err) != 0)
            return -1;
        uint64_t ino = next_ino++;
        left--;
        if (tess_writer_open(j->client, ino, 0, NULL, &w, err) != 0)
            return -1;
        tess_create_at_req r = { .parent = j->dir, .name = name, .ino = ino, .mode = 0644 };
        tess_writer_set_create(w, &r);
        if (tess_writer_write(w, want, j->size, err) != 0) {
            tess_writer_abort(w);
            return -1;
        }
        return tess_writer_close(w, NULL, err);
    }
    if (j->mode == MODE_CREATE) {
        tess_writer *w;
        if (tess_create(j->client, j->dir, name, 0644, 0, 0, 0, &a, NULL, err) != 0 ||
            tess_writer_open(j->client, a.ino, 0, NULL, &w, err) != 0)
            return -1;
        if (tess_writer_write(w, want, j->size, err) != 0) {
            tess_writer_abort(w);
            return -1;
        }
        return tess_writer_close(w, NULL, err);
    }
    tess_layout *l = NULL;
    if (tess_lookup(j->client, j->dir, name, &a, err) != 0 ||
        tess_get_layout(j->client, a.ino, &l, err) != 0)
        return -1;
    ssize_t n = tess_read(j->client, l, 0, j->size + 1, got, err);
    tess_layout_free(l);
    if (n < 0)
        return -1;
    if ((uint64_t)n != j->size || memcmp(want, got, j->size) != 0)
        return ts_fail(err, TS_ECORRUPT, "%s: content differs (%zd bytes read)", name, n);
    return 0;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    uint8_t *want = ts_malloc(j->size + 1), *got = ts_malloc(j->size + 2);
    for (;;) {
        uint64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n || atomic_load(&j->failed))
            break;
        ts_error e = {0};
        if (one_file(j, i, want, got, &e) != 0) {
            pthread_mutex_lock(&j->mu);
            if (!atomic_exchange(&j->failed, 1))
                j->err = e;
            pthread_mutex_unlock(&j->mu);
            break;
        }
    }
    free(want);
    free(got);
    ts_http_client_thread_cleanup();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: small_files CONF create|create1|verify|remove DIR N SIZE [THREADS] "
                "[SEED] [EVERY]\n");
        return 2;
    }
    struct job j;
    ts_error e = {0};
    ts_attr d;
    memset(&j, 0, sizeof j);
    j.mode = strcmp(argv[2], "create") == 0 ? MODE_CREATE
             : strcmp(argv[2], "verify") == 0 ? MODE_VERIFY
             : strcmp(argv[2], "remove") == 0 ? MODE_REMOVE
             : strcmp(argv[2], "create1") == 0 ? MODE_CREATE1 : -1;
    j.n = strtoull(argv[4], NULL, 10);
    j.size = strtoull(argv[5], NULL, 10);
    unsigned threads = argc > 6 ? (unsigned)atoi(argv[6]) : 8;
    j.seed = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
    j.every = argc > 8 ? strtoull(argv[8], NULL, 10) : 1;
    if (threads == 0 || threads > 256 || j.mode < 0 || j.every == 0 ||
        (j.mode == MODE_REMOVE && j.every < 2)) {
        fprintf(stderr, "small_files: bad arguments\n");
        return 2;
    }
    ts_http_client_global_init();
    pthread_mutex_init(&j.mu, NULL);
    if (tess_client_open_conf(argv[1], &j.client, &e) != 0 ||
        tess_resolve(j.client, argv[3], &d, &e) != 0) {
        fprintf(stderr, "small_files: %s\n", e.msg);
        return 1;
    }
    j.dir = d.ino;
    int64_t start = ts_mono_ms();
    pthread_t *t = ts_calloc(threads, sizeof(pthread_t));
    for (unsigned i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, &j) != 0)
            ts_die("small_files: cannot start a thread");
    for (unsigned i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double s = (double)(ts_mono_ms() - start) / 1000.0;
    free(t);
    tess_client_close(j.client);
    if (atomic_load(&j.failed)) {
        fprintf(stderr, "small_files: %s\n", j.err.msg);
        return 1;
    }
    uint64_t done = j.mode == MODE_CREATE || j.mode == MODE_CREATE1 ? j.n
                    : j.mode == MODE_VERIFY ? (j.n + j.every - 1) / j.every
                                            : j.n - (j.n + j.every - 1) / j.every;
    printf("%s %" PRIu64 " files in %.2f s (%.0f files/s)\n", mode_done[j.mode], done, s,
           s > 0 ? (double)done / s : 0.0);
    return 0;
}
