/*
 * The scrubber thread (see scrubber.h).  One chunk is verified in pieces of
 * SCRUB_PIECE bytes; before each piece the thread reserves the bytes from
 * both budgets and waits (on its condition variable, so stop is prompt).
 * The chunk list is a snapshot taken when a pass starts: chunks sealed
 * during the pass wait for the next one, chunks deleted meanwhile are
 * skipped (the reader answers TS_ENOENT).
 */
#include "chunkserver/scrubber.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/checksum.h"
#include "common/log.h"
#include "common/util.h"

#define SCRUB_PIECE (1024u * 1024)
#define DEFAULT_PASS_INTERVAL_MS (3600 * 1000)
#define DEFAULT_DIR_CHECK_MS 10000
/* scrub_one's answer when its wait callback says stop (positive, so never
 * mistaken for a Tessera error). */
#define SCRUB_STOPPED 1

struct ts_scrubber {
    ts_chunk_store *store;
    ts_throttle *background;
    ts_throttle *own;             /* bytes_per_sec; NULL when disabled */
    int64_t pass_interval_ms, dir_check_ms;
    pthread_t thread;

    pthread_mutex_t mu;           /* guards stop and stats */
    pthread_cond_t cond;
    int stop;
    ts_scrub_stats stats;
};

/* Waits until now + ms or stop.  Returns 1 when stopping.  Called with mu
 * not held. */
static int scrubber_sleep(ts_scrubber *sc, int64_t ms)
{
    struct timespec ts;
    int stop;

    pthread_mutex_lock(&sc->mu);
    if (ms > 0 && !sc->stop) {
        ts = ts_deadline_mono(ms);
        while (!sc->stop) {
            int rc = pthread_cond_timedwait(&sc->cond, &sc->mu, &ts);
            if (rc == ETIMEDOUT)
                break;
            if (rc != 0 && rc != EINTR)
                ts_die("scrubber: pthread_cond_timedwait: %s", strerror(rc));
        }
    }
    stop = sc->stop;
    pthread_mutex_unlock(&sc->mu);
    return stop;
}

/* Before each piece: 0 to go on, SCRUB_STOPPED to give up. */
typedef int (*scrub_wait_fn)(void *ctx, uint64_t bytes);

static int throttled_wait(void *ctx, uint64_t bytes)
{
    ts_scrubber *sc = ctx;
    int64_t now = ts_mono_ms();
    int64_t a = ts_throttle_reserve(sc->own, bytes, now);
    int64_t b = ts_throttle_reserve(sc->background, bytes, now);
    return scrubber_sleep(sc, TS_MAX(a, b)) ? SCRUB_STOPPED : 0;
}

/* Verifies chunk id piece by piece.  0, SCRUB_STOPPED, or a negative error
 * (the store has already acted on damage). */
static int scrub_one(ts_chunk_store *store, const ts_chunk_id *id, scrub_wait_fn wait,
                     void *ctx, uint64_t *bytes, ts_error *err)
{
    ts_chunk_reader *r = NULL;
    ts_sha256 *ctxsha = NULL;
    uint8_t sha[TS_SHA256_LEN];
    char *buf = NULL;
    uint64_t done = 0;
    int rc;

    rc = ts_chunk_reader_open(store, id, &r, err);
    if (rc != 0)
        goto note_failure;
    const ts_chunk_info *info = ts_chunk_reader_info(r);
    ctxsha = ts_sha256_new();
    buf = ts_malloc(SCRUB_PIECE);
    while (done < info->length) {
        uint64_t n = TS_MIN((uint64_t)SCRUB_PIECE, info->length - done);
        if (wait != NULL && (rc = wait(ctx, n)) != 0)
            goto free_sha;
        /* pread checks the CRC of every block it returns. */
        rc = ts_chunk_reader_pread(r, buf, done, n, err);
        if (rc != 0)
            goto free_sha;
        ts_sha256_update(ctxsha, buf, (size_t)n);
        done += n;
    }
    ts_sha256_final(ctxsha, sha);
    ctxsha = NULL;
    if (memcmp(sha, info->sha256, TS_SHA256_LEN) != 0) {
        char hex[TS_CHUNK_ID_HEX_LEN + 1];
        ts_chunk_id_to_hex(id, hex);
        /* Every block CRC matched but the whole does not: the footer's
         * digest or CRCs were written wrong, or rot hit both consistently. */
        rc = ts_fail(err, TS_ECORRUPT, "chunk %s: SHA-256 of its %llu bytes differs from its "
                     "footer (all block CRCs match)", hex, (unsigned long long)info->length);
    }
free_sha:
    if (ctxsha != NULL)
        ts_sha256_free(ctxsha);
    free(buf);
    ts_chunk_reader_close(r);
note_failure:
    if (bytes != NULL)
        *bytes = done;
    if (rc < 0)
        ts_chunk_store_read_failed(store, id, err);
    return rc;
}

int ts_scrub_chunk(ts_chunk_store *store, const ts_chunk_id *id, uint64_t *bytes, ts_error *err)
{
    return scrub_one(store, id, NULL, NULL, bytes, err);
}

static void count_stat(ts_scrubber *sc, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&sc->mu);
    *field += n;
    pthread_mutex_unlock(&sc->mu);
}

