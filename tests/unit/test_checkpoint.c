/*
 * The background checkpointer (metadata/checkpoint.h) and the shared apply
 * function (metadata/sm.h): a checkpoint rebuilt from the previous image
 * plus the entries since must be byte for byte the live state at the same
 * index, whatever the commands did (failures, retried request ids, requests
 * too old to tell, clocks going back), while entries keep being applied
 * during the checkpoint; a failed save keeps the entries for the next try;
 * a reset (the state replaced by an image) discards a checkpoint in flight.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/codec.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/checkpoint.h"
#include "metadata/sm.h"
#include "tests/unit/cmd_fixture.h"
#include "tests/unit/tcheck.h"

#define N_ENTRIES 3000

/* The live side records its image after every entry; the checkpointer's
 * callbacks compare against them. */
typedef struct fixture {
    pthread_mutex_t mu;
    ts_buf live[N_ENTRIES + 1];  /* image after entry i (filled before it is handed over) */
    ts_buf saved;                /* the last image saved */
    uint64_t saved_index;
    int saves, mismatches, fail_saves, loads;
} fixture;

static int fx_load(void *arg, uint64_t index, sm_state *st, ts_error *err)
{
    fixture *fx = arg;
    pthread_mutex_lock(&fx->mu);
    fx->loads++;
    int rc;
    if (index != fx->saved_index)
        rc = ts_fail(err, TS_ENOENT, "no image at %" PRIu64 " (have %" PRIu64 ")", index,
                     fx->saved_index);
    else
        rc = sm_image_decode(fx->saved.data, fx->saved.len, st, err);
    pthread_mutex_unlock(&fx->mu);
    return rc;
}

static int fx_save(void *arg, uint64_t index, const sm_state *st, uint64_t *bytes,
                   ts_error *err)
{
    fixture *fx = arg;
    ts_buf img = {0};
    sm_image_encode(st, &img);
    *bytes = img.len;
    pthread_mutex_lock(&fx->mu);
    int rc = 0;
    if (fx->fail_saves > 0) {
        fx->fail_saves--;
        rc = ts_fail(err, TS_EIO, "injected: disk full");
        ts_buf_free(&img);
    } else {
        const ts_buf *want = &fx->live[index];
        if (img.len != want->len || memcmp(img.data, want->data, img.len) != 0) {
            fprintf(stderr, "  checkpoint at %" PRIu64 " differs from the live state\n", index);
            fx->mismatches++;
        }
        ts_buf_free(&fx->saved);
        fx->saved = img;
        fx->saved_index = index;
        fx->saves++;
    }
    pthread_mutex_unlock(&fx->mu);
    return rc;
}

/* One "leader" stream of commands: three clients numbering their requests,
 * with retries of answered requests, a request below what the client acked
 * (refused), commands without a request id, and a clock that sometimes
 * steps back (clamped at apply). */
typedef struct stream {
    uint64_t seq[3];
    int64_t clock;
    int dups, failures, refused;
} stream;

static void next_cmd(stream *sm, cmd *c)
{
    random_cmd(c);
    sm->clock += 1000;
    c->now_ns = sm->clock - (rnd(10) == 0 ? 5000 : 0);
    uint32_t who = rnd(4);
    if (who == 3)
        return;                 /* no request id */
    c->client = 0x1000 + who;
    uint32_t kind = rnd(20);
    if (kind == 0 && sm->seq[who] > 0) {
        c->seq = sm->seq[who];  /* a retry of the last request */
    } else if (kind == 1 && sm->seq[who] > 3) {
        c->seq = sm->seq[who] - 3;   /* below acked: refused */
    } else {
        c->seq = ++sm->seq[who];
    }
    c->acked = sm->seq[who] > 2 ? sm->seq[who] - 2 : 0;
}

/* Applies entries from..to to live (recording each image) and hands them
 * to ck; every 97th index is a Raft configuration entry (no state). */
static void apply_range(fixture *fx, checkpoint *ck, sm_state *live, stream *sm, uint64_t from,
                        uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        if (i % 97 == 0) {
            pthread_mutex_lock(&fx->mu);
            fx->live[i].len = 0;
            sm_image_encode(live, &fx->live[i]);
            pthread_mutex_unlock(&fx->mu);
            checkpoint_applied(ck, i, NULL, 0);
            continue;
        }
        cmd c;
        cmd_result res;
        ts_error err = {0};
        ts_buf b = {0};
        int applied;
        next_cmd(sm, &c);
        cmd_encode(&c, &b);     /* the entry as proposed: before the clamp */
        int rc = sm_apply(live, &c, SM_DEDUP, &res, &applied, &err);
        sm->dups += !applied;
        sm->refused += rc == TS_EINVAL && !applied;
        sm->failures += rc != 0;
        pthread_mutex_lock(&fx->mu);
        fx->live[i].len = 0;
        sm_image_encode(live, &fx->live[i]);
        pthread_mutex_unlock(&fx->mu);
        checkpoint_applied(ck, i, b.data, b.len);
        ts_buf_free(&b);
        cmd_free(&c);
    }
}

static fixture *fixture_new(const sm_state *initial)
{
    fixture *fx = ts_calloc(1, sizeof(*fx));
    pthread_mutex_init(&fx->mu, NULL);
    sm_image_encode(initial, &fx->saved);
    sm_image_encode(initial, &fx->live[0]);
    return fx;
}

static void fixture_free(fixture *fx)
{
    for (int i = 0; i <= N_ENTRIES; i++)
        ts_buf_free(&fx->live[i]);
    ts_buf_free(&fx->saved);
    pthread_mutex_destroy(&fx->mu);
    free(fx);
}

static void test_checkpoint_equals_live(void)
{
    sm_state live;
    sm_init_empty(&live);
    fixture *fx = fixture_new(&live);
    checkpoint_ops ops = { .load = fx_load, .save = fx_save, .arg = fx, .mode = SM_DEDUP };
    checkpoint *ck = checkpoint_new("test", 0, 50, &ops);
    checkpoint_run(ck);
    stream sm = { .clock = 1000000 };
    apply_range(fx, ck, &live, &sm, 1, N_ENTRIES);
    ts_error err = {0};
    TC_CHECK(checkpoint_now(ck, &err) == 0);
    checkpoint_stats st;
    checkpoint_get_stats(ck, &st);
    fprintf(stderr, "  %d failing, %d answered from the session table (%d refused as too "
            "old); %" PRIu64 " checkpoints\n", sm.failures, sm.dups, sm.refused, st.written);
    TC_CHECK(sm.failures > 300 && N_ENTRIES - sm.failures > 300 && sm.dups > 50 &&
             sm.refused > 10);
    TC_CHECK(st.written >= 2 && st.base == N_ENTRIES && st.pending == 0 && !st.running);
    TC_CHECK(fx->mismatches == 0);
    TC_CHECK(fx->saved_index == N_ENTRIES);
    /* The last image is the live state. */
    ts_buf now = {0};
    sm_image_encode(&live, &now);
    TC_CHECK(now.len == fx->saved.len && memcmp(now.data, fx->saved.data, now.len) == 0);
    ts_buf_free(&now);
    /* Nothing new: checkpoint_now returns at once without a save. */
    int saves = fx->saves;
    TC_CHECK(checkpoint_now(ck, &err) == 0 && fx->saves == saves);
    checkpoint_free(ck);
    sm_clear(&live);
    fixture_free(fx);
}

static void test_failed_save_retries(void)
{
    sm_state live;
    sm_init_empty(&live);
    fixture *fx = fixture_new(&live);
    fx->fail_saves = 1;
    checkpoint_ops ops = { .load = fx_load, .save = fx_save, .arg = fx, .mode = SM_DEDUP };
    checkpoint *ck = checkpoint_new("test", 0, 1000000, &ops);   /* only on demand */
    checkpoint_run(ck);
    stream sm = { .clock = 1000000 };
    apply_range(fx, ck, &live, &sm, 1, 400);
    ts_error err = {0};
    TC_CHECK(checkpoint_now(ck, &err) == TS_EIO);
    TC_CHECK(strstr(err.msg, "disk full") != NULL);
    checkpoint_stats st;
    checkpoint_get_stats(ck, &st);
    TC_CHECK(st.failed == 1 && st.base == 0 && st.pending == 400);
    /* The entries were kept: the next one covers them all. */
    apply_range(fx, ck, &live, &sm, 401, 700);
    TC_CHECK(checkpoint_now(ck, &err) == 0);
    checkpoint_get_stats(ck, &st);
    TC_CHECK(st.written == 1 && st.base == 700 && st.pending == 0);
    TC_CHECK(fx->mismatches == 0 && fx->saved_index == 700);
    checkpoint_free(ck);
    sm_clear(&live);
    fixture_free(fx);
}

static void test_reset(void)
{
    sm_state live;
    sm_init_empty(&live);
    fixture *fx = fixture_new(&live);
    checkpoint_ops ops = { .load = fx_load, .save = fx_save, .arg = fx, .mode = SM_DEDUP };
    checkpoint *ck = checkpoint_new("test", 0, 1000000, &ops);
    checkpoint_run(ck);
    stream sm = { .clock = 1000000 };
    apply_range(fx, ck, &live, &sm, 1, 300);
    /* The state is replaced by an image at 300 (as a Raft InstallSnapshot
     * does): entries before it are forgotten and the next checkpoint
     * starts from that image. */
    pthread_mutex_lock(&fx->mu);
    fx->saved.len = 0;
    sm_image_encode(&live, &fx->saved);
    fx->saved_index = 300;
    pthread_mutex_unlock(&fx->mu);
    checkpoint_reset(ck, 300);
    checkpoint_stats st;
    checkpoint_get_stats(ck, &st);
    TC_CHECK(st.base == 300 && st.pending == 0);
    apply_range(fx, ck, &live, &sm, 301, 500);
    ts_error err = {0};
    TC_CHECK(checkpoint_now(ck, &err) == 0);
    TC_CHECK(fx->saves == 1 && fx->saved_index == 500 && fx->mismatches == 0);
    checkpoint_free(ck);
    /* Stopped: checkpoint_now refuses instead of waiting forever. */
    ck = checkpoint_new("test", 500, 10, &ops);
    apply_range(fx, ck, &live, &sm, 501, 510);
    TC_CHECK(checkpoint_now(ck, &err) == TS_EUNAVAIL);
    checkpoint_free(ck);
    sm_clear(&live);
    fixture_free(fx);
}

int main(void)
{
    ts_log_init("test_checkpoint", TS_LOG_ERROR + 1);
    TC_RUN(test_checkpoint_equals_live);
    TC_RUN(test_failed_save_retries);
    TC_RUN(test_reset);
    TC_DONE("test_checkpoint");
}