/* One pass over a snapshot of the index.  Returns 1 when stopped midway. */
static int scrub_pass(ts_scrubber *sc, int64_t *next_dir_check)
{
    ts_chunk_id *ids;
    size_t n;
    uint64_t corrupt = 0, bytes_total = 0;
    int64_t start = ts_mono_ms();
    int stopped = 0;

    ts_chunk_store_list(sc->store, &ids, &n);
    for (size_t i = 0; i < n && !stopped; i++) {
        ts_error err = { 0 };
        uint64_t bytes = 0;
        if (ts_mono_ms() >= *next_dir_check) {
            count_stat(sc, &sc->stats.dirs_failed, ts_chunk_store_check_dirs(sc->store));
            *next_dir_check = ts_mono_ms() + sc->dir_check_ms;
        }
        int rc = scrub_one(sc->store, &ids[i], throttled_wait, sc, &bytes, &err);
        bytes_total += bytes;
        count_stat(sc, &sc->stats.bytes, bytes);
        if (rc == SCRUB_STOPPED) {
            stopped = 1;
        } else if (rc == 0) {
            count_stat(sc, &sc->stats.chunks, 1);
        } else if (rc == TS_ECORRUPT) {
            corrupt++;
            count_stat(sc, &sc->stats.corrupt, 1);
            TS_ERROR("scrubber: %s", err.msg);
        } else if (rc != TS_ENOENT) {
            TS_WARN("scrubber: %s", err.msg);
        }
    }
    free(ids);
    if (stopped)
        return 1;
    count_stat(sc, &sc->stats.passes, 1);
    char size[32];
    TS_INFO("scrubber: pass done: %zu chunk(s), %s verified in %lld ms, %llu corrupt",
            n, ts_format_size(bytes_total, size, sizeof size),
            (long long)(ts_mono_ms() - start), (unsigned long long)corrupt);
    return 0;
}

static void *scrubber_main(void *arg)
{
    ts_scrubber *sc = arg;
    int64_t next_pass = ts_mono_ms(), next_dir_check = ts_mono_ms();

    for (;;) {
        int64_t now = ts_mono_ms();
        if (now >= next_dir_check) {
            count_stat(sc, &sc->stats.dirs_failed, ts_chunk_store_check_dirs(sc->store));
            next_dir_check = ts_mono_ms() + sc->dir_check_ms;
        }
        if (sc->own != NULL && now >= next_pass) {
            next_pass = now + sc->pass_interval_ms;
            if (scrub_pass(sc, &next_dir_check))
                break;
            continue;
        }
        int64_t until = next_dir_check;
        if (sc->own != NULL)
            until = TS_MIN(until, next_pass);
        if (scrubber_sleep(sc, until - ts_mono_ms()))
            break;
    }
    return NULL;
}

int ts_scrubber_start(const ts_scrubber_opts *opts, ts_scrubber **out, ts_error *err)
{
    if (opts->store == NULL)
        return ts_fail(err, TS_EINVAL, "scrubber: store is required");
    if (opts->pass_interval_ms < 0 || opts->dir_check_interval_ms < 0)
        return ts_fail(err, TS_EINVAL, "scrubber: intervals must be >= 0");
    ts_scrubber *sc = ts_calloc(1, sizeof *sc);
    sc->store = opts->store;
    sc->background = opts->background;
    sc->own = opts->bytes_per_sec > 0 ? ts_throttle_new(opts->bytes_per_sec, 0) : NULL;
    sc->pass_interval_ms = opts->pass_interval_ms ? opts->pass_interval_ms
                                                  : DEFAULT_PASS_INTERVAL_MS;
    sc->dir_check_ms = opts->dir_check_interval_ms ? opts->dir_check_interval_ms
                                                   : DEFAULT_DIR_CHECK_MS;
    ts_cond_init_mono(&sc->cond);
    if (pthread_mutex_init(&sc->mu, NULL) != 0)
        ts_die("scrubber: cannot initialize its mutex");
    int rc = pthread_create(&sc->thread, NULL, scrubber_main, sc);
    if (rc != 0) {
        rc = ts_fail(err, TS_EIO, "scrubber: cannot start thread: %s", strerror(rc));
        goto destroy_sync;
    }
    *out = sc;
    return 0;

destroy_sync:
    pthread_cond_destroy(&sc->cond);
    pthread_mutex_destroy(&sc->mu);
    ts_throttle_free(sc->own);
    free(sc);
    return rc;
}

void ts_scrubber_stop(ts_scrubber *sc)
{
    if (sc == NULL)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->stop = 1;
    pthread_cond_broadcast(&sc->cond);
    pthread_mutex_unlock(&sc->mu);
    int rc = pthread_join(sc->thread, NULL);
    if (rc != 0)
        ts_die("scrubber: pthread_join: %s", strerror(rc));
    pthread_cond_destroy(&sc->cond);
    pthread_mutex_destroy(&sc->mu);
    ts_throttle_free(sc->own);
    free(sc);
}

void ts_scrubber_stats(ts_scrubber *sc, ts_scrub_stats *out)
{
    pthread_mutex_lock(&sc->mu);
    *out = sc->stats;
    pthread_mutex_unlock(&sc->mu);
}
